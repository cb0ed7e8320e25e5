/** @module tests/unit/binary/gopclntab.test — function tables of real Go builds vs debug/gosym, plus damaged tables. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { ElfFile } from "../../../src/binary/elf.ts";
import { readPclntab, type PclnTable } from "../../../src/binary/gopclntab.ts";
import { TracerError } from "../../../src/errors.ts";
import {
  buildGoProgram,
  dropSectionHeaders,
  FIXTURE,
  type GoBuildMode,
  type GoOracle,
  haveGo,
  inspectWithGo,
  putLE,
  renameSection,
} from "./go-build.ts";

const KNOWN = ["main.main", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip"];
const GO = haveGo();

async function build(mode: GoBuildMode, toolchain?: string): Promise<{ bin: string; bytes: Uint8Array; oracle: GoOracle }> {
  const bin = await buildGoProgram({ ...FIXTURE, mode, ...(toolchain ? { toolchain } : {}) });
  return { bin, bytes: new Uint8Array(readFileSync(bin)), oracle: await inspectWithGo(bin) };
}

function sameFuncs(t: PclnTable, oracle: GoOracle): void {
  const ours = t.funcs().map((f) => [f.name, f.entry, f.end]);
  expect(oracle.funcs?.length ?? 0).toBeGreaterThan(1000);
  expect(ours).toEqual(oracle.funcs ?? []);
}

function tracerError(fn: () => unknown): TracerError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${String(e)}`);
  }
  throw new Error("expected a TracerError, nothing was thrown");
}

function sectionIndex(elf: ElfFile, name: string): number {
  const s = elf.section(name);
  if (!s) throw new Error(`fixture has no ${name}`);
  return s.index;
}

const EXPECT: Record<GoBuildMode, { textStartSource: PclnTable["textStartSource"]; pie: boolean }> = {
  default: { textStartSource: "moduledata-symbol", pie: false },
  "stripped-ldflags": { textStartSource: "moduledata-section", pie: false },
  strip: { textStartSource: "moduledata-section", pie: false },
  pie: { textStartSource: "moduledata-symbol", pie: true },
  "cgo-external": { textStartSource: "moduledata-symbol", pie: false },
  trimpath: { textStartSource: "moduledata-symbol", pie: false },
};

describe.skipIf(!GO)("readPclntab on Go builds of the local toolchain (oracle: debug/gosym)", () => {
  for (const mode of Object.keys(EXPECT) as GoBuildMode[]) {
    test(`${mode}: every function's name, entry and end match`, async () => {
      const { bin, bytes, oracle } = await build(mode);
      const elf = ElfFile.parse(bytes, bin);
      const t = readPclntab(elf);
      expect(t.version).toBe("1.20");
      expect(t.ptrSize).toBe(8);
      expect(t.source).toBe("section");
      expect(t.textStartSource).toBe(EXPECT[mode].textStartSource);
      expect(elf.isPIE).toBe(EXPECT[mode].pie);
      expect(t.textStart).toBe(oracle.textStart ?? -1);
      sameFuncs(t, oracle);
      for (const name of KNOWN) {
        const f = t.find(name);
        expect(f, name).toBeDefined();
        expect(f!.end).toBeGreaterThan(f!.entry);
        expect(elf.isExecutableAddress(f!.entry)).toBe(true);
        expect(elf.vaddrToFileOffset(f!.entry)).toBe(oracle.fileOffsets?.[name] ?? -1);
      }
      expect(t.find("no/such.Function")).toBeUndefined();
    });
  }

  test("the oracle's .text fallback is sound: internal linking puts runtime.text at the start of .text", async () => {
    const { bytes, oracle } = await build("default");
    const elf = ElfFile.parse(bytes);
    expect(oracle.textStartFrom).toBe("runtime.text");
    expect(oracle.textStart).toBe(elf.section(".text")!.addr);
  });

  test("cgo + external linking: runtime.text is not the start of .text, and we do not confuse them", async () => {
    const { bytes, oracle } = await build("cgo-external");
    const elf = ElfFile.parse(bytes);
    const t = readPclntab(elf);
    expect(oracle.textStartFrom).toBe("runtime.text");
    expect(elf.section(".text")!.addr).not.toBe(t.textStart);
    expect(t.textStart).toBe(oracle.textStart ?? -1);
  });

  test("table found through runtime.pclntab when the section is renamed", async () => {
    const { bytes, oracle } = await build("default");
    const copy = bytes.slice();
    renameSection(copy, sectionIndex(ElfFile.parse(bytes), ".gopclntab"), ".gopclntaX");
    const t = readPclntab(ElfFile.parse(copy));
    expect(t.source).toBe("symbol");
    sameFuncs(t, oracle);
  });

  for (const mode of ["stripped-ldflags", "pie"] as const) {
    test(`${mode} with no section headers: table and moduledata found by scanning segments`, async () => {
      const { bytes, oracle } = await build(mode);
      const copy = bytes.slice();
      dropSectionHeaders(copy);
      const elf = ElfFile.parse(copy);
      expect(elf.sections).toEqual([]);
      const t = readPclntab(elf);
      expect(t.source).toBe("scan");
      expect(t.textStartSource).toBe("moduledata-scan");
      sameFuncs(t, oracle);
    });
  }

  test("stripped, .go.module renamed: moduledata found by scanning for the table address", async () => {
    const { bytes, oracle } = await build("strip");
    const copy = bytes.slice();
    renameSection(copy, sectionIndex(ElfFile.parse(bytes), ".go.module"), ".go.modulX");
    const t = readPclntab(ElfFile.parse(copy));
    expect(t.textStartSource).toBe("moduledata-scan");
    sameFuncs(t, oracle);
  });

  test("PIE whose moduledata pointers are 0 in the file (as aarch64 ld leaves them) is read through R_*_RELATIVE relocations", async () => {
    const { bytes, oracle } = await build("pie");
    const copy = bytes.slice();
    const mod = ElfFile.parse(bytes).section(".go.module")!;
    // The pointer-valued words we read: pcHeader, funcnametab.ptr, pclntable.ptr, ftab.ptr, minpc, maxpc, text, etext.
    for (const w of [0, 1, 13, 16, 20, 21, 22, 23]) putLE(copy, mod.offset + w * 8, 8, 0);
    const elf = ElfFile.parse(copy);
    expect(elf.relativeRelocations().get(mod.addr)).toBe(elf.section(".gopclntab")!.addr);
    const t = readPclntab(elf);
    expect(t.textStart).toBe(oracle.textStart ?? -1);
    sameFuncs(t, oracle);
  });

  test("a moduledata whose text disagrees with minpc is rejected, not guessed around", async () => {
    const { bytes } = await build("stripped-ldflags");
    const copy = bytes.slice();
    const mod = ElfFile.parse(bytes).section(".go.module")!;
    // moduledata.text is word 22 (src/runtime/symtab.go); shift it by one page.
    const textOff = mod.offset + 22 * 8;
    const text = new DataView(copy.buffer).getBigUint64(textOff, true);
    putLE(copy, textOff, 8, text + 0x1000n);
    const e = tracerError(() => readPclntab(ElfFile.parse(copy)));
    expect(e.code).toBe("corrupt_binary");
    expect(e.message).toContain("cannot establish the start of Go text");
    expect(e.detail?.join("\n")).toContain(".go.module");
  });
});

/** Older toolchains are fetched by the go command (GOTOOLCHAIN); skip when that is not possible here. */
function toolchainAvailable(tc: string): boolean {
  if (!GO) return false;
  const r = spawnSync("go", ["version"], { env: { ...process.env, GOTOOLCHAIN: tc }, encoding: "utf8", timeout: 600_000 });
  return r.status === 0 && r.stdout.includes(tc);
}

for (const [tc, version] of [
  ["go1.21.13", "1.20"],
  ["go1.19.13", "1.18"],
] as const) {
  const ok = toolchainAvailable(tc);
  describe.skipIf(!ok)(`readPclntab on ${tc} builds (magic ${version === "1.18" ? "0xfffffff0" : "0xfffffff1"}, textStart in the header)`, () => {
    for (const mode of ["default", "stripped-ldflags"] as const) {
      test(mode, async () => {
        const { bytes, oracle } = await build(mode, tc);
        const t = readPclntab(ElfFile.parse(bytes));
        expect(t.version).toBe(version);
        expect(t.textStartSource).toBe("header");
        expect(t.textStart).toBe(oracle.textStart ?? -1);
        sameFuncs(t, oracle);
        for (const name of KNOWN) expect(t.find(name), name).toBeDefined();
      });
    }
  });
  if (!ok) test.skip(`${tc} builds: toolchain could not be fetched with GOTOOLCHAIN=${tc}`, () => {});
}

describe.skipIf(!GO)("damaged function tables give TracerErrors with the right code", () => {
  async function withTable(): Promise<{ bytes: Uint8Array; off: number }> {
    const { bytes } = await build("stripped-ldflags");
    return { bytes, off: ElfFile.parse(bytes).section(".gopclntab")!.offset };
  }

  test("the Go 1.2–1.15 magic is unsupported_go_version with a hint", async () => {
    const { bytes, off } = await withTable();
    const copy = bytes.slice();
    putLE(copy, off, 4, 0xfffffffb);
    const e = tracerError(() => readPclntab(ElfFile.parse(copy)));
    expect(e.code).toBe("unsupported_go_version");
    expect(e.hint).toContain("Go 1.17");
  });

  test("the Go 1.16 magic on a newer table is read with the 1.16 layout and found corrupt, never misread", async () => {
    const { bytes, off } = await withTable();
    const copy = bytes.slice();
    putLE(copy, off, 4, 0xfffffffa);
    expect(tracerError(() => readPclntab(ElfFile.parse(copy))).code).toBe("corrupt_binary");
  });

  test("unknown magic, bad padding, quantum, pointer size, offsets and function count are corrupt_binary", async () => {
    const { bytes, off } = await withTable();
    const cases: [string, number, 1 | 2 | 4 | 8, number][] = [
      ["magic", 0, 4, 0x12345678],
      ["pad", 4, 1, 1],
      ["minLC", 6, 1, 3],
      ["ptrSize", 7, 1, 5],
      ["nfunc", 8, 8, 0x7fffffff],
      ["nfunc zero", 8, 8, 0],
      ["funcnameOffset", 8 + 3 * 8, 8, 0x7fffffff],
      ["pclnOffset", 8 + 7 * 8, 8, 4],
    ];
    for (const [what, at, size, value] of cases) {
      const copy = bytes.slice();
      putLE(copy, off + at, size, value);
      const e = tracerError(() => readPclntab(ElfFile.parse(copy)));
      expect(`${what}: ${e.code}`).toBe(`${what}: corrupt_binary`);
    }
  });

  test("unsorted function table is corrupt_binary", async () => {
    const { bytes, off } = await withTable();
    const copy = bytes.slice();
    const pcln = Number(new DataView(copy.buffer).getBigUint64(off + 8 + 7 * 8, true));
    putLE(copy, off + pcln + 8 * 10, 4, 0xfffffff); // entry of function 10 far above function 11
    expect(tracerError(() => readPclntab(ElfFile.parse(copy))).code).toBe("corrupt_binary");
  });

  test("an ELF with no Go function table is not_go_binary", async () => {
    const { bytes } = await withTable();
    const copy = bytes.slice();
    const elf = ElfFile.parse(bytes);
    renameSection(copy, sectionIndex(elf, ".gopclntab"), ".gopclntaX");
    // Erase every pcHeader signature so the segment scan finds nothing.
    const sec = elf.section(".gopclntab")!;
    copy.fill(0, sec.offset, sec.offset + 8);
    expect(tracerError(() => readPclntab(ElfFile.parse(copy))).code).toBe("not_go_binary");
  });
});
