/**
 * @module tests/unit/probes/records-layout — the TS record layouts equal what clang produced
 * from bpf/shared/records.h: compiles bpf/nethttp.bpf.c, reads the object's BTF with
 * `bpftool -j btf dump file`, and compares every struct size, member offset/size and tag value.
 * Skips (with the reason) when clang, bpftool or the libbpf headers are missing.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BPF_CFLAGS, ROOT, bpfIncludeDirs } from "../../../build.ts";
import { C_ENUMS, RECORD_LAYOUTS } from "../../../src/probes/nethttp/records.ts";

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
  bitfield_size?: number;
}
interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  values?: { name: string; val: number }[];
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

function skipReason(): string | undefined {
  if (!have("clang", ["--version"])) return "clang is not installed (apt-get install clang, or scripts/setup.sh)";
  if (!have("bpftool", ["version"])) return "bpftool is not installed (apt-get install bpftool, or scripts/setup.sh)";
  if (includeDirs() === undefined) return "libbpf headers (bpf/bpf_helpers.h) not found: run build.ts or apt-get install libbpf-dev";
  return undefined;
}

/** Compiles bpf/nethttp.bpf.c exactly as build.ts does and returns its BTF types by id. */
function compileAndDumpBtf(): Map<number, BtfType> {
  const dir = mkdtempSync(join(tmpdir(), "beetrace-layout-"));
  try {
    const obj = join(dir, "nethttp.bpf.o");
    const cc = spawnSync("clang", [...BPF_CFLAGS, ...includeDirs()!.map((d) => `-I${d}`), "-c", join(ROOT, "bpf", "nethttp.bpf.c"), "-o", obj], {
      encoding: "utf8",
    });
    if (cc.status !== 0) throw new Error(`clang failed:\n${cc.stderr}`);
    const dump = spawnSync("bpftool", ["-j", "btf", "dump", "file", obj], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (dump.status !== 0) throw new Error(`bpftool failed:\n${dump.stderr}`);
    const types = (JSON.parse(dump.stdout) as { types: BtfType[] }).types;
    return new Map(types.map((t) => [t.id, t]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Size in bytes of a BTF type, following typedefs/qualifiers and arrays. */
function sizeOf(types: Map<number, BtfType>, id: number, depth = 0): number {
  const t = types.get(id);
  if (!t || depth > 32) throw new Error(`BTF type ${id} unresolvable`);
  switch (t.kind) {
    case "TYPEDEF":
    case "CONST":
    case "VOLATILE":
    case "RESTRICT":
      return sizeOf(types, t.type_id!, depth + 1);
    case "ARRAY":
      return t.nr_elems! * sizeOf(types, t.type_id!, depth + 1);
    case "PTR":
      return 8;
    default:
      if (t.size === undefined) throw new Error(`BTF type ${id} (${t.kind}) has no size`);
      return t.size;
  }
}

const reason = skipReason();
if (reason !== undefined) console.warn(`records-layout: skipped: ${reason}`);

describe.skipIf(reason !== undefined)("nethttp record layouts match clang's BTF", () => {
  const types = reason === undefined ? compileAndDumpBtf() : new Map<number, BtfType>();
  const byName = (kind: string, name: string): BtfType | undefined => [...types.values()].find((t) => t.kind === kind && t.name === name);

  for (const layout of RECORD_LAYOUTS) {
    test(`struct ${layout.struct}`, () => {
      const st = byName("STRUCT", layout.struct);
      expect(st, `struct ${layout.struct} missing from BTF (only forward-declared?)`).toBeDefined();
      expect(st!.size).toBe(layout.size);
      const fromBtf: Record<string, { offset: number; size: number }> = {};
      for (const m of st!.members ?? []) {
        expect(m.bitfield_size ?? 0).toBe(0);
        expect(m.bits_offset % 8).toBe(0);
        fromBtf[m.name] = { offset: m.bits_offset / 8, size: sizeOf(types, m.type_id) };
      }
      // Same members, same offsets and sizes, in both directions.
      expect({ ...layout.fields }).toEqual(fromBtf);
    });
  }

  test("every tag and flag value equals the C enumerator", () => {
    const fromBtf: Record<string, number> = {};
    for (const t of types.values()) {
      if (t.kind !== "ENUM" || !t.name || !/^rec_/.test(t.name)) continue;
      for (const v of t.values ?? []) fromBtf[v.name] = v.val;
    }
    expect(fromBtf).toEqual({ ...C_ENUMS });
  });
});
