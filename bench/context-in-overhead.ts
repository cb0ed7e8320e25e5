/**
 * @module bench/context-in-overhead — what reading incoming trace context costs the traced
 * service per request (issue 9 target: within 2 µs of not reading it).
 *
 *   node_modules/.bin/bun bench/context-in-overhead.ts [--requests 20000] [--rounds 3]
 *                                                     [--headers 10] [--beetrace dist/beetrace|source]
 *
 * Root (uprobes). The sample service (tests/fixtures/go/sample, default build: Go ≥ 1.24's Swiss
 * table header maps), GET /hello on one keep-alive connection, each request with `--headers`
 * extra header lines besides the client's own (a realistic request: a user agent, cookies, ids),
 * in two kinds: without a traceparent (the walk visits every slot and finds nothing) and with
 * one (the walk finds it, the parse runs, the span joins the caller's trace). The tracer runs
 * with context in (the default) and with `OTEL_PROPAGATORS=none` (bpf/include/go_headers.bpf.h's
 * bee_context_in = 0: no walk, no parse), in alternating rounds on a fresh process each; the
 * service's CPU (utime + stime, /proc/PID/stat) is read around the requests, and the server entry
 * program's own run time (bpf_stats: the part context in changes, without the service's noise).
 * Prints both per request and the differences; asserts nothing.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSample } from "../tests/e2e/harness.ts";
import { bpfStats, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, summarize, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { requests: "20000", rounds: "3", headers: "10", beetrace: join(ROOT, "dist", "beetrace") });
const REQUESTS = intOption(opts.requests, "requests");
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const EXTRA = intOption(opts.headers, "headers");
/** A W3C traceparent with a sampled caller (W3C Trace Context, "traceparent Header"). */
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

function headers(withTraceparent: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i < EXTRA; i++) h[`X-Extra-${i}`] = `value-${i}`;
  if (withTraceparent) h.traceparent = TRACEPARENT;
  return h;
}

type Config = "context-in" | "propagators-none";

/** Also the server entry program's own time per run (bpf_stats): what context in costs, without the service's noise. */
async function run(bin: string, config: Config, withTraceparent: boolean, round: number): Promise<{ cpuMs: number; entryNs: number }> {
  const fx = spawn(bin, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-context-in-${process.pid}-${round}.cbor`);
  let tracer: Awaited<ReturnType<typeof startTracer>> | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? undefined, 15_000, "the sample"))[1]);
    tracer = await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture], config === "propagators-none" ? { OTEL_PROPAGATORS: "none" } : undefined);
    const url = `http://127.0.0.1:${port}/hello`;
    const h = headers(withTraceparent);
    for (let i = 0; i < 200; i++) await (await fetch(url, { headers: h })).text(); // warm-up
    const stats = bpfStats("nethttp_server_entry");
    const before = processCpuMs(fx.pid!);
    for (let i = 0; i < REQUESTS; i++) {
      const r = await fetch(url, { headers: h });
      if (r.status !== 200) throw new Error(`/hello: ${r.status}`);
      await r.text();
    }
    const cpuMs = processCpuMs(fx.pid!) - before;
    const entry = stats.stop().find((p) => p.name === "nethttp_server_entry");
    return { cpuMs, entryNs: entry?.nsPerRun ?? Number.NaN };
  } finally {
    if (tracer) await stopTracer(tracer.proc).catch(() => tracer?.proc.kill("SIGKILL"));
    fx.kill("SIGTERM");
    rmSync(capture, { force: true });
  }
}

console.log(`context-in-overhead: ${machineLine()}`);
console.log(`workload: ${REQUESTS} × GET /hello with ${EXTRA} extra headers, one keep-alive connection; ${ROUNDS} rounds`);
const bin = await buildSample({ mode: "default" });
for (const withTraceparent of [false, true]) {
  const ms: Record<Config, number[]> = { "context-in": [], "propagators-none": [] };
  const ns: Record<Config, number[]> = { "context-in": [], "propagators-none": [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Config[] = round % 2 === 0 ? ["propagators-none", "context-in"] : ["context-in", "propagators-none"];
    for (const c of order) {
      const r = await run(bin, c, withTraceparent, round);
      ms[c].push(r.cpuMs);
      ns[c].push(r.entryNs);
      console.log(`round ${round + 1} ${withTraceparent ? "with traceparent   " : "without traceparent"} ${c.padEnd(16)}: service CPU ${r.cpuMs.toFixed(0)} ms, entry program ${r.entryNs.toFixed(0)} ns/run`);
    }
  }
  const on = (summarize(ms["context-in"]).median * 1000) / REQUESTS;
  const off = (summarize(ms["propagators-none"]).median * 1000) / REQUESTS;
  console.log(`${withTraceparent ? "with" : "without"} traceparent: service CPU per request ${on.toFixed(2)} µs (context in) vs ${off.toFixed(2)} µs (OTEL_PROPAGATORS=none): +${(on - off).toFixed(2)} µs`);
  const eOn = summarize(ns["context-in"]).median / 1000;
  const eOff = summarize(ns["propagators-none"]).median / 1000;
  console.log(`${withTraceparent ? "with" : "without"} traceparent: server entry program ${eOn.toFixed(2)} µs (context in) vs ${eOff.toFixed(2)} µs: +${(eOn - eOff).toFixed(2)} µs (bpf_stats, median)`);
}
