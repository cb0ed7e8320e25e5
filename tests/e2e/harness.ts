/**
 * @module tests/e2e/harness — shared helpers for the tracing e2e tests: build and start the sample
 * Go service, run the tracer the way an operator does (dist/beetrace), drive HTTP requests with
 * known client ports and wall-clock bounds, read capture files back, and snapshot what BPF state
 * the kernel holds. Nothing here sleeps a fixed time: every wait polls a condition with a deadline.
 *
 * The tracer under test is dist/beetrace. Set BEETRACE_E2E_FROM_SOURCE=1 to run
 * `bun src/main.ts` instead (quicker while editing; CI tests the executable).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, expect } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { readCaptureFile, type CaptureContents } from "../../src/capture/reader.ts";
import type { EndRecord, SpanRecord, StatsRecord } from "../../src/capture/format.ts";

export const ROOT = resolve(import.meta.dir, "..", "..");
export const E2E_CACHE = join(ROOT, ".cache", "e2e");
export const SAMPLE_DIR = join(ROOT, "tests", "fixtures", "go", "sample");
export const DIST_BEETRACE = join(ROOT, "dist", "beetrace");
const FROM_SOURCE = process.env.BEETRACE_E2E_FROM_SOURCE === "1";

// ---------------------------------------------------------------------------------------------
// skip reasons
//
// A test that cannot run here skips with one of these reasons in its name. In CI that is not
// allowed: .ci/run (and scripts/test.sh when CI=true) set BEETRACE_REQUIRE_E2E=1, under which
// tests/harness/require-e2e.ts turns every skip into a failure naming the reason.

/** True when skips fail instead (BEETRACE_REQUIRE_E2E=1). */
export const REQUIRE_E2E = process.env.BEETRACE_REQUIRE_E2E === "1";

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Why a test needing root cannot run, or undefined. */
export function requireRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : "needs root (BPF programs, uprobes)";
}

/**
 * Why the tracing e2e tests cannot run here, or undefined: root, a Go toolchain for the sample,
 * the tracer itself, and `extra` commands (e.g. bpftool). In CI (CI=true or BEETRACE_REQUIRE_E2E=1)
 * a missing dist/beetrace is a failure, not a skip: scripts/test.sh builds it first.
 */
export function e2eSkipReason(extra: string[] = []): string | undefined {
  const root = requireRoot();
  if (root) return root;
  for (const cmd of ["go", ...extra]) if (!has(cmd)) return `needs ${cmd} on PATH (scripts/setup.sh installs it)`;
  if (!FROM_SOURCE && !existsSync(DIST_BEETRACE) && process.env.CI !== "true" && !REQUIRE_E2E) {
    return "dist/beetrace is not built (run 'bun build.ts', or set BEETRACE_E2E_FROM_SOURCE=1)";
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// waiting

/**
 * Polls `cond` every few ms until it returns something other than undefined/false, and returns
 * that. Throws naming `what` after `timeoutMs`. The poll interval is not a sleep the test
 * relies on: the deadline only bounds a wait for a condition.
 */
export async function waitFor<T>(cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------------------------------------
// processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every child this harness started; `killAll` ends the ones still running (afterAll). */
const children = new Set<ChildProcess>();

export function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.clear();
}

/**
 * A test file's scratch directory (beetrace-e2e-NAME-XXXXXX under the temp dir); after the file's
 * tests, every child the harness started is killed and the directory removed.
 */
export function e2eWorkDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `beetrace-e2e-${name}-`));
  afterAll(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Waits until the tracer says it traces each of `pids` ("beetrace: tracing pid N"); fails early if it exits. */
export async function waitTracing(t: TracerRun, pids: number[]): Promise<void> {
  let exited = false;
  void t.exited.then(() => (exited = true));
  await waitFor(
    () => {
      const seen = new Set([...t.stderr().matchAll(/beetrace: tracing pid (\d+) /g)].map((m) => Number(m[1])));
      if (pids.every((p) => seen.has(p))) return true;
      return exited ? Promise.reject(new Error(`tracer exited before tracing:\n${t.stderr()}`)) : undefined;
    },
    60_000,
    `tracing lines for pids ${pids.join(", ")}`,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\ntracer stderr:\n${t.stderr()}`);
  });
}

interface Tracked {
  proc: ChildProcess;
  exited: Promise<Exit>;
  out: () => string;
  err: () => string;
}

function track(proc: ChildProcess): Tracked {
  children.add(proc);
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<Exit>((r) =>
    proc.on("exit", (code, signal) => {
      children.delete(proc);
      r({ code, signal });
    }),
  );
  return { proc, exited, out: () => out, err: () => err };
}

/** Resolves to the exit, or rejects after `timeoutMs` (the process is then killed). */
async function exitWithin(t: Tracked, timeoutMs: number, what: string): Promise<Exit> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      t.proc.kill("SIGKILL");
      reject(new Error(`${what} did not exit within ${timeoutMs} ms\nstderr:\n${t.err()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([t.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// the sample service

export type SampleMode = "default" | "stripped" | "pie";

const MODE_FLAGS: Record<SampleMode, string[]> = {
  default: [],
  stripped: ["-ldflags=-s -w"],
  pie: ["-buildmode=pie"],
};

function execOut(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Promise<string> {
  return new Promise((res, rej) =>
    execFile(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 16 << 20 }, (e, stdout, stderr) =>
      e ? rej(new Error(`${cmd} ${args.join(" ")} failed: ${e.message}\n${stderr}`)) : res(stdout),
    ),
  );
}

function goEnv(toolchain: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GOFLAGS: "-buildvcs=false", CGO_ENABLED: "0", GOWORK: "off" };
  for (const k of ["GOOS", "GOARCH", "GOAMD64", "GOEXPERIMENT"]) delete env[k];
  env.GOTOOLCHAIN = toolchain ?? "local";
  return env;
}

/** "go1.26.8" of the toolchain `go build` would use. */
export async function goVersionOf(toolchain?: string): Promise<string> {
  return (await execOut("go", ["env", "GOVERSION"], goEnv(toolchain))).trim();
}

/**
 * Builds tests/fixtures/go/sample in `mode` (cached under .cache/e2e/ by a hash of the sources,
 * mode and Go version) and returns the executable's path.
 */
export async function buildSample(opts: { mode: SampleMode; toolchain?: string }): Promise<string> {
  const version = await goVersionOf(opts.toolchain);
  const h = createHash("sha256").update(JSON.stringify({ v: 1, mode: opts.mode, version, arch: process.arch }));
  for (const f of readdirSync(SAMPLE_DIR).sort()) h.update(`\0${f}\0`).update(readFileSync(join(SAMPLE_DIR, f)));
  const dir = join(E2E_CACHE, `sample-${opts.mode}-${version}-${h.digest("hex").slice(0, 12)}`);
  const exe = join(dir, "sample");
  if (existsSync(exe)) return exe;
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  try {
    await execOut("go", ["build", ...MODE_FLAGS[opts.mode], "-o", join(tmp, "sample"), "."], goEnv(opts.toolchain), SAMPLE_DIR);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(exe)) throw e; // a concurrent run built the same thing first
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return exe;
}

export interface RunningSample {
  pid: number;
  /** "http://127.0.0.1:PORT" */
  base: string;
  port: number;
  exited: Promise<Exit>;
  alive(): boolean;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** Parses the sample's "listening on HOST:PORT" line. */
export function listeningAddress(text: string): { base: string; port: number } | undefined {
  const m = /listening on (127\.0\.0\.1:(\d+))/.exec(text);
  return m ? { base: `http://${m[1]}`, port: Number(m[2]) } : undefined;
}

/** Starts the sample and waits for "listening on". */
export async function startSample(bin: string, extraArgs: string[] = []): Promise<RunningSample> {
  const t = track(spawn(bin, ["-addr", "127.0.0.1:0", ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] }));
  let done = false;
  void t.exited.then(() => (done = true));
  const addr = await waitFor(() => listeningAddress(t.out()) ?? (done ? Promise.reject(new Error(`sample exited: ${t.err()}`)) : undefined), 15_000, "the sample's 'listening on' line");
  return {
    pid: t.proc.pid!,
    ...addr,
    exited: t.exited,
    alive: () => !done,
    stop: async () => {
      if (done) return;
      t.proc.kill("SIGTERM");
      await exitWithin(t, 5_000, "the sample");
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the tracer

export interface TracerRun {
  pid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Waits for "beetrace: tracing pid N (...) — ...; K uprobes"; rejects if the tracer exits first. */
  started(timeoutMs?: number): Promise<{ targetPid: number; uprobes: number }>;
  signal(sig: NodeJS.Signals): void;
  exit(timeoutMs?: number): Promise<Exit>;
}

/** The tracer command line: dist/beetrace, or bun src/main.ts with BEETRACE_E2E_FROM_SOURCE=1. */
export function tracerCommand(): [string, string[]] {
  // BEETRACE_E2E_RUNTIME=deno: the same code from source under Deno (the design card's second runtime).
  if (process.env.BEETRACE_E2E_RUNTIME === "deno") return [join(ROOT, "node_modules", ".bin", "deno"), ["run", "-A", join(ROOT, "src", "main.ts")]];
  if (FROM_SOURCE) return [join(ROOT, "node_modules", ".bin", "bun"), [join(ROOT, "src", "main.ts")]];
  return [DIST_BEETRACE, []];
}

export function runTracer(args: string[], env?: NodeJS.ProcessEnv): TracerRun {
  const [cmd, pre] = tracerCommand();
  const t = track(spawn(cmd, [...pre, ...args], { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env: { ...process.env, ...env } } : {}) }));
  let exit: Exit | undefined;
  void t.exited.then((e) => (exit = e));
  return {
    pid: t.proc.pid!,
    stdout: t.out,
    stderr: t.err,
    exited: t.exited,
    started: (timeoutMs = 30_000) =>
      waitFor(
        () => {
          const m = /beetrace: tracing pid (\d+) .* (\d+) uprobes/.exec(t.err());
          if (m) return { targetPid: Number(m[1]), uprobes: Number(m[2]) };
          if (exit) return Promise.reject(new Error(`tracer exited (${exit.code ?? exit.signal}) before tracing:\n${t.err()}`));
          return undefined;
        },
        timeoutMs,
        "the tracer's 'tracing pid' line",
      ),
    signal: (sig) => void t.proc.kill(sig),
    exit: (timeoutMs = 30_000) => exitWithin(t, timeoutMs, "the tracer"),
  };
}

/** Runs the tracer to completion (for commands that end on their own: doctor, view, inspect). */
export async function runTracerToEnd(args: string[], timeoutMs = 60_000): Promise<{ exit: Exit; stdout: string; stderr: string }> {
  const r = runTracer(args);
  const exit = await r.exit(timeoutMs);
  return { exit, stdout: r.stdout(), stderr: r.stderr() };
}

// ---------------------------------------------------------------------------------------------
// capture files

export interface Capture {
  contents: CaptureContents;
  spans: SpanRecord[];
  stats: StatsRecord[];
  end: EndRecord | undefined;
}

export function readSpans(file: string): Capture {
  const contents = readCaptureFile(file);
  const spans: SpanRecord[] = [];
  const stats: StatsRecord[] = [];
  let end: EndRecord | undefined;
  for (const r of contents.records) {
    if (r.type === "span") spans.push(r);
    else if (r.type === "stats") stats.push(r);
    else if (r.type === "end") end = r;
  }
  return { contents, spans, stats, end };
}

/**
 * Spans in the capture so far; 0 while the tracer has not written its header yet (the file is
 * created, or not yet, and filled at the first flush). For conditions polled while it runs.
 */
export function spansSoFar(file: string): number {
  if (!existsSync(file) || statSync(file).size === 0) return 0;
  try {
    return readSpans(file).spans.length;
  } catch {
    return 0; // a header caught mid-write; the next poll reads it whole
  }
}

/**
 * Each span's parent among `spans`; the test fails when the parent is missing, starts after its
 * child (after any clock correction) or belongs to another trace.
 */
export function parentFinder(spans: SpanRecord[]): (s: SpanRecord) => SpanRecord {
  const byId = new Map<string, SpanRecord>(spans.map((s) => [s.spanId, s]));
  return (s) => {
    const p = byId.get(s.parentSpanId ?? "");
    expect(p).toBeDefined();
    expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(p!.startTimeUnixNano);
    expect(s.traceId).toBe(p!.traceId);
    return p!;
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP with a known client port and wall-clock bounds

export interface Exchange {
  path: string;
  status: number;
  body: string;
  /** the client's local port = the server span's network.peer.port */
  localPort: number;
  /** wall clock (epoch ns) just before connecting and just after the response ended */
  t0: bigint;
  t1: bigint;
}

/** Epoch nanoseconds with sub-millisecond resolution. */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/**
 * One HTTP/1.1 GET on a fresh connection (raw TCP, so the local port is known and the request
 * is exactly what we wrote, extra header lines included). Resolves when the server closes the
 * connection.
 */
export function httpGet(port: number, path: string, headers: [string, string][] = []): Promise<Exchange> {
  return new Promise((res, rej) => {
    const t0 = nowNs();
    const sock = connect({ host: "127.0.0.1", port });
    let data = "";
    let localPort = 0;
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      localPort = sock.localPort ?? 0;
      const extra = headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: beetrace-e2e\r\n${extra}Connection: close\r\n\r\n`);
    });
    sock.on("data", (d: string) => (data += d));
    sock.on("error", rej);
    sock.on("close", () => {
      const t1 = nowNs();
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(data);
      if (!m) return rej(new Error(`GET ${path}: no HTTP response (${JSON.stringify(data.slice(0, 80))})`));
      const body = data.slice(data.indexOf("\r\n\r\n") + 4);
      res({ path, status: Number(m[1]), body, localPort, t0, t1 });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// kernel BPF state (bpftool)

export interface BpfState {
  progs: { id: number; name: string }[];
  links: { id: number; prog_id: number }[];
  perf: { pid: number; prog_id: number; fd_type?: string; filename?: string }[];
}

function bpftoolJson<T>(args: string[]): T[] {
  const r = spawnSync("bpftool", ["-j", ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`bpftool ${args.join(" ")} failed: ${r.stderr}`);
  const text = r.stdout.trim();
  return text === "" ? [] : (JSON.parse(text) as T[]);
}

/** Programs, links and perf-event attachments the kernel holds right now (all processes). */
export function bpfState(): BpfState {
  return {
    progs: bpftoolJson<{ id: number; name?: string }>(["prog", "show"]).map((p) => ({ id: p.id, name: p.name ?? "" })),
    links: bpftoolJson<{ id: number; prog_id: number }>(["link", "show"]),
    perf: bpftoolJson<{ pid: number; prog_id: number; fd_type?: string; filename?: string }>(["perf", "show"]),
  };
}

/** Our programs: bpf/nethttp.bpf.c's are nethttp_* (the kernel keeps 15 characters of a name). */
/** A BPF program of ours, by name: every object's programs start with the object's name (bpf/<name>.bpf.c). */
export const isOurProgram = (name: string): boolean => OUR_PROGRAM_PREFIXES.some((p) => name.startsWith(p));
// The kernel shows at most 15 characters of a program's name: the prefixes fit.
const OUR_PROGRAM_PREFIXES = ["nethttp_", "calibrate_", "grpc_", "databasesql_", "kafka_", "otelapi_", "http3_", "propagate_"];

/** A uprobe_multi link as its holder's /proc/PID/fdinfo shows it (kernel 6.6+; the uprobe list since 6.9). */
export interface UprobeMultiLinkInfo {
  linkId: number;
  progId: number;
  /** uprobes the link carries ("uprobe_cnt") */
  uprobes: number;
  /** the pid filter ("pid"; 0 = none) */
  pid: number;
  path: string;
  /** cookie and file offset of each uprobe, when the kernel lists them */
  entries: { cookie: bigint; offset: number }[];
}

/** The uprobe_multi links process `holder` holds open (bpftool 7.1 cannot show their details). */
export function uprobeMultiLinksOf(holder: number): UprobeMultiLinkInfo[] {
  const out: UprobeMultiLinkInfo[] = [];
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${holder}/fd`);
  } catch {
    return out; // process gone
  }
  for (const fd of fds) {
    let info: string;
    try {
      if (readlinkSync(`/proc/${holder}/fd/${fd}`) !== "anon_inode:bpf_link") continue;
      info = readFileSync(`/proc/${holder}/fdinfo/${fd}`, "utf8");
    } catch {
      continue; // closed meanwhile
    }
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(info)?.[1]?.trim();
    if (field("link_type") !== "uprobe_multi") continue;
    const entries = [...info.matchAll(/^(\d+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+$/gm)].map((m) => ({ cookie: BigInt(m[1]!), offset: parseInt(m[2]!, 16) }));
    out.push({
      linkId: Number(field("link_id")),
      progId: Number(field("prog_id")),
      uprobes: Number(field("uprobe_cnt")),
      pid: Number(field("pid") ?? 0),
      path: field("path") ?? "",
      entries,
    });
  }
  return out;
}

/**
 * Uprobe attachments held by process `pid`, with their programs (for "was attached" checks):
 * perf-event uprobes (bpftool perf show) and uprobe_multi links (fdinfo).
 */
export function attachmentsOf(state: BpfState, pid: number): { progIds: Set<number>; perf: BpfState["perf"]; multi: UprobeMultiLinkInfo[] } {
  const perf = state.perf.filter((p) => p.pid === pid);
  const multi = uprobeMultiLinksOf(pid);
  return { progIds: new Set([...perf.map((p) => p.prog_id), ...multi.map((m) => m.progId)]), perf, multi };
}

/**
 * What of `progIds` is still in the kernel: programs, links to them, perf attachments to them
 * or by `pid`. Empty lists mean a clean detach.
 */
export function leftovers(state: BpfState, progIds: Set<number>, pid: number): { progs: string[]; links: number[]; perf: string[] } {
  return {
    progs: state.progs.filter((p) => progIds.has(p.id)).map((p) => `${p.id}:${p.name}`),
    links: state.links.filter((l) => progIds.has(l.prog_id)).map((l) => l.id),
    perf: state.perf.filter((p) => p.pid === pid || progIds.has(p.prog_id)).map((p) => `${p.pid}:${p.prog_id}:${p.filename ?? p.fd_type ?? "?"}`),
  };
}

/** Legacy (tracefs) uprobe events naming `binary`: libbpf's fallback leaves them behind if not cleaned. */
export function tracefsUprobeEvents(binary: string): string[] {
  for (const dir of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    try {
      return readFileSync(join(dir, "uprobe_events"), "utf8")
        .split("\n")
        .filter((l) => l.includes(binary));
    } catch {
      // not mounted here
    }
  }
  return [];
}

/** Descriptors of process `pid` that are BPF programs (to see it is mid-attach). */
export function bpfProgFds(pid: number): number {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:bpf-prog") n++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // process gone
  }
  return n;
}
