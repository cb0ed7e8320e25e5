/**
 * @module capture/format — record types of the capture file and its CBOR encoding settings.
 *
 * A capture file is a CBOR sequence (RFC 8742): CBOR data items (RFC 8949) written one after
 * another with no framing. The first item is a header record, then any mix of the items below,
 * then (if the tracer stopped cleanly) one end record. Because every item is a definite-length
 * map, a file cut at any byte still decodes to all complete items followed by one incomplete
 * item, which readers report as truncation.
 *
 * Format 1: spans are `span` items (decoded Span maps). Still written by the OTLP spill file
 * and still read.
 * Format 2 (the tracer's capture files): spans are BPF records exactly as the ring buffer
 * holds them (bpf/shared/span.h: each starts with `u16 type, u16 size`, so records concatenate
 * with no other framing). One `records` item per flush carries a byte string of concatenated
 * records; `clock` items carry the BOOTTIME→epoch anchor for the chunks after them; the header
 * carries each record type's layout (`records`, src/probes/decode.ts) so a newer beetrace
 * decodes an older file with the layout it was written with. A `records` item cut short still
 * yields its complete records: the byte string's head says how long it was meant to be.
 * Format-2 files may also hold `span` items (a reader accepts both in either format).
 * Format 3: as format 2, and a chunk may instead be a `records-deflate` item: the same
 * concatenated records compressed with raw DEFLATE (RFC 1951), with their uncompressed `size`.
 * The tracer compresses each flush's chunk (one drain tick's records: a few hundred spans at
 * load), which makes files ~3× smaller for ~0.2 µs of CPU per span (bench/RESULTS.md, capture
 * compression). What it costs a damaged file: damage inside a compressed chunk loses that chunk's
 * records after the damage (a DEFLATE stream cannot be re-entered), where a raw chunk loses only
 * the damaged records. A compressed chunk cut short still yields the records before the cut.
 *
 * Encoding choices (stable, and independent of cbor-x extensions):
 *  - `useRecords: false`: plain CBOR maps, not cbor-x's record tag (tag 105), so any CBOR
 *    decoder can read the file;
 *  - bigint nanosecond times: cbor-x writes every bigint in 64-bit range as a major-type-0/1
 *    integer with an 8-byte argument and decodes that form back to bigint, so times round-trip
 *    exactly (epoch ns exceed 2^53).
 */
// The pure-JavaScript entry points, not the package root: under the "node" condition the root
// (node-index.js) tries to load the optional native `cbor-extract` addon at import. In a compiled
// executable that search runs against the build machine's node_modules path (baked in by the
// bundler), so the same build would decode with native code where it was built and without it
// on a customer's server; and the search itself (libc detection, prebuild directory scans) cost
// start-up time on every command that touches capture files (bench/RESULTS.md, start-up).
import { Encoder } from "cbor-x/encode";
import { Decoder } from "cbor-x/decode";
import type { LossCounters, Span } from "../spans/model.ts";
import type { ClockAnchor } from "../spans/clock.ts";
import type { RecordSchema } from "../probes/decode.ts";

/** Bump when a reader of the previous format could misread the new one. */
export const CAPTURE_FORMAT = 3;
/** Oldest format this reader still reads. */
export const CAPTURE_FORMAT_MIN = 1;
/** First format whose files may hold `records-deflate` chunks (format 2 readers would skip them unread). */
export const CAPTURE_FORMAT_DEFLATE = 3;
/** The format of files with raw chunks only (`--capture-format 2`): what beetrace versions before format 3 read. */
export const CAPTURE_FORMAT_RAW = 2;
/**
 * Largest `records-deflate` chunk, compressed and inflated: the reader holds one whole, so this
 * bounds its memory (and a crafted chunk that inflates without end). The writer's chunks are one
 * flush each (1–4 MiB at most); a larger one is written raw.
 */
export const DEFLATED_CHUNK_MAX = 16 * 1024 * 1024;
/** DEFLATE level for chunks: 1 (fastest) gets within ~12 % of level 6's size at a third of its CPU here. */
export const DEFLATE_LEVEL = 1;

export type OffsetSource = "dwarf" | "snapshot" | "file" | "guess";

export interface ProbeOffset {
  field: string;
  offset: number;
  source: OffsetSource;
}

export interface ProbeInfo {
  id: string;
  attached: boolean;
  /** Why the probe is not attached (or a warning about how it is). */
  reason?: string;
  offsets: ProbeOffset[];
}

export interface CaptureHeader {
  type: "header";
  format: number;
  tracer: { name: string; version: string };
  /** Epoch ns when the capture started */
  createdAt: bigint;
  host: { name: string; arch: string; kernel: string };
  target: {
    pid: number;
    exe: string;
    goVersion: string;
    modules: { path: string; version: string }[];
    serviceName: string;
  };
  /** BOOTTIME -> REALTIME anchor at start, so offline tools can check conversions. */
  clock: Pick<ClockAnchor, "realtimeNs" | "boottimeNs" | "offsetNs">;
  probes: ProbeInfo[];
  /**
   * The full OTLP resource the tracer used (optional; older files lack it): keeps the target's
   * OTEL_RESOURCE_ATTRIBUTES so replayed and converted spans carry the same resource.
   */
  resource?: Record<string, string | number | boolean>;
  /** Format 2: the layout of every record type the file may hold (absent in format 1). */
  records?: RecordSchema;
}

export type SpanRecord = { type: "span" } & Span;

export interface StatsRecord {
  type: "stats";
  /** Epoch ns */
  at: bigint;
  losses: LossCounters;
  /** Spans written so far */
  spans: number;
}

export interface EndRecord {
  type: "end";
  /** "duration", "signal", "target-exited", "error: ..." */
  reason: string;
  /** Epoch ns */
  at: bigint;
  totals: { spans: number; losses: LossCounters };
}

/** BOOTTIME → epoch anchor for the records chunks after it (format 2): epoch = boot + offsetNs. */
export interface ClockRecord extends Pick<ClockAnchor, "realtimeNs" | "boottimeNs" | "offsetNs"> {
  type: "clock";
}

/**
 * Starts a section (`beetrace merge` output, which joins the captures of several processes):
 * the items after it, up to the next section, come from the capture this header describes
 * (its target and resource, clock anchor and record layouts). The file's own header describes
 * the first section. Readers that predate sections skip the item (an unknown type) and read
 * the records on with the previous section's layouts.
 */
export interface SectionRecord {
  type: "section";
  header: CaptureHeader;
}

export type CaptureRecord = SpanRecord | StatsRecord | EndRecord | ClockRecord | SectionRecord;

/** The anchor fields a clock item and the header carry. */
export type ClockFields = Pick<ClockAnchor, "realtimeNs" | "boottimeNs" | "offsetNs">;

const options = { useRecords: false, mapsAsObjects: true, tagUint8Array: false } as const;

export function captureEncoder(): Encoder {
  return new Encoder(options);
}

export function captureDecoder(): Decoder {
  return new Decoder(options);
}

export function spanRecord(span: Span): SpanRecord {
  return { type: "span", ...span };
}
