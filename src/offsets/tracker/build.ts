/**
 * @module offsets/tracker/build — build one tracker program for one (module, version) and read
 * the offsets of the tracked fields from its DWARF with OUR reader (GoDwarf), the same code that
 * reads a customer's unstripped binary. Also: listing versions with the go command.
 *
 * Each build runs in its own temp module. The go command fetches toolchains (GOTOOLCHAIN=goX.Y.Z)
 * and module sources from the Go module proxy into the module cache; both are reused offline.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../../binary/elf.ts";
import { readBuildInfo } from "../../binary/buildinfo.ts";
import { GoDwarf } from "../../binary/dwarf.ts";
import { isTracerError } from "../../errors.ts";
import { parseGoVersion } from "../version.ts";
import { TRACKER_VERSION, keyOf, type TrackerResult } from "./compact.ts";
import type { ModuleTemplate } from "./templates.ts";

export interface GoRunOptions {
  cwd: string;
  env: Record<string, string>;
  /** ms; a stuck download must not hang the tracker forever */
  timeout?: number;
}

/** Run the go command (or another); resolve with stdout, reject with a one-line-first message. */
export function runCommand(cmd: string, args: string[], opts: GoRunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeout ?? 20 * 60_000, maxBuffer: 64 << 20, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) {
        const tail = (stderr || err.message).trim().split("\n").filter(Boolean);
        reject(new Error(`${[cmd, ...args].join(" ")}: ${tail.slice(-6).join(" | ")}`));
      } else resolve(stdout);
    });
  });
}

/**
 * Environment for tracker builds: nothing inherited that changes the output. `toolchain` is the
 * Go release that will read it: -buildvcs arrived in Go 1.18, and Go 1.17 refuses GOFLAGS that
 * name a flag it does not know ("go: parsing $GOFLAGS: unknown flag -buildvcs").
 */
export function goEnv(extra: Record<string, string>, toolchain?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of ["GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GOFLAGS", "CGO_CFLAGS", "CGO_LDFLAGS", "GOTOOLCHAIN", "GOCACHE"]) delete env[k];
  const v = toolchain === undefined ? undefined : parseGoVersion(toolchain);
  const buildvcs = v && v.major === 1 && v.minor < 18 ? "" : "-buildvcs=false ";
  return { ...env, GOWORK: "off", CGO_ENABLED: "0", GOFLAGS: `${buildvcs}-mod=mod`, ...extra };
}

/**
 * The `go` line of the tracker program's go.mod: 1.21 (as always), lowered to the toolchain's
 * own version before Go 1.21 — older go commands predate toolchain lines and forward-compatibility
 * checks, and a go line newer than the toolchain only invites trouble.
 */
export function goModGoLine(toolchain: string): string {
  const v = parseGoVersion(toolchain);
  return v && v.major === 1 && v.minor < 21 ? `1.${v.minor}` : "1.21";
}

/** GOOS-GOARCH of this machine as toolchain names spell it ("linux-amd64"). */
export function goPlatform(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : process.arch;
  return `linux-${arch}`;
}

export interface BuildJob {
  template: ModuleTemplate;
  /** "go1.22.4" for std, "v1.60.1" for modules */
  version: string;
  /** toolchain to build with: the release itself for std, the pinned newest for modules */
  toolchain: string;
  fields: readonly string[];
  /** scratch dir (gitignored .cache/offsets-tracker) */
  workRoot: string;
  /** shared GOCACHE for module builds; std builds use a throwaway one per release */
  goCache: string;
  /** remove the extracted toolchain afterwards if this build extracted it (its zip stays cached) */
  pruneToolchain: boolean;
  gomodcache: string;
}

/** Build the program and read offsets; never throws for build problems (they become a failed result). */
export async function buildAndRead(job: BuildJob): Promise<TrackerResult> {
  const started = performance.now();
  const module = job.template.module;
  const base = { tracker: TRACKER_VERSION, module, version: keyOf(job.version), toolchain: job.toolchain };
  mkdirSync(job.workRoot, { recursive: true });
  const dir = mkdtempSync(join(job.workRoot, "build-"));
  const toolchainDir = join(job.gomodcache, "golang.org", `toolchain@v0.0.1-${job.toolchain}.${goPlatform()}`);
  const hadToolchain = existsSync(toolchainDir);
  const ownCache = module === "std" ? join(dir, "gocache") : undefined;
  try {
    writeFileSync(join(dir, "go.mod"), `module beetrace.invalid/offsets-probe\n\ngo ${goModGoLine(job.toolchain)}\n`);
    writeFileSync(join(dir, "main.go"), job.template.main);
    const env = goEnv({ GOTOOLCHAIN: job.toolchain, GOCACHE: ownCache ?? job.goCache }, job.toolchain);
    if (module !== "std") await runCommand("go", ["get", `${module}@${job.version}`], { cwd: dir, env });
    const tags = job.template.buildTags?.length ? ["-tags", job.template.buildTags.join(",")] : [];
    await runCommand("go", ["build", ...tags, "-o", "probe", "."], { cwd: dir, env });
    const fields = readOffsets(join(dir, "probe"), job);
    return { ...base, ok: true, fields, seconds: round1((performance.now() - started) / 1000) };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").slice(0, 400);
    return { ...base, ok: false, fields: {}, wanted: [...job.fields], error: msg, seconds: round1((performance.now() - started) / 1000) };
  } finally {
    if (ownCache) makeWritable(ownCache);
    rmSync(dir, { recursive: true, force: true });
    if (job.pruneToolchain && !hadToolchain && existsSync(toolchainDir)) {
      // The module cache is read-only by design (go clean -modcache does the same chmod).
      makeWritable(toolchainDir);
      rmSync(toolchainDir, { recursive: true, force: true });
    }
  }
}

/** Read the built program: check it is what we asked for, then every field's offset from DWARF. */
export function readOffsets(binary: string, job: Pick<BuildJob, "template" | "version" | "toolchain" | "fields">): Record<string, number | null> {
  const buf = readFileSync(binary);
  const elf = ElfFile.parse(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), binary);
  const info = readBuildInfo(elf);
  const builtBy = info.goVersion.split(/\s+/)[0];
  if (builtBy !== job.toolchain) throw new Error(`asked for ${job.toolchain}, the binary says ${info.goVersion}`);
  const module = job.template.module;
  if (module !== "std") {
    const dep = info.deps.find((d) => d.path === module);
    if (!dep) throw new Error(`${module} is not in the build info of the program`);
    if (dep.version !== job.version || dep.replace) throw new Error(`asked for ${module}@${job.version}, got ${dep.version}${dep.replace ? " (replaced)" : ""}`);
  }
  const dwarf = GoDwarf.open(elf);
  if (!dwarf) throw new Error("the program has no DWARF");
  try {
    for (const t of job.template.anchors) {
      if (dwarf.typeSize(t) === undefined) throw new Error(`anchor type ${t} is not in DWARF (the template did not link it)`);
    }
    const out: Record<string, number | null> = {};
    for (const f of job.fields) out[f] = dwarfOffset(dwarf, f);
    return out;
  } catch (e) {
    if (isTracerError(e)) throw new Error(e.message);
    throw e;
  }
}

/**
 * Offset of `field` in DWARF; null when the field — or its whole struct — does not exist. A
 * missing struct counts as absent only because the anchors proved the program linked the
 * module's code: types such as net/http.pattern (Go 1.22+) really are new.
 */
export function dwarfOffset(dwarf: GoDwarf, field: string): number | null {
  const hit = dwarf.resolve(field);
  return hit ? hit.offset : null;
}

function makeWritable(dir: string): void {
  if (!existsSync(dir)) return;
  const walk = (p: string) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    try {
      chmodSync(p, st.mode | 0o200);
    } catch {
      // not ours to change; rm will report it
    }
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** `go list -m -versions MODULE` (run outside any module). */
export async function listVersions(module: string, scratch: string): Promise<string> {
  mkdirSync(scratch, { recursive: true });
  return runCommand("go", ["list", "-m", "-versions", module], { cwd: scratch, env: goEnv({ GOTOOLCHAIN: "local" }), timeout: 120_000 });
}

/**
 * Does the module proxy have toolchain `name` ("go1.21.5") for `platform`? The proxy's version
 * list omits releases that exist, so the tracker asks about each patch number
 * (completeToolchains). Asking is not trivial either: the proxy serves the zip of some releases
 * whose .info it refuses (go1.21.2–1.21.4, go1.19.8, … answer "403 not available" for .info, and
 * so does `go mod download`), while the toolchain switch (GOTOOLCHAIN=name) fetches only the zip
 * and works. So: a zip already in the module cache answers yes; then the cheap .info; then the
 * switch itself (`GOTOOLCHAIN=name go version`, the zip lands in the module cache where the build
 * finds it; the extracted tree is removed again unless it was there before). A "not found / not
 * available" answer is false; any other failure (network) throws.
 */
export async function toolchainExists(name: string, platform: string, scratch: string, gomodcache: string): Promise<boolean> {
  mkdirSync(scratch, { recursive: true });
  const mod = `golang.org/toolchain@v0.0.1-${name}.${platform}`;
  if (existsSync(join(gomodcache, "cache", "download", "golang.org", "toolchain", "@v", `v0.0.1-${name}.${platform}.zip`))) return true;
  try {
    await runCommand("go", ["list", "-m", "-json", mod], { cwd: scratch, env: goEnv({ GOTOOLCHAIN: "local" }), timeout: 120_000 });
    return true;
  } catch (e) {
    if (!notAvailable(e)) throw new Error(`cannot tell whether toolchain ${name} exists: ${String(e)}`);
  }
  const extracted = join(gomodcache, "golang.org", `toolchain@v0.0.1-${name}.${platform}`);
  const had = existsSync(extracted);
  try {
    const out = await runCommand("go", ["version"], { cwd: scratch, env: goEnv({ GOTOOLCHAIN: name }, name), timeout: 20 * 60_000 });
    if (!out.includes(`go version ${name} `)) throw new Error(`GOTOOLCHAIN=${name} go version printed ${out.trim()}`);
    return true;
  } catch (e) {
    if (notAvailable(e)) return false;
    throw new Error(`cannot tell whether toolchain ${name} exists: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (!had && existsSync(extracted)) {
      makeWritable(extracted);
      rmSync(extracted, { recursive: true, force: true });
    }
  }
}

/** Proxies answer 404 or 410 for what they do not have (the GOPROXY protocol); some answer 403 "not available". */
function notAvailable(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /\b(404|410|403)\b|not found|not available|unknown revision|invalid version/i.test(msg);
}

/** GOMODCACHE of the machine's go command. */
export async function goModCache(scratch: string): Promise<string> {
  mkdirSync(scratch, { recursive: true });
  return (await runCommand("go", ["env", "GOMODCACHE"], { cwd: scratch, env: goEnv({ GOTOOLCHAIN: "local" }) })).trim();
}
