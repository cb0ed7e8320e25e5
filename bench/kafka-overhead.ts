/**
 * @module bench/kafka-overhead — the service CPU the kafka-go probes add per message.
 *
 *   node_modules/.bin/bun bench/kafka-overhead.ts [--messages 2000] [--batch 1] [--rounds 3] [--beetrace dist/beetrace|source]
 *
 * Root (uprobes), Java 17 and Maven for the broker (scripts/services/kafka.sh starts it, or reuses
 * a running one). The workload is tests/fixtures/go/kafka: `--messages` messages produced through
 * its HTTP handler, `--batch` per WriteMessages call (one request each), and consumed by both of
 * its readers (FetchMessage without a group, ReadMessage in a group). So one message costs the
 * traced service: 1/batch send spans (entry + each RET hit of WriteMessages), 2 receive spans
 * (entry + RET of FetchMessage, per reader), and 1/batch HTTP server spans. The service's CPU
 * (utime + stime of all its threads, /proc/PID/stat) is read just before the first request and
 * just after the last message was consumed, for the same workload untraced and traced, in
 * alternating rounds on a fresh process and topic each; the difference per message is printed.
 * /proc/PID/stat counts in clock ticks (10 ms), so keep messages × per-message cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture, newestToolchain } from "../tests/harness/go.ts";
import { alternatingRounds, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { messages: "2000", batch: "1", rounds: "3", beetrace: join(ROOT, "dist", "beetrace") });
const MESSAGES = intOption(opts.messages, "messages");
const BATCH = Math.max(1, intOption(opts.batch, "batch"));
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
const REQUESTS = Math.ceil(MESSAGES / BATCH);
const TOTAL = REQUESTS * BATCH;
const BROKER_PORT = Number(process.env.BEETRACE_KAFKA_PORT ?? 39092);
async function oneRun(bin: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const topic = `beetrace-bench-${process.pid}-${round}-${traced ? "t" : "u"}`;
  const started = spawnSync("bash", [join(ROOT, "scripts", "services", "kafka.sh"), "start", topic], { encoding: "utf8", timeout: 280_000 });
  if (started.status !== 0) throw new Error(`kafka.sh start failed:\n${started.stderr}`);
  const fx = spawn(bin, ["-broker", `127.0.0.1:${BROKER_PORT}`, "-topic", topic, "-group", `${topic}-group`], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-kafka-${process.pid}-${round}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? undefined, 15_000, "the fixture"))[1]);
    if (traced) {
      const tr = await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture]);
      tracer = tr.proc;
      const tro = tr;
    }
    const base = `http://127.0.0.1:${port}`;
    await (await fetch(`${base}/consume`)).text();
    await until(() => /ready plain/.test(fxo.out()) && /ready group/.test(fxo.out()), 10_000, "the consumer loops");
    const before = processCpuMs(fx.pid!);
    for (let i = 0; i < REQUESTS; i++) {
      const r = await fetch(`${base}/produce?key=k${i}&n=${BATCH}`);
      if (r.status !== 200) throw new Error(`/produce: ${r.status} ${await r.text()}`);
      await r.text();
    }
    await until(() => (fxo.out().match(/^consumed /gm)?.length ?? 0) >= 2 * TOTAL, 300_000, `${2 * TOTAL} consumed messages`);
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

console.log(`kafka-overhead: ${machineLine()}`);
console.log(`workload: ${TOTAL} messages, ${BATCH} per WriteMessages call (${REQUESTS} requests), consumed by 2 readers; ${ROUNDS} rounds`);
const bin = await buildFixture({ dir: "tests/fixtures/go/kafka", toolchain: newestToolchain(), mode: "default" });
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => oneRun(bin, traced, round));
console.log(`service CPU per message: untraced ${((u * 1000) / TOTAL).toFixed(1)} µs, traced ${((t * 1000) / TOTAL).toFixed(1)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / TOTAL).toFixed(1)} µs per message (median of ${ROUNDS} rounds; includes 1/${BATCH} HTTP server span per message)`);
