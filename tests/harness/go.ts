/**
 * @module tests/harness/go — Go toolchains and build modes for tests that build real Go programs.
 *
 * Binaries are built at test time, never committed: `buildFixture` builds a fixture directory
 * (tests/fixtures/go/<name>) with an exact Go toolchain (fetched by the go command itself via
 * GOTOOLCHAIN) in one of the build modes the tracer must handle, and caches the result under
 * .cache/go-matrix/ keyed by a hash of everything that affects the output, so reruns are fast.
 * At most two `go build`s run at once (the CI machine has 2 cores).
 *
 * Also here: the oracle programs in tests/fixtures/go/{oracle,offsets-oracle} and objdump, the
 * independent sources of truth `beetrace inspect` is compared with.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";

/** Repository root (this file is tests/harness/go.ts). */
export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..", "..");
export const FIXTURES_GO = join(REPO_ROOT, "tests", "fixtures", "go");
/** Gitignored build cache; delete it (or set BEETRACE_GO_MATRIX_CACHE) to measure a fresh build. */
export const MATRIX_CACHE = process.env.BEETRACE_GO_MATRIX_CACHE ?? join(REPO_ROOT, ".cache", "go-matrix");

/** Bump when the way binaries are built changes, so old cache entries are not reused. */
const HARNESS_VERSION = "1";

/**
 * The exact toolchains of the matrix: the newest patch of each listed minor, checked with
 * `go list -m -versions golang.org/toolchain` (names like v0.0.1-go1.27.4.linux-amd64).
 * 1.21 is the oldest the inspectee's go.mod allows; 1.26 changed the pclntab/moduledata layout
 * (pcHeader.textStart is 0, moduledata moved to .go.module); the last entry is the newest release.
 * Pinned, not discovered, so a run is reproducible and works from a warm module cache offline.
 */
const TOOLCHAINS = ["go1.21.13", "go1.23.12", "go1.25.14", "go1.26.11", "go1.27.4"] as const;

export function goToolchains(): string[] {
  return [...TOOLCHAINS];
}

/** The newest toolchain: the oracle is built with it so debug/gosym knows every format. */
export function newestToolchain(): string {
  return TOOLCHAINS[TOOLCHAINS.length - 1]!;
}

/**
 * Build modes, each a way real services are shipped:
 * - default: `go build` (CGO_ENABLED=0, internal linker, static, symbols + DWARF)
 * - ldflags-s-w: `-ldflags="-s -w"` (no symbol table, no DWARF; pclntab stays)
 * - strip: the default binary run through binutils `strip` after the build
 * - pie: `-buildmode=pie` (ET_DYN; pointers in data are R_X86_64_RELATIVE relocations)
 * - cgo: CGO_ENABLED=1, build tag inspectee_cgo (links real C), `-ldflags=-linkmode=external`
 *   (gcc links; .text starts with C code, before runtime.text)
 * - trimpath: `-trimpath` (file paths in pclntab/DWARF rewritten)
 * CGO_ENABLED=0 is explicit outside the cgo mode: with cgo on, net/http alone would pull in the
 * cgo DNS resolver and make "default" depend on whether gcc happens to be installed.
 */
export const BUILD_MODES = ["default", "ldflags-s-w", "strip", "pie", "cgo", "trimpath"] as const;
export type BuildMode = (typeof BUILD_MODES)[number];

/** Build tag that switches the inspectee's cgo.go on (see tests/fixtures/go/inspectee/cgo.go). */
export const CGO_FIXTURE_TAG = "inspectee_cgo";

export function goArch(): "amd64" | "arm64" {
  if (process.arch === "x64") return "amd64";
  if (process.arch === "arm64") return "arm64";
  throw new Error(`no Go toolchain mapping for process.arch=${process.arch}`);
}

// ---------------------------------------------------------------------------------------------
// processes

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a command; reject with its stderr when it fails. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; maxBuffer?: number } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv | undefined, maxBuffer: opts.maxBuffer ?? 64 << 20, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err) {
          const where = opts.cwd ? ` (in ${relative(REPO_ROOT, opts.cwd) || "."})` : "";
          reject(new Error(`${cmd} ${args.join(" ")}${where} failed: ${err.message}\n${stderr}`.trimEnd()));
        } else {
          resolvePromise({ stdout, stderr });
        }
      },
    );
  });
}

/** A counting semaphore: at most `limit` holders at once. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // hand the slot over directly
      else this.active--;
    }
  }
}

/** Bounds concurrent go builds and toolchain downloads (2 cores shared with other jobs). */
const heavy = new Semaphore(2);

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Why the Go matrix cannot run here, or undefined when it can: needs `go` (any version; it
 * fetches the pinned toolchains), binutils objdump and strip, and gcc for the cgo mode.
 */
export function goMatrixUnavailable(): string | undefined {
  const missing = ["go", "objdump", "strip", "gcc"].filter((c) => !which(c));
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(", ")} on PATH (scripts/setup.sh installs them)`;
}

/**
 * Environment for the go command: pinned behaviour, nothing inherited that changes output.
 * `toolchain` is the release that reads it: Go 1.17 predates -buildvcs (and VCS stamping) and
 * refuses GOFLAGS naming a flag it does not know.
 */
function goEnv(extra: Record<string, string>, toolchain?: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of ["GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GOWORK", "CGO_CFLAGS", "CGO_LDFLAGS"]) delete env[k];
  const minor = toolchain === undefined ? undefined : /^go1\.(\d+)/.exec(toolchain)?.[1];
  const buildvcs = minor !== undefined && Number(minor) < 18 ? "" : "-buildvcs=false ";
  return {
    ...env,
    // -buildvcs=false: fixtures live in a git checkout; VCS stamping would change the build
    // info with every commit and fail where git is absent. -mod=readonly: go.sum is committed.
    GOFLAGS: `${buildvcs}-mod=readonly`,
    GOWORK: "off",
    ...extra,
  };
}

/**
 * The newest patch release of each Go minor from 1.17 (the register ABI on amd64) to 1.20:
 * the toolchains of Debian 12 (1.19) and Ubuntu 22.04 (1.18) era services. Fetched like the
 * matrix (GOTOOLCHAIN, golang.org/toolchain on the module proxy), which serves them although
 * its version list omits some releases (docs/offsets.md).
 */
export const OLD_TOOLCHAINS = ["go1.17.13", "go1.18.10", "go1.19.13", "go1.20.14"] as const;

// ---------------------------------------------------------------------------------------------
// toolchains

const toolchainGo = new Map<string, Promise<string>>();

/**
 * Make toolchain `v` (e.g. "go1.23.12") available and return the path of its `go` binary.
 * The go command downloads it from the Go module proxy into the module cache on first use
 * (GOTOOLCHAIN=<v>), about 70 MB; later calls are instant.
 */
export function ensureToolchain(v: string): Promise<string> {
  if (!/^go1\.\d+(\.\d+)?$/.test(v)) return Promise.reject(new Error(`not a Go release name: ${v}`));
  let p = toolchainGo.get(v);
  if (!p) {
    p = heavy.use(async () => {
      const { stdout } = await run("go", ["env", "GOROOT", "GOVERSION"], {
        cwd: REPO_ROOT,
        env: goEnv({ GOTOOLCHAIN: v }, v),
      });
      const [goroot, version] = stdout.trim().split("\n");
      if (version !== v || !goroot) throw new Error(`GOTOOLCHAIN=${v} go env gave ${JSON.stringify(stdout)}`);
      const bin = join(goroot, "bin", "go");
      if (!existsSync(bin)) throw new Error(`toolchain ${v}: ${bin} does not exist`);
      return bin;
    });
    p.catch(() => toolchainGo.delete(v)); // let a later call retry
    toolchainGo.set(v, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// building fixtures

export interface BuildFixtureOptions {
  /** Fixture directory (a Go main package with go.mod), absolute or relative to the repo root. */
  dir: string;
  toolchain: string;
  mode: BuildMode;
  /** Extra build tags; the cgo mode adds CGO_FIXTURE_TAG itself. */
  tags?: string[];
  /**
   * An alternate go.mod in `dir` (`go build -modfile`; its go.sum is the same name with .sum):
   * one fixture's sources built against several releases of a module, without a copy per release.
   */
  modfile?: string;
}

function listFiles(dir: string, root = dir, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listFiles(p, root, out);
    else out.push(relative(root, p));
  }
  return out;
}

/** Hash of everything that changes the binary: sources, go.mod/go.sum, toolchain, mode, tags. */
function buildKey(dir: string, toolchain: string, mode: BuildMode, tags: string[], modfile: string | undefined): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ HARNESS_VERSION, toolchain, mode, tags, arch: goArch(), ...(modfile !== undefined ? { modfile } : {}) }));
  for (const f of listFiles(dir)) {
    h.update(`\0${f}\0`);
    h.update(readFileSync(join(dir, f)));
  }
  return h.digest("hex").slice(0, 16);
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Build `dir` with `toolchain` in `mode` and return the path of the executable (cached: the same
 * inputs return the same path without building). Throws with the go command's output on failure.
 */
export function buildFixture(opts: BuildFixtureOptions): Promise<string> {
  const dir = resolve(REPO_ROOT, opts.dir);
  const name = basename(dir);
  const tags = [...new Set([...(opts.tags ?? []), ...(opts.mode === "cgo" ? [CGO_FIXTURE_TAG] : [])])].sort();
  const key = buildKey(dir, opts.toolchain, opts.mode, tags, opts.modfile);
  const variant = opts.modfile !== undefined ? `${basename(opts.modfile, ".mod")}-` : "";
  const outDir = join(MATRIX_CACHE, name, `${variant}${opts.toolchain}-${opts.mode}-${key}`);
  const exe = join(outDir, name);
  const pending = inFlight.get(exe);
  if (pending) return pending;
  const p = (async () => {
    if (existsSync(exe)) return exe;
    const tmp = `${outDir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    mkdirSync(tmp, { recursive: true });
    try {
      const tmpExe = join(tmp, name);
      if (opts.mode === "strip") {
        // Post-build strip of the very binary the default mode produces: same addresses,
        // no .symtab and no DWARF.
        const unstripped = await buildFixture({ ...opts, mode: "default", tags: opts.tags ?? [] });
        await run("strip", ["-o", tmpExe, unstripped]);
      } else {
        const go = await ensureToolchain(opts.toolchain);
        const args = ["build", "-o", tmpExe];
        if (tags.length > 0) args.push("-tags", tags.join(","));
        if (opts.mode === "ldflags-s-w") args.push("-ldflags=-s -w");
        if (opts.mode === "pie") args.push("-buildmode=pie");
        if (opts.mode === "cgo") args.push("-ldflags=-linkmode=external");
        if (opts.mode === "trimpath") args.push("-trimpath");
        if (opts.modfile !== undefined) args.push(`-modfile=${opts.modfile}`);
        args.push(".");
        const env = goEnv({ GOTOOLCHAIN: "local", CGO_ENABLED: opts.mode === "cgo" ? "1" : "0" }, opts.toolchain);
        await heavy.use(() => run(go, args, { cwd: dir, env }));
      }
      try {
        renameSync(tmp, outDir);
      } catch (e) {
        // Another process finished the same build first; its result is identical.
        if (!existsSync(exe)) throw e;
      }
      return exe;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  })();
  inFlight.set(exe, p);
  p.finally(() => inFlight.delete(exe)).catch(() => {});
  return p;
}

// ---------------------------------------------------------------------------------------------
// oracles

export interface OracleModule {
  path: string;
  version: string;
  sum?: string;
  replace?: OracleModule;
}

export interface OracleReport {
  binary: string;
  buildInfo?: {
    goVersion: string;
    path: string;
    main: OracleModule;
    deps: OracleModule[];
    settings: Record<string, string>;
  };
  buildInfoError?: string;
  machine: string;
  pie: boolean;
  hasSymtab: boolean;
  hasDwarf: boolean;
  pclntabSection: string;
  textStart: { value: string; source: string; candidates: Record<string, string>; problems?: string[] };
  symbols: Array<{ name: string; found: boolean; entry?: string; end?: string }>;
}

/** debug/buildinfo + debug/gosym answers for `binary` (tests/fixtures/go/oracle, newest Go). */
export async function runOracle(binary: string, symbols: string[]): Promise<OracleReport> {
  const oracle = await buildFixture({ dir: join(FIXTURES_GO, "oracle"), toolchain: newestToolchain(), mode: "default" });
  const { stdout } = await run(oracle, [binary, ...symbols]);
  return JSON.parse(stdout) as OracleReport;
}

export interface OffsetsOracleReport {
  goVersion: string;
  fields: Array<{ name: string; found: boolean; offset?: number; size?: number; reason?: string; absent?: boolean }>;
}

/** reflect's field offsets as laid out by `toolchain` (tests/fixtures/go/offsets-oracle). */
export async function runOffsetsOracle(toolchain: string, fields: string[]): Promise<OffsetsOracleReport> {
  const oracle = await buildFixture({ dir: join(FIXTURES_GO, "offsets-oracle"), toolchain, mode: "default" });
  const { stdout } = await run(oracle, fields);
  return JSON.parse(stdout) as OffsetsOracleReport;
}

/**
 * Addresses of every `ret` in [start, end) as binutils objdump decodes them (linear sweep of
 * the function body; Go puts no data inside function bodies on amd64, only int3 padding after).
 */
export async function objdumpReturns(binary: string, start: bigint, end: bigint): Promise<bigint[]> {
  const { stdout } = await run("objdump", [
    "-d",
    "--no-show-raw-insn",
    `--start-address=0x${start.toString(16)}`,
    `--stop-address=0x${end.toString(16)}`,
    binary,
  ]);
  const rets: bigint[] = [];
  // "  4a1b2c:\tret" (GNU objdump, AT&T syntax; older binutils print "retq").
  for (const m of stdout.matchAll(/^\s*([0-9a-f]+):\s+(?:(?:rep|repz|bnd)\s+)?retq?\b/gm)) {
    rets.push(BigInt(`0x${m[1]}`));
  }
  return rets;
}

/**
 * A fixture built against one release of a module (`<prefix>-<major.minor>`, e.g. "quic-0.65"):
 * its go.mod names the newest release, `<release>.mod` files (with their .sum) the others, all
 * for the same sources (tests/fixtures/go/http3, tests/fixtures/go/xnet-h2).
 */
export function fixtureRelease(name: string, release: string): { dir: string; modfile?: string } {
  const dir = join(FIXTURES_GO, name);
  const modfile = `${release}.mod`;
  if (existsSync(join(dir, modfile))) return { dir, modfile };
  // Not another release: it must be the one go.mod names.
  const version = /-(\d+\.\d+)$/.exec(release)?.[1];
  if (version === undefined || !readFileSync(join(dir, "go.mod"), "utf8").includes(` v${version}.`)) {
    throw new Error(`fixture ${name}: no ${modfile}, and go.mod does not name release ${release}`);
  }
  return { dir };
}
