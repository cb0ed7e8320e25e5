/**
 * @module capture/reader — reads a capture file back as a stream, in bounded memory, tolerating
 * a cut at any byte and damage anywhere after the header.
 *
 * Streaming: a file is read through a window (FileSource: 1 MiB reads, at most MAX_ITEM bytes
 * held), so memory does not grow with the file. A format-2 `records` chunk is never held whole:
 * its head gives where its byte string starts and how long it is, and the span records in it
 * are walked by their own size fields (bpf/shared/span.h) window by window. Other items are
 * complete CBOR items of at most MAX_ITEM bytes, found by a small bounds-checked scanner
 * (RFC 8949 §3: the head of each item gives its length) and then decoded by cbor-x.
 *
 * Entry points: openCapture(path) → CaptureStream (header, records() generator of decoded span
 * records and stats/clock/end records, then a summary), for commands; CaptureScanner over bytes
 * or a source (raw records, not decoded; runs() gives them a window at a time, for `merge`);
 * readCapture/readCaptureFile collect everything (small files and tests only: memory grows with
 * the file).
 *
 * Truncation: a capture cut by SIGKILL, a full disk or a partial copy reads back every complete
 * record, and the incomplete tail is reported as `truncated` with its size, not as damage. When
 * that tail is a `records` chunk, its complete span records are read too.
 *
 * Damage (bytes that are not what the writer wrote) costs only itself: the reader reports the
 * damaged byte range and resynchronises — inside a records chunk at the next offset where a
 * chain of two plausible records starts (a known record type, a size that fits), between items
 * at the next offset where an item of a known type starts (a map whose first key is "type",
 * which every item the writer produces has) and decodes. So every intact record before and
 * after the damage is read. A record whose framing is intact but whose contents do not decode
 * is damaged by itself (its range is reported; the next record follows it). Only a damaged
 * header makes the file unreadable (`corrupt_capture`). Item types this reader does not know
 * are skipped and counted, so newer writers can add item types; incompatible changes bump the
 * header's `format`.
 */
import { Buffer } from "node:buffer";
import { TracerError, fromSystemError } from "../errors.ts";
import type { AttrValue, LossCounters, SpanAttributes, SpanKind } from "../spans/model.ts";
import { type RecordLayout, type RecordSchema, SpanDecoder, builtinRecordSchema, recordSize } from "../probes/decode.ts";
import { SPAN_HEADER_SIZE } from "../probes/record.ts";
import { closeQuietly, openRegularFile, readFully } from "../target/input.ts";
import { inflateRaw } from "../runtime.ts";
import {
  CAPTURE_FORMAT,
  CAPTURE_FORMAT_MIN,
  type CaptureHeader,
  type CaptureRecord,
  type ClockRecord,
  type EndRecord,
  type ProbeInfo,
  type SpanRecord,
  DEFLATED_CHUNK_MAX,
  type StatsRecord,
  captureDecoder,
} from "./format.ts";

/** A damaged byte range [start, end) of a capture file, skipped by the reader. */
export interface Damage {
  start: number;
  end: number;
  /** What was wrong at `start` */
  why: string;
}

export interface CaptureContents {
  header: CaptureHeader;
  /** Every complete record after the header, in file order (format-2 span records decoded) */
  records: CaptureRecord[];
  /** The file ends inside an item (writer killed, disk full, partial copy) */
  truncated: boolean;
  /** Bytes of that incomplete tail not read back (0 when not truncated) */
  trailingBytes: number;
  /** Items of types this version does not know, and span records of types it cannot decode */
  skipped: number;
  /** Damaged regions (damaged record framing, damaged items, records that do not decode) */
  invalid: number;
  /** The damaged regions (the first MAX_DAMAGE_LISTED of them), in file order */
  damaged: Damage[];
  /** Bytes in all damaged regions */
  damagedBytes: number;
}

/** A format-2 span record as stored, with the clock that converts its BOOTTIME stamps. */
/** A place after a whole item where a pass over a (grown) capture file can go on: its byte offset and the clock in force there. */
export interface ResumePoint {
  pos: number;
  clockOffsetNs: bigint;
}

export interface RawRecord {
  type: "raw";
  /**
   * The record's bytes: a view into the file's bytes for a scanner over bytes; over a file
   * source, valid only until the next item is requested (copy to keep it).
   */
  bytes: Uint8Array;
  /** BOOTTIME ns → epoch ns with the clock item in force for this record's chunk */
  toEpoch: (bootNs: bigint) => bigint;
  /** Byte offset of the record in the file (of its records-deflate chunk, for a compressed one) */
  offset: number;
}

/**
 * Consecutive span records of one records chunk, for readers that go through millions of them
 * (`beetrace merge`): one item per run instead of one per record, and no view per record. Record
 * k is bytes[at[k], at[k] + size) (its size field); the run is contiguous: it covers
 * bytes[at[0], end). Valid only until the next item is requested (`bytes` is the source's
 * window and `at` is reused); the records may be changed in place meanwhile.
 */
export interface RawRun {
  type: "raws";
  bytes: Uint8Array;
  /** Start of each record in `bytes` (the first `count` entries are valid) */
  at: Int32Array;
  count: number;
  /** End of the last record in `bytes` */
  end: number;
  /** BOOTTIME ns → epoch ns with the clock item in force for these records */
  toEpoch: (bootNs: bigint) => bigint;
  /** Byte offset of bytes[0] in the file (of the records-deflate chunk, for a compressed one) */
  offset: number;
}

export type CaptureItem = CaptureRecord | RawRecord;

const HINT_DAMAGED = "the damaged bytes were skipped and every intact record before and after them was read";
const HINT_NOT_CAPTURE = "pass a file written by 'beetrace run/attach --out FILE'";
/** Deeper nesting than this is not something the writer produces (RFC 8949 sets no limit). */
const MAX_DEPTH = 64;
/**
 * Largest item other than a records chunk (the header, a span, stats, clock or end item). The
 * writer's are well under 64 KiB (a header with every probe and layout is a few KiB); a bigger
 * one is damage, so the reader's memory stays bounded by this.
 */
export const MAX_ITEM = 16 * 1024 * 1024;
/** Bytes read from a file at a time. */
const READ_SIZE = 1024 * 1024;
/** Damaged regions kept in the list (all are counted). */
const MAX_DAMAGE_LISTED = 1000;
/** Bytes enough to hold the head of a records chunk (24 for the writer's; a little more for other key orders). */
const CHUNK_HEAD_PEEK = 256;
/** Largest candidate item checked while resynchronising: items the writer writes are far smaller. */
const RESYNC_ITEM_MAX = 1024 * 1024;
/** Item types the writer produces, which resynchronisation may land on. */
const KNOWN_ITEM_TYPES = new Set(["span", "stats", "end", "clock", "records", "records-deflate", "section"]);
/**
 * Lengths of the map head right before an item's "type" key (its first key): 1 byte for < 24
 * entries, or 2, 3 or 5 (0xb8, 0xb9, 0xba + length; cbor-x writes object maps as 0xb9 + u16).
 */
const MAP_HEAD_LENGTHS = [1, 2, 3, 5] as const;
/** `"type"` as a CBOR text string: every item starts with it, right after its map head. */
const TYPE_KEY = Buffer.from([0x64, 0x74, 0x79, 0x70, 0x65]);

// ---------------------------------------------------------------------------------------
// Sources of bytes

/** Random access to a capture's bytes. */
export interface CaptureSource {
  /** Bytes in the source (a file: its size when opened; it may shrink if truncated meanwhile) */
  readonly size: number;
  /**
   * Bytes [pos, pos + need), fewer only at the end of the source. The view may be invalidated by
   * the next call (FileSource reuses its buffer); `need` is at most MAX_ITEM + 64 KiB.
   */
  view(pos: number, need: number): Uint8Array;
}

/** A capture held in memory: views stay valid. */
export class MemorySource implements CaptureSource {
  constructor(readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  view(pos: number, need: number): Uint8Array {
    return this.bytes.subarray(pos, Math.min(pos + need, this.bytes.byteLength));
  }
}

/** A regular file read through one reused buffer (1 MiB, grown only for a larger item). */
export class FileSource implements CaptureSource {
  #size: number;
  #buf = new Uint8Array(0);
  /** File offset of #buf[0] and how many bytes of #buf are valid */
  #start = 0;
  #len = 0;
  #fd: number | undefined;

  /** Opens `path`; refuses anything but a regular file (src/target/input.ts). */
  constructor(readonly path: string) {
    const f = openRegularFile(path, "capture file", HINT_NOT_CAPTURE);
    this.#fd = f.fd;
    this.#size = f.size;
  }

  get size(): number {
    return this.#size;
  }

  view(pos: number, need: number): Uint8Array {
    const want = Math.max(0, Math.min(need, this.#size - pos));
    if (pos >= this.#start && pos + want <= this.#start + this.#len) return this.#buf.subarray(pos - this.#start, pos - this.#start + want);
    if (this.#fd === undefined) throw new TracerError("internal", `capture file ${this.path} read after close`);
    const cap = Math.max(READ_SIZE, want);
    // Keep the bytes of the old window that the new one still needs (they are at its start).
    let keep = 0;
    if (pos >= this.#start && pos < this.#start + this.#len) keep = this.#start + this.#len - pos;
    if (cap > this.#buf.byteLength) {
      const bigger = new Uint8Array(cap);
      if (keep > 0) bigger.set(this.#buf.subarray(pos - this.#start, pos - this.#start + keep));
      this.#buf = bigger;
    } else if (keep > 0) {
      this.#buf.copyWithin(0, pos - this.#start, pos - this.#start + keep);
    }
    this.#start = pos;
    this.#len = keep;
    const fill = Math.min(this.#buf.byteLength, this.#size - pos);
    if (fill > keep) {
      const got = readFully(this.#fd, this.#buf, keep, fill - keep, pos + keep, this.path);
      this.#len = keep + got;
      // The file shrank while we read it: it ends here now.
      if (got < fill - keep) this.#size = pos + this.#len;
    }
    return this.#buf.subarray(0, Math.min(want, this.#len));
  }

  close(): void {
    if (this.#fd !== undefined) closeQuietly(this.#fd);
    this.#fd = undefined;
    this.#buf = new Uint8Array(0);
    this.#len = 0;
  }
}

// ---------------------------------------------------------------------------------------
// Whole-file helpers (memory grows with the file: tests and small files)

export function readCaptureFile(path: string): CaptureContents {
  const src = new FileSource(path);
  try {
    return collect(new CaptureScanner(src), true);
  } catch (e) {
    if (e instanceof TracerError) throw e.withContext(path);
    throw e;
  } finally {
    src.close();
  }
}

/** The whole capture at once, span records decoded (see decodeRecords). */
export function readCapture(bytes: Uint8Array): CaptureContents {
  return collect(new CaptureScanner(bytes), false);
}

function collect(scanner: CaptureScanner, copy: boolean): CaptureContents {
  const records: CaptureRecord[] = [];
  for (const r of decodeRecords(scanner)) records.push(copy ? r : r);
  return {
    header: scanner.header,
    records,
    truncated: scanner.truncated,
    trailingBytes: scanner.trailingBytes,
    skipped: scanner.skipped,
    invalid: scanner.invalid,
    damaged: scanner.damaged,
    damagedBytes: scanner.damagedBytes,
  };
}

// ---------------------------------------------------------------------------------------
// Streaming API for commands

/** What a finished read found besides the records (CaptureStream.summary). */
export interface CaptureSummary {
  /** Span records read (decoded) */
  spans: number;
  truncated: boolean;
  trailingBytes: number;
  skipped: number;
  invalid: number;
  damaged: Damage[];
  damagedBytes: number;
  /** The end record, if the file has one */
  end: EndRecord | undefined;
  /** The last stats record */
  lastStats: StatsRecord | undefined;
}

/**
 * One pass over a capture file in bounded memory. `records()` yields decoded span records and
 * stats/clock/end records in file order (call it once per pass: a second call reads the file
 * again from the start); `summary` describes the pass once records() has finished.
 */
export class CaptureStream {
  readonly header: CaptureHeader;
  readonly #src: FileSource;
  readonly #scanner: CaptureScanner;
  #summary: CaptureSummary | undefined;

  constructor(readonly path: string) {
    this.#src = new FileSource(path);
    try {
      this.#scanner = new CaptureScanner(this.#src);
    } catch (e) {
      this.#src.close();
      if (e instanceof TracerError) throw e.withContext(path);
      throw e;
    }
    this.header = this.#scanner.header;
  }

  /** File size in bytes (when opened). */
  get size(): number {
    return this.#src.size;
  }

  /** Where a later pass (a new stream over the grown file) can go on from the record last yielded; see CaptureScanner.resumePoint. */
  get resumePoint(): ResumePoint | undefined {
    return this.#scanner.resumePoint;
  }

  /** The records in file order: from the start, or from a resume point an earlier pass gave (the summary then covers only what this pass read). */
  *records(from?: ResumePoint): Generator<CaptureRecord> {
    const s = this.#scanner;
    let spans = 0;
    let end: EndRecord | undefined;
    let lastStats: StatsRecord | undefined;
    this.#summary = undefined;
    for (const r of decodeRecords(s, undefined, from)) {
      if (r.type === "span") spans++;
      else if (r.type === "end") end = r;
      else if (r.type === "stats") lastStats = r;
      yield r;
    }
    this.#summary = {
      spans,
      truncated: s.truncated,
      trailingBytes: s.trailingBytes,
      skipped: s.skipped,
      invalid: s.invalid,
      damaged: s.damaged,
      damagedBytes: s.damagedBytes,
      end,
      lastStats,
    };
  }

  /** Only decoded span records (the other records are still accounted in the summary). */
  *spans(from?: ResumePoint): Generator<SpanRecord> {
    for (const r of this.records(from)) if (r.type === "span") yield r;
  }

  /** Set when records() has run to its end. */
  get summary(): CaptureSummary {
    if (this.#summary === undefined) throw new TracerError("internal", "capture summary read before the records were");
    return this.#summary;
  }

  close(): void {
    this.#src.close();
  }
}

/** Open a capture file for streaming (refuses non-regular files; throws corrupt_capture for a bad header). */
export function openCapture(path: string): CaptureStream {
  return new CaptureStream(path);
}

/**
 * The error a command throws after writing out all intact data of a damaged file (exit 17),
 * or undefined when nothing was damaged.
 */
export function damageError(file: string, s: Pick<CaptureSummary, "damaged" | "damagedBytes" | "invalid">): TracerError | undefined {
  if (s.invalid === 0) return undefined;
  const first = s.damaged.slice(0, 3).map(formatDamage);
  const more = s.invalid > first.length ? `, and ${s.invalid - first.length} more` : "";
  return new TracerError("corrupt_capture", `${file} is damaged: ${s.invalid} damaged region${s.invalid === 1 ? "" : "s"} (${s.damagedBytes} bytes) skipped: ${first.join("; ")}${more}`, {
    hint: "every intact record before and after the damage was read and written out",
    detail: s.damaged.map(formatDamage),
  });
}

export function formatDamage(d: Damage): string {
  return `bytes ${d.start}–${d.end} (${d.end - d.start} bytes): ${d.why}`;
}

// ---------------------------------------------------------------------------------------
// Decoding

/**
 * Items in file order with format-2 raw records turned into span records by `decoder`. A record
 * it cannot decode is left out and noted on the scanner: as damage with its byte range, or as
 * skipped when its type is one this build has no decoder for but the file's layouts describe
 * (a newer probe).
 */
export function* decodeRecords(scanner: CaptureScanner, decoder = new SpanDecoder(scanner.header.records), from?: ResumePoint): Generator<CaptureRecord> {
  const builtin = builtinTypes();
  let fileTypes = scanner.header.records?.types ?? {};
  let saidWhy = false;
  for (const it of scanner.items(from)) {
    if (it.type !== "raw") {
      if (it.type === "section") {
        // The records after it were written with that capture's layouts.
        decoder = new SpanDecoder(it.header.records);
        fileTypes = it.header.records?.types ?? {};
      }
      yield it;
      continue;
    }
    const before = decoder.invalid;
    let span;
    try {
      span = decoder.decode(it.bytes, it.toEpoch);
    } catch (e) {
      // A decoder must not throw on bad bytes; if one does, the record is damaged, not the read.
      scanner.noteDamage(it.offset, it.offset + it.bytes.byteLength, `span record does not decode (decoder error: ${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    if (span !== undefined) {
      yield { type: "span", ...span };
      continue;
    }
    if (decoder.invalid === before) continue;
    const tag = it.bytes.byteLength >= 2 ? it.bytes[0]! | (it.bytes[1]! << 8) : -1;
    if (fileTypes[String(tag)] !== undefined && !builtin.has(tag)) scanner.skipped++;
    else {
      // The decoder keeps the reason of its first refusal only: name it once.
      const why: string = !saidWhy && decoder.firstInvalid ? ` (${decoder.firstInvalid})` : "";
      saidWhy ||= why !== "";
      scanner.noteDamage(it.offset, it.offset + it.bytes.byteLength, `span record does not decode${why}`);
    }
  }
}

let builtinTypeSet: Set<number> | undefined;
function builtinTypes(): Set<number> {
  builtinTypeSet ??= new Set(Object.keys(builtinRecordSchema().types).map(Number));
  return builtinTypeSet;
}

// ---------------------------------------------------------------------------------------
// Scanning

/**
 * Walks a capture's items. The constructor reads the header (throwing corrupt_capture when the
 * bytes are not a capture); items() yields the rest, after which truncated, trailingBytes,
 * skipped, invalid and damaged describe the file. Raw records are views (see RawRecord.bytes).
 */
export class CaptureScanner {
  readonly header: CaptureHeader;
  truncated = false;
  trailingBytes = 0;
  skipped = 0;
  /** Damaged regions (record framing, items, undecodable records) */
  invalid = 0;
  damaged: Damage[] = [];
  damagedBytes = 0;
  readonly #src: CaptureSource;
  /** The file as a source of records (WalkSource) */
  readonly #fileWalk: WalkSource;
  readonly #decoder = captureDecoder();
  readonly #headerEnd: number;
  /** Record types the file's layouts describe (undefined: format 1, any type) */
  readonly #types: Set<number> | undefined;
  /** The same as a table by type (1: known), for the record walk's fast path; undefined: any type */
  readonly #known: Uint8Array | undefined;
  /** Record starts of the current RawRun (reused; at most one per SPAN_HEADER_SIZE bytes of a window) */
  #runAt = new Int32Array(0);

  constructor(input: Uint8Array | CaptureSource) {
    const src = input instanceof Uint8Array ? new MemorySource(input) : input;
    this.#src = src;
    this.#fileWalk = { src };
    if (src.size === 0) {
      throw new TracerError("corrupt_capture", "capture file is empty", { hint: "the tracer may have failed before writing its header; check its output" });
    }
    const first = src.view(0, 16);
    // Every item is a CBOR map (major type 5), so anything else is not one of our files.
    if (first[0]! >> 5 !== 5 || sniff(first) !== undefined) throw notCapture(first, "it does not start with a CBOR map");
    let got: Complete;
    try {
      got = this.#complete(0, MAX_ITEM);
    } catch (e) {
      if (e instanceof Malformed) throw notCapture(first, e.message);
      throw e;
    }
    if (got.kind === "cut") {
      throw new TracerError("corrupt_capture", `capture ends inside its header (${src.size} bytes, no complete record)`, {
        hint: "the tracer was stopped while writing the header; nothing was captured",
      });
    }
    if (got.kind === "too-large") throw notCapture(first, `its first item is larger than ${MAX_ITEM} bytes`);
    let value: unknown;
    try {
      value = this.#decoder.decode(got.bytes);
    } catch {
      throw notCapture(first, "the first item does not decode");
    }
    this.header = parseHeader(value, first);
    this.#headerEnd = got.end;
    const types = this.header.records?.types;
    this.#types = types === undefined ? undefined : new Set(Object.keys(types).map(Number));
    if (this.#types !== undefined) {
      this.#known = new Uint8Array(65536);
      for (const t of this.#types) if (t >= 0 && t <= 0xffff) this.#known[t] = 1;
    }
  }

  /** Record a damaged region [start, end) (also used by decodeRecords for undecodable records). */
  noteDamage(start: number, end: number, why: string): void {
    this.invalid++;
    this.damagedBytes += end - start;
    const last = this.damaged[this.damaged.length - 1];
    if (this.damaged.length < MAX_DAMAGE_LISTED) this.damaged.push({ start, end, why });
    else if (last !== undefined && last.start === -1) last.end = end;
  }

  /** The complete item at `pos` (at most `max` bytes), or why not. Throws Malformed. */
  #complete(pos: number, max: number): Complete {
    const src = this.#src;
    let need = Math.min(64 * 1024, max);
    for (;;) {
      const v = src.view(pos, need);
      const e = itemEnd(v, 0);
      if (e >= 0) return { kind: "item", end: pos + e, bytes: v.subarray(0, e) };
      if (pos + v.byteLength >= src.size) return { kind: "cut" };
      if (need >= max) return { kind: "too-large" };
      need = Math.min(need * 4, max);
    }
  }

  /**
   * Where a later pass can go on from the item last yielded, when that item was a whole top-level
   * item of its own (a span, stats, clock or end record; not a record inside a chunk): a file that
   * grows (the spill file of an OTLP outage) is then read on without decoding its start again.
   */
  get resumePoint(): ResumePoint | undefined {
    return this.#resume;
  }
  #resume: ResumePoint | undefined;

  /** Items from the start, or from a resume point a pass over the same file gave. */
  items(from?: ResumePoint): Generator<CaptureItem> {
    return this.#items(from, false) as Generator<CaptureItem>;
  }

  /**
   * Items as items() gives them, except that the span records of a chunk come as runs (RawRun:
   * one item per window of consecutive records; a record the fast path does not take, such as
   * one next to damage, still comes as a RawRecord).
   */
  runs(): Generator<CaptureItem | RawRun> {
    return this.#items(undefined, true);
  }

  *#items(from: ResumePoint | undefined, runs: boolean): Generator<CaptureItem | RawRun> {
    const src = this.#src;
    this.#resume = undefined;
    // A second walk starts the counts over.
    this.truncated = false;
    this.trailingBytes = 0;
    this.skipped = 0;
    this.invalid = 0;
    this.damaged = [];
    this.damagedBytes = 0;
    let clockOffsetNs = from?.clockOffsetNs ?? this.header.clock.offsetNs;
    let toEpoch = epochFrom(clockOffsetNs);
    let pos = from === undefined ? this.#headerEnd : Math.max(this.#headerEnd, Math.min(from.pos, src.size));
    for (let i = 1; pos < src.size; i++) {
      this.#resume = undefined;
      const where = `item ${i} (byte ${pos})`;
      // A records chunk whose byte string is its last entry: streamed, never held whole.
      const head = src.view(pos, CHUNK_HEAD_PEEK);
      const chunk = chunkData(head, 0, head.byteLength);
      if (chunk !== undefined && chunk.last && chunk.deflated) {
        const next = yield* this.#deflatedChunk(pos, chunk, where, toEpoch, runs);
        if (next === undefined) return; // the file ends inside it
        pos = next;
        continue;
      }
      if (chunk !== undefined && chunk.last) {
        const dataStart = pos + chunk.start;
        const dataEnd = pos + chunk.declaredEnd;
        const cut = dataEnd > src.size;
        const w = this.#walk(dataStart, Math.min(dataEnd, src.size), toEpoch, cut, runs);
        let r = w.next();
        while (!r.done) {
          yield r.value;
          r = w.next();
        }
        const { next, atItem } = r.value;
        if (cut && !atItem) {
          this.truncated = true;
          // Nothing of the cut chunk read back: its head is part of the incomplete tail too.
          this.trailingBytes = src.size - (next === dataStart ? pos : next);
          return;
        }
        pos = next;
        continue;
      }
      let got: Complete;
      try {
        got = this.#complete(pos, MAX_ITEM);
      } catch (e) {
        if (!(e instanceof Malformed)) throw e;
        pos = yield* this.#damagedItem(pos, `malformed CBOR at byte ${pos + e.at}: ${e.message}`, toEpoch);
        continue;
      }
      if (got.kind === "cut") {
        this.truncated = true;
        this.trailingBytes = src.size - pos;
        return;
      }
      if (got.kind === "too-large") {
        pos = yield* this.#damagedItem(pos, `item larger than ${MAX_ITEM} bytes`, toEpoch);
        continue;
      }
      let value: unknown;
      try {
        value = this.#decoder.decode(got.bytes);
      } catch (e) {
        pos = yield* this.#damagedItem(pos, `item does not decode: ${e instanceof Error ? e.message : String(e)}`, toEpoch);
        continue;
      }
      const end = got.end;
      let out: CaptureItem[] | "skip";
      try {
        out = this.#parseItem(value, where, pos, end, toEpoch);
      } catch (e) {
        if (!(e instanceof TracerError)) throw e;
        pos = yield* this.#damagedItem(pos, e.message.replace(/^capture is corrupt: /, ""), toEpoch);
        continue;
      }
      if (out === "skip") this.skipped++;
      else {
        for (const [k, it] of out.entries()) {
          if (it.type === "clock" || it.type === "section") {
            clockOffsetNs = it.type === "clock" ? it.offsetNs : it.header.clock.offsetNs;
            toEpoch = epochFrom(clockOffsetNs);
          }
          if (it.type === "section" && this.#types !== undefined) {
            for (const t of Object.keys(it.header.records?.types ?? {})) {
              this.#types.add(Number(t));
              if (this.#known !== undefined && Number(t) >= 0 && Number(t) <= 0xffff) this.#known[Number(t)] = 1;
            }
          }
          if (k === out.length - 1 && it.type !== "raw") this.#resume = { pos: end, clockOffsetNs };
          yield it;
        }
      }
      pos = end;
    }
  }

  /** The records of a chunk held in memory (one whose shape is not our writer's). */
  #splitRecords(data: Uint8Array, where: string, pos: number, end: number, toEpoch: (b: bigint) => bigint): CaptureItem[] {
    const out: CaptureItem[] = [];
    let p = 0;
    while (p < data.byteLength) {
      const size = recordSize(data, p);
      if (size === 0 || p + size > data.byteLength) {
        this.noteDamage(pos, end, `${where}: damaged record framing in a records item`);
        break;
      }
      out.push({ type: "raw", bytes: data.subarray(p, p + size), toEpoch, offset: pos });
      p += size;
    }
    return out;
  }

  /** Items of one decoded value: a record, or the records of a chunk cbor-x copied out. */
  #parseItem(value: unknown, where: string, pos: number, end: number, toEpoch: (b: bigint) => bigint): CaptureItem[] | "skip" {
    const r = obj(value, where);
    switch (r.type) {
      case "span":
        return [parseSpan(r, where)];
      case "stats":
        return [parseStats(r, where)];
      case "end":
        return [parseEnd(r, where)];
      case "clock":
        return [parseClock(r, where)];
      case "records": {
        // A chunk in a shape our writer does not produce (e.g. "data" before "type"): its
        // bytes are small (at most MAX_ITEM), so copy them and walk them in memory.
        if (!(r.data instanceof Uint8Array)) throw bad(`${where}: 'data' is not a byte string`);
        return this.#splitRecords(Uint8Array.from(r.data), where, pos, end, toEpoch);
      }
      case "records-deflate": {
        // The same, compressed (not in our writer's shape, so not streamed by #deflatedChunk).
        if (!(r.data instanceof Uint8Array)) throw bad(`${where}: 'data' is not a byte string`);
        if (typeof r.size !== "number" || !Number.isInteger(r.size) || r.size < 0 || r.size > DEFLATED_CHUNK_MAX) throw bad(`${where}: 'size' is not a record size up to ${DEFLATED_CHUNK_MAX}`);
        let data: Uint8Array;
        try {
          data = inflateRaw(r.data, r.size, false);
        } catch (e) {
          throw bad(`${where}: compressed records do not inflate (${e instanceof Error ? e.message : String(e)})`);
        }
        return this.#splitRecords(data, where, pos, end, toEpoch);
      }
      case "header":
        throw bad(`${where} is a second header`);
      case "section": {
        // `beetrace merge` output: the records after this item come from another capture, with
        // its own target, clock and layouts (format.ts SectionRecord).
        let header: CaptureHeader;
        try {
          header = parseHeader(r.header, new Uint8Array(0));
        } catch (e) {
          throw bad(`${where}: section header: ${e instanceof Error ? e.message : String(e)}`);
        }
        return [{ type: "section", header }];
      }
      default:
        if (typeof r.type !== "string") throw bad(`${where} has no record type`);
        return "skip";
    }
  }

  /**
   * The records of the records-deflate chunk at `pos` (format.ts), inflated into memory and
   * walked like a raw chunk's. Returns where the next item starts, or undefined when the file ends
   * inside this one (then it is the truncated tail, and the records before the cut were read).
   * Damaged data costs the chunk's records after the damage: what inflates before it is read.
   */
  *#deflatedChunk(pos: number, chunk: ChunkData, where: string, toEpoch: (b: bigint) => bigint, runs: boolean): Generator<RawRecord | RawRun, number | undefined> {
    const src = this.#src;
    const zlen = chunk.declaredEnd - chunk.start;
    if (zlen > DEFLATED_CHUNK_MAX || chunk.size > DEFLATED_CHUNK_MAX) {
      return yield* this.#damagedItem(pos, `compressed records chunk of ${zlen} bytes inflating to ${chunk.size}: a writer makes none over ${DEFLATED_CHUNK_MAX}`, toEpoch);
    }
    const dataStart = pos + chunk.start;
    const dataEnd = pos + chunk.declaredEnd;
    const cut = dataEnd > src.size;
    const z = src.view(dataStart, Math.min(dataEnd, src.size) - dataStart);
    let records: Uint8Array;
    let damage: string | undefined;
    try {
      records = inflateRaw(z, chunk.size, cut);
      if (!cut && records.byteLength !== chunk.size) damage = `it inflates to ${records.byteLength} bytes where its head says ${chunk.size}`;
    } catch (e) {
      damage = `it does not inflate (${e instanceof Error ? e.message : String(e)})`;
      records = inflatedPrefix(z, chunk.size);
    }
    const itemEnd = Math.min(dataEnd, src.size);
    const ws: WalkSource = { src: new MemorySource(records), item: { pos, end: itemEnd } };
    // A damaged stream ends like a cut one: its last partial record is part of the damage.
    const w = this.#walk(0, records.byteLength, toEpoch, cut || damage !== undefined, runs, ws);
    let r = w.next();
    while (!r.done) {
      yield r.value;
      r = w.next();
    }
    if (damage !== undefined) this.noteDamage(pos, itemEnd, `${where}: compressed records chunk is damaged: ${damage}; ${r.value.next} bytes of records before the damage were read`);
    if (!cut) {
      // A DEFLATE stream ends by itself and bytes after it are ignored, so a length damaged long
      // would still inflate, and the items it swallowed would be lost: an item must start right
      // after the chunk (or the file end there), else the reader resynchronises inside it.
      if (dataEnd === src.size || this.#itemAt(dataEnd) || this.#cutAt(dataEnd)) return dataEnd;
      const next = this.#resyncItem(dataStart, src.size);
      this.noteDamage(next, dataEnd, `${where}: the compressed records chunk's length runs past the next item`);
      return next;
    }
    this.truncated = true;
    // Nothing read back: the whole item is the incomplete tail; else the cut record's bytes.
    this.trailingBytes = r.value.next === 0 ? src.size - pos : records.byteLength - r.value.next;
    return undefined;
  }

  /**
   * Damage starting at item `pos`: up to the next item start, records that chain up (a records
   * chunk whose head was damaged, or records after a chunk whose length was damaged short) are
   * still read; the rest is noted as damage. Returns where the next item starts.
   */
  *#damagedItem(pos: number, why: string, toEpoch: (b: bigint) => bigint): Generator<RawRecord, number> {
    const next = this.#resyncItem(pos + 1, this.#src.size);
    // Records may start right at `pos` (a chunk whose length was damaged short ends early).
    const run = this.#types === undefined ? next : this.#resyncRecordFrom(this.#fileWalk, pos, next, next).at;
    this.noteDamage(pos, run, why);
    if (run < next) {
      const w = this.#walk(run, next, toEpoch, false);
      let r = w.next();
      while (!r.done) {
        yield r.value as RawRecord; // runs = false: single records only
        r = w.next();
      }
    }
    return next;
  }

  /**
   * Records in bytes [start, end) of a chunk. `cut`: the file ends inside the chunk, so a short
   * last record is the truncated tail, not damage. Returns where reading goes on: `next` is the
   * chunk's end (or, for a cut chunk, the end of the last complete record); `atItem` when
   * damage inside the chunk was followed by an item (the chunk's length was itself damaged).
   */
  *#walk(start: number, end: number, toEpoch: (b: bigint) => bigint, cut: boolean, runs = false, ws = this.#fileWalk): Generator<RawRecord | RawRun, { next: number; atItem: boolean }> {
    const src = ws.src;
    let p = start;
    while (p < end) {
      if (runs) {
        // Fast path: the whole records of a known type in one window, as one run. Anything
        // else (a size that does not fit, an unknown type, the window's last partial record)
        // goes through the checks below, one record at a time.
        const w = src.view(p, Math.min(end - p, READ_SIZE));
        const n = w.byteLength;
        const known = this.#known;
        let at = this.#runAt;
        if (at.length < Math.floor(n / SPAN_HEADER_SIZE) + 1) at = this.#runAt = new Int32Array(Math.floor(n / SPAN_HEADER_SIZE) + 1);
        let count = 0;
        let q = 0;
        while (q + 4 <= n) {
          const size = w[q + 2]! | (w[q + 3]! << 8);
          if (size < SPAN_HEADER_SIZE || q + size > n) break;
          if (known !== undefined && known[w[q]! | (w[q + 1]! << 8)] !== 1) break;
          at[count++] = q;
          q += size;
        }
        if (count > 0) {
          yield { type: "raws", bytes: w, at, count, end: q, toEpoch, offset: ws.item?.pos ?? p };
          p += q;
          continue;
        }
      }
      const h = src.view(p, 4);
      if (h.byteLength < 4) {
        if (cut) return { next: p, atItem: false };
        // A chunk of whole records cannot end 1–3 bytes after a record.
        this.#walkDamage(ws, p, end, "records chunk ends inside a record's size field");
        return { next: end, atItem: false };
      }
      const size = recordSize(h, 0);
      if (size > 0 && p + size > end && cut && end >= src.size) return { next: p, atItem: false };
      if (size === 0 || p + size > end || !this.#plausibleNext(ws, p, size, end)) {
        const r = this.#resyncRecord(ws, p + 1, end);
        this.#walkDamage(ws, p, r.at, size === 0 ? "damaged record (size field below the record header)" : p + size > end ? "damaged record (size runs past its chunk)" : "damaged record (unknown type and no record after it)");
        if (r.atItem) return { next: r.at, atItem: true };
        p = r.at;
        continue;
      }
      yield { type: "raw", bytes: src.view(p, size), toEpoch, offset: ws.item?.pos ?? p };
      p += size;
    }
    return { next: end, atItem: false };
  }

  /** Damage found by a walk: in a compressed chunk's records it is reported at the chunk's place in the file. */
  #walkDamage(ws: WalkSource, start: number, end: number, why: string): void {
    if (ws.item === undefined) this.noteDamage(start, end, why);
    else this.noteDamage(ws.item.pos, ws.item.end, `${why}, at byte ${start} of a compressed chunk's records`);
  }

  /** Whether the record at p (of `size`) is framed right: its type is known, or a record (or the chunk end) follows it. */
  #plausibleNext(ws: WalkSource, p: number, size: number, end: number): boolean {
    if (this.#knownType(ws, p)) return true;
    return p + size === end || this.#plausibleRecord(ws, p + size, end);
  }

  #knownType(ws: WalkSource, p: number): boolean {
    if (this.#types === undefined) return true;
    const h = ws.src.view(p, 2);
    return h.byteLength === 2 && this.#types.has(h[0]! | (h[1]! << 8));
  }

  /** A record of a known type whose size fits before `end`. */
  #plausibleRecord(ws: WalkSource, p: number, end: number): boolean {
    const h = ws.src.view(p, 4);
    if (h.byteLength < 4) return false;
    const size = recordSize(h, 0);
    if (size === 0 || p + size > end) return false;
    return this.#types === undefined || this.#types.has(h[0]! | (h[1]! << 8));
  }

  /**
   * Next place to read after damage at from-1 inside a chunk ending at `end`: the first offset
   * where two plausible records start back to back (or one that ends the chunk), unless an
   * item start comes first (then the chunk's own length was damaged; a compressed chunk's records
   * hold no items).
   */
  #resyncRecord(ws: WalkSource, from: number, end: number): { at: number; atItem: boolean } {
    const item = ws.item === undefined ? this.#resyncItem(from, end) : end;
    const src = ws.src;
    const types = this.#types;
    let q = from;
    while (q + 4 <= item) {
      const w = src.view(q, READ_SIZE);
      const n = Math.min(w.byteLength - 3, item - q - 3);
      if (n <= 0) break;
      for (let k = 0; k < n; k++) {
        const tag = w[k]! | (w[k + 1]! << 8);
        if (types !== undefined && !types.has(tag)) continue;
        const at = q + k;
        const size = w[k + 2]! | (w[k + 3]! << 8);
        if (size < 56 || at + size > end) continue;
        if (at + size === end || this.#plausibleRecord(ws, at + size, end)) return { at, atItem: false };
        // #plausibleRecord moved the window: re-read from here.
        return this.#resyncRecordFrom(ws, at + 1, end, item);
      }
      q += n;
    }
    return item < end ? { at: item, atItem: true } : { at: end, atItem: false };
  }

  #resyncRecordFrom(ws: WalkSource, from: number, end: number, item: number): { at: number; atItem: boolean } {
    // Same scan, reusing the item bound already found (tail-recursion unrolled as a loop).
    let q = from;
    const types = this.#types;
    while (q + 4 <= item) {
      const h = ws.src.view(q, 4);
      const tag = h[0]! | (h[1]! << 8);
      if (types === undefined || types.has(tag)) {
        const size = h[2]! | (h[3]! << 8);
        if (size >= 56 && q + size <= end && (q + size === end || this.#plausibleRecord(ws, q + size, end))) return { at: q, atItem: false };
      }
      q++;
    }
    return item < end ? { at: item, atItem: true } : { at: end, atItem: false };
  }

  /** First offset in [from, limit) where an item of a known type starts, else `limit`. */
  #resyncItem(from: number, limit: number): number {
    const src = this.#src;
    let q = from;
    while (q < limit) {
      const w = src.view(q, READ_SIZE);
      const span = Math.min(w.byteLength, limit - q + TYPE_KEY.byteLength);
      if (span < TYPE_KEY.byteLength) return limit;
      const k = Buffer.from(w.buffer, w.byteOffset, span).indexOf(TYPE_KEY);
      if (k < 0) {
        if (q + span >= src.size) return limit;
        q += span - (TYPE_KEY.byteLength - 1);
        continue;
      }
      const at = q + k;
      for (const headLen of MAP_HEAD_LENGTHS) {
        const c = at - headLen;
        if (c >= from && c < limit && this.#itemStartsAt(c, headLen)) return c;
      }
      q = at + 1;
    }
    return limit;
  }

  /** Whether the bytes from `p` to the end are the start of an item cut by the file's end (the truncated tail). */
  #cutAt(p: number): boolean {
    try {
      return this.#complete(p, MAX_ITEM).kind === "cut";
    } catch {
      return false;
    }
  }

  /** Whether a complete item of a known type starts at `p`: its map head, then the "type" key. */
  #itemAt(p: number): boolean {
    for (const headLen of MAP_HEAD_LENGTHS) {
      // Viewed again each time: #itemStartsAt moves the source's window.
      const h = this.#src.view(p, headLen + TYPE_KEY.byteLength);
      if (h.byteLength < headLen + TYPE_KEY.byteLength) continue;
      if (TYPE_KEY.every((b, k) => h[headLen + k] === b) && this.#itemStartsAt(p, headLen)) return true;
    }
    return false;
  }

  /** Whether a complete item of a known type starts at `c` (for resynchronisation). */
  #itemStartsAt(c: number, headLen: number): boolean {
    const h = this.#src.view(c, CHUNK_HEAD_PEEK);
    const b = h[0];
    const want = headLen === 1 ? b !== undefined && b >= 0xa1 && b <= 0xb7 : b === [0, 0, 0xb8, 0xb9, 0, 0xba][headLen];
    if (!want) return false;
    const chunk = chunkData(h, 0, h.byteLength);
    if (chunk !== undefined) {
      if (!chunk.last) return false;
      const start = c + chunk.start;
      const end = c + chunk.declaredEnd;
      if (chunk.deflated) return chunk.size <= DEFLATED_CHUNK_MAX && chunk.declaredEnd - chunk.start <= DEFLATED_CHUNK_MAX;
      return start === end || this.#plausibleRecord(this.#fileWalk, start, Math.min(end, this.#src.size));
    }
    try {
      const got = this.#complete(c, RESYNC_ITEM_MAX);
      if (got.kind !== "item") return false;
      const v = this.#decoder.decode(got.bytes) as Obj;
      if (typeof v !== "object" || v === null || !KNOWN_ITEM_TYPES.has(v.type as string)) return false;
      this.#parseItem(v, "candidate", c, got.end, (x) => x);
      return true;
    } catch {
      return false;
    }
  }
}

type Complete = { kind: "item"; end: number; bytes: Uint8Array } | { kind: "cut" } | { kind: "too-large" };

/**
 * What a damaged DEFLATE stream gives before its damage: the output of its longest prefix that
 * inflates (as a cut stream). Bisection: a prefix that inflates has only shorter prefixes that do
 * too. ~log2(length) inflations, paid only for a damaged chunk.
 */
function inflatedPrefix(z: Uint8Array, maxOutput: number): Uint8Array {
  let good: Uint8Array = new Uint8Array(0);
  let lo = 0;
  let hi = z.byteLength - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    try {
      good = inflateRaw(z.subarray(0, mid), maxOutput, true);
      lo = mid + 1;
    } catch {
      hi = mid - 1;
    }
  }
  return good;
}

/**
 * Where a walk reads records: the file itself, or a compressed chunk's records inflated into
 * memory; `item` is then that chunk's place in the file, which the records' offsets and any
 * damage found among them point at.
 */
interface WalkSource {
  src: CaptureSource;
  item?: { pos: number; end: number };
}

/** BOOTTIME → epoch with a fixed offset (each clock item gets its own function). */
function epochFrom(offsetNs: bigint): (bootNs: bigint) => bigint {
  return (bootNs) => bootNs + offsetNs;
}

// ---------------------------------------------------------------------------------------
// Records chunks: {"type": "records", "data": <bytes>}, also when cut short

const TE = new TextEncoder();
const KEY_TYPE = TE.encode("type");
const KEY_DATA = TE.encode("data");
const VAL_RECORDS = TE.encode("records");
const VAL_RECORDS_DEFLATE = TE.encode("records-deflate");
const KEY_SIZE = TE.encode("size");

interface Head {
  major: number;
  /** Argument (length for strings); may exceed the file for a corrupt head */
  arg: number;
  /** Offset after the head */
  next: number;
}

/** Head of the data item at `p`, or undefined if incomplete or indefinite/reserved. */
function readHead(bytes: Uint8Array, p: number, end: number): Head | undefined {
  if (p >= end) return undefined;
  const ib = bytes[p]!;
  const ai = ib & 0x1f;
  if (ai < 24) return { major: ib >> 5, arg: ai, next: p + 1 };
  if (ai > 27) return undefined;
  const n = 1 << (ai - 24);
  if (p + 1 + n > end) return undefined;
  let arg = 0;
  for (let k = 0; k < n; k++) arg = arg * 256 + bytes[p + 1 + k]!;
  return { major: ib >> 5, arg, next: p + 1 + n };
}

function textAt(bytes: Uint8Array, h: Head, end: number, want: Uint8Array): boolean {
  if (h.major !== 3 || h.arg !== want.byteLength || h.next + h.arg > end) return false;
  for (let k = 0; k < want.byteLength; k++) if (bytes[h.next + k] !== want[k]) return false;
  return true;
}

/** Where a chunk's byte string is (ChunkData.start, declaredEnd: relative to the item's bytes). */
interface ChunkData {
  start: number;
  declaredEnd: number;
  /** No map entry follows the byte string: the item ends where its data does */
  last: boolean;
  /** A records-deflate chunk: its data inflates to `size` bytes of records (format.ts) */
  deflated: boolean;
  size: number;
}

/**
 * Where the records of the chunk item at `pos` are, if it is one: a definite map whose "type"
 * is "records" or "records-deflate" and, after it, "data" is a definite byte string (and, for
 * records-deflate, "size" an unsigned integer before it). `end` is where the bytes available
 * end; the entries before "data" must lie within them.
 */
function chunkData(bytes: Uint8Array, pos: number, end: number): ChunkData | undefined {
  const m = readHead(bytes, pos, end);
  if (m === undefined || m.major !== 5 || m.arg > 16) return undefined;
  let p = m.next;
  let isChunk = false;
  let deflated = false;
  let size = -1;
  for (let i = 0; i < m.arg; i++) {
    const k = readHead(bytes, p, end);
    if (k === undefined || k.major !== 3 || k.next + k.arg > end) return undefined;
    const isType = textAt(bytes, k, end, KEY_TYPE);
    const isData = textAt(bytes, k, end, KEY_DATA);
    const isSize = textAt(bytes, k, end, KEY_SIZE);
    p = k.next + k.arg;
    if (isType) {
      const v = readHead(bytes, p, end);
      if (v === undefined) return undefined;
      deflated = textAt(bytes, v, end, VAL_RECORDS_DEFLATE);
      if (!deflated && !textAt(bytes, v, end, VAL_RECORDS)) return undefined;
      isChunk = true;
      p = v.next + v.arg;
    } else if (isSize && isChunk && deflated) {
      const v = readHead(bytes, p, end);
      if (v === undefined || v.major !== 0) return undefined;
      size = v.arg;
      p = v.next;
    } else if (isData && isChunk) {
      const v = readHead(bytes, p, end);
      if (v === undefined || v.major !== 2) return undefined;
      if (deflated && size < 0) return undefined;
      // declaredEnd may lie past `end` (a cut or damaged chunk).
      return { start: v.next, declaredEnd: v.next + v.arg, last: i === m.arg - 1, deflated, size };
    } else {
      let e: number;
      try {
        e = itemEnd(bytes.subarray(0, end), p);
      } catch {
        return undefined;
      }
      if (e < 0) return undefined;
      p = e;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// CBOR item boundaries (RFC 8949 §3)

class Malformed extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

/** Container being scanned: items still expected, or -1 for indefinite length (until break). */
interface Open {
  remaining: number;
  /** For indefinite-length strings: chunks must be definite strings of this major type. */
  chunkMajor: number | undefined;
}

/** End offset of the CBOR item starting at `start`, or -1 if the bytes end inside it. */
export function itemEnd(bytes: Uint8Array, start: number): number {
  const len = bytes.byteLength;
  const stack: Open[] = [];
  let pos = start;
  for (;;) {
    if (pos >= len) return -1;
    const at = pos;
    const ib = bytes[pos++]!;
    const major = ib >> 5;
    const ai = ib & 0x1f;
    const top = stack[stack.length - 1];
    if (top?.chunkMajor !== undefined && ib !== 0xff && (major !== top.chunkMajor || ai === 31)) {
      throw new Malformed("indefinite-length string has a chunk of another type", at);
    }
    let done = false;
    if (ib === 0xff) {
      if (top === undefined || top.remaining !== -1) throw new Malformed("unexpected break byte 0xff", at);
      stack.pop();
      done = true;
    } else {
      let arg = ai;
      if (ai >= 24 && ai <= 27) {
        const n = 1 << (ai - 24);
        if (pos + n > len) return -1;
        arg = 0;
        // Up to 8 bytes; values past 2^53 lose precision, but any such length exceeds the file.
        for (let k = 0; k < n; k++) arg = arg * 256 + bytes[pos + k]!;
        pos += n;
      } else if (ai >= 28 && ai <= 30) {
        throw new Malformed(`reserved additional information ${ai}`, at);
      }
      const indefinite = ai === 31;
      switch (major) {
        case 0:
        case 1:
          if (indefinite) throw new Malformed("indefinite length on an integer", at);
          done = true;
          break;
        case 2:
        case 3:
          if (indefinite) {
            stack.push({ remaining: -1, chunkMajor: major });
          } else {
            if (arg > len - pos) return -1;
            pos += arg;
            done = true;
          }
          break;
        case 4:
        case 5: {
          if (indefinite) {
            stack.push({ remaining: -1, chunkMajor: undefined });
            break;
          }
          const count = major === 5 ? arg * 2 : arg;
          if (count === 0) {
            done = true;
          } else {
            // Every item takes at least one byte: more items than bytes left cannot complete.
            if (count > len - pos) return -1;
            stack.push({ remaining: count, chunkMajor: undefined });
          }
          break;
        }
        case 6:
          if (indefinite) throw new Malformed("indefinite length on a tag", at);
          // The tagged item follows; it completes the tag.
          break;
        default: // 7: simple values and floats; the argument bytes were the payload
          if (indefinite) throw new Malformed("unexpected break byte 0xff", at);
          done = true;
      }
      if (stack.length > MAX_DEPTH) throw new Malformed(`nesting deeper than ${MAX_DEPTH}`, at);
    }
    if (!done) continue;
    // One item finished: account for it in the enclosing containers.
    for (;;) {
      const open = stack[stack.length - 1];
      if (open === undefined) return pos;
      if (open.remaining === -1) break;
      open.remaining--;
      if (open.remaining > 0) break;
      stack.pop();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Record shapes

function notCapture(bytes: Uint8Array, why: string): TracerError {
  const kind = sniff(bytes);
  return new TracerError("corrupt_capture", `not a beetrace capture file${kind ? ` (looks like ${kind})` : ""}: ${why}`, { hint: HINT_NOT_CAPTURE });
}

function sniff(b: Uint8Array): string | undefined {
  if (b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) return "an ELF executable";
  if (b[0] === 0x1f && b[1] === 0x8b) return "a gzip file";
  const c = b[0];
  if (c === 0x7b || c === 0x5b) return "JSON";
  return undefined;
}

function bad(problem: string): TracerError {
  return new TracerError("corrupt_capture", `capture is corrupt: ${problem}`, { hint: HINT_DAMAGED });
}

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) throw bad(`${where} is not a map`);
  return v as Obj;
}
function str(o: Obj, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== "string") throw bad(`${where}: '${k}' is not a string`);
  return v;
}
function num(o: Obj, k: string, where: string): number {
  const v = o[k];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw bad(`${where}: '${k}' is not a number`);
}
function big(o: Obj, k: string, where: string): bigint {
  const v = o[k];
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  throw bad(`${where}: '${k}' is not an integer`);
}
function arr(o: Obj, k: string, where: string): unknown[] {
  const v = o[k];
  if (!Array.isArray(v)) throw bad(`${where}: '${k}' is not an array`);
  return v;
}

function parseHeader(v: unknown, bytes: Uint8Array): CaptureHeader {
  if (typeof v !== "object" || v === null || (v as Obj).type !== "header") throw notCapture(bytes, "the first record is not a header");
  const h = v as Obj;
  const format = h.format;
  if (typeof format !== "number" || !Number.isInteger(format) || format < 1) {
    throw new TracerError("corrupt_capture", `capture header has an invalid format version (${String(format)})`, { hint: HINT_DAMAGED });
  }
  if (format < CAPTURE_FORMAT_MIN || format > CAPTURE_FORMAT) {
    throw new TracerError("corrupt_capture", `capture format ${format} is not supported (this beetrace reads formats ${CAPTURE_FORMAT_MIN} to ${CAPTURE_FORMAT})`, {
      hint: format > CAPTURE_FORMAT ? "read it with the beetrace version that wrote it, or a newer one" : "read it with the older beetrace that wrote it",
    });
  }
  const w = "header";
  const records = h.records === undefined ? undefined : parseSchema(h.records, `${w}.records`);
  const tracer = obj(h.tracer, `${w}.tracer`);
  const host = obj(h.host, `${w}.host`);
  const target = obj(h.target, `${w}.target`);
  const clock = obj(h.clock, `${w}.clock`);
  return {
    type: "header",
    format,
    tracer: { name: str(tracer, "name", `${w}.tracer`), version: str(tracer, "version", `${w}.tracer`) },
    createdAt: big(h, "createdAt", w),
    host: { name: str(host, "name", `${w}.host`), arch: str(host, "arch", `${w}.host`), kernel: str(host, "kernel", `${w}.host`) },
    target: {
      pid: num(target, "pid", `${w}.target`),
      exe: str(target, "exe", `${w}.target`),
      goVersion: str(target, "goVersion", `${w}.target`),
      modules: arr(target, "modules", `${w}.target`).map((m, i) => {
        const mo = obj(m, `${w}.target.modules[${i}]`);
        return { path: str(mo, "path", `${w}.target.modules[${i}]`), version: str(mo, "version", `${w}.target.modules[${i}]`) };
      }),
      serviceName: str(target, "serviceName", `${w}.target`),
    },
    clock: {
      realtimeNs: big(clock, "realtimeNs", `${w}.clock`),
      boottimeNs: big(clock, "boottimeNs", `${w}.clock`),
      offsetNs: big(clock, "offsetNs", `${w}.clock`),
    },
    probes: arr(h, "probes", w).map((p, i) => parseProbe(p, `${w}.probes[${i}]`)),
    ...(h.resource === undefined ? {} : { resource: parseResource(h.resource, `${w}.resource`) }),
    ...(records === undefined ? {} : { records }),
  };
}

function parseResource(v: unknown, where: string): Record<string, string | number | boolean> {
  const o = obj(v, where);
  const out: Record<string, string | number | boolean> = {};
  for (const [k, x] of Object.entries(o)) {
    if (typeof x === "string" || typeof x === "boolean" || (typeof x === "number" && Number.isFinite(x))) out[k] = x;
    else if (typeof x === "bigint" && x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER)) out[k] = Number(x);
    else throw bad(`${where}: '${k}' has an unsupported value`);
  }
  return out;
}

/** Record layouts of a format-2 header; checked so a decoder never sees a malformed layout. */
function parseSchema(v: unknown, where: string): RecordSchema {
  const s = obj(v, where);
  if (s.version !== 1) {
    throw new TracerError("corrupt_capture", `capture record layouts version ${String(s.version)} is not supported (this beetrace reads version 1)`, {
      hint: "read it with the beetrace version that wrote it, or a newer one",
    });
  }
  const typesIn = obj(s.types, `${where}.types`);
  const types: Record<string, RecordLayout> = {};
  for (const [tag, lv] of Object.entries(typesIn)) {
    const lw = `${where}.types.${tag.slice(0, 20)}`;
    if (!/^\d{1,5}$/.test(tag) || Number(tag) > 0xffff) throw bad(`${lw}: record type is not a u16`);
    const l = obj(lv, lw);
    const fixed = num(l, "fixed", lw);
    if (!Number.isInteger(fixed) || fixed < 4 || fixed > 0xffff) throw bad(`${lw}: 'fixed' is not a record size`);
    const fieldsIn = obj(l.fields, `${lw}.fields`);
    const fields: Record<string, [number, number]> = {};
    for (const [name, fv] of Object.entries(fieldsIn)) {
      if (!Array.isArray(fv) || fv.length !== 2 || !fv.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffff)) {
        throw bad(`${lw}.fields.${name.slice(0, 40)} is not [offset, size]`);
      }
      fields[name] = [fv[0] as number, fv[1] as number];
    }
    const strings = arr(l, "strings", lw).map((x, i) => {
      if (typeof x !== "string") throw bad(`${lw}.strings[${i}] is not a string`);
      return x;
    });
    types[tag] = { struct: str(l, "struct", lw), fixed, fields, strings };
  }
  // Optional: fields whose offsets were guessed, per probe (their spans get marked when decoded).
  if (s.guessedOffsets === undefined) return { version: 1, types };
  const guessedOffsets: Record<string, string[]> = {};
  for (const [probe, fv] of Object.entries(obj(s.guessedOffsets, `${where}.guessedOffsets`))) {
    if (!Array.isArray(fv) || !fv.every((x) => typeof x === "string")) throw bad(`${where}.guessedOffsets.${probe.slice(0, 40)} is not a list of field names`);
    guessedOffsets[probe] = fv as string[];
  }
  return { version: 1, types, guessedOffsets };
}

function parseClock(r: Obj, where: string): ClockRecord {
  return { type: "clock", realtimeNs: big(r, "realtimeNs", where), boottimeNs: big(r, "boottimeNs", where), offsetNs: big(r, "offsetNs", where) };
}

const SOURCES = new Set(["dwarf", "snapshot", "file", "guess"]);

function parseProbe(v: unknown, where: string): ProbeInfo {
  const p = obj(v, where);
  const attached = p.attached;
  if (typeof attached !== "boolean") throw bad(`${where}: 'attached' is not a boolean`);
  const info: ProbeInfo = {
    id: str(p, "id", where),
    attached,
    offsets: arr(p, "offsets", where).map((o, i) => {
      const ow = `${where}.offsets[${i}]`;
      const oo = obj(o, ow);
      const source = str(oo, "source", ow);
      if (!SOURCES.has(source)) throw bad(`${ow}: unknown offset source '${source}'`);
      return { field: str(oo, "field", ow), offset: num(oo, "offset", ow), source: source as ProbeInfo["offsets"][number]["source"] };
    }),
  };
  if (p.reason !== undefined) info.reason = str(p, "reason", where);
  return info;
}

const KINDS = new Set<SpanKind>(["server", "client", "internal", "producer", "consumer"]);
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

/** One attribute value of a stored span: a primitive, or an array of them (OTel API slices). */
function attrValue(v: unknown): AttrValue | AttrValue[] | undefined {
  if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (Array.isArray(v)) {
    const out: AttrValue[] = [];
    for (const x of v) {
      const e = attrValue(x);
      if (e === undefined || Array.isArray(e)) return undefined;
      out.push(e);
    }
    return out;
  }
  return undefined;
}

function parseAttributes(v: unknown, where: string): SpanAttributes {
  const attributes: SpanAttributes = {};
  for (const [k, x] of Object.entries(obj(v, where))) {
    const a = attrValue(x);
    if (a === undefined) throw bad(`${where}: attribute '${k}' has an unsupported value`);
    attributes[k] = a;
  }
  return attributes;
}

function parseSpan(r: Obj, where: string): SpanRecord {
  const traceId = str(r, "traceId", where);
  const spanId = str(r, "spanId", where);
  if (!TRACE_ID.test(traceId)) throw bad(`${where}: traceId '${traceId.slice(0, 40)}' is not 32 lowercase hex digits`);
  if (!SPAN_ID.test(spanId)) throw bad(`${where}: spanId '${spanId.slice(0, 40)}' is not 16 lowercase hex digits`);
  const kind = str(r, "kind", where);
  if (!KINDS.has(kind as SpanKind)) throw bad(`${where}: unknown span kind '${kind.slice(0, 40)}'`);
  const attributes = parseAttributes(r.attributes, `${where}.attributes`);
  const st = obj(r.status, `${where}.status`);
  const code = str(st, "code", `${where}.status`);
  if (code !== "unset" && code !== "ok" && code !== "error") throw bad(`${where}: unknown status code '${code.slice(0, 40)}'`);
  const scope = obj(r.scope, `${where}.scope`);
  const span: SpanRecord = {
    type: "span",
    traceId,
    spanId,
    name: str(r, "name", where),
    kind: kind as SpanKind,
    startTimeUnixNano: big(r, "startTimeUnixNano", where),
    endTimeUnixNano: big(r, "endTimeUnixNano", where),
    attributes,
    status: st.message === undefined ? { code } : { code, message: str(st, "message", `${where}.status`) },
    scope: { name: str(scope, "name", `${where}.scope`), version: str(scope, "version", `${where}.scope`) },
  };
  if (scope.schemaUrl !== undefined && scope.schemaUrl !== null) span.scope.schemaUrl = str(scope, "schemaUrl", `${where}.scope`);
  if (r.parentSpanId !== undefined && r.parentSpanId !== null) {
    const parent = str(r, "parentSpanId", where);
    if (!SPAN_ID.test(parent)) throw bad(`${where}: parentSpanId '${parent.slice(0, 40)}' is not 16 lowercase hex digits`);
    span.parentSpanId = parent;
  }
  if (r.traceState !== undefined && r.traceState !== null) span.traceState = str(r, "traceState", where);
  if (r.events !== undefined && r.events !== null) {
    span.events = arr(r, "events", where).map((ev, i) => {
      const ew = `${where}.events[${i}]`;
      const e = obj(ev, ew);
      return { name: str(e, "name", ew), timeUnixNano: big(e, "timeUnixNano", ew), attributes: parseAttributes(e.attributes, `${ew}.attributes`) };
    });
  }
  if (r.links !== undefined && r.links !== null) {
    span.links = arr(r, "links", where).map((lv, i) => {
      const lw = `${where}.links[${i}]`;
      const l = obj(lv, lw);
      const traceId = str(l, "traceId", lw);
      const spanId = str(l, "spanId", lw);
      if (!TRACE_ID.test(traceId) || !SPAN_ID.test(spanId)) throw bad(`${lw}: ids are not lowercase hex of 32 and 16 digits`);
      return { traceId, spanId, attributes: parseAttributes(l.attributes, `${lw}.attributes`) };
    });
  }
  return span;
}

const LOSS_KEYS: (keyof LossCounters)[] = ["ringbufFull", "inflightFull", "returnWithoutEntry", "endWithoutStart", "incomplete", "truncatedStrings"];

function parseLosses(v: unknown, where: string): LossCounters {
  const o = obj(v, where);
  const out = {} as LossCounters;
  // Missing counters read as 0 so older files with fewer counters still load.
  for (const k of LOSS_KEYS) out[k] = o[k] === undefined ? 0 : num(o, k, where);
  return out;
}

function parseStats(r: Obj, where: string): StatsRecord {
  return { type: "stats", at: big(r, "at", where), losses: parseLosses(r.losses, `${where}.losses`), spans: num(r, "spans", where) };
}

function parseEnd(r: Obj, where: string): EndRecord {
  const totals = obj(r.totals, `${where}.totals`);
  return {
    type: "end",
    reason: str(r, "reason", where),
    at: big(r, "at", where),
    totals: { spans: num(totals, "spans", `${where}.totals`), losses: parseLosses(totals.losses, `${where}.totals.losses`) },
  };
}
