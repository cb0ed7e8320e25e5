/**
 * @module probes/nethttp/server — manifest of the net/http server probe: one SERVER span per
 * request handled by net/http.serverHandler.ServeHTTP (bpf/nethttp.bpf.c).
 */
import type { Attributes, Span, SpanEnd, SpanStart } from "../../spans/model.ts";
import type { AddressDecl, BpfObjectSpec, Decoded, FieldDecl, FlagContext, ProbeManifest, ToEpoch } from "../probe.ts";
import { goAtLeast } from "../probe.ts";
import { C_ENUMS, decodeServerEnd, decodeServerStart } from "./records.ts";
import { baseSpan, noteTruncated, num, protocolVersion, routeFromPattern, setMethod, splitHostPort, str } from "./semconv.ts";

export const SERVER_PROBE_ID = "nethttp.server";

/** bpf/nethttp.bpf.c: shared by the server and client probes. */
export const NETHTTP_OBJECT: BpfObjectSpec = {
  name: "nethttp",
  ringbufMap: "events",
  inflightMaps: ["nethttp_server_inflight", "nethttp_client_inflight", "go_ctx_spans"],
  counters: [
    { name: "ringbuf_full", loss: "ringbufFull", what: "ring buffer full: record dropped" },
    { name: "inflight_full", loss: "inflightFull", what: "in-flight map full at entry: call not traced" },
    { name: "return_without_entry", loss: "returnWithoutEntry", what: "RET hit with no entry state" },
    { name: "truncated_strings", loss: "truncatedStrings", what: "string longer than its record buffer" },
    { name: "read_errors", what: "failed reads of target memory (fields left empty)" },
    { name: "entry_replaced", what: "stale entry state replaced (earlier call never returned: panic/Goexit)" },
    { name: "ctx_map_full", what: "context map full: cross-goroutine children lose their parent" },
  ],
};

/* net/http.Request fields both probes read. Declared once here; client.ts imports them. */
export const REQ_METHOD: FieldDecl = { const: "req_method_off", field: "net/http.Request.Method", required: true, why: "http.request.method" };
export const REQ_URL: FieldDecl = { const: "req_url_off", field: "net/http.Request.URL", required: true, why: "the *url.URL holding path/host/scheme" };
export const URL_PATH: FieldDecl = { const: "url_path_off", field: "net/url.URL.Path", required: true, why: "url.path, url.full" };
export const REQ_HOST: FieldDecl = { const: "req_host_off", field: "net/http.Request.Host", required: true, why: "server.address/server.port" };
export const REQ_CTX: FieldDecl = {
  const: "req_ctx_off",
  field: "net/http.Request.ctx",
  required: false,
  why: "parent/child links across goroutines (context.Context chain)",
};

const PATTERN_FIELD = "net/http.Request.Pattern";
const PAT_FIELD = "net/http.Request.pat";
const PATTERN_STR_FIELD = "net/http.pattern.str";
const H2_RW_RWS_FIELD = "net/http.http2responseWriter.rws";
const H2_RWS_STATUS_FIELD = "net/http.http2responseWriterState.status";

const SERVER_FIELDS: FieldDecl[] = [
  REQ_METHOD,
  REQ_URL,
  URL_PATH,
  REQ_HOST,
  REQ_CTX,
  { const: "req_remote_addr_off", field: "net/http.Request.RemoteAddr", required: true, why: "network.peer.address/port" },
  { const: "req_proto_major_off", field: "net/http.Request.ProtoMajor", required: true, why: "network.protocol.version" },
  { const: "req_proto_minor_off", field: "net/http.Request.ProtoMinor", required: true, why: "network.protocol.version" },
  { const: "req_tls_off", field: "net/http.Request.TLS", required: false, why: "url.scheme (https when TLS != nil)" },
  { const: "req_pattern_off", field: PATTERN_FIELD, required: false, goMin: "1.23", why: "http.route (ServeMux pattern)" },
  { const: "req_pat_off", field: PAT_FIELD, required: false, goMin: "1.22", goMax: "1.22", why: "http.route on Go 1.22" },
  { const: "pattern_str_off", field: PATTERN_STR_FIELD, required: false, goMin: "1.22", goMax: "1.22", why: "http.route on Go 1.22" },
  { const: "response_status_off", field: "net/http.response.status", required: false, why: "http.response.status_code" },
  // The HTTP/2 ResponseWriter (net/http/h2_bundle.go): *http2responseWriter{rws} → rws.status.
  { const: "h2_rw_rws_off", field: H2_RW_RWS_FIELD, required: false, why: "http.response.status_code on HTTP/2" },
  { const: "h2_rws_status_off", field: H2_RWS_STATUS_FIELD, required: false, why: "http.response.status_code on HTTP/2" },
];

/** The HTTP/1 ResponseWriter's itab: status is read only from writers that have it. */
const RW_ITAB: AddressDecl = {
  const: "rw_itab_addr",
  symbol: "go:itab.*net/http.response,net/http.ResponseWriter",
  required: false,
  why: "http.response.status_code (only *http.response has the status field; HTTP/2 writers do not)",
};

/** bpf/nethttp.bpf.c pattern_mode values. */
const PATTERN_MODE = { none: 0, patStr: 1, field: 2 } as const;

function serverFlags(ctx: FlagContext): Record<string, number | bigint> {
  const known = (field: string): boolean => typeof ctx.offset(field) === "number";
  let patternMode: number = PATTERN_MODE.none;
  if (goAtLeast(ctx.goVersion, "1.23") && known(PATTERN_FIELD)) patternMode = PATTERN_MODE.field;
  else if (goAtLeast(ctx.goVersion, "1.22") && known(PAT_FIELD) && known(PATTERN_STR_FIELD)) patternMode = PATTERN_MODE.patStr;
  return {
    pattern_mode: patternMode,
    // 0 = unknown: BPF then never reads the status rather than read a non-HTTP/1 writer.
    rw_itab_addr: ctx.address(RW_ITAB.symbol) ?? 0n,
  };
}

function decodeServer(view: DataView, offset: number, length: number): Decoded {
  const tag = length >= 4 && offset >= 0 && offset + 4 <= view.byteLength ? view.getUint32(offset, true) : -1;
  if (tag === C_ENUMS.REC_NETHTTP_SERVER_START) return decodeServerStart(view, offset, length, SERVER_PROBE_ID);
  if (tag === C_ENUMS.REC_NETHTTP_SERVER_END) return decodeServerEnd(view, offset, length, SERVER_PROBE_ID);
  return { kind: "invalid", reason: `nethttp.server: not a server record (tag ${tag < 0 ? "missing" : "0x" + tag.toString(16)})` };
}

/** Builds the server span (semconv v1.37 "HTTP server span"). */
export function finishServer(start: SpanStart, end: SpanEnd, toEpoch: ToEpoch): Span {
  const f = start.fields;
  const e = end.fields;
  const attrs: Attributes = {};
  const method = setMethod(attrs, str(f, "method"));

  const path = str(f, "path");
  if (path !== "") attrs["url.path"] = path;
  const tls = num(f, "tls");
  if (tls !== undefined) attrs["url.scheme"] = tls ? "https" : "http";

  let name = method;
  const route = routeFromPattern(str(e, "pattern"));
  if (route !== undefined) {
    attrs["http.route"] = route;
    name = `${method} ${route}`;
  }

  const host = splitHostPort(str(f, "host"));
  if (host) {
    attrs["server.address"] = host.host;
    if (host.port !== undefined) attrs["server.port"] = host.port;
  }
  const peer = splitHostPort(str(f, "remoteAddr"));
  if (peer) {
    attrs["network.peer.address"] = peer.host;
    if (peer.port !== undefined) attrs["network.peer.port"] = peer.port;
  }
  const proto = protocolVersion(num(f, "protoMajor") ?? 0, num(f, "protoMinor") ?? 0);
  if (proto !== undefined) attrs["network.protocol.version"] = proto;

  const span = baseSpan(start, end, toEpoch, name, "server", attrs);

  let status = num(e, "status");
  // status 0: the handler wrote no header; net/http then sends 200 when the handler returns
  // (HTTP/1: net/http/server.go, (*response).finishRequest → WriteHeader(StatusOK); HTTP/2:
  // net/http/h2_bundle.go, handlerDone → writeChunk → writeHeader(200)).
  if (status === 0) status = 200;
  if (status !== undefined) {
    attrs["http.response.status_code"] = status;
    // Server spans: only 5xx is an error; 4xx is the client's fault (semconv "Status").
    if (status >= 500 && status <= 599) {
      span.status = { code: "error" };
      attrs["error.type"] = String(status);
    }
  }
  noteTruncated(attrs, f, { path: "url.path", host: "server.address", remoteAddr: "network.peer.address", method: "http.request.method" });
  noteTruncated(attrs, e, { pattern: "http.route" });
  if (num(f, "readError") || num(e, "readError")) attrs["beetrace.read_error"] = true;
  return span;
}

export const nethttpServer: ProbeManifest = {
  id: SERVER_PROBE_ID,
  library: "net/http",
  object: NETHTTP_OBJECT,
  uprobes: [
    { symbol: "net/http.serverHandler.ServeHTTP", entryProgram: "nethttp_server_entry", returnProgram: "nethttp_server_return" },
  ],
  fields: SERVER_FIELDS,
  addresses: [RW_ITAB],
  recordTypes: [C_ENUMS.REC_NETHTTP_SERVER_START, C_ENUMS.REC_NETHTTP_SERVER_END],
  flags: serverFlags,
  decode: decodeServer,
  finish: finishServer,
};
