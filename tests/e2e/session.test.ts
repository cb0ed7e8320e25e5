/**
 * @module tests/e2e/session — capture sessions as cron jobs use them: output templates, span
 * limits, rotation, one tracer per target, and `attach --exe` following a restarted service.
 * Needs root; skips with the reason otherwise.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, waitFor, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("session");

describe.skipIf(reason !== undefined)(`capture sessions${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("a template names the file; --max-spans stops the session with an end record", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin);
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", join(work, "{host}-{pid}-{exe}.cbor"), "--max-spans", "7", "-q"]);
    // -q prints no startup line: the capture file appearing is the signal instead.
    const file = join(work, `${hostname()}-${sample.pid}-${bin.split("/").pop()}.cbor`);
    await waitFor(() => statSync(file, { throwIfNoEntry: false }), 30_000, "the capture file");
    // The file exists once the header is written, i.e. after every probe is attached.
    for (let i = 0; i < 11; i++) await httpGet(sample.port, "/hello");
    const exit = await tracer.exit();
    expect(exit.code).toBe(0);
    const cap = readSpans(file);
    expect(cap.spans.length).toBe(7);
    expect(cap.end?.reason).toBe("--max-spans 7 reached");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(sample.alive()).toBe(true);
    await sample.stop();
  }, 120_000);

  test("--rotate-size starts new files that each read back whole; nothing is lost across them", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin);
    const dir = join(work, "rotate");
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", join(dir, "cap-{seq}.cbor"), "--rotate-size", "4K"]);
    rmSync(dir, { recursive: true, force: true });
    require("node:fs").mkdirSync(dir, { recursive: true });
    await tracer.started();
    const N = 29;
    for (let i = 0; i < N; i++) await httpGet(sample.port, "/items/" + i);
    await waitFor(() => readdirSync(dir).length >= 3 || undefined, 30_000, "three rotated files");
    tracer.signal("SIGINT");
    expect((await tracer.exit()).code).toBe(0);
    const files = readdirSync(dir).sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
    expect(files[0]).toBe("cap-0.cbor");
    let spans = 0;
    for (const f of files) {
      const cap = readSpans(join(dir, f));
      expect(cap.contents.truncated).toBe(false);
      expect(cap.end).toBeDefined();
      spans += cap.spans.length;
    }
    expect(spans).toBe(N);
    await sample.stop();
  }, 120_000);

  test("a second beetrace on the same target is refused with exit 21 and the first keeps tracing", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin);
    const first = runTracer(["attach", "--pid", String(sample.pid), "--out", join(work, "first.cbor")]);
    await first.started();
    const second = runTracer(["attach", "--pid", String(sample.pid), "--out", join(work, "second.cbor")]);
    const exit2 = await second.exit();
    expect(exit2.code).toBe(21);
    expect(second.stderr()).toContain("already traced by beetrace");
    await httpGet(sample.port, "/hello");
    first.signal("SIGTERM");
    expect((await first.exit()).code).toBe(0);
    expect(readSpans(join(work, "first.cbor")).spans.length).toBe(1);
    await sample.stop();
  }, 120_000);

  test("attach --exe waits for the service and traces a restarted process again", async () => {
    const bin = await buildSample({ mode: "default" });
    const dir = join(work, "follow");
    require("node:fs").mkdirSync(dir, { recursive: true });
    const tracer = runTracer(["attach", "--exe", bin, "--out", join(dir, "cap.cbor")]);
    await waitFor(() => tracer.stderr().includes("waiting for processes executing") || undefined, 30_000, "the waiting line");

    const a = await startSample(bin);
    await waitFor(() => tracer.stderr().includes(`tracing pid ${a.pid}`) || undefined, 10_000, "tracing the first process");
    for (let i = 0; i < 3; i++) await httpGet(a.port, "/hello");
    await a.stop();

    const restartedAt = Date.now();
    const b = await startSample(bin);
    await waitFor(() => tracer.stderr().includes(`tracing pid ${b.pid}`) || undefined, 10_000, "tracing the restarted process");
    const attachedAfterMs = Date.now() - restartedAt;
    for (let i = 0; i < 5; i++) await httpGet(b.port, "/hello");
    tracer.signal("SIGINT");
    expect((await tracer.exit()).code).toBe(0);
    await b.stop();

    expect(readSpans(join(dir, `cap.${a.pid}.cbor`)).spans.length).toBe(3);
    expect(readSpans(join(dir, `cap.${b.pid}.cbor`)).spans.length).toBe(5);
    // Traced again while it runs, not after the next restart: a loose bound (the machine may be
    // busy); how fast attaching is, is bench/startup.bench.ts's business (launch → probes live).
    expect(attachedAfterMs).toBeLessThan(10_000);
  }, 120_000);

  test("bad session options are usage errors before anything is attached", async () => {
    for (const args of [
      ["--out", join(work, "x-{nope}.cbor")],
      ["--out", join(work, "x.cbor"), "--max-spans", "0"],
      ["--out", join(work, "x.cbor"), "--rotate-size", "lots"],
      ["--out", join(work, "x.cbor"), "--duration", "soon"],
    ]) {
      const t = runTracer(["attach", "--pid", String(process.pid), ...args]);
      const exit = await t.exit();
      expect(exit.code).toBe(2);
      expect(t.stderr()).toMatch(/^error: /m);
      expect(t.stderr()).not.toContain("    at ");
    }
  }, 60_000);
});
