/**
 * @module probes/http3/server — manifest of the HTTP/3 server probe: one SERVER span per request
 * that a github.com/quic-go/quic-go/http3 server (v0.59 … v0.66) hands to its Handler
 * (bpf/http3.bpf.c; the probed function is the closure around Handler.ServeHTTP in
 * (*RawServerConn).handleRequestStream, http3/server_conn.go).
 */
import type { DecodeContext, FlagContext, ProbeManifest } from "../probe.ts";
import { goAtLeast } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, spanName, type SpanBuilder } from "../common/span.ts";
import { protocolVersion, routeFromPattern, setMethod, setServerAndPeer } from "../nethttp/semconv.ts";
import { ENUMERATORS as E } from "./http3.gen.ts";
import { HTTP3_OBJECT, LIBRARY, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_PROTO_MAJOR, REQ_URL, SCOPE_NAME, URL_PATH, type Http3Field } from "./object.ts";

export const SERVER_PROBE_ID = "http3.server";

const Q = "github.com/quic-go/quic-go/http3";
/**
 * The closure quic-go runs the handler in (its RETs end the span): func2 in v0.59 … v0.65 (func1
 * is the trailer callback there), func1 from v0.66, which dropped that callback.
 */
export const HANDLER_CLOSURES = [`${Q}.(*RawServerConn).handleRequestStream.func2`, `${Q}.(*RawServerConn).handleRequestStream.func1`] as const;

const SWISS = ["internal/runtime/maps.Map.dirPtr", "internal/runtime/maps.Map.dirLen", "internal/runtime/maps.table.groups", "internal/runtime/maps.groupsReference.data", "internal/runtime/maps.groupsReference.lengthMask"];
const BUCKETS = ["runtime.hmap.B", "runtime.hmap.buckets"];
const REQ_HEADER = "net/http.Request.Header";
const G_PANIC = "runtime.g._panic";

const SERVER_FIELDS: Http3Field[] = [
  REQ_METHOD,
  REQ_URL,
  URL_PATH,
  REQ_HOST,
  REQ_CTX,
  REQ_PROTO_MAJOR,
  { const: "req_proto_minor_off", field: "net/http.Request.ProtoMinor", required: true, why: "network.protocol.version" },
  { const: "req_remote_addr_off", field: "net/http.Request.RemoteAddr", required: true, why: "network.peer.address/port" },
  { const: "req_pattern_off", field: "net/http.Request.Pattern", required: false, goMin: "1.23", why: "http.route (ServeMux pattern)" },
  { const: "rw_status_off", field: `${Q}.responseWriter.status`, required: false, why: "http.response.status_code" },
  { const: "rw_hijacked_off", field: `${Q}.responseWriter.hijacked`, required: false, why: "a stream the handler took over (HTTPStream) has no status" },
  // A panic in progress while the closure's deferred recover runs (runtime/runtime2.go).
  { const: "g_panic_off", field: G_PANIC, required: false, why: "whether a handler panicked (ends the span at the deferred recover)" },
  // Context in: the W3C traceparent/tracestate headers, found by walking the header map.
  { const: "req_header_off", field: REQ_HEADER, required: false, why: "traceparent in: the caller's trace and span" },
  { const: "map_dirptr_off", field: SWISS[0]!, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "map_dirlen_off", field: SWISS[1]!, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "table_groups_off", field: SWISS[2]!, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "groups_data_off", field: SWISS[3]!, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "groups_mask_off", field: SWISS[4]!, required: false, goMin: "1.24", why: "walking Request.Header (Go >= 1.24 maps)" },
  { const: "hmap_b_off", field: BUCKETS[0]!, required: false, goMax: "1.23", why: "walking Request.Header (Go < 1.24 maps)" },
  { const: "hmap_buckets_off", field: BUCKETS[1]!, required: false, goMax: "1.23", why: "walking Request.Header (Go < 1.24 maps)" },
];

function serverFlags(ctx: FlagContext): Record<string, number | bigint> {
  const known = (field: string): boolean => typeof ctx.offset(field) === "number";
  // A header walk needs every offset of the runtime's map layout (Swiss tables from Go 1.24).
  let mapMode: number = E.GO_MAP_NONE;
  if (known(REQ_HEADER)) {
    if (goAtLeast(ctx.goVersion, "1.24") && SWISS.every(known)) mapMode = E.GO_MAP_SWISS;
    else if (!goAtLeast(ctx.goVersion, "1.24") && BUCKETS.every(known)) mapMode = E.GO_MAP_BUCKETS;
  }
  return { map_mode: mapMode };
}

const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { method: "http.request.method", path: "url.path", host: "server.address", remote: "network.peer.address", pattern: "http.route", tracestate: "tracestate" };

/** Builds the server span (semconv v1.37 "HTTP server span"). */
export function buildServer(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "server");
  const method = setMethod(out, r.str("method"));
  const path = r.str("path");
  if (path !== "") out.attr("url.path", path);
  // HTTP/3 runs over QUIC, which is always TLS 1.3 (RFC 9114 §3.1).
  out.attr("url.scheme", "https");

  const route = flags & E.HTTP3_SERVER_F_PATTERN ? routeFromPattern(r.str("pattern")) : undefined;
  if (route !== undefined) out.attr("http.route", route);
  out.name(route !== undefined ? spanName(method, route) : method);
  setServerAndPeer(out, r.str("host"), r.str("remote"));
  out.attr("network.transport", "udp");
  out.attr("network.protocol.name", "http");
  out.attr("network.protocol.version", protocolVersion(r.u8("proto_major"), r.u8("proto_minor")) ?? "3");

  const traceState = r.str("tracestate");
  if (traceState !== "" && out.hasParent) out.traceState(traceState);

  const hijacked = (flags & E.HTTP3_SERVER_F_HIJACKED) !== 0;
  const panicked = (flags & E.HTTP3_SERVER_F_PANIC) !== 0;
  if (hijacked) out.attr("beetrace.hijacked", true);
  let errorType: string | undefined;
  if (flags & E.HTTP3_SERVER_F_STATUS && !panicked) {
    let status = r.u16("status");
    // status 0: the handler wrote no header; quic-go then sends 200 once it returns
    // (http3/response_writer.go: Finish → FlushError → WriteHeader(http.StatusOK)). A hijacked
    // stream's response is whatever the handler wrote on it: unknown.
    if (status === 0 && !hijacked) status = 200;
    if (status !== 0) {
      out.attr("http.response.status_code", status);
      // Server spans: only 5xx is an error; 4xx is the client's fault (semconv "Status").
      if (status >= 500 && status <= 599) {
        out.error();
        errorType = String(status);
      }
    }
  }
  if (panicked) {
    // quic-go recovered the panic and reset the stream (H3_INTERNAL_ERROR), whatever status had been set.
    out.error("panic");
    errorType = "panic";
  }
  if (errorType !== undefined) out.attr("error.type", errorType);
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export const http3Server: ProbeManifest = {
  id: SERVER_PROBE_ID,
  library: LIBRARY,
  object: HTTP3_OBJECT,
  uprobes: [
    // The end: the closure's deferred recover, which runs on the handler's goroutine as soon as
    // the handler returns or panics (g._panic tells which); without g._panic's offset, the
    // closure's RETs. The closure's arguments differ between the two releases' closures (req by
    // reference, then by value): each has its programs, and a RET ends only a span its own closure
    // began (bpf/http3.bpf.c).
    ...HANDLER_CLOSURES.map((symbol, i) => ({
      symbol,
      optional: true,
      entryProgram: i === 0 ? "http3_server_entry" : "http3_server_entry_byval",
      returnProgram: i === 0 ? "http3_server_return" : "http3_server_return_byval",
      endMarkers: [
        {
          choices: [{ symbols: [`${symbol}.1`], program: "http3_server_end_deferred", fields: [G_PANIC] }],
          neededIf: "always" as const,
          why: "the handler returned or panicked: the closure's deferred recover (http3/server_conn.go)",
        },
      ],
    })),
  ],
  fields: SERVER_FIELDS,
  record: { type: E.REC_HTTP3_SERVER, struct: "rec_http3_server" },
  flags: serverFlags,
  decode: decodeWith(buildServer),
  build: buildServer,
};
