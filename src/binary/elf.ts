/** @module binary/elf — ELF64 little-endian reader: header, sections, segments, symbols, address mapping. */
import { TracerError } from "../errors.ts";
import { ByteReader, corrupt, hex } from "./bytes.ts";

// Constants from the System V gABI as spelled in glibc's <elf.h>.
export const ELFCLASS64 = 2; // e_ident[EI_CLASS]
export const ELFDATA2LSB = 1; // e_ident[EI_DATA]
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_GNU_RELRO = 0x6474e552;
export const PF_X = 0x1;
export const PF_W = 0x2;
export const PF_R = 0x4;
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const SHF_COMPRESSED = 0x800;
export const SHN_UNDEF = 0;
export const SHN_XINDEX = 0xffff;
/** e_phnum value meaning "the real count is in section 0's sh_info" (elf.h PN_XNUM). */
export const PN_XNUM = 0xffff;
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
/** Relative relocation types: elf.h R_X86_64_RELATIVE and R_AARCH64_RELATIVE. */
export const R_X86_64_RELATIVE = 8;
export const R_AARCH64_RELATIVE = 1027;

// Record sizes of the 64-bit structures (elf.h: Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr, Elf64_Sym, Elf64_Rela).
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const RELA_SIZE = 24;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  type: number;
  bind: number;
  shndx: number;
}

const DAMAGED_HINT = "the file may be truncated or damaged; compare it with the original build";

export class ElfFile {
  readonly machine: "x86_64" | "aarch64";
  readonly elfType: "exec" | "dyn" | "other";
  readonly isPIE: boolean;
  readonly sections: ElfSection[];
  readonly segments: ElfSegment[];
  readonly hasSymtab: boolean;
  private readonly r: ByteReader;
  private symtabCache: ElfSymbol[] | undefined;
  private dynsymCache: ElfSymbol[] | undefined;
  private relativeCache: Map<number, number> | undefined;

  private constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {
    this.r = new ByteReader(bytes, what);
    const r = this.r;
    if (bytes.byteLength < 4 || r.u32(0) !== 0x464c457f) {
      throw new TracerError("unrecognized_format", `${what}: not an ELF file`, {
        hint: "beetrace reads Linux executables (ELF); pass the Go program's binary or --pid of a running Go process",
      });
    }
    if (bytes.byteLength < EHDR_SIZE) corrupt(what, `ELF header needs ${EHDR_SIZE} bytes, file has ${bytes.byteLength}`);
    const cls = r.u8(4);
    const data = r.u8(5);
    if (cls !== ELFCLASS64 || data !== ELFDATA2LSB) {
      const known = (cls === 1 || cls === 2) && (data === 1 || data === 2);
      const desc = `${cls === 1 ? "32-bit" : cls === 2 ? "64-bit" : `class ${cls}`} ${data === 1 ? "little-endian" : data === 2 ? "big-endian" : `data encoding ${data}`}`;
      throw new TracerError(known ? "unsupported_arch" : "unrecognized_format", `${what}: ${desc} ELF is not supported`, {
        hint: "beetrace supports 64-bit little-endian x86_64 and aarch64 executables",
      });
    }
    const type = r.u16(16);
    const machine = r.u16(18);
    if (machine === EM_X86_64) this.machine = "x86_64";
    else if (machine === EM_AARCH64) this.machine = "aarch64";
    else {
      throw new TracerError("unsupported_arch", `${what}: ELF machine ${machine} is not supported`, {
        hint: "beetrace supports x86_64 (EM_X86_64=62) and aarch64 (EM_AARCH64=183) executables",
      });
    }
    this.elfType = type === ET_EXEC ? "exec" : type === ET_DYN ? "dyn" : "other";
    this.isPIE = type === ET_DYN;

    const phoff = r.u64(32);
    const shoff = r.u64(40);
    const ehsize = r.u16(52);
    const phentsize = r.u16(54);
    let phnum = r.u16(56);
    const shentsize = r.u16(58);
    let shnum = r.u16(60);
    let shstrndx = r.u16(62);
    if (ehsize < EHDR_SIZE) corrupt(what, `e_ehsize ${ehsize} is smaller than the ${EHDR_SIZE}-byte ELF64 header`);

    // Section 0 carries the real counts when they overflow the 16-bit header fields (gABI "Extended Section Numbering").
    let sec0: { size: number; link: number; info: number } | undefined;
    if (shoff !== 0) {
      if (shentsize < SHDR_SIZE) corrupt(what, `e_shentsize ${shentsize} is smaller than ${SHDR_SIZE}`);
      r.check(shoff, SHDR_SIZE);
      sec0 = { size: r.u64(shoff + 32), link: r.u32(shoff + 40), info: r.u32(shoff + 44) };
      if (shnum === 0) shnum = sec0.size;
      if (shstrndx === SHN_XINDEX) shstrndx = sec0.link;
    } else {
      shnum = 0;
    }
    if (phnum === PN_XNUM && sec0) phnum = sec0.info;

    this.segments = [];
    if (phnum > 0) {
      if (phentsize < PHDR_SIZE) corrupt(what, `e_phentsize ${phentsize} is smaller than ${PHDR_SIZE}`);
      tableFits(r, what, "program header table", phoff, phnum, phentsize);
      for (let i = 0; i < phnum; i++) {
        const o = phoff + i * phentsize;
        this.segments.push({
          type: r.u32(o),
          flags: r.u32(o + 4),
          offset: r.u64(o + 8),
          vaddr: r.u64(o + 16),
          paddr: r.u64(o + 24),
          filesz: r.u64(o + 32),
          memsz: r.u64(o + 40),
          align: r.u64(o + 48),
        });
      }
      // A loadable segment must be backed by the file: uprobe offsets and virtual reads rely on it.
      for (const [i, s] of this.segments.entries()) {
        if (s.type !== PT_LOAD) continue;
        checkedRange(r, what, `PT_LOAD segment ${i} at ${safeHex(s.vaddr)}`, s.offset, s.filesz);
        if (s.filesz > s.memsz) corrupt(what, `PT_LOAD segment ${i} at ${safeHex(s.vaddr)} has file size ${s.filesz} above its memory size ${s.memsz}`);
      }
    }

    const raw: Omit<ElfSection, "name">[] = [];
    const nameOffs: number[] = [];
    if (shnum > 0) {
      tableFits(r, what, "section header table", shoff, shnum, shentsize);
      for (let i = 0; i < shnum; i++) {
        const o = shoff + i * shentsize;
        nameOffs.push(r.u32(o));
        raw.push({
          index: i,
          type: r.u32(o + 4),
          flags: r.u64(o + 8),
          addr: r.u64(o + 16),
          offset: r.u64(o + 24),
          size: r.u64(o + 32),
          link: r.u32(o + 40),
          info: r.u32(o + 44),
          addralign: r.u64(o + 48),
          entsize: r.u64(o + 56),
        });
      }
    }
    let names: ByteReader | undefined;
    if (raw.length > 0 && shstrndx !== SHN_UNDEF) {
      const strsec = raw[shstrndx];
      if (!strsec) corrupt(what, `section name table index ${shstrndx} is past the ${raw.length} sections`);
      if (strsec.type === SHT_NOBITS) corrupt(what, `section name table (section ${shstrndx}) has no file contents`);
      names = r.sub(checkedRange(r, what, `section name table (section ${shstrndx})`, strsec.offset, strsec.size), strsec.size, `${what}: section name table`);
    }
    this.sections = raw.map((s, i) => {
      const off = nameOffs[i] ?? 0;
      let name = "";
      if (names) {
        if (off === 0 && names.length === 0) name = "";
        else if (off >= names.length) corrupt(what, `section ${i} name offset 0x${off.toString(16)} is outside the ${names.length}-byte name table`);
        else name = names.cstring(off);
      }
      return { ...s, name };
    });
    this.hasSymtab = this.sections.some((s) => s.type === SHT_SYMTAB);
  }

  /** Parse `bytes` as an ELF64 little-endian file; `what` names it in error messages. */
  static parse(bytes: Uint8Array, what = "ELF file"): ElfFile {
    return new ElfFile(bytes, what);
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Raw file bytes of a section (no copy). NOBITS sections (.bss) have none. */
  sectionBytes(sec: ElfSection): Uint8Array {
    if (sec.type === SHT_NOBITS || sec.size === 0) return new Uint8Array(0);
    checkedRange(this.r, this.what, `section ${sec.name || sec.index}`, sec.offset, sec.size);
    return this.r.slice(sec.offset, sec.size);
  }

  /** .symtab entries (parsed once); [] when the file is stripped. */
  symbols(): ElfSymbol[] {
    this.symtabCache ??= this.readSymbols(SHT_SYMTAB);
    return this.symtabCache;
  }

  /** .dynsym entries (parsed once); [] when absent. */
  dynamicSymbols(): ElfSymbol[] {
    this.dynsymCache ??= this.readSymbols(SHT_DYNSYM);
    return this.dynsymCache;
  }

  /** File offset of `vaddr` via the PT_LOAD that file-backs it (what a uprobe needs), or undefined. */
  vaddrToFileOffset(vaddr: number): number | undefined {
    const seg = this.loadFor(vaddr, 1);
    return seg ? vaddr - seg.vaddr + seg.offset : undefined;
  }

  /** `len` bytes at virtual address `vaddr`, all inside one file-backed PT_LOAD; else corrupt_binary. */
  readVirtual(vaddr: number, len: number): Uint8Array {
    const seg = this.loadFor(vaddr, len);
    if (!seg) {
      corrupt(this.what, `${len} bytes at address ${safeHex(vaddr)} are not backed by the file (no PT_LOAD segment holds them)`);
    }
    const off = vaddr - seg.vaddr + seg.offset;
    checkedRange(this.r, this.what, `segment at ${hex(seg.vaddr)}`, off, len);
    return this.r.slice(off, len);
  }

  /** True when `vaddr` lies in an executable PT_LOAD (PF_X). */
  isExecutableAddress(vaddr: number): boolean {
    return this.segments.some((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0 && vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz);
  }

  /**
   * Addends of R_*_RELATIVE relocations in SHT_RELA sections, keyed by the address they patch.
   * In PIE and externally linked binaries a pointer-sized word may be 0 in the file and only
   * filled in by the dynamic loader from this addend (e.g. aarch64 ld without --apply-dynamic-relocs).
   */
  relativeRelocations(): Map<number, number> {
    if (this.relativeCache) return this.relativeCache;
    const out = new Map<number, number>();
    const rtype = this.machine === "x86_64" ? R_X86_64_RELATIVE : R_AARCH64_RELATIVE;
    for (const sec of this.sections) {
      if (sec.type !== SHT_RELA || (sec.flags & SHF_ALLOC) === 0) continue;
      const rr = new ByteReader(this.sectionBytes(sec), `${this.what}: ${sec.name || "relocation section"}`);
      const n = Math.floor(rr.length / RELA_SIZE);
      for (let i = 0; i < n; i++) {
        const o = i * RELA_SIZE;
        // r_info is 64 bits: symbol index in the high half, type in the low half (elf.h ELF64_R_TYPE).
        if (rr.u32(o + 8) !== rtype) continue;
        const addend = rr.u64big(o + 16);
        if (addend > BigInt(Number.MAX_SAFE_INTEGER)) continue; // negative or huge addends are not pointers we read
        out.set(rr.u64(o), Number(addend));
      }
    }
    this.relativeCache = out;
    return out;
  }

  /**
   * A pointer-sized word at `vaddr` as the loader would leave it (before adding the PIE load bias):
   * the file value, or the addend of a relative relocation when the file holds 0.
   */
  readPointer(vaddr: number, ptrSize: number): number {
    const b = this.readVirtual(vaddr, ptrSize);
    const v = new ByteReader(b, this.what).uptr(0, ptrSize);
    if (v !== 0) return v;
    return this.relativeRelocations().get(vaddr) ?? 0;
  }

  private loadFor(vaddr: number, len: number): ElfSegment | undefined {
    if (!Number.isSafeInteger(vaddr) || !Number.isSafeInteger(len) || len < 0) return undefined;
    return this.segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.filesz && (len > 0 || vaddr < s.vaddr + s.filesz));
  }

  private readSymbols(type: number): ElfSymbol[] {
    const sec = this.sections.find((s) => s.type === type);
    if (!sec) return [];
    const label = sec.name || (type === SHT_SYMTAB ? ".symtab" : ".dynsym");
    if (sec.entsize !== 0 && sec.entsize < SYM_SIZE) corrupt(this.what, `${label} entry size ${sec.entsize} is smaller than ${SYM_SIZE}`);
    const entsize = sec.entsize || SYM_SIZE;
    const strsec = this.sections[sec.link];
    if (!strsec || strsec.type !== SHT_STRTAB) corrupt(this.what, `${label} links to section ${sec.link}, which is not a string table`);
    const sr = new ByteReader(this.sectionBytes(sec), `${this.what}: ${label}`);
    const str = new ByteReader(this.sectionBytes(strsec), `${this.what}: ${strsec.name || "symbol string table"}`);
    const n = Math.floor(sr.length / entsize);
    const out: ElfSymbol[] = [];
    // Entry 0 is the reserved null symbol (gABI "Symbol Table").
    for (let i = 1; i < n; i++) {
      const o = i * entsize;
      const nameOff = sr.u32(o);
      const info = sr.u8(o + 4);
      let name = "";
      if (nameOff !== 0) {
        if (nameOff >= str.length) corrupt(this.what, `${label} symbol ${i} name offset 0x${nameOff.toString(16)} is outside the ${str.length}-byte string table`);
        name = str.cstring(nameOff);
      }
      out.push({
        name,
        value: sr.u64(o + 8),
        size: sr.u64(o + 16),
        type: info & 0xf,
        bind: info >> 4,
        shndx: sr.u16(o + 6),
      });
    }
    return out;
  }
}

/** A table of `count` entries of `entsize` bytes at `off` must lie inside the file. */
function tableFits(r: ByteReader, what: string, table: string, off: number, count: number, entsize: number): void {
  const len = count * entsize;
  if (!Number.isSafeInteger(len) || off + len > r.length) {
    corrupt(what, `${table} (${count} entries of ${entsize} bytes at offset ${safeHex(off)}) extends past the end of the ${r.length}-byte file`);
  }
}

/** Returns `off` after checking [off, off+len) is inside the file, with a message naming `thing`. */
function checkedRange(r: ByteReader, what: string, thing: string, off: number, len: number): number {
  if (!Number.isSafeInteger(off + len) || off + len > r.length) {
    throw new TracerError("corrupt_binary", `${what} is corrupt: ${thing} (${len} bytes at offset ${safeHex(off)}) extends past the end of the ${r.length}-byte file`, {
      hint: DAMAGED_HINT,
    });
  }
  return off;
}

function safeHex(n: number): string {
  return Number.isSafeInteger(n) ? hex(n) : String(n);
}
