/**
 * @module bench/merge.bench — `beetrace merge` throughput (issue 9: ≥ 500k spans/s on 1M spans).
 *
 * Writes two format-2 captures with the real writer under .cache/bench/ (reused when present):
 * a caller whose client spans record their connection's local address:port, and a callee
 * whose server spans record that address as their peer, over --connections HTTP/1 keep-alive
 * connections (requests one after another on each, at irregular gaps), the callee's clock
 * --skew-ms ahead. Half of the --spans are client spans, half server spans; every server span
 * has a caller. Then merges them, in this process (the join and rewrite; CPU and wall time) and
 * as `bun src/main.ts merge` in a child process (what a user runs, start-up included), and
 * prints spans/s, the joined count and the estimated offset. Nothing is asserted.
 *
 *   node_modules/.bin/bun bench/merge.bench.ts [--spans 1000000] [--connections 2000] [--skew-ms 1500] [--runs 3] [--keep 1]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { BENCH_CACHE, ROOT, intOption, machineLine, parseOptions, selfCpuMs } from "./lib.ts";
import { CaptureWriter } from "../src/capture/writer.ts";
import type { CaptureHeader } from "../src/capture/format.ts";
import { builtinRecordSchema } from "../src/probes/decode.ts";
import { recordLayoutOf } from "../src/probes/layouts.ts";
import { ENUMERATORS as E } from "../src/probes/nethttp/nethttp.gen.ts";
import { zeroLosses } from "../src/spans/model.ts";
import { RecordWriter } from "../tests/unit/probes/record-writer.ts";
import { mergeCommand } from "../src/cli/merge.ts";

const opts = parseOptions(process.argv.slice(2), { spans: "1000000", connections: "2000", "skew-ms": "1500", runs: "3", keep: "" });
const total = intOption(opts.spans, "--spans");
const connections = intOption(opts.connections, "--connections");
const skewNs = BigInt(intOption(opts["skew-ms"], "--skew-ms")) * 1_000_000n;
const runs = intOption(opts.runs, "--runs");

const SERVER = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_server"));
const CLIENT = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_client"));
const BOOT0 = 1_000_000_000_000n; // 1000 s after boot
const EPOCH0 = 1_800_000_000_000_000_000n;

function header(service: string, pid: number, clockAheadNs: bigint): CaptureHeader {
  const offsetNs = EPOCH0 - BOOT0 + clockAheadNs;
  return {
    type: "header",
    format: 2,
    tracer: { name: "beetrace", version: "bench" },
    createdAt: BOOT0 + offsetNs,
    host: { name: `${service}-host`, arch: "x64", kernel: "bench" },
    target: { pid, exe: `/srv/${service}`, goVersion: "go1.26.0", modules: [], serviceName: service },
    clock: { realtimeNs: BOOT0 + offsetNs, boottimeNs: BOOT0, offsetNs },
    probes: [],
    records: builtinRecordSchema(),
  };
}

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG, Numerical Recipes constants). */
let seed = 42;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const hex = (n: number, len: number) => n.toString(16).padStart(len, "0");

function writeInputs(clientPath: string, serverPath: string): void {
  const perConn = Math.max(1, Math.floor(total / 2 / connections));
  const cw = CaptureWriter.open(clientPath, header("edge", 100, 0n), { flushIntervalMs: 0 });
  const sw = CaptureWriter.open(serverPath, header("orders", 200, skewNs), { flushIntervalMs: 0 });
  let n = 0;
  for (let c = 0; c < connections; c++) {
    const port = 20000 + (c % 40000);
    const addr = `10.0.${(c >> 8) & 255}.${c & 255}`;
    let t = BOOT0 + BigInt(Math.floor(rnd() * 1e9));
    for (let r = 0; r < perConn; r++, n++) {
      const dur = BigInt(200_000 + Math.floor(rnd() * 2_000_000));
      const traceC = "c" + hex(n + 1, 31);
      cw.record(
        CLIENT.bytes({
          fields: { type: E.REC_NETHTTP_CLIENT, flags: E.NETHTTP_CLIENT_F_RESPONSE | E.REC_SPAN_F_HAS_PARENT, start_ns: t, end_ns: t + dur, status: 200, local_port: port, local_addr_size: 4 },
          hex: { trace_id: traceC, span_id: "c" + hex(n + 1, 15), parent_span_id: "a" + hex(n + 1, 15), local_addr: Buffer.from(addr.split(".").map(Number)).toString("hex").padEnd(32, "0") },
          strings: { method: "GET", scheme: "http", url_host: "orders:8080", path: "/orders", req_host: "orders:8080" },
        }),
      );
      // The callee: starts 50-100 µs in, ends 50 µs before the client does, on a clock skewNs ahead.
      const s0 = t + 50_000n + BigInt(Math.floor(rnd() * 50_000));
      sw.record(
        SERVER.bytes({
          fields: { type: E.REC_NETHTTP_SERVER, flags: E.NETHTTP_SERVER_F_STATUS, start_ns: s0, end_ns: t + dur - 50_000n, status: 200, proto_major: 1, proto_minor: 1 },
          hex: { trace_id: "5" + hex(n + 1, 31), span_id: "5" + hex(n + 1, 15) },
          strings: { method: "GET", path: "/orders", host: "orders:8080", remote: `${addr}:${port}` },
        }),
      );
      t += dur + BigInt(100_000 + Math.floor(rnd() * 5_000_000));
    }
  }
  cw.close("bench", EPOCH0, zeroLosses());
  sw.close("bench", EPOCH0, zeroLosses());
  console.log(`wrote ${2 * n} spans over ${connections} connections (${perConn} requests each)`);
}

mkdirSync(BENCH_CACHE, { recursive: true });
const tag = `${total}-${connections}-${opts["skew-ms"]}`;
const clientPath = join(BENCH_CACHE, `merge-edge-${tag}.cbor`);
const serverPath = join(BENCH_CACHE, `merge-orders-${tag}.cbor`);
const outPath = join(BENCH_CACHE, `merge-out-${tag}.cbor`);

console.log(machineLine());
if (!existsSync(clientPath) || !existsSync(serverPath)) writeInputs(clientPath, serverPath);
else console.log(`reusing ${clientPath} and ${serverPath}`);
const inMb = (statSync(clientPath).size + statSync(serverPath).size) / 1048576;

console.log(`\nin process (join + rewrite, ${inMb.toFixed(0)} MB in):`);
for (let i = 0; i < runs; i++) {
  const cpu0 = selfCpuMs();
  const t0 = performance.now();
  const r = await mergeCommand([clientPath, serverPath], { out: outPath }, async () => {});
  const wall = (performance.now() - t0) / 1000;
  const cpu = (selfCpuMs() - cpu0) / 1000;
  console.log(
    `  run ${i + 1}: ${r.spans} spans in ${wall.toFixed(2)} s wall (${Math.round(r.spans / wall).toLocaleString("en")} spans/s), ${cpu.toFixed(2)} s CPU (${Math.round(r.spans / cpu).toLocaleString("en")} spans/s CPU); ` +
      `joined ${r.joined}, offset ${(r.files[1]!.clockOffsetNs / 1e6).toFixed(3)} ms (applied ${Number(skewNs) / 1e6} ms)`,
  );
}

console.log(`\nbeetrace merge in a child process (start-up included):`);
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const p = spawnSync(process.execPath, [join(ROOT, "src/main.ts"), "merge", clientPath, serverPath, "-o", outPath, "--json"], { encoding: "utf8" });
  const wall = (performance.now() - t0) / 1000;
  const r = p.status === 0 ? (JSON.parse(p.stdout) as { spans: number; joined: number }) : undefined;
  console.log(r ? `  run ${i + 1}: ${r.spans} spans in ${wall.toFixed(2)} s (${Math.round(r.spans / wall).toLocaleString("en")} spans/s), joined ${r.joined}` : `  run ${i + 1}: exit ${p.status}: ${p.stderr.trim()}`);
}
rmSync(outPath, { force: true });
if (!opts.keep) {
  rmSync(clientPath, { force: true });
  rmSync(serverPath, { force: true });
}
