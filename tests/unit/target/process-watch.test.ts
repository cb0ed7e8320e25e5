/** @module tests/unit/target/process-watch — noticing a traced process's end through one open /proc/PID/stat. */
import { describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { ProcessWatch, describeProcess, isAlive } from "../../../src/target/process.ts";

function sleeper(): ChildProcess {
  return spawn("sleep", ["30"], { stdio: "ignore" });
}
const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())));

describe("ProcessWatch", () => {
  test("running while the process runs; not once it is killed and reaped", async () => {
    const c = sleeper();
    const p = describeProcess(c.pid!);
    using w = new ProcessWatch(p);
    expect(w.running()).toBe(true);
    expect(isAlive(p)).toBe(true);
    c.kill("SIGKILL");
    await exited(c); // Node reaps it
    expect(w.running()).toBe(false);
    expect(isAlive(p)).toBe(false);
  });

  test("a zombie (exited, not reaped) is not running", async () => {
    // sh forks the sleeper's parent role: `sh -c 'sleep 30 & exec sleep 30'` leaves a child the
    // exec'd sleep never waits for; killing that child makes a zombie.
    const sh = spawn("sh", ["-c", "sleep 30 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    const pid = Number(await new Promise<string>((r) => sh.stdout!.once("data", (d: Buffer) => r(d.toString().trim()))));
    const p = describeProcess(pid);
    using w = new ProcessWatch(p);
    expect(w.running()).toBe(true);
    process.kill(pid, "SIGKILL");
    // wait for the kernel to mark it a zombie (state Z), a condition rather than a fixed delay
    for (let i = 0; i < 500 && w.running(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(w.running()).toBe(false);
    sh.kill("SIGKILL");
    await exited(sh);
  });

  test("a process that is gone before the watch starts is not running", async () => {
    const c = sleeper();
    const p = describeProcess(c.pid!);
    c.kill("SIGKILL");
    await exited(c);
    using w = new ProcessWatch(p);
    expect(w.running()).toBe(false);
  });
});
