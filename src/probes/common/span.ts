/**
 * @module probes/common/span — the span fields every probe fills the same way from the common
 * record header (struct rec_span): ids, times, parent, scope, truncation and read-error marks;
 * and SpanBuilder, the one interface a decoder writes its span through whatever the output.
 */
import type { Attributes, AttrValue, Span, SpanKind } from "../../spans/model.ts";
import type { DecodeContext } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { SPAN_FLAGS } from "./header.ts";
import { BEETRACE_VERSION } from "../../version.ts";
import { Memo2 } from "./memo.ts";

export type SpanScope = Span["scope"];

/** One shared, frozen scope object per scope name: spans of a probe need not carry copies (and the OTLP encoder groups them by identity). */
const SCOPES = new Map<string, SpanScope>();
export function scopeOf(name: string): SpanScope {
  let scope = SCOPES.get(name);
  if (scope === undefined) SCOPES.set(name, (scope = Object.freeze({ name, version: BEETRACE_VERSION })));
  return scope;
}

/**
 * A span name "{first} {second}" ("GET /items/{id}", "send orders", "SELECT users": the semantic
 * conventions' names), made once per pair: the same few come back span after span.
 */
export function spanName(first: string, second: string): string {
  let name = SPAN_NAMES.get(first, second);
  if (name === undefined) SPAN_NAMES.set(first, second, (name = `${first} ${second}`));
  return name;
}
const SPAN_NAMES = new Memo2<string, string, string>();

/** Builds a span from the record header; status starts unset (the OTel API probe's decoder, whose spans carry the application's own scope). */
export function baseSpan(r: RecordReader, ctx: DecodeContext, scopeName: string, name: string, kind: Span["kind"], attributes: Attributes): Span {
  return spanOfHeader(r, ctx, scopeOf(scopeName), name, kind, attributes);
}

function spanOfHeader(r: RecordReader, ctx: DecodeContext, scope: SpanScope, name: string, kind: Span["kind"], attributes: Attributes): Span {
  const hexIds = ctx.idsAsBytes !== true;
  const span: Span = {
    traceId: hexIds ? r.hex("trace_id") : "",
    spanId: hexIds ? r.hex("span_id") : "",
    name,
    kind,
    startTimeUnixNano: ctx.toEpoch(r.u64("start_ns")),
    endTimeUnixNano: ctx.toEpoch(r.u64("end_ns")),
    attributes,
    status: { code: "unset" },
    scope,
  };
  if (hasParent(r)) {
    if (hexIds) span.parentSpanId = r.hex("parent_span_id");
    else span.parentSpanId = "";
  }
  if (r.flags & SPAN_FLAGS.READ_ERROR) attributes["beetrace.read_error"] = true;
  return span;
}

/** Whether the record names a parent span (the flag, and an id that is not all zeros). */
export function hasParent(r: RecordReader): boolean {
  return (r.flags & SPAN_FLAGS.HAS_PARENT) !== 0 && !r.isZero("parent_span_id", 8);
}

/** beetrace.truncated: which attributes hold a truncated value (record string → attribute names). */
export function noteTruncated(out: SpanBuilder, r: RecordReader, names: Record<string, string>): void {
  if (!r.anyTruncated) return;
  const list: string[] = [];
  for (const [s, attr] of Object.entries(names)) if (r.truncated(s)) list.push(attr);
  if (list.length > 0) out.attr("beetrace.truncated", list.join(","));
}

/**
 * Where a decoder writes its span, so that one decoder serves every output: SpanObjectBuilder
 * makes a Span object (capture readers, view, convert, the exporter's spill), and export/
 * protobuf.ts's ProtobufSpanBuilder writes OTLP protobuf straight from the record on the live
 * OTLP path, with no Span, attribute or status objects in between (bench/RESULTS.md).
 *
 * start() comes first. Attributes keep the order they were set in, and each key is set at most
 * once per span: an OTLP KeyValue list cannot take back what it holds, so a second set would make
 * the two outputs differ (tests/unit/export/builders.test.ts compares them byte for byte over
 * random records of every builder). error() may be called again: the last message wins.
 */
export interface SpanBuilder {
  /** The span of record `r`: ids, times and parent from its header, "beetrace.read_error" from its flags. */
  start(r: RecordReader, ctx: DecodeContext, scope: SpanScope, kind: SpanKind): void;
  /** Whether the span has a parent (start() read it). */
  readonly hasParent: boolean;
  name(name: string): void;
  attr(key: string, value: AttrValue): void;
  /** W3C tracestate that came with the parent. */
  traceState(value: string): void;
  /** Status ERROR, with a message or none. */
  error(message?: string): void;
  /** An event at the span's end time. */
  event(name: string, attributes: Attributes): void;
}

/** A probe's decoder written against SpanBuilder. */
export type BuildSpan = (r: RecordReader, ctx: DecodeContext, out: SpanBuilder) => void;

/** SpanBuilder → a Span object. */
export class SpanObjectBuilder implements SpanBuilder {
  /** The span since start() (decoders call start() first: SpanBuilder's rule). */
  #span!: Span;

  start(r: RecordReader, ctx: DecodeContext, scope: SpanScope, kind: SpanKind): void {
    this.#span = spanOfHeader(r, ctx, scope, "", kind, {});
  }
  get hasParent(): boolean {
    return this.#span.parentSpanId !== undefined;
  }
  name(name: string): void {
    this.#span.name = name;
  }
  attr(key: string, value: AttrValue): void {
    this.#span.attributes[key] = value;
  }
  traceState(value: string): void {
    this.#span.traceState = value;
  }
  error(message?: string): void {
    this.#span.status = message === undefined ? { code: "error" } : { code: "error", message };
  }
  event(name: string, attributes: Attributes): void {
    const span = this.#span;
    (span.events ??= []).push({ name, timeUnixNano: span.endTimeUnixNano, attributes });
  }
  /** The span built since start(). */
  finish(): Span {
    return this.#span;
  }
}

/** A probe's `decode` (record → Span object) from its builder. */
export function decodeWith(build: BuildSpan): (r: RecordReader, ctx: DecodeContext) => Span {
  const out = new SpanObjectBuilder();
  return (r, ctx) => {
    build(r, ctx, out);
    return out.finish();
  };
}
