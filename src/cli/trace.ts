/**
 * @module cli/trace — `beetrace attach --pid N | --exe PATH` and `beetrace run -- CMD ARGS…`.
 *
 * `run` starts the program stopped — a /bin/sh that SIGSTOPs itself and then execs the command,
 * so the pid never changes — attaches the pid-filtered uprobes to the Go executable, and only
 * then lets it continue: the very first request is traced. Uprobes registered on a file are
 * inserted into a process when it maps that file (kernel/events/uprobes.c, uprobe_mmap).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { TracerError } from "../errors.ts";
import { log } from "../log.ts";
import { describeProcess, findProcessesByExe, parsePid, type TargetProcess } from "../target/process.ts";
import { TraceSession, type AttachTarget, type TraceOptions, type TraceSummary } from "../trace/session.ts";
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
  dryRun?: boolean;
  quiet?: boolean;
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

/** "4M", "16MiB", "4194304" → bytes (power of two checked when the map is sized). */
export function parseSize(text: string | number): number {
  const s = String(text).trim();
  const m = /^(\d+)\s*(k|kib|m|mib|g|gib)?$/i.exec(s);
  if (!m) throw new TracerError("usage", `"${s}" is not a size`, { hint: "use e.g. 4194304, 4M or 16MiB" });
  const mult: Record<string, number> = { "": 1, k: 1024, kib: 1024, m: 1 << 20, mib: 1 << 20, g: 1 << 30, gib: 1 << 30 };
  return Number(m[1]) * mult[(m[2] ?? "").toLowerCase()]!;
}

function traceOptions(o: TraceCliOptions): TraceOptions {
  if (!o.out) throw new TracerError("usage", "--out FILE is required", { hint: "e.g. --out capture.cbor (view it later with 'beetrace view capture.cbor')" });
  return {
    out: String(o.out),
    serviceName: o.serviceName === undefined ? undefined : String(o.serviceName),
    offsetsFile: o.offsets === undefined ? undefined : String(o.offsets),
    allowNearest: unknownVersionsPolicy(o.unknownVersions === undefined ? undefined : String(o.unknownVersions)),
    ringbufBytes: o.ringbufSize === undefined ? undefined : parseSize(o.ringbufSize),
    dryRun: Boolean(o.dryRun),
  };
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

function report(summary: TraceSummary, quiet: boolean): void {
  if (quiet) return;
  const l = summary.losses;
  log.info(`beetrace: ${summary.stopReason}; wrote ${summary.spans} span${summary.spans === 1 ? "" : "s"} to ${summary.out}`);
  const lost = l.ringbufFull + l.inflightFull;
  if (lost > 0) {
    log.warn(`${lost} calls were not traced (ring buffer full: ${l.ringbufFull}, in-flight map full: ${l.inflightFull})`);
    log.hint("raise --ringbuf-size (e.g. 16M) if the ring buffer filled up");
  }
  if (l.incomplete > 0) log.info(`  ${l.incomplete} calls were still running or never returned (panic/Goexit) when tracing stopped`);
  if (l.returnWithoutEntry + l.endWithoutStart > 0) log.info(`  ${l.returnWithoutEntry + l.endWithoutStart} returns had no matching entry (calls already running when tracing began)`);
  if (l.truncatedStrings > 0) log.verbose(`  ${l.truncatedStrings} string fields were longer than their buffers and were truncated`);
}

async function traceOne(target: AttachTarget, opts: TraceOptions, durationMs: number | undefined, quiet: boolean, onAttached?: () => void): Promise<number> {
  const stop = stopSignal(durationMs);
  try {
    using session = TraceSession.prepare(target, opts);
    const probes = session.attachedProbes().map((p) => p.probe.id).join(", ");
    if (!quiet) {
      log.info(
        `beetrace: tracing pid ${target.process.pid} (${target.process.exePath}, ${session.analysis.goVersion}) — ${probes}; ` +
          `${session.uprobeCount} uprobes → ${opts.out}${opts.dryRun ? " (dry run)" : durationMs ? ` for ${durationMs / 1000}s` : "; Ctrl-C stops"}`,
      );
    }
    onAttached?.();
    const summary = await session.run(stop.signal);
    report(summary, quiet);
    return 0;
  } finally {
    stop.cleanup();
  }
}

export async function attachCommand(o: TraceCliOptions): Promise<number> {
  if ((o.pid === undefined) === (o.exe === undefined)) {
    throw new TracerError("usage", "attach needs exactly one of --pid N or --exe PATH", { hint: "beetrace attach --pid 1234 --out cap.cbor" });
  }
  const opts = traceOptions(o);
  const durationMs = o.duration === undefined ? undefined : parseDuration(o.duration);
  let proc: TargetProcess;
  if (o.pid !== undefined) {
    proc = describeProcess(parsePid(String(o.pid)));
  } else {
    const exe = resolve(String(o.exe));
    const found = findProcessesByExe(exe);
    if (found.length === 0) {
      throw new TracerError("target_not_found", `no running process executes ${exe}`, { hint: "start the service first, or check the path (compare with 'ls -l /proc/PID/exe')" });
    }
    if (found.length > 1) log.warn(`${found.length} processes execute ${exe}; tracing the first, pid ${found[0]!.pid} (use --pid to choose)`);
    proc = found[0]!;
  }
  return traceOne({ process: proc, binaryPath: proc.exeLink, readPath: proc.exeLink }, opts, durationMs, Boolean(o.quiet));
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
  const opts = traceOptions(o);
  const durationMs = o.duration === undefined ? undefined : parseDuration(o.duration);
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
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on("exit", (code, signal) => (exited = { code, signal }));

  const deadline = Date.now() + 10_000;
  while (processState(pid) !== "T") {
    if (exited || Date.now() > deadline) throw new TracerError("io_error", `${exe} did not start`, { hint: "check that the program runs on its own" });
    await new Promise((r) => setTimeout(r, 2));
  }
  const proc: TargetProcess = { ...describeProcess(pid), exePath: real };
  try {
    return await traceOne({ process: proc, binaryPath: real, readPath: real }, opts, durationMs, Boolean(o.quiet), () => process.kill(pid, "SIGCONT"));
  } finally {
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
