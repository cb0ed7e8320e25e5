/**
 * @module tests/e2e/merge — connection-matched joins, offline: a chain of three Go services on
 * loopback (edge → orders → stock, tests/fixtures/go/chain), each traced by its own
 * `beetrace attach --pid … --out`, then `beetrace merge` with the orders capture's clock skewed
 * by a known amount (--skew).
 *
 * Each service's client calls the next through http.DefaultClient, so a service's requests share
 * one keep-alive connection; client spans record the connection's local address and port (read at
 * (*persistConn).roundTrip), server spans their peer's. After the merge each request is one trace
 * across the three processes with every parent right, and the offset merge reports for the
 * skewed file is the skew.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import type { MergeReport } from "../../src/cli/merge.ts";
import { buildFixture, FIXTURES_GO, newestToolchain } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, runTracerToEnd, startSample, type RunningSample, e2eWorkDir, parentFinder } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("merge");

const REQUESTS = 6;
/** The orders capture pretends its clock is 2.5 s ahead. */
const SKEW_NS = 2_500_000_000;

describe.skipIf(reason !== undefined)(`merge${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const tls of [false, true]) {
    test(`edge → orders → stock${tls ? " (orders and stock over TLS)" : ""}, one capture each, one skewed: each request is one trace across the three with every parent right`, async () => {
      const bin = await buildFixture({ dir: join(FIXTURES_GO, "chain"), toolchain: newestToolchain(), mode: "default" });
      const started: RunningSample[] = [];
      // Over TLS the client's connection is a *tls.Conn: the local address is its inner conn's.
      const serve = tls ? ["-tls"] : [];
      const url = (p: RunningSample) => (tls ? `https://127.0.0.1:${p.port}` : p.base);
      try {
        const stock = await startSample(bin, serve);
        started.push(stock);
        const orders = await startSample(bin, [...serve, "-next", url(stock)]);
        started.push(orders);
        const edge = await startSample(bin, ["-next", url(orders)]);
        started.push(edge);
        const names = ["edge", "orders", "stock"] as const;
        const procs = [edge, orders, stock];
        const outs = names.map((n) => join(work, `${n}${tls ? "-tls" : ""}.cbor`));
        const tracers = procs.map((p, i) => runTracer(["attach", "--pid", String(p.pid), "--out", outs[i]!]));
        await Promise.all(tracers.map((t) => t.started()));
        // One request at a time: each service's transport reuses its one connection to the next.
        for (let i = 0; i < REQUESTS; i++) {
          const r = await httpGet(edge.port, "/work");
          expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: "ok 2" });
        }
        for (const t of tracers) t.signal("SIGINT");
        for (const t of tracers) expect((await t.exit()).code).toBe(0);

        const caps = outs.map((o) => readSpans(o).spans);
        for (const [i, spans] of caps.entries()) {
          expect({ who: names[i], servers: spans.filter((s) => s.kind === "server").length }).toEqual({ who: names[i], servers: REQUESTS });
          if (i < 2) {
            const clients = spans.filter((s) => s.kind === "client");
            expect(clients.length).toBe(REQUESTS);
            for (const c of clients) {
              expect(c.attributes["network.local.address"]).toBe("127.0.0.1");
              expect(typeof c.attributes["network.local.port"]).toBe("number");
            }
            // Keep-alive: the requests went out on fewer connections than requests (one, normally),
            // so only their times tell them apart.
            expect(new Set(clients.map((c) => c.attributes["network.local.port"])).size).toBeLessThan(REQUESTS);
          }
        }

        const merged = join(work, `merged${tls ? "-tls" : ""}.cbor`);
        const m = await runTracerToEnd(["merge", ...outs, "-o", merged, "--skew", `1=${SKEW_NS / 1e9}s`, "--json"]);
        expect({ code: m.exit.code, stderr: m.stderr }).toEqual({ code: 0, stderr: "" });
        const report = JSON.parse(m.stdout) as MergeReport;
        // The whole report on a failure: which pairs were lost, and why.
        expect({ joined: report.joined, unjoined: report.unjoined, offsets: report.files.map((f) => f.pairs) }).toEqual({ joined: 2 * REQUESTS, unjoined: { servers: REQUESTS, clients: 0, ambiguous: 0, clockConflicts: 0, traceConflicts: 0 }, offsets: [0, REQUESTS, REQUESTS] });
        expect(report.files[0]!.against).toBeUndefined();
        expect(report.files.map((f) => f.pairs)).toEqual([0, REQUESTS, REQUESTS]);
        // Loopback: the true offsets are 0, so the estimate for orders is the skew, to within a
        // request's duration, and stock (measured against orders) is back near 0.
        expect(Math.abs(report.files[1]!.clockOffsetNs - SKEW_NS)).toBeLessThan(50_000_000);
        expect(Math.abs(report.files[2]!.clockOffsetNs)).toBeLessThan(50_000_000);
        // Edge's server spans were called by this test, which is not traced: left unjoined, counted.
        expect(report.unjoined).toEqual({ servers: REQUESTS, clients: 0, ambiguous: 0, clockConflicts: 0, traceConflicts: 0 });

        const spans = readSpans(merged).spans;
        expect(spans.length).toBe(caps.reduce((n, c) => n + c.length, 0));
        // Never a child that starts before its parent (after the clock correction).
        const parentOf = parentFinder(spans);
        const stockSpans = new Set(caps[2]!.map((s) => s.spanId));
        const leaves = spans.filter((s) => stockSpans.has(s.spanId) && s.kind === "server");
        expect(leaves.length).toBe(REQUESTS);
        const roots = new Set<string>();
        const ordersClients = new Set<string>();
        for (const leaf of leaves) {
          // stock server ← orders client ← orders server ← edge client ← edge server
          const oc = parentOf(leaf);
          expect(oc.kind).toBe("client");
          expect(oc.attributes["network.local.port"]).toBe(leaf.attributes["network.peer.port"]!);
          expect(leaf.startTimeUnixNano).toBeLessThanOrEqual(oc.endTimeUnixNano);
          const os = parentOf(oc);
          expect(os.kind).toBe("server");
          const ec = parentOf(os);
          expect(ec.kind).toBe("client");
          expect(ec.attributes["network.local.port"]).toBe(os.attributes["network.peer.port"]!);
          const es = parentOf(ec);
          expect(es.kind).toBe("server");
          expect(es.parentSpanId).toBeUndefined();
          roots.add(es.spanId);
          ordersClients.add(oc.spanId);
        }
        // Each request matched its own client spans: six traces, six distinct callers.
        expect(roots.size).toBe(REQUESTS);
        expect(ordersClients.size).toBe(REQUESTS);
        expect(new Set(leaves.map((l) => l.traceId)).size).toBe(REQUESTS);

        // `view` reads the merged file (one section per process) without complaint.
        const v = await runTracerToEnd(["view", merged]);
        expect({ code: v.exit.code, stderr: v.stderr }).toEqual({ code: 0, stderr: "" });
      } finally {
        for (const p of started) await p.stop();
      }
    }, 300_000);
  }
});
