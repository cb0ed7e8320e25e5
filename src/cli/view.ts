/**
 * @module cli/view — `beetrace view FILE`: a capture file printed as trace trees.
 *
 * Spans are grouped by trace id, children nested under their parents and sorted by start
 * time. A span whose parent is not in the file (typically a server span whose caller is
 * another service) is shown as a root of its trace. Lines are cut to fit the width (80 by
 * default) so the output stays readable in any terminal and in pasted bug reports.
 */
import { TracerError } from "../errors.ts";
import { readCaptureFile, type CaptureContents } from "../capture/reader.ts";
import type { SpanRecord } from "../capture/format.ts";
import { type LossCounters, zeroLosses } from "../spans/model.ts";

/**
 * Write to stdout and wait until it is handed to the OS (main.ts exits right after the
 * command returns). A closed pipe (`beetrace view f | head`) is not an error.
 */
export function writeStdout(s: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(s, (err) => {
      if (err && (err as { code?: unknown }).code !== "EPIPE") {
        reject(new TracerError("output_failed", `write to stdout: ${err.message}`, { cause: err }));
      } else resolve();
    });
  });
}

export interface ViewOptions {
  width?: number | string;
  /** Only traces whose id starts with this hex prefix (API only: the CLI parser turns
   * all-digit values into numbers, which would drop leading zeros). */
  trace?: string;
}

export async function viewCommand(file: string, opts: ViewOptions = {}, write: (s: string) => Promise<void> = writeStdout): Promise<void> {
  const width = parseWidth(opts.width);
  const contents = readCaptureFile(file);
  const lines = renderCapture(contents, { width, trace: opts.trace === undefined ? undefined : String(opts.trace) });
  await write(lines.join("\n") + "\n");
}

function parseWidth(w: number | string | undefined): number {
  if (w === undefined) return 80;
  const n = typeof w === "number" ? w : Number(w);
  if (!Number.isInteger(n) || n < 40 || n > 1000) {
    throw new TracerError("usage", `--width must be a whole number from 40 to 1000, got '${String(w)}'`, { hint: "e.g. --width 120" });
  }
  return n;
}

export interface RenderOptions {
  width?: number;
  trace?: string | undefined;
}

/** What renderCapture needs: a read capture (`invalid` may be left out by hand-built contents). */
export type RenderInput = Omit<CaptureContents, "invalid"> & { invalid?: number };

export function renderCapture(c: RenderInput, opts: RenderOptions = {}): string[] {
  const width = opts.width ?? 80;
  const h = c.header;
  const out: string[] = [];
  const spans = c.records.filter((r): r is SpanRecord => r.type === "span");
  const end = c.records.findLast((r) => r.type === "end");
  const lastStats = c.records.findLast((r) => r.type === "stats");
  const losses: LossCounters = end?.type === "end" ? end.totals.losses : lastStats?.type === "stats" ? lastStats.losses : zeroLosses();

  const t = h.target;
  const service = t.serviceName !== "" ? t.serviceName : "(no service name)";
  out.push(`capture: ${service}, pid ${t.pid} ${t.exe} (${t.goVersion || "Go version unknown"})`);
  out.push(`  host ${h.host.name} (${h.host.arch}, Linux ${h.host.kernel})`);
  out.push(`  recorded by ${h.tracer.name} ${h.tracer.version}, started ${isoTime(h.createdAt)}`);
  const attached = h.probes.filter((p) => p.attached).map((p) => p.id);
  const missing = h.probes.filter((p) => !p.attached);
  out.push(`  probes: ${attached.length > 0 ? attached.join(", ") : "none attached"}`);
  for (const p of missing) out.push(`  not attached: ${p.id}${p.reason ? `: ${p.reason}` : ""}`);
  const traces = groupTraces(spans);
  out.push(`  spans: ${spans.length} in ${traces.length} trace${traces.length === 1 ? "" : "s"}; losses: ${formatLosses(losses)}`);
  if (end?.type === "end") out.push(`  ended: ${end.reason}`);
  else out.push("  note: no end record: the tracer was killed or is still running");
  if (c.truncated) {
    out.push(
      c.trailingBytes > 0
        ? `  note: the file is truncated; the last ${c.trailingBytes} bytes are an incomplete record`
        : "  note: the file is truncated after a complete span record",
    );
  }
  if (c.skipped > 0) out.push(`  note: ${c.skipped} records of a newer kind were skipped`);
  if ((c.invalid ?? 0) > 0) out.push(`  note: ${c.invalid} span records could not be decoded and are not shown`);

  const prefix = opts.trace?.toLowerCase();
  let shown = 0;
  for (const tr of traces) {
    if (prefix !== undefined && !tr.traceId.startsWith(prefix)) continue;
    shown++;
    out.push("");
    out.push(`trace ${tr.traceId}`);
    renderTree(tr.spans, out);
  }
  if (prefix !== undefined && shown === 0) out.push("", `no trace id starts with '${prefix}'`);
  return out.map((l) => fit(l, width));
}

interface Trace {
  traceId: string;
  start: bigint;
  spans: SpanRecord[];
}

function groupTraces(spans: SpanRecord[]): Trace[] {
  const byId = new Map<string, Trace>();
  for (const s of spans) {
    let t = byId.get(s.traceId);
    if (t === undefined) {
      t = { traceId: s.traceId, start: s.startTimeUnixNano, spans: [] };
      byId.set(s.traceId, t);
    }
    t.spans.push(s);
    if (s.startTimeUnixNano < t.start) t.start = s.startTimeUnixNano;
  }
  return [...byId.values()].sort((a, b) => cmp(a.start, b.start) || (a.traceId < b.traceId ? -1 : 1));
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function renderTree(spans: SpanRecord[], out: string[]): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, SpanRecord[]>();
  const roots: SpanRecord[] = [];
  for (const s of spans) {
    if (s.parentSpanId !== undefined && s.parentSpanId !== s.spanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: SpanRecord, b: SpanRecord) => cmp(a.startTimeUnixNano, b.startTimeUnixNano);
  roots.sort(byStart);
  for (const list of children.values()) list.sort(byStart);
  const seen = new Set<string>();
  // Iterative walk: the file is untrusted, so depth is unbounded and parent links may cycle.
  const walk = (root: SpanRecord) => {
    const stack: { s: SpanRecord; lead: string; branch: string }[] = [{ s: root, lead: "  ", branch: "" }];
    while (stack.length > 0) {
      const { s, lead, branch } = stack.pop()!;
      if (seen.has(s.spanId)) continue;
      seen.add(s.spanId);
      const orphan = s.parentSpanId !== undefined && !ids.has(s.parentSpanId) && branch === "";
      out.push(`${lead}${branch}${spanLine(s)}${orphan ? " (parent not captured)" : ""}`);
      const kids = children.get(s.spanId) ?? [];
      const childLead = lead + (branch === "" ? "" : branch === "└─ " ? "   " : "│  ");
      for (let i = kids.length - 1; i >= 0; i--) {
        stack.push({ s: kids[i]!, lead: childLead, branch: i === kids.length - 1 ? "└─ " : "├─ " });
      }
    }
  };
  for (const r of roots) walk(r);
  // Spans caught in a parent cycle were never reached from a root; show them flat.
  for (const s of [...spans].sort(byStart)) if (!seen.has(s.spanId)) walk(s);
}

function spanLine(s: SpanRecord): string {
  const parts = [s.name, formatDuration(s.endTimeUnixNano - s.startTimeUnixNano)];
  if (s.status.code === "error") parts.push(s.status.message ? `ERROR ${s.status.message}` : "ERROR");
  else if (s.status.code === "ok") parts.push("ok");
  const a = s.attributes;
  const code = a["http.response.status_code"] ?? a["rpc.grpc.status_code"];
  if (code !== undefined) parts.push(String(code));
  const where = a["http.route"] ?? a["url.path"] ?? a["url.full"] ?? a["rpc.method"] ?? a["db.operation.name"];
  if (where !== undefined && !s.name.includes(String(where))) parts.push(String(where));
  const peer = s.kind === "client" ? a["server.address"] : undefined;
  if (peer !== undefined) parts.push(`→ ${String(peer)}`);
  return parts.join("  ");
}

/** 850ns, 12.3µs, 123µs, 1.2ms, 1.23s, 2m03s */
export function formatDuration(ns: bigint): string {
  if (ns < 0n) return "negative duration";
  if (ns < 1000n) return `${ns}ns`;
  const n = Number(ns);
  const scaled = (v: number, unit: string) => (v < 10 ? `${trim(v.toFixed(1))}${unit}` : `${Math.round(v)}${unit}`);
  if (n < 999_500) return scaled(n / 1e3, "µs");
  if (n < 999_500_000) return scaled(n / 1e6, "ms");
  if (n < 60e9) return `${trim((n / 1e9).toFixed(2))}s`;
  const totalS = Math.floor(n / 1e9);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s).padStart(2, "0")}s`;
}

function trim(x: string): string {
  return x.includes(".") ? x.replace(/\.?0+$/, "") : x;
}

function formatLosses(l: LossCounters): string {
  const parts = Object.entries(l)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k} ${v}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

function isoTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ns}ns` : d.toISOString();
}

/** Cut to `width` columns (code points), marking the cut with "…". */
function fit(line: string, width: number): string {
  const cps = [...line];
  if (cps.length <= width) return line;
  return cps.slice(0, width - 1).join("") + "…";
}
