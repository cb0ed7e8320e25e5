/**
 * @module target/lock — one beetrace per target process.
 *
 * Two tracers on one process would double every uprobe hit (each ~5 µs) and race on the
 * same goroutines' in-flight state. A lock file per target (keyed by pid and start time, so a
 * reused pid is a different target) holds the tracer's own pid and start time; a lock whose
 * owner is gone (SIGKILL, crash) — or is a zombie its parent has not reaped yet — is stale and
 * taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync, constants } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { TracerError } from "../errors.ts";
import { isRunning, readStartTicks, type TargetProcess } from "./process.ts";

/** /run is root-only tmpfs on systemd hosts (FHS 3.0 §3.15); fall back to the temp dir. */
function lockDir(): string {
  for (const dir of [process.env.BEETRACE_LOCK_DIR, "/run/beetrace", join(tmpdir(), "beetrace-locks")]) {
    if (!dir) continue;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return dir;
    } catch {
      /* try the next */
    }
  }
  throw new TracerError("io_error", "cannot create a directory for target locks", { hint: "set BEETRACE_LOCK_DIR to a writable directory" });
}

export class TargetLock implements Disposable {
  #released = false;
  private constructor(readonly path: string) {}

  static acquire(target: TargetProcess): TargetLock {
    const dir = lockDir();
    sweepStale(dir);
    const path = join(dir, `pid-${target.pid}-${target.startTicks}.lock`);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        writeSync(fd, `${process.pid} ${readStartTicks(process.pid)}\n`);
        closeSync(fd);
        return new TargetLock(path);
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") {
          throw new TracerError("io_error", `cannot create lock ${path}: ${(e as Error).message}`, { hint: "set BEETRACE_LOCK_DIR to a writable directory" });
        }
      }
      const owner = readOwner(path);
      if (owner && owner.pid !== process.pid && isRunning(owner.pid, owner.startTicks)) {
        throw new TracerError("already_traced", `pid ${target.pid} is already traced by beetrace (pid ${owner.pid})`, {
          hint: `stop the other beetrace first (kill ${owner.pid}); two tracers on one process would double its overhead`,
        });
      }
      // Stale: its owner died (or is an unreaped zombie) without cleaning up.
      rmSync(path, { force: true });
    }
    throw new TracerError("already_traced", `could not take the lock for pid ${target.pid}`, { hint: "another beetrace is starting on the same process" });
  }

  [Symbol.dispose](): void {
    if (this.#released) return;
    this.#released = true;
    rmSync(this.path, { force: true });
  }
}

function readOwner(path: string): { pid: number; startTicks: number } | undefined {
  try {
    const [pid, ticks] = readFileSync(path, "utf8").trim().split(/\s+/).map(Number);
    if (!pid || !Number.isInteger(pid)) return undefined;
    return { pid, startTicks: ticks ?? 0 };
  } catch {
    return undefined;
  }
}

/**
 * Remove locks left by tracers that were killed (SIGKILL leaves no chance to clean up) once their
 * owner is gone: best effort, so the directory does not grow on hosts that run beetrace from cron.
 */
function sweepStale(dir: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^pid-\d+-\d+\.lock$/.test(name)) continue;
    const path = join(dir, name);
    const owner = readOwner(path);
    if (owner && isRunning(owner.pid, owner.startTicks)) continue;
    // A lock with no owner line yet may be one another tracer is writing right now.
    if (!owner && Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 10_000) continue;
    rmSync(path, { force: true });
  }
}
