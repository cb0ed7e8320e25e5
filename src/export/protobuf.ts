/**
 * @module export/protobuf — OTLP ExportTraceServiceRequest protobuf written straight from our
 * spans, or from span records through the probes' builders, for the live exporter's hot path.
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
import type { Attributes, AttrValue, SpanAttributes, Span, SpanEvent, SpanKind, SpanLink } from "../spans/model.ts";
import type { DecodeContext } from "../probes/probe.ts";
import type { RecordReader } from "../probes/record.ts";
import { hasParent, type SpanBuilder, type SpanScope } from "../probes/common/span.ts";
import { SPAN_FLAGS } from "../probes/common/header.ts";
import { Memo2 } from "../probes/common/memo.ts";

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
/** rec_span_flags' read-error bit (probes/common/header.ts). */
const SPAN_READ_ERROR = SPAN_FLAGS.READ_ERROR;

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
  /** All of `bytes` (a native copy: for whole blocks). */
  block(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
  /** bytes[at, at + n) as they are (a loop: cheaper than a native copy for tens of bytes). */
  copy(bytes: Uint8Array, at: number, n: number): void {
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = bytes[at + i]!;
    this.pos = p;
  }
  /** bytes[at, at + n) as a bytes field's value (ids straight from a record); at < 0 (a layout without the id): empty, as hexBytes(""). */
  rawBytes(bytes: Uint8Array, at: number, n: number): void {
    this.room(1);
    if (at < 0) {
      this.buf[this.pos++] = 0;
      return;
    }
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

/** One KeyValue as field `field` of its message. */
function keyValue(w: Writer, field: number, key: string, value: AttrValue | readonly AttrValue[]): void {
  w.tag(field, WIRE_LEN);
  if (typeof value === "string" || typeof value === "number") {
    const bytes = keyValueBytes(key, value);
    w.copy(bytes, 0, bytes.length);
    return;
  }
  writeKeyValue(w, key, value);
}

/** A KeyValue's length and body. */
function writeKeyValue(w: Writer, key: string, value: AttrValue | readonly AttrValue[]): void {
  const kv = w.begin();
  const encodedKey = keyBytes(key); // its tag, length and bytes, encoded once
  w.copy(encodedKey, 0, encodedKey.length);
  w.tag(2, WIRE_LEN);
  const v = w.begin();
  anyValue(w, value);
  w.end(v);
  w.end(kv);
}

/**
 * Encoded KeyValues (length and body) of string and number attributes, per key and value:
 * most repeat span after span (methods, routes, hosts, status codes, a connection's peer), and
 * record strings are interned, so a hit costs two lookups and one copy. Bounded per key.
 */
const KV_CACHE = new Memo2<string, string | number, Uint8Array>(KEY_CACHE_MAX, 1024);
const kvWriter = new Writer(new Uint8Array(256));
function keyValueBytes(key: string, value: string | number): Uint8Array {
  let bytes = KV_CACHE.get(key, value);
  if (bytes === undefined) {
    kvWriter.pos = 0;
    writeKeyValue(kvWriter, key, value);
    bytes = kvWriter.buf.slice(0, kvWriter.pos);
    KV_CACHE.set(key, value, bytes);
  }
  return bytes;
}

function attributes(w: Writer, attrs: SpanAttributes, field: number): void {
  // Own enumerable keys in insertion order, as the SDK serializer's Object.keys walk.
  const keys = Object.keys(attrs);
  for (let i = 0; i < keys.length; i++) keyValue(w, field, keys[i]!, attrs[keys[i]!]!);
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

/**
 * One span's protobuf (the Span message, trace.proto), in the order and with the defaults
 * otlp-transformer's serializer writes. Filled either by a probe's builder straight from a
 * record (SpanBuilder: no Span object is made) or from a Span (fromSpan); reused span after span.
 */
export class ProtobufSpanBuilder implements SpanBuilder {
  scope!: SpanScope;
  #kind: SpanKind = "internal";
  #name = "";
  /** Start and end, epoch ns as 32-bit halves [start low, start high, end low, end high] */
  readonly #times = new Uint32Array(4);
  /** Ids from a record: its bytes and where its header's ids are (absolute); parentAt -1: no parent. */
  #idBytes: Uint8Array | undefined;
  #traceAt = 0;
  #spanAt = 0;
  #parentAt = -1;
  /** Ids as hex (fromSpan without a record) */
  #traceId = "";
  #spanId = "";
  #parentSpanId: string | undefined;
  #traceState: string | undefined;
  /** Attributes in the order set: keys[i] → values[i] for i < #count (arrays reused) */
  readonly #keys: string[] = [];
  readonly #values: (AttrValue | readonly AttrValue[])[] = [];
  #count = 0;
  #events: readonly SpanEvent[] | undefined;
  #links: readonly SpanLink[] | undefined;
  #error = false;
  #ok = false;
  #message: string | undefined;

  #reset(scope: SpanScope, kind: SpanKind): void {
    this.scope = scope;
    this.#kind = kind;
    this.#name = "";
    this.#idBytes = undefined;
    this.#parentAt = -1;
    this.#parentSpanId = undefined;
    this.#traceState = undefined;
    this.#count = 0;
    this.#events = undefined;
    this.#links = undefined;
    this.#error = false;
    this.#ok = false;
    this.#message = undefined;
  }

  start(r: RecordReader, ctx: DecodeContext, scope: SpanScope, kind: SpanKind): void {
    this.#reset(scope, kind);
    this.#idBytes = r.bytes;
    this.#traceAt = r.offsetOf("trace_id", 16);
    this.#spanAt = r.offsetOf("span_id", 8);
    if (hasParent(r)) this.#parentAt = r.offsetOf("parent_span_id", 8);
    const startAt = r.offsetOf("start_ns", 8);
    const endAt = r.offsetOf("end_ns", 8);
    const words = ctx.toEpochWords;
    if (words !== undefined && startAt >= 0 && endAt >= 0) {
      const v = r.view;
      words(v.getUint32(startAt, true), v.getUint32(startAt + 4, true), this.#times, 0);
      words(v.getUint32(endAt, true), v.getUint32(endAt + 4, true), this.#times, 2);
    } else this.#setTimes(ctx.toEpoch(r.u64("start_ns")), ctx.toEpoch(r.u64("end_ns")));
    if (r.flags & SPAN_READ_ERROR) this.attr("beetrace.read_error", true);
  }
  get hasParent(): boolean {
    return this.#parentAt >= 0 || this.#parentSpanId !== undefined;
  }
  name(name: string): void {
    this.#name = name;
  }
  attr(key: string, value: AttrValue | readonly AttrValue[]): void {
    const i = this.#count++;
    this.#keys[i] = key;
    this.#values[i] = value;
  }
  traceState(value: string): void {
    this.#traceState = value;
  }
  error(message?: string): void {
    this.#error = true;
    this.#message = message;
  }
  event(name: string, attributes: Attributes): void {
    const t = this.#times;
    const end = (BigInt(t[3]!) << 32n) | BigInt(t[2]!);
    this.#events = [...(this.#events ?? []), { name, timeUnixNano: end, attributes }];
  }

  /** A decoded span; its ids from its record when `record` ≥ 0 (RecordIds), else from its hex. */
  fromSpan(s: Span, record: number, ids: RecordIds | undefined): void {
    this.#reset(s.scope, s.kind);
    if (record >= 0) {
      this.#idBytes = ids!.bytes;
      this.#traceAt = record + ids!.traceAt;
      this.#spanAt = record + ids!.spanAt;
      if (s.parentSpanId !== undefined) this.#parentAt = record + ids!.parentAt;
    } else {
      this.#traceId = s.traceId;
      this.#spanId = s.spanId;
      this.#parentSpanId = s.parentSpanId;
    }
    this.#traceState = s.traceState;
    this.#name = s.name;
    this.#setTimes(s.startTimeUnixNano, s.endTimeUnixNano);
    const attrs = s.attributes;
    const keys = Object.keys(attrs);
    for (let i = 0; i < keys.length; i++) this.attr(keys[i]!, attrs[keys[i]!]!);
    this.#events = s.events;
    this.#links = s.links;
    this.#error = s.status.code === "error";
    this.#ok = s.status.code === "ok";
    this.#message = s.status.message;
  }

  #setTimes(start: bigint, end: bigint): void {
    const t = this.#times;
    t[0] = Number(BigInt.asUintN(32, start));
    t[1] = Number(BigInt.asUintN(32, start >> 32n));
    t[2] = Number(BigInt.asUintN(32, end));
    t[3] = Number(BigInt.asUintN(32, end >> 32n));
  }

  /** The Span message's fields (the caller writes its tag and length). */
  writeTo(w: Writer): void {
    const bytes = this.#idBytes;
    w.tag(1, WIRE_LEN);
    if (bytes !== undefined) w.rawBytes(bytes, this.#traceAt, 16);
    else w.hexBytes(this.#traceId);
    w.tag(2, WIRE_LEN);
    if (bytes !== undefined) w.rawBytes(bytes, this.#spanAt, 8);
    else w.hexBytes(this.#spanId);
    if (this.#traceState !== undefined) {
      // Normalised as the SDK's TraceState does (invalid members dropped, at most 32).
      const ts = new TraceState(this.#traceState).serialize();
      if (ts) {
        w.tag(3, WIRE_LEN);
        w.string(ts);
      }
    }
    const parent = this.hasParent;
    if (parent) {
      w.tag(4, WIRE_LEN);
      if (bytes !== undefined) w.rawBytes(bytes, this.#parentAt, 8);
      else w.hexBytes(this.#parentSpanId!);
    }
    w.tag(5, WIRE_LEN);
    w.string(this.#name);
    w.tag(6, WIRE_VARINT);
    w.varint32(KIND[this.#kind]);
    const t = this.#times;
    w.tag(7, WIRE_FIXED64);
    w.fixed32(t[0]!);
    w.fixed32(t[1]!);
    w.tag(8, WIRE_FIXED64);
    w.fixed32(t[2]!);
    w.fixed32(t[3]!);
    const keys = this.#keys;
    const values = this.#values;
    for (let i = 0; i < this.#count; i++) keyValue(w, 9, keys[i]!, values[i]!);
    w.tag(10, WIRE_VARINT);
    w.varint32(0);
    const events = this.#events;
    if (events !== undefined) for (const e of events) {
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
    const links = this.#links;
    if (links !== undefined) for (const l of links) {
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
    if (this.#message) {
      w.tag(2, WIRE_LEN);
      w.string(this.#message);
    }
    w.tag(3, WIRE_VARINT);
    w.varint32(this.#error ? STATUS.error : this.#ok ? STATUS.ok : STATUS.unset);
    w.end(st);
    w.tag(16, WIRE_FIXED32);
    w.fixed32(parent && (this.#kind === "server" || this.#kind === "consumer") ? FLAGS_REMOTE_PARENT : FLAGS_NO_PARENT_OR_LOCAL);
  }
}

/** The spans of one instrumentation scope, written as they come (ScopeSpans.spans). */
interface ScopeGroup {
  scope: SpanScope;
  w: Writer;
}

/** Spare buffers of the scope groups, kept between requests (a batch's group needs ~170 KB). */
const spareBuffers: Uint8Array[] = [];

/**
 * One ExportTraceServiceRequest built span by span: one ResourceSpans, one ScopeSpans per
 * distinct (scope name, version, schema URL) in order of first appearance, each with the scope's
 * schema URL or else the request's. Each scope's spans go to a buffer of their own as they come,
 * so the spans of a record need not be kept until the request is complete.
 */
export class TraceRequestWriter {
  /** Groups by scope object (spans of a probe share one), then by the scope's value. */
  readonly #byObject = new Map<SpanScope, ScopeGroup>();
  readonly #byKey = new Map<string, ScopeGroup>();
  readonly #groups: ScopeGroup[] = [];
  #spans = 0;
  readonly #builder = new ProtobufSpanBuilder();

  /** The builder to hand a probe's decoder; add it with addBuilt() once it has built a span. */
  get builder(): ProtobufSpanBuilder {
    return this.#builder;
  }
  get spans(): number {
    return this.#spans;
  }

  /** A decoded span (its ids from its record when `record` ≥ 0 in `ids`). */
  add(s: Span, record = -1, ids?: RecordIds): void {
    this.#builder.fromSpan(s, record, ids);
    this.addBuilt(this.#builder);
  }

  /** The span `b` holds. */
  addBuilt(b: ProtobufSpanBuilder): void {
    const w = this.#groupOf(b.scope).w;
    w.tag(2, WIRE_LEN);
    const sp = w.begin();
    b.writeTo(w);
    w.end(sp);
    this.#spans++;
  }

  #groupOf(scope: SpanScope): ScopeGroup {
    let g = this.#byObject.get(scope);
    if (g === undefined) {
      const key = `${scope.name}\0${scope.version}\0${scope.schemaUrl ?? ""}`;
      g = this.#byKey.get(key);
      if (g === undefined) {
        g = { scope, w: new Writer(spareBuffers.pop() ?? new Uint8Array(1 << 16)) };
        this.#byKey.set(key, g);
        this.#groups.push(g);
      }
      this.#byObject.set(scope, g);
    }
    return g;
  }

  /** The request's bytes (empty without spans, as the SDK serializer writes then); the writer starts over empty. */
  finish(resource: SpanAttributes, schemaUrl: string): Uint8Array {
    if (this.#spans === 0) return new Uint8Array(0);
    const w = new Writer(scratch);
    w.tag(1, WIRE_LEN); // resource_spans
    const rs = w.begin();
    w.tag(1, WIRE_LEN); // resource
    const r = w.begin();
    attributes(w, resource, 1);
    w.tag(2, WIRE_VARINT); // dropped_attributes_count
    w.varint32(0);
    w.end(r);
    for (const g of this.#groups) {
      w.tag(2, WIRE_LEN); // scope_spans
      const ss = w.begin();
      w.tag(1, WIRE_LEN); // scope
      const sc = w.begin();
      w.tag(1, WIRE_LEN);
      w.string(g.scope.name);
      if (g.scope.version) {
        w.tag(2, WIRE_LEN);
        w.string(g.scope.version);
      }
      w.end(sc);
      w.block(g.w.buf.subarray(0, g.w.pos));
      // A span's own schema URL (the application's tracer, OTel API probe) wins over ours.
      const url = g.scope.schemaUrl ?? schemaUrl;
      if (url) {
        w.tag(3, WIRE_LEN);
        w.string(url);
      }
      w.end(ss);
      spareBuffers.push(g.w.buf);
    }
    this.#groups.length = 0;
    this.#byObject.clear();
    this.#byKey.clear();
    this.#spans = 0;
    w.end(rs);
    // Keep the (possibly grown) buffer for the next request: a batch needs ~170 KB, and growing a
    // fresh buffer to that size every request cost two copies.
    scratch = w.buf;
    return w.buf.slice(0, w.pos);
  }
}

/** One ExportTraceServiceRequest of decoded spans (see TraceRequestWriter). */
export function encodeTraceRequestProtobuf(spans: readonly Span[], resource: SpanAttributes, schemaUrl: string, ids?: RecordIds): Uint8Array {
  const request = new TraceRequestWriter();
  for (let i = 0; i < spans.length; i++) request.add(spans[i]!, ids === undefined ? -1 : ids.at[i]!, ids);
  return request.finish(resource, schemaUrl);
}
