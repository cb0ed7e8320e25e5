/**
 * @module export/otlp-http — streaming OTLP/HTTP span exporter with retries and a disk spill.
 *
 * The transport half of OTLP/HTTP: one POST per ExportTraceServiceRequest to the traces URL,
 * protobuf by default or JSON on request (Content-Type application/x-protobuf or
 * application/json), optionally Content-Encoding gzip. Batching, retries, spill and shutdown
 * are shared with OTLP/gRPC in src/export/exporter.ts; OtlpHttpExporter is that exporter with
 * this transport.
 *
 * Failures (OTLP spec "OTLP/HTTP Response", "Retryable Response Codes"):
 *  - 429, 502, 503, 504 and network errors/timeouts are retryable, honouring the server's
 *    Retry-After (seconds or HTTP-date) when it sends one;
 *  - every other status (400, 401, 403, 404, 413, ...) is permanent: not retried.
 */
import { JsonTraceSerializer, ProtobufTraceSerializer, type IExportTraceServiceResponse } from "@opentelemetry/otlp-transformer";
import { log } from "../log.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { OtlpExporter, networkReason, type Attempt, type ExporterOptions, type ExportTransport, type PartialSuccess, type SendOptions } from "./exporter.ts";

export type { ExportCounts, ExportResult, RetryPolicy } from "./exporter.ts";

export type OtlpProtocol = "http/protobuf" | "http/json";

export interface OtlpHttpExporterConfig extends ExporterOptions {
  /** Full traces URL, e.g. http://collector:4318/v1/traces */
  endpoint: string;
  protocol?: OtlpProtocol;
  headers?: Record<string, string>;
}

/** OTLP spec "Retryable Response Codes" for OTLP/HTTP. */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns ms from `now`, or
 * undefined when absent or unparseable (then our own backoff applies).
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The OTLP/HTTP exporter: the shared exporter (batching, retries, spill) over HttpTransport. */
export class OtlpHttpExporter extends OtlpExporter {
  constructor(cfg: OtlpHttpExporterConfig) {
    super({ ...cfg, transport: new HttpTransport(cfg.endpoint, cfg.protocol ?? "http/protobuf", cfg.headers ?? {}) });
  }
}

/** One OTLP/HTTP POST per attempt, with fetch. */
export class HttpTransport implements ExportTransport {
  readonly format: "json" | "protobuf";
  readonly #headers: Record<string, string>;
  constructor(
    readonly endpoint: string,
    protocol: OtlpProtocol,
    headers: Record<string, string>,
  ) {
    this.format = protocol === "http/json" ? "json" : "protobuf";
    this.#headers = { ...headers };
  }

  async send(body: Uint8Array, opts: SendOptions): Promise<Attempt> {
    const timeoutMs = opts.timeoutMs;
    const json = this.format === "json";
    const headers: Record<string, string> = {
      ...this.#headers,
      "Content-Type": json ? "application/json" : "application/x-protobuf",
      "User-Agent": `beetrace/${BEETRACE_VERSION}`,
    };
    if (opts.compressed) headers["Content-Encoding"] = "gzip";
    let res: Response;
    let payload: Uint8Array;
    try {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
      res = await fetch(this.endpoint, { method: "POST", headers, body, signal });
      // Always read the body: it carries partial success or the error, and frees the connection.
      payload = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (opts.signal?.aborted) return { kind: "retryable", reason: "stopped at the flush deadline" };
      return { kind: "retryable", reason: networkReason(e, timeoutMs) };
    }
    const type = res.headers.get("content-type") ?? "";
    if (res.status >= 200 && res.status < 300) {
      const partial = partialSuccess(payload, type, json);
      return partial ? { kind: "ok", partial } : { kind: "ok" };
    }
    const reason = `HTTP ${res.status}${errorMessage(payload, type)}`;
    if (RETRYABLE_STATUS.has(res.status)) {
      const ra = parseRetryAfter(res.headers.get("retry-after"));
      return ra === undefined ? { kind: "retryable", reason } : { kind: "retryable", reason, retryAfterMs: ra };
    }
    return { kind: "permanent", reason };
  }

  close(): void {
    // fetch pools its own connections; nothing to release.
  }
}

/**
 * ExportTraceServiceResponse.partial_success from a 2xx body (OTLP spec "Partial Success"),
 * decoded by the transformer's deserializers; undefined when absent or not understood.
 */
function partialSuccess(payload: Uint8Array, type: string, requestJson: boolean): PartialSuccess | undefined {
  if (payload.byteLength === 0) return undefined;
  let resp: IExportTraceServiceResponse;
  try {
    const asJson = type.includes("json") || (type === "" && requestJson);
    resp = asJson ? JsonTraceSerializer.deserializeResponse(payload) : ProtobufTraceSerializer.deserializeResponse(payload);
  } catch (e) {
    log.debug(`OTLP response body not understood: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  const ps = resp?.partialSuccess;
  if (!ps) return undefined;
  // OTLP/JSON encodes int64 as a string; the protobuf reader gives a number.
  const rejected = Number(ps.rejectedSpans ?? 0);
  return { rejected: Number.isFinite(rejected) ? rejected : 0, message: typeof ps.errorMessage === "string" ? ps.errorMessage : "" };
}

/**
 * A short human message from an error response. OTLP says the body is a google.rpc.Status
 * (JSON or protobuf); for JSON we take `.message`; for protobuf, the longest printable run
 * (the message string) — display only, no decoding is relied on.
 */
function errorMessage(payload: Uint8Array, type: string): string {
  if (payload.byteLength === 0) return "";
  const text = new TextDecoder("utf-8", { fatal: false }).decode(payload.subarray(0, 4096));
  let msg = "";
  if (type.includes("json")) {
    try {
      const m = (JSON.parse(text) as { message?: unknown }).message;
      if (typeof m === "string") msg = m;
    } catch {
      msg = text;
    }
  } else if (type.includes("protobuf")) {
    msg = (text.match(/[\x20-\x7e]{4,}/g) ?? []).sort((a, b) => b.length - a.length)[0] ?? "";
  } else {
    msg = text;
  }
  msg = msg.replace(/\s+/g, " ").trim().slice(0, 200);
  return msg === "" ? "" : `: ${msg}`;
}
