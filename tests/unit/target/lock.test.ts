/** One tracer per target: stale locks (their tracer was SIGKILLed, even if still a zombie) are swept, live ones refuse. */
import { afterAll, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TargetLock } from "../../../src/target/lock.ts";
import { describeProcess, isRunning, readStartTicks, readState } from "../../../src/target/process.ts";
import { TracerError } from "../../../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "beetrace-locks-"));
process.env.BEETRACE_LOCK_DIR = dir;
afterAll(() => {
  delete process.env.BEETRACE_LOCK_DIR;
  rmSync(dir, { recursive: true, force: true });
});

test("stale locks are swept, a live tracer's lock is kept and refuses a second tracer", () => {
  const me = describeProcess(process.pid);
  const parent = process.ppid;
  // A lock whose tracer is gone (pid 4194303 is above any pid in use here), and a live one (our parent).
  writeFileSync(join(dir, "pid-777-1.lock"), "4194303 12345\n");
  writeFileSync(join(dir, "pid-778-1.lock"), `${parent} ${readStartTicks(parent)}\n`);
  const lock = TargetLock.acquire(me);
  expect(existsSync(join(dir, "pid-777-1.lock"))).toBe(false);
  expect(existsSync(join(dir, "pid-778-1.lock"))).toBe(true);
  lock[Symbol.dispose]();
  expect(existsSync(lock.path)).toBe(false);

  writeFileSync(join(dir, `pid-${me.pid}-${me.startTicks}.lock`), `${parent} ${readStartTicks(parent)}\n`);
  let err: unknown;
  try {
    TargetLock.acquire(me);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TracerError);
  expect((err as TracerError).code).toBe("already_traced");
});

/**
 * A zombie: `sh` starts a short `sleep` in the background and execs a long `sleep`, which never
 * waits for it, so the short one stays in state Z (exited, unreaped) once it ends — what a
 * SIGKILLed tracer is when its parent (a shell, a cron wrapper) has not reaped it yet. The child
 * must outlive the shell's own reaping (dash reaps finished jobs between commands, so a
 * background `true` could be reaped before the exec and never become a zombie).
 */
async function withZombie(f: (zombie: number) => void | Promise<void>): Promise<void> {
  const sh = spawn("/bin/sh", ["-c", "sleep 0.3 & echo $!; exec sleep 60"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    let out = "";
    sh.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
    const deadline = Date.now() + 10_000;
    let zombie = 0;
    for (;;) {
      const m = /^(\d+)\n/.exec(out);
      if (m && readState(Number(m[1])) === "Z") {
        zombie = Number(m[1]);
        break;
      }
      if (Date.now() > deadline) throw new Error(`no zombie within 10 s (output ${JSON.stringify(out)})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await f(zombie);
  } finally {
    sh.kill("SIGKILL");
  }
}

test("a lock held by a zombie (a SIGKILLed tracer not yet reaped) is stale: taken over and swept", async () => {
  await withZombie((zombie) => {
    const ticks = readStartTicks(zombie);
    expect(ticks).toBeGreaterThan(0); // /proc/PID/stat of a zombie still names its start time
    expect(isRunning(zombie, ticks)).toBe(false);
    expect(isRunning(process.pid, readStartTicks(process.pid))).toBe(true);

    const me = describeProcess(process.pid);
    const mine = join(dir, `pid-${me.pid}-${me.startTicks}.lock`);
    const other = join(dir, "pid-779-1.lock");
    writeFileSync(mine, `${zombie} ${ticks}\n`);
    writeFileSync(other, `${zombie} ${ticks}\n`);
    const lock = TargetLock.acquire(me);
    expect(existsSync(other)).toBe(false);
    expect(readFileSync(mine, "utf8")).toBe(`${process.pid} ${readStartTicks(process.pid)}\n`);
    lock[Symbol.dispose]();
  });
});
