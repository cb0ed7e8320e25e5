/**
 * @module capture/reader — reads a capture file back, tolerating a cut at any byte.
 *
 * The file is split into CBOR items by a small bounds-checked scanner (RFC 8949 §3: the head
 * of each item gives its length), and only complete items are handed to cbor-x. So a capture
 * cut by SIGKILL, a full disk or a partial copy reads back every complete record, and the
 * incomplete tail is reported as `truncated` with its size, not as an error. When that tail is
 * a format-2 `records` chunk, its complete span records are read too: the byte string's head
 * is complete, and the records in it are walked by their own size fields (bpf/shared/span.h).
 * Damage that is not at the end (malformed CBOR, items of the wrong shape) is
 * `corrupt_capture`; span records that do not decode (unknown type, bad size or contents) are
 * counted as `invalid`, never fatal. Item types this reader does not know are skipped and
 * counted, so newer writers can add item types without breaking older readers; incompatible
 * changes bump the header's `format`.
 *
 * Streaming: CaptureScanner.items() and decodeRecords() yield one item at a time (raw records
 * are views into the file's bytes, not copies); readCapture() collects them for callers that
 * want everything at once.
 */
import * as fs from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import type { Attributes, LossCounters, SpanKind } from "../spans/model.ts";
import { type RecordLayout, type RecordSchema, SpanDecoder, recordSize } from "../probes/decode.ts";
import {
  CAPTURE_FORMAT,
  CAPTURE_FORMAT_MIN,
  type CaptureHeader,
  type CaptureRecord,
  type ClockRecord,
  type EndRecord,
  type ProbeInfo,
  type SpanRecord,
  type StatsRecord,
  captureDecoder,
} from "./format.ts";

export interface CaptureContents {
  header: CaptureHeader;
  /** Every complete record after the header, in file order (format-2 span records decoded) */
  records: CaptureRecord[];
  /** The file ends inside an item (writer killed, disk full, partial copy) */
  truncated: boolean;
  /** Bytes of that incomplete tail not read back (0 when not truncated) */
  trailingBytes: number;
  /** Items of types this version does not know */
  skipped: number;
  /** Span records that could not be decoded (unknown record type, damaged record) */
  invalid: number;
}

/** A format-2 span record as stored, with the clock that converts its BOOTTIME stamps. */
export interface RawRecord {
  type: "raw";
  /** The record's bytes (a view into the file's bytes) */
  bytes: Uint8Array;
  /** BOOTTIME ns → epoch ns with the clock item in force for this record's chunk */
  toEpoch: (bootNs: bigint) => bigint;
  /** Byte offset of the record in the file */
  offset: number;
}

export type CaptureItem = CaptureRecord | RawRecord;

const HINT_DAMAGED = "the capture file is damaged; records before the damage can be recovered from a copy cut at that offset";
const HINT_NOT_CAPTURE = "pass a file written by 'beetrace run/attach --out FILE'";
/** Deeper nesting than this is not something the writer produces (RFC 8949 sets no limit). */
const MAX_DEPTH = 64;

export function readCaptureFile(path: string): CaptureContents {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw fromSystemError(e, `read capture ${path}`);
  }
  try {
    return readCapture(bytes);
  } catch (e) {
    if (e instanceof TracerError) throw e.withContext(path);
    throw e;
  }
}

/** The whole file at once, span records decoded (see decodeRecords). */
export function readCapture(bytes: Uint8Array): CaptureContents {
  const scanner = new CaptureScanner(bytes);
  const decoder = new SpanDecoder(scanner.header.records);
  const records = [...decodeRecords(scanner, decoder)];
  return {
    header: scanner.header,
    records,
    truncated: scanner.truncated,
    trailingBytes: scanner.trailingBytes,
    skipped: scanner.skipped,
    invalid: scanner.invalid + decoder.invalid,
  };
}

/**
 * Items in file order with format-2 raw records turned into span records by `decoder` (a
 * record it cannot decode is counted in decoder.invalid and left out).
 */
export function* decodeRecords(scanner: CaptureScanner, decoder = new SpanDecoder(scanner.header.records)): Generator<CaptureRecord> {
  for (const it of scanner.items()) {
    if (it.type !== "raw") {
      yield it;
      continue;
    }
    const span = decoder.decode(it.bytes, it.toEpoch);
    if (span !== undefined) yield { type: "span", ...span };
  }
}

/**
 * Walks a capture's items. The constructor reads the header (throwing corrupt_capture when the
 * bytes are not a capture); items() yields the rest, after which truncated, trailingBytes,
 * skipped and invalid describe the file. Raw records are views into `bytes` (valid as long as
 * the caller keeps them; copy to keep one without the file).
 */
export class CaptureScanner {
  readonly header: CaptureHeader;
  truncated = false;
  trailingBytes = 0;
  skipped = 0;
  /** Damaged record framing inside records chunks (each damaged chunk rest counts once) */
  invalid = 0;
  readonly #bytes: Uint8Array;
  readonly #decoder = captureDecoder();
  readonly #headerEnd: number;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    if (bytes.byteLength === 0) {
      throw new TracerError("corrupt_capture", "capture file is empty", { hint: "the tracer may have failed before writing its header; check its output" });
    }
    // Every item is a CBOR map (major type 5), so anything else is not one of our files.
    if (bytes[0]! >> 5 !== 5 || sniff(bytes) !== undefined) throw notCapture(bytes, "it does not start with a CBOR map");
    let end: number;
    try {
      end = itemEnd(bytes, 0);
    } catch (e) {
      if (e instanceof Malformed) throw notCapture(bytes, e.message);
      throw e;
    }
    if (end < 0) {
      throw new TracerError("corrupt_capture", `capture ends inside its header (${bytes.byteLength} bytes, no complete record)`, {
        hint: "the tracer was stopped while writing the header; nothing was captured",
      });
    }
    let value: unknown;
    try {
      value = this.#decoder.decode(bytes.subarray(0, end));
    } catch {
      throw notCapture(bytes, "the first item does not decode");
    }
    this.header = parseHeader(value, bytes);
    this.#headerEnd = end;
  }

  *items(): Generator<CaptureItem> {
    const bytes = this.#bytes;
    // A second walk starts the counts over.
    this.truncated = false;
    this.trailingBytes = 0;
    this.skipped = 0;
    this.invalid = 0;
    let toEpoch = epochFrom(this.header.clock.offsetNs);
    let pos = this.#headerEnd;
    for (let i = 1; pos < bytes.byteLength; i++) {
      let end: number;
      try {
        end = itemEnd(bytes, pos);
      } catch (e) {
        if (e instanceof Malformed) {
          throw new TracerError("corrupt_capture", `capture is corrupt at byte ${e.at}: ${e.message} (after ${i} good records)`, { hint: HINT_DAMAGED });
        }
        throw e;
      }
      if (end < 0) {
        // The file ends inside this item. A records chunk still gives its complete records.
        let readTo = pos;
        const data = chunkData(bytes, pos, bytes.byteLength);
        if (data !== undefined) {
          for (const r of this.#walk(data.start, data.end, toEpoch, true)) {
            readTo = r.offset + r.bytes.byteLength;
            yield r;
          }
        }
        this.truncated = true;
        this.trailingBytes = bytes.byteLength - readTo;
        return;
      }
      const where = `record ${i} (byte ${pos})`;
      const data = chunkData(bytes, pos, end);
      if (data !== undefined) {
        yield* this.#walk(data.start, data.end, toEpoch, false);
        pos = end;
        continue;
      }
      let value: unknown;
      try {
        value = this.#decoder.decode(bytes.subarray(pos, end));
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new TracerError("corrupt_capture", `capture record at byte ${pos} does not decode: ${why}`, { hint: HINT_DAMAGED });
      }
      const r = obj(value, where);
      switch (r.type) {
        case "span":
          yield parseSpan(r, where);
          break;
        case "stats":
          yield parseStats(r, where);
          break;
        case "end":
          yield parseEnd(r, where);
          break;
        case "clock": {
          const c = parseClock(r, where);
          toEpoch = epochFrom(c.offsetNs);
          yield c;
          break;
        }
        case "records": {
          // A chunk in a shape our writer does not produce (e.g. keys in another order).
          if (!(r.data instanceof Uint8Array)) throw bad(`${where}: 'data' is not a byte string`);
          const start = pos + indexOfSub(bytes.subarray(pos, end), r.data);
          if (start >= pos) yield* this.#walk(start, start + r.data.byteLength, toEpoch, false);
          else yield* walkDetached(r.data, pos, toEpoch, this);
          break;
        }
        case "header":
          throw bad(`${where} is a second header`);
        default:
          if (typeof r.type !== "string") throw bad(`${where} has no record type`);
          this.skipped++;
      }
      pos = end;
    }
  }

  /** Records in bytes [start, end). `cut`: the chunk is incomplete, a short last record is the tail. */
  *#walk(start: number, end: number, toEpoch: (b: bigint) => bigint, cut: boolean): Generator<RawRecord> {
    const bytes = this.#bytes;
    let p = start;
    while (p < end) {
      const size = recordSize(bytes, p);
      if (size === 0 || p + size > end) {
        // Short at the end of a cut chunk: the truncated tail. Elsewhere: damaged framing,
        // and nothing after it in this chunk can be trusted.
        if (!cut || (size === 0 && end - p >= 4)) this.invalid++;
        return;
      }
      yield { type: "raw", bytes: bytes.subarray(p, p + size), toEpoch, offset: p };
      p += size;
    }
  }
}

/** BOOTTIME → epoch with a fixed offset (each clock item gets its own function). */
function epochFrom(offsetNs: bigint): (bootNs: bigint) => bigint {
  return (bootNs) => bootNs + offsetNs;
}

/** Records of a chunk whose bytes cbor-x copied (not located in the file): offsets are the item's. */
function* walkDetached(data: Uint8Array, at: number, toEpoch: (b: bigint) => bigint, s: CaptureScanner): Generator<RawRecord> {
  let p = 0;
  while (p < data.byteLength) {
    const size = recordSize(data, p);
    if (size === 0 || p + size > data.byteLength) {
      s.invalid++;
      return;
    }
    yield { type: "raw", bytes: data.subarray(p, p + size), toEpoch, offset: at };
    p += size;
  }
}

function indexOfSub(hay: Uint8Array, needle: Uint8Array): number {
  // cbor-x may return a view into the decoded bytes; then its offset locates the data.
  if (needle.buffer === hay.buffer && needle.byteOffset >= hay.byteOffset && needle.byteOffset + needle.byteLength <= hay.byteOffset + hay.byteLength) {
    return needle.byteOffset - hay.byteOffset;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Records chunks: {"type": "records", "data": <bytes>}, also when cut short

const TE = new TextEncoder();
const KEY_TYPE = TE.encode("type");
const KEY_DATA = TE.encode("data");
const VAL_RECORDS = TE.encode("records");

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

/**
 * Where the records of the chunk item at `pos` are, if it is one: a definite map whose "type"
 * is "records" and, after it, "data" is a definite byte string. `end` is the item's end, or the
 * end of the file for a cut item (the data then ends where the file does).
 */
function chunkData(bytes: Uint8Array, pos: number, end: number): { start: number; end: number } | undefined {
  const m = readHead(bytes, pos, end);
  if (m === undefined || m.major !== 5 || m.arg > 16) return undefined;
  let p = m.next;
  let isChunk = false;
  for (let i = 0; i < m.arg; i++) {
    const k = readHead(bytes, p, end);
    if (k === undefined || k.major !== 3 || k.next + k.arg > end) return undefined;
    const isType = textAt(bytes, k, end, KEY_TYPE);
    const isData = textAt(bytes, k, end, KEY_DATA);
    p = k.next + k.arg;
    if (isType) {
      const v = readHead(bytes, p, end);
      if (v === undefined || !textAt(bytes, v, end, VAL_RECORDS)) return undefined;
      isChunk = true;
      p = v.next + v.arg;
    } else if (isData && isChunk) {
      const v = readHead(bytes, p, end);
      if (v === undefined || v.major !== 2) return undefined;
      return { start: v.next, end: Math.min(v.next + v.arg, end) };
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
  return { version: 1, types };
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

function parseSpan(r: Obj, where: string): SpanRecord {
  const traceId = str(r, "traceId", where);
  const spanId = str(r, "spanId", where);
  if (!TRACE_ID.test(traceId)) throw bad(`${where}: traceId '${traceId.slice(0, 40)}' is not 32 lowercase hex digits`);
  if (!SPAN_ID.test(spanId)) throw bad(`${where}: spanId '${spanId.slice(0, 40)}' is not 16 lowercase hex digits`);
  const kind = str(r, "kind", where);
  if (!KINDS.has(kind as SpanKind)) throw bad(`${where}: unknown span kind '${kind.slice(0, 40)}'`);
  const attrsIn = obj(r.attributes, `${where}.attributes`);
  const attributes: Attributes = {};
  for (const [k, v] of Object.entries(attrsIn)) {
    if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) attributes[k] = v;
    else if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) attributes[k] = Number(v);
    else throw bad(`${where}: attribute '${k}' has an unsupported value`);
  }
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
  if (r.parentSpanId !== undefined && r.parentSpanId !== null) {
    const parent = str(r, "parentSpanId", where);
    if (!SPAN_ID.test(parent)) throw bad(`${where}: parentSpanId '${parent.slice(0, 40)}' is not 16 lowercase hex digits`);
    span.parentSpanId = parent;
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
