/**
 * @module probes/grpc/semconv — RPC span naming and attributes for gRPC per the OpenTelemetry
 * semantic conventions, shared by the server and client probes.
 *
 * Default: the names OTel Go auto-instrumentation emits (semconv v1.37 "RPC spans" and "gRPC"):
 * `rpc.system=grpc`, `rpc.service`, `rpc.method` (the short method name), `rpc.grpc.status_code`
 * (an int). `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list, OTel's opt-in switch for
 * convention migrations) with `rpc` switches to the stable RPC names: `rpc.system.name`,
 * `rpc.method` fully qualified ("package.Service/Method", no `rpc.service`),
 * `rpc.response.status_code` as the code's name ("NOT_FOUND") and `error.type` on errors;
 * `rpc/dup` emits both sets (`rpc.method` then holds the fully qualified name: the two sets share
 * that key, and the stable meaning wins).
 */
import type { SpanBuilder } from "../common/span.ts";
import { memoized } from "../common/memo.ts";

/** gRPC status code names by number (google.golang.org/grpc/codes, grpc doc/statuscodes.md). */
export const GRPC_CODE_NAMES: readonly string[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** codes.Unknown: what status.Code gives for an error that is not a gRPC status. */
export const CODE_UNKNOWN = 2;

/**
 * Codes that make a SERVER span an error (semconv "gRPC" status: UNKNOWN, DEADLINE_EXCEEDED,
 * UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS); the others are the caller's doing. A CLIENT
 * span is an error for every code but OK.
 */
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);

export function isError(kind: "server" | "client", code: number): boolean {
  return kind === "server" ? SERVER_ERROR_CODES.has(code) : code !== 0;
}

export function codeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? String(code);
}

export type RpcSemconv = "default" | "stable" | "dup";

/** The RPC conventions asked for by an OTEL_SEMCONV_STABILITY_OPT_IN value. */
export function rpcSemconvFrom(optIn: string | undefined): RpcSemconv {
  const list = (optIn ?? "").split(",").map((s) => s.trim().toLowerCase());
  if (list.includes("rpc/dup")) return "dup";
  if (list.includes("rpc")) return "stable";
  return "default";
}

let current: RpcSemconv | undefined;

/** The conventions of this process (from its environment, read once). */
export function rpcSemconv(): RpcSemconv {
  return (current ??= rpcSemconvFrom(process.env.OTEL_SEMCONV_STABILITY_OPT_IN));
}

/** Overrides the environment (tests, and a caller that parsed its config elsewhere). */
export function setRpcSemconv(mode: RpcSemconv | undefined): void {
  current = mode;
}

/** "/pkg.Service/Method" → service and method; a name without a "/" is all method. */
export function splitFullMethod(full: string): { service: string; method: string; name: string } {
  const name = full.startsWith("/") ? full.slice(1) : full;
  const slash = name.lastIndexOf("/");
  if (slash < 0) return { service: "", method: name, name };
  return { service: name.slice(0, slash), method: name.slice(slash + 1), name };
}

/** splitFullMethod, made once per method name (a service's few methods come back span after span). */
const splitMethod = memoized(splitFullMethod);

/** The RPC attributes of a span; `code` undefined = not known. Returns the span name. */
export function rpcAttributes(out: SpanBuilder, fullMethod: string, code: number | undefined, error: boolean, mode: RpcSemconv): string {
  const m = splitMethod(fullMethod);
  if (mode !== "stable") {
    out.attr("rpc.system", "grpc");
    if (m.service !== "") out.attr("rpc.service", m.service);
    // "dup": both sets have rpc.method; it holds the stable (fully qualified) name, set once.
    if (mode === "dup" ? m.name !== "" : m.method !== "") out.attr("rpc.method", mode === "dup" ? m.name : m.method);
    if (code !== undefined) out.attr("rpc.grpc.status_code", code);
  }
  if (mode !== "default") {
    out.attr("rpc.system.name", "grpc");
    if (mode === "stable" && m.name !== "") out.attr("rpc.method", m.name);
    if (code !== undefined) out.attr("rpc.response.status_code", codeName(code));
    if (error && code !== undefined) out.attr("error.type", codeName(code));
  }
  return m.name === "" ? "grpc" : m.name;
}

/**
 * server.address / server.port from a grpc target (grpc-go's ClientConn.target, "Name
 * Resolution" doc): "host:port", "scheme:///host:port", "scheme://authority/host:port",
 * "unix:path" / "unix:///path" (address = the path, no port).
 */
export const targetAddress: (target: string) => Readonly<{ host: string; port?: number }> | undefined = memoized(parseTarget);

function parseTarget(target: string): { host: string; port?: number } | undefined {
  let t = target.trim();
  if (t === "") return undefined;
  const unix = /^unix(-abstract)?:(\/\/)?/.exec(t);
  if (unix) return { host: t.slice(unix[0].length) };
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(t);
  if (scheme) {
    const rest = t.slice(scheme[0].length);
    const slash = rest.indexOf("/");
    t = slash < 0 ? rest : rest.slice(slash + 1);
  }
  if (t === "") return undefined;
  return splitHostPort(t);
}

/** "host", "host:port", "[v6]:port"; a bare IPv6 address is all host. */
export function splitHostPort(s: string): { host: string; port?: number } {
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return { host: s };
    return withPort(s.slice(1, close), s.slice(close + 1).startsWith(":") ? s.slice(close + 2) : undefined);
  }
  const colon = s.indexOf(":");
  if (colon >= 0 && colon === s.lastIndexOf(":")) return withPort(s.slice(0, colon), s.slice(colon + 1));
  return { host: s };
}

function withPort(host: string, port: string | undefined): { host: string; port?: number } {
  if (port !== undefined && /^\d{1,5}$/.test(port) && Number(port) <= 65535) return { host, port: Number(port) };
  return { host };
}

