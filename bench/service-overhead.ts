/**
 * @module bench/service-overhead — the traced service's added CPU per request, measured so that a
 * few µs can be read: ONE sample process per route under ONE continuous fixed-rate load, and
 * short windows in which the configurations take turns (untraced, the bare no-op floor, beetrace,
 * optionally a "before" build), the order rotating every round.
 *
 * Why not bench/latency.ts for this: it starts a fresh sample process per configuration and
 * run, and the untraced baseline moved by ~10 µs per request between runs (other work on the
 * 2-core machine, the process's own state), more than the differences to read (bench/RESULTS.md
 * §0000h). Here an untraced window comes before and after every other window, and each is
 * compared with the mean of those two: the same process, the same minutes. The median of these
 * differences over rounds, and their spread, are printed.
 *
 * CPU per window: the sum of every thread's run time (/proc/PID/task/TID/schedstat, ns) of the
 * sample process over the window, divided by the requests the fixed-rate load sent in it (rate ×
 * window; the load's achieved rate is checked at the end). Attaching and detaching happen
 * outside the windows, with a settle time after attaching.
 *
 *   bench/latency.sh builds the inputs (sample, loadgen, noop.bpf.o) into .cache/bench; then (root)
 *   node_modules/.bin/bun bench/service-overhead.ts [--routes /hello,/items/17] [--rate 2000]
 *       [--conns 8] [--window 4] [--settle 1] [--rounds 8] [--configs untraced,noop,beetrace]
 *       [--beetrace dist/beetrace] [--before OTHER-BEETRACE] [--bpf-stats yes]
 *
 * "noop" is bench/noop.bpf.c at each probed function's first instruction and every RET (the
 * peers' placement): the "bare entry+RET uprobe floor" the hot-path issue compares with.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachNoop, type NoopProbes } from "./noop-attach.ts";
import { BENCH_CACHE, ROOT, bootstrapInterval, bpfStats, exited, threadsCpuNs, intOption, machineLine, parseOptions, percentile, waitForLine } from "./lib.ts";

const o = parseOptions(process.argv.slice(2), {
  routes: "/hello,/items/17",
  rate: "2000",
  conns: "8",
  window: "4",
  settle: "1",
  rounds: "8",
  configs: "untraced,noop,beetrace",
  beetrace: join(ROOT, "dist", "beetrace"),
  before: "",
  "bpf-stats": "no",
});
/** With --bpf-stats yes, the tracer windows also report its BPF programs' run time per request
 * (kernel.bpf_stats_enabled: it adds two clock reads per program run to what is measured). */
const BPF_STATS = o["bpf-stats"] === "yes";
const RATE = intOption(o.rate, "rate");
const WINDOW_S = intOption(o.window, "window");
const SETTLE_MS = Number(o.settle) * 1000;
const ROUNDS = Math.max(2, intOption(o.rounds, "rounds"));
type Config = "untraced" | "noop" | "beetrace" | "before";
const configs = o.configs.split(",") as Config[];
for (const c of configs) if (!["untraced", "noop", "beetrace", "before"].includes(c)) throw new Error(`unknown config ${c}`);
if (!configs.includes("untraced")) throw new Error("--configs must include untraced (the baseline of every round)");
if (configs.includes("before") && !o.before) throw new Error("config 'before' needs --before PATH");
const SAMPLE = join(BENCH_CACHE, "sample");
const LOADGEN = join(BENCH_CACHE, "loadgen");
const NOOP = join(BENCH_CACHE, "noop.bpf.o");
for (const p of [SAMPLE, LOADGEN, NOOP, o.beetrace]) if (!existsSync(p)) throw new Error(`${p} is missing: run bench/latency.sh once (it builds the inputs), and node_modules/.bin/bun build.ts`);

/** threadsCpuNs of the sample, which must still run (a window of a dead process means nothing). */
function threadsNs(pid: number): number {
  const ns = threadsCpuNs(pid);
  if (Number.isNaN(ns)) throw new Error(`the sample (pid ${pid}) has exited`);
  return ns;
}

/** What a configuration attaches to the sample, and how it is taken off again. */
async function attach(config: Config, pid: number): Promise<() => Promise<void>> {
  if (config === "untraced") return async () => {};
  if (config === "noop") {
    const probes: NoopProbes = attachNoop(new Uint8Array(readFileSync(NOOP)), pid);
    return async () => probes[Symbol.dispose]();
  }
  const capture = join(tmpdir(), `beetrace-bench-overhead-${process.pid}.cbor`);
  const tracer: ChildProcess = spawn(config === "before" ? o.before : o.beetrace, ["attach", "--pid", String(pid), "--out", capture], { stdio: ["ignore", "ignore", "pipe"] });
  await waitForLine(tracer, "stderr", /tracing pid \d+/, 30_000);
  return async () => {
    tracer.kill("SIGINT");
    await exited(tracer);
    rmSync(capture, { force: true });
  };
}

interface Window {
  round: number;
  config: Config;
  cpuUsPerReq: number;
  /** this window minus the mean of the untraced windows just before and after it (untraced: NaN) */
  added: number;
  /** the tracer's BPF programs' run time per request in this window (--bpf-stats yes) */
  bpfUsPerReq?: number;
}

/** One window: attach, settle, measure, detach. */
async function measureWindow(config: Config, pid: number, round: number): Promise<Window> {
  const detach = await attach(config, pid);
  try {
    await Bun.sleep(SETTLE_MS);
    const stats = BPF_STATS && (config === "beetrace" || config === "before") ? bpfStats("nethttp") : undefined;
    const ns0 = threadsNs(pid);
    const t0 = performance.now();
    await Bun.sleep(WINDOW_S * 1000);
    const ns = threadsNs(pid) - ns0;
    const seconds = (performance.now() - t0) / 1000;
    const requests = RATE * seconds;
    const w: Window = { round, config, cpuUsPerReq: ns / 1000 / requests, added: Number.NaN };
    if (stats) w.bpfUsPerReq = stats.stop().reduce((sum, p) => sum + (p.runs * p.nsPerRun) / 1000, 0) / requests;
    return w;
  } finally {
    await detach();
  }
}

async function route(path: string): Promise<Window[]> {
  const sample = spawn(SAMPLE, [], { stdio: ["ignore", "pipe", "inherit"] });
  const addr = (await waitForLine(sample, "stdout", /listening on (\S+)/, 10_000))[1]!;
  // One load for the whole route (stopped with SIGINT at the end, when it prints its summary):
  // every window sees the same connections and the same rate.
  const load = spawn(LOADGEN, ["-url", `http://${addr}${path}`, "-rate", String(RATE), "-duration", "24h", "-warmup", "2s", "-conns", o.conns], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let loadOut = "";
  load.stdout!.on("data", (d: Buffer) => (loadOut += d.toString()));
  const windows: Window[] = [];
  const traced = configs.filter((c) => c !== "untraced");
  try {
    await Bun.sleep(2500); // the load's warm-up
    const pid = sample.pid!;
    // An untraced window before and after every other one: each is compared with the untraced
    // minutes around it, which cancels the drift of the machine and of the process.
    windows.push(await measureWindow("untraced", pid, 0));
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order so no configuration always comes at the same point of a round.
      for (let i = 0; i < traced.length; i++) {
        if (load.exitCode !== null) throw new Error("the load generator stopped early");
        windows.push(await measureWindow(traced[(i + round - 1) % traced.length]!, pid, round));
        windows.push(await measureWindow("untraced", pid, round));
      }
      const line = windows.filter((w) => w.round === round).map((w) => `${w.config} ${w.cpuUsPerReq.toFixed(1)}`);
      console.log(`${path} round ${round}: service CPU µs/req: ${line.join(", ")}`);
    }
  } finally {
    load.kill("SIGINT");
    await exited(load);
    sample.kill("SIGTERM");
    await exited(sample);
  }
  for (let i = 1; i + 1 < windows.length; i++) {
    const w = windows[i]!;
    if (w.config !== "untraced") w.added = w.cpuUsPerReq - (windows[i - 1]!.cpuUsPerReq + windows[i + 1]!.cpuUsPerReq) / 2;
  }
  try {
    const r = JSON.parse(loadOut) as { achievedRate: number; errors: number; non200: number };
    console.log(`${path}: load achieved ${r.achievedRate.toFixed(0)} of ${RATE} req/s offered, ${r.errors + r.non200} failed`);
  } catch {
    console.log(`${path}: the load's summary is not readable: ${loadOut.slice(0, 200)}`);
  }
  return windows;
}

const fmt = (v: number) => v.toFixed(1).padStart(6);
console.log(machineLine());
console.log(`service overhead: ${RATE} req/s, ${o.conns} connections, ${ROUNDS} rounds of ${configs.join("/")} windows (${WINDOW_S} s each, ${o.settle} s settle), one sample process per route`);
for (const path of o.routes.split(",")) {
  const ws = await route(path);
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const untraced = sorted(ws.filter((w) => w.config === "untraced").map((w) => w.cpuUsPerReq));
  console.log(`${path}: untraced ${fmt(percentile(untraced, 50))} µs/req (min ${fmt(untraced[0]!)}, max ${fmt(untraced.at(-1)!)})`);
  const medians = new Map<Config, number>();
  for (const c of configs.filter((c) => c !== "untraced")) {
    const d = sorted(ws.filter((w) => w.config === c).map((w) => w.added));
    const m = percentile(d, 50);
    medians.set(c, m);
    const bpf = sorted(ws.filter((w) => w.config === c && w.bpfUsPerReq !== undefined).map((w) => w.bpfUsPerReq!));
    const ofWhich = bpf.length ? `; of which its BPF programs ${fmt(percentile(bpf, 50))} µs/req (bpf_stats)` : "";
    console.log(`${path}: ${c.padEnd(8)} adds ${fmt(m)} µs/req over the untraced windows around it (p25 ${fmt(percentile(d, 25))}, p75 ${fmt(percentile(d, 75))}, min ${fmt(d[0]!)}, max ${fmt(d.at(-1)!)})${ofWhich}`);
  }
  const floor = medians.get("noop");
  if (floor !== undefined && floor > 0) {
    for (const c of ["beetrace", "before"] as const) {
      const m = medians.get(c);
      if (m === undefined) continue;
      // How far the ratio can be trusted: rounds resampled whole (a round's windows share its minutes).
      const rounds = [...new Set(ws.map((w) => w.round))].map((r) => ({
        added: ws.find((w) => w.round === r && w.config === c)?.added,
        floor: ws.find((w) => w.round === r && w.config === "noop")?.added,
      }));
      const paired = rounds.filter((r): r is { added: number; floor: number } => r.added !== undefined && r.floor !== undefined);
      const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
      const [lo, hi] = bootstrapInterval(paired, (s) => median(s.map((r) => r.added)) / median(s.map((r) => r.floor)));
      console.log(`${path}: ${c} / floor = ${(m / floor).toFixed(2)}× (95 % bootstrap interval over rounds ${lo.toFixed(2)}–${hi.toFixed(2)}×; target ≤ 0.25×)`);
    }
  }
}
