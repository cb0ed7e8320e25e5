/**
 * @module tests/e2e/nethttp-h2-live-join — live connection-matched joins over HTTP/2: ONE
 * beetrace tracing a chain of three Go services on loopback (edge → orders → stock,
 * tests/fixtures/go/h2chain; no service sends a traceparent), edge calling orders several times
 * at once on one HTTP/2 connection.
 *
 * The HTTP/2 client writes its span into bee_conn_spans under (local end, stream id) at the
 * stream's encodeAndWriteHeaders — after the stream has its id, before its HEADERS frame is
 * written, so before the server can have read the request — and the server's entry looks it up by
 * (peer end, its stream id). Every HTTP/2 server span is then the child of the client span with
 * its own stream id, as the spans are produced (beetrace.parent_by_connection), no merge needed.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, FIXTURES_GO } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, type RunningSample, e2eWorkDir } from "./harness.ts";
import { startH2Chain } from "./h2chain.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("h2-live-join");

const REQUESTS = 3;
const FAN = 4;
const SID = "beetrace.http2.stream_id";

describe.skipIf(reason !== undefined)(`live joins over HTTP/2${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const [toolchain, proto] of [
    ["go1.26.11", "h2"],
    ["go1.27.4", "h2c"],
  ] as const) {
    test(`${toolchain}, ${proto}: attach --pid A --pid B --pid C, ${FAN} requests at a time on one connection: each server span is the child of the client span with its stream id`, async () => {
      const bin = await buildFixture({ dir: join(FIXTURES_GO, "h2chain"), toolchain, mode: "default" });
      const started: RunningSample[] = [];
      try {
        const { edge, orders, stock } = await startH2Chain(bin, proto, started);
        // One file per process ({pid}), one beetrace: one bee_conn_spans map shared by the three sessions.
        const out = join(work, `live-${toolchain}-${proto}-{pid}.cbor`);
        const tr = runTracer(["attach", "--pid", String(edge.pid), "--pid", String(orders.pid), "--pid", String(stock.pid), "--out", out]);
        await tr.started();
        for (let i = 0; i < REQUESTS; i++) {
          const r = await httpGet(edge.port, `/work?fan=${FAN}`);
          expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: `ok ${2 * FAN}` });
        }
        tr.signal("SIGINT");
        expect((await tr.exit()).code).toBe(0);

        const spans = [edge, orders, stock].flatMap((p) => readSpans(out.replace("{pid}", String(p.pid))).spans);
        const byId = new Map<string, SpanRecord>(spans.map((s) => [s.spanId, s]));
        const servers = spans.filter((s) => s.kind === "server");
        const h2 = servers.filter((s) => s.attributes["network.protocol.version"] === "2");
        const N = REQUESTS * FAN;
        expect({ servers: servers.length, h2: h2.length, clients: spans.filter((s) => s.kind === "client").length }).toEqual({ servers: REQUESTS + 2 * N, h2: 2 * N, clients: 2 * N });
        const callers = new Set<string>();
        for (const s of h2) {
          const c = byId.get(s.parentSpanId ?? "");
          expect({ joined: s.attributes["beetrace.parent_by_connection"], parent: c?.kind }).toEqual({ joined: true, parent: "client" });
          expect({ port: c!.attributes["network.local.port"], sid: c!.attributes[SID], trace: c!.traceId }).toEqual({
            port: s.attributes["network.peer.port"]!,
            sid: s.attributes[SID]!,
            trace: s.traceId,
          });
          callers.add(c!.spanId);
        }
        expect(callers.size).toBe(2 * N);
        // One trace per request of the test, FAN chains each, rooted at edge's HTTP/1 server span.
        const roots = servers.filter((s) => s.attributes["network.protocol.version"] === "1.1");
        expect(roots.every((r) => r.parentSpanId === undefined)).toBe(true);
        expect(roots.map((r) => spans.filter((s) => s.traceId === r.traceId).length)).toEqual(Array(REQUESTS).fill(1 + 4 * FAN));
      } finally {
        for (const p of started) await p.stop();
      }
    }, 300_000);
  }
});
