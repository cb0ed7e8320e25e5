/** @module tests/unit/bpf/close-concurrently — closing several fds at once, one native thread each (libc.ts). */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, openSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeConcurrently } from "../../../src/bpf/libc.ts";

/** What fd points at now, or undefined when it is not open (it may have been reused for another file). */
function target(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

describe("closeConcurrently", () => {
  test("closes every fd it is given (and skips negative ones)", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-close-"));
    try {
      const files = [0, 1, 2, 3, 4, 5].map((i) => join(dir, `f${i}`));
      for (const f of files) writeFileSync(f, "x");
      const fds = files.map((f) => openSync(f, "r"));
      fds.forEach((fd, i) => expect(target(fd)).toBe(files[i]));
      closeConcurrently([...fds, -1]);
      // A closed fd number may already serve another file of this process: it must not be ours.
      fds.forEach((fd, i) => expect(target(fd)).not.toBe(files[i]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("one fd, or none, is closed on this thread", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-close-"));
    try {
      const f = join(dir, "one");
      writeFileSync(f, "x");
      const fd = openSync(f, "r");
      closeConcurrently([fd]);
      expect(target(fd)).not.toBe(f);
      closeConcurrently([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
