/**
 * @module build/btf-codegen — TypeScript bindings generated from a compiled BPF object's BTF, so
 * user space never hand-copies a C layout, enum value or global name.
 *
 * For each bpf/<lib>.bpf.c, build.ts compiles <lib>.bpf.o and this module writes
 * src/probes/<lib>/<lib>.gen.ts (committed) with, as `as const` objects:
 *   STRUCTS      every struct/union named rec_* (and the named ones they embed): size, and per
 *                member its byte offset, byte size and C type (flexible arrays `x[]`: size 0)
 *   ENUMS        every enum named rec_*, <lib>_*, go_* or bee_*, or whose enumerators start with REC_ or
 *                <LIB>_: enumerator → value (ENUMERATORS: the same, flattened)
 *   RODATA       `volatile const` globals (BTF DATASEC .rodata) and their sizes
 *   COUNTERS     __u64 globals in DATASEC .bss (the loss counters)
 *   MAPS         variables in DATASEC .maps
 *   PROGRAMS     global functions placed in a section other than .text (SEC("uprobe") …)
 * each name list with a union type, so a misspelt name is a type error, not a silent 0.
 *
 * BTF is read straight from the ELF's .BTF section (format: the kernel's
 * Documentation/bpf/btf.rst and include/uapi/linux/btf.h), so neither the build nor the
 * staleness check needs bpftool. The file's header carries a SHA-256 of the C inputs (every
 * file under bpf/ that `clang -M` lists for the object); the check regenerates the whole text
 * and compares, so a stale file, a hand edit or a layout change from another clang all fail it.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { TracerError } from "../src/errors.ts";

/** Bumped when the generated text changes shape, so old files read as stale. */
const GEN_FORMAT = 1;

/** Where the bindings of bpf/<lib>.bpf.c live, relative to the repository root. */
export function genPath(lib: string): string {
  return `src/probes/${lib}/${lib}.gen.ts`;
}

/** The command that regenerates every .gen.ts (printed by the staleness check). */
export const REGEN_COMMAND = "bun build.ts --no-compile";

// ---------------------------------------------------------------------------------------------
// ELF: just enough to find sections and the symbol table of a relocatable BPF object.

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

const SHT_SYMTAB = 2;
const STT_FUNC = 2;
const STB_GLOBAL = 1;

/** A BPF object this module cannot read: a build problem, reported by build.ts like the others. */
function fail(what: string, file: string): never {
  throw new TracerError("internal", `BTF bindings: ${file}: ${what}`, { hint: "fix bpf/ (or the generator, build/btf-codegen.ts) and run 'bun build.ts' again" });
}

function elfSections(b: Uint8Array, file: string): Section[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // e_ident: \x7fELF, ELFCLASS64 (2), ELFDATA2LSB (1); clang -target bpf on x86 emits bpfel.
  if (b.length < 64 || v.getUint32(0, false) !== 0x7f454c46) fail("not an ELF file", file);
  if (b[4] !== 2 || b[5] !== 1) fail("not a 64-bit little-endian ELF file", file);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  if (shentsize < 64 || shoff + shnum * shentsize > b.length) fail("section headers out of bounds", file);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    raw.push({
      nameOff: v.getUint32(o, true),
      type: v.getUint32(o + 4, true),
      offset: Number(v.getBigUint64(o + 0x18, true)),
      size: Number(v.getBigUint64(o + 0x20, true)),
      link: v.getUint32(o + 0x28, true),
    });
  }
  const strtab = raw[shstrndx] ?? fail("no section name table", file);
  return raw.map((s) => ({ name: cstr(b, strtab.offset + s.nameOff), type: s.type, offset: s.offset, size: s.size, link: s.link }));
}

function cstr(b: Uint8Array, at: number): string {
  let end = at;
  while (end < b.length && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(at, end));
}

/** Global functions and the section each lives in (programs: any section but .text). */
function globalFunctions(b: Uint8Array, sections: Section[], file: string): Map<string, string> {
  const out = new Map<string, string>();
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return out;
  const strtab = sections[symtab.link] ?? fail("symbol table without string table", file);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = symtab.offset; o + 24 <= symtab.offset + symtab.size; o += 24) {
    const info = v.getUint8(o + 4);
    const shndx = v.getUint16(o + 6, true);
    if ((info & 0xf) !== STT_FUNC || info >> 4 !== STB_GLOBAL) continue;
    const sec = sections[shndx];
    if (sec) out.set(cstr(b, strtab.offset + v.getUint32(o, true)), sec.name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// BTF

/** BTF kinds (include/uapi/linux/btf.h BTF_KIND_*). */
const K = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface BtfMember {
  name: string;
  type: number;
  bitOffset: number;
  bitfieldSize: number;
}
export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** info bit 31 */
  kflag: boolean;
  /** size (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or referenced type id (PTR, TYPEDEF, …) */
  sizeOrType: number;
  members?: BtfMember[];
  enumValues?: { name: string; value: number | bigint }[];
  array?: { type: number; nelems: number };
  /** FUNC: 0 static, 1 global, 2 extern; VAR: 0 static, 1 global, 2 extern */
  linkage?: number;
  /** INT: encoding bits (1 = signed) */
  intEncoding?: number;
  vars?: { type: number; offset: number; size: number }[];
}

/** Parses the .BTF section: types indexed by id (0 = void, absent). */
export function parseBtf(b: Uint8Array, file: string): BtfType[] {
  const sec = elfSections(b, file).find((s) => s.name === ".BTF") ?? fail("no .BTF section (compile with -g)", file);
  if (sec.offset + sec.size > b.length) fail(".BTF out of bounds", file);
  const v = new DataView(b.buffer, b.byteOffset + sec.offset, sec.size);
  if (sec.size < 24 || v.getUint16(0, true) !== 0xeb9f) fail("bad BTF magic", file);
  const hdrLen = v.getUint32(4, true);
  const typeOff = hdrLen + v.getUint32(8, true);
  const typeLen = v.getUint32(12, true);
  const strOff = hdrLen + v.getUint32(16, true);
  const strLen = v.getUint32(20, true);
  if (typeOff + typeLen > sec.size || strOff + strLen > sec.size) fail("BTF header out of bounds", file);
  const strs = new Uint8Array(b.buffer, b.byteOffset + sec.offset + strOff, strLen);
  const str = (off: number): string => (off < strLen ? cstr(strs, off) : fail(`BTF string offset ${off} out of bounds`, file));

  const types: BtfType[] = [];
  let o = typeOff;
  const end = typeOff + typeLen;
  const u32 = (at: number): number => {
    if (at + 4 > end) fail("BTF type section truncated", file);
    return v.getUint32(at, true);
  };
  while (o < end) {
    const info = u32(o + 4);
    const t: BtfType = {
      id: types.length + 1,
      name: str(u32(o)),
      kind: (info >>> 24) & 0x1f,
      kflag: info >>> 31 === 1,
      sizeOrType: u32(o + 8),
    };
    const vlen = info & 0xffff;
    o += 12;
    switch (t.kind) {
      case K.INT:
        t.intEncoding = (u32(o) >>> 24) & 0xf;
        o += 4;
        break;
      case K.ARRAY:
        t.array = { type: u32(o), nelems: u32(o + 8) };
        o += 12;
        break;
      case K.STRUCT:
      case K.UNION:
        t.members = [];
        for (let i = 0; i < vlen; i++, o += 12) {
          const off = u32(o + 8);
          // kind_flag: offset = bitfield_size << 24 | bit_offset (btf.rst, "BTF_KIND_STRUCT")
          t.members.push({ name: str(u32(o)), type: u32(o + 4), bitOffset: t.kflag ? off & 0xffffff : off, bitfieldSize: t.kflag ? off >>> 24 : 0 });
        }
        break;
      case K.ENUM:
        t.enumValues = [];
        for (let i = 0; i < vlen; i++, o += 8) {
          // kind_flag set = signed enum (newer clang); older clang leaves it 0 and stores s32.
          const raw = u32(o + 4);
          t.enumValues.push({ name: str(u32(o)), value: t.kflag ? raw | 0 : raw });
        }
        break;
      case K.ENUM64:
        t.enumValues = [];
        for (let i = 0; i < vlen; i++, o += 12) {
          const big = (BigInt(u32(o + 8)) << 32n) | BigInt(u32(o + 4));
          const value = t.kflag ? BigInt.asIntN(64, big) : big;
          t.enumValues.push({ name: str(u32(o)), value: Number.isSafeInteger(Number(value)) ? Number(value) : value });
        }
        break;
      case K.FUNC:
        t.linkage = vlen;
        break;
      case K.FUNC_PROTO:
        o += 8 * vlen;
        break;
      case K.VAR:
        t.linkage = u32(o);
        o += 4;
        break;
      case K.DATASEC:
        t.vars = [];
        for (let i = 0; i < vlen; i++, o += 12) t.vars.push({ type: u32(o), offset: u32(o + 4), size: u32(o + 8) });
        break;
      case K.DECL_TAG:
        o += 4;
        break;
      case K.PTR:
      case K.FWD:
      case K.TYPEDEF:
      case K.VOLATILE:
      case K.CONST:
      case K.RESTRICT:
      case K.FLOAT:
      case K.TYPE_TAG:
        break;
      default:
        fail(`unknown BTF kind ${t.kind} (type ${t.id}): a newer clang? teach build/btf-codegen.ts`, file);
    }
    types.push(t);
  }
  return types;
}

class Btf {
  constructor(
    readonly types: BtfType[],
    readonly file: string,
  ) {}

  get(id: number): BtfType {
    return this.types[id - 1] ?? fail(`BTF type ${id} does not exist`, this.file);
  }

  /** Follows typedefs and qualifiers. */
  resolve(id: number, depth = 0): BtfType {
    const t = this.get(id);
    if (depth > 64) fail(`BTF type ${id}: reference cycle`, this.file);
    switch (t.kind) {
      case K.TYPEDEF:
      case K.VOLATILE:
      case K.CONST:
      case K.RESTRICT:
      case K.TYPE_TAG:
        return this.resolve(t.sizeOrType, depth + 1);
    }
    return t;
  }

  sizeOf(id: number, depth = 0): number {
    if (depth > 64) fail(`BTF type ${id}: reference cycle`, this.file);
    const t = this.resolve(id);
    switch (t.kind) {
      case K.ARRAY:
        return t.array!.nelems * this.sizeOf(t.array!.type, depth + 1);
      case K.PTR:
        return 8; // BPF is a 64-bit target
      case K.INT:
      case K.STRUCT:
      case K.UNION:
      case K.ENUM:
      case K.ENUM64:
      case K.FLOAT:
        return t.sizeOrType;
    }
    return fail(`BTF type ${id} (kind ${t.kind}) has no size`, this.file);
  }

  /** C spelling of a type, for the reader of the generated file. */
  typeName(id: number, depth = 0): string {
    if (id === 0) return "void";
    if (depth > 64) fail(`BTF type ${id}: reference cycle`, this.file);
    const t = this.get(id);
    const anon = (what: string): string => (t.name ? `${what} ${t.name}` : `${what} <anonymous>`);
    switch (t.kind) {
      case K.INT:
      case K.FLOAT:
      case K.TYPEDEF:
        return t.name;
      case K.PTR:
        return `${this.typeName(t.sizeOrType, depth + 1)} *`;
      case K.ARRAY:
        return `${this.typeName(t.array!.type, depth + 1)}[${t.array!.nelems || ""}]`;
      case K.STRUCT:
        return anon("struct");
      case K.UNION:
        return anon("union");
      case K.ENUM:
      case K.ENUM64:
        return anon("enum");
      case K.FWD:
        return `${t.kflag ? "union" : "struct"} ${t.name}`;
      case K.VOLATILE:
        return `volatile ${this.typeName(t.sizeOrType, depth + 1)}`;
      case K.CONST:
        return `const ${this.typeName(t.sizeOrType, depth + 1)}`;
      case K.RESTRICT:
      case K.TYPE_TAG:
        return this.typeName(t.sizeOrType, depth + 1);
    }
    return `<kind ${t.kind}>`;
  }

  datasec(name: string): { name: string; type: number }[] {
    const sec = this.types.find((t) => t.kind === K.DATASEC && t.name === name);
    return (sec?.vars ?? []).map((sv) => {
      const v = this.get(sv.type);
      return { name: v.name, type: v.sizeOrType, linkage: v.linkage, kind: v.kind };
    }).filter((v) => v.kind === K.VAR && v.linkage !== 2 /* extern */);
  }
}

// ---------------------------------------------------------------------------------------------
// What the generated file holds

export interface MemberLayout {
  offset: number;
  size: number;
  type: string;
  /** For a member that is a named struct/union: its name (a key of STRUCTS too). */
  struct?: string;
}
export interface StructLayout {
  kind: "struct" | "union";
  size: number;
  members: Record<string, MemberLayout>;
}
export interface Bindings {
  object: string;
  structs: Record<string, StructLayout>;
  enums: Record<string, Record<string, number | bigint>>;
  /** enumerators of anonymous enums, and of named ones, flattened */
  enumerators: Record<string, number | bigint>;
  rodata: Record<string, number>;
  counters: string[];
  maps: string[];
  programs: Record<string, string>;
}

/** Extracts the bindings of one compiled object (`lib` = the name in bpf/<lib>.bpf.c). */
export function extractBindings(lib: string, objectBytes: Uint8Array, file = `${lib}.bpf.o`): Bindings {
  const btf = new Btf(parseBtf(objectBytes, file), file);
  const upper = `${lib.toUpperCase()}_`;

  // Structs: rec_* and, transitively, the named structs/unions they embed.
  const structs: Record<string, StructLayout> = {};
  const pending = btf.types.filter((t) => (t.kind === K.STRUCT || t.kind === K.UNION) && t.name.startsWith("rec_"));
  const seen = new Map<string, BtfType>();
  while (pending.length > 0) {
    const t = pending.shift()!;
    const prev = seen.get(t.name);
    if (prev !== undefined) {
      if (prev.id !== t.id && JSON.stringify(layoutOf(btf, prev, [])) !== JSON.stringify(layoutOf(btf, t, []))) {
        fail(`two different definitions of ${btf.typeName(t.id)} in BTF`, file);
      }
      continue;
    }
    seen.set(t.name, t);
    const embedded: BtfType[] = [];
    structs[t.name] = layoutOf(btf, t, embedded);
    pending.push(...embedded);
  }

  const enums: Record<string, Record<string, number | bigint>> = {};
  const enumerators: Record<string, number | bigint> = {};
  for (const t of btf.types) {
    if (t.kind !== K.ENUM && t.kind !== K.ENUM64) continue;
    const vals = t.enumValues ?? [];
    const wanted =
      // go_*: the shared Go-runtime helpers' switches (bpf/include/go_*.bpf.h), e.g. go_map_mode.
      t.name.startsWith("rec_") ||
      t.name.startsWith(`${lib}_`) ||
      t.name.startsWith("go_") ||
      // bee_*: the shared span helpers' switches (bpf/shared/span.h), e.g. bee_sampler.
      t.name.startsWith("bee_") ||
      (vals.length > 0 && vals.every((e) => e.name.startsWith("REC_") || e.name.startsWith(upper)));
    if (!wanted) continue;
    const mine: Record<string, number | bigint> = {};
    for (const e of vals) {
      if (e.name in enumerators && enumerators[e.name] !== e.value) fail(`enumerator ${e.name} has two values`, file);
      mine[e.name] = e.value;
      enumerators[e.name] = e.value;
    }
    if (t.name) enums[t.name] = mine;
  }

  const rodata: Record<string, number> = {};
  for (const v of btf.datasec(".rodata")) rodata[v.name] = btf.sizeOf(v.type);

  const counters = btf
    .datasec(".bss")
    .filter((v) => {
      const r = btf.resolve(v.type);
      return r.kind === K.INT && r.sizeOrType === 8 && ((r.intEncoding ?? 0) & 1) === 0; // __u64
    })
    .map((v) => v.name);

  const maps = btf.datasec(".maps").map((v) => v.name);

  const btfFuncs = new Set(btf.types.filter((t) => t.kind === K.FUNC && t.linkage === 1).map((t) => t.name));
  const programs: Record<string, string> = {};
  for (const [name, section] of globalFunctions(objectBytes, elfSections(objectBytes, file), file)) {
    if (section !== ".text" && btfFuncs.has(name)) programs[name] = section;
  }

  return {
    object: lib,
    structs: sortKeys(structs),
    enums: sortKeys(enums),
    enumerators: sortKeys(enumerators),
    rodata: sortKeys(rodata),
    counters: [...counters].sort(),
    maps: [...maps].sort(),
    programs: sortKeys(programs),
  };
}

function layoutOf(btf: Btf, t: BtfType, embedded: BtfType[]): StructLayout {
  const members: Record<string, MemberLayout> = {};
  const add = (owner: BtfType, base: number): void => {
    for (const m of owner.members ?? []) {
      if (m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0) {
        fail(`${btf.typeName(owner.id)}.${m.name || "<anonymous>"} is a bitfield: records must use whole bytes`, btf.file);
      }
      const offset = base + m.bitOffset / 8;
      const r = btf.resolve(m.type);
      if (m.name === "") {
        // Anonymous struct/union member: C reaches its fields directly, so does the layout.
        if (r.kind !== K.STRUCT && r.kind !== K.UNION) fail(`${btf.typeName(owner.id)} has an unnamed non-struct member`, btf.file);
        add(r, offset);
        continue;
      }
      if (m.name in members) fail(`${btf.typeName(t.id)}: member ${m.name} appears twice`, btf.file);
      const ml: MemberLayout = { offset, size: btf.sizeOf(m.type), type: btf.typeName(m.type) };
      if ((r.kind === K.STRUCT || r.kind === K.UNION) && r.name) {
        ml.struct = r.name;
        embedded.push(r);
      }
      members[m.name] = ml;
    }
  };
  add(t, 0);
  return { kind: t.kind === K.UNION ? "union" : "struct", size: t.sizeOrType, members };
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------------
// Rendering

function lit(v: number | bigint): string {
  if (typeof v === "bigint") return `${v}n`;
  return v >= 16 ? `0x${v.toString(16)}` : String(v);
}

/** The generated module's text. `inputsHash` identifies the C inputs (see inputsHash()). */
export function renderBindings(b: Bindings, inputsHash: string): string {
  const q = JSON.stringify;
  const out: string[] = [
    `// Generated by build/btf-codegen.ts from the BTF of bpf/${b.object}.bpf.c: do not edit.`,
    `// Regenerate with \`${REGEN_COMMAND}\`; \`bun build.ts --check-gen\` fails while this file is stale.`,
    `// inputs-sha256: ${inputsHash}`,
    "",
    `export const OBJECT = ${q(b.object)};`,
    "",
  ];
  const list = (doc: string, constName: string, typeName: string, names: string[]): void => {
    out.push(`/** ${doc} */`);
    if (names.length === 0) out.push(`export const ${constName} = [] as const;`);
    else out.push(`export const ${constName} = [`, ...names.map((n) => `  ${q(n)},`), "] as const;");
    out.push(`export type ${typeName} = (typeof ${constName})[number];`, "");
  };
  /** `export const NAME = { … } as const<suffix>;` with one line per entry (or `{}` when empty). */
  const record = (head: string, lines: string[], suffix = ""): void => {
    if (lines.length === 0) out.push(`${head} {} as const${suffix};`);
    else out.push(`${head} {`, ...lines, `} as const${suffix};`);
  };

  out.push(
    "/** Record layouts (bytes). A flexible array member `x[]` has size 0; its offset is where the",
    " * packed data after the fixed fields starts. `struct` names a nested layout in STRUCTS. */",
  );
  record(
    "export const STRUCTS =",
    Object.entries(b.structs).flatMap(([name, s]) => [
      `  ${name}: {`,
      `    kind: ${q(s.kind)},`,
      `    size: ${s.size},`,
      "    members: {",
      ...Object.entries(s.members).map(([m, l]) => {
        const nested = l.struct !== undefined ? `, struct: ${q(l.struct)}` : "";
        return `      ${m}: { offset: ${l.offset}, size: ${l.size}, type: ${q(l.type)}${nested} },`;
      }),
      "    },",
      "  },",
    ]),
  );
  out.push("export type StructName = keyof typeof STRUCTS;", "");

  out.push("/** Enums, by C enum name: enumerator → value (declaration order). */");
  record(
    "export const ENUMS =",
    Object.entries(b.enums).flatMap(([name, vals]) => [`  ${name}: {`, ...Object.entries(vals).map(([e, v]) => `    ${e}: ${lit(v)},`), "  },"]),
  );
  out.push("", "/** Every enumerator above (and those of anonymous enums), flattened. */");
  record(
    "export const ENUMERATORS =",
    Object.entries(b.enumerators).map(([e, v]) => `  ${e}: ${lit(v)},`),
  );
  out.push("export type EnumeratorName = keyof typeof ENUMERATORS;", "");

  list("`volatile const` globals (DATASEC .rodata), set before load.", "RODATA", "RodataName", Object.keys(b.rodata));
  out.push("/** Byte size of each .rodata global (8: the value is a bigint). */");
  record(
    "export const RODATA_SIZES =",
    Object.entries(b.rodata).map(([n, s]) => `  ${n}: ${s},`),
    " satisfies Record<RodataName, number>",
  );
  out.push("");
  list("__u64 globals in DATASEC .bss: the object's loss counters.", "COUNTERS", "CounterName", b.counters);
  list("Maps (DATASEC .maps).", "MAPS", "MapName", b.maps);
  list("Programs: global functions in a section other than .text.", "PROGRAMS", "ProgramName", Object.keys(b.programs));
  out.push("/** ELF section of each program (its SEC() annotation). */");
  record(
    "export const PROGRAM_SECTIONS =",
    Object.entries(b.programs).map(([n, s]) => `  ${n}: ${q(s)},`),
    " satisfies Record<ProgramName, string>",
  );
  return out.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// Inputs, generation and the staleness check

export interface CompileEnv {
  /** Directory holding <lib>.bpf.c and the headers it includes with "…" (bpf/). */
  bpfDir: string;
  clang: string;
  cflags: readonly string[];
  includeDirs: readonly string[];
}

/**
 * SHA-256 over the files under `bpfDir` that the object is built from (per `clang -M`, so a
 * header only another object includes does not make this one stale), by path relative to
 * `bpfDir`, and the compiler flags. Headers outside bpf/ (libbpf's, the kernel's) are not
 * hashed: they are not part of this repository, and the regenerate-and-compare check still
 * sees a layout they change.
 */
export function inputsHash(lib: string, env: CompileEnv): string {
  const src = join(env.bpfDir, `${lib}.bpf.c`);
  const r = spawnSync(env.clang, [...env.cflags, ...env.includeDirs.map((d) => `-I${d}`), "-M", src], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new TracerError("internal", `clang -M ${relative(process.cwd(), src)} failed: ${r.error?.message ?? r.stderr.trim().split("\n")[0]}`);
  }
  const root = resolve(env.bpfDir);
  const deps = r.stdout
    .replace(/\\\n/g, " ")
    .replace(/^[^:]*:/, "")
    .split(/\s+/)
    .filter((p) => p.length > 0)
    .map((p) => resolve(p))
    .filter((p) => p.startsWith(root + sep))
    .map((p) => relative(root, p).split(sep).join("/"));
  const h = createHash("sha256");
  h.update(`format ${GEN_FORMAT}\nflags ${env.cflags.join(" ")}\n`);
  for (const rel of [...new Set(deps)].sort()) {
    h.update(`${rel} ${createHash("sha256").update(readFileSync(join(root, rel))).digest("hex")}\n`);
  }
  return h.digest("hex");
}

/** Names of bpf/<lib>.bpf.c under `bpfDir`. */
export function bpfLibs(bpfDir: string): string[] {
  if (!existsSync(bpfDir)) return [];
  return readdirSync(bpfDir)
    .filter((f) => f.endsWith(".bpf.c"))
    .map((f) => f.slice(0, -".bpf.c".length))
    .sort();
}

/** The text of <lib>.gen.ts for an already compiled object. */
export function generate(lib: string, objectPath: string, env: CompileEnv): string {
  return renderBindings(extractBindings(lib, readFileSync(objectPath), objectPath), inputsHash(lib, env));
}

/** Writes src/probes/<lib>/<lib>.gen.ts for each compiled object; returns the paths that changed. */
export function writeGenerated(root: string, objects: Record<string, string>, env: CompileEnv): string[] {
  const changed: string[] = [];
  for (const [lib, obj] of Object.entries(objects)) {
    const text = generate(lib, obj, env);
    const path = join(root, genPath(lib));
    if (existsSync(path) && readFileSync(path, "utf8") === text) continue;
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    changed.push(genPath(lib));
  }
  return changed;
}

export interface GenCheck {
  lib: string;
  /** repository-relative path of the .gen.ts */
  path: string;
  ok: boolean;
  /** what differs, and the command that fixes it */
  detail: string;
  expected: string;
  actual: string | undefined;
}

/**
 * Compiles every bpf/*.bpf.c into a temporary directory with `compile`, regenerates its bindings
 * in memory and compares them with the committed files. Writes nothing under `root`.
 */
export function checkGenerated(root: string, env: CompileEnv, compile: (src: string, out: string) => void): GenCheck[] {
  const tmp = mkdtempSync(join(tmpdir(), "beetrace-gen-"));
  try {
    return bpfLibs(env.bpfDir).map((lib) => {
      const obj = join(tmp, `${lib}.bpf.o`);
      compile(join(env.bpfDir, `${lib}.bpf.c`), obj);
      const expected = generate(lib, obj, env);
      const path = genPath(lib);
      const file = join(root, path);
      const actual = existsSync(file) ? readFileSync(file, "utf8") : undefined;
      const ok = actual === expected;
      const why = actual === undefined ? "missing" : firstDifference(actual, expected);
      return { lib, path, ok, expected, actual, detail: ok ? "current" : `${why}; run '${REGEN_COMMAND}' and commit ${path}` };
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function firstDifference(actual: string, expected: string): string {
  const a = actual.split("\n");
  const e = expected.split("\n");
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) return `stale at line ${i + 1}: has ${JSON.stringify(a[i] ?? "<end>")}, BTF gives ${JSON.stringify(e[i] ?? "<end>")}`;
  }
  return "stale";
}
