/**
 * @module tests/unit/offsets/coverage.test — offsets.json covers every Go release there is, from
 * go1.17 (the register ABI) to the newest: checked against the release list the tracker found by
 * asking the module proxy about every patch number (src/offsets/go-releases.json). Issue 13: the
 * proxy's own version list omits releases (go1.21.1–1.21.5, …), and a snapshot built from it
 * silently lacked 20 patch releases. No network: both files are committed.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { releaseListGaps, uncoveredReleases, type ReleaseList } from "../../../src/offsets/tracker/compact.ts";
import { validateOffsetsFile } from "../../../src/offsets/table.ts";
import { parseGoVersion } from "../../../src/offsets/version.ts";

const ROOT = join(import.meta.dir, "..", "..", "..");
const list = JSON.parse(readFileSync(join(ROOT, "src", "offsets", "go-releases.json"), "utf8")) as ReleaseList;
const snapshot = validateOffsetsFile(JSON.parse(readFileSync(join(ROOT, "offsets.json"), "utf8")), "offsets.json");
const std = snapshot.modules.std!;

describe("the checks themselves", () => {
  test("uncoveredReleases names a release missing inside the covered range, and nothing outside it", () => {
    const releases = ["go1.17", "go1.17.1", "go1.17.2", "go1.18", "go1.21.0", "go1.21.1"];
    expect(uncoveredReleases(releases, ["1.17.0", "1.17.2", "1.18.0", "1.21.0"])).toEqual(["go1.17.1"]);
    // go1.17 (before the oldest covered) and go1.21.x (after the newest) are outside the range.
    expect(uncoveredReleases(releases, ["1.17.1", "1.18.0"])).toEqual(["go1.17.2"]);
    expect(uncoveredReleases(releases, ["1.17.1", "1.17.2", "1.18.0"])).toEqual([]);
  });
  test("releaseListGaps names skipped patch numbers unless they are listed as unavailable", () => {
    expect(releaseListGaps({ releases: ["go1.19", "go1.19.2", "go1.21.0", "go1.21.3"], unavailable: ["go1.21.1"] })).toEqual(["go1.19.1", "go1.21.2"]);
  });
});

describe("offsets.json covers every Go release from go1.17", () => {
  test("the release list is whole: every patch number from .0 to the newest of each minor, go1.17 on", () => {
    expect(list.releases[0]).toBe("go1.17");
    expect(releaseListGaps(list)).toEqual([]);
    for (const u of list.unavailable) expect(list.releases).not.toContain(u);
    const minors = new Set(list.releases.map((r) => parseGoVersion(r)!.minor));
    const newest = Math.max(...minors);
    for (let m = 17; m <= newest; m++) expect(minors.has(m), `go1.${m}`).toBe(true);
  });

  test("from go1.17 to the newest release, none is missing from offsets.json", () => {
    expect(std.versions[0]).toBe("1.17.0");
    const newest = parseGoVersion(list.releases[list.releases.length - 1]!)!;
    expect(std.versions[std.versions.length - 1]).toBe(`${newest.major}.${newest.minor}.${newest.patch}`);
    expect(uncoveredReleases(list.releases, std.versions)).toEqual([]);
  });

  test("no release failed to build", () => {
    expect(snapshot.generated?.failed?.std ?? []).toEqual([]);
  });
});
