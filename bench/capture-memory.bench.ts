/**
 * @module bench/capture-memory.bench — peak memory (and time) of `view`, `convert` and `export`
 * reading a big capture file (issue 15: peak RSS independent of file size, at most 250 MB for
 * any file; the old whole-file reader needed 13–17× the file).
 *
 * Writes a format-2 capture of --mb MB with the real writer (typical server span records, one
 * trace per span, 100 records per flush: tests/unit/capture/big-capture.ts) under .cache/bench/,
 * then runs each command from source in a child process and reports its peak RSS (VmHWM, via
 * tests/unit/cli/hwm-preload.ts) and wall time. `export` sends to an OTLP/HTTP endpoint in
 * this process that accepts and discards everything. Nothing is asserted.
 *
 *   node_modules/.bin/bun bench/capture-memory.bench.ts [--mb 500] [--commands view,convert,export] [--keep]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { BENCH_CACHE, ROOT, intOption, machineLine, parseOptions } from "./lib.ts";
import { writeBigCapture } from "../tests/unit/capture/big-capture.ts";

const opts = parseOptions(process.argv.slice(2), { mb: "500", commands: "view,convert,export", keep: "" });
const mb = intOption(opts.mb, "--mb");
const commands = opts.commands.split(",").filter((c) => c !== "");

mkdirSync(BENCH_CACHE, { recursive: true });
const capture = join(BENCH_CACHE, `capture-${mb}mb.cbor`);
const out = join(BENCH_CACHE, `capture-${mb}mb.jsonl`);
const hwmFile = join(BENCH_CACHE, "hwm");

console.log(machineLine());
if (!existsSync(capture) || statSync(capture).size < mb * 1024 * 1024) {
  const t0 = performance.now();
  const spans = writeBigCapture(capture, mb * 1024 * 1024);
  console.log(`wrote ${capture}: ${(statSync(capture).size / 1048576).toFixed(1)} MB, ${spans} spans in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} else {
  console.log(`reusing ${capture} (${(statSync(capture).size / 1048576).toFixed(1)} MB)`);
}

let receivedBytes = 0;
const server = Bun.serve({
  port: 0,
  async fetch(req) {
    receivedBytes += (await req.arrayBuffer()).byteLength;
    return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
  },
});

const argsOf: Record<string, string[]> = {
  view: ["view", capture],
  convert: ["convert", capture, "-o", out],
  export: ["export", capture, "--otlp", `http://127.0.0.1:${server.port}`],
};

interface Run {
  code: number | null;
  wallS: number;
  peakMb: number;
  outBytes: number;
}

function run(args: string[]): Promise<Run> {
  rmSync(hwmFile, { force: true });
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--preload", join(ROOT, "tests/unit/cli/hwm-preload.ts"), join(ROOT, "src/main.ts"), ...args], {
      env: { ...process.env, BEETRACE_TEST_HWM_FILE: hwmFile },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let outBytes = 0;
    // Drained and counted, not kept: view's output is as big as the capture.
    child.stdout.on("data", (d: Buffer) => (outBytes += d.byteLength));
    child.on("close", (code) => {
      const wallS = (performance.now() - t0) / 1000;
      const peakMb = existsSync(hwmFile) ? Number(readFileSync(hwmFile, "utf8")) / 1024 : -1;
      done({ code, wallS, peakMb, outBytes });
    });
  });
}

const fileMb = statSync(capture).size / 1048576;
console.log(`\ncommand   exit   peak RSS   RSS/file   wall`);
for (const c of commands) {
  const args = argsOf[c];
  if (args === undefined) throw new Error(`unknown command ${c} (view, convert, export)`);
  const r = await run(args);
  console.log(
    `${c.padEnd(8)}  ${String(r.code).padStart(4)}  ${r.peakMb.toFixed(0).padStart(6)} MB  ${(r.peakMb / fileMb).toFixed(2).padStart(7)}×  ${r.wallS.toFixed(1).padStart(6)} s${c === "view" ? `  (${(r.outBytes / 1048576).toFixed(0)} MB printed)` : ""}`,
  );
}
if (commands.includes("export")) console.log(`OTLP bytes received by the sink: ${(receivedBytes / 1048576).toFixed(1)} MB`);
void server.stop(true);
if (!opts.keep) rmSync(out, { force: true });
