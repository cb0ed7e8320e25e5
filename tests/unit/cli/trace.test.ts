/**
 * @module tests/unit/cli/trace.test — exit codes and checks of `attach` and `run` that need no
 * root: outputs validated before the target is touched, `--exe` on a missing file or on nothing,
 * `run`'s pass-through of its program's exit status when nothing can be traced, and the default
 * capture file when no output is given.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_OUT, attachCommand, checkExe, checkOutputs, exitStatus, parsePlan, runCommand } from "../../../src/cli/trace.ts";
import { EXIT_CODES, TracerError } from "../../../src/errors.ts";
import { setLogSink } from "../../../src/log.ts";

const dir = mkdtempSync(join(tmpdir(), "beetrace-trace-cli-"));
const locks = join(dir, "locks");
mkdirSync(locks);
process.env.BEETRACE_LOCK_DIR = locks;
for (const k of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_GO_AUTO_TARGET_EXE", "OTEL_GO_AUTO_TARGET_PID"]) delete process.env[k];
afterAll(() => {
  delete process.env.BEETRACE_LOCK_DIR;
  setLogSink((l) => process.stderr.write(l + "\n"));
  rmSync(dir, { recursive: true, force: true });
});

let lines: string[] = [];
beforeEach(() => {
  lines = [];
  setLogSink((l) => lines.push(l));
});

async function failure(p: Promise<unknown> | (() => unknown)): Promise<TracerError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw e;
  }
  throw new Error("expected a TracerError");
}

describe("outputs are checked before the target is touched", () => {
  test("a missing --out directory: exit 3 with a hint, no lock taken, no 'tracing pid' line", async () => {
    const e = await failure(attachCommand({ pid: String(process.pid), out: "/nonexistent/x.cbor" }));
    expect([e.code, EXIT_CODES[e.code]]).toEqual(["file_not_found", 3]);
    expect(e.message).toContain("/nonexistent does not exist");
    expect(e.hint).toContain("mkdir -p /nonexistent");
    expect(readdirSync(locks)).toEqual([]);
    expect(lines.join("\n")).not.toContain("tracing pid");
  });

  test("run with a bad --out starts nothing", async () => {
    const marker = join(dir, "ran");
    const e = await failure(runCommand(["/bin/sh", "-c", `touch ${marker}`], { out: "/nonexistent/x.cbor" }));
    expect(e.code).toBe("file_not_found");
    expect(readdirSync(dir)).not.toContain("ran");
  });

  test("--out naming a directory, a non-directory parent, an unknown placeholder, a missing --spill-dir", () => {
    const file = join(dir, "plain");
    writeFileSync(file, "");
    const cases: [Record<string, string>, string][] = [
      [{ out: dir }, "output_failed"],
      [{ out: join(file, "x.cbor") }, "output_failed"],
      [{ out: join(dir, "{nope}.cbor") }, "usage"],
      [{ out: join(dir, "x.cbor"), otlp: "http://127.0.0.1:1", spillDir: join(dir, "missing") }, "file_not_found"],
    ];
    for (const [o, code] of cases) {
      let got: unknown;
      try {
        checkOutputs(parsePlan(o), {});
      } catch (e) {
        got = e;
      }
      expect({ o, code: (got as TracerError | undefined)?.code as string | undefined }).toEqual({ o, code });
    }
  });

  test("a directory named by a placeholder not known yet is checked up to its fixed part", () => {
    mkdirSync(join(dir, "per-pid"), { recursive: true });
    expect(() => checkOutputs(parsePlan({ out: join(dir, "per-pid", "{pid}", "x.cbor") }), {})).not.toThrow();
    expect(() => checkOutputs(parsePlan({ out: join(dir, "nothere", "{pid}", "x.cbor") }), {})).toThrow("does not exist");
    // Once the pid is known the whole directory is checked.
    expect(() => checkOutputs(parsePlan({ out: join(dir, "per-pid", "{pid}", "x.cbor") }), { pid: 42 })).toThrow("per-pid/42 does not exist");
  });

  test("without --out or OTLP, spans go to a capture file in the current directory; with --otlp only, to the collector", () => {
    expect(parsePlan({}).template).toBe(DEFAULT_OUT);
    expect(DEFAULT_OUT).toBe("beetrace-{exe}-{pid}-{start}.cbor");
    expect(parsePlan({ otlp: "http://127.0.0.1:4318" }).template).toBeUndefined();
    expect(parsePlan({ out: "cap.cbor", otlp: "http://127.0.0.1:4318" }).template).toBe("cap.cbor");
  });
});

describe("attach --exe", () => {
  test("a path that does not exist fails at once: exit 3 with a hint", async () => {
    const t0 = Date.now();
    const e = await failure(attachCommand({ exe: join(dir, "no-such-service"), out: join(dir, "x.cbor") }));
    expect([e.code, EXIT_CODES[e.code]]).toEqual(["file_not_found", 3]);
    expect(e.hint).toContain("/proc/PID/exe");
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(() => checkExe(dir)).toThrow("not a regular file");
  });

  test("a session in which no process ran the file exits 25 (nothing_attached)", async () => {
    const exe = join(dir, "idle-service");
    writeFileSync(exe, "#!/bin/sh\n");
    chmodSync(exe, 0o755);
    const e = await failure(attachCommand({ exe, out: join(dir, "x.cbor"), duration: "300ms", quiet: true }));
    expect([e.code, EXIT_CODES[e.code]]).toEqual(["nothing_attached", 25]);
    expect(e.message).toContain(`no process executed ${exe}`);
  });
});

describe("run passes its program's exit status through, even when nothing can be traced", () => {
  // /bin/sh is not a Go program: nothing attaches (no root needed to find that out), yet the
  // program must run and its status come back, as from a shell.
  const cases: [string, string, number][] = [
    ["exit 0", "exit 0", 0],
    ["exit 7", "exit 7", 7],
    ["death by SIGTERM", "kill -TERM $$", 128 + 15],
    ["death by SIGKILL", "kill -KILL $$", 128 + 9],
  ];
  for (const [what, script, status] of cases) {
    test(`${what} → ${status}`, async () => {
      const marker = join(dir, `ran-${status}`);
      const code = await runCommand(["/bin/sh", "-c", `touch ${marker}; ${script}`], { out: join(dir, "run.cbor"), quiet: true });
      expect(code).toBe(status);
      expect(readdirSync(dir)).toContain(`ran-${status}`);
      const text = lines.join("\n");
      expect(text).toMatch(/^error: .*not a Go program|^error: /m);
      expect(text).toContain("runs on untraced; beetrace exits with its exit status");
    }, 30_000);
  }

  test("exitStatus: the code, or 128+N for signal N", () => {
    expect(exitStatus(3, null)).toBe(3);
    expect(exitStatus(null, "SIGINT")).toBe(130);
    expect(exitStatus(null, "SIGKILL")).toBe(137);
  });
});

describe("--capture-format", () => {
  test("3 by default, 2 on request; anything else is a usage error naming the choices", () => {
    expect(parsePlan({ out: join(dir, "f.cbor") }).captureFormat).toBeUndefined();
    expect(parsePlan({ out: join(dir, "f.cbor"), captureFormat: "2" }).captureFormat).toBe(2);
    expect(parsePlan({ out: join(dir, "f.cbor"), captureFormat: 3 }).captureFormat).toBe(3);
    let err: unknown;
    try {
      parsePlan({ out: join(dir, "f.cbor"), captureFormat: "zstd" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("usage");
    expect((err as TracerError).message).toContain("--capture-format must be 2 or 3");
  });
});
