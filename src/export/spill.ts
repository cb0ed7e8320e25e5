/**
 * @module export/spill — spans the collector could not take, kept in a capture file and sent later.
 *
 * The spill file is an ordinary capture file (src/capture), so `beetrace view` reads it and
 * `beetrace export FILE --otlp URL` sends it. It is created on first use (no empty files when
 * the collector never fails) and never overwrites an existing file: an earlier run's kept spans
 * are worth more than a tidy name, so a taken path gets a numeric suffix.
 *
 * Resending reads the file back a window at a time (the streaming reader) and walks it with a cursor: the number of span
 * records, in file order, the collector has acknowledged. The cursor is persisted after every
 * acknowledged batch in a sidecar `<file>.sent` (JSON {"spansSent": N}, written by rename so it
 * is never half written), so a crash mid-resend does not make a later `beetrace export` send
 * those spans twice. On close: a fully sent file is deleted with its sidecar; a partly sent file
 * is rewritten with only the unsent spans (then the sidecar is deleted); if that rewrite fails
 * the file and sidecar stay, and `beetrace export` skips the sent prefix.
 *
 * Memory: only the unsent spans of one read-back are held, not the whole file history.
 */
import * as fs from "node:fs";
import { TracerError, isTracerError } from "../errors.ts";
import { log } from "../log.ts";
import type { CaptureHeader } from "../capture/format.ts";
import { CaptureWriter } from "../capture/writer.ts";
import { openCapture, type ResumePoint } from "../capture/reader.ts";
import { collectGarbage } from "../runtime.ts";

/** Unsent spans read back from the spill file at a time (bounded memory during a long outage). */
const RESEND_WINDOW = 4096;
import { type Span, zeroLosses } from "../spans/model.ts";

export interface SpillCloseResult {
  /** Path of the file holding unsent spans, or undefined when nothing is left. */
  path: string | undefined;
  /** Spans in that file not yet delivered */
  pending: number;
}

/** Cursor sidecar of a spill file. */
export function cursorPath(path: string): string {
  return `${path}.sent`;
}

/**
 * Spans of `path` already delivered by the run that spilled them (0 without a sidecar).
 * An unreadable or malformed sidecar counts as 0: sending twice beats not sending.
 */
export function readSpillCursor(path: string): number {
  let text: string;
  try {
    text = fs.readFileSync(cursorPath(path), "utf8");
  } catch {
    return 0;
  }
  try {
    const v = (JSON.parse(text) as { spansSent?: unknown }).spansSent;
    return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0;
  } catch {
    return 0;
  }
}

/** `path` if free, else `path.1`, `path.2`, ... (before the extension when there is one). */
export function freshPath(path: string): string {
  if (!fs.existsSync(path)) return path;
  const dot = path.lastIndexOf(".");
  const slash = path.lastIndexOf("/");
  const [stem, ext] = dot > slash + 1 ? [path.slice(0, dot), path.slice(dot)] : [path, ""];
  for (let i = 1; i < 10_000; i++) {
    const p = `${stem}.${i}${ext}`;
    if (!fs.existsSync(p)) return p;
  }
  throw new TracerError("output_failed", `no free spill file name next to ${path}`, { hint: "move the old spill files away (send them with 'beetrace export')" });
}

export class SpillFile {
  #writer: CaptureWriter | undefined;
  #path: string | undefined;
  #failure: TracerError | undefined;
  /** Spans handed to append() that were accepted into the writer */
  #appended = 0;
  /** Spans lost because the file could not be written */
  #lost = 0;
  /** Span records decoded while reading the file back (a diagnostic: a resend reads each about once) */
  #decoded = 0;
  /** Spans acknowledged by the collector (the cursor) */
  #acked = 0;
  /** Unsent spans read back from the file: they are span records [#cacheFrom, #cacheFrom + #cache.length) */
  #cache: Span[] = [];
  #cacheFrom = 0;
  /** Where the last read-back stopped (after span record `index`-1), so the next one reads on from there. */
  #resume: { point: ResumePoint; index: number } | undefined;
  #closed = false;
  /** The cursor when the resend last collected garbage */
  #ackedAtGc = 0;

  constructor(
    private readonly wantedPath: string,
    private readonly header: CaptureHeader,
  ) {}

  /** The file's path once created. */
  get path(): string | undefined {
    return this.#path;
  }
  /** Spans on disk (or about to be) that the collector has not acknowledged. */
  get pending(): number {
    return this.#appended - this.#acked;
  }
  /** Spans that could not be written (disk full, permissions). */
  get lost(): number {
    return this.#lost;
  }
  /** Span records decoded from the file by read-backs so far. */
  get decodedOnReadBack(): number {
    return this.#decoded;
  }
  /** Whether writing has failed (further appends are refused). */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * Append spans. Returns how many were accepted; the rest (all of them after a write failure)
   * are counted as lost and the first failure is logged.
   */
  append(spans: readonly Span[]): number {
    if (spans.length === 0) return 0;
    if (this.#closed || this.#failure) {
      this.#lost += spans.length;
      return 0;
    }
    let accepted = 0;
    try {
      if (this.#writer === undefined) {
        this.#path = freshPath(this.wantedPath);
        this.#writer = CaptureWriter.open(this.#path, this.header, { onError: (e) => this.#fail(e) });
      }
      for (const s of spans) {
        this.#writer.span(s);
        this.#appended++;
        accepted++;
      }
    } catch (e) {
      this.#fail(e);
      this.#lost += spans.length - accepted;
    }
    this.#reconcileLoss();
    return this.#failure ? 0 : accepted;
  }

  /** Up to `max` unsent spans, oldest first (reads the file back when the cache is used up). */
  nextBatch(max: number): Span[] {
    if (this.pending <= 0) return [];
    if (this.#acked >= this.#cacheFrom + this.#cache.length) this.#reload();
    const start = this.#acked - this.#cacheFrom;
    return this.#cache.slice(start, start + Math.max(1, max));
  }

  /** The collector took the first `n` spans of the last nextBatch(): move the cursor past them. */
  ack(n: number): void {
    if (n <= 0) return;
    this.#acked = Math.min(this.#appended, this.#acked + n);
    // Drop what is sent from memory once a whole read-back is through.
    if (this.#acked >= this.#cacheFrom + this.#cache.length) {
      this.#cacheFrom = this.#acked;
      this.#cache = [];
    }
    if (this.#path !== undefined) this.#writeCursor();
  }

  /**
   * Finish the file: delete it when everything was sent, rewrite it with only the unsent spans
   * when part was sent. Never throws; problems are logged and the file is left as it is.
   */
  close(): SpillCloseResult {
    if (this.#closed) return { path: this.pending > 0 ? this.#path : undefined, pending: this.pending };
    this.#closed = true;
    const path = this.#path;
    if (path === undefined || this.#writer === undefined) return { path: undefined, pending: 0 };
    const now = BigInt(Date.now()) * 1_000_000n;
    try {
      this.#writer.close("spill closed", now, zeroLosses());
    } catch (e) {
      this.#fail(e);
      this.#writer.abandon();
    }
    this.#reconcileLoss();
    if (this.pending <= 0) {
      rmQuiet(path);
      rmQuiet(cursorPath(path));
      return { path: undefined, pending: 0 };
    }
    if (this.#acked > 0) {
      try {
        const tmp = `${path}.tmp`;
        const w = CaptureWriter.open(tmp, this.header, { flushIntervalMs: 0 });
        const stream = openCapture(path);
        try {
          // Streamed: the unsent backlog of a long outage is never held whole.
          let index = 0;
          for (const { type: _t, ...span } of stream.spans()) if (index++ >= this.#acked) w.span(span as Span);
          w.close("spill compacted", now, zeroLosses());
        } catch (e) {
          w.abandon();
          rmQuiet(tmp);
          throw e;
        } finally {
          stream.close();
        }
        fs.renameSync(tmp, path);
        rmQuiet(cursorPath(path));
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        log.warn(`could not rewrite ${path} without its ${this.#acked} already sent spans (${why}); ${cursorPath(path)} records them and 'beetrace export' skips them`);
      }
    }
    return { path, pending: this.pending };
  }

  #reload(): void {
    const path = this.#path;
    if (path === undefined || this.#writer === undefined) return;
    // The window just sent (decoded spans, their OTLP encoding, request bodies) is garbage now.
    // Resending makes it as fast as the collector answers, and the runtime let it pile up until
    // the whole backlog was through (heap 30 → 115 MB, RSS +140 MiB in the soak bench). One full
    // collection per RESEND_WINDOW spans sent keeps the heap at about a window's worth; counted
    // in spans, not read-backs, because near the end of a backlog read-backs are small and many.
    if (this.#acked - this.#ackedAtGc >= RESEND_WINDOW) {
      collectGarbage();
      this.#ackedAtGc = this.#acked;
    }
    try {
      this.#writer.flush();
    } catch (e) {
      this.#fail(e);
    }
    this.#reconcileLoss();
    try {
      this.#cache = this.#readUnsent(path);
      this.#cacheFrom = this.#acked;
    } catch (e) {
      // The file we wrote does not read back: nothing more can be resent from it this run.
      this.#fail(e);
      this.#cache = [];
      this.#cacheFrom = this.#acked;
    }
  }

  /**
   * Span records after the cursor, as written so far: at most `limit` of them, read through the
   * streaming reader, so a long outage's backlog is resent a window at a time instead of being
   * held (and re-read) whole.
   */
  #readUnsent(path: string, limit = RESEND_WINDOW): Span[] {
    const stream = openCapture(path);
    const out: Span[] = [];
    try {
      // Reading on from where the last window stopped keeps a long resend linear in the file's
      // size (reading from the start every window was quadratic, and churned the heap).
      const resume = this.#resume !== undefined && this.#resume.index <= this.#acked ? this.#resume : undefined;
      let index = resume?.index ?? 0;
      this.#resume = undefined;
      for (const { type: _t, ...span } of stream.spans(resume?.point)) {
        this.#decoded++;
        if (index++ < this.#acked) continue;
        out.push(span as Span);
        const point = stream.resumePoint;
        this.#resume = point === undefined ? undefined : { point, index };
        if (out.length >= limit) break;
      }
    } finally {
      stream.close();
    }
    return out;
  }

  #writeCursor(): void {
    const path = this.#path!;
    const tmp = `${cursorPath(path)}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify({ spansSent: this.#acked }) + "\n", { mode: 0o600 });
      fs.renameSync(tmp, cursorPath(path));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      log.debug(`spill cursor ${cursorPath(path)} not written: ${why}`);
    }
  }

  /** After a write failure, spans accepted into the writer but not on disk are lost, not pending. */
  #reconcileLoss(): void {
    if (!this.#failure || this.#writer === undefined) return;
    const onDisk = this.#writer.totals().spans;
    if (this.#appended > onDisk) {
      this.#lost += this.#appended - onDisk;
      this.#appended = onDisk;
      if (this.#acked > this.#appended) this.#acked = this.#appended;
    }
  }

  #fail(e: unknown): void {
    if (this.#failure) return;
    this.#failure = isTracerError(e) ? e : new TracerError("output_failed", `spill file: ${String(e)}`);
    log.error(`spill file ${this.#path ?? this.wantedPath}: ${this.#failure.message}; spans that cannot reach the collector are now dropped`);
  }
}

function rmQuiet(path: string): void {
  try {
    fs.rmSync(path, { force: true });
  } catch {
    // Left behind; harmless (a sidecar without its file is ignored).
  }
}
