/**
 * @module tests/unit/probes/protocols — protocols a binary links but beetrace does not trace are
 * named (from build info + the function table), and nothing is named for a plain net/http program.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { untracedProtocols } from "../../../src/probes/protocols.ts";
import { buildFixture, fixtureRelease, goMatrixUnavailable, newestToolchain } from "../../harness/go.ts";

const reason = goMatrixUnavailable();

describe.skipIf(reason !== undefined)(`untraced protocols${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test("database/sql linked: traced by the databasesql probe, so not named; stripped builds too", async () => {
    for (const mode of ["default", "ldflags-s-w"] as const) {
      const exe = await buildFixture({ dir: "tests/fixtures/go/untraced", toolchain: newestToolchain(), mode });
      const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
      expect(untracedProtocols(a)).toEqual([]);
    }
  }, 300_000);

  test("x/net's HTTP/2 server: traced where x/net runs its own (v0.38) and where Go 1.27 builds it on net/http's (v0.63: http2Handler.ServeHTTP)", async () => {
    const own = await buildFixture({ ...fixtureRelease("xnet-h2", "xnet-0.38"), toolchain: "go1.26.11", mode: "ldflags-s-w" });
    expect(untracedProtocols(openGoBinary(new Uint8Array(readFileSync(own)), own))).toEqual([]);
    const wrapped = await buildFixture({ ...fixtureRelease("xnet-h2", "xnet-0.63"), toolchain: newestToolchain(), mode: "default" });
    expect(untracedProtocols(openGoBinary(new Uint8Array(readFileSync(wrapped)), wrapped))).toEqual([]);
  }, 300_000);

  test("a plain net/http program links nothing untraced", async () => {
    const exe = await buildFixture({ dir: "tests/fixtures/go/sample", toolchain: newestToolchain(), mode: "default" });
    const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
    expect(untracedProtocols(a)).toEqual([]);
  }, 300_000);
});
