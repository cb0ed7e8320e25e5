/** @module tests/unit/binary/go-build — build a Go program in a given mode for tests, cached by source hash + mode. */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type GoBuildMode = "default" | "stripped-ldflags" | "strip" | "pie" | "cgo-external" | "trimpath";

export interface GoBuildRequest {
  /** Text of main.go (package main). */
  source: string;
  mode: GoBuildMode;
  /** GOTOOLCHAIN value, e.g. "go1.21.13" (downloaded by the go command); default: the local go. */
  toolchain?: string;
  /**
   * Extra files relative to the module root, e.g. {"go.mod": "...", "go.sum": "...", "dep/dep.go": "..."}.
   * Without a go.mod one is written (module example.com/fixture, go 1.18). `go mod tidy` runs when
   * go.mod is given without go.sum.
   */
  files?: Record<string, string>;
}

/** The project root (three levels above this file), whose gitignored .cache/ holds the builds. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CACHE = join(ROOT, ".cache", "test-bins");

/** True when a `go` command is on PATH; tests that need it skip with a reason otherwise. */
export function haveGo(): boolean {
  return spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
}

let localGoVersion: string | undefined;

/** Build (or reuse a cached build of) a Go program; resolves to the binary's path. */
export async function buildGoProgram(req: GoBuildRequest): Promise<string> {
  localGoVersion ??= run("go", ["env", "GOVERSION"], ROOT, process.env).trim();
  const files: Record<string, string> = { "main.go": req.source, ...req.files };
  if (req.mode === "cgo-external") {
    // A real cgo call so runtime/cgo and the external linker are both in play.
    files["zz_beetrace_cgo.go"] = CGO_FILE;
  }
  const key = createHash("sha256")
    .update(JSON.stringify({ files: Object.entries(files).sort(), mode: req.mode, toolchain: req.toolchain ?? "", local: localGoVersion, v: 1 }))
    .digest("hex")
    .slice(0, 20);
  const dir = join(CACHE, `${req.mode}-${key}`);
  const bin = join(dir, "prog");
  if (existsSync(bin)) return bin;

  // Build in a private directory, then rename: concurrent test runs never see half a build.
  mkdirSync(CACHE, { recursive: true });
  const tmp = join(CACHE, `tmp-${key}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    if (!files["go.mod"]) files["go.mod"] = "module example.com/fixture\n\ngo 1.18\n";
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(tmp, name)), { recursive: true });
      writeFileSync(join(tmp, name), text);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      GOFLAGS: "-buildvcs=false",
      GOTOOLCHAIN: req.toolchain ?? "local",
      // Pure Go unless the mode is about cgo: reproducible, and no C compiler needed.
      CGO_ENABLED: req.mode === "cgo-external" ? "1" : "0",
    };
    if (req.files?.["go.mod"] && !req.files["go.sum"]) run("go", ["mod", "tidy"], tmp, env);
    const args = ["build", "-o", "prog"];
    if (req.mode === "stripped-ldflags") args.push("-ldflags=-s -w");
    if (req.mode === "pie") args.push("-buildmode=pie");
    if (req.mode === "cgo-external") args.push("-ldflags=-linkmode=external");
    if (req.mode === "trimpath") args.push("-trimpath");
    args.push(".");
    run("go", args, tmp, env);
    if (req.mode === "strip") run("strip", ["prog"], tmp, env);
    try {
      renameSync(tmp, dir);
    } catch {
      // Another process finished the same build first; theirs is identical.
      if (!existsSync(bin)) copyFileSync(join(tmp, "prog"), bin);
    }
  } finally {
    if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status}):\n${r.stderr}`);
  return r.stdout;
}

const CGO_FILE = `package main

/*
static int beetrace_cgo_answer(void) { return 42; }
*/
import "C"

// cgoAnswer makes the cgo call reachable so the C object is linked in.
var cgoAnswer = func() int { return int(C.beetrace_cgo_answer()) }
`;

/**
 * A Go program that links net/http's server and client paths and two dependencies: a real module
 * (golang.org/x/text) and a local one reached through a go.mod `replace`, so build info has deps,
 * sums and a replacement. Pass as `{ source: FIXTURE.source, files: FIXTURE.files, mode }`.
 */
export const FIXTURE: { source: string; files: Record<string, string> } = {
  source: `package main

import (
	"fmt"
	"net/http"
	"os"

	"example.com/localdep"
	"golang.org/x/text/language"
)

func main() {
	// Never true under test; keeps the server and client code linked in.
	if len(os.Args) > 99 {
		_ = http.ListenAndServe("127.0.0.1:0", nil)
		_, _ = http.Get("http://127.0.0.1:1/")
	}
	fmt.Println(localdep.Greeting(), language.English)
}
`,
  files: {
    "go.mod": `module example.com/fixture

go 1.18

require (
	example.com/localdep v0.1.0
	golang.org/x/text v0.14.0
)

replace example.com/localdep => ./localdep
`,
    "localdep/go.mod": "module example.com/localdep\n\ngo 1.18\n",
    "localdep/localdep.go": "package localdep\n\n// Greeting is here so the fixture has a replaced dependency.\nfunc Greeting() string { return \"hello\" }\n",
  },
};

/** What Go's own debug/elf, debug/buildinfo and debug/gosym say about a binary (see ORACLE_SOURCE). */
export interface GoOracle {
  elfError?: string;
  type: number;
  machine: number;
  sections: { name: string; type: number; flags: number; addr: number; offset: number; size: number; link: number; info: number; addralign: number; entsize: number }[];
  progs: { type: number; flags: number; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; align: number }[];
  symbols: [string, number, number, number, number, number][] | null; // name, value, size, type, bind, shndx
  dynsyms: [string, number, number, number, number, number][] | null;
  buildinfo?: { goVersion: string; path: string; main: unknown; deps: unknown[]; settings: { key: string; value: string }[] };
  buildinfoError?: string;
  /** Where the oracle took runtime.text from: the symbol, or the .text section (valid for internal linking only). */
  textStart?: number;
  textStartFrom?: "runtime.text" | ".text";
  funcs?: [string, number, number][]; // name, entry, end
  fileOffsets?: Record<string, number>;
}

/**
 * The oracle: independent of our readers, it uses the Go standard library. runtime.text comes from
 * the symbol table, or for binaries without one, from the .text section address — correct only for
 * Go's internal linker, which places runtime.text first in .text (tests check that on unstripped builds).
 */
export const ORACLE_SOURCE = `package main

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/json"
	"os"
)

type module struct {
	Path    string  \`json:"path"\`
	Version string  \`json:"version"\`
	Sum     string  \`json:"sum,omitempty"\`
	Replace *module \`json:"replace,omitempty"\`
}

func main() {
	path := os.Args[1]
	out := map[string]any{}
	defer func() { _ = json.NewEncoder(os.Stdout).Encode(out) }()
	f, err := elf.Open(path)
	if err != nil {
		out["elfError"] = err.Error()
		return
	}
	out["type"] = int(f.Type)
	out["machine"] = int(f.Machine)
	secs := []map[string]any{}
	for _, s := range f.Sections {
		secs = append(secs, map[string]any{"name": s.Name, "type": int(s.Type), "flags": int(s.Flags), "addr": s.Addr, "offset": s.Offset,
			"size": s.FileSize, "link": s.Link, "info": s.Info, "addralign": s.Addralign, "entsize": s.Entsize})
	}
	out["sections"] = secs
	progs := []map[string]any{}
	for _, p := range f.Progs {
		progs = append(progs, map[string]any{"type": int(p.Type), "flags": int(p.Flags), "offset": p.Off, "vaddr": p.Vaddr, "paddr": p.Paddr,
			"filesz": p.Filesz, "memsz": p.Memsz, "align": p.Align})
	}
	out["progs"] = progs
	conv := func(ss []elf.Symbol) [][]any {
		r := [][]any{}
		for _, s := range ss {
			r = append(r, []any{s.Name, s.Value, s.Size, int(elf.ST_TYPE(s.Info)), int(elf.ST_BIND(s.Info)), int(s.Section)})
		}
		return r
	}
	syms, _ := f.Symbols()
	out["symbols"] = conv(syms)
	dyn, _ := f.DynamicSymbols()
	out["dynsyms"] = conv(dyn)

	if bi, err := buildinfo.ReadFile(path); err != nil {
		out["buildinfoError"] = err.Error()
	} else {
		mod := func(p, v, s string) *module { return &module{Path: p, Version: v, Sum: s} }
		main := mod(bi.Main.Path, bi.Main.Version, bi.Main.Sum)
		if bi.Main.Replace != nil {
			main.Replace = mod(bi.Main.Replace.Path, bi.Main.Replace.Version, bi.Main.Replace.Sum)
		}
		deps := []*module{}
		for _, d := range bi.Deps {
			m := mod(d.Path, d.Version, d.Sum)
			if d.Replace != nil {
				m.Replace = mod(d.Replace.Path, d.Replace.Version, d.Replace.Sum)
			}
			deps = append(deps, m)
		}
		settings := []map[string]string{}
		for _, s := range bi.Settings {
			settings = append(settings, map[string]string{"key": s.Key, "value": s.Value})
		}
		out["buildinfo"] = map[string]any{"goVersion": bi.GoVersion, "path": bi.Path, "main": main, "deps": deps, "settings": settings}
	}

	var pcln []byte
	if s := f.Section(".gopclntab"); s != nil {
		pcln, _ = s.Data()
	}
	if pcln == nil {
		return
	}
	var text uint64
	for _, s := range syms {
		if s.Name == "runtime.text" {
			text, out["textStartFrom"] = s.Value, "runtime.text"
		}
	}
	if text == 0 {
		if s := f.Section(".text"); s != nil {
			text, out["textStartFrom"] = s.Addr, ".text"
		}
	}
	out["textStart"] = text
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
	if err != nil {
		out["gosymError"] = err.Error()
		return
	}
	funcs := [][]any{}
	offs := map[string]uint64{}
	for _, fn := range tab.Funcs {
		funcs = append(funcs, []any{fn.Name, fn.Entry, fn.End})
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && fn.Entry >= p.Vaddr && fn.Entry < p.Vaddr+p.Filesz {
				if _, seen := offs[fn.Name]; !seen {
					offs[fn.Name] = fn.Entry - p.Vaddr + p.Off
				}
			}
		}
	}
	out["funcs"] = funcs
	out["fileOffsets"] = offs
}
`;

/** Run the oracle (built once with the local go) on `binary`. */
export async function inspectWithGo(binary: string): Promise<GoOracle> {
  const oracle = await buildGoProgram({ source: ORACLE_SOURCE, mode: "default" });
  return JSON.parse(run(oracle, [binary], ROOT, process.env)) as GoOracle;
}

// ---- Byte surgery on built binaries, for damage tests (ELF64 little-endian field offsets from elf.h). ----

/** Section header fields: [offset within Elf64_Shdr, size]. */
export const SHDR = { name: [0, 4], type: [4, 4], flags: [8, 8], addr: [16, 8], offset: [24, 8], size: [32, 8], link: [40, 4], info: [44, 4] } as const;

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Write `value` as a little-endian unsigned field of `size` bytes at `off`. */
export function putLE(b: Uint8Array, off: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
  const v = dv(b);
  if (size === 1) v.setUint8(off, Number(value));
  else if (size === 2) v.setUint16(off, Number(value), true);
  else if (size === 4) v.setUint32(off, Number(value), true);
  else v.setBigUint64(off, BigInt(value), true);
}

/** File offset of section `index`'s header. */
export function shdrOffset(b: Uint8Array, index: number): number {
  const v = dv(b);
  return Number(v.getBigUint64(40, true)) + index * v.getUint16(58, true);
}

/** Set one field of section `index`'s header. */
export function setSectionField(b: Uint8Array, index: number, field: keyof typeof SHDR, value: number | bigint): void {
  const [off, size] = SHDR[field];
  putLE(b, shdrOffset(b, index) + off, size, value);
}

/** Remove the section header table (e_shoff = e_shnum = e_shstrndx = 0): only segments remain. */
export function dropSectionHeaders(b: Uint8Array): void {
  putLE(b, 40, 8, 0);
  putLE(b, 60, 2, 0);
  putLE(b, 62, 2, 0);
}

/** Rename a section in place by overwriting its name in the section name table (same length). */
export function renameSection(b: Uint8Array, index: number, newName: string): void {
  const v = dv(b);
  const strndx = v.getUint16(62, true);
  const strOff = Number(v.getBigUint64(shdrOffset(b, strndx) + SHDR.offset[0], true));
  const nameOff = v.getUint32(shdrOffset(b, index), true);
  b.set(new TextEncoder().encode(newName), strOff + nameOff);
}
