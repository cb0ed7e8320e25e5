/**
 * @module trace/output — where a session's spans go: capture files named from a template, with
 * rotation and limits, behind one small sink interface (the OTLP exporter is another sink).
 *
 * The session hands every sink the raw span record (bpf/shared/span.h) and a lazy decoder:
 * capture files store the record bytes as they are (format 2, src/capture/format.ts) and never
 * decode; the OTLP sink asks for the Span. Once per drain tick the session calls flush(), and
 * the capture file then gets that tick's records with one write.
 *
 * Template placeholders: {host} {pid} {exe} {start} (UTC, 20261126T132100Z) {seq} (rotation
 * index, from 0). A template without {seq} gets ".N" inserted before the extension from the
 * second file on, so rotated files never overwrite each other.
 */
import { basename, extname } from "node:path";
import { TracerError } from "../errors.ts";
import { zeroLosses, type LossCounters, type Span } from "../spans/model.ts";
import { CaptureWriter, type CaptureWriterOptions } from "../capture/writer.ts";
import { CAPTURE_FORMAT, CAPTURE_FORMAT_RAW, type CaptureHeader, type ClockFields } from "../capture/format.ts";
import { builtinRecordSchema, type LaterDecoders } from "../probes/decode.ts";
import { log } from "../log.ts";

export interface SpanSink {
  /**
   * One finished span: its record at bytes[offset, offset + size) (default: all of `bytes`).
   * `bytes` may be ring-buffer memory, valid only during the call (copy what you keep; no
   * subarray is made per record for this). `span()` decodes it (memoized by the caller;
   * undefined when the record cannot be decoded); capture files never call it.
   */
  record(bytes: Uint8Array, span: () => Span | undefined, offset?: number, size?: number): void;
  /**
   * Given once, before the first record, by the session: decodes a copy of a record later, after
   * its ring memory is gone (the OTLP sink queues records and decodes each batch as it encodes
   * it). Sinks that decode at once, or never, need not implement it.
   */
  decodeRecordsWith?(records: LaterDecoders): void;
  /** End of a drain tick: write what this tick buffered (capture files: one write). */
  flush(): void;
  /** The session re-anchored its BOOTTIME → epoch clock; records after this use `anchor`. */
  clock(anchor: ClockFields): void;
  stats(at: bigint, losses: LossCounters): void;
  /** Close normally (end record, final flush); returns where the data went (one line each). */
  close(reason: string, at: bigint, losses: LossCounters): string[] | Promise<string[]>;
  /** Close after a failure, keeping everything already written; never throws. */
  abandon(): void;
  /** A limit was reached: the session should stop (reason for the end record). */
  limitReached(): string | undefined;
}

export interface TemplateValues {
  host: string;
  pid: number;
  exe: string;
  start: Date;
}

export function formatStart(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** Expand an output template; unknown placeholders are a usage error (a typo must not silently become a file name). */
export function expandTemplate(template: string, v: TemplateValues, seq: number): string {
  const known: Record<string, string> = {
    host: v.host,
    pid: String(v.pid),
    exe: basename(v.exe.replace(/ \(deleted\)$/, "")),
    start: formatStart(v.start),
    seq: String(seq),
  };
  let out = template.replace(/\{([a-z]+)\}/g, (m, name: string) => {
    const val = known[name];
    if (val === undefined) {
      throw new TracerError("usage", `--out: unknown placeholder ${m} in "${template}"`, { hint: "use {host}, {pid}, {exe}, {start} or {seq}" });
    }
    return val;
  });
  if (seq > 0 && !template.includes("{seq}")) {
    const ext = extname(out);
    out = ext ? `${out.slice(0, -ext.length)}.${seq}${ext}` : `${out}.${seq}`;
  }
  return out;
}

export interface CaptureLimits {
  maxSpans?: number;
  maxBytes?: number;
  rotateBytes?: number;
}

/** The header a capture file of raw records gets: the given one, at this build's format (CAPTURE_FORMAT), with this build's record layouts unless it has some. */
export function rawCaptureHeader(header: CaptureHeader): CaptureHeader {
  return { ...header, format: CAPTURE_FORMAT, records: header.records ?? builtinRecordSchema() };
}

/**
 * Capture files (format 3: raw span records, each flush's chunk compressed; format 2 with
 * `compress: false`): one at a time, rotated by size, stopping at span/byte limits. Span counts
 * are records; byte counts are file bytes.
 */
export class CaptureSink implements SpanSink {
  #writer: CaptureWriter;
  #seq = 0;
  #spans = 0;
  #closedBytes = 0;
  #limit: string | undefined;
  /** Records dropped because their size field did not fit the sample (a BPF bug) */
  #invalid = 0;
  readonly #compress: boolean;
  /** Latest clock anchor after the header's: repeated at the start of each rotated file */
  #anchor: ClockFields | undefined;
  readonly header: CaptureHeader;
  readonly files: string[] = [];

  constructor(
    readonly template: string,
    readonly values: TemplateValues,
    header: CaptureHeader,
    readonly limits: CaptureLimits = {},
    /** Writer options: `compress` (default true); tests also set the flush timer and write function */
    readonly writerOptions: CaptureWriterOptions = {},
  ) {
    this.#compress = writerOptions.compress ?? true;
    // Compressed chunks need format 3; raw ones are written as format 2, which older beetrace
    // versions read (they refuse format 3).
    this.header = { ...rawCaptureHeader(header), ...(this.#compress ? {} : { format: CAPTURE_FORMAT_RAW }) };
    this.#writer = this.#open();
  }

  #open(): CaptureWriter {
    const path = expandTemplate(this.template, this.values, this.#seq);
    const w = CaptureWriter.open(path, this.header, { ...this.writerOptions, compress: this.#compress });
    this.files.push(path);
    if (this.#anchor !== undefined) w.clock(this.#anchor);
    return w;
  }

  /** Records refused because their size field did not fit the sample. */
  get invalid(): number {
    return this.#invalid;
  }

  get spans(): number {
    return this.#spans;
  }

  /** Bytes written to all files so far (queued included). */
  bytes(): number {
    return this.#closedBytes + this.#writer.size();
  }

  /** Stores the record as it is; never decodes (`_span` is for sinks that need a Span). */
  record(bytes: Uint8Array, _span?: () => Span | undefined, offset = 0, size = bytes.byteLength - offset): void {
    if (this.#limit) return;
    if (!this.#writer.record(bytes, offset, size)) {
      this.#invalid++;
      return;
    }
    this.#spans++;
    const { maxSpans, maxBytes, rotateBytes } = this.limits;
    if (maxSpans !== undefined && this.#spans >= maxSpans) this.#limit = `--max-spans ${maxSpans} reached`;
    else if (maxBytes !== undefined && this.bytes() >= maxBytes) this.#limit = `--max-bytes ${maxBytes} reached`;
    else if (rotateBytes !== undefined && this.#writer.size() >= rotateBytes) this.#rotate();
  }

  flush(): void {
    this.#writer.flush();
  }

  clock(anchor: ClockFields): void {
    const last = this.#anchor ?? this.header.clock;
    // The same anchor again (a caller that reports it every tick) changes nothing for readers.
    if (anchor.offsetNs === last.offsetNs && anchor.boottimeNs === last.boottimeNs && anchor.realtimeNs === last.realtimeNs) return;
    this.#anchor = { realtimeNs: anchor.realtimeNs, boottimeNs: anchor.boottimeNs, offsetNs: anchor.offsetNs };
    this.#writer.clock(this.#anchor);
  }

  #rotate(): void {
    const w = this.#writer;
    // Losses are cumulative in the stats records; a rotation's end record carries none of its own.
    w.close("rotated", BigInt(Date.now()) * 1_000_000n, zeroLosses());
    this.#closedBytes += w.size();
    this.#seq++;
    this.#writer = this.#open();
  }

  stats(at: bigint, losses: LossCounters): void {
    this.#writer.stats(at, losses);
  }

  limitReached(): string | undefined {
    return this.#limit;
  }

  close(reason: string, at: bigint, losses: LossCounters): string[] {
    this.#writer.close(reason, at, losses);
    return this.files;
  }

  abandon(): void {
    this.#writer.abandon();
  }
}


/** Several sinks at once (--out and --otlp together); the first failure propagates. */
export class FanOutSink implements SpanSink {
  constructor(readonly sinks: SpanSink[]) {}
  record(bytes: Uint8Array, span: () => Span | undefined, offset = 0, size = bytes.byteLength - offset): void {
    for (const s of this.sinks) s.record(bytes, span, offset, size);
  }
  decodeRecordsWith(records: LaterDecoders): void {
    for (const s of this.sinks) s.decodeRecordsWith?.(records);
  }
  flush(): void {
    for (const s of this.sinks) s.flush();
  }
  clock(anchor: ClockFields): void {
    for (const s of this.sinks) s.clock(anchor);
  }
  stats(at: bigint, losses: LossCounters): void {
    for (const s of this.sinks) s.stats(at, losses);
  }
  limitReached(): string | undefined {
    for (const s of this.sinks) {
      const r = s.limitReached();
      if (r) return r;
    }
    return undefined;
  }
  async close(reason: string, at: bigint, losses: LossCounters): Promise<string[]> {
    const out: string[] = [];
    let first: unknown;
    for (const s of this.sinks) {
      try {
        out.push(...(await s.close(reason, at, losses)));
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
    return out;
  }
  abandon(): void {
    for (const s of this.sinks) s.abandon();
  }
}
