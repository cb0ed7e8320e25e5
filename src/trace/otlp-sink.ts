/**
 * @module trace/otlp-sink — the OTLP output of a trace session. A module of its own so that a
 * session writing only capture files never loads the OTLP encoder (cli/trace.ts imports it on
 * demand).
 */
import { createOtlpExporter, type OtlpExporterOptions } from "../export/create.ts";
import type { OtlpExporter } from "../export/exporter.ts";
import type { Span } from "../spans/model.ts";
import { log } from "../log.ts";
import { SPAN_ID_OFFSETS } from "../probes/common/header.ts";
import type { SpanSink } from "./output.ts";
import type { LaterDecoders } from "../probes/decode.ts";

/**
 * Streams spans to an OTLP collector (OTLP/HTTP or OTLP/gRPC). The exporter never blocks the drain loop; while the
 * collector is unreachable it spills to a capture file and resends when it is back. At close a
 * bounded final flush runs, and whatever could not be sent stays on disk with a message.
 */
export class OtlpSink implements SpanSink {
  readonly #exporter: OtlpExporter;
  constructor(
    readonly cfg: OtlpExporterOptions,
    /** Final flush budget at close (ms). */
    readonly shutdownMs = 5000,
  ) {
    this.#exporter = createOtlpExporter(cfg);
  }
  #queueRecords = false;
  /** From here on, records are queued as bytes and decoded when their batch is encoded (export/exporter.ts). */
  decodeRecordsWith(records: LaterDecoders): void {
    this.#exporter.decodeRecordsWith({ ...records, ids: SPAN_ID_OFFSETS });
    this.#queueRecords = true;
  }
  record(bytes: Uint8Array, span: () => Span | undefined, offset = 0, size = bytes.byteLength - offset): void {
    if (this.#queueRecords) {
      this.#exporter.addRecord(bytes, offset, size);
      return;
    }
    const s = span();
    if (s !== undefined) this.#exporter.add(s);
  }
  flush(): void {
    /* the exporter batches on its own timer */
  }
  clock(): void {
    /* spans are sent in epoch time already */
  }
  stats(): void {
    /* losses are reported in the capture file and at exit; OTLP carries spans only */
  }
  limitReached(): string | undefined {
    return undefined;
  }
  async close(): Promise<string[]> {
    const r = await this.#exporter.shutdown(this.shutdownMs);
    const lines = [`${this.cfg.endpoint} (${r.sent} sent${r.rejected ? `, ${r.rejected} rejected by the collector` : ""})`];
    if (r.spillFile && r.spilled > 0) {
      log.warn(`${r.spilled} spans could not be sent to ${this.cfg.endpoint} and are kept in ${r.spillFile}`);
      log.hint(`send them later with 'beetrace export ${r.spillFile} --otlp ${this.cfg.endpoint}${this.cfg.protocol === "grpc" ? " --protocol grpc" : ""}'`);
      lines.push(`${r.spillFile} (${r.spilled} unsent)`);
    }
    if (r.dropped > 0) log.warn(`${r.dropped} spans were lost: the collector refused them and no spill file could hold them`);
    return lines;
  }
  abandon(): void {
    void this.#exporter.shutdown(0).catch(() => undefined);
  }
}

