/**
 * @module probes/http3/client — manifest of the HTTP/3 client probe: one CLIENT span per request
 * sent through github.com/quic-go/quic-go/http3's Transport or ClientConn (bpf/http3.bpf.c). The
 * span ends when the RoundTrip returns: the response headers have arrived (or the request
 * failed); the body is read later by the caller.
 */
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { CLIENT_TRUNCATED_NAMES, decodeClientRequest, type ClientUrlFlags } from "../nethttp/client.ts";
import { ENUMERATORS as E } from "./http3.gen.ts";
import { HTTP3_OBJECT, LIBRARY, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_URL, SCOPE_NAME, URL_PATH, type Http3Field } from "./object.ts";

export const CLIENT_PROBE_ID = "http3.client";

const Q = "github.com/quic-go/quic-go/http3";

const CLIENT_FIELDS: Http3Field[] = [
  REQ_METHOD,
  REQ_URL,
  URL_PATH,
  REQ_HOST,
  REQ_CTX,
  { const: "url_scheme_off", field: "net/url.URL.Scheme", required: true, why: "url.full, default server.port" },
  { const: "url_host_off", field: "net/url.URL.Host", required: true, why: "url.full, server.address/port" },
  { const: "url_raw_query_off", field: "net/url.URL.RawQuery", required: true, why: "whether url.full has a (redacted) query" },
  { const: "url_opaque_off", field: "net/url.URL.Opaque", required: true, why: "whether the URL is opaque" },
  { const: "url_user_off", field: "net/url.URL.User", required: true, why: "whether url.full has (redacted) userinfo" },
  { const: "userinfo_password_set_off", field: "net/url.Userinfo.passwordSet", required: false, why: "redacted userinfo shows whether a password was present" },
  { const: "resp_status_code_off", field: "net/http.Response.StatusCode", required: true, why: "http.response.status_code" },
];

const URL_FLAGS: ClientUrlFlags = { query: E.HTTP3_CLIENT_F_QUERY, user: E.HTTP3_CLIENT_F_USER, password: E.HTTP3_CLIENT_F_PASSWORD, opaque: E.HTTP3_CLIENT_F_OPAQUE };

const SCOPE = scopeOf(SCOPE_NAME);

/** Builds the client span (semconv v1.37 "HTTP client span"). */
export function buildClient(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "client");
  out.name(decodeClientRequest(r, out, URL_FLAGS));
  out.attr("network.transport", "udp");
  out.attr("network.protocol.name", "http");
  out.attr("network.protocol.version", "3");

  let errorType: string | undefined;
  if (flags & E.HTTP3_CLIENT_F_RESPONSE) {
    const status = r.u16("status");
    out.attr("http.response.status_code", status);
    // Client spans: 4xx and 5xx are errors (semconv "Status").
    if (status >= 400 && status <= 599) {
      out.error();
      errorType = String(status);
    }
  }
  if (flags & E.HTTP3_CLIENT_F_ERROR) {
    out.error("request failed");
    errorType = "_OTHER";
  }
  if (errorType !== undefined) out.attr("error.type", errorType);
  noteTruncated(out, r, CLIENT_TRUNCATED_NAMES);
}

export const http3Client: ProbeManifest = {
  id: CLIENT_PROBE_ID,
  library: LIBRARY,
  object: HTTP3_OBJECT,
  uprobes: [
    // Transport.RoundTrip → RoundTripOpt → … → ClientConn.RoundTrip (http3/transport.go,
    // http3/client.go). RoundTrip is a one-line call of RoundTripOpt (a real call in every build
    // checked, go1.25 … go1.27), so RoundTripOpt sees every Transport request, dialling
    // included; ClientConn.RoundTrip covers a ClientConn used on its own. Inside a Transport's
    // call it is nested and left to the outer one (bpf/http3.bpf.c, client_start); should a
    // toolchain inline RoundTripOpt into RoundTrip, the ClientConn's call still makes the span.
    { symbol: `${Q}.(*Transport).RoundTripOpt`, optional: true, entryProgram: "http3_client_entry", returnProgram: "http3_client_return" },
    { symbol: `${Q}.(*ClientConn).RoundTrip`, optional: true, entryProgram: "http3_client_entry_conn", returnProgram: "http3_client_return_conn" },
  ],
  fields: CLIENT_FIELDS,
  record: { type: E.REC_HTTP3_CLIENT, struct: "rec_http3_client" },
  flags: () => ({}),
  decode: decodeWith(buildClient),
  build: buildClient,
};
