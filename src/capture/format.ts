/**
 * @module capture/format — record types of the capture file and its CBOR encoding settings.
 *
 * A capture file is a CBOR sequence (RFC 8742): CBOR data items (RFC 8949) written one after
 * another with no framing. The first item is a header record, then any mix of span and stats
 * records, then (if the tracer stopped cleanly) one end record. Because every record is a
 * definite-length map, a file cut at any byte still decodes to all complete records followed
 * by one incomplete item, which readers report as truncation.
 *
 * Encoding choices (stable, and independent of cbor-x extensions):
 *  - `useRecords: false`: plain CBOR maps, not cbor-x's record tag (tag 105), so any CBOR
 *    decoder can read the file;
 *  - bigint nanosecond times: cbor-x writes every bigint in 64-bit range as a major-type-0/1
 *    integer with an 8-byte argument and decodes that form back to bigint, so times round-trip
 *    exactly (epoch ns exceed 2^53).
 */
import { Decoder, Encoder } from "cbor-x";
import type { LossCounters, Span } from "../spans/model.ts";
import type { ClockAnchor } from "../spans/clock.ts";

/** Bump when a reader of the previous format could misread the new one. */
export const CAPTURE_FORMAT = 1;

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

export type CaptureRecord = SpanRecord | StatsRecord | EndRecord;

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
