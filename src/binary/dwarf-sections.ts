/** @module binary/dwarf-sections — find the .debug_* sections of an ELF file and decompress them (SHF_COMPRESSED, .zdebug_*). */
import { zlib } from "../runtime.ts";
import { TracerError } from "../errors.ts";
import { ByteReader, corrupt } from "./bytes.ts";
import { SHF_COMPRESSED, SHT_NOBITS, type ElfFile, type ElfSection } from "./elf.ts";

/** The DWARF sections the reader uses, already decompressed. Optional ones are absent from the file or not emitted. */
export interface DebugSections {
  info: Uint8Array;
  abbrev: Uint8Array;
  str?: Uint8Array;
  lineStr?: Uint8Array;
  strOffsets?: Uint8Array;
  addr?: Uint8Array;
  rnglists?: Uint8Array;
  loclists?: Uint8Array;
}

// ELF gABI "Section Compression": Elf64_Chdr { Elf64_Word ch_type; Elf64_Word ch_reserved; Elf64_Xword ch_size; Elf64_Xword ch_addralign; }.
const ELF64_CHDR_SIZE = 24;
const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;
// Old GNU form (binutils `--compress-debug-sections=zlib-gnu`, Go before 1.12's SHF_COMPRESSED switch):
// section renamed .zdebug_*, contents "ZLIB" + 8-byte big-endian uncompressed size + zlib stream.
const ZDEBUG_MAGIC = 0x5a4c4942; // "ZLIB" read big-endian
const ZDEBUG_HEADER_SIZE = 12;
/**
 * Refuse to inflate a debug section claiming more than this. The largest Go binaries seen in practice
 * (Kubernetes, Cilium agents) have well under 512 MiB of uncompressed .debug_info; a larger claim is
 * far more likely a corrupt header than a real file, and would exhaust memory on a small server.
 */
export const MAX_DEBUG_SECTION_BYTES = 1 << 30;
// zlib's best possible ratio is about 1032:1 (zlib FAQ "maximum compression factor"); zstd's
// frame format allows more for runs of zeros, so it gets a looser bound.
const MAX_ZLIB_RATIO = 1032;
const MAX_ZSTD_RATIO = 1 << 15;

/** Short names used in DebugSections → ELF section suffix after ".debug_". */
const SECTION_NAMES = {
  info: "info",
  abbrev: "abbrev",
  str: "str",
  lineStr: "line_str",
  strOffsets: "str_offsets",
  addr: "addr",
  rnglists: "rnglists",
  loclists: "loclists",
} as const;
type SectionKey = keyof typeof SECTION_NAMES;

/**
 * The decompressed DWARF sections of `elf`, or undefined when it has no .debug_info (built with
 * `-ldflags=-w`, stripped, or not Go at all). info, abbrev and the string sections are decompressed
 * now; addr, rnglists and loclists on first access, since field-offset lookups never need them.
 */
export function loadDebugSections(elf: ElfFile): DebugSections | undefined {
  const what = elf.what;
  const find = (key: SectionKey): ElfSection | undefined => {
    const suffix = SECTION_NAMES[key];
    const sec = elf.section(`.debug_${suffix}`) ?? elf.section(`.zdebug_${suffix}`);
    return sec && sec.type !== SHT_NOBITS ? sec : undefined;
  };
  const infoSec = find("info");
  if (!infoSec) return undefined;
  const abbrevSec = find("abbrev");
  if (!abbrevSec) corrupt(what, "it has .debug_info but no .debug_abbrev section");
  const load = (sec: ElfSection): Uint8Array => sectionContents(elf.sectionBytes(sec), sec, `${what}: ${sec.name}`);

  const out: DebugSections = { info: load(infoSec), abbrev: load(abbrevSec) };
  for (const key of ["str", "lineStr", "strOffsets"] as const) {
    const sec = find(key);
    if (sec) out[key] = load(sec);
  }
  for (const key of ["addr", "rnglists", "loclists"] as const) {
    const sec = find(key);
    if (!sec) continue;
    let cached: Uint8Array | undefined;
    Object.defineProperty(out, key, {
      enumerable: true,
      get: () => (cached ??= load(sec)),
    });
  }
  return out;
}

/**
 * The uncompressed contents of one section, given its raw file bytes. Handles SHF_COMPRESSED
 * (zlib; zstd when the runtime's node:zlib has it) and the GNU `.zdebug_*` form; other sections
 * are returned as they are (no copy).
 */
export function sectionContents(raw: Uint8Array, sec: Pick<ElfSection, "name" | "flags">, what: string): Uint8Array {
  if ((sec.flags & SHF_COMPRESSED) !== 0) {
    const r = new ByteReader(raw, `${what} compression header`);
    r.check(0, ELF64_CHDR_SIZE);
    const type = r.u32(0);
    const size = r.u64(8);
    const body = raw.subarray(ELF64_CHDR_SIZE);
    if (type === ELFCOMPRESS_ZLIB) return inflate(body, size, what);
    if (type === ELFCOMPRESS_ZSTD) return unzstd(body, size, what);
    throw new TracerError("corrupt_binary", `${what} uses unknown compression type ${type}`, {
      hint: "known types are 1 (zlib) and 2 (zstd); the file may be damaged, or rebuild with -ldflags=-compressdwarf=false",
    });
  }
  if (sec.name.startsWith(".zdebug_")) {
    const r = new ByteReader(raw, `${what} header`, false);
    r.check(0, ZDEBUG_HEADER_SIZE);
    if (r.u32(0) !== ZDEBUG_MAGIC) corrupt(what, `a .zdebug section must start with "ZLIB"`);
    return inflate(raw.subarray(ZDEBUG_HEADER_SIZE), r.u64(4), what);
  }
  return raw;
}

function checkClaimedSize(size: number, compressed: number, ratio: number, what: string): void {
  if (size > MAX_DEBUG_SECTION_BYTES) {
    corrupt(what, `it claims ${size} uncompressed bytes, more than the ${MAX_DEBUG_SECTION_BYTES}-byte limit`);
  }
  if (size > compressed * ratio + 4096) {
    corrupt(what, `it claims ${size} uncompressed bytes from only ${compressed} compressed bytes`);
  }
}

function inflate(body: Uint8Array, size: number, what: string): Uint8Array {
  checkClaimedSize(size, body.byteLength, MAX_ZLIB_RATIO, what);
  if (size === 0) return new Uint8Array(0);
  let out: Uint8Array;
  try {
    // maxOutputLength bounds the work and memory by the header's claim; one byte more lets us see an overrun.
    out = zlib().inflateSync(body, { maxOutputLength: size + 1 });
  } catch (e) {
    throw decompressError(e, what, "zlib");
  }
  if (out.byteLength !== size) corrupt(what, `it inflates to ${out.byteLength} bytes but its header says ${size}`);
  return out;
}

type ZstdDecompress = (buf: Uint8Array, opts?: { maxOutputLength?: number }) => Uint8Array;

function unzstd(body: Uint8Array, size: number, what: string): Uint8Array {
  // node:zlib gained zstd in Node 22.15 / 23.8; Bun has it, other runtimes may not.
  const fn = (zlib() as unknown as { zstdDecompressSync?: ZstdDecompress }).zstdDecompressSync;
  if (typeof fn !== "function") {
    throw new TracerError("unrecognized_format", `${what} is zstd-compressed, which this runtime cannot decompress`, {
      hint: "rebuild the target without zstd debug sections (Go's default is zlib), or decompress it: objcopy --decompress-debug-sections",
    });
  }
  checkClaimedSize(size, body.byteLength, MAX_ZSTD_RATIO, what);
  if (size === 0) return new Uint8Array(0);
  let out: Uint8Array;
  try {
    out = fn(body, { maxOutputLength: size + 1 });
  } catch (e) {
    throw decompressError(e, what, "zstd");
  }
  if (out.byteLength !== size) corrupt(what, `it decompresses to ${out.byteLength} bytes but its header says ${size}`);
  return out;
}

function decompressError(e: unknown, what: string, algo: string): TracerError {
  const code = (e as { code?: unknown } | null)?.code;
  const problem = code === "ERR_BUFFER_TOO_LARGE" ? "it decompresses to more bytes than its header says" : `${algo} data is damaged (${e instanceof Error ? e.message : String(e)})`;
  return new TracerError("corrupt_binary", `${what} is corrupt: ${problem}`, {
    hint: "the file may be truncated or damaged; compare it with the original build",
    cause: e,
  });
}
