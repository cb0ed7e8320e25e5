/**
 * @module bench/lib — small helpers shared by the benchmarks: percentiles, option parsing, a
 * description of the machine and checkout, and the cache directory for built inputs.
 *
 * Benchmarks print numbers; they never assert speed (targets live in bench/RESULTS.md, not in
 * timed tests, because these machines are shared and noisy).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..");
/** Gitignored (.cache/ in .gitignore): built benchmark inputs and temp outputs. */
export const BENCH_CACHE = join(ROOT, ".cache", "bench");

export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (p in [0, 100]) of an already sorted array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    median: percentile(s, 50),
    p95: percentile(s, 95),
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.length ? sum / s.length : Number.NaN,
  };
}

export function fmtMs(v: number): string {
  return v.toFixed(v < 10 ? 2 : 1);
}

/** "median 12.3 / p95 15.0 / min 11.9 / max 20.1 ms (n=30)" */
export function fmtSummary(s: Summary, unit = "ms"): string {
  return `median ${fmtMs(s.median)} / p95 ${fmtMs(s.p95)} / min ${fmtMs(s.min)} / max ${fmtMs(s.max)} ${unit} (n=${s.n})`;
}

/**
 * `--name value` / `--name=value` options with defaults; unknown options are an error so a typo
 * never silently runs the default benchmark.
 */
export function parseOptions<T extends Record<string, string>>(argv: string[], defaults: T): T {
  const out: Record<string, string> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!(name in defaults)) throw new Error(`unknown option --${name} (known: ${Object.keys(defaults).map((k) => "--" + k).join(", ")})`);
    let value: string | undefined = eq >= 0 ? a.slice(eq + 1) : argv[i + 1];
    if (eq < 0) i++;
    if (value === undefined) throw new Error(`--${name} needs a value`);
    out[name] = value;
  }
  return out as T;
}

export function intOption(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return n;
}

/** One line describing where the numbers came from (CPU, cores, RAM, kernel, runtime, commit, load). */
export function machineLine(): string {
  const c = cpus();
  const git = spawnSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8" });
  const dirty = spawnSync("git", ["-C", ROOT, "status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" });
  const commit = git.status === 0 ? git.stdout.trim() + (dirty.stdout.trim() ? "+dirty" : "") : "unknown";
  const runtime = typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node-compatible ${process.version}`;
  const la = loadavg().map((x) => x.toFixed(2)).join(" ");
  return `${c[0]?.model ?? "unknown CPU"} x${c.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, ${runtime}, commit ${commit}, load ${la}`;
}

/** CPU time (user + system) this process has used so far, in ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ---------------------------------------------------------------------------------------------
// The service-CPU benches (bench/*-overhead.ts): a fixture process, a tracer attached to it or
// not, the fixture's CPU time around a workload.

/** Clock ticks per second for /proc/PID/stat (sysconf(_SC_CLK_TCK)). */
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime of a whole process (fields 14 and 15 of /proc/PID/stat, after the comm field), in ms; counted in clock ticks (10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

/**
 * Run time of every live thread of `pid` so far, in ns: the sum of /proc/PID/task/TID/schedstat's
 * first field (ns on CPU, kernel time included). NaN when the process is gone; a thread that ends
 * between the listing and its read is left out (its time is no longer readable anywhere).
 */
export function threadsCpuNs(pid: number): number {
  const byName = threadsCpuNsByName(pid);
  if (byName.size === 0) return Number.NaN; // a live process has at least its main thread
  let ns = 0;
  for (const v of byName.values()) ns += v;
  return ns;
}

/**
 * threadsCpuNs per thread name (/proc/PID/task/TID/comm: "beetrace" is the main thread, then
 * JSC's "JITWorker", "HeapHelper", "JSCWarmUp", mimalloc's "mi-scavenger", Bun's "HTTP Client", …),
 * threads of one name summed. Empty when the process is gone.
 */
export function threadsCpuNsByName(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const t of tasks) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
      byName.set(name, (byName.get(name) ?? 0) + ns);
    } catch {
      // ended meanwhile
    }
  }
  return byName;
}

/** A "Vm..." line of /proc/PID/status in kB (proc(5)); undefined when absent or the process is gone. */
export function statusKb(pid: number, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with the first match of `re` in what `stream` has printed; rejects after `ms` or when the child exits first. */
export function waitForLine(child: ChildProcess, stream: "stdout" | "stderr", re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const src = child[stream];
    if (!src) return reject(new Error(`${stream} is not piped`));
    const timer = setTimeout(() => done(new Error(`no line matching ${re} within ${ms} ms; got:\n${buf}`)), ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`process exited (${code}) before printing ${re}; output:\n${buf}`));
    function done(err?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      src!.off("data", onData);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    src.on("data", onData);
    child.once("exit", onExit);
  });
}

/** Resolves with the child's exit code once it has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Polls `cond` every 20 ms until it gives a value (not undefined/false); throws after `ms`. */
export async function until<T>(cond: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What a child process has printed so far. */
export function watch(p: ChildProcess): { out: () => string; err: () => string } {
  let out = "";
  let err = "";
  p.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  return { out: () => out, err: () => err };
}

/**
 * `beetrace ARGS` started and past its "tracing pid" line. `beetrace` is an executable, or
 * "source" for this checkout's sources (bun src/main.ts).
 */
export async function startTracer(beetrace: string, args: string[], env?: Record<string, string>): Promise<{ proc: ChildProcess; err: () => string }> {
  const [cmd, pre] = beetrace === "source" ? [join(ROOT, "node_modules", ".bin", "bun"), [join(ROOT, "src", "main.ts")]] : [beetrace, []];
  const proc = spawn(cmd, [...pre, ...args], { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env: { ...process.env, ...env } } : {}) });
  const o = watch(proc);
  await until(() => {
    if (proc.exitCode !== null) throw new Error(`tracer exited: ${o.err()}`);
    return /beetrace: tracing pid/.test(o.err());
  }, 60_000, "the tracer's 'tracing pid' line");
  return { proc, err: o.err };
}

/** SIGINT, then wait (bounded) for the tracer to exit. */
export async function stopTracer(proc: ChildProcess): Promise<void> {
  proc.kill("SIGINT");
  await until(() => proc.exitCode !== null || proc.signalCode !== null, 60_000, "the tracer to exit");
}

/**
 * Untraced and traced runs of one workload, `rounds` times each, the order alternating so drift
 * (load, CPU frequency) hits both sides alike; prints each run; returns the medians.
 */
export async function alternatingRounds(
  rounds: number,
  run: (traced: boolean, round: number) => Promise<{ cpuMs: number; spans?: number }>,
): Promise<{ untracedMs: number; tracedMs: number }> {
  const untraced: number[] = [];
  const traced: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? [false, true] : [true, false]) {
      const r = await run(t, round);
      (t ? traced : untraced).push(r.cpuMs);
      console.log(`round ${round + 1} ${t ? "traced  " : "untraced"}: service CPU ${r.cpuMs.toFixed(0)} ms${t && r.spans !== undefined ? `, ${r.spans} spans` : ""}`);
    }
  }
  return { untracedMs: summarize(untraced).median, tracedMs: summarize(traced).median };
}

/**
 * Per-program BPF run counts and run time over a stretch of work (kernel.bpf_stats_enabled,
 * bpftool prog show): `start()` before, `stop()` after gives runs and ns per run of the programs
 * whose names start with `prefix`, over that stretch. Other tracers on the host running programs
 * of the same names count too: run the bench alone.
 */
export function bpfStats(prefix: string): { stop: () => { name: string; runs: number; nsPerRun: number }[] } {
  interface ProgStat {
    id: number;
    name: string;
    run_cnt?: number;
    run_time_ns?: number;
  }
  const show = (): Map<number, ProgStat> => {
    const r = spawnSync("bpftool", ["prog", "show", "-j"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`bpftool prog show failed: ${r.stderr || r.error}`);
    return new Map((JSON.parse(r.stdout) as ProgStat[]).map((p) => [p.id, p]));
  };
  const old = readFileSync("/proc/sys/kernel/bpf_stats_enabled", "utf8").trim();
  spawnSync("sysctl", ["-q", "kernel.bpf_stats_enabled=1"]);
  const before = show();
  return {
    stop: () => {
      const after = show();
      spawnSync("sysctl", ["-q", `kernel.bpf_stats_enabled=${old}`]);
      const out: { name: string; runs: number; nsPerRun: number }[] = [];
      for (const [id, p] of after) {
        if (!p.name.startsWith(prefix)) continue;
        const runs = (p.run_cnt ?? 0) - (before.get(id)?.run_cnt ?? 0);
        const ns = (p.run_time_ns ?? 0) - (before.get(id)?.run_time_ns ?? 0);
        if (runs > 0) out.push({ name: p.name, runs, nsPerRun: ns / runs });
      }
      return out;
    },
  };
}

/**
 * A percentile bootstrap interval (Efron & Tibshirani, "An Introduction to the Bootstrap", ch. 13)
 * of `stat` over `rows`, resampled with replacement `resamples` times: [lo, hi] at the two-sided
 * `level`. Rows stay whole, so paired measurements (one round's windows) are resampled together.
 * Seeded (xorshift32), so a run prints the same interval for the same data.
 */
export function bootstrapInterval<T>(rows: readonly T[], stat: (sample: T[]) => number, resamples = 2000, level = 0.95, seed = 1): [number, number] {
  if (rows.length === 0) return [Number.NaN, Number.NaN];
  let x = seed | 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const stats: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const sample = Array.from({ length: rows.length }, () => rows[Math.floor(next() * rows.length)]!);
    const v = stat(sample);
    if (Number.isFinite(v)) stats.push(v);
  }
  stats.sort((a, b) => a - b);
  return [percentile(stats, (100 * (1 - level)) / 2), percentile(stats, 100 - (100 * (1 - level)) / 2)];
}
