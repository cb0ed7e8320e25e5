/**
 * @module bench/inspect.bench — time to open a large stripped Go executable and resolve the
 * symbols beetrace probes, with every return site, in process (what `attach` does before it
 * loads any BPF).
 *
 * Measures, over the same file:
 *  - cold: a fresh `bun` process per sample, so it includes JIT warm-up and the iced-x86 WASM
 *    instantiation (the real first-attach cost), split by stage in a second set of processes.
 *    Two paths: `sync` = readTargetBytes + openGoBinary + resolveSymbol, each step in turn
 *    (the decoder loads on the first RET decode); `overlapped` = openTarget (what `inspect`
 *    does: async read while prepareIced compiles and loads the decoder) + resolveSymbol;
 *  - warm: repeated in one process (every run re-parses the file; only the runtime is warm);
 *  - exe: `beetrace inspect --json` from the compiled single executable, wall clock including
 *    its start-up and output (what an operator sees).
 *
 * Input: a ~30 MB stripped Go binary. bench/build-inputs.sh builds gopls at a fixed version with
 * -ldflags="-s -w" into .cache/bench/; pass --binary to use another file.
 *
 *   node_modules/.bin/bun bench/inspect.bench.ts [--binary PATH] [--runs 30] [--cold 10] [--exe-runs 5]
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../src/binary/elf.ts";
import { readBuildInfo } from "../src/binary/buildinfo.ts";
import { readPclntab, type GoFunc } from "../src/binary/gopclntab.ts";
import { GoDwarf } from "../src/binary/dwarf.ts";
import { findReturnSites } from "../src/binary/returns.ts";
import { openGoBinary, resolveSymbol, type SymbolReport } from "../src/binary/analyze.ts";
import { openTarget, readTargetBytes, readTargetBytesAsync } from "../src/target/executable.ts";
import { probeSymbols } from "../src/probes/registry.ts";
import { iced, prepareIced } from "../src/vendor/iced/index.ts";
import { isTracerError } from "../src/errors.ts";
import { BENCH_CACHE, ROOT, fmtMs, fmtSummary, intOption, machineLine, parseOptions, summarize } from "./lib.ts";

/**
 * Sync path: each stage in turn. Overlapped path: `read` = awaiting the async read while the
 * decoder compiles off-thread and its glue runs; `icedLoad` = what is left to wait for after parsing.
 */
const STAGES = ["read", "elf", "buildinfo", "pclntab", "dwarf", "funcIndex", "icedLoad", "retDecode"] as const;
type Stage = (typeof STAGES)[number];
type StageTimes = Record<Stage, number> & { total: number };

interface ApiResult {
  /** openGoBinary + resolveSymbol for every probe symbol, excluding the file read */
  analyzeMs: number;
  readMs: number;
  /** CPU time (user + system, all threads) of read + analyze: less sensitive to machine load than wall time. */
  cpuMs: number;
  rssMiB: number;
  reports: SymbolReport[];
}

const symbols = probeSymbols();

/** The sync path (`attach` today): read the file, openGoBinary, resolveSymbol per probe symbol. */
function apiRun(path: string): ApiResult {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const bytes = readTargetBytes(path);
  const t1 = performance.now();
  const a = openGoBinary(bytes, path);
  const reports = symbols.map((s) => resolveSymbol(a, s));
  const t2 = performance.now();
  return { analyzeMs: t2 - t1, readMs: t1 - t0, cpuMs: cpuMsSince(c0), rssMiB: process.memoryUsage().rss / 2 ** 20, reports };
}

function cpuMsSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** The overlapped path (`inspect`): openTarget, then resolveSymbol. The read is not separable here: readMs = 0. */
async function apiRunOverlapped(path: string): Promise<ApiResult> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const a = await openTarget(path, path);
  const reports = symbols.map((s) => resolveSymbol(a, s));
  return { analyzeMs: performance.now() - t0, readMs: 0, cpuMs: cpuMsSince(c0), rssMiB: process.memoryUsage().rss / 2 ** 20, reports };
}

/**
 * The same work as apiRun, stage by stage, to say where the time goes. Mirrors openGoBinary
 * (ELF, build info, pclntab, DWARF) and resolveSymbol (name lookup; decoding each function to
 * find its RETs). `icedLoad` is non-zero only on the first run in a process.
 */
function stagedRun(path: string): StageTimes {
  const t: Partial<StageTimes> = {};
  let last = performance.now();
  const lap = (s: Stage) => {
    const now = performance.now();
    t[s] = now - last;
    last = now;
  };
  const start = last;
  const bytes = readTargetBytes(path);
  lap("read");
  const elf = ElfFile.parse(bytes, path);
  lap("elf");
  readBuildInfo(elf);
  lap("buildinfo");
  const pcln = readPclntab(elf);
  lap("pclntab");
  try {
    GoDwarf.open(elf);
  } catch (e) {
    if (!isTracerError(e)) throw e;
  }
  lap("dwarf");
  const fns: GoFunc[] = [];
  for (const s of symbols) {
    const fn = pcln.find(s);
    if (!fn) throw new Error(`${s} is not in ${path}: pick a binary that links net/http's server and client`);
    fns.push(fn);
  }
  lap("funcIndex");
  iced();
  lap("icedLoad");
  for (const fn of fns) findReturnSites(elf.machine, elf.readVirtual(fn.entry, fn.end - fn.entry), fn.entry);
  lap("retDecode");
  t.total = last - start;
  return t as StageTimes;
}

/** stagedRun for the overlapped path: the read and the decoder's start-up run together. */
async function stagedRunOverlapped(path: string): Promise<StageTimes> {
  const t: Partial<StageTimes> = {};
  let last = performance.now();
  const lap = (s: Stage) => {
    const now = performance.now();
    t[s] = now - last;
    last = now;
  };
  const start = last;
  const reading = readTargetBytesAsync(path);
  const decoder = prepareIced();
  const bytes = await reading;
  lap("read");
  const elf = ElfFile.parse(bytes, path);
  lap("elf");
  readBuildInfo(elf);
  lap("buildinfo");
  const pcln = readPclntab(elf);
  lap("pclntab");
  try {
    GoDwarf.open(elf);
  } catch (e) {
    if (!isTracerError(e)) throw e;
  }
  lap("dwarf");
  const fns: GoFunc[] = [];
  for (const s of symbols) {
    const fn = pcln.find(s);
    if (!fn) throw new Error(`${s} is not in ${path}: pick a binary that links net/http's server and client`);
    fns.push(fn);
  }
  lap("funcIndex");
  await decoder;
  lap("icedLoad");
  for (const fn of fns) findReturnSites(elf.machine, elf.readVirtual(fn.entry, fn.end - fn.entry), fn.entry);
  lap("retDecode");
  t.total = last - start;
  return t as StageTimes;
}

async function child(mode: string, path: string): Promise<void> {
  const out =
    mode === "child-api" ? apiRun(path)
    : mode === "child-api-overlapped" ? await apiRunOverlapped(path)
    : mode === "child-stages-overlapped" ? await stagedRunOverlapped(path)
    : stagedRun(path);
  process.stdout.write(JSON.stringify(out) + "\n");
}

function spawnChild(mode: string, path: string): unknown {
  const r = spawnSync(process.execPath, [import.meta.path, "--mode", mode, "--binary", path], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`child ${mode} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function describeReports(reports: SymbolReport[]): string {
  return reports
    .map((r) => (r.resolved ? `${r.name}: entry 0x${r.entry.toString(16)}, ${r.end - r.entry} bytes, ${r.returns.length} RETs` : `${r.name}: UNRESOLVED (${r.reason})`))
    .join("\n  ");
}

function stageTable(rows: StageTimes[]): string {
  const lines = [`  ${"stage".padEnd(10)} ${"median".padStart(8)} ${"p95".padStart(8)}  (ms)`];
  for (const s of [...STAGES, "total"] as const) {
    const sum = summarize(rows.map((r) => r[s]));
    lines.push(`  ${s.padEnd(10)} ${fmtMs(sum.median).padStart(8)} ${fmtMs(sum.p95).padStart(8)}`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), {
    binary: join(BENCH_CACHE, "gopls", "gopls"),
    runs: "30",
    cold: "10",
    "exe-runs": "5",
    exe: join(ROOT, "dist", "beetrace"),
    mode: "main",
  });
  if (o.mode !== "main") return await child(o.mode, o.binary);
  if (!existsSync(o.binary)) {
    throw new Error(`${o.binary} does not exist: run bench/build-inputs.sh first (or pass --binary)`);
  }
  const runs = intOption(o.runs, "runs");
  const cold = intOption(o.cold, "cold");
  const exeRuns = intOption(o["exe-runs"], "exe-runs");

  console.log(`# inspect benchmark\n${machineLine()}`);
  const size = statSync(o.binary).size;
  // Probe it once in this process: this first run is also a cold sample (same process, ours).
  const first = apiRun(o.binary);
  const bad = first.reports.filter((r) => !r.resolved);
  console.log(`binary: ${o.binary} (${(size / 1e6).toFixed(1)} MB)`);
  console.log(`symbols (${symbols.length}):\n  ${describeReports(first.reports)}`);
  if (bad.length > 0) throw new Error(`unresolved symbols: the benchmark would not measure the real work`);
  console.log(`first run in this process: analyze ${fmtMs(first.analyzeMs)} ms + read ${fmtMs(first.readMs)} ms`);

  if (cold > 0) {
    // Interleaved, so both paths see the same machine load.
    const api: ApiResult[] = [];
    const over: ApiResult[] = [];
    for (let i = 0; i < cold; i++) {
      api.push(spawnChild("child-api", o.binary) as ApiResult);
      over.push(spawnChild("child-api-overlapped", o.binary) as ApiResult);
    }
    console.log(`\ncold, sync path (fresh process each, incl. iced-x86 WASM instantiation):`);
    console.log(`  analyze (open + resolve, excl. read): ${fmtSummary(summarize(api.map((r) => r.analyzeMs)))}`);
    console.log(`  file read:                            ${fmtSummary(summarize(api.map((r) => r.readMs)))}`);
    console.log(`  read + analyze:                       ${fmtSummary(summarize(api.map((r) => r.readMs + r.analyzeMs)))}`);
    console.log(`  CPU time, read + analyze:             ${fmtSummary(summarize(api.map((r) => r.cpuMs)))}`);
    console.log(`  RSS after: ${fmtSummary(summarize(api.map((r) => r.rssMiB)), "MiB")}`);
    console.log(`cold, overlapped path (openTarget: async read + prepareIced, then resolve):`);
    console.log(`  read + analyze:                       ${fmtSummary(summarize(over.map((r) => r.analyzeMs)))}`);
    console.log(`  CPU time, read + analyze:             ${fmtSummary(summarize(over.map((r) => r.cpuMs)))}`);
    console.log(`  RSS after: ${fmtSummary(summarize(over.map((r) => r.rssMiB)), "MiB")}`);
    const staged: StageTimes[] = [];
    const stagedOver: StageTimes[] = [];
    for (let i = 0; i < cold; i++) {
      staged.push(spawnChild("child-stages", o.binary) as StageTimes);
      stagedOver.push(spawnChild("child-stages-overlapped", o.binary) as StageTimes);
    }
    console.log(`cold breakdown, sync path (separate fresh processes):\n${stageTable(staged)}`);
    console.log(`cold breakdown, overlapped path (read = awaiting the read while the decoder loads; icedLoad = wait left after parsing):\n${stageTable(stagedOver)}`);
  }

  if (runs > 0) {
    const api: ApiResult[] = [];
    const staged: StageTimes[] = [];
    for (let i = 0; i < runs; i++) {
      api.push(apiRun(o.binary));
      staged.push(stagedRun(o.binary));
    }
    console.log(`\nwarm (same process, file re-read and re-parsed every run):`);
    console.log(`  analyze (open + resolve, excl. read): ${fmtSummary(summarize(api.map((r) => r.analyzeMs)))}`);
    console.log(`  file read:                            ${fmtSummary(summarize(api.map((r) => r.readMs)))}`);
    console.log(`warm breakdown:\n${stageTable(staged)}`);
  }

  if (exeRuns > 0) {
    if (!existsSync(o.exe)) {
      console.log(`\nexe: ${o.exe} missing (node_modules/.bin/bun build.ts), skipped`);
    } else {
      const wall: number[] = [];
      for (let i = 0; i < exeRuns; i++) {
        const t0 = performance.now();
        const r = spawnSync(o.exe, ["inspect", o.binary, "--json"], { encoding: "utf8", maxBuffer: 64 << 20 });
        wall.push(performance.now() - t0);
        if (r.status !== 0) throw new Error(`${o.exe} inspect exited ${r.status}: ${r.stderr}`);
      }
      console.log(`\nexe: '${o.exe} inspect BINARY --json' wall clock (start-up + inspect + JSON output):`);
      console.log(`  ${fmtSummary(summarize(wall))}`);
    }
  }
}

await main();
