/**
 * @module tests/unit/binary/gopclntab-go117.test — Go 1.17 binaries (the first release with the
 * register ABI on amd64) are readable: the Go 1.16 function table (magic 0xfffffffa, absolute
 * pointer-sized entries), the pointer-based build info format, in default, stripped (-s -w) and
 * PIE builds, compared with Go's own debug/gosym and debug/buildinfo (the oracle). The toolchain is
 * fetched by the go command (GOTOOLCHAIN, golang.org/toolchain on the module proxy); skips with the
 * reason when it cannot be.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../../../src/binary/elf.ts";
import { readPclntab } from "../../../src/binary/gopclntab.ts";
import { readBuildInfo } from "../../../src/binary/buildinfo.ts";
import { ensureToolchain, REPO_ROOT } from "../../harness/go.ts";
import { haveGo, inspectWithGo } from "./go-build.ts";

const TOOLCHAIN = "go1.17.13";
const KNOWN = ["main.main", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip", "net/http.(*response).finishRequest"];
const SOURCE = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	// Never true under test; keeps the server and client code linked in.
	if len(os.Args) > 99 {
		_ = http.ListenAndServe("127.0.0.1:0", nil)
		_, _ = http.Get("http://127.0.0.1:1/")
	}
	fmt.Println("hello")
}
`;
const MODES = { default: [], "stripped-ldflags": ["-ldflags=-s -w"], pie: ["-buildmode=pie"] } as const;
type Mode = keyof typeof MODES;

let goBin: string | undefined;
let why: string | undefined;
if (!haveGo()) why = "no go command on PATH";
else {
  try {
    goBin = await ensureToolchain(TOOLCHAIN);
  } catch (e) {
    why = `GOTOOLCHAIN=${TOOLCHAIN} could not be fetched: ${String(e).split("\n")[0]}`;
  }
}

/** Build SOURCE with the Go 1.17 toolchain (cached under .cache/test-bins-go117 by source + mode). */
function build(mode: Mode): Uint8Array {
  const key = createHash("sha256").update(JSON.stringify({ SOURCE, mode, TOOLCHAIN, v: 1 })).digest("hex").slice(0, 16);
  const dir = join(REPO_ROOT, ".cache", "test-bins-go117", `${mode}-${key}`);
  const bin = join(dir, "prog");
  if (!existsSync(bin)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    try {
      writeFileSync(join(tmp, "go.mod"), "module example.com/go117\n\ngo 1.17\n");
      writeFileSync(join(tmp, "main.go"), SOURCE);
      // Go 1.17 knows no -buildvcs (and refuses GOFLAGS naming it).
      const env = { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOWORK: "off" };
      const r = spawnSync(goBin!, ["build", "-o", "prog", ...MODES[mode], "."], { cwd: tmp, env, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`go build (${TOOLCHAIN}, ${mode}) failed: ${r.stderr}`);
      try {
        renameSync(tmp, dir);
      } catch {
        if (!existsSync(bin)) throw new Error(`could not move the build into ${dir}`);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return new Uint8Array(readFileSync(bin));
}

describe.skipIf(why !== undefined)(`${TOOLCHAIN} builds (Go 1.16 function table, pointer build info)`, () => {
  for (const mode of Object.keys(MODES) as Mode[]) {
    test(mode, async () => {
      const bytes = build(mode);
      const key = createHash("sha256").update(JSON.stringify({ SOURCE, mode, TOOLCHAIN, v: 1 })).digest("hex").slice(0, 16);
      const oracle = await inspectWithGo(join(REPO_ROOT, ".cache", "test-bins-go117", `${mode}-${key}`, "prog"));
      const elf = ElfFile.parse(bytes);
      const t = readPclntab(elf);
      expect(t.version).toBe("1.16");
      expect(t.textStartSource).toBe("absolute-entries");
      const ours = t.funcs().map((f) => [f.name, f.entry, f.end] as [string, number, number]);
      expect(ours.length).toBeGreaterThan(1000);
      if (mode !== "pie") expect(ours).toEqual(oracle.funcs ?? []);
      else {
        // In a Go 1.17 PIE the table's absolute entries are R_X86_64_RELATIVE relocations (0 in
        // the file), which debug/gosym does not apply; the symbol table is the oracle instead:
        // every function is at the address of a function symbol (STT_FUNC = 2) of its name. The
        // function table names an ABI0 function or wrapper like the Go function ("runtime.mstart"),
        // the symbol table adds ".abi0" ("runtime.mstart.abi0"), so a name may have two symbols.
        const funcSyms = new Map<string, number[]>();
        for (const sym of oracle.symbols ?? []) {
          if (sym[3] !== 2) continue;
          const name = sym[0].replace(/\.abi0$/, "");
          funcSyms.set(name, [...(funcSyms.get(name) ?? []), sym[1]]);
        }
        let checked = 0;
        for (const [name, entry] of ours) {
          const want = funcSyms.get(name);
          if (want === undefined) continue;
          expect({ name, entry, found: want.includes(entry) }).toEqual({ name, entry, found: true });
          checked++;
        }
        expect(checked).toBeGreaterThan(1000);
      }
      for (const name of KNOWN) {
        const f = t.find(name);
        expect(f, name).toBeDefined();
        expect(elf.isExecutableAddress(f!.entry)).toBe(true);
        expect(ours.find((o) => o[0] === name)).toEqual([name, f!.entry, f!.end]);
      }
      const bi = readBuildInfo(elf);
      expect(bi.goVersion).toBe(TOOLCHAIN);
      expect(bi).toEqual(oracle.buildinfo as never);
    }, 600_000);
  }
});
if (why) test.skip(`${TOOLCHAIN} builds: ${why}`, () => {});
