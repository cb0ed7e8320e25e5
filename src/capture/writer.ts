/**
 * @module capture/writer — appends capture records to a file, crash-tolerantly.
 *
 * Records are encoded immediately and buffered in memory; the buffer is written with
 * synchronous node:fs calls on a timer, when it grows past `flushBytes`, and at close.
 * Synchronous writes keep the ordering obvious and make "flushed" mean "in the kernel": a
 * SIGKILL after a flush leaves every flushed record readable (the reader tolerates a cut
 * last record). The file is created with mode 0600 (spans can carry URLs, queries and peer
 * addresses) and the mode is re-asserted when the file already existed.
 *
 * On a write error the writer stops, keeps what is on disk, and throws `output_failed`
 * saying how many records and bytes were written before the failure.
 */
import * as fs from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import type { LossCounters, Span } from "../spans/model.ts";
import { type CaptureHeader, type EndRecord, type StatsRecord, captureEncoder, spanRecord } from "./format.ts";

export interface CaptureWriterOptions {
  /** Flush at least this often. Default 1000 ms. 0 = only by size and at close. */
  flushIntervalMs?: number;
  /** Flush when this many encoded bytes are buffered. Default 64 KiB. */
  flushBytes?: number;
  /** Called when a timer flush fails (the next call will also throw the error). */
  onError?: (e: TracerError) => void;
}

export interface CaptureWriterTotals {
  /** Records (header included) fully written to the file */
  records: number;
  bytes: number;
  spans: number;
}

export class CaptureWriter {
  private fd: number | undefined;
  private pending: { bytes: Uint8Array; span: boolean }[] = [];
  private pendingBytes = 0;
  private readonly written: CaptureWriterTotals = { records: 0, bytes: 0, spans: 0 };
  private spansQueued = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private failure: TracerError | undefined;
  private readonly encoder = captureEncoder();
  private readonly flushBytes: number;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly opts: CaptureWriterOptions,
  ) {
    this.fd = fd;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    const every = opts.flushIntervalMs ?? 1000;
    if (every > 0) {
      this.timer = setInterval(() => this.timerFlush(), every);
      // Never keep the process alive just to flush.
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Create (or truncate) `path` with mode 0600 and write the header record through. */
  static open(path: string, header: CaptureHeader, opts: CaptureWriterOptions = {}): CaptureWriter {
    let fd: number;
    try {
      // O_NOFOLLOW: we usually run as root; refuse to write through a planted symlink.
      const c = fs.constants;
      fd = fs.openSync(path, c.O_WRONLY | c.O_CREAT | c.O_TRUNC | (c.O_NOFOLLOW ?? 0), 0o600);
    } catch (e) {
      if ((e as { code?: unknown }).code === "ELOOP") {
        throw new TracerError("output_failed", `capture file ${path} is a symbolic link`, {
          hint: "pass the real path of the file (symlinks are refused because beetrace runs as root)",
          cause: e,
        });
      }
      throw asOutputError(fromSystemError(e, `create capture file ${path}`));
    }
    try {
      // The mode argument applies only on creation; re-assert it for a pre-existing file.
      // Only for regular files: as root, chmod on --out /dev/null would change the device.
      if (fs.fstatSync(fd).isFile()) fs.fchmodSync(fd, 0o600);
    } catch (e) {
      fs.closeSync(fd);
      throw asOutputError(fromSystemError(e, `chmod 0600 capture file ${path}`));
    }
    const w = new CaptureWriter(path, fd, opts);
    try {
      w.append(header);
      w.flush();
    } catch (e) {
      w.abandon();
      throw e;
    }
    return w;
  }

  span(span: Span): void {
    this.append(spanRecord(span), true);
    this.spansQueued++;
  }

  stats(at: bigint, losses: LossCounters): void {
    const r: StatsRecord = { type: "stats", at, losses, spans: this.spansQueued };
    this.append(r);
  }

  /** Bytes of the file once everything queued is flushed (for size limits and rotation). */
  size(): number {
    return this.written.bytes + this.pendingBytes;
  }

  /** What has reached the file so far. */
  totals(): CaptureWriterTotals {
    return { ...this.written };
  }

  /** Write buffered records to the file now. Throws output_failed on error. */
  flush(): void {
    this.throwIfFailed();
    const fd = this.fd;
    if (fd === undefined || this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const { bytes, span } of chunks) {
      let off = 0;
      try {
        while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
      } catch (e) {
        // A partly written record is harmless: readers report it as a truncated tail.
        this.written.bytes += off;
        this.fail(e);
        this.throwIfFailed();
      }
      this.written.records++;
      this.written.bytes += bytes.byteLength;
      if (span) this.written.spans++;
    }
  }

  /** Append the end record, flush, fsync and close. Safe to call twice. */
  close(reason: string, at: bigint, losses: LossCounters): CaptureWriterTotals {
    if (this.fd === undefined) {
      this.throwIfFailed();
      return this.totals();
    }
    this.stopTimer();
    try {
      const end: EndRecord = { type: "end", reason, at, totals: { spans: this.spansQueued, losses } };
      this.append(end);
      this.flush();
      try {
        fs.fsyncSync(this.fd);
      } catch (e) {
        // EINVAL: the output cannot be synced (a pipe or /dev/null); nothing is at risk.
        if ((e as { code?: unknown }).code !== "EINVAL") {
          this.fail(e);
          this.throwIfFailed();
        }
      }
    } finally {
      this.closeFd();
    }
    return this.totals();
  }

  /** Close without an end record (e.g. after a failure); never throws. */
  abandon(): void {
    this.stopTimer();
    try {
      this.flush();
    } catch {
      // The failure is already recorded; we are giving up on the file.
    }
    this.closeFd();
  }

  private append(record: object, span = false): void {
    this.throwIfFailed();
    if (this.fd === undefined) {
      throw new TracerError("internal", `capture file ${this.path} is already closed`);
    }
    const bytes = this.encoder.encode(record);
    // cbor-x may reuse its output buffer between encode() calls; keep our own copy.
    this.pending.push({ bytes: Uint8Array.prototype.slice.call(bytes), span });
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes >= this.flushBytes) this.flush();
  }

  private timerFlush(): void {
    try {
      this.flush();
    } catch (e) {
      this.stopTimer();
      if (e instanceof TracerError) this.opts.onError?.(e);
    }
  }

  private fail(e: unknown): void {
    const base = fromSystemError(e, `write capture file ${this.path}`);
    this.failure = new TracerError(
      "output_failed",
      `${base.message} (${this.written.records} records, ${this.written.bytes} bytes were written before the error and remain readable)`,
      { hint: "free disk space or choose another --out path; the partial file can still be read with 'beetrace view'", cause: e },
    );
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private closeFd(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      fs.closeSync(fd);
    } catch {
      // Closing a fd we own fails only if it is already invalid; nothing left to save.
    }
  }
}

function asOutputError(e: TracerError): TracerError {
  if (e.code === "io_error") return new TracerError("output_failed", e.message, { hint: e.hint ?? "check the --out path", cause: e.cause });
  return e;
}
