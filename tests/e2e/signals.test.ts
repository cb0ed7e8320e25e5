/**
 * @module tests/e2e/signals — the tracer starts while its main thread is being interrupted by
 * signals. The BPF verifier gives up with EAGAIN when a signal is pending for the loading thread,
 * and libbpf retries a program only five times; Bun's sampling profiler (`--cpu-prof`) sends the
 * main thread a signal every interval, so without the tracer blocking signals around the load
 * (src/bpf/libc.ts withSignalsBlocked) its start-up failed every time with "verifier rejected
 * program nethttp_server_entry: resource temporarily unavailable". Runs from source (the profiler
 * is a flag of the bun runtime, not of the compiled executable). Needs root.
 */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { buildSample, e2eSkipReason, e2eWorkDir, httpGet, readSpans, ROOT, startSample, waitFor } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("signals");

describe.skipIf(reason !== undefined)(`start-up under signals${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("attach loads and attaches its probes under a sampling profiler signalling every 100 µs, then traces", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    const out = join(work, "cap.cbor");
    const bun = join(ROOT, "node_modules", ".bin", "bun");
    const args = ["--cpu-prof", "--cpu-prof-interval=100", `--cpu-prof-dir=${join(work, "prof")}`, join(ROOT, "src", "main.ts"), "attach", "--pid", String(sample.pid), "--out", out];
    const tracer = spawn(bun, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    tracer.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    let exit: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => tracer.on("exit", (code) => resolve((exit = code))));
    try {
      await waitFor(
        () => (/tracing pid \d+/.test(stderr) ? true : exit !== undefined ? Promise.reject(new Error(`tracer exited (${exit}) before tracing:\n${stderr}`)) : undefined),
        60_000,
        "the tracer's 'tracing pid' line",
      );
      expect((await httpGet(sample.port, "/hello")).status).toBe(200);
      tracer.kill("SIGINT");
      expect(await exited).toBe(0);
      const spans = readSpans(out).spans;
      expect(spans.some((s) => s.kind === "server" && s.attributes["url.path"] === "/hello")).toBe(true);
    } finally {
      if (exit === undefined) tracer.kill("SIGKILL");
      await sample.stop();
    }
  }, 120_000);
});
