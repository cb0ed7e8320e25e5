/**
 * @module bench/http3-overhead — the service CPU the HTTP/3 (quic-go) probes add per request.
 *
 *   node_modules/.bin/bun bench/http3-overhead.ts [--requests 5000] [--rounds 3]
 *                                                 [--fixture quic-0.66] [--beetrace dist/beetrace|source]
 *
 * Root (uprobes). The workload is tests/fixtures/go/http3 (an HTTP/3 server and quic-go's own
 * client in one process): one GET /bench?n=N makes N HTTP/3 requests for /hello in a row from one
 * goroutine. So one request costs the traced service one CLIENT and one SERVER span: on the
 * server the handler closure's entry and its deferred recover (2 emulated hits); on the client
 * RoundTripOpt's entry and the nested ClientConn.RoundTrip's (2 emulated) and both functions' RETs
 * (2 single-stepped) (docs: .helpers/http3/docs.md, "HTTP/3"). The service's CPU (utime + stime
 * of all its threads, /proc/PID/stat) is read just before and just after the request, for the
 * same workload untraced and traced (attach --pid), in alternating rounds on a fresh process
 * each; the difference per request is printed. /proc/PID/stat counts in clock ticks (10 ms): keep
 * requests × per-request cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture, fixtureRelease } from "../tests/harness/go.ts";
import { alternatingRounds, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { requests: "5000", rounds: "3", fixture: "quic-0.66", beetrace: join(ROOT, "dist", "beetrace") });
const REQUESTS = intOption(opts.requests, "requests");
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
/** The fixture variants and the toolchain each is built with (as tests/e2e/http3.test.ts). */
const TOOLCHAINS: Record<string, string> = { "quic-0.59": "go1.25.14", "quic-0.65": "go1.26.11", "quic-0.66": "go1.27.4" };
const toolchain = TOOLCHAINS[opts.fixture];
if (toolchain === undefined) throw new Error(`--fixture: one of ${Object.keys(TOOLCHAINS).join(", ")}`);
async function measure(bin: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const fx = spawn(bin, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-http3-${process.pid}-${round}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? undefined, 15_000, "the fixture"))[1]);
    const base = `http://127.0.0.1:${port}`;
    // Warm up (the QUIC connection, first-request allocations) before measuring, untraced and traced alike.
    await (await fetch(`${base}/bench?n=50`)).text();
    if (traced) {
      const tr = await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture]);
      tracer = tr.proc;
      const tro = tr;
    }
    const before = processCpuMs(fx.pid!);
    const r = await fetch(`${base}/bench?n=${REQUESTS}`, { signal: AbortSignal.timeout(600_000) });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`/bench: ${r.status} ${body}`);
    const cpuMs = processCpuMs(fx.pid!) - before;
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

console.log(`http3-overhead: ${machineLine()}`);
console.log(`workload: ${REQUESTS} HTTP/3 requests (${opts.fixture}, ${toolchain}), client and server in one process; ${ROUNDS} rounds`);
const bin = await buildFixture({ ...fixtureRelease("http3", opts.fixture), toolchain, mode: "default" });
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => measure(bin, traced, round));
console.log(`service CPU per request: untraced ${((u * 1000) / REQUESTS).toFixed(1)} µs, traced ${((t * 1000) / REQUESTS).toFixed(1)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / REQUESTS).toFixed(1)} µs per request = one CLIENT + one SERVER span (median of ${ROUNDS} rounds)`);
