/**
 * @module tests/e2e/xnet-h2 — HTTP/2 servers run by golang.org/x/net/http2 rather than net/http's
 * own: cleartext (h2c.NewHandler) and TLS (http2.ConfigureServer). x/net's server calls handlers
 * from (*serverConn).runHandler, never through serverHandler.ServeHTTP, so the net/http server
 * probe has a second entry there (and ends at runHandler's deferred func). Every request gets
 * its SERVER span with network.protocol.version 2, the status code (500 → Error) and panics.
 *
 * x/net v0.38 on Go 1.26 (its own server), unstripped and stripped (offsets.json for x/net);
 * x/net v0.63 on Go 1.27, whose TLS server is net/http's own (http2/server_wrap.go) and whose
 * client is net/http's Transport: server and client spans through the net/http probes. With h2c
 * that x/net hands the application's handler to net/http's server, which calls it through
 * http2Handler.ServeHTTP: the span begins there (no http.route: the pattern is set on a Request
 * no probe sees). The x/net client's spans (its own in v0.38) are children of the request that
 * made them, one per request. Client and server spans of a request carry the same HTTP/2 stream
 * id (beetrace.http2.stream_id) and connection ends.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, fixtureRelease, newestToolchain } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("xnet-h2");

async function drive(bin: string, mode: "h2c" | "tls"): Promise<{ spans: SpanRecord[]; body: string; stderr: string }> {
  const sample = await startSample(bin, ["-mode", mode]);
  try {
    const out = join(work, `x-${sample.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
    await tr.started();
    const ex = await httpGet(sample.port, "/drive");
    tr.signal("SIGINT");
    expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
    const cap = readSpans(out);
    // Nested client calls (x/net under net/http, RoundTrip around roundTrip) end once: no RET without its entry.
    expect(cap.end?.totals.losses).toMatchObject({ returnWithoutEntry: 0, incomplete: 0 });
    return { spans: cap.spans, body: ex.body, stderr: tr.stderr() };
  } finally {
    await sample.stop();
  }
}

/** The HTTP/2 server spans of /hello, /fail and /panic, in that order. */
function h2Servers(spans: SpanRecord[], scheme: string) {
  return spans
    .filter((s) => s.kind === "server" && s.attributes["network.protocol.version"] === "2" && s.name !== "HTTP")
    .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1))
    .map((s) => ({
      name: s.name,
      scheme: s.attributes["url.scheme"],
      status: s.attributes["http.response.status_code"],
      error: s.attributes["error.type"],
      code: s.status.code,
    }))
    .map((s) => (expect(s.scheme).toBe(scheme), s));
}

/** The client spans of the three requests: one each (x/net's client, or net/http's under it), children of /drive. */
function expectClients(spans: SpanRecord[], scheme: string): void {
  const drive = spans.find((s) => s.kind === "server" && s.name === "GET /drive")!;
  const clients = spans.filter((s) => s.kind === "client").sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
  expect(clients.map((s) => [s.attributes["url.full"]?.toString().replace(/:\d+\//, ":PORT/"), s.attributes["http.response.status_code"], s.parentSpanId])).toEqual([
    [`${scheme}://127.0.0.1:PORT/hello`, 200, drive.spanId],
    [`${scheme}://127.0.0.1:PORT/fail`, 500, drive.spanId],
    [`${scheme}://127.0.0.1:PORT/panic`, undefined, drive.spanId],
  ]);
}

/** Every HTTP/2 server span has a client span with its stream id on its connection. */
function expectStreamPairs(spans: SpanRecord[]): void {
  const sid = "beetrace.http2.stream_id";
  // (Not h2c's "PRI * HTTP/2.0" preface, named HTTP, which arrives over HTTP/1: no stream.)
  const servers = spans.filter((s) => s.kind === "server" && s.attributes["network.protocol.version"] === "2" && s.name !== "HTTP");
  const clients = spans.filter((s) => s.kind === "client");
  const key = (port: unknown, id: unknown) => `${String(port)}#${String(id)}`;
  expect(servers.map((s) => typeof s.attributes[sid])).toEqual(servers.map(() => "number"));
  expect(servers.map((s) => key(s.attributes["network.peer.port"], s.attributes[sid])).sort()).toEqual(
    clients.map((c) => key(c.attributes["network.local.port"], c.attributes[sid])).sort(),
  );
}

const WANT = [
  { name: "GET /hello", status: 200, error: undefined, code: "unset" },
  { name: "GET /fail", status: 500, error: "500", code: "error" },
  { name: "GET /panic", status: undefined, error: "panic", code: "error" },
];

describe.skipIf(reason !== undefined)(`x/net HTTP/2 servers${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const stripped of [false, true]) {
    for (const mode of ["h2c", "tls"] as const) {
      test(`x/net v0.38, go1.26.11, ${mode}${stripped ? ", stripped (offsets.json)" : ""}: one server span per request with status`, async () => {
        const bin = await buildFixture({ ...fixtureRelease("xnet-h2", "xnet-0.38"), toolchain: "go1.26.11", mode: stripped ? "ldflags-s-w" : "default" });
        const { spans, body } = await drive(bin, mode);
        expect(body).toBe("/hello=200/HTTP/2.0 /fail=500/HTTP/2.0 /panic=error");
        expect(h2Servers(spans, mode === "tls" ? "https" : "http").map(({ scheme: _s, ...r }) => r) as unknown).toEqual(WANT);
        // x/net's own client (an http2.Transport): ClientConn.roundTrip, RoundTrip being inlined.
        expectClients(spans, mode === "tls" ? "https" : "http");
        // Stripped: the x/net fields come from offsets.json; a TLS connection's inner conn
        // (crypto/tls.Conn.conn) is not tracked there yet, so only h2c has the client's local end.
        if (!stripped || mode === "h2c") expectStreamPairs(spans);
      }, 300_000);
    }
  }

  test("x/net v0.63 on Go 1.27 (TLS): net/http's own server and client carry the spans", async () => {
    const bin = await buildFixture({ ...fixtureRelease("xnet-h2", "xnet-0.63"), toolchain: newestToolchain(), mode: "default" });
    const { spans, body } = await drive(bin, "tls");
    expect(body).toBe("/hello=200/HTTP/2.0 /fail=500/HTTP/2.0 /panic=error");
    expect(h2Servers(spans, "https").map(({ scheme: _s, ...r }) => r) as unknown).toEqual(WANT);
    // x/net's client wraps net/http's Transport here: one span per request all the same.
    expectClients(spans, "https");
    expectStreamPairs(spans);
  }, 300_000);

  test("x/net v0.63 on Go 1.27 (h2c): net/http's http2Handler.ServeHTTP begins the server spans", async () => {
    const bin = await buildFixture({ ...fixtureRelease("xnet-h2", "xnet-0.63"), toolchain: newestToolchain(), mode: "default" });
    const { spans, body, stderr } = await drive(bin, "h2c");
    expect(body).toBe("/hello=200/HTTP/2.0 /fail=500/HTTP/2.0 /panic=error");
    // No route (the ServeMux pattern lands on the Request http2Handler builds): named by method.
    expect(h2Servers(spans, "http").map(({ scheme: _s, ...r }) => r) as unknown).toEqual(WANT.map((w) => ({ ...w, name: "GET" })));
    const paths = spans
      .filter((s) => s.kind === "server" && s.attributes["network.protocol.version"] === "2" && s.name !== "HTTP")
      .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1))
      .map((s) => s.attributes["url.path"]);
    expect(paths).toEqual(["/hello", "/fail", "/panic"]);
    expectClients(spans, "http");
    expectStreamPairs(spans);
    // Traced now: the start-up line no longer names h2c as untraced.
    expect(stderr).not.toContain("h2c");
  }, 300_000);
});
