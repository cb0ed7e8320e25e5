/** @module tests/unit/binary/elf.test — ELF reader vs Go's debug/elf on real builds, and damaged/hostile input. */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { ElfFile, type ElfSymbol, PF_X, PT_LOAD, SHF_COMPRESSED, SHT_NOBITS } from "../../../src/binary/elf.ts";
import { readBuildInfo } from "../../../src/binary/buildinfo.ts";
import { readPclntab } from "../../../src/binary/gopclntab.ts";
import { TracerError } from "../../../src/errors.ts";
import {
  buildGoProgram,
  FIXTURE,
  type GoBuildMode,
  type GoOracle,
  haveGo,
  inspectWithGo,
  putLE,
  setSectionField,
  shdrOffset,
} from "./go-build.ts";

const GO = haveGo();
const HOST_MACHINE = process.arch === "arm64" ? "aarch64" : "x86_64";
const TRUE_BIN = ["/bin/true", "/usr/bin/true"].find(existsSync);

function tracerError(fn: () => unknown): TracerError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${e instanceof Error ? e.stack : String(e)}`);
  }
  throw new Error("expected a TracerError, nothing was thrown");
}

/** Run every reader over `bytes`; "ok" or the TracerError code. Any other exception fails the test. */
function readEverything(bytes: Uint8Array): string {
  try {
    const elf = ElfFile.parse(bytes, "fuzzed");
    elf.symbols();
    elf.dynamicSymbols();
    for (const s of elf.sections) elf.sectionBytes(s);
    readBuildInfo(elf);
    const t = readPclntab(elf);
    for (const f of t.funcs()) elf.vaddrToFileOffset(f.entry);
    return "ok";
  } catch (e) {
    if (e instanceof TracerError) return e.code;
    throw e;
  }
}

const symTuple = (s: ElfSymbol) => [s.name, s.value, s.size, s.type, s.bind, s.shndx];

function sameAsOracle(elf: ElfFile, o: GoOracle): void {
  expect(o.elfError).toBeUndefined();
  // debug/elf reports a compressed section's alignment from its Chdr; we report the raw sh_addralign.
  const norm = <T extends { flags: number; addralign: number }>(s: T) => ((s.flags & SHF_COMPRESSED) !== 0 ? { ...s, addralign: -1 } : s);
  expect(elf.sections.map(({ index: _i, ...s }) => norm(s))).toEqual(o.sections.map(norm));
  expect(elf.segments).toEqual(o.progs);
  expect(elf.symbols().map(symTuple)).toEqual(o.symbols ?? []);
  expect(elf.dynamicSymbols().map(symTuple)).toEqual(o.dynsyms ?? []);
  expect(elf.hasSymtab).toBe((o.symbols ?? []).length > 0);
  expect(elf.sections.every((s, i) => s.index === i)).toBe(true);
}

async function fixture(mode: GoBuildMode): Promise<{ bin: string; bytes: Uint8Array }> {
  const bin = await buildGoProgram({ ...FIXTURE, mode });
  return { bin, bytes: new Uint8Array(readFileSync(bin)) };
}

describe.skipIf(!GO)("ElfFile on Go builds (oracle: debug/elf)", () => {
  for (const mode of ["default", "stripped-ldflags", "strip", "pie", "cgo-external"] as const) {
    test(`${mode}: header, sections, segments, symbols`, async () => {
      const { bin, bytes } = await fixture(mode);
      const o = await inspectWithGo(bin);
      const elf = ElfFile.parse(bytes, bin);
      sameAsOracle(elf, o);
      expect(elf.machine).toBe(HOST_MACHINE);
      expect(elf.elfType).toBe(mode === "pie" ? "dyn" : "exec");
      expect(elf.isPIE).toBe(mode === "pie");
      expect(elf.hasSymtab).toBe(mode !== "strip" && mode !== "stripped-ldflags");
      if (mode === "cgo-external") expect(elf.dynamicSymbols().length).toBeGreaterThan(0);
    });
  }

  test("address mapping: file offsets, virtual reads and executability agree with the file", async () => {
    const { bin, bytes } = await fixture("default");
    const o = await inspectWithGo(bin);
    const elf = ElfFile.parse(bytes, bin);
    const main = elf.symbols().find((s) => s.name === "main.main")!;
    expect(elf.vaddrToFileOffset(main.value)).toBe(o.fileOffsets?.["main.main"] ?? -1);
    const text = elf.section(".text")!;
    const viaSection = elf.sectionBytes(text).subarray(main.value - text.addr, main.value - text.addr + 32);
    expect(elf.readVirtual(main.value, 32)).toEqual(viaSection);
    expect(elf.isExecutableAddress(main.value)).toBe(true);
    expect(elf.isExecutableAddress(elf.section(".rodata")!.addr)).toBe(false);
    expect(elf.isExecutableAddress(0)).toBe(false);
    expect(elf.vaddrToFileOffset(0)).toBeUndefined();
    // .bss is memory-only: no file offset, no bytes.
    const bss = elf.sections.find((s) => s.type === SHT_NOBITS)!;
    expect(elf.sectionBytes(bss).byteLength).toBe(0);
    expect(elf.vaddrToFileOffset(bss.addr + bss.size - 1)).toBeUndefined();
    expect(tracerError(() => elf.readVirtual(0x10, 8)).code).toBe("corrupt_binary");
    // A read that starts inside a segment but runs past its file-backed end.
    const load = elf.segments.find((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0)!;
    expect(tracerError(() => elf.readVirtual(load.vaddr + load.filesz - 4, 8)).code).toBe("corrupt_binary");
    expect(tracerError(() => elf.readVirtual(load.vaddr, Number.MAX_SAFE_INTEGER)).code).toBe("corrupt_binary");
  });

  test("extended numbering: SHN_XINDEX, e_shnum = 0 and PN_XNUM read the counts from section 0", async () => {
    const { bytes } = await fixture("stripped-ldflags");
    const ref = ElfFile.parse(bytes);
    const copy = bytes.slice();
    const s0 = shdrOffset(copy, 0);
    putLE(copy, 62, 2, 0xffff); // e_shstrndx = SHN_XINDEX
    putLE(copy, s0 + 40, 4, new DataView(bytes.buffer, bytes.byteOffset).getUint16(62, true)); // sh_link
    putLE(copy, 60, 2, 0); // e_shnum = 0
    putLE(copy, s0 + 32, 8, ref.sections.length); // sh_size
    putLE(copy, 56, 2, 0xffff); // e_phnum = PN_XNUM
    putLE(copy, s0 + 44, 4, ref.segments.length); // sh_info
    const elf = ElfFile.parse(copy);
    expect(elf.sections.map((s) => s.name)).toEqual(ref.sections.map((s) => s.name));
    expect(elf.segments).toEqual(ref.segments);
  });
});

describe.skipIf(!GO || TRUE_BIN === undefined)("ElfFile on a C program (the system's `true`)", () => {
  test("sections, segments and dynamic symbols match debug/elf; it is not a Go binary", async () => {
    const bytes = new Uint8Array(readFileSync(TRUE_BIN!));
    const elf = ElfFile.parse(bytes, "true");
    sameAsOracle(elf, await inspectWithGo(TRUE_BIN!));
    expect(elf.dynamicSymbols().length).toBeGreaterThan(0);
    expect(tracerError(() => readPclntab(elf)).code).toBe("not_go_binary");
  });
});

describe("ElfFile on input that is not a supported ELF", () => {
  const ident = (cls: number, data: number, machine = 62): Uint8Array => {
    const b = new Uint8Array(64);
    b.set([0x7f, 0x45, 0x4c, 0x46, cls, data, 1]);
    putLE(b, 16, 2, 2);
    putLE(b, 18, 2, machine);
    putLE(b, 52, 2, 64);
    return b;
  };
  test.each([
    ["empty file", new Uint8Array(0), "unrecognized_format"],
    ["three bytes of the magic", new Uint8Array([0x7f, 0x45, 0x4c]), "unrecognized_format"],
    ["a shell script", new TextEncoder().encode("#!/bin/sh\necho hello\n"), "unrecognized_format"],
    ["a PE file", new Uint8Array([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0]), "unrecognized_format"],
    ["ELF magic, truncated header", ident(2, 1).subarray(0, 20), "corrupt_binary"],
    ["32-bit ELF", ident(1, 1), "unsupported_arch"],
    ["big-endian ELF", ident(2, 2), "unsupported_arch"],
    ["unknown ELF class", ident(7, 1), "unrecognized_format"],
    ["ARM (32-bit machine) in an ELF64", ident(2, 1, 40), "unsupported_arch"],
    ["RISC-V", ident(2, 1, 243), "unsupported_arch"],
  ] as const)("%s → %s", (_what, bytes, code) => {
    const e = tracerError(() => ElfFile.parse(bytes, "input"));
    expect(e.code).toBe(code);
    expect(e.message).toStartWith("input");
    expect(e.message).not.toContain("\n");
    expect(e.hint).toBeDefined();
  });

  test("a minimal header-only ELF64 parses with no sections or segments", () => {
    const elf = ElfFile.parse(ident(2, 1), "minimal");
    expect(elf.sections).toEqual([]);
    expect(elf.segments).toEqual([]);
    expect(elf.symbols()).toEqual([]);
    expect(tracerError(() => readBuildInfo(elf)).code).toBe("not_go_binary");
    expect(tracerError(() => readPclntab(elf)).code).toBe("not_go_binary");
  });

  test("random bytes behind a valid ELF64 identification only ever give TracerErrors", () => {
    let seed = 0x2545f491;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
    const codes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(16 + Math.floor(rand() * 4096));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
      if (b.length > 19 && rand() < 0.8) putLE(b, 18, 2, 62);
      const code = readEverything(b);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect(codes.get("ok")).toBeUndefined();
    expect(codes.get("corrupt_binary")).toBeGreaterThan(0);
  });
});

describe.skipIf(!GO)("damaged Go binaries only ever give TracerErrors with the right code", () => {
  test("truncated at many points: corrupt_binary (or unrecognized_format before the magic)", async () => {
    const { bytes } = await fixture("default");
    const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
    const points = [0, 3, 4, 20, 63, 64, 100, 4096, bytes.length >> 2, bytes.length >> 1, shoff, shoff + 64 * 3, bytes.length - 1];
    for (const n of points) {
      const code = readEverything(bytes.subarray(0, n));
      expect(`${n}: ${code}`).toBe(`${n}: ${n < 4 ? "unrecognized_format" : "corrupt_binary"}`);
    }
  });

  test("bogus header and section fields", async () => {
    const { bytes } = await fixture("default");
    const ref = ElfFile.parse(bytes);
    const idx = (name: string) => ref.section(name)!.index;
    const textLoad = ref.segments.findIndex((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0);
    const phdrOffset = (b: Uint8Array, i: number) => Number(new DataView(b.buffer).getBigUint64(32, true)) + i * 56;
    const cases: [string, (b: Uint8Array) => void, string][] = [
      ["e_shoff past the end", (b) => putLE(b, 40, 8, bytes.length + 10), "corrupt_binary"],
      ["e_shoff above 2^53", (b) => putLE(b, 40, 8, 0xffffffffffffffffn), "corrupt_binary"],
      ["e_shnum too large", (b) => putLE(b, 60, 2, 0xfff0), "corrupt_binary"],
      ["e_shentsize too small", (b) => putLE(b, 58, 2, 10), "corrupt_binary"],
      ["e_phentsize too small", (b) => putLE(b, 54, 2, 10), "corrupt_binary"],
      ["e_phoff past the end", (b) => putLE(b, 32, 8, bytes.length - 8), "corrupt_binary"],
      ["e_ehsize too small", (b) => putLE(b, 52, 2, 10), "corrupt_binary"],
      ["e_shstrndx out of range", (b) => putLE(b, 62, 2, 999), "corrupt_binary"],
      ["section name offset outside the name table", (b) => setSectionField(b, 3, "name", 0x7fffffff), "corrupt_binary"],
      ["name table offset past the end", (b) => setSectionField(b, new DataView(b.buffer).getUint16(62, true), "offset", bytes.length), "corrupt_binary"],
      [".gopclntab offset past the end", (b) => setSectionField(b, idx(".gopclntab"), "offset", bytes.length), "corrupt_binary"],
      [".gopclntab size past the end", (b) => setSectionField(b, idx(".gopclntab"), "size", bytes.length), "corrupt_binary"],
      [".gopclntab size cut short", (b) => setSectionField(b, idx(".gopclntab"), "size", 200), "corrupt_binary"],
      [".go.buildinfo offset past the end", (b) => setSectionField(b, idx(".go.buildinfo"), "offset", bytes.length - 4), "corrupt_binary"],
      [".symtab links to a non-string-table", (b) => setSectionField(b, idx(".symtab"), "link", 0), "corrupt_binary"],
      [".symtab size past the end", (b) => setSectionField(b, idx(".symtab"), "size", bytes.length), "corrupt_binary"],
      [".text segment filesz past the end", (b) => putLE(b, phdrOffset(b, textLoad) + 32, 8, bytes.length * 2), "corrupt_binary"],
      [".text segment filesz above memsz", (b) => putLE(b, phdrOffset(b, textLoad) + 32, 8, ref.segments[textLoad]!.memsz + 1), "corrupt_binary"],
    ];
    for (const [what, damage, code] of cases) {
      const copy = bytes.slice();
      damage(copy);
      expect(`${what}: ${readEverything(copy)}`).toBe(`${what}: ${code}`);
    }
  });

  test("random byte flips across headers, tables and data never escape as other exceptions", async () => {
    const { bytes } = await fixture("stripped-ldflags");
    const elf = ElfFile.parse(bytes);
    const hot = [".gopclntab", ".go.buildinfo", ".go.module"].map((n) => elf.section(n)!);
    const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
    const regions: [number, number][] = [
      [0, 64 + 56 * elf.segments.length], // ELF and program headers
      [shoff, bytes.length - shoff], // section headers
      ...hot.map((s): [number, number] => [s.offset, Math.min(s.size, 4096)]), // table headers and first records
      [0, bytes.length], // anywhere
    ];
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
    const copy = bytes.slice();
    const codes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const [start, len] = regions[i % regions.length]!;
      const flips: number[] = [];
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = start + Math.floor(rand() * len);
        flips.push(at);
        copy[at] = (copy[at] ?? 0) ^ (1 << Math.floor(rand() * 8));
      }
      const code = readEverything(copy);
      codes.set(code, (codes.get(code) ?? 0) + 1);
      for (const at of flips) copy[at] = bytes[at] ?? 0;
    }
    expect([...codes.keys()].every((c) => ["ok", "corrupt_binary", "not_go_binary", "unsupported_arch", "unrecognized_format", "unsupported_go_version"].includes(c))).toBe(true);
    expect(codes.get("corrupt_binary")).toBeGreaterThan(10);
    expect(codes.get("ok")).toBeGreaterThan(10);
  });
});
