/**
 * @module bench/memory — the tracer's resident memory: idle after start-up, and under a fixed
 * load. Run through bench/memory.sh (builds the sample and the load generator, copies the
 * executables so a rebuild during the run cannot switch them).
 *
 * Per configuration and round, on a freshly started sample service (tests/fixtures/go/sample):
 * 1. `beetrace attach --pid PID --out TMP` (+ --ringbuf-size when given); start-up peak =
 *    VmHWM once the "tracing pid" line is out (parsing the target, the decoder, libbpf's load);
 * 2. idle: VmRSS sampled every 250 ms for --idle seconds after that line, reported as the last
 *    value and the maximum after the first second, with a breakdown from /proc/PID/smaps
 *    (bench/smaps.ts): the executable's own pages, anonymous memory (JS heap, malloc), the BPF
 *    ring buffer (kernel memory mapped in: its data pages are mapped twice, so a 4 MiB ring
 *    shows as 8 MiB) and the rest; and the tracer's CPU while idle, in ms per second, from the
 *    window's second second on (the first holds the start-up trims; /proc/PID/stat counts in
 *    10 ms ticks, so use --idle 15 or more for this number);
 * 3. load: bench/loadgen at --rate req/s on --route for --duration s (after 2 s warm-up),
 *    VmRSS sampled every 200 ms: max and median over the run, VmHWM at the end (includes
 *    start-up), spans written (from the tracer's exit line) and achieved request rate, and the
 *    tracer's CPU per span (/proc/PID/stat from the load's start until the tracer is idle again),
 *    and the same split per thread name (schedstat: main thread, JIT, GC helpers, allocator;
 *    JSC ends some JIT worker threads during the run, and an ended thread's CPU is missing
 *    from its name's share, never from the process total);
 * 4. with --steady-after S: the load runs S seconds longer, and the tracer's CPU per span is
 *    also taken over the last --duration seconds alone (process CPU over that window, spans =
 *    achieved rate x window): the hot path once JSC has compiled it, which a 10 s run's total
 *    (compilation ~0.3-0.45 s of CPU) does not show.
 *
 * Configurations: `beetrace` (the executable under test), `notrim` (the same with
 * BEETRACE_NO_TRIM=1: start-up memory kept, src/trace/footprint.ts), `before` (--before PATH).
 * `--output otlp` streams the spans over OTLP/HTTP protobuf to a receiver in this process that
 * reads and discards each request (instead of writing a capture file).
 *
 *   bun bench/memory.bench.ts --beetrace PATH [--before PATH] [--configs beetrace,notrim,before]
 *       [--rate 20000] [--duration 10] [--idle 5] [--conns 16] [--route /hello] [--rounds 1]
 *       [--ringbuf ""] [--output file|otlp] [--steady-after 0]
 */
import { spawn } from "node:child_process";
import { existsSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { BENCH_CACHE, exited, intOption, machineLine, parseOptions, percentile, processCpuMs, statusKb, threadsCpuNsByName, waitForLine } from "./lib.ts";
import { readSmaps } from "./smaps.ts";

type Config = "beetrace" | "notrim" | "before";

const o = parseOptions(process.argv.slice(2), {
  beetrace: join(BENCH_CACHE, "beetrace"),
  before: "",
  configs: "beetrace,notrim",
  rate: "20000",
  duration: "10",
  idle: "5",
  conns: "16",
  route: "/hello",
  rounds: "1",
  ringbuf: "",
  output: "file",
  "steady-after": "0",
  sample: join(BENCH_CACHE, "sample"),
  loadgen: join(BENCH_CACHE, "loadgen"),
});
const configs = o.configs.split(",").filter(Boolean) as Config[];
for (const c of configs) if (!["beetrace", "notrim", "before"].includes(c)) throw new Error(`unknown config ${c}`);
if (configs.includes("before") && !o.before) throw new Error("--configs before needs --before PATH");

if (o.output !== "file" && o.output !== "otlp") throw new Error(`--output is file or otlp, not ${o.output}`);
let otlpBytes = 0;
const receiver =
  o.output === "otlp"
    ? Bun.serve({
        port: 0,
        async fetch(req) {
          otlpBytes += (await req.arrayBuffer()).byteLength;
          return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
        },
      })
    : undefined;

const mib = (kb: number) => kb / 1024;
const f1 = (x: number) => x.toFixed(1);




/** VmRSS every `everyMs` until `stop` resolves. */
async function sampleRss(pid: number, everyMs: number, stop: Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  let done = false;
  void stop.then(() => (done = true));
  while (!done) {
    try {
      out.push(statusKb(pid, "VmRSS") ?? 0);
    } catch {
      break; // exited
    }
    await Bun.sleep(everyMs);
  }
  return out;
}

/** The smaps breakdown, in KiB: the executable's pages, anonymous, the BPF ring (bpf-map mappings), the rest. */
function breakdown(pid: number, exePath: string): { exe: number; anon: number; ring: number; other: number; total: number } {
  const maps = readSmaps(pid);
  let exe = 0, anon = 0, ring = 0, total = 0;
  for (const m of maps) {
    total += m.rssKb;
    if (m.name === exePath || m.name === `${exePath} (deleted)`) exe += m.rssKb - m.anonKb;
    else if (m.name.includes("bpf-map") || m.name.includes("bpf-ringbuf")) ring += m.rssKb;
    else anon += m.anonKb;
  }
  // Anonymous copies inside the executable's mappings (.data, relocations) count as anonymous.
  for (const m of maps) if (m.name === exePath) anon += m.anonKb;
  return { exe, anon, ring, other: total - exe - anon - ring, total };
}

interface Row {
  config: Config;
  round: number;
  startPeak: number;
  idleLast: number;
  idleMax: number;
  idle: ReturnType<typeof breakdown>;
  loadMax: number;
  loadMedian: number;
  hwmEnd: number;
  loaded: ReturnType<typeof breakdown>;
  spans: number;
  achieved: number;
  /** tracer CPU (utime + stime) from the load's start until idle again, per span */
  cpuUsPerSpan: number;
  /** tracer CPU while the service gets no request, ms per second (idle window after its first second) */
  idleCpuMsPerS: number;
  /** tracer CPU per span over the load's last --duration seconds (--steady-after), NaN without */
  steadyUsPerSpan: number;
  /** the same CPU per span as cpuUsPerSpan, per thread name (schedstat, ns resolution) */
  threadUsPerSpan: Map<string, number>;
}

async function measure(config: Config, round: number): Promise<Row> {
  const sample = spawn(o.sample, [], { stdio: ["ignore", "pipe", "inherit"] });
  const addr = (await waitForLine(sample, "stdout", /listening on (\S+)/, 10_000))[1]!;
  const exe = config === "before" ? o.before : o.beetrace;
  const capture = join(tmpdir(), `beetrace-bench-memory-${process.pid}.cbor`);
  const output = receiver ? ["--otlp", `http://127.0.0.1:${receiver.port}`] : ["--out", capture];
  const args = ["attach", "--pid", String(sample.pid), ...output, ...(o.ringbuf ? ["--ringbuf-size", o.ringbuf] : [])];
  const env = { ...process.env, ...(config === "notrim" ? { BEETRACE_NO_TRIM: "1" } : {}) };
  const tracer = spawn(exe, args, { stdio: ["ignore", "ignore", "pipe"], env });
  try {
    await waitForLine(tracer, "stderr", /tracing pid \d+/, 60_000);
    const tp = tracer.pid!;
    const startPeak = statusKb(tp, "VmHWM") ?? 0;
    const idleMs = intOption(o.idle, "idle") * 1000;
    // The idle window's first second holds the start-up trims (trace/footprint.ts): its CPU is not idle CPU.
    const idleSamples = await sampleRss(tp, 250, Bun.sleep(Math.min(1000, idleMs)));
    const idleCpu0 = processCpuMs(tp);
    idleSamples.push(...(await sampleRss(tp, 250, Bun.sleep(Math.max(0, idleMs - 1000)))));
    const idleCpuMsPerS = idleMs > 1000 ? (processCpuMs(tp) - idleCpu0) / ((idleMs - 1000) / 1000) : NaN;
    const idle = breakdown(tp, realpathSync(exe));
    const afterFirst = idleSamples.slice(4);
    const cpu0 = processCpuMs(tp);
    const threads0 = threadsCpuNsByName(tp);
    const steadyAfter = intOption(o["steady-after"], "steady-after");
    const duration = intOption(o.duration, "duration");
    const loadgen = spawn(o.loadgen, ["-url", `http://${addr}${o.route}`, "-rate", o.rate, "-duration", `${steadyAfter + duration}s`, "-warmup", "2s", "-conns", o.conns], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    loadgen.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const loadDone = exited(loadgen);
    // The steady window: from the warm-up's end plus --steady-after to the load's end.
    let steadyCpu0 = NaN;
    let steadyT0 = NaN;
    if (steadyAfter > 0) {
      void Bun.sleep((2 + steadyAfter) * 1000).then(() => {
        steadyCpu0 = processCpuMs(tp);
        steadyT0 = performance.now();
      });
    }
    const loadSamples = await sampleRss(tp, 200, loadDone);
    const steadyCpu1 = processCpuMs(tp);
    const steadyS = (performance.now() - steadyT0) / 1000;
    const loaded = breakdown(tp, realpathSync(exe));
    const hwmEnd = statusKb(tp, "VmHWM") ?? 0;
    // The tracer's CPU for the load's spans: until it has gone idle again (the exporter's last
    // batch leaves up to its batch delay after the load), at most 10 s.
    let cpu1 = processCpuMs(tp);
    for (let t = 0; t < 50; t++) {
      await Bun.sleep(200);
      const now = processCpuMs(tp);
      if (now === cpu1) break;
      cpu1 = now;
    }
    const threads1 = threadsCpuNsByName(tp);
    const load = JSON.parse(out) as { achievedRate: number };
    const summary = waitForLine(tracer, "stderr", /wrote (\d+) spans?/, 30_000);
    tracer.kill("SIGINT");
    const spans = Number((await summary)[1]);
    await exited(tracer);
    const sorted = [...loadSamples].sort((a, b) => a - b);
    return {
      config,
      round,
      startPeak,
      idleLast: idleSamples.at(-1) ?? 0,
      idleMax: Math.max(...(afterFirst.length ? afterFirst : idleSamples)),
      idle,
      loadMax: Math.max(...loadSamples),
      loadMedian: percentile(sorted, 50),
      hwmEnd,
      loaded,
      spans,
      achieved: load.achievedRate,
      cpuUsPerSpan: spans > 0 ? ((cpu1 - cpu0) * 1000) / spans : NaN,
      steadyUsPerSpan: ((steadyCpu1 - steadyCpu0) * 1000) / (load.achievedRate * steadyS),
      idleCpuMsPerS,
      threadUsPerSpan: new Map([...threads1].map(([name, ns]) => [name, spans > 0 ? (ns - (threads0.get(name) ?? 0)) / 1000 / spans : NaN])),
    };
  } finally {
    if (tracer.exitCode === null && tracer.signalCode === null) {
      tracer.kill("SIGINT");
      await exited(tracer);
    }
    sample.kill("SIGTERM");
    await exited(sample);
    if (existsSync(capture)) rmSync(capture);
  }
}

console.log(machineLine());
const steady = intOption(o["steady-after"], "steady-after");
console.log(`memory: ${o.route} at ${o.rate} req/s for ${o.duration} s (+2 s warm-up${steady > 0 ? `, +${steady} s before the steady window` : ""}), ${o.conns} connections, idle ${o.idle} s; ring ${o.ringbuf || "default"}; output ${o.output}; configs ${configs.join(",")}`);
const rows: Row[] = [];
for (let r = 1; r <= intOption(o.rounds, "rounds"); r++) {
  for (const c of configs) {
    const row = await measure(c, r);
    rows.push(row);
    const b = (x: ReturnType<typeof breakdown>) => `exe ${f1(mib(x.exe))} + anon ${f1(mib(x.anon))} + ring ${f1(mib(x.ring))} + other ${f1(mib(x.other))}`;
    const threads = [...row.threadUsPerSpan].filter(([, us]) => us >= 0.005).sort((a, b) => b[1] - a[1]);
    console.log(
      `${c.padEnd(8)} round ${r}: start-up peak ${f1(mib(row.startPeak))} MiB | idle ${f1(mib(row.idleLast))} (max ${f1(mib(row.idleMax))}) MiB = ${b(row.idle)} | ` +
        `load: max ${f1(mib(row.loadMax))}, median ${f1(mib(row.loadMedian))} MiB = ${b(row.loaded)}; VmHWM ${f1(mib(row.hwmEnd))} MiB; ` +
        `${row.spans} spans, ${row.achieved.toFixed(0)} req/s achieved; tracer CPU ${row.cpuUsPerSpan.toFixed(2)} µs/span${steady > 0 ? ` (steady window ${row.steadyUsPerSpan.toFixed(2)})` : ""}, idle ${row.idleCpuMsPerS.toFixed(1)} ms/s`,
    );
    console.log(`${"".padEnd(8)} per thread, µs/span over the load: ${threads.map(([n, us]) => `${n} ${us.toFixed(2)}`).join(", ")}`);
  }
}
console.log(`\nmedians over rounds (MiB; CPU µs/span): config | start-up peak | idle | idle excl. ring | load max | load max excl. ring | VmHWM at end | tracer CPU per span | idle CPU ms/s${steady > 0 ? " | steady window CPU per span" : ""}`);
for (const c of configs) {
  const rs = rows.filter((r) => r.config === c);
  const med = (f: (r: Row) => number) => f1(mib(percentile([...rs.map(f)].sort((a, b) => a - b), 50)));
  console.log(
    `${c.padEnd(8)} | ${med((r) => r.startPeak)} | ${med((r) => r.idleLast)} | ${med((r) => r.idleLast - r.idle.ring)} | ${med((r) => r.loadMax)} | ${med((r) => r.loadMax - r.loaded.ring)} | ${med((r) => r.hwmEnd)} | ${percentile([...rs.map((r) => r.cpuUsPerSpan)].sort((a, b) => a - b), 50).toFixed(2)} | ${percentile([...rs.map((r) => r.idleCpuMsPerS)].sort((a, b) => a - b), 50).toFixed(1)}${steady > 0 ? ` | ${percentile([...rs.map((r) => r.steadyUsPerSpan)].sort((a, b) => a - b), 50).toFixed(2)}` : ""}`,
  );
}
if (receiver) {
  console.log(`OTLP receiver: ${(otlpBytes / 1e6).toFixed(1)} MB received`);
  void receiver.stop(true);
}
