/**
 * @module probes/nethttp/server — manifest of the net/http server probe: one SERVER span per
 * request handled by net/http.serverHandler.ServeHTTP (bpf/nethttp.bpf.c).
 */
import type { DecodeContext, FlagContext, ProbeManifest } from "../probe.ts";
import { goAtLeast } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, spanName, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./nethttp.gen.ts";
import { H2_STREAM_ID, NETHTTP_OBJECT, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_URL, SCOPE_NAME, URL_PATH, type NethttpField } from "./object.ts";
import { protocolVersion, routeFromPattern, setMethod, setServerAndPeer } from "./semconv.ts";

export const SERVER_PROBE_ID = "nethttp.server";

const PATTERN_FIELD = "net/http.Request.Pattern";
const G_PANIC = "runtime.g._panic";
// The runtime's map layouts, to walk Request.Header for traceparent (bpf/include/go_headers.bpf.h).
const SWISS_DIRPTR = "internal/runtime/maps.Map.dirPtr";
const SWISS_DIRLEN = "internal/runtime/maps.Map.dirLen";
const SWISS_GROUPS = "internal/runtime/maps.table.groups";
const SWISS_GROUPS_DATA = "internal/runtime/maps.groupsReference.data";
const SWISS_GROUPS_MASK = "internal/runtime/maps.groupsReference.lengthMask";
const HMAP_B = "runtime.hmap.B";
const HMAP_BUCKETS = "runtime.hmap.buckets";
const PAT_FIELD = "net/http.Request.pat";
const PATTERN_STR_FIELD = "net/http.pattern.str";

const SERVER_FIELDS: NethttpField[] = [
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
  // Go 1.27 moved it to net/http/internal/http2 (responseWriter{rws} → responseWriterState.status):
  // the same consts, filled from whichever declaration the target's version has.
  { const: "h2_rw_rws_off", field: "net/http.http2responseWriter.rws", required: false, goMax: "1.26", why: "http.response.status_code on HTTP/2" },
  { const: "h2_rws_status_off", field: "net/http.http2responseWriterState.status", required: false, goMax: "1.26", why: "http.response.status_code on HTTP/2" },
  { const: "h2_rw_rws_off", field: "net/http/internal/http2.responseWriter.rws", required: false, goMin: "1.27", why: "http.response.status_code on HTTP/2 (Go >= 1.27)" },
  { const: "h2_rws_status_off", field: "net/http/internal/http2.responseWriterState.status", required: false, goMin: "1.27", why: "http.response.status_code on HTTP/2 (Go >= 1.27)" },
  // The HTTP/2 stream id: rws.stream.id (h2_bundle.go http2responseWriterState.stream,
  // http2stream.id; Go 1.27: net/http/internal/http2.responseWriterState.stream, stream.id).
  { const: "h2_rws_stream_off", field: "net/http.http2responseWriterState.stream", required: false, goMax: "1.26", why: "beetrace.http2.stream_id (joins to the client span)" },
  { const: "h2_stream_id_off", field: "net/http.http2stream.id", required: false, goMax: "1.26", why: "beetrace.http2.stream_id (joins to the client span)" },
  { const: "h2_rws_stream_off", field: "net/http/internal/http2.responseWriterState.stream", required: false, goMin: "1.27", why: "beetrace.http2.stream_id (Go >= 1.27)" },
  { const: "h2_stream_id_off", field: "net/http/internal/http2.stream.id", required: false, goMin: "1.27", why: "beetrace.http2.stream_id (Go >= 1.27)" },
  // Context in: the W3C traceparent/tracestate headers, found by walking the header map.
  { const: "req_header_off", field: "net/http.Request.Header", required: false, why: "traceparent in: the caller's trace and span" },
  { const: "map_dirptr_off", field: SWISS_DIRPTR, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "map_dirlen_off", field: SWISS_DIRLEN, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "table_groups_off", field: SWISS_GROUPS, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "groups_data_off", field: SWISS_GROUPS_DATA, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "groups_mask_off", field: SWISS_GROUPS_MASK, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "hmap_b_off", field: HMAP_B, required: false, goMax: "1.23", why: "walking Request.Header (Go < 1.24 maps)" },
  { const: "hmap_buckets_off", field: HMAP_BUCKETS, required: false, goMax: "1.23", why: "walking Request.Header (Go < 1.24 maps)" },
  // The x/net HTTP/2 server's ResponseWriter: *responseWriter{rws} → responseWriterState.status.
  { const: "xnet_rw_rws_off", field: "golang.org/x/net/http2.responseWriter.rws", required: false, why: "http.response.status_code on the x/net HTTP/2 server" },
  { const: "xnet_rws_status_off", field: "golang.org/x/net/http2.responseWriterState.status", required: false, why: "http.response.status_code on the x/net HTTP/2 server" },
  { const: "xnet_rws_stream_off", field: "golang.org/x/net/http2.responseWriterState.stream", required: false, why: "beetrace.http2.stream_id on the x/net HTTP/2 server" },
  { const: "xnet_stream_id_off", field: "golang.org/x/net/http2.stream.id", required: false, why: "beetrace.http2.stream_id on the x/net HTTP/2 server" },
  // Go 1.27's net/http/internal/http2.ServerRequest, read instead of the Request by the spans
  // http2Handler.ServeHTTP begins (x/net >= v0.62's h2c server on net/http's own; nethttp.bpf.c).
  ...(
    [
      ["srq_ctx_off", "Context"],
      ["srq_proto_major_off", "ProtoMajor"],
      ["srq_proto_minor_off", "ProtoMinor"],
      ["srq_method_off", "Method"],
      ["srq_url_off", "URL"],
      ["srq_header_off", "Header"],
      ["srq_host_off", "Host"],
      ["srq_remote_addr_off", "RemoteAddr"],
      ["srq_tls_off", "TLS"],
    ] as const
  ).map(([c, f]): NethttpField => ({ const: c, field: `net/http/internal/http2.ServerRequest.${f}`, required: false, goMin: "1.27", why: "spans of requests x/net's h2c server hands net/http's HTTP/2 server (Go >= 1.27)" })),
  // A panic in progress while net/http's deferred funcs run (runtime/runtime2.go, runtime/panic.go).
  { const: "g_panic_off", field: G_PANIC, required: false, why: "whether a handler panicked" },
  { const: "panic_arg_off", field: "runtime._panic.arg", required: false, why: "the panic value, for the span's exception event" },
];

function serverFlags(ctx: FlagContext): Record<string, number | bigint> {
  const known = (field: string): boolean => typeof ctx.offset(field) === "number";
  let patternMode: number = E.NETHTTP_PATTERN_NONE;
  if (goAtLeast(ctx.goVersion, "1.23") && known(PATTERN_FIELD)) patternMode = E.NETHTTP_PATTERN_FIELD;
  else if (goAtLeast(ctx.goVersion, "1.22") && known(PAT_FIELD) && known(PATTERN_STR_FIELD)) patternMode = E.NETHTTP_PATTERN_PAT_STR;
  // Go 1.24 replaced the runtime's maps with Swiss tables (internal/runtime/maps). A map walk
  // needs every offset of its layout, else headers are not read (no context in).
  let mapMode: number = E.GO_MAP_NONE;
  if (known("net/http.Request.Header")) {
    if (goAtLeast(ctx.goVersion, "1.24") && [SWISS_DIRPTR, SWISS_DIRLEN, SWISS_GROUPS, SWISS_GROUPS_DATA, SWISS_GROUPS_MASK].every(known)) mapMode = E.GO_MAP_SWISS;
    else if (!goAtLeast(ctx.goVersion, "1.24") && [HMAP_B, HMAP_BUCKETS].every(known)) mapMode = E.GO_MAP_BUCKETS;
  }
  // net/http.serverHandler's type name: http2Handler.ServeHTTP around it is net/http's own server.
  // *http.response: an HTTP/1 writer (its request may still say HTTP/2: h2c's PRI preface).
  return {
    pattern_mode: patternMode,
    map_mode: mapMode,
    nameoff_server_handler: ctx.typeNameOff?.("http.serverHandler") ?? -1,
    nameoff_http1_response: ctx.typeNameOff?.("*http.response") ?? -1,
  };
}

const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { method: "http.request.method", path: "url.path", host: "server.address", remote: "network.peer.address", pattern: "http.route", panic: "exception.message", tracestate: "tracestate" };

/** Builds the server span (semconv v1.37 "HTTP server span"). */
export function buildServer(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "server");
  const method = setMethod(out, r.str("method"));

  const path = r.str("path");
  if (path !== "") out.attr("url.path", path);
  if (flags & E.NETHTTP_SERVER_F_TLS_KNOWN) out.attr("url.scheme", flags & E.NETHTTP_SERVER_F_TLS ? "https" : "http");

  const route = flags & E.NETHTTP_SERVER_F_PATTERN ? routeFromPattern(r.str("pattern")) : undefined;
  if (route !== undefined) out.attr("http.route", route);
  out.name(route !== undefined ? spanName(method, route) : method);

  setServerAndPeer(out, r.str("host"), r.str("remote"));
  const proto = protocolVersion(r.u8("proto_major"), r.u8("proto_minor"));
  if (proto !== undefined) out.attr("network.protocol.version", proto);
  const sid = r.u32("h2_stream_id");
  if (sid !== 0) out.attr(H2_STREAM_ID, sid);

  // No traceparent came: BPF gave the span the client span that another process traced by the
  // same beetrace had in flight on this connection (bpf/include/conn_ctx.bpf.h). Said on the
  // span, since no header names that parent; a tracestate only comes with a traceparent.
  if (flags & E.NETHTTP_SERVER_F_CONN_JOINED) {
    if (out.hasParent) out.attr("beetrace.parent_by_connection", true);
  } else {
    const traceState = r.str("tracestate");
    if (traceState !== "" && out.hasParent) out.traceState(traceState);
  }

  const hijacked = (flags & E.NETHTTP_SERVER_F_HIJACKED) !== 0;
  const panicked = (flags & E.NETHTTP_SERVER_F_PANIC) !== 0;
  const aborted = (flags & E.NETHTTP_SERVER_F_ABORTED) !== 0;
  if (hijacked) out.attr("beetrace.hijacked", true);
  let errorType: string | undefined;
  if (flags & E.NETHTTP_SERVER_F_STATUS) {
    let status = r.u16("status");
    // status 0: the handler wrote no header; net/http then sends 200 when the handler returns
    // (HTTP/1: net/http/server.go, (*response).finishRequest → WriteHeader(StatusOK); HTTP/2:
    // net/http/h2_bundle.go, handlerDone → writeChunk → writeHeader(200)). A hijacked
    // connection's response is whatever the handler writes on the raw connection: unknown.
    if (status === 0 && !hijacked && !panicked && !aborted) status = 200;
    if (status !== 0) {
      out.attr("http.response.status_code", status);
      // Server spans: only 5xx is an error; 4xx is the client's fault (semconv "Status").
      if (status >= 500 && status <= 599) errorType = String(status);
    }
  }
  if (panicked || aborted) {
    // net/http recovered a panic (or the handler called runtime.Goexit): the client got a reset
    // connection (HTTP/1) or RST_STREAM (HTTP/2), whatever status the handler had set.
    const text = r.str("panic");
    out.error(panicked ? (text !== "" ? `panic: ${text}` : "panic") : "the handler did not return (a panic or runtime.Goexit)");
    out.attr("error.type", panicked ? "panic" : "aborted");
    if (panicked) out.event("exception", text !== "" ? { "exception.type": "panic", "exception.message": text } : { "exception.type": "panic" });
  } else if (errorType !== undefined) {
    out.error();
    out.attr("error.type", errorType);
  }
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export const nethttpServer: ProbeManifest = {
  id: SERVER_PROBE_ID,
  library: "net/http",
  object: NETHTTP_OBJECT,
  uprobes: [
    {
      symbol: "net/http.serverHandler.ServeHTTP",
      entryProgram: "nethttp_server_entry",
      returnProgram: "nethttp_server_return",
      endMarkers: [
        {
          choices: [{ symbols: ["net/http.(*response).finishRequest"], program: "nethttp_server_end_http1" }],
          neededIf: "always",
          why: "HTTP/1: conn.serve calls it right after the handler returns (net/http/server.go)",
        },
        {
          choices: [
            // runHandler's deferred func runs on the handler's own goroutine after the handler
            // returned or while it panics; g._panic tells the two apart. Go 1.27 moved the
            // server into net/http/internal/http2.
            {
              symbols: ["net/http.(*http2serverConn).runHandler.func1", "net/http/internal/http2.(*serverConn).runHandler.func1"],
              program: "nethttp_server_end_http2",
              fields: [G_PANIC],
            },
            // Without g._panic's offset: handlerDone, which only a normal return reaches (the
            // writer net/http hands the handler is the pointer handlerDone receives; in Go 1.27
            // http2ResponseWriter{*http2.ResponseWriter} is pointer-shaped, so the same holds).
            {
              symbols: ["net/http.(*http2responseWriter).handlerDone", "net/http/internal/http2.(*responseWriter).handlerDone"],
              program: "nethttp_server_end_http2_done",
            },
          ],
          neededIf: { linked: ["net/http.(*http2serverConn).runHandler", "net/http/internal/http2.(*serverConn).runHandler"] },
          why: "HTTP/2: the end of the handler, seen from runHandler (net/http/h2_bundle.go)",
        },
        {
          // conn.serve's deferred recover: a request still open when it runs did not return.
          choices: [{ symbols: ["net/http.(*conn).serve.func1"], program: "nethttp_server_end_conn" }],
          neededIf: "if-linked",
          why: "HTTP/1: a handler that panicked never reaches finishRequest; conn.serve's deferred func recovers it",
        },
        {
          choices: [{ symbols: ["net/http.(*response).Hijack"], program: "nethttp_server_end_hijack" }],
          // Not linked when nothing asserts http.Hijacker: then nothing can hijack either.
          neededIf: "if-linked",
          why: "a hijacked HTTP/1 connection never reaches finishRequest",
        },
      ],
    },
    {
      // Go 1.27: net/http's HTTP/2 server calls every handler through http2Handler.ServeHTTP,
      // which builds the *Request. Around serverHandler (net/http's own server) the span is
      // serverHandler.ServeHTTP's; around an application's handler (x/net >= v0.62's h2c server
      // wraps net/http's, golang.org/x/net/http2/server_wrap.go) it begins here, from the
      // ServerRequest. Ended by the markers above (runHandler.func1 / handlerDone of
      // net/http/internal/http2, the same goroutine), so it has no end of its own.
      symbol: "net/http.http2Handler.ServeHTTP",
      optional: true,
      entryOnly: true,
      // Only x/net's wrapper hands it handlers other than serverHandler (through the
      // ServeConnFunc hook): without x/net's server linked, every request it sees is traced at
      // serverHandler.ServeHTTP, so the hit would be wasted on every HTTP/2 request.
      onlyIfLinked: ["golang.org/x/net/http2.(*Server).ServeConn", "golang.org/x/net/http2.(*Server).serveConn"],
      entryProgram: "nethttp_server_entry_h2handler",
      returnProgram: "nethttp_server_return",
    },
    {
      // The golang.org/x/net/http2 server (h2c.NewHandler, http2.ConfigureServer,
      // Server.ServeConn) calls handlers from runHandler on a goroutine of their own, never
      // through serverHandler.ServeHTTP: the same span, from its own entry.
      symbol: "golang.org/x/net/http2.(*serverConn).runHandler",
      optional: true,
      entryProgram: "nethttp_server_entry_xnet",
      returnProgram: "nethttp_server_return_xnet",
      endMarkers: [
        {
          choices: [
            { symbols: ["golang.org/x/net/http2.(*serverConn).runHandler.func1"], program: "nethttp_server_end_xnet", fields: [G_PANIC] },
            { symbols: ["golang.org/x/net/http2.(*responseWriter).handlerDone"], program: "nethttp_server_end_xnet_done" },
          ],
          neededIf: "always",
          why: "x/net HTTP/2: the end of the handler, seen from runHandler (golang.org/x/net/http2/server.go)",
        },
      ],
    },
  ],
  fields: SERVER_FIELDS,
  record: { type: E.REC_NETHTTP_SERVER, struct: "rec_nethttp_server" },
  flags: serverFlags,
  decode: decodeWith(buildServer),
  build: buildServer,
};
