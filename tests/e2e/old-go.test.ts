/**
 * @module tests/e2e/old-go — issue 13: services built by Go 1.17–1.20 (Debian 12 ships Go 1.19
 * programs, Ubuntu 22.04 Go 1.18 ones) are traced with NO extra flag. The sample service is built
 * stripped (-ldflags='-s -w': no symbols, no DWARF) by the newest patch release of each of Go 1.17,
 * 1.18, 1.19 and 1.20, so every struct-field offset must come from the embedded snapshot
 * (offsets.json), the function table from the Go 1.16 (1.17) or 1.18 layout, and the build info
 * from the pointer (1.17) or inline format. Each request the test makes must appear as exactly one
 * server span with its status code; /proxy's client call as a client span with its status code.
 * Needs root; skips with the reason otherwise.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, OLD_TOOLCHAINS } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, SAMPLE_DIR, startSample, type Exchange, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("old-go");

/** One connection per request; statuses the sample answers with (tests/fixtures/go/sample/main.go). */
const WORKLOAD: { path: string; status: number }[] = [
  { path: "/hello", status: 200 },
  { path: "/fail", status: 500 },
  { path: "/items/7", status: 200 },
  { path: "/nope", status: 404 },
  { path: "/proxy", status: 200 },
  { path: "/hello", status: 200 },
];
/** A cold toolchain download (~100 MB) plus a cold build of the sample, then one traced workload. */
const TIMEOUT_MS = 600_000;

describe.skipIf(reason !== undefined)("stripped services built by Go 1.17-1.20 are traced with no extra flag", () => {
  for (const toolchain of OLD_TOOLCHAINS) {
    test(
      toolchain,
      async () => {
        const bin = await buildFixture({ dir: SAMPLE_DIR, toolchain, mode: "ldflags-s-w" });
        const sample = await startSample(bin);
        const out = join(work, `${toolchain}.cbor`);
        let exchanges: Exchange[] = [];
        try {
          const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
          await tr.started();
          for (const w of WORKLOAD) exchanges.push(await httpGet(sample.port, w.path));
          tr.signal("SIGINT");
          const exit = await tr.exit();
          expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
          // Nothing was guessed and nothing was unknown: no warning about offsets.
          expect(tr.stderr()).not.toMatch(/unknown|guess|not covered/i);
        } finally {
          await sample.stop();
        }
        // The requests themselves behaved, so a span mismatch is the tracer's fault.
        expect(exchanges.map((x) => [x.path, x.status])).toEqual(WORKLOAD.map((w) => [w.path, w.status]));

        const cap = readSpans(out);
        const header = cap.contents.header;
        expect(header.target.goVersion).toBe(toolchain);
        const server = header.probes.find((p) => p.id === "nethttp.server");
        expect({ id: server?.id, attached: server?.attached, reason: server?.reason }).toEqual({ id: "nethttp.server", attached: true, reason: undefined });
        // Stripped: every offset the probes read came from the embedded snapshot.
        const sources = new Set(header.probes.filter((p) => p.attached).flatMap((p) => p.offsets.map((o) => o.source)));
        expect([...sources]).toEqual(["snapshot"]);

        // Each request ↔ exactly one server span (matched by the client's port), with its status.
        for (const x of exchanges) {
          const spans = cap.spans.filter((s) => s.kind === "server" && s.attributes["network.peer.port"] === x.localPort);
          expect({ path: x.path, spans: spans.length }).toEqual({ path: x.path, spans: 1 });
          const s = spans[0]!;
          expect({
            path: x.path,
            method: s.attributes["http.request.method"],
            urlPath: s.attributes["url.path"],
            status: s.attributes["http.response.status_code"],
            error: s.status.code === "error",
          }).toEqual({ path: x.path, method: "GET", urlPath: x.path, status: x.status, error: x.status >= 500 });
        }

        // /proxy called GET /hello on the same server as a client: a client span with 200, a
        // child of the /proxy server span, and the inner /hello server span it caused.
        const proxyX = exchanges.find((x) => x.path === "/proxy")!;
        const proxySpan = cap.spans.find((s) => s.kind === "server" && s.attributes["network.peer.port"] === proxyX.localPort)!;
        const clients = cap.spans.filter((s: SpanRecord) => s.kind === "client");
        expect(clients.map((c) => ({ status: c.attributes["http.response.status_code"], parent: c.parentSpanId, trace: c.traceId }))).toEqual([
          { status: 200, parent: proxySpan.spanId, trace: proxySpan.traceId },
        ]);
        const inner = cap.spans.filter((s) => s.kind === "server" && !exchanges.some((x) => s.attributes["network.peer.port"] === x.localPort));
        expect(inner.map((s) => [s.attributes["url.path"], s.attributes["http.response.status_code"]])).toEqual([["/hello", 200]]);
      },
      TIMEOUT_MS,
    );
  }
});
if (reason) test.skip(`old Go e2e: ${reason}`, () => {});
