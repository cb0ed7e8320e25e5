/** @module tests/unit/target/prefault — which lines of /proc/PID/maps map the executable, and reading a range of our own. */
import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { mappingsOf, prefaultFileRange } from "../../../src/target/prefault.ts";

const MAPS = `00400000-006d0000 r-xp 00000000 fd:01 9996780                            /srv/app
006d0000-009da000 r--p 002d0000 fd:01 9996780                            /srv/app
009da000-00a27000 rw-p 005da000 fd:01 9996780                            /srv/app
00a27000-00a6a000 rw-p 00000000 00:00 0
7f0000000000-7f0000021000 r--p 00000000 fd:01 123                        /lib/x86_64-linux-gnu/libc.so.6
`;

describe("prefault", () => {
  test("mappingsOf keeps the executable's mappings (by inode), with their file offsets", () => {
    expect(mappingsOf(MAPS, 9996780)).toEqual([
      { start: 0x400000, end: 0x6d0000, offset: 0, inode: 9996780 },
      { start: 0x6d0000, end: 0x9da000, offset: 0x2d0000, inode: 9996780 },
      { start: 0x9da000, end: 0xa27000, offset: 0x5da000, inode: 9996780 },
    ]);
    expect(mappingsOf(MAPS, 42)).toEqual([]);
    expect(mappingsOf("garbage\n\n", 1)).toEqual([]);
  });

  test("a range of our own executable reads back whole; a process that is gone reads nothing", () => {
    const exe = process.execPath;
    const size = Math.min(statSync(exe).size, 256 << 10);
    expect(prefaultFileRange(process.pid, exe, 0, size)).toBe(size);
    expect(prefaultFileRange(2 ** 22 + 1, exe, 0, size)).toBe(0);
  });
});
