/**
 * @module bench/startup — launch → probes live: wall time from spawning `beetrace attach --pid`
 * until it prints its "tracing pid" line (everything is attached then: the line is printed after
 * the last uprobe link is created), on a large stripped Go binary that links net/http.
 * Target (hot-path issue): ≤ 150 ms on a ~30 MB stripped binary.
 *
 *   bench/build-inputs.sh        # once: gopls, -ldflags="-s -w", ~29 MB
 *   node_modules/.bin/bun bench/startup.bench.ts [--runs 15] [--stage-runs 5] [--binary .cache/bench/gopls/gopls]
 *       [--beetrace dist/beetrace] [--before OTHER-BEETRACE]
 *
 * Root. The target runs `gopls serve -listen=127.0.0.1:0` (it idles waiting for a client); the
 * tracer is stopped with SIGINT 0.3 s after its line, and the time to its exit (detach, final
 * drain, capture file closed) is reported too. The timed runs are without -v, as an operator
 * runs it: -v adds libbpf's debug messages (~1800 lines for net/http's object) to the time.
 * Then --stage-runs runs with BEETRACE_STARTUP_STAGES=1 give where the time goes: the
 * "start-up: <stage> at <ms>" lines (log.ts startupStage; ms since the tracer's process
 * started), as medians. Not -v: it also prints libbpf's debug lines and loads the objects on the
 * JS thread, after the work that otherwise overlaps the load (trace/session.ts). --before: the same for a second
 * executable, alternating with the first run by run (a before/after comparison on one machine).
 * Next to the wall time, the tracer's CPU time by then (all threads, kernel included): on a
 * machine shared with other work it moves less than the wall time.
 */
import { spawn } from "node:child_process";
import { rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_CACHE, ROOT, exited, intOption, machineLine, parseOptions, processCpuMs, summarize } from "./lib.ts";


/**
 * CPU time the process has used so far, all its threads (kernel time included: the verifier runs
 * in the tracer's own context), in ms. Less moved by other load on the machine than wall time;
 * NaN when unreadable. /proc/PID/stat's utime + stime, which keeps the time of threads that have
 * ended (the objects load on a native thread that is gone by the "tracing" line), at the cost of
 * 10 ms ticks; the per-thread schedstat sums (ns) count only live threads.
 */
function cpuMsOf(pid: number): number {
  try {
    return processCpuMs(pid);
  } catch {
    return Number.NaN;
  }
}

/** How long each run traces before SIGINT. */
const STOP_AFTER_MS = 300;

interface Run {
  wallMs: number;
  /** CPU time of the tracer when its "tracing pid" line arrived */
  cpuMs: number;
  /** SIGINT → exit, after STOP_AFTER_MS of tracing (detach, final drain, capture file closed) */
  stopMs: number;
  /** stage → ms since the tracer started (stage runs only) */
  stages: Map<string, number>;
}

async function once(beetrace: string, pid: number, stages: boolean): Promise<Run> {
  const out = join(tmpdir(), `beetrace-startup-${process.pid}.cbor`);
  const t0 = performance.now();
  const tracer = spawn(beetrace, ["attach", "--pid", String(pid), "--out", out], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...(stages ? { BEETRACE_STARTUP_STAGES: "1" } : {}) },
  });
  let buf = "";
  let cpuMs = Number.NaN;
  const wallMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "tracing pid" line in 30 s:\n${buf.slice(-4000)}`)), 30_000);
    tracer.stderr!.on("data", (d: Buffer) => {
      buf += d.toString();
      if (/tracing pid \d+/.test(buf)) {
        clearTimeout(timer);
        const at = performance.now() - t0;
        cpuMs = cpuMsOf(tracer.pid!);
        resolve(at);
      }
    });
    tracer.once("exit", (code) => reject(new Error(`tracer exited ${code}:\n${buf.slice(-4000)}`)));
  });
  // Past the start-up trims (trace/footprint.ts), as a session that traced for a while stops.
  await new Promise((r) => setTimeout(r, STOP_AFTER_MS));
  const s0 = performance.now();
  tracer.kill("SIGINT");
  await exited(tracer);
  const stopMs = performance.now() - s0;
  rmSync(out, { force: true });
  const at = new Map<string, number>();
  for (const s of buf.matchAll(/start-up: (.+) at ([\d.]+) ms/g)) at.set(s[1]!, Number(s[2]));
  return { wallMs, cpuMs, stopMs, stages: at };
}

const f = (s: ReturnType<typeof summarize>) => `median ${s.median.toFixed(1)}  p95 ${s.p95.toFixed(1)}  min ${s.min.toFixed(1)}  max ${s.max.toFixed(1)} ms`;

function report(name: string, runs: Run[], staged: Run[]): void {
  console.log(`${name}: launch → probes live (wall, no -v): ${f(summarize(runs.map((r) => r.wallMs)))}`);
  console.log(`${name}: CPU time by then (all threads):     ${f(summarize(runs.map((r) => r.cpuMs)))}`);
  console.log(`${name}: stop, SIGINT → exit (no -v):        ${f(summarize(runs.map((r) => r.stopMs)))}`);
  if (staged.length === 0) return;
  console.log(`${name}: start-up stages, median of ${staged.length} runs (BEETRACE_STARTUP_STAGES=1):`);
  const names = [...new Set(staged.flatMap((r) => [...r.stages.keys()]))];
  let prev = 0;
  for (const n of names) {
    const at = summarize(staged.flatMap((r) => (r.stages.has(n) ? [r.stages.get(n)!] : []))).median;
    console.log(`  ${n.padEnd(36)} at ${at.toFixed(1).padStart(6)} ms  (+${(at - prev).toFixed(1)})`);
    prev = at;
  }
}

async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), {
    runs: "15",
    "stage-runs": "5",
    binary: join(BENCH_CACHE, "gopls", "gopls"),
    beetrace: join(ROOT, "dist", "beetrace"),
    before: "",
  });
  const runs = intOption(o.runs, "--runs");
  const stageRuns = intOption(o["stage-runs"], "--stage-runs");
  const exes = [o.beetrace, ...(o.before ? [o.before] : [])];
  console.log(machineLine());
  console.log(`target ${o.binary} (${(statSync(o.binary).size / 1e6).toFixed(1)} MB)`);
  const target = spawn(o.binary, ["serve", "-listen=127.0.0.1:0"], { stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 500)); // let it start (it only has to exist and be mapped)
    const timed = exes.map(() => [] as Run[]);
    const staged = exes.map(() => [] as Run[]);
    for (const e of exes) await once(e, target.pid!, false); // warm the page cache for the tracers and the target
    for (let i = 0; i < runs; i++) for (const [k, e] of exes.entries()) timed[k]!.push(await once(e, target.pid!, false));
    for (let i = 0; i < stageRuns; i++) for (const [k, e] of exes.entries()) staged[k]!.push(await once(e, target.pid!, true));
    for (const [k, e] of exes.entries()) report(exes.length > 1 ? (k === 0 ? `after (${e})` : `before (${e})`) : e, timed[k]!, staged[k]!);
  } finally {
    target.kill("SIGTERM");
    await exited(target);
  }
}

await main();
