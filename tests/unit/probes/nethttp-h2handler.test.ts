/**
 * Go 1.27's net/http.http2Handler.ServeHTTP entry (src/probes/nethttp/server.ts): placed only in
 * programs that link x/net's server (whose h2c wrapper hands it the application's handler), so
 * a plain net/http program pays no extra hit per HTTP/2 request; its site is emulated.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { nethttpServer } from "../../../src/probes/nethttp/server.ts";
import { nethttpClient } from "../../../src/probes/nethttp/client.ts";
import { planProbes } from "../../../src/trace/plan.ts";
import { buildFixture, fixtureRelease, goMatrixUnavailable, newestToolchain } from "../../harness/go.ts";

const why = goMatrixUnavailable();
const H2HANDLER = "nethttp_server_entry_h2handler";

async function plan(fixture: { dir: string; modfile?: string }, probe = nethttpServer) {
  const exe = await buildFixture({ ...fixture, toolchain: newestToolchain(), mode: "default" });
  const [p] = planProbes(openGoBinary(new Uint8Array(readFileSync(exe)), exe), [probe], { snapshot: embeddedSnapshot(), allowNearest: false });
  return p!;
}

describe.skipIf(why !== undefined)(`http2Handler.ServeHTTP entry${why ? ` (skipped: ${why})` : ""}`, () => {
  test("x/net v0.63 on Go 1.27: placed at its emulated entry site, with the ServerRequest offsets and serverHandler's type name", async () => {
    const p = await plan(fixtureRelease("xnet-h2", "xnet-0.63"));
    expect(p.enabled).toBe(true);
    expect(p.points.filter((x) => x.program === H2HANDLER).map((x) => [x.symbol, x.role, x.emulated])).toEqual([["net/http.http2Handler.ServeHTTP", "entry", true]]);
    for (const c of ["srq_method_off", "srq_url_off", "srq_host_off", "srq_remote_addr_off", "srq_proto_major_off", "srq_proto_minor_off", "srq_ctx_off", "srq_header_off", "srq_tls_off"]) {
      expect({ c, known: typeof p.consts[c] }).toEqual({ c, known: "number" });
    }
    expect(Number(p.consts["nameoff_server_handler"])).toBeGreaterThan(0);
    expect(Number(p.consts["nameoff_http1_response"])).toBeGreaterThan(0);
  }, 300_000);

  test("a plain net/http program on Go 1.27: not placed (every HTTP/2 request reaches serverHandler.ServeHTTP)", async () => {
    const p = await plan({ dir: "tests/fixtures/go/h2chain" });
    expect(p.enabled).toBe(true);
    expect(p.points.some((x) => x.program === H2HANDLER)).toBe(false);
    expect(p.points.some((x) => x.program === "nethttp_server_entry")).toBe(true);
  }, 300_000);

  test("x/net v0.63 on Go 1.27, client: x/net's ClientConn wraps net/http's, whose stream site is placed; x/net's own (not linked) is skipped without a warning", async () => {
    const p = await plan(fixtureRelease("xnet-h2", "xnet-0.63"), nethttpClient);
    expect(p.degraded).toBeUndefined();
    expect(p.points.filter((x) => x.role === "extra").map((x) => [x.program, x.symbol])).toEqual([
      ["nethttp_client_conn", "net/http.(*persistConn).roundTrip"],
      ["nethttp_client_h2", "net/http/internal/http2.(*clientStream).encodeAndWriteHeaders"],
    ]);
  }, 300_000);
});
