/**
 * @module tests/unit/cli/hwm-preload — loaded with `bun --preload` into a child beetrace: at exit
 * it writes the process's peak resident set (VmHWM from /proc/self/status, in kB) to the file
 * named by BEETRACE_TEST_HWM_FILE, so tests can bound a command's memory.
 */
import { readFileSync, writeFileSync } from "node:fs";

const out = process.env.BEETRACE_TEST_HWM_FILE;
if (out) {
  process.on("exit", () => {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    writeFileSync(out, m ? m[1]! : "-1");
  });
}
