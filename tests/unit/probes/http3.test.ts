/**
 * @module tests/unit/probes/http3 — span building of the HTTP/3 (quic-go) probes from records
 * written through the layouts generated from BTF (record-writer.ts), routing, and the plan on
 * real quic-go binaries (which handler closure is probed in which release, stripped builds with
 * offsets.json alone, the untraced-protocol detector).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { http3Server } from "../../../src/probes/http3/server.ts";
import { http3Client } from "../../../src/probes/http3/client.ts";
import { ENUMERATORS as E } from "../../../src/probes/http3/http3.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { CompiledLayout, RecordReader, type RecordLayout } from "../../../src/probes/record.ts";
import { PROBES } from "../../../src/probes/registry.ts";
import { untracedProtocols } from "../../../src/probes/protocols.ts";
import type { Span } from "../../../src/spans/model.ts";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { planProbes } from "../../../src/trace/plan.ts";
import { buildFixture, goMatrixUnavailable, fixtureRelease } from "../../harness/go.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";

const SERVER = recordLayoutOf("http3", "rec_http3_server");
const CLIENT = recordLayoutOf("http3", "rec_http3_client");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";
const NO_PARENT = "0000000000000000";
const EPOCH = 1_700_000_000_000_000_000n;
const toEpoch = (boot: bigint): bigint => boot + EPOCH;
const F = { HAS_PARENT: 1, REMOTE_PARENT: 1 << 4, END_AT_RET: 1 << 3 };

interface ServerOpts {
  status?: number;
  /** default STATUS | PATTERN | END_AT_RET */
  flags?: number;
  method?: string;
  path?: string;
  pattern?: string;
  parent?: string;
  tracestate?: string;
  truncated?: number;
}

function serverInput(o: ServerOpts = {}): RecordInput {
  return {
    fields: {
      type: E.REC_HTTP3_SERVER,
      flags: o.flags ?? E.HTTP3_SERVER_F_STATUS | E.HTTP3_SERVER_F_PATTERN | F.END_AT_RET,
      truncated: o.truncated ?? 0,
      start_ns: 1_000_000n,
      end_ns: 3_000_000n,
      status: o.status ?? 200,
      proto_major: 3,
      proto_minor: 0,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT },
    strings: {
      method: o.method ?? "GET",
      path: o.path ?? "/items/7",
      host: "example.com:8443",
      remote: "192.0.2.7:51234",
      pattern: o.pattern ?? "GET /items/{id}",
      tracestate: o.tracestate ?? "",
    },
  };
}

interface ClientOpts {
  status?: number;
  /** default RESPONSE | END_AT_RET */
  flags?: number;
  path?: string;
  urlHost?: string;
  parent?: string;
}

function clientInput(o: ClientOpts = {}): RecordInput {
  return {
    fields: { type: E.REC_HTTP3_CLIENT, flags: o.flags ?? E.HTTP3_CLIENT_F_RESPONSE | F.END_AT_RET, start_ns: 2_000_000n, end_ns: 2_500_000n, status: o.status ?? 200 },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT },
    strings: { method: "GET", scheme: "https", url_host: o.urlHost ?? "example.com:8443", path: o.path ?? "/items/7", req_host: "" },
  };
}

function reader(layout: RecordLayout, input: RecordInput): RecordReader {
  const w = new RecordWriter(layout);
  const buf = new Uint8Array(w.size(input));
  w.write(input, buf, 0);
  const r = new RecordReader(buf, new DataView(buf.buffer), 0, buf.length, new CompiledLayout(layout));
  expect(r.check()).toBeUndefined();
  return r;
}

const server = (o: ServerOpts = {}): Span => http3Server.decode(reader(SERVER, serverInput(o)), { toEpoch });
const client = (o: ClientOpts = {}): Span => http3Client.decode(reader(CLIENT, clientInput(o)), { toEpoch });

describe("HTTP/3 server spans", () => {
  test("a routed request: name, kind, times, semconv attributes, protocol 3", () => {
    const s = server();
    expect(s).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      name: "GET /items/{id}",
      kind: "server",
      startTimeUnixNano: EPOCH + 1_000_000n,
      endTimeUnixNano: EPOCH + 3_000_000n,
      status: { code: "unset" },
      scope: { name: "beetrace/github.com/quic-go/quic-go/http3" },
    });
    expect(s.parentSpanId).toBeUndefined();
    expect(s.attributes).toEqual({
      "http.request.method": "GET",
      "url.path": "/items/7",
      "url.scheme": "https",
      "http.route": "/items/{id}",
      "server.address": "example.com",
      "server.port": 8443,
      "network.peer.address": "192.0.2.7",
      "network.peer.port": 51234,
      "network.transport": "udp",
      "network.protocol.name": "http",
      "network.protocol.version": "3",
      "http.response.status_code": 200,
    });
  });

  test("5xx is an error, 4xx is not; no route: the span is named by the method alone", () => {
    expect(server({ status: 500 })).toMatchObject({ status: { code: "error" }, attributes: { "http.response.status_code": 500, "error.type": "500" } });
    const nf = server({ status: 404, pattern: "", path: "/missing" });
    expect(nf.name).toBe("GET");
    expect(nf.status.code).toBe("unset");
    expect(nf.attributes["http.route"]).toBeUndefined();
    expect(nf.attributes["error.type"]).toBeUndefined();
  });

  test("no header written means 200 (quic-go's Finish writes it); status unknown leaves it out", () => {
    expect(server({ status: 0 }).attributes["http.response.status_code"]).toBe(200);
    expect(server({ flags: E.HTTP3_SERVER_F_PATTERN }).attributes["http.response.status_code"]).toBeUndefined();
  });

  test("a panic is an error whatever status was set; a hijacked stream has no status", () => {
    const p = server({ status: 200, flags: E.HTTP3_SERVER_F_STATUS | E.HTTP3_SERVER_F_PANIC });
    expect(p.status).toEqual({ code: "error", message: "panic" });
    expect(p.attributes["error.type"]).toBe("panic");
    expect(p.attributes["http.response.status_code"]).toBeUndefined();
    const h = server({ status: 0, flags: E.HTTP3_SERVER_F_STATUS | E.HTTP3_SERVER_F_HIJACKED });
    expect(h.attributes["beetrace.hijacked"]).toBe(true);
    expect(h.attributes["http.response.status_code"]).toBeUndefined();
  });

  test("traceparent in: the caller's span is the parent, tracestate kept", () => {
    const s = server({ parent: PARENT, tracestate: "vendor=1", flags: E.HTTP3_SERVER_F_STATUS | F.HAS_PARENT | F.REMOTE_PARENT });
    expect(s.parentSpanId).toBe(PARENT);
    expect(s.traceState).toBe("vendor=1");
    // A tracestate without a parent (cannot happen from BPF) is not reported.
    expect(server({ tracestate: "vendor=1" }).traceState).toBeUndefined();
  });

  test("truncated strings are named", () => {
    expect(server({ truncated: 1 << 1 }).attributes["beetrace.truncated"]).toBe("url.path");
  });
});

describe("HTTP/3 client spans", () => {
  test("a request: url.full, server.address/port, status, protocol 3", () => {
    const s = client({ parent: PARENT, flags: E.HTTP3_CLIENT_F_RESPONSE | F.HAS_PARENT });
    expect(s).toMatchObject({ name: "GET", kind: "client", parentSpanId: PARENT, status: { code: "unset" } });
    expect(s.attributes).toEqual({
      "http.request.method": "GET",
      "url.full": "https://example.com:8443/items/7",
      "server.address": "example.com",
      "server.port": 8443,
      "network.transport": "udp",
      "network.protocol.name": "http",
      "network.protocol.version": "3",
      "http.response.status_code": 200,
    });
  });

  test("4xx and 5xx are errors; a failed request is _OTHER; the default port is https's", () => {
    expect(client({ status: 404 })).toMatchObject({ status: { code: "error" }, attributes: { "error.type": "404" } });
    const failed = client({ flags: E.HTTP3_CLIENT_F_ERROR, urlHost: "example.com" });
    expect(failed.status).toEqual({ code: "error", message: "request failed" });
    expect(failed.attributes).toMatchObject({ "error.type": "_OTHER", "server.port": 443 });
    expect(failed.attributes["http.response.status_code"]).toBeUndefined();
  });

  test("query values and userinfo are redacted", () => {
    const s = client({ flags: E.HTTP3_CLIENT_F_RESPONSE | E.HTTP3_CLIENT_F_QUERY | E.HTTP3_CLIENT_F_USER | E.HTTP3_CLIENT_F_PASSWORD });
    expect(s.attributes["url.full"]).toBe("https://REDACTED:REDACTED@example.com:8443/items/7?REDACTED");
  });
});

describe("routing and manifests", () => {
  test("registered; the shared decoder routes both tags (0x0161, 0x0162) to the HTTP/3 probes", () => {
    expect(PROBES).toContain(http3Server);
    expect(PROBES).toContain(http3Client);
    expect([E.REC_HTTP3_SERVER, E.REC_HTTP3_CLIENT]).toEqual([0x0161, 0x0162]);
    const d = new SpanDecoder();
    for (const [layout, input, kind] of [
      [SERVER, serverInput(), "server"],
      [CLIENT, clientInput(), "client"],
    ] as const) {
      const w = new RecordWriter(layout);
      const buf = new Uint8Array(w.size(input) + 8).fill(0xee);
      const n = w.write(input, buf, 0);
      const s = d.decodeAt(buf, new DataView(buf.buffer), 0, n, { toEpoch });
      expect(s?.kind).toBe(kind);
      expect(s?.scope.name).toBe("beetrace/github.com/quic-go/quic-go/http3");
    }
    expect(d.invalid).toBe(0);
  });

  test("the header walk's map layout follows the Go version and needs every offset", () => {
    const all = (goVersion: string) => ({ goVersion, offset: () => 8 });
    expect(http3Server.flags(all("go1.26.0"))).toEqual({ map_mode: E.GO_MAP_SWISS });
    expect(http3Server.flags(all("go1.23.4"))).toEqual({ map_mode: E.GO_MAP_BUCKETS });
    expect(http3Server.flags({ goVersion: "go1.26.0", offset: (f: string) => (f === "internal/runtime/maps.Map.dirLen" ? undefined : 8) })).toEqual({ map_mode: E.GO_MAP_NONE });
  });
});

/** The fixture variants of tests/e2e/http3.test.ts, stripped, and which handler closure each probes. */
const VARIANTS = [
  { dir: "quic-0.59", toolchain: "go1.25.14", closure: "func2", entry: "http3_server_entry" },
  { dir: "quic-0.66", toolchain: "go1.27.4", closure: "func1", entry: "http3_server_entry_byval" },
] as const;
const why = goMatrixUnavailable();

describe(`the plan on real binaries (stripped: offsets.json alone)${why ? ` (skipped: ${why})` : ""}`, () => {
  for (const v of VARIANTS) {
    test.skipIf(why !== undefined)(`${v.dir}: the handler closure ${v.closure} and the client's RoundTripOpt and ClientConn.RoundTrip, every entry emulated; HTTP/3 not listed as untraced`, async () => {
      const exe = await buildFixture({ ...fixtureRelease("http3", v.dir), toolchain: v.toolchain, mode: "ldflags-s-w" });
      const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
      const [server, client] = planProbes(a, [http3Server, http3Client], { snapshot: embeddedSnapshot(), allowNearest: false });
      for (const p of [server!, client!]) expect({ id: p.probe.id, reason: p.reason, enabled: p.enabled }).toEqual({ id: p.probe.id, reason: undefined, enabled: true });
      const Q = "github.com/quic-go/quic-go/http3";
      const entries = (p: typeof server) => p!.points.filter((x) => x.role === "entry").map((x) => [x.symbol, x.program, x.emulated]);
      // v0.59 links func1 too (the trailer callback): probed as a v0.66 closure, turned away in BPF.
      expect(entries(server)).toContainEqual([`${Q}.(*RawServerConn).handleRequestStream.${v.closure}`, v.entry, true]);
      // The end: the closure's deferred recover, not its RETs.
      const closure = `${Q}.(*RawServerConn).handleRequestStream.${v.closure}`;
      expect(server!.points.filter((x) => x.symbol.startsWith(closure)).map((x) => [x.role, x.symbol, x.program, x.emulated])).toEqual([
        ["entry", closure, v.entry, true],
        ["end-marker", `${closure}.1`, "http3_server_end_deferred", true],
      ]);
      expect(entries(client)).toEqual([
        [`${Q}.(*Transport).RoundTripOpt`, "http3_client_entry", true],
        [`${Q}.(*ClientConn).RoundTrip`, "http3_client_entry_conn", true],
      ]);
      expect(untracedProtocols(a).filter((u) => u.name.startsWith("HTTP/3"))).toEqual([]);
    }, 300_000);
  }
});
