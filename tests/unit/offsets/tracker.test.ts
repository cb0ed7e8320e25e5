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
  completeToolchains,
  resultsFromOffsetsFile,
  toolchainOfKey,
  type TrackerResult,
} from "../../../src/offsets/tracker/compact.ts";
import { goEnv, goModGoLine } from "../../../src/offsets/tracker/build.ts";
import { OffsetsTable, validateOffsetsFile } from "../../../src/offsets/table.ts";
import { NOT_YET_TRACKED, PLANNED_FIELDS, TRACKED_MODULES, trackedFields, trackedModuleOf } from "../../../src/offsets/planned-fields.ts";
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
  test("toolchains: stable releases for this platform from go1.17 (x.0 named goX.Y before 1.21), ascending", () => {
    const out =
      "golang.org/toolchain v0.0.1-go1.20.linux-amd64 v0.0.1-go1.21.0.linux-amd64 v0.0.1-go1.21.0.linux-arm64 v0.0.1-go1.22rc1.linux-amd64 " +
      "v0.0.1-go1.22.10.linux-amd64 v0.0.1-go1.22.2.linux-amd64 v0.0.1-go1.9rc2.windows-amd64 v0.0.1-go1.19.13.linux-amd64 " +
      "v0.0.1-go1.16.15.linux-amd64 v0.0.1-go1.18beta1.linux-amd64 v0.0.1-go1.18.linux-amd64";
    expect(stableToolchains(out, "linux-amd64")).toEqual(["go1.18", "go1.19.13", "go1.20", "go1.21.0", "go1.22.2", "go1.22.10"]);
    expect(stableToolchains(out, "linux-arm64")).toEqual(["go1.21.0"]);
    expect(stableToolchains(out, "linux-amd64", "go1.22.3")).toEqual(["go1.22.10"]);
    expect(toolchainOfKey("1.17.0")).toBe("go1.17");
    expect(toolchainOfKey("1.21.0")).toBe("go1.21.0");
    expect(toolchainOfKey("1.19.8")).toBe("go1.19.8");
  });

  describe("completeToolchains: the proxy's list is incomplete, every patch number is asked about", () => {
    /** A fake proxy: these releases exist. */
    const proxy = (names: string[]) => {
      const have = new Set(names);
      const asked: string[] = [];
      return { asked, exists: async (n: string) => (asked.push(n), have.has(n)) };
    };
    const real = ["go1.17", "go1.17.1", "go1.17.2", "go1.18", "go1.18.1", "go1.18.2", "go1.18.3", "go1.19", "go1.21.0", "go1.21.1", "go1.21.2", "go1.21.3"];

    test("gaps below the newest listed patch, patches after it, a minor the list lacks, and the next minor", async () => {
      const p = proxy([...real, "go1.20", "go1.20.1", "go1.22.0"]);
      const listed = ["go1.17.1", "go1.18", "go1.18.3", "go1.19", "go1.21.0", "go1.21.3"];
      const r = await completeToolchains(listed, p.exists, { since: "go1.17" });
      expect(r.versions).toEqual(["go1.17", "go1.17.1", "go1.17.2", "go1.18", "go1.18.1", "go1.18.2", "go1.18.3", "go1.19", "go1.20", "go1.20.1", "go1.21.0", "go1.21.1", "go1.21.2", "go1.21.3", "go1.22.0"]);
      expect(r.unlisted).toEqual(["go1.17", "go1.17.2", "go1.18.1", "go1.18.2", "go1.20", "go1.20.1", "go1.21.1", "go1.21.2", "go1.22.0"]);
      expect(r.missing).toEqual([]);
      // Listed releases are never asked about; the search past the newest stops at the first miss.
      for (const n of listed) expect(p.asked).not.toContain(n);
      expect(p.asked).toContain("go1.21.4");
      expect(p.asked).toContain("go1.22.1");
      expect(p.asked).not.toContain("go1.23.0");
    });

    test("a patch below a listed one that the proxy lacks is reported, not covered; known names are not asked about", async () => {
      const p = proxy(["go1.21.0", "go1.21.2"]);
      const r = await completeToolchains(["go1.21.2"], p.exists, { since: "go1.21.0", known: new Set(["go1.21.0"]) });
      expect(r.versions).toEqual(["go1.21.0", "go1.21.2"]);
      expect(r.missing).toEqual(["go1.21.1"]);
      expect(p.asked).not.toContain("go1.21.0");
    });

    test("a failing question (network) fails the whole answer instead of shrinking the coverage", async () => {
      const boom = async (n: string) => {
        if (n === "go1.17.1") throw new Error("dial tcp: i/o timeout");
        return false;
      };
      await expect(completeToolchains(["go1.17.2"], boom, { since: "go1.17" })).rejects.toThrow("i/o timeout");
    });
  });

  test("tracker builds: Go 1.17 gets no -buildvcs (it refuses the flag) and a go line it knows", () => {
    expect(goEnv({}, "go1.17.13").GOFLAGS).toBe("-mod=mod");
    expect(goEnv({}, "go1.18").GOFLAGS).toBe("-buildvcs=false -mod=mod");
    expect(goEnv({}).GOFLAGS).toBe("-buildvcs=false -mod=mod");
    expect(goModGoLine("go1.17")).toBe("1.17");
    expect(goModGoLine("go1.20.14")).toBe("1.20");
    expect(goModGoLine("go1.27.4")).toBe("1.21");
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

describe("importing a committed offsets.json into an empty cache", () => {
  test("every covered version becomes a result with the file's values; cached versions are left alone", () => {
    const fields = { std: ["net/http.Request.ctx", "net/http.Request.Pattern"], "google.golang.org/grpc": ["google.golang.org/grpc.ClientConn.target"] };
    const built = [
      ok("std", "1.22.12", { "net/http.Request.ctx": 232, "net/http.Request.Pattern": null }),
      ok("std", "1.23.0", { "net/http.Request.ctx": 248, "net/http.Request.Pattern": 232 }),
      ok("google.golang.org/grpc", "1.60.0", { "google.golang.org/grpc.ClientConn.target": 24 }, "go1.27.4"),
    ];
    const file = assembleOffsetsFile(built, { fields, date: "2026-01-01" });
    const imported = resultsFromOffsetsFile(file, (m, v) => m === "std" && v === "1.23.0", "offsets.json");
    expect(imported.map((r) => `${r.module}@${r.version}`).sort()).toEqual(["google.golang.org/grpc@1.60.0", "std@1.22.12"]);
    expect(imported.every((r) => r.ok && r.importedFrom === "offsets.json")).toBe(true);
    expect(imported.find((r) => r.module === "std")).toMatchObject({ toolchain: "go1.22.12", fields: built[0]!.fields });
    expect(imported.find((r) => r.module !== "std")).toMatchObject({ toolchain: "go1.27.4", fields: built[2]!.fields });
    // Round trip: the imported results reassemble to the same file.
    const again = assembleOffsetsFile([...resultsFromOffsetsFile(file, () => false, "x")], { fields, date: "2026-01-01" });
    expect(serializeOffsetsFile(again)).toBe(serializeOffsetsFile(file));
  });
});

describe("tracked fields", () => {
  test("every probe field and every planned field is tracked, by the module that owns it", () => {
    const all = trackedFields();
    for (const f of probeFields()) if (!NOT_YET_TRACKED.has(f)) expect(all).toContain(f);
    for (const [module, fields] of Object.entries(PLANNED_FIELDS)) {
      for (const f of fields) {
        if (!NOT_YET_TRACKED.has(f)) expect(all).toContain(f);
        expect(trackedModuleOf(f)).toBe(module);
      }
    }
    expect(trackedFields("golang.org/x/net")).toEqual([
      "golang.org/x/net/http2.ClientConn.tconn",
      "golang.org/x/net/http2.FrameHeader.StreamID",
      "golang.org/x/net/http2.MetaHeadersFrame.Fields",
      "golang.org/x/net/http2.clientStream.ID",
      "golang.org/x/net/http2.clientStream.cc",
      "golang.org/x/net/http2.responseWriter.rws",
      "golang.org/x/net/http2.responseWriterState.status",
      "golang.org/x/net/http2.responseWriterState.stream",
      "golang.org/x/net/http2.stream.id",
    ]);
    for (const f of NOT_YET_TRACKED) expect(all).not.toContain(f);
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
