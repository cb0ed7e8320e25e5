/** @module binary/gopclntab — Go's function table (pclntab): every function's name, entry and end, even in stripped and PIE binaries. */
import { Buffer } from "node:buffer";
import { TracerError } from "../errors.ts";
import { ByteReader, corrupt, hex } from "./bytes.ts";
import { type ElfFile, PF_W, PF_X, PT_LOAD } from "./elf.ts";

/** Whether typed arrays read little-endian here (x86-64 and arm64 Linux do). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface GoFunc {
  name: string;
  /** Virtual address of the first instruction. */
  entry: number;
  /** Virtual address just past the function (the next function's entry). */
  end: number;
}

export interface PclnTable {
  /** Header layout: "1.16" (Go 1.16–1.17), "1.18" (Go 1.18–1.19) or "1.20" (Go ≥ 1.20). */
  version: "1.16" | "1.18" | "1.20";
  ptrSize: number;
  /**
   * Address of runtime.text: function entries are stored as offsets from it (Go ≥ 1.18). The Go
   * 1.16 layout stores absolute entry addresses; textStart is then the first function's entry.
   */
  textStart: number;
  /** How the table itself was found. */
  source: "section" | "symbol" | "scan";
  /** How textStart was established (after validation). */
  textStartSource: "header" | "symbol" | "moduledata-symbol" | "moduledata-section" | "moduledata-scan" | "absolute-entries";
  /** Virtual address of the pcHeader. */
  addr: number;
  /** Every function in table (address) order; decodes all names, so it costs ~10-20 ms on a 26k-function binary. */
  funcs(): GoFunc[];
  /**
   * The first function (in table order) named exactly `name`, or undefined. Does not decode the
   * other names: it searches the name table for `name`'s UTF-8 bytes and then walks the function
   * table for the record pointing at a hit, so a few lookups cost far less than funcs().
   */
  find(name: string): GoFunc | undefined;
}

/** pcHeader magics: src/internal/abi/symtab.go Go116PCLnTabMagic / Go118PCLnTabMagic / Go120PCLnTabMagic. */
const MAGIC_116 = 0xfffffffa;
const MAGIC_118 = 0xfffffff0;
const MAGIC_120 = 0xfffffff1;
/** The Go 1.2–1.15 layout (abi.Go12PCLnTabMagic): no Go release that old has the register ABI. */
const MAGIC_OLD = new Set([0xfffffffb]);

/**
 * Fields of runtime.moduledata that we read, as pointer-sized word indexes. The layout from the
 * first field through `etext` is identical in Go 1.18, 1.19, 1.21 and 1.26 (src/runtime/symtab.go
 * `type moduledata struct`, checked in each toolchain's GOROOT): pcHeader *pcHeader, then six
 * slices of three words each (funcnametab, cutab, filetab, pctab, pclntable, ftab), findfunctab,
 * minpc, maxpc, text, etext. Go 1.26 moved the variable itself into the .go.module section.
 */
const MD = { pcHeader: 0, funcnametab: 1, pclntable: 13, ftab: 16, minpc: 20, maxpc: 21, text: 22, etext: 23 } as const;
const MD_WORDS = 24;

const UNSUPPORTED_HINT = "rebuild the program with Go 1.17 or newer (1.18 on arm64): beetrace relies on the register-based calling convention";

interface Header {
  version: "1.16" | "1.18" | "1.20";
  /**
   * Size of each functab field and of _func.entry: 4 since Go 1.18 (entryoff/funcoff are uint32
   * offsets), pointer-sized in the Go 1.16 layout (`type functab struct { entry, funcoff uintptr }`
   * and `_func.entry uintptr`, src/runtime/symtab.go and runtime2.go of Go 1.16/1.17).
   */
  fieldSize: number;
  minLC: number;
  ptrSize: number;
  nfunc: number;
  /** 0 in the Go 1.16 layout (entries are absolute addresses). */
  textStart: number;
  funcnameOffset: number;
  cuOffset: number;
  pclnOffset: number;
}

interface Located {
  r: ByteReader;
  addr: number;
  hdr: Header;
  source: PclnTable["source"];
  /** Pointer-sized word at a table offset, with a relocation fallback (Go 1.16 layout in a PIE). */
  word: WordAt;
}

/** Pointer-sized word at offset `off` of the table. */
type WordAt = (off: number) => number;

/** Reads words of the table at `addr`; a word stored as 0 is looked up in the R_*_RELATIVE relocations (PIE). */
function wordReader(elf: ElfFile, r: ByteReader, addr: number, ptrSize: () => number): WordAt {
  return (off) => {
    const v = r.uptr(off, ptrSize());
    return v !== 0 ? v : (elf.relativeRelocations().get(addr + off) ?? 0);
  };
}

/** Read the pclntab of a Go ELF executable. Throws not_go_binary, unsupported_go_version or corrupt_binary. */
export function readPclntab(elf: ElfFile): PclnTable {
  const t = locate(elf);
  const { textStart, how } = findTextStart(elf, t);
  return new Table(t, textStart, how);
}

function locate(elf: ElfFile): Located {
  // 1. The section (".data.rel.ro.gopclntab" in some externally linked PIEs, as cmd/internal/objfile knows).
  for (const name of [".gopclntab", ".data.rel.ro.gopclntab"]) {
    const sec = elf.section(name);
    if (!sec) continue;
    const r = new ByteReader(elf.sectionBytes(sec), `${elf.what}: ${name}`);
    return located(elf, r, sec.addr, true, "section");
  }
  // 2. The linker's symbols around the table.
  const syms = elf.symbols();
  const start = syms.find((s) => s.name === "runtime.pclntab");
  if (start) {
    const end = syms.find((s) => s.name === "runtime.epclntab");
    const len = end && end.value > start.value ? end.value - start.value : segmentRest(elf, start.value);
    const r = new ByteReader(elf.readVirtual(start.value, len), `${elf.what}: runtime.pclntab`);
    return located(elf, r, start.value, true, "symbol");
  }
  // 3. Scan non-executable segments (read-only first, where Go's linker puts it; then RELRO data).
  const segs = elf.segments.filter((s) => s.type === PT_LOAD && (s.flags & PF_X) === 0 && s.filesz > 0);
  segs.sort((a, b) => (a.flags & PF_W) - (b.flags & PF_W));
  let old: number | undefined;
  for (const seg of segs) {
    const bytes = elf.readVirtual(seg.vaddr, seg.filesz);
    for (let i = 0; i + 8 <= bytes.byteLength; i++) {
      // Signature: magic fffffff0/f1 (little-endian), then pad1 = pad2 = 0.
      if (bytes[i + 3] !== 0xff || bytes[i + 2] !== 0xff || bytes[i + 1] !== 0xff || bytes[i + 4] !== 0 || bytes[i + 5] !== 0) continue;
      const b0 = bytes[i] ?? 0;
      // Go 1.2–1.15 tables share the signature; remember one whose quantum and pointer size look right.
      const lc = bytes[i + 6];
      const ps = bytes[i + 7];
      if (b0 === 0xfb && (lc === 1 || lc === 2 || lc === 4) && (ps === 4 || ps === 8)) old ??= (0xffffff00 | b0) >>> 0;
      if (b0 !== 0xf0 && b0 !== 0xf1 && b0 !== 0xfa) continue;
      const r = new ByteReader(bytes.subarray(i), `${elf.what}: function table at ${hex(seg.vaddr + i)}`);
      try {
        return located(elf, r, seg.vaddr + i, false, "scan");
      } catch {
        continue; // a coincidental byte pattern: keep looking
      }
    }
  }
  if (old !== undefined) unsupported(elf.what, old);
  throw new TracerError("not_go_binary", `${elf.what}: no Go function table (.gopclntab) found`, {
    hint: "pass a binary built by the Go toolchain (go build); beetrace traces Go programs only",
  });
}

function located(elf: ElfFile, r: ByteReader, addr: number, trusted: boolean, source: PclnTable["source"]): Located {
  // The pointer size is byte 7 of the header; parseHeader validates it before any word is read.
  const word = wordReader(elf, r, addr, () => r.u8(7));
  return { r, addr, hdr: parseHeader(r, trusted, word), source, word };
}

function unsupported(what: string, magic: number): never {
  throw new TracerError("unsupported_go_version", `${what}: Go function table has the Go 1.2–1.15 layout (magic ${hex(magic)})`, { hint: UNSUPPORTED_HINT });
}

/** Bytes from vaddr to the end of its file-backed PT_LOAD. */
function segmentRest(elf: ElfFile, vaddr: number): number {
  const seg = elf.segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  if (!seg) corrupt(elf.what, `runtime.pclntab at ${hex(vaddr)} is not backed by the file`);
  return seg.vaddr + seg.filesz - vaddr;
}

/**
 * Parse and validate the pcHeader (src/runtime/symtab.go `type pcHeader`): magic u32, pad1 u8,
 * pad2 u8, minLC u8, ptrSize u8, then uintptr nfunc, nfiles, textStart, funcnameOffset, cuOffset,
 * filetabOffset, pctabOffset, pclnOffset. The Go 1.16 layout (Go 1.16–1.17) has no textStart word
 * (the others move up by one) and pointer-sized functab fields holding absolute addresses
 * (debug/gosym pclntab.go, case ver116). `trusted` = found by name, so a bad magic is reported as
 * such rather than skipped.
 */
function parseHeader(r: ByteReader, trusted: boolean, wordAt: WordAt): Header {
  const what = r.what;
  const magic = r.u32(0);
  if (MAGIC_OLD.has(magic)) unsupported(what, magic);
  if (magic !== MAGIC_116 && magic !== MAGIC_118 && magic !== MAGIC_120) {
    if (trusted) {
      throw new TracerError("corrupt_binary", `${what} is corrupt: unknown magic ${hex(magic)}`, {
        hint: "beetrace knows the Go 1.16 (0xfffffffa), Go 1.18 (0xfffffff0) and Go 1.20+ (0xfffffff1) layouts; the file may be damaged or from an unreleased Go",
      });
    }
    corrupt(what, `unknown magic ${hex(magic)}`);
  }
  const pad1 = r.u8(4);
  const pad2 = r.u8(5);
  const minLC = r.u8(6);
  const ptrSize = r.u8(7);
  if (pad1 !== 0 || pad2 !== 0) corrupt(what, `header padding is ${pad1},${pad2}, expected 0,0`);
  // minLC is the instruction size quantum: 1 on x86, 4 on arm64/ppc64/mips, 2 on s390x.
  if (minLC !== 1 && minLC !== 2 && minLC !== 4) corrupt(what, `instruction quantum ${minLC} is not 1, 2 or 4`);
  if (ptrSize !== 4 && ptrSize !== 8) corrupt(what, `pointer size ${ptrSize} is not 4 or 8`);
  const word = (i: number) => r.uptr(8 + i * ptrSize, ptrSize);
  const v116 = magic === MAGIC_116;
  // Go 1.16 has no textStart word: funcnameOffset is word 2 there, word 3 later.
  const skip = v116 ? 0 : 1;
  const nfunc = word(0);
  const textStart = v116 ? 0 : word(2);
  const funcnameOffset = word(2 + skip);
  const cuOffset = word(3 + skip);
  const filetabOffset = word(4 + skip);
  const pctabOffset = word(5 + skip);
  const pclnOffset = word(6 + skip);
  const headerSize = 8 + (7 + skip) * ptrSize;
  const fieldSize = v116 ? ptrSize : 4;
  // The linker lays the tables out in this order (cmd/link/internal/ld/pcln.go writePcHeader and friends).
  const order = [headerSize, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset, r.length];
  for (let i = 1; i < order.length; i++) {
    if ((order[i] ?? 0) < (order[i - 1] ?? 0)) {
      corrupt(what, `table offsets out of order or past the end (header ${headerSize}, funcname ${funcnameOffset}, cu ${cuOffset}, filetab ${filetabOffset}, pctab ${pctabOffset}, pcln ${pclnOffset}, size ${r.length})`);
    }
  }
  // functab: nfunc (entry, funcoff) pairs plus one final entry (end of text) — debug/gosym functabsize.
  const functabBytes = (nfunc * 2 + 1) * fieldSize;
  if (nfunc === 0 || pclnOffset + functabBytes > r.length) corrupt(what, `function count ${nfunc} does not fit in the table`);
  const hdr: Header = { version: v116 ? "1.16" : magic === MAGIC_118 ? "1.18" : "1.20", fieldSize, minLC, ptrSize, nfunc, textStart, funcnameOffset, cuOffset, pclnOffset };
  if (fieldSize === 4) return checkFunctab4(r, hdr);
  let prev = -1;
  for (let i = 0; i <= nfunc; i++) {
    const e = ftabEntry(r, hdr, wordAt, i);
    if (e < prev) corrupt(what, `function ${i} entry ${hex(e)} is below the previous one ${hex(prev)}`);
    prev = e;
    if (i === nfunc) break;
    // _func starts with its entry (src/runtime/runtime2.go `type _func`): it must match the functab entry.
    const funcoff = ftabFuncoff(r, hdr, wordAt, i);
    if (pclnOffset + funcoff + fieldSize + 4 > r.length) corrupt(what, `function ${i} record offset ${hex(funcoff)} is past the end of the table`);
    const recEntry = wordAt(pclnOffset + funcoff); // 8-byte fields here (4: checkFunctab4)
    if (recEntry !== e) corrupt(what, `function ${i} record at ${hex(pclnOffset + funcoff)} disagrees with its table entry`);
  }
  return hdr;
}

/**
 * parseHeader's check of every functab entry and _func record, for the 4-byte layout (Go ≥ 1.18):
 * the same checks and messages, reading through the DataView without a bounds check per read
 * (tens of thousands of functions: ~5-15 ms of start-up through ByteReader, bench/RESULTS.md).
 * In bounds by construction: the functab's (2·nfunc + 1)·4 bytes from pclnOffset were checked
 * by the caller, and each record's 8 bytes are checked before they are read.
 */
function checkFunctab4(r: ByteReader, hdr: Header): Header {
  const { what, view: v, littleEndian: le } = r;
  const { nfunc, pclnOffset } = hdr;
  const size = r.length;
  let prev = -1;
  for (let i = 0; i <= nfunc; i++) {
    const e = v.getUint32(pclnOffset + i * 8, le);
    if (e < prev) corrupt(what, `function ${i} entry ${hex(e)} is below the previous one ${hex(prev)}`);
    prev = e;
    if (i === nfunc) break;
    const funcoff = v.getUint32(pclnOffset + i * 8 + 4, le);
    if (pclnOffset + funcoff + 8 > size) corrupt(what, `function ${i} record offset ${hex(funcoff)} is past the end of the table`);
    if (v.getUint32(pclnOffset + funcoff, le) !== e) corrupt(what, `function ${i} record at ${hex(pclnOffset + funcoff)} disagrees with its table entry`);
  }
  return hdr;
}

/** functab entry i: an offset from textStart (Go ≥ 1.18, u32) or an absolute address (Go 1.16 layout, uintptr). */
function ftabEntry(r: ByteReader, hdr: Header, wordAt: WordAt, i: number): number {
  return hdr.fieldSize === 4 ? r.u32(hdr.pclnOffset + i * 8) : wordAt(hdr.pclnOffset + i * 2 * hdr.fieldSize);
}

/** functab funcoff i: offset of the _func record from the start of pclntable. */
function ftabFuncoff(r: ByteReader, hdr: Header, wordAt: WordAt, i: number): number {
  return hdr.fieldSize === 4 ? r.u32(hdr.pclnOffset + i * 8 + 4) : r.uptr(hdr.pclnOffset + i * 2 * hdr.fieldSize + hdr.fieldSize, hdr.fieldSize);
}

/** First and end entries of the function table (offsets from textStart; absolute in the Go 1.16 layout). */
function entryRange(t: Located): [number, number] {
  return [ftabEntry(t.r, t.hdr, t.word, 0), ftabEntry(t.r, t.hdr, t.word, t.hdr.nfunc)];
}

/**
 * Establish runtime.text. Go ≤ 1.25 stores it in the pcHeader; Go 1.26 stores 0 there
 * ("no longer stored as it requires a relocation", src/runtime/symtab.go), so we read
 * runtime.firstmoduledata. Every candidate is validated; nothing is guessed.
 */
function findTextStart(elf: ElfFile, t: Located): { textStart: number; how: PclnTable["textStartSource"] } {
  const tried: string[] = [];
  const p = t.hdr.ptrSize;
  const [first, last] = entryRange(t);
  if (t.hdr.version === "1.16") {
    // Absolute entries need no runtime.text; the functions must still lie in executable code.
    if (elf.isExecutableAddress(first) && elf.isExecutableAddress(last - 1)) return { textStart: first, how: "absolute-entries" };
    throw new TracerError("corrupt_binary", `${elf.what}: the Go function table at ${hex(t.addr)} lists functions ${hex(first)}…${hex(last)} outside executable code`, {
      hint: "the file may be damaged",
    });
  }
  const plausible = (text: number): string | undefined => {
    if (!elf.isExecutableAddress(text)) return `${hex(text)} is not in an executable segment`;
    if (!elf.isExecutableAddress(text + first)) return `first function ${hex(text + first)} is not executable`;
    if (!elf.isExecutableAddress(text + last - 1)) return `end of text ${hex(text + last)} is not executable`;
    return undefined;
  };

  // The header word, relocation-aware (a PIE may leave it 0 in the file and patch it at load).
  const headerText = elf.readPointer(t.addr + 8 + 2 * p, p);
  if (headerText !== 0) {
    const bad = plausible(headerText);
    if (!bad) return { textStart: headerText, how: "header" };
    tried.push(`pcHeader.textStart: ${bad}`);
  }

  const checkModuledata = (md: number): number | string => {
    let w: number[];
    try {
      w = Array.from({ length: MD_WORDS }, (_, i) => elf.readPointer(md + i * p, p));
    } catch (e) {
      return e instanceof TracerError ? e.message : String(e);
    }
    const f = (k: keyof typeof MD) => w[MD[k]] ?? -1;
    if (f("pcHeader") !== t.addr) return `pcHeader ${hex(f("pcHeader"))} is not the table at ${hex(t.addr)}`;
    if (f("funcnametab") !== t.addr + t.hdr.funcnameOffset) return "funcnametab does not point into the table";
    if (f("pclntable") !== t.addr + t.hdr.pclnOffset || f("ftab") !== t.addr + t.hdr.pclnOffset) return "pclntable/ftab do not point into the table";
    const text = f("text");
    const etext = f("etext");
    // The runtime sets minpc = text + ftab[0].entryoff and maxpc = text + ftab[nfunc].entryoff (runtime/symtab.go moduledataverify1).
    if (f("minpc") !== text + first || f("maxpc") !== text + last) return `minpc/maxpc ${hex(f("minpc"))}/${hex(f("maxpc"))} disagree with text ${hex(text)}`;
    if (!(text <= f("minpc") && f("minpc") < f("maxpc") && f("maxpc") <= etext)) return "text, minpc, maxpc, etext are out of order";
    const bad = plausible(text);
    return bad ?? text;
  };

  // 1. Symbols, when not stripped.
  const syms = elf.symbols();
  const mdSym = syms.find((s) => s.name === "runtime.firstmoduledata");
  if (mdSym) {
    const v = checkModuledata(mdSym.value);
    if (typeof v === "number") return { textStart: v, how: "moduledata-symbol" };
    tried.push(`runtime.firstmoduledata: ${v}`);
  }
  const textSym = syms.find((s) => s.name === "runtime.text");
  if (textSym) {
    const bad = plausible(textSym.value);
    if (!bad) return { textStart: textSym.value, how: "symbol" };
    tried.push(`runtime.text: ${bad}`);
  }
  // 2. Go 1.26 puts moduledata in its own section.
  const modSec = elf.section(".go.module");
  if (modSec) {
    const v = checkModuledata(modSec.addr);
    if (typeof v === "number") return { textStart: v, how: "moduledata-section" };
    tried.push(`.go.module: ${v}`);
  }
  // 3. Scan data segments for a word equal to the table's address and validate each hit as a moduledata.
  const rel = elf.relativeRelocations();
  const candidates: number[] = [];
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || (seg.flags & PF_X) !== 0 || (seg.flags & PF_W) === 0 || seg.filesz === 0) continue;
    const r = new ByteReader(elf.readVirtual(seg.vaddr, seg.filesz), `${elf.what}: data segment`);
    for (let off = (p - (seg.vaddr % p)) % p; off + p <= r.length; off += p) {
      // Compare as two u32 halves: data words may hold anything, including values above 2^53.
      const word = p === 8 ? r.u32(off) + r.u32(off + 4) * 2 ** 32 : r.u32(off);
      if (word === t.addr) candidates.push(seg.vaddr + off);
    }
  }
  for (const [at, addend] of rel) if (addend === t.addr) candidates.push(at);
  for (const md of candidates) {
    const v = checkModuledata(md);
    if (typeof v === "number") return { textStart: v, how: "moduledata-scan" };
  }
  tried.push(`scan: ${candidates.length} word(s) pointing at the table, none a valid moduledata`);

  throw new TracerError("corrupt_binary", `${elf.what}: cannot establish the start of Go text (runtime.text) for the function table at ${hex(t.addr)}`, {
    hint: "function addresses cannot be computed without it; the file may be damaged, or built by a Go release beetrace does not know yet",
    detail: tried,
  });
}

class Table implements PclnTable {
  readonly version: "1.16" | "1.18" | "1.20";
  readonly ptrSize: number;
  readonly source: PclnTable["source"];
  readonly addr: number;
  private list: GoFunc[] | undefined;
  private byName: Map<string, GoFunc> | undefined;
  /** Results of find() made without the full index (a handful of names per process). */
  private found = new Map<string, GoFunc | undefined>();
  /** Package prefixes ("google.golang.org/grpc.") and whether their bytes occur in the name table (findByBytes). */
  private prefixPresent = new Map<string, boolean>();
  /** Every function's nameOff, read once for findByBytes: the first `valid`, then the error reading the next. */
  private nameOffs: { offs: Int32Array; valid: number; error?: unknown } | undefined;

  /** What entries are offsets from: textStart, or 0 for the absolute entries of the Go 1.16 layout. */
  private readonly base: number;

  constructor(
    private readonly t: Located,
    readonly textStart: number,
    readonly textStartSource: PclnTable["textStartSource"],
  ) {
    this.version = t.hdr.version;
    this.ptrSize = t.hdr.ptrSize;
    this.source = t.source;
    this.addr = t.addr;
    this.base = t.hdr.version === "1.16" ? 0 : textStart;
  }

  private entry(i: number): number {
    return this.base + ftabEntry(this.t.r, this.t.hdr, this.t.word, i);
  }

  funcs(): GoFunc[] {
    if (this.list) return this.list;
    const { hdr } = this.t;
    const names = this.names();
    const out: GoFunc[] = [];
    let next = this.entry(0);
    for (let i = 0; i < hdr.nfunc; i++) {
      const entry = next;
      next = this.entry(i + 1);
      out.push({ name: names.cstring(this.nameOff(i, names.length)), entry, end: next });
    }
    this.list = out;
    return out;
  }

  find(name: string): GoFunc | undefined {
    if (this.list || !byteComparable(name)) {
      if (!this.byName) {
        this.byName = new Map();
        for (const f of this.funcs()) if (!this.byName.has(f.name)) this.byName.set(f.name, f);
      }
      return this.byName.get(name);
    }
    if (this.found.has(name)) return this.found.get(name);
    const f = this.findByBytes(name);
    this.found.set(name, f);
    return f;
  }

  /** The function-name table (funcnametab): NUL-terminated names, addressed by _func.nameOff. */
  private names(): ByteReader {
    const { r, hdr } = this.t;
    return r.sub(hdr.funcnameOffset, hdr.cuOffset - hdr.funcnameOffset, `${r.what} function names`);
  }

  /** _func.nameOff of function i: int32 right after _func's entry (4 bytes since Go 1.18, uintptr before; src/runtime/runtime2.go `type _func`), range-checked. */
  private nameOff(i: number, namesLength: number): number {
    const { r, hdr, word } = this.t;
    const funcoff = ftabFuncoff(r, hdr, word, i);
    const nameOff = r.i32(hdr.pclnOffset + funcoff + hdr.fieldSize);
    if (nameOff < 0 || nameOff >= namesLength) corrupt(r.what, `function ${i} name offset ${nameOff} is outside the ${namesLength}-byte name table`);
    return nameOff;
  }

  /**
   * find() without decoding every name. Same answer as the Map over funcs(): a name matches
   * where cstring() would decode it to `name`. (1) Every offset in funcnametab from which the
   * bytes decode to `name` (a native substring search for its UTF-8 bytes + NUL); (2) the first
   * function, in table order, whose nameOff is one of them. The walk range-checks each nameOff
   * it passes, as funcs() does, so a damaged table still reports corrupt_binary.
   */
  private findByBytes(name: string): GoFunc | undefined {
    const { hdr } = this.t;
    const names = this.names();
    // A name whose package prefix occurs nowhere in the table cannot occur either (it contains
    // the prefix): one search per package instead of one per name of a library the binary does
    // not link (most of the probes' names, on most services).
    const prefix = packagePrefix(name);
    if (prefix !== undefined) {
      let present = this.prefixPresent.get(prefix);
      if (present === undefined) {
        present = Buffer.from(names.bytes.buffer, names.bytes.byteOffset, names.bytes.byteLength).indexOf(new TextEncoder().encode(prefix)) >= 0;
        this.prefixPresent.set(prefix, present);
      }
      if (!present) return undefined;
    }
    const starts = stringOffsets(names.bytes, new TextEncoder().encode(name));
    if (starts.size === 0) return undefined;
    const n = this.allNameOffs(names.length);
    // The first function in table order whose nameOff is a start: the native indexOf over the
    // offsets read without error (a JS walk with a Set lookup per function cost ~0.3 ms a name).
    const readable = n.offs.subarray(0, n.valid);
    let first = -1;
    for (const s of starts) {
      const i = readable.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) first = i;
    }
    if (first >= 0) return { name, entry: this.entry(first), end: this.entry(first + 1) };
    // Not among them: the walk would have reached the damaged entry, if any, and reported it.
    if (n.valid < hdr.nfunc) throw n.error;
    return undefined;
  }

  /**
   * nameOff of every function, in table order, read once (findByBytes walked them all per name).
   * Reading stops at the first out-of-range one, kept as the error a walk that reaches it throws:
   * a name found before the damage is still found, as before.
   */
  private allNameOffs(namesLength: number): { offs: Int32Array; valid: number; error?: unknown } {
    if (this.nameOffs) return this.nameOffs;
    const { r, hdr } = this.t;
    const nfunc = hdr.nfunc;
    const offs = new Int32Array(nfunc);
    let valid = nfunc;
    let error: unknown;
    let i = 0;
    const base = r.bytes.byteOffset + hdr.pclnOffset;
    if (hdr.fieldSize === 4 && r.littleEndian && HOST_LITTLE_ENDIAN && base % 4 === 0) {
      // Go >= 1.18 (4-byte ftab fields; _func is 4-byte aligned): nameOff(i) read through one
      // Int32Array instead of a reader call per field. A cold start runs this loop in JSC's
      // interpreter, where each DataView call cost ~150 ns: 4 ms on gopls's 26k functions. Same
      // bounds; the first entry that fails one (or is misaligned) is left to nameOff below,
      // which reads it the checked way and reports it as before.
      const words = new Int32Array(r.bytes.buffer, base, Math.floor((r.bytes.length - hdr.pclnOffset) / 4));
      for (; i < nfunc; i++) {
        const funcoff = words[2 * i + 1];
        if (funcoff === undefined || funcoff < 0 || funcoff % 4 !== 0) break;
        const nameOff = words[funcoff / 4 + 1]; // _func.nameOff follows the 4-byte entryOff
        if (nameOff === undefined || nameOff < 0 || nameOff >= namesLength) break;
        offs[i] = nameOff;
      }
    }
    for (; i < nfunc; i++) {
      try {
        offs[i] = this.nameOff(i, namesLength);
      } catch (e) {
        valid = i;
        error = e;
        break;
      }
    }
    this.nameOffs = { offs, valid, ...(error !== undefined ? { error } : {}) };
    return this.nameOffs;
  }
}

/**
 * A prefix of a Go function name that names its package: "google.golang.org/grpc." of
 * "google.golang.org/grpc.(*Server).handleStream" (up to the first '.' after the last '/' before
 * any '(' or '['). Any substring of the name would do for findByBytes' test; this one is shared
 * by every name of a package. Undefined when there is no such '.'.
 */
function packagePrefix(name: string): string | undefined {
  const paren = name.search(/[([]/);
  const head = paren < 0 ? name : name.slice(0, paren);
  const dot = head.indexOf(".", head.lastIndexOf("/") + 1);
  return dot > 0 ? name.slice(0, dot + 1) : undefined;
}

/**
 * True when comparing UTF-8 bytes gives the same answer as comparing decoded strings: names are
 * decoded with a non-fatal decoder, so invalid bytes become U+FFFD; a wanted name containing
 * U+FFFD, a NUL (never inside a C string) or any surrogate (lone ones encode as U+FFFD) is
 * looked up in the full index instead.
 */
function byteComparable(name: string): boolean {
  return !/[\0\uFFFD\uD800-\uDFFF]/.test(name);
}

/** UTF-8 byte order mark: TextDecoder (ignoreBOM false, the default) drops one at the start of a string. */
const BOM = [0xef, 0xbb, 0xbf] as const;
const hasBomAt = (b: Uint8Array, p: number) => b[p] === BOM[0] && b[p + 1] === BOM[1] && b[p + 2] === BOM[2];

/**
 * Every offset in `table` (NUL-terminated strings back to back) from which cstring() decodes
 * exactly `want` (given as UTF-8 bytes without NUL): where want+NUL occurs, unless want itself
 * begins with a BOM (the decoder would drop it), and where BOM+want+NUL occurs. Offsets need not
 * be at a string boundary: a name offset may point into another name (a shared tail), and then
 * the decoded name is that tail.
 */
function stringOffsets(table: Uint8Array, want: Uint8Array): Set<number> {
  const hay = Buffer.from(table.buffer, table.byteOffset, table.byteLength);
  const needle = new Uint8Array(want.length + 1);
  needle.set(want);
  const plainMatches = !hasBomAt(want, 0);
  const out = new Set<number>();
  for (let p = hay.indexOf(needle); p >= 0; p = hay.indexOf(needle, p + 1)) {
    if (plainMatches) out.add(p);
    if (p >= 3 && hasBomAt(table, p - 3)) out.add(p - 3);
  }
  return out;
}
