/**
 * The net/http client's extra site (UprobeDecl.extraSites, src/trace/plan.ts): one uprobe at
 * (*persistConn).roundTrip's emulated entry site reads the connection's local address. Placed
 * when its symbol and field offsets are known; otherwise the probe runs without it and the plan
 * says what its spans lack (degraded), never a disabled probe.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { nethttpClient } from "../../../src/probes/nethttp/client.ts";
import type { ProbeManifest } from "../../../src/probes/probe.ts";
import { planProbes } from "../../../src/trace/plan.ts";
import { buildFixture, goMatrixUnavailable, newestToolchain } from "../../harness/go.ts";

const why = goMatrixUnavailable();
const CONN = "net/http.(*persistConn).roundTrip";

async function analysis(mode: "default" | "strip") {
  const exe = await buildFixture({ dir: "tests/fixtures/go/chain", toolchain: newestToolchain(), mode });
  return openGoBinary(new Uint8Array(readFileSync(exe)), exe);
}

describe.skipIf(why !== undefined)(`client connection site${why ? ` (skipped: ${why})` : ""}`, () => {
  test("with DWARF: placed at the emulated entry site, its offsets set", async () => {
    const [plan] = planProbes(await analysis("default"), [nethttpClient], { snapshot: embeddedSnapshot(), allowNearest: false });
    expect(plan!.enabled).toBe(true);
    expect(plan!.degraded).toBeUndefined();
    const extra = plan!.points.filter((p) => p.role === "extra");
    // HTTP/1's connection, and the HTTP/2 stream's encodeAndWriteHeaders (Go 1.27: internal/http2).
    expect(extra.map((p) => [p.symbol, p.program, p.emulated])).toEqual([
      [CONN, "nethttp_client_conn", true],
      ["net/http/internal/http2.(*clientStream).encodeAndWriteHeaders", "nethttp_client_h2", true],
    ]);
    const h2 = ["h2_cs_id_off", "h2_cs_cc_off", "h2_cc_tconn_off", "h2_creq_url_off"];
    for (const c of ["pconn_conn_off", "netconn_fd_off", "netfd_laddr_off", "tcpaddr_ip_off", "tcpaddr_port_off", "tls_conn_conn_off", ...h2]) {
      expect({ c, known: typeof plan!.consts[c] }).toEqual({ c, known: "number" });
    }
  }, 300_000);

  test("stripped: placed when the snapshot knows the offsets, else the probe runs without it and says so", async () => {
    const [plan] = planProbes(await analysis("strip"), [nethttpClient], { snapshot: embeddedSnapshot(), allowNearest: false });
    expect(plan!.enabled).toBe(true);
    const placed = plan!.points.some((p) => p.role === "extra" && p.program === "nethttp_client_conn");
    if (placed) expect(plan!.degraded).toBeUndefined();
    else expect(plan!.degraded).toEqual([expect.stringMatching(/^network\.local\.address\/port of the request's connection not recorded: offset of .* unknown/)]);
  }, 300_000);

  test("a site whose function is not in the binary: not placed, the probe still runs", async () => {
    const u = nethttpClient.uprobes[0]!;
    const missing: ProbeManifest = {
      ...nethttpClient,
      uprobes: [{ ...u, extraSites: [{ ...u.extraSites![0]!, symbols: ["net/http.(*persistConn).noSuchFunction"] }] }],
    };
    const [plan] = planProbes(await analysis("default"), [missing], { snapshot: embeddedSnapshot(), allowNearest: false });
    expect(plan!.enabled).toBe(true);
    expect(plan!.points.some((p) => p.role === "extra")).toBe(false);
    expect(plan!.degraded).toEqual([expect.stringContaining("noSuchFunction not found")]);
    expect(plan!.points.filter((p) => p.role === "entry").length).toBe(1);
  }, 300_000);
});
