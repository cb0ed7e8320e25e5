/**
 * @module tests/unit/binary/fuzz-harness — mutate real Go binaries and feed every reader.
 *
 * Shared by the bounded fuzz test (tests/unit/binary/fuzz.test.ts) and the long run
 * (bench/fuzz-readers.ts). The contract under test: whatever the bytes, the readers either
 * succeed or throw TracerError — never another exception, never a hang.
 */
import { ElfFile } from "../../../src/binary/elf.ts";
import { readBuildInfo } from "../../../src/binary/buildinfo.ts";
import { readPclntab } from "../../../src/binary/gopclntab.ts";
import { GoDwarf } from "../../../src/binary/dwarf.ts";
import { findReturnSites } from "../../../src/binary/returns.ts";
import { openGoBinary, resolveSymbol } from "../../../src/binary/analyze.ts";
import { TracerError } from "../../../src/errors.ts";

/** xorshift32: deterministic, seedable, no dependency. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export interface Region {
  name: string;
  start: number;
  end: number;
}

/** File regions worth aiming at: the headers and the sections the readers parse. */
export function interestingRegions(bytes: Uint8Array): Region[] {
  const elf = ElfFile.parse(bytes, "fuzz seed");
  const regions: Region[] = [{ name: "ELF header", start: 0, end: 64 }];
  const eh = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(eh.getBigUint64(0x28, true));
  const shnum = eh.getUint16(0x3c, true);
  const phoff = Number(eh.getBigUint64(0x20, true));
  const phnum = eh.getUint16(0x38, true);
  regions.push({ name: "program headers", start: phoff, end: phoff + phnum * 56 });
  if (shoff) regions.push({ name: "section headers", start: shoff, end: shoff + shnum * 64 });
  for (const s of elf.sections) {
    if (/^\.(go\.buildinfo|gopclntab|go\.module|z?debug_(info|abbrev|str|line_str)|noptrdata|data\.rel\.ro|symtab|strtab)$/.test(s.name) && s.type !== 8) {
      regions.push({ name: s.name, start: s.offset, end: s.offset + Math.min(s.size, 1 << 16) });
    }
  }
  return regions.filter((r) => r.end > r.start && r.end <= bytes.length);
}

export type MutationKind = "truncate" | "flip" | "overwrite-word" | "zero-run" | "bogus-shdr" | "bogus-phdr";

/** One mutated copy of `seed` and a description of what was done (for failure messages). */
export function mutate(seed: Uint8Array, regions: Region[], rand: () => number): { bytes: Uint8Array; what: string } {
  const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const kinds: MutationKind[] = ["truncate", "flip", "flip", "overwrite-word", "zero-run", "bogus-shdr", "bogus-phdr"];
  const kind = pick(kinds);
  if (kind === "truncate") {
    const r = rand() < 0.5 ? pick(regions) : { name: "file", start: 0, end: seed.length };
    const at = r.start + Math.floor(rand() * (r.end - r.start));
    return { bytes: seed.slice(0, at), what: `truncate at ${at} (${r.name})` };
  }
  const b = seed.slice();
  const dv = new DataView(b.buffer);
  const r = pick(regions);
  const at = r.start + Math.floor(rand() * Math.max(1, r.end - r.start - 8));
  switch (kind) {
    case "flip": {
      const n = 1 + Math.floor(rand() * 16);
      for (let i = 0; i < n; i++) {
        const o = r.start + Math.floor(rand() * (r.end - r.start));
        b[o]! ^= 1 << Math.floor(rand() * 8);
      }
      return { bytes: b, what: `flip ${n} bits in ${r.name}` };
    }
    case "overwrite-word": {
      const values = [0n, 0xffffffffn, 0xffffffffffffffffn, 0x7fffffffn, BigInt(seed.length), BigInt(seed.length) * 2n, 1n];
      dv.setBigUint64(at, pick(values), true);
      return { bytes: b, what: `overwrite 8 bytes at ${at} (${r.name})` };
    }
    case "zero-run": {
      const n = 1 + Math.floor(rand() * 256);
      b.fill(0, at, Math.min(b.length, at + n));
      return { bytes: b, what: `zero ${n} bytes at ${at} (${r.name})` };
    }
    case "bogus-shdr": {
      const shoff = Number(dv.getBigUint64(0x28, true));
      const shnum = dv.getUint16(0x3c, true);
      if (!shoff || !shnum) return { bytes: b, what: "no section headers" };
      const idx = Math.floor(rand() * shnum);
      const field = pick([16, 24, 32, 48, 56]); // sh_addr, sh_offset, sh_size, sh_addralign, sh_entsize (Elf64_Shdr)
      dv.setBigUint64(shoff + idx * 64 + field, pick([0n, 0xffffffffffffn, BigInt(seed.length + 1), BigInt(Math.floor(rand() * seed.length))]), true);
      return { bytes: b, what: `section ${idx} field +${field} bogus` };
    }
    case "bogus-phdr": {
      const phoff = Number(dv.getBigUint64(0x20, true));
      const phnum = dv.getUint16(0x38, true);
      const idx = Math.floor(rand() * phnum);
      const field = pick([8, 16, 32, 40]); // p_offset, p_vaddr, p_filesz, p_memsz (Elf64_Phdr)
      dv.setBigUint64(phoff + idx * 56 + field, pick([0n, 0xffffffffffffn, BigInt(seed.length + 1), BigInt(Math.floor(rand() * seed.length))]), true);
      return { bytes: b, what: `segment ${idx} field +${field} bogus` };
    }
  }
  return { bytes: b, what: "none" };
}

const FIELDS = ["net/http.Request.Method", "net/url.URL.Path", "net/http.response.status"];
const SYMBOLS = ["net/http.serverHandler.ServeHTTP", "main.main"];

/** Run every reader over `bytes`; returns "ok", or the TracerError code; throws anything else. */
export function runAllReaders(bytes: Uint8Array): string {
  const codes: string[] = [];
  const guard = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (e instanceof TracerError) codes.push(e.code);
      else throw e;
    }
  };
  let elf: ElfFile | undefined;
  guard(() => {
    elf = ElfFile.parse(bytes, "fuzz");
  });
  if (!elf) return codes[0] ?? "ok";
  const e = elf;
  guard(() => void e.symbols());
  guard(() => void readBuildInfo(e));
  guard(() => {
    const t = readPclntab(e);
    for (const name of SYMBOLS) {
      const f = t.find(name);
      if (f) findReturnSites(e.machine, e.readVirtual(f.entry, f.end - f.entry), f.entry);
    }
  });
  guard(() => {
    const d = GoDwarf.open(e);
    for (const f of FIELDS) d?.resolve(f);
  });
  guard(() => {
    const a = openGoBinary(bytes, "fuzz");
    for (const s of SYMBOLS) resolveSymbol(a, s);
  });
  return codes.length ? [...new Set(codes)].join(",") : "ok";
}

export interface FuzzResult {
  cases: number;
  outcomes: Map<string, number>;
  slowest: { ms: number; what: string };
}

/** Run `cases` mutations; throws (with the mutation) if anything but TracerError escapes or a case is too slow. */
export function fuzz(seed: Uint8Array, cases: number, seedNumber: number, maxCaseMs = 5000): FuzzResult {
  const rand = rng(seedNumber);
  const regions = interestingRegions(seed);
  const outcomes = new Map<string, number>();
  let slowest = { ms: 0, what: "" };
  for (let i = 0; i < cases; i++) {
    const m = mutate(seed, regions, rand);
    const t0 = performance.now();
    let out: string;
    try {
      out = runAllReaders(m.bytes);
    } catch (e) {
      throw new Error(`case ${i} (${m.what}, rng seed ${seedNumber}): non-TracerError escaped: ${(e as Error).stack ?? e}`);
    }
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, what: m.what };
    if (ms > maxCaseMs) throw new Error(`case ${i} (${m.what}) took ${ms.toFixed(0)} ms: a reader may loop`);
    outcomes.set(out, (outcomes.get(out) ?? 0) + 1);
  }
  return { cases, outcomes, slowest };
}
