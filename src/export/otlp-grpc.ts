/**
 * @module export/otlp-grpc — OTLP/gRPC: unary TraceService/Export over node:http2, framed by hand.
 *
 * No gRPC library: a unary call is one HTTP/2 POST to
 * /opentelemetry.proto.collector.trace.v1.TraceService/Export whose body is one length-prefixed
 * message (gRPC "PROTOCOL-HTTP2": 1 byte compressed flag, 4 bytes big-endian length, the
 * message) and whose outcome is the grpc-status / grpc-message trailers (or headers, for a
 * "trailers-only" response). The message is the same protobuf ExportTraceServiceRequest the
 * OTLP/HTTP exporter sends, from the same serializer. node:http2 works as a client in Bun
 * (h2c and TLS) and in Deno; Bun's fetch cannot speak cleartext HTTP/2, so it is not used.
 *
 * Retries follow the OTLP spec "OTLP/gRPC Response": CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS are retryable, RESOURCE_EXHAUSTED only when the server
 * sent google.rpc.RetryInfo; every other code is permanent. A RetryInfo.retry_delay found in
 * grpc-status-details-bin (a google.rpc.Status, decoded here with a minimal bounds-checked
 * protobuf reader) is honoured exactly. Connection failures are UNAVAILABLE (what gRPC clients
 * report for them) and so retryable. Batching, backoff, spill and shutdown are shared with
 * OTLP/HTTP (src/export/exporter.ts).
 *
 * One HTTP/2 session is kept and reused; it is replaced after GOAWAY, an error or a close, and
 * after a call timed out: a connection that stops answering (a hung peer, a NAT that forgot
 * it) would otherwise swallow every later call too. One call is in flight at a time, so
 * dropping it loses nothing else.
 */
import type * as http2 from "node:http2";
import { http2 as http2Lib, zlib } from "../runtime.ts";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { log } from "../log.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { OtlpExporter, networkReason, type Attempt, type ExporterOptions, type ExportTransport, type PartialSuccess, type SendOptions } from "./exporter.ts";

/** The unary method (opentelemetry-proto, collector/trace/v1/trace_service.proto). */
export const TRACE_EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/** gRPC status codes (grpc/grpc doc/statuscodes.md). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const CODE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(GrpcCode).map(([k, v]) => [v, k]));

/** "UNAVAILABLE (14)"; unknown numbers are shown as such. */
export function grpcCodeName(code: number): string {
  return `${CODE_NAMES.get(code) ?? "code"} (${code})`;
}

/** OTLP spec "OTLP/gRPC Response" → "Failures": retryable codes. RESOURCE_EXHAUSTED is handled apart. */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  GrpcCode.CANCELLED,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.ABORTED,
  GrpcCode.OUT_OF_RANGE,
  GrpcCode.UNAVAILABLE,
  GrpcCode.DATA_LOSS,
]);

/** Largest response we keep: grpc-go's default client max receive message size (4 MiB). */
const MAX_RESPONSE_BYTES = 4 << 20;
/** gRPC length prefix: 1 byte compressed flag + 4 bytes big-endian length (PROTOCOL-HTTP2 "Length-Prefixed-Message"). */
const FRAME_HEADER = 5;
/** A server-given delay beyond this is capped (timers overflow past 2^31 ms; an hour is already "go offline"). */
const MAX_RETRY_DELAY_MS = 3_600_000;

// ---------------------------------------------------------------------------------------------
// framing

/** One Length-Prefixed-Message: the compressed flag says the message bytes are in grpc-encoding. */
export function grpcFrame(message: Uint8Array, compressed: boolean): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + message.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, compressed ? 1 : 0);
  view.setUint32(1, message.byteLength, false);
  out.set(message, FRAME_HEADER);
  return out;
}

export interface GrpcMessage {
  compressed: boolean;
  message: Uint8Array;
}

/** Split a response body into its messages; a truncated or malformed body is a reason, never a throw. */
export function readGrpcFrames(body: Uint8Array): { ok: true; messages: GrpcMessage[] } | { ok: false; reason: string } {
  const messages: GrpcMessage[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let off = 0;
  while (off < body.byteLength) {
    if (body.byteLength - off < FRAME_HEADER) return { ok: false, reason: `truncated gRPC message header at byte ${off} of ${body.byteLength}` };
    const flag = view.getUint8(off);
    if (flag > 1) return { ok: false, reason: `gRPC message at byte ${off} has compressed flag ${flag} (only 0 and 1 exist)` };
    const len = view.getUint32(off + 1, false);
    const start = off + FRAME_HEADER;
    if (len > body.byteLength - start) return { ok: false, reason: `gRPC message at byte ${off} declares ${len} bytes but ${body.byteLength - start} follow` };
    messages.push({ compressed: flag === 1, message: body.subarray(start, start + len) });
    off = start + len;
  }
  return { ok: true, messages };
}

/**
 * grpc-timeout (PROTOCOL-HTTP2: TimeoutValue is at most 8 ASCII digits, then a unit). Whole
 * milliseconds when they fit, else whole seconds rounded up, else hours.
 */
export function grpcTimeoutHeader(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m <= 99_999_999) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s <= 99_999_999) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2 "Status-Message"); a bad escape keeps the raw text. */
export function decodeGrpcMessage(v: string | undefined): string {
  if (v === undefined || v === "") return "";
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// status mapping

/** HTTP status of a response without grpc-status → gRPC code (grpc/grpc doc/http-grpc-status-mapping.md). */
export function httpStatusToGrpc(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}

/** RST_STREAM error code (RFC 9113 §7) → gRPC code (PROTOCOL-HTTP2 "Errors"). */
export function rstCodeToGrpc(code: number): number {
  switch (code) {
    case 0x7: // REFUSED_STREAM: not processed, safe to retry
      return GrpcCode.UNAVAILABLE;
    case 0x8: // CANCEL
      return GrpcCode.CANCELLED;
    case 0xb: // ENHANCE_YOUR_CALM
      return GrpcCode.RESOURCE_EXHAUSTED;
    case 0xc: // INADEQUATE_SECURITY
      return GrpcCode.PERMISSION_DENIED;
    default: // NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, ...
      return GrpcCode.INTERNAL;
  }
}

/** A non-OK status → Attempt, per the OTLP spec's retryable list; a RetryInfo delay is honoured exactly. */
export function classifyGrpcStatus(code: number, message: string, retryInfo?: { delayMs?: number }): Attempt {
  const reason = `gRPC ${grpcCodeName(code)}${message !== "" ? `: ${message}` : ""}`;
  const retryable = RETRYABLE_CODES.has(code) || (code === GrpcCode.RESOURCE_EXHAUSTED && retryInfo !== undefined);
  if (!retryable) return { kind: "permanent", reason };
  return retryInfo?.delayMs === undefined ? { kind: "retryable", reason } : { kind: "retryable", reason, retryAfterMs: retryInfo.delayMs };
}

// ---------------------------------------------------------------------------------------------
// google.rpc.Status / RetryInfo (minimal protobuf reading)

interface PbField {
  no: number;
  /** wire type 0 */
  varint?: bigint;
  /** wire type 2 */
  bytes?: Uint8Array;
}

/** The fields of one protobuf message; undefined when malformed (bounds checked, no throw). */
function pbFields(b: Uint8Array): PbField[] | undefined {
  const out: PbField[] = [];
  let off = 0;
  const varint = (): bigint | undefined => {
    let v = 0n;
    // A varint is at most 10 bytes (protobuf encoding guide).
    for (let i = 0; i < 10; i++) {
      if (off >= b.byteLength) return undefined;
      const byte = b[off++]!;
      v |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (off < b.byteLength) {
    const key = varint();
    if (key === undefined) return undefined;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      out.push({ no, varint: v });
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || len > BigInt(b.byteLength - off)) return undefined;
      out.push({ no, bytes: b.subarray(off, off + Number(len)) });
      off += Number(len);
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (b.byteLength - off < n) return undefined;
      off += n;
    } else {
      return undefined; // groups (3, 4) are not used by these messages; 6, 7 do not exist
    }
  }
  return out;
}

const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";

/**
 * google.rpc.RetryInfo from grpc-status-details-bin: base64 of google.rpc.Status {code=1,
 * message=2, details=3 repeated Any{type_url=1, value=2}}, RetryInfo {retry_delay=1
 * Duration{seconds=1, nanos=2}} (googleapis google/rpc/status.proto, error_details.proto).
 * Undefined when there is none (or the header is malformed); `delayMs` undefined when the
 * RetryInfo has no retry_delay (then our own backoff applies).
 */
export function parseRetryInfo(bin: string | undefined): { delayMs?: number } | undefined {
  if (bin === undefined || bin === "") return undefined;
  // -bin metadata is base64, padding optional (PROTOCOL-HTTP2 "Binary-Header").
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(bin)) return undefined;
  const status = pbFields(new Uint8Array(Buffer.from(bin, "base64")));
  if (!status) return undefined;
  for (const f of status) {
    if (f.no !== 3 || !f.bytes) continue;
    const any = pbFields(f.bytes);
    const typeUrl = any?.find((a) => a.no === 1 && a.bytes)?.bytes;
    if (!any || !typeUrl || new TextDecoder().decode(typeUrl) !== RETRY_INFO_TYPE) continue;
    const value = any.find((a) => a.no === 2 && a.bytes)?.bytes ?? new Uint8Array(0);
    const dur = pbFields(value)?.find((a) => a.no === 1 && a.bytes)?.bytes;
    const d = dur ? pbFields(dur) : undefined;
    if (!d) return {};
    // int64/int32 are two's complement in a varint; a negative delay means "now".
    const secs = BigInt.asIntN(64, d.find((a) => a.no === 1)?.varint ?? 0n);
    const nanos = BigInt.asIntN(32, d.find((a) => a.no === 2)?.varint ?? 0n);
    const ms = secs * 1000n + nanos / 1_000_000n;
    if (ms <= 0n) return { delayMs: 0 };
    return { delayMs: ms > BigInt(MAX_RETRY_DELAY_MS) ? MAX_RETRY_DELAY_MS : Number(ms) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// one response → Attempt

type Headers = Record<string, string | string[] | number | undefined>;

export interface GrpcResponse {
  /** Response headers; undefined when none arrived */
  headers?: Headers;
  trailers?: Headers;
  body: Uint8Array;
  /** RST_STREAM code, when the stream was reset */
  rstCode?: number;
  /** Stream or connection error */
  error?: unknown;
}

function header(h: Headers | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : String(v);
}

/** The whole response of one call → Attempt (status from trailers, or headers when trailers-only). */
export function classifyGrpcResponse(r: GrpcResponse): Attempt {
  // A reset the server sent (node reports it as ERR_HTTP2_STREAM_ERROR, or with no error at all)
  // versus our side cancelling a stream because the connection failed (ERR_HTTP2_STREAM_CANCEL
  // "caused by: connect ECONNREFUSED", also with an RST code): only the first has a gRPC mapping.
  const errCode = (r.error as { code?: unknown } | undefined)?.code;
  const peerReset = r.rstCode !== undefined && r.rstCode !== 0 && (r.error === undefined || errCode === "ERR_HTTP2_STREAM_ERROR");
  if (r.headers === undefined) {
    if (peerReset) {
      return classifyGrpcStatus(rstCodeToGrpc(r.rstCode ?? 0), `stream reset by the server (HTTP/2 error ${r.rstCode})`);
    }
    // No answer at all: connection refused, reset or closed (gRPC clients call this UNAVAILABLE).
    const why = r.error !== undefined ? networkReason(r.error, 0) : "connection closed before a response";
    return { kind: "retryable", reason: `gRPC ${grpcCodeName(GrpcCode.UNAVAILABLE)}: ${why}` };
  }
  const src = r.trailers !== undefined && header(r.trailers, "grpc-status") !== undefined ? r.trailers : r.headers;
  const statusText = header(src, "grpc-status");
  if (statusText === undefined) {
    const http = Number(header(r.headers, ":status") ?? 0);
    if (http !== 200) return classifyGrpcStatus(httpStatusToGrpc(http), `HTTP ${http} without grpc-status (not a gRPC endpoint, or a proxy answered)`);
    if (r.error !== undefined || peerReset) {
      const why = r.error !== undefined ? networkReason(r.error, 0) : `stream reset (HTTP/2 error ${r.rstCode})`;
      return { kind: "retryable", reason: `gRPC ${grpcCodeName(GrpcCode.UNAVAILABLE)}: response cut off: ${why}` };
    }
    const type = header(r.headers, "content-type") ?? "";
    if (!type.startsWith("application/grpc")) return classifyGrpcStatus(GrpcCode.UNKNOWN, `content-type '${type}' is not gRPC`);
    // grpc-go reports a finished stream without a status the same way.
    return classifyGrpcStatus(GrpcCode.INTERNAL, "the server closed the call without grpc-status");
  }
  const code = /^\d{1,3}$/.test(statusText) ? Number(statusText) : Number.NaN;
  const message = decodeGrpcMessage(header(src, "grpc-message"));
  if (Number.isNaN(code)) return classifyGrpcStatus(GrpcCode.UNKNOWN, `unparseable grpc-status '${statusText.slice(0, 20)}'`);
  if (code !== GrpcCode.OK) return classifyGrpcStatus(code, message, parseRetryInfo(header(src, "grpc-status-details-bin")));
  const partial = decodeExportResponse(r.body, header(r.headers, "grpc-encoding"));
  return partial ? { kind: "ok", partial } : { kind: "ok" };
}

/** ExportTraceServiceResponse.partial_success from an OK response body (the transformer decodes it). */
export function decodeExportResponse(body: Uint8Array, encoding: string | undefined): PartialSuccess | undefined {
  if (body.byteLength === 0) return undefined;
  const frames = readGrpcFrames(body);
  if (!frames.ok) {
    log.debug(`OTLP/gRPC response body not understood: ${frames.reason}`);
    return undefined;
  }
  const first = frames.messages[0];
  if (!first || first.message.byteLength === 0) return undefined;
  let msg = first.message;
  try {
    if (first.compressed) {
      if (encoding !== "gzip") {
        log.debug(`OTLP/gRPC response compressed with '${encoding ?? "(none named)"}'; partial success not read`);
        return undefined;
      }
      msg = new Uint8Array(zlib().gunzipSync(msg));
    }
    const ps = ProtobufTraceSerializer.deserializeResponse(msg)?.partialSuccess;
    if (!ps) return undefined;
    const rejected = Number(ps.rejectedSpans ?? 0);
    return { rejected: Number.isFinite(rejected) ? rejected : 0, message: typeof ps.errorMessage === "string" ? ps.errorMessage : "" };
  } catch (e) {
    log.debug(`OTLP/gRPC response message not understood: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// transport

/** Headers a user may not set as metadata: HTTP/2 pseudo-headers, gRPC's own, connection-specific ones. */
const RESERVED = /^(:|grpc-)|^(content-type|te|user-agent|host|connection|keep-alive|proxy-connection|transfer-encoding|upgrade|content-length)$/;
/** HTTP field name token (RFC 9110 §5.6.2), lowercase as HTTP/2 requires. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** User headers → gRPC metadata: lowercase names; reserved or invalid ones are left out with a warning. */
export function grpcMetadata(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.trim().toLowerCase();
    if (!TOKEN.test(name) || RESERVED.test(name) || /[\0\r\n]/.test(v)) {
      log.warn(`OTLP header '${k}' cannot be sent as gRPC metadata (reserved or invalid); left out`);
      continue;
    }
    out[name] = v;
  }
  return out;
}

export interface GrpcTransportOptions {
  /** http://host:port (cleartext HTTP/2, "h2c") or https://host:port (TLS, ALPN h2) */
  endpoint: string;
  headers?: Record<string, string>;
  /** TLS options for https endpoints (e.g. `ca`); default: the system's trust store. */
  tls?: http2.SecureClientSessionOptions;
}

/** Unary TraceService/Export calls on one reused HTTP/2 session. */
export class GrpcTransport implements ExportTransport {
  readonly format = "protobuf" as const;
  readonly endpoint: string;
  readonly #metadata: Record<string, string>;
  readonly #tls: http2.SecureClientSessionOptions | undefined;
  #session: http2.ClientHttp2Session | undefined;
  #active = 0;
  #closed = false;
  /** HTTP/2 sessions opened so far (tests check reuse and reconnects). */
  connections = 0;

  constructor(opts: GrpcTransportOptions) {
    this.endpoint = opts.endpoint;
    this.#metadata = grpcMetadata(opts.headers ?? {});
    this.#tls = opts.tls;
  }

  #open(): http2.ClientHttp2Session {
    const cur = this.#session;
    if (cur && !cur.closed && !cur.destroyed) return cur;
    const s = this.#tls && this.endpoint.startsWith("https:") ? http2Lib().connect(this.endpoint, this.#tls) : http2Lib().connect(this.endpoint);
    this.connections++;
    const forget = () => {
      if (this.#session === s) this.#session = undefined;
    };
    // Errors also reach the stream of the call in flight; here we only stop reusing the session.
    s.on("error", (e) => {
      log.debug(`OTLP/gRPC connection to ${this.endpoint} failed: ${networkReason(e, 0)}`);
      forget();
    });
    // GOAWAY: the server takes no new streams here (node closes the session after the ones in
    // flight); the next call opens a new session.
    s.on("goaway", (code: number) => {
      log.debug(`OTLP/gRPC server sent GOAWAY (HTTP/2 error ${code}); reconnecting for the next call`);
      forget();
    });
    s.on("close", forget);
    this.#session = s;
    return s;
  }

  send(body: Uint8Array, opts: SendOptions): Promise<Attempt> {
    if (this.#closed) return Promise.resolve({ kind: "permanent", reason: "the OTLP/gRPC transport is closed" });
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let session: http2.ClientHttp2Session | undefined;
      let stream: http2.ClientHttp2Stream | undefined;
      const res: GrpcResponse = { body: new Uint8Array(0) };
      const chunks: Uint8Array[] = [];
      let size = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;

      const finish = (a: Attempt) => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        session?.off("close", onSessionClose);
        if (--this.#active === 0) session?.unref();
        resolve(a);
      };
      const cancel = () => {
        try {
          if (stream && !stream.closed) stream.close(http2Lib().constants.NGHTTP2_CANCEL);
        } catch {
          /* already gone */
        }
      };
      const onAbort = () => {
        cancel();
        finish({ kind: "retryable", reason: "stopped at the flush deadline" });
      };
      // The stream's own close normally comes first; this covers a session dying without it.
      const onSessionClose = () => setImmediate(() => finish(classifyGrpcResponse({ ...res, error: res.error ?? new Error("connection closed") })));

      this.#active++;
      try {
        session = this.#open();
        session.ref();
        session.on("close", onSessionClose);
        const headers: http2.OutgoingHttpHeaders = {
          ...this.#metadata,
          ":method": "POST",
          ":path": TRACE_EXPORT_PATH,
          "content-type": "application/grpc",
          te: "trailers",
          "user-agent": `beetrace/${BEETRACE_VERSION}`,
          "grpc-timeout": grpcTimeoutHeader(opts.timeoutMs),
          "grpc-accept-encoding": "identity,gzip",
        };
        if (opts.compressed) headers["grpc-encoding"] = "gzip";
        stream = session.request(headers);
      } catch (e) {
        finish({ kind: "retryable", reason: `gRPC ${grpcCodeName(GrpcCode.UNAVAILABLE)}: ${networkReason(e, opts.timeoutMs)}` });
        return;
      }
      const st = stream;
      const sess = session;
      st.on("response", (h) => {
        res.headers = h as Headers;
      });
      st.on("trailers", (t) => {
        res.trailers = t as Headers;
      });
      st.on("data", (c: Uint8Array) => {
        size += c.byteLength;
        if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
      });
      st.on("error", (e) => {
        res.error = e;
      });
      st.on("close", () => {
        if (st.rstCode !== undefined && st.rstCode !== 0) res.rstCode = st.rstCode;
        // An oversized answer is not decoded (status still counts); see MAX_RESPONSE_BYTES.
        res.body = size <= MAX_RESPONSE_BYTES ? new Uint8Array(Buffer.concat(chunks)) : new Uint8Array(0);
        finish(classifyGrpcResponse(res));
      });
      timer = setTimeout(() => {
        cancel();
        // Do not send the next call into a connection that stopped answering.
        if (this.#session === sess) this.#session = undefined;
        sess.destroy();
        finish({ kind: "retryable", reason: `gRPC ${grpcCodeName(GrpcCode.DEADLINE_EXCEEDED)}: no response within ${opts.timeoutMs} ms` });
      }, Math.max(1, opts.timeoutMs));
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      st.end(grpcFrame(body, opts.compressed));
    });
  }

  close(): void {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    // At shutdown nothing useful is in flight (the flush is over); do not wait for the peer.
    if (s && !s.destroyed) s.destroy();
  }
}

export interface OtlpGrpcExporterConfig extends ExporterOptions {
  /** http://host:4317 (h2c) or https://host:4317 (TLS); no path */
  endpoint: string;
  /** Sent as gRPC metadata */
  headers?: Record<string, string>;
  tls?: http2.SecureClientSessionOptions;
}

/** The OTLP/gRPC exporter: the shared exporter (batching, retries, spill) over GrpcTransport. */
export class OtlpGrpcExporter extends OtlpExporter {
  readonly transport: GrpcTransport;
  constructor(cfg: OtlpGrpcExporterConfig) {
    const transport = new GrpcTransport({ endpoint: cfg.endpoint, headers: cfg.headers ?? {}, ...(cfg.tls ? { tls: cfg.tls } : {}) });
    super({ ...cfg, transport });
    this.transport = transport;
  }
}
