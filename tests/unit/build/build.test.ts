/** @module tests/unit/build/build — build.ts's pure pieces: apt sources, ELF tool output, the rendered embedded module. */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  PATHS,
  checkBundle,
  compareVersions,
  compileBpfObject,
  debSrcStanza,
  definedDynamicSymbols,
  dscListedFiles,
  glibcVersions,
  isBpfObject,
  neededLibraries,
  osCodename,
  parseDeb822Sources,
  parseOneLineSources,
  pickDebianMirror,
  renderEmbeddedModule,
} from "../../../build.ts";
import { TracerError } from "../../../src/errors.ts";

const MIRROR = "http://mirror.invalid/debian";

describe("apt sources", () => {
  test("deb822: picks the release suite's main component, not -updates or -security", () => {
    const text = [
      "Types: deb",
      `URIs: ${MIRROR}-security`,
      "Suites: bookworm-security",
      "Components: main",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      "",
      "Types: deb",
      "# a comment inside a stanza",
      `URIs: ${MIRROR}`,
      "Suites: bookworm bookworm-updates",
      "Components: main contrib",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      "",
    ].join("\n");
    const m = pickDebianMirror(parseDeb822Sources(text, "debian.sources"), "bookworm");
    expect(m).toEqual({ uri: MIRROR, suite: "bookworm", signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", origin: "debian.sources:7" });
  });

  test("deb822: Enabled: no stanzas are ignored; inline Signed-By keys survive verbatim", () => {
    const text = [
      "Enabled: no",
      "Types: deb",
      "URIs: http://disabled.invalid/debian",
      "Suites: bookworm",
      "Components: main",
      "",
      "Types: deb deb-src",
      `URIs: ${MIRROR}`,
      "Suites: bookworm",
      "Components: main",
      "Signed-By:",
      " -----BEGIN PGP PUBLIC KEY BLOCK-----",
      " .",
      " mQINBFxyz",
      " -----END PGP PUBLIC KEY BLOCK-----",
    ].join("\n");
    const m = pickDebianMirror(parseDeb822Sources(text, "x.sources"), "bookworm");
    if (m instanceof TracerError) throw m;
    expect(m.uri).toBe(MIRROR);
    expect(debSrcStanza(m)).toBe(
      [
        "Types: deb-src",
        `URIs: ${MIRROR}`,
        "Suites: bookworm",
        "Components: main",
        "Signed-By:",
        " -----BEGIN PGP PUBLIC KEY BLOCK-----",
        " .",
        " mQINBFxyz",
        " -----END PGP PUBLIC KEY BLOCK-----",
        "",
      ].join("\n"),
    );
  });

  test("one-line format with options, comments and other suites", () => {
    const text = [
      "# deb http://commented.invalid/debian bookworm main",
      `deb [arch=amd64 signed-by=/k.gpg] ${MIRROR} bookworm-updates main`,
      `deb [arch=amd64 signed-by=/k.gpg] ${MIRROR} bookworm main non-free-firmware # trailing`,
      "deb http://other.invalid/debian bookworm contrib",
    ].join("\n");
    const sources = parseOneLineSources(text, "sources.list");
    expect(sources).toHaveLength(3);
    expect(pickDebianMirror(sources, "bookworm")).toEqual({ uri: MIRROR, suite: "bookworm", signedBy: "/k.gpg", origin: "sources.list:3" });
    expect(debSrcStanza({ uri: MIRROR, suite: "bookworm", signedBy: "/k.gpg", origin: "" })).toBe(
      `Types: deb-src\nURIs: ${MIRROR}\nSuites: bookworm\nComponents: main\nSigned-By: /k.gpg\n`,
    );
  });

  test("no matching source is a TracerError with a hint, not a crash", () => {
    const r = pickDebianMirror(parseOneLineSources(`deb ${MIRROR} bullseye main\n[garbage\n`, "s.list"), "bookworm");
    expect(r).toBeInstanceOf(TracerError);
    expect((r as TracerError).code).toBe("file_not_found");
    expect((r as TracerError).hint).toContain(".cache/libbpf/src");
  });

  test("os-release codename", () => {
    expect(osCodename('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')).toBe("bookworm");
    expect(osCodename('VERSION_CODENAME="jammy"\n')).toBe("jammy");
    expect(osCodename("ID=alpine\n")).toBeUndefined();
  });

  test(".dsc Checksums-Sha256 lists the files to expect", () => {
    const dsc = [
      "Format: 3.0 (quilt)",
      "Source: libbpf",
      "Checksums-Sha1:",
      " aa 10 libbpf_1.1.2.orig.tar.gz",
      "Checksums-Sha256:",
      " 0123 2337908 libbpf_1.1.2.orig.tar.gz",
      " 4567 6848 libbpf_1.1.2-0+deb12u1.debian.tar.xz",
      "Files:",
      " cc 10 libbpf_1.1.2.orig.tar.gz",
    ].join("\n");
    expect(dscListedFiles(dsc)).toEqual(["libbpf_1.1.2.orig.tar.gz", "libbpf_1.1.2-0+deb12u1.debian.tar.xz"]);
    expect(dscListedFiles("Format: 3.0\n")).toEqual([]);
  });
});

describe("ELF tool output", () => {
  const objdumpT = [
    "libbpf-bundle.so:     file format elf64-x86-64",
    "",
    "DYNAMIC SYMBOL TABLE:",
    "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.2.5) free",
    "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.17) clock_gettime",
    "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.3.4) __snprintf_chk",
    "0000000000021ee0 g    DF .text\t0000000000000087  LIBBPF_0.0.6 bpf_object__open_mem",
    "0000000000019130 g    DF .text\t0000000000000006  LIBBPF_0.6.0 libbpf_major_version",
    "0000000000000000 g    DO *ABS*\t0000000000000000  LIBBPF_0.0.1 LIBBPF_0.0.1",
  ].join("\n");

  test("glibc versions are sorted numerically, so 2.17 is newer than 2.3.4", () => {
    expect(glibcVersions(objdumpT)).toEqual(["2.2.5", "2.3.4", "2.17"]);
    expect(compareVersions("2.17", "2.3.4")).toBe(1);
    expect(compareVersions("2.17", "2.17.0")).toBe(0);
    expect(compareVersions("2.2.5", "2.28")).toBe(-1);
  });

  test("defined dynamic symbols exclude imports", () => {
    const s = definedDynamicSymbols(objdumpT);
    expect(s.has("bpf_object__open_mem")).toBe(true);
    expect(s.has("libbpf_major_version")).toBe(true);
    expect(s.has("free")).toBe(false);
  });

  test("NEEDED entries", () => {
    const d = [
      " 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]",
      " 0x0000000000000001 (NEEDED)             Shared library: [ld-linux-x86-64.so.2]",
      " 0x000000000000000e (SONAME)             Library soname: [libbpf-bundle.so]",
    ].join("\n");
    expect(neededLibraries(d)).toEqual(["libc.so.6", "ld-linux-x86-64.so.2"]);
  });

  test("isBpfObject: EM_BPF ELF64 LE only, short or foreign input is just false", () => {
    const h = new Uint8Array(64);
    h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1], 0);
    h[18] = 247;
    expect(isBpfObject(h)).toBe(true);
    h[18] = 62; // EM_X86_64
    expect(isBpfObject(h)).toBe(false);
    expect(isBpfObject(new Uint8Array(10))).toBe(false);
    expect(isBpfObject(readFileSync(process.execPath).subarray(0, 64))).toBe(false);
  });
});

describe("embedded module", () => {
  const source = readFileSync(PATHS.embeddedTs, "utf8");

  test("rendering replaces only the marker block with one file import per asset", () => {
    const out = renderEmbeddedModule(
      source,
      { libbpfBundle: "/r/.cache/libbpf/out/libbpf-bundle.so", bpfObjects: { zeta: "/r/.cache/bpf/zeta.bpf.o", alpha: "/r/.cache/bpf/alpha.bpf.o" }, offsetsJson: "/r/offsets.json" },
      "/r/src/bpf",
    );
    const begin = source.indexOf("// @embedded-assets-begin");
    expect(out.slice(0, begin)).toBe(source.slice(0, begin));
    const block = out.slice(begin, out.indexOf("// @embedded-assets-end"));
    expect(block.split("\n")).toEqual([
      "// @embedded-assets-begin",
      'import asset_libbpf from "../../.cache/libbpf/out/libbpf-bundle.so" with { type: "file" };',
      'import asset_offsets from "../../offsets.json" with { type: "file" };',
      'import asset_bpf_0 from "../../.cache/bpf/alpha.bpf.o" with { type: "file" };',
      'import asset_bpf_1 from "../../.cache/bpf/zeta.bpf.o" with { type: "file" };',
      'const compiled = { libbpfBundle: asset_libbpf, bpfObjects: { "alpha": asset_bpf_0, "zeta": asset_bpf_1 }, offsetsJson: asset_offsets } as AssetPaths | null;',
      "",
    ]);
    expect(out.endsWith(source.slice(source.indexOf("// @embedded-assets-end")))).toBe(true);
  });

  test("a module without markers is refused", () => {
    expect(() => renderEmbeddedModule("export {};\n", { libbpfBundle: "/a.so", bpfObjects: {}, offsetsJson: "/o.json" }, "/")).toThrow(TracerError);
  });

  test("the rendered module runs and reports origin 'embedded' with the asset paths", async () => {
    // Lay out a throwaway copy of the tree so the rendered imports resolve to real files.
    const root = mkdtempSync(join(tmpdir(), "beetrace-embedded-"));
    try {
      mkdirSync(join(root, "src/bpf"), { recursive: true });
      mkdirSync(join(root, "a"), { recursive: true });
      writeFileSync(join(root, "src/errors.ts"), readFileSync(join(PATHS.embeddedTs, "../../errors.ts")));
      const assets = { libbpfBundle: join(root, "a/lib.so"), bpfObjects: { one: join(root, "a/one.bpf.o") }, offsetsJson: join(root, "a/o.json") };
      writeFileSync(assets.libbpfBundle, "so");
      writeFileSync(assets.bpfObjects.one, "obj");
      writeFileSync(assets.offsetsJson, "{}");
      writeFileSync(join(root, "src/bpf/embedded.ts"), renderEmbeddedModule(source, assets, join(root, "src/bpf")));
      const mod = (await import(join(root, "src/bpf/embedded.ts"))) as typeof import("../../../src/bpf/embedded.ts");
      expect(mod.embedded).toEqual({ origin: "embedded", ...assets });
      expect(mod.bpfObjectPath("one")).toBe(assets.bpfObjects.one);
      expect(() => mod.bpfObjectPath("two")).toThrow("BPF object 'two' is not embedded in this beetrace (embedded: one)");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

const haveClang = spawnSync("clang", ["--version"]).status === 0;

describe("BPF compilation", () => {
  test.skipIf(!haveClang)("the fixture compiles with build.ts's flags into a BPF object with BTF (skips without clang)", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-bpfc-"));
    try {
      const out = join(dir, "trivial.bpf.o");
      compileBpfObject(join(import.meta.dir, "../../fixtures/bpf/trivial.bpf.c"), out);
      const bytes = readFileSync(out);
      expect(isBpfObject(bytes)).toBe(true);
      const sections = spawnSync("llvm-objdump", ["-h", out], { encoding: "utf8" }).stdout;
      for (const s of ["uprobe", ".BTF", ".BTF.ext", ".maps", ".rodata", ".bss"]) expect(sections).toMatch(new RegExp(`\\s${s.replace(".", "\\.")}\\s`));
      expect(sections).not.toContain(".debug_info");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!haveClang)("a compile error names the file and the first error line", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-bpfc-"));
    try {
      writeFileSync(join(dir, "bad.bpf.c"), "int f(void) { return undefined_thing; }\n");
      let err: unknown;
      try {
        compileBpfObject(join(dir, "bad.bpf.c"), join(dir, "bad.bpf.o"));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TracerError);
      expect((err as TracerError).message).toMatch(/^clang failed on .*bad\.bpf\.c: .*error: use of undeclared identifier 'undefined_thing'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const haveGcc = spawnSync("gcc", ["--version"]).status === 0 && spawnSync("objdump", ["--version"]).status === 0;

describe("checks fail when they should", () => {
  test("clang missing: a TracerError that says how to install it", () => {
    const saved = process.env.PATH;
    const empty = mkdtempSync(join(tmpdir(), "beetrace-nopath-"));
    process.env.PATH = empty; // a directory with no clang in it
    try {
      expect(() => compileBpfObject("x.bpf.c", join(tmpdir(), "never.bpf.o"), [])).toThrow("clang is not installed");
      try {
        compileBpfObject("x.bpf.c", join(tmpdir(), "never.bpf.o"), []);
      } catch (e) {
        expect((e as TracerError).hint).toContain("apt-get install clang");
      }
    } finally {
      process.env.PATH = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test.skipIf(!haveGcc)("checkBundle rejects a library that needs a newer glibc and exports no libbpf", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetrace-checkbundle-"));
    try {
      // A plain fstat call binds to fstat@GLIBC_2.33 on glibc ≥ 2.33: exactly what the shim prevents.
      writeFileSync(join(dir, "l.c"), "#include <sys/stat.h>\nint size_of(int fd) { struct stat st; return fstat(fd, &st) ? -1 : (int)st.st_size; }\n");
      const so = join(dir, "libnew.so");
      expect(spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", so, join(dir, "l.c")]).status).toBe(0);
      const byName = Object.fromEntries(checkBundle(so).map((c) => [c.name, c]));
      expect(byName["bundle glibc floor"]?.ok).toBe(false);
      expect(byName["bundle glibc floor"]?.detail).toMatch(/needs GLIBC_2\.(3[3-9]|[4-9]\d)/);
      expect(byName["bundle exports"]?.ok).toBe(false);
      expect(byName["bundle exports"]?.detail).toContain("missing bpf_object__open_mem");
      expect(checkBundle(join(dir, "absent.so"))).toEqual([{ name: "libbpf bundle", ok: false, detail: expect.stringContaining("missing") }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
