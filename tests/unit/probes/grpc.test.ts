/**
 * @module tests/unit/probes/grpc — span building of the gRPC probes from records written through
 * the layouts generated from BTF (record-writer.ts), and the RPC semantic-convention helpers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { grpcServer, buildServerWith, spbCodeFlags } from "../../../src/probes/grpc/server.ts";
import { grpcClient, buildClientWith } from "../../../src/probes/grpc/client.ts";
import { ENUMERATORS as E } from "../../../src/probes/grpc/grpc.gen.ts";
import { SPB_STATUS_CODE, SPB_STATUS_CODE_DEFAULT, streamEmbedsPointer } from "../../../src/probes/grpc/object.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { CompiledLayout, RecordReader, type RecordLayout } from "../../../src/probes/record.ts";
import { PROBES } from "../../../src/probes/registry.ts";
import type { Span } from "../../../src/spans/model.ts";
import { isError, rpcSemconvFrom, setRpcSemconv, splitFullMethod, targetAddress, type RpcSemconv } from "../../../src/probes/grpc/semconv.ts";
import { formatIp } from "../../../src/probes/common/net.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { planProbes } from "../../../src/trace/plan.ts";
import { buildFixture, goMatrixUnavailable } from "../../harness/go.ts";
import { SpanObjectBuilder, type BuildSpan } from "../../../src/probes/common/span.ts";

/** A builder taking the RPC conventions, as a decode to a Span object. */
function spanOf(build: (...a: [...Parameters<BuildSpan>, RpcSemconv]) => void, r: RecordReader, mode: RpcSemconv): Span {
  const out = new SpanObjectBuilder();
  build(r, { toEpoch }, out, mode);
  return out.finish();
}

const SERVER = recordLayoutOf("grpc", "rec_grpc_server");
const CLIENT = recordLayoutOf("grpc", "rec_grpc_client");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";
const NO_PARENT = "0000000000000000";
const EPOCH = 1_700_000_000_000_000_000n;
const toEpoch = (boot: bigint): bigint => boot + EPOCH;
const METHOD = "/helloworld.Greeter/SayHello";

afterEach(() => setRpcSemconv(undefined));

interface ServerOpts {
  code?: number;
  /** default STATUS | PEER */
  flags?: number;
  ip?: string;
  ipSize?: number;
  port?: number;
  method?: string;
  parent?: string;
  tracestate?: string;
  truncated?: number;
  streamId?: number;
}

function serverInput(o: ServerOpts = {}): RecordInput {
  return {
    fields: {
      type: E.REC_GRPC_SERVER,
      flags: o.flags ?? E.GRPC_SERVER_F_STATUS | E.GRPC_SERVER_F_PEER,
      truncated: o.truncated ?? 0,
      start_ns: 1_000_000n,
      end_ns: 3_000_000n,
      code: o.code ?? 0,
      peer_port: o.port ?? 51234,
      peer_ip_size: o.ipSize ?? 4,
      stream_id: o.streamId ?? 0,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT, peer_ip: (o.ip ?? "0a000203").padEnd(32, "0") },
    strings: { method: o.method ?? METHOD, tracestate: o.tracestate ?? "" },
  };
}

interface ClientOpts {
  code?: number;
  /** default STATUS */
  flags?: number;
  method?: string;
  target?: string;
  streamId?: number;
  peer?: [string, number, number];
  local?: [string, number, number];
}

function clientInput(o: ClientOpts = {}): RecordInput {
  return {
    fields: {
      type: E.REC_GRPC_CLIENT,
      flags: o.flags ?? E.GRPC_CLIENT_F_STATUS,
      start_ns: 2_000_000n,
      end_ns: 2_500_000n,
      code: o.code ?? 0,
      stream_id: o.streamId ?? 0,
      peer_ip_size: o.peer?.[1] ?? 0,
      peer_port: o.peer?.[2] ?? 0,
      local_ip_size: o.local?.[1] ?? 0,
      local_port: o.local?.[2] ?? 0,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: NO_PARENT, peer_ip: (o.peer?.[0] ?? "").padEnd(32, "0"), local_ip: (o.local?.[0] ?? "").padEnd(32, "0") },
    strings: { method: o.method ?? METHOD, target: o.target ?? "dns:///greeter.internal:50051" },
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

const server = (o: ServerOpts = {}, mode: RpcSemconv = "default"): Span => spanOf(buildServerWith, reader(SERVER, serverInput(o)), mode);
const client = (o: ClientOpts = {}, mode: RpcSemconv = "default"): Span => spanOf(buildClientWith, reader(CLIENT, clientInput(o)), mode);

describe("grpc server spans", () => {
  test("the HTTP/2 stream id, and a parent found by the connection", () => {
    const s = server({ flags: E.GRPC_SERVER_F_STATUS | E.GRPC_SERVER_F_PEER | E.GRPC_SERVER_F_STREAM_ID, streamId: 5 });
    expect(s.attributes["beetrace.http2.stream_id"]).toBe(5);
    expect(s.attributes["beetrace.parent_by_connection"]).toBeUndefined();
    const joined = server({ flags: E.GRPC_SERVER_F_STATUS | E.GRPC_SERVER_F_PEER | E.GRPC_SERVER_F_STREAM_ID | E.GRPC_SERVER_F_CONN_JOINED | E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT, streamId: 5, parent: PARENT });
    expect({ parent: joined.parentSpanId, by: joined.attributes["beetrace.parent_by_connection"] }).toEqual({ parent: PARENT, by: true });
    // Through ServeHTTP (stream id 0): no stream id attribute.
    expect(server({ flags: E.GRPC_SERVER_F_STATUS }).attributes["beetrace.http2.stream_id"]).toBeUndefined();
  });

  test("how a ServerStream/ClientStream holds its Stream: by value (>= 1.77), by pointer (1.69 … 1.76), no wrapper", () => {
    const T = "google.golang.org/grpc/internal/transport";
    const ctx = (wrapper: number | null | undefined, rr: number | null | undefined) => ({
      offset: (f: string) => (f === `${T}.ServerStream.Stream` ? wrapper : f === `${T}.Stream.readRequester` ? rr : undefined),
    });
    expect(streamEmbedsPointer(ctx(null, null), `${T}.ServerStream.Stream`)).toBe(0);
    expect(streamEmbedsPointer(ctx(0, 40), `${T}.ServerStream.Stream`)).toBe(0);
    expect(streamEmbedsPointer(ctx(0, null), `${T}.ServerStream.Stream`)).toBe(1);
    expect(streamEmbedsPointer(ctx(0, undefined), `${T}.ServerStream.Stream`)).toBeUndefined();
  });

  test("OK: name, kind, times, OTel Go auto attributes", () => {
    const s = server();
    expect(s).toMatchObject({
      name: "helloworld.Greeter/SayHello",
      kind: "server",
      traceId: TRACE,
      spanId: SPAN,
      startTimeUnixNano: EPOCH + 1_000_000n,
      endTimeUnixNano: EPOCH + 3_000_000n,
      status: { code: "unset" },
      scope: { name: "beetrace/google.golang.org/grpc" },
    });
    expect(s.parentSpanId).toBeUndefined();
    expect(s.attributes).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "helloworld.Greeter",
      "rpc.method": "SayHello",
      "rpc.grpc.status_code": 0,
      "network.peer.address": "10.0.2.3",
      "network.peer.port": 51234,
    });
  });

  test("status: only UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS are server errors", () => {
    const errors: number[] = [];
    for (let code = 0; code <= 16; code++) {
      const s = server({ code });
      expect(s.attributes["rpc.grpc.status_code"]).toBe(code);
      if (s.status.code === "error") errors.push(code);
      else expect(s.status).toEqual({ code: "unset" });
    }
    expect(errors).toEqual([2, 4, 12, 13, 14, 15]);
  });

  test("no status read (ended at a RET): no code, no error", () => {
    const s = server({ flags: E.GRPC_SERVER_F_PEER | E.REC_SPAN_F_END_AT_RET, code: 13 });
    expect(s.attributes["rpc.grpc.status_code"]).toBeUndefined();
    expect(s.status).toEqual({ code: "unset" });
  });

  test("peer: IPv6 and IPv4-mapped addresses as Go prints them; absent without the flag", () => {
    expect(server({ ipSize: 16, ip: "20010db8000000000000000000000001" }).attributes["network.peer.address"]).toBe("2001:db8::1");
    expect(server({ ipSize: 16, ip: "00000000000000000000ffff7f000001" }).attributes["network.peer.address"]).toBe("127.0.0.1");
    const none = server({ flags: E.GRPC_SERVER_F_STATUS });
    expect(none.attributes["network.peer.address"]).toBeUndefined();
    expect(none.attributes["network.peer.port"]).toBeUndefined();
    // A size that is neither 4 nor 16 is not an address.
    expect(server({ ipSize: 7 }).attributes["network.peer.address"]).toBeUndefined();
  });

  test("context in: remote parent and tracestate", () => {
    const s = server({ flags: E.GRPC_SERVER_F_STATUS | E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT, parent: PARENT, tracestate: "k=v" });
    expect({ parent: s.parentSpanId, traceState: s.traceState }).toEqual({ parent: PARENT, traceState: "k=v" });
  });

  test("stable RPC conventions (rpc) and both (rpc/dup)", () => {
    expect(server({ code: 4 }, "stable").attributes).toEqual({
      "rpc.system.name": "grpc",
      "rpc.method": "helloworld.Greeter/SayHello",
      "rpc.response.status_code": "DEADLINE_EXCEEDED",
      "error.type": "DEADLINE_EXCEEDED",
      "network.peer.address": "10.0.2.3",
      "network.peer.port": 51234,
    });
    expect(server({ code: 5 }, "dup").attributes).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "helloworld.Greeter",
      "rpc.method": "helloworld.Greeter/SayHello",
      "rpc.grpc.status_code": 5,
      "rpc.system.name": "grpc",
      "rpc.response.status_code": "NOT_FOUND",
      "network.peer.address": "10.0.2.3",
      "network.peer.port": 51234,
    });
  });

  test("a truncated method is marked", () => {
    const s = server({ truncated: 1 << SERVER.strings.indexOf("method") });
    expect(s.attributes["beetrace.truncated"]).toBe("rpc.method");
  });
});

describe("grpc client spans", () => {
  test("the connection: network.peer.*, network.local.*, the HTTP/2 stream id", () => {
    const F = E.GRPC_CLIENT_F_STATUS | E.GRPC_CLIENT_F_PEER | E.GRPC_CLIENT_F_LOCAL | E.GRPC_CLIENT_F_STREAM_ID;
    const s = client({ flags: F, streamId: 7, peer: ["0a000203", 4, 50051], local: ["fe800000000000000000000000000001", 16, 40000] });
    expect(s.attributes).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "helloworld.Greeter",
      "rpc.method": "SayHello",
      "rpc.grpc.status_code": 0,
      "server.address": "greeter.internal",
      "server.port": 50051,
      "network.peer.address": "10.0.2.3",
      "network.peer.port": 50051,
      "network.local.address": "fe80::1",
      "network.local.port": 40000,
      "beetrace.http2.stream_id": 7,
    });
    // No address in the target (a unix socket would give one; an empty target none): the peer is the server.
    const t = client({ flags: F, target: "", streamId: 1, peer: ["7f000001", 4, 9000], local: ["7f000001", 4, 41000] });
    expect([t.attributes["server.address"], t.attributes["server.port"]]).toEqual(["127.0.0.1", 9000]);
    // Flags unset: nothing from the connection, whatever the bytes.
    const none = client({ streamId: 3, peer: ["0a000203", 4, 1], local: ["0a000203", 4, 2] });
    expect(Object.keys(none.attributes).filter((k) => k.startsWith("network.") || k.startsWith("beetrace."))).toEqual([]);
  });

  test("OK: attributes with server.address/port from the target", () => {
    const s = client();
    expect({ name: s.name, kind: s.kind, status: s.status }).toEqual({ name: "helloworld.Greeter/SayHello", kind: "client", status: { code: "unset" } });
    expect(s.attributes).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "helloworld.Greeter",
      "rpc.method": "SayHello",
      "rpc.grpc.status_code": 0,
      "server.address": "greeter.internal",
      "server.port": 50051,
    });
  });

  test("every code but OK is a client error; a non-status error is UNKNOWN", () => {
    for (let code = 1; code <= 16; code++) expect(client({ code }).status).toEqual({ code: "error" });
    const other = client({ flags: E.GRPC_CLIENT_F_OTHER_ERROR });
    expect({ code: other.attributes["rpc.grpc.status_code"], status: other.status }).toEqual({ code: 2, status: { code: "error" } });
    // No status and no error flag: the code could not be read.
    const unknown = client({ flags: 0 });
    expect({ code: unknown.attributes["rpc.grpc.status_code"], status: unknown.status }).toEqual({ code: undefined, status: { code: "unset" } });
  });

  test("stable names on the client", () => {
    expect(client({ code: 14 }, "stable").attributes).toEqual({
      "rpc.system.name": "grpc",
      "rpc.method": "helloworld.Greeter/SayHello",
      "rpc.response.status_code": "UNAVAILABLE",
      "error.type": "UNAVAILABLE",
      "server.address": "greeter.internal",
      "server.port": 50051,
    });
  });
});

describe("routing and manifests", () => {
  test("the shared decoder routes both record tags to the grpc probes", () => {
    const d = new SpanDecoder();
    for (const [layout, input, kind] of [
      [SERVER, serverInput(), "server"],
      [CLIENT, clientInput(), "client"],
    ] as const) {
      const w = new RecordWriter(layout);
      const buf = new Uint8Array(w.size(input) + 8).fill(0xee);
      const n = w.write(input, buf, 0);
      expect(d.decodeAt(buf, new DataView(buf.buffer), 0, n, { toEpoch })?.kind).toBe(kind);
    }
    expect(d.invalid).toBe(0);
  });

  test("registered, and the decoder follows OTEL_SEMCONV_STABILITY_OPT_IN", () => {
    expect(PROBES).toContain(grpcServer);
    expect(PROBES).toContain(grpcClient);
    setRpcSemconv("stable");
    const w = new RecordWriter(CLIENT);
    const input = clientInput();
    const buf = new Uint8Array(w.size(input));
    w.write(input, buf, 0);
    const s = new SpanDecoder().decode(buf, toEpoch);
    expect(s?.attributes["rpc.system.name"]).toBe("grpc");
  });

  test("the status code offset: DWARF's when known, genproto's fixed layout otherwise", () => {
    const ctx = (off: number | null | undefined) => ({ goVersion: "go1.26.0", offset: (f: string) => (f === SPB_STATUS_CODE ? off : undefined) });
    expect(spbCodeFlags(ctx(48))).toEqual({ spb_status_code_off: 48 });
    expect(spbCodeFlags(ctx(undefined))).toEqual({ spb_status_code_off: SPB_STATUS_CODE_DEFAULT });
  });
});

describe("rpc semantic conventions helpers", () => {
  test("OTEL_SEMCONV_STABILITY_OPT_IN parsing", () => {
    expect(rpcSemconvFrom(undefined)).toBe("default");
    expect(rpcSemconvFrom("http")).toBe("default");
    expect(rpcSemconvFrom("http, rpc")).toBe("stable");
    expect(rpcSemconvFrom("rpc,rpc/dup")).toBe("dup");
    expect(rpcSemconvFrom(" RPC/DUP ")).toBe("dup");
  });

  test("full method names", () => {
    expect(splitFullMethod("/a.b.C/D")).toEqual({ service: "a.b.C", method: "D", name: "a.b.C/D" });
    expect(splitFullMethod("nomethod")).toEqual({ service: "", method: "nomethod", name: "nomethod" });
  });

  test("targets", () => {
    expect(targetAddress("localhost:50051")).toEqual({ host: "localhost", port: 50051 });
    expect(targetAddress("dns:///svc.ns:443")).toEqual({ host: "svc.ns", port: 443 });
    expect(targetAddress("dns://8.8.8.8/svc.ns:443")).toEqual({ host: "svc.ns", port: 443 });
    expect(targetAddress("passthrough:///[::1]:9000")).toEqual({ host: "::1", port: 9000 });
    expect(targetAddress("unix:///run/app.sock")).toEqual({ host: "/run/app.sock" });
    expect(targetAddress("unix:app.sock")).toEqual({ host: "app.sock" });
    expect(targetAddress("xds:///greeter")).toEqual({ host: "greeter" });
    expect(targetAddress("")).toBeUndefined();
  });

  test("IP formatting", () => {
    expect(formatIp(new Uint8Array([192, 168, 0, 1]))).toBe("192.168.0.1");
    expect(formatIp(new Uint8Array(16))).toBe("::");
    expect(formatIp(Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))).toBe("fe80::1");
    expect(formatIp(Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4]))).toBe("1:0:2::3:0:4");
    expect(formatIp(new Uint8Array(3))).toBeUndefined();
  });

  test("error status per kind", () => {
    expect(isError("client", 0)).toBe(false);
    expect(isError("client", 5)).toBe(true);
    expect(isError("server", 5)).toBe(false);
    expect(isError("server", 13)).toBe(true);
  });
});

/** The fixture variants of tests/e2e/grpc.test.ts. */
const VARIANTS = [
  { dir: "grpc-1.40", toolchain: "go1.21.13" },
  { dir: "grpc-1.62", toolchain: "go1.23.12" },
  { dir: "grpc-1.72", toolchain: "go1.23.12" },
  { dir: "grpc-1.85", toolchain: "go1.26.11" },
] as const;
const why = goMatrixUnavailable();

describe(`the plan on real binaries (stripped: offsets.json alone)${why ? ` (skipped: ${why})` : ""}`, () => {
  for (const v of VARIANTS) {
    test.skipIf(why !== undefined)(`${v.dir}: every site emulated; the client hands over at newClientStream's RETs only before grpc 1.78`, async () => {
      const exe = await buildFixture({ dir: `tests/fixtures/go/grpc/${v.dir}`, toolchain: v.toolchain, mode: "ldflags-s-w" });
      const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
      const [server, client] = planProbes(a, [grpcServer, grpcClient], { snapshot: embeddedSnapshot(), allowNearest: false, liveJoins: true });
      for (const p of [server!, client!]) expect({ id: p.probe.id, reason: p.reason, enabled: p.enabled }).toEqual({ id: p.probe.id, reason: undefined, enabled: true });
      const newest = v.dir === "grpc-1.85";
      // Server: entry, the status writers (grpc's HTTP/2 transport, and the ServeHTTP handler
      // transport) as its end, and operateHeaders for context in where the HEADERS frame's
      // offsets are known (grpc 1.40's x/net predates offsets.json's first release).
      expect(server!.points.filter((p) => p.role !== "return").map((p) => [p.role, p.program, p.emulated])).toEqual([
        ["entry", "grpc_server_entry", true],
        ["end-marker", "grpc_server_end_status", true],
        ["end-marker", "grpc_server_end_status", true],
        ...(v.dir === "grpc-1.40" ? [] : [["end-marker", "grpc_server_headers_v2", true]]),
      ]);
      expect(server!.points.some((p) => p.role === "return")).toBe(false);
      // Client: finish is entry-only; >= 1.78 binds at newAttemptLocked and ends failures at
      // endOfClientStream, older releases use newClientStream's RETs for both.
      const nonRet = client!.points.filter((p) => p.role !== "return").map((p) => [p.role, p.program, p.emulated]);
      const rets = client!.points.filter((p) => p.role === "return");
      if (newest) {
        expect(nonRet).toEqual([
          ["entry", "grpc_client_entry", true],
          ["end-marker", "grpc_client_bind", true],
          ["end-marker", "grpc_client_failed", true],
          // live joins: the loopy writer's HEADERS handler (clientHeaderHandler from 1.82.1)
          ["end-marker", "grpc_client_headers_v2", true],
          ["entry", "grpc_client_end", true],
        ]);
        expect(rets).toEqual([]);
        // One process traced alone: the live-join site would cost a hit per call for nothing.
        const [, alone] = planProbes(a, [grpcServer, grpcClient], { snapshot: embeddedSnapshot(), allowNearest: false });
        expect(alone!.points.some((p) => p.program === "grpc_client_headers_v2")).toBe(false);
      } else {
        expect(nonRet).toEqual([
          ["entry", "grpc_client_entry", true],
          ["entry", "grpc_client_end", true],
        ]);
        expect(rets.length).toBeGreaterThan(0);
        expect(new Set(rets.map((p) => `${p.symbol} ${p.program}`))).toEqual(new Set(["google.golang.org/grpc.newClientStream grpc_client_return"]));
      }
      // The status code's offset: genproto's layout (not in offsets.json), 40.
      expect(client!.consts["spb_status_code_off"]).toBe(SPB_STATUS_CODE_DEFAULT);
      // How ServerStream/ClientStream hold the Stream: no wrapper before 1.69, by pointer in 1.69 …
      // 1.76, by value from 1.77.
      const embed = v.dir === "grpc-1.72" ? 1 : 0;
      expect([server!.consts["server_stream_embed"], client!.consts["client_stream_embed"]]).toEqual([embed, embed]);
    }, 300_000);
  }
});
