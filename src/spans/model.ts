/**
 * @module spans/model — the data that flows from the ring buffer to the exporters.
 *
 * BPF emits two records per call: a *start* record at the function entry (ids, parent, monotonic
 * start time, request attributes) and an *end* record at a RET (same span id, end time, response
 * attributes). Each probe's decoder (src/probes/<library>/) turns record bytes into SpanStart /
 * SpanEnd; src/spans/assemble.ts pairs them by span id and asks the probe to finish the span.
 * Shared code never branches on which probe produced a record.
 */

export type SpanKind = "server" | "client" | "internal" | "producer" | "consumer";
export type AttrValue = string | number | boolean;
export type Attributes = Record<string, AttrValue>;
/** A span's, event's or link's attributes: a value may also be a homogeneous array of
 * primitives (OTLP ArrayValue; the OTel API's slice attributes). */
export type SpanAttributes = Record<string, AttrValue | AttrValue[]>;

export interface SpanStatus {
  code: "unset" | "ok" | "error";
  message?: string;
}

/** Decoded start record (monotonic time, not yet converted). */
export interface SpanStart {
  /** Probe id, e.g. "nethttp.server"; selects the probe's finish() */
  probe: string;
  /** 16 bytes, lowercase hex (32 chars), never all zeros */
  traceId: string;
  /** 8 bytes, lowercase hex (16 chars), never all zeros */
  spanId: string;
  /** Parent span id (16 hex chars) or undefined for a root span */
  parentSpanId?: string;
  /** bpf_ktime_get_boot_ns() at entry (CLOCK_BOOTTIME) */
  monoStartNs: bigint;
  /** Goroutine (runtime.g pointer) that ran the call */
  goroutine: bigint;
  pid: number;
  tid: number;
  /** Probe-specific decoded request fields (method, path, host, ...) */
  fields: Record<string, string | number>;
}

/** Decoded end record. */
export interface SpanEnd {
  probe: string;
  spanId: string;
  /** bpf_ktime_get_boot_ns() at the RET (CLOCK_BOOTTIME) */
  monoEndNs: bigint;
  /** Probe-specific decoded response fields (status code, ...) */
  fields: Record<string, string | number>;
}

/** Something that happened during a span (OTLP Span.Event), e.g. the "exception" of a panic. */
export interface SpanEvent {
  name: string;
  /** nanoseconds since the Unix epoch */
  timeUnixNano: bigint;
  attributes: SpanAttributes;
}

/** A link to another span (OTLP Span.Link), e.g. one the application added with the OTel API. */
export interface SpanLink {
  /** 32 lowercase hex chars */
  traceId: string;
  /** 16 lowercase hex chars */
  spanId: string;
  attributes: SpanAttributes;
}

/** A finished span, in epoch time; what capture files store and exporters send. */
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** W3C tracestate that came with the caller's traceparent (server spans; absent when none) */
  traceState?: string;
  name: string;
  kind: SpanKind;
  /** nanoseconds since the Unix epoch */
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: SpanAttributes;
  status: SpanStatus;
  /** Events (absent when none) */
  events?: SpanEvent[];
  /** Links (absent when none) */
  links?: SpanLink[];
  /**
   * Instrumentation scope, e.g. { name: "beetrace/net/http", version: "0.1.0" }; schemaUrl only
   * where the span's own instrumentation gave one (the OTel API probe: the application's
   * tracer), else the exporter's semconv schema applies.
   */
  scope: { name: string; version: string; schemaUrl?: string };
}

/** Counters of everything lost or odd; exported in stats records and printed at exit. */
export interface LossCounters {
  /** bpf_ringbuf_reserve failed (ring full) */
  ringbufFull: number;
  /** in-flight map full at entry: call not traced */
  inflightFull: number;
  /** RET hit with no matching entry state in BPF */
  returnWithoutEntry: number;
  /** end record whose start never arrived (user space) */
  endWithoutStart: number;
  /** start records with no end when tracing stopped (panic, Goexit, still running) */
  incomplete: number;
  /** string fields truncated to their buffer size */
  truncatedStrings: number;
}

export function zeroLosses(): LossCounters {
  return { ringbufFull: 0, inflightFull: 0, returnWithoutEntry: 0, endWithoutStart: 0, incomplete: 0, truncatedStrings: 0 };
}
