/**
 * @module binary/analyze — everything beetrace needs to know about one Go executable, offline:
 * versions, functions with their return sites, and struct-field offsets with their provenance.
 *
 * Pure: no FFI, no root. `beetrace inspect` prints this; the tracer uses it to decide where to
 * attach. Per-symbol and per-field problems are reported as unresolved with a reason (never
 * guessed); only problems with the file as a whole throw.
 */
import { ElfFile } from "./elf.ts";
import { readBuildInfo, type GoBuildInfo } from "./buildinfo.ts";
import { readPclntab, type PclnTable } from "./gopclntab.ts";
import { GoDwarf } from "./dwarf.ts";
import { findReturnSites } from "./returns.ts";
import { entryProbeSite } from "./probe-sites.ts";
import { isTracerError, TracerError } from "../errors.ts";
import { resolveField, type FieldResolution } from "../offsets/resolve.ts";
import type { OffsetsTable } from "../offsets/table.ts";

/**
 * Where an entry probe goes: the first instruction of the prologue the kernel emulates
 * (src/binary/probe-sites.ts), else the entry itself (single-stepped, ~10x dearer a hit).
 */
export interface ProbeSite {
  addr: number;
  fileOffset: number;
  /** "jbe", "push"...: the instruction the uprobe sits on */
  mnemonic: string;
  emulated: boolean;
  /** why the site is not an emulated instruction */
  reason?: string;
}

export type SymbolReport =
  | { name: string; resolved: true; entry: number; end: number; fileOffset: number; site: ProbeSite; returns: number[] }
  | { name: string; resolved: false; reason: string };

export interface BinaryAnalysis {
  path: string;
  elf: ElfFile;
  buildInfo: GoBuildInfo;
  pcln: PclnTable;
  dwarf: GoDwarf | undefined;
  goVersion: string;
  arch: "x86_64" | "aarch64";
  pie: boolean;
  stripped: boolean;
  modules: Map<string, string>;
}

/** Open and validate a Go executable; throws TracerError for whole-file problems. */
export function openGoBinary(bytes: Uint8Array, path: string): BinaryAnalysis {
  const elf = ElfFile.parse(bytes, path);
  let buildInfo: GoBuildInfo;
  try {
    buildInfo = readBuildInfo(elf);
  } catch (e) {
    if (isTracerError(e) && e.code === "not_go_binary") {
      throw new TracerError("not_go_binary", `${path} is not a Go program (no Go build information)`, {
        hint: "beetrace traces programs built by the Go toolchain (go build); check you passed the service binary, not a wrapper script or launcher",
      });
    }
    throw e;
  }
  const pcln = readPclntab(elf);
  let dwarf: GoDwarf | undefined;
  try {
    dwarf = GoDwarf.open(elf);
  } catch (e) {
    // Damaged DWARF must not stop tracing: offsets can still come from the snapshot.
    if (!isTracerError(e)) throw e;
    dwarf = undefined;
  }
  const modules = new Map<string, string>();
  for (const d of buildInfo.deps) modules.set(d.path, d.replace?.version || d.version);
  return {
    path,
    elf,
    buildInfo,
    pcln,
    dwarf,
    goVersion: buildInfo.goVersion,
    arch: elf.machine,
    pie: elf.isPIE,
    stripped: !elf.hasSymtab,
    modules,
  };
}

/**
 * A function found in the function table, at an executable, file-backed entry, without decoding
 * anything: `site` is its entry address, with no mnemonic and `reason` "not decoded yet", and
 * `returns` is empty, until resolveSymbol decodes the prologue for the real entry site (which may
 * still fail: the bytes may not decode). Unresolved, with the same reasons as resolveSymbol, when
 * it is not there.
 */
export function locateSymbol(a: BinaryAnalysis, name: string): SymbolReport {
  const fn = a.pcln.find(name);
  if (!fn) return { name, resolved: false, reason: NOT_IN_TABLE };
  const fileOffset = a.elf.vaddrToFileOffset(fn.entry);
  if (fileOffset === undefined || !a.elf.isExecutableAddress(fn.entry)) return { name, resolved: false, reason: notExecutable(fn.entry) };
  return { name, resolved: true, entry: fn.entry, end: fn.end, fileOffset, site: { addr: fn.entry, fileOffset, mnemonic: "", emulated: false, reason: "not decoded yet" }, returns: [] };
}

const NOT_IN_TABLE = "not in the function table (not linked into this binary, or inlined everywhere)";
const notExecutable = (entry: number): string => `entry 0x${entry.toString(16)} is not in an executable, file-backed segment`;

/**
 * Entry, end, file offset, entry probe site and every return site of a function; unresolved with
 * a reason otherwise. `returns: false` skips decoding the whole function for its RETs (an end
 * marker needs only its entry site): `returns` is then empty.
 */
export function resolveSymbol(a: BinaryAnalysis, name: string, opts: { returns?: boolean } = {}): SymbolReport {
  const fn = a.pcln.find(name);
  if (!fn) return { name, resolved: false, reason: NOT_IN_TABLE };
  const fileOffset = a.elf.vaddrToFileOffset(fn.entry);
  if (fileOffset === undefined || !a.elf.isExecutableAddress(fn.entry)) return { name, resolved: false, reason: notExecutable(fn.entry) };
  try {
    const wantReturns = opts.returns ?? true;
    // The prologue is all the entry site needs; the RETs need the whole function.
    const code = a.elf.readVirtual(fn.entry, wantReturns ? fn.end - fn.entry : Math.min(fn.end - fn.entry, PROLOGUE_BYTES));
    const returns = wantReturns ? findReturnSites(a.arch, code, fn.entry) : [];
    if (wantReturns && returns.length === 0) {
      return { name, resolved: false, reason: "no return instruction found (the function never returns normally)" };
    }
    const s = entryProbeSite(a.arch, code, fn.entry);
    const siteOffset = a.elf.vaddrToFileOffset(s.addr);
    const site: ProbeSite =
      siteOffset === undefined
        ? { addr: fn.entry, fileOffset, mnemonic: s.mnemonic, emulated: false, reason: "emulated site is not file-backed" }
        : { addr: s.addr, fileOffset: siteOffset, mnemonic: s.mnemonic, emulated: s.emulated, ...(s.reason ? { reason: s.reason } : {}) };
    return { name, resolved: true, entry: fn.entry, end: fn.end, fileOffset, site, returns };
  } catch (e) {
    if (isTracerError(e)) return { name, resolved: false, reason: e.message };
    throw e;
  }
}

/** Bytes of a function's start decoded to find its entry probe site (probe-sites.ts walks at most a few instructions). */
const PROLOGUE_BYTES = 64;

export interface FieldOptions {
  snapshot: OffsetsTable;
  file?: OffsetsTable;
  allowNearest: boolean;
}

export function resolveFields(a: BinaryAnalysis, fields: string[], opts: FieldOptions): FieldResolution[] {
  const dwarf = a.dwarf;
  return fields.map((field) =>
    resolveField(field, {
      goVersion: a.goVersion,
      modules: a.modules,
      dwarf: dwarf
        ? {
            resolve: (p) => dwarf.resolve(p),
            hasType: (t) => dwarf.typeSize(t) !== undefined,
          }
        : undefined,
      file: opts.file,
      snapshot: opts.snapshot,
      allowNearest: opts.allowNearest,
    }),
  );
}
