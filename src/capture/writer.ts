/**
 * @module capture/writer — appends capture items to a file, crash-tolerantly, one write per flush.
 *
 * Items are encoded at once into one growing buffer; raw span records (format 2) are copied
 * into the byte string of an open `records` chunk in that same buffer, so each record is
 * copied exactly once. `flush()` closes the open chunk and hands the whole buffer to the
 * kernel with one synchronous write (the trace session flushes once per drain tick, so a
 * SIGKILL loses at most one tick; the reader tolerates a cut last item and reads the complete
 * records of a cut chunk). The buffer is also flushed on a timer (a safety net), when it grows
 * past `flushBytes`, and at close. The file is created with mode 0600 (spans can carry URLs,
 * queries and peer addresses) and the mode is re-asserted when the file already existed.
 *
 * A chunk's byte string always has a 4-byte length head (0x5a, RFC 8949 §3.1: well-formed,
 * though not the shortest form), so its length can be patched in when the chunk closes without
 * moving the records: the chunk's framing is 24 bytes whatever its size. With `compress` (format
 * 3), a chunk is compressed when it closes and replaced in place by a `records-deflate` item when
 * that is smaller (format.ts); the records are still copied once, and the file written once per
 * flush.
 *
 * On a write error the writer stops, keeps what is on disk, and throws `output_failed`
 * saying how many spans and bytes were written before the failure.
 */
import * as fs from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import type { LossCounters, Span } from "../spans/model.ts";
import { recordSize } from "../probes/decode.ts";
import { copyRecordBytes } from "./copy.ts";
import { deflateRaw, inflateRaw } from "../runtime.ts";
import {
  CAPTURE_FORMAT_DEFLATE,
  type CaptureHeader,
  type ClockFields,
  type ClockRecord,
  DEFLATED_CHUNK_MAX,
  DEFLATE_LEVEL,
  type EndRecord,
  type SectionRecord,
  type StatsRecord,
  captureEncoder,
  spanRecord,
} from "./format.ts";

export interface CaptureWriterOptions {
  /** Flush at least this often. Default 1000 ms. 0 = only by size, by flush() and at close. */
  flushIntervalMs?: number;
  /** Flush when this many encoded bytes are buffered. Default 1 MiB (well above one drain tick). */
  flushBytes?: number;
  /** Called when a timer flush fails (the next call will also throw the error). */
  onError?: (e: TracerError) => void;
  /**
   * Compress each records chunk (raw DEFLATE) and keep it compressed when that is smaller. Needs
   * a header of format 3 or later: older readers would skip compressed chunks unread.
   */
  compress?: boolean;
  /** For tests: replaces fs.writeSync (to count or fail writes). */
  writeSync?: (fd: number, bytes: Uint8Array, offset: number, length: number) => number;
}

export interface CaptureWriterTotals {
  /** Items (header included) fully written to the file; a records chunk is one item */
  records: number;
  bytes: number;
  /** Spans fully written: span items, and raw records (also those of a cut chunk) */
  spans: number;
}

/** `{"type": "records", "data": <bstr, 4-byte length follows>}` (CBOR, RFC 8949 §3.1). */
const CHUNK_HEAD = Uint8Array.from([
  0xa2, // map(2)
  0x64, ...new TextEncoder().encode("type"),
  0x67, ...new TextEncoder().encode("records"),
  0x64, ...new TextEncoder().encode("data"),
  0x5a, 0, 0, 0, 0, // bytes(uint32 length), patched when the chunk closes
]);
const CHUNK_HEAD_SIZE = CHUNK_HEAD.byteLength; // 24
/**
 * `{"type": "records-deflate", "size": <uint32: bytes inflated>, "data": <bstr, uint32 length>}`:
 * fixed-width heads, so the item is written in place of the raw chunk it replaces.
 */
const DEFLATED_HEAD = Uint8Array.from([
  0xa3, // map(3)
  0x64, ...new TextEncoder().encode("type"),
  0x6f, ...new TextEncoder().encode("records-deflate"),
  0x64, ...new TextEncoder().encode("size"),
  0x1a, 0, 0, 0, 0, // uint32, set when written
  0x64, ...new TextEncoder().encode("data"),
  0x5a, 0, 0, 0, 0, // bytes(uint32 length), set when written
]);
const DEFLATED_HEAD_SIZE = DEFLATED_HEAD.byteLength; // 42
/** Where the "size" value's 4 bytes are in DEFLATED_HEAD (after map, "type", "records-deflate", "size", 0x1a). */
const DEFLATED_SIZE_AT = 1 + 5 + 16 + 5 + 1;
/** Largest byte string the 4-byte length head can describe. */
const CHUNK_MAX = 0xffff_ffff;
const INITIAL_BUFFER = 64 * 1024;

/** One item in the buffer: where it ends, how many spans it holds, where a chunk's data starts. */
interface PendingItem {
  end: number;
  spans: number;
  dataStart: number;
  /** The chunk's data is compressed (records-deflate), of `size` bytes inflated */
  deflated?: { size: number };
}

export class CaptureWriter {
  private fd: number | undefined;
  private buf = new Uint8Array(INITIAL_BUFFER);
  private len = 0;
  private items: PendingItem[] = [];
  /** Start of the open chunk's data in `buf`, or -1 */
  private chunkData = -1;
  private chunkSpans = 0;
  private readonly written: CaptureWriterTotals = { records: 0, bytes: 0, spans: 0 };
  private spansQueued = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private failure: TracerError | undefined;
  private readonly encoder = captureEncoder();
  private readonly flushBytes: number;
  private readonly write: (fd: number, bytes: Uint8Array, offset: number, length: number) => number;
  /** Raw records are accepted only under a format-2 header (it carries their layouts). */
  private readonly raw: boolean;
  private readonly compress: boolean;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly opts: CaptureWriterOptions,
    raw: boolean,
  ) {
    this.fd = fd;
    this.raw = raw;
    this.compress = opts.compress === true;
    this.flushBytes = opts.flushBytes ?? 1024 * 1024;
    this.write = opts.writeSync ?? ((f, b, o, l) => fs.writeSync(f, b, o, l));
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
    if (opts.compress === true && header.format < CAPTURE_FORMAT_DEFLATE) {
      fs.closeSync(fd);
      throw new TracerError("internal", `capture file ${path}: compressed chunks need a format-${CAPTURE_FORMAT_DEFLATE} header (this one is format ${header.format})`);
    }
    const w = new CaptureWriter(path, fd, opts, header.format >= 2 && header.records !== undefined);
    try {
      w.append(header);
      w.flush();
    } catch (e) {
      w.abandon();
      throw e;
    }
    return w;
  }

  /** A decoded span as a `span` item (format 1; the OTLP spill file). */
  span(span: Span): void {
    this.append(spanRecord(span), 1);
    this.spansQueued++;
  }

  /**
   * One raw span record (bpf/shared/span.h) at raw[offset, offset + length) (default: all of
   * `raw`), copied into the open chunk. Only its own `size` bytes are kept (a ring-buffer sample
   * may be longer). Returns false, keeping nothing, for a record whose size field does not fit:
   * storing it would break the chunk's framing.
   */
  record(raw: Uint8Array, offset = 0, length = raw.byteLength - offset): boolean {
    this.checkOpen();
    if (!this.raw) throw new TracerError("internal", `capture file ${this.path}: raw records need a format-2 header with record layouts`);
    const size = recordSize(raw, offset);
    if (size === 0 || size > length || offset + length > raw.byteLength) return false;
    if (this.chunkData >= 0 && this.len + size - this.chunkData > CHUNK_MAX) this.closeChunk();
    if (this.chunkData < 0) {
      this.reserve(CHUNK_HEAD_SIZE + size);
      this.buf.set(CHUNK_HEAD, this.len);
      this.len += CHUNK_HEAD_SIZE;
      this.chunkData = this.len;
      this.chunkSpans = 0;
    } else {
      this.reserve(size);
    }
    copyRecordBytes(raw, offset, this.buf, this.len, size);
    this.len += size;
    this.chunkSpans++;
    this.spansQueued++;
    if (this.len >= this.flushBytes) this.flush();
    return true;
  }

  /**
   * Consecutive whole span records, as record() would take them one by one (the same bytes in
   * the file, flushes included), with one copy per flush instead of one per record: record k is
   * bytes[at[k], at[k + 1]), the last one ends at `end`. The caller has checked their framing
   * (a capture reader's RawRun).
   */
  records(bytes: Uint8Array, at: Int32Array, count: number, end: number): void {
    this.checkOpen();
    if (!this.raw) throw new TracerError("internal", `capture file ${this.path}: raw records need a format-2 header with record layouts`);
    let k = 0;
    while (k < count) {
      if (this.chunkData < 0) {
        this.reserve(CHUNK_HEAD_SIZE);
        this.buf.set(CHUNK_HEAD, this.len);
        this.len += CHUNK_HEAD_SIZE;
        this.chunkData = this.len;
        this.chunkSpans = 0;
      }
      // Records up to the one that reaches flushBytes (record() flushes right after it) or the
      // chunk's size limit (record() starts a new chunk before it).
      const from = at[k]!;
      let j = k;
      let to = from;
      let grown = this.len;
      let full = false;
      while (j < count) {
        const next = j + 1 < count ? at[j + 1]! : end;
        const size = next - at[j]!;
        if (grown + size - this.chunkData > CHUNK_MAX) {
          full = j === k ? false : true;
          break;
        }
        grown += size;
        to = next;
        j++;
        if (grown >= this.flushBytes) break;
      }
      if (j === k) {
        // The chunk is full before this record: close it, the next round opens another.
        this.closeChunk();
        continue;
      }
      this.reserve(to - from);
      this.buf.set(bytes.subarray(from, to), this.len);
      this.len += to - from;
      this.chunkSpans += j - k;
      this.spansQueued += j - k;
      k = j;
      if (full) this.closeChunk();
      else if (this.len >= this.flushBytes) this.flush();
    }
  }

  /** The BOOTTIME → epoch anchor changed: the records after this point use `anchor`. */
  clock(anchor: ClockFields): void {
    const r: ClockRecord = { type: "clock", realtimeNs: anchor.realtimeNs, boottimeNs: anchor.boottimeNs, offsetNs: anchor.offsetNs };
    this.append(r);
  }

  /** Starts a section (`beetrace merge` output): the items after it belong to the capture `header` describes. */
  section(header: CaptureHeader): void {
    const r: SectionRecord = { type: "section", header };
    this.append(r);
  }

  stats(at: bigint, losses: LossCounters): void {
    const r: StatsRecord = { type: "stats", at, losses, spans: this.spansQueued };
    this.append(r);
  }

  /** Bytes of the file once everything queued is flushed (for size limits and rotation). */
  size(): number {
    return this.written.bytes + this.len;
  }

  /** What has reached the file so far. */
  totals(): CaptureWriterTotals {
    return { ...this.written };
  }

  /** Write everything buffered (closing the open chunk) with one write. Throws output_failed on error. */
  flush(): void {
    this.throwIfFailed();
    const fd = this.fd;
    if (fd === undefined) return;
    this.closeChunk();
    if (this.len === 0) return;
    const items = this.items;
    const len = this.len;
    this.items = [];
    this.len = 0;
    let off = 0;
    try {
      // One write normally; a short write (signal, pipe) continues where it stopped.
      while (off < len) off += this.write(fd, this.buf, off, len - off);
    } catch (e) {
      // A partly written item is harmless: readers report it as a truncated tail (and read the
      // complete records of a cut chunk).
      this.account(items, off);
      this.fail(e);
      this.throwIfFailed();
    }
    this.account(items, len);
    // Do not keep a buffer grown by one burst forever.
    if (this.buf.byteLength > 4 * Math.max(this.flushBytes, INITIAL_BUFFER)) this.buf = new Uint8Array(INITIAL_BUFFER);
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

  private checkOpen(): void {
    this.throwIfFailed();
    if (this.fd === undefined) {
      throw new TracerError("internal", `capture file ${this.path} is already closed`);
    }
  }

  private append(record: object, spans = 0): void {
    this.checkOpen();
    // Items keep file order: records buffered so far come before this item.
    this.closeChunk();
    const bytes = this.encoder.encode(record);
    this.reserve(bytes.byteLength);
    this.buf.set(bytes, this.len);
    this.len += bytes.byteLength;
    this.items.push({ end: this.len, spans, dataStart: -1 });
    if (this.len >= this.flushBytes) this.flush();
  }

  /** Patch the open chunk's length (or compress it) and make it an item. */
  private closeChunk(): void {
    if (this.chunkData < 0) return;
    const n = this.len - this.chunkData;
    const view = new DataView(this.buf.buffer, this.buf.byteOffset);
    const deflatedAt = this.compress && n <= DEFLATED_CHUNK_MAX ? this.deflateChunk(view, n) : -1;
    if (deflatedAt >= 0) {
      this.items.push({ end: this.len, spans: this.chunkSpans, dataStart: deflatedAt, deflated: { size: n } });
    } else {
      view.setUint32(this.chunkData - 4, n, false);
      this.items.push({ end: this.len, spans: this.chunkSpans, dataStart: this.chunkData });
    }
    this.chunkData = -1;
    this.chunkSpans = 0;
  }

  /**
   * Replace the open chunk (n bytes of records) by its records-deflate item if that is smaller.
   * Returns where the compressed data starts in the buffer, or -1 (the chunk stays raw).
   */
  private deflateChunk(view: DataView, n: number): number {
    const z = deflateRaw(this.buf.subarray(this.chunkData, this.len), DEFLATE_LEVEL);
    const at = this.chunkData - CHUNK_HEAD_SIZE;
    if (DEFLATED_HEAD_SIZE + z.byteLength >= CHUNK_HEAD_SIZE + n) return -1;
    const data = at + DEFLATED_HEAD_SIZE;
    this.buf.set(DEFLATED_HEAD, at);
    view.setUint32(at + DEFLATED_SIZE_AT, n, false);
    view.setUint32(data - 4, z.byteLength, false);
    this.buf.set(z, data);
    this.len = data + z.byteLength;
    return data;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Count what the first `upTo` bytes of the buffer completed: items, and records of a cut chunk. */
  private account(items: PendingItem[], upTo: number): void {
    for (const it of items) {
      if (it.end <= upTo) {
        this.written.records++;
        this.written.spans += it.spans;
      } else {
        if (it.dataStart >= 0 && upTo > it.dataStart) {
          // The complete records of the cut chunk, as a reader gets them back.
          let data: Uint8Array = this.buf;
          let from = it.dataStart;
          let to = upTo;
          if (it.deflated !== undefined) {
            try {
              data = inflateRaw(this.buf.subarray(it.dataStart, upTo), it.deflated.size, true);
            } catch {
              data = new Uint8Array(0);
            }
            from = 0;
            to = data.byteLength;
          }
          for (let p = from; ; ) {
            const size = recordSize(data, p);
            if (size === 0 || p + size > to) break;
            this.written.spans++;
            p += size;
          }
        }
        break;
      }
    }
    this.written.bytes += upTo;
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
      `${base.message} (${this.written.spans} spans in ${this.written.bytes} bytes were written before the error and remain readable)`,
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
