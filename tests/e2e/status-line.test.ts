/**
 * @module tests/e2e/status-line — the live status line an operator sees on a terminal: under a
 * pseudo-terminal (`script` from util-linux) `beetrace attach` redraws one line with spans/s,
 * dropped, probes and the output, updates it as spans arrive, clears it before the summary, and
 * stops on Ctrl-C (written to the terminal, so the kernel's line discipline sends SIGINT the way
 * it does for a person). With -q it prints nothing at all; on a pipe there is no status line.
 * Needs root; skips with the reason otherwise.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSample, e2eSkipReason, httpGet, killAll, readSpans, runTracer, spansSoFar, startSample, tracerCommand, waitFor, type Exit } from "./harness.ts";

const haveScript = spawnSync("script", ["--version"]).status === 0;
const reason = e2eSkipReason() ?? (haveScript ? undefined : "needs script (util-linux) for a pseudo-terminal");
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-status-"));
const ptys = new Set<ChildProcess>();
afterAll(() => {
  for (const p of ptys) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  killAll();
  rmSync(work, { recursive: true, force: true });
});

/** Terminal width set on the pty; wide enough that the status line is not cut (it is cut to columns-1). */
const COLS = 200;
/** ASCII ETX: the terminal's VINTR character by default (termios(3)), which the line discipline turns into SIGINT. */
const CTRL_C = "\x03";
/** What the status line writes before each redraw: CR, then "erase to end of line" (ECMA-48 EL, CSI K). */
const REDRAW = "\r\x1b[K";
const STATUS = /beetrace: (\d+) spans \((\d+)\/s\), dropped (\d+), (\d+) probes \((\d+) uprobes\) → ([^\r\n\x1b]*)/g;

interface StatusSample {
  spans: number;
  rate: number;
  dropped: number;
  probes: number;
  uprobes: number;
  output: string;
}

function statusLines(out: string): StatusSample[] {
  return [...out.matchAll(STATUS)].map((m) => ({
    spans: Number(m[1]),
    rate: Number(m[2]),
    dropped: Number(m[3]),
    probes: Number(m[4]),
    uprobes: Number(m[5]),
    output: m[6]!,
  }));
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the tracer with `args` on a new pseudo-terminal; stdin of `script` feeds the terminal. */
function onPty(args: string[]) {
  const [cmd, pre] = tracerCommand();
  const line = `stty cols ${COLS} rows 40; exec ${[cmd, ...pre, ...args].map(shq).join(" ")}`;
  // -e: exit with the command's status; -E never: do not echo what we type; log to /dev/null.
  const p = spawn("script", ["-q", "-e", "-E", "never", "-c", line, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, SHELL: "/bin/sh", TERM: "xterm" },
  });
  ptys.add(p);
  let out = "";
  p.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((r) => p.on("exit", (code, signal) => r((exit = { code, signal }))));
  return {
    out: () => out,
    exited,
    exit: () => exit,
    type: (s: string) => void p.stdin!.write(s),
    /** Rejects (for waitFor) if the tracer is gone. */
    gone: () => (exit ? Promise.reject(new Error(`tracer on the pty exited (${exit.code ?? exit.signal}):\n${JSON.stringify(out)}`)) : undefined),
  };
}

describe.skipIf(reason !== undefined)(`status line${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("on a terminal: a status line with spans/s, dropped, probes and the output appears, updates, and is cleared before the summary", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    const file = join(work, "tty.cbor");
    const t = onPty(["attach", "--pid", String(sample.pid), "--out", file]);
    try {
      const uprobes = await waitFor(() => Number(/tracing pid \d+ .* (\d+) uprobes/.exec(t.out())?.[1] ?? 0) || t.gone(), 60_000, "the 'tracing pid' line");
      const first = await waitFor(() => statusLines(t.out())[0] ?? t.gone(), 10_000, "the first status line");
      expect(first.dropped).toBe(0);
      expect(first.probes).toBeGreaterThanOrEqual(1);
      expect(first.uprobes).toBe(uprobes);
      expect(first.output).toBe(file);

      for (let i = 0; i < 5; i++) await httpGet(sample.port, `/items/${i}`);
      const five = await waitFor(() => statusLines(t.out()).find((s) => s.spans === 5) ?? t.gone(), 10_000, "a status line counting 5 spans");
      for (let i = 0; i < 3; i++) await httpGet(sample.port, "/hello");
      await waitFor(() => statusLines(t.out()).some((s) => s.spans === 8) || t.gone(), 10_000, "a status line counting 8 spans");
      const all = statusLines(t.out());
      // It updates: the count only grows, a second's new spans show as a rate, and each redraw starts with CR + erase-line.
      expect(all.map((s) => s.spans)).toEqual([...all.map((s) => s.spans)].sort((a, b) => a - b));
      expect(Math.max(five.rate, ...all.map((s) => s.rate))).toBeGreaterThan(0);
      expect(t.out().split(REDRAW).length - 1).toBeGreaterThanOrEqual(all.length);
      for (const s of all) expect(s).toMatchObject({ dropped: 0, probes: first.probes, uprobes, output: file });

      t.type(CTRL_C);
      const exit = await waitFor(() => t.exit(), 30_000, "the tracer to stop on Ctrl-C");
      expect(exit.code).toBe(0);
      // The line is erased before the summary, so the summary starts at column 0 of a clean line.
      expect(t.out()).toContain(`${REDRAW}beetrace: pid ${sample.pid}: interrupted (SIGINT); wrote 8 spans to ${file}`);
      expect(t.out()).not.toContain("error:");
      expect(readSpans(file).spans.length).toBe(8);
    } finally {
      if (!t.exit()) t.type(CTRL_C);
      await sample.stop();
    }
  }, 120_000);

  test("on a terminal with -q: nothing is printed, and spans are still captured", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    const file = join(work, "quiet.cbor");
    const t = onPty(["attach", "--pid", String(sample.pid), "--out", file, "-q"]);
    try {
      // -q prints no 'tracing' line; the capture file's header is written once every probe is attached.
      await waitFor(() => {
        try {
          return readSpans(file).contents.header;
        } catch {
          return t.gone();
        }
      }, 60_000, "the capture header");
      for (let i = 0; i < 4; i++) await httpGet(sample.port, "/hello");
      // The writer flushes once a second, so by the time the spans are on disk a status line
      // (redrawn every second) would have been printed if -q did not suppress it.
      await waitFor(() => spansSoFar(file) === 4 || t.gone(), 10_000, "4 spans flushed to the capture");
      t.type(CTRL_C);
      const exit = await waitFor(() => t.exit(), 30_000, "the tracer to stop on Ctrl-C");
      expect(exit.code).toBe(0);
      expect(t.out().replace(/\^C/g, "")).toBe("");
      expect(readSpans(file).spans.length).toBe(4);
    } finally {
      if (!t.exit()) t.type(CTRL_C);
      await sample.stop();
    }
  }, 120_000);

  test("on a pipe: no status line, only the start and summary lines", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    const file = join(work, "pipe.cbor");
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", file]);
    try {
      await tracer.started();
      for (let i = 0; i < 3; i++) await httpGet(sample.port, "/hello");
      // As above: once the spans are flushed, at least one status interval has passed.
      await waitFor(() => spansSoFar(file) === 3, 10_000, "3 spans flushed to the capture");
      tracer.signal("SIGINT");
      expect((await tracer.exit()).code).toBe(0);
      const err = tracer.stderr();
      expect(err).not.toContain("\r");
      expect(err).not.toContain("\x1b");
      expect(statusLines(err)).toEqual([]);
      expect(tracer.stdout()).toBe("");
      const lines = err.split("\n").filter((l) => l !== "");
      expect(lines.length).toBe(2);
      expect(lines[0]).toStartWith(`beetrace: tracing pid ${sample.pid} `);
      expect(lines[1]).toBe(`beetrace: pid ${sample.pid}: interrupted (SIGINT); wrote 3 spans to ${file}`);
    } finally {
      tracer.signal("SIGKILL");
      await sample.stop();
    }
  }, 120_000);
});
