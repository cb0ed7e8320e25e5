/**
 * @module probes/nethttp/client — manifest of the net/http client probe: one CLIENT span per
 * request sent through net/http.(*Transport).roundTrip (bpf/nethttp.bpf.c). The span ends when
 * roundTrip returns, i.e. when the response headers have arrived (or the request failed); the
 * body is read later by the caller and is not part of it.
 */
import type { Attributes, Span } from "../../spans/model.ts";
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { baseSpan, noteTruncated } from "../common/span.ts";
import { ENUMERATORS as E } from "./nethttp.gen.ts";
import { NETHTTP_OBJECT, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_URL, SCOPE_NAME, URL_PATH, type NethttpField } from "./object.ts";
import { defaultPort, escapePath, setMethod, splitHostPort } from "./semconv.ts";

export const CLIENT_PROBE_ID = "nethttp.client";

const CLIENT_FIELDS: NethttpField[] = [
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
  {
    const: "userinfo_password_set_off",
    field: "net/url.Userinfo.passwordSet",
    required: false,
    why: "redacted userinfo shows whether a password was present",
  },
  { const: "resp_status_code_off", field: "net/http.Response.StatusCode", required: true, why: "http.response.status_code" },
];

/** What the client record says about its URL. */
export interface ClientUrl {
  scheme: string;
  urlHost: string;
  reqHost: string;
  path: string;
  hasQuery: boolean;
  hasUser: boolean;
  hasPassword: boolean;
  opaque: boolean;
}

/**
 * url.full without secrets (semconv v1.37 url.full): userinfo becomes "REDACTED:REDACTED@"
 * (or "REDACTED@" without a password); the query is never captured, so any query shows as
 * "?REDACTED". The fragment is not sent over HTTP and not captured.
 */
export function redactedUrl(u: ClientUrl): string {
  const host = u.urlHost || u.reqHost;
  let user = "";
  if (u.hasUser) user = u.hasPassword ? "REDACTED:REDACTED@" : "REDACTED@";
  const path = u.opaque ? "" : escapePath(u.path);
  const query = u.hasQuery ? "?REDACTED" : "";
  return `${u.scheme === "" ? "" : u.scheme + ":"}//${user}${host}${path}${query}`;
}

/** Builds the client span (semconv v1.37 "HTTP client span"). */
export function decodeClient(r: RecordReader, ctx: DecodeContext): Span {
  const flags = r.flags;
  const attrs: Attributes = {};
  const name = setMethod(attrs, r.str("method"));
  const url: ClientUrl = {
    scheme: r.str("scheme"),
    urlHost: r.str("url_host"),
    reqHost: r.str("req_host"),
    path: r.str("path"),
    hasQuery: (flags & E.NETHTTP_CLIENT_F_QUERY) !== 0,
    hasUser: (flags & E.NETHTTP_CLIENT_F_USER) !== 0,
    hasPassword: (flags & E.NETHTTP_CLIENT_F_PASSWORD) !== 0,
    opaque: (flags & E.NETHTTP_CLIENT_F_OPAQUE) !== 0,
  };
  attrs["url.full"] = redactedUrl(url);

  const hp = splitHostPort(url.urlHost || url.reqHost);
  if (hp) {
    attrs["server.address"] = hp.host;
    const port = hp.port ?? defaultPort(url.scheme);
    if (port !== undefined) attrs["server.port"] = port;
  }

  const span = baseSpan(r, ctx, SCOPE_NAME, name, "client", attrs);

  if (flags & E.NETHTTP_CLIENT_F_RESPONSE) {
    const status = r.u16("status");
    attrs["http.response.status_code"] = status;
    // Client spans: 4xx and 5xx are errors (semconv "Status"), error.type = the code.
    if (status >= 400 && status <= 599) {
      span.status = { code: "error" };
      attrs["error.type"] = String(status);
    }
  }
  if (flags & E.NETHTTP_CLIENT_F_ERROR) {
    span.status = { code: "error", message: "transport error" };
    // The error's Go type is known only by its itab address; without a symbol for it the
    // semconv fallback applies.
    attrs["error.type"] = "_OTHER";
  }
  noteTruncated(attrs, r, { method: "http.request.method", scheme: "url.full", url_host: "server.address", path: "url.full", req_host: "server.address" });
  return span;
}

export const nethttpClient: ProbeManifest = {
  id: CLIENT_PROBE_ID,
  library: "net/http",
  object: NETHTTP_OBJECT,
  uprobes: [{ symbol: "net/http.(*Transport).roundTrip", entryProgram: "nethttp_client_entry", returnProgram: "nethttp_client_return" }],
  fields: CLIENT_FIELDS,
  record: { type: E.REC_NETHTTP_CLIENT, struct: "rec_nethttp_client" },
  flags: () => ({}),
  decode: decodeClient,
};
