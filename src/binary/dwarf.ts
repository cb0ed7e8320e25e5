/** @module binary/dwarf — Go struct-field offsets and type sizes from a binary's DWARF (v2–v5, 32/64-bit). */
import { TracerError } from "../errors.ts";
import { ByteReader, corrupt, decodeUtf8, hex } from "./bytes.ts";
import { loadDebugSections, type DebugSections } from "./dwarf-sections.ts";
import type { ElfFile } from "./elf.ts";

export { loadDebugSections, type DebugSections } from "./dwarf-sections.ts";

/** Where a field lives in its struct; size and typeName are absent when DWARF does not say. */
export interface FieldInfo {
  offset: number;
  size?: number;
  typeName?: string;
}

// DWARF 5 §7.5.1 unit types (Table 7.2).
const DW_UT_compile = 0x01;
const DW_UT_type = 0x02;
const DW_UT_partial = 0x03;
const DW_UT_skeleton = 0x04;
const DW_UT_split_compile = 0x05;
const DW_UT_split_type = 0x06;

// DWARF 5 §7.5.3 tags (Table 7.3) — only the ones we act on.
const DW_TAG_array_type = 0x01;
const DW_TAG_enumeration_type = 0x04;
const DW_TAG_member = 0x0d;
const DW_TAG_pointer_type = 0x0f;
const DW_TAG_structure_type = 0x13;
const DW_TAG_subroutine_type = 0x15;
const DW_TAG_typedef = 0x16;
const DW_TAG_union_type = 0x17;
const DW_TAG_base_type = 0x24;
const DW_TAG_const_type = 0x26;
const DW_TAG_volatile_type = 0x35;
const DW_TAG_restrict_type = 0x37;
const DW_TAG_atomic_type = 0x47;

// DWARF 5 §7.5.4 attributes (Table 7.5).
const DW_AT_name = 0x03;
const DW_AT_byte_size = 0x0b;
const DW_AT_data_member_location = 0x38;
const DW_AT_declaration = 0x3c;
const DW_AT_type = 0x49;
const DW_AT_str_offsets_base = 0x72;

// DWARF 5 §7.5.6 forms (Table 7.6), plus the GNU extensions binutils/gcc emit (dwarf2.def).
const DW_FORM_addr = 0x01;
const DW_FORM_block2 = 0x03;
const DW_FORM_block4 = 0x04;
const DW_FORM_data2 = 0x05;
const DW_FORM_data4 = 0x06;
const DW_FORM_data8 = 0x07;
const DW_FORM_string = 0x08;
const DW_FORM_block = 0x09;
const DW_FORM_block1 = 0x0a;
const DW_FORM_data1 = 0x0b;
const DW_FORM_flag = 0x0c;
const DW_FORM_sdata = 0x0d;
const DW_FORM_strp = 0x0e;
const DW_FORM_udata = 0x0f;
const DW_FORM_ref_addr = 0x10;
const DW_FORM_ref1 = 0x11;
const DW_FORM_ref2 = 0x12;
const DW_FORM_ref4 = 0x13;
const DW_FORM_ref8 = 0x14;
const DW_FORM_ref_udata = 0x15;
const DW_FORM_indirect = 0x16;
const DW_FORM_sec_offset = 0x17;
const DW_FORM_exprloc = 0x18;
const DW_FORM_flag_present = 0x19;
const DW_FORM_strx = 0x1a;
const DW_FORM_addrx = 0x1b;
const DW_FORM_ref_sup4 = 0x1c;
const DW_FORM_strp_sup = 0x1d;
const DW_FORM_data16 = 0x1e;
const DW_FORM_line_strp = 0x1f;
const DW_FORM_ref_sig8 = 0x20;
const DW_FORM_implicit_const = 0x21;
const DW_FORM_loclistx = 0x22;
const DW_FORM_rnglistx = 0x23;
const DW_FORM_ref_sup8 = 0x24;
const DW_FORM_strx1 = 0x25;
const DW_FORM_strx2 = 0x26;
const DW_FORM_strx3 = 0x27;
const DW_FORM_strx4 = 0x28;
const DW_FORM_addrx1 = 0x29;
const DW_FORM_addrx2 = 0x2a;
const DW_FORM_addrx3 = 0x2b;
const DW_FORM_addrx4 = 0x2c;
const DW_FORM_GNU_addr_index = 0x1f01;
const DW_FORM_GNU_str_index = 0x1f02;
const DW_FORM_GNU_ref_alt = 0x1f20;
const DW_FORM_GNU_strp_alt = 0x1f21;

// DWARF 5 §7.7.1 location-expression opcodes (Table 7.9) older compilers use for member offsets.
const DW_OP_constu = 0x10;
const DW_OP_plus_uconst = 0x23;
const DW_OP_lit0 = 0x30;
const DW_OP_lit31 = 0x4f;

/** Type DIEs remembered by name during the scan; everything else is skipped without decoding. */
const NAMED_TYPE_TAGS = new Set([
  DW_TAG_structure_type,
  DW_TAG_typedef,
  DW_TAG_base_type,
  DW_TAG_pointer_type,
  DW_TAG_array_type,
  DW_TAG_subroutine_type,
  DW_TAG_union_type,
  DW_TAG_enumeration_type,
]);
/** Tags that add nothing to a type's size; follow DW_AT_type through them. */
const ALIAS_TAGS = new Set([DW_TAG_typedef, DW_TAG_const_type, DW_TAG_volatile_type, DW_TAG_restrict_type, DW_TAG_atomic_type]);
/** Longest typedef/const chain followed before calling it a cycle. Go emits at most one typedef hop. */
const MAX_TYPE_HOPS = 64;
/** Deepest DIE nesting accepted. Go nests types 2 deep, C rarely past 20; thousands means a corrupt tree. */
const MAX_DIE_DEPTH = 1024;

const DAMAGED_HINT = "the file may be truncated or damaged; compare it with the original build";

interface Abbrev {
  tag: number;
  hasChildren: boolean;
  /** attribute, form pairs */
  specs: Int32Array;
  /** DW_FORM_implicit_const values, parallel to specs/2 (0 for other forms). */
  implicit: number[];
  /** True when any form is DW_FORM_indirect, which is rare and takes the slow path. */
  indirect: boolean;
  /** Bytes every DIE of this abbrev occupies after its code when all forms are fixed-size, else -1. */
  fixedSize: number;
  /** unitShape() of the unit fixedSize was measured in; form sizes depend on it. */
  fixedShape: number;
}

interface Unit {
  offset: number;
  end: number;
  version: number;
  offsetSize: 4 | 8;
  addrSize: number;
  /** Offset of the first DIE (the unit's root). */
  dieStart: number;
  abbrevs: Abbrev[];
  strOffsetsBase: number | undefined;
}

/** One decoded attribute value, reused across reads to avoid allocating per attribute. */
class AttrValue {
  /** "const": num (unsigned or signed); "ref": num is a section offset; "str": str; "block": [blockStart, blockEnd); "flag": num 0/1. */
  kind: "const" | "ref" | "str" | "block" | "flag" | "other" = "other";
  num = 0;
  str = "";
  blockStart = 0;
  blockEnd = 0;
}

/** A member read from a structure DIE, before its type is resolved. */
interface RawMember {
  offset: number | TracerError;
  typeRef: number | undefined;
}

/**
 * Reads struct layouts from a Go binary's DWARF. Opening only parses unit headers; the first
 * lookup scans .debug_info once, remembering the offset of each named type DIE (no objects per
 * DIE); members of a struct are decoded when it is first asked for.
 */
export class GoDwarf {
  private readonly info: ByteReader;
  private readonly abbrevR: ByteReader;
  private readonly strR: ByteReader | undefined;
  private readonly lineStrR: ByteReader | undefined;
  private readonly strOffR: ByteReader | undefined;
  private readonly units: Unit[];
  private readonly abbrevCache = new Map<number, Abbrev[]>();
  private structs: Map<string, number[]> | undefined;
  private types: Map<string, number[]> | undefined;
  private readonly memberCache = new Map<number, Map<string, RawMember>>();
  private readonly v = new AttrValue();
  /** Where the DIE just read by readDie() ends (its attributes; children follow). */
  private dieEnd = 0;
  private dieAbbrev: Abbrev | undefined;

  constructor(
    readonly sections: DebugSections,
    /** Names the binary in messages. */
    readonly what = "binary",
  ) {
    this.info = new ByteReader(sections.info, `${what}: .debug_info`);
    this.abbrevR = new ByteReader(sections.abbrev, `${what}: .debug_abbrev`);
    this.strR = sections.str && new ByteReader(sections.str, `${what}: .debug_str`);
    this.lineStrR = sections.lineStr && new ByteReader(sections.lineStr, `${what}: .debug_line_str`);
    this.strOffR = sections.strOffsets && new ByteReader(sections.strOffsets, `${what}: .debug_str_offsets`);
    this.units = this.readUnitHeaders();
  }

  /** undefined when the binary carries no DWARF (built with -ldflags=-w or stripped). */
  static open(elf: ElfFile): GoDwarf | undefined {
    const sections = loadDebugSections(elf);
    return sections && new GoDwarf(sections, elf.what);
  }

  /** Number of compilation (or type) units in .debug_info. */
  get unitCount(): number {
    return this.units.length;
  }

  /**
   * Offset of `field` in struct `typeName` ("net/http.Request", "runtime.g"), or undefined when
   * there is no such struct or field. Throws offset_unknown when DWARF has the field but its
   * offset cannot be known for sure (an unsupported location expression, conflicting duplicates).
   */
  fieldOffset(typeName: string, field: string): FieldInfo | undefined {
    const candidates = this.structOffsets(typeName);
    let found: FieldInfo | undefined;
    for (const die of candidates) {
      const raw = this.members(die).get(field);
      if (!raw) continue;
      if (raw.offset instanceof TracerError) throw raw.offset;
      const info: FieldInfo = { offset: raw.offset };
      if (raw.typeRef !== undefined) {
        const name = this.typeNameAt(raw.typeRef);
        if (name !== undefined) info.typeName = name;
        const size = this.sizeAt(raw.typeRef);
        if (size !== undefined) info.size = size;
      }
      if (found === undefined) found = info;
      else if (found.offset !== info.offset) {
        throw new TracerError("offset_unknown", `${this.what}: DWARF has ${candidates.length} different structs named ${typeName}; field ${field} is at ${found.offset} in one and ${info.offset} in another`, {
          hint: "the binary's debug info is ambiguous for this type; use the offsets table instead",
        });
      }
    }
    return found;
  }

  /** Size in bytes of the named type, or undefined when DWARF has no such type or no size for it. */
  typeSize(typeName: string): number | undefined {
    this.ensureIndex();
    const dies = this.structs?.get(typeName) ?? this.types?.get(typeName);
    if (!dies) return undefined;
    let size: number | undefined;
    for (const die of dies) {
      const s = this.sizeAt(die);
      if (s === undefined) continue;
      if (size === undefined) size = s;
      else if (s !== size) {
        throw new TracerError("offset_unknown", `${this.what}: DWARF has several types named ${typeName} with different sizes (${size} and ${s})`, {
          hint: "the binary's debug info is ambiguous for this type; use the offsets table instead",
        });
      }
    }
    return size;
  }

  /** "net/http.Request.Method" → fieldOffset("net/http.Request", "Method"); the field follows the last '.'. */
  resolve(path: string): FieldInfo | undefined {
    const dot = path.lastIndexOf(".");
    if (dot <= 0 || dot === path.length - 1) {
      throw new TracerError("usage", `'${path}' is not a field path`, {
        hint: "write the package-qualified type, a dot and the field, e.g. net/http.Request.Method",
      });
    }
    return this.fieldOffset(path.slice(0, dot), path.slice(dot + 1));
  }

  /** Names of all structure types found (scans on first use); for `inspect` and tests. */
  structNames(): string[] {
    this.ensureIndex();
    return [...(this.structs?.keys() ?? [])];
  }

  /** Field names of struct `typeName` in DWARF order (first definition), or undefined if absent. */
  fieldNames(typeName: string): string[] | undefined {
    const die = this.structOffsets(typeName)[0];
    return die === undefined ? undefined : [...this.members(die).keys()];
  }

  // ---- unit headers -------------------------------------------------------------------------

  private readUnitHeaders(): Unit[] {
    const r = this.info;
    const units: Unit[] = [];
    let off = 0;
    // Each unit is at least its 11-byte header long, so this loop ends; the cap is belt and braces.
    for (let n = 0; off < r.length && n < r.length; n++) {
      let len = r.u32(off);
      let offsetSize: 4 | 8 = 4;
      let p = off + 4;
      // DWARF 5 §7.4: 0xffffffff introduces 64-bit DWARF; 0xfffffff0–0xfffffffe are reserved.
      if (len === 0xffffffff) {
        len = r.u64(off + 4);
        offsetSize = 8;
        p = off + 12;
      } else if (len >= 0xfffffff0) {
        corrupt(r.what, `unit at ${hex(off)} has reserved length value ${hex(len)}`);
      }
      const end = p + len;
      if (end > r.length) corrupt(r.what, `unit at ${hex(off)} claims ${len} bytes but only ${r.length - p} remain`);
      const version = r.u16(p);
      p += 2;
      let unitType = DW_UT_compile;
      let addrSize: number;
      let abbrevOffset: number;
      if (version >= 2 && version <= 4) {
        abbrevOffset = offsetSize === 8 ? r.u64(p) : r.u32(p);
        p += offsetSize;
        addrSize = r.u8(p);
        p += 1;
      } else if (version === 5) {
        unitType = r.u8(p);
        addrSize = r.u8(p + 1);
        p += 2;
        abbrevOffset = offsetSize === 8 ? r.u64(p) : r.u32(p);
        p += offsetSize;
        // DWARF 5 §7.5.1.2–3: skeleton/split units carry an 8-byte dwo_id; type units a signature and a type offset.
        if (unitType === DW_UT_skeleton || unitType === DW_UT_split_compile) p += 8;
        else if (unitType === DW_UT_type || unitType === DW_UT_split_type) p += 8 + offsetSize;
        else if (unitType !== DW_UT_compile && unitType !== DW_UT_partial) {
          corrupt(r.what, `unit at ${hex(off)} has unknown unit type ${hex(unitType)}`);
        }
      } else {
        throw new TracerError("corrupt_binary", `${r.what}: unit at ${hex(off)} has DWARF version ${version}; versions 2 to 5 are supported`, {
          hint: "a version this high is either a newer DWARF standard or damage; compare the file with the original build",
        });
      }
      if (addrSize !== 4 && addrSize !== 8) corrupt(r.what, `unit at ${hex(off)} has address size ${addrSize}`);
      if (p > end) corrupt(r.what, `unit at ${hex(off)} is shorter than its header`);
      units.push({ offset: off, end, version, offsetSize, addrSize, dieStart: p, abbrevs: this.abbrevTable(abbrevOffset), strOffsetsBase: undefined });
      off = end;
    }
    return units;
  }

  // ---- abbreviations ------------------------------------------------------------------------

  /** The abbreviation table at `off` as an array indexed by code (DWARF 5 §7.5.3). */
  private abbrevTable(off: number): Abbrev[] {
    const cached = this.abbrevCache.get(off);
    if (cached) return cached;
    const r = this.abbrevR;
    const table: Abbrev[] = [];
    let p = off;
    // Every entry and attribute spec consumes at least one byte, so position-bounded loops end.
    for (;;) {
      const [code, n1] = r.uleb128(p);
      p += n1;
      if (code === 0) break;
      // Codes are small consecutive integers in practice; a huge one would make a sparse giant array.
      if (code > r.length) corrupt(r.what, `abbreviation code ${code} at ${hex(p)} is larger than the section`);
      const [tag, n2] = r.uleb128(p);
      p += n2;
      const hasChildren = r.u8(p) !== 0;
      p += 1;
      const specs: number[] = [];
      const implicit: number[] = [];
      let indirect = false;
      for (;;) {
        const [attr, a1] = r.uleb128(p);
        p += a1;
        const [form, a2] = r.uleb128(p);
        p += a2;
        if (attr === 0 && form === 0) break;
        let value = 0;
        if (form === DW_FORM_implicit_const) {
          const [v, a3] = r.sleb128(p);
          p += a3;
          value = v;
        }
        if (form === DW_FORM_indirect) indirect = true;
        // An unknown form is reported when a DIE using it is met (skipForm), not here: tables may hold unused entries.
        specs.push(attr, form);
        implicit.push(value);
      }
      table[code] ??= { tag, hasChildren, specs: Int32Array.from(specs), implicit, indirect, fixedSize: -1, fixedShape: -1 };
    }
    this.abbrevCache.set(off, table);
    return table;
  }

  // ---- the name index -----------------------------------------------------------------------

  private ensureIndex(): void {
    if (this.structs) return;
    const structs = new Map<string, number[]>();
    const types = new Map<string, number[]>();
    const bytes = this.info.bytes;
    for (const u of this.units) {
      let p = u.dieStart;
      let depth = 0;
      let first = true;
      while (p < u.end) {
        const dieOff = p;
        // Fast path for one-byte codes, the common case; the slow path is bounds-checked by ByteReader.
        let code = bytes[p] ?? 0;
        if (code < 0x80) p += 1;
        else {
          const [c, n] = this.info.uleb128(p);
          code = c;
          p += n;
        }
        if (code === 0) {
          // Null entry ends a sibling list; units may be padded with extra nulls at depth 0.
          if (depth > 0) depth--;
          continue;
        }
        const ab = u.abbrevs[code];
        if (!ab) corrupt(this.info.what, `DIE at ${hex(dieOff)} uses abbreviation ${code}, which its unit's table lacks`);
        if (first) {
          // The unit's root DIE: read the bases later DIEs' strx forms depend on.
          p = this.readRoot(u, ab, p);
          first = false;
        } else if (NAMED_TYPE_TAGS.has(ab.tag)) {
          p = this.indexTypeDie(u, ab, p, dieOff, ab.tag === DW_TAG_structure_type ? structs : types);
        } else {
          p = this.skipAttrs(u, ab, p);
        }
        if (p > u.end) corrupt(this.info.what, `DIE at ${hex(dieOff)} runs past the end of its unit at ${hex(u.end)}`);
        if (ab.hasChildren && ++depth > MAX_DIE_DEPTH) corrupt(this.info.what, `DIEs nest more than ${MAX_DIE_DEPTH} deep at ${hex(dieOff)}`);
      }
    }
    this.structs = structs;
    this.types = types;
  }

  private readRoot(u: Unit, ab: Abbrev, p: number): number {
    const specs = ab.specs;
    for (let i = 0; i < specs.length; i += 2) {
      const attr = specs[i] ?? 0;
      p = this.readForm(u, specs[i + 1] ?? 0, ab.implicit[i >> 1] ?? 0, p, false);
      if (attr === DW_AT_str_offsets_base && this.v.kind === "const") u.strOffsetsBase = this.v.num;
    }
    return p;
  }

  /** Read a named type DIE's attributes and record its offset under its name. */
  private indexTypeDie(u: Unit, ab: Abbrev, p: number, dieOff: number, into: Map<string, number[]>): number {
    const specs = ab.specs;
    let name: string | undefined;
    let declaration = false;
    for (let i = 0; i < specs.length; i += 2) {
      const attr = specs[i] ?? 0;
      const form = specs[i + 1] ?? 0;
      if (attr === DW_AT_name) {
        p = this.readForm(u, form, ab.implicit[i >> 1] ?? 0, p, true);
        if (this.v.kind === "str") name = this.v.str;
      } else if (attr === DW_AT_declaration) {
        p = this.readForm(u, form, ab.implicit[i >> 1] ?? 0, p, false);
        declaration = this.v.kind === "flag" && this.v.num !== 0;
      } else {
        p = this.skipForm(u, form, p);
      }
    }
    // A declaration (C's `struct foo;`) has no members or size; the definition is elsewhere.
    if (name !== undefined && !declaration) {
      const list = into.get(name);
      if (list) list.push(dieOff);
      else into.set(name, [dieOff]);
    }
    return p;
  }

  /** DIE offsets of structs named typeName, following typedefs when no struct has the name itself. */
  private structOffsets(typeName: string): number[] {
    this.ensureIndex();
    const direct = this.structs?.get(typeName);
    if (direct) return direct;
    const out: number[] = [];
    for (const die of this.types?.get(typeName) ?? []) {
      const target = this.stripAliases(die);
      if (target !== undefined && this.tagAt(target) === DW_TAG_structure_type) out.push(target);
    }
    return out;
  }

  // ---- reading single DIEs on demand -------------------------------------------------------

  private unitOf(dieOff: number): Unit {
    const units = this.units;
    let lo = 0;
    let hi = units.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = units[mid];
      if (!u) break;
      if (dieOff < u.offset) hi = mid - 1;
      else if (dieOff >= u.end) lo = mid + 1;
      else {
        if (dieOff < u.dieStart) break;
        return u;
      }
    }
    corrupt(this.info.what, `reference to ${hex(dieOff)} does not point at a DIE inside any unit`);
  }

  /**
   * Read the DIE at `dieOff`: calls `visit(attr)` with this.v holding each attribute's value.
   * Returns the abbrev (undefined for a null entry); this.dieEnd is where its children start.
   */
  private readDie(dieOff: number, visit?: (attr: number) => void): Abbrev | undefined {
    const u = this.unitOf(dieOff);
    let p = dieOff;
    const [code, n] = this.info.uleb128(p);
    p += n;
    if (code === 0) {
      this.dieEnd = p;
      this.dieAbbrev = undefined;
      return undefined;
    }
    const ab = u.abbrevs[code];
    if (!ab) corrupt(this.info.what, `DIE at ${hex(dieOff)} uses abbreviation ${code}, which its unit's table lacks`);
    const specs = ab.specs;
    for (let i = 0; i < specs.length; i += 2) {
      p = this.readForm(u, specs[i + 1] ?? 0, ab.implicit[i >> 1] ?? 0, p, visit !== undefined);
      visit?.(specs[i] ?? 0);
    }
    if (p > u.end) corrupt(this.info.what, `DIE at ${hex(dieOff)} runs past the end of its unit`);
    this.dieEnd = p;
    this.dieAbbrev = ab;
    return ab;
  }

  private tagAt(dieOff: number): number | undefined {
    return this.readDie(dieOff)?.tag;
  }

  /** Follow typedef/const/volatile from `dieOff` to the underlying type DIE (undefined: void or unknown). */
  private stripAliases(dieOff: number): number | undefined {
    let cur: number | undefined = dieOff;
    const seen = new Set<number>();
    for (let hops = 0; cur !== undefined; hops++) {
      if (hops > MAX_TYPE_HOPS || seen.has(cur)) corrupt(this.info.what, `type references loop at ${hex(dieOff)}`);
      seen.add(cur);
      let next: number | undefined;
      const ab = this.readDie(cur, (attr) => {
        if (attr === DW_AT_type && this.v.kind === "ref") next = this.v.num;
      });
      if (!ab) corrupt(this.info.what, `type reference points at a null entry at ${hex(cur)}`);
      if (!ALIAS_TAGS.has(ab.tag)) return cur;
      cur = next;
    }
    return undefined;
  }

  private typeNameAt(dieOff: number): string | undefined {
    let name: string | undefined;
    this.readDie(dieOff, (attr) => {
      if (attr === DW_AT_name && this.v.kind === "str") name = this.v.str;
    });
    return name;
  }

  /** DW_AT_byte_size of the type at dieOff, through aliases; pointers without one take the unit's address size. */
  private sizeAt(dieOff: number): number | undefined {
    let cur: number | undefined = dieOff;
    const seen = new Set<number>();
    for (let hops = 0; cur !== undefined; hops++) {
      if (hops > MAX_TYPE_HOPS || seen.has(cur)) corrupt(this.info.what, `type references loop at ${hex(dieOff)}`);
      seen.add(cur);
      let size: number | undefined;
      let next: number | undefined;
      const ab = this.readDie(cur, (attr) => {
        if (attr === DW_AT_byte_size && this.v.kind === "const") size = this.v.num;
        else if (attr === DW_AT_type && this.v.kind === "ref") next = this.v.num;
      });
      if (!ab) corrupt(this.info.what, `type reference points at a null entry at ${hex(cur)}`);
      if (size !== undefined) {
        if (size < 0) corrupt(this.info.what, `type at ${hex(cur)} has negative size ${size}`);
        return size;
      }
      // Go's DWARF gives pointer types no byte_size (cmd/link/internal/ld/dwarf.go); they are address-sized.
      if (ab.tag === DW_TAG_pointer_type) return this.unitOf(cur).addrSize;
      if (!ALIAS_TAGS.has(ab.tag)) return undefined;
      cur = next;
    }
    return undefined;
  }

  /** Members of the struct at dieOff, by name (first one wins, as in Go's field lookup). Cached. */
  private members(dieOff: number): Map<string, RawMember> {
    const cached = this.memberCache.get(dieOff);
    if (cached) return cached;
    const out = new Map<string, RawMember>();
    const ab = this.readDie(dieOff);
    if (!ab) corrupt(this.info.what, `struct reference points at a null entry at ${hex(dieOff)}`);
    if (ab.hasChildren) {
      const u = this.unitOf(dieOff);
      let p = this.dieEnd;
      let depth = 1;
      // Each DIE read advances p by at least one byte and p stays below u.end, so this ends.
      while (depth > 0) {
        if (p >= u.end) corrupt(this.info.what, `struct at ${hex(dieOff)} has no end marker before its unit ends`);
        const childOff = p;
        let name: string | undefined;
        let offset: number | TracerError | undefined;
        let typeRef: number | undefined;
        const child = this.readDie(childOff, (attr) => {
          const v = this.v;
          if (attr === DW_AT_name && v.kind === "str") name = v.str;
          else if (attr === DW_AT_type && v.kind === "ref") typeRef = v.num;
          else if (attr === DW_AT_data_member_location) offset = this.memberLocation(childOff);
        });
        p = this.dieEnd;
        if (!child) {
          depth--;
          continue;
        }
        if (depth === 1 && child.tag === DW_TAG_member && name !== undefined && !out.has(name)) {
          // A member without a location is at offset 0 (DWARF 5 §5.7.6: union members; Go always emits it).
          out.set(name, { offset: offset ?? 0, typeRef });
        }
        if (child.hasChildren && ++depth > MAX_DIE_DEPTH) corrupt(this.info.what, `DIEs nest more than ${MAX_DIE_DEPTH} deep at ${hex(childOff)}`);
      }
    }
    this.memberCache.set(dieOff, out);
    return out;
  }

  /** Interpret this.v as DW_AT_data_member_location: a constant, or (DWARF 2 style) a tiny expression. */
  private memberLocation(dieOff: number): number | TracerError {
    const v = this.v;
    if (v.kind === "const") {
      // Kept per member, not thrown: one bad member must not hide its struct's good ones.
      if (v.num < 0) {
        return new TracerError("corrupt_binary", `${this.info.what} is corrupt: member at ${hex(dieOff)} has negative offset ${v.num}`, { hint: DAMAGED_HINT });
      }
      return v.num;
    }
    if (v.kind === "block") {
      const r = this.info;
      let p = v.blockStart;
      const op = r.u8(p);
      p++;
      let value: number | undefined;
      if (op === DW_OP_plus_uconst || op === DW_OP_constu) {
        const [n, len] = r.uleb128(p);
        p += len;
        value = n;
      } else if (op >= DW_OP_lit0 && op <= DW_OP_lit31) {
        value = op - DW_OP_lit0;
      }
      if (value !== undefined && p === v.blockEnd) return value;
      if (p > v.blockEnd) corrupt(r.what, `location expression of member at ${hex(dieOff)} runs past its block`);
      return new TracerError("offset_unknown", `${this.what}: member at DIE ${hex(dieOff)} has a location expression beginning with opcode ${hex(op)} that is not a plain offset`, {
        hint: "only DW_OP_plus_uconst / DW_OP_constu member locations are understood; use the offsets table for this field",
      });
    }
    return new TracerError("offset_unknown", `${this.what}: member at DIE ${hex(dieOff)} has a data_member_location of an unsupported form`, {
      hint: "use the offsets table for this field",
    });
  }

  // ---- attribute forms ----------------------------------------------------------------------

  /** Position after the attributes of a DIE whose code has been read; values are not decoded. */
  private skipAttrs(u: Unit, ab: Abbrev, p: number): number {
    const shape = unitShape(u);
    if (ab.fixedSize >= 0 && ab.fixedShape === shape) {
      this.info.check(p, ab.fixedSize);
      return p + ab.fixedSize;
    }
    const specs = ab.specs;
    let fixed = true;
    const start = p;
    for (let i = 1; i < specs.length; i += 2) {
      const form = specs[i] ?? 0;
      const size = fixedFormSize(form, u);
      if (size >= 0) {
        this.info.check(p, size);
        p += size;
      } else {
        fixed = false;
        p = this.skipForm(u, form, p);
      }
    }
    // Remember all-fixed layouts; they depend only on the unit's shape, which is the same across a binary's units.
    if (fixed && !ab.indirect) {
      ab.fixedSize = p - start;
      ab.fixedShape = shape;
    }
    return p;
  }

  private skipForm(u: Unit, form: number, p: number): number {
    const size = fixedFormSize(form, u);
    if (size >= 0) {
      this.info.check(p, size);
      return p + size;
    }
    const r = this.info;
    const bytes = r.bytes;
    switch (form) {
      case DW_FORM_string: {
        const nul = bytes.indexOf(0, p);
        if (nul < 0) corrupt(r.what, `unterminated string at ${hex(p)}`);
        return nul + 1;
      }
      case DW_FORM_sdata:
        return p + r.sleb128(p)[1];
      case DW_FORM_udata:
      case DW_FORM_ref_udata:
      case DW_FORM_strx:
      case DW_FORM_addrx:
      case DW_FORM_loclistx:
      case DW_FORM_rnglistx:
      case DW_FORM_GNU_addr_index:
      case DW_FORM_GNU_str_index: {
        const b = bytes[p];
        if (b !== undefined && b < 0x80) return p + 1;
        return p + r.uleb128(p)[1];
      }
      case DW_FORM_block1:
        return this.skipBlock(p + 1, r.u8(p));
      case DW_FORM_block2:
        return this.skipBlock(p + 2, r.u16(p));
      case DW_FORM_block4:
        return this.skipBlock(p + 4, r.u32(p));
      case DW_FORM_block:
      case DW_FORM_exprloc: {
        const [len, n] = r.uleb128(p);
        return this.skipBlock(p + n, len);
      }
      case DW_FORM_indirect: {
        const [real, n] = r.uleb128(p);
        if (real === DW_FORM_indirect || real === DW_FORM_implicit_const || !knownForm(real)) corrupt(r.what, `bad indirect form ${hex(real)} at ${hex(p)}`);
        return this.skipForm(u, real, p + n);
      }
      default:
        corrupt(r.what, `unknown attribute form ${hex(form)} at ${hex(p)}`);
    }
  }

  private skipBlock(start: number, len: number): number {
    this.info.check(start, len);
    return start + len;
  }

  /** Decode one attribute value into this.v; returns the position after it. Strings are decoded only if wantString. */
  private readForm(u: Unit, form: number, implicitConst: number, p: number, wantString: boolean): number {
    const r = this.info;
    const v = this.v;
    v.kind = "other";
    switch (form) {
      case DW_FORM_data1:
        v.kind = "const";
        v.num = r.u8(p);
        return p + 1;
      case DW_FORM_data2:
        v.kind = "const";
        v.num = r.u16(p);
        return p + 2;
      case DW_FORM_data4:
        v.kind = "const";
        v.num = r.u32(p);
        return p + 4;
      case DW_FORM_data8:
        v.kind = "const";
        v.num = r.u64(p);
        return p + 8;
      case DW_FORM_udata: {
        const [n, len] = r.uleb128(p);
        v.kind = "const";
        v.num = n;
        return p + len;
      }
      case DW_FORM_sdata: {
        const [n, len] = r.sleb128(p);
        v.kind = "const";
        v.num = n;
        return p + len;
      }
      case DW_FORM_implicit_const:
        v.kind = "const";
        v.num = implicitConst;
        return p;
      case DW_FORM_flag:
        v.kind = "flag";
        v.num = r.u8(p) !== 0 ? 1 : 0;
        return p + 1;
      case DW_FORM_flag_present:
        v.kind = "flag";
        v.num = 1;
        return p;
      case DW_FORM_sec_offset:
        v.kind = "const";
        v.num = this.offsetAt(u, p);
        return p + u.offsetSize;
      case DW_FORM_ref1:
        return this.unitRef(u, r.u8(p), p + 1);
      case DW_FORM_ref2:
        return this.unitRef(u, r.u16(p), p + 2);
      case DW_FORM_ref4:
        return this.unitRef(u, r.u32(p), p + 4);
      case DW_FORM_ref8:
        return this.unitRef(u, r.u64(p), p + 8);
      case DW_FORM_ref_udata: {
        const [n, len] = r.uleb128(p);
        return this.unitRef(u, n, p + len);
      }
      case DW_FORM_ref_addr: {
        // DWARF 2 sized ref_addr like an address; DWARF 3+ like a section offset (DWARF 5 §7.5.5).
        const size = u.version <= 2 ? u.addrSize : u.offsetSize;
        v.kind = "ref";
        v.num = size === 8 ? r.u64(p) : r.u32(p);
        return p + size;
      }
      case DW_FORM_string: {
        const nul = r.bytes.indexOf(0, p);
        if (nul < 0) corrupt(r.what, `unterminated string at ${hex(p)}`);
        if (wantString) {
          v.kind = "str";
          v.str = decodeUtf8(r.bytes.subarray(p, nul));
        }
        return nul + 1;
      }
      case DW_FORM_strp:
        if (wantString) this.setString(this.strR, ".debug_str", this.offsetAt(u, p));
        else r.check(p, u.offsetSize);
        return p + u.offsetSize;
      case DW_FORM_line_strp:
        if (wantString) this.setString(this.lineStrR, ".debug_line_str", this.offsetAt(u, p));
        else r.check(p, u.offsetSize);
        return p + u.offsetSize;
      case DW_FORM_strx:
      case DW_FORM_GNU_str_index: {
        const [n, len] = r.uleb128(p);
        if (wantString) this.setStrx(u, n);
        return p + len;
      }
      case DW_FORM_strx1:
        if (wantString) this.setStrx(u, r.u8(p));
        else r.check(p, 1);
        return p + 1;
      case DW_FORM_strx2:
        if (wantString) this.setStrx(u, r.u16(p));
        else r.check(p, 2);
        return p + 2;
      case DW_FORM_strx3:
        if (wantString) this.setStrx(u, r.u16(p) + r.u8(p + 2) * 0x10000);
        else r.check(p, 3);
        return p + 3;
      case DW_FORM_strx4:
        if (wantString) this.setStrx(u, r.u32(p));
        else r.check(p, 4);
        return p + 4;
      case DW_FORM_block1:
        return this.setBlock(p + 1, r.u8(p));
      case DW_FORM_block2:
        return this.setBlock(p + 2, r.u16(p));
      case DW_FORM_block4:
        return this.setBlock(p + 4, r.u32(p));
      case DW_FORM_block:
      case DW_FORM_exprloc: {
        const [len, n] = r.uleb128(p);
        return this.setBlock(p + n, len);
      }
      case DW_FORM_indirect: {
        const [real, n] = r.uleb128(p);
        if (real === DW_FORM_indirect || real === DW_FORM_implicit_const || !knownForm(real)) corrupt(r.what, `bad indirect form ${hex(real)} at ${hex(p)}`);
        return this.readForm(u, real, 0, p + n, wantString);
      }
      default:
        // Addresses, index forms, 16-byte data, type signatures, supplementary-file references:
        // nothing we need from them, so skip (v.kind stays "other").
        return this.skipForm(u, form, p);
    }
  }

  private offsetAt(u: Unit, p: number): number {
    return u.offsetSize === 8 ? this.info.u64(p) : this.info.u32(p);
  }

  private unitRef(u: Unit, rel: number, next: number): number {
    const v = this.v;
    v.kind = "ref";
    v.num = u.offset + rel;
    if (v.num >= u.end) corrupt(this.info.what, `reference ${hex(rel)} at ${hex(next)} points past the end of its unit`);
    return next;
  }

  private setBlock(start: number, len: number): number {
    this.info.check(start, len);
    const v = this.v;
    v.kind = "block";
    v.blockStart = start;
    v.blockEnd = start + len;
    return start + len;
  }

  private setString(r: ByteReader | undefined, section: string, off: number): void {
    if (!r) corrupt(this.info.what, `a string refers to ${section}, which the file lacks`);
    this.v.kind = "str";
    this.v.str = r.cstring(off);
  }

  private setStrx(u: Unit, index: number): void {
    const r = this.strOffR;
    if (!r) corrupt(this.info.what, "a string index refers to .debug_str_offsets, which the file lacks");
    // DWARF 5 §7.26: without DW_AT_str_offsets_base, the table starts after the 8- (or 16-) byte section header.
    const base = u.strOffsetsBase ?? (u.offsetSize === 8 ? 16 : 8);
    const at = base + index * u.offsetSize;
    this.setString(this.strR, ".debug_str", u.offsetSize === 8 ? r.u64(at) : r.u32(at));
  }
}

/** What fixed form sizes depend on: offset size, address size, and whether ref_addr is address-sized (DWARF 2). */
function unitShape(u: Unit): number {
  return u.offsetSize * 100 + u.addrSize * 10 + (u.version <= 2 ? 1 : 0);
}

/** Bytes a fixed-size form occupies in `u`, or -1 for variable-size forms. */
function fixedFormSize(form: number, u: Unit): number {
  switch (form) {
    case DW_FORM_flag_present:
    case DW_FORM_implicit_const:
      return 0;
    case DW_FORM_data1:
    case DW_FORM_ref1:
    case DW_FORM_flag:
    case DW_FORM_strx1:
    case DW_FORM_addrx1:
      return 1;
    case DW_FORM_data2:
    case DW_FORM_ref2:
    case DW_FORM_strx2:
    case DW_FORM_addrx2:
      return 2;
    case DW_FORM_strx3:
    case DW_FORM_addrx3:
      return 3;
    case DW_FORM_data4:
    case DW_FORM_ref4:
    case DW_FORM_ref_sup4:
    case DW_FORM_strx4:
    case DW_FORM_addrx4:
      return 4;
    case DW_FORM_data8:
    case DW_FORM_ref8:
    case DW_FORM_ref_sig8:
    case DW_FORM_ref_sup8:
      return 8;
    case DW_FORM_data16:
      return 16;
    case DW_FORM_addr:
      return u.addrSize;
    case DW_FORM_ref_addr:
      return u.version <= 2 ? u.addrSize : u.offsetSize;
    case DW_FORM_strp:
    case DW_FORM_line_strp:
    case DW_FORM_sec_offset:
    case DW_FORM_strp_sup:
    case DW_FORM_GNU_ref_alt:
    case DW_FORM_GNU_strp_alt:
      return u.offsetSize;
    default:
      return -1;
  }
}

function knownForm(form: number): boolean {
  return (form >= DW_FORM_addr && form <= DW_FORM_addrx4 && form !== 0x02) || (form >= DW_FORM_GNU_addr_index && form <= DW_FORM_GNU_str_index) || form === DW_FORM_GNU_ref_alt || form === DW_FORM_GNU_strp_alt;
}
