/**
 * @module probes/nethttp/client — manifest of the net/http client probe: one CLIENT span per
 * request sent through net/http.(*Transport).roundTrip (bpf/nethttp.bpf.c).
 */
import type { Attributes, Span, SpanEnd, SpanStart } from "../../spans/model.ts";
import type { Decoded, FieldDecl, ProbeManifest, ToEpoch } from "../probe.ts";
import { C_ENUMS, decodeClientEnd, decodeClientStart } from "./records.ts";
import { baseSpan, defaultPort, escapePath, noteTruncated, num, setMethod, splitHostPort, str } from "./semconv.ts";
import { NETHTTP_OBJECT, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_URL, URL_PATH } from "./server.ts";

export const CLIENT_PROBE_ID = "nethttp.client";

const CLIENT_FIELDS: FieldDecl[] = [
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

function decodeClient(view: DataView, offset: number, length: number): Decoded {
  const tag = length >= 4 && offset >= 0 && offset + 4 <= view.byteLength ? view.getUint32(offset, true) : -1;
  if (tag === C_ENUMS.REC_NETHTTP_CLIENT_START) return decodeClientStart(view, offset, length, CLIENT_PROBE_ID);
  if (tag === C_ENUMS.REC_NETHTTP_CLIENT_END) return decodeClientEnd(view, offset, length, CLIENT_PROBE_ID);
  return { kind: "invalid", reason: `nethttp.client: not a client record (tag ${tag < 0 ? "missing" : "0x" + tag.toString(16)})` };
}

/**
 * url.full without secrets (semconv v1.37 url.full): userinfo becomes "REDACTED:REDACTED@"
 * (or "REDACTED@" without a password); the query is never captured, so any query shows as
 * "?REDACTED". The fragment is not sent over HTTP and not captured.
 */
export function redactedUrl(f: Record<string, string | number>): string {
  const scheme = str(f, "scheme");
  const host = str(f, "urlHost") || str(f, "reqHost");
  let user = "";
  if (num(f, "hasUser")) user = num(f, "hasPassword") ? "REDACTED:REDACTED@" : "REDACTED@";
  const path = num(f, "opaque") ? "" : escapePath(str(f, "path"));
  const query = num(f, "hasQuery") ? "?REDACTED" : "";
  return `${scheme === "" ? "" : scheme + ":"}//${user}${host}${path}${query}`;
}

/** Builds the client span (semconv v1.37 "HTTP client span"). */
export function finishClient(start: SpanStart, end: SpanEnd, toEpoch: ToEpoch): Span {
  const f = start.fields;
  const e = end.fields;
  const attrs: Attributes = {};
  const name = setMethod(attrs, str(f, "method"));
  attrs["url.full"] = redactedUrl(f);

  const hp = splitHostPort(str(f, "urlHost") || str(f, "reqHost"));
  if (hp) {
    attrs["server.address"] = hp.host;
    const port = hp.port ?? defaultPort(str(f, "scheme"));
    if (port !== undefined) attrs["server.port"] = port;
  }

  const span = baseSpan(start, end, toEpoch, name, "client", attrs);

  const status = num(e, "status");
  if (status !== undefined) {
    attrs["http.response.status_code"] = status;
    // Client spans: 4xx and 5xx are errors (semconv "Status"), error.type = the code.
    if (status >= 400 && status <= 599) {
      span.status = { code: "error" };
      attrs["error.type"] = String(status);
    }
  }
  if (str(e, "errorItab") !== "") {
    span.status = { code: "error", message: "transport error" };
    // The error's Go type is known only by its itab address; without a symbol for it the
    // semconv fallback applies.
    attrs["error.type"] = "_OTHER";
  }
  noteTruncated(attrs, f, { path: "url.full", urlHost: "server.address", reqHost: "server.address", method: "http.request.method", scheme: "url.full" });
  if (num(f, "readError") || num(e, "readError")) attrs["beetrace.read_error"] = true;
  return span;
}

export const nethttpClient: ProbeManifest = {
  id: CLIENT_PROBE_ID,
  library: "net/http",
  object: NETHTTP_OBJECT,
  uprobes: [
    { symbol: "net/http.(*Transport).roundTrip", entryProgram: "nethttp_client_entry", returnProgram: "nethttp_client_return" },
  ],
  fields: CLIENT_FIELDS,
  addresses: [],
  recordTypes: [C_ENUMS.REC_NETHTTP_CLIENT_START, C_ENUMS.REC_NETHTTP_CLIENT_END],
  flags: () => ({}),
  decode: decodeClient,
  finish: finishClient,
};
