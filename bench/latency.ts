/**
 * @module bench/latency — added latency per request on the sample service under a fixed-rate
 * load, in three configurations: untraced, traced by the compiled beetrace (`attach --pid`),
 * and the no-op BPF programs of bench/noop.bpf.c at the same uprobe sites (bench/noop-attach.ts).
 *
 * Run through bench/latency.sh, which builds the inputs (sample, loadgen, noop.bpf.o) first.
 * Root is required for the traced and no-op configurations. Everything is on loopback and each
 * configuration runs for a bounded time (--warmup + --duration) on a freshly started sample.
 *
 * Besides client-side latency (bench/loadgen, measured from each request's due time), it reads
 * the sample's own CPU time (utime + stime, /proc/PID/stat) over the run: uprobe handling is
 * charged to the traced thread as system time, so CPU µs per request shows the tracing cost
 * more steadily than latency percentiles on a shared machine.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { attachNoop } from "./noop-attach.ts";
import { BpfObject } from "../src/bpf/object.ts";
import { attachUprobe } from "../src/bpf/link.ts";
import { buildTarget, fileOffsetOf } from "../tests/e2e/bpf-harness.ts";
import { BENCH_CACHE, ROOT, exited, intOption, machineLine, parseOptions, statusKb, waitForLine } from "./lib.ts";

/** "before": another beetrace build (--before PATH), e.g. the last release, measured in the same run. */
type Config = "untraced" | "noop" | "beetrace" | "before";
const CONFIGS: Config[] = ["untraced", "noop", "beetrace", "before"];

interface LoadResult {
  sent: number;
  ok: number;
  errors: number;
  non200: number;
  achievedRate: number;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  serviceUs: { p50: number; p90: number; p99: number; mean: number };
}

interface Row {
  route: string;
  config: Config;
  round: number;
  load: LoadResult;
  /** sample CPU µs per request (whole run incl. warm-up) */
  cpuUs: number;
  /** tracer CPU µs per request (beetrace process), when there is one */
  tracerCpuUs?: number;
  /** uprobe hits per request (noop: counted by BPF) */
  hitsPerReq?: number;
  note?: string;
}

const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return r.status === 0 && n > 0 ? n : 100; // proc(5): utime/stime are in clock ticks, USER_HZ (100 on Linux)
})();


/** utime + stime of a whole process (all threads), in µs; proc(5) /proc/PID/stat fields 14 and 15. */
function cpuUs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
}



async function startSample(bin: string): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawn(bin, [], { stdio: ["ignore", "pipe", "inherit"] });
  const m = await waitForLine(child, "stdout", /listening on (\S+)/, 10_000);
  return { child, addr: m[1]! };
}

async function runLoad(loadgen: string, url: string, o: { rate: number; duration: number; warmup: number; conns: number }): Promise<LoadResult> {
  const child = spawn(loadgen, ["-url", url, "-rate", String(o.rate), "-duration", `${o.duration}s`, "-warmup", `${o.warmup}s`, "-conns", String(o.conns)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const code = await exited(child);
  if (code !== 0) throw new Error(`loadgen exited ${code}`);
  return JSON.parse(out) as LoadResult;
}

async function measure(config: Config, route: string, round: number, o: Opts): Promise<Row> {
  const sample = await startSample(o.sample);
  const pid = sample.child.pid!;
  const url = `http://${sample.addr}${route}`;
  let tracer: ChildProcess | undefined;
  let noop: ReturnType<typeof attachNoop> | undefined;
  const capture = join(tmpdir(), `beetrace-bench-latency-${process.pid}.cbor`);
  let idleRssKb = 0;
  try {
    if (config === "noop") noop = attachNoop(new Uint8Array(readFileSync(o.noopObject)), pid);
    if (config === "beetrace" || config === "before") {
      tracer = spawn(config === "before" ? o.before : o.beetrace, ["attach", "--pid", String(pid), "--out", capture], { stdio: ["ignore", "ignore", "pipe"] });
      await waitForLine(tracer, "stderr", /tracing pid \d+/, 30_000);
      idleRssKb = statusKb(tracer.pid!, "VmRSS") ?? 0;
    }
    const requests = o.rate * (o.warmup + o.duration);
    const hits0 = noop?.hits();
    const c0 = cpuUs(pid);
    const t0 = tracer ? cpuUs(tracer.pid!) : 0;
    const load = await runLoad(o.loadgen, url, o);
    const row: Row = { route, config, round, load, cpuUs: (cpuUs(pid) - c0) / requests };
    if (tracer) row.tracerCpuUs = (cpuUs(tracer.pid!) - t0) / requests;
    if (noop && hits0) {
      const h = noop.hits();
      row.hitsPerReq = (h.entry - hits0.entry + h.ret - hits0.ret) / requests;
    }
    if (tracer) {
      const peakKb = statusKb(tracer.pid!, "VmHWM") ?? 0;
      const summary = waitForLine(tracer, "stderr", /wrote (\d+) spans?/, 30_000);
      tracer.kill("SIGINT");
      const m = await summary;
      await exited(tracer);
      tracer = undefined;
      const spans = Number(m[1]);
      const bytes = existsSync(capture) ? statSync(capture).size : 0;
      row.note =
        `${spans} spans written (${(spans / requests).toFixed(2)}/request), ${spans > 0 ? (bytes / spans).toFixed(1) : "-"} bytes/span on disk; ` +
        `tracer RSS idle ${(idleRssKb / 1024).toFixed(1)} MiB, peak ${(peakKb / 1024).toFixed(1)} MiB`;
    }
    return row;
  } finally {
    noop?.[Symbol.dispose]();
    if (tracer) {
      tracer.kill("SIGINT");
      await exited(tracer);
    }
    sample.child.kill("SIGTERM");
    await exited(sample.child);
    rmSync(capture, { force: true });
  }
}

interface Opts {
  rate: number;
  duration: number;
  warmup: number;
  conns: number;
  sample: string;
  loadgen: string;
  noopObject: string;
  beetrace: string;
  /** another beetrace build for the "before" configuration ("" = none) */
  before: string;
}

/**
 * The bare cost of one uprobe hit right now on this machine, to compare with the latency
 * numbers: a C program (the src/bpf e2e tests' target) calls a small function `calls` times,
 * with and without noop_entry attached there; cost = Δ(process CPU time) / calls.
 */
async function calibrate(noopObject: string, calls: number): Promise<{ perHitUs: number; baseNsPerCall: number }> {
  const target = buildTarget();
  const offset = fileOffsetOf(target, "bt_probe_me");
  const run = async (probed: boolean): Promise<number> => {
    const p = Bun.spawn([target, String(calls)], { stdin: "pipe", stdout: "ignore" });
    using obj = BpfObject.open(new Uint8Array(readFileSync(noopObject)), "noop_calib");
    obj.load();
    using _link = probed ? attachUprobe(obj.program("noop_entry"), { binaryPath: target, fileOffset: offset, pid: p.pid }) : undefined;
    p.stdin.write("g");
    await p.stdin.end();
    if ((await p.exited) !== 0) throw new Error("calibration target failed");
    if (probed && obj.readBss("entry_hits") !== BigInt(calls)) throw new Error(`calibration: ${obj.readBss("entry_hits")} hits, expected ${calls}`);
    return Number(p.resourceUsage()!.cpuTime.total); // µs (Bun reports a bigint)
  };
  const bare: number[] = [];
  const probed: number[] = [];
  for (let i = 0; i < 3; i++) {
    bare.push(await run(false));
    probed.push(await run(true));
  }
  return { perHitUs: (med(probed) - med(bare)) / calls, baseNsPerCall: (med(bare) * 1000) / calls };
}

const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const a = parseOptions(Bun.argv.slice(2), {
    routes: "/hello,/proxy",
    configs: CONFIGS.join(","),
    rate: "500",
    duration: "10",
    warmup: "2",
    conns: "8",
    rounds: "1",
    sample: join(BENCH_CACHE, "sample"),
    loadgen: join(BENCH_CACHE, "loadgen"),
    "noop-object": join(BENCH_CACHE, "noop.bpf.o"),
    beetrace: join(ROOT, "dist", "beetrace"),
    before: "",
  });
  const o: Opts = {
    rate: intOption(a.rate, "rate"),
    duration: intOption(a.duration, "duration"),
    warmup: intOption(a.warmup, "warmup"),
    conns: intOption(a.conns, "conns"),
    sample: a.sample,
    loadgen: a.loadgen,
    noopObject: a["noop-object"],
    beetrace: a.beetrace,
    before: a.before,
  };
  const configs = a.configs.split(",") as Config[];
  for (const c of configs) if (!CONFIGS.includes(c)) throw new Error(`--configs: unknown ${c} (known: ${CONFIGS.join(", ")})`);
  if (configs.some((c) => c !== "untraced") && process.getuid?.() !== 0) throw new Error("the noop and beetrace configurations need root (uprobes)");
  if (configs.includes("before") && o.before === "") throw new Error("--configs before needs --before PATH (another beetrace build)");
  for (const [what, p] of [["sample", o.sample], ["loadgen", o.loadgen], ["noop object", o.noopObject], ["beetrace", o.beetrace], ...(o.before ? [["before", o.before] as const] : [])] as const) {
    if (!existsSync(p)) throw new Error(`${what} ${p} is missing: run bench/latency.sh (it builds the inputs) or node_modules/.bin/bun build.ts for dist/beetrace`);
  }
  const routes = a.routes.split(",");
  const rounds = Math.max(1, intOption(a.rounds, "rounds"));
  console.log(`# latency benchmark\n${machineLine()}`);
  console.log(`fixed rate ${o.rate} req/s, ${o.conns} connections, ${o.warmup} s warm-up + ${o.duration} s measured per run, ${rounds} round(s), loopback`);
  if (configs.includes("noop")) {
    const calls = 200_000;
    const c = await calibrate(o.noopObject, calls);
    console.log(`uprobe calibration (C loop, ${calls} calls, median of 3): ${c.perHitUs.toFixed(2)} µs CPU per uprobe hit (no-op program)`);
  }
  const rows: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const route of routes) {
      for (const config of configs) {
        const r = await measure(config, route, round, o);
        rows.push(r);
        const l = r.load.latencyUs;
        console.log(
          `round ${round} ${route.padEnd(7)} ${config.padEnd(9)} p50 ${l.p50.toFixed(0)} p90 ${l.p90.toFixed(0)} p99 ${l.p99.toFixed(0)} max ${l.max.toFixed(0)} µs; ` +
            `${r.load.achievedRate.toFixed(0)} req/s, ${r.load.ok} ok, ${r.load.errors + r.load.non200} failed; sample CPU ${r.cpuUs.toFixed(1)} µs/req` +
            (r.hitsPerReq !== undefined ? `; ${r.hitsPerReq.toFixed(2)} uprobe hits/req` : "") +
            (r.tracerCpuUs !== undefined ? `; beetrace CPU ${r.tracerCpuUs.toFixed(1)} µs/req (${((r.tracerCpuUs * o.rate) / 1e4).toFixed(1)}% of a core)` : "") +
            (r.note ? `; ${r.note}` : ""),
        );
      }
    }
  }
  console.log(`\nmedian over rounds; overhead = configuration minus untraced (µs)`);
  console.log(`route    config     p50    p90    p99   cpu/req | Δp50  Δp90  Δp99  Δcpu/req`);
  for (const route of routes) {
    const base = rows.filter((r) => r.route === route && r.config === "untraced");
    const b = base.length
      ? { p50: med(base.map((r) => r.load.latencyUs.p50)), p90: med(base.map((r) => r.load.latencyUs.p90)), p99: med(base.map((r) => r.load.latencyUs.p99)), cpu: med(base.map((r) => r.cpuUs)) }
      : undefined;
    for (const config of configs) {
      const rs = rows.filter((r) => r.route === route && r.config === config);
      const v = { p50: med(rs.map((r) => r.load.latencyUs.p50)), p90: med(rs.map((r) => r.load.latencyUs.p90)), p99: med(rs.map((r) => r.load.latencyUs.p99)), cpu: med(rs.map((r) => r.cpuUs)) };
      const d = (x: number, y: number | undefined) => (y === undefined ? "   -" : (x - y).toFixed(0).padStart(5));
      console.log(
        `${route.padEnd(8)} ${config.padEnd(9)} ${v.p50.toFixed(0).padStart(5)} ${v.p90.toFixed(0).padStart(6)} ${v.p99.toFixed(0).padStart(6)} ${v.cpu.toFixed(1).padStart(8)} |` +
          `${d(v.p50, b?.p50)} ${d(v.p90, b?.p90)} ${d(v.p99, b?.p99)} ${b ? (v.cpu - b.cpu).toFixed(1).padStart(8) : "   -"}`,
      );
    }
  }
}

await main();
