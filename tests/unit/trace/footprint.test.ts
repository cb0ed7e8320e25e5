/**
 * @module tests/unit/trace/footprint.test — the start-up trim (src/trace/footprint.ts): the x86
 * decoder can be dropped and loads again on the next use, and releasing this process's code
 * pages (src/bpf/pageout.ts) lowers its RSS while everything keeps running. In a fresh process
 * (footprint-entry.ts). No root needed: /proc/self/pagemap gives its flags to the owner.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

// RET at +4, RET imm16 at +8, RET at +16 (as in tests/unit/vendor/iced-prepare.test.ts).
const SITES = [0x1004, 0x1008, 0x1010];

describe("start-up trim", () => {
  test("decoder dropped and reloaded; code pages released; decoding still works after each", () => {
    const r = spawnSync(process.execPath, [join(import.meta.dir, "footprint-entry.ts")], { encoding: "utf8", env: { ...process.env, BEETRACE_NO_TRIM: "" } });
    if (r.status !== 0) throw new Error(`entry exited ${r.status}: ${r.stderr}`);
    const o = JSON.parse(r.stdout.trim());
    expect(o.first).toEqual(SITES);
    expect(o.second).toEqual(SITES);
    expect(o.third).toEqual(SITES);
    expect(o.fourth).toEqual(SITES);
    expect(o.released).toBe(true);
    expect(o.reloaded).toBe(true);
    expect(o.error).toBeNull();
    // Bun's own executable alone has tens of MiB resident after start-up.
    expect(o.advisedBytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(o.rssAfter).toBeLessThan(o.rssBefore);
  });
});
