/**
 * @module tests/e2e/live-join — connection-matched joins made live, in BPF, by ONE beetrace
 * tracing several processes: a chain of three Go services (edge → orders → stock,
 * tests/fixtures/go/livejoin; no service sends a traceparent) each in its own network namespace,
 * joined by veth pairs, so every hop has its own addresses:
 *
 *   test (root ns) 10.X.0.1 ── 10.X.0.2 edge ns 10.X.1.1 ── 10.X.1.2 orders ns 10.X.2.1 ── 10.X.2.2 stock ns
 *
 * The tracer runs in the root namespaces; `ip netns exec` keeps the pid (it execs) and only
 * the network and mount namespaces differ, so /proc/PID/exe and pid-filtered uprobes work as usual.
 *
 * A client span records the local end of its HTTP/1 connection in bee_conn_spans
 * (bpf/include/conn_ctx.bpf.h); the next service's server probe finds it by its request's
 * peer end and takes that client span as parent. Each request is then one trace across the
 * three processes: edge server → edge client → orders server → orders client → stock server.
 * A request that arrives with a traceparent keeps it (the trace id and parent it names).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, FIXTURES_GO, newestToolchain } from "../harness/go.ts";
import { e2eSkipReason, killAll, readSpans, ROOT, runTracer, runTracerToEnd, waitFor, type TracerRun, waitTracing } from "./harness.ts";
import { chainNetwork, hostPort, startIn as startInNs } from "./netns.ts";

const reason = e2eSkipReason(["ip"]);
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-live-join-"));

/** Requests per test (a prime: a count that happens to come out right by accident is unlikely). */
const REQUESTS = 7;
/** Then this many at once: several connections per hop, each request still matched to its own caller. */
const CONCURRENT = 5;
const TOTAL = REQUESTS + CONCURRENT + 1;
const NAMES = ["edge", "orders", "stock"] as const;

// Unique per run (tests/e2e/netns.ts): edge, orders and stock in the chain's three namespaces.
const net = chainNetwork("lj");
const ns = { edge: net.ns[0], orders: net.ns[1], stock: net.ns[2] };
/** Each service's address (where it listens) and the address its caller connects from. */
const addr = net.addr;
/** The same links in IPv6 (ULA fdXX:YYYY:0:HOP::SIDE): Go writes these with a "::" gap, the case the BPF parser expands. */
const addr6 = net.addr6;
type Family = "ipv4" | "ipv6";
const hosts = (f: Family) => {
  const a = f === "ipv4" ? addr : addr6;
  return {
    SERVICE: { edge: a(0, 2), orders: a(1, 2), stock: a(2, 2) },
    CALLER: { edge: a(0, 1), orders: a(1, 1), stock: a(2, 1) },
  };
};

const services: ChildProcess[] = [];
beforeAll(() => {
  if (reason === undefined) net.setUp();
});
afterAll(() => {
  for (const s of services) if (s.exitCode === null && s.signalCode === null) s.kill("SIGKILL");
  killAll();
  net.tearDown();
  rmSync(work, { recursive: true, force: true });
});

interface Service {
  pid: number;
  proc: ChildProcess;
}

/** Start one chain service in its namespace; resolves once it listens. */
function startService(f: Family, bin: string, name: (typeof NAMES)[number], port: number, next?: (typeof NAMES)[number]): Promise<Service> {
  const { SERVICE } = hosts(f);
  return startIn(ns[name], name, [bin, "-addr", hostPort(SERVICE[name], port), ...(next ? ["-next", `http://${hostPort(SERVICE[next], port)}`] : [])]);
}

/** Start `argv` in network namespace `netns`; resolves once it says it listens. */
function startIn(netns: string, name: string, argv: string[]): Promise<Service> {
  return startInNs(netns, name, argv, services);
}

async function stopService(s: Service): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => s.proc.on("exit", () => r()));
  s.proc.kill("SIGTERM");
  await exited;
}

/** One HTTP/1.1 GET to edge from the root namespace, with optional extra header lines. */
function get(f: Family, port: number, path: string, headers: [string, string][] = []): Promise<{ status: number; body: string }> {
  const { SERVICE, CALLER } = hosts(f);
  return new Promise((res, rej) => {
    const sock = connect({ host: SERVICE.edge, port, localAddress: CALLER.edge });
    let data = "";
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      const extra = headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${hostPort(SERVICE.edge, port)}\r\n${extra}Connection: close\r\n\r\n`);
    });
    sock.on("data", (d: string) => (data += d));
    sock.on("error", rej);
    sock.on("close", () => {
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(data);
      if (!m) return rej(new Error(`GET ${path}: no HTTP response (${JSON.stringify(data.slice(0, 80))})`));
      res({ status: Number(m[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

const TRACEPARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT_PARENT = "00f067aa0ba902b7";

/** Runs REQUESTS plain requests and one with a traceparent, then checks the joined traces. */
async function exercise(f: Family, port: number, tracer: TracerRun, outs: string[], pids: number[]): Promise<void> {
  const { CALLER } = hosts(f);
  for (let i = 0; i < REQUESTS; i++) expect(await get(f, port, "/work")).toEqual({ status: 200, body: "ok 2" });
  const together = await Promise.all(Array.from({ length: CONCURRENT }, () => get(f, port, "/work?hold=300")));
  expect(together).toEqual(Array.from({ length: CONCURRENT }, () => ({ status: 200, body: "ok 2" })));
  expect(await get(f, port, "/work", [["traceparent", `00-${TRACEPARENT_TRACE}-${TRACEPARENT_PARENT}-01`]])).toEqual({ status: 200, body: "ok 2" });
  tracer.signal("SIGINT");
  const exit = await tracer.exit();
  expect({ code: exit.code, stderr: exit.code === 0 ? "" : tracer.stderr() }).toEqual({ code: 0, stderr: "" });

  const caps = outs.map((o) => readSpans(o).spans);
  const owner = new Map<string, number>();
  for (const [i, spans] of caps.entries()) for (const s of spans) owner.set(s.spanId, i);
  const all = caps.flat();
  const byId = new Map<string, SpanRecord>(all.map((s) => [s.spanId, s]));
  for (const [i, spans] of caps.entries()) {
    expect({ who: NAMES[i], servers: spans.filter((s) => s.kind === "server").length }).toEqual({ who: NAMES[i], servers: TOTAL });
    expect({ who: NAMES[i], clients: spans.filter((s) => s.kind === "client").length }).toEqual({ who: NAMES[i], clients: i < 2 ? TOTAL : 0 });
  }
  // Keep-alive and the concurrent burst: fewer connections than requests, but more than one.
  const ports = new Set(caps[0]!.filter((s) => s.kind === "client").map((s) => s.attributes["network.local.port"]));
  expect(ports.size).toBeGreaterThan(1);
  expect(ports.size).toBeLessThan(TOTAL);
  const parentOf = (s: SpanRecord, kind: SpanRecord["kind"], file: number): SpanRecord => {
    const p = byId.get(s.parentSpanId ?? "");
    expect({ span: s.name, parentFound: p !== undefined }).toEqual({ span: s.name, parentFound: true });
    expect({ kind: p!.kind, file: owner.get(p!.spanId), trace: p!.traceId }).toEqual({ kind, file, trace: s.traceId });
    return p!;
  };
  const traces = new Set<string>();
  let withTraceparent = 0;
  for (const leaf of caps[2]!.filter((s) => s.kind === "server")) {
    // stock server ← orders client ← orders server ← edge client ← edge server
    expect(leaf.attributes["beetrace.parent_by_connection"]).toBe(true);
    expect(leaf.attributes["network.peer.address"]).toBe(CALLER.stock);
    const oc = parentOf(leaf, "client", 1);
    expect(oc.attributes["network.local.address"]).toBe(CALLER.stock);
    expect(oc.attributes["network.local.port"]).toBe(leaf.attributes["network.peer.port"]!);
    const os = parentOf(oc, "server", 1);
    expect(os.attributes["beetrace.parent_by_connection"]).toBe(true);
    expect(os.attributes["network.peer.address"]).toBe(CALLER.orders);
    const ec = parentOf(os, "client", 0);
    expect(ec.attributes["network.local.port"]).toBe(os.attributes["network.peer.port"]!);
    const es = parentOf(ec, "server", 0);
    expect(es.attributes["beetrace.parent_by_connection"]).toBeUndefined();
    if (es.traceId === TRACEPARENT_TRACE) {
      withTraceparent++;
      expect(es.parentSpanId).toBe(TRACEPARENT_PARENT);
    } else {
      expect(es.parentSpanId).toBeUndefined();
    }
    traces.add(leaf.traceId);
  }
  // One trace per request, each across the three processes; the traceparent's trace kept.
  expect({ traces: traces.size, withTraceparent }).toEqual({ traces: TOTAL, withTraceparent: 1 });
  // Every span belongs to one of those traces (nothing left over as a root of its own).
  expect(all.filter((s) => !traces.has(s.traceId)).map((s) => s.name)).toEqual([]);
  expect(pids.length).toBe(3);

  // `beetrace merge` over the same captures agrees with what BPF joined: it finds the same pairs
  // and leaves every trace id and parent as it was.
  const merged = join(work, `merged-${f}-${pids[0]}.cbor`);
  const m = await runTracerToEnd(["merge", ...outs, "-o", merged, "--json"]);
  expect({ code: m.exit.code, stderr: m.stderr }).toEqual({ code: 0, stderr: "" });
  const report = JSON.parse(m.stdout) as { joined: number };
  expect(report.joined).toBe(2 * TOTAL);
  const after = new Map(readSpans(merged).spans.map((s) => [s.spanId, `${s.traceId}/${s.parentSpanId ?? ""}`]));
  expect(after).toEqual(new Map(all.map((s) => [s.spanId, `${s.traceId}/${s.parentSpanId ?? ""}`])));
}

describe.skipIf(reason !== undefined)(`live connection-matched joins${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const f of ["ipv4", "ipv6"] as const) {
    test(`attach --pid A --pid B --pid C (${f}): each request is one trace across the three, parents right`, async () => {
      const bin = await buildFixture({ dir: join(FIXTURES_GO, "livejoin"), toolchain: newestToolchain(), mode: "default" });
      const port = 18000 + Math.floor(Math.random() * 1000);
      const started: Service[] = [];
      try {
        const stock = await startService(f, bin, "stock", port);
        started.push(stock);
        const orders = await startService(f, bin, "orders", port, "stock");
        started.push(orders);
        const edge = await startService(f, bin, "edge", port, "orders");
        started.push(edge);
        const pids = [edge.pid, orders.pid, stock.pid];
        const tracer = runTracer(["attach", ...pids.flatMap((p) => ["--pid", String(p)]), "--out", join(work, `pids-${f}-{pid}.cbor`)]);
        await waitTracing(tracer, pids);
        await exercise(f, port, tracer, pids.map((p) => join(work, `pids-${f}-${p}.cbor`)), pids);
      } finally {
        for (const s of started) await stopService(s);
      }
    }, 300_000);
  }

  test("loopback: joined within one network namespace, never with a client in another that has the same local end", async () => {
    const bin = await buildFixture({ dir: join(FIXTURES_GO, "livejoin"), toolchain: newestToolchain(), mode: "default" });
    const port = 20000 + Math.floor(Math.random() * 1000);
    const { SERVICE } = hosts("ipv4");
    const started: Service[] = [];
    try {
      // In the edge namespace: A (reachable from here) calls B on that namespace's loopback.
      const b = await startIn(ns.edge, "B", [bin, "-addr", `127.0.0.1:${port + 1}`]);
      started.push(b);
      const a = await startIn(ns.edge, "A", [bin, "-addr", `${SERVICE.edge}:${port}`, "-next", `http://127.0.0.1:${port + 1}`]);
      started.push(a);
      // In the orders namespace: S, on ITS loopback.
      const sv = await startIn(ns.orders, "S", [bin, "-addr", `127.0.0.1:${port + 2}`]);
      started.push(sv);
      const pids = [a.pid, b.pid, sv.pid];
      const tracer = runTracer(["attach", ...pids.flatMap((p) => ["--pid", String(p)]), "--out", join(work, "lo-{pid}.cbor")]);
      await waitTracing(tracer, pids);

      // A's request to B is held at B; meanwhile a client in the orders namespace calls S from
      // the very local end A's request uses in the edge namespace (127.0.0.1:L).
      const held = get("ipv4", port, "/work?hold=1500");
      const local = await waitFor(
        () => {
          const r = spawnSync("ip", ["netns", "exec", ns.edge, "ss", "-Htn", "state", "established", `( dport = :${port + 1} )`], { encoding: "utf8" });
          const m = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:/.exec(r.stdout);
          return m ? Number(m[1]) : undefined;
        },
        10_000,
        "A's connection to B",
      );
      const script = `const s=require("node:net").connect({host:"127.0.0.1",port:${port + 2},localAddress:"127.0.0.1",localPort:${local}},()=>s.write("GET /work HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"));let d="";s.on("data",(c)=>d+=c);s.on("close",()=>{console.log(d.split("\\r\\n")[0]);});`;
      const other = spawnSync("ip", ["netns", "exec", ns.orders, join(ROOT, "node_modules", ".bin", "bun"), "-e", script], { encoding: "utf8", timeout: 10_000 });
      expect({ out: other.stdout.trim(), err: other.stderr }).toEqual({ out: "HTTP/1.1 200 OK", err: "" });
      expect(await held).toEqual({ status: 200, body: "ok 1" });
      tracer.signal("SIGINT");
      expect((await tracer.exit()).code).toBe(0);

      const [aSpans, bSpans, sSpans] = pids.map((p) => readSpans(join(work, `lo-${p}.cbor`)).spans);
      const aClient = aSpans!.find((s) => s.kind === "client")!;
      expect(aClient.attributes["network.local.port"]).toBe(local);
      // B (same namespace as A): A's client span is its parent.
      const bServer = bSpans!.find((s) => s.kind === "server")!;
      expect({ trace: bServer.traceId, parent: bServer.parentSpanId, by: bServer.attributes["beetrace.parent_by_connection"] }).toEqual({ trace: aClient.traceId, parent: aClient.spanId, by: true });
      // S (another namespace, same peer end 127.0.0.1:L): a root of its own.
      const sServer = sSpans!.find((s) => s.kind === "server")!;
      expect(sServer.attributes["network.peer.port"]).toBe(local);
      expect({ parent: sServer.parentSpanId, by: sServer.attributes["beetrace.parent_by_connection"], sameTrace: sServer.traceId === aClient.traceId }).toEqual({ parent: undefined, by: undefined, sameTrace: false });
    } finally {
      for (const s of started) await stopService(s);
    }
  }, 300_000);

  test("attach --exe covering three processes of one executable: the same joins", async () => {
    const built = await buildFixture({ dir: join(FIXTURES_GO, "livejoin"), toolchain: newestToolchain(), mode: "default" });
    // A copy of its own: --exe must not pick up other tests' processes of the cached binary.
    const bin = join(work, "livejoin");
    copyFileSync(built, bin);
    spawnSync("chmod", ["755", bin]);
    const port = 19000 + Math.floor(Math.random() * 1000);
    const started: Service[] = [];
    try {
      const stock = await startService("ipv4", bin, "stock", port);
      started.push(stock);
      const orders = await startService("ipv4", bin, "orders", port, "stock");
      started.push(orders);
      const edge = await startService("ipv4", bin, "edge", port, "orders");
      started.push(edge);
      const pids = [edge.pid, orders.pid, stock.pid];
      const tracer = runTracer(["attach", "--exe", bin, "--out", join(work, "exe-{pid}.cbor")]);
      await waitTracing(tracer, pids);
      await exercise("ipv4", port, tracer, pids.map((p) => join(work, `exe-${p}.cbor`)), pids);
    } finally {
      for (const s of started) await stopService(s);
    }
  }, 300_000);
});
