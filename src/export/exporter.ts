/**
 * @module export/exporter — the protocol-independent half of OTLP export: batching, retries,
 * offline spill and resend, bounded shutdown and span accounting.
 *
 * Spans are queued and sent in batches (at `maxBatchSize`, or `batchDelayMs` after the first
 * queued span, or on flush) as one ExportTraceServiceRequest per request, encoded by
 * src/export/otlp.ts (the OTel JS serializers, in the transport's format) and optionally
 * gzipped. How one request travels is an ExportTransport: OTLP/HTTP (src/export/otlp-http.ts)
 * or OTLP/gRPC (src/export/otlp-grpc.ts). A transport makes exactly one attempt and classifies
 * the outcome (ok with an optional partial success, retryable with an optional server-given
 * delay, permanent); everything else lives here, so both protocols behave the same.
 * One request is in flight at a time: a tracer produces far less than one collector takes
 * (see docs/otlp.md for measured throughput) and order stays simple.
 *
 * Failures: retryable outcomes get exponential backoff with jitter, or exactly the server's
 * delay (HTTP Retry-After, gRPC RetryInfo) when it sends one. When retries are exhausted the
 * exporter is *offline*: the batch, the queue and every new span go to the spill file
 * (src/export/spill.ts) and the exporter probes the collector with one real request from the
 * spill now and then; when that succeeds it resends the spill in batches and goes back to
 * streaming. A permanently refused batch is spilled too (decision: keep, not drop — 401/403/404
 * or UNAUTHENTICATED/PERMISSION_DENIED are usually a wrong token or URL, and the spans can be
 * sent later with `beetrace export`), and automatic resending from the spill stops for the run
 * so a refused batch is never retried in a loop. Without a spill file, such spans are dropped
 * and counted.
 *
 * Accounting: every span given to add() ends up in exactly one of sent, spilled (pending in the
 * spill file), dropped (no spill file, or the disk failed too), or is still queued/in flight;
 * `counts()` shows all of them and `shutdown()` returns the final split. `rejected` is the part
 * of `sent` the collector reported as rejected in a partial-success response.
 *
 * Records instead of spans (the live session, addRecord): the queue keeps a copy of each ring
 * record (~120 bytes) and decodes it only when its batch is encoded, with the ids written
 * straight from the record's bytes (no hex strings). Decoded spans then live for one encode
 * and die young: held in the queue they outlived the collector's young generation, and under
 * 15k spans/s the heap grew by tens of MiB of old garbage (bench/RESULTS.md). A record that
 * cannot be decoded counts as dropped (and, through the decoder, as a BUG line at exit).
 */
import { zlib } from "../runtime.ts";
import { log } from "../log.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { Attributes, Span } from "../spans/model.ts";
import { encodeTraceRequest, SCHEMA_URL } from "./otlp.ts";
import { TraceRequestWriter, type RecordIds } from "./protobuf.ts";
import type { LaterDecoders } from "../probes/decode.ts";
import { SpillFile } from "./spill.ts";
import { copyRecordBytes } from "../capture/copy.ts";

/** gzip on zlib's thread pool (node:zlib loaded on first use: src/runtime.ts). */
function gzip(data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => zlib().gzip(data, (e, out) => (e ? reject(e) : resolve(out))));
}

export interface RetryPolicy {
  /** Attempts per batch before going offline (first try included). Default 5. */
  maxAttempts: number;
  /** First backoff. Default 1000 ms. */
  initialBackoffMs: number;
  /** Longest backoff between attempts, and between offline probes. Default 30 s. */
  maxBackoffMs: number;
  /** Backoff growth per attempt. Default 2. */
  multiplier: number;
  /** ± fraction of random jitter on each backoff. Default 0.2. */
  jitter: number;
  /** A server-given delay (Retry-After, RetryInfo) longer than this is not waited out in place:
   * the exporter goes offline and probes again after it (still honouring it). Default 60 s. */
  maxRetryAfterMs: number;
}

/** ExportTraceServiceResponse.partial_success, as the transport decoded it. */
export interface PartialSuccess {
  rejected: number;
  message: string;
}

/** Outcome of one attempt to send one request. */
export type Attempt =
  | { kind: "ok"; partial?: PartialSuccess }
  | { kind: "retryable"; reason: string; retryAfterMs?: number }
  | { kind: "permanent"; reason: string };

export interface SendOptions {
  /** The body is gzip-compressed (the transport says so in its protocol's way). */
  compressed: boolean;
  /** Give up on this attempt after this long (a retryable outcome). */
  timeoutMs: number;
  /** Aborted when a flush deadline passes: give up at once (a retryable outcome). */
  signal: AbortSignal | undefined;
}

/** One way of delivering an encoded ExportTraceServiceRequest. */
export interface ExportTransport {
  /** Where requests go (for messages). */
  readonly endpoint: string;
  /** The request encoding this transport carries. */
  readonly format: "json" | "protobuf";
  /** Exactly one attempt. Never throws: every failure is a classified Attempt. */
  send(body: Uint8Array, opts: SendOptions): Promise<Attempt>;
  /** Release connections; called once at shutdown. */
  close(): void;
}

/** What every exporter takes besides its transport's own settings. */
export interface ExporterOptions {
  compression?: "gzip" | "none";
  /** Per request. Default 10000 (OTEL_EXPORTER_OTLP_TIMEOUT default). */
  timeoutMs?: number;
  /** Resource attributes for every span (config/otel-env.ts targetResource). */
  resource: Attributes;
  /** Spans per request. Default 512 (OTel batch span processor default). */
  maxBatchSize?: number;
  /** Send a partial batch this long after its first span arrived. Default 1000 ms. */
  batchDelayMs?: number;
  /** Spans held in memory; past this they spill (or drop without a spill). Default 8192. */
  maxQueue?: number;
  retry?: Partial<RetryPolicy>;
  /** Where spans go while the collector is unreachable; header describes the target. */
  spill?: { path: string; header: CaptureHeader };
}

export interface OtlpExporterConfig extends ExporterOptions {
  transport: ExportTransport;
}

export interface ExportCounts {
  added: number;
  sent: number;
  /** Spans in the spill file not yet delivered */
  spilled: number;
  dropped: number;
  /** Part of `sent` the collector reported rejected (partial success) */
  rejected: number;
  /** Held in memory: queued or in the request in flight */
  inMemory: number;
}

export interface ExportResult {
  added: number;
  sent: number;
  spilled: number;
  dropped: number;
  rejected: number;
  /** The file holding the `spilled` spans, when there are any */
  spillFile?: string;
}

/** Outcome of sending one batch (with retries unless probing). */
type SendOutcome = { kind: "ok" } | { kind: "permanent"; reason: string } | { kind: "exhausted"; reason: string; retryAfterMs?: number };

const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  initialBackoffMs: 1000,
  maxBackoffMs: 30_000,
  multiplier: 2,
  jitter: 0.2,
  maxRetryAfterMs: 60_000,
};

/**
 * How queued records become spans (given by the session, which owns the decoder and the clock;
 * probes/decode.ts laterDecoders): `build` writes a record's span through a SpanBuilder (true;
 * false when it cannot be decoded; undefined when its probe has no builder), `decode` makes a
 * Span (undefined when it cannot be decoded); `ids`: where the ids are in every record's header.
 */
export interface RecordDecoding extends LaterDecoders {
  ids: Omit<RecordIds, "bytes" | "at">;
}

/** Bytes of the blocks queued records are copied into: ~500 records of a server span. */
const RECORD_BLOCK_BYTES = 64 * 1024;

/**
 * Copies of records for the queue: each copied into a shared block, the queue keeping a view of
 * it (one small object per record instead of an array with storage of its own; a block lives
 * until no view of it is left).
 */
export class RecordCopies {
  #block = new Uint8Array(0);
  #end = 0;

  /** A copy of raw[offset, offset + length); undefined when that range is empty or outside `raw`. */
  copy(raw: Uint8Array, offset: number, length: number): Uint8Array | undefined {
    if (!(length > 0) || !(offset >= 0) || offset + length > raw.byteLength) return undefined;
    if (this.#end + length > this.#block.length) {
      this.#block = new Uint8Array(Math.max(RECORD_BLOCK_BYTES, length));
      this.#end = 0;
    }
    const at = this.#end;
    copyRecordBytes(raw, offset, this.#block, at, length);
    this.#end = at + length;
    return this.#block.subarray(at, at + length);
  }
}

/** A queued span: decoded, or the copy of its record that is decoded when its batch is encoded. */
export type Queued = Span | Uint8Array;

/**
 * The OTLP protobuf body of a batch of queued spans and records. The records are copied into one
 * working buffer (`scratch`, grown when short and returned): a view and a Buffer per record cost
 * more than the copy (bench/pipeline.bench.ts). A record whose probe has a builder is written
 * straight from its bytes (no Span object); the others are decoded with their ids left as bytes.
 * What cannot be decoded is removed from `batch` (so its length stays the number of spans in the
 * body) and counted by the decoder.
 */
export function encodeQueuedProtobuf(batch: Queued[], records: RecordDecoding | undefined, resource: Attributes, scratch: Uint8Array): { bytes: Uint8Array; scratch: Uint8Array } {
  let need = 0;
  for (const item of batch) if (item instanceof Uint8Array) need += item.length;
  if (need > scratch.length) scratch = new Uint8Array(Math.max(need, 2 * scratch.length));
  const request = new TraceRequestWriter();
  const ids: RecordIds | undefined = records === undefined ? undefined : { ...records.ids, bytes: scratch, at: [] };
  const out = request.builder;
  let pos = 0;
  let kept = 0;
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i]!;
    if (item instanceof Uint8Array) {
      if (records === undefined) continue;
      scratch.set(item, pos);
      const built = records.build(scratch, pos, item.length, out);
      if (built === true) request.addBuilt(out);
      else if (built === false) continue;
      else {
        const span = records.decode(scratch, pos, item.length, true);
        if (span === undefined) continue;
        request.add(span, pos, ids);
      }
      pos += item.length;
    } else request.add(item);
    batch[kept++] = item;
  }
  batch.length = kept;
  return { bytes: request.finish(resource, SCHEMA_URL), scratch };
}

export class OtlpExporter {
  readonly #cfg: Required<Omit<OtlpExporterConfig, "spill" | "retry" | "transport">>;
  readonly #transport: ExportTransport;
  readonly #retry: RetryPolicy;
  readonly #spill: SpillFile | undefined;
  #queue: Queued[] = [];
  #records: RecordDecoding | undefined;
  /** Working copy of a batch's records while it is encoded (grows to the largest batch) */
  #scratch: Uint8Array = new Uint8Array(1 << 16);
  readonly #copies = new RecordCopies();
  #queueSince = 0;
  #inFlight = 0;
  #added = 0;
  #sent = 0;
  #dropped = 0;
  #rejected = 0;
  #offline = false;
  #offlineReason = "";
  #nextProbeAt = 0;
  #probeFailures = 0;
  #resendBlocked = false;
  /** A batch is waiting to be retried (new spans go to the spill file meanwhile) */
  #retrying = false;
  #flushing = 0;
  #deadline: number | undefined;
  #probedThisFlush = false;
  #closed = false;
  #pumping: Promise<void> | undefined;
  #delayTimer: ReturnType<typeof setTimeout> | undefined;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  #warnedClosed = false;
  #warnedNoDecoder = false;
  /** Aborts requests and cuts waits short when a flush deadline passes mid-flight. */
  #deadlineAbort: AbortController | undefined;
  /** Wakes a backoff wait early so it can re-check a deadline that was set after it began. */
  #wake: (() => void) | undefined;

  constructor(cfg: OtlpExporterConfig) {
    this.#transport = cfg.transport;
    this.#cfg = {
      compression: cfg.compression ?? "none",
      timeoutMs: cfg.timeoutMs ?? 10_000,
      resource: cfg.resource,
      maxBatchSize: Math.max(1, Math.floor(cfg.maxBatchSize ?? 512)),
      batchDelayMs: Math.max(0, cfg.batchDelayMs ?? 1000),
      maxQueue: Math.max(1, Math.floor(cfg.maxQueue ?? 8192)),
    };
    this.#retry = { ...DEFAULT_RETRY, ...(cfg.retry ?? {}) };
    this.#spill = cfg.spill ? new SpillFile(cfg.spill.path, cfg.spill.header) : undefined;
  }

  /** Where requests go (the transport's endpoint, for messages). */
  get endpoint(): string {
    return this.#transport.endpoint;
  }

  /** Lets addRecord() queue records: how they are decoded when their batch is encoded. */
  decodeRecordsWith(records: RecordDecoding): void {
    this.#records = records;
  }

  /** Queue one finished span. Never throws and never blocks. */
  add(span: Span): void {
    this.#enqueue(span);
  }

  /**
   * Queue one finished span as its record, raw[offset, offset + length) (default: all of `raw`;
   * it may be ring memory: it is copied). Needs decodeRecordsWith() first. Never throws and
   * never blocks.
   */
  addRecord(raw: Uint8Array, offset = 0, length = raw.byteLength - offset): void {
    if (this.#records === undefined) {
      this.#added++;
      this.#dropped++;
      if (!this.#warnedNoDecoder) log.warn("BUG: span record given to the OTLP exporter without a decoder; counted as dropped");
      this.#warnedNoDecoder = true;
      return;
    }
    const copy = this.#copies.copy(raw, offset, length);
    if (copy === undefined) {
      this.#added++;
      this.#dropped++;
      return;
    }
    this.#enqueue(copy);
  }

  #enqueue(span: Queued): void {
    this.#added++;
    if (this.#closed) {
      // Spans after shutdown have nowhere to go; count them so the totals still add up.
      this.#dropped++;
      if (!this.#warnedClosed) log.warn("BUG: span added after the OTLP exporter shut down; counted as dropped");
      this.#warnedClosed = true;
      return;
    }
    // Offline, or a spill backlog still being resent: new spans go behind it on disk, which keeps
    // them in order and keeps memory flat (held in the queue they piled up during the resend:
    // +140 MiB at 3000 spans/s in the soak).
    const spill = this.#spill;
    const behindBacklog = spill !== undefined && !spill.failed && (this.#offline || this.#retrying || (spill.pending > 0 && !this.#resendBlocked));
    if (behindBacklog || this.#queue.length >= this.#cfg.maxQueue) {
      this.#toSpillOrDrop([span]);
      return;
    }
    if (this.#queue.length === 0) this.#queueSince = Date.now();
    this.#queue.push(span);
    if (this.#queue.length >= this.#cfg.maxBatchSize) this.#kick();
    else this.#armDelayTimer();
  }

  /** Current split of every added span. */
  counts(): ExportCounts {
    return {
      added: this.#added,
      sent: this.#sent,
      spilled: this.#spill?.pending ?? 0,
      dropped: this.#dropped + (this.#spill?.lost ?? 0),
      rejected: this.#rejected,
      inMemory: this.#queue.length + this.#inFlight,
    };
  }

  /** Whether the last attempt to reach the collector failed (spans are spilling). */
  get offline(): boolean {
    return this.#offline;
  }

  /**
   * Send everything queued (and any spill backlog) now, giving up at `deadlineMs` from now;
   * unsent spans stay queued. When offline, makes one probe attempt first.
   */
  async flush(deadlineMs = 10_000): Promise<void> {
    this.#flushing++;
    const deadline = Date.now() + Math.max(0, deadlineMs);
    this.#deadline = this.#deadline === undefined ? deadline : Math.min(this.#deadline, deadline);
    this.#probedThisFlush = false;
    const abort = (this.#deadlineAbort ??= new AbortController());
    const timer = setTimeout(() => abort.abort(new Error("flush deadline reached")), Math.max(0, this.#deadline - Date.now()));
    // A request or backoff wait begun before this flush must also respect its deadline.
    this.#wake?.();
    try {
      this.#kick();
      while (this.#pumping) await this.#pumping;
    } finally {
      clearTimeout(timer);
      this.#flushing--;
      if (this.#flushing === 0) {
        this.#deadline = undefined;
        this.#deadlineAbort = undefined;
      }
    }
  }

  /**
   * Final flush bounded by `deadlineMs`, then whatever is left goes to the spill file (or is
   * dropped without one). Returns the final split; `spillFile` names where unsent spans are.
   */
  async shutdown(deadlineMs = 5000): Promise<ExportResult> {
    if (!this.#closed) {
      await this.flush(deadlineMs);
      this.#closed = true;
      this.#clearTimers();
      if (this.#queue.length > 0) this.#toSpillOrDrop(this.#queue.splice(0));
      this.#transport.close();
    }
    const spill = this.#spill?.close();
    const c = this.counts();
    const result: ExportResult = { added: c.added, sent: c.sent, spilled: c.spilled, dropped: c.dropped, rejected: c.rejected };
    if (spill?.path !== undefined && spill.pending > 0) result.spillFile = spill.path;
    return result;
  }

  // ---------------------------------------------------------------------------------------------

  #kick(): void {
    if (this.#pumping) return;
    this.#pumping = this.#pump()
      .catch((e) => log.error(`BUG: OTLP export loop failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.#pumping = undefined;
      });
  }

  #armDelayTimer(): void {
    if (this.#delayTimer !== undefined || this.#closed) return;
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = undefined;
      this.#kick();
    }, this.#cfg.batchDelayMs);
    // An idle exporter must not keep the process alive; flush/shutdown do the final send.
    (this.#delayTimer as { unref?: () => void }).unref?.();
  }

  #armProbeTimer(): void {
    if (this.#probeTimer !== undefined || this.#closed) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      this.#kick();
    }, Math.max(0, this.#nextProbeAt - Date.now()));
    (this.#probeTimer as { unref?: () => void }).unref?.();
  }

  #clearTimers(): void {
    if (this.#delayTimer !== undefined) clearTimeout(this.#delayTimer);
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    this.#delayTimer = undefined;
    this.#probeTimer = undefined;
  }

  #deadlinePassed(): boolean {
    return this.#deadline !== undefined && Date.now() >= this.#deadline;
  }

  async #pump(): Promise<void> {
    for (;;) {
      if (this.#deadlinePassed()) return;
      if (this.#offline) {
        if (this.#flushing > 0) {
          if (this.#probedThisFlush) return;
          this.#probedThisFlush = true;
        } else if (Date.now() < this.#nextProbeAt) {
          this.#armProbeTimer();
          return;
        }
        const r = await this.#sendNext(true);
        if (r === "nothing" || r === "ok") {
          if (r === "ok") log.info(`OTLP collector ${this.#transport.endpoint} is reachable again${this.#spill && this.#spill.pending > 0 ? `; resending ${this.#spill.pending} spilled spans` : ""}`);
          this.#offline = false;
          this.#probeFailures = 0;
        }
        continue;
      }
      const r = await this.#sendNext(false);
      if (r === "nothing") return;
    }
  }

  /**
   * Send the next batch: spill backlog first (oldest data), then the queue. `probe`: one
   * attempt, no retries (the collector is believed down). Returns what happened.
   */
  async #sendNext(probe: boolean): Promise<"nothing" | "ok" | "failed"> {
    const spill = this.#spill;
    let source: "spill" | "queue";
    let batch: Queued[];
    if (spill && spill.pending > 0 && !this.#resendBlocked && !spill.failed) {
      source = "spill";
      batch = spill.nextBatch(this.#cfg.maxBatchSize);
      if (batch.length === 0) return "nothing";
    } else if (this.#queueReady(probe)) {
      source = "queue";
      batch = this.#queue.splice(0, this.#cfg.maxBatchSize);
      if (this.#queue.length > 0) this.#queueSince = Date.now();
      else if (this.#delayTimer !== undefined) {
        clearTimeout(this.#delayTimer);
        this.#delayTimer = undefined;
      }
    } else {
      if (this.#queue.length > 0) this.#armDelayTimer();
      return "nothing";
    }

    // #send removes records that cannot be decoded from the batch: count what went in flight.
    const inFlight = source === "queue" ? batch.length : 0;
    this.#inFlight += inFlight;
    let out: SendOutcome;
    try {
      out = await this.#send(batch, probe);
    } finally {
      this.#inFlight -= inFlight;
    }

    if (out.kind === "ok") {
      this.#sent += batch.length;
      if (source === "spill") spill!.ack(batch.length);
      return "ok";
    }
    if (out.kind === "permanent") {
      log.error(`OTLP collector refused ${batch.length} spans: ${out.reason}`);
      if (source === "queue") this.#toSpillOrDrop(batch);
      if (spill && !spill.failed) {
        if (!this.#resendBlocked) log.warn(`spans stay in ${spill.path ?? "the spill file"}; automatic resending is off for this run (fix the cause, then use 'beetrace export')`);
        this.#resendBlocked = true;
      }
      // The collector answered, so it is up: a refusal is not a reason to stop streaming.
      return "ok";
    }
    // Retries exhausted (or the probe failed): offline until a probe succeeds.
    if (source === "queue") {
      if (spill && !spill.failed) {
        this.#toSpillOrDrop(batch);
        this.#toSpillOrDrop(this.#queue.splice(0));
      } else {
        // Nowhere safer to keep them: back to the front of the queue (overflow drops).
        this.#queue.unshift(...batch);
        this.#trimQueue();
      }
    }
    this.#goOffline(out.reason, out.retryAfterMs);
    return "failed";
  }

  #queueReady(probe: boolean): boolean {
    const n = this.#queue.length;
    if (n === 0) return false;
    if (n >= this.#cfg.maxBatchSize || probe || this.#flushing > 0 || this.#closed) return true;
    return Date.now() - this.#queueSince >= this.#cfg.batchDelayMs;
  }

  #goOffline(reason: string, retryAfterMs: number | undefined): void {
    this.#probeFailures++;
    const wait = retryAfterMs ?? this.#backoff(this.#probeFailures);
    this.#nextProbeAt = Date.now() + wait;
    if (!this.#offline) {
      const where = this.#spill && !this.#spill.failed ? `spilling spans to ${this.#spill.path ?? "a spill file"}` : "holding spans in memory (no spill file)";
      log.warn(`OTLP collector ${this.#transport.endpoint} unreachable (${reason}); ${where} and retrying`);
    } else if (reason !== this.#offlineReason) {
      log.verbose(`OTLP collector still unreachable: ${reason}`);
    }
    this.#offline = true;
    this.#offlineReason = reason;
  }

  #toSpillOrDrop(items: Queued[]): void {
    if (items.length === 0) return;
    if (this.#spill) {
      // The spill file holds decoded spans (with hex ids), as every capture reader expects.
      const spans: Span[] = [];
      for (const item of items) {
        const span = item instanceof Uint8Array ? this.#decodeRecord(item, 0, item.length, false) : item;
        if (span !== undefined) spans.push(span);
      }
      // append() counts whatever it cannot write as lost (reported in `dropped`).
      this.#spill.append(spans);
      return;
    }
    this.#dropped += items.length;
  }

  /** The span of the record at bytes[offset, offset + length); undefined (counted as dropped) when it cannot be decoded. */
  #decodeRecord(bytes: Uint8Array, offset: number, length: number, idsAsBytes: boolean): Span | undefined {
    const span = this.#records?.decode(bytes, offset, length, idsAsBytes);
    if (span === undefined) this.#dropped++;
    return span;
  }

  /**
   * The request body for `batch`. Records are decoded here (their ids written from their bytes
   * in protobuf); one that cannot be decoded is removed from `batch`, so its length stays the
   * number of spans in the body.
   */
  #encode(batch: Queued[]): Uint8Array {
    if (this.#transport.format === "protobuf") {
      const queued = batch.length;
      const body = encodeQueuedProtobuf(batch, this.#records, this.#cfg.resource, this.#scratch);
      this.#scratch = body.scratch;
      this.#dropped += queued - batch.length;
      return body.bytes;
    }
    const spans: Span[] = [];
    let kept = 0;
    for (const item of batch) {
      const span = item instanceof Uint8Array ? this.#decodeRecord(item, 0, item.length, false) : item;
      if (span === undefined) continue;
      batch[kept++] = item;
      spans.push(span);
    }
    batch.length = kept;
    return encodeTraceRequest(spans, this.#cfg.resource, "json");
  }

  #trimQueue(): void {
    const over = this.#queue.length - this.#cfg.maxQueue;
    if (over > 0) {
      // Drop the oldest: the newest are what an operator looks at first.
      this.#queue.splice(0, over);
      this.#dropped += over;
    }
  }

  /** Backoff before attempt `k+1` (k ≥ 1): initial · multiplier^(k-1), capped, ± jitter. */
  #backoff(k: number): number {
    const p = this.#retry;
    const base = Math.min(p.maxBackoffMs, p.initialBackoffMs * p.multiplier ** Math.max(0, k - 1));
    const j = 1 + p.jitter * (2 * Math.random() - 1);
    return Math.max(0, Math.round(base * j));
  }

  async #send(batch: Queued[], probe: boolean): Promise<SendOutcome> {
    let body: Uint8Array;
    try {
      body = this.#encode(batch);
      if (batch.length === 0) return { kind: "ok" }; // every record was undecodable (counted)
      if (this.#cfg.compression === "gzip") body = new Uint8Array(await gzip(body));
    } catch (e) {
      // Our own encoding failed: retrying cannot help.
      return { kind: "permanent", reason: `encoding failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    try {
      return await this.#attempts(body, batch.length, probe);
    } finally {
      this.#retrying = false;
    }
  }

  /** Send `body` with retries (one attempt when probing). */
  async #attempts(body: Uint8Array, spanCount: number, probe: boolean): Promise<SendOutcome> {
    const attempts = probe ? 1 : Math.max(1, this.#retry.maxAttempts);
    let last: Attempt = { kind: "retryable", reason: "not attempted" };
    for (let k = 1; k <= attempts; k++) {
      const timeout = this.#attemptTimeout();
      if (timeout <= 0) return { kind: "exhausted", reason: `deadline reached (${last.kind === "retryable" ? last.reason : "before sending"})` };
      last = await this.#transport.send(body, { compressed: this.#cfg.compression === "gzip", timeoutMs: timeout, signal: this.#deadlineAbort?.signal });
      if (last.kind === "ok") {
        this.#partialSuccess(last.partial, spanCount);
        return { kind: "ok" };
      }
      if (last.kind === "permanent") return last;
      if (k === attempts) break;
      const wait = last.retryAfterMs ?? this.#backoff(k);
      if (last.retryAfterMs !== undefined && last.retryAfterMs > this.#retry.maxRetryAfterMs) {
        return { kind: "exhausted", reason: last.reason, retryAfterMs: last.retryAfterMs };
      }
      log.debug(`OTLP export attempt ${k} failed (${last.reason}); retrying in ${wait} ms`);
      // While this batch waits to be retried (up to the whole backoff schedule: 15 s by
      // default), new spans go to the spill file instead of piling up in memory (8192 queued
      // spans, +30 MiB, in the soak bench when the Collector was killed); the queue goes first so
      // they stay in order.
      if (!this.#retrying && this.#spill !== undefined && !this.#spill.failed) {
        this.#retrying = true;
        this.#toSpillOrDrop(this.#queue.splice(0));
      }
      const until = Date.now() + wait;
      while (Date.now() < until) {
        if (this.#deadline !== undefined && until >= this.#deadline) {
          return { kind: "exhausted", reason: `${last.reason}; no time left to retry before the deadline` };
        }
        await this.#sleep(until - Date.now());
      }
    }
    return { kind: "exhausted", reason: last.kind === "retryable" ? last.reason : "failed", ...(last.kind === "retryable" && last.retryAfterMs !== undefined ? { retryAfterMs: last.retryAfterMs } : {}) };
  }

  /** Wait `ms`, or less if flush() wakes us (a deadline appeared). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.#wake === done) self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }

  #attemptTimeout(): number {
    const t = this.#cfg.timeoutMs;
    return this.#deadline === undefined ? t : Math.min(t, this.#deadline - Date.now());
  }

  /** OTLP spec "Partial Success": log rejected spans / error_message as a warning; never retried. */
  #partialSuccess(ps: PartialSuccess | undefined, spanCount: number): void {
    if (!ps) return;
    const { rejected, message } = ps;
    if (Number.isFinite(rejected) && rejected > 0) this.#rejected += Math.min(rejected, spanCount);
    if (rejected > 0 || message !== "") {
      log.warn(`OTLP collector accepted the request but rejected ${rejected} of ${spanCount} spans${message ? `: ${message}` : ""}`);
    }
  }
}

/** A one-line reason for a failed request (timeouts, refused connections, resets). */
export function networkReason(e: unknown, timeoutMs: number): string {
  const name = (e as { name?: unknown } | null)?.name;
  if (name === "TimeoutError" || name === "AbortError") return `no response within ${timeoutMs} ms`;
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  return typeof code === "string" && !msg.includes(code) ? `${code}: ${msg}` : msg;
}
