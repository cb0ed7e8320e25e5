/**
 * @module tests/unit/vendor/iced-prepare.test — prepareIced() loads the x86 decoder from a module
 * compiled ahead, iced() still works alone and while a prepare is in flight, and all three
 * decode the same. Each case runs in a fresh process: the decoder is loaded once per process.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ENTRY = join(import.meta.dir, "iced-prepare-entry.ts");

interface Out {
  before: boolean;
  afterPrepare: boolean;
  compiledAhead: boolean;
  sameObject: boolean;
  again: boolean;
  sites: number[];
}

function run(mode: string): Out {
  const r = spawnSync(process.execPath, [ENTRY, mode], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`entry ${mode} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Out;
}

// RET at +4, RET imm16 at +8, RET at +16; the C3 bytes inside the MOV immediate are not returns.
const SITES = [0x1004, 0x1008, 0x1010];

describe("loading iced-x86", () => {
  test("prepareIced: compiled ahead, loaded before the first decode, same return sites", () => {
    const o = run("prepare");
    expect(o).toEqual({ before: false, afterPrepare: true, compiledAhead: true, sameObject: true, again: true, sites: SITES });
  });

  test("iced() without prepareIced compiles in place and finds the same sites", () => {
    const o = run("sync");
    expect(o).toEqual({ before: false, afterPrepare: false, compiledAhead: false, sameObject: true, again: true, sites: SITES });
  });

  test("iced() while a prepare is in flight loads in place; the prepare then resolves without replacing it", () => {
    const o = run("in-flight");
    expect(o).toEqual({ before: false, afterPrepare: true, compiledAhead: false, sameObject: true, again: true, sites: SITES });
  });
});
