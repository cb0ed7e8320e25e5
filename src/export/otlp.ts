/**
 * @module export/otlp — our spans and capture header → OTLP ExportTraceServiceRequest.
 *
 * OTLP/JSON is encoded by @opentelemetry/otlp-transformer's serializer, from minimal SDK
 * ReadableSpan objects we build. Protobuf, the live exporter's hot path, is written straight from
 * our spans by export/protobuf.ts, which emits the same bytes as otlp-transformer's protobuf
 * serializer (checked byte for byte against it, toOtlpProtobufReference).
 * The JSON serializer already follows the OTLP/JSON rules (OTLP spec "JSON Protobuf
 * Encoding"): trace/span ids as lowercase hex, enums (kind, status code) as integers,
 * int64 nanosecond times as decimal strings. (Integer attribute values come out as JSON
 * numbers; OTLP/JSON receivers accept both numbers and strings for int64.)
 */
import { basename } from "node:path";
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime, type SpanContext } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { TraceState } from "@opentelemetry/core";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { TracerError } from "../errors.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { Attributes, Span } from "../spans/model.ts";
import { encodeTraceRequestProtobuf, type RecordIds } from "./protobuf.ts";

/** What the resource is built from: the parts of a capture header that describe the target. */
export type ResourceInfo = Pick<CaptureHeader, "tracer" | "host" | "target" | "resource">;

/**
 * The semantic-conventions version our span and resource attributes follow, sent as the scope's
 * schema_url so a backend can translate names between versions (OTel spec, "Telemetry Schemas").
 * 1.37.0 is what OpenTelemetry Go auto-instrumentation sends for the same net/http spans.
 */
export const SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0";

/** Spans per ExportTraceServiceRequest (one line of OTLP JSON Lines). */
export const DEFAULT_BATCH = 512;

/** The detected facts a resource is built from (one builder for live OTLP and capture files). */
export interface ResourceFacts {
  pid: number;
  /** Executable path ("" when unknown) */
  exePath: string;
  /** Target's Go version ("" when unknown) */
  goVersion: string;
  host: { name: string; arch: string; kernel: string };
}

/**
 * process.*, host.* and os.* attributes from detected facts (OTel semantic conventions). Used
 * by targetResource (src/config/otel-env.ts), whose result the tracer stores in the capture
 * header and streams with, and by resourceAttributes for older files without one, so every
 * path gives the same keys for the same session.
 */
export function detectedResource(f: ResourceFacts): Attributes {
  const exeName = f.exePath === "" ? "" : basename(f.exePath);
  const attrs: Attributes = {};
  if (f.pid > 0) attrs["process.pid"] = f.pid;
  if (f.exePath !== "") {
    attrs["process.executable.name"] = exeName;
    attrs["process.executable.path"] = f.exePath;
  }
  attrs["process.runtime.name"] = "go";
  if (f.goVersion !== "") attrs["process.runtime.version"] = f.goVersion;
  if (f.host.name !== "") attrs["host.name"] = f.host.name;
  if (f.host.arch !== "") attrs["host.arch"] = semconvArch(f.host.arch);
  attrs["os.type"] = "linux";
  if (f.host.kernel !== "") attrs["os.version"] = f.host.kernel;
  return attrs;
}

/**
 * telemetry.* attributes. telemetry.sdk.* vs telemetry.distro.*: semconv defines
 * telemetry.distro.{name,version} for "the auto instrumentation agent or distribution" and
 * telemetry.sdk.name for the SDK that produced the data. beetrace is both (no OTel SDK is
 * involved), so both name it; telemetry.sdk.language is "go", the language of the code the
 * spans describe (what OTel Go auto-instrumentation reports too, and what backends use to pick
 * runtime-specific views).
 */
export function telemetryResource(tracer: { name: string; version: string }): Attributes {
  return {
    "telemetry.sdk.name": tracer.name,
    "telemetry.sdk.language": "go",
    "telemetry.sdk.version": tracer.version,
    "telemetry.distro.name": tracer.name,
    "telemetry.distro.version": tracer.version,
  };
}

/**
 * The resource of a capture's spans: the one the tracer built once (targetResource), stored in
 * the header and streamed with; for older files without it, rebuilt from the header's facts by
 * the same builders.
 */
export function resourceAttributes(info: ResourceInfo): Attributes {
  if (info.resource && Object.keys(info.resource).length > 0) return { ...info.resource };
  const exeName = info.target.exe === "" ? "" : basename(info.target.exe);
  return {
    ...detectedResource({ pid: info.target.pid, exePath: info.target.exe, goVersion: info.target.goVersion, host: info.host }),
    "service.name": info.target.serviceName !== "" ? info.target.serviceName : `unknown_service:${exeName || "go"}`,
    ...telemetryResource(info.tracer),
  };
}

/** Node/Bun arch names → semconv host.arch values (Go's GOARCH names pass through). */
export function semconvArch(arch: string): string {
  const map: Record<string, string> = { x64: "amd64", ia32: "x86", arm: "arm32", ppc: "ppc32" };
  return map[arch] ?? arch;
}

const KIND: Record<Span["kind"], SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};
const STATUS: Record<Span["status"]["code"], SpanStatusCode> = {
  unset: SpanStatusCode.UNSET,
  ok: SpanStatusCode.OK,
  error: SpanStatusCode.ERROR,
};

const NS_PER_S = 1_000_000_000n;
function hrTime(ns: bigint): HrTime {
  return [Number(ns / NS_PER_S), Number(ns % NS_PER_S)];
}

/**
 * One scope object per (name, version, schema URL) in a batch: the SDK serializer groups spans into
 * ScopeSpans by the scope object's identity, so a fresh object per span would give each span a
 * ScopeSpans of its own.
 */
type ScopeCache = Map<string, ReadableSpan["instrumentationScope"]>;

function toReadable(span: Span, resource: Resource, scopes: ScopeCache = new Map()): ReadableSpan {
  const scopeKey = `${span.scope.name}\0${span.scope.version}\0${span.scope.schemaUrl ?? ""}`;
  let scope = scopes.get(scopeKey);
  if (!scope) scopes.set(scopeKey, (scope = { name: span.scope.name, version: span.scope.version, schemaUrl: span.scope.schemaUrl ?? SCHEMA_URL }));
  const ctx: SpanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED };
  if (span.traceState !== undefined) ctx.traceState = new TraceState(span.traceState);
  // A server or consumer span's parent is by definition its caller, which the trace context
  // came from over the wire; client/internal/producer parents are spans in the same process.
  const remoteParent = span.kind === "server" || span.kind === "consumer";
  const parent: SpanContext | undefined =
    span.parentSpanId === undefined ? undefined : { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: remoteParent };
  const durationNs = span.endTimeUnixNano >= span.startTimeUnixNano ? span.endTimeUnixNano - span.startTimeUnixNano : 0n;
  return {
    name: span.name,
    kind: KIND[span.kind],
    spanContext: () => ctx,
    parentSpanContext: parent,
    startTime: hrTime(span.startTimeUnixNano),
    endTime: hrTime(span.endTimeUnixNano),
    duration: hrTime(durationNs),
    status: span.status.message === undefined ? { code: STATUS[span.status.code] } : { code: STATUS[span.status.code], message: span.status.message },
    attributes: span.attributes,
    links: (span.links ?? []).map((l) => ({ context: { traceId: l.traceId, spanId: l.spanId, traceFlags: TraceFlags.SAMPLED }, attributes: l.attributes })),
    events: (span.events ?? []).map((e) => ({ name: e.name, time: hrTime(e.timeUnixNano), attributes: e.attributes })),
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function readables(spans: readonly Span[], resource: Attributes): ReadableSpan[] {
  // One Resource object for the batch: the serializer groups spans by resource identity.
  const res = resourceFromAttributes(resource);
  const scopes: ScopeCache = new Map();
  return spans.map((s) => toReadable(s, res, scopes));
}

/** One ExportTraceServiceRequest as OTLP/JSON bytes (UTF-8, no newline). */
export function toOtlpJson(spans: readonly Span[], info: ResourceInfo): Uint8Array {
  return encodeTraceRequest(spans, resourceAttributes(info), "json");
}

/** One ExportTraceServiceRequest as OTLP protobuf bytes (for OTLP/HTTP and gRPC; export/protobuf.ts). */
export function toOtlpProtobuf(spans: readonly Span[], info: ResourceInfo): Uint8Array {
  return encodeTraceRequestProtobuf(spans, resourceAttributes(info), SCHEMA_URL);
}

/** The same request through otlp-transformer's serializer: the reference export/protobuf.ts must match byte for byte. */
export function toOtlpProtobufReference(spans: readonly Span[], resource: Attributes): Uint8Array {
  const out = ProtobufTraceSerializer.serializeRequest(readables(spans, resource));
  if (out === undefined) throw new TracerError("internal", "OTLP protobuf serializer returned nothing");
  return out;
}

/**
 * One ExportTraceServiceRequest for an explicit resource (the live exporter builds its resource
 * from the target's environment, not from a capture header). Same serializers as above.
 */
export function encodeTraceRequest(spans: readonly Span[], resource: Attributes, format: "json" | "protobuf", ids?: RecordIds): Uint8Array {
  if (format === "protobuf") return encodeTraceRequestProtobuf(spans, resource, SCHEMA_URL, ids);
  if (ids !== undefined) throw new TracerError("internal", "OTLP JSON needs spans decoded with their hex ids");
  const out = JsonTraceSerializer.serializeRequest(readables(spans, resource));
  if (out === undefined) throw new TracerError("internal", "OTLP JSON serializer returned nothing");
  return out;
}

/**
 * OTLP JSON Lines, as the Collector's otlpjsonfile receiver reads: one request per line,
 * at most `batch` spans each. Yields lines without their trailing "\n".
 */
export function* otlpJsonLines(spans: Iterable<Span>, info: ResourceInfo, batch = DEFAULT_BATCH): Generator<string> {
  const size = Math.max(1, Math.floor(batch));
  const text = new TextDecoder();
  let chunk: Span[] = [];
  for (const s of spans) {
    chunk.push(s);
    if (chunk.length >= size) {
      yield text.decode(toOtlpJson(chunk, info));
      chunk = [];
    }
  }
  if (chunk.length > 0) yield text.decode(toOtlpJson(chunk, info));
}
