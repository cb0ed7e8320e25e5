/** @module tests/unit/export/otlp-grpc — gRPC framing, status mapping, RetryInfo, and the OTLP/gRPC exporter against a local HTTP/2 server. */
import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import {
  GrpcCode,
  GrpcTransport,
  OtlpGrpcExporter,
  TRACE_EXPORT_PATH,
  classifyGrpcResponse,
  classifyGrpcStatus,
  decodeGrpcMessage,
  grpcFrame,
  grpcMetadata,
  grpcTimeoutHeader,
  httpStatusToGrpc,
  parseRetryInfo,
  readGrpcFrames,
  rstCodeToGrpc,
  type OtlpGrpcExporterConfig,
} from "../../../src/export/otlp-grpc.ts";
import { createOtlpExporter } from "../../../src/export/create.ts";
import { OtlpHttpExporter } from "../../../src/export/otlp-http.ts";
import { encodeTraceRequest } from "../../../src/export/otlp.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { setLogSink } from "../../../src/log.ts";
import { sampleHeader, tempDir } from "../capture/fixture.ts";
import { makeSpans, waitFor } from "./collector.ts";
import { pbBytes, pbVarint, retryInfoDetails, startGrpcServer, type TestGrpcServer } from "./grpc-server.ts";

const resource = { "service.name": "shop", "telemetry.sdk.name": "beetrace" };
const fastRetry = { initialBackoffMs: 10, maxBackoffMs: 40, maxAttempts: 3, jitter: 0 };

let servers: TestGrpcServer[] = [];
let logs: string[] = [];
afterEach(async () => {
  for (const s of servers) await s.stop();
  servers = [];
  logs = [];
  setLogSink((l) => process.stderr.write(l + "\n"));
});
async function server(respond?: TestGrpcServer["respond"]): Promise<TestGrpcServer> {
  const s = await startGrpcServer(respond);
  servers.push(s);
  return s;
}
function captureLogs(): void {
  setLogSink((l) => logs.push(l));
}
function exporter(s: { endpoint: string }, extra: Partial<OtlpGrpcExporterConfig> = {}): OtlpGrpcExporter {
  return new OtlpGrpcExporter({ endpoint: s.endpoint, resource, batchDelayMs: 20, retry: fastRetry, ...extra });
}
/** ExportTraceServiceResponse{partial_success{rejected_spans, error_message}} */
function partialResponse(rejected: number, message: string): Uint8Array {
  return new Uint8Array(pbBytes(1, [...pbVarint(1, rejected), ...pbBytes(2, message)]));
}

describe("gRPC framing", () => {
  test("Length-Prefixed-Message: flag byte, u32 big-endian length, message", () => {
    expect([...grpcFrame(new Uint8Array([7, 8, 9]), false)]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
    expect([...grpcFrame(new Uint8Array(0), true)]).toEqual([1, 0, 0, 0, 0]);
    const big = new Uint8Array(0x010203);
    expect([...grpcFrame(big, false).subarray(0, 5)]).toEqual([0, 0x00, 0x01, 0x02, 0x03]);
  });

  test("readGrpcFrames: round trip, several messages, and malformed bodies as reasons", () => {
    const a = grpcFrame(new Uint8Array([1, 2]), false);
    const b = grpcFrame(new Uint8Array([3]), true);
    const both = new Uint8Array([...a, ...b]);
    const r = readGrpcFrames(both);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.messages.map((m) => [m.compressed, [...m.message]])).toEqual([
      [false, [1, 2]],
      [true, [3]],
    ]);
    expect(readGrpcFrames(new Uint8Array(0))).toEqual({ ok: true, messages: [] });
    expect(readGrpcFrames(both.subarray(0, 3))).toEqual({ ok: false, reason: "truncated gRPC message header at byte 0 of 3" });
    expect(readGrpcFrames(both.subarray(0, 6))).toEqual({ ok: false, reason: "gRPC message at byte 0 declares 2 bytes but 1 follow" });
    expect(readGrpcFrames(new Uint8Array([2, 0, 0, 0, 0]))).toEqual({ ok: false, reason: "gRPC message at byte 0 has compressed flag 2 (only 0 and 1 exist)" });
    // A length near 2^32 must not be trusted.
    expect(readGrpcFrames(new Uint8Array([0, 0xff, 0xff, 0xff, 0xff, 1])).ok).toBe(false);
  });

  test("grpc-timeout: at most 8 digits, milliseconds when they fit", () => {
    expect(grpcTimeoutHeader(10_000)).toBe("10000m");
    expect(grpcTimeoutHeader(0.2)).toBe("1m");
    expect(grpcTimeoutHeader(99_999_999)).toBe("99999999m");
    expect(grpcTimeoutHeader(100_000_000)).toBe("100000S");
    expect(grpcTimeoutHeader(1e15)).toMatch(/^\d{1,8}H$/);
  });

  test("grpc-message is percent-decoded; a broken escape keeps the raw text", () => {
    expect(decodeGrpcMessage("no%20such%20tenant%3A%20%C3%A9")).toBe("no such tenant: é");
    expect(decodeGrpcMessage("100%")).toBe("100%");
    expect(decodeGrpcMessage(undefined)).toBe("");
  });

  test("metadata: lowercased; reserved and invalid names are left out with a warning", () => {
    captureLogs();
    expect(grpcMetadata({ Authorization: "Bearer t", "X-Team": "a", "content-type": "x", "grpc-timeout": "1S", te: "x", ":path": "/", "bad name": "v", "x-nl": "a\nb" })).toEqual({
      authorization: "Bearer t",
      "x-team": "a",
    });
    expect(logs.filter((l) => l.includes("cannot be sent as gRPC metadata"))).toHaveLength(6);
  });
});

describe("gRPC status mapping", () => {
  test("OTLP spec retryable codes, exactly; RESOURCE_EXHAUSTED only with RetryInfo", () => {
    const retryable = [];
    for (let code = 1; code <= 16; code++) if (classifyGrpcStatus(code, "").kind === "retryable") retryable.push(code);
    expect(retryable).toEqual([GrpcCode.CANCELLED, GrpcCode.DEADLINE_EXCEEDED, GrpcCode.ABORTED, GrpcCode.OUT_OF_RANGE, GrpcCode.UNAVAILABLE, GrpcCode.DATA_LOSS]);
    expect(classifyGrpcStatus(GrpcCode.RESOURCE_EXHAUSTED, "quota")).toEqual({ kind: "permanent", reason: "gRPC RESOURCE_EXHAUSTED (8): quota" });
    expect(classifyGrpcStatus(GrpcCode.RESOURCE_EXHAUSTED, "quota", {})).toEqual({ kind: "retryable", reason: "gRPC RESOURCE_EXHAUSTED (8): quota" });
    expect(classifyGrpcStatus(GrpcCode.RESOURCE_EXHAUSTED, "", { delayMs: 250 })).toEqual({ kind: "retryable", reason: "gRPC RESOURCE_EXHAUSTED (8)", retryAfterMs: 250 });
    expect(classifyGrpcStatus(GrpcCode.UNAVAILABLE, "", { delayMs: 40 })).toMatchObject({ kind: "retryable", retryAfterMs: 40 });
    expect(classifyGrpcStatus(99, "x")).toEqual({ kind: "permanent", reason: "gRPC code (99): x" });
  });

  test("HTTP status without grpc-status, and RST_STREAM codes (gRPC's mapping tables)", () => {
    expect([400, 401, 403, 404, 429, 502, 503, 504, 500, 200].map(httpStatusToGrpc)).toEqual([13, 16, 7, 12, 14, 14, 14, 14, 2, 2]);
    expect([0, 1, 2, 7, 8, 11, 12].map(rstCodeToGrpc)).toEqual([13, 13, 13, 14, 1, 8, 7]);
  });

  test("RetryInfo from grpc-status-details-bin: grpc-go's bytes, hand-built ones, and junk", () => {
    // Sent by tests/fixtures/go/otlp-grpc-receiver (grpc-go, status.WithDetails) for -retry-delay-ms 1500.
    expect(parseRetryInfo("CA4SF3NjcmlwdGVkIGZhaWx1cmUgMSBvZiAxGjYKKHR5cGUuZ29vZ2xlYXBpcy5jb20vZ29vZ2xlLnJwYy5SZXRyeUluZm8SCgoICAEQgMq17gE")).toEqual({ delayMs: 1500 });
    expect(parseRetryInfo(retryInfoDetails(14, { nanos: 300_000_000 }))).toEqual({ delayMs: 300 });
    expect(parseRetryInfo(retryInfoDetails(14, { seconds: 2 }) + "==".slice(0, 0))).toEqual({ delayMs: 2000 });
    expect(parseRetryInfo(retryInfoDetails(8, undefined))).toEqual({});
    expect(parseRetryInfo(retryInfoDetails(14, { seconds: -5 }))).toEqual({ delayMs: 0 });
    expect(parseRetryInfo(retryInfoDetails(14, { seconds: 10 ** 12 }))).toEqual({ delayMs: 3_600_000 });
    // Padded base64 is accepted too.
    const padded = Buffer.from(Buffer.from(retryInfoDetails(14, { seconds: 1 }), "base64")).toString("base64");
    expect(parseRetryInfo(padded)).toEqual({ delayMs: 1000 });
    // Other detail types, truncation, non-base64: no RetryInfo, never a throw.
    const other = Buffer.from([...pbVarint(1, 14), ...pbBytes(3, [...pbBytes(1, "type.googleapis.com/google.rpc.DebugInfo"), ...pbBytes(2, [])])]).toString("base64");
    expect(parseRetryInfo(other)).toBeUndefined();
    const full = Buffer.from(retryInfoDetails(14, { seconds: 1 }), "base64");
    for (let n = 0; n < full.length; n++) expect(() => parseRetryInfo(full.subarray(0, n).toString("base64"))).not.toThrow();
    expect(parseRetryInfo(full.subarray(0, full.length - 3).toString("base64"))).toBeUndefined();
    expect(parseRetryInfo("not base64!")).toBeUndefined();
    expect(parseRetryInfo(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).toString("base64"))).toBeUndefined();
    expect(parseRetryInfo(undefined)).toBeUndefined();
  });

  test("a whole response: trailers, trailers-only, plain HTTP, resets, connection failures", () => {
    const ok = { ":status": 200, "content-type": "application/grpc" };
    expect(classifyGrpcResponse({ headers: ok, trailers: { "grpc-status": "0" }, body: grpcFrame(new Uint8Array(0), false) })).toEqual({ kind: "ok" });
    // Partial success in the response message, plain and gzip-compressed.
    const pr = partialResponse(2, "dup ids");
    expect(classifyGrpcResponse({ headers: ok, trailers: { "grpc-status": "0" }, body: grpcFrame(pr, false) })).toEqual({ kind: "ok", partial: { rejected: 2, message: "dup ids" } });
    expect(classifyGrpcResponse({ headers: { ...ok, "grpc-encoding": "gzip" }, trailers: { "grpc-status": "0" }, body: grpcFrame(gzipSync(pr), true) })).toEqual({
      kind: "ok",
      partial: { rejected: 2, message: "dup ids" },
    });
    // A garbled OK body is still OK (the status decides); partial success is just not read.
    expect(classifyGrpcResponse({ headers: ok, trailers: { "grpc-status": "0" }, body: new Uint8Array([0, 0, 0, 9, 1]) })).toEqual({ kind: "ok" });
    // Trailers-only.
    expect(classifyGrpcResponse({ headers: { ...ok, "grpc-status": "14", "grpc-message": "draining%21" }, body: new Uint8Array(0) })).toEqual({ kind: "retryable", reason: "gRPC UNAVAILABLE (14): draining!" });
    expect(classifyGrpcResponse({ headers: { ...ok, "grpc-status": "16" }, body: new Uint8Array(0) })).toEqual({ kind: "permanent", reason: "gRPC UNAUTHENTICATED (16)" });
    expect(classifyGrpcResponse({ headers: { ...ok, "grpc-status": "OK" }, body: new Uint8Array(0) }).kind).toBe("permanent");
    // A proxy or a non-gRPC server answered.
    expect(classifyGrpcResponse({ headers: { ":status": 503, "content-type": "text/html" }, body: new Uint8Array(0) }).kind).toBe("retryable");
    expect(classifyGrpcResponse({ headers: { ":status": 404 }, body: new Uint8Array(0) })).toMatchObject({ kind: "permanent", reason: expect.stringContaining("UNIMPLEMENTED (12): HTTP 404") });
    expect(classifyGrpcResponse({ headers: { ":status": 200, "content-type": "text/html" }, body: new Uint8Array(0) })).toMatchObject({ kind: "permanent", reason: expect.stringContaining("UNKNOWN") });
    expect(classifyGrpcResponse({ headers: ok, body: new Uint8Array(0) })).toMatchObject({ kind: "permanent", reason: expect.stringContaining("INTERNAL") });
    // Server resets (node: ERR_HTTP2_STREAM_ERROR) map by code; our cancel after a connection failure is UNAVAILABLE.
    const peer = Object.assign(new Error("Stream closed with error code NGHTTP2_REFUSED_STREAM"), { code: "ERR_HTTP2_STREAM_ERROR" });
    expect(classifyGrpcResponse({ rstCode: 7, error: peer, body: new Uint8Array(0) }).kind).toBe("retryable");
    expect(classifyGrpcResponse({ rstCode: 2, error: { ...peer, code: "ERR_HTTP2_STREAM_ERROR" }, body: new Uint8Array(0) })).toMatchObject({ kind: "permanent", reason: expect.stringContaining("INTERNAL") });
    const refused = Object.assign(new Error("The pending stream has been canceled (caused by: connect ECONNREFUSED 127.0.0.1:1)"), { code: "ERR_HTTP2_STREAM_CANCEL" });
    expect(classifyGrpcResponse({ rstCode: 2, error: refused, body: new Uint8Array(0) })).toMatchObject({ kind: "retryable", reason: expect.stringContaining("UNAVAILABLE (14)") });
    expect(classifyGrpcResponse({ body: new Uint8Array(0) }).kind).toBe("retryable");
    // Headers arrived, then the connection died before the status.
    expect(classifyGrpcResponse({ headers: ok, error: new Error("socket hang up"), body: new Uint8Array(0) })).toMatchObject({ kind: "retryable", reason: expect.stringContaining("cut off") });
  });
});

describe("OtlpGrpcExporter against a local HTTP/2 server", () => {
  test("one call per batch on one connection: path, headers, metadata, the serializer's exact bytes", async () => {
    const s = await server();
    const spans = makeSpans(7);
    const e = exporter(s, { maxBatchSize: 3, headers: { Authorization: "Bearer t0ken", "x-tenant": "a=b" }, timeoutMs: 4000 });
    for (const sp of spans) e.add(sp);
    expect(await e.shutdown(5000)).toEqual({ added: 7, sent: 7, spilled: 0, dropped: 0, rejected: 0 });
    expect(s.calls).toHaveLength(3);
    expect(s.sessions).toBe(1);
    expect(e.transport.connections).toBe(1);
    const h = s.calls[0]!.headers;
    expect([h[":method"], h[":path"], h["content-type"], h.te, h["grpc-encoding"]]).toEqual(["POST", TRACE_EXPORT_PATH, "application/grpc", "trailers", undefined]);
    expect(h["grpc-timeout"]).toMatch(/^\d+m$/);
    expect(Number(String(h["grpc-timeout"]).slice(0, -1))).toBeLessThanOrEqual(4000);
    expect([h.authorization, h["x-tenant"]]).toEqual(["Bearer t0ken", "a=b"]);
    expect(h["user-agent"]).toMatch(/^beetrace\//);
    expect(s.calls.map((c) => c.messages.length)).toEqual([1, 1, 1]);
    const expected = [spans.slice(0, 3), spans.slice(3, 6), spans.slice(6)].map((b) => Buffer.from(encodeTraceRequest(b, resource, "protobuf")));
    expect(s.calls.map((c) => Buffer.from(c.messages[0]!).equals(expected[s.calls.indexOf(c)]!))).toEqual([true, true, true]);
  });

  test("gzip: grpc-encoding gzip and the compressed flag; the server's partial success is counted", async () => {
    captureLogs();
    const s = await server(() => ({ body: partialResponse(1, "dup id") }));
    const spans = makeSpans(4);
    const e = exporter(s, { compression: "gzip" });
    for (const sp of spans) e.add(sp);
    expect(await e.shutdown(5000)).toEqual({ added: 4, sent: 4, spilled: 0, dropped: 0, rejected: 1 });
    const c = s.calls[0]!;
    expect(c.headers["grpc-encoding"]).toBe("gzip");
    expect(c.compressedFlags).toEqual([true]);
    expect(Buffer.from(c.messages[0]!).equals(Buffer.from(encodeTraceRequest(spans, resource, "protobuf")))).toBe(true);
    expect(logs).toContain("warning: OTLP collector accepted the request but rejected 1 of 4 spans: dup id");
  });

  test("UNAVAILABLE with RetryInfo: the retry waits exactly the server's delay, not our backoff", async () => {
    const s = await server((_c, i) => (i < 2 ? { code: 14, message: "overloaded", details: retryInfoDetails(14, { nanos: 300_000_000 }), trailersOnly: true } : {}));
    const e = exporter(s, { batchDelayMs: 0 });
    for (const sp of makeSpans(3)) e.add(sp);
    await waitFor(() => s.calls.length === 3, "two retries");
    const gaps = [s.calls[1]!.at - s.calls[0]!.at, s.calls[2]!.at - s.calls[1]!.at];
    // Our backoff would be 10 ms then 20 ms.
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(290);
    expect(await e.shutdown(5000)).toMatchObject({ sent: 3, dropped: 0 });
  });

  test("RESOURCE_EXHAUSTED without RetryInfo is permanent; with RetryInfo it is retried", async () => {
    captureLogs();
    const s1 = await server(() => ({ code: 8, message: "too big" }));
    const e1 = exporter(s1);
    for (const sp of makeSpans(2)) e1.add(sp);
    expect(await e1.shutdown(5000)).toEqual({ added: 2, sent: 0, spilled: 0, dropped: 2, rejected: 0 });
    expect(s1.calls).toHaveLength(1);
    expect(logs.some((l) => l.includes("refused 2 spans: gRPC RESOURCE_EXHAUSTED (8): too big"))).toBe(true);

    const s2 = await server((_c, i) => (i === 0 ? { code: 8, details: retryInfoDetails(8, { nanos: 50_000_000 }) } : {}));
    const e2 = exporter(s2);
    for (const sp of makeSpans(2)) e2.add(sp);
    expect(await e2.shutdown(5000)).toMatchObject({ sent: 2, dropped: 0 });
    expect(s2.calls).toHaveLength(2);
  });

  test("UNAUTHENTICATED: one attempt, spans kept in the spill file, resending stops", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const s = await server(() => ({ code: 16, message: "bad token", trailersOnly: true }));
    const e = exporter(s, { spill: { path: spillPath, header: sampleHeader() } });
    for (const sp of makeSpans(3)) e.add(sp);
    expect(await e.shutdown(5000)).toEqual({ added: 3, sent: 0, spilled: 3, dropped: 0, rejected: 0, spillFile: spillPath });
    expect(s.calls).toHaveLength(1);
    expect(readCaptureFile(spillPath).records.filter((r) => r.type === "span")).toHaveLength(3);
    fs.rmSync(dir, { recursive: true });
  });

  test("GOAWAY: the next call opens a new connection; nothing is lost", async () => {
    const s = await server((_c, i) => (i === 1 || i === 3 ? { kind: "goaway" } : {}));
    const e = exporter(s, { maxBatchSize: 2, batchDelayMs: 0 });
    const spans = makeSpans(10);
    for (const sp of spans) e.add(sp);
    expect(await e.shutdown(5000)).toEqual({ added: 10, sent: 10, spilled: 0, dropped: 0, rejected: 0 });
    expect(s.calls).toHaveLength(5);
    expect(e.transport.connections).toBe(3);
    expect(s.sessions).toBe(3);
  });

  test("no answer: DEADLINE_EXCEEDED after the per-call timeout, retried; shutdown stays bounded", async () => {
    captureLogs();
    const s = await server(() => ({ kind: "never" }));
    const e = exporter(s, { timeoutMs: 150, batchDelayMs: 0, retry: { ...fastRetry, maxAttempts: 2 } });
    for (const sp of makeSpans(2)) e.add(sp);
    await waitFor(() => s.calls.length === 2, "a retry after the first call timed out");
    expect(s.calls[1]!.at - s.calls[0]!.at).toBeGreaterThanOrEqual(150);
    expect(s.calls[0]!.headers["grpc-timeout"]).toBe("150m");
    const t0 = Date.now();
    const r = await e.shutdown(300);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toMatchObject({ added: 2, sent: 0 });
  });

  test("a connection that accepts but never answers: DEADLINE_EXCEEDED, and the next call reconnects", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((sock) => {
      sockets.push(sock);
      sock.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    const port = (silent.address() as net.AddressInfo).port;
    const t = new GrpcTransport({ endpoint: `http://127.0.0.1:${port}` });
    const opts = { compressed: false, timeoutMs: 150, signal: undefined };
    expect(await t.send(new Uint8Array(1), opts)).toEqual({ kind: "retryable", reason: "gRPC DEADLINE_EXCEEDED (4): no response within 150 ms" });
    expect(await t.send(new Uint8Array(1), opts)).toMatchObject({ kind: "retryable" });
    expect(t.connections).toBe(2);
    await waitFor(() => sockets.length === 2, "two TCP connections at the silent server");
    t.close();
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  test("a non-gRPC HTTP/2 answer (503 from a proxy) is retried as UNAVAILABLE", async () => {
    const s = await server((_c, i) => (i === 0 ? { kind: "http", status: 503 } : {}));
    const e = exporter(s);
    for (const sp of makeSpans(1)) e.add(sp);
    expect(await e.shutdown(5000)).toMatchObject({ sent: 1 });
    expect(s.calls).toHaveLength(2);
  });

  test("collector down, then up on the same port: spill, probe, resend; reconnects", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const probe = await startGrpcServer();
    const port = probe.port;
    await probe.stop();
    const e = new OtlpGrpcExporter({
      endpoint: `http://127.0.0.1:${port}`,
      resource,
      maxBatchSize: 10,
      batchDelayMs: 10,
      retry: { ...fastRetry, maxAttempts: 2, maxBackoffMs: 50 },
      spill: { path: spillPath, header: sampleHeader() },
    });
    const first = makeSpans(25);
    for (const sp of first) e.add(sp);
    await waitFor(() => e.offline && e.counts().spilled === 25, "all 25 spans spilled while the collector is down");
    expect(logs.some((l) => l.includes("unreachable (gRPC UNAVAILABLE (14)"))).toBe(true);
    const up = await startGrpcServer(undefined, port);
    servers.push(up);
    await waitFor(() => e.counts().sent === 25, "the spill resent after the collector came back");
    expect(await e.shutdown(5000)).toEqual({ added: 25, sent: 25, spilled: 0, dropped: 0, rejected: 0 });
    expect(up.calls).toHaveLength(3);
    expect(fs.existsSync(spillPath)).toBe(false);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("createOtlpExporter", () => {
  test("picks the transport by protocol", () => {
    const g = createOtlpExporter({ endpoint: "http://127.0.0.1:1", protocol: "grpc", resource });
    expect(g).toBeInstanceOf(OtlpGrpcExporter);
    expect(g.endpoint).toBe("http://127.0.0.1:1");
    expect(createOtlpExporter({ endpoint: "http://127.0.0.1:1/v1/traces", resource })).toBeInstanceOf(OtlpHttpExporter);
    expect(createOtlpExporter({ endpoint: "http://127.0.0.1:1/v1/traces", protocol: "http/json", resource })).toBeInstanceOf(OtlpHttpExporter);
  });

  test("a closed transport refuses to send", async () => {
    const t = new GrpcTransport({ endpoint: "http://127.0.0.1:1" });
    t.close();
    expect(await t.send(new Uint8Array(0), { compressed: false, timeoutMs: 100, signal: undefined })).toMatchObject({ kind: "permanent" });
  });
});
