/**
 * @module offsets/tracker/compact — the pure parts of the offsets tracker: which versions to
 * build, whether a cached result can be reused, and turning per-version results into the
 * compact, deterministic offsets.json (sorted keys, one line per field, stable ranges).
 *
 * No processes, no files: scripts/offsets-tracker.ts does the I/O around these.
 */
import type { GeneratedInfo, ModuleOffsets, OffsetRange, OffsetsFile } from "../table.ts";
import { compareVersions, goToolchainName, parseAnyVersion, parseGoVersion, parseModuleVersion, versionKey, type Version } from "../version.ts";

/** Bump when the way results are produced changes (templates, build flags): cached results are rebuilt. */
export const TRACKER_VERSION = 1;

/** One (module, version) build, as cached in .cache/offsets-tracker/results/. */
export interface TrackerResult {
  tracker: number;
  module: string;
  /** offsets.json key: "1.22.4" (no "go"/"v") */
  version: string;
  /** toolchain the program was built with ("go1.22.4") */
  toolchain: string;
  ok: boolean;
  /** field → offset, null = the field (or its whole struct) does not exist in this version */
  fields: Record<string, number | null>;
  /** for failures: the fields that were asked for (a changed field list retries the build) */
  wanted?: string[];
  /** one line: why the build failed */
  error?: string;
  seconds?: number;
  /**
   * Set when the result was not built here but imported from a committed offsets.json (a checkout
   * without the tracker's cache): the values are the ones that file's builds measured.
   */
  importedFrom?: string;
}

/** Sort version keys ascending (semver order, "1.9.0" < "1.10.0"); unparsable keys last, by text. */
export function sortVersionKeys(keys: Iterable<string>): string[] {
  return [...new Set(keys)].sort((a, b) => {
    const va = parseAnyVersion(a);
    const vb = parseAnyVersion(b);
    if (va && vb) return compareVersions(va, vb) || (a < b ? -1 : a > b ? 1 : 0);
    if (va) return -1;
    if (vb) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * Collapse per-version offsets into ranges over `versions` (sorted, the covered versions).
 * Consecutive covered versions with the same offset form one {from, to, offset}; a version with
 * no value breaks the run and is left out (lookups then call it unknown, never guessed).
 */
export function compactRanges(versions: readonly string[], offsetOf: (version: string) => number | null | undefined): OffsetRange[] {
  const out: OffsetRange[] = [];
  let cur: OffsetRange | undefined;
  for (const v of versions) {
    const off = offsetOf(v);
    if (off === undefined) {
      cur = undefined;
      continue;
    }
    if (cur && cur.offset === off) {
      cur.to = v;
    } else {
      cur = { from: v, to: v, offset: off };
      out.push(cur);
    }
  }
  return out;
}

export type BuildDecision = { build: false; why: string } | { build: true; why: string };

/**
 * Resume logic: reuse a cached result when it was made by this tracker version and holds every
 * wanted field; failures are reused (reported again, not rebuilt) unless retryFailed or the
 * wanted field list changed.
 */
export function needsBuild(cached: TrackerResult | undefined, wanted: readonly string[], retryFailed: boolean): BuildDecision {
  if (!cached) return { build: true, why: "not built yet" };
  if (cached.tracker !== TRACKER_VERSION) return { build: true, why: `cached by tracker version ${cached.tracker}, now ${TRACKER_VERSION}` };
  if (cached.ok) {
    const missing = wanted.filter((f) => !(f in cached.fields));
    return missing.length === 0
      ? { build: false, why: "cached" }
      : { build: true, why: `cache lacks ${missing.length} field${missing.length === 1 ? "" : "s"} (${missing[0]}${missing.length > 1 ? ", …" : ""})` };
  }
  if (retryFailed) return { build: true, why: "retrying a failed build (--retry-failed)" };
  const before = new Set(cached.wanted ?? []);
  if (wanted.some((f) => !before.has(f))) return { build: true, why: "failed before, but the field list changed" };
  return { build: false, why: "failed before (use --retry-failed to try again)" };
}

/** The oldest tracked Go release: Go 1.17 brought the register-based calling convention (amd64). */
export const OLDEST_GO = "go1.17";

/**
 * Stable Go releases from `go list -m -versions golang.org/toolchain` output
 * ("v0.0.1-go1.22.4.linux-amd64 … v0.0.1-go1.20.linux-amd64"): goX.Y.Z, and goX.Y for the x.0
 * releases before Go 1.21, for this GOOS-GOARCH, at least `since`. Pre-releases are left out.
 * Returns toolchain names, ascending. The list is INCOMPLETE (the proxy omits versions that
 * exist): completeToolchains fills it in.
 */
export function stableToolchains(listOutput: string, platform: string, since = OLDEST_GO): string[] {
  const floor = parseGoVersion(since);
  const names = new Set<string>();
  for (const tok of listOutput.split(/\s+/)) {
    const m = /^v0\.0\.1-(go\d+\.\d+(?:\.\d+)?)\.([a-z0-9]+-[a-z0-9]+)$/.exec(tok);
    if (!m || m[2] !== platform) continue;
    const v = parseGoVersion(m[1]!);
    if (!v || v.pre.length > 0 || (floor && compareVersions(v, floor) < 0)) continue;
    // The canonical spelling ("go1.20", not "go1.20.0"): the name the go command downloads.
    names.add(goToolchainName(v));
  }
  return [...names].sort((a, b) => compareVersions(parseGoVersion(a)!, parseGoVersion(b)!));
}

export interface ToolchainProbe {
  /** every release found, ascending: listed ones and the ones probing found */
  versions: string[];
  /** releases the list lacked but that exist */
  unlisted: string[];
  /** patch numbers below a listed one that do not exist (a gap the proxy really lacks) */
  missing: string[];
  /** how many names were asked about */
  probed: number;
}

/**
 * The Go releases that exist, from the proxy's incomplete list plus probing: for every minor
 * release from `since` up to one past the newest listed, every patch number from 0 up to the
 * newest listed is asked about (in parallel), then the numbers after it one by one until one does
 * not exist. `exists(name)` asks the module proxy about one toolchain ("go1.21.5"); `known`
 * names (e.g. already built) are not asked about again. Throws what `exists` throws (a network
 * failure must not shrink the coverage silently).
 */
export async function completeToolchains(
  listed: readonly string[],
  exists: (name: string) => Promise<boolean>,
  opts: { since?: string; known?: ReadonlySet<string> } = {},
): Promise<ToolchainProbe> {
  const floor = parseGoVersion(opts.since ?? OLDEST_GO)!;
  const byMinor = new Map<number, Set<number>>();
  let newestMinor = floor.minor - 1;
  for (const name of listed) {
    const v = parseGoVersion(name);
    if (!v || v.major !== floor.major || v.pre.length > 0) continue;
    if (!byMinor.has(v.minor)) byMinor.set(v.minor, new Set());
    byMinor.get(v.minor)!.add(v.patch);
    newestMinor = Math.max(newestMinor, v.minor);
  }
  const found: Version[] = [];
  const unlisted: string[] = [];
  const missing: string[] = [];
  let probed = 0;
  const ask = async (name: string): Promise<boolean> => {
    if (opts.known?.has(name)) return true;
    probed++;
    return exists(name);
  };
  for (let minor = floor.minor; minor <= newestMinor + 1; minor++) {
    const have = byMinor.get(minor) ?? new Set<number>();
    const newestListed = have.size ? Math.max(...have) : -1;
    const first = minor === floor.minor ? floor.patch : 0;
    const at = (patch: number) => ({ major: floor.major, minor, patch, pre: [], raw: goToolchainName({ major: floor.major, minor, patch }) });
    // Below the newest listed patch: ask about every unlisted one at once.
    const gaps: number[] = [];
    for (let p = first; p <= newestListed; p++) if (!have.has(p)) gaps.push(p);
    const answers = await Promise.all(gaps.map((p) => ask(at(p).raw)));
    for (let p = first; p <= newestListed; p++) {
      const gi = gaps.indexOf(p);
      if (gi < 0) found.push(at(p));
      else if (answers[gi]) {
        found.push(at(p));
        unlisted.push(at(p).raw);
      } else missing.push(at(p).raw);
    }
    // After it: one by one until one does not exist (patch releases are numbered consecutively).
    for (let p = Math.max(first, newestListed + 1); ; p++) {
      if (!(await ask(at(p).raw))) break;
      found.push(at(p));
      unlisted.push(at(p).raw);
    }
  }
  found.sort(compareVersions);
  return { versions: found.map((v) => v.raw), unlisted, missing, probed };
}

/**
 * Per-version results reconstructed from an offsets file, for versions `have` does not hold: a
 * checkout without the tracker's cache (it is not committed) then extends the committed snapshot
 * instead of rebuilding every version. Only fields with a value for the version are filled in,
 * so a field the file lacks is still built (needsBuild).
 */
export function resultsFromOffsetsFile(file: OffsetsFile, have: (module: string, versionKey: string) => boolean, origin: string): TrackerResult[] {
  const out: TrackerResult[] = [];
  for (const [module, mod] of Object.entries(file.modules)) {
    for (const version of mod.versions) {
      if (have(module, version)) continue;
      const v = parseAnyVersion(version);
      if (!v) continue;
      const fields: Record<string, number | null> = {};
      for (const [field, ranges] of Object.entries(mod.fields)) {
        for (const r of ranges) {
          const from = parseAnyVersion(r.from);
          const to = parseAnyVersion(r.to);
          if (from && to && compareVersions(from, v) <= 0 && compareVersions(v, to) <= 0) {
            fields[field] = r.offset;
            break;
          }
        }
      }
      const toolchain = module === "std" ? goToolchainName(v) : (file.generated?.builtWith?.[module] ?? "unknown");
      out.push({ tracker: TRACKER_VERSION, module, version: versionKey(v), toolchain, ok: true, fields, importedFrom: origin });
    }
  }
  return out;
}

/**
 * The Go releases that exist (src/offsets/go-releases.json), as the tracker found them by asking
 * the module proxy about every patch number. Committed so that a unit test can check offsets.json
 * against it without network.
 */
export interface ReleaseList {
  /** GOOS-GOARCH the toolchains were asked for */
  platform: string;
  /** toolchain names, ascending ("go1.17", "go1.17.1", …) */
  releases: string[];
  /** patch numbers below an existing one that the proxy does not serve (not covered; listed so the gap is explained) */
  unavailable: string[];
}

export function serializeReleaseList(l: ReleaseList): string {
  const line = (xs: string[]) => JSON.stringify(xs);
  return `{\n  "platform": ${JSON.stringify(l.platform)},\n  "releases": ${line(l.releases)},\n  "unavailable": ${line(l.unavailable)}\n}\n`;
}

/**
 * Releases in `releases` (toolchain names) from the oldest to the newest `covered` key
 * ("1.17.0" …) that `covered` lacks: what a snapshot is missing inside its own range.
 */
export function uncoveredReleases(releases: readonly string[], covered: readonly string[]): string[] {
  const keys = new Set(covered);
  const sorted = sortVersionKeys(covered);
  if (sorted.length === 0) return [...releases];
  const lo = parseAnyVersion(sorted[0]!)!;
  const hi = parseAnyVersion(sorted[sorted.length - 1]!)!;
  return releases.filter((name) => {
    const v = parseGoVersion(name);
    if (!v) return false;
    return compareVersions(v, lo) >= 0 && compareVersions(v, hi) <= 0 && !keys.has(versionKey(v));
  });
}

/**
 * Patch numbers a release list skips: Go numbers patch releases consecutively, so a release
 * list with goX.Y.5 but without goX.Y.4 is incomplete unless goX.Y.4 is listed as unavailable.
 */
export function releaseListGaps(l: Pick<ReleaseList, "releases" | "unavailable">): string[] {
  const byMinor = new Map<string, Set<number>>();
  for (const name of [...l.releases, ...l.unavailable]) {
    const v = parseGoVersion(name);
    if (!v) continue;
    const k = `${v.major}.${v.minor}`;
    if (!byMinor.has(k)) byMinor.set(k, new Set());
    byMinor.get(k)!.add(v.patch);
  }
  const out: string[] = [];
  for (const [k, patches] of byMinor) {
    const [major, minor] = k.split(".").map(Number) as [number, number];
    for (let p = 0; p <= Math.max(...patches); p++) if (!patches.has(p)) out.push(goToolchainName({ major, minor, patch: p }));
  }
  return out;
}

/** The toolchain name for a std offsets key: "1.17.0" → "go1.17", "1.22.4" → "go1.22.4". */
export function toolchainOfKey(key: string): string {
  const v = parseAnyVersion(key);
  if (!v) throw new Error(`not a version: ${key}`);
  return goToolchainName(v);
}

/**
 * Released (non-pre-release, non-pseudo) versions from `go list -m -versions MODULE` output
 * ("google.golang.org/grpc v1.0.0 v1.0.1 …"), at least `since` ("v1.40.0"). Ascending, "v"-prefixed.
 */
export function stableModuleVersions(listOutput: string, since: string | undefined): string[] {
  const floor = since === undefined ? undefined : parseModuleVersion(since);
  const out: string[] = [];
  for (const tok of listOutput.trim().split(/\s+/).slice(1)) {
    const v = parseModuleVersion(tok);
    if (!v || v.pre.length > 0 || !tok.startsWith("v") || tok.includes("+")) continue;
    if (floor && compareVersions(v, floor) < 0) continue;
    out.push(tok);
  }
  return out.sort((a, b) => compareVersions(parseModuleVersion(a)!, parseModuleVersion(b)!));
}

/** "go1.22.4" / "v1.60.1" → the offsets.json key "1.22.4" / "1.60.1". */
export function keyOf(version: string): string {
  const v = parseAnyVersion(version);
  if (!v) throw new Error(`not a version: ${version}`);
  return versionKey(v);
}

export interface AssembleOptions {
  /** module → fields tracked for it (the offsets.json field list) */
  fields: Record<string, readonly string[]>;
  date: string;
}

/**
 * Assemble offsets.json from cached results: per module, the covered versions are those that
 * built; every tracked field gets ranges over them. Failed versions are listed under
 * generated.failed (not covered). Modules without any result are left out.
 */
export function assembleOffsetsFile(results: readonly TrackerResult[], opts: AssembleOptions): OffsetsFile {
  const byModule = new Map<string, TrackerResult[]>();
  for (const r of results) {
    if (!(r.module in opts.fields)) continue;
    const list = byModule.get(r.module) ?? [];
    list.push(r);
    byModule.set(r.module, list);
  }
  const modules: Record<string, ModuleOffsets> = {};
  const failed: Record<string, string[]> = {};
  for (const module of [...byModule.keys()].sort()) {
    const list = byModule.get(module)!;
    const ok = new Map(list.filter((r) => r.ok).map((r) => [r.version, r]));
    const bad = sortVersionKeys(list.filter((r) => !r.ok && !ok.has(r.version)).map((r) => r.version));
    if (bad.length > 0) failed[module] = bad;
    if (ok.size === 0) continue;
    const versions = sortVersionKeys(ok.keys());
    const fields: Record<string, OffsetRange[]> = {};
    for (const field of [...opts.fields[module]!].sort()) {
      const ranges = compactRanges(versions, (v) => ok.get(v)!.fields[field]);
      if (ranges.length > 0) fields[field] = ranges;
    }
    modules[module] = { versions, fields };
  }
  // Module programs are built with one pinned toolchain (std: each release builds itself).
  const builtWith: Record<string, string> = {};
  for (const m of Object.keys(modules).sort()) {
    if (m === "std") continue;
    const tcs = sortVersionKeys(byModule.get(m)!.filter((r) => r.ok).map((r) => r.toolchain));
    if (tcs.length > 0) builtWith[m] = tcs.join(", ");
  }
  const generated: GeneratedInfo = { by: "offsets-tracker", tracker: TRACKER_VERSION, date: opts.date };
  if (Object.keys(builtWith).length > 0) generated.builtWith = builtWith;
  if (Object.keys(failed).length > 0) generated.failed = failed;
  return { schema: 1, generated, modules };
}

/**
 * Deterministic text for an offsets file: keys sorted, two-space indent, each field's ranges on
 * one line, so that a refresh shows as a diff of exactly the fields and versions that changed.
 */
export function serializeOffsetsFile(file: OffsetsFile): string {
  const j = (v: unknown) => JSON.stringify(sortKeys(v));
  const lines: string[] = ["{", `  "schema": ${file.schema},`];
  if (file.generated) lines.push(`  "generated": ${j(file.generated)},`);
  const mods = Object.keys(file.modules).sort();
  lines.push(`  "modules": {${mods.length === 0 ? "}" : ""}`);
  mods.forEach((m, mi) => {
    const mod = file.modules[m]!;
    lines.push(`    ${JSON.stringify(m)}: {`);
    lines.push(`      "versions": ${JSON.stringify(sortVersionKeys(mod.versions))},`);
    const fields = Object.keys(mod.fields).sort();
    lines.push(`      "fields": {${fields.length === 0 ? "}" : ""}`);
    fields.forEach((f, fi) => {
      const ranges = mod.fields[f]!.map((r) => `{"from":${JSON.stringify(r.from)},"to":${JSON.stringify(r.to)},"offset":${r.offset === null ? "null" : r.offset}}`);
      lines.push(`        ${JSON.stringify(f)}: [${ranges.join(", ")}]${fi < fields.length - 1 ? "," : ""}`);
    });
    if (fields.length > 0) lines.push("      }");
    lines.push(`    }${mi < mods.length - 1 ? "," : ""}`);
  });
  if (mods.length > 0) lines.push("  }");
  lines.push("}");
  return lines.join("\n") + "\n";
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

/** Same content, ignoring the date: the tracker keeps the old date when nothing else changed. */
export function sameOffsets(a: OffsetsFile, b: OffsetsFile): boolean {
  const strip = (f: OffsetsFile): OffsetsFile => ({ ...f, generated: f.generated ? { ...f.generated, date: "" } : undefined });
  return serializeOffsetsFile(strip(a)) === serializeOffsetsFile(strip(b));
}

/** Differences worth printing for --check: per module, versions added/removed and fields whose ranges differ. */
export function describeDifferences(expected: OffsetsFile, actual: OffsetsFile): string[] {
  const out: string[] = [];
  for (const m of sortVersionKeys([...Object.keys(expected.modules), ...Object.keys(actual.modules)])) {
    const e = expected.modules[m];
    const a = actual.modules[m];
    if (!e) {
      out.push(`${m}: in the file but not in the cache`);
      continue;
    }
    if (!a) {
      out.push(`${m}: in the cache but not in the file`);
      continue;
    }
    const ev = new Set(e.versions);
    const av = new Set(a.versions);
    const added = e.versions.filter((v) => !av.has(v));
    const removed = a.versions.filter((v) => !ev.has(v));
    if (added.length) out.push(`${m}: versions missing from the file: ${added.join(", ")}`);
    if (removed.length) out.push(`${m}: versions not in the cache: ${removed.join(", ")}`);
    for (const f of new Set([...Object.keys(e.fields), ...Object.keys(a.fields)])) {
      if (JSON.stringify(e.fields[f] ?? null) !== JSON.stringify(a.fields[f] ?? null)) out.push(`${m}: ${f}: ranges differ`);
    }
  }
  if (JSON.stringify(sortKeys(expected.generated?.failed ?? {})) !== JSON.stringify(sortKeys(actual.generated?.failed ?? {}))) {
    out.push("generated.failed differs");
  }
  return out;
}
