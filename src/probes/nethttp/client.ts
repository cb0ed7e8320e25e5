/**
 * @module probes/nethttp/client — manifest of the net/http client probe: one CLIENT span per
 * request sent through net/http.(*Transport).roundTrip (bpf/nethttp.bpf.c). The span ends when
 * roundTrip returns, i.e. when the response headers have arrived (or the request failed); the
 * body is read later by the caller and is not part of it.
 */
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./nethttp.gen.ts";
import { H2_STREAM_ID, NETHTTP_OBJECT, REQ_CTX, REQ_HOST, REQ_METHOD, REQ_URL, SCOPE_NAME, URL_PATH, type NethttpField } from "./object.ts";
import { defaultPort, escapePath, setMethod, splitHostPort } from "./semconv.ts";
import { ipField } from "../common/net.ts";
import { Memo3 } from "../common/memo.ts";

export const CLIENT_PROBE_ID = "nethttp.client";

/** The fields the connection walk of nethttp_client_conn reads (bpf/nethttp.bpf.c), by const. */
const LOCAL_ADDR_FIELDS: readonly (readonly [NethttpField["const"], string])[] = [
  ["pconn_conn_off", "net/http.persistConn.conn"],
  ["tls_conn_conn_off", "crypto/tls.Conn.conn"],
  ["netconn_fd_off", "net.conn.fd"],
  ["netfd_laddr_off", "net.netFD.laddr"],
  ["tcpaddr_ip_off", "net.TCPAddr.IP"],
  ["tcpaddr_port_off", "net.TCPAddr.Port"],
];

/**
 * Where an HTTP/1 request's connection is known: (*persistConn).roundTrip runs on the caller's
 * goroutine with the chosen connection as receiver (net/http/transport.go). One extra emulated
 * hit per request; crypto/tls.Conn.conn is needed only for TLS connections, so it is not required.
 */
const CONN_SITE = {
  symbols: ["net/http.(*persistConn).roundTrip"],
  program: "nethttp_client_conn",
  fields: LOCAL_ADDR_FIELDS.map(([, f]) => f).filter((f) => f !== "crypto/tls.Conn.conn"),
  why: "network.local.address/port of the request's connection",
};

/**
 * Where an HTTP/2 request's stream id is known: the clientStream's encodeAndWriteHeaders(req),
 * on the stream's own goroutine (started by ClientConn.roundTrip), right after addStreamLocked
 * assigned the id and before the HEADERS frame is written (net/http/h2_bundle.go writeRequest;
 * Go 1.27: net/http/internal/http2/transport.go). A real call in Go 1.21 … 1.27 and x/net v0.1.0 …
 * v0.63. One extra emulated hit per HTTP/2 request, none for HTTP/1. No `fields`: the versions
 * name them differently, so the program checks its offsets itself (an unplaced site would warn on
 * every binary; one without offsets costs the hit and records nothing).
 */
const H2_SITE = {
  symbols: ["net/http.(*http2clientStream).encodeAndWriteHeaders", "net/http/internal/http2.(*clientStream).encodeAndWriteHeaders"],
  program: "nethttp_client_h2",
  why: "the HTTP/2 stream id and local end of the request's connection",
};
const XNET_H2_SITE = {
  symbols: ["golang.org/x/net/http2.(*clientStream).encodeAndWriteHeaders"],
  program: "nethttp_client_h2_xnet",
  why: "the HTTP/2 stream id and local end of the request's connection (x/net client)",
  // x/net >= v0.62 built by Go 1.27 wraps net/http's client (golang.org/x/net/http2/
  // transport_wrap.go): its ClientConn hands requests to net/http, whose stream site is H2_SITE.
  optional: true,
};

/** The HTTP/2 client's stream and connection (H2_SITE), per Go version, then x/net's. */
const H2_FIELDS: NethttpField[] = [
  ...(
    [
      ["h2_cs_id_off", "clientStream.ID", "http2clientStream.ID"],
      ["h2_cs_cc_off", "clientStream.cc", "http2clientStream.cc"],
      ["h2_cc_tconn_off", "ClientConn.tconn", "http2ClientConn.tconn"],
    ] as const
  ).flatMap(([c, internal, bundled]) => [
    { const: c, field: `net/http.${bundled}`, required: false, goMax: "1.26", why: "beetrace.http2.stream_id, network.local.address/port on HTTP/2" },
    { const: c, field: `net/http/internal/http2.${internal}`, required: false, goMin: "1.27", why: "beetrace.http2.stream_id, network.local.address/port on HTTP/2 (Go >= 1.27)" },
  ]),
  { const: "h2_creq_url_off", field: "net/http.Request.URL", required: false, goMax: "1.26", why: "finds an HTTP/2 stream's client span (its request's URL)" },
  { const: "h2_creq_url_off", field: "net/http/internal/http2.ClientRequest.URL", required: false, goMin: "1.27", why: "finds an HTTP/2 stream's client span (Go >= 1.27)" },
  { const: "xnet_cs_id_off", field: "golang.org/x/net/http2.clientStream.ID", required: false, why: "beetrace.http2.stream_id (x/net client)" },
  { const: "xnet_cs_cc_off", field: "golang.org/x/net/http2.clientStream.cc", required: false, why: "network.local.address/port (x/net client)" },
  { const: "xnet_cc_tconn_off", field: "golang.org/x/net/http2.ClientConn.tconn", required: false, why: "network.local.address/port (x/net client)" },
];

/** The client record's local address (local_addr_size bytes of local_addr), as Go prints an IP. */

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
  // The connection's local end, read at (*persistConn).roundTrip (CONN_SITE): optional, without
  // them the span lacks network.local.address/port and `beetrace merge` cannot join it.
  ...LOCAL_ADDR_FIELDS.map(([c, field]) => ({ const: c, field, required: false, why: "network.local.address/port (joins the span to the server span it caused)" })),
  ...H2_FIELDS,
  { const: "op_error_err_off", field: "net.OpError.Err", required: false, why: "error.type: the cause inside a *net.OpError" },
  { const: "syscall_error_err_off", field: "os.SyscallError.Err", required: false, why: "error.type: the errno inside an *os.SyscallError" },
];

/** The error types bpf/include/go_errors.bpf.h tells apart, by their rodata const (name offsets). */
const ERROR_TYPES: Record<string, string> = {
  nameoff_net_op_error: "*net.OpError",
  nameoff_os_syscall_error: "*os.SyscallError",
  nameoff_syscall_errno: "syscall.Errno",
  nameoff_net_dns_error: "*net.DNSError",
  nameoff_poll_deadline: "*poll.DeadlineExceededError",
  nameoff_context_deadline: "context.deadlineExceededError",
  nameoff_tls_verification: "*tls.CertificateVerificationError",
};

/**
 * Linux errno values (asm-generic/errno.h; the same on amd64 and arm64) a failed request ends
 * with, as low-cardinality error.type values and the text Go prints for them (syscall.Errno.Error).
 */
const ERRNOS: Record<number, { type: string; text: string }> = {
  104: { type: "connection_reset", text: "connection reset by peer" },
  110: { type: "timeout", text: "connection timed out" },
  111: { type: "connection_refused", text: "connection refused" },
  113: { type: "host_unreachable", text: "no route to host" },
  101: { type: "network_unreachable", text: "network is unreachable" },
  32: { type: "broken_pipe", text: "broken pipe" },
};

/** error.type and status description of a transport error (the client record's err_cause/err_errno). */
export function transportError(cause: number, errno: number): { type: string; message: string } {
  switch (cause) {
    case E.GO_ERR_ERRNO: {
      const e = ERRNOS[errno];
      return e ? { type: e.type, message: e.text } : { type: "_OTHER", message: `errno ${errno}` };
    }
    case E.GO_ERR_TIMEOUT:
      return { type: "timeout", message: "deadline exceeded" };
    case E.GO_ERR_DNS:
      return { type: "name_resolution_error", message: "DNS lookup failed" };
    case E.GO_ERR_TLS:
      return { type: "tls_certificate_invalid", message: "TLS certificate verification failed" };
    default:
      return { type: "_OTHER", message: "transport error" };
  }
}

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

/** The record flag bits of a client record's URL (bpf/include/go_http.bpf.h's BEE_HTTP_URL_*, named per record). */
export interface ClientUrlFlags {
  query: number;
  user: number;
  password: number;
  opaque: number;
}

/**
 * What every HTTP client record carries the same way (bpf/include/go_http.bpf.h): the method
 * (http.request.method, returned as the span name), url.full (redacted), server.address/port.
 */
export function decodeClientRequest(r: RecordReader, out: SpanBuilder, bits: ClientUrlFlags): string {
  const flags = r.flags;
  const name = setMethod(out, r.str("method"));
  const scheme = r.str("scheme");
  const host = r.str("url_host") || r.str("req_host");
  const path = r.str("path");
  const urlBits = (flags & bits.query ? 1 : 0) | (flags & bits.user ? 2 : 0) | (flags & bits.password ? 4 : 0) | (flags & bits.opaque ? 8 : 0);
  let full = URL_FULL.get(path, host, scheme, urlBits);
  if (full === undefined) {
    full = redactedUrl({ scheme, urlHost: host, reqHost: "", path, hasQuery: (urlBits & 1) !== 0, hasUser: (urlBits & 2) !== 0, hasPassword: (urlBits & 4) !== 0, opaque: (urlBits & 8) !== 0 });
    URL_FULL.set(path, host, scheme, urlBits, full);
  }
  out.attr("url.full", full);
  const hp = splitHostPort(host);
  if (hp) {
    out.attr("server.address", hp.host);
    const port = hp.port ?? defaultPort(scheme);
    if (port !== undefined) out.attr("server.port", port);
  }
  return name;
}

/** url.full per (path, host, scheme, URL flag bits), made once: a client calls the same few URLs span after span. */
const URL_FULL = new Memo3<string>();

const URL_FLAGS: ClientUrlFlags = { query: E.NETHTTP_CLIENT_F_QUERY, user: E.NETHTTP_CLIENT_F_USER, password: E.NETHTTP_CLIENT_F_PASSWORD, opaque: E.NETHTTP_CLIENT_F_OPAQUE };

const SCOPE = scopeOf(SCOPE_NAME);
/** Record string → the attribute it went into, for beetrace.truncated (shared with the HTTP/3 client). */
export const CLIENT_TRUNCATED_NAMES = { method: "http.request.method", scheme: "url.full", url_host: "server.address", path: "url.full", req_host: "server.address" };

/** Builds the client span (semconv v1.37 "HTTP client span"). */
export function buildClient(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "client");
  out.name(decodeClientRequest(r, out, URL_FLAGS));

  const local = ipField(r, "local_addr_size", "local_addr");
  if (local !== undefined) {
    out.attr("network.local.address", local);
    out.attr("network.local.port", r.u16("local_port"));
  }
  const sid = r.u32("h2_stream_id");
  if (sid !== 0) out.attr(H2_STREAM_ID, sid);

  let errorType: string | undefined;
  if (flags & E.NETHTTP_CLIENT_F_RESPONSE) {
    const status = r.u16("status");
    out.attr("http.response.status_code", status);
    // Client spans: 4xx and 5xx are errors (semconv "Status"), error.type = the code.
    if (status >= 400 && status <= 599) {
      out.error();
      errorType = String(status);
    }
  }
  if (flags & E.NETHTTP_CLIENT_F_ERROR) {
    // Classified in BPF (bpf/include/go_errors.bpf.h): refused, reset, timeout, DNS, TLS.
    const t = transportError(r.u8("err_cause"), r.u16("err_errno"));
    out.error(t.message);
    errorType = t.type;
  }
  if (errorType !== undefined) out.attr("error.type", errorType);
  noteTruncated(out, r, CLIENT_TRUNCATED_NAMES);
}

export const nethttpClient: ProbeManifest = {
  id: CLIENT_PROBE_ID,
  library: "net/http",
  object: NETHTTP_OBJECT,
  uprobes: [
    { symbol: "net/http.(*Transport).roundTrip", entryProgram: "nethttp_client_entry", returnProgram: "nethttp_client_return", extraSites: [CONN_SITE, H2_SITE] },
    // The golang.org/x/net/http2 client (an http2.Transport as the RoundTripper) never runs
    // net/http's roundTrip. Nested under it (http2.ConfigureTransport) the same request is
    // traced once: its entry finds the call begun, its RETs leave the outer call's span alone.
    {
      symbol: "golang.org/x/net/http2.(*ClientConn).RoundTrip",
      optional: true,
      entryProgram: "nethttp_client_entry_xnet",
      returnProgram: "nethttp_client_return_xnet",
      extraSites: [XNET_H2_SITE],
    },
    // Where RoundTrip is a wrapper the compiler inlines into its callers (return
    // cc.roundTrip(req, nil)), the work is in roundTrip: nested under an out-of-line RoundTrip,
    // the outer call's span stands.
    {
      symbol: "golang.org/x/net/http2.(*ClientConn).roundTrip",
      optional: true,
      entryProgram: "nethttp_client_entry_xnet_inner",
      returnProgram: "nethttp_client_return_xnet_inner",
      // The same site as RoundTrip's (placed once when both are linked).
      extraSites: [XNET_H2_SITE],
    },
  ],
  fields: CLIENT_FIELDS,
  record: { type: E.REC_NETHTTP_CLIENT, struct: "rec_nethttp_client" },
  // Name offsets of the error types the client's error walk tells apart (-1: not in this binary).
  flags: (ctx) => Object.fromEntries(Object.entries(ERROR_TYPES).map(([c, name]) => [c, ctx.typeNameOff?.(name) ?? -1])),
  decode: decodeWith(buildClient),
  build: buildClient,
};
