/** @module tests/unit/offsets/tracker — the pure parts of the offsets tracker: compaction, determinism, resume, version lists. */
import { describe, expect, test } from "bun:test";
import {
  TRACKER_VERSION,
  assembleOffsetsFile,
  compactRanges,
  describeDifferences,
  needsBuild,
  sameOffsets,
  serializeOffsetsFile,
  sortVersionKeys,
  stableModuleVersions,
  stableToolchains,
  type TrackerResult,
} from "../../../src/offsets/tracker/compact.ts";
import { OffsetsTable, validateOffsetsFile } from "../../../src/offsets/table.ts";
import { PLANNED_FIELDS, TRACKED_MODULES, trackedFields, trackedModuleOf } from "../../../src/offsets/planned-fields.ts";
import { probeFields } from "../../../src/probes/registry.ts";
import { TEMPLATES } from "../../../src/offsets/tracker/templates.ts";
import { TracerError } from "../../../src/errors.ts";

const ok = (module: string, version: string, fields: Record<string, number | null>, toolchain = "go" + version): TrackerResult => ({
  tracker: TRACKER_VERSION,
  module,
  version,
  toolchain,
  ok: true,
  fields,
});
const failed = (module: string, version: string, wanted: string[]): TrackerResult => ({
  tracker: TRACKER_VERSION,
  module,
  version,
  toolchain: "go" + version,
  ok: false,
  fields: {},
  wanted,
  error: "go build: exit status 1",
});

describe("compactRanges", () => {
  const versions = ["1.21.0", "1.21.13", "1.22.0", "1.22.12", "1.23.0", "1.24.0"];
  test("consecutive versions with the same offset collapse into one range", () => {
    const off: Record<string, number | null> = { "1.21.0": 232, "1.21.13": 232, "1.22.0": 232, "1.22.12": 232, "1.23.0": 248, "1.24.0": 248 };
    expect(compactRanges(versions, (v) => off[v])).toEqual([
      { from: "1.21.0", to: "1.22.12", offset: 232 },
      { from: "1.23.0", to: "1.24.0", offset: 248 },
    ]);
  });
  test("null (absent) is a value of its own; A→B→A stays three ranges", () => {
    const off: Record<string, number | null> = { "1.21.0": null, "1.21.13": null, "1.22.0": 8, "1.22.12": null, "1.23.0": 8, "1.24.0": 8 };
    expect(compactRanges(versions, (v) => off[v])).toEqual([
      { from: "1.21.0", to: "1.21.13", offset: null },
      { from: "1.22.0", to: "1.22.0", offset: 8 },
      { from: "1.22.12", to: "1.22.12", offset: null },
      { from: "1.23.0", to: "1.24.0", offset: 8 },
    ]);
  });
  test("a version without a value breaks the run and is left out (unknown, not bridged)", () => {
    const off: Record<string, number | undefined> = { "1.21.0": 0, "1.21.13": 0, "1.22.0": undefined, "1.22.12": 0 };
    expect(compactRanges(versions.slice(0, 4), (v) => off[v])).toEqual([
      { from: "1.21.0", to: "1.21.13", offset: 0 },
      { from: "1.22.12", to: "1.22.12", offset: 0 },
    ]);
  });
  test("round trip: every covered version looks up to the offset it was built with", () => {
    const off: Record<string, number | null> = { "1.21.0": 1, "1.21.13": 2, "1.22.0": 2, "1.22.12": null, "1.23.0": 1, "1.24.0": 1 };
    const file = { schema: 1 as const, modules: { std: { versions, fields: { "a.T.f": compactRanges(versions, (v) => off[v]) } } } };
    const t = new OffsetsTable(validateOffsetsFile(file, "t"), "t");
    for (const v of versions) {
      const r = t.lookup("std", "a.T.f", "go" + v);
      expect(off[v] === null ? r : (r as { offset: number }).offset).toEqual(off[v] === null ? { kind: "absent" } : off[v]!);
    }
  });
});

describe("assemble + serialize", () => {
  const fields = { std: ["net/http.Request.ctx", "net/http.Request.Pattern"], "google.golang.org/grpc": ["google.golang.org/grpc.ClientConn.target"] };
  const results = [
    ok("std", "1.23.0", { "net/http.Request.ctx": 248, "net/http.Request.Pattern": 232 }),
    ok("std", "1.22.12", { "net/http.Request.ctx": 232, "net/http.Request.Pattern": null }),
    ok("std", "1.9.0", { "net/http.Request.ctx": 200, "net/http.Request.Pattern": null }),
    failed("std", "1.22.5", fields.std),
    ok("google.golang.org/grpc", "1.60.0", { "google.golang.org/grpc.ClientConn.target": 24 }, "go1.27.4"),
    ok("google.golang.org/grpc", "1.10.0", { "google.golang.org/grpc.ClientConn.target": 16 }, "go1.27.4"),
    ok("example.com/untracked", "1.0.0", { "x.T.f": 1 }),
  ];
  const opts = { fields, date: "2026-01-02" };

  test("versions in semver order, failures listed and not covered, untracked modules dropped", () => {
    const f = assembleOffsetsFile(results, opts);
    expect(f.modules.std!.versions).toEqual(["1.9.0", "1.22.12", "1.23.0"]);
    expect(f.modules["google.golang.org/grpc"]!.versions).toEqual(["1.10.0", "1.60.0"]);
    expect(Object.keys(f.modules)).not.toContain("example.com/untracked");
    expect(f.generated).toEqual({
      by: "offsets-tracker",
      tracker: TRACKER_VERSION,
      date: "2026-01-02",
      builtWith: { "google.golang.org/grpc": "go1.27.4" },
      failed: { std: ["1.22.5"] },
    });
    const t = new OffsetsTable(validateOffsetsFile(JSON.parse(serializeOffsetsFile(f)), "t"), "t");
    expect(t.lookup("std", "net/http.Request.ctx", "go1.22.5").kind).toBe("unknown"); // failed build: not covered
    expect(t.lookup("std", "net/http.Request.ctx", "go1.22.12")).toEqual({ kind: "found", offset: 232, exact: true });
    expect(t.lookup("std", "net/http.Request.Pattern", "go1.22.12")).toEqual({ kind: "absent" });
  });

  test("deterministic: input order does not change a byte of the output", () => {
    const a = serializeOffsetsFile(assembleOffsetsFile(results, opts));
    const shuffled = [...results].reverse();
    const b = serializeOffsetsFile(assembleOffsetsFile(shuffled, { fields: { "google.golang.org/grpc": fields["google.golang.org/grpc"], std: [...fields.std].reverse() }, date: "2026-01-02" }));
    expect(b).toBe(a);
    // one line per field, so a refresh diff names the fields that changed
    expect(a).toContain('        "net/http.Request.Pattern": [{"from":"1.9.0","to":"1.22.12","offset":null}, {"from":"1.23.0","to":"1.23.0","offset":232}],\n');
    expect(JSON.parse(a)).toEqual(JSON.parse(JSON.stringify(assembleOffsetsFile(results, opts))));
  });

  test("sameOffsets ignores the date only; describeDifferences names what changed", () => {
    const a = assembleOffsetsFile(results, opts);
    const b = assembleOffsetsFile(results, { ...opts, date: "2027-01-01" });
    expect(sameOffsets(a, b)).toBe(true);
    const c = assembleOffsetsFile([...results, ok("std", "1.24.0", { "net/http.Request.ctx": 248, "net/http.Request.Pattern": 232 })], opts);
    expect(sameOffsets(a, c)).toBe(false);
    const d = describeDifferences(c, a);
    expect(d).toContain("std: versions missing from the file: 1.24.0");
    expect(d.some((l) => l.includes("net/http.Request.ctx: ranges differ"))).toBe(true);
  });

  test("an empty file serializes to valid JSON", () => {
    const text = serializeOffsetsFile({ schema: 1, modules: {} });
    expect(JSON.parse(text)).toEqual({ schema: 1, modules: {} });
  });
});

describe("resume: needsBuild", () => {
  const wanted = ["a.T.x", "a.T.y"];
  test("no cache → build; complete cache → skip", () => {
    expect(needsBuild(undefined, wanted, false).build).toBe(true);
    expect(needsBuild(ok("std", "1.22.0", { "a.T.x": 0, "a.T.y": null }), wanted, false)).toEqual({ build: false, why: "cached" });
  });
  test("a cached result lacking a newly tracked field is rebuilt", () => {
    const d = needsBuild(ok("std", "1.22.0", { "a.T.x": 0 }), wanted, false);
    expect(d.build).toBe(true);
    expect(d.why).toContain("a.T.y");
  });
  test("results of another tracker version are rebuilt", () => {
    expect(needsBuild({ ...ok("std", "1.22.0", { "a.T.x": 0, "a.T.y": 0 }), tracker: TRACKER_VERSION - 1 }, wanted, false).build).toBe(true);
  });
  test("failures are reused (reported again) unless --retry-failed or the field list changed", () => {
    const f = failed("std", "1.22.0", wanted);
    expect(needsBuild(f, wanted, false).build).toBe(false);
    expect(needsBuild(f, wanted, true).build).toBe(true);
    expect(needsBuild(f, [...wanted, "a.T.z"], false).build).toBe(true);
  });
});

describe("version lists", () => {
  test("toolchains: stable goX.Y.Z for this platform, from the floor, ascending", () => {
    const out =
      "golang.org/toolchain v0.0.1-go1.20.linux-amd64 v0.0.1-go1.21.0.linux-amd64 v0.0.1-go1.21.0.linux-arm64 v0.0.1-go1.22rc1.linux-amd64 " +
      "v0.0.1-go1.22.10.linux-amd64 v0.0.1-go1.22.2.linux-amd64 v0.0.1-go1.9rc2.windows-amd64 v0.0.1-go1.19.13.linux-amd64";
    expect(stableToolchains(out, "linux-amd64")).toEqual(["go1.21.0", "go1.22.2", "go1.22.10"]);
    expect(stableToolchains(out, "linux-arm64")).toEqual(["go1.21.0"]);
    expect(stableToolchains(out, "linux-amd64", "go1.22.3")).toEqual(["go1.22.10"]);
  });
  test("modules: releases only (no pre-releases, no -dev), from the floor", () => {
    const out = "google.golang.org/grpc v1.0.0 v1.39.0 v1.40.0 v1.41.0-pre v1.85.0-dev v1.85.0 v1.9.0 v1.100.1";
    expect(stableModuleVersions(out, "v1.40.0")).toEqual(["v1.40.0", "v1.85.0", "v1.100.1"]);
    expect(stableModuleVersions(out, undefined)).toEqual(["v1.0.0", "v1.9.0", "v1.39.0", "v1.40.0", "v1.85.0", "v1.100.1"]);
  });
  test("sortVersionKeys is semver order", () => {
    expect(sortVersionKeys(["1.10.0", "1.9.1", "1.9.0", "1.9.1"])).toEqual(["1.9.0", "1.9.1", "1.10.0"]);
  });
});

describe("tracked fields", () => {
  test("every probe field and every planned field is tracked, by the module that owns it", () => {
    const all = trackedFields();
    for (const f of probeFields()) expect(all).toContain(f);
    for (const [module, fields] of Object.entries(PLANNED_FIELDS)) {
      for (const f of fields) {
        expect(all).toContain(f);
        expect(trackedModuleOf(f)).toBe(module);
      }
    }
    expect(trackedFields("golang.org/x/net")).toEqual(["golang.org/x/net/http2.FrameHeader.StreamID", "golang.org/x/net/http2.MetaHeadersFrame.Fields"]);
  });
  test("every tracked module has a template, and every template's module is tracked", () => {
    expect(TEMPLATES.map((t) => t.module).sort()).toEqual(["std", ...TRACKED_MODULES].sort());
  });
});

describe("schema: the generated block", () => {
  test("accepted when it names its producer; rejected when malformed", () => {
    expect(validateOffsetsFile({ schema: 1, generated: { by: "offsets-tracker", date: "2026-01-01", extra: 1 }, modules: {} }, "t").generated?.by).toBe("offsets-tracker");
    expect(() => validateOffsetsFile({ schema: 1, generated: [], modules: {} }, "t")).toThrow(TracerError);
    expect(() => validateOffsetsFile({ schema: 1, generated: { date: "x" }, modules: {} }, "t")).toThrow("generated");
  });
});
