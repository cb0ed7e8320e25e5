/**
 * @module bench/soak — a long run at a fixed high request rate with OTLP to the real
 * OpenTelemetry Collector, which is killed (SIGKILL) and restarted during the run. It answers
 * two questions:
 *
 * 1. Is every span delivered exactly once? The tracer writes a capture file (`--out`) next to
 *    the OTLP stream (`--otlp`), so the capture is the list of spans it produced. At the end
 *    the span ids the Collector wrote (its file exporter, one output file per incarnation) are
 *    compared with the capture's: lost = in the capture, never received; duplicates = received
 *    more than once; unknown = received, not in the capture. The tracer's own report is checked
 *    too: "N sent" at exit + spans left in the spill and sent afterwards with `beetrace export`
 *    must equal what the Collector received.
 * 2. Does the tracer's memory stay flat? Its RSS (/proc/PID/status VmRSS) is sampled every
 *    --rss-every seconds; the summary gives the series, its spread, and the least-squares slope
 *    after the first minute (the warm-up: JIT, the ring and the exporter's buffers filling).
 *
 * Only loopback addresses; every phase is bounded in time; it stops by itself. Needs root
 * (uprobes), Go (sample, loadgen, Collector) and dist/beetrace. Command and options: bench/README.md.
 *
 * A note on duplicates: OTLP delivery is at-least-once. The Collector writes a request to its
 * file and then answers; a SIGKILL between the two leaves the spans in the file while the
 * tracer sees a failed request and sends them again. Such duplicates are counted separately
 * ("written in the killed Collector's last requests"); any other duplicate is a tracer bug.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Collector, ensureCollector, freePort, readCollectorJson } from "../scripts/collector/collector.ts";
import { openCapture } from "../src/capture/reader.ts";
import { buildSample } from "../tests/e2e/harness.ts";
import { BENCH_CACHE, ROOT, exited, machineLine, parseOptions, statusKb } from "./lib.ts";

interface Opts {
  minutes: number;
  rate: number;
  conns: number;
  route: string;
  kills: number;
  downS: number;
  rssEveryS: number;
  protocol: "http/protobuf" | "grpc";
  beetrace: string;
  keep: boolean;
}

function num(v: string, name: string, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: ${JSON.stringify(v)} is not a number ≥ ${min}`);
  return n;
}

function options(): Opts {
  const a = parseOptions(Bun.argv.slice(2), {
    minutes: "10",
    rate: "3000",
    conns: "16",
    route: "/hello",
    kills: "2",
    down: "30",
    "rss-every": "5",
    protocol: "http/protobuf",
    beetrace: join(ROOT, "dist", "beetrace"),
    keep: "no",
  });
  if (a.protocol !== "http/protobuf" && a.protocol !== "grpc") throw new Error(`--protocol: http/protobuf or grpc, got ${a.protocol}`);
  return {
    minutes: num(a.minutes, "minutes", 0.1),
    rate: num(a.rate, "rate", 1),
    conns: Math.round(num(a.conns, "conns", 1)),
    route: a.route,
    kills: Math.round(num(a.kills, "kills", 0)),
    downS: num(a.down, "down", 1),
    rssEveryS: num(a["rss-every"], "rss-every", 0.5),
    protocol: a.protocol,
    beetrace: a.beetrace,
    keep: a.keep === "yes",
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** utime + stime of a process in seconds (proc(5) /proc/PID/stat fields 14, 15; USER_HZ = 100). */
function cpuS(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}


/** Collects a child's stream as text (bounded: keeps the first and the last 256 KiB). */
function collect(child: ChildProcess, stream: "stdout" | "stderr"): () => string {
  let head = "";
  let tail = "";
  child[stream]!.setEncoding("utf8").on("data", (d: string) => {
    if (head.length < 256 << 10) head += d;
    else tail = (tail + d).slice(-(256 << 10));
  });
  return () => head + tail;
}

async function waitUntil<T>(cond: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function goBuild(dir: string, out: string): void {
  const r = spawnSync("go", ["build", "-trimpath", "-o", out, "."], { cwd: dir, encoding: "utf8", env: { ...process.env, GOWORK: "off", GOFLAGS: "-buildvcs=false", CGO_ENABLED: "0" } });
  if (r.status !== 0) throw new Error(`go build in ${dir} failed:\n${r.stderr}`);
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = options();
  if (process.getuid?.() !== 0) throw new Error("soak needs root (the tracer attaches uprobes)");
  if (!existsSync(o.beetrace)) throw new Error(`${o.beetrace} is missing: node_modules/.bin/bun build.ts`);
  const durationS = Math.round(o.minutes * 60);
  // Outages evenly spread: kill k at k/(kills+1) of the run, each down --down seconds.
  const kills = Array.from({ length: o.kills }, (_, k) => Math.round(((k + 1) * durationS) / (o.kills + 1)));
  for (let k = 0; k < kills.length; k++) {
    const next = k + 1 < kills.length ? kills[k + 1]! : durationS;
    if (kills[k]! + o.downS >= next) throw new Error(`--down ${o.downS} s does not fit between outages of a ${durationS} s run: use fewer --kills, a shorter --down or more --minutes`);
  }

  // Inputs: sample (as the e2e tests build it), loadgen, the Collector, a private tracer copy
  // (a rebuild of dist/ during the run cannot switch tracers).
  mkdirSync(BENCH_CACHE, { recursive: true });
  const sampleExe = await buildSample({ mode: "default" });
  const loadgen = join(BENCH_CACHE, "loadgen");
  goBuild(join(ROOT, "bench", "loadgen"), loadgen);
  const collectorExe = ensureCollector();
  const beetrace = join(BENCH_CACHE, "beetrace-soak");
  copyFileSync(o.beetrace, beetrace);
  const work = join(BENCH_CACHE, `soak-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const spillDir = join(work, "spill");
  mkdirSync(spillDir, { recursive: true });
  const capture = join(work, "soak.cbor");

  console.log(`# soak benchmark\n${machineLine()}`);
  console.log(
    `${durationS} s at ${o.rate} req/s on ${o.route} (${o.conns} connections, open loop), OTLP ${o.protocol} to the real Collector; ` +
      `SIGKILL at ${kills.map((s) => `${s} s`).join(", ") || "never"}, each down ${o.downS} s; tracer RSS every ${o.rssEveryS} s`,
  );
  console.log(`beetrace under test: sha256 ${spawnSync("sha256sum", [beetrace], { encoding: "utf8" }).stdout.slice(0, 16)}; work dir ${work}`);

  const children: ChildProcess[] = [];
  const collectors: Collector[] = [];
  let current: Collector | undefined;
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const startIncarnation = async () => {
    current = await Collector.start(collectorExe, { dir: work, name: `collector-${collectors.length}`, httpPort, grpcPort });
    collectors.push(current);
  };
  const killed = new Set<number>(); // incarnations ended by SIGKILL

  try {
    await startIncarnation();
    const sample = spawn(sampleExe, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(sample);
    const sampleOut = collect(sample, "stdout");
    const addr = (await waitUntil(() => /listening on (127\.0\.0\.1:\d+)/.exec(sampleOut()) ?? undefined, 15_000, "the sample's 'listening on' line"))[1]!;

    const endpoint = o.protocol === "grpc" ? current!.grpcBase : current!.httpBase;
    const tracer = spawn(beetrace, ["attach", "--pid", String(sample.pid), "--otlp", endpoint, "--protocol", o.protocol, "--spill-dir", spillDir, "--out", capture], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(tracer);
    const tracerErr = collect(tracer, "stderr");
    await waitUntil(
      () => {
        if (tracer.exitCode !== null) throw new Error(`the tracer exited (${tracer.exitCode}) before tracing:\n${tracerErr()}`);
        return /tracing pid \d+/.test(tracerErr());
      },
      60_000,
      "the tracer's 'tracing pid' line",
    );
    const tracerPid = tracer.pid!;

    // RSS series (and CPU) of the tracer, sampled on a timer for the whole run.
    const t0 = Date.now();
    const rss: { t: number; kb: number }[] = [];
    const sampleRss = () => {
      const kb = statusKb(tracerPid, "VmRSS");
      if (kb !== undefined) rss.push({ t: (Date.now() - t0) / 1000, kb });
    };
    sampleRss();
    const rssTimer = setInterval(sampleRss, o.rssEveryS * 1000);
    const cpu0 = cpuS(tracerPid);

    const lg = spawn(loadgen, ["-url", `http://${addr}${o.route}`, "-rate", String(o.rate), "-duration", `${durationS}s`, "-warmup", "0s", "-conns", String(o.conns)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(lg);
    const lgOut = collect(lg, "stdout");
    const lgDone = exited(lg);

    // The outages.
    const outages: { at: number; down: number; back: number }[] = [];
    for (const at of kills) {
      await sleep(Math.max(0, t0 + at * 1000 - Date.now()));
      const killedAt = (Date.now() - t0) / 1000;
      killed.add(collectors.length - 1);
      await current!.kill();
      console.log(`t=${killedAt.toFixed(1)} s: Collector ${collectors.length - 1} killed (SIGKILL); tracer RSS ${((statusKb(tracerPid, "VmRSS") ?? 0) / 1024).toFixed(1)} MiB`);
      await sleep(Math.max(0, t0 + (at + o.downS) * 1000 - Date.now()));
      await startIncarnation();
      const back = (Date.now() - t0) / 1000;
      outages.push({ at: killedAt, down: back - killedAt, back });
      console.log(`t=${back.toFixed(1)} s: Collector ${collectors.length - 1} up at the same address`);
    }
    if ((await lgDone) !== 0) throw new Error("loadgen failed");
    const load = JSON.parse(lgOut()) as { sent: number; ok: number; errors: number; non200: number; achievedRate: number; latencyUs: { p50: number; p99: number; max: number } };
    const loadEnd = (Date.now() - t0) / 1000;
    console.log(`t=${loadEnd.toFixed(1)} s: load done: ${load.sent} requests, ${load.ok} ok, ${load.errors + load.non200} failed, ${load.achievedRate.toFixed(0)} req/s achieved, latency p50 ${(load.latencyUs.p50 / 1000).toFixed(2)} / p99 ${(load.latencyUs.p99 / 1000).toFixed(2)} / max ${(load.latencyUs.max / 1000).toFixed(1)} ms`);

    // Let the tracer finish resending on its own: it logs "reachable again" once per outage it
    // noticed (the exporter probes the Collector with a backoff of up to 30 s), then the
    // Collector's output stops growing. Bounded; what is still spilled after that is sent below.
    const unreachable = () => (tracerErr().match(/OTLP collector .* unreachable/g) ?? []).length;
    const reachable = () => (tracerErr().match(/is reachable again/g) ?? []).length;
    const outputBytes = () => collectors.reduce((n, c) => n + (existsSync(c.jsonPath) ? statSync(c.jsonPath).size : 0), 0);
    const settleDeadline = Date.now() + 120_000;
    while (Date.now() < settleDeadline && reachable() < unreachable()) await sleep(200);
    let last = -1;
    while (Date.now() < settleDeadline) {
      const now = outputBytes();
      if (now === last) break;
      last = now;
      await sleep(2000); // quiescence check: no growth over 2 s (spans are sent every batch tick)
    }
    clearInterval(rssTimer);
    sampleRss();
    const tracerCpu = cpuS(tracerPid) - cpu0;
    const peakKb = statusKb(tracerPid, "VmHWM") ?? 0;

    tracer.kill("SIGINT");
    const tracerCode = await exited(tracer);
    sample.kill("SIGTERM");
    await exited(sample);
    const err = tracerErr();
    const summary = /wrote (\d+) spans? to ([^\n]*)/.exec(err);
    const sentAtExit = Number(/\((\d+) sent/.exec(summary?.[2] ?? "")?.[1] ?? Number.NaN);
    const unsentAtExit = Number(/\((\d+) unsent\)/.exec(summary?.[2] ?? "")?.[1] ?? 0);
    const resent = [...err.matchAll(/resending (\d+) spilled spans/g)].map((m) => Number(m[1]));
    const notTraced = [...err.matchAll(/(\d+) calls were not traced/g)].reduce((n, m) => n + Number(m[1]), 0);
    console.log(`tracer: ${unreachable()} "unreachable" warnings, ${reachable()} "reachable again"; last lines:\n  ${err.trim().split("\n").slice(-4).join("\n  ")}`);
    console.log(`tracer exit ${tracerCode}: wrote ${summary?.[1] ?? "?"} spans; OTLP ${sentAtExit} sent, ${unsentAtExit} left in the spill at exit; spilled and resent during the run: ${resent.join(" + ") || 0}; ring/map losses ${notTraced}`);

    // Spans left in the spill at exit: the documented path, `beetrace export SPILL` (it skips
    // the prefix the FILE.sent sidecar records as already sent).
    let exportedAfter = 0;
    for (const f of readdirSync(spillDir).filter((f) => f.endsWith(".cbor"))) {
      const r = spawnSync(beetrace, ["export", join(spillDir, f), "--otlp", endpoint, "--protocol", o.protocol], { encoding: "utf8", timeout: 300_000 });
      const m = /sent (\d+) spans? from/.exec(r.stderr + r.stdout);
      console.log(`beetrace export ${f}: exit ${r.status}; ${(r.stderr + r.stdout).trim().split("\n").slice(-2).join(" | ")}`);
      exportedAfter += m ? Number(m[1]) : 0;
    }
    await current!.stop();

    // What the tracer produced (the capture) vs what the Collector wrote.
    const produced = new Set<string>();
    let producedDup = 0;
    const stream = openCapture(capture);
    for (const r of stream.records()) {
      if (r.type !== "span") continue;
      if (produced.has(r.spanId)) producedDup++;
      produced.add(r.spanId);
    }
    // span id → copies received; where the copies were (incarnation, line, lines in that file)
    const seen = new Map<string, number>();
    const firstAt = new Map<string, { inc: number; line: number }>();
    const linesOf: number[] = [];
    const dupAt: { id: string; inc: number; line: number }[] = [];
    let received = 0;
    let torn = 0;
    for (let i = 0; i < collectors.length; i++) {
      const r = await readCollectorJson(collectors[i]!.jsonPath, (s, line) => {
        received++;
        const n = (seen.get(s.spanId) ?? 0) + 1;
        seen.set(s.spanId, n);
        if (n === 1) firstAt.set(s.spanId, { inc: i, line });
        else dupAt.push({ id: s.spanId, inc: i, line });
      });
      linesOf.push(r.lines);
      if (r.tornTail) torn++;
    }
    let lost = 0;
    for (const id of produced) if (!seen.has(id)) lost++;
    let unknown = 0;
    for (const id of seen.keys()) if (!produced.has(id)) unknown++;
    const duplicates = received - seen.size;
    // A duplicate whose first copy is in one of the last 4 requests (lines) a killed Collector wrote:
    // written, then killed before it answered (at-least-once delivery). 4 = the exporter's
    // requests in flight at once are at most a few; anything earlier was acknowledged long before.
    let atKill = 0;
    for (const d of dupAt) {
      const f = firstAt.get(d.id)!;
      if (killed.has(f.inc) && f.line >= linesOf[f.inc]! - 4) atKill++;
    }

    console.log(`\n## delivery (span ids)`);
    console.log(`capture (--out): ${produced.size} spans${producedDup ? ` (+${producedDup} repeated ids!)` : ""}; requests ok ${load.ok}`);
    console.log(`Collector: ${received} spans in ${collectors.length} incarnations (lines ${linesOf.join(" / ")}${torn ? `, ${torn} torn last lines` : ""}); ${seen.size} distinct`);
    console.log(`lost (in capture, never received): ${lost}`);
    console.log(`duplicates (received more than once): ${duplicates}${duplicates ? ` — ${atKill} written in a killed Collector's last requests (at-least-once), ${duplicates - atKill} other` : ""}`);
    console.log(`unknown (received, not in capture): ${unknown}`);
    const tracerTotal = sentAtExit + exportedAfter;
    console.log(`tracer's account: ${sentAtExit} sent during the run (incl. ${resent.reduce((a, b) => a + b, 0)} spilled and resent) + ${exportedAfter} exported from the spill after exit = ${tracerTotal}; Collector received ${received}`);
    const exact = lost === 0 && duplicates === 0 && unknown === 0 && tracerTotal === received;
    const atLeastOnceOnly = lost === 0 && unknown === 0 && duplicates === atKill;
    console.log(`verdict: ${exact ? "PASS — every span exactly once" : atLeastOnceOnly ? `PASS with ${atKill} at-least-once duplicates from requests in flight at a SIGKILL` : "FAIL"}`);

    console.log(`\n## tracer memory (VmRSS every ${o.rssEveryS} s, MiB)`);
    const mib = rss.map((r) => r.kb / 1024);
    // After the first minute (warm-up) when the run is long enough for that to mean something.
    const after = durationS >= 120 ? rss.filter((r) => r.t >= 60) : [];
    const s = after.length >= 2 ? after : rss;
    const slopePerMin = slope(s.map((r) => r.t / 60), s.map((r) => r.kb / 1024));
    const firstMin = rss.filter((r) => r.t < 60).map((r) => r.kb / 1024);
    const lastMin = rss.filter((r) => r.t >= rss[rss.length - 1]!.t - 60).map((r) => r.kb / 1024);
    console.log(`samples ${rss.length}: min ${Math.min(...mib).toFixed(1)}, median ${median(mib).toFixed(1)}, max ${Math.max(...mib).toFixed(1)}, peak (VmHWM) ${(peakKb / 1024).toFixed(1)}`);
    console.log(`first minute median ${median(firstMin).toFixed(1)}, last minute median ${median(lastMin).toFixed(1)}; slope ${slopePerMin >= 0 ? "+" : ""}${slopePerMin.toFixed(2)} MiB/min ${after.length >= 2 ? "after the first minute" : "(whole run: shorter than 2 min)"}`);
    console.log(`series: ${mib.map((v) => v.toFixed(1)).join(" ")}`);
    console.log(`outages: ${outages.map((x) => `${x.at.toFixed(0)}–${x.back.toFixed(0)} s`).join(", ") || "none"}; tracer CPU ${tracerCpu.toFixed(1)} s over the run (${((tracerCpu / Math.max(1, loadEnd)) * 100).toFixed(1)}% of a core)`);
    if (!exact && !atLeastOnceOnly) process.exitCode = 1;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const c of collectors) await c.kill();
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }
}

await main();
