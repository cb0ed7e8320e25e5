/** @module tests/unit/binary/buildinfo.test — Go build info of real builds vs debug/buildinfo, both encodings, damaged input. */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile } from "../../../src/binary/elf.ts";
import { parseGoVersion, readBuildInfo } from "../../../src/binary/buildinfo.ts";
import { TracerError } from "../../../src/errors.ts";
import { buildGoProgram, dropSectionHeaders, FIXTURE, type GoBuildMode, haveGo, inspectWithGo, putLE, renameSection } from "./go-build.ts";

const GO = haveGo();

function tracerError(fn: () => unknown): TracerError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${String(e)}`);
  }
  throw new Error("expected a TracerError, nothing was thrown");
}

async function fixture(mode: GoBuildMode): Promise<{ bin: string; bytes: Uint8Array }> {
  const bin = await buildGoProgram({ ...FIXTURE, mode });
  return { bin, bytes: new Uint8Array(readFileSync(bin)) };
}

describe("parseGoVersion (re-exported: the one parser in src/offsets/version.ts)", () => {
  test.each([
    ["go1.21.13", { major: 1, minor: 21, patch: 13, pre: [] as string[] }],
    ["go1.20", { major: 1, minor: 20, patch: 0, pre: [] }],
    ["go1.17", { major: 1, minor: 17, patch: 0, pre: [] }],
    ["go1.22rc1", { major: 1, minor: 22, patch: 0, pre: ["rc1"] }],
    ["go1.21beta2", { major: 1, minor: 21, patch: 0, pre: ["beta2"] }],
    ["go1.23.0 X:nocoverageredesign", { major: 1, minor: 23, patch: 0, pre: [] }],
    ["devel go1.27-e8ee1dc4f9 Mon Jun 3 19:40:14 2026 +0000", { major: 1, minor: 27, patch: 0, pre: ["devel"] }],
    ["go1.27-devel_e8ee1dc4f9 Mon Jun 3 19:40:14 2026 +0000", { major: 1, minor: 27, patch: 0, pre: ["devel"] }],
    ["go1.21.0-bigcorp", { major: 1, minor: 21, patch: 0, pre: ["bigcorp"] }],
  ])("%s", (raw, want) => {
    expect(parseGoVersion(raw)).toEqual({ ...want, raw });
  });
  test.each(["devel +b7a85e0003 Tue Jan 1", "", "go", "gox.y", "1.21.3", "go1.21.3extra"])("%p is not a version", (raw) => {
    expect(parseGoVersion(raw)).toBeUndefined();
  });
});

describe.skipIf(!GO)("readBuildInfo on real builds (oracle: debug/buildinfo)", () => {
  for (const mode of ["default", "stripped-ldflags", "strip", "pie", "cgo-external", "trimpath"] as const) {
    test(mode, async () => {
      const { bin, bytes } = await fixture(mode);
      const oracle = await inspectWithGo(bin);
      const bi = readBuildInfo(ElfFile.parse(bytes, bin));
      expect(bi).toEqual(oracle.buildinfo as never);
      expect(bi.goVersion).toMatch(/^go1\.\d+/);
      expect(bi.path).toBe("example.com/fixture");
      expect(bi.main.path).toBe("example.com/fixture");
      expect(bi.deps.find((d) => d.path === "golang.org/x/text")).toEqual({
        path: "golang.org/x/text",
        version: "v0.14.0",
        sum: expect.stringMatching(/^h1:/) as unknown as string,
      });
      expect(bi.deps.find((d) => d.path === "example.com/localdep")?.replace?.path).toBe("./localdep");
      const settings = new Map(bi.settings.map((s) => [s.key, s.value]));
      if (mode === "trimpath") expect(settings.get("-trimpath")).toBe("true");
      // Stored quoted ("-ldflags=\"-s -w\""): exercises the unquoting.
      if (mode === "stripped-ldflags") expect(settings.get("-ldflags")).toBe("-s -w");
      if (mode === "pie") expect(settings.get("-buildmode")).toBe("pie");
      if (mode === "cgo-external") expect(settings.get("CGO_ENABLED")).toBe("1");
    });
  }

  test("found by scanning the data segment when there are no section headers", async () => {
    const { bin, bytes } = await fixture("stripped-ldflags");
    const copy = bytes.slice();
    dropSectionHeaders(copy);
    expect(readBuildInfo(ElfFile.parse(copy))).toEqual(readBuildInfo(ElfFile.parse(bytes, bin)));
  });

  test("the pre-1.18 pointer encoding decodes the same, including quoted settings (oracle reads the crafted file)", async () => {
    const { bytes } = await fixture("default");
    const copy = bytes.slice();
    const sec = ElfFile.parse(bytes).section(".go.buildinfo")!;
    const modinfo =
      "path\texample.com/crafted\n" +
      "mod\texample.com/crafted\tv1.2.3\th1:abc=\n" +
      "dep\tgolang.org/x/text\tv0.14.0\th1:xyz=\n" +
      "=>\t../text\t\t\n" +
      'build\t"we=ird key"="tab\\there\\u00e9\\x41\\101"\n' +
      "build\tplain=a=b\n" +
      "build\tbackquoted=`raw \\n`\n";
    const sentinel = new Uint8Array(16).fill(0xa5);
    const mod = new Uint8Array([...sentinel, ...new TextEncoder().encode(modinfo), ...sentinel]);
    const vers = new TextEncoder().encode("go1.26.8");
    // Header: magic(14) ptrSize=8 flags=0, then two pointers to Go string headers {data, len}.
    const a = sec.addr;
    const o = sec.offset;
    copy.fill(0, o + 14, o + sec.size);
    putLE(copy, o + 14, 1, 8);
    putLE(copy, o + 16, 8, a + 32);
    putLE(copy, o + 24, 8, a + 48);
    putLE(copy, o + 32, 8, a + 64);
    putLE(copy, o + 40, 8, vers.length);
    putLE(copy, o + 48, 8, a + 64 + vers.length);
    putLE(copy, o + 56, 8, mod.length);
    copy.set(vers, o + 64);
    copy.set(mod, o + 64 + vers.length);
    expect(64 + vers.length + mod.length).toBeLessThanOrEqual(sec.size);

    const bi = readBuildInfo(ElfFile.parse(copy));
    expect(bi).toEqual({
      goVersion: "go1.26.8",
      path: "example.com/crafted",
      main: { path: "example.com/crafted", version: "v1.2.3", sum: "h1:abc=" },
      deps: [{ path: "golang.org/x/text", version: "v0.14.0", sum: "h1:xyz=", replace: { path: "../text", version: "" } }],
      settings: [
        { key: "we=ird key", value: "tab\there\u00e9AA" },
        { key: "plain", value: "a=b" },
        { key: "backquoted", value: "raw \\n" },
      ],
    });
    const dir = join(tmpdir(), `beetrace-buildinfo-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(join(dir, "crafted"), copy);
      const oracle = await inspectWithGo(join(dir, "crafted"));
      expect(bi).toEqual(oracle.buildinfo as never);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Go before the register ABI is unsupported_go_version with a hint: 1.16 on amd64, 1.17 on arm64", async () => {
    const { bytes } = await fixture("default");
    const sec = ElfFile.parse(bytes).section(".go.buildinfo")!;
    const local = readBuildInfo(ElfFile.parse(bytes)).goVersion;
    const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(local, sec.offset);
    expect(at).toBeGreaterThan(sec.offset);
    /** The fixture with its Go version replaced by `v` (same length) and e_machine set to `machine`. */
    const patched = (v: string, machine?: number): Uint8Array => {
      expect(v.length).toBe(local.length);
      const copy = bytes.slice();
      copy.set(new TextEncoder().encode(v), at);
      if (machine !== undefined) putLE(copy, 18, 2, machine); // Elf64_Ehdr.e_machine
      return copy;
    };
    const pad = (v: string) => v + " ".repeat(local.length - v.length); // build info may carry a suffix after a space
    const e16 = tracerError(() => readBuildInfo(ElfFile.parse(patched(pad("go1.16.9")))));
    expect(e16.code).toBe("unsupported_go_version");
    expect(e16.message).toContain("go1.16.9");
    expect(e16.hint).toContain("Go 1.17");
    // Go 1.17 has the register ABI on amd64 only (EM_AARCH64 = 183).
    expect(readBuildInfo(ElfFile.parse(patched(pad("go1.17.9")))).goVersion).toBe(pad("go1.17.9"));
    const arm = tracerError(() => readBuildInfo(ElfFile.parse(patched(pad("go1.17.9"), 183))));
    expect(arm.code).toBe("unsupported_go_version");
    expect(arm.hint).toContain("Go 1.18");
    expect(readBuildInfo(ElfFile.parse(patched(pad("go1.18.1"), 183))).goVersion).toBe(pad("go1.18.1"));
  });

  test("a damaged magic in .go.buildinfo is corrupt_binary; with the section gone too it is not_go_binary", async () => {
    const { bytes } = await fixture("default");
    const elf = ElfFile.parse(bytes);
    const sec = elf.section(".go.buildinfo")!;
    const copy = bytes.slice();
    copy[sec.offset + 3] = (copy[sec.offset + 3] ?? 0) ^ 0xff;
    expect(tracerError(() => readBuildInfo(ElfFile.parse(copy))).code).toBe("corrupt_binary");
    renameSection(copy, sec.index, ".go.buildinfX");
    const e = tracerError(() => readBuildInfo(ElfFile.parse(copy)));
    expect(e.code).toBe("not_go_binary");
    expect(e.hint).toBeDefined();
  });

  test("bogus string lengths and flags are corrupt_binary or unsupported_arch, never another exception", async () => {
    const { bytes } = await fixture("default");
    const sec = ElfFile.parse(bytes).section(".go.buildinfo")!;
    const cases: [string, number, 1 | 2 | 4 | 8, number, string][] = [
      ["version length varint runs off", 32, 8, 0xffffffffffff, "corrupt_binary"],
      ["modinfo length too large", 32 + 1 + 8, 4, 0x7fffffff, "corrupt_binary"],
      ["pointer format, bad pointer size", 14, 2, 0x0003, "corrupt_binary"],
      ["pointer format, pointers nowhere", 15, 1, 0, "corrupt_binary"],
      ["big-endian pointer format", 15, 1, 1, "unsupported_arch"],
    ];
    for (const [what, at, size, value, code] of cases) {
      const copy = bytes.slice();
      putLE(copy, sec.offset + at, size, value);
      if (what === "pointer format, pointers nowhere") putLE(copy, sec.offset + 16, 8, 0x10);
      const e = tracerError(() => readBuildInfo(ElfFile.parse(copy)));
      expect(`${what}: ${e.code}`).toBe(`${what}: ${code}`);
    }
  });
});

describe("readBuildInfo on a non-Go ELF", () => {
  const candidates = ["/bin/true", "/usr/bin/true"].filter(existsSync);
  test.skipIf(candidates.length === 0)("the system's `true` is not_go_binary", () => {
    const e = tracerError(() => readBuildInfo(ElfFile.parse(new Uint8Array(readFileSync(candidates[0]!)), "true")));
    expect(e.code).toBe("not_go_binary");
    expect(e.message).toBe("true: no Go build info (.go.buildinfo) found");
  });
});
