/**
 * @module bench/propagate-overhead — the client-side CPU `--propagate` adds per HTTP/1 request.
 *
 *   node_modules/.bin/bun bench/propagate-overhead.ts [--requests 20000] [--rounds 3]
 *       [--beetrace dist/beetrace|source] [--path /call]
 *
 * Root (uprobes, sock_ops, sk_msg). The workload is tests/fixtures/go/propagate: the driver sends
 * GET /call to A over one keep-alive connection, A calls B (GET /echo, one keep-alive
 * connection), so each request costs A one server span, one client span and, with --propagate,
 * one sk_msg run that inserts the header (bpf/propagate.bpf.c: map lookups, a pull, a copy of at
 * most 4 KiB, the header scan in bpf_loop, a push) plus the tcp_bpf send path for every write on
 * that connection. A's CPU (utime + stime of all threads, /proc/PID/stat; the sk_msg program runs
 * in A's write(2)) is read just before the first request and just after the last, traced
 * without and with --propagate, in alternating rounds on fresh processes; the difference per
 * request is the propagation's cost. `--path /call-post` measures a 16 KiB POST body instead
 * (several writes per request, only the first inspected). B is not traced.
 * /proc/PID/stat counts in clock ticks (10 ms): keep requests × per-request cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFixture } from "../tests/harness/go.ts";
import { intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, summarize, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { requests: "20000", rounds: "3", beetrace: join(ROOT, "dist", "beetrace"), path: "/call" });
const REQUESTS = Math.max(1, intOption(opts.requests, "requests"));
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

async function start(bin: string, args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const o = watch(proc);
  const m = await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(o.out()) ?? (proc.exitCode !== null ? (() => { throw new Error(`fixture exited: ${o.err()}`); })() : undefined), 30_000, "the fixture");
  return { proc, port: Number(m[1]) };
}

async function oneRun(bin: string, propagate: boolean, round: number): Promise<{ cpuMs: number; log: string }> {
  const b = await start(bin, []);
  let a: { proc: ChildProcess; port: number } | undefined;
  let tracer: ChildProcess | undefined;
  const capture = join(tmpdir(), `beetrace-bench-propagate-${process.pid}-${round}.cbor`);
  try {
    a = await start(bin, ["-next", `http://127.0.0.1:${b.port}`]);
    const tr = await startTracer(opts.beetrace, ["-v", "attach", "--pid", String(a.proc.pid), "--out", capture, ...(propagate ? ["--propagate"] : [])]);
    tracer = tr.proc;
    const base = `http://127.0.0.1:${a.port}`;
    // Warm-up outside the measurement: both keep-alive connections exist (and are watched).
    await (await fetch(`${base}${opts.path}`)).text();
    const pid = a.proc.pid!;
    const before = processCpuMs(pid);
    for (let i = 0; i < REQUESTS; i++) {
      const r = await fetch(`${base}${opts.path}`);
      if (r.status !== 200) throw new Error(`${opts.path}: ${r.status} ${await r.text()}`);
      await r.text();
    }
    const cpuMs = processCpuMs(pid) - before;
    await stopTracer(tr.proc);
    return { cpuMs, log: tr.err().split("\n").filter((l) => l.startsWith("propagation: ") && !l.includes("traceparent into")).join("; ") };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill("SIGKILL");
    a?.proc.kill("SIGTERM");
    b.proc.kill("SIGTERM");
    rmSync(capture, { force: true });
  }
}

console.log(`propagate-overhead: ${machineLine()}`);
console.log(`workload: ${REQUESTS} × GET ${opts.path} (A → B, keep-alive), A traced; ${ROUNDS} rounds`);
const goVersion = spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
const bin = await buildFixture({ dir: "tests/fixtures/go/propagate", toolchain: goVersion, mode: "default" });
const plain: number[] = [];
const prop: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const p of round % 2 === 0 ? [false, true] : [true, false]) {
    const r = await oneRun(bin, p, round);
    (p ? prop : plain).push(r.cpuMs);
    console.log(`round ${round + 1} ${p ? "--propagate" : "traced     "}: A's CPU ${r.cpuMs.toFixed(0)} ms${r.log ? ` (${r.log})` : ""}`);
  }
}
const u = summarize(plain).median;
const t = summarize(prop).median;
console.log(`A's CPU per request: traced ${((u * 1000) / REQUESTS).toFixed(1)} µs, traced with --propagate ${((t * 1000) / REQUESTS).toFixed(1)} µs`);
console.log(`added by --propagate: ${(((t - u) * 1000) / REQUESTS).toFixed(1)} µs per request (median of ${ROUNDS} rounds)`);
