/**
 * @module cli/trace — `beetrace attach --pid N [--pid M …] | --exe PATH` and `beetrace run -- CMD ARGS…`.
 *
 * `run` starts the program stopped — a /bin/sh that SIGSTOPs itself and then execs the command,
 * so the pid never changes — attaches the pid-filtered uprobes to the Go executable, and only
 * then lets it continue: the very first request is traced. Uprobes registered on a file are
 * inserted into a process when it maps that file (kernel/events/uprobes.c, uprobe_mmap).
 *
 * `attach --exe PATH` follows the service: it waits for a process executing PATH, traces every
 * such process (each into its own file), and attaches again when the service restarts.
 * `attach --pid` given several times (or as 12,34) traces those processes at once, likewise.
 * All sessions of one command share the map of client spans in flight per connection
 * (trace/process-maps.ts), so a request from one traced process to another is joined live.
 *
 * Exit status (cron and systemd read it): everything a session writes is checked before the
 * target is touched; `attach --exe` that traced nothing in the whole session exits 25; `run`
 * exits with its program's own status (128+N for a death by signal N, as a shell reports it).
 * A tracer never takes a service down: when `run` cannot trace (no probe attaches, an output
 * fails mid-way) it says why on stderr and keeps the program running.
 */
// First, before the modules below load: the x86 decoder starts compiling (target/early.ts).
import "../target/early.ts";
import type { ChildProcess } from "node:child_process";
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { hostname, constants as osConstants } from "node:os";
import { delimiter, dirname, extname, isAbsolute, join, resolve, sep } from "node:path";
import { TracerError, fromSystemError, isTracerError } from "../errors.ts";
import { log, startupStage } from "../log.ts";
import { childProcess } from "../runtime.ts";
import { describeProcess, findProcessesByExe, parsePid, readState, type TargetProcess } from "../target/process.ts";
import { TargetLock } from "../target/lock.ts";
import { TraceSession, type AttachTarget, type TraceOptions, type TraceSummary } from "../trace/session.ts";
import { trimAfterAttach } from "../trace/footprint.ts";
import { ProcessMaps } from "../trace/process-maps.ts";
import { CaptureSink, FanOutSink, expandTemplate, formatStart, type CaptureLimits, type SpanSink, type TemplateValues } from "../trace/output.ts";
import { makeSampler, mergeFlags, parseOtelEnv, type OtelConfig } from "../config/otel-env.ts";
import { CAPTURE_FORMAT_RAW, type CaptureHeader } from "../capture/format.ts";
import type { LossCounters } from "../spans/model.ts";
import { unknownVersionsPolicy } from "./inspect.ts";
import { parseStatementMode, setStatementMode } from "../probes/databasesql/options.ts";
import { requirePropagation } from "../trace/propagate.ts";

export interface TraceCliOptions {
  /** repeatable (cac gives an array), and each may list several: "12,34" */
  pid?: string | number | (string | number)[];
  exe?: string;
  out?: string;
  duration?: string | number;
  serviceName?: string;
  offsets?: string;
  unknownVersions?: string;
  ringbufSize?: string | number;
  maxSpans?: string | number;
  maxBytes?: string | number;
  rotateSize?: string | number;
  captureFormat?: string | number;
  dryRun?: boolean;
  quiet?: boolean;
  otlp?: string;
  protocol?: string;
  header?: string | string[];
  compression?: string;
  spillDir?: string;
  dbStatement?: string;
  propagate?: boolean;
}

/**
 * `--pid` as given: once, several times (`--pid 12 --pid 34`) or as a list (`--pid 12,34`);
 * each pid once, in the order given.
 */
export function parsePids(v: string | number | (string | number)[]): number[] {
  const out: number[] = [];
  for (const item of Array.isArray(v) ? v : [v]) {
    for (const part of String(item).split(",")) {
      const pid = parsePid(part.trim());
      if (!out.includes(pid)) out.push(pid);
    }
  }
  return out;
}

/** "60", "60s", "500ms", "2m", "1h" → milliseconds. */
export function parseDuration(text: string | number): number {
  const s = String(text).trim();
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new TracerError("usage", `--duration: "${s}" is not a duration`, { hint: "use e.g. 60s, 500ms, 5m or 1h" });
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  const ms = n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000);
  if (!(ms > 0) || ms > 366 * 86_400_000) throw new TracerError("usage", `--duration: ${s} is out of range`, { hint: "use a positive duration up to a year" });
  return ms;
}

/** "4M", "16MiB", "4194304", "1G" → bytes. */
export function parseSize(text: string | number, flag: string): number {
  const s = String(text).trim();
  const m = /^(\d+)\s*(k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(s);
  if (!m) throw new TracerError("usage", `${flag}: "${s}" is not a size`, { hint: "use e.g. 4194304, 64K, 4M or 1G" });
  const unit = (m[2] ?? "").toLowerCase()[0] ?? "";
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1 << 20, g: 1 << 30 };
  const v = Number(m[1]) * mult[unit]!;
  if (!Number.isSafeInteger(v) || v <= 0) throw new TracerError("usage", `${flag}: ${s} is out of range`, { hint: "use a positive size" });
  return v;
}

function parseCount(text: string | number, flag: string): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s) || Number(s) <= 0 || !Number.isSafeInteger(Number(s))) {
    throw new TracerError("usage", `${flag}: "${s}" is not a positive whole number`, { hint: `e.g. ${flag} 10000` });
  }
  return Number(s);
}

/**
 * Where spans go when neither --out nor an OTLP endpoint is given: a capture file in the current
 * directory, one per traced process and run (the tracing line names it).
 */
export const DEFAULT_OUT = "beetrace-{exe}-{pid}-{start}.cbor";

export interface Plan {
  opts: TraceOptions;
  /** capture file template: --out, or DEFAULT_OUT when spans have nowhere else to go */
  template: string | undefined;
  otel: OtelConfig;
  limits: CaptureLimits;
  /** --capture-format: 2 writes raw chunks (format 2); undefined or 3, compressed ones */
  captureFormat: 2 | 3 | undefined;
  durationMs: number | undefined;
  quiet: boolean;
  spillDir: string | undefined;
}

export function parsePlan(o: TraceCliOptions): Plan {
  const otel = mergeFlags(parseOtelEnv(), {
    otlp: o.otlp === undefined ? undefined : String(o.otlp),
    protocol: o.protocol === undefined ? undefined : String(o.protocol),
    header: o.header,
    compression: o.compression === undefined ? undefined : String(o.compression),
    serviceName: o.serviceName === undefined ? undefined : String(o.serviceName),
  });
  const streaming = otel.exporter === "otlp" && otel.endpoint !== undefined;
  const limits: CaptureLimits = {};
  if (o.maxSpans !== undefined) limits.maxSpans = parseCount(o.maxSpans, "--max-spans");
  if (o.maxBytes !== undefined) limits.maxBytes = parseSize(o.maxBytes, "--max-bytes");
  if (o.rotateSize !== undefined) limits.rotateBytes = parseSize(o.rotateSize, "--rotate-size");
  const template = o.out !== undefined && o.out !== "" ? String(o.out) : streaming ? undefined : DEFAULT_OUT;
  // Expand once now so a bad placeholder is a usage error before anything is attached.
  if (template !== undefined) expandTemplate(template, { host: "h", pid: 1, exe: "x", start: new Date(0) }, 0);
  const sampler = makeSampler(otel.sampler);
  if (otel.ignoredPropagators.length > 0) {
    log.warn(`OTEL_PROPAGATORS: ${otel.ignoredPropagators.join(", ")} not read (beetrace reads W3C tracecontext${otel.contextIn ? "" : ", which the list leaves out: incoming trace context is ignored"})`);
  }
  // Read by the database/sql probe's flags() when the session plans its probes.
  setStatementMode(parseStatementMode(o.dbStatement === undefined ? undefined : String(o.dbStatement)));
  // Before anything is touched: a host that cannot propagate fails now (exit 22, with the reason).
  if (o.propagate) requirePropagation();
  return {
    otel,
    opts: {
      serviceName: otel.serviceName,
      resourceAttributes: otel.resourceAttributes,
      // always_on keeps everything; the default parentbased_always_on keeps roots and follows a
      // caller's sampled flag (so the session asks only for traces that came with one).
      sample: otel.sampler.name === "always_on" ? undefined : (traceId, parent) => sampler(traceId, parent),
      sampleRoots: otel.sampler.name !== "parentbased_always_on",
      sampler: otel.sampler,
      contextIn: otel.contextIn,
      offsetsFile: o.offsets === undefined ? undefined : String(o.offsets),
      allowNearest: unknownVersionsPolicy(o.unknownVersions === undefined ? undefined : String(o.unknownVersions)),
      ringbufBytes: o.ringbufSize === undefined ? undefined : parseSize(o.ringbufSize, "--ringbuf-size"),
      dryRun: Boolean(o.dryRun),
      propagate: Boolean(o.propagate),
      serverSlots: serverSlots(process.env.BEETRACE_SERVER_SLOTS),
    },
    template,
    limits,
    captureFormat: captureFormat(o.captureFormat),
    durationMs: o.duration === undefined ? undefined : parseDuration(o.duration),
    quiet: Boolean(o.quiet),
    spillDir: o.spillDir === undefined ? undefined : String(o.spillDir),
  };
}

/**
 * BEETRACE_SERVER_SLOTS (diagnostics and tests): how many slots of the direct-mapped tables by
 * goroutine or context (bpf/include/slots.bpf.h: the net/http server's and client's calls and
 * the client's URLs, the gRPC server's calls and client calls being made, the HTTP/3 server's
 * and client's calls, database/sql, kafka-go and OTel API Start calls, the span each goroutine serves, each context's span) are used, a power of two up to 4096; fewer slots send more goroutines to the LRU maps
 * behind them (1: all but one goroutine at a time).
 */
export function serverSlots(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 4096 || (n & (n - 1)) !== 0) {
    throw new TracerError("usage", `BEETRACE_SERVER_SLOTS=${v} is not a power of two from 1 to 4096`, { hint: "unset it (all 4096 slots) or give 1, 2, 4, ... 4096" });
  }
  return n;
}

/** What is known of the target before it is touched (validating outputs needs it). */
export interface KnownTarget {
  pid?: number;
  exe?: string;
}

/** The directory that will hold `template`'s files, or the nearest fixed ancestor when a placeholder that is not known yet names a directory. */
function outputDir(template: string, known: KnownTarget): { dir: string; exact: boolean } {
  const varying = ["{start}", "{seq}", ...(known.pid === undefined ? ["{pid}"] : []), ...(known.exe === undefined ? ["{exe}"] : [])];
  const values: TemplateValues = { host: hostname(), pid: known.pid ?? 1, exe: known.exe ?? "x", start: new Date() };
  const parts = resolve(template).split(sep);
  parts.pop(); // the file name
  const fixed: string[] = [];
  for (const part of parts) {
    if (varying.some((v) => part.includes(v))) return { dir: fixed.join(sep) || sep, exact: false };
    fixed.push(expandTemplate(part, values, 0));
  }
  return { dir: fixed.join(sep) || sep, exact: true };
}

function checkWritableDir(dir: string, what: string, flag: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new TracerError("file_not_found", `${what}: directory ${dir} does not exist`, { hint: `create it first (mkdir -p ${dir}), or pass another ${flag}` });
    }
    throw fromSystemError(e, `${what}: ${dir}`);
  }
  if (!st.isDirectory()) throw new TracerError("output_failed", `${what}: ${dir} is not a directory`, { hint: `pass another ${flag}` });
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EACCES" || code === "EPERM") {
      throw new TracerError("permission_denied", `${what}: cannot create files in ${dir}`, { hint: `run as root, make ${dir} writable, or pass another ${flag}` });
    }
    // EROFS and the like: the directory exists but nothing can be written there.
    throw new TracerError("output_failed", `${what}: cannot create files in ${dir}: ${(e as Error).message}`, { hint: `pass another ${flag}` });
  }
}

/**
 * Everything a session will write can be created: the template expands, its directory exists
 * and is writable, the path is not a directory; likewise the spill directory of the OTLP
 * exporter. Runs before the target is touched, so a bad --out costs nothing (no attach, no
 * "tracing pid" line, no program started by `run`).
 */
export function checkOutputs(plan: Plan, known: KnownTarget): void {
  const t = plan.template;
  if (t !== undefined) {
    const values: TemplateValues = { host: hostname(), pid: known.pid ?? 1, exe: known.exe ?? "x", start: new Date() };
    const path = expandTemplate(t, values, 0); // throws usage on an unknown placeholder
    const { dir, exact } = outputDir(t, known);
    checkWritableDir(dir, `--out ${t}`, "--out");
    if (exact && statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      throw new TracerError("output_failed", `--out: ${path} is a directory`, { hint: "pass a file name, e.g. --out dir/cap.cbor" });
    }
  }
  if (plan.otel.exporter === "otlp" && plan.otel.endpoint !== undefined) {
    const spill = plan.spillDir ?? (t !== undefined ? outputDir(t, known).dir : process.cwd());
    checkWritableDir(resolve(spill), "spill directory", "--spill-dir");
  }
}

type OtlpModule = typeof import("../trace/otlp-sink.ts");

/** --capture-format: 3 (default, compressed chunks) or 2 (raw chunks, for beetrace versions that predate 3). */
function captureFormat(v: string | number | undefined): 2 | 3 | undefined {
  if (v === undefined) return undefined;
  const s = String(v).trim();
  if (s === "2" || s === "3") return s === "2" ? 2 : 3;
  throw new TracerError("usage", `--capture-format must be 2 or 3, not ${JSON.stringify(s)}`, {
    hint: "3 (the default) compresses each tick's records; 2 writes them raw, readable by beetrace versions older than format 3, ~3x larger",
  });
}

/** The OTLP sink's module, loaded only when the plan streams OTLP. */
async function loadOtlp(plan: Plan): Promise<OtlpModule | undefined> {
  return plan.otel.exporter === "otlp" && plan.otel.endpoint !== undefined ? await import("../trace/otlp-sink.ts") : undefined;
}

/** The sinks of one traced process: capture files (--out), the OTLP exporter (--otlp / env), or both. */
function openSinks(plan: Plan, template: string | undefined, values: TemplateValues, header: CaptureHeader, otlp: OtlpModule | undefined): SpanSink {
  const sinks: SpanSink[] = [];
  if (template !== undefined) sinks.push(new CaptureSink(template, values, header, plan.limits, { compress: plan.captureFormat !== CAPTURE_FORMAT_RAW }));
  const o = plan.otel;
  if (o.exporter === "otlp" && o.endpoint !== undefined) {
    if (otlp === undefined) throw new TracerError("internal", "OTLP output requested but its module was not loaded");
    const { OtlpSink } = otlp;
    const dir = plan.spillDir ?? (template !== undefined ? dirname(resolve(expandTemplate(template, values, 0))) : process.cwd());
    sinks.push(
      new OtlpSink({
        endpoint: o.endpoint,
        protocol: o.protocol,
        headers: o.headers,
        compression: o.compression,
        timeoutMs: o.timeoutMs,
        resource: header.resource ?? {},
        spill: { path: join(dir, `beetrace-spill-${values.pid}-${formatStart(values.start)}.cbor`), header },
      }),
    );
  }
  return sinks.length === 1 ? sinks[0]! : new FanOutSink(sinks);
}

/** An AbortSignal fired by SIGINT, SIGTERM or the end of --duration. */
function stopSignal(durationMs: number | undefined): { signal: AbortSignal; cleanup: () => void } {
  const ac = new AbortController();
  const onInt = () => ac.abort("interrupted (SIGINT)");
  const onTerm = () => ac.abort("terminated (SIGTERM)");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const timer = durationMs !== undefined ? setTimeout(() => ac.abort("duration reached"), durationMs) : undefined;
  return {
    signal: ac.signal,
    cleanup: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      if (timer) clearTimeout(timer);
    },
  };
}

/** A live one-line status on a terminal (stderr), redrawn once a second. */
class StatusLine {
  #last = { at: Date.now(), spans: 0 };
  #text = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly enabled: boolean;
  constructor(quiet: boolean, private readonly describe: () => { spans: number; dropped: number; probes: number; uprobes: number; outputs: string }) {
    this.enabled = !quiet && Boolean(process.stderr.isTTY);
    if (this.enabled) this.#timer = setInterval(() => this.draw(), 1000);
  }
  draw(): void {
    const s = this.describe();
    const now = Date.now();
    const rate = ((s.spans - this.#last.spans) * 1000) / Math.max(1, now - this.#last.at);
    this.#last = { at: now, spans: s.spans };
    this.#text = `beetrace: ${s.spans} spans (${rate.toFixed(0)}/s), dropped ${s.dropped}, ${s.probes} probes (${s.uprobes} uprobes) → ${s.outputs}`;
    const cols = process.stderr.columns ?? 80;
    process.stderr.write(`\r\x1b[K${this.#text.slice(0, cols - 1)}`);
  }
  /** Stop redrawing and erase the line; safe to call more than once (the summary and finally both do). */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.enabled && this.#text) process.stderr.write("\r\x1b[K");
    this.#text = "";
  }
}

function report(summary: TraceSummary, pid: number, quiet: boolean): void {
  const l = summary.losses;
  const lost = l.ringbufFull + l.inflightFull;
  if (lost > 0) {
    log.warn(`pid ${pid}: ${lost} calls were not traced (ring buffer full: ${l.ringbufFull}, in-flight map full: ${l.inflightFull})`);
    log.hint("raise --ringbuf-size (e.g. 16M) if the ring buffer filled up");
  }
  if (quiet) return;
  log.info(`beetrace: pid ${pid}: ${summary.stopReason}; wrote ${summary.spans} span${summary.spans === 1 ? "" : "s"} to ${summary.outputs.join(", ")}`);
  if (l.incomplete > 0) log.info(`  ${l.incomplete} calls were still running or never returned (panic/Goexit) when tracing stopped`);
  if (l.returnWithoutEntry + l.endWithoutStart > 0) log.info(`  ${l.returnWithoutEntry + l.endWithoutStart} returns had no matching entry (calls already running when tracing began)`);
  if (l.truncatedStrings > 0) log.verbose(`  ${l.truncatedStrings} string fields were longer than their buffers and were truncated`);
}

interface Live {
  spans: number;
  losses: LossCounters | undefined;
  probes: number;
  uprobes: number;
  outputs: string;
}

/**
 * The processes one command or one scan names (attach --pid A --pid B, --exe) start tracing
 * together: sessions prepare one after another (TraceSession.prepare), and each prints its
 * "tracing" line and starts only once every one of them is prepared or has failed, so the first
 * line means all are traced.
 */
interface StartTogether {
  /** This session is prepared: wait for the others. */
  ready(): Promise<void>;
  /** This session will not be prepared. */
  failed(): void;
}

function startTogether(count: number): StartTogether {
  let left = count;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  const arrive = () => {
    if (--left <= 0) release();
  };
  return {
    ready: () => {
      arrive();
      return all;
    },
    failed: arrive,
  };
}

/** Trace one process until `signal`, the target exiting, or a limit; returns its summary. */
async function traceOne(
  target: AttachTarget,
  plan: Plan,
  template: string | undefined,
  signal: AbortSignal,
  live: Live,
  onAttached?: () => void,
  together?: StartTogether,
): Promise<TraceSummary> {
  let prepared = false;
  try {
    using lock = TargetLock.acquire(target.process);
    void lock;
    const otlp = await loadOtlp(plan);
    using session = await TraceSession.prepare(target, plan.opts);
    prepared = true;
    await together?.ready();
    const probes = session.attachedProbes().map((p) => p.probe.id);
    // Provenance of the offsets in use (dwarf/file/snapshot/guess), also in the capture header.
    const offsetSources = [...new Set(session.attachedProbes().flatMap((p) => p.fields.flatMap((f) => (typeof f.offset === "number" && f.source ? [f.source] : []))))].sort();
    const start = new Date();
    const values = { host: hostname(), pid: target.process.pid, exe: target.process.exePath, start };
    const first = [template !== undefined ? expandTemplate(template, values, 0) : undefined, plan.otel.exporter === "otlp" ? plan.otel.endpoint : undefined]
      .filter((x) => x !== undefined)
      .join(" + ");
    if (!plan.quiet) {
      log.info(
        `beetrace: tracing pid ${target.process.pid} (${target.process.exePath}, ${session.goVersion}) — ${probes.join(", ")}; ` +
          `${session.uprobeCount} uprobes, offsets from ${offsetSources.join("+") || "nowhere"} → ${first}${plan.opts.dryRun ? " (dry run)" : plan.durationMs ? ` for ${plan.durationMs / 1000}s` : "; Ctrl-C stops"}`,
      );
    }
    // Said once per attach, and kept out of -q: a cron job must not mail about a known gap every run.
    if (!plan.quiet) for (const u of session.untraced) log.info(`beetrace: not traced: ${u.name} (${u.via}): ${u.what}`);
    live.probes += probes.length;
    live.uprobes += session.uprobeCount;
    live.outputs = first;
    onAttached?.();
    trimAfterAttach(); // start-up's memory back before the first drain (trace/footprint.ts)
    const base = { spans: live.spans };
    try {
      return await session.run(
        signal,
        (header) => openSinks(plan, template, values, header, otlp),
        (t) => {
          live.spans = base.spans + t.spans;
          live.losses = t.losses;
        },
      );
    } finally {
      live.probes -= probes.length;
      live.uprobes -= session.uprobeCount;
    }
  } finally {
    if (!prepared) together?.failed();
  }
}

function liveDescribe(live: Live) {
  return () => ({
    spans: live.spans,
    dropped: live.losses ? live.losses.ringbufFull + live.losses.inflightFull : 0,
    probes: live.probes,
    uprobes: live.uprobes,
    outputs: live.outputs,
  });
}

export async function attachCommand(o: TraceCliOptions): Promise<number> {
  // Start-up stage (-v; bench/startup.bench.ts): the program is loaded, ms since the process started.
  startupStage("attach command");
  // Drop-in for OTel Go auto-instrumentation: OTEL_GO_AUTO_TARGET_PID / _EXE name the target.
  if (o.pid === undefined && o.exe === undefined) {
    const env = parseOtelEnv().target;
    if (env.pid !== undefined) o = { ...o, pid: env.pid };
    else if (env.exe !== undefined) o = { ...o, exe: env.exe };
  }
  if ((o.pid === undefined) === (o.exe === undefined)) {
    throw new TracerError("usage", "attach needs --pid N (one or more) or --exe PATH, not both", { hint: "beetrace attach --pid 1234 --out cap.cbor" });
  }
  const plan = parsePlan(o);
  // Reading /proc and checking paths does not touch the target: both come before the lock.
  const procs = o.pid !== undefined ? parsePids(o.pid).map((pid) => describeProcess(pid)) : [];
  const exe = o.exe !== undefined ? checkExe(String(o.exe)) : undefined;
  // Several processes: each into its own file, as with --exe.
  const template = procs.length > 1 ? perProcessTemplate(plan.template) : plan.template;
  if (procs.length > 0) for (const proc of procs) checkOutputs({ ...plan, template }, { pid: proc.pid, exe: proc.exePath });
  else checkOutputs(plan, { exe });
  const stop = stopSignal(plan.durationMs);
  const live: Live = { spans: 0, losses: undefined, probes: 0, uprobes: 0, outputs: "" };
  const status = new StatusLine(plan.quiet, liveDescribe(live));
  // One set of cross-process maps for every session of this command (live joins between the
  // traced processes); closed once they have all ended.
  using processMaps = new ProcessMaps();
  // Sites that serve only live joins cost a hit per call: placed when several processes can be
  // traced by this command (--pid given several, or --exe, which follows every process of it).
  const shared: Plan = { ...plan, opts: { ...plan.opts, processMaps, liveJoins: procs.length > 1 || exe !== undefined } };
  try {
    if (procs.length > 0) {
      await tracePids(procs, shared, template, stop.signal, live, status);
      return 0;
    }
    return await followExe(exe!, shared, stop.signal, live, status);
  } finally {
    status.stop();
    stop.cleanup();
  }
}

/**
 * `attach --pid A [--pid B …]`: every process traced at once, each into its own session and
 * output. Any of them failing to start tracing stops the others and is the command's error, as
 * it is for a single pid; a process that exits ends only its own session.
 */
async function tracePids(procs: TargetProcess[], plan: Plan, template: string | undefined, signal: AbortSignal, live: Live, status: StatusLine): Promise<void> {
  const failed = new AbortController();
  const both = AbortSignal.any([signal, failed.signal]);
  let first: unknown;
  const together = startTogether(procs.length);
  await Promise.all(
    procs.map((proc) =>
      traceOne({ process: proc, binaryPath: proc.exeLink, readPath: proc.exeLink }, plan, template, both, live, undefined, together).then(
        (summary) => {
          status.stop();
          report(summary, proc.pid, plan.quiet);
        },
        (e) => {
          first ??= e;
          failed.abort(`pid ${proc.pid} could not be traced`);
        },
      ),
    ),
  );
  if (first !== undefined) throw first;
}

/** `attach --exe PATH`: the file must exist now (a typo must not wait silently forever). */
export function checkExe(path: string): string {
  const abs = resolve(path);
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new TracerError("file_not_found", `--exe ${abs}: no such file`, {
        hint: "pass the path of the service's executable as running processes see it (ls -l /proc/PID/exe), e.g. --exe /usr/bin/myservice",
      });
    }
    throw fromSystemError(e, `--exe ${abs}`);
  }
  if (!st.isFile()) throw new TracerError("io_error", `--exe ${abs}: not a regular file`, { hint: "pass the path of the service's executable file" });
  return abs;
}

/** Insert ".{pid}" before the extension so each traced process gets its own file. */
function perProcessTemplate(template: string | undefined): string | undefined {
  if (template === undefined || template.includes("{pid}")) return template;
  const ext = extname(template);
  return ext ? `${template.slice(0, -ext.length)}.{pid}${ext}` : `${template}.{pid}`;
}

/**
 * Follow every process executing `exe` until stopped: new processes (including restarts) are
 * picked up within one poll interval (100 ms), each traced into its own file.
 */
async function followExe(exe: string, plan: Plan, signal: AbortSignal, live: Live, status: StatusLine): Promise<number> {
  const template = perProcessTemplate(plan.template);
  const running = new Map<string, Promise<void>>();
  const seen = new Set<string>();
  let attached = 0;
  let lastFailure: TracerError | undefined;
  let fatal: TracerError | undefined;
  if (!plan.quiet) log.info(`beetrace: waiting for processes executing ${exe} (Ctrl-C stops)`);
  while (!signal.aborted && !fatal) {
    let procs: TargetProcess[] = [];
    try {
      procs = findProcessesByExe(exe);
    } catch (e) {
      if (!isTracerError(e)) throw e;
    }
    const fresh = procs.filter((p) => !seen.has(`${p.pid}:${p.startTicks}`));
    const together = startTogether(fresh.length);
    for (const p of fresh) {
      const key = `${p.pid}:${p.startTicks}`;
      seen.add(key);
      const job = traceOne({ process: p, binaryPath: p.exeLink, readPath: p.exeLink }, plan, template, signal, live, () => attached++, together)
        .then((summary) => {
          status.stop();
          report(summary, p.pid, plan.quiet);
        })
        .catch((e) => {
          if (!isTracerError(e)) throw e;
          // One process failing (exited during attach, unsupported build) must not stop the others,
          // but a failing output must (nothing else can be written either), and so must another
          // beetrace on the same service: refused as `attach --pid` refuses it (exit 21).
          if (e.code === "output_failed" || e.code === "already_traced") fatal ??= e;
          lastFailure = e;
          log.warn(`pid ${p.pid}: ${e.message}`);
          if (e.hint) log.hint(e.hint);
        })
        .finally(() => running.delete(key));
      running.set(key, job);
    }
    if (plan.limits.maxSpans !== undefined && live.spans >= plan.limits.maxSpans) break;
    await new Promise<void>((r) => {
      const t = setTimeout(r, 100);
      signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
    });
  }
  await Promise.all(running.values());
  if (fatal) throw fatal;
  // Nothing traced in the whole session is a failure cron must see (exit 25), not a quiet 0.
  if (attached === 0) {
    if (seen.size === 0) {
      throw new TracerError("nothing_attached", `no process executed ${exe} during the session`, {
        hint: "start the service first, or check that PATH is the file it runs (ls -l /proc/PID/exe)",
      });
    }
    throw new TracerError("nothing_attached", `none of the ${seen.size} process${seen.size === 1 ? "" : "es"} executing ${exe} could be traced`, {
      hint: lastFailure?.hint ?? "run 'beetrace inspect --pid N' to see what is missing",
      detail: lastFailure ? [lastFailure.message] : undefined,
    });
  }
  return 0;
}

/** PATH lookup the way a shell does it, so `run -- server` finds the same file exec will. */
export function resolveCommand(cmd: string): string {
  if (cmd.includes("/")) return resolve(cmd);
  for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new TracerError("file_not_found", `${cmd}: command not found in PATH`, { hint: "pass the path of the Go executable, e.g. ./server" });
}

/** How a process ended, as a shell reports it: its exit code, or 128+N for a death by signal N. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0);
  return code ?? 0;
}

/** How long a program `run` started may take to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

export async function runCommand(argv: string[], o: TraceCliOptions): Promise<number> {
  if (argv.length === 0) throw new TracerError("usage", "run needs a command after --", { hint: "beetrace run --out cap.cbor -- ./server --port 8080" });
  const plan = parsePlan(o);
  const exe = resolveCommand(String(argv[0]));
  let real: string;
  try {
    real = realpathSync(exe);
  } catch {
    throw new TracerError("file_not_found", `${exe}: no such file`, { hint: "check the path of the program to run" });
  }
  if (!isAbsolute(real)) real = resolve(real);
  // Before the program starts: a bad --out must not leave a started, untraced program behind.
  checkOutputs(plan, { exe: real });

  // The shell stops itself before exec; argv[0] of the program stays what the user typed.
  const child: ChildProcess = childProcess().spawn("/bin/sh", ["-c", 'kill -STOP $$; exec "$@"', "beetrace-run", exe, ...argv.slice(1).map(String)], {
    stdio: "inherit",
  });
  const pid = child.pid;
  if (pid === undefined) throw new TracerError("io_error", `could not start ${exe}`, { hint: "check that /bin/sh exists and the program is executable" });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((r) =>
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      r();
    }),
  );
  const stop = stopSignal(plan.durationMs);
  const live: Live = { spans: 0, losses: undefined, probes: 0, uprobes: 0, outputs: "" };
  const status = new StatusLine(plan.quiet, liveDescribe(live));
  let continued = false;
  const resume = () => {
    if (continued) return;
    continued = true;
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      /* already gone */
    }
  };
  let stoppedByUs = false;
  try {
    const deadline = Date.now() + 10_000;
    while (readState(pid) !== "T") {
      if (exit || Date.now() > deadline) throw new TracerError("io_error", `${exe} did not start`, { hint: "check that the program runs on its own" });
      await new Promise((r) => setTimeout(r, 2));
    }
    try {
      const proc: TargetProcess = { ...describeProcess(pid), exePath: real };
      const summary = await traceOne({ process: proc, binaryPath: real, readPath: real }, plan, plan.template, stop.signal, live, resume);
      status.stop();
      report(summary, pid, plan.quiet);
    } catch (e) {
      // The program runs whatever happened to tracing (no probe attached, an output failed).
      resume();
      status.stop();
      if (isTracerError(e)) {
        log.error(e.message);
        if (e.hint) log.hint(e.hint);
        if (e.detail) for (const line of e.detail) log.verbose(`  ${line}`);
      } else {
        log.error(`BUG: tracing failed: ${e instanceof Error ? e.message : String(e)}`);
        log.hint("please report this with the output of 'beetrace -v ...'");
      }
      log.warn(`pid ${pid} (${real}) runs on untraced; beetrace exits with its exit status`);
      // Until the program exits, or beetrace is told to stop (Ctrl-C, SIGTERM, --duration).
      await Promise.race([exited, new Promise<void>((r) => (stop.signal.aborted ? r() : stop.signal.addEventListener("abort", () => r(), { once: true })))]);
    }
    resume();
    // `run` owns the program: it does not outlive the session (SIGTERM, then SIGKILL after a grace period).
    if (!exit) {
      stoppedByUs = true;
      await stopProgram(pid, exited);
    }
    await exited;
    const e = exit!;
    // A death by the SIGTERM beetrace sent at the end of the session is the session ending as asked.
    if (stoppedByUs && e.signal === "SIGTERM") return 0;
    return exitStatus(e.code, e.signal);
  } finally {
    status.stop();
    stop.cleanup();
    if (!exit) {
      // Failing before the program ran (it never started, or a bug): do not leave it stopped behind.
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  }
}

/** SIGTERM (with SIGCONT, in case it is stopped), then SIGKILL if it has not exited within STOP_GRACE_MS. */
async function stopProgram(pid: number, exited: Promise<void>): Promise<void> {
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  send("SIGCONT");
  send("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS)));
  const late = await Promise.race([exited.then(() => false), graceOver]);
  clearTimeout(timer);
  if (late) {
    log.warn(`pid ${pid} did not exit within ${STOP_GRACE_MS / 1000} s of SIGTERM: killing it`);
    send("SIGKILL");
  }
}
