/** @module tests/unit/cli/child — run beetrace from source in a child process; exit code, output, time and peak RSS. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../../..");
const MAIN = join(ROOT, "src/main.ts");
const PRELOAD = join(ROOT, "tests/unit/cli/hwm-preload.ts");

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set of the child in MB (VmHWM), or -1 when it did not report */
  peakMb: number;
  timedOut: boolean;
}

/** `beetrace ARGS…` with a hard timeout (the child is killed past it: the test then fails on timedOut). */
export function runBeetrace(args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), "beetrace-child-"));
  const hwm = join(dir, "hwm");
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--preload", PRELOAD, MAIN, ...args], {
      env: { ...process.env, ...env, BEETRACE_TEST_HWM_FILE: hwm },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    // Keep only the tail of large outputs: the tests look at the end (summary, errors).
    child.stdout.on("data", (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-200_000);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-200_000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      const peakMb = existsSync(hwm) ? Number(readFileSync(hwm, "utf8")) / 1024 : -1;
      rmSync(dir, { recursive: true, force: true });
      done({ code, stdout, stderr, ms: performance.now() - t0, peakMb, timedOut });
    });
  });
}
