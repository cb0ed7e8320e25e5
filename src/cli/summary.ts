/**
 * @module cli/summary — `beetrace summary FILE... [--json] [filters]`: per service and endpoint,
 * the request rate, error ratio, p50/p90/p99/max duration and the slowest traces' ids
 * (src/viewer/summary.ts says how endpoints, percentiles and the rate are defined). Several
 * files are summarized as one set; filters (src/cli/filters.ts) pick the spans that count.
 */
import { log } from "../log.ts";
import { parseFilters, serviceOf, type FilterOptions } from "./filters.ts";
import { formatDuration, writeStdout } from "./view.ts";
import { damageOf, readSpans, type CaptureSummary } from "../viewer/read.ts";
import { bucketLowNs, SummaryBuilder, type Summary } from "../viewer/summary.ts";

export interface SummaryOptions extends FilterOptions {
  json?: boolean;
}

export async function summaryCommand(files: string[], opts: SummaryOptions = {}, write: (s: string) => Promise<void> = writeStdout, argv?: readonly string[]): Promise<Summary> {
  const filter = parseFilters(opts, argv);
  const builder = new SummaryBuilder();
  const captures: CaptureSummary[] = [];
  for (const file of files) {
    // Per header: a merged capture's sections are different services.
    let of: object | undefined;
    let service = "";
    const c = readSpans(file, (span, _clock, header) => {
      if (header !== of) {
        of = header;
        service = serviceOf(header);
      }
      if (filter === undefined || filter.matches(span, service)) builder.add(span, service);
    });
    captures.push(c);
    noteProblems(c);
  }
  const summary = builder.summarize();
  await write(opts.json ? JSON.stringify(summaryJson(summary, captures, filter?.description)) + "\n" : renderSummary(summary, captures, filter?.description).join("\n") + "\n");
  // Damaged files: everything intact was counted and shown; the exit status still says so (17).
  for (const c of captures) {
    const e = damageOf(c);
    if (e !== undefined) throw e;
  }
  return summary;
}

function noteProblems(c: CaptureSummary): void {
  if (c.truncated) log.warn(`${c.file} is truncated (last ${c.trailingBytes} bytes incomplete); its ${c.spans} complete spans are counted`);
}

function summaryJson(s: Summary, captures: CaptureSummary[], filter: string | undefined): object {
  return {
    files: captures.map((c) => ({ file: c.file, service: serviceOf(c.header), host: c.header.host.name, spans: c.spans, truncated: c.truncated, invalid: c.invalid, losses: c.losses })),
    ...(filter !== undefined ? { filter } : {}),
    spans: s.spans,
    window: { startUnixNano: s.windowStartNs?.toString() ?? null, endUnixNano: s.windowEndNs?.toString() ?? null, seconds: s.windowSeconds },
    endpoints: s.endpoints.map((e) => ({
      service: e.service,
      kind: e.kind,
      endpoint: e.endpoint,
      count: e.count,
      errors: e.errors,
      errorRatio: e.errorRatio,
      ratePerSecond: e.ratePerSecond,
      durationNs: { p50: e.p50Ns, p90: e.p90Ns, p99: e.p99Ns, max: e.maxNs },
      slowestTraces: e.slowest.map((t) => ({ traceId: t.traceId, spanId: t.spanId, durationNs: t.durationNs })),
      histogram: e.histogram.flatMap((n, b) => (n > 0 ? [{ fromNs: bucketLowNs(b), toNs: bucketLowNs(b + 1), count: n }] : [])),
    })),
  };
}

export function renderSummary(s: Summary, captures: CaptureSummary[], filter: string | undefined): string[] {
  const out: string[] = [];
  const files = captures.length === 1 ? captures[0]!.file : `${captures.length} files`;
  out.push(`${files}: ${s.spans} span${s.spans === 1 ? "" : "s"}${filter ? ` matching ${filter}` : ""} over ${s.windowSeconds.toFixed(3)} s`);
  if (s.endpoints.length === 0) {
    out.push("no spans to summarize");
    return out;
  }
  const rows = s.endpoints.map((e) => [
    e.service,
    e.kind,
    e.endpoint,
    String(e.count),
    e.ratePerSecond === null ? "-" : e.ratePerSecond >= 100 ? e.ratePerSecond.toFixed(0) : e.ratePerSecond.toFixed(2),
    `${(e.errorRatio * 100).toFixed(1)}%`,
    formatDuration(BigInt(Math.round(e.p50Ns))),
    formatDuration(BigInt(Math.round(e.p90Ns))),
    formatDuration(BigInt(Math.round(e.p99Ns))),
    formatDuration(BigInt(Math.round(e.maxNs))),
  ]);
  const head = ["SERVICE", "KIND", "ENDPOINT", "COUNT", "RATE/s", "ERRORS", "P50", "P90", "P99", "MAX"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]!].length)));
  const numeric = new Set([3, 4, 5, 6, 7, 8, 9]);
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  out.push("", line(head), ...rows.map(line));
  out.push("", "slowest traces:");
  for (const e of s.endpoints) {
    out.push(`  ${e.service} ${e.kind} ${e.endpoint}: ${e.slowest.map((t) => `${t.traceId} (${formatDuration(BigInt(Math.round(t.durationNs)))})`).join(", ")}`);
  }
  return out;
}
