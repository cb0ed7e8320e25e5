/**
 * The live --help examples (attach, run, doctor, inspect --pid) run as written against the real
 * sample Go service, as root (issue 13 item 6; the offline ones: tests/unit/cli/help-examples.test.ts).
 * Only placeholders change: the pid 1234 becomes the sample's, durations shrink to 3 s, and a
 * `--port 8080` for ./server becomes the sample's own `-addr 127.0.0.1:0`. They run from a
 * directory where ./server is the sample, so relative paths (and the default capture file) land there.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allExamples, isLive, substitute } from "../harness/help-examples.ts";
import { buildSample, e2eSkipReason, killAll, startSample, tracerCommand, waitFor } from "./harness.ts";

const reason = e2eSkipReason();
const examples = reason ? [] : allExamples(tracerCommand()).filter(isLive);

describe.skipIf(reason !== undefined)(`live --help examples${reason ? ` — skipped: ${reason}` : ""}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "beetrace-help-live-"));
  afterAll(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test("there are live examples to run", () => expect(examples.length).toBeGreaterThan(2));

  for (const e of examples) {
    test(e.line, async () => {
      copyFileSync(await buildSample({ mode: "default" }), join(dir, "server"));
      const sample = await startSample(join(dir, "server"));
      try {
        let args = substitute(e.args, { "1234": String(sample.pid), "60s": "3s" });
        const i = args.indexOf("--port");
        if (i > 0 && args[i + 1] === "8080") args = [...args.slice(0, i), "-addr", "127.0.0.1:0", ...args.slice(i + 2)];
        const before = new Set(readdirSync(dir));
        const [cmd, pre] = tracerCommand();
        const p = spawn(cmd, [...pre, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        let err = "";
        p.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
        p.stdout!.resume();
        const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
        let done = false;
        void exited.then(() => (done = true));
        // `run` without --duration traces until Ctrl-C: press it once tracing has begun.
        if (args[0] === "run" && !args.includes("--duration")) {
          await waitFor(() => /tracing pid \d+/.test(err) || done, 60_000, "run's 'tracing pid' line");
          p.kill("SIGINT");
        }
        const code = await Promise.race([exited, new Promise<never>((_, rej) => setTimeout(() => (p.kill("SIGKILL"), rej(new Error(`no exit within 60 s:\n${err}`))), 60_000))]);
        expect({ code, err }).toEqual({ code: 0, err: expect.any(String) });
        // Spans went somewhere in this directory: --out's file, or the default ./beetrace-*.cbor.
        if (args[0] === "attach" && !args.includes("--out")) expect(readdirSync(dir).filter((f) => /^beetrace-.*\.cbor$/.test(f) && !before.has(f)).length).toBe(1);
      } finally {
        await sample.stop();
      }
    }, 120_000);
  }
});
