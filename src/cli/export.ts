/**
 * @module cli/export — `beetrace export FILE… --otlp URL [--protocol P] [--header k=v]…`.
 *
 * Sends capture files (including spill files kept by a tracer that lost its collector) to an
 * OTLP endpoint (OTLP/HTTP, or OTLP/gRPC with --protocol grpc) with their original timestamps
 * and ids. The resource of each file comes from its header (src/export/otlp.ts
 * resourceAttributes). Spans a spill file's `.sent` sidecar records as already delivered are
 * skipped, so an interrupted resend is not duplicated.
 * The OTEL_EXPORTER_OTLP_* variables apply; flags override them. Any span not delivered makes
 * the command fail (exit code of output_failed) after trying every file.
 */
import { TracerError } from "../errors.ts";
import { log } from "../log.ts";
import { readCaptureFile } from "../capture/reader.ts";
import type { SpanRecord } from "../capture/format.ts";
import { mergeFlags, parseOtelEnv, type OtelFlags } from "../config/otel-env.ts";
import { createOtlpExporter } from "../export/create.ts";
import type { RetryPolicy } from "../export/exporter.ts";
import { resourceAttributes } from "../export/otlp.ts";
import { readSpillCursor } from "../export/spill.ts";

export interface ExportOptions extends OtelFlags {
  /** Spans per request (default 512) */
  batch?: string | number;
  /** For tests: the process environment to read OTEL_* from */
  env?: Record<string, string | undefined>;
  /** For tests: retry policy */
  retry?: Partial<RetryPolicy>;
}

export interface ExportSummary {
  files: number;
  spans: number;
  sent: number;
  skipped: number;
  failed: number;
}

export async function exportCommand(files: string[], opts: ExportOptions = {}): Promise<ExportSummary> {
  if (files.length === 0) throw new TracerError("usage", "no capture file given", { hint: "beetrace export cap.cbor --otlp http://collector:4318" });
  const cfg = mergeFlags(parseOtelEnv(opts.env ?? process.env), opts);
  if (cfg.endpoint === undefined) {
    throw new TracerError("usage", "no OTLP endpoint", { hint: "pass --otlp http://collector:4318 (OTLP/HTTP) or --otlp http://collector:4317 --protocol grpc, or set OTEL_EXPORTER_OTLP_ENDPOINT" });
  }
  const batch = parseBatch(opts.batch);
  // Read every file first: a damaged file is reported before anything is sent.
  const inputs = files.map((f) => ({ file: f, contents: readCaptureFile(f) }));
  const summary: ExportSummary = { files: files.length, spans: 0, sent: 0, skipped: 0, failed: 0 };
  for (const { file, contents } of inputs) {
    let spans = contents.records.filter((r): r is SpanRecord => r.type === "span").map(({ type: _t, ...s }) => s);
    if (contents.truncated) log.warn(`${file} is truncated (last ${contents.trailingBytes} bytes incomplete); sending its ${spans.length} complete spans`);
    if (contents.invalid > 0) log.warn(`${file}: ${contents.invalid} span records could not be decoded and are not sent`);
    const already = Math.min(readSpillCursor(file), spans.length);
    if (already > 0) {
      log.info(`${file}: skipping the first ${already} spans, already delivered by the run that spilled them (${file}.sent)`);
      spans = spans.slice(already);
      summary.skipped += already;
    }
    summary.spans += spans.length;
    const exporter = createOtlpExporter({
      endpoint: cfg.endpoint,
      protocol: cfg.protocol,
      headers: cfg.headers,
      compression: cfg.compression,
      timeoutMs: cfg.timeoutMs,
      resource: resourceAttributes(contents.header),
      maxBatchSize: batch,
      // Everything is known up front: no reason to wait for a batch to fill.
      batchDelayMs: 0,
      maxQueue: Math.max(spans.length, 1),
      ...(opts.retry ? { retry: opts.retry } : {}),
    });
    for (const s of spans) exporter.add(s);
    // Generous: retries with backoff for a whole file; the per-request timeout still applies.
    const r = await exporter.shutdown(Math.max(60_000, cfg.timeoutMs * 6));
    summary.sent += r.sent;
    summary.failed += r.dropped + r.spilled;
    log.verbose(`${file}: sent ${r.sent} of ${spans.length} spans to ${cfg.endpoint}${r.rejected > 0 ? ` (${r.rejected} rejected by the collector)` : ""}`);
  }
  if (summary.failed > 0) {
    throw new TracerError("output_failed", `${summary.failed} of ${summary.spans} spans were not delivered to ${cfg.endpoint}`, {
      hint: "the files are unchanged; fix the collector or the URL (see the messages above) and run the same command again",
    });
  }
  log.info(`sent ${summary.sent} spans from ${summary.files} file${summary.files === 1 ? "" : "s"} to ${cfg.endpoint}`);
  return summary;
}

function parseBatch(b: number | string | undefined): number {
  if (b === undefined) return 512;
  const n = typeof b === "number" ? b : Number(b);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw new TracerError("usage", `--batch must be a whole number from 1 to 100000, got '${String(b)}'`, { hint: "the default is 512 spans per request" });
  }
  return n;
}
