/**
 * @module export/protobuf — OTLP ExportTraceServiceRequest protobuf written straight from our
 * spans, for the live exporter's hot path.
 *
 * Why not only @opentelemetry/otlp-transformer: it encodes SDK ReadableSpan objects, so every
 * span was first turned into one (closures, [seconds, nanos] times from BigInt division, a
 * TraceState object) and then measured by a size-estimating pass before the real one: ~10 µs a
 * span here (bench/pipeline.bench.ts, "otlp"), most of the tracer's CPU when streaming. This
 * writer emits exactly the bytes its serializer emits for the same spans — the same fields, in
 * the same order, with the same defaults (opentelemetry-proto trace.proto / common.proto;
 * otlp-transformer's trace-serializer and common-serializer) — which tests/unit/export/
 * protobuf.test.ts checks byte for byte against it on a golden set. otlp-transformer remains the
 * encoder of OTLP/JSON and the reference for this one.
 */
import { TraceState } from "@opentelemetry/core";
import type { AttrValue, SpanAttributes, Span } from "../spans/model.ts";

/** OTLP SpanKind (trace.proto): INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5. */
const KIND: Record<Span["kind"], number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
/** OTLP Status.StatusCode: UNSET 0, OK 1, ERROR 2. */
const STATUS: Record<Span["status"]["code"], number> = { unset: 0, ok: 1, error: 2 };
/**
 * Span.flags (trace.proto SpanFlags): the W3C trace flags (sampled = 1) in bits 0-7, bit 8 "has
 * is_remote", bit 9 "parent is remote". Every span we send is sampled; a server or consumer
 * span's parent is its remote caller.
 */
const FLAGS_NO_PARENT_OR_LOCAL = 0x1 | 0x100;
const FLAGS_REMOTE_PARENT = 0x1 | 0x100 | 0x200;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Writer {
  buf: Uint8Array;
  view: DataView;
  /** buf.length, as a plain field: every write checks it */
  cap: number;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.cap = buf.length;
  }
  /** Makes room for `n` more bytes (the check is inlined at each write; growing is rare). */
  room(n: number): void {
    if (this.pos + n > this.cap) this.grow(n);
  }
  grow(n: number): void {
    let size = this.cap * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.cap = size;
  }
  tag(field: number, wire: number): void {
    this.varint32((field << 3) | wire);
  }
  varint32(v: number): void {
    this.room(5);
    v >>>= 0;
    while (v > 127) {
      this.buf[this.pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  /** A 64-bit varint of an integer Number (negative: 10 bytes, two's complement), as otlp-transformer writes it. */
  varint64(value: number): void {
    if (value >= 0 && value <= 0xffffffff) return this.varint32(value);
    this.room(10);
    let low: number;
    let high: number;
    if (value >= 0) {
      low = value >>> 0;
      high = (value / 4294967296) >>> 0;
    } else {
      const abs = Math.abs(value);
      low = ~(abs >>> 0) >>> 0;
      high = ~((abs / 4294967296) >>> 0) >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 127) {
      this.buf[this.pos++] = (low & 127) | 128;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buf[this.pos++] = low & 127;
  }
  fixed32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
  }
  fixed64(ns: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.pos, ns, true);
    this.pos += 8;
  }
  double(v: number): void {
    this.room(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
  /** bytes[at, at + n) as they are (a loop: cheaper than a native copy for tens of bytes). */
  copy(bytes: Uint8Array, at: number, n: number): void {
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = bytes[at + i]!;
    this.pos = p;
  }
  /** bytes[at, at + n) as a bytes field's value (ids straight from a record). */
  rawBytes(bytes: Uint8Array, at: number, n: number): void {
    this.room(1);
    this.buf[this.pos++] = n; // n is 8 or 16: a one-byte length
    this.copy(bytes, at, n);
  }
  /** Lowercase hex id → its bytes. */
  hexBytes(hex: string): void {
    const n = hex.length >>> 1;
    this.varint32(n);
    this.room(n);
    for (let i = 0; i < n; i++) this.buf[this.pos++] = (HEXVAL[hex.charCodeAt(2 * i)]! << 4) | HEXVAL[hex.charCodeAt(2 * i + 1)]!;
  }
  string(s: string): void {
    const n = s.length;
    // ASCII fast path (keys, methods, paths, addresses): the UTF-8 length is the string's, so the
    // prefix goes first and the characters are copied in one pass; the first non-ASCII
    // character sends the whole string through TextEncoder instead.
    this.room(5 + n);
    const start = this.pos;
    this.varint32(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return this.#utf8(s, start);
      buf[p++] = c;
    }
    this.pos = p;
  }
  #utf8(s: string, start: number): void {
    this.pos = start;
    const bytes = UTF8.encode(s);
    this.varint32(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
  /** Starts a length-delimited field's body; returns the position to pass to end(). */
  begin(): number {
    this.room(1);
    return this.pos++;
  }
  /** Writes the body's length at `start` (a minimal varint, shifting the body when it needs more than a byte). */
  end(start: number): void {
    const len = this.pos - start - 1;
    let size = 1;
    for (let v = len >>> 7; v > 0; v >>>= 7) size++;
    if (size > 1) {
      this.room(size - 1);
      this.buf.copyWithin(start + size, start + 1, this.pos);
      this.pos += size - 1;
    }
    let v = len;
    let p = start;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

const UTF8 = new TextEncoder();
/** The encoder's working buffer, reused by every request (the result is a copy of its used part). */
let scratch: Uint8Array = new Uint8Array(1 << 16);
/** '0'-'9', 'a'-'f', 'A'-'F' → their value (ids are validated lowercase hex before they get here). */
const HEXVAL = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) HEXVAL[97 + i] = HEXVAL[65 + i] = 10 + i;

function anyValue(w: Writer, value: AttrValue | readonly AttrValue[]): void {
  if (typeof value === "string") {
    w.tag(1, WIRE_LEN);
    w.string(value);
  } else if (typeof value === "boolean") {
    w.tag(2, WIRE_VARINT);
    w.varint32(value ? 1 : 0);
  } else if (typeof value === "number") {
    if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
      w.tag(3, WIRE_VARINT);
      w.varint64(value);
    } else {
      w.tag(4, WIRE_FIXED64);
      w.double(value);
    }
  } else if (Array.isArray(value)) {
    w.tag(5, WIRE_LEN);
    const a = w.begin();
    for (const item of value) {
      w.tag(1, WIRE_LEN);
      const s = w.begin();
      anyValue(w, item);
      w.end(s);
    }
    w.end(a);
  }
}

/**
 * KeyValue.key (field 1) with its tag and length, encoded once per distinct key: attribute keys
 * come from a small fixed set (semconv names), and writing them was a third of the encoder's time.
 * Bounded: past KEY_CACHE_MAX distinct keys (OTel API attributes chosen by the application)
 * the cache starts over.
 */
const KEY_CACHE = new Map<string, Uint8Array>();
const KEY_CACHE_MAX = 4096;
const keyWriter = new Writer(new Uint8Array(256));
function keyBytes(key: string): Uint8Array {
  let bytes = KEY_CACHE.get(key);
  if (bytes === undefined) {
    keyWriter.pos = 0;
    keyWriter.tag(1, WIRE_LEN);
    keyWriter.string(key);
    bytes = keyWriter.buf.slice(0, keyWriter.pos);
    if (KEY_CACHE.size >= KEY_CACHE_MAX) KEY_CACHE.clear();
    KEY_CACHE.set(key, bytes);
  }
  return bytes;
}

function attributes(w: Writer, attrs: SpanAttributes, field: number): void {
  // Own enumerable keys in insertion order, as the SDK serializer's Object.keys walk.
  const keys = Object.keys(attrs);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    w.tag(field, WIRE_LEN);
    const kv = w.begin();
    const encodedKey = keyBytes(key); // its tag, length and bytes, encoded once
    w.copy(encodedKey, 0, encodedKey.length);
    w.tag(2, WIRE_LEN);
    const v = w.begin();
    anyValue(w, attrs[key]!);
    w.end(v);
    w.end(kv);
  }
}

/**
 * Where spans' ids are when they were decoded with `idsAsBytes` (probes/probe.ts DecodeContext):
 * span i's record starts at bytes[at[i]] (at[i] < 0: span i has hex ids), and a record's header
 * (struct rec_span) has the trace id, span id and parent span id at these offsets. The ids are
 * copied as bytes: no hex strings either way.
 */
export interface RecordIds {
  bytes: Uint8Array;
  at: readonly number[];
  traceAt: number;
  spanAt: number;
  parentAt: number;
}

function span(w: Writer, s: Span, record: number, ids: RecordIds | undefined): void {
  w.tag(1, WIRE_LEN);
  if (record >= 0) w.rawBytes(ids!.bytes, record + ids!.traceAt, 16);
  else w.hexBytes(s.traceId);
  w.tag(2, WIRE_LEN);
  if (record >= 0) w.rawBytes(ids!.bytes, record + ids!.spanAt, 8);
  else w.hexBytes(s.spanId);
  if (s.traceState !== undefined) {
    // Normalised as the SDK's TraceState does (invalid members dropped, at most 32).
    const ts = new TraceState(s.traceState).serialize();
    if (ts) {
      w.tag(3, WIRE_LEN);
      w.string(ts);
    }
  }
  if (s.parentSpanId !== undefined) {
    w.tag(4, WIRE_LEN);
    if (record >= 0) w.rawBytes(ids!.bytes, record + ids!.parentAt, 8);
    else w.hexBytes(s.parentSpanId);
  }
  w.tag(5, WIRE_LEN);
  w.string(s.name);
  w.tag(6, WIRE_VARINT);
  w.varint32(KIND[s.kind]);
  w.tag(7, WIRE_FIXED64);
  w.fixed64(s.startTimeUnixNano);
  w.tag(8, WIRE_FIXED64);
  w.fixed64(s.endTimeUnixNano);
  attributes(w, s.attributes, 9);
  w.tag(10, WIRE_VARINT);
  w.varint32(0);
  for (const e of s.events ?? []) {
    w.tag(11, WIRE_LEN);
    const ev = w.begin();
    w.tag(1, WIRE_FIXED64);
    w.fixed64(e.timeUnixNano);
    w.tag(2, WIRE_LEN);
    w.string(e.name);
    attributes(w, e.attributes, 3);
    w.tag(4, WIRE_VARINT);
    w.varint32(0);
    w.end(ev);
  }
  w.tag(12, WIRE_VARINT);
  w.varint32(0);
  for (const l of s.links ?? []) {
    w.tag(13, WIRE_LEN);
    const lk = w.begin();
    w.tag(1, WIRE_LEN);
    w.hexBytes(l.traceId);
    w.tag(2, WIRE_LEN);
    w.hexBytes(l.spanId);
    attributes(w, l.attributes, 4);
    w.tag(5, WIRE_VARINT);
    w.varint32(0);
    w.tag(6, WIRE_FIXED32);
    w.fixed32(FLAGS_NO_PARENT_OR_LOCAL); // sampled, "has is_remote" (not remote): as otlp.ts's readable link
    w.end(lk);
  }
  w.tag(14, WIRE_VARINT);
  w.varint32(0);
  w.tag(15, WIRE_LEN);
  const st = w.begin();
  if (s.status.message) {
    w.tag(2, WIRE_LEN);
    w.string(s.status.message);
  }
  w.tag(3, WIRE_VARINT);
  w.varint32(STATUS[s.status.code]);
  w.end(st);
  w.tag(16, WIRE_FIXED32);
  w.fixed32(s.parentSpanId !== undefined && (s.kind === "server" || s.kind === "consumer") ? FLAGS_REMOTE_PARENT : FLAGS_NO_PARENT_OR_LOCAL);
}

/**
 * One ExportTraceServiceRequest: one ResourceSpans for `resource`, one ScopeSpans per distinct
 * (scope name, version, schema URL) in order of first appearance, each with the scope's schema
 * URL or else `schemaUrl`.
 */
export function encodeTraceRequestProtobuf(spans: readonly Span[], resource: SpanAttributes, schemaUrl: string, ids?: RecordIds): Uint8Array {
  if (spans.length === 0) return new Uint8Array(0); // the SDK serializer writes no ResourceSpans then
  // Spans of one probe share one scope object (probes/common/span.ts), so the string key is
  // built once per scope object, not per span.
  // Lists of span indices (the index also finds a span's record in `ids`).
  const scopes = new Map<string, number[]>();
  const byObject = new Map<Span["scope"], number[]>();
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    let list = byObject.get(s.scope);
    if (list === undefined) {
      const key = `${s.scope.name}\0${s.scope.version}\0${s.scope.schemaUrl ?? ""}`;
      list = scopes.get(key);
      if (list === undefined) scopes.set(key, (list = []));
      byObject.set(s.scope, list);
    }
    list.push(i);
  }
  const w = new Writer(scratch);
  w.tag(1, WIRE_LEN); // resource_spans
  const rs = w.begin();
  w.tag(1, WIRE_LEN); // resource
  const r = w.begin();
  attributes(w, resource, 1);
  w.tag(2, WIRE_VARINT); // dropped_attributes_count
  w.varint32(0);
  w.end(r);
  for (const list of scopes.values()) {
    w.tag(2, WIRE_LEN); // scope_spans
    const ss = w.begin();
    const scope = spans[list[0]!]!.scope;
    w.tag(1, WIRE_LEN); // scope
    const sc = w.begin();
    w.tag(1, WIRE_LEN);
    w.string(scope.name);
    if (scope.version) {
      w.tag(2, WIRE_LEN);
      w.string(scope.version);
    }
    w.end(sc);
    for (const i of list) {
      w.tag(2, WIRE_LEN);
      const sp = w.begin();
      span(w, spans[i]!, ids === undefined ? -1 : ids.at[i]!, ids);
      w.end(sp);
    }
    // A span's own schema URL (the application's tracer, OTel API probe) wins over ours.
    const url = scope.schemaUrl ?? schemaUrl;
    if (url) {
      w.tag(3, WIRE_LEN);
      w.string(url);
    }
    w.end(ss);
  }
  w.end(rs);
  // Keep the (possibly grown) buffer for the next request: a batch needs ~170 KB, and growing a
  // fresh buffer to that size every request cost two copies.
  scratch = w.buf;
  return w.buf.slice(0, w.pos);
}
