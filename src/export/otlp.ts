/**
 * @module export/otlp — our spans and capture header → OTLP ExportTraceServiceRequest.
 *
 * The encoding is done by @opentelemetry/otlp-transformer's serializers (JSON and protobuf),
 * so we never hand-write OTLP. They take SDK ReadableSpan objects; we build minimal ones.
 * The JSON serializer already follows the OTLP/JSON rules (OTLP spec "JSON Protobuf
 * Encoding"): trace/span ids as lowercase hex, enums (kind, status code) as integers,
 * int64 nanosecond times as decimal strings. (Integer attribute values come out as JSON
 * numbers; OTLP/JSON receivers accept both numbers and strings for int64.)
 */
import { basename } from "node:path";
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime, type SpanContext } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { TracerError } from "../errors.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { Attributes, Span } from "../spans/model.ts";

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

/**
 * Resource attributes per OTel semantic conventions (service, process, host, os, telemetry).
 * telemetry.sdk.*: beetrace is not the OTel SDK, so per the semconv rule for non-official
 * SDKs it names itself in telemetry.sdk.name; telemetry.sdk.language is "go" because it is
 * the language of the code the spans describe (what the Go auto-instrumentation reports too,
 * and what backends use to pick runtime-specific views).
 */
export function resourceAttributes(info: ResourceInfo): Attributes {
  // The tracer recorded the exact resource it streamed with: replay it unchanged.
  if (info.resource && Object.keys(info.resource).length > 0) return { ...info.resource };
  const exeName = info.target.exe === "" ? "" : basename(info.target.exe);
  const attrs: Attributes = {
    "service.name": info.target.serviceName !== "" ? info.target.serviceName : `unknown_service:${exeName || "go"}`,
    "telemetry.sdk.name": info.tracer.name,
    "telemetry.sdk.version": info.tracer.version,
    "telemetry.sdk.language": "go",
    "process.runtime.name": "go",
    "os.type": "linux",
  };
  if (info.target.pid > 0) attrs["process.pid"] = info.target.pid;
  if (info.target.exe !== "") {
    attrs["process.executable.path"] = info.target.exe;
    attrs["process.executable.name"] = exeName;
  }
  if (info.target.goVersion !== "") attrs["process.runtime.version"] = info.target.goVersion;
  if (info.host.name !== "") attrs["host.name"] = info.host.name;
  if (info.host.arch !== "") attrs["host.arch"] = semconvArch(info.host.arch);
  if (info.host.kernel !== "") attrs["os.version"] = info.host.kernel;
  return attrs;
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

function toReadable(span: Span, resource: Resource): ReadableSpan {
  const ctx: SpanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED };
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
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: { name: span.scope.name, version: span.scope.version, schemaUrl: SCHEMA_URL },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function readables(spans: readonly Span[], info: ResourceInfo): ReadableSpan[] {
  // One Resource object for the batch: the serializer groups spans by resource identity.
  const resource = resourceFromAttributes(resourceAttributes(info));
  return spans.map((s) => toReadable(s, resource));
}

/** One ExportTraceServiceRequest as OTLP/JSON bytes (UTF-8, no newline). */
export function toOtlpJson(spans: readonly Span[], info: ResourceInfo): Uint8Array {
  const out = JsonTraceSerializer.serializeRequest(readables(spans, info));
  if (out === undefined) throw new TracerError("internal", "OTLP JSON serializer returned nothing");
  return out;
}

/** One ExportTraceServiceRequest as OTLP protobuf bytes (for OTLP/HTTP and gRPC). */
export function toOtlpProtobuf(spans: readonly Span[], info: ResourceInfo): Uint8Array {
  const out = ProtobufTraceSerializer.serializeRequest(readables(spans, info));
  if (out === undefined) throw new TracerError("internal", "OTLP protobuf serializer returned nothing");
  return out;
}

/**
 * One ExportTraceServiceRequest for an explicit resource (the live exporter builds its resource
 * from the target's environment, not from a capture header). Same serializers as above.
 */
export function encodeTraceRequest(spans: readonly Span[], resource: Attributes, format: "json" | "protobuf"): Uint8Array {
  const res = resourceFromAttributes(resource);
  const items = spans.map((s) => toReadable(s, res));
  const out = format === "json" ? JsonTraceSerializer.serializeRequest(items) : ProtobufTraceSerializer.serializeRequest(items);
  if (out === undefined) throw new TracerError("internal", `OTLP ${format} serializer returned nothing`);
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
