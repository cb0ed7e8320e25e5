/**
 * @module tests/unit/build/libbpf-bundle — the built libbpf bundle is loadable on any glibc ≥ 2.17
 * machine: symbol versions, NEEDED entries, exports; and it really works (dlopen, open a BPF object).
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALLOWED_NEEDED, GLIBC_FLOOR, PATHS, REQUIRED_EXPORTS, compareVersions, compileBpfObject } from "../../../build.ts";
import { ffi, isNull } from "../../../src/bpf/ffi.ts";

const built = existsSync(PATHS.bundle);
const haveBinutils = spawnSync("objdump", ["--version"]).status === 0 && spawnSync("readelf", ["--version"]).status === 0;
const haveClang = spawnSync("clang", ["--version"]).status === 0;
if (!built) console.warn(`skip libbpf-bundle tests: ${PATHS.bundle} is not built (run 'bun build.ts')`);
else if (!haveBinutils) console.warn("skip libbpf-bundle symbol tests: objdump/readelf missing (apt-get install binutils)");

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout;
};

describe("libbpf bundle", () => {
  test.skipIf(!built || !haveBinutils)(`objdump -T: no GLIBC_ version above ${GLIBC_FLOOR}`, () => {
    const versions = [...new Set([...sh("objdump", ["-T", PATHS.bundle]).matchAll(/GLIBC_([0-9.]+)/g)].map((m) => m[1] ?? ""))];
    expect(versions.length).toBeGreaterThan(5); // it does use glibc; an empty list would mean we parsed nothing
    expect(versions.filter((v) => compareVersions(v, GLIBC_FLOOR) > 0)).toEqual([]);
  });

  test.skipIf(!built || !haveBinutils)("readelf -d: NEEDED is only libc and the dynamic loader", () => {
    const needed = [...sh("readelf", ["-d", PATHS.bundle]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
    expect(needed.length).toBeGreaterThan(0);
    for (const n of needed) expect(ALLOWED_NEEDED).toContain(n);
  });

  test.skipIf(!built || !haveBinutils)("exports versioned libbpf symbols and hides libelf/zlib", () => {
    const defined = sh("objdump", ["-T", PATHS.bundle])
      .split("\n")
      .filter((l) => / g +D[FO] +\.\S+/.test(l));
    const names = defined.map((l) => l.trim().split(/\s+/).at(-1));
    for (const s of REQUIRED_EXPORTS) expect(names).toContain(s);
    expect(defined.find((l) => l.endsWith(" bpf_object__open_mem"))).toMatch(/LIBBPF_\d+\.\d+\.\d+ bpf_object__open_mem$/);
    // libelf and zlib are linked in but must not leak into the global symbol namespace.
    expect(names.filter((n) => n !== undefined && /^(elf_|elf32_|elf64_|gelf_|inflate|deflate|crc32)/.test(n))).toEqual([]);
    expect(names.length).toBeGreaterThan(250);
  });

  test.skipIf(!built)("dlopens in this runtime and reports libbpf 1.x", () => {
    const lib = ffi().open(PATHS.bundle, {
      libbpf_major_version: { args: [], returns: "u32" },
      libbpf_minor_version: { args: [], returns: "u32" },
    } as const);
    try {
      expect(lib.symbols.libbpf_major_version()).toBe(1);
      expect(lib.symbols.libbpf_minor_version()).toBeGreaterThanOrEqual(1);
    } finally {
      lib.close();
    }
  });

  test.skipIf(!built || !haveClang)("opens a BPF object compiled by build.ts's recipe (no root needed to open)", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-bundle-"));
    const lib = ffi().open(PATHS.bundle, {
      bpf_object__open_mem: { args: ["ptr", "usize", "ptr"], returns: "ptr" },
      bpf_object__next_program: { args: ["ptr", "ptr"], returns: "ptr" },
      bpf_program__name: { args: ["ptr"], returns: "ptr" },
      bpf_object__find_map_by_name: { args: ["ptr", "ptr"], returns: "ptr" },
      bpf_object__close: { args: ["ptr"], returns: "void" },
    } as const);
    try {
      const objPath = join(dir, "trivial.bpf.o");
      compileBpfObject(join(import.meta.dir, "../../fixtures/bpf/trivial.bpf.c"), objPath);
      const bytes = new Uint8Array(readFileSync(objPath));
      const f = ffi();
      const obj = lib.symbols.bpf_object__open_mem(f.addressOf(bytes), bytes.length, null);
      expect(isNull(obj)).toBe(false);
      try {
        const names: string[] = [];
        for (let p = lib.symbols.bpf_object__next_program(obj, null); !isNull(p); p = lib.symbols.bpf_object__next_program(obj, p)) {
          const name = lib.symbols.bpf_program__name(p);
          if (!isNull(name)) names.push(f.readCString(name));
        }
        expect(names).toEqual(["trivial_entry"]);
        const mapName = new TextEncoder().encode("trivial_events\0");
        expect(isNull(lib.symbols.bpf_object__find_map_by_name(obj, f.addressOf(mapName)))).toBe(false);
      } finally {
        lib.symbols.bpf_object__close(obj);
      }
      // libbpf keeps a pointer into `bytes` until close (bpf-libbpf spike §7.3); keep it alive.
      expect(bytes.length).toBeGreaterThan(0);
    } finally {
      lib.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
