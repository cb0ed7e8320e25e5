/**
 * @module bench/span-overhead — how much longer a traced server span is than the handler's own
 * measured time. bench/handlertime's handler wraps its body in time.Now(); the span runs from
 * the entry probe of serverHandler.ServeHTTP to the probe that ends it (finishRequest), so the
 * difference is mux routing, the uprobe traps and whatever the tracer counts that the handler
 * did not do. Target (hot-path issue): ≤ 5 µs on average.
 *
 *   node_modules/.bin/bun bench/span-overhead.ts [--requests 2000] [--beetrace dist/beetrace]
 *
 * Root (uprobes). Requests are sequential on one keep-alive connection to 127.0.0.1, so spans
 * and handler times pair up by order.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import type { Span } from "../src/spans/model.ts";
import { BENCH_CACHE, ROOT, exited, intOption, machineLine, parseOptions, summarize } from "./lib.ts";

function lineOf(child: ChildProcess, stream: "stdout" | "stderr", re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; output:\n${buf}`)), ms);
    child[stream]!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}


async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), { requests: "2000", beetrace: join(ROOT, "dist", "beetrace") });
  const n = intOption(o.requests, "--requests");
  const bin = join(BENCH_CACHE, "handlertime");
  const b = spawnSync("go", ["build", "-trimpath", "-o", bin, "."], { cwd: join(ROOT, "bench", "handlertime"), encoding: "utf8" });
  if (b.status !== 0) throw new Error(`go build bench/handlertime: ${b.stderr}`);
  console.log(machineLine());

  const server = spawn(bin, [], { stdio: ["ignore", "pipe", "inherit"] });
  const capture = join(tmpdir(), `beetrace-span-overhead-${process.pid}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const addr = (await lineOf(server, "stdout", /listening on (\S+)/, 10_000))[1]!;
    tracer = spawn(o.beetrace, ["attach", "--pid", String(server.pid), "--out", capture], { stdio: ["ignore", "ignore", "pipe"] });
    await lineOf(tracer, "stderr", /tracing pid \d+/, 30_000);
    for (let i = 0; i < n; i++) {
      const r = await fetch(`http://${addr}/work/${i}`);
      await r.text();
    }
    const handler = (await (await fetch(`http://${addr}/durations`)).json()) as number[];
    const done = lineOf(tracer, "stderr", /wrote (\d+) spans?/, 30_000);
    tracer.kill("SIGINT");
    await done;
    await exited(tracer);
    tracer = undefined;

    const spans = readCaptureFile(capture)
      .records.filter((r): r is Span & { type: "span" } => r.type === "span" && r.attributes["http.route"] === "/work/{n}")
      .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
    if (spans.length !== handler.length) throw new Error(`${spans.length} /work spans but ${handler.length} handler times`);
    const extraUs = spans.map((s, i) => Number(s.endTimeUnixNano - s.startTimeUnixNano - BigInt(handler[i]!)) / 1000);
    const spanUs = spans.map((s) => Number(s.endTimeUnixNano - s.startTimeUnixNano) / 1000);
    const fmt = (v: ReturnType<typeof summarize>) => `mean ${v.mean.toFixed(2)}  median ${v.median.toFixed(2)}  p95 ${v.p95.toFixed(2)}  min ${v.min.toFixed(2)}  max ${v.max.toFixed(2)} µs`;
    console.log(`${spans.length} requests`);
    console.log(`handler's own time:        ${fmt(summarize(handler.map((d) => d / 1000)))}`);
    console.log(`server span duration:      ${fmt(summarize(spanUs))}`);
    console.log(`span minus handler time:   ${fmt(summarize(extraUs))}`);
  } finally {
    if (tracer) {
      tracer.kill("SIGINT");
      await exited(tracer);
    }
    server.kill("SIGTERM");
    await exited(server);
    rmSync(capture, { force: true });
  }
}

await main();
