/**
 * @module tests/e2e/http3 — HTTP/3 servers and clients built with github.com/quic-go/quic-go/http3
 * (tests/fixtures/go/http3/, one main.go built against three quic-go releases by -modfile: an HTTP/3 server and quic-go's own client in one program, TLS with a
 * certificate made at start-up), traced for real. quic-go never goes through net/http's server or
 * Transport, so these spans come from the HTTP/3 probes alone (src/probes/http3/).
 *
 * The fixture's /drive (a plain HTTP/1 request from the test) sends seven HTTP/3 requests: /hello,
 * /items/7, /fail (500), /missing (404), /panic, /chain (whose handler calls /hello over HTTP/3 on
 * its goroutine and /ping over HTTP/1 on another goroutine with the request's context) and /hello
 * with a traceparent and tracestate. Asserts every server span (name, route, status, protocol 3,
 * the remote trace), every client span (url.full, server.address/port, status, parent) and the
 * parent links of calls made while serving an HTTP/3 request.
 *
 * quic-go releases: v0.59.1 (the oldest whose server the probe knows; handler closure func2 with
 * req by reference), v0.65.0 and v0.66.0 (closure func1, req by value); unstripped (DWARF) and
 * stripped (-ldflags="-s -w": offsets.json alone).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, fixtureRelease, type BuildMode } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("http3");

/** Fixture directory, quic-go release and the toolchain it is built with (v0.65 needs Go 1.26). */
const VARIANTS = [
  { dir: "quic-0.59", quic: "0.59.1", toolchain: "go1.25.14", modes: ["default"] },
  { dir: "quic-0.65", quic: "0.65.0", toolchain: "go1.26.11", modes: ["default", "ldflags-s-w"] },
  { dir: "quic-0.66", quic: "0.66.0", toolchain: "go1.27.4", modes: ["default", "ldflags-s-w"] },
] as const;

/** Per test: one cold Go build (quic-go and its dependencies) and one traced workload. */
const TIMEOUT_MS = 300_000;

const BODY = "/hello=200/HTTP/3.0 /items/7=200/HTTP/3.0 /fail=500/HTTP/3.0 /missing=404/HTTP/3.0 /panic=error /chain=200/HTTP/3.0 /hello=200/HTTP/3.0";
/** What the fixture sends with its last request (main.go). */
const TRACEPARENT = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", parent: "00f067aa0ba902b7", traceState: "beetrace=1" };

const byStart = (a: SpanRecord, b: SpanRecord): number => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0);
const isHttp3 = (s: SpanRecord): boolean => s.scope.name === "beetrace/github.com/quic-go/quic-go/http3";

async function drive(bin: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<{ spans: SpanRecord[]; body: string }> {
  const sample = await startSample(bin);
  try {
    const out = join(work, `h3-${sample.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out, ...extra], env);
    await tr.started();
    const ex = await httpGet(sample.port, "/drive");
    tr.signal("SIGINT");
    expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
    const cap = readSpans(out);
    // Nested client calls (Transport.RoundTripOpt → ClientConn.RoundTrip) end once.
    expect(cap.end?.totals.losses).toMatchObject({ returnWithoutEntry: 0, incomplete: 0 });
    return { spans: cap.spans, body: ex.body };
  } finally {
    await sample.stop();
  }
}

function check(spans: SpanRecord[], controlPort: number): void {
  const servers = spans.filter((s) => isHttp3(s) && s.kind === "server").sort(byStart);
  const clients = spans.filter((s) => isHttp3(s) && s.kind === "client").sort(byStart);
  const drive = spans.find((s) => s.kind === "server" && s.name === "GET /drive");
  expect(drive).toBeDefined();

  // The HTTP/3 server's UDP port, from the first request's URL.
  const m = /^https:\/\/127\.0\.0\.1:(\d+)\/hello$/.exec(String(clients[0]?.attributes["url.full"]));
  expect(m).not.toBeNull();
  const port = Number(m![1]);

  // One server span per request, in the order they were served (the /chain handler's own
  // /hello call is served while /chain is).
  expect(
    servers.map((s) => ({
      name: s.name,
      route: s.attributes["http.route"],
      path: s.attributes["url.path"],
      status: s.attributes["http.response.status_code"],
      error: s.attributes["error.type"],
      code: s.status.code,
    })) as unknown,
  ).toEqual([
    { name: "GET /hello", route: "/hello", path: "/hello", status: 200, error: undefined, code: "unset" },
    { name: "GET /items/{id}", route: "/items/{id}", path: "/items/7", status: 200, error: undefined, code: "unset" },
    { name: "GET /fail", route: "/fail", path: "/fail", status: 500, error: "500", code: "error" },
    { name: "GET", route: undefined, path: "/missing", status: 404, error: undefined, code: "unset" },
    { name: "GET /panic", route: "/panic", path: "/panic", status: undefined, error: "panic", code: "error" },
    { name: "GET /chain", route: "/chain", path: "/chain", status: 200, error: undefined, code: "unset" },
    { name: "GET /hello", route: "/hello", path: "/hello", status: 200, error: undefined, code: "unset" },
    { name: "GET /hello", route: "/hello", path: "/hello", status: 200, error: undefined, code: "unset" },
  ]);
  for (const s of servers) {
    expect(s.attributes).toMatchObject({
      "http.request.method": "GET",
      "network.protocol.version": "3",
      "network.transport": "udp",
      "url.scheme": "https",
      "server.address": "127.0.0.1",
      "server.port": port,
      "network.peer.address": "127.0.0.1",
    });
    expect(typeof s.attributes["network.peer.port"]).toBe("number");
    expect(s.endTimeUnixNano).toBeGreaterThan(s.startTimeUnixNano);
  }
  // No propagation between the fixture's client and server: each request starts its own trace,
  // except the one that carried a traceparent, which continues the caller's.
  for (const s of servers.slice(0, 7)) expect(s.parentSpanId).toBeUndefined();
  const traced = servers[7]!;
  expect({ traceId: traced.traceId, parent: traced.parentSpanId, traceState: traced.traceState }).toEqual({
    traceId: TRACEPARENT.traceId,
    parent: TRACEPARENT.parent,
    traceState: TRACEPARENT.traceState,
  });

  // One client span per request sent: /drive's seven, then the /chain handler's /hello.
  const chain = servers[5]!;
  expect(
    clients.map((s) => ({
      name: s.name,
      url: s.attributes["url.full"],
      status: s.attributes["http.response.status_code"],
      error: s.attributes["error.type"],
      code: s.status.code,
      parent: s.parentSpanId,
    })) as unknown,
  ).toEqual([
    { name: "GET", url: `https://127.0.0.1:${port}/hello`, status: 200, error: undefined, code: "unset", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/items/7`, status: 200, error: undefined, code: "unset", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/fail`, status: 500, error: "500", code: "error", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/missing`, status: 404, error: "404", code: "error", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/panic`, status: undefined, error: "_OTHER", code: "error", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/chain`, status: 200, error: undefined, code: "unset", parent: drive!.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/hello`, status: 200, error: undefined, code: "unset", parent: chain.spanId },
    { name: "GET", url: `https://127.0.0.1:${port}/hello`, status: 200, error: undefined, code: "unset", parent: drive!.spanId },
  ]);
  for (const s of clients) {
    expect(s.attributes).toMatchObject({ "http.request.method": "GET", "server.address": "127.0.0.1", "server.port": port, "network.protocol.version": "3" });
    const parent = s.parentSpanId === chain.spanId ? chain : drive!;
    expect(s.traceId).toBe(parent.traceId);
  }

  // The /chain handler's HTTP/1 call, made on another goroutine with the request's context: the
  // net/http client span is the HTTP/3 request's child (found through bee_ctx_spans).
  const ping = spans.filter((s) => s.kind === "client" && !isHttp3(s));
  expect(ping.map((s) => [s.attributes["url.full"], s.parentSpanId, s.traceId])).toEqual([[`http://127.0.0.1:${controlPort}/ping`, chain.spanId, chain.traceId]]);
}

describe.skipIf(reason !== undefined)(`HTTP/3 (quic-go)${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const v of VARIANTS) {
    for (const mode of v.modes as readonly BuildMode[]) {
      test(`quic-go v${v.quic}, ${v.toolchain}${mode === "default" ? "" : ", stripped (offsets.json)"}: server and client spans, parents, traceparent in`, async () => {
        const bin = await buildFixture({ ...fixtureRelease("http3", v.dir), toolchain: v.toolchain, mode });
        const { spans, body } = await drive(bin);
        expect(body).toBe(BODY);
        const control = spans.find((s) => s.kind === "server" && s.name === "GET /drive");
        check(spans, Number(control?.attributes["server.port"]));
      }, TIMEOUT_MS);
    }
  }

  test("quic-go v0.65.0, one slot per table (BEETRACE_SERVER_SLOTS=1): the same spans (the client's nested calls and the server's calls that find the slot taken go through the LRU maps)", async () => {
    const bin = await buildFixture({ ...fixtureRelease("http3", "quic-0.65"), toolchain: "go1.26.11", mode: "default" });
    const { spans, body } = await drive(bin, [], { BEETRACE_SERVER_SLOTS: "1" });
    expect(body).toBe(BODY);
    const control = spans.find((s) => s.kind === "server" && s.name === "GET /drive");
    check(spans, Number(control?.attributes["server.port"]));
  }, TIMEOUT_MS);

  test("quic-go v0.65.0, stripped, runtime.g._panic unknown: the span ends at the closure's RETs (panicked read from the caller's frame)", async () => {
    const bin = await buildFixture({ ...fixtureRelease("http3", "quic-0.65"), toolchain: "go1.26.11", mode: "ldflags-s-w" });
    // An --offsets file that says this Go release has no g._panic: the deferred recover cannot
    // tell a panic, so the planner puts the end on the RETs (everything else from offsets.json).
    const offsets = join(work, "no-g-panic.json");
    writeFileSync(offsets, JSON.stringify({ schema: 1, generated: { by: "e2e test" }, modules: { std: { versions: ["1.26.11"], fields: { "runtime.g._panic": [{ from: "1.26.11", to: "1.26.11", offset: null }] } } } }));
    const { spans, body } = await drive(bin, ["--offsets", offsets]);
    expect(body).toBe(BODY);
    const control = spans.find((s) => s.kind === "server" && s.name === "GET /drive");
    check(spans, Number(control?.attributes["server.port"]));
  }, TIMEOUT_MS);
});
