/**
 * @module bench/grpc-overhead — the service CPU the gRPC probes add per call.
 *
 *   node_modules/.bin/bun bench/grpc-overhead.ts [--calls 20000] [--kind unary|bidi] [--rounds 3]
 *                                                [--fixture grpc-1.85] [--beetrace dist/beetrace|source]
 *                                                [--bpf-stats]
 *
 * Root (uprobes). The workload is tests/fixtures/go/grpc (its server and its own client in one
 * process): one GET /bench?n=CALLS&kind=KIND makes CALLS calls in a row from one goroutine, each
 * a unary call ("unary") or a bidi stream with 2 round trips ("bidi"). So one call costs
 * the traced service one CLIENT and one SERVER span: with grpc >= 1.78 (the default fixture,
 * grpc-1.85) 8 emulated uprobe hits — client newClientStream, newAttemptLocked, the loopy
 * writer's HEADERS handler (live joins), finish, endOfClientStream (finish calls it); server
 * operateHeaders, handleStream, writeStatus — and no single-stepped one; before 1.78 the client
 * hands over at newClientStream's RETs and places no HEADERS handler, so --fixture grpc-1.72 /
 * grpc-1.62 / grpc-1.40 measures 2 + 3 emulated hits and 1 single-stepped RET
 * (docs/probe-placement.md, "gRPC"). --bpf-stats also prints, for the traced runs, each BPF
 * program's runs per call and its run time per run (kernel.bpf_stats_enabled on during the
 * measured request, restored after; needs bpftool): no single-stepped RET shows there, only
 * program runs. The service's CPU (utime + stime
 * of all its threads, /proc/PID/stat) is read just before and just after the request, for the
 * same workload untraced and traced (attach --pid), in alternating rounds on a fresh process
 * each; the difference per call is printed, next to the HTTP figure of bench/hotpath.sh.
 * /proc/PID/stat counts in clock ticks (10 ms): keep calls × per-call cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture } from "../tests/harness/go.ts";
import { alternatingRounds, bpfStats, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const argv = process.argv.slice(2);
const BPF_STATS = argv.includes("--bpf-stats");
const opts = parseOptions(
  argv.filter((a) => a !== "--bpf-stats"),
  { calls: "20000", kind: "unary", rounds: "3", fixture: "grpc-1.85", beetrace: join(ROOT, "dist", "beetrace") },
);
const CALLS = intOption(opts.calls, "calls");
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const KIND = opts.kind === "bidi" ? "bidi" : "unary";
/** The fixture variants and the toolchain each is built with (as tests/e2e/grpc.test.ts). */
const TOOLCHAINS: Record<string, string> = { "grpc-1.40": "go1.21.13", "grpc-1.62": "go1.23.12", "grpc-1.72": "go1.23.12", "grpc-1.85": "go1.26.11" };
const toolchain = TOOLCHAINS[opts.fixture];
if (toolchain === undefined) throw new Error(`--fixture: one of ${Object.keys(TOOLCHAINS).join(", ")}`);
async function oneRun(bin: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const fx = spawn(bin, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-grpc-${process.pid}-${round}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? undefined, 15_000, "the fixture"))[1]);
    const base = `http://127.0.0.1:${port}`;
    // Warm up (connection, first-call allocations) before measuring, untraced and traced alike.
    await (await fetch(`${base}/bench?n=50&kind=${KIND}`)).text();
    if (traced) {
      tracer = (await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture])).proc;
    }
    const stats = traced && BPF_STATS ? bpfStats("grpc_") : undefined;
    const before = processCpuMs(fx.pid!);
    const r = await fetch(`${base}/bench?n=${CALLS}&kind=${KIND}`, { signal: AbortSignal.timeout(600_000) });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`/bench: ${r.status} ${body}`);
    const cpuMs = processCpuMs(fx.pid!) - before;
    if (stats) for (const p of stats.stop()) console.log(`  bpf ${p.name.padEnd(24)} ${(p.runs / CALLS).toFixed(2)} runs/call  ${p.nsPerRun.toFixed(0)} ns/run`);
    let spans = 0;
    if (tracer) {
      await stopTracer(tracer);
      spans = readCaptureFile(capture).records.filter((x) => x.type === "span").length;
    }
    return { cpuMs, spans };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill("SIGKILL");
    fx.kill("SIGTERM");
    rmSync(capture, { force: true });
  }
}

console.log(`grpc-overhead: ${machineLine()}`);
console.log(`workload: ${CALLS} ${KIND} calls (${opts.fixture}, ${toolchain}), client and server in one process; ${ROUNDS} rounds`);
const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${opts.fixture}`, toolchain, mode: "default" });
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => oneRun(bin, traced, round));
console.log(`service CPU per call: untraced ${((u * 1000) / CALLS).toFixed(1)} µs, traced ${((t * 1000) / CALLS).toFixed(1)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / CALLS).toFixed(1)} µs per call = one CLIENT + one SERVER span (median of ${ROUNDS} rounds)`);
