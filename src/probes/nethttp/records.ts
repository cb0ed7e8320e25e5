/**
 * @module probes/nethttp/records — byte layouts and decoders of the net/http ring-buffer records.
 *
 * The layouts mirror bpf/shared/records.h. They are written here once and checked against the
 * BTF clang emits for that header (tests/unit/probes/records-layout.test.ts), so a change on
 * either side that is not made on the other fails the tests instead of corrupting spans.
 * Decoders never throw: a short or mistagged record is reported as `invalid`.
 */
import type { SpanEnd, SpanStart } from "../../spans/model.ts";
import type { Decoded } from "../probe.ts";

export interface FieldLayout {
  offset: number;
  size: number;
}
export interface RecordLayout {
  /** C struct name in records.h */
  struct: string;
  size: number;
  fields: Readonly<Record<string, FieldLayout>>;
}

/** C enumerators of records.h and their values (checked against BTF). */
export const C_ENUMS = {
  REC_NETHTTP_SERVER_START: 0x0101,
  REC_NETHTTP_SERVER_END: 0x0102,
  REC_NETHTTP_CLIENT_START: 0x0103,
  REC_NETHTTP_CLIENT_END: 0x0104,
  REC_START_F_HAS_PARENT: 1 << 0,
  REC_START_F_PARENT_BY_CTX: 1 << 1,
  REC_START_F_READ_ERROR: 1 << 2,
  NETHTTP_SERVER_F_TLS: 1 << 0,
  NETHTTP_SERVER_F_TLS_KNOWN: 1 << 1,
  NETHTTP_SERVER_END_F_STATUS: 1 << 0,
  NETHTTP_SERVER_END_F_PATTERN: 1 << 1,
  NETHTTP_SERVER_END_F_READ_ERROR: 1 << 2,
  NETHTTP_URL_F_QUERY: 1 << 0,
  NETHTTP_URL_F_USER: 1 << 1,
  NETHTTP_URL_F_PASSWORD: 1 << 2,
  NETHTTP_URL_F_OPAQUE: 1 << 3,
  NETHTTP_CLIENT_END_F_RESPONSE: 1 << 0,
  NETHTTP_CLIENT_END_F_ERROR: 1 << 1,
  NETHTTP_CLIENT_END_F_READ_ERROR: 1 << 2,
} as const;
const E = C_ENUMS;

const f = (offset: number, size: number): FieldLayout => ({ offset, size });

export const START_HDR: RecordLayout = {
  struct: "rec_start_hdr",
  size: 64,
  fields: {
    type: f(0, 4),
    flags: f(4, 4),
    pid: f(8, 4),
    tid: f(12, 4),
    start_ns: f(16, 8),
    goroutine: f(24, 8),
    trace_id: f(32, 16),
    span_id: f(48, 8),
    parent_span_id: f(56, 8),
  },
};

export const END_HDR: RecordLayout = {
  struct: "rec_end_hdr",
  size: 24,
  fields: { type: f(0, 4), flags: f(4, 4), end_ns: f(8, 8), span_id: f(16, 8) },
};

export const SERVER_START: RecordLayout = {
  struct: "rec_nethttp_server_start",
  size: 552,
  fields: {
    h: f(0, 64),
    method_len: f(64, 4),
    path_len: f(68, 4),
    host_len: f(72, 4),
    remote_len: f(76, 4),
    proto_major: f(80, 2),
    proto_minor: f(82, 2),
    req_flags: f(84, 4),
    method: f(88, 16),
    path: f(104, 256),
    host: f(360, 128),
    remote: f(488, 64),
  },
};

export const SERVER_END: RecordLayout = {
  struct: "rec_nethttp_server_end",
  size: 160,
  fields: { h: f(0, 24), status: f(24, 4), pattern_len: f(28, 4), pattern: f(32, 128) },
};

export const CLIENT_START: RecordLayout = {
  struct: "rec_nethttp_client_start",
  size: 624,
  fields: {
    h: f(0, 64),
    method_len: f(64, 4),
    scheme_len: f(68, 4),
    url_host_len: f(72, 4),
    path_len: f(76, 4),
    req_host_len: f(80, 4),
    url_flags: f(84, 4),
    method: f(88, 16),
    scheme: f(104, 8),
    url_host: f(112, 128),
    path: f(240, 256),
    req_host: f(496, 128),
  },
};

export const CLIENT_END: RecordLayout = {
  struct: "rec_nethttp_client_end",
  size: 40,
  fields: { h: f(0, 24), status: f(24, 4), _pad0: f(28, 4), err_itab: f(32, 8) },
};

export const RECORD_LAYOUTS: readonly RecordLayout[] = [START_HDR, END_HDR, SERVER_START, SERVER_END, CLIENT_START, CLIENT_END];

const utf8 = new TextDecoder("utf-8", { fatal: false });

function at(l: RecordLayout, name: string): FieldLayout {
  const fl = l.fields[name];
  if (fl === undefined) throw new Error(`BUG: ${l.struct} has no field ${name}`); // static tables; unreachable
  return fl;
}

/** Reads records of one layout at `base`; all offsets are inside the checked length. */
class RecordView {
  constructor(
    private readonly v: DataView,
    private readonly base: number,
    private readonly l: RecordLayout,
  ) {}
  u16(name: string): number {
    return this.v.getUint16(this.base + at(this.l, name).offset, true);
  }
  u32(name: string): number {
    return this.v.getUint32(this.base + at(this.l, name).offset, true);
  }
  u64(name: string): bigint {
    return this.v.getBigUint64(this.base + at(this.l, name).offset, true);
  }
  hex(name: string): string {
    const fl = at(this.l, name);
    let s = "";
    for (let i = 0; i < fl.size; i++) s += this.v.getUint8(this.base + fl.offset + i).toString(16).padStart(2, "0");
    return s;
  }
  /** The string in buffer `name` whose real length is in `<name>_len` (or `lenName`). */
  str(name: string, lenName = `${name}_len`): { text: string; truncated: boolean } {
    const fl = at(this.l, name);
    const len = this.u32(lenName);
    const n = Math.min(len, fl.size);
    const bytes = new Uint8Array(this.v.buffer, this.v.byteOffset + this.base + fl.offset, n);
    return { text: utf8.decode(bytes), truncated: len > fl.size };
  }
}

const ZERO_SPAN = "0000000000000000";

/** Reads the decoded strings into `fields` and notes truncated ones in fields.truncated. */
function strings(r: RecordView, fields: Record<string, string | number>, names: Record<string, string>): void {
  const truncated: string[] = [];
  for (const [cName, key] of Object.entries(names)) {
    const s = r.str(cName);
    fields[key] = s.text;
    if (s.truncated) truncated.push(key);
  }
  if (truncated.length > 0) fields.truncated = truncated.join(",");
}

function decodeStartHdr(v: DataView, off: number, probe: string, fields: Record<string, string | number>): SpanStart {
  const h = new RecordView(v, off, START_HDR);
  const flags = h.u32("flags");
  const parent = h.hex("parent_span_id");
  if (flags & E.REC_START_F_PARENT_BY_CTX) fields.parentVia = "context";
  if (flags & E.REC_START_F_READ_ERROR) fields.readError = 1;
  const start: SpanStart = {
    probe,
    traceId: h.hex("trace_id"),
    spanId: h.hex("span_id"),
    monoStartNs: h.u64("start_ns"),
    goroutine: h.u64("goroutine"),
    pid: h.u32("pid"),
    tid: h.u32("tid"),
    fields,
  };
  if (flags & E.REC_START_F_HAS_PARENT && parent !== ZERO_SPAN) start.parentSpanId = parent;
  return start;
}

function decodeEndHdr(v: DataView, off: number, probe: string, fields: Record<string, string | number>): { end: SpanEnd; flags: number } {
  const h = new RecordView(v, off, END_HDR);
  return { end: { probe, spanId: h.hex("span_id"), monoEndNs: h.u64("end_ns"), fields }, flags: h.u32("flags") };
}

/** Common checks: the record is long enough for its layout and carries the expected tag. */
function check(view: DataView, offset: number, length: number, layout: RecordLayout, tag: number): string | undefined {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > view.byteLength) {
    return `${layout.struct}: record [${offset}, +${length}) lies outside its ${view.byteLength}-byte buffer`;
  }
  if (length < 4) return `record of ${length} bytes has no type tag`;
  const type = view.getUint32(offset, true);
  if (type !== tag) return `${layout.struct}: expected tag 0x${tag.toString(16)}, got 0x${type.toString(16)}`;
  if (length < layout.size) return `${layout.struct}: record is ${length} bytes, needs ${layout.size}`;
  return undefined;
}

export function decodeServerStart(view: DataView, offset: number, length: number, probe: string): Decoded {
  const bad = check(view, offset, length, SERVER_START, E.REC_NETHTTP_SERVER_START);
  if (bad) return { kind: "invalid", reason: bad };
  const r = new RecordView(view, offset, SERVER_START);
  const fields: Record<string, string | number> = {
    protoMajor: r.u16("proto_major"),
    protoMinor: r.u16("proto_minor"),
  };
  const reqFlags = r.u32("req_flags");
  if (reqFlags & E.NETHTTP_SERVER_F_TLS_KNOWN) fields.tls = reqFlags & E.NETHTTP_SERVER_F_TLS ? 1 : 0;
  strings(r, fields, { method: "method", path: "path", host: "host", remote: "remoteAddr" });
  return { kind: "start", start: decodeStartHdr(view, offset, probe, fields) };
}

export function decodeServerEnd(view: DataView, offset: number, length: number, probe: string): Decoded {
  const bad = check(view, offset, length, SERVER_END, E.REC_NETHTTP_SERVER_END);
  if (bad) return { kind: "invalid", reason: bad };
  const r = new RecordView(view, offset, SERVER_END);
  const fields: Record<string, string | number> = {};
  const { end, flags } = decodeEndHdr(view, offset, probe, fields);
  if (flags & E.NETHTTP_SERVER_END_F_STATUS) fields.status = r.u32("status");
  if (flags & E.NETHTTP_SERVER_END_F_PATTERN) strings(r, fields, { pattern: "pattern" });
  if (flags & E.NETHTTP_SERVER_END_F_READ_ERROR) fields.readError = 1;
  return { kind: "end", end };
}

export function decodeClientStart(view: DataView, offset: number, length: number, probe: string): Decoded {
  const bad = check(view, offset, length, CLIENT_START, E.REC_NETHTTP_CLIENT_START);
  if (bad) return { kind: "invalid", reason: bad };
  const r = new RecordView(view, offset, CLIENT_START);
  const urlFlags = r.u32("url_flags");
  const fields: Record<string, string | number> = {
    hasQuery: urlFlags & E.NETHTTP_URL_F_QUERY ? 1 : 0,
    hasUser: urlFlags & E.NETHTTP_URL_F_USER ? 1 : 0,
    hasPassword: urlFlags & E.NETHTTP_URL_F_PASSWORD ? 1 : 0,
    opaque: urlFlags & E.NETHTTP_URL_F_OPAQUE ? 1 : 0,
  };
  strings(r, fields, { method: "method", scheme: "scheme", url_host: "urlHost", path: "path", req_host: "reqHost" });
  return { kind: "start", start: decodeStartHdr(view, offset, probe, fields) };
}

export function decodeClientEnd(view: DataView, offset: number, length: number, probe: string): Decoded {
  const bad = check(view, offset, length, CLIENT_END, E.REC_NETHTTP_CLIENT_END);
  if (bad) return { kind: "invalid", reason: bad };
  const r = new RecordView(view, offset, CLIENT_END);
  const fields: Record<string, string | number> = {};
  const { end, flags } = decodeEndHdr(view, offset, probe, fields);
  if (flags & E.NETHTTP_CLIENT_END_F_RESPONSE) fields.status = r.u32("status");
  if (flags & E.NETHTTP_CLIENT_END_F_ERROR) fields.errorItab = "0x" + r.u64("err_itab").toString(16);
  if (flags & E.NETHTTP_CLIENT_END_F_READ_ERROR) fields.readError = 1;
  return { kind: "end", end };
}
