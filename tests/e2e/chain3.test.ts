/**
 * @module tests/e2e/chain3 — one request, one trace across three Go processes on three
 * addresses, through HTTP, gRPC and a database call (tests/fixtures/go/chain3, grpc 1.85,
 * modernc.org/sqlite):
 *
 *   test ──HTTP/1──▶ edge ──HTTP/1──▶ orders ──gRPC (HTTP/2)──▶ stock ──database/sql──▶ SQLite
 *
 * Each service runs in its own network namespace, joined by veth pairs (tests/e2e/netns.ts), so
 * every hop has its own addresses. Nothing sends a traceparent: each cross-process parent comes
 * from matching a client span's local end (and, over HTTP/2, its stream id) with the next
 * server span's peer end. Per request the chain must be exactly
 *
 *   edge server → edge client (HTTP) → orders server → orders gRPC client → stock gRPC server
 *     → stock database/sql client span (the query)
 *
 * with one trace id across the three processes:
 *  - live: ONE beetrace traces the three pids; the joins are made in BPF as spans are produced
 *    (bpf/include/conn_ctx.bpf.h: net/http's HTTP/1 connection ends, gRPC's (end, stream id));
 *  - offline: one beetrace per pid (no live joins), then `beetrace merge` with the orders
 *    capture's clock skewed by SKEW_NS (--skew): the merge pairs the same spans (gRPC records by
 *    local/peer end and stream id, src/merge/endpoints.ts) and estimates the skew back.
 * Both over IPv4 and over IPv6 (ULA addresses Go writes with a "::" gap; gRPC records keep
 * 16-byte addresses). Requests go one at a time (HTTP keep-alive, one gRPC connection) and then CONCURRENT at once
 * (held at stock: in flight together, several HTTP connections, several streams on the one
 * gRPC connection).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { getPriority, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import type { MergeReport } from "../../src/cli/merge.ts";
import { buildFixture, FIXTURES_GO } from "../harness/go.ts";
import { e2eSkipReason, goVersionOf, killAll, readSpans, runTracer, runTracerToEnd, type TracerRun, waitTracing } from "./harness.ts";
import { chainNetwork, hostPort, startIn, type NsService } from "./netns.ts";

const reason = e2eSkipReason(["ip"]);
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-chain3-"));

/** Requests one after the other (a prime), then CONCURRENT at once, each held HOLD_MS at stock. */
const SEQUENTIAL = 5;
const CONCURRENT = 4;
const HOLD_MS = 300;
const TOTAL = SEQUENTIAL + CONCURRENT;
/** A cold build compiles modernc.org/sqlite (minutes on a loaded 2-core box); cached after. */
const BUILD_TIMEOUT_MS = 900_000;
/** Per test, the fixture built: tracer starts from source, 9 requests, a merge (~6-8 s here). */
const TEST_TIMEOUT_MS = 90_000;
/** The orders capture pretends its clock is 2.5 s ahead (merge --skew 1=2.5s). */
const SKEW_NS = 2_500_000_000;

const SCOPE = { http: "beetrace/net/http", grpc: "beetrace/google.golang.org/grpc", sql: "beetrace/database/sql" } as const;
const SID = "beetrace.http2.stream_id";
const NAMES = ["edge", "orders", "stock"] as const;

const net = chainNetwork("c3");
type Family = "ipv4" | "ipv6";
/** Each service's address, and the address its caller connects from (hop i: link into ns[i]). */
function ends(f: Family): { SERVICE: readonly [string, string, string]; CALLER: readonly [string, string, string] } {
  const a = f === "ipv4" ? net.addr : net.addr6;
  return { SERVICE: [a(0, 2), a(1, 2), a(2, 2)], CALLER: [a(0, 1), a(1, 1), a(2, 1)] };
}

const procs: ChildProcess[] = [];
let bin = "";
beforeAll(async () => {
  if (reason !== undefined) return;
  net.setUp();
  // The build runs niced; the priority is restored before anything is traced.
  const before = getPriority();
  setPriority(10);
  try {
    // The local toolchain, as tests/e2e/databasesql.test.ts's fixture: the same modernc.org/sqlite
    // build then comes from Go's build cache (a cold one takes minutes on two cores).
    bin = await buildFixture({ dir: join(FIXTURES_GO, "chain3"), toolchain: await goVersionOf(), mode: "default" });
  } finally {
    setPriority(before);
  }
}, BUILD_TIMEOUT_MS);
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  killAll();
  net.tearDown(); // only what setUp made, if anything
  rmSync(work, { recursive: true, force: true });
});

/** stock, orders, edge, each in its namespace on `port`; returned in chain order. */
async function startChain(f: Family, port: number): Promise<NsService[]> {
  const { SERVICE } = ends(f);
  const stock = await startIn(net.ns[2], "stock", [bin, "-role", "stock", "-addr", hostPort(SERVICE[2], port)], procs);
  const orders = await startIn(net.ns[1], "orders", [bin, "-role", "orders", "-addr", hostPort(SERVICE[1], port), "-next", hostPort(SERVICE[2], port)], procs);
  const edge = await startIn(net.ns[0], "edge", [bin, "-role", "edge", "-addr", hostPort(SERVICE[0], port), "-next", `http://${hostPort(SERVICE[1], port)}`], procs);
  return [edge, orders, stock];
}

/** One HTTP/1.1 GET to edge from the root namespace (Connection: close). */
function get(f: Family, port: number, path: string): Promise<{ status: number; body: string }> {
  const { SERVICE, CALLER } = ends(f);
  return new Promise((res, rej) => {
    const sock = connect({ host: SERVICE[0], port, localAddress: CALLER[0] });
    let data = "";
    sock.setEncoding("utf8");
    sock.setTimeout(15_000, () => sock.destroy(new Error(`GET ${path}: no answer within 15 s`)));
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: ${hostPort(SERVICE[0], port)}\r\nConnection: close\r\n\r\n`));
    sock.on("data", (d: string) => (data += d));
    sock.on("error", rej);
    sock.on("close", () => {
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(data);
      if (!m) return rej(new Error(`GET ${path}: no HTTP response (${JSON.stringify(data.slice(0, 80))})`));
      res({ status: Number(m[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

/** SEQUENTIAL requests, then CONCURRENT at once; every answer checked. */
async function drive(f: Family, port: number): Promise<void> {
  for (let i = 0; i < SEQUENTIAL; i++) expect(await get(f, port, "/order?item=apple")).toEqual({ status: 200, body: "reserved apple 7" });
  const together = await Promise.all(Array.from({ length: CONCURRENT }, () => get(f, port, `/order?item=pear&hold=${HOLD_MS}`)));
  expect(together).toEqual(Array.from({ length: CONCURRENT }, () => ({ status: 200, body: "reserved pear 3" })));
}

/** SIGINT, then a clean exit (stderr shown on a failure). */
async function stopTracer(t: TracerRun): Promise<void> {
  t.signal("SIGINT");
  const exit = await t.exit();
  expect({ code: exit.code, stderr: exit.code === 0 ? "" : t.stderr() }).toEqual({ code: 0, stderr: "" });
}

/**
 * Checks the chain of every request in `spans` (all three processes' spans, ids as in the
 * trace to check; `owner`: span id → process index). `live`: the cross-process parents were set
 * in BPF (beetrace.parent_by_connection on the server spans that got them).
 */
function checkChains(f: Family, spans: SpanRecord[], owner: Map<string, number>, live: boolean): void {
  const { CALLER } = ends(f);
  const byId = new Map<string, SpanRecord>(spans.map((s) => [s.spanId, s]));
  const inFile = (i: number) => spans.filter((s) => owner.get(s.spanId) === i);
  const of = (i: number, scope: string, kind: SpanRecord["kind"]) => inFile(i).filter((s) => s.scope.name === scope && s.kind === kind);
  // What each process produced: one span per request and hop, no more.
  expect([0, 1, 2].map((i) => ({ who: NAMES[i], httpServers: of(i, SCOPE.http, "server").length, httpClients: of(i, SCOPE.http, "client").length, grpcServers: of(i, SCOPE.grpc, "server").length, grpcClients: of(i, SCOPE.grpc, "client").length }))).toEqual([
    { who: "edge", httpServers: TOTAL, httpClients: TOTAL, grpcServers: 0, grpcClients: 0 },
    { who: "orders", httpServers: TOTAL, httpClients: 0, grpcServers: 0, grpcClients: TOTAL },
    { who: "stock", httpServers: 0, httpClients: 0, grpcServers: TOTAL, grpcClients: 0 },
  ]);
  const sql = of(2, SCOPE.sql, "client");
  expect(sql.length).toBe(TOTAL);

  const parentOf = (s: SpanRecord, scope: string, kind: SpanRecord["kind"], file: number): SpanRecord => {
    const p = byId.get(s.parentSpanId ?? "");
    expect({ span: `${NAMES[owner.get(s.spanId)!]} ${s.name}`, parentFound: p !== undefined }).toEqual({ span: `${NAMES[owner.get(s.spanId)!]} ${s.name}`, parentFound: true });
    expect({ scope: p!.scope.name, kind: p!.kind, file: owner.get(p!.spanId), trace: p!.traceId }).toEqual({ scope, kind, file, trace: s.traceId });
    return p!;
  };
  const traces = new Set<string>();
  const grpcClients = new Set<string>();
  const streams = new Set<number>();
  for (const gs of of(2, SCOPE.grpc, "server")) {
    // stock's one query (QueryRowContext with the handler's context): a child of its gRPC server span.
    const queries = sql.filter((q) => q.parentSpanId === gs.spanId);
    expect(queries.map((q) => ({ name: q.name, system: q.attributes["db.system.name"], text: q.attributes["db.query.text"], trace: q.traceId }))).toEqual([
      { name: "SELECT stock", system: "sqlite", text: "SELECT qty FROM stock WHERE item = ?", trace: gs.traceId },
    ]);
    // stock gRPC server ← orders gRPC client: the same connection end and stream id.
    expect(gs.attributes["network.peer.address"]).toBe(CALLER[2]);
    expect(typeof gs.attributes[SID]).toBe("number");
    expect(gs.attributes["beetrace.parent_by_connection"]).toBe(live ? true : undefined);
    const gc = parentOf(gs, SCOPE.grpc, "client", 1);
    expect({ addr: gc.attributes["network.local.address"], port: gc.attributes["network.local.port"], sid: gc.attributes[SID], name: gc.name }).toEqual({
      addr: CALLER[2],
      port: gs.attributes["network.peer.port"]!,
      sid: gs.attributes[SID]!,
      name: gs.name,
    });
    // ← orders HTTP server (the handler's context) ← edge HTTP client (connection end) ← edge server.
    const os = parentOf(gc, SCOPE.http, "server", 1);
    expect(os.attributes["network.peer.address"]).toBe(CALLER[1]);
    expect(os.attributes["beetrace.parent_by_connection"]).toBe(live ? true : undefined);
    const ec = parentOf(os, SCOPE.http, "client", 0);
    expect({ addr: ec.attributes["network.local.address"], port: ec.attributes["network.local.port"] }).toEqual({ addr: CALLER[1], port: os.attributes["network.peer.port"]! });
    const es = parentOf(ec, SCOPE.http, "server", 0);
    expect({ parent: es.parentSpanId, peer: es.attributes["network.peer.address"] }).toEqual({ parent: undefined, peer: CALLER[0] });
    traces.add(es.traceId);
    grpcClients.add(gc.spanId);
    streams.add(gs.attributes[SID] as number);
  }
  // One trace per request, each its own callers, each call its own stream; every span in one of them.
  expect({ traces: traces.size, grpcClients: grpcClients.size, streams: streams.size }).toEqual({ traces: TOTAL, grpcClients: TOTAL, streams: TOTAL });
  // The held calls were in flight together (several streams at once on the gRPC connection).
  const grpcServers = of(2, SCOPE.grpc, "server");
  const together = grpcServers.filter((a) => grpcServers.some((b) => b !== a && a.startTimeUnixNano < b.endTimeUnixNano && b.startTimeUnixNano < a.endTimeUnixNano));
  expect(together.length).toBeGreaterThanOrEqual(2);
  expect(spans.filter((s) => !traces.has(s.traceId)).map((s) => `${NAMES[owner.get(s.spanId)!]} ${s.name}`)).toEqual([]);
}

function captures(outs: string[]): { spans: SpanRecord[]; owner: Map<string, number> } {
  const owner = new Map<string, number>();
  const spans: SpanRecord[] = [];
  for (const [i, o] of outs.entries()) {
    for (const s of readSpans(o).spans) {
      owner.set(s.spanId, i);
      spans.push(s);
    }
  }
  return { spans, owner };
}

describe.skipIf(reason !== undefined)(`edge → orders (HTTP) → stock (gRPC) → SQLite, three network namespaces${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const f of ["ipv4", "ipv6"] as const) {
    test(`live (${f}): one beetrace, attach --pid edge --pid orders --pid stock: each request is one trace across the three with every parent right`, async () => {
      const port = 21000 + Math.floor(Math.random() * 1000);
      const chain = await startChain(f, port);
      try {
        const pids = chain.map((s) => s.pid);
        const out = join(work, `live-${f}-{pid}.cbor`);
        const tracer = runTracer(["attach", ...pids.flatMap((p) => ["--pid", String(p)]), "--out", out]);
        await waitTracing(tracer, pids);
        await drive(f, port);
        await stopTracer(tracer);
        const outs = pids.map((p) => out.replace("{pid}", String(p)));
        const { spans, owner } = captures(outs);
        checkChains(f, spans, owner, true);

        // `merge` over the live captures finds the same pairs and leaves every id as BPF set it.
        const merged = join(work, `live-${f}-merged.cbor`);
        const m = await runTracerToEnd(["merge", ...outs, "-o", merged, "--json"]);
        expect({ code: m.exit.code, stderr: m.stderr }).toEqual({ code: 0, stderr: "" });
        expect((JSON.parse(m.stdout) as MergeReport).joined).toBe(2 * TOTAL);
        const after = new Map(readSpans(merged).spans.map((s) => [s.spanId, `${s.traceId}/${s.parentSpanId ?? ""}`]));
        expect(after).toEqual(new Map(spans.map((s) => [s.spanId, `${s.traceId}/${s.parentSpanId ?? ""}`])));
      } finally {
        for (const s of chain) await s.stop();
      }
    }, TEST_TIMEOUT_MS);

    test(`offline (${f}): one beetrace per process, then merge with orders' clock skewed ${SKEW_NS / 1e9} s: the same chain, the skew estimated`, async () => {
      const port = 22000 + Math.floor(Math.random() * 1000);
      const chain = await startChain(f, port);
      try {
        const outs = NAMES.map((n) => join(work, `offline-${f}-${n}.cbor`));
        const tracers = chain.map((s, i) => runTracer(["attach", "--pid", String(s.pid), "--out", outs[i]!]));
        await Promise.all(tracers.map((t, i) => waitTracing(t, [chain[i]!.pid])));
        await drive(f, port);
        for (const t of tracers) await stopTracer(t);
        const caps = captures(outs);
        // Without live joins every process's spans are traces of their own.
        expect(caps.spans.filter((s) => s.attributes["beetrace.parent_by_connection"] !== undefined).length).toBe(0);

        const merged = join(work, `offline-${f}-merged.cbor`);
        const m = await runTracerToEnd(["merge", ...outs, "-o", merged, "--skew", `1=${SKEW_NS / 1e9}s`, "--json"]);
        expect({ code: m.exit.code, stderr: m.stderr }).toEqual({ code: 0, stderr: "" });
        const report = JSON.parse(m.stdout) as MergeReport;
        // edge ← test (untraced): TOTAL servers unjoined; orders ← edge and stock ← orders: all paired.
        expect({ joined: report.joined, unjoined: report.unjoined, pairs: report.files.map((f) => f.pairs) }).toEqual({
          joined: 2 * TOTAL,
          unjoined: { servers: TOTAL, clients: 0, ambiguous: 0, clockConflicts: 0, traceConflicts: 0 },
          pairs: [0, TOTAL, TOTAL],
        });
        // One clock on the machine: orders' estimate is the skew, stock's (against orders) about 0,
        // each to within a request's duration.
        expect(Math.abs(report.files[1]!.clockOffsetNs - SKEW_NS)).toBeLessThan(50_000_000);
        expect(Math.abs(report.files[2]!.clockOffsetNs)).toBeLessThan(50_000_000);

        const spans = readSpans(merged).spans;
        expect(spans.length).toBe(caps.spans.length);
        checkChains(f, spans, caps.owner, false);
        // After the clock correction no child starts before its parent.
        const byId = new Map(spans.map((s) => [s.spanId, s]));
        const early = spans.filter((s) => s.parentSpanId !== undefined && byId.has(s.parentSpanId) && s.startTimeUnixNano < byId.get(s.parentSpanId)!.startTimeUnixNano);
        expect(early.map((s) => s.name)).toEqual([]);
      } finally {
        for (const s of chain) await s.stop();
      }
    }, TEST_TIMEOUT_MS);
  }
});
