/**
 * @module offsets/table — the struct-field offsets snapshot (offsets.json) and its lookup.
 *
 * Shape (schema 1), produced by the offsets tracker (scripts/offsets-tracker.ts):
 *   { "schema": 1,
 *     "modules": { "<module path | std>": {
 *        "versions": ["1.21.0", …],                   // every version the tracker built, ascending
 *        "fields": { "net/http.Request.Method": [ { "from": "1.21.0", "to": "1.27.3", "offset": 0 } ],
 *                    "net/http.Request.Pattern": [ { "from": "1.21.0", "to": "1.22.12", "offset": null }, … ] } } } }
 * A range says: every tracked version from..to (inclusive) has this offset; `null` = the field does not
 * exist there. An optional "generated" block records provenance (tool, date, toolchains, versions
 * that failed to build); lookups ignore it. A version the tracker never built is *unknown* — never extrapolated — unless the caller
 * opts into the nearest covered version, which is then recorded as a guess.
 */
import { TracerError } from "../errors.ts";
import { compareVersions, parseAnyVersion, versionKey, type Version } from "./version.ts";

export interface OffsetRange {
  from: string;
  to: string;
  offset: number | null;
}
export interface ModuleOffsets {
  versions: string[];
  fields: Record<string, OffsetRange[]>;
}
export interface OffsetsFile {
  schema: 1;
  /** Where the file came from; informational only (lookups never read it). Optional. */
  generated?: GeneratedInfo;
  modules: Record<string, ModuleOffsets>;
}

/**
 * Provenance of an offsets file: "offsets-tracker" (the embedded snapshot) or "offsets extract"
 * (one service's unstripped build). Unknown keys are kept, so newer writers stay readable.
 */
export interface GeneratedInfo {
  by: string;
  /** tracker format/logic version; a change invalidates the tracker's cache */
  tracker?: number;
  /** YYYY-MM-DD of the last content change */
  date?: string;
  /** module → toolchain the module's programs were built with ("go1.27.4"; std: each release itself) */
  builtWith?: Record<string, string>;
  /** module → versions that failed to build: NOT covered, listed so the gap is visible */
  failed?: Record<string, string[]>;
  /** for `offsets extract`: the binary's Go version and main module */
  goVersion?: string;
  mainModule?: string;
}

export type Lookup =
  | { kind: "found"; offset: number; exact: true }
  | { kind: "absent" } // the field does not exist in this version
  | { kind: "nearest"; offset: number | null; nearestVersion: string }
  | { kind: "unknown"; reason: string };

export class OffsetsTable {
  private readonly parsed = new Map<string, { versions: Version[]; keys: Set<string> }>();

  constructor(
    readonly file: OffsetsFile,
    /** where it came from, for messages: "embedded snapshot", "--offsets my.json" */
    readonly origin: string,
  ) {}

  static parse(text: string, origin: string): OffsetsTable {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new TracerError("usage", `${origin}: not valid JSON (${(e as Error).message})`, {
        hint: "pass an offsets file written by 'beetrace offsets extract' or the offsets tracker",
      });
    }
    return new OffsetsTable(validateOffsetsFile(json, origin), origin);
  }

  static empty(origin: string): OffsetsTable {
    return new OffsetsTable({ schema: 1, modules: {} }, origin);
  }

  /** Newest and oldest versions covered for a module, for messages. */
  coverage(module: string): { oldest: string; newest: string; count: number } | undefined {
    const m = this.file.modules[module];
    if (!m || m.versions.length === 0) return undefined;
    return { oldest: m.versions[0]!, newest: m.versions[m.versions.length - 1]!, count: m.versions.length };
  }

  lookup(module: string, field: string, version: string, allowNearest = false): Lookup {
    const m = this.file.modules[module];
    if (!m) return { kind: "unknown", reason: `${this.origin} has no offsets for module ${module}` };
    const ranges = m.fields[field];
    if (!ranges || ranges.length === 0) return { kind: "unknown", reason: `${this.origin} does not track ${field}` };
    const v = parseAnyVersion(version);
    if (!v) return { kind: "unknown", reason: `version "${version}" of ${module} cannot be ordered` };
    const idx = this.index(module);
    const key = versionKey(v);
    if (idx.keys.has(key)) {
      for (const r of ranges) {
        if (within(v, r)) return r.offset === null ? { kind: "absent" } : { kind: "found", offset: r.offset, exact: true };
      }
      return { kind: "unknown", reason: `${this.origin} tracks ${module} ${key} but has no range for ${field}` };
    }
    const cov = this.coverage(module)!;
    const reason = `${module} ${v.raw} is not covered by ${this.origin} (it covers ${cov.oldest} … ${cov.newest}, ${cov.count} versions)`;
    if (!allowNearest) return { kind: "unknown", reason };
    // Nearest tracked version by ordering; ties go to the older one (layouts change forward).
    let best: Version | undefined;
    for (const cand of idx.versions) {
      if (!best) best = cand;
      else if (distance(cand, v) < distance(best, v)) best = cand;
    }
    if (!best) return { kind: "unknown", reason };
    for (const r of ranges) {
      if (within(best, r)) return { kind: "nearest", offset: r.offset, nearestVersion: versionKey(best) };
    }
    return { kind: "unknown", reason };
  }

  private index(module: string): { versions: Version[]; keys: Set<string> } {
    let idx = this.parsed.get(module);
    if (!idx) {
      const versions = (this.file.modules[module]?.versions ?? []).map((s) => parseAnyVersion(s)).filter((x): x is Version => !!x);
      versions.sort(compareVersions);
      idx = { versions, keys: new Set(versions.map(versionKey)) };
      this.parsed.set(module, idx);
    }
    return idx;
  }
}

function within(v: Version, r: OffsetRange): boolean {
  const from = parseAnyVersion(r.from);
  const to = parseAnyVersion(r.to);
  if (!from || !to) return false;
  return compareVersions(from, v) <= 0 && compareVersions(v, to) <= 0;
}

/** A coarse distance for "nearest": position in (major, minor, patch) space. */
function distance(a: Version, b: Version): number {
  return Math.abs((a.major - b.major) * 1e8 + (a.minor - b.minor) * 1e4 + (a.patch - b.patch)) * 2 + (compareVersions(a, b) > 0 ? 1 : 0);
}

/** Validate untrusted JSON into an OffsetsFile; errors name the bad path. */
export function validateOffsetsFile(json: unknown, origin: string): OffsetsFile {
  const bad = (where: string, what: string): never => {
    throw new TracerError("usage", `${origin}: ${where}: ${what}`, {
      hint: "the offsets file is damaged or from an incompatible beetrace; regenerate it with 'beetrace offsets extract' or the tracker",
    });
  };
  if (typeof json !== "object" || json === null) bad("top level", "expected an object");
  const o = json as Record<string, unknown>;
  if (o.schema !== 1) bad("schema", `expected 1, found ${JSON.stringify(o.schema)}`);
  if (o.generated !== undefined) {
    const g = o.generated as Record<string, unknown> | null;
    if (typeof g !== "object" || g === null || Array.isArray(g) || typeof g.by !== "string") bad("generated", "expected an object with a string 'by'");
  }
  const modules = o.modules;
  if (typeof modules !== "object" || modules === null || Array.isArray(modules)) bad("modules", "expected an object");
  for (const [mod, mv] of Object.entries(modules as Record<string, unknown>)) {
    if (typeof mv !== "object" || mv === null) bad(`modules.${mod}`, "expected an object");
    const m = mv as Record<string, unknown>;
    if (!Array.isArray(m.versions) || !m.versions.every((v) => typeof v === "string" && parseAnyVersion(v))) {
      bad(`modules.${mod}.versions`, "expected a list of version strings");
    }
    if (typeof m.fields !== "object" || m.fields === null) bad(`modules.${mod}.fields`, "expected an object");
    for (const [f, rv] of Object.entries(m.fields as Record<string, unknown>)) {
      if (!Array.isArray(rv)) bad(`modules.${mod}.fields.${f}`, "expected a list of ranges");
      for (const r of rv as unknown[]) {
        const rr = r as Record<string, unknown>;
        const ok =
          typeof rr === "object" && rr !== null &&
          typeof rr.from === "string" && parseAnyVersion(rr.from) !== undefined &&
          typeof rr.to === "string" && parseAnyVersion(rr.to) !== undefined &&
          (rr.offset === null || (typeof rr.offset === "number" && Number.isInteger(rr.offset) && rr.offset >= 0 && rr.offset < 1 << 20));
        if (!ok) bad(`modules.${mod}.fields.${f}`, `bad range ${JSON.stringify(r)}`);
      }
    }
  }
  return json as OffsetsFile;
}
