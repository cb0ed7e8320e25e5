/**
 * @module offsets/version — parse and order the version strings found in Go build info.
 *
 * Go toolchains: "go1.21.0", "go1.20" (before Go 1.21 the first release had no ".0"),
 * "go1.22rc1", "go1.23.4 X:nocoverageredesign" (GOEXPERIMENT suffix), "devel go1.24-abc…"
 * (parseGoVersion; src/binary/buildinfo.ts re-exports it, there is no other Go version parser).
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

/**
 * Parse a Go toolchain version — THE parser for Go versions in beetrace (build info, offsets keys,
 * toolchain names, feature checks): "go1.21.13"; "go1.20" (x.0 releases before Go 1.21 had no
 * ".0"); "go1.22rc1" / "go1.21beta2" (pre ["rc1"]); "go1.23.0 X:nocoverageredesign" (GOEXPERIMENT
 * suffix, ignored); development toolchains "devel go1.27-e8ee1dc4f9 Mon Jun 3 …" and
 * "go1.27-devel_e8ee1dc4f9 …" (Go 1.24+ cmd/dist): the minor release they lead up to, with pre
 * ["devel"]; vendor builds "go1.21.0-bigcorp": pre ["bigcorp"].
 *
 * A pre-release (rc, beta, devel, vendor suffix) is never the release itself: its key
 * ("1.27.0-devel") is not a covered version in offsets.json, so its offsets are unknown unless the
 * operator opts into the nearest one. Feature checks (goAtLeast) ignore `pre`: a devel or rc
 * toolchain of 1.27 already has 1.27's struct fields. Undefined when there is no goN.N token
 * ("devel +b7a85e0003 …" from before Go 1.21 names no release).
 */
export function parseGoVersion(raw: string): Version | undefined {
  const s = raw.trim();
  // The version token: at the start, or after "devel " (any whitespace-separated token that starts with goN.N).
  const m = /(?:^|\s)go(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?(?:-(\S+))?(?=$|\s)/.exec(s);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const patch = m[3] === undefined ? 0 : Number(m[3]);
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const suffix = m[6];
  const devel = /^devel(?:\s|$)/.test(s) || (suffix !== undefined && /^devel(?:_|$)/.test(suffix));
  let pre: string[] = [];
  if (devel) pre = ["devel"];
  else if (m[4]) pre = [m[4] + m[5]];
  else if (suffix !== undefined) {
    // A vendor suffix: keep it as one identifier made of semver-safe characters.
    const id = suffix.replace(/[^0-9A-Za-z-]/g, "-");
    pre = [id];
  }
  return { major, minor, patch, pre, raw };
}

/** The toolchain name of a Go release: "go1.17" for 1.17.0 (x.0 releases before Go 1.21 had no ".0"), else "go1.21.0", "go1.22.4". */
export function goToolchainName(v: Pick<Version, "major" | "minor" | "patch">): string {
  if (v.major === 1 && v.minor < 21 && v.patch === 0) return `go${v.major}.${v.minor}`;
  return `go${v.major}.${v.minor}.${v.patch}`;
}

/**
 * true when the Go version `goVersion` ("go1.22.3", "devel go1.27-abc …", "1.22") is at least
 * `min` ("1.22", "1.21.5"); false when unparsable. Pre-releases count as their release
 * ("go1.23rc1" and "devel go1.23-…" are at least 1.23: they already carry the new struct fields).
 */
export function goAtLeast(goVersion: string, min: string): boolean {
  const v = parseGoVersion(/^\s*\d/.test(goVersion) ? "go" + goVersion.trim() : goVersion);
  const m = parseGoVersion("go" + min);
  if (v === undefined || m === undefined) return false;
  return compareVersions({ ...v, pre: [] }, { ...m, pre: [] }) >= 0;
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
