/**
 * @module bench/ringbuf.bench — RingBufferReader parse rate over a real BPF ring buffer (root).
 *
 * A uprobe (tests/fixtures/bpf/ring-test.bpf.c, built by the e2e harness) writes `burst` 56-byte
 * records per call of a C function into a 64 MiB ring, without wake-ups; once the target has
 * exited, the ring is drained in one call with a handler that reads three u32 fields, as a
 * decoder's first reads would. Reports records/s and MB/s of ring consumed, median of --repeat.
 *
 *   node_modules/.bin/bun bench/ringbuf.bench.ts [--repeat 5]
 */
import { BpfObject } from "../src/bpf/object.ts";
import { attachUprobe } from "../src/bpf/link.ts";
import { RingBufferReader } from "../src/bpf/ringbuf.ts";
import { buildRingTestObject, buildTarget, fileOffsetOf, skipReason } from "../tests/e2e/bpf-harness.ts";
import { intOption, machineLine, parseOptions, summarize } from "./lib.ts";

/** ring-test.bpf.c: struct ring_rec is 56 bytes, plus the kernel's 8-byte record header. */
const RING_BYTES_PER_RECORD = 56 + 8;
const BURST = 256;
const CALLS = 3001; // 768,256 records = 49 MB: fits the 64 MiB ring, so no reserve fails

async function once(object: Uint8Array, target: string, offset: number): Promise<{ records: number; ms: number }> {
  using obj = BpfObject.open(object, "ring_bench");
  obj.setConst("burst", BURST);
  obj.setMapMaxEntries("events", 64 << 20);
  obj.load();
  const p = Bun.spawn([target, String(CALLS)], { stdin: "pipe", stdout: "ignore" });
  using _l = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: p.pid });
  using rb = new RingBufferReader(obj.map("events"));
  p.stdin.write("g");
  await p.stdin.end();
  if ((await p.exited) !== 0) throw new Error("target failed");
  const expected = CALLS * BURST;
  if (obj.readBss("produced") !== BigInt(expected) || obj.readBss("dropped") !== 0n) {
    throw new Error(`producer wrote ${obj.readBss("produced")} records, dropped ${obj.readBss("dropped")}; expected ${expected}, 0`);
  }
  let sum = 0;
  const t0 = performance.now();
  const n = rb.drain((v, o) => {
    sum += v.getUint32(o, true) + v.getUint32(o + 8, true) + v.getUint32(o + 40, true);
  }, Number.MAX_SAFE_INTEGER);
  const ms = performance.now() - t0;
  if (n !== expected || sum === 0) throw new Error(`drained ${n} records, expected ${expected}`);
  return { records: n, ms };
}

async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), { repeat: "5" });
  const why = skipReason();
  if (why) {
    console.log(`ringbuf benchmark skipped: ${why}`);
    return;
  }
  console.log(`# ring buffer parse benchmark\n${machineLine()}`);
  const object = buildRingTestObject();
  const target = buildTarget();
  const offset = fileOffsetOf(target, "bt_probe_me");
  const rates: number[] = [];
  for (let i = 0; i < Math.max(1, intOption(o.repeat, "repeat")); i++) {
    const r = await once(object, target, offset);
    rates.push(r.records / (r.ms / 1000));
    console.log(`  run ${i + 1}: ${r.records} records (${((r.records * RING_BYTES_PER_RECORD) / 1e6).toFixed(1)} MB of ring) in ${r.ms.toFixed(1)} ms`);
  }
  const s = summarize(rates);
  console.log(
    `RingBufferReader.drain: median ${(s.median / 1e6).toFixed(1)} M records/s (${((s.median * RING_BYTES_PER_RECORD) / 1e6).toFixed(0)} MB/s), ` +
      `min ${(s.min / 1e6).toFixed(1)}, max ${(s.max / 1e6).toFixed(1)} M records/s (n=${s.n})`,
  );
}

await main();
