/** @module tests/e2e/bpf-throughput — ring-buffer drain rate with a BPF producer, filled and live (root). */
import { describe, expect, test } from "bun:test";
import { BpfObject } from "../../src/bpf/object.ts";
import { attachUprobe } from "../../src/bpf/link.ts";
import { RingBufferReader } from "../../src/bpf/ringbuf.ts";
import { openHandleCount } from "../../src/bpf/handles.ts";
import { buildRingTestObject, buildTarget, fileOffsetOf, skipReason } from "./bpf-harness.ts";

const reason = skipReason();
const REC_BYTES = 56 + 8; // record + ring header

/** Start the target held on stdin; the probe is attached to its pid only (a concurrent test run's targets stay out). */
function startTarget(binary: string, calls: number): { pid: number; run: () => Promise<void> } {
  const p = Bun.spawn([binary, String(calls)], { stdin: "pipe", stdout: "ignore" });
  return {
    pid: p.pid,
    run: async () => {
      p.stdin.write("g");
      await p.stdin.end();
      expect(await p.exited).toBe(0);
    },
  };
}

describe.skipIf(reason !== undefined)(`ring buffer throughput${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("capacity: drain a ring filled by a BPF producer (records/s)", async () => {
    const target = buildTarget();
    const offset = fileOffsetOf(target, "bt_probe_me");
    const BURST = 256;
    const CALLS = 3001; // 768,256 records = 49 MB, below the 64 MiB ring: no reserve may fail
    using obj = BpfObject.open(buildRingTestObject(), "ring_tput");
    obj.setConst("burst", BURST);
    obj.setMapMaxEntries("events", 64 << 20);
    obj.load();
    const t = startTarget(target, CALLS);
    using _l = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: t.pid });
    using rb = new RingBufferReader(obj.map("events"));

    const t0 = performance.now();
    await t.run();
    const produceMs = performance.now() - t0;
    const expected = CALLS * BURST;
    expect(obj.readBss("produced")).toBe(BigInt(expected));
    expect(obj.readBss("dropped")).toBe(0n);
    expect(rb.pendingBytes()).toBe(expected * REC_BYTES);

    let next = 0;
    let outOfOrder = 0;
    let sum = 0;
    const t1 = performance.now();
    const n = rb.drain((v, o) => {
      // Read three fields as a decoder would (u32 reads: a BigInt per field costs about 2x).
      if (v.getUint32(o, true) !== next) outOfOrder++; // seq, low word (< 2^32 here)
      next++;
      sum += v.getUint32(o + 8, true) + v.getUint32(o + 40, true);
    }, Number.MAX_SAFE_INTEGER);
    const drainMs = performance.now() - t1;
    expect(n).toBe(expected);
    expect(outOfOrder).toBe(0);
    expect(sum).toBeGreaterThan(0);
    const rate = n / (drainMs / 1000);
    console.log(
      `capacity: ${n} records (${((n * REC_BYTES) / 1e6).toFixed(1)} MB) drained in ${drainMs.toFixed(1)} ms = ` +
        `${(rate / 1e6).toFixed(1)} M records/s; producer: ${CALLS} uprobe hits in ${produceMs.toFixed(0)} ms`,
    );
    expect(rate).toBeGreaterThan(1e6); // far below measured (tens of millions); catches a pathological regression
  });

  test("live: a 1 ms drain timer keeps up with a bursty producer without loss", async () => {
    const target = buildTarget();
    const offset = fileOffsetOf(target, "bt_probe_me");
    const BURST = 64;
    const CALLS = 4001; // 256,064 records through a 4 MiB ring (65,536 records): it must be drained while running
    using obj = BpfObject.open(buildRingTestObject(), "ring_live");
    obj.setConst("burst", BURST);
    obj.setMapMaxEntries("events", 4 << 20);
    obj.load();
    const t = startTarget(target, CALLS);
    using _l = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: t.pid });
    using rb = new RingBufferReader(obj.map("events"));
    let consumed = 0;
    const t0 = performance.now();
    {
      using _timer = rb.startDrainTimer(1, () => void consumed++, { maxBytesPerTick: 1 << 20 });
      await t.run();
      const produced = Number(obj.readBss("produced"));
      const deadline = performance.now() + 10_000;
      while (consumed < produced && performance.now() < deadline) await Bun.sleep(1);
    }
    const ms = performance.now() - t0;
    const produced = Number(obj.readBss("produced"));
    const dropped = Number(obj.readBss("dropped"));
    console.log(
      `live: produced ${produced}, dropped ${dropped}, consumed ${consumed} in ${ms.toFixed(0)} ms ` +
        `(${(consumed / (ms / 1000) / 1e6).toFixed(2)} M records/s end to end)`,
    );
    expect(produced + dropped).toBe(CALLS * BURST);
    expect(consumed).toBe(produced);
    // A 4 MiB ring drained every ms holds ~1 s of this load; loss here means the timer starved.
    expect(dropped).toBe(0);
  });

  test("nothing left open", () => {
    expect(openHandleCount()).toBe(0);
  });
});
