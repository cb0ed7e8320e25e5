/**
 * @module capture/reader — reads a capture file back, tolerating a cut at any byte.
 *
 * The file is split into CBOR items by a small bounds-checked scanner (RFC 8949 §3: the head
 * of each item gives its length), and only complete items are handed to cbor-x. So a capture
 * cut by SIGKILL, a full disk or a partial copy reads back every complete record, and the
 * incomplete tail is reported as `truncated` with its size, not as an error. Damage that is not
 * at the end (malformed CBOR, records of the wrong shape) is `corrupt_capture`. Record types
 * this reader does not know are skipped and counted, so newer writers can add record types
 * without breaking older readers; incompatible changes bump the header's `format`.
 */
import * as fs from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import type { Attributes, LossCounters, SpanKind } from "../spans/model.ts";
import {
  CAPTURE_FORMAT,
  type CaptureHeader,
  type CaptureRecord,
  type EndRecord,
  type ProbeInfo,
  type SpanRecord,
  type StatsRecord,
  captureDecoder,
} from "./format.ts";

export interface CaptureContents {
  header: CaptureHeader;
  /** Every complete record after the header, in file order */
  records: CaptureRecord[];
  /** The file ends inside a record (writer killed, disk full, partial copy) */
  truncated: boolean;
  /** Size of that incomplete last record (0 when not truncated) */
  trailingBytes: number;
  /** Records of types this version does not know */
  skipped: number;
}

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

export function readCapture(bytes: Uint8Array): CaptureContents {
  if (bytes.byteLength === 0) {
    throw new TracerError("corrupt_capture", "capture file is empty", { hint: "the tracer may have failed before writing its header; check its output" });
  }
  // Every record is a CBOR map (major type 5), so anything else is not one of our files.
  if (bytes[0]! >> 5 !== 5 || sniff(bytes) !== undefined) throw notCapture(bytes, "it does not start with a CBOR map");
  const decoder = captureDecoder();
  const items: { value: unknown; offset: number }[] = [];
  let pos = 0;
  let trailing = 0;
  while (pos < bytes.byteLength) {
    let end: number;
    try {
      end = itemEnd(bytes, pos);
    } catch (e) {
      if (e instanceof Malformed) {
        if (items.length === 0) throw notCapture(bytes, e.message);
        throw new TracerError("corrupt_capture", `capture is corrupt at byte ${e.at}: ${e.message} (after ${items.length} good records)`, { hint: HINT_DAMAGED });
      }
      throw e;
    }
    if (end < 0) {
      trailing = bytes.byteLength - pos;
      break;
    }
    let value: unknown;
    try {
      value = decoder.decode(bytes.subarray(pos, end));
    } catch (e) {
      if (items.length === 0) throw notCapture(bytes, "the first item does not decode");
      const why = e instanceof Error ? e.message : String(e);
      throw new TracerError("corrupt_capture", `capture record at byte ${pos} does not decode: ${why}`, { hint: HINT_DAMAGED });
    }
    items.push({ value, offset: pos });
    pos = end;
  }

  const first = items[0];
  if (first === undefined) {
    throw new TracerError("corrupt_capture", `capture ends inside its header (${bytes.byteLength} bytes, no complete record)`, {
      hint: "the tracer was stopped while writing the header; nothing was captured",
    });
  }
  const header = parseHeader(first.value, bytes);
  const records: CaptureRecord[] = [];
  let skipped = 0;
  for (let i = 1; i < items.length; i++) {
    const { value, offset } = items[i]!;
    const where = `record ${i} (byte ${offset})`;
    const r = obj(value, where);
    switch (r.type) {
      case "span":
        records.push(parseSpan(r, where));
        break;
      case "stats":
        records.push(parseStats(r, where));
        break;
      case "end":
        records.push(parseEnd(r, where));
        break;
      case "header":
        throw bad(`${where} is a second header`);
      default:
        if (typeof r.type !== "string") throw bad(`${where} has no record type`);
        skipped++;
    }
  }
  return { header, records, truncated: trailing > 0, trailingBytes: trailing, skipped };
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
  if (format !== CAPTURE_FORMAT) {
    throw new TracerError("corrupt_capture", `capture format ${format} is not supported (this beetrace reads format ${CAPTURE_FORMAT})`, {
      hint: format > CAPTURE_FORMAT ? "read it with the beetrace version that wrote it, or a newer one" : "read it with the older beetrace that wrote it",
    });
  }
  const w = "header";
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
  };
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
