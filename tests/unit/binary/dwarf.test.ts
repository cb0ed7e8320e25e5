/** @module tests/unit/binary/dwarf — GoDwarf against reflect in real Go binaries, hand-built DWARF, and damaged input. */
import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { TracerError } from "../../../src/errors.ts";
import { GoDwarf, loadDebugSections, type DebugSections } from "../../../src/binary/dwarf.ts";
import { MAX_DEBUG_SECTION_BYTES, sectionContents } from "../../../src/binary/dwarf-sections.ts";
import { ElfFile, SHF_COMPRESSED } from "../../../src/binary/elf.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CACHE = join(ROOT, ".cache", "dwarf-test");
/** The oldest toolchain we support; it emits DWARF 4 (Go switched to DWARF 5 in 1.25). */
const OLD_TOOLCHAIN = "go1.21.13";

const haveGo = spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
const haveObjcopy = spawnSync("objcopy", ["--version"], { stdio: "ignore" }).status === 0;

// ---- the oracle: a Go program that prints what reflect knows about some struct layouts ----------

const ORACLE_SRC = `// Prints, as JSON, the layout reflect sees for some net/http and net/url structs, so the test
// can compare it with what beetrace reads from this same binary's DWARF.
package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
)

type field struct {
	Name     string  \`json:"name"\`
	Found    bool    \`json:"found"\`
	Offset   uintptr \`json:"offset"\`
	Size     uintptr \`json:"size"\`
	TypeName string  \`json:"typeName"\`
}

type layout struct {
	Type   string  \`json:"type"\`
	Size   uintptr \`json:"size"\`
	Fields []field \`json:"fields"\`
}

// dwarfName is the name Go's linker gives t in DWARF: package path + "." + name for named types,
// the bare name for predeclared ones, "*" + that for pointers; "" where we make no prediction.
func dwarfName(t reflect.Type) string {
	if t.Name() != "" {
		if t.PkgPath() != "" {
			return t.PkgPath() + "." + t.Name()
		}
		return t.Name()
	}
	if t.Kind() == reflect.Pointer {
		if n := dwarfName(t.Elem()); n != "" {
			return "*" + n
		}
	}
	return ""
}

func describe(t reflect.Type, probe ...string) layout {
	l := layout{Type: dwarfName(t), Size: t.Size()}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		l.Fields = append(l.Fields, field{Name: sf.Name, Found: true, Offset: sf.Offset, Size: sf.Type.Size(), TypeName: dwarfName(sf.Type)})
	}
	// Names that may be missing in this Go version (Request.Pattern is Go 1.22+) or anywhere.
	for _, name := range probe {
		if sf, ok := t.FieldByName(name); !ok || len(sf.Index) != 1 {
			l.Fields = append(l.Fields, field{Name: name})
		}
	}
	return l
}

func main() {
	var responseType reflect.Type
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		responseType = reflect.TypeOf(w).Elem() // net/http.response, unexported
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	srv.Close()

	out := []layout{
		describe(reflect.TypeOf(http.Request{}), "Pattern", "NoSuchField"),
		describe(reflect.TypeOf(url.URL{}), "OmitHost", "RawFragment"),
		describe(reflect.TypeOf(url.Userinfo{})),
		describe(reflect.TypeOf(http.Response{})),
		describe(responseType, "status"),
		describe(reflect.TypeOf(http.Server{})),
		describe(reflect.TypeOf(http.Client{})),
		describe(reflect.TypeOf(tls.ConnectionState{})),
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
`;

interface OracleField {
  name: string;
  found: boolean;
  offset: number;
  size: number;
  typeName: string;
}
interface OracleLayout {
  type: string;
  size: number;
  fields: OracleField[];
}

let localGoVersion = "";

/** Build the oracle with `toolchain` ("local" = the machine's go) and ldflags; cached under .cache/. */
function buildOracle(toolchain: string, ldflags: string): string {
  localGoVersion ||= execFileSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).trim();
  const key = createHash("sha256").update(JSON.stringify([ORACLE_SRC, toolchain, ldflags, localGoVersion])).digest("hex").slice(0, 16);
  const dir = join(CACHE, `${toolchain}-${key}`);
  const bin = join(dir, "oracle");
  if (existsSync(bin)) return bin;
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, "main.go"), ORACLE_SRC);
    writeFileSync(join(tmp, "go.mod"), "module example.com/dwarforacle\n\ngo 1.21\n");
    const args = ["build", "-o", "oracle"];
    if (ldflags) args.push(`-ldflags=${ldflags}`);
    args.push(".");
    const r = spawnSync("go", args, {
      cwd: tmp,
      encoding: "utf8",
      env: { ...process.env, GOTOOLCHAIN: toolchain, GOFLAGS: "-buildvcs=false", CGO_ENABLED: "0" },
    });
    if (r.status !== 0) throw new Error(`GOTOOLCHAIN=${toolchain} go ${args.join(" ")} failed: ${r.error?.message ?? r.stderr}`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // A concurrent run finished the same build first; its binary is identical.
      if (!existsSync(bin)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

function runOracle(bin: string): OracleLayout[] {
  return JSON.parse(execFileSync(bin, { encoding: "utf8", timeout: 60_000 })) as OracleLayout[];
}

function openDwarf(bin: string): { elf: ElfFile; dwarf: GoDwarf } {
  const elf = ElfFile.parse(readFileSync(bin), bin);
  const dwarf = GoDwarf.open(elf);
  if (!dwarf) throw new Error(`${bin} has no DWARF`);
  return { elf, dwarf };
}

/** Compare every oracle field with GoDwarf; returns how many fields were checked. */
function expectAgreement(dwarf: GoDwarf, layouts: OracleLayout[]): number {
  let checked = 0;
  const mismatches: string[] = [];
  for (const l of layouts) {
    if (dwarf.typeSize(l.type) !== l.size) mismatches.push(`${l.type}: size ${dwarf.typeSize(l.type)} != reflect ${l.size}`);
    for (const f of l.fields) {
      const got = dwarf.fieldOffset(l.type, f.name);
      checked++;
      if (!f.found) {
        if (got !== undefined) mismatches.push(`${l.type}.${f.name}: DWARF has it at ${got.offset}, reflect has no such field`);
        continue;
      }
      if (!got) {
        mismatches.push(`${l.type}.${f.name}: missing from DWARF`);
        continue;
      }
      if (got.offset !== f.offset) mismatches.push(`${l.type}.${f.name}: offset ${got.offset} != reflect ${f.offset}`);
      if (got.size !== f.size) mismatches.push(`${l.type}.${f.name}: size ${got.size} != reflect ${f.size}`);
      if (f.typeName && got.typeName !== f.typeName) mismatches.push(`${l.type}.${f.name}: type ${got.typeName} != reflect ${f.typeName}`);
      // resolve() is the same lookup through a dotted path.
      if (dwarf.resolve(`${l.type}.${f.name}`)?.offset !== f.offset) mismatches.push(`resolve(${l.type}.${f.name}) disagrees`);
    }
  }
  expect(mismatches).toEqual([]);
  return checked;
}

/** DWARF version of the first unit (bytes 4–5 of a 32-bit unit header). */
function firstUnitVersion(s: DebugSections): number {
  return new DataView(s.info.buffer, s.info.byteOffset, s.info.byteLength).getUint16(4, true);
}

describe.skipIf(!haveGo)("GoDwarf on real Go binaries (needs the go command)", () => {
  const bins: Record<string, string> = {};
  beforeAll(() => {
    bins.current = buildOracle("local", "");
    bins.uncompressed = buildOracle("local", "-compressdwarf=false");
    bins.noDwarf = buildOracle("local", "-w");
    bins.old = buildOracle(OLD_TOOLCHAIN, "");
  }, 600_000); // cold builds (and a first toolchain download) take minutes on a small machine

  test("current Go (DWARF 5, compressed sections): 100% agreement with reflect", () => {
    const { elf, dwarf } = openDwarf(bins.current!);
    expect((elf.section(".debug_info")!.flags & SHF_COMPRESSED) !== 0).toBe(true);
    expect(firstUnitVersion(dwarf.sections)).toBe(5);
    const layouts = runOracle(bins.current!);
    expect(expectAgreement(dwarf, layouts)).toBeGreaterThan(100);
    // The fields the tracer's probes need, named so a regression names them.
    expect(dwarf.resolve("net/http.Request.Method")).toEqual({ offset: 0, size: 16, typeName: "string" });
    expect(dwarf.resolve("net/http.response.status")?.typeName).toBe("int");
    expect(dwarf.resolve("net/http.Request.Pattern")?.typeName).toBe("string");
    expect(dwarf.resolve("net/http.Request.ctx")?.typeName).toBe("context.Context");
  });

  test(`${OLD_TOOLCHAIN} (DWARF 4): 100% agreement with reflect, and no Request.Pattern`, () => {
    const { dwarf } = openDwarf(bins.old!);
    expect(firstUnitVersion(dwarf.sections)).toBe(4);
    const layouts = runOracle(bins.old!);
    expect(expectAgreement(dwarf, layouts)).toBeGreaterThan(100);
    expect(dwarf.fieldOffset("net/http.Request", "Pattern")).toBeUndefined();
  });

  test("-ldflags=-compressdwarf=false gives the same answers from uncompressed sections", () => {
    const { elf, dwarf } = openDwarf(bins.uncompressed!);
    expect(elf.section(".debug_info")!.flags & SHF_COMPRESSED).toBe(0);
    expectAgreement(dwarf, runOracle(bins.uncompressed!));
  });

  test("-ldflags=-w (no DWARF) opens as undefined, not an error", () => {
    const elf = ElfFile.parse(readFileSync(bins.noDwarf!), bins.noDwarf!);
    expect(GoDwarf.open(elf)).toBeUndefined();
    expect(loadDebugSections(elf)).toBeUndefined();
  });

  test("type sizes through typedefs and pointers; absent names are undefined", () => {
    const { dwarf } = openDwarf(bins.current!);
    expect(dwarf.typeSize("string")).toBe(16);
    expect(dwarf.typeSize("int")).toBe(8);
    expect(dwarf.typeSize("*net/url.URL")).toBe(8);
    expect(dwarf.typeSize("net/http.Header")).toBe(8); // map → pointer-sized
    expect(dwarf.typeSize("no/such.Type")).toBeUndefined();
    expect(dwarf.fieldOffset("no/such.Type", "X")).toBeUndefined();
    expect(dwarf.fieldOffset("net/url.URL", "NoSuchField")).toBeUndefined();
    expect(dwarf.fieldNames("net/url.URL")?.slice(0, 3)).toEqual(["Scheme", "Opaque", "User"]);
    expect(() => dwarf.resolve("Request")).toThrow(TracerError);
    expect(() => dwarf.resolve("net/http.Request.")).toThrow(TracerError);
  });

  test.skipIf(!haveObjcopy)("GNU .zdebug_* sections (objcopy zlib-gnu) and zstd SHF_COMPRESSED sections", () => {
    const layouts = runOracle(bins.uncompressed!);
    for (const kind of ["zlib-gnu", "zstd"]) {
      const out = join(CACHE, `oracle-${kind}-${createHash("sha256").update(bins.uncompressed!).digest("hex").slice(0, 8)}`);
      if (!existsSync(out)) execFileSync("objcopy", [`--compress-debug-sections=${kind}`, bins.uncompressed!, out]);
      const elf = ElfFile.parse(readFileSync(out), out);
      if (kind === "zlib-gnu") expect(elf.section(".zdebug_info")).toBeDefined();
      else {
        const raw = elf.sectionBytes(elf.section(".debug_info")!);
        expect(new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true)).toBe(2); // ch_type ELFCOMPRESS_ZSTD
      }
      const dwarf = GoDwarf.open(elf)!;
      expectAgreement(dwarf, layouts);
    }
  });

  test("damaged compression headers and streams give corrupt_binary", () => {
    const bytes = readFileSync(bins.current!);
    const sec = ElfFile.parse(bytes, "x").section(".debug_info")!;
    const cases: Array<[string, (b: Buffer) => void]> = [
      ["absurd ch_size", (b) => b.writeBigUInt64LE(1n << 40n, sec.offset + 8)],
      ["ch_size larger than zlib can expand to", (b) => b.writeBigUInt64LE(BigInt(sec.size * 2000), sec.offset + 8)],
      ["ch_size one byte short", (b) => b.writeBigUInt64LE(b.readBigUInt64LE(sec.offset + 8) - 1n, sec.offset + 8)],
      ["ch_size one byte long", (b) => b.writeBigUInt64LE(b.readBigUInt64LE(sec.offset + 8) + 1n, sec.offset + 8)],
      ["unknown ch_type", (b) => b.writeUInt32LE(7, sec.offset)],
      ["zlib header damaged", (b) => b.writeUInt16LE(0xffff, sec.offset + 24)],
      ["zlib stream damaged", (b) => b.fill(0xa5, sec.offset + 200, sec.offset + 260)],
    ];
    for (const [name, damage] of cases) {
      const copy = Buffer.from(bytes);
      damage(copy);
      let err: unknown;
      try {
        GoDwarf.open(ElfFile.parse(copy, name));
      } catch (e) {
        err = e;
      }
      expect({ name, err: err instanceof TracerError ? err.code : String(err) }).toEqual({ name, err: "corrupt_binary" });
    }
  });

  test("truncated and mutated .debug_info/.debug_abbrev give only TracerErrors", () => {
    const { dwarf } = openDwarf(bins.current!);
    const good = dwarf.sections;
    const paths = ["net/http.Request.Method", "net/http.Request.URL", "net/url.URL.Host", "net/http.response.status", "runtime.g.goid"];
    const codes = new Map<string, number>();
    const run = (s: DebugSections): void => {
      let code = "ok";
      try {
        const d = new GoDwarf(s, "damaged");
        for (const p of paths) d.resolve(p);
        d.typeSize("net/http.Request");
        d.typeSize("*net/url.URL");
      } catch (e) {
        if (!(e instanceof TracerError)) throw e;
        code = e.code;
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
    };
    for (let i = 1; i <= 24; i++) {
      const cut = Math.floor((good.info.length * i) / 25) + (i % 7);
      run({ ...good, info: good.info.subarray(0, cut) });
      run({ ...good, abbrev: good.abbrev.subarray(0, Math.floor((good.abbrev.length * i) / 25)) });
    }
    // Mutations aimed at the type DIEs the lookups read (around "net/http.Request\0"), and anywhere.
    const target = Buffer.from(good.info).indexOf(Buffer.from("net/http.Request\0"));
    expect(target).toBeGreaterThan(0);
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let i = 0; i < 120; i++) {
      const info = new Uint8Array(good.info);
      const abbrev = new Uint8Array(good.abbrev);
      for (let k = 0; k < 1 + rand(4); k++) {
        if (i % 5 === 4) abbrev[rand(abbrev.length)] = rand(256);
        else if (i % 2 === 0) info[Math.min(info.length - 1, target - 64 + rand(4096))] = rand(256);
        else info[rand(info.length)] = rand(256);
      }
      run({ ...good, info, abbrev });
    }
    const seen = [...codes.keys()].sort();
    expect(seen.every((c) => c === "ok" || c === "corrupt_binary" || c === "offset_unknown")).toBe(true);
    expect(codes.get("corrupt_binary") ?? 0).toBeGreaterThan(20);
  }, 120_000);

  test("truncated files give TracerErrors", () => {
    const bytes = readFileSync(bins.current!);
    const sec = ElfFile.parse(bytes, "x").section(".debug_info")!;
    for (const cut of [sec.offset + 10, sec.offset + 100, sec.offset + Math.floor(sec.size / 2)]) {
      // Section headers sit at the end of a Go binary, so cut out the middle instead of the tail.
      const copy = Buffer.concat([bytes.subarray(0, cut), Buffer.alloc(sec.offset + sec.size - cut), bytes.subarray(sec.offset + sec.size)]);
      let code = "ok";
      try {
        GoDwarf.open(ElfFile.parse(copy, "cut"))?.resolve("net/http.Request.Method");
      } catch (e) {
        if (!(e instanceof TracerError)) throw e;
        code = e.code;
      }
      expect(code).toBe("corrupt_binary");
    }
    expect(() => ElfFile.parse(bytes.subarray(0, bytes.length - 100), "short")).toThrow(TracerError);
  });
});

// ---- decompression without a Go toolchain -------------------------------------------------------

describe("sectionContents", () => {
  const payload = new TextEncoder().encode("debug info ".repeat(500));
  const chdr = (type: number, size: number): Buffer => {
    const h = Buffer.alloc(24);
    h.writeUInt32LE(type, 0);
    h.writeBigUInt64LE(BigInt(size), 8);
    h.writeBigUInt64LE(1n, 16);
    return h;
  };

  test("SHF_COMPRESSED zlib and zstd, .zdebug, and plain sections", () => {
    const z = zlib.deflateSync(payload);
    expect(sectionContents(Buffer.concat([chdr(1, payload.length), z]), { name: ".debug_info", flags: SHF_COMPRESSED }, "t")).toEqual(Buffer.from(payload));
    const zstd = (zlib as unknown as { zstdCompressSync?: (b: Uint8Array) => Buffer }).zstdCompressSync;
    if (zstd) {
      expect(sectionContents(Buffer.concat([chdr(2, payload.length), zstd(payload)]), { name: ".debug_info", flags: SHF_COMPRESSED }, "t")).toEqual(Buffer.from(payload));
    }
    const gnu = Buffer.alloc(12);
    gnu.write("ZLIB", 0, "latin1");
    gnu.writeBigUInt64BE(BigInt(payload.length), 4);
    expect(sectionContents(Buffer.concat([gnu, z]), { name: ".zdebug_info", flags: 0 }, "t")).toEqual(Buffer.from(payload));
    expect(sectionContents(payload, { name: ".debug_info", flags: 0 }, "t")).toBe(payload);
  });

  test("bad headers, sizes and streams are corrupt_binary", () => {
    const z = zlib.deflateSync(payload);
    const bad: Array<[string, Uint8Array, number]> = [
      ["short header", new Uint8Array(10), SHF_COMPRESSED],
      ["too big", Buffer.concat([chdr(1, MAX_DEBUG_SECTION_BYTES + 1), z]), SHF_COMPRESSED],
      ["size mismatch", Buffer.concat([chdr(1, payload.length + 5), z]), SHF_COMPRESSED],
      ["truncated stream", Buffer.concat([chdr(1, payload.length), z.subarray(0, z.length - 4)]), SHF_COMPRESSED],
      ["zdebug magic", Buffer.concat([Buffer.from("ZLIX\0\0\0\0\0\0\0\x10", "latin1"), z]), 0],
    ];
    for (const [name, raw, flags] of bad) {
      let code = "ok";
      try {
        sectionContents(raw, { name: name === "zdebug magic" ? ".zdebug_info" : ".debug_info", flags }, name);
      } catch (e) {
        code = e instanceof TracerError ? e.code : String(e);
      }
      expect({ name, code }).toEqual({ name, code: "corrupt_binary" });
    }
  });
});

// ---- hand-assembled DWARF: forms Go does not emit ----------------------------------------------

/** A byte buffer with labels and forward references, enough to assemble small DWARF sections. */
class Asm {
  bytes: number[] = [];
  labels = new Map<string, number>();
  fixups: Array<{ at: number; size: number; label: string; base: number }> = [];
  get pos(): number {
    return this.bytes.length;
  }
  u8(...v: number[]): this {
    for (const b of v) this.bytes.push(b & 0xff);
    return this;
  }
  uint(v: number | bigint, size: number): this {
    let x = BigInt(v);
    for (let i = 0; i < size; i++, x >>= 8n) this.bytes.push(Number(x & 0xffn));
    return this;
  }
  uleb(v: number): this {
    do {
      const b = v % 128;
      v = Math.floor(v / 128);
      this.bytes.push(v ? b | 0x80 : b);
    } while (v);
    return this;
  }
  sleb(v: number): this {
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) return this.u8(b);
      this.u8(b | 0x80);
    }
  }
  str(s: string): this {
    for (const c of new TextEncoder().encode(s)) this.bytes.push(c);
    return this.u8(0);
  }
  label(name: string): this {
    this.labels.set(name, this.pos);
    return this;
  }
  /** A size-byte reference to `label`, minus `base` (a unit's offset for CU-relative forms). */
  ref(label: string, size: number, base = 0): this {
    this.fixups.push({ at: this.pos, size, label, base });
    return this.uint(0, size);
  }
  done(): Uint8Array {
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`no label ${f.label}`);
      let x = BigInt(target - f.base);
      for (let i = 0; i < f.size; i++, x >>= 8n) this.bytes[f.at + i] = Number(x & 0xffn);
    }
    return Uint8Array.from(this.bytes);
  }
}

// Numeric DWARF constants (DWARF 5 Tables 7.3, 7.5, 7.6, 7.9) for the hand-built sections.
const TAG = { compile_unit: 0x11, structure_type: 0x13, member: 0x0d, base_type: 0x24, typedef: 0x16, pointer_type: 0x0f, subprogram: 0x2e };
const AT = { name: 0x03, byte_size: 0x0b, data_member_location: 0x38, type: 0x49, str_offsets_base: 0x72, producer: 0x25, low_pc: 0x11, high_pc: 0x12, frame_base: 0x40, declaration: 0x3c };
const FORM = {
  addr: 0x01, block2: 0x03, data1: 0x0b, data2: 0x05, data16: 0x1e, string: 0x08, strx1: 0x25, strx2: 0x26, line_strp: 0x1f, udata: 0x0f, sdata: 0x0d,
  ref_addr: 0x10, ref4: 0x13, ref8: 0x14, ref_udata: 0x15, indirect: 0x16, sec_offset: 0x17, exprloc: 0x18, flag_present: 0x19, implicit_const: 0x21,
  addrx: 0x1b, block1: 0x0a, data8: 0x07,
};
const DW_OP_plus_uconst = 0x23;
const DW_OP_fbreg = 0x91;

/** Abbrev table: [code, tag, children, [attr, form, implicit?][]] */
function abbrevs(entries: Array<[number, number, boolean, Array<[number, number, number?]>]>): Uint8Array {
  const a = new Asm();
  for (const [code, tag, children, specs] of entries) {
    a.uleb(code).uleb(tag).u8(children ? 1 : 0);
    for (const [attr, form, implicit] of specs) {
      a.uleb(attr).uleb(form);
      if (form === FORM.implicit_const) a.sleb(implicit ?? 0);
    }
    a.u8(0, 0);
  }
  return a.u8(0).done();
}

describe("GoDwarf on hand-assembled DWARF", () => {
  test("DWARF 5, 64-bit format: strx, line_strp, implicit_const, exprloc, indirect, data16, CU-relative refs", () => {
    const abbrev = abbrevs([
      [1, TAG.compile_unit, true, [[AT.str_offsets_base, FORM.sec_offset], [AT.producer, FORM.data16]]],
      [2, TAG.structure_type, true, [[AT.name, FORM.strx1], [AT.byte_size, FORM.implicit_const, 24]]],
      [3, TAG.member, false, [[AT.name, FORM.strx1], [AT.data_member_location, FORM.exprloc], [AT.type, FORM.ref_addr]]],
      [4, TAG.member, false, [[AT.name, FORM.line_strp], [AT.data_member_location, FORM.implicit_const, 16], [AT.type, FORM.ref4]]],
      [5, TAG.base_type, false, [[AT.name, FORM.string], [AT.byte_size, FORM.data1]]],
      [6, TAG.typedef, false, [[AT.name, FORM.strx2], [AT.type, FORM.ref_udata]]],
      [7, TAG.member, false, [[AT.name, FORM.string], [AT.data_member_location, FORM.indirect], [AT.type, FORM.ref8]]],
      [8, TAG.pointer_type, false, [[AT.name, FORM.string], [AT.type, FORM.ref_addr]]],
      [9, TAG.subprogram, true, [[AT.name, FORM.string], [AT.low_pc, FORM.addrx], [AT.high_pc, FORM.data8], [AT.frame_base, FORM.exprloc], [0x2200, FORM.block2]]],
    ]);
    const str = new Asm().str("").label("S").str("main.S").label("a").str("a").label("T").str("main.T").done();
    const lineStr = new Asm().str("").str("b").done();
    // .debug_str_offsets, 64-bit DWARF 5 header (§7.26): 0xffffffff, u64 length, u16 version, u16 pad.
    const strOffsets = new Asm().uint(0xffffffff, 4).uint(8 + 4 + 3 * 8, 8).uint(5, 2).uint(0, 2).uint(1, 8).uint(8, 8).uint(10, 8).done();

    const info = new Asm();
    // A first, minimal DWARF 4 unit, so unit-relative and section offsets differ in the second.
    info.uint(8, 4).uint(4, 2).uint(0, 4).u8(8).uleb(0);
    const unit = info.pos;
    info.uint(0xffffffff, 4).ref("end", 8, unit + 12).uint(5, 2).u8(1, 8).uint(0, 8);
    info.uleb(1).uint(16, 8).uint(0, 16); // root: str_offsets_base = 16, a data16 attribute to skip
    info.label("S").uleb(2).u8(0); // struct main.S (strx1 #0), size 24 (implicit_const)
    info.uleb(3).u8(1).uleb(2).u8(DW_OP_plus_uconst, 8).ref("int", 8); // a: exprloc +8, int (ref_addr)
    info.uleb(4).uint(1, 8).ref("T", 4, unit); // b: line_strp name (offset 1 in .debug_line_str), offset 16 (implicit_const), main.T (ref4)
    info.uleb(7).str("c").uleb(FORM.udata).uleb(0).ref("ptr", 8, unit); // c: indirect → udata 0, *main.S (ref8)
    info.u8(0);
    info.uleb(9).str("main.f").uleb(0).uint(0x40, 8).uleb(1).u8(0x9c).uint(3, 2).u8(1, 2, 3); // skipped subprogram
    info.u8(0);
    info.label("int").uleb(5).str("int").u8(8);
    info.label("T").uleb(6).uint(2, 2).ref("int", 1, unit); // typedef main.T = int (strx2 #2, ref_udata)
    info.label("ptr").uleb(8).str("*main.S").ref("S", 8);
    info.u8(0).label("end");

    const d = new GoDwarf({ info: info.done(), abbrev, str, lineStr, strOffsets }, "hand-built");
    expect(d.unitCount).toBe(2);
    expect(d.structNames()).toEqual(["main.S"]);
    expect(d.typeSize("main.S")).toBe(24);
    expect(d.typeSize("main.T")).toBe(8);
    expect(d.typeSize("*main.S")).toBe(8);
    expect(d.fieldNames("main.S")).toEqual(["a", "b", "c"]);
    expect(d.resolve("main.S.a")).toEqual({ offset: 8, size: 8, typeName: "int" });
    expect(d.resolve("main.S.b")).toEqual({ offset: 16, size: 8, typeName: "main.T" });
    expect(d.resolve("main.S.c")).toEqual({ offset: 0, size: 8, typeName: "*main.S" });
    expect(d.resolve("main.S.d")).toBeUndefined();
  });

  test("DWARF 4: block1 DW_OP_plus_uconst, unsupported expressions, typedef to struct, conflicting duplicates", () => {
    const abbrev = abbrevs([
      [1, TAG.compile_unit, true, []],
      [2, TAG.structure_type, true, [[AT.name, FORM.string], [AT.byte_size, FORM.udata]]],
      [3, TAG.member, false, [[AT.name, FORM.string], [AT.data_member_location, FORM.block1]]],
      [4, TAG.typedef, false, [[AT.name, FORM.string], [AT.type, FORM.ref4]]],
      [5, TAG.structure_type, false, [[AT.name, FORM.string], [AT.declaration, FORM.flag_present]]],
      [6, TAG.member, false, [[AT.name, FORM.string], [AT.data_member_location, FORM.sdata]]],
    ]);
    const info = new Asm();
    info.ref("end", 4, 4).uint(4, 2).uint(0, 4).u8(8);
    info.uleb(1);
    info.label("P").uleb(2).str("main.P").uleb(32);
    info.uleb(3).str("x").u8(2, DW_OP_plus_uconst, 24);
    info.uleb(3).str("y").u8(2, DW_OP_fbreg, 0);
    info.u8(0);
    info.uleb(4).str("main.Alias").ref("P", 4);
    info.uleb(5).str("main.Dup"); // a declaration only: must not count as a definition
    info.uleb(2).str("main.Dup").uleb(16);
    info.uleb(6).str("f").sleb(0);
    info.u8(0);
    info.uleb(2).str("main.Dup").uleb(16);
    info.uleb(6).str("f").sleb(8);
    info.uleb(6).str("g").sleb(-4);
    info.u8(0);
    info.u8(0).label("end");
    const d = new GoDwarf({ info: info.done(), abbrev }, "hand-built v4");
    expect(d.resolve("main.P.x")).toEqual({ offset: 24 });
    expect(d.fieldOffset("main.Alias", "x")).toEqual({ offset: 24 });
    expect(d.typeSize("main.Alias")).toBe(32); // through the typedef
    const err = (f: () => unknown): string => {
      try {
        f();
        return "ok";
      } catch (e) {
        return e instanceof TracerError ? e.code : String(e);
      }
    };
    expect(err(() => d.resolve("main.P.y"))).toBe("offset_unknown");
    expect(err(() => d.resolve("main.Dup.f"))).toBe("offset_unknown");
    expect(err(() => d.resolve("main.Dup.g"))).toBe("corrupt_binary");
    expect(d.typeSize("main.Dup")).toBe(16);
  });

  test("unit header problems are corrupt_binary with a message naming them", () => {
    const abbrev = abbrevs([[1, TAG.compile_unit, false, []]]);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["version 6", new Asm().uint(8, 4).uint(6, 2).uint(0, 4).u8(8).uleb(1).done(), /DWARF version 6/],
      ["reserved length", new Asm().uint(0xfffffff5, 4).uint(4, 2).done(), /reserved length/],
      ["length past end", new Asm().uint(100, 4).uint(4, 2).uint(0, 4).u8(8).done(), /claims 100 bytes/],
      ["address size 3", new Asm().uint(8, 4).uint(4, 2).uint(0, 4).u8(3).uleb(1).done(), /address size 3/],
      ["unknown abbrev", new Asm().uint(8, 4).uint(4, 2).uint(0, 4).u8(8).uleb(9).done(), /abbreviation 9/],
      ["unknown unit type", new Asm().uint(9, 4).uint(5, 2).u8(0x7f, 8).uint(0, 4).uleb(1).done(), /unit type 0x7f/],
    ];
    for (const [name, info, re] of cases) {
      let msg = "no error";
      try {
        new GoDwarf({ info, abbrev }, name).typeSize("x");
      } catch (e) {
        if (!(e instanceof TracerError) || e.code !== "corrupt_binary") throw e;
        msg = e.message;
      }
      expect({ name, ok: re.test(msg) }).toEqual({ name, ok: true });
    }
  });
});
