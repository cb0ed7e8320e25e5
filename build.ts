#!/usr/bin/env bun
/**
 * @module build — builds the embedded libbpf bundle, compiles bpf/*.bpf.c and produces the single
 * executable dist/beetrace with `bun build --compile`.
 *
 *   bun build.ts              build what is stale, then dist/beetrace, then check that it runs
 *   bun build.ts --check      verify only (bundle glibc floor, objects, executable); writes nothing
 *   bun build.ts --no-compile stop after the bundle and the BPF objects
 *   bun build.ts --force      rebuild the bundle and the objects even when the cache is current
 *   bun build.ts --refetch    download the Debian source packages again (newer point release)
 *   bun build.ts --check-gen  fail if a committed src/probes/<lib>/<lib>.gen.ts differs from what the
 *                             BTF of a fresh compile gives (build/btf-codegen.ts); writes nothing
 *
 * Outputs (all gitignored): .cache/libbpf/out/libbpf-bundle.so (+ include/bpf/*.h),
 * .cache/bpf/<name>.bpf.o, dist/beetrace. Each cached step records a SHA-256 of its inputs
 * and is skipped while that hash is unchanged.
 *
 * libbpf and elfutils come from Debian's source packages, fetched by name with apt through a
 * private sources list whose mirror is read from this machine's own apt configuration; they
 * are kept under .cache/libbpf/src, so later builds need no network.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { EXIT_CODES, TracerError, isTracerError } from "./src/errors.ts";
import { checkGenerated, writeGenerated, type CompileEnv } from "./build/btf-codegen.ts";
import { SOURCE_LAYOUT } from "./src/bpf/embedded.ts";
import { BEETRACE_VERSION } from "./src/version.ts";

export const ROOT = dirname(fileURLToPath(import.meta.url));
const at = (...parts: string[]) => join(ROOT, ...parts);

export const PATHS = {
  libbpfCache: at(".cache/libbpf"),
  libbpfSources: at(".cache/libbpf/src"),
  libbpfApt: at(".cache/libbpf/apt"),
  libbpfWork: at(".cache/libbpf/work"),
  libbpfOut: at(".cache/libbpf/out"),
  libbpfStamp: at(".cache/libbpf/bundle.json"),
  bundle: at(SOURCE_LAYOUT.libbpfBundle),
  bpfSources: at("bpf"),
  bpfObjects: at(SOURCE_LAYOUT.bpfObjectDir),
  bpfStamp: at(SOURCE_LAYOUT.bpfObjectDir, "stamp.json"),
  offsetsJson: at(SOURCE_LAYOUT.offsetsJson),
  embeddedTs: at("src/bpf/embedded.ts"),
  icedGlue: at("src/vendor/iced/iced_x86.gen.js"),
  mainTs: at("src/main.ts"),
  executable: at("dist/beetrace"),
  lock: at(".cache/build.lock"),
  buildScript: at("scripts/build-libbpf.sh"),
  compatShim: at("bpf/compat/glibc-compat.c"),
} as const;

/** Bun's runtime needs at most GLIBC_2.17 (bun-libbpf spike §0); the bundle must not raise that floor. */
export const GLIBC_FLOOR = "2.17";
/** The only libraries the bundle may need: glibc's libc and its dynamic loader (libelf's TLS uses __tls_get_addr). */
export const ALLOWED_NEEDED = ["libc.so.6", "ld-linux-x86-64.so.2"];
/** Exports src/bpf depends on; if one is missing the recipe broke (e.g. --exclude-libs,ALL). */
export const REQUIRED_EXPORTS = [
  "bpf_object__open_mem",
  "bpf_object__load",
  "bpf_program__attach_uprobe_opts",
  "ring_buffer__new",
  "libbpf_major_version",
];
/** Debian source packages the bundle is built from (zlib comes from zlib1g-dev's libz.a). */
export const SOURCE_PACKAGES = ["libbpf", "elfutils"];
/** Flags from the BPF build recipe: -g so the object carries BTF, x86 register names for PT_REGS_*. */
export const BPF_CFLAGS = ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Wall", "-Werror"];

// ---------------------------------------------------------------------------------------------
// apt sources: find the Debian mirror this machine already uses

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Path(s) of a keyring, or an inline key block (deb822 only), exactly as written. */
  signedBy: string | undefined;
  /** "file:line" for messages. */
  origin: string;
}

/** One-line format (sources.list(5)): `deb [opt=val ...] URI SUITE [COMPONENT...]`. */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) return;
    let signedBy: string | undefined;
    for (const opt of (m[2] ?? "").trim().split(/\s+/)) {
      const eq = opt.indexOf("=");
      if (eq > 0 && opt.slice(0, eq).toLowerCase() === "signed-by") signedBy = opt.slice(eq + 1);
    }
    out.push({
      types: [m[1] ?? ""],
      uris: [m[3] ?? ""],
      suites: [m[4] ?? ""],
      components: (m[5] ?? "").trim().split(/\s+/).filter((c) => c !== ""),
      signedBy,
      origin: `${file}:${i + 1}`,
    });
  });
  return out;
}

/** deb822 format (sources.list(5), "DEB822-STYLE FORMAT"): stanzas of `Field: value` lines. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  let fields = new Map<string, string>();
  let last: string | undefined;
  let startLine = 1;
  const flush = () => {
    if (fields.size > 0 && (fields.get("enabled") ?? "yes").trim().toLowerCase() !== "no") {
      const words = (k: string) => (fields.get(k) ?? "").split(/\s+/).filter((w) => w !== "");
      // Keep an inline key block's line structure; only an all-blank value means "none".
      const signed = fields.get("signed-by")?.trimEnd();
      out.push({
        types: words("types"),
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        signedBy: signed === undefined || signed.trim() === "" ? undefined : signed,
        origin: `${file}:${startLine}`,
      });
    }
    fields = new Map();
    last = undefined;
  };
  text.split("\n").forEach((line, i) => {
    if (line.startsWith("#")) return;
    if (line.trim() === "") return flush();
    if (fields.size === 0) startLine = i + 1;
    if (/^\s/.test(line) && last !== undefined) {
      // Continuation line (e.g. an inline PGP key in Signed-By); keep it verbatim.
      fields.set(last, `${fields.get(last) ?? ""}\n${line}`);
      return;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) return;
    last = line.slice(0, colon).trim().toLowerCase();
    fields.set(last, line.slice(colon + 1).trim());
  });
  flush();
  return out;
}

/** This machine's apt sources: /etc/apt/sources.list plus sources.list.d/*.list and *.sources. */
export function readSystemAptSources(etcApt = "/etc/apt"): AptSource[] {
  const out: AptSource[] = [];
  const main = join(etcApt, "sources.list");
  if (existsSync(main)) out.push(...parseOneLineSources(readFileSync(main, "utf8"), main));
  const dir = join(etcApt, "sources.list.d");
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (f.endsWith(".list")) out.push(...parseOneLineSources(readFileSync(p, "utf8"), p));
      else if (f.endsWith(".sources")) out.push(...parseDeb822Sources(readFileSync(p, "utf8"), p));
    }
  }
  return out;
}

export interface DebianMirror {
  uri: string;
  suite: string;
  signedBy: string | undefined;
  origin: string;
}

/**
 * The entry that serves the release itself: suite == codename (not -updates/-security) with
 * the `main` component, which is where libbpf and elfutils live.
 */
export function pickDebianMirror(sources: AptSource[], codename: string): DebianMirror | TracerError {
  for (const s of sources) {
    if (!s.types.some((t) => t === "deb" || t === "deb-src")) continue;
    if (!s.suites.includes(codename) || !s.components.includes("main")) continue;
    const uri = s.uris[0];
    if (uri === undefined) continue;
    return { uri, suite: codename, signedBy: s.signedBy, origin: s.origin };
  }
  return new TracerError("file_not_found", `no apt source for '${codename} main' in this machine's apt configuration`, {
    hint: `add one to /etc/apt/sources.list.d, or put the ${SOURCE_PACKAGES.join(" and ")} source packages (*.dsc + tarballs) into .cache/libbpf/src yourself`,
  });
}

/** A private deb822 sources file with one deb-src stanza (the system's apt configuration is not touched). */
export function debSrcStanza(m: DebianMirror): string {
  const lines = ["Types: deb-src", `URIs: ${m.uri}`, `Suites: ${m.suite}`, "Components: main"];
  // An inline key starts on the line after the field name (its value begins with "\n").
  if (m.signedBy !== undefined) lines.push(m.signedBy.startsWith("\n") ? `Signed-By:${m.signedBy}` : `Signed-By: ${m.signedBy}`);
  return lines.join("\n") + "\n";
}

/** VERSION_CODENAME from os-release(5) text, or undefined. */
export function osCodename(osRelease: string): string | undefined {
  const m = /^VERSION_CODENAME=["']?([A-Za-z0-9._-]+)["']?\s*$/m.exec(osRelease);
  return m?.[1];
}

// ---------------------------------------------------------------------------------------------
// bundle checks (objdump / readelf output)

/** -1, 0, 1 for dotted numeric versions ("2.3.4" < "2.17"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Distinct GLIBC_x.y versions referenced in `objdump -T` output, ascending. */
export function glibcVersions(objdumpT: string): string[] {
  const seen = new Set<string>();
  for (const m of objdumpT.matchAll(/\bGLIBC_(\d+(?:\.\d+)*)\b/g)) if (m[1] !== undefined) seen.add(m[1]);
  return [...seen].sort(compareVersions);
}

/** Library names from `readelf -d` NEEDED entries. */
export function neededLibraries(readelfD: string): string[] {
  return [...readelfD.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
}

/** Defined dynamic symbols (names without @version) from `objdump -T`. */
export function definedDynamicSymbols(objdumpT: string): Set<string> {
  const out = new Set<string>();
  for (const line of objdumpT.split("\n")) {
    // "0000000000012340 g    DF .text  00000000000000a1  LIBBPF_0.0.1 bpf_object__open_mem"
    const m = /^[0-9a-f]+\s+g\s+\S*\s+(\.\S+)\s+[0-9a-f]+\s+(?:\(?\S+\)?\s+)?(\S+)$/.exec(line.trim());
    if (m && m[1] !== "*UND*" && m[2] !== undefined) out.add(m[2]);
  }
  return out;
}

export interface CheckItem {
  name: string;
  ok: boolean;
  detail: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; inherit?: boolean; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    encoding: "utf8",
    stdio: opts.inherit ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutMs,
  });
  if (r.error) {
    const code = (r.error as { code?: string }).code;
    if (code === "ENOENT") {
      throw new TracerError("file_not_found", `'${cmd}' is not installed`, { hint: "run scripts/setup.sh (it installs the build tools)" });
    }
    throw new TracerError("io_error", `${cmd}: ${r.error.message}`, { cause: r.error });
  }
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function mustRun(cmd: string, args: string[], what: string, opts: { cwd?: string; inherit?: boolean; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    const tail = r.stderr.trim().split("\n").slice(-20);
    throw new TracerError("internal", `${what} failed (${cmd} exit ${r.status})`, { detail: tail });
  }
  return r.stdout;
}

/** Checks the bundle the way a target machine would see it: glibc floor, NEEDED, exports. */
export function checkBundle(path = PATHS.bundle): CheckItem[] {
  if (!existsSync(path)) return [{ name: "libbpf bundle", ok: false, detail: `${relative(ROOT, path)} missing; run 'bun build.ts'` }];
  const dynsyms = mustRun("objdump", ["-T", path], "objdump -T");
  const versions = glibcVersions(dynsyms);
  const newest = versions.at(-1) ?? "none";
  const tooNew = versions.filter((v) => compareVersions(v, GLIBC_FLOOR) > 0);
  const needed = neededLibraries(mustRun("readelf", ["-d", path], "readelf -d"));
  const extra = needed.filter((n) => !ALLOWED_NEEDED.includes(n));
  const exported = definedDynamicSymbols(dynsyms);
  const missing = REQUIRED_EXPORTS.filter((s) => !exported.has(s));
  return [
    {
      name: "bundle glibc floor",
      ok: tooNew.length === 0,
      detail: tooNew.length === 0 ? `newest GLIBC_${newest} <= ${GLIBC_FLOOR}` : `needs GLIBC_${tooNew.join(", GLIBC_")} (> ${GLIBC_FLOOR}); see bpf/compat/glibc-compat.c`,
    },
    { name: "bundle NEEDED", ok: extra.length === 0 && needed.length > 0, detail: needed.join(", ") || "none (not a dynamic object?)" },
    {
      name: "bundle exports",
      ok: missing.length === 0,
      detail: missing.length === 0 ? `${exported.size} symbols incl. ${REQUIRED_EXPORTS.join(", ")}` : `missing ${missing.join(", ")}`,
    },
  ];
}

/** ELF64 little-endian with e_machine == EM_BPF (247, include/uapi/linux/elf-em.h). */
export function isBpfObject(bytes: Uint8Array): boolean {
  if (bytes.length < 64) return false;
  const magic = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
  const EM_BPF = 247;
  return magic && bytes[4] === 2 && bytes[5] === 1 && (bytes[18] ?? 0) + ((bytes[19] ?? 0) << 8) === EM_BPF;
}

// ---------------------------------------------------------------------------------------------
// hashing, locking

function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

/** Files under `dir` (recursive), sorted, as "relative path" → absolute path. */
function listFiles(dir: string, keep: (rel: string) => boolean = () => true): [string, string][] {
  const out: [string, string][] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && keep(relative(dir, p))) out.push([relative(dir, p), p]);
    }
  };
  walk(dir);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function hashTree(dir: string, keep?: (rel: string) => boolean): string {
  const h = createHash("sha256");
  for (const [rel, abs] of listFiles(dir, keep)) h.update(`${rel}\0${sha256File(abs)}\n`);
  return h.digest("hex");
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(path, "utf8"));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Serialises builds in one checkout (several people or test runs may start one at once). */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(PATHS.lock), { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  let told = false;
  for (;;) {
    try {
      mkdirSync(PATHS.lock);
      writeFileSync(join(PATHS.lock, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      const holder = Number.parseInt(existsSync(join(PATHS.lock, "pid")) ? readFileSync(join(PATHS.lock, "pid"), "utf8") : "", 10);
      if (Number.isFinite(holder) && !pidAlive(holder)) {
        rmSync(PATHS.lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new TracerError("internal", `another build (pid ${holder}) has held ${relative(ROOT, PATHS.lock)} for 20 minutes`, {
          hint: "if no build is running, remove that directory",
        });
      }
      if (!told) console.log(`build: waiting for another build (pid ${Number.isFinite(holder) ? holder : "?"}) to finish`);
      told = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(PATHS.lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// step 1: Debian source packages

function dscFiles(): string[] {
  if (!existsSync(PATHS.libbpfSources)) return [];
  return readdirSync(PATHS.libbpfSources).filter((f) => f.endsWith(".dsc")).sort();
}

/** Files a .dsc lists (its Checksums-Sha256 section), so we know the download is complete. */
export function dscListedFiles(dsc: string): string[] {
  const m = /^Checksums-Sha256:\s*\n((?:[ \t]+\S.*\n?)+)/m.exec(dsc);
  if (!m) return [];
  return (m[1] ?? "")
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[2])
    .filter((f): f is string => f !== undefined && f !== "");
}

function haveSources(): boolean {
  const dscs = dscFiles();
  return SOURCE_PACKAGES.every((pkg) => {
    const mine = dscs.filter((f) => f.startsWith(`${pkg}_`));
    if (mine.length !== 1 || mine[0] === undefined) return false;
    const listed = dscListedFiles(readFileSync(join(PATHS.libbpfSources, mine[0]), "utf8"));
    return listed.length > 0 && listed.every((f) => existsSync(join(PATHS.libbpfSources, f)));
  });
}

function fetchSources(): void {
  const codename = osCodename(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "");
  if (codename === undefined) {
    throw new TracerError("unrecognized_format", "cannot tell this machine's Debian release (no VERSION_CODENAME in /etc/os-release)", {
      hint: `put the ${SOURCE_PACKAGES.join(" and ")} source packages (*.dsc + tarballs) into .cache/libbpf/src yourself`,
    });
  }
  const mirror = pickDebianMirror(readSystemAptSources(), codename);
  if (isTracerError(mirror)) throw mirror;
  console.log(`build: fetching Debian sources ${SOURCE_PACKAGES.join(", ")} (${codename}, mirror from ${mirror.origin})`);
  const apt = PATHS.libbpfApt;
  rmSync(apt, { recursive: true, force: true });
  for (const d of ["etc/sources.list.d", "lists/partial", "cache/archives/partial"]) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, "etc/sources.list"), "");
  writeFileSync(join(apt, "etc/sources.list.d/debian-src.sources"), debSrcStanza(mirror));
  // Private lists and caches: nothing under /var/lib/apt or /var/cache/apt is read or written.
  const opts = [
    `Dir::Etc::SourceList=${join(apt, "etc/sources.list")}`,
    `Dir::Etc::SourceParts=${join(apt, "etc/sources.list.d")}`,
    `Dir::State::Lists=${join(apt, "lists")}`,
    `Dir::Cache=${join(apt, "cache")}`,
    "Dir::Cache::pkgcache=",
    "Dir::Cache::srcpkgcache=",
    // .cache/ may not be readable by apt's unprivileged download user.
    "APT::Sandbox::User=root",
  ].flatMap((o) => ["-o", o]);
  const dl = join(PATHS.libbpfCache, "src.partial");
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  try {
    mustRun("apt-get", [...opts, "-qq", "update"], "apt-get update (private deb-src list)");
    mustRun("apt-get", [...opts, "-qq", "source", "--download-only", ...SOURCE_PACKAGES], "apt-get source --download-only", { cwd: dl });
  } catch (e) {
    if (!isTracerError(e)) throw e;
    throw new TracerError(e.code, e.message, {
      detail: e.detail,
      hint: `without access to ${mirror.uri}, copy the ${SOURCE_PACKAGES.join(" and ")} source packages (*.dsc + tarballs, from 'apt-get source --download-only ${SOURCE_PACKAGES.join(" ")}') into ${relative(ROOT, PATHS.libbpfSources)}`,
    });
  }
  rmSync(PATHS.libbpfSources, { recursive: true, force: true });
  renameSync(dl, PATHS.libbpfSources);
  rmSync(apt, { recursive: true, force: true }); // ~10 MB of package lists, not needed again
  if (!haveSources()) {
    throw new TracerError("io_error", `apt-get source did not leave one complete .dsc per package in ${relative(ROOT, PATHS.libbpfSources)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// step 2: the libbpf bundle

function bundleInputHash(): string {
  const h = createHash("sha256");
  h.update(`script ${sha256File(PATHS.buildScript)}\ncompat ${sha256File(PATHS.compatShim)}\n`);
  for (const f of dscFiles()) h.update(`dsc ${f} ${sha256File(join(PATHS.libbpfSources, f))}\n`);
  const libz = run("gcc", ["-print-file-name=libz.a"]).stdout.trim();
  h.update(`libz ${existsSync(libz) ? sha256File(libz) : "missing"}\n`);
  h.update(`gcc ${run("gcc", ["--version"]).stdout.split("\n")[0] ?? ""}\n`);
  return h.digest("hex");
}

export function bundleIsCurrent(): boolean {
  if (!haveSources() || !existsSync(PATHS.bundle)) return false;
  const stamp = readJson(PATHS.libbpfStamp);
  return stamp?.inputHash === bundleInputHash() && stamp?.sha256 === sha256File(PATHS.bundle);
}

function buildBundle(force: boolean, refetch: boolean): void {
  if (refetch || !haveSources()) fetchSources();
  const inputHash = bundleInputHash();
  const stamp = readJson(PATHS.libbpfStamp);
  if (!force && existsSync(PATHS.bundle) && stamp?.inputHash === inputHash && stamp?.sha256 === sha256File(PATHS.bundle)) {
    console.log(`build: libbpf bundle is current (${relative(ROOT, PATHS.bundle)})`);
    return;
  }
  const t0 = performance.now();
  console.log("build: building the libbpf bundle (libbpf + libelf + zlib; ~40 s on 2 cores)");
  mustRun("bash", [PATHS.buildScript, PATHS.libbpfSources, PATHS.libbpfWork, PATHS.libbpfOut], "scripts/build-libbpf.sh", { inherit: true });
  const problems = checkBundle().filter((c) => !c.ok);
  if (problems.length > 0) {
    throw new TracerError("internal", `the built libbpf bundle is not self-contained: ${problems.map((p) => `${p.name}: ${p.detail}`).join("; ")}`);
  }
  rmSync(PATHS.libbpfWork, { recursive: true, force: true });
  const versions = Object.fromEntries(dscFiles().map((f) => [f.split("_")[0], f.replace(/^[^_]+_/, "").replace(/\.dsc$/, "")]));
  writeAtomic(
    PATHS.libbpfStamp,
    JSON.stringify(
      { inputHash, sha256: sha256File(PATHS.bundle), size: statSync(PATHS.bundle).size, sources: versions, buildSeconds: Math.round((performance.now() - t0) / 100) / 10 },
      null,
      2,
    ) + "\n",
  );
  console.log(`build: libbpf bundle built in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${statSync(PATHS.bundle).size} bytes`);
}

// ---------------------------------------------------------------------------------------------
// step 3: BPF objects

/** Include path for BPF C: our headers, libbpf's bpf/*.h from the bundle build, the arch's asm/. */
export function bpfIncludeDirs(): string[] {
  const triplet = run("gcc", ["-dumpmachine"]).stdout.trim() || "x86_64-linux-gnu";
  return [PATHS.bpfSources, join(PATHS.bpfSources, "include"), join(PATHS.libbpfOut, "include"), `/usr/include/${triplet}`];
}

function clangPath(): string {
  const r = spawnSync("clang", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new TracerError("file_not_found", "clang is not installed; it compiles bpf/*.bpf.c into BPF objects", {
      hint: "apt-get install clang llvm (or run scripts/setup.sh)",
    });
  }
  return "clang";
}

/** Compiles one BPF C file; the object is written atomically. */
export function compileBpfObject(src: string, out: string, includeDirs = bpfIncludeDirs()): void {
  const clang = clangPath();
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = run(clang, [...BPF_CFLAGS, ...includeDirs.map((d) => `-I${d}`), "-c", src, "-o", tmp]);
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const lines = r.stderr.trim().split("\n");
    throw new TracerError("internal", `clang failed on ${relative(ROOT, src)}: ${lines.find((l) => l.includes("error:")) ?? lines[0] ?? ""}`, {
      detail: lines,
    });
  }
  // DWARF is only for humans; .BTF/.BTF.ext (what libbpf uses, incl. line info) stay.
  run("llvm-strip", ["-g", tmp]);
  if (!isBpfObject(readFileSync(tmp))) throw new TracerError("internal", `clang did not produce a BPF ELF object for ${relative(ROOT, src)}`);
  renameSync(tmp, out);
}

/** Names of the BPF objects this checkout builds: bpf/<name>.bpf.c. */
export function bpfObjectNames(): string[] {
  return bpfSourcesList().map((f) => f.slice(0, -".bpf.c".length));
}

function bpfSourcesList(): string[] {
  if (!existsSync(PATHS.bpfSources)) return [];
  return readdirSync(PATHS.bpfSources)
    .filter((f) => f.endsWith(".bpf.c"))
    .sort();
}

function bpfInputHash(): string {
  const h = createHash("sha256");
  h.update(`flags ${BPF_CFLAGS.join(" ")}\n`);
  h.update(`bpf ${hashTree(PATHS.bpfSources, (rel) => !rel.startsWith("compat/"))}\n`);
  h.update(`libbpf-headers ${hashTree(join(PATHS.libbpfOut, "include"))}\n`);
  h.update(`clang ${run("clang", ["--version"]).stdout.split("\n")[0] ?? ""}\n`);
  return h.digest("hex");
}

function compileAll(force: boolean): string[] {
  const sources = bpfSourcesList();
  const names = sources.map((f) => f.slice(0, -".bpf.c".length));
  clangPath();
  const inputHash = bpfInputHash();
  const stamp = readJson(PATHS.bpfStamp);
  const outputs = names.map((n) => join(PATHS.bpfObjects, `${n}.bpf.o`));
  if (!force && stamp?.inputHash === inputHash && outputs.every((o) => existsSync(o))) {
    console.log(`build: ${names.length} BPF object(s) current`);
    return names;
  }
  mkdirSync(PATHS.bpfObjects, { recursive: true });
  // Objects whose source is gone must not be embedded.
  for (const f of readdirSync(PATHS.bpfObjects)) if (f.endsWith(".bpf.o") && !names.includes(f.slice(0, -".bpf.o".length))) rmSync(join(PATHS.bpfObjects, f));
  const includes = bpfIncludeDirs();
  const t0 = performance.now();
  sources.forEach((f, i) => compileBpfObject(join(PATHS.bpfSources, f), outputs[i] ?? "", includes));
  writeAtomic(PATHS.bpfStamp, JSON.stringify({ inputHash, objects: names }, null, 2) + "\n");
  console.log(`build: compiled ${names.length} BPF object(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s${names.length ? ": " + names.join(", ") : ""}`);
  return names;
}

function bpfCompileEnv(): CompileEnv {
  return { bpfDir: PATHS.bpfSources, clang: clangPath(), cflags: BPF_CFLAGS, includeDirs: bpfIncludeDirs() };
}

/** TypeScript bindings from each object's BTF: src/probes/<lib>/<lib>.gen.ts (committed). */
function generateBindings(names: string[]): void {
  const objects = Object.fromEntries(names.map((n) => [n, join(PATHS.bpfObjects, `${n}.bpf.o`)]));
  const changed = writeGenerated(ROOT, objects, bpfCompileEnv());
  console.log(`build: BTF bindings ${changed.length ? `written: ${changed.join(", ")}` : "current"}`);
}

/** --check-gen: compiles into a temporary directory and compares; 0 when every .gen.ts is current. */
function checkBindings(): number {
  const env = bpfCompileEnv();
  const results = checkGenerated(ROOT, env, (src, out) => compileBpfObject(src, out, [...env.includeDirs]));
  for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.path}: ${r.detail}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// step 4: the single executable

export interface AssetFiles {
  libbpfBundle: string;
  bpfObjects: Record<string, string>;
  offsetsJson: string;
}

const BEGIN = "// @embedded-assets-begin";
const END = "// @embedded-assets-end";

/**
 * src/bpf/embedded.ts with its marker block replaced by static file imports of `assets`,
 * written relative to `fromDir` (the directory of embedded.ts). Bun embeds every file imported
 * `with { type: "file" }` and resolves the import to its path inside the executable.
 */
export function renderEmbeddedModule(source: string, assets: AssetFiles, fromDir: string): string {
  const b = source.indexOf(BEGIN);
  const e = source.indexOf(END);
  if (b < 0 || e < b || source.indexOf(BEGIN, b + 1) >= 0) {
    throw new TracerError("internal", `src/bpf/embedded.ts must contain exactly one '${BEGIN}' … '${END}' block`);
  }
  const spec = (p: string) => {
    const r = relative(fromDir, p);
    return JSON.stringify(r.startsWith(".") ? r : `./${r}`);
  };
  const lines = [BEGIN, `import asset_libbpf from ${spec(assets.libbpfBundle)} with { type: "file" };`, `import asset_offsets from ${spec(assets.offsetsJson)} with { type: "file" };`];
  const entries: string[] = [];
  Object.entries(assets.bpfObjects)
    .sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0))
    .forEach(([name, path], i) => {
      lines.push(`import asset_bpf_${i} from ${spec(path)} with { type: "file" };`);
      entries.push(`${JSON.stringify(name)}: asset_bpf_${i}`);
    });
  lines.push(`const compiled = { libbpfBundle: asset_libbpf, bpfObjects: { ${entries.join(", ")} }, offsetsJson: asset_offsets } as AssetPaths | null;`);
  return source.slice(0, b) + lines.join("\n") + "\n" + source.slice(e);
}

function ensureOffsetsJson(): void {
  // Another part of the build owns the contents; an empty snapshot keeps the build possible.
  if (!existsSync(PATHS.offsetsJson)) writeFileSync(PATHS.offsetsJson, JSON.stringify({ schema: 1, fields: {} }) + "\n");
}

/** The built assets of this checkout, for `objects` (names of bpf/<name>.bpf.c). */
export function builtAssets(objects: string[]): AssetFiles {
  return {
    libbpfBundle: PATHS.bundle,
    bpfObjects: Object.fromEntries(objects.map((n) => [n, join(PATHS.bpfObjects, `${n}.bpf.o`)])),
    offsetsJson: PATHS.offsetsJson,
  };
}

/**
 * `bun build --compile` of `entry` with src/bpf/embedded.ts swapped for its rendered form.
 * Tests compile a small entry of their own the same way to see what the executable sees.
 */
export async function compileExecutable(assets: AssetFiles, entry = PATHS.mainTs, outfile = PATHS.executable): Promise<void> {
  const t0 = performance.now();
  // The decoder's glue is required at run time, so the bundler does not fail without it: the
  // executable would then place no probe. It is generated, not committed (scripts/vendor-iced.ts).
  if (!existsSync(PATHS.icedGlue)) {
    throw new TracerError("internal", `${relative(ROOT, PATHS.icedGlue)} is missing, so the executable would have no x86 decoder`, {
      hint: "run bash scripts/setup.sh (or bun scripts/vendor-iced.ts) first",
    });
  }
  const generated = renderEmbeddedModule(readFileSync(PATHS.embeddedTs, "utf8"), assets, dirname(PATHS.embeddedTs));
  mkdirSync(dirname(outfile), { recursive: true });
  const tmp = `${outfile}.tmp-${process.pid}`;
  const result = await Bun.build({
    // embedded.ts is an entry point of its own so its assets are embedded even before any
    // module imports it (the first entry point is the one the executable runs).
    entrypoints: [entry, PATHS.embeddedTs],
    // An ops tool started in some service's directory must not pick up that directory's
    // .env or bunfig.toml.
    // --smol: a smaller JS heap that collects more often; the tracer is a long-running, mostly
    // idle process whose resident memory operators watch (bench/RESULTS.md, memory).
    compile: { outfile: tmp, autoloadDotenv: false, autoloadBunfig: false, execArgv: ["--smol"] },
    files: { [PATHS.embeddedTs]: generated },
    minify: { whitespace: true, syntax: true },
    // Precompiled bytecode: `--version` starts in ~30 ms instead of ~80 ms (measured on a
    // loaded 2-core machine) for +3.5 MB; the bytecode is tied to the Bun runtime embedded with it.
    bytecode: true,
    format: "esm",
    sourcemap: "none",
  }).catch((e: unknown) => ({ success: false as const, logs: [e], outputs: [] }));
  if (!result.success) {
    rmSync(tmp, { force: true });
    const logs = result.logs.map((l) => String(l));
    throw new TracerError("internal", `bun build --compile failed: ${logs[0] ?? "no message"}`, { detail: logs });
  }
  // rename: replacing a running executable in place would fail with ETXTBSY.
  renameSync(tmp, outfile);
  console.log(`build: wrote ${relative(ROOT, outfile)} (${(statSync(outfile).size / 1e6).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** The executable runs, prints our version, and carries every asset byte-for-byte. */
export function checkExecutable(objects: string[]): CheckItem[] {
  const exe = PATHS.executable;
  if (!existsSync(exe)) return [{ name: "executable", ok: false, detail: `${relative(ROOT, exe)} missing; run 'bun build.ts'` }];
  const items: CheckItem[] = [];
  const t0 = performance.now();
  const r = run(exe, ["--version"], { timeoutMs: 30_000 });
  const ms = performance.now() - t0;
  items.push({
    name: "executable --version",
    ok: r.status === 0 && r.stdout.includes(BEETRACE_VERSION),
    detail: r.status === 0 ? `${r.stdout.trim()} (${ms.toFixed(0)} ms)` : `exit ${r.status}: ${r.stderr.trim().split("\n")[0] ?? ""}`,
  });
  const image = readFileSync(exe);
  const carried = (name: string, path: string) => {
    if (!existsSync(path)) return items.push({ name: `embeds ${name}`, ok: false, detail: `${relative(ROOT, path)} missing` });
    items.push({ name: `embeds ${name}`, ok: image.indexOf(readFileSync(path)) >= 0, detail: relative(ROOT, path) });
  };
  carried("libbpf bundle", PATHS.bundle);
  carried("offsets.json", PATHS.offsetsJson);
  for (const n of objects) carried(`${n}.bpf.o`, join(PATHS.bpfObjects, `${n}.bpf.o`));
  return items;
}

/** Objects exist for every bpf/*.bpf.c and are BPF ELF files. */
export function checkObjects(): CheckItem[] {
  let stale: boolean;
  try {
    stale = readJson(PATHS.bpfStamp)?.inputHash !== bpfInputHash();
  } catch {
    stale = true; // no clang: cannot tell, so do not claim the objects are current
  }
  return bpfSourcesList().map((f) => {
    const name = f.slice(0, -".bpf.c".length);
    const o = join(PATHS.bpfObjects, `${name}.bpf.o`);
    if (!existsSync(o)) return { name: `object ${name}`, ok: false, detail: `${relative(ROOT, o)} missing; run 'bun build.ts'` };
    if (!isBpfObject(readFileSync(o))) return { name: `object ${name}`, ok: false, detail: "not a BPF ELF object" };
    if (stale) return { name: `object ${name}`, ok: false, detail: "bpf/ or the toolchain changed since it was built; run 'bun build.ts'" };
    return { name: `object ${name}`, ok: true, detail: `${statSync(o).size} bytes` };
  });
}

export function checkAll(): CheckItem[] {
  const objects = bpfObjectNames();
  return [...checkBundle(), ...checkObjects(), ...checkExecutable(objects)];
}

// ---------------------------------------------------------------------------------------------

const USAGE = `usage: bun build.ts [--check | --check-gen | --no-compile] [--force] [--refetch]
  --check       verify the bundle, the BPF objects and dist/beetrace; build nothing
  --check-gen   verify that every committed .gen.ts matches the BTF of bpf/*.bpf.c; write nothing
  --no-compile  build the bundle and BPF objects only, not dist/beetrace
  --force       rebuild the bundle and the BPF objects even if they are current
  --refetch     download the Debian source packages again`;

export async function build(argv: string[]): Promise<number> {
  const known = new Set(["--check", "--check-gen", "--no-compile", "--force", "--refetch", "--help", "-h"]);
  const bad = argv.filter((a) => !known.has(a));
  if (bad.length > 0) throw new TracerError("usage", `unknown option ${bad.join(" ")}`, { hint: USAGE });
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  if (process.arch !== "x64") {
    throw new TracerError("unsupported_arch", `building on ${process.arch} is not supported yet (the bundle recipe and BPF flags are x86-64)`);
  }
  if (argv.includes("--check")) {
    const items = checkAll();
    for (const c of items) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
    return items.every((c) => c.ok) ? 0 : 1;
  }
  if (argv.includes("--check-gen")) return checkBindings();
  const force = argv.includes("--force");
  return withBuildLock(async () => {
    ensureOffsetsJson();
    buildBundle(force, argv.includes("--refetch"));
    const objects = compileAll(force);
    generateBindings(objects);
    if (argv.includes("--no-compile")) return 0;
    await compileExecutable(builtAssets(objects));
    const failed = checkExecutable(objects).filter((c) => !c.ok);
    if (failed.length > 0) {
      throw new TracerError("internal", `dist/beetrace is broken: ${failed.map((c) => `${c.name}: ${c.detail}`).join("; ")}`);
    }
    console.log(`build: dist/beetrace ok`);
    return 0;
  });
}

if (import.meta.main) {
  try {
    process.exitCode = await build(process.argv.slice(2));
  } catch (e) {
    if (isTracerError(e)) {
      console.error(`error: ${e.message}`);
      if (e.detail && e.detail.length > 0) for (const l of e.detail) console.error(`  ${l}`);
      if (e.hint) console.error(`hint: ${e.hint}`);
      process.exitCode = EXIT_CODES[e.code];
    } else {
      console.error(`error: BUG in build.ts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exitCode = 70;
    }
  }
}
