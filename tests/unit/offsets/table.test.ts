import { describe, expect, test } from "bun:test";
import { OffsetsTable } from "../../../src/offsets/table.ts";
import { compareVersions, goAtLeast, goToolchainName, parseAnyVersion, parseGoVersion, parseModuleVersion, isPseudoVersion, versionKey } from "../../../src/offsets/version.ts";
import { moduleOfField, resolveField, unknownVersionFix } from "../../../src/offsets/resolve.ts";
import { parseGoVersion as parseGoVersionFromBuildinfo } from "../../../src/binary/buildinfo.ts";
import { goAtLeast as probesGoAtLeast } from "../../../src/probes/probe.ts";
import { TracerError } from "../../../src/errors.ts";

const sample = {
  schema: 1,
  modules: {
    std: {
      versions: ["1.21.0", "1.21.13", "1.22.0", "1.22.12", "1.23.0", "1.23.12"],
      fields: {
        "net/http.Request.ctx": [
          { from: "1.21.0", to: "1.22.12", offset: 232 },
          { from: "1.23.0", to: "1.23.12", offset: 248 },
        ],
        "net/http.Request.Pattern": [
          { from: "1.21.0", to: "1.22.12", offset: null },
          { from: "1.23.0", to: "1.23.12", offset: 232 },
        ],
      },
    },
    "google.golang.org/grpc": {
      versions: ["1.60.0", "1.60.1", "1.61.0"],
      fields: { "google.golang.org/grpc.ClientConn.target": [{ from: "1.60.0", to: "1.61.0", offset: 24 }] },
    },
  },
};

describe("versions", () => {
  test("Go version forms", () => {
    expect(parseGoVersion("go1.21.0")).toMatchObject({ major: 1, minor: 21, patch: 0, pre: [] });
    expect(parseGoVersion("go1.20")).toMatchObject({ major: 1, minor: 20, patch: 0 });
    expect(parseGoVersion("go1.22rc1")).toMatchObject({ minor: 22, pre: ["rc1"] });
    expect(parseGoVersion("go1.23.4 X:nocoverageredesign")).toMatchObject({ minor: 23, patch: 4 });
    // A devel toolchain is the release it leads up to, as a pre-release: never a covered version itself.
    expect(parseGoVersion("devel go1.24-abcdef")).toMatchObject({ minor: 24, patch: 0, pre: ["devel"] });
    expect(parseGoVersion("devel +b7a85e0003 Tue Jan 1")).toBeUndefined();
  });
  test("module versions and ordering", () => {
    const v = (s: string) => parseAnyVersion(s)!;
    expect(parseModuleVersion("(devel)")).toBeUndefined();
    expect(compareVersions(v("v1.2.0-rc.1"), v("v1.2.0"))).toBeLessThan(0);
    expect(compareVersions(v("v1.10.0"), v("v1.9.9"))).toBeGreaterThan(0);
    expect(compareVersions(v("go1.22rc1"), v("go1.22.0"))).toBeLessThan(0);
    expect(compareVersions(v("v1.0.0-alpha.1"), v("v1.0.0-alpha.beta"))).toBeLessThan(0);
    expect(isPseudoVersion(v("v0.0.0-20240101120000-abcdef123456"))).toBe(true);
    expect(isPseudoVersion(v("v1.2.3"))).toBe(false);
  });
});

describe("one Go version parser (issue 13 item 9: the two disagreed on devel toolchains)", () => {
  test("src/binary/buildinfo.ts re-exports the same function", () => {
    expect(parseGoVersionFromBuildinfo).toBe(parseGoVersion);
  });
  test("goAtLeast: devel and rc toolchains count as the release they lead up to", () => {
    for (const f of [goAtLeast, probesGoAtLeast]) {
      expect(f("devel go1.27-e8ee1dc4f9 Mon Jun 3 19:40:14 2026 +0000", "1.22")).toBe(true);
      expect(f("devel go1.23-e8ee1dc4f9 Mon Jun 3 19:40:14 2026 +0000", "1.23")).toBe(true);
      expect(f("go1.23-devel_e8ee1dc4f9 Mon Jun 3", "1.23")).toBe(true);
      expect(f("devel go1.22-abc", "1.23")).toBe(false);
      expect(f("go1.23rc1", "1.23")).toBe(true);
      expect(f("go1.22.12", "1.23")).toBe(false);
      expect(f("go1.23.4 X:nocoverageredesign", "1.23")).toBe(true);
      expect(f("1.24.0", "1.24")).toBe(true);
      expect(f("go1.17", "1.17")).toBe(true);
      expect(f("devel +b7a85e0003 Tue Jan 1", "1.17")).toBe(false); // names no release: unknown
    }
  });
  test("a devel toolchain is not a covered release: its key carries the pre-release", () => {
    expect(versionKey(parseGoVersion("devel go1.23-abc")!)).toBe("1.23.0-devel");
    expect(versionKey(parseGoVersion("go1.17")!)).toBe("1.17.0");
    expect(goToolchainName(parseGoVersion("go1.17")!)).toBe("go1.17");
    expect(goToolchainName(parseAnyVersion("1.20.0")!)).toBe("go1.20");
    expect(goToolchainName(parseAnyVersion("1.21.0")!)).toBe("go1.21.0");
  });
});

describe("the fix named for an unknown offset", () => {
  test("std: any program built by that exact Go release, through offsets extract", () => {
    const fix = unknownVersionFix("std", "go1.19.8");
    expect(fix).toContain("any program");
    expect(fix).toContain("GOTOOLCHAIN=go1.19.8");
    expect(fix).toContain("beetrace offsets extract");
    expect(fix).toContain("--offsets");
    expect(unknownVersionFix("std", "devel go1.27-abc Mon")).not.toContain("GOTOOLCHAIN=");
    expect(unknownVersionFix("google.golang.org/grpc", "v1.99.0")).toContain("google.golang.org/grpc@v1.99.0");
  });
});

describe("OffsetsTable", () => {
  const t = new OffsetsTable(sample as never, "test snapshot");
  test("exact versions resolve; absent fields say so", () => {
    expect(t.lookup("std", "net/http.Request.ctx", "go1.22.12")).toEqual({ kind: "found", offset: 232, exact: true });
    expect(t.lookup("std", "net/http.Request.ctx", "go1.23.0")).toEqual({ kind: "found", offset: 248, exact: true });
    expect(t.lookup("std", "net/http.Request.Pattern", "go1.21.13")).toEqual({ kind: "absent" });
  });
  test("versions the tracker never built are unknown, never extrapolated", () => {
    const r = t.lookup("std", "net/http.Request.ctx", "go1.23.13");
    expect(r.kind).toBe("unknown");
    expect((r as { reason: string }).reason).toContain("1.21.0 … 1.23.12");
    expect(t.lookup("std", "net/http.Request.ctx", "go1.22.5").kind).toBe("unknown");
    expect(t.lookup("google.golang.org/grpc", "google.golang.org/grpc.ClientConn.target", "v0.0.0-20240101120000-abcdef123456").kind).toBe("unknown");
  });
  test("nearest is opt-in and names the version it used", () => {
    expect(t.lookup("std", "net/http.Request.ctx", "go1.23.13", true)).toEqual({ kind: "nearest", offset: 248, nearestVersion: "1.23.12" });
  });
  test("bad files give a usage error naming the problem", () => {
    expect(() => OffsetsTable.parse("{", "x.json")).toThrow(TracerError);
    expect(() => OffsetsTable.parse('{"schema":2,"modules":{}}', "x.json")).toThrow(/schema/);
    expect(() => OffsetsTable.parse('{"schema":1,"modules":{"std":{"versions":["1.2.3"],"fields":{"a.B.c":[{"from":"1.2.3","to":"1.2.3","offset":-1}]}}}}', "x.json")).toThrow(/bad range/);
  });
});

describe("resolveField", () => {
  const snapshot = new OffsetsTable(sample as never, "embedded snapshot");
  const modules = new Map([["google.golang.org/grpc", "v1.60.1"]]);
  test("module of a field", () => {
    expect(moduleOfField("net/http.Request.Method", [])).toBe("std");
    expect(moduleOfField("google.golang.org/grpc/internal/transport.Stream.id", modules.keys())).toBe("google.golang.org/grpc");
  });
  test("DWARF wins, then snapshot, else unknown with a reason", () => {
    const dwarf = { resolve: (p: string) => (p === "net/http.Request.ctx" ? { offset: 999 } : undefined) };
    expect(resolveField("net/http.Request.ctx", { goVersion: "go1.23.0", modules, dwarf, snapshot, allowNearest: false })).toMatchObject({ offset: 999, source: "dwarf" });
    expect(resolveField("net/http.Request.ctx", { goVersion: "go1.23.0", modules, snapshot, allowNearest: false })).toMatchObject({ offset: 248, source: "snapshot" });
    const unk = resolveField("net/http.Request.ctx", { goVersion: "go1.99.0", modules, snapshot, allowNearest: false });
    expect(unk.fix).toContain("GOTOOLCHAIN=go1.99.0");
    expect(unk.offset).toBeUndefined();
    expect(unk.note).toContain("not covered");
    expect(resolveField("net/http.Request.ctx", { goVersion: "go1.23.99", modules, snapshot, allowNearest: true })).toMatchObject({ offset: 248, source: "guess" });
    expect(resolveField("google.golang.org/grpc.ClientConn.target", { goVersion: "go1.23.0", modules, snapshot, allowNearest: false })).toMatchObject({ offset: 24, source: "snapshot" });
  });
});
