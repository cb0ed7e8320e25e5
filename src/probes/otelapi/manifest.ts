/**
 * @module probes/otelapi/manifest — spans the application makes itself with the OpenTelemetry Go
 * API (go.opentelemetry.io/otel) while no SDK is registered (bpf/otelapi.bpf.c).
 *
 * The API's global tracer hands out non-recording spans whose methods do nothing; the probes
 * read what those methods receive (nothing is written into the application, so this works
 * under kernel lockdown): Start (entry and RETs: parent, ids, name, options, the returned
 * span and context), the span methods' entries (attributes, events, errors, status, name,
 * links) and End (one record per span). Spans are INTERNAL unless WithSpanKind says otherwise;
 * their instrumentation scope is the application's tracer (name, version, schema URL), not
 * beetrace's. A manual span started under a traced request is that request's child, and calls
 * made under the context Start returned are the manual span's children.
 */
import type { Attributes, Span, SpanAttributes, SpanKind } from "../../spans/model.ts";
import type { BpfObjectSpec, DecodeContext, EndMarkerDecl, FieldDecl, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { baseSpan } from "../common/span.ts";
import { ENUMERATORS as E, type CounterName, type MapName, type ProgramName, type RodataName } from "./otelapi.gen.ts";
import { parseItems } from "./items.ts";

type OtelField = FieldDecl & { const: RodataName };

const OTEL = "go.opentelemetry.io/otel";
const GLOBAL = `${OTEL}/internal/global`;

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;
const program = (name: ProgramName): string => name;

export const OTELAPI_OBJECT: BpfObjectSpec = {
  name: "otelapi",
  // Not otelapi_spans: its entries hold a span's attributes (~2.7 KB each), so --inflight must
  // not scale it; it keeps its 2048 entries (LRU: spans never ended are evicted first).
  callMaps: maps("otelapi_start_calls"),
  callSlots: maps("otelapi_start_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call or per-span map full: span not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "Start's RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "attribute key or value longer than its cap" }),
    counter("items_dropped", { what: "attributes, events or links not stored (per-span buffer full or per-call cap)" }),
    counter("span_not_found", { what: "span method called on a span not seen starting (started before attach)" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "unused" }),
    counter("ctx_map_full", { what: "context map full: calls under a manual span lose their parent" }),
  ],
};

export const FIELDS: OtelField[] = [
  { const: "tracer_name_off", field: `${GLOBAL}.tracer.name`, required: true, why: "instrumentation scope name (the name given to otel.Tracer)" },
  {
    const: "tracer_opts_off",
    field: `${GLOBAL}.tracer.opts`,
    required: false,
    why: "instrumentation scope version and schema URL (the tracer's options)",
  },
  {
    const: "tracer_delegate_off",
    field: `${GLOBAL}.tracer.delegate`,
    required: false,
    why: "skips tracers that forward to a registered SDK (it records those spans itself)",
  },
  { const: "kv_key_off", field: `${OTEL}/attribute.KeyValue.Key`, required: true, why: "attribute keys" },
  { const: "kv_value_off", field: `${OTEL}/attribute.KeyValue.Value`, required: true, why: "attribute values" },
  { const: "value_vtype_off", field: `${OTEL}/attribute.Value.vtype`, required: true, why: "attribute value type" },
  { const: "value_numeric_off", field: `${OTEL}/attribute.Value.numeric`, required: true, why: "bool, int64 and float64 attribute values" },
  { const: "value_stringly_off", field: `${OTEL}/attribute.Value.stringly`, required: true, why: "string attribute values" },
  { const: "value_slice_off", field: `${OTEL}/attribute.Value.slice`, required: true, why: "slice attribute values; the size of a KeyValue" },
  { const: "link_sc_off", field: `${OTEL}/trace.Link.SpanContext`, required: false, why: "links (WithLinks, AddLink)" },
  { const: "link_attrs_off", field: `${OTEL}/trace.Link.Attributes`, required: false, why: "links' attributes; the size of a Link" },
  { const: "sc_trace_id_off", field: `${OTEL}/trace.SpanContext.traceID`, required: false, why: "a link's trace id" },
  { const: "sc_span_id_off", field: `${OTEL}/trace.SpanContext.spanID`, required: false, why: "a link's span id" },
];

const SPAN = `${GLOBAL}.(*nonRecordingSpan)`;

/**
 * The span methods are probed at their entries only (a method's end carries nothing). The
 * planner places optional, entry-only sites through end markers: each is "if-linked" (the
 * linker drops the methods an application never calls, e.g. AddLink before otel 1.23 or when
 * unused), and End's RETs are never used since an empty set of needed markers always places.
 */
const METHOD_SITES: EndMarkerDecl[] = (
  [
    ["SetAttributes", "otelapi_set_attributes", "span attributes"],
    ["AddEvent", "otelapi_add_event", "events"],
    ["RecordError", "otelapi_record_error", "exception events"],
    ["SetStatus", "otelapi_set_status", "status and description"],
    ["SetName", "otelapi_set_name", "renamed spans"],
    ["AddLink", "otelapi_add_link", "links added after start (otel >= 1.23)"],
  ] as const
).map(([method, prog, why]) => ({ choices: [{ symbols: [`${SPAN}.${method}`], program: program(prog) }], neededIf: "if-linked", why: `entry: ${why}` }));

/** trace.SpanKind (trace/span_kind.go or trace.go): 0 unspecified is INTERNAL for the SDK. */
const KINDS: readonly SpanKind[] = ["internal", "internal", "server", "client", "producer", "consumer"];

/** The raw bytes of packed string `name` (the items are binary, not text). */
function rawString(r: RecordReader, name: string): Uint8Array {
  const l = r.layout;
  const idx = l.stringIndex.get(name);
  if (idx === undefined) return new Uint8Array(0);
  let pos = l.layout.fixed;
  let n = 0;
  for (let i = 0; i <= idx; i++) {
    const lf = l.lenFields[i];
    const inside = lf !== undefined && lf[0] + lf[1] <= r.length;
    n = !inside ? 0 : lf[1] === 1 ? r.bytes[r.base + lf[0]]! : lf[1] === 2 ? r.view.getUint16(r.base + lf[0], true) : 0;
    if (i < idx) pos += n;
  }
  if (pos + n > r.length) return new Uint8Array(0); // check() refuses such records first
  return r.bytes.subarray(r.base + pos, r.base + pos + n);
}

export function decodeOtelApi(r: RecordReader, ctx: DecodeContext): Span {
  const flags = r.flags;
  const items = parseItems(rawString(r, "items"));
  const marks: Attributes = {};
  const span = baseSpan(r, ctx, "", r.str("name"), KINDS[r.u8("kind")] ?? "internal", marks);
  const attrs: SpanAttributes = { ...items.attributes, ...marks };
  span.attributes = attrs;
  const schemaUrl = r.str("schema_url");
  span.scope = { name: r.str("scope_name"), version: r.str("scope_version"), ...(schemaUrl ? { schemaUrl } : {}) };
  // codes.Code (codes/codes.go): Unset 0, Error 1, Ok 2; the description is kept with Error only.
  const code = r.u8("status_code");
  if (code === 1) span.status = { code: "error", ...(r.str("status_desc") ? { message: r.str("status_desc") } : {}) };
  else if (code === 2) span.status = { code: "ok" };
  if (items.events.length > 0) {
    span.events = items.events.map((e) => ({ name: e.name, timeUnixNano: ctx.toEpoch(e.bootNs), attributes: e.attributes }));
  }
  if (items.links.length > 0) span.links = items.links;

  // Marks of what was cut or left out (beetrace.* attributes, as the other probes mark theirs).
  const truncated = [...(r.truncated("name") ? ["span.name"] : []), ...items.truncatedKeys];
  if (truncated.length > 0) attrs["beetrace.truncated"] = truncated.join(",");
  if (flags & E.OTELAPI_F_DROPPED) attrs["beetrace.otel.dropped"] = r.u16("dropped");
  if (items.unsupportedKeys.length > 0) attrs["beetrace.otel.unsupported"] = items.unsupportedKeys.join(",");
  if (flags & E.OTELAPI_F_OPTION_IGNORED) attrs["beetrace.otel.ignored_options"] = true;
  if (items.damaged) attrs["beetrace.otel.damaged"] = true;
  return span;
}

export const otelApi: ProbeManifest = {
  id: "otelapi",
  library: OTEL,
  object: OTELAPI_OBJECT,
  uprobes: [
    { symbol: `${GLOBAL}.(*tracer).Start`, entryProgram: program("otelapi_start_entry"), returnProgram: program("otelapi_start_return") },
    { symbol: `${SPAN}.End`, entryProgram: program("otelapi_end"), returnProgram: program("otelapi_end"), endMarkers: METHOD_SITES },
  ],
  fields: FIELDS,
  record: { type: E.REC_OTELAPI_SPAN, struct: "rec_otelapi_span" },
  flags: () => ({}),
  decode: decodeOtelApi,
};
