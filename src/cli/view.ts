/**
 * @module cli/view — `beetrace view FILE`: a capture file printed as trace trees.
 *
 * Spans are grouped by trace id, children nested under their parents and sorted by start
 * time. A span whose parent is not in the file (typically a server span whose caller is
 * another service) is shown as a root of its trace. Span lines are cut to fit the width (80 by
 * default) so the output stays readable in any terminal and in pasted bug reports; the summary
 * at the end (span and trace counts, losses, damage) is wrapped instead, never cut.
 *
 * Bounded memory: the file is streamed (src/capture/reader.ts) and only a window of traces is
 * held, each span as the few fields its line needs. A trace is printed once no span of it has
 * ended for GRACE_NS of capture time (spans are written as they end, so later spans of a trace
 * are near it in the file), or, when more than MAX_HELD spans are held, starting with the trace
 * seen first. Traces are printed in order of their first span's start within each
 * printed batch; a span that arrives after its trace was printed is shown under
 * "trace ID (continued)".
 */
import { TracerError } from "../errors.ts";
import { type CaptureContents, damageError, formatDamage, openCapture, type CaptureSummary } from "../capture/reader.ts";
import type { CaptureHeader, CaptureRecord, SpanRecord } from "../capture/format.ts";
import { type LossCounters, zeroLosses } from "../spans/model.ts";
import { type FilterOptions, type SpanFilter, parseFilters, serviceOf } from "./filters.ts";

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

export interface ViewOptions extends FilterOptions {
  width?: number | string;
  /** Only traces whose id starts with this hex prefix (API only: the CLI parser turns
   * all-digit values into numbers, which would drop leading zeros). */
  trace?: string;
}

/**
 * Spans held before the traces seen first are printed early. Measured (bench/capture-memory):
 * each held span costs ~5 KB of resident memory, not the ~200 bytes of its fields, because the
 * few long-lived objects sit among the many short-lived ones of decoding and keep their
 * allocator pages resident; 10,000 keeps view well under the 250 MB bound.
 */
export const MAX_HELD = 10_000;
/** A trace with no span ending for this long (capture time) is complete enough to print: 30 s. */
export const GRACE_NS = 30_000_000_000n;
/** Output is handed to `write` in pieces of about this many characters. */
const WRITE_CHUNK = 64 * 1024;

export async function viewCommand(file: string, opts: ViewOptions = {}, write: (s: string) => Promise<void> = writeStdout): Promise<void> {
  const width = parseWidth(opts.width);
  const stream = openCapture(file);
  let summary: CaptureSummary;
  try {
    const filter = parseFilters(opts);
    const view = new TraceView(stream.header, { width, filter, trace: filter?.tracePrefix ?? (opts.trace === undefined ? undefined : String(opts.trace)) });
    let pending = view.headerLines().join("\n") + "\n";
    for (const r of stream.records()) {
      const lines = view.add(r);
      if (lines.length > 0) pending += lines.join("\n") + "\n";
      if (pending.length >= WRITE_CHUNK) {
        await write(pending);
        pending = "";
      }
    }
    summary = stream.summary;
    pending += view.finish(summary).join("\n") + "\n";
    await write(pending);
  } finally {
    stream.close();
  }
  // Everything readable is printed; now say the file was damaged (exit 17).
  const err = damageError(file, summary);
  if (err) throw err;
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
  /** Spans held before traces are printed early (default MAX_HELD) */
  maxHeld?: number;
  /** Only traces with a span passing the filter (src/cli/filters.ts) */
  filter?: SpanFilter | undefined;
}

/** What renderCapture needs: a read capture (counters may be left out by hand-built contents). */
export type RenderInput = Pick<CaptureContents, "header" | "records" | "truncated" | "trailingBytes" | "skipped"> & Partial<Pick<CaptureContents, "invalid" | "damaged" | "damagedBytes">>;

/** The whole view of an in-memory capture (tests, small files): the same lines viewCommand prints. */
export function renderCapture(c: RenderInput, opts: RenderOptions = {}): string[] {
  const view = new TraceView(c.header, opts);
  const out = view.headerLines();
  let spans = 0;
  let end: CaptureSummary["end"];
  let lastStats: CaptureSummary["lastStats"];
  for (const r of c.records) {
    if (r.type === "span") spans++;
    else if (r.type === "end") end = r;
    else if (r.type === "stats") lastStats = r;
    out.push(...view.add(r));
  }
  out.push(
    ...view.finish({
      spans,
      truncated: c.truncated,
      trailingBytes: c.trailingBytes,
      skipped: c.skipped,
      invalid: c.invalid ?? 0,
      damaged: c.damaged ?? [],
      damagedBytes: c.damagedBytes ?? 0,
      end,
      lastStats,
    }),
  );
  return out;
}

/** A span as view keeps it: its line and what placing it in the tree needs. */
interface HeldSpan {
  spanId: string;
  parentSpanId: string | undefined;
  start: bigint;
  line: string;
}

interface Trace {
  traceId: string;
  start: bigint;
  /** Latest end time among its spans (capture time) */
  lastEnd: bigint;
  spans: HeldSpan[];
  /** A span passed the filter (or there is none) */
  matched: boolean;
}

/** Trace ids already printed, remembered (boundedly: see MAX_HELD) to mark a late span's group "continued". */
const REMEMBER_PRINTED = 10_000;

/** Streaming renderer: header lines, then add() each record (returns lines ready to print), then finish(). */
export class TraceView {
  readonly #width: number;
  readonly #prefix: string | undefined;
  readonly #maxHeld: number;
  readonly #filter: SpanFilter | undefined;
  readonly #open = new Map<string, Trace>();
  /**
   * Open traces in the order they were first seen (a queue: #queue[#head…]). Not reordered on
   * each span: deleting and re-adding Map entries leaves holes that make every walk from the
   * front slower (quadratic over a big file).
   */
  #queue: Trace[] = [];
  #head = 0;
  readonly #printed = new Set<string>();
  /** The same ids in a ring, oldest overwritten first (walking a Set from its front after many deletes is slow). */
  readonly #printedRing: (string | undefined)[] = [];
  #ringNext = 0;
  #held = 0;
  #latestEnd = 0n;
  #groups = 0;
  #sinceCheck = 0;

  constructor(
    readonly header: CaptureHeader,
    opts: RenderOptions = {},
  ) {
    this.#width = opts.width ?? 80;
    this.#prefix = opts.trace?.toLowerCase();
    this.#maxHeld = opts.maxHeld ?? MAX_HELD;
    this.#filter = opts.filter;
  }

  headerLines(): string[] {
    const h = this.header;
    const out: string[] = [];
    const t = h.target;
    const service = t.serviceName !== "" ? t.serviceName : "(no service name)";
    out.push(`capture: ${service}, pid ${t.pid} ${t.exe} (${t.goVersion || "Go version unknown"})`);
    out.push(`  host ${h.host.name} (${h.host.arch}, Linux ${h.host.kernel})`);
    out.push(`  recorded by ${h.tracer.name} ${h.tracer.version}, started ${isoTime(h.createdAt)}`);
    const attached = h.probes.filter((p) => p.attached).map((p) => p.id);
    const missing = h.probes.filter((p) => !p.attached);
    out.push(`  probes: ${attached.length > 0 ? attached.join(", ") : "none attached"}`);
    for (const p of missing) out.push(`  not attached: ${p.id}${p.reason ? `: ${p.reason}` : ""}`);
    return out.map((l) => fit(l, this.#width));
  }

  add(r: CaptureRecord): string[] {
    if (r.type !== "span") return [];
    if (this.#prefix !== undefined && !r.traceId.startsWith(this.#prefix)) return [];
    let t = this.#open.get(r.traceId);
    if (t === undefined) {
      t = { traceId: r.traceId, start: r.startTimeUnixNano, lastEnd: r.endTimeUnixNano, spans: [], matched: false };
      this.#open.set(r.traceId, t);
      this.#queue.push(t);
    }
    t.matched ||= this.#filter === undefined || this.#filter.matches(r, serviceOf(this.header));
    t.spans.push({ spanId: r.spanId, parentSpanId: r.parentSpanId, start: r.startTimeUnixNano, line: spanLine(r) });
    this.#held++;
    if (r.startTimeUnixNano < t.start) t.start = r.startTimeUnixNano;
    if (r.endTimeUnixNano > t.lastEnd) t.lastEnd = r.endTimeUnixNano;
    if (r.endTimeUnixNano > this.#latestEnd) this.#latestEnd = r.endTimeUnixNano;
    // Checking the window on every span would cost a map walk each time.
    if (this.#held > this.#maxHeld || ++this.#sinceCheck >= 1024) {
      this.#sinceCheck = 0;
      return this.#release(false);
    }
    return [];
  }

  /** The traces still held, then the summary. */
  finish(s: CaptureSummary): string[] {
    const out = this.#release(true);
    if (this.#prefix !== undefined && this.#groups === 0) out.push("", `no trace id starts with '${this.#prefix}'`);
    out.push(...this.#summary(s));
    return out;
  }

  /** Print traces that are quiet (or all): first seen first, and more while over the span bound. */
  #release(all: boolean): string[] {
    const ready: Trace[] = [];
    const lowWater = Math.floor(this.#maxHeld * 0.9);
    while (this.#head < this.#queue.length) {
      const t = this.#queue[this.#head]!;
      const quiet = this.#latestEnd - t.lastEnd > GRACE_NS;
      if (!all && !quiet && this.#held <= lowWater) break;
      this.#head++;
      this.#open.delete(t.traceId);
      this.#held -= t.spans.length;
      ready.push(t);
    }
    // Drop the released part of the queue now and then (amortised O(1) per trace).
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (ready.length === 0) return [];
    ready.sort((a, b) => cmp(a.start, b.start) || (a.traceId < b.traceId ? -1 : 1));
    const out: string[] = [];
    for (const t of ready) {
      if (!t.matched) continue;
      this.#groups++;
      const again = this.#printed.has(t.traceId);
      out.push("", fit(`trace ${t.traceId}${again ? " (continued)" : ""}`, this.#width));
      const lines: string[] = [];
      renderTree(t.spans, lines);
      for (const l of lines) out.push(fit(l, this.#width));
      if (!again) {
        this.#printed.add(t.traceId);
        const old = this.#printedRing[this.#ringNext];
        if (old !== undefined) this.#printed.delete(old);
        this.#printedRing[this.#ringNext] = t.traceId;
        this.#ringNext = (this.#ringNext + 1) % REMEMBER_PRINTED;
      }
    }
    return out;
  }

  #summary(s: CaptureSummary): string[] {
    const w = this.#width;
    const losses: LossCounters = s.end?.totals.losses ?? s.lastStats?.losses ?? zeroLosses();
    const out: string[] = [""];
    const groups = this.#groups === 1 ? "1 trace" : `${this.#groups} traces`;
    out.push(`summary: ${s.spans} span${s.spans === 1 ? "" : "s"} in ${groups}${this.#prefix !== undefined ? ` (traces starting '${this.#prefix}')` : ""}${this.#filter?.perSpan ? ` with a span matching ${this.#filter.description}` : ""}`);
    // Losses are what an operator most needs to see: wrapped to the width, never cut.
    out.push(...wrap("  losses: ", formatLosses(losses).split(", "), w));
    if (s.end !== undefined) out.push(fit(`  ended: ${s.end.reason}`, w));
    else out.push(fit("  note: no end record: the tracer was killed or is still running", w));
    if (s.truncated) {
      out.push(
        ...wrap(
          "  note: ",
          (s.trailingBytes > 0 ? `the file is truncated; the last ${s.trailingBytes} bytes are an incomplete record` : "the file is truncated after a complete span record").split(" "),
          w,
          " ",
        ),
      );
    }
    if (s.skipped > 0) out.push(...wrap("  note: ", `${s.skipped} records of a newer kind were skipped`.split(" "), w, " "));
    if (s.invalid > 0) {
      out.push(...wrap("  DAMAGED: ", `${s.invalid} damaged region${s.invalid === 1 ? "" : "s"} (${s.damagedBytes} bytes) skipped; every intact record was read:`.split(" "), w, " "));
      for (const d of s.damaged.slice(0, 20)) out.push(...wrap("    ", formatDamage(d).split(" "), w, " "));
      if (s.invalid > 20) out.push(`    … and ${s.invalid - 20} more`);
    }
    return out;
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Words after `lead`, joined by `sep`, wrapped at `width`: continuation lines are indented
 * under the first word. Never cut: a word longer than the width gets a line of its own.
 */
function wrap(lead: string, words: string[], width: number, sep = ", "): string[] {
  const indent = " ".repeat([...lead].length);
  const out: string[] = [];
  let line = lead + (words[0] ?? "");
  for (const word of words.slice(1)) {
    const joined = line + sep + word;
    if ([...joined].length > width) {
      out.push(line + sep.trimEnd());
      line = indent + word;
    } else {
      line = joined;
    }
  }
  out.push(line);
  return out;
}

function renderTree(spans: HeldSpan[], out: string[]): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, HeldSpan[]>();
  const roots: HeldSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId !== undefined && s.parentSpanId !== s.spanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: HeldSpan, b: HeldSpan) => cmp(a.start, b.start);
  roots.sort(byStart);
  for (const list of children.values()) list.sort(byStart);
  const seen = new Set<string>();
  // Iterative walk: the file is untrusted, so depth is unbounded and parent links may cycle.
  const walk = (root: HeldSpan) => {
    const stack: { s: HeldSpan; lead: string; branch: string }[] = [{ s: root, lead: "  ", branch: "" }];
    while (stack.length > 0) {
      const { s, lead, branch } = stack.pop()!;
      if (seen.has(s.spanId)) continue;
      seen.add(s.spanId);
      const orphan = s.parentSpanId !== undefined && !ids.has(s.parentSpanId) && branch === "";
      out.push(`${lead}${branch}${s.line}${orphan ? " (parent not captured)" : ""}`);
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
  // Values that may be wrong or partial say so on the span's own line.
  const guessed = a["beetrace.guessed_offsets"];
  if (guessed !== undefined) parts.push(`[guessed offsets: ${String(guessed)}]`);
  const truncated = a["beetrace.truncated"];
  if (truncated !== undefined) parts.push(`[truncated: ${String(truncated)}]`);
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
