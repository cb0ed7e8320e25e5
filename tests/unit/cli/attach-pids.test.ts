/**
 * @module tests/unit/cli/attach-pids.test — `attach --pid` given several times or as a list
 * (one beetrace tracing several processes, joined live by connection): how cac hands the
 * option over, how it is parsed, and that a bad or missing pid fails before anything is touched.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import cac from "cac";
import { registerCommands } from "../../../src/cli/commands.ts";
import { attachCommand, parsePids } from "../../../src/cli/trace.ts";
import { EXIT_CODES, TracerError } from "../../../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "beetrace-attach-pids-"));
const locks = join(dir, "locks");
mkdirSync(locks);
process.env.BEETRACE_LOCK_DIR = locks;
afterAll(() => {
  delete process.env.BEETRACE_LOCK_DIR;
  rmSync(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<TracerError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw e;
  }
  throw new Error("expected a TracerError");
}

describe("attach --pid, repeatable", () => {
  test("cac gives a repeated --pid as an array, a single one as a value", () => {
    const cli = cac("beetrace");
    registerCommands(cli);
    expect(cli.parse(["node", "beetrace", "attach", "--pid", "12", "--pid", "34,56"], { run: false }).options.pid).toEqual([12, "34,56"]);
    expect(cli.parse(["node", "beetrace", "attach", "--pid", "12"], { run: false }).options.pid).toBe(12);
  });

  test("parsePids: once, repeated, comma lists; each pid once, in the order given", () => {
    expect(parsePids(12)).toEqual([12]);
    expect(parsePids("12")).toEqual([12]);
    expect(parsePids([12, "34,56"])).toEqual([12, 34, 56]);
    expect(parsePids(["7, 8", 7, "9"])).toEqual([7, 8, 9]);
  });

  test("parsePids: anything that is not a process id is a usage error naming it", () => {
    for (const bad of ["x", "12,", "0", "-3", "1.5", [1, "two"]] as const) {
      let err: unknown;
      try {
        parsePids(bad as string | (string | number)[]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TracerError);
      expect((err as TracerError).code).toBe("usage");
    }
  });

  test("one missing process among several fails at once (exit 20), nothing attached", async () => {
    // PID_MAX_LIMIT - 1: no process has it on a test machine.
    const e = await failure(attachCommand({ pid: [process.pid, 4194303], out: join(dir, "x-{pid}.cbor"), quiet: true }));
    expect([e.code, EXIT_CODES[e.code]]).toEqual(["target_not_found", 20]);
    expect(e.message).toContain("4194303");
  });

  test("--pid and --exe together is a usage error", async () => {
    const e = await failure(attachCommand({ pid: [1, 2], exe: "/bin/sh" }));
    expect(e.code).toBe("usage");
  });
});
