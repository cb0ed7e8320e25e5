/**
 * @module tests/e2e/merge-h2 — connection-matched joins over HTTP/2, offline: a chain of three Go
 * services on loopback (edge → orders → stock, tests/fixtures/go/h2chain), each traced by its own
 * `beetrace attach --pid … --out`, then `beetrace merge` with the orders capture's clock skewed
 * by a known amount (--skew).
 *
 * Edge serves the test over HTTP/1 and calls orders FAN times at once over HTTP/2 (TLS with ALPN
 * h2, or h2c); orders calls stock once per request, over the same protocol, so both connections
 * carry concurrent requests multiplexed on one connection: the time of a server span no longer
 * tells its caller apart, the stream id does. Client spans record the connection's local end and
 * their stream id (read at the stream's encodeAndWriteHeaders), server spans their peer and
 * stream id (rws.stream.id). After the merge every server span is the child of the client span
 * with its own stream id on its own connection.
 *
 * Go 1.26 (net/http's bundled HTTP/2, h2_bundle.go) and Go 1.27 (net/http/internal/http2).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import type { MergeReport } from "../../src/cli/merge.ts";
import { buildFixture, FIXTURES_GO } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, runTracerToEnd, type RunningSample, e2eWorkDir, parentFinder } from "./harness.ts";
import { startH2Chain } from "./h2chain.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("merge-h2");

/** Requests the test sends to edge, one after the other. */
const REQUESTS = 4;
/** Concurrent calls edge makes to orders per request. */
const FAN = 3;
/** The orders capture pretends its clock is 1.5 s behind. */
const SKEW_NS = -1_500_000_000;
const SID = "beetrace.http2.stream_id";

describe.skipIf(reason !== undefined)(`merge over HTTP/2${reason ? ` (skipped: ${reason})` : ""}`, () => {
  // slots "1": BEETRACE_SERVER_SLOTS=1, so the concurrent calls' state (client calls, their URLs
  // for the HTTP/2 stream's goroutine, server calls) mostly goes through the LRU maps behind the slots.
  for (const [toolchain, proto, slots] of [
    ["go1.26.11", "h2", undefined],
    ["go1.26.11", "h2", "1"],
    ["go1.27.4", "h2", undefined],
    ["go1.27.4", "h2c", undefined],
  ] as const) {
    test(`${toolchain}, ${proto}${slots ? `, one slot per table (BEETRACE_SERVER_SLOTS=${slots})` : ""}: edge → orders → stock, ${FAN} requests at a time on one connection, one capture skewed: every server span is the child of the client span with its stream id`, async () => {
      const bin = await buildFixture({ dir: join(FIXTURES_GO, "h2chain"), toolchain, mode: "default" });
      const started: RunningSample[] = [];
      try {
        const { edge, orders, stock } = await startH2Chain(bin, proto, started);
        const names = ["edge", "orders", "stock"] as const;
        const procs = [edge, orders, stock];
        const outs = names.map((n) => join(work, `${n}-${toolchain}-${proto}${slots ? `-slots${slots}` : ""}.cbor`));
        const tracers = procs.map((p, i) => runTracer(["attach", "--pid", String(p.pid), "--out", outs[i]!], slots ? { BEETRACE_SERVER_SLOTS: slots } : undefined));
        await Promise.all(tracers.map((t) => t.started()));
        for (let i = 0; i < REQUESTS; i++) {
          const r = await httpGet(edge.port, `/work?fan=${FAN}`);
          expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: `ok ${2 * FAN}` });
        }
        for (const t of tracers) t.signal("SIGINT");
        for (const t of tracers) expect((await t.exit()).code).toBe(0);

        const caps = outs.map((o) => readSpans(o).spans);
        const N = REQUESTS * FAN;
        // Edge: REQUESTS HTTP/1 server spans; orders and stock: N HTTP/2 server spans each.
        expect(caps.map((spans) => spans.filter((s) => s.kind === "server").length)).toEqual([REQUESTS, N, N]);
        for (const [i, spans] of caps.entries()) {
          if (i > 0) {
            for (const s of spans.filter((x) => x.kind === "server")) {
              expect({ proto: s.attributes["network.protocol.version"], sid: typeof s.attributes[SID] }).toEqual({ proto: "2", sid: "number" });
            }
          }
          if (i < 2) {
            const clients = spans.filter((s) => s.kind === "client");
            expect(clients.length).toBe(N);
            for (const c of clients) {
              expect({ addr: c.attributes["network.local.address"], port: typeof c.attributes["network.local.port"], sid: typeof c.attributes[SID] }).toEqual({
                addr: "127.0.0.1",
                port: "number",
                sid: "number",
              });
            }
            // Multiplexed: fewer connections than requests (one, normally), each stream id once per connection.
            const conns = new Set(clients.map((c) => c.attributes["network.local.port"]));
            expect(conns.size).toBeLessThan(N);
            expect(new Set(clients.map((c) => `${c.attributes["network.local.port"]}#${c.attributes[SID]}`)).size).toBe(N);
          }
        }
        // Concurrent requests on one connection: some client spans of a connection overlap in time.
        const ordersClients = caps[1]!.filter((s) => s.kind === "client").sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
        const edgeClients = caps[0]!.filter((s) => s.kind === "client").sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
        const overlaps = (l: SpanRecord[]) => l.some((c, i) => i > 0 && c.startTimeUnixNano < l[i - 1]!.endTimeUnixNano);
        expect(overlaps(edgeClients) || overlaps(ordersClients)).toBe(true);

        const merged = join(work, `merged-${toolchain}-${proto}${slots ? `-slots${slots}` : ""}.cbor`);
        const m = await runTracerToEnd(["merge", ...outs, "-o", merged, "--skew", `1=${SKEW_NS / 1e9}s`, "--json"]);
        expect({ code: m.exit.code, stderr: m.stderr }).toEqual({ code: 0, stderr: "" });
        const report = JSON.parse(m.stdout) as MergeReport;
        // Edge's server spans were called by this test, which is not traced: left unjoined, counted.
        expect({ joined: report.joined, unjoined: report.unjoined, pairs: report.files.map((f) => f.pairs) }).toEqual({
          joined: 2 * N,
          unjoined: { servers: REQUESTS, clients: 0, ambiguous: 0, clockConflicts: 0, traceConflicts: 0 },
          pairs: [0, N, N],
        });
        // Loopback: the true offsets are 0, so the estimate for orders is the skew, to within a
        // request's duration, and stock (measured against orders) is back near 0.
        expect(Math.abs(report.files[1]!.clockOffsetNs - SKEW_NS)).toBeLessThan(50_000_000);
        expect(Math.abs(report.files[2]!.clockOffsetNs)).toBeLessThan(50_000_000);

        const spans = readSpans(merged).spans;
        expect(spans.length).toBe(caps.reduce((n, c) => n + c.length, 0));
        const parentOf = parentFinder(spans);
        /** The client span that parents server span `s`: same connection, same stream. */
        const callerOf = (s: SpanRecord): SpanRecord => {
          const c = parentOf(s);
          expect({ kind: c.kind, port: c.attributes["network.local.port"], sid: c.attributes[SID] }).toEqual({
            kind: "client",
            port: s.attributes["network.peer.port"]!,
            sid: s.attributes[SID]!,
          });
          return c;
        };
        const stockIds = new Set(caps[2]!.map((s) => s.spanId));
        const ordersIds = new Set(caps[1]!.map((s) => s.spanId));
        const leaves = spans.filter((s) => stockIds.has(s.spanId) && s.kind === "server");
        expect(leaves.length).toBe(N);
        const roots = new Map<string, number>();
        const callers = new Set<string>();
        for (const leaf of leaves) {
          // stock server ← orders client ← orders server ← edge client ← edge server
          const oc = callerOf(leaf);
          const os = parentOf(oc);
          expect({ kind: os.kind, orders: ordersIds.has(os.spanId) }).toEqual({ kind: "server", orders: true });
          const ec = callerOf(os);
          const es = parentOf(ec);
          expect({ kind: es.kind, parent: es.parentSpanId }).toEqual({ kind: "server", parent: undefined });
          roots.set(es.spanId, (roots.get(es.spanId) ?? 0) + 1);
          callers.add(oc.spanId).add(ec.spanId);
        }
        // Each of the test's requests is one trace holding its FAN chains; every client span called one server span.
        expect([...roots.values()]).toEqual(Array(REQUESTS).fill(FAN));
        expect(callers.size).toBe(2 * N);

        const v = await runTracerToEnd(["view", merged]);
        expect({ code: v.exit.code, stderr: v.stderr }).toEqual({ code: 0, stderr: "" });
      } finally {
        for (const p of started) await p.stop();
      }
    }, 300_000);
  }
});
