/**
 * @module tests/unit/cli/bad-inputs.test — issue 15 item 1: every command that reads a file
 * (inspect, view, convert, export, offsets extract, --offsets FILE) given /dev/zero, a FIFO, a
 * directory, a 2 GB sparse file, and a capture header followed by 2 GB of zeros: each finishes
 * in bounded time and memory with a one-line error and its documented exit code (6 for
 * anything that is not a regular file). Run from source in child processes; peak RSS is the
 * child's VmHWM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { captureEncoder } from "../../../src/capture/format.ts";
import { EXIT_CODES } from "../../../src/errors.ts";
import { sampleHeader, tempDir } from "../capture/fixture.ts";
import { buildGoProgram, FIXTURE, haveGo } from "../binary/go-build.ts";
import { runBeetrace } from "./child.ts";

/** Issue 15: at most 250 MB for any input. */
const MAX_MB = 250;
/** Far above what a refusal takes (well under a second) but far below an unbounded read of 2 GB. */
const MAX_MS = 45_000;

const dir = tempDir();
const fifo = path.join(dir, "fifo");
const sparse = path.join(dir, "sparse-2g");
const zeroTail = path.join(dir, "capture-then-zeros.cbor");
const TWO_GB = 2 * 1024 * 1024 * 1024;

beforeAll(() => {
  execFileSync("mkfifo", [fifo]);
  fs.closeSync(fs.openSync(sparse, "w"));
  fs.truncateSync(sparse, TWO_GB);
  fs.writeFileSync(zeroTail, captureEncoder().encode(sampleHeader()));
  fs.truncateSync(zeroTail, TWO_GB);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Cmd = { name: string; args: (input: string) => string[] };
const COMMANDS: Cmd[] = [
  { name: "inspect", args: (f) => ["inspect", f] },
  { name: "view", args: (f) => ["view", f] },
  { name: "convert", args: (f) => ["convert", f, "-o", path.join(dir, "out.jsonl")] },
  // Nothing listens on port 9: export must fail on the input before it tries to send.
  { name: "export", args: (f) => ["export", f, "--otlp", "http://127.0.0.1:9"] },
  { name: "offsets extract", args: (f) => ["offsets", "extract", f, "-o", path.join(dir, "offsets.json")] },
];

const NOT_REGULAR = EXIT_CODES.not_regular_file;

describe("bad inputs: refused or read within a bound", () => {
  const inputs: [string, () => string][] = [
    ["/dev/zero", () => "/dev/zero"],
    ["a FIFO", () => fifo],
    ["a directory", () => dir],
  ];
  for (const [what, input] of inputs) {
    for (const c of COMMANDS) {
      test(`${c.name} ${what}: exit ${NOT_REGULAR}, one clear line with a hint`, async () => {
        const r = await runBeetrace(c.args(input()));
        expect(r.timedOut).toBe(false);
        expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: NOT_REGULAR, stderr: expect.stringContaining("not a regular file") });
        expect(r.stderr).toMatch(/hint/i);
        expect(r.ms).toBeLessThan(MAX_MS);
        expect(r.peakMb).toBeGreaterThan(0);
        expect(r.peakMb).toBeLessThan(MAX_MB);
      });
    }
  }

  const bigCases: [string, () => string, Record<string, number>][] = [
    // Zeros from byte 0: not an ELF, not a capture; offsets extract reads only what ELF parsing needs.
    ["a 2 GB sparse file", () => sparse, { inspect: EXIT_CODES.unrecognized_format, view: 17, convert: 17, export: 17, "offsets extract": EXIT_CODES.unrecognized_format }],
    // A real capture header, then 2 GB of zeros: all of it is damage, scanned through in bounded memory.
    ["a capture header then 2 GB of zeros", () => zeroTail, { inspect: EXIT_CODES.unrecognized_format, view: 17, convert: 17, export: 17, "offsets extract": EXIT_CODES.unrecognized_format }],
  ];
  for (const [what, input, codes] of bigCases) {
    for (const c of COMMANDS) {
      test(`${c.name} ${what}: exit ${codes[c.name]}, bounded time and memory`, async () => {
        const r = await runBeetrace(c.args(input()), 120_000);
        expect(r.timedOut).toBe(false);
        expect({ code: r.code, stderr: r.stderr.split("\n")[0] }).toMatchObject({ code: codes[c.name] });
        expect(r.ms).toBeLessThan(what.includes("header") ? 120_000 : MAX_MS);
        expect(r.peakMb).toBeGreaterThan(0);
        expect(r.peakMb).toBeLessThan(MAX_MB);
      }, 180_000);
    }
  }

  test.skipIf(!haveGo())("inspect maps the binary: a Go binary padded to 1 GB needs no 1 GB buffer", async () => {
    const bin = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode: "default" });
    const big = path.join(dir, "padded-server");
    fs.copyFileSync(bin, big);
    // Sparse padding after the ELF's last byte: ELF readers address by offset, so it still parses.
    fs.truncateSync(big, 1024 * 1024 * 1024);
    fs.chmodSync(big, 0o755);
    const r = await runBeetrace(["inspect", big, "--json"]);
    expect({ code: r.code, err: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(r.stdout).goVersion).toMatch(/^go1\./);
    expect(r.peakMb).toBeGreaterThan(0);
    expect(r.peakMb).toBeLessThan(MAX_MB);
  }, 300_000);

  test.skipIf(!haveGo())("--offsets FILE: /dev/zero, a FIFO, a directory and a 2 GB file are refused", async () => {
    const bin = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode: "default" });
    for (const [f, code] of [
      ["/dev/zero", NOT_REGULAR],
      [fifo, NOT_REGULAR],
      [dir, NOT_REGULAR],
      [sparse, EXIT_CODES.io_error],
    ] as const) {
      const r = await runBeetrace(["inspect", bin, "--offsets", f]);
      expect(r.timedOut).toBe(false);
      expect({ f, code: r.code }).toEqual({ f, code });
      expect(r.stderr).toContain("--offsets");
      expect(r.peakMb).toBeLessThan(MAX_MB);
    }
  }, 300_000);
});
