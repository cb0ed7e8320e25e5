/**
 * @module tests/unit/probes/records-layout — the committed BTF bindings are current and right.
 *
 * 1. Staleness: compiles every bpf/<lib>.bpf.c as build.ts does, regenerates
 *    src/probes/<lib>/<lib>.gen.ts in memory (build/btf-codegen.ts) and compares it with the
 *    committed file; a difference fails with the command that regenerates it.
 * 2. The generator's own BTF reader agrees with bpftool's (`bpftool -j btf dump file`) on every
 *    struct layout, enumerator and data-section name of those objects.
 * 3. The generator on a small C file covering what the real objects do not (yet): anonymous
 *    members, embedded non-rec structs, anonymous and prefix-matched enums, global subprograms,
 *    non-u64 .bss, bitfields rejected.
 * 4. A misspelt name is a type error (checked by tsc over tests/).
 *
 * Without clang, bpftool or the libbpf headers the tests skip with the reason, except under
 * CI=true, where a missing tool is a failure.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { BPF_CFLAGS, ROOT, bpfIncludeDirs, compileBpfObject } from "../../../build.ts";
import { REGEN_COMMAND, bpfLibs, checkGenerated, extractBindings, type Bindings, type CompileEnv } from "../../../build/btf-codegen.ts";
import type * as calibrateGen from "../../../src/probes/calibrate/calibrate.gen.ts";

interface BpftoolType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  linkage?: string;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
  vars?: { type_id: number }[];
}

function have(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return !r.error && r.status === 0;
}

/** Include dirs for the compile: the build's, plus the system's libbpf headers as a fallback. */
function includeDirs(): string[] | undefined {
  const dirs = bpfIncludeDirs();
  if (dirs.some((d) => existsSync(join(d, "bpf", "bpf_helpers.h")))) return dirs;
  if (existsSync("/usr/include/bpf/bpf_helpers.h")) return [...dirs, "/usr/include"];
  return undefined;
}

function missingTool(): string | undefined {
  if (!have("clang", ["--version"])) return "clang is not installed (apt-get install clang, or scripts/setup.sh)";
  if (!have("bpftool", ["version"])) return "bpftool is not installed (apt-get install bpftool, or scripts/setup.sh)";
  if (includeDirs() === undefined) return "libbpf headers (bpf/bpf_helpers.h) not found: run 'bun build.ts' or apt-get install libbpf-dev";
  return undefined;
}

const reason = missingTool();
const inCI = process.env.CI === "true";
if (reason !== undefined && !inCI) console.warn(`records-layout: skipped: ${reason}`);

test.if(reason !== undefined && inCI)("CI has the BPF toolchain", () => {
  throw new Error(`CI=true but ${reason}`);
});

const env = (): CompileEnv => ({ bpfDir: join(ROOT, "bpf"), clang: "clang", cflags: BPF_CFLAGS, includeDirs: includeDirs()! });
const keep = mkdtempSync(join(tmpdir(), "beetrace-layout-"));
afterAll(() => rmSync(keep, { recursive: true, force: true }));

describe.skipIf(reason !== undefined)("BTF bindings of bpf/*.bpf.c", () => {
  // Compiled once for the file; each object is also kept for the bpftool comparison.
  const results =
    reason === undefined
      ? checkGenerated(ROOT, env(), (src, out) => {
          compileBpfObject(src, out, includeDirs());
          copyFileSync(out, join(keep, basename(out)));
        })
      : [];

  test("one .gen.ts per bpf/*.bpf.c", () => {
    expect(results.map((r) => r.lib)).toEqual(bpfLibs(join(ROOT, "bpf")));
    expect(results.length).toBeGreaterThan(0);
  });

  for (const r of results) {
    test(`${r.path} is current`, () => {
      if (!r.ok) throw new Error(`${r.path} is ${r.detail}`);
      expect(r.detail).toContain("current");
    });
  }

  for (const r of results) {
    test(`${r.lib}: the generator's BTF reader agrees with bpftool`, () => {
      const obj = join(keep, `${r.lib}.bpf.o`);
      const dump = spawnSync("bpftool", ["-j", "btf", "dump", "file", obj], { encoding: "utf8", maxBuffer: 64 << 20 });
      expect(dump.status).toBe(0);
      const types = new Map((JSON.parse(dump.stdout) as { types: BpftoolType[] }).types.map((t) => [t.id, t]));
      const b = extractBindings(r.lib, readFileSync(obj), obj);
      expect(fromBpftool(types, b)).toEqual(asComparable(b));
    });
  }
});

/** Size in bytes of a type as bpftool describes it. */
function sizeOf(types: Map<number, BpftoolType>, id: number): number {
  const t = types.get(id);
  if (!t) throw new Error(`bpftool: no type ${id}`);
  if (["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"].includes(t.kind)) return sizeOf(types, t.type_id!);
  if (t.kind === "ARRAY") return t.nr_elems! * sizeOf(types, t.type_id!);
  if (t.kind === "PTR") return 8;
  if (t.size === undefined) throw new Error(`bpftool: type ${id} (${t.kind}) has no size`);
  return t.size;
}

/** The parts of the bindings bpftool can confirm, each keyed by name. */
function asComparable(b: Bindings) {
  return {
    structs: Object.fromEntries(Object.entries(b.structs).map(([n, s]) => [n, { size: s.size, members: Object.fromEntries(Object.entries(s.members).map(([m, l]) => [m, [l.offset, l.size]])) }])),
    enums: Object.fromEntries(Object.entries(b.enums).map(([n, vals]) => [n, Object.fromEntries(Object.entries(vals).map(([e, v]) => [e, Number(v)]))])),
    rodata: Object.keys(b.rodata).sort(),
    maps: [...b.maps].sort(),
    programs: Object.keys(b.programs).sort(),
  };
}

/** The same picture built from bpftool's JSON, for the names the bindings list. */
function fromBpftool(types: Map<number, BpftoolType>, b: Bindings) {
  const all = [...types.values()];
  const named = (kinds: string[], name: string): BpftoolType => {
    const t = all.find((x) => kinds.includes(x.kind) && x.name === name);
    if (!t) throw new Error(`bpftool: no ${kinds.join("/")} ${name}`);
    return t;
  };
  const secVars = (sec: string): string[] =>
    (all.find((t) => t.kind === "DATASEC" && t.name === sec)?.vars ?? []).map((v) => types.get(v.type_id)?.name ?? "").sort();
  return {
    structs: Object.fromEntries(
      Object.entries(b.structs).map(([n, s]) => {
        const t = named(s.kind === "union" ? ["UNION"] : ["STRUCT"], n);
        return [n, { size: t.size, members: Object.fromEntries((t.members ?? []).map((m) => [m.name, [m.bits_offset / 8, sizeOf(types, m.type_id)]])) }];
      }),
    ),
    enums: Object.fromEntries(Object.keys(b.enums).map((n) => [n, Object.fromEntries((named(["ENUM", "ENUM64"], n).values ?? []).map((v) => [v.name, v.val]))])),
    rodata: secVars(".rodata"),
    maps: secVars(".maps"),
    programs: all.filter((t) => t.kind === "FUNC" && t.linkage === "global" && t.name! in b.programs).map((t) => t.name!).sort(),
  };
}

/** A C file with the shapes the generator must handle. */
const DEMO_C = `
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct inner { __u32 a; __u32 b; };                 /* not rec_*, but embedded in one */
enum rec_demo_kind { REC_DEMO_A = 1, REC_DEMO_B = 0x100 };
enum demo_mode { DEMO_MODE_X = 0, DEMO_MODE_Y = 2 }; /* named <lib>_* */
enum misc { DEMO_M = 3, DEMO_N = 4 };                /* enumerators start with DEMO_ */
enum other { OTHER_Z = 5 };                          /* none of the above: left out */
struct rec_demo {
	__u16 type;
	__u8 pad[2];
	union { __u32 word; __u16 half; };               /* anonymous: members reached directly */
	struct inner in;
	enum { DEMO_ANON = 7 } mode;
	__u64 *ptr;
	__u8 tail[];
};
volatile const __u32 demo_off = 0;
volatile const __u64 demo_addr = 0;
__u64 demo_lost = 0;
__u32 demo_small = 0;                                /* .bss but not __u64: not a counter */
enum rec_demo_kind demo_kind_anchor;
enum demo_mode demo_mode_anchor;
enum misc demo_misc_anchor;
enum other demo_other_anchor;
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rec_demo);
} demo_map SEC(".maps");
__attribute__((noinline)) int demo_sub(int x) { return x + (int)demo_small; } /* global, in .text */
SEC("uprobe")
int demo_prog(void *ctx)
{
	__u32 k = 0;
	struct rec_demo *r = bpf_map_lookup_elem(&demo_map, &k);
	if (!r) return 0;
	demo_lost += demo_addr;
	return demo_sub(demo_off) + r->type;
}
`;

describe.skipIf(reason !== undefined)("build/btf-codegen on a demo object", () => {
  const compileDemo = (source: string): Uint8Array => {
    const dir = mkdtempSync(join(keep, "demo-"));
    writeFileSync(join(dir, "demo.bpf.c"), source);
    compileBpfObject(join(dir, "demo.bpf.c"), join(dir, "demo.bpf.o"), includeDirs());
    return readFileSync(join(dir, "demo.bpf.o"));
  };
  const b = reason === undefined ? extractBindings("demo", compileDemo(DEMO_C)) : undefined;

  test("layouts: anonymous members flattened, embedded structs named, flexible array at its offset", () => {
    expect(b!.structs).toEqual({
      inner: { kind: "struct", size: 8, members: { a: { offset: 0, size: 4, type: "__u32" }, b: { offset: 4, size: 4, type: "__u32" } } },
      rec_demo: {
        kind: "struct",
        size: 32,
        members: {
          type: { offset: 0, size: 2, type: "__u16" },
          pad: { offset: 2, size: 2, type: "__u8[2]" },
          word: { offset: 4, size: 4, type: "__u32" },
          half: { offset: 4, size: 2, type: "__u16" },
          in: { offset: 8, size: 8, type: "struct inner", struct: "inner" },
          mode: { offset: 16, size: 4, type: "enum <anonymous>" },
          ptr: { offset: 24, size: 8, type: "__u64 *" },
          tail: { offset: 32, size: 0, type: "__u8[]" },
        },
      },
    });
  });

  test("enums by name and prefix; anonymous ones only flattened", () => {
    expect(b!.enums).toEqual({ demo_mode: { DEMO_MODE_X: 0, DEMO_MODE_Y: 2 }, misc: { DEMO_M: 3, DEMO_N: 4 }, rec_demo_kind: { REC_DEMO_A: 1, REC_DEMO_B: 0x100 } });
    expect(b!.enumerators).toEqual({ DEMO_ANON: 7, DEMO_M: 3, DEMO_MODE_X: 0, DEMO_MODE_Y: 2, DEMO_N: 4, REC_DEMO_A: 1, REC_DEMO_B: 0x100 });
  });

  test("rodata with sizes, __u64 counters only, maps, programs but not global subprograms", () => {
    expect(b!.rodata).toEqual({ demo_addr: 8, demo_off: 4 });
    expect(b!.counters).toEqual(["demo_lost"]);
    expect(b!.maps).toEqual(["demo_map"]);
    expect(b!.programs).toEqual({ demo_prog: "uprobe" });
  });

  test("a bitfield in a record is refused with its name", () => {
    const src = DEMO_C.replace("__u8 pad[2];", "__u8 bits : 4; __u8 more : 4; __u8 pad1;");
    expect(() => extractBindings("demo", compileDemo(src))).toThrow(/rec_demo\.bits is a bitfield/);
  });

  test("a file that is not a BPF object is refused, not misread", () => {
    expect(() => extractBindings("demo", new Uint8Array(100))).toThrow(/not an ELF file/);
    expect(() => extractBindings("demo", readFileSync(join(ROOT, "package.json")))).toThrow(/not an ELF file/);
  });
});

test("a misspelt name is a type error, and the staleness message names the fix", () => {
  // @ts-expect-error: calibrate_hit is the program; the counter is calibrate_hits
  const misspelt: calibrateGen.CounterName = "calibrate_hit";
  const counter: calibrateGen.CounterName = "calibrate_hits";
  const program: calibrateGen.ProgramName = "calibrate_hit";
  expect([misspelt, counter, program]).toHaveLength(3);
  expect(REGEN_COMMAND).toStartWith("bun build.ts");
});
