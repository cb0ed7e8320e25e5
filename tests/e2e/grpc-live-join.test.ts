/**
 * @module tests/e2e/grpc-live-join — live connection-matched joins over gRPC: ONE beetrace
 * tracing two processes of the gRPC fixture (tests/fixtures/go/grpc, grpc 1.85): B's client calls
 * A's server (-grpc-target), and grpc sends no traceparent of its own.
 *
 * B's loopy writer handles each call's HEADERS frame after the stream got its id and before the
 * frame is written; the client probe records the call's span there under (local end, stream id)
 * in bee_conn_spans, and A's handleStream entry looks its (peer end, stream id) up. Every server
 * span in A is then the child of the client span in B with the same connection end and stream
 * id, as the spans are produced (beetrace.parent_by_connection), unary and streaming alike.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, startSample, type RunningSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("grpc-live-join");

const SID = "beetrace.http2.stream_id";
const SCOPE = "beetrace/google.golang.org/grpc";
const UNARY = 8;
const BIDI = 2;

describe.skipIf(reason !== undefined)(`live joins over gRPC${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test(`grpc 1.85: attach --pid A --pid B; ${UNARY} unary calls, ${BIDI} bidi streams and one call under an HTTP request from B to A: each server span in A is the child of B's client span with its stream id`, async () => {
    const bin = await buildFixture({ dir: "tests/fixtures/go/grpc/grpc-1.85", toolchain: "go1.26.11", mode: "default" });
    const started: RunningSample[] = [];
    try {
      const a = await startSample(bin);
      started.push(a);
      const grpcAddr = (await httpGet(a.port, "/grpcaddr")).body.trim();
      expect(grpcAddr).toMatch(/^127\.0\.0\.1:\d+$/);
      const b = await startSample(bin, ["-grpc-target", grpcAddr]);
      started.push(b);
      const out = join(work, "live-{pid}.cbor");
      const tr = runTracer(["attach", "--pid", String(a.pid), "--pid", String(b.pid), "--out", out]);
      await tr.started();
      expect((await httpGet(b.port, `/bench?n=${UNARY}&kind=unary`)).body.trim()).toBe(String(UNARY));
      expect((await httpGet(b.port, `/bench?n=${BIDI}&kind=bidi`)).body.trim()).toBe(String(BIDI));
      expect((await httpGet(b.port, "/proxy")).body.trim()).toBe("echo ok");
      tr.signal("SIGINT");
      expect((await tr.exit()).code).toBe(0);

      const spansA = readSpans(out.replace("{pid}", String(a.pid))).spans;
      const spansB = readSpans(out.replace("{pid}", String(b.pid))).spans;
      const byId = new Map<string, SpanRecord>(spansB.map((s) => [s.spanId, s]));
      const servers = spansA.filter((s) => s.scope.name === SCOPE && s.kind === "server");
      const clients = spansB.filter((s) => s.scope.name === SCOPE && s.kind === "client");
      const N = UNARY + BIDI + 1;
      expect({ servers: servers.length, clients: clients.length }).toEqual({ servers: N, clients: N });
      const callers = new Set<string>();
      for (const s of servers) {
        const c = byId.get(s.parentSpanId ?? "");
        expect({ joined: s.attributes["beetrace.parent_by_connection"], parent: c?.kind, name: c?.name }).toEqual({ joined: true, parent: "client", name: s.name });
        expect({ port: c!.attributes["network.local.port"], sid: c!.attributes[SID], trace: c!.traceId }).toEqual({
          port: s.attributes["network.peer.port"]!,
          sid: s.attributes[SID]!,
          trace: s.traceId,
        });
        callers.add(c!.spanId);
      }
      expect(callers.size).toBe(N);
      // The /proxy call: B's HTTP span → B's client span → A's server span, one trace.
      const proxy = spansB.find((s) => s.kind === "server" && s.attributes["url.path"] === "/proxy")!;
      const proxyClient = clients.find((c) => c.parentSpanId === proxy.spanId)!;
      expect(servers.filter((s) => s.parentSpanId === proxyClient.spanId).map((s) => s.traceId)).toEqual([proxy.traceId]);
    } finally {
      for (const p of started) await p.stop();
    }
  }, 300_000);
});
