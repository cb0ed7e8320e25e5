/**
 * @module spans/assemble — pairs start and end records by span id into finished spans.
 *
 * Span ids come from BPF, so every call is independent: children ending before their parents
 * is normal and needs no special handling here. What does need handling:
 *  - an end may arrive before its start within one drain (records from different CPUs are not
 *    globally ordered), so unmatched ends are held until the end of the *next* drain and at
 *    least `endGraceMs`, and only then counted as `endWithoutStart`;
 *  - a start may arrive twice with the same span id (Go's stack growth re-runs a function
 *    prologue, re-firing the entry uprobe); the second one is ignored;
 *  - memory is bounded: at most `maxPendingStarts` open calls and `maxHeldEnds` early ends.
 *    Overflowing starts evict the oldest open call (counted `incomplete`: we stopped waiting
 *    for it); overflowing ends are counted `endWithoutStart`.
 * End times are never invented: calls still open at stop are counted, not emitted.
 */
import type { LossCounters, Span, SpanEnd, SpanStart } from "./model.ts";
import { zeroLosses } from "./model.ts";

export interface AssemblerOptions {
  /** Build the span (the caller looks up the probe by start.probe); undefined = cannot. */
  finish: (start: SpanStart, end: SpanEnd) => Span | undefined;
  onSpan: (span: Span) => void;
  /** Milliseconds from a monotonic source; default performance.now(). Tests inject a fake. */
  clock?: () => number;
  /** Minimum time an unmatched end is held before it counts as endWithoutStart. Default 200. */
  endGraceMs?: number;
  /** Default 65536 open calls (a busy server rarely has more in flight). */
  maxPendingStarts?: number;
  /** Default 4096 early ends. */
  maxHeldEnds?: number;
  /** How many recently finished span ids to remember, to ignore late duplicates. Default 1024. */
  recentFinished?: number;
}

/** Assembler-internal counts beyond LossCounters (for `-v` and tests). */
export interface AssemblerStats {
  spans: number;
  pendingStarts: number;
  heldEnds: number;
  duplicateStarts: number;
  duplicateEnds: number;
  evictedStarts: number;
  /** finish() returned undefined (unknown probe or undecodable fields) */
  unfinished: number;
}

interface HeldEnd {
  end: SpanEnd;
  drain: number;
  atMs: number;
}

export class SpanAssembler {
  /** Insertion-ordered, so the first key is the oldest open call. */
  private readonly starts = new Map<string, SpanStart>();
  private readonly ends = new Map<string, HeldEnd>();
  private readonly recent = new Set<string>();
  private drainSeq = 0;
  private readonly counts = { endWithoutStart: 0, incomplete: 0 };
  private readonly st = { spans: 0, duplicateStarts: 0, duplicateEnds: 0, evictedStarts: 0, unfinished: 0 };
  private readonly clock: () => number;
  private readonly graceMs: number;
  private readonly maxStarts: number;
  private readonly maxEnds: number;
  private readonly maxRecent: number;

  constructor(private readonly opts: AssemblerOptions) {
    this.clock = opts.clock ?? (() => performance.now());
    this.graceMs = opts.endGraceMs ?? 200;
    this.maxStarts = Math.max(1, opts.maxPendingStarts ?? 65536);
    this.maxEnds = Math.max(1, opts.maxHeldEnds ?? 4096);
    this.maxRecent = Math.max(0, opts.recentFinished ?? 1024);
  }

  start(s: SpanStart): void {
    if (this.starts.has(s.spanId) || this.recent.has(s.spanId)) {
      this.st.duplicateStarts++;
      return;
    }
    const early = this.ends.get(s.spanId);
    if (early !== undefined) {
      this.ends.delete(s.spanId);
      this.complete(s, early.end);
      return;
    }
    if (this.starts.size >= this.maxStarts) {
      const oldest = this.starts.keys().next();
      if (!oldest.done) {
        this.starts.delete(oldest.value);
        this.counts.incomplete++;
        this.st.evictedStarts++;
      }
    }
    this.starts.set(s.spanId, s);
  }

  end(e: SpanEnd): void {
    const s = this.starts.get(e.spanId);
    if (s !== undefined) {
      this.starts.delete(e.spanId);
      this.complete(s, e);
      return;
    }
    if (this.recent.has(e.spanId) || this.ends.has(e.spanId)) {
      this.st.duplicateEnds++;
      return;
    }
    if (this.ends.size >= this.maxEnds) {
      const oldest = this.ends.keys().next();
      if (!oldest.done) {
        this.ends.delete(oldest.value);
        this.counts.endWithoutStart++;
      }
    }
    this.ends.set(e.spanId, { end: e, drain: this.drainSeq, atMs: this.clock() });
  }

  /**
   * Call after each ring-buffer drain. Ends that arrived before the previous drain finished
   * and have waited at least endGraceMs will never meet their start: count them.
   */
  drained(): void {
    this.drainSeq++;
    const now = this.clock();
    for (const [id, h] of this.ends) {
      if (this.drainSeq - h.drain >= 2 && now - h.atMs >= this.graceMs) {
        this.ends.delete(id);
        this.counts.endWithoutStart++;
      }
    }
  }

  /** At stop: every open call is `incomplete`, every held end is `endWithoutStart`. */
  flushIncomplete(): void {
    this.counts.incomplete += this.starts.size;
    this.counts.endWithoutStart += this.ends.size;
    this.starts.clear();
    this.ends.clear();
  }

  /** The assembler's share of the loss counters (BPF-side counters are zero here). */
  losses(): LossCounters {
    return { ...zeroLosses(), endWithoutStart: this.counts.endWithoutStart, incomplete: this.counts.incomplete };
  }

  stats(): AssemblerStats {
    return { ...this.st, pendingStarts: this.starts.size, heldEnds: this.ends.size };
  }

  private complete(s: SpanStart, e: SpanEnd): void {
    this.remember(s.spanId);
    const span = this.opts.finish(s, e);
    if (span === undefined) {
      this.st.unfinished++;
      return;
    }
    this.st.spans++;
    this.opts.onSpan(span);
  }

  private remember(id: string): void {
    if (this.maxRecent === 0) return;
    this.recent.add(id);
    if (this.recent.size > this.maxRecent) {
      const oldest = this.recent.values().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }
}
