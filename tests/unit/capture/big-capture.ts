/**
 * @module tests/unit/capture/big-capture — writes a format-2 capture of a given size with the
 * real writer: typical server span records (tests/unit/capture/records.ts), 1 ms apart, 100 per
 * flush (one drain tick's worth), one trace per span, a stats item every 100 ticks and an end
 * record. Used by the memory test (tests/unit/cli/capture-memory.test.ts) and the bench
 * (bench/capture-memory.bench.ts).
 */
import * as fs from "node:fs";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { rawCaptureHeader } from "../../../src/trace/output.ts";
import { T0, sampleHeader } from "./fixture.ts";
import { serverRecord, typicalServer } from "./records.ts";

/** Records per flush: a drain tick at ~10k spans/s with a 10 ms tick. */
const PER_TICK = 100;

/** Write a capture of at least `bytes` bytes at `path`; returns the number of span records. */
export function writeBigCapture(path: string, bytes: number): number {
  const w = CaptureWriter.open(path, rawCaptureHeader(sampleHeader()), { flushIntervalMs: 0, flushBytes: 4 * 1024 * 1024 });
  let n = 0;
  let written = 0;
  // One template record; each copy gets its own trace and span id (the writer copies it in).
  const tpl = serverRecord(typicalServer(0));
  const v = new DataView(tpl.buffer, tpl.byteOffset, tpl.byteLength);
  for (let tick = 0; written < bytes; tick++) {
    for (let k = 0; k < PER_TICK; k++, n++) {
      const start = 5_000_000_000n + BigInt(n) * 1_000_000n;
      v.setBigUint64(8, start, true);
      v.setBigUint64(16, start + 250_000n, true);
      // trace_id at 24 (16 bytes), span_id at 40 (8 bytes): struct rec_span.
      v.setUint32(24, 0xa0000000, false);
      v.setUint32(36, n + 1, false);
      v.setUint32(40, 0xb0000000, false);
      v.setUint32(44, n + 1, false);
      w.record(tpl);
    }
    if (tick % 100 === 99) w.stats(T0 + BigInt(tick) * 10_000_000n, { ...zeroLosses(), ringbufFull: tick });
    w.flush();
    written = w.totals().bytes;
  }
  w.close("duration", T0 + BigInt(n) * 1_000_000n, { ...zeroLosses(), ringbufFull: 7, incomplete: 3 });
  if (fs.statSync(path).size < bytes) throw new Error("capture smaller than asked");
  return n;
}
