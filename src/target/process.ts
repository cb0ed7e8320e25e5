/**
 * @module target/process — find and describe target processes through /proc.
 *
 * Uprobes attach to a file (inode) at a file offset, filtered by pid; so for a running process
 * we open its executable through /proc/PID/exe, which works even if the file on disk was replaced
 * or deleted after the process started (the link still names the mapped inode).
 */
import { Buffer } from "node:buffer";
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";

export interface TargetProcess {
  pid: number;
  /** path to open for reading and attaching: /proc/PID/exe */
  exeLink: string;
  /** what the link points to (may end in " (deleted)") */
  exePath: string;
  /** short command name from /proc/PID/comm */
  comm: string;
  /** /proc/PID/stat field 22 (starttime, clock ticks since boot): detects pid reuse */
  startTicks: number;
}

export function parsePid(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n <= 0 || n > 4194304 /* PID_MAX_LIMIT on 64-bit, include/linux/threads.h */) {
    throw new TracerError("usage", `--pid: "${text}" is not a process id`, { hint: "pass a positive number, e.g. --pid $(pgrep myservice)" });
  }
  return n;
}

export function describeProcess(pid: number): TargetProcess {
  const base = `/proc/${pid}`;
  try {
    statSync(base);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new TracerError("target_not_found", `no process with pid ${pid}`, { hint: "check the pid with 'ps' or 'pgrep'; the process may have exited" });
    }
    throw fromSystemError(e, base);
  }
  let exePath: string;
  try {
    exePath = readlinkSync(`${base}/exe`);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EACCES" || code === "EPERM") {
      const root = process.getuid?.() === 0;
      throw new TracerError("permission_denied", `cannot read the executable of pid ${pid}`, {
        hint: root
          ? "even root may not read it: the process is protected (e.g. Yama ptrace_scope=3, or an LSM policy); check 'ls -l /proc/PID/exe'"
          : "run beetrace as root (tracing needs CAP_BPF, CAP_PERFMON and access to the target)",
      });
    }
    if (code === "ENOENT") {
      throw new TracerError("target_not_found", `pid ${pid} has no executable (a kernel thread or an exited process)`, { hint: "pass the pid of a running Go program" });
    }
    throw fromSystemError(e, `${base}/exe`);
  }
  let comm = "";
  try {
    comm = readFileSync(`${base}/comm`, "utf8").trim();
  } catch {
    /* comm is cosmetic */
  }
  return { pid, exeLink: `${base}/exe`, exePath, comm, startTicks: readStartTicks(pid) };
}

/**
 * State (field 3) and start time (field 22, clock ticks since boot) from the text of
 * /proc/PID/stat: the fields after the last ")" (the command name may hold spaces and parens).
 */
function stateAndStart(stat: string): { state: string; startTicks: number } {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 20);
  return { state: rest[0] ?? "", startTicks: Number(rest[19] ?? 0) };
}

/** Field 22 of /proc/PID/stat; the comm field (2) may contain spaces and parens, so parse after the last ')'. */
export function readStartTicks(pid: number): number {
  try {
    return stateAndStart(readFileSync(`/proc/${pid}/stat`, "utf8")).startTicks;
  } catch {
    return 0;
  }
}

/**
 * Field 3 of /proc/PID/stat: R, S, D, T, t, Z (zombie: exited, not yet reaped by its parent), X
 * (dead), … (proc(5)); undefined when the process is gone.
 */
export function readState(pid: number): string | undefined {
  try {
    return stateAndStart(readFileSync(`/proc/${pid}/stat`, "utf8")).state || undefined;
  } catch {
    return undefined;
  }
}

/**
 * True while process `pid` started at `startTicks` still runs. A zombie has exited — its
 * /proc/PID/stat (start time included) stays until its parent reaps it, which a shell or
 * supervisor may never do after a SIGKILL — so it counts as gone.
 */
export function isRunning(pid: number, startTicks: number): boolean {
  try {
    return runningFrom(readFileSync(`/proc/${pid}/stat`, "utf8"), startTicks);
  } catch {
    return false;
  }
}

/** isRunning's answer from the text of /proc/PID/stat (ProcessWatch reads it its own way). */
function runningFrom(stat: string, startTicks: number): boolean {
  const s = stateAndStart(stat);
  return startTicks !== 0 && s.startTicks === startTicks && s.state !== "" && s.state !== "Z" && s.state !== "X";
}

/** Still running (a zombie target has exited: its uprobes are gone with its memory). */
export function isAlive(p: TargetProcess): boolean {
  return isRunning(p.pid, p.startTicks);
}

/**
 * isAlive for a check that runs several times a second for a whole session: /proc/PID/stat is
 * opened once and re-read in place. A descriptor of a /proc/PID file stays bound to that
 * process: once it has been reaped a read fails (ESRCH), even if its pid has been reused. Path
 * lookup, open and close made isAlive ~180 µs a check in an idle tracer (bench/RESULTS.md).
 * Falls back to isAlive when the file cannot be opened.
 */
export class ProcessWatch implements Disposable {
  #fd: number | undefined;
  readonly #buf = Buffer.alloc(1024);

  constructor(readonly process: TargetProcess) {
    try {
      this.#fd = openSync(`/proc/${process.pid}/stat`, "r");
    } catch {
      this.#fd = undefined;
    }
  }

  running(): boolean {
    if (this.#fd === undefined) return isAlive(this.process);
    let n: number;
    try {
      n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
    } catch {
      return false; // ESRCH: reaped
    }
    return runningFrom(this.#buf.toString("latin1", 0, n), this.process.startTicks);
  }

  [Symbol.dispose](): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** The target's environment (NUL-separated /proc/PID/environ); empty when unreadable. */
export function readEnviron(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  try {
    const raw = readFileSync(`/proc/${pid}/environ`);
    for (const entry of raw.toString("utf8").split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
  } catch {
    /* not readable (other user, exited): the caller falls back to defaults */
  }
  return env;
}

/** All running processes whose executable is `exePath` (compared by device+inode, then by path). */
export function findProcessesByExe(exePath: string): TargetProcess[] {
  let want: { dev: number; ino: number } | undefined;
  try {
    const st = statSync(exePath);
    want = { dev: st.dev, ino: st.ino };
  } catch {
    want = undefined;
  }
  const found: TargetProcess[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch (e) {
    throw fromSystemError(e, "/proc");
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const link = readlinkSync(`/proc/${pid}/exe`);
      let match = link === exePath;
      if (!match && want) {
        const st = statSync(`/proc/${pid}/exe`);
        match = st.dev === want.dev && st.ino === want.ino;
      }
      if (match) found.push(describeProcess(pid));
    } catch {
      /* process exited or not ours to read */
    }
  }
  return found;
}
