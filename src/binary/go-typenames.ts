/**
 * @module binary/go-typenames — where a Go type's name lives among the binary's type data, as
 * the `str` name offset its runtime type descriptor carries (internal/abi.Type.Str, a NameOff).
 *
 * A BPF program that holds an interface value can read its dynamic type's descriptor
 * (itab → Type) and that descriptor's `str`; comparing it with offsets found here tells which
 * type the value has without any address: name offsets are relative to the module's type data
 * (moduledata.types), so they are the same in every process of a PIE binary.
 *
 * The type data starts at the symbol runtime.types: the first bytes of .rodata up to Go 1.26
 * (cmd/link lays the STYPE symbols out first in the read-only data), its own section .go.type
 * from Go 1.27, and in .data.rel.ro for PIE builds. An unstripped binary names runtime.types,
 * and that is preferred.
 *
 * A name is encoded (internal/abi/type.go, Name) as one flags byte, the length as a varint
 * (Go >= 1.17) and the bytes. Type names of T and *T share one name, "*T": T's descriptor has
 * TFlagExtraStar and drops the star when printed; so "syscall.Errno" is looked up as
 * "*syscall.Errno".
 */
import { Buffer } from "node:buffer";
import type { ElfFile } from "./elf.ts";

/** internal/abi.Name flag bits (exported, has tag, has pkgPath, embedded): anything higher is not a name. */
const NAME_FLAG_LIMIT = 1 << 4;

export class GoTypeNames {
  readonly #region: Uint8Array | undefined;
  readonly #fileRange: { offset: number; size: number } | undefined;
  readonly #cache = new Map<string, number | undefined>();

  constructor(elf: ElfFile) {
    const r = typesRegion(elf);
    this.#region = r?.bytes;
    this.#fileRange = r ? { offset: r.fileOffset, size: r.bytes.length } : undefined;
  }

  /** Where the type data is in the file (to make it resident in the target: src/target/prefault.ts). */
  get fileRange(): { offset: number; size: number } | undefined {
    return this.#fileRange;
  }

  /** Whether the binary's type data was found (else every lookup is undefined). */
  get available(): boolean {
    return this.#region !== undefined;
  }

  /**
   * The name offset of type `name` as %T prints it ("*net.OpError", "syscall.Errno"), or
   * undefined when the binary has no such type name (not linked) or the name is ambiguous.
   */
  nameOff(name: string): number | undefined {
    if (this.#cache.has(name)) return this.#cache.get(name);
    const found = this.#find(name.startsWith("*") ? name : `*${name}`);
    this.#cache.set(name, found);
    return found;
  }

  #find(name: string): number | undefined {
    const region = this.#region;
    if (region === undefined || name.length === 0 || name.length >= 128) return undefined;
    const needle = new Uint8Array(name.length + 1);
    needle[0] = name.length; // a one-byte varint: lengths < 128
    for (let i = 0; i < name.length; i++) needle[i + 1] = name.charCodeAt(i) & 0xff;
    const hits: number[] = [];
    for (let at = indexOf(region, needle, 1); at >= 0; at = indexOf(region, needle, at + 1)) {
      if (region[at - 1]! < NAME_FLAG_LIMIT) hits.push(at - 1);
      if (hits.length > 1) return undefined; // the linker deduplicates names: two are not ours to choose from
    }
    return hits[0];
  }
}

/**
 * The bytes of the module's type data (moduledata.types onwards), or undefined. Where the linker
 * puts it: non-PIE, the start of .rodata (Go <= 1.26) or .go.type (1.27); PIE (descriptors hold
 * pointers to relocate), the start of .data.rel.ro or .data.rel.ro.go.type (1.27).
 */
function typesRegion(elf: ElfFile): { bytes: Uint8Array; fileOffset: number } | undefined {
  const sym = elf.symbols().find((s) => s.name === "runtime.types");
  const names = elf.isPIE ? [".data.rel.ro.go.type", ".data.rel.ro"] : [".go.type", ".rodata"];
  const sec = names.map((n) => elf.section(n)).find((x) => x !== undefined);
  if (!sec) return undefined;
  const bytes = elf.sectionBytes(sec);
  const skip = sym === undefined ? 0 : sym.value - sec.addr;
  return skip >= 0 && skip < bytes.length ? { bytes: bytes.subarray(skip), fileOffset: sec.offset + skip } : undefined;
}

/** Native substring search (node:buffer, in Bun and Deno): the type data is megabytes. */
function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(needle, from);
}
