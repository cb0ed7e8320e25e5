/** One tracer per target: stale locks (their tracer was SIGKILLed) are swept, live ones refuse. */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TargetLock } from "../../../src/target/lock.ts";
import { describeProcess, readStartTicks } from "../../../src/target/process.ts";
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
