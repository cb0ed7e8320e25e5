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
 *
 * Files are streamed (src/capture/reader.ts): at most a few batches of spans are held, so
 * memory does not grow with the file. Every header is checked before anything is sent. A
 * damaged file sends every intact span; the command then fails with corrupt_capture (exit 17)
 * naming the damaged byte ranges, unless spans were also not delivered (output_failed wins:
 * the collector needs fixing first). When the collector stops taking spans, the rest of the
 * file is counted, not sent.
 */
import { TracerError } from "../errors.ts";
import { log } from "../log.ts";
import { type CaptureStream, damageError, openCapture } from "../capture/reader.ts";
import { mergeFlags, parseOtelEnv, type OtelFlags } from "../config/otel-env.ts";
import { createOtlpExporter } from "../export/create.ts";
import type { RetryPolicy } from "../export/exporter.ts";
import { resourceAttributes } from "../export/otlp.ts";
import { readSpillCursor } from "../export/spill.ts";
import { sections } from "../merge/sections.ts";

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
  // Open every file first: a file that is not a capture is reported before anything is sent.
  const inputs: { file: string; stream: CaptureStream }[] = [];
  try {
    for (const f of files) inputs.push({ file: f, stream: openCapture(f) });
  } catch (e) {
    for (const i of inputs) i.stream.close();
    throw e;
  }
  const summary: ExportSummary = { files: files.length, spans: 0, sent: 0, skipped: 0, failed: 0 };
  let damage: TracerError | undefined;
  const endpoint = cfg.endpoint;
  for (const { file, stream } of inputs) {
    const already = readSpillCursor(file);
    const exporterFor = (header: CaptureStream["header"]) =>
      createOtlpExporter({
        endpoint,
        protocol: cfg.protocol,
        headers: cfg.headers,
        compression: cfg.compression,
        timeoutMs: cfg.timeoutMs,
        resource: resourceAttributes(header),
        maxBatchSize: batch,
        // Spans are read as fast as they are sent: no reason to wait for a batch to fill.
        batchDelayMs: 0,
        // Room for the batches held between flushes below (never reached: no span is dropped for room).
        maxQueue: batch * 4,
        ...(opts.retry ? { retry: opts.retry } : {}),
      });
    // Generous: retries with backoff; the per-request timeout still applies.
    const deadline = Math.max(60_000, cfg.timeoutMs * 6);
    let index = 0;
    let fileSpans = 0;
    let notSent = 0;
    let stopped = false;
    const r = { sent: 0, dropped: 0, spilled: 0, rejected: 0 };
    try {
      // A merged capture (`beetrace merge`) holds several processes: one exporter (resource) per section.
      for (const sec of sections(stream)) {
        const exporter = exporterFor(sec.header);
        try {
          for (const span of sec.spans) {
            if (++index <= already) {
              summary.skipped++;
              continue;
            }
            fileSpans++;
            if (stopped) {
              notSent++;
              continue;
            }
            exporter.add(span);
            if (exporter.counts().inMemory >= batch * 2) {
              await exporter.flush(deadline);
              const c = exporter.counts();
              if (c.dropped + c.spilled > 0 || c.inMemory > 0) {
                stopped = true;
                log.warn(`${file}: the collector is not taking spans; counting the rest of the file without sending it`);
              }
            }
          }
        } finally {
          const x = await exporter.shutdown(deadline);
          r.sent += x.sent;
          r.dropped += x.dropped;
          r.spilled += x.spilled;
          r.rejected += x.rejected;
        }
      }
    } finally {
      stream.close();
    }
    const s = stream.summary;
    if (already > 0) log.info(`${file}: skipped the first ${Math.min(already, index)} spans, already delivered by the run that spilled them (${file}.sent)`);
    if (s.truncated) log.warn(`${file} is truncated (last ${s.trailingBytes} bytes incomplete); sent its complete spans`);
    if (s.skipped > 0) log.warn(`${file}: ${s.skipped} records of a newer kind were skipped`);
    summary.spans += fileSpans;
    summary.sent += r.sent;
    summary.failed += r.dropped + r.spilled + notSent;
    log.verbose(`${file}: sent ${r.sent} of ${fileSpans} spans to ${cfg.endpoint}${r.rejected > 0 ? ` (${r.rejected} rejected by the collector)` : ""}`);
    const err = damageError(file, s);
    if (err) {
      log.warn(err.message);
      damage ??= err;
    }
  }
  if (summary.failed > 0) {
    throw new TracerError("output_failed", `${summary.failed} of ${summary.spans} spans were not delivered to ${cfg.endpoint}`, {
      hint: "the files are unchanged; fix the collector or the URL (see the messages above) and run the same command again",
    });
  }
  log.info(`sent ${summary.sent} spans from ${summary.files} file${summary.files === 1 ? "" : "s"} to ${cfg.endpoint}`);
  // Every intact span was delivered; now say a file was damaged (exit 17).
  if (damage) throw damage;
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
