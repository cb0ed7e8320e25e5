/**
 * @module tests/e2e/grpc — the tracer against real grpc-go programs (tests/fixtures/go/grpc/: one
 * server + client program built against the oldest supported grpc, two in the middle (1.72: the
 * releases whose ServerStream/ClientStream embed *Stream) and the
 * newest), unstripped (DWARF) and stripped (-ldflags="-s -w": offsets.json alone). One workload
 * per run: unary OK, NOT_FOUND, DEADLINE_EXCEEDED, server streaming, bidi streaming, a call made
 * inside a gRPC handler and one made inside an HTTP handler. Asserts exact span names, kinds,
 * attributes, status and parent links. Needs root; skips with the reason otherwise.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { embeddedSnapshot } from "../../src/offsets/snapshot.ts";
import { rpcSemconvFrom, setRpcSemconv } from "../../src/probes/grpc/semconv.ts";
import { buildFixture } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, waitFor, type Capture, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("grpc");

/** Fixture directory, grpc release and the toolchain it is built with (grpc 1.85 needs Go 1.26). */
const VARIANTS = [
  { dir: "grpc-1.40", grpc: "1.40.0", toolchain: "go1.21.13" },
  { dir: "grpc-1.62", grpc: "1.62.1", toolchain: "go1.23.12" },
  // 1.69 … 1.76: ServerStream and ClientStream embed *Stream (a pointer), not the Stream itself
  { dir: "grpc-1.72", grpc: "1.72.0", toolchain: "go1.23.12" },
  { dir: "grpc-1.85", grpc: "1.85.0", toolchain: "go1.26.11" },
] as const;
type Variant = (typeof VARIANTS)[number];

const SERVICE = "beetrace.test.Echo";
/** The fixture's client deadline for its "slow" call (ms). */
const SLOW_DEADLINE_MS = 150;
/** Per test: up to three cold Go builds and one traced workload. */
const TIMEOUT_MS = 300_000;

/** What the fixture's /work answers, in order (grpc's codes.Code String()). */
const WORK_RESULTS = [
  "Unary/ok OK",
  "Unary/ok OK",
  "Unary/ok OK",
  "Unary/notfound NotFound",
  "Unary/notfound NotFound",
  "Unary/slow DeadlineExceeded",
  "ServerStream OK",
  "Bidi OK",
  "ServerStream/cancel Canceled",
  "Missing Unimplemented",
  "Unavailable Unavailable",
  "Unary/nested OK",
  "Unary/traced OK",
];
/** The traceparent/tracestate the fixture's "traced" call sends as metadata. */
const TRACEPARENT = { traceId: "0af7651916cd43dd8448eb211c80319c", parent: "b7ad6b7169203331", traceState: "beetrace=1" };

interface Traced {
  cap: Capture;
  grpcPort: number;
  stderr: string;
}

/** run -- the fixture under the tracer, GET /work then /proxy, stop with SIGINT. */
async function traceRun(bin: string, env: Record<string, string> = {}): Promise<Traced> {
  const out = join(work, `run-${Date.now()}.cbor`);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env); // the tracer inherits them at spawn
  let tr: ReturnType<typeof runTracer>;
  try {
    tr = runTracer(["run", "--out", out, "--", bin, "-addr", "127.0.0.1:0"]);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const { targetPid } = await tr.started();
  try {
    const ports = await waitFor(
      () => {
        const h = /listening on 127\.0\.0\.1:(\d+)/.exec(tr.stdout());
        const g = /grpc on 127\.0\.0\.1:(\d+)/.exec(tr.stdout());
        return h && g ? { http: Number(h[1]), grpc: Number(g[1]) } : undefined;
      },
      30_000,
      "the fixture's 'listening on' and 'grpc on' lines (via the tracer)",
    );
    const w = await httpGet(ports.http, "/work");
    expect({ status: w.status, lines: w.body.trim().split("\n") }).toEqual({ status: 200, lines: WORK_RESULTS });
    const p = await httpGet(ports.http, "/proxy");
    expect({ status: p.status, body: p.body.trim() }).toEqual({ status: 200, body: "echo ok" });
    tr.signal("SIGINT");
    const exit = await tr.exit();
    expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
    // Attributes are named when records are decoded: here, by this process (the capture file
    // holds records), so the test's decoder follows the same OTEL_SEMCONV_STABILITY_OPT_IN.
    setRpcSemconv(rpcSemconvFrom(env.OTEL_SEMCONV_STABILITY_OPT_IN));
    try {
      return { cap: readSpans(out), grpcPort: ports.grpc, stderr: tr.stderr() };
    } finally {
      setRpcSemconv(undefined);
    }
  } finally {
    try {
      process.kill(targetPid, "SIGKILL");
    } catch {
      // already gone with the tracer
    }
  }
}

type Semconv = "default" | "stable";
/** gRPC code names by number (grpc doc/statuscodes.md), typed out here rather than imported. */
const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

function rpcAttrs(method: string, code: number, semconv: Semconv, error: boolean): Record<string, unknown> {
  const names = CODE_NAMES;
  if (semconv === "stable") {
    return {
      "rpc.system.name": "grpc",
      "rpc.method": `${SERVICE}/${method}`,
      "rpc.response.status_code": names[code],
      ...(error ? { "error.type": names[code] } : {}),
    };
  }
  return { "rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": method, "rpc.grpc.status_code": code };
}

/**
 * Every assertion about one run's capture. `peer`: whether the server's peer offsets are known;
 * `contextIn`: whether the traceparent in the metadata can be read (the HEADERS frame's offsets).
 * Every call that got a stream carries its connection (client: remote and local ends) and HTTP/2
 * stream id (both sides), and each client span's {local port, stream id} is exactly one server
 * span's {peer port, stream id}: what beetrace merge and live joins match on.
 */
function checkCapture(t: Traced, peer: boolean, contextIn: boolean, semconv: Semconv = "default"): void {
  const { cap, grpcPort } = t;
  expect(cap.contents.truncated).toBe(false);
  expect(cap.end?.totals.losses).toEqual({ ringbufFull: 0, inflightFull: 0, returnWithoutEntry: 0, endWithoutStart: 0, incomplete: 0, truncatedStrings: 0 });
  const attached = Object.fromEntries(cap.contents.header.probes.map((p) => [p.id, p.attached]));
  expect(attached).toMatchObject({ "nethttp.server": true, "grpc.server": true, "grpc.client": true });

  const grpcSpans = cap.spans.filter((s) => s.scope.name === "beetrace/google.golang.org/grpc");
  const codeOf = (s: SpanRecord): number => {
    const v = semconv === "stable" ? s.attributes["rpc.response.status_code"] : s.attributes["rpc.grpc.status_code"];
    if (semconv === "stable") return CODE_NAMES.indexOf(String(v));
    return Number(v);
  };
  // Exact counts by kind, name, code and status: 13 calls from /work (the nested one makes a
  // 14th from its handler) and 1 from /proxy, each seen by the client and (but the UNAVAILABLE
  // one) by the server.
  const counts: Record<string, number> = {};
  for (const s of grpcSpans) {
    const k = `${s.kind} ${s.name} ${codeOf(s)} ${s.status.code}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  expect(counts).toEqual({
    [`client ${SERVICE}/Unary 0 unset`]: 7,
    [`client ${SERVICE}/Unary 5 error`]: 2,
    [`client ${SERVICE}/Unary 4 error`]: 1,
    [`client ${SERVICE}/ServerStream 0 unset`]: 1,
    [`client ${SERVICE}/Bidi 0 unset`]: 1,
    // cancelled: ended by grpc's context watcher goroutine, not the caller's
    [`client ${SERVICE}/ServerStream 1 error`]: 1,
    [`client ${SERVICE}/Missing 12 error`]: 1,
    // a server that is not there: the call fails before grpc makes its stream (no server span)
    [`client ${SERVICE}/Unary 14 error`]: 1,
    [`server ${SERVICE}/Unary 0 unset`]: 7,
    // NOT_FOUND is the caller's doing: not an error on the server (semconv gRPC status)
    [`server ${SERVICE}/Unary 5 unset`]: 2,
    [`server ${SERVICE}/Unary 4 error`]: 1,
    [`server ${SERVICE}/ServerStream 0 unset`]: 1,
    [`server ${SERVICE}/Bidi 0 unset`]: 1,
    [`server ${SERVICE}/ServerStream 1 unset`]: 1,
    // an unknown method: handleStream writes UNIMPLEMENTED itself, a server error
    [`server ${SERVICE}/Missing 12 error`]: 1,
  });

  // Attributes, exactly.
  const serverPeerPorts = new Set<unknown>();
  const clientEnds: string[] = [];
  const serverEnds: string[] = [];
  for (const s of grpcSpans) {
    const method = s.name.slice(SERVICE.length + 1);
    const code = codeOf(s);
    const base = rpcAttrs(method, code, semconv, s.status.code === "error");
    if (s.kind === "client") {
      // The UNAVAILABLE call dials a port nobody listens on (its own ClientConn): no connection.
      if (code === 14) {
        expect(Number(s.attributes["server.port"])).toBeGreaterThan(0);
        const { ["server.port"]: _port, ...rest } = s.attributes;
        expect(rest).toEqual({ ...base, "server.address": "127.0.0.1" });
        continue;
      }
      const { ["network.local.port"]: local, ["beetrace.http2.stream_id"]: sid, ...rest } = s.attributes;
      expect(rest).toEqual({
        ...base,
        "server.address": "127.0.0.1",
        "server.port": grpcPort,
        "network.peer.address": "127.0.0.1",
        "network.peer.port": grpcPort,
        "network.local.address": "127.0.0.1",
      });
      // client-initiated HTTP/2 streams have odd ids (RFC 9113 §5.1.1)
      expect({ local: typeof local, sidOdd: Number(sid) % 2 }).toEqual({ local: "number", sidOdd: 1 });
      clientEnds.push(`${local}/${sid}`);
    } else {
      const { ["network.peer.port"]: port, ["beetrace.http2.stream_id"]: sid, ...rest } = s.attributes;
      expect(rest).toEqual({ ...base, ...(peer ? { "network.peer.address": "127.0.0.1" } : {}) });
      expect(Number(sid) % 2).toBe(1);
      if (peer) {
        expect(typeof port).toBe("number");
        serverPeerPorts.add(port);
        serverEnds.push(`${port}/${sid}`);
      } else expect(port).toBeUndefined();
    }
    expect(s.endTimeUnixNano).toBeGreaterThan(s.startTimeUnixNano);
  }
  // One connection from the fixture's client: one peer port for every server span.
  if (peer) expect(serverPeerPorts.size).toBe(1);
  // Each call that reached the server: the same {client local port, stream id} on both sides.
  if (peer) expect(clientEnds.sort()).toEqual(serverEnds.sort());
  expect(new Set(clientEnds).size).toBe(clientEnds.length);

  // The deadline: the client span lasts at least the deadline (the server's span starts after
  // its deadline timer, so only the client's is bounded below).
  const slow = grpcSpans.filter((s) => codeOf(s) === 4 && s.kind === "client");
  expect(slow.length).toBe(1);
  for (const s of slow) expect(s.endTimeUnixNano - s.startTimeUnixNano).toBeGreaterThanOrEqual(BigInt(SLOW_DEADLINE_MS - 5) * 1_000_000n);

  // Context in: the "traced" call's server span continues the trace its metadata named.
  const remote = grpcSpans.filter((s) => s.traceId === TRACEPARENT.traceId);
  if (contextIn) {
    expect(remote.map((s) => ({ kind: s.kind, name: s.name, parent: s.parentSpanId, traceState: s.traceState }))).toEqual([
      { kind: "server", name: `${SERVICE}/Unary`, parent: TRACEPARENT.parent, traceState: TRACEPARENT.traceState },
    ]);
  } else {
    expect(remote).toEqual([]);
  }
  const local = grpcSpans.filter((s) => !remote.includes(s));

  // Parents: the /proxy call is the child of the HTTP span; the call made by the nested
  // handler is the child of that handler's server span; everything else is a root (the
  // fixture's client sends no traceparent of its own).
  const proxy = cap.spans.filter((s) => s.kind === "server" && s.scope.name === "beetrace/net/http" && s.attributes["url.path"] === "/proxy");
  expect(proxy.length).toBe(1);
  const children = local.filter((s) => s.parentSpanId !== undefined);
  expect(children.length).toBe(2);
  const proxyChild = children.find((c) => c.parentSpanId === proxy[0]!.spanId);
  expect(proxyChild).toBeDefined();
  expect({ kind: proxyChild!.kind, name: proxyChild!.name, traceId: proxyChild!.traceId }).toEqual({ kind: "client", name: `${SERVICE}/Unary`, traceId: proxy[0]!.traceId });
  const nested = children.find((c) => c !== proxyChild)!;
  const nestedParent = grpcSpans.find((s) => s.spanId === nested.parentSpanId);
  expect(nestedParent).toBeDefined();
  expect({ parent: [nestedParent!.kind, nestedParent!.name], child: [nested.kind, nested.name], sameTrace: nested.traceId === nestedParent!.traceId }).toEqual({
    parent: ["server", `${SERVICE}/Unary`],
    child: ["client", `${SERVICE}/Unary`],
    sameTrace: true,
  });
  expect(nested.startTimeUnixNano).toBeGreaterThanOrEqual(nestedParent!.startTimeUnixNano);
  expect(nested.endTimeUnixNano).toBeLessThanOrEqual(nestedParent!.endTimeUnixNano);
  expect(proxyChild!.startTimeUnixNano).toBeGreaterThanOrEqual(proxy[0]!.startTimeUnixNano);
  expect(proxyChild!.endTimeUnixNano).toBeLessThanOrEqual(proxy[0]!.endTimeUnixNano);
}

/** Whether the server's peer address can be read: DWARF, or offsets.json has its field for this grpc. */
const peerKnown = (v: Variant, stripped: boolean): boolean =>
  !stripped ||
  ["google.golang.org/grpc/internal/transport.http2Server.peer", "google.golang.org/grpc/internal/transport.http2Server.remoteAddr"].some(
    (f) => embeddedSnapshot().lookup("google.golang.org/grpc", f, v.grpc).kind === "found",
  );

describe.skipIf(reason !== undefined)(`gRPC tracing end to end${reason ? ` — skipped: ${reason}` : ""}`, () => {
  for (const v of VARIANTS) {
    test(`grpc ${v.grpc} (${v.toolchain}), unstripped: exact spans, status and links`, async () => {
      const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "default" });
      const t = await traceRun(bin);
      checkCapture(t, true, true);
      for (const p of t.cap.contents.header.probes.filter((p) => p.id.startsWith("grpc."))) {
        for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:dwarf`);
      }
    }, TIMEOUT_MS);

    test(`grpc ${v.grpc} (${v.toolchain}), stripped (-ldflags="-s -w"): the same spans from offsets.json alone`, async () => {
      const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "ldflags-s-w" });
      const t = await traceRun(bin);
      // grpc 1.40's go.mod brings a golang.org/x/net pseudo-version older than v0.1.0, the first
      // release offsets.json tracks: its HEADERS frame offsets are unknown, so no context in.
      checkCapture(t, peerKnown(v, true), v.dir !== "grpc-1.40");
      for (const p of t.cap.contents.header.probes.filter((p) => p.id.startsWith("grpc."))) {
        for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:snapshot`);
      }
    }, TIMEOUT_MS);
  }

  test("grpc 1.85 served through (*Server).ServeHTTP under net/http's HTTP/2 server: a gRPC SERVER span, child of the request's HTTP span", async () => {
    const v = VARIANTS[VARIANTS.length - 1]!;
    const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "default" });
    const out = join(work, `servehttp-${Date.now()}.cbor`);
    const tr = runTracer(["run", "--out", out, "--", bin, "-addr", "127.0.0.1:0"]);
    const { targetPid } = await tr.started();
    let cap: Capture;
    let shPort: number;
    try {
      const ports = await waitFor(
        () => {
          const h = /listening on 127\.0\.0\.1:(\d+)/.exec(tr.stdout());
          const s = /servehttp on 127\.0\.0\.1:(\d+)/.exec(tr.stdout());
          return h && s ? { http: Number(h[1]), sh: Number(s[1]) } : undefined;
        },
        30_000,
        "the fixture's 'listening on' and 'servehttp on' lines (via the tracer)",
      );
      shPort = ports.sh;
      const r = await httpGet(ports.http, "/servehttp");
      expect({ status: r.status, lines: r.body.trim().split("\n") }).toEqual({ status: 200, lines: ["Unary/ok OK", "Unary/notfound NotFound"] });
      tr.signal("SIGINT");
      expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
      cap = readSpans(out);
    } finally {
      try {
        process.kill(targetPid, "SIGKILL");
      } catch {
        // already gone with the tracer
      }
    }
    const grpcSpans = cap.spans.filter((s) => s.scope.name === "beetrace/google.golang.org/grpc");
    const servers = grpcSpans.filter((s) => s.kind === "server");
    const clients = grpcSpans.filter((s) => s.kind === "client");
    // The HTTP/2 requests grpc's client sent to the ServeHTTP port: net/http server spans.
    const h2 = cap.spans.filter((s) => s.kind === "server" && s.scope.name === "beetrace/net/http" && s.attributes["url.path"] === `/${SERVICE}/Unary`);
    expect(h2.map((s) => [s.attributes["http.request.method"], s.attributes["network.protocol.version"], s.attributes["http.response.status_code"]])).toEqual([
      ["POST", "2", 200],
      ["POST", "2", 200],
    ]);
    expect(clients.map((s) => [s.name, s.attributes["rpc.grpc.status_code"], s.attributes["server.port"], s.attributes["network.peer.port"]])).toEqual([
      [`${SERVICE}/Unary`, 0, shPort, shPort],
      [`${SERVICE}/Unary`, 5, shPort, shPort],
    ]);
    // One gRPC SERVER span per call, with its code and the RPC attributes (no peer end or stream
    // id: the handler transport has no connection of its own), each the child of its request's
    // HTTP span, inside it in time.
    expect(servers.map((s): unknown[] => [s.name, s.status.code, s.attributes])).toEqual([
      [`${SERVICE}/Unary`, "unset", rpcAttrs("Unary", 0, "default", false)],
      [`${SERVICE}/Unary`, "unset", rpcAttrs("Unary", 5, "default", false)],
    ]);
    const parents = servers.map((s) => h2.find((h) => h.spanId === s.parentSpanId));
    expect(parents.every((p) => p !== undefined)).toBe(true);
    expect(new Set(parents.map((p) => p!.spanId)).size).toBe(2);
    servers.forEach((s, i) => {
      const p = parents[i]!;
      expect({ trace: s.traceId, inside: s.startTimeUnixNano >= p.startTimeUnixNano && s.endTimeUnixNano <= p.endTimeUnixNano }).toEqual({ trace: p.traceId, inside: true });
    });
  }, TIMEOUT_MS);

  test("one slot per table (BEETRACE_SERVER_SLOTS=1): the same exact spans (server calls and client calls being made that find their slot taken go through the LRU maps)", async () => {
    const v = VARIANTS[VARIANTS.length - 1]!;
    const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "default" });
    checkCapture(await traceRun(bin, { BEETRACE_SERVER_SLOTS: "1" }), true, true);
  }, TIMEOUT_MS);

  test("OTEL_SEMCONV_STABILITY_OPT_IN=rpc: the stable RPC attribute names", async () => {
    const v = VARIANTS[VARIANTS.length - 1]!;
    const bin = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "default" });
    checkCapture(await traceRun(bin, { OTEL_SEMCONV_STABILITY_OPT_IN: "rpc" }), true, true, "stable");
  }, TIMEOUT_MS);
});
