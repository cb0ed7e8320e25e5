/**
 * @module tests/unit/binary/returns-fixture — a real Go HTTP program plus objdump, the
 * independent truth the return-site finder is compared with.
 *
 * Self-contained on purpose: function bounds come from `go tool nm -size` and the .text mapping
 * from `objdump -h`, not from src/binary/elf.ts or gopclntab.ts, so a bug there cannot hide a
 * bug here. Binaries are built with the machine's `go` (GOTOOLCHAIN=local) into the gitignored
 * .cache/returns-fixture/, keyed by a hash of the source, Go version and build mode.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CACHE = join(REPO_ROOT, ".cache", "returns-fixture");

/** Links net/http server and client code, so the functions the tracer probes are present. */
const MAIN_GO = `package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

func main() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(string(b))
}
`;

/** Why the Go-based tests cannot run here, or undefined if they can. */
export function missingTools(tools: readonly string[] = ["go", "objdump"]): string | undefined {
  for (const cmd of tools) {
    const r = spawnSync(cmd, ["--version"], { stdio: "ignore" });
    if (r.error) return `'${cmd}' is not installed (needed to build and disassemble a Go program)`;
  }
  return undefined;
}

export interface GoFunc {
  name: string;
  addr: number;
  size: number;
}

export interface GoFixture {
  path: string;
  bytes: Uint8Array;
  textVma: number;
  textOff: number;
  textSize: number;
  funcs: GoFunc[];
  byName(name: string): GoFunc;
  /** The bytes of [addr, addr + size) in the file (addr must lie in .text). */
  code(f: GoFunc): Uint8Array;
}

/** default and pie are amd64 builds; arm64 is a cross-build (GOARCH=arm64, default mode). */
export type BuildMode = "default" | "pie" | "arm64";

export function buildFixture(mode: BuildMode): GoFixture {
  const env = { ...process.env, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "", GOOS: "linux", GOARCH: mode === "arm64" ? "arm64" : "amd64" };
  const goVersion = execFileSync("go", ["env", "GOVERSION"], { env, encoding: "utf8" }).trim();
  const key = createHash("sha256").update(MAIN_GO).update(goVersion).update(mode).digest("hex").slice(0, 16);
  const dir = join(CACHE, key);
  const bin = join(dir, "app");
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "main.go"), MAIN_GO);
    writeFileSync(join(dir, "go.mod"), "module returnsfixture\n\ngo 1.21\n");
    const tmp = `${bin}.${process.pid}.tmp`;
    const args = ["build", "-o", tmp, ...(mode === "pie" ? ["-buildmode=pie"] : []), "."];
    execFileSync("go", args, { cwd: dir, env, stdio: ["ignore", "ignore", "inherit"] });
    renameSync(tmp, bin);
  }
  return loadFixture(bin);
}

function loadFixture(path: string): GoFixture {
  const bytes = new Uint8Array(readFileSync(path));
  // objdump -h row: "Idx Name Size VMA LMA File-off Algn"
  const headers = execFileSync("objdump", ["-h", path], { encoding: "utf8" });
  const m = /^\s*\d+\s+\.text\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/m.exec(headers);
  if (!m) throw new Error(`no .text in objdump -h output for ${path}`);
  const textSize = parseInt(m[1]!, 16);
  const textVma = parseInt(m[2]!, 16);
  const textOff = parseInt(m[3]!, 16);
  // go tool nm -size rows: "address size type name" (size in decimal); T/t = text symbols.
  const nm = execFileSync("go", ["tool", "nm", "-size", "-sort", "address", path], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    env: { ...process.env, GOTOOLCHAIN: "local" },
  });
  const funcs: GoFunc[] = [];
  for (const line of nm.split("\n")) {
    const r = /^\s*([0-9a-f]+)\s+(\d+)\s+[Tt]\s+(.+)$/.exec(line);
    if (!r) continue;
    const f = { addr: parseInt(r[1]!, 16), size: Number(r[2]), name: r[3]! };
    // go:textfipsstart/end are 1-byte linker markers around the FIPS module, not functions.
    if (f.name.startsWith("go:text")) continue;
    if (f.size > 0 && f.addr >= textVma && f.addr + f.size <= textVma + textSize) funcs.push(f);
  }
  return {
    path,
    bytes,
    textVma,
    textOff,
    textSize,
    funcs,
    byName(name) {
      const f = funcs.find((g) => g.name === name);
      if (!f) throw new Error(`${name} not found in ${path}`);
      return f;
    },
    code(f) {
      const off = f.addr - textVma + textOff;
      return bytes.subarray(off, off + f.size);
    },
  };
}

export interface ObjdumpListing {
  /** Addresses of near returns (`ret`, `retq`, `retw`, with or without an imm16). */
  rets: number[];
  /** Raw lines, for diagnosing functions objdump itself cannot decode. */
  lines: string[];
}

/**
 * `objdump -d` over [start, stop) (the whole .text when omitted). Binutils' objdump on this
 * machine only knows x86; pass tool "llvm-objdump" for arm64 binaries.
 */
export function objdump(path: string, start?: number, stop?: number, tool = "objdump"): ObjdumpListing {
  const args = ["-d", "--no-show-raw-insn", "-j", ".text"];
  if (start !== undefined && stop !== undefined) args.push(`--start-address=0x${start.toString(16)}`, `--stop-address=0x${stop.toString(16)}`);
  const out = execFileSync(tool, [...args, path], { encoding: "utf8", maxBuffer: 1 << 30 });
  const rets: number[] = [];
  const lines: string[] = [];
  for (const line of out.split("\n")) {
    const m = /^\s*([0-9a-f]+):\s+(\S+)/.exec(line);
    if (!m) continue;
    lines.push(line);
    // x86: ret/retq/retw (AT&T suffixes); arm64 (llvm-objdump): ret, retaa, retab.
    if (/^(ret[wlq]?|reta[ab])$/.test(m[2]!)) rets.push(parseInt(m[1]!, 16));
  }
  return { rets, lines };
}
