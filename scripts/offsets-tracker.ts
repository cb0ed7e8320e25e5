/**
 * @module scripts/offsets-tracker — regenerate offsets.json: build a tiny Go program per tracked
 * (module, version) with DWARF, read every tracked field's offset with our DWARF reader, and write
 * compact, deterministic ranges (`bun run offsets`; docs/offsets.md).
 *
 *   bun run offsets [--only std|MODULE] [--since VERSION] [--jobs N] [--retry-failed]
 *                   [--keep-toolchains] [--offline] [--no-import] [--out FILE] [--check] [--list]
 *
 * Go releases: the module proxy's version list of golang.org/toolchain omits releases that exist
 * (go1.21.1–1.21.5 and others), so every patch number is asked about (completeToolchains).
 * A checkout without the cache imports the committed offsets.json as cached results first
 * (--no-import rebuilds everything instead).
 *
 * Per-version results are cached in .cache/offsets-tracker/results/ (gitignored): an interrupted
 * run resumes where it stopped, and offsets.json is rewritten after every finished build so partial
 * progress lands. Failed builds are cached and reported, never covered. --check rebuilds nothing:
 * it verifies that the file equals what the cache produces (exit 1 otherwise).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { trackedFields } from "../src/offsets/planned-fields.ts";
import { validateOffsetsFile, type OffsetsFile } from "../src/offsets/table.ts";
import {
  TRACKER_VERSION,
  assembleOffsetsFile,
  describeDifferences,
  keyOf,
  needsBuild,
  sameOffsets,
  serializeOffsetsFile,
  sortVersionKeys,
  completeToolchains,
  resultsFromOffsetsFile,
  serializeReleaseList,
  stableModuleVersions,
  stableToolchains,
  toolchainOfKey,
  type TrackerResult,
} from "../src/offsets/tracker/compact.ts";
import { buildAndRead, goModCache, goPlatform, listVersions, toolchainExists, type BuildJob } from "../src/offsets/tracker/build.ts";
import { TEMPLATES, type ModuleTemplate } from "../src/offsets/tracker/templates.ts";
import { compareVersions, parseAnyVersion } from "../src/offsets/version.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const CACHE = process.env.BEETRACE_OFFSETS_CACHE ?? join(ROOT, ".cache", "offsets-tracker");
const RESULTS = join(CACHE, "results");

interface Options {
  only?: string;
  since?: string;
  jobs: number;
  check: boolean;
  list: boolean;
  retryFailed: boolean;
  keepToolchains: boolean;
  /** no network: versions come from the cache, builds use only the module cache (GOPROXY=off) */
  offline: boolean;
  /** do not import the existing offsets.json into an empty cache */
  noImport: boolean;
  out: string;
}

function usage(msg: string): never {
  console.error(`offsets-tracker: ${msg}`);
  console.error("usage: bun run offsets [--only std|MODULE] [--since VERSION] [--jobs N] [--retry-failed] [--keep-toolchains] [--offline] [--no-import] [--out FILE] [--check] [--list]");
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { jobs: 2, check: false, list: false, retryFailed: false, keepToolchains: false, offline: false, noImport: false, out: join(ROOT, "offsets.json") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case "--only": {
        o.only = value();
        if (!TEMPLATES.some((t) => t.module === o.only)) usage(`--only: not a tracked module: ${o.only} (tracked: ${TEMPLATES.map((t) => t.module).join(", ")})`);
        break;
      }
      case "--since":
        o.since = value();
        if (!parseAnyVersion(o.since)) usage(`--since: not a version: ${o.since}`);
        break;
      case "--jobs": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 16) usage("--jobs: expected an integer 1..16");
        o.jobs = n;
        break;
      }
      case "--check":
        o.check = true;
        break;
      case "--list":
        o.list = true;
        break;
      case "--retry-failed":
        o.retryFailed = true;
        break;
      case "--offline":
        o.offline = true;
        break;
      case "--no-import":
        o.noImport = true;
        break;
      case "--keep-toolchains":
        o.keepToolchains = true;
        break;
      case "--out":
        o.out = resolve(value());
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  return o;
}

const resultPath = (module: string, versionKey: string) => join(RESULTS, `${encodeURIComponent(module)}@${versionKey}.json`);

function readResult(module: string, versionKey: string): TrackerResult | undefined {
  const p = resultPath(module, versionKey);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as TrackerResult;
  } catch {
    return undefined; // a torn write from a killed run: rebuild
  }
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function allResults(): TrackerResult[] {
  if (!existsSync(RESULTS)) return [];
  const out: TrackerResult[] = [];
  for (const name of readdirSync(RESULTS).sort()) {
    if (!name.endsWith(".json")) continue;
    try {
      const r = JSON.parse(readFileSync(join(RESULTS, name), "utf8")) as TrackerResult;
      if (r.tracker === TRACKER_VERSION) out.push(r);
    } catch {
      // torn write; the next run rebuilds it
    }
  }
  return out;
}

function readExisting(path: string): OffsetsFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return validateOffsetsFile(JSON.parse(readFileSync(path, "utf8")), path);
  } catch {
    return undefined;
  }
}

/** offsets.json from every cached result; keeps the previous date when the content is unchanged. */
function assemble(existing: OffsetsFile | undefined): OffsetsFile {
  const fields: Record<string, string[]> = {};
  for (const t of TEMPLATES) fields[t.module] = trackedFields(t.module);
  const today = new Date().toISOString().slice(0, 10);
  const next = assembleOffsetsFile(allResults(), { fields, date: today });
  if (existing && sameOffsets(existing, next) && existing.generated?.date) next.generated!.date = existing.generated.date;
  return next;
}

function writeOffsets(out: string): OffsetsFile {
  const existing = readExisting(out);
  const next = assemble(existing);
  const text = serializeOffsetsFile(next);
  if (!existsSync(out) || readFileSync(out, "utf8") !== text) writeAtomic(out, text);
  return next;
}

/** Versions with a cached result (for --offline): "go1.22.4" for std, "v1.60.1" for modules. */
function cachedVersions(module: string, since: string): string[] {
  const prefix = `${encodeURIComponent(module)}@`;
  const floor = parseAnyVersion(since)!;
  const keys = existsSync(RESULTS) ? readdirSync(RESULTS).filter((n) => n.startsWith(prefix) && n.endsWith(".json")).map((n) => n.slice(prefix.length, -5)) : [];
  return sortVersionKeys(keys)
    .filter((k) => compareVersions(parseAnyVersion(k)!, floor) >= 0)
    .map((k) => (module === "std" ? toolchainOfKey(k) : "v" + k));
}

async function versionsOf(t: ModuleTemplate, opts: Options, scratch: string, toolchainList: string, gomodcache: string): Promise<string[]> {
  const since = pickSince(t.since, opts.since);
  if (opts.offline) return cachedVersions(t.module, since);
  if (t.module === "std") {
    // The list is incomplete: ask about every patch number. Versions already built need no asking.
    const known = new Set(cachedVersions("std", since).filter((n) => readResult("std", keyOf(n))?.ok));
    const listed = stableToolchains(toolchainList, goPlatform(), since);
    // At most --jobs questions at a time: an answer may download and extract a toolchain.
    const ask = limited(opts.jobs, (name: string) => toolchainExists(name, goPlatform(), scratch, gomodcache));
    const p = await completeToolchains(listed, ask, { since, known });
    console.log(`std: ${listed.length} releases listed by the proxy, ${p.versions.length} exist (${p.probed} asked about)`);
    if (p.unlisted.length) console.log(`  missing from the proxy's list but available: ${p.unlisted.join(" ")}`);
    if (p.missing.length) console.log(`  not available although a later patch is (NOT covered): ${p.missing.join(" ")}`);
    // The full answer is committed as data: a unit test checks offsets.json against it.
    if (since === t.since) writeReleaseList(p.versions, p.missing);
    return p.versions;
  }
  return stableModuleVersions(await listVersions(t.module, scratch), since);
}

/** src/offsets/go-releases.json: every Go release the proxy serves from go1.17, written only when it changes. */
function writeReleaseList(releases: string[], unavailable: string[]): void {
  const path = join(ROOT, "src", "offsets", "go-releases.json");
  const text = serializeReleaseList({ platform: goPlatform(), releases, unavailable });
  if (!existsSync(path) || readFileSync(path, "utf8") !== text) {
    writeAtomic(path, text);
    console.log(`wrote ${path} (${releases.length} Go releases)`);
  }
}

/** Import the existing offsets.json as cached results for versions the cache lacks (see resultsFromOffsetsFile). */
function importExisting(out: string): void {
  const existing = readExisting(out);
  if (!existing) return;
  const imported = resultsFromOffsetsFile(existing, (m, k) => readResult(m, k)?.tracker === TRACKER_VERSION, out.slice(ROOT.length + 1) || out);
  for (const r of imported) writeAtomic(resultPath(r.module, r.version), JSON.stringify(r, null, 1) + "\n");
  if (imported.length) console.log(`imported ${imported.length} results from ${out} (versions the cache lacked; --no-import rebuilds them)`);
}

/** The later of the template's floor and --since (when --since is of the same kind). */
function pickSince(floor: string, since: string | undefined): string {
  if (!since) return floor;
  const f = parseAnyVersion(floor)!;
  const s = parseAnyVersion(since)!;
  if (compareVersions(s, f) <= 0) return floor;
  return floor.startsWith("go") ? (since.startsWith("go") ? since : "go" + since.replace(/^v/, "")) : since.startsWith("v") ? since : "v" + since.replace(/^go/, "");
}

/** `fn` with at most `n` calls in flight. */
function limited<A, R>(n: number, fn: (a: A) => Promise<R>): (a: A) => Promise<R> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (a) => {
    while (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn(a);
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.check) {
    const existing = readExisting(opts.out);
    if (!existing) {
      console.error(`offsets-tracker --check: ${opts.out} is missing or not a valid offsets file`);
      return 1;
    }
    const expected = assemble(existing);
    if (serializeOffsetsFile(expected) === readFileSync(opts.out, "utf8")) {
      const m = expected.modules;
      console.log(`offsets-tracker --check: ${opts.out} matches the cache (${Object.keys(m).map((k) => `${k}: ${m[k]!.versions.length}`).join(", ")})`);
      return 0;
    }
    console.error(`offsets-tracker --check: ${opts.out} differs from what the cache produces:`);
    const diffs = describeDifferences(expected, existing);
    for (const d of diffs.length ? diffs : ["formatting or generated block (run 'bun run offsets' to rewrite it)"]) console.error(`  ${d}`);
    return 1;
  }

  const scratch = join(CACHE, "work");
  const templates = TEMPLATES.filter((t) => !opts.only || t.module === opts.only);
  if (opts.offline) process.env.GOPROXY = "off"; // the go command then uses only the module cache
  if (!opts.noImport && !opts.list) importExisting(opts.out);
  const toolchainList = opts.offline ? "" : await listVersions("golang.org/toolchain", scratch);
  const toolchains = opts.offline ? cachedVersions("std", "go1.0.0") : stableToolchains(toolchainList, goPlatform());
  const moduleToolchain = toolchains[toolchains.length - 1];
  if (!moduleToolchain) throw new Error(`no Go toolchains listed for ${goPlatform()}`);
  const gomodcache = await goModCache(scratch);

  const jobs: BuildJob[] = [];
  let reused = 0;
  const reusedFailures: TrackerResult[] = [];
  for (const t of templates) {
    const versions = await versionsOf(t, opts, scratch, toolchainList, gomodcache);
    const fields = trackedFields(t.module);
    let toBuild = 0;
    for (const v of versions) {
      const cached = readResult(t.module, keyOf(v));
      const d = needsBuild(cached, fields, opts.retryFailed);
      if (!d.build) {
        reused++;
        if (cached && !cached.ok) reusedFailures.push(cached);
        continue;
      }
      toBuild++;
      jobs.push({
        template: t,
        version: v,
        toolchain: t.module === "std" ? v : moduleToolchain,
        fields,
        workRoot: scratch,
        goCache: join(CACHE, "gocache"),
        pruneToolchain: !opts.keepToolchains,
        gomodcache,
      });
    }
    console.log(`${t.module}: ${versions.length} versions (${versions[0] ?? "-"} … ${versions[versions.length - 1] ?? "-"}), ${toBuild} to build, ${fields.length} fields`);
    if (opts.list) console.log(`  ${versions.join(" ")}`);
  }
  if (opts.list) return 0;

  const started = performance.now();
  let done = 0;
  const failures: TrackerResult[] = [];
  await pool(jobs, opts.jobs, async (job) => {
    const r = await buildAndRead(job);
    writeAtomic(resultPath(r.module, r.version), JSON.stringify(r, null, 1) + "\n");
    done++;
    if (!r.ok) failures.push(r);
    console.log(`[${done}/${jobs.length}] ${r.module} ${r.version}: ${r.ok ? "ok" : "FAILED"} in ${r.seconds}s${r.ok ? "" : ` — ${r.error}`}`);
    writeOffsets(opts.out); // partial progress lands in offsets.json
  });
  const file = writeOffsets(opts.out);
  const secs = Math.round((performance.now() - started) / 1000);
  console.log(`built ${jobs.length} (${failures.length} failed) in ${secs}s, reused ${reused} cached results`);
  for (const f of [...reusedFailures, ...failures]) console.log(`  not covered: ${f.module} ${f.version}: ${f.error}`);
  for (const [m, mod] of Object.entries(file.modules)) {
    console.log(`  ${m}: ${mod.versions.length} versions covered (${mod.versions[0]} … ${mod.versions[mod.versions.length - 1]}), ${Object.keys(mod.fields).length} fields`);
  }
  console.log(`wrote ${opts.out} (${readFileSync(opts.out).length} bytes)`);
  return failures.length > 0 ? 3 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`offsets-tracker: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
