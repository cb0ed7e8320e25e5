/**
 * @module tests/e2e/detach — however dist/beetrace stops (SIGINT, SIGTERM, --duration, the target
 * exiting, a failure during startup, SIGKILL), none of its uprobes, links or BPF programs stay in
 * the kernel, an attached service keeps serving, and the capture file reads back (with an end
 * record, except after SIGKILL, where every complete record must still be readable).
 *
 * Leaks are judged by identity, not by global counts (other tracers may run on the same machine):
 * while the tracer runs we record the perf-event uprobes its pid holds (bpftool perf show) and
 * their program ids; afterwards none of those programs, no link to them and no perf attachment
 * of that pid may remain, and tracefs holds no uprobe event for the sample. Needs root and bpftool.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentsOf, bpfProgFds, bpfState, buildSample, e2eSkipReason, httpGet, isOurProgram, leftovers, listeningAddress, readSpans, runTracer, startSample, waitFor, type TracerRun, e2eWorkDir, spansSoFar } from "./harness.ts";

const reason = e2eSkipReason(["bpftool"]);
const work = e2eWorkDir("detach");
const TIMEOUT_MS = 90_000;
let n = 0;
const outFile = () => join(work, `cap-${++n}.cbor`);

/** The tracer's attachments while it runs: every one is a uprobe of one of our programs. */
async function attachedNow(tr: TracerRun, uprobes: number): Promise<Set<number>> {
  const a = attachmentsOf(bpfState(), tr.pid);
  // Perf mode: one perf-event link per uprobe. uprobe_multi mode (kernel 6.6+): one link per program.
  expect(a.perf.length + a.multi.reduce((n, m) => n + m.uprobes, 0)).toBe(uprobes);
  expect(a.perf.every((p) => p.fd_type === "uprobe")).toBe(true);
  const names = bpfState().progs.filter((p) => a.progIds.has(p.id)).map((p) => p.name);
  expect(names.length).toBe(a.progIds.size);
  expect(names.every(isOurProgram)).toBe(true);
  return a.progIds;
}

/**
 * Waits (bounded) for a clean kernel state, then asserts it. Releasing a uprobe_multi link
 * unregisters its uprobes at once but drops the program reference only after an RCU grace period
 * (kernel/bpf/syscall.c bpf_link_free → dealloc_deferred), ~50–150 ms here, so one sample taken
 * right after the tracer exits can still list the program.
 */
async function expectClean(progIds: Set<number>, tracerPid: number): Promise<void> {
  const clean = { progs: [], links: [], perf: [] };
  let last = leftovers(bpfState(), progIds, tracerPid);
  await waitFor(
    () => {
      last = leftovers(bpfState(), progIds, tracerPid);
      return last.progs.length + last.links.length + last.perf.length === 0;
    },
    5_000,
    "the kernel to drop the tracer's programs",
  ).catch(() => undefined); // the assertion below reports what is left
  expect(last).toEqual(clean);
}

describe.skipIf(reason !== undefined)(`clean detach${reason ? ` — skipped: ${reason}` : ""}`, () => {
  const sampleBin = buildSample({ mode: "default" });

  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    test(`${sig}: attach → ${sig} leaves nothing attached; the service keeps serving; the capture ends cleanly`, async () => {
      const s = await startSample(await sampleBin);
      try {
        const out = outFile();
        const tr = runTracer(["attach", "--pid", String(s.pid), "--out", out]);
        const { uprobes } = await tr.started();
        const progIds = await attachedNow(tr, uprobes);
        expect((await httpGet(s.port, "/hello")).status).toBe(200);
        tr.signal(sig);
        expect(await tr.exit()).toEqual({ code: 0, signal: null });
        await expectClean(progIds, tr.pid);
        // Still serving, and untraced now.
        for (let i = 0; i < 3; i++) expect((await httpGet(s.port, "/hello")).status).toBe(200);
        const cap = readSpans(out);
        expect(cap.end?.reason).toBe(sig === "SIGINT" ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
        expect(cap.spans.map((x) => x.name)).toEqual(["GET /hello"]);
        expect(s.alive()).toBe(true);
      } finally {
        await s.stop();
      }
    }, TIMEOUT_MS);
  }

  test("--duration ending (run --): nothing attached, the program run started is stopped, the capture ends", async () => {
    const out = outFile();
    const tr = runTracer(["run", "--out", out, "--duration", "3s", "--", await sampleBin, "-addr", "127.0.0.1:0"]);
    const { uprobes, targetPid } = await tr.started();
    try {
      const progIds = await attachedNow(tr, uprobes);
      const { port } = await waitFor(() => listeningAddress(tr.stdout()), 15_000, "the sample's 'listening on' line");
      expect((await httpGet(port, "/items/7")).status).toBe(200);
      // No signal: the duration ends it.
      expect(await tr.exit()).toEqual({ code: 0, signal: null });
      await expectClean(progIds, tr.pid);
      await waitFor(() => !existsSync(`/proc/${targetPid}`), 5_000, `run's program (pid ${targetPid}) to be stopped`);
    } finally {
      // A tracer that died abnormally leaves its program behind; it is not our child, so end it here.
      if (existsSync(`/proc/${targetPid}`)) process.kill(targetPid, "SIGKILL");
    }
    const cap = readSpans(out);
    expect(cap.end?.reason).toBe("duration reached");
    expect(cap.spans.map((x) => x.name)).toEqual(["GET /items/{id}"]);
  }, TIMEOUT_MS);

  test("the target exiting ends the trace on its own, with nothing left attached", async () => {
    const s = await startSample(await sampleBin);
    const out = outFile();
    const tr = runTracer(["attach", "--pid", String(s.pid), "--out", out]);
    const { uprobes } = await tr.started();
    const progIds = await attachedNow(tr, uprobes);
    expect((await httpGet(s.port, "/fail")).status).toBe(500);
    await s.stop();
    expect(await tr.exit()).toEqual({ code: 0, signal: null });
    await expectClean(progIds, tr.pid);
    const cap = readSpans(out);
    expect(cap.end?.reason).toBe("target exited");
    expect(cap.spans.map((x) => [x.name, x.status.code])).toEqual([["GET /fail", "error"]]);
  }, TIMEOUT_MS);

  test("a bogus --offsets file fails before anything is loaded, with a usage error", async () => {
    const s = await startSample(await sampleBin);
    try {
      const bogus = join(work, "bogus-offsets.json");
      writeFileSync(bogus, "{ this is not json");
      const out = outFile();
      const tr = runTracer(["attach", "--pid", String(s.pid), "--out", out, "--offsets", bogus]);
      const exit = await tr.exit();
      expect(exit).toEqual({ code: 2, signal: null }); // usage (src/errors.ts)
      expect(tr.stderr()).toContain("not valid JSON");
      expect(tr.stderr()).toContain("hint:");
      expect(tr.stderr()).not.toContain("tracing pid");
      // It failed before opening the capture: no half-written file is left behind.
      expect(existsSync(out)).toBe(false);
      expect((await httpGet(s.port, "/hello")).status).toBe(200);
    } finally {
      await s.stop();
    }
  }, TIMEOUT_MS);

  test("the target dying during attach: the tracer stops with a reason, nothing stays attached", async () => {
    const s = await startSample(await sampleBin);
    const out = outFile();
    const tr = runTracer(["attach", "--pid", String(s.pid), "--out", out]);
    // The BPF object is loaded (the tracer holds program fds): attach is under way. Kill the target now.
    let seen = new Set<number>();
    await waitFor(() => bpfProgFds(tr.pid) > 0 || tr.stderr().includes("error"), 30_000, "the tracer to load its BPF programs");
    process.kill(s.pid, "SIGKILL");
    // Whatever it managed to attach before noticing, record it.
    seen = attachmentsOf(bpfState(), tr.pid).progIds;
    const exit = await tr.exit();
    console.info(`target killed during attach: tracer exit ${exit.code}, ${seen.size} programs attached when killed; ${tr.stderr().trim().split("\n").pop()}`);
    // Either the attach failed (attach_failed 24 / nothing_attached 25 / target_not_found 20) or it
    // attached and then saw the target exit (0); never a crash (70) or a hang.
    expect([0, 20, 24, 25]).toContain(exit.code ?? -1);
    expect(tr.stderr()).not.toContain("BUG");
    await expectClean(seen, tr.pid);
    if (exit.code === 0) expect(readSpans(out).end?.reason).toBe("target exited");
    else expect(tr.stderr()).toContain("error:");
  }, TIMEOUT_MS);

  test("SIGKILL: the kernel drops every uprobe, the service keeps serving, and every flushed record reads back", async () => {
    const s = await startSample(await sampleBin);
    try {
      const out = outFile();
      const tr = runTracer(["attach", "--pid", String(s.pid), "--out", out]);
      const { uprobes } = await tr.started();
      const progIds = await attachedNow(tr, uprobes);
      for (let i = 0; i < 5; i++) expect((await httpGet(s.port, "/hello")).status).toBe(200);
      // The writer flushes on a timer: wait until all five spans are in the file, then kill.
      await waitFor(() => spansSoFar(out) === 5, 15_000, "five spans flushed to the capture file");
      tr.signal("SIGKILL");
      expect(await tr.exit()).toEqual({ code: null, signal: "SIGKILL" });
      await expectClean(progIds, tr.pid);
      expect((await httpGet(s.port, "/hello")).status).toBe(200);
      const cap = readSpans(out);
      expect(cap.end).toBeUndefined();
      expect(cap.spans.length).toBe(5);
      expect(cap.spans.every((x) => x.name === "GET /hello")).toBe(true);
      expect(cap.contents.header.target.pid).toBe(s.pid);
    } finally {
      await s.stop();
    }
  }, TIMEOUT_MS);
});
