/**
 * @module bench/startup — launch → probes live: wall time from spawning `beetrace attach --pid`
 * until it prints its "tracing pid" line (everything is attached then: the line is printed after
 * the last uprobe link is created), on a large stripped Go binary that links net/http.
 * Target (hot-path issue): ≤ 150 ms on a ~30 MB stripped binary.
 *
 *   bench/build-inputs.sh        # once: gopls, -ldflags="-s -w", ~29 MB
 *   node_modules/.bin/bun bench/startup.bench.ts [--runs 15] [--binary .cache/bench/gopls/gopls] [--beetrace dist/beetrace]
 *
 * Root. The target runs `gopls serve -listen=127.0.0.1:0` (it idles waiting for a client); the
 * tracer is stopped with SIGINT after each run. Also prints the tracer's own "attached N uprobes
 * in M ms" (load + attach) from -v.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { statSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_CACHE, ROOT, intOption, machineLine, parseOptions, summarize } from "./lib.ts";

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())));

async function once(beetrace: string, pid: number): Promise<{ wallMs: number; attachMs: number }> {
  const out = join(tmpdir(), `beetrace-startup-${process.pid}.cbor`);
  const t0 = performance.now();
  const tracer = spawn(beetrace, ["attach", "--pid", String(pid), "--out", out, "-v"], { stdio: ["ignore", "ignore", "pipe"] });
  let buf = "";
  const wallMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "tracing pid" line in 30 s:\n${buf}`)), 30_000);
    tracer.stderr!.on("data", (d: Buffer) => {
      buf += d.toString();
      if (/tracing pid \d+/.test(buf)) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    });
    tracer.once("exit", (code) => reject(new Error(`tracer exited ${code}:\n${buf}`)));
  });
  tracer.kill("SIGINT");
  await exited(tracer);
  rmSync(out, { force: true });
  const m = /attached \d+ uprobes \([^)]*\) in (\d+) ms/.exec(buf);
  return { wallMs, attachMs: m ? Number(m[1]) : NaN };
}

async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), { runs: "15", binary: join(BENCH_CACHE, "gopls", "gopls"), beetrace: join(ROOT, "dist", "beetrace") });
  const runs = intOption(o.runs, "--runs");
  console.log(machineLine());
  console.log(`target ${o.binary} (${(statSync(o.binary).size / 1e6).toFixed(1)} MB)`);
  const target = spawn(o.binary, ["serve", "-listen=127.0.0.1:0"], { stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 500)); // let it start (it only has to exist and be mapped)
    const walls: number[] = [];
    const attaches: number[] = [];
    await once(o.beetrace, target.pid!); // warm the page cache for the tracer and the target
    for (let i = 0; i < runs; i++) {
      const r = await once(o.beetrace, target.pid!);
      walls.push(r.wallMs);
      attaches.push(r.attachMs);
    }
    const f = (s: ReturnType<typeof summarize>) => `median ${s.median.toFixed(1)}  p95 ${s.p95.toFixed(1)}  min ${s.min.toFixed(1)}  max ${s.max.toFixed(1)} ms`;
    console.log(`launch → probes live (wall): ${f(summarize(walls))}`);
    console.log(`of which load + attach:      ${f(summarize(attaches))}`);
  } finally {
    target.kill("SIGTERM");
    await exited(target);
  }
}

await main();
