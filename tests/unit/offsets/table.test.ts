import { describe, expect, test } from "bun:test";
import { OffsetsTable } from "../../../src/offsets/table.ts";
import { compareVersions, parseAnyVersion, parseGoVersion, parseModuleVersion, isPseudoVersion } from "../../../src/offsets/version.ts";
import { moduleOfField, resolveField } from "../../../src/offsets/resolve.ts";
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
    expect(parseGoVersion("devel go1.24-abcdef")).toBeUndefined();
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
    expect(unk.offset).toBeUndefined();
    expect(unk.note).toContain("not covered");
    expect(resolveField("net/http.Request.ctx", { goVersion: "go1.23.99", modules, snapshot, allowNearest: true })).toMatchObject({ offset: 248, source: "guess" });
    expect(resolveField("google.golang.org/grpc.ClientConn.target", { goVersion: "go1.23.0", modules, snapshot, allowNearest: false })).toMatchObject({ offset: 24, source: "snapshot" });
  });
});
