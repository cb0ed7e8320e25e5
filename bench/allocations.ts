/**
 * @module bench/allocations — heap objects the live OTLP path leaves behind per span, by type.
 *
 * Why: on the live path the tracer's CPU per span follows its allocations more than its
 * instructions (JSC's heap threads pre-fault blocks for the garbage, the collector sweeps it;
 * bench/RESULTS.md). A batch of ring-framed records (bench/records.ts) is copied out of the ring
 * and encoded exactly as the session and OtlpExporter do (RecordCopies, then encodeQueuedProtobuf
 * with the session's contexts, BootClock.toEpochWords included); JSC's live-object counts by type
 * are taken after a full collection and again after one more batch, with no collection between.
 * Counts that do not grow with the batch (structures and objects made by heapStats itself) are
 * noise: compare two batch sizes.
 *
 *   node_modules/.bin/bun bench/allocations.ts [--spans 2048] [--mix hello|proxy]
 */
import { gcAndSweep, heapStats } from "bun:jsc";
import { parseArgs } from "node:util";
import { RecordBatch, type Mix } from "./records.ts";
import { SpanDecoder, laterDecoders } from "../src/probes/decode.ts";
import { encodeQueuedProtobuf, RecordCopies, type RecordDecoding } from "../src/export/exporter.ts";
import { SPAN_ID_OFFSETS } from "../src/probes/common/header.ts";
import { BootClock } from "../src/spans/clock.ts";
import { RINGBUF_HEADER } from "../src/bpf/ringbuf.ts";

const { values } = parseArgs({ options: { spans: { type: "string", default: "2048" }, mix: { type: "string", default: "hello" } } });
const mix = values.mix as Mix;
if (mix !== "hello" && mix !== "proxy") throw new Error("--mix is hello or proxy");
const batch = new RecordBatch(mix, Math.max(1, Number(values.spans)));
batch.stamp(1, 5_000_000_000n, 1_000_000_000n);

// A fixed anchor: the conversion's arithmetic is what is measured, not the clock reads.
const clock = new BootClock(() => ({ realtimeNs: 1_700_000_000_000_000_000n, boottimeNs: 1n, uncertaintyNs: 0n }), { reanchorIntervalNs: 0n });
const decoder = new SpanDecoder();
// As trace/session.ts gives them to the OTLP sink.
const records: RecordDecoding = { ...laterDecoders(decoder, clock), ids: SPAN_ID_OFFSETS };
let scratch: Uint8Array = new Uint8Array(1 << 16);
const queue: Uint8Array[] = [];
const copies = new RecordCopies();

function oneBatch(): void {
  let pos = 0;
  for (let i = 0; i < batch.records; i++) {
    const len = batch.view.getUint32(pos, true) & 0x0fffffff;
    const at = pos + RINGBUF_HEADER.SIZE;
    // The session hands the sink the ring and the record's place; the exporter keeps a copy.
    queue.push(copies.copy(batch.bytes, at, len)!);
    pos = (at + len + 7) & ~7;
  }
  const body = encodeQueuedProtobuf(queue, records, { "service.name": "bench" }, scratch);
  if (queue.length !== batch.records) throw new Error("a record did not decode");
  scratch = body.scratch;
  queue.length = 0;
}

for (let i = 0; i < 60; i++) oneBatch(); // past the JIT's tiers
gcAndSweep();
const before = heapStats().objectTypeCounts as Record<string, number>;
oneBatch();
const after = heapStats().objectTypeCounts as Record<string, number>;
console.log(`allocations: ${batch.spans} spans (${mix}), live objects added by one batch, by type:`);
for (const [type, n] of Object.entries(after)
  .map(([type, n]) => [type, n - (before[type] ?? 0)] as const)
  .filter(([, d]) => d > 0)
  .sort((a, b) => b[1] - a[1])) {
  console.log(`  ${String(n).padStart(8)}  ${(n / batch.spans).toFixed(2).padStart(6)} per span  ${type}`);
}
