/**
 * @module offsets/version — parse and order the version strings found in Go build info.
 *
 * Go toolchains: "go1.21.0", "go1.20" (before Go 1.21 the first release had no ".0"),
 * "go1.22rc1", "go1.23.4 X:nocoverageredesign" (GOEXPERIMENT suffix), "devel go1.24-abc…".
 * Modules: semver "v1.60.1", pre-releases "v1.2.0-rc.1", pseudo-versions
 * "v0.0.0-20240101120000-abcdef123456" (https://go.dev/ref/mod#pseudo-versions), "(devel)".
 */

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** dot-separated pre-release identifiers ("rc1", "0.20240101120000-abcdef"), empty for a release */
  pre: string[];
  /** the string as written in the binary */
  raw: string;
}

/** The normalised "1.22.3" form used as keys in offsets.json (no "go"/"v" prefix). */
export function versionKey(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}` + (v.pre.length ? "-" + v.pre.join(".") : "");
}

/** Parse a Go toolchain version as stored in .go.buildinfo; undefined for "devel" and garbage. */
export function parseGoVersion(raw: string): Version | undefined {
  const s = raw.trim().split(/\s+/)[0] ?? "";
  const m = /^go(\d+)\.(\d+)(?:\.(\d+))?((?:rc|beta)\d+)?$/.exec(s);
  if (!m) return undefined;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: m[3] === undefined ? 0 : Number(m[3]),
    pre: m[4] ? [m[4]] : [],
    raw,
  };
}

/** Parse a module version ("v1.2.3", "v1.2.3-pre", pseudo-versions); undefined for "(devel)". */
export function parseModuleVersion(raw: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(raw.trim());
  if (!m) return undefined;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    pre: m[4] ? m[4].split(".") : [],
    raw,
  };
}

/** Parse either form ("std" versions are Go versions; "1.22.3" keys parse too). */
export function parseAnyVersion(raw: string): Version | undefined {
  return parseGoVersion(raw) ?? parseModuleVersion(raw) ?? parseModuleVersion("v" + raw);
}

/** Semver precedence (https://semver.org §11): releases sort after their pre-releases. */
export function compareVersions(a: Version, b: Version): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.pre.length === 0 || b.pre.length === 0) return (a.pre.length === 0 ? 1 : 0) - (b.pre.length === 0 ? 1 : 0);
  const n = Math.min(a.pre.length, b.pre.length);
  for (let i = 0; i < n; i++) {
    const x = a.pre[i]!;
    const y = b.pre[i]!;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return Number(x) - Number(y) || (x < y ? -1 : 1);
    if (xn) return -1;
    if (yn) return 1;
    return x < y ? -1 : 1;
  }
  return a.pre.length - b.pre.length;
}

export function isPseudoVersion(v: Version): boolean {
  // vX.Y.Z-yyyymmddhhmmss-abcdefabcdef or vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdef…
  return v.pre.some((p) => /^\d{14}-[0-9a-f]{12}$/.test(p)) || /-(?:0\.)?\d{14}-[0-9a-f]{12}$/.test(v.raw);
}
