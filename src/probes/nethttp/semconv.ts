/**
 * @module probes/nethttp/semconv — HTTP span naming and attribute helpers per the OpenTelemetry
 * semantic conventions v1.37 (HTTP spans, URL attributes), shared by the server and client probes.
 */
import type { SpanBuilder } from "../common/span.ts";
import { memoized } from "../common/memo.ts";

const UTF8 = new TextEncoder();

/** Semconv "known" methods: those of RFC 9110 §9 plus PATCH (RFC 5789). Case-sensitive. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);

/**
 * Sets http.request.method (and http.request.method_original for unknown ones) and returns
 * the {method} part of the span name: the method, or "HTTP" when it is not known
 * (semconv: unknown methods are "_OTHER" and the span name then uses "HTTP").
 * Go's net/http sends an empty Method as GET (net/http.Request.Method doc).
 */
export function setMethod(out: SpanBuilder, raw: string): string {
  const method = raw === "" ? "GET" : raw;
  if (KNOWN_METHODS.has(method)) {
    out.attr("http.request.method", method);
    return method;
  }
  out.attr("http.request.method", "_OTHER");
  out.attr("http.request.method_original", method);
  return "HTTP";
}

export interface HostPort {
  host: string;
  port?: number;
}

/**
 * Splits "host", "host:port", "[v6]", "[v6]:port" (RFC 3986 §3.2.2 authority form, as in
 * Host headers, URL.Host and Go's RemoteAddr). A bare IPv6 address without brackets ("::1")
 * is all host. Returns undefined for an empty string. An unparsable port is left out.
 */
export const splitHostPort: (s: string) => Readonly<HostPort> | undefined = memoized(parseHostPort);

function parseHostPort(s: string): HostPort | undefined {
  if (s === "") return undefined;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return { host: s };
    const host = s.slice(1, close);
    const rest = s.slice(close + 1);
    return withPort(host, rest.startsWith(":") ? rest.slice(1) : undefined);
  }
  const colon = s.indexOf(":");
  if (colon >= 0 && colon === s.lastIndexOf(":")) return withPort(s.slice(0, colon), s.slice(colon + 1));
  return { host: s };
}

function withPort(host: string, port: string | undefined): HostPort {
  if (port !== undefined && /^\d{1,5}$/.test(port)) {
    const n = Number(port);
    if (n <= 65535) return { host, port: n };
  }
  return { host };
}

/** network.protocol.version from Request.ProtoMajor/ProtoMinor: "1.0", "1.1", "2", "3". */
export function protocolVersion(major: number, minor: number): string | undefined {
  if (major <= 0) return undefined;
  // The versions that exist, made once (a string per span is garbage on the live path).
  if (minor === 0 && major <= 3) return major === 1 ? "1.0" : major === 2 ? "2" : "3";
  if (major === 1 && minor === 1) return "1.1";
  if (major >= 2 && minor === 0) return String(major);
  return `${major}.${minor}`;
}


/**
 * http.route from a Go ServeMux pattern "[METHOD ][HOST]/[PATH]" (net/http doc "Patterns"):
 * "GET /items/{id}" → "/items/{id}", "example.com/x/" → "/x/". Undefined if no path part.
 */
export const routeFromPattern: (pattern: string) => string | undefined = memoized(parseRoute);

function parseRoute(pattern: string): string | undefined {
  let p = pattern.trim();
  const sp = p.search(/[ \t]/);
  if (sp >= 0) p = p.slice(sp).trimStart(); // drop the method
  const slash = p.indexOf("/");
  return slash < 0 ? undefined : p.slice(slash);
}

/**
 * Percent-encodes a decoded URL path for url.full the way Go's URL.EscapedPath would for
 * ordinary paths: RFC 3986 unreserved characters, sub-delims, ":" "@" and "/" stay, the rest
 * (including "%", since URL.Path is the decoded form) become %XX of their UTF-8 bytes.
 */
export function escapePath(path: string): string {
  let out = "";
  for (const b of UTF8.encode(path)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~!$&'()*+,;=:@/]/.test(c)) out += c;
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Default port of a scheme (RFC 9110 §4.2.1/§4.2.2), for server.port when the URL has none. */
export function defaultPort(scheme: string): number | undefined {
  const s = scheme.toLowerCase();
  return s === "http" ? 80 : s === "https" ? 443 : undefined;
}

/** A server span's server.address/port (from the request's Host) and network.peer.address/port (from its RemoteAddr). */
export function setServerAndPeer(out: SpanBuilder, host: string, remote: string): void {
  const h = splitHostPort(host);
  if (h) {
    out.attr("server.address", h.host);
    if (h.port !== undefined) out.attr("server.port", h.port);
  }
  const peer = splitHostPort(remote);
  if (peer) {
    out.attr("network.peer.address", peer.host);
    if (peer.port !== undefined) out.attr("network.peer.port", peer.port);
  }
}
