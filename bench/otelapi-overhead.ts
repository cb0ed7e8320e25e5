/**
 * @module bench/otelapi-overhead — the service CPU the OTel API probe adds per manual span.
 *
 *   node_modules/.bin/bun bench/otelapi-overhead.ts [--requests 200] [--spans 100] [--rounds 3] [--otel new|old] [--beetrace dist/beetrace|source]
 *
 * Root (uprobes). The workload is tests/fixtures/go/otelapi (stripped, built with the newest
 * otel release, or v1.0.1 with --otel old): `--requests` GET /burst?k=SPANS, each making SPANS
 * sequential spans with the API's global tracer and no SDK (Start, SetAttributes with two
 * attributes, End). Per span the probe hits Start's entry (emulated JBE), one RET of Start
 * (single-stepped), SetAttributes' and End's entries (emulated PUSH), and runs its BPF programs.
 * The service's CPU (utime + stime of all its threads, /proc/PID/stat) is read before the first
 * request and after the last, for the same workload untraced and traced, in alternating rounds
 * on a fresh process each; the difference per span is printed (the one HTTP server span per
 * request is included, 1/SPANS of it per span). /proc/PID/stat counts in clock ticks (10 ms):
 * keep requests × spans × per-span cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture } from "../tests/harness/go.ts";
import { alternatingRounds, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { requests: "200", spans: "100", rounds: "3", otel: "new", beetrace: join(ROOT, "dist", "beetrace") });
const REQUESTS = Math.max(1, intOption(opts.requests, "requests"));
const SPANS = Math.max(1, intOption(opts.spans, "spans"));
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const TOTAL = REQUESTS * SPANS;
async function oneRun(bin: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const fx = spawn(bin, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-otelapi-${process.pid}-${round}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? undefined, 15_000, "the fixture"))[1]);
    if (traced) {
      const tr = await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture]);
      tracer = tr.proc;
      const tro = tr;
      if (!/otelapi/.test(tr.err())) throw new Error(`the otelapi probe is not attached:\n${tr.err()}`);
    }
    const base = `http://127.0.0.1:${port}`;
    const before = processCpuMs(fx.pid!);
    for (let i = 0; i < REQUESTS; i++) {
      const r = await fetch(`${base}/burst?k=${SPANS}`);
      if (r.status !== 200) throw new Error(`/burst: ${r.status} ${await r.text()}`);
      await r.text();
    }
    const cpuMs = processCpuMs(fx.pid!) - before;
    let spans = 0;
    if (tracer) {
      await stopTracer(tracer);
      spans = readCaptureFile(capture).records.filter((r) => r.type === "span").length;
    }
    return { cpuMs, spans };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill("SIGKILL");
    fx.kill("SIGTERM");
    rmSync(capture, { force: true });
  }
}

console.log(`otelapi-overhead: ${machineLine()}`);
console.log(`workload: ${REQUESTS} requests × ${SPANS} manual spans (Start, SetAttributes ×2, End), otel ${opts.otel === "old" ? "v1.0.1" : "newest"}; ${ROUNDS} rounds`);
const toolchain = (spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout ?? "").trim();
const dir = opts.otel === "old" ? "tests/fixtures/go/otelapi/v1.0.1" : "tests/fixtures/go/otelapi";
const bin = await buildFixture({ dir, toolchain, mode: "strip", tags: opts.otel === "old" ? ["otel_legacy"] : [] });
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => oneRun(bin, traced, round));
console.log(`service CPU per manual span: untraced ${((u * 1000) / TOTAL).toFixed(2)} µs, traced ${((t * 1000) / TOTAL).toFixed(2)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / TOTAL).toFixed(2)} µs per manual span (median of ${ROUNDS} rounds; includes 1/${SPANS} HTTP server span per span)`);
