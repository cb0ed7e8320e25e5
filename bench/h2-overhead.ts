/**
 * @module bench/h2-overhead — the service CPU the net/http probes add per HTTP/2 request, with
 * the HTTP/2 stream id site (the client stream's encodeAndWriteHeaders: one emulated hit per
 * HTTP/2 client request) in place.
 *
 *   node_modules/.bin/bun bench/h2-overhead.ts [--requests 3000] [--rounds 3] [--proto h2|h2c]
 *                                              [--toolchain go1.27.4] [--beetrace dist/beetrace]
 *
 * Root (uprobes). The workload is tests/fixtures/go/h2chain: edge (untraced, HTTP/1) gets one
 * GET /work?fan=N and calls orders N times at once over HTTP/2; orders calls stock once per
 * request over the same protocol. So one request costs the two traced services (orders and stock,
 * one `attach --pid --pid`) one HTTP/2 SERVER span in orders (2 emulated hits), one HTTP/2 CLIENT
 * span in orders (the roundTrip entry, the stream site: 2 emulated; roundTrip's RETs: single-
 * stepped) and one HTTP/2 SERVER span in stock (2 emulated). Their CPU (utime + stime of all
 * threads, /proc/PID/stat) is read just before and after the request, untraced and traced, in
 * alternating rounds on fresh processes; the difference per request is printed.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture, FIXTURES_GO } from "../tests/harness/go.ts";
import { alternatingRounds, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { requests: "3000", rounds: "3", proto: "h2", toolchain: "go1.27.4", beetrace: join(ROOT, "dist", "beetrace") });
const REQUESTS = intOption(opts.requests, "requests");
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const PROTO = opts.proto === "h2c" ? "h2c" : "h2";
const SCHEME = PROTO === "h2" ? "https" : "http";

async function start(bin: string, args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(bin, ["-addr", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const o = watch(proc);
  const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(o.out()) ?? undefined, 15_000, "the fixture"))[1]);
  return { proc, port };
}

async function measure(bin: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const procs: ChildProcess[] = [];
  const capture = join(tmpdir(), `beetrace-bench-h2-${process.pid}-${round}-{pid}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const stock = await start(bin, ["-proto", PROTO]);
    procs.push(stock.proc);
    const orders = await start(bin, ["-proto", PROTO, "-next", `${SCHEME}://127.0.0.1:${stock.port}`, "-next-proto", PROTO]);
    procs.push(orders.proc);
    const edge = await start(bin, ["-next", `${SCHEME}://127.0.0.1:${orders.port}`, "-next-proto", PROTO]);
    procs.push(edge.proc);
    const base = `http://127.0.0.1:${edge.port}`;
    // Warm up (connections, first-request allocations) before measuring, untraced and traced alike.
    await (await fetch(`${base}/work?fan=50`)).text();
    if (traced) {
      const tr = await startTracer(opts.beetrace, ["attach", "--pid", String(orders.proc.pid), "--pid", String(stock.proc.pid), "--out", capture]);
      tracer = tr.proc;
    }
    const cpu = () => processCpuMs(orders.proc.pid!) + processCpuMs(stock.proc.pid!);
    const before = cpu();
    const r = await fetch(`${base}/work?fan=${REQUESTS}`, { signal: AbortSignal.timeout(600_000) });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`/work: ${r.status} ${body}`);
    const cpuMs = cpu() - before;
    let spans = 0;
    if (tracer) {
      await stopTracer(tracer);
      for (const p of [orders, stock]) {
        const f = capture.replace("{pid}", String(p.proc.pid));
        spans += readCaptureFile(f).records.filter((x) => x.type === "span").length;
        rmSync(f, { force: true });
      }
    }
    return { cpuMs, spans };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill("SIGKILL");
    for (const p of procs) p.kill("SIGTERM");
  }
}

console.log(`h2-overhead: ${machineLine()}`);
console.log(`workload: ${REQUESTS} HTTP/2 requests (${PROTO}, ${opts.toolchain}) orders → stock, ${REQUESTS} at once from edge; ${ROUNDS} rounds`);
const bin = await buildFixture({ dir: join(FIXTURES_GO, "h2chain"), toolchain: opts.toolchain, mode: "default" });
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => measure(bin, traced, round));
console.log(`service CPU per request (orders + stock): untraced ${((u * 1000) / REQUESTS).toFixed(1)} µs, traced ${((t * 1000) / REQUESTS).toFixed(1)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / REQUESTS).toFixed(1)} µs per request = two HTTP/2 SERVER spans + one HTTP/2 CLIENT span with its stream site (median of ${ROUNDS} rounds)`);
