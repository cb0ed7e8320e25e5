/**
 * @module cli/trace — `beetrace attach --pid N | --exe PATH` and `beetrace run -- CMD ARGS…`.
 *
 * `run` starts the program stopped — a /bin/sh that SIGSTOPs itself and then execs the command,
 * so the pid never changes — attaches the pid-filtered uprobes to the Go executable, and only
 * then lets it continue: the very first request is traced. Uprobes registered on a file are
 * inserted into a process when it maps that file (kernel/events/uprobes.c, uprobe_mmap).
 *
 * `attach --exe PATH` follows the service: it waits for a process executing PATH, traces every
 * such process (each into its own file), and attaches again when the service restarts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { delimiter, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { TracerError, isTracerError } from "../errors.ts";
import { log } from "../log.ts";
import { describeProcess, findProcessesByExe, parsePid, type TargetProcess } from "../target/process.ts";
import { TargetLock } from "../target/lock.ts";
import { TraceSession, type AttachTarget, type TraceOptions, type TraceSummary } from "../trace/session.ts";
import { CaptureSink, FanOutSink, OtlpSink, expandTemplate, formatStart, type CaptureLimits, type SpanSink, type TemplateValues } from "../trace/output.ts";
import { makeSampler, mergeFlags, parseOtelEnv, type OtelConfig } from "../config/otel-env.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { LossCounters } from "../spans/model.ts";
import { unknownVersionsPolicy } from "./inspect.ts";

export interface TraceCliOptions {
  pid?: string | number;
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
  dryRun?: boolean;
  quiet?: boolean;
  otlp?: string;
  protocol?: string;
  header?: string | string[];
  compression?: string;
  spillDir?: string;
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

interface Plan {
  opts: TraceOptions;
  /** capture file template, when --out was given */
  template: string | undefined;
  otel: OtelConfig;
  limits: CaptureLimits;
  durationMs: number | undefined;
  quiet: boolean;
  spillDir: string | undefined;
}

function parsePlan(o: TraceCliOptions): Plan {
  const otel = mergeFlags(parseOtelEnv(), {
    otlp: o.otlp === undefined ? undefined : String(o.otlp),
    protocol: o.protocol === undefined ? undefined : String(o.protocol),
    header: o.header,
    compression: o.compression === undefined ? undefined : String(o.compression),
    serviceName: o.serviceName === undefined ? undefined : String(o.serviceName),
  });
  const streaming = otel.exporter === "otlp" && otel.endpoint !== undefined;
  if (!o.out && !streaming) {
    throw new TracerError("usage", "nowhere to write spans: pass --out FILE and/or --otlp URL", {
      hint: "e.g. --out capture.cbor (view it with 'beetrace view'), or --otlp http://collector:4318 (or set OTEL_EXPORTER_OTLP_ENDPOINT)",
    });
  }
  const limits: CaptureLimits = {};
  if (o.maxSpans !== undefined) limits.maxSpans = parseCount(o.maxSpans, "--max-spans");
  if (o.maxBytes !== undefined) limits.maxBytes = parseSize(o.maxBytes, "--max-bytes");
  if (o.rotateSize !== undefined) limits.rotateBytes = parseSize(o.rotateSize, "--rotate-size");
  const template = o.out === undefined ? undefined : String(o.out);
  // Expand once now so a bad placeholder is a usage error before anything is attached.
  if (template !== undefined) expandTemplate(template, { host: "h", pid: 1, exe: "x", start: new Date(0) }, 0);
  const sampler = makeSampler(otel.sampler);
  return {
    otel,
    opts: {
      serviceName: otel.serviceName,
      resourceAttributes: otel.resourceAttributes,
      sample: otel.sampler.name === "always_on" || otel.sampler.name === "parentbased_always_on" ? undefined : (traceId) => sampler(traceId, undefined),
      offsetsFile: o.offsets === undefined ? undefined : String(o.offsets),
      allowNearest: unknownVersionsPolicy(o.unknownVersions === undefined ? undefined : String(o.unknownVersions)),
      ringbufBytes: o.ringbufSize === undefined ? undefined : parseSize(o.ringbufSize, "--ringbuf-size"),
      dryRun: Boolean(o.dryRun),
    },
    template,
    limits,
    durationMs: o.duration === undefined ? undefined : parseDuration(o.duration),
    quiet: Boolean(o.quiet),
    spillDir: o.spillDir === undefined ? undefined : String(o.spillDir),
  };
}

/** The sinks of one traced process: capture files (--out), the OTLP exporter (--otlp / env), or both. */
function openSinks(plan: Plan, template: string | undefined, values: TemplateValues, header: CaptureHeader): SpanSink {
  const sinks: SpanSink[] = [];
  if (template !== undefined) sinks.push(new CaptureSink(template, values, header, plan.limits));
  const o = plan.otel;
  if (o.exporter === "otlp" && o.endpoint !== undefined) {
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

/** Trace one process until `signal`, the target exiting, or a limit; returns its summary. */
async function traceOne(target: AttachTarget, plan: Plan, template: string | undefined, signal: AbortSignal, live: Live, onAttached?: () => void): Promise<TraceSummary> {
  using lock = TargetLock.acquire(target.process);
  void lock;
  using session = await TraceSession.prepare(target, plan.opts);
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
      `beetrace: tracing pid ${target.process.pid} (${target.process.exePath}, ${session.analysis.goVersion}) — ${probes.join(", ")}; ` +
        `${session.uprobeCount} uprobes, offsets from ${offsetSources.join("+") || "nowhere"} → ${first}${plan.opts.dryRun ? " (dry run)" : plan.durationMs ? ` for ${plan.durationMs / 1000}s` : "; Ctrl-C stops"}`,
    );
  }
  live.probes += probes.length;
  live.uprobes += session.uprobeCount;
  live.outputs = first;
  onAttached?.();
  const base = { spans: live.spans };
  try {
    return await session.run(
      signal,
      (header) => openSinks(plan, template, values, header),
      (t) => {
        live.spans = base.spans + t.spans;
        live.losses = t.losses;
      },
    );
  } finally {
    live.probes -= probes.length;
    live.uprobes -= session.uprobeCount;
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
  // Drop-in for OTel Go auto-instrumentation: OTEL_GO_AUTO_TARGET_PID / _EXE name the target.
  if (o.pid === undefined && o.exe === undefined) {
    const env = parseOtelEnv().target;
    if (env.pid !== undefined) o = { ...o, pid: env.pid };
    else if (env.exe !== undefined) o = { ...o, exe: env.exe };
  }
  if ((o.pid === undefined) === (o.exe === undefined)) {
    throw new TracerError("usage", "attach needs exactly one of --pid N or --exe PATH", { hint: "beetrace attach --pid 1234 --out cap.cbor" });
  }
  const plan = parsePlan(o);
  const stop = stopSignal(plan.durationMs);
  const live: Live = { spans: 0, losses: undefined, probes: 0, uprobes: 0, outputs: "" };
  const status = new StatusLine(plan.quiet, liveDescribe(live));
  try {
    if (o.pid !== undefined) {
      const proc = describeProcess(parsePid(String(o.pid)));
      const summary = await traceOne({ process: proc, binaryPath: proc.exeLink, readPath: proc.exeLink }, plan, plan.template, stop.signal, live);
      status.stop();
      report(summary, proc.pid, plan.quiet);
      return 0;
    }
    return await followExe(resolve(String(o.exe)), plan, stop.signal, live, status);
  } finally {
    status.stop();
    stop.cleanup();
  }
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
  let traced = 0;
  let fatal: TracerError | undefined;
  if (!plan.quiet) log.info(`beetrace: waiting for processes executing ${exe} (Ctrl-C stops)`);
  while (!signal.aborted && !fatal) {
    let procs: TargetProcess[] = [];
    try {
      procs = findProcessesByExe(exe);
    } catch (e) {
      if (!isTracerError(e)) throw e;
    }
    for (const p of procs) {
      const key = `${p.pid}:${p.startTicks}`;
      if (seen.has(key)) continue;
      seen.add(key);
      traced++;
      const job = traceOne({ process: p, binaryPath: p.exeLink, readPath: p.exeLink }, plan, template, signal, live)
        .then((summary) => {
          status.stop();
          report(summary, p.pid, plan.quiet);
        })
        .catch((e) => {
          if (!isTracerError(e)) throw e;
          // One process failing (exited during attach, unsupported build) must not stop the others,
          // but a failing output must: nothing else can be written either.
          if (e.code === "output_failed") fatal = e;
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
  if (traced === 0 && !plan.quiet) log.info(`beetrace: no process executed ${exe} while waiting`);
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

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

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

  // The shell stops itself before exec; argv[0] of the program stays what the user typed.
  const child: ChildProcess = spawn("/bin/sh", ["-c", 'kill -STOP $$; exec "$@"', "beetrace-run", exe, ...argv.slice(1).map(String)], {
    stdio: "inherit",
  });
  const pid = child.pid;
  if (pid === undefined) throw new TracerError("io_error", `could not start ${exe}`, { hint: "check that /bin/sh exists and the program is executable" });
  let exited = false;
  child.on("exit", () => (exited = true));
  const stop = stopSignal(plan.durationMs);
  const live: Live = { spans: 0, losses: undefined, probes: 0, uprobes: 0, outputs: "" };
  const status = new StatusLine(plan.quiet, liveDescribe(live));
  try {
    const deadline = Date.now() + 10_000;
    while (processState(pid) !== "T") {
      if (exited || Date.now() > deadline) throw new TracerError("io_error", `${exe} did not start`, { hint: "check that the program runs on its own" });
      await new Promise((r) => setTimeout(r, 2));
    }
    const proc: TargetProcess = { ...describeProcess(pid), exePath: real };
    const summary = await traceOne({ process: proc, binaryPath: real, readPath: real }, plan, plan.template, stop.signal, live, () => process.kill(pid, "SIGCONT"));
    status.stop();
    report(summary, pid, plan.quiet);
    return 0;
  } finally {
    status.stop();
    stop.cleanup();
    // `run` owns the program: it does not outlive the trace.
    if (!exited) {
      try {
        process.kill(pid, "SIGCONT");
        process.kill(pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
  }
}
