/** @module tests/unit/export/otlp-http — the streaming OTLP/HTTP exporter against a local HTTP endpoint. */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { OtlpHttpExporter, parseRetryAfter, type OtlpHttpExporterConfig } from "../../../src/export/otlp-http.ts";
import { encodeTraceRequest } from "../../../src/export/otlp.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { sampleHeader, tempDir } from "../capture/fixture.ts";
import { jsonSpanIds, makeSpans, waitFor } from "./collector.ts";
import { collectorsPerTest } from "./per-test.ts";

const resource = { "service.name": "shop", "telemetry.sdk.name": "beetrace" };
const fastRetry = { initialBackoffMs: 10, maxBackoffMs: 40, maxAttempts: 3, jitter: 0 };

const { collector, captureLogs, logs } = collectorsPerTest();
function exporter(c: { url: string }, extra: Partial<OtlpHttpExporterConfig> = {}): OtlpHttpExporter {
  return new OtlpHttpExporter({ endpoint: c.url, resource, batchDelayMs: 20, retry: fastRetry, ...extra });
}

describe("OtlpHttpExporter encoding", () => {
  test("protobuf by default: the exact serializer bytes, content type, user headers", async () => {
    const c = collector();
    const spans = makeSpans(3);
    const e = exporter(c, { headers: { authorization: "Bearer t0ken", "x-tenant": "a=b" } });
    for (const s of spans) e.add(s);
    const r = await e.shutdown(5000);
    expect(r).toEqual({ added: 3, sent: 3, spilled: 0, dropped: 0, rejected: 0 });
    expect(c.requests).toHaveLength(1);
    const req = c.requests[0]!;
    expect(req.headers.get("content-type")).toBe("application/x-protobuf");
    expect(req.headers.get("content-encoding")).toBeNull();
    expect(req.headers.get("authorization")).toBe("Bearer t0ken");
    expect(req.headers.get("x-tenant")).toBe("a=b");
    expect(req.headers.get("user-agent")).toMatch(/^beetrace\//);
    expect(Buffer.from(req.body).equals(Buffer.from(encodeTraceRequest(spans, resource, "protobuf")))).toBe(true);
  });

  test("http/json with gzip: Content-Encoding gzip, body is the OTLP/JSON request", async () => {
    const c = collector();
    const spans = makeSpans(4);
    const e = exporter(c, { protocol: "http/json", compression: "gzip" });
    for (const s of spans) e.add(s);
    await e.shutdown(5000);
    const req = c.requests[0]!;
    expect(req.headers.get("content-type")).toBe("application/json");
    expect(req.headers.get("content-encoding")).toBe("gzip");
    expect(req.raw.byteLength).toBeLessThan(req.body.byteLength);
    expect(new TextDecoder().decode(req.body)).toBe(new TextDecoder().decode(encodeTraceRequest(spans, resource, "json")));
    expect(jsonSpanIds(req)).toEqual(spans.map((s) => s.spanId));
  });

  test("batches: full batches go at once, the partial one after batchDelayMs", async () => {
    const c = collector();
    const e = exporter(c, { protocol: "http/json", maxBatchSize: 3, batchDelayMs: 150 });
    const t0 = Date.now();
    for (const s of makeSpans(7)) e.add(s);
    await waitFor(() => c.requests.length === 3, "three requests");
    expect(c.requests.map((r) => jsonSpanIds(r).length)).toEqual([3, 3, 1]);
    // The last span waited for the delay timer, not for a flush.
    expect(c.requests[2]!.at - t0).toBeGreaterThanOrEqual(140);
    expect(c.requests[1]!.at - t0).toBeLessThan(140);
    expect(await e.shutdown(1000)).toMatchObject({ added: 7, sent: 7 });
  });
});

describe("OtlpHttpExporter failures", () => {
  test("429 with Retry-After: 1 waits a full second before retrying", async () => {
    const c = collector((_r, i) => (i === 0 ? new Response("slow down", { status: 429, headers: { "Retry-After": "1" } }) : new Response(null, { status: 200 })));
    const e = exporter(c);
    for (const s of makeSpans(2)) e.add(s);
    expect(await e.shutdown(10_000)).toMatchObject({ sent: 2, spilled: 0, dropped: 0 });
    expect(c.requests).toHaveLength(2);
    // Our own backoff would be 10 ms: the gap is the server's Retry-After.
    expect(c.requests[1]!.at - c.requests[0]!.at).toBeGreaterThanOrEqual(990);
  });

  test("503 with an HTTP-date Retry-After waits until that date", async () => {
    let until = 0;
    const c = collector((_r, i) => {
      if (i > 0) return new Response(null, { status: 200 });
      // HTTP-dates have 1 s resolution: 2 s ahead means a wait of 1..2 s.
      const at = new Date(Date.now() + 2000);
      until = Math.floor(at.getTime() / 1000) * 1000;
      return new Response(null, { status: 503, headers: { "Retry-After": at.toUTCString() } });
    });
    const e = exporter(c);
    e.add(makeSpans(1)[0]!);
    await e.shutdown(10_000);
    expect(c.requests).toHaveLength(2);
    expect(c.requests[1]!.at).toBeGreaterThanOrEqual(until - 5);
    expect(c.requests[1]!.at - c.requests[0]!.at).toBeGreaterThanOrEqual(900);
  });

  test("502 and 504 are retried with backoff until one succeeds", async () => {
    const c = collector((_r, i) => new Response(null, { status: i === 0 ? 502 : i === 1 ? 504 : 200 }));
    const e = exporter(c);
    for (const s of makeSpans(5)) e.add(s);
    expect(await e.shutdown(5000)).toMatchObject({ added: 5, sent: 5, spilled: 0, dropped: 0 });
    expect(c.requests).toHaveLength(3);
  });

  test("permanent 400: one attempt, no retry; spans kept in the spill file, later batches still sent", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const c = collector((_r, i) =>
      i === 0 ? Response.json({ code: 3, message: "span name too long" }, { status: 400 }) : new Response(null, { status: 200 }),
    );
    const e = exporter(c, { protocol: "http/json", maxBatchSize: 2, spill: { path: spillPath, header: sampleHeader() } });
    const spans = makeSpans(4);
    for (const s of spans) e.add(s);
    const r = await e.shutdown(5000);
    expect(r).toEqual({ added: 4, sent: 2, spilled: 2, dropped: 0, rejected: 0, spillFile: spillPath });
    expect(c.requests).toHaveLength(2); // not retried, and not resent from the spill
    expect(jsonSpanIds(c.requests[1]!)).toEqual([spans[2]!.spanId, spans[3]!.spanId]);
    const kept = readCaptureFile(spillPath).records.filter((x) => x.type === "span");
    expect(kept.map((x) => (x.type === "span" ? x.spanId : ""))).toEqual([spans[0]!.spanId, spans[1]!.spanId]);
    expect(logs.some((l) => l.includes("HTTP 400: span name too long"))).toBe(true);
    fs.rmSync(dir, { recursive: true });
  });

  test("permanent 401 without a spill file: dropped and counted", async () => {
    captureLogs();
    const c = collector(() => new Response("missing token", { status: 401 }));
    const e = exporter(c);
    for (const s of makeSpans(3)) e.add(s);
    expect(await e.shutdown(5000)).toEqual({ added: 3, sent: 0, spilled: 0, dropped: 3, rejected: 0 });
    expect(c.requests).toHaveLength(1);
  });

  test("collector down, then up: spans spill, are resent from the file, none lost or sent twice", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    // Reserve a port, then close it: connections are refused until we listen there again.
    const probe = collector();
    const port = probe.port;
    probe.stop();
    const url = `http://127.0.0.1:${port}/v1/traces`;
    const e = new OtlpHttpExporter({
      endpoint: url,
      resource,
      protocol: "http/json",
      maxBatchSize: 10,
      batchDelayMs: 10,
      retry: { ...fastRetry, maxAttempts: 2, maxBackoffMs: 50 },
      spill: { path: spillPath, header: sampleHeader() },
    });
    const first = makeSpans(25);
    for (const s of first) e.add(s);
    await waitFor(() => e.offline && e.counts().spilled === 25, "all 25 spans spilled while the collector is down");
    expect(fs.existsSync(spillPath)).toBe(true);
    // More spans while offline go straight to the spill file.
    const second = makeSpans(12, 25);
    for (const s of second) e.add(s);
    expect(e.counts()).toMatchObject({ added: 37, sent: 0, spilled: 37, dropped: 0, inMemory: 0 });

    const up = collector(undefined, port);
    await waitFor(() => e.counts().sent === 37, "the spill resent after the collector came back");
    const third = makeSpans(5, 37);
    for (const s of third) e.add(s);
    const r = await e.shutdown(5000);
    expect(r).toEqual({ added: 42, sent: 42, spilled: 0, dropped: 0, rejected: 0 });
    const ids = up.requests.flatMap(jsonSpanIds);
    expect(ids.length).toBe(42);
    expect(new Set(ids).size).toBe(42);
    expect(new Set(ids)).toEqual(new Set([...first, ...second, ...third].map((s) => s.spanId)));
    // Fully sent: the spill file and its cursor are gone.
    expect(fs.existsSync(spillPath)).toBe(false);
    expect(fs.existsSync(`${spillPath}.sent`)).toBe(false);
    expect(logs.some((l) => l.includes("unreachable"))).toBe(true);
    expect(logs.some((l) => l.includes("reachable again"))).toBe(true);
    fs.rmSync(dir, { recursive: true });
  });

  test("shutdown is bounded when the collector never answers; unsent spans stay on disk", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const c = collector(() => new Promise<Response>(() => {}));
    const e = exporter(c, { timeoutMs: 60_000, spill: { path: spillPath, header: sampleHeader() } });
    for (const s of makeSpans(6)) e.add(s);
    const t0 = Date.now();
    const r = await e.shutdown(400);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(2000);
    expect(r).toEqual({ added: 6, sent: 0, spilled: 6, dropped: 0, rejected: 0, spillFile: spillPath });
    expect(readCaptureFile(spillPath).records.filter((x) => x.type === "span")).toHaveLength(6);
    fs.rmSync(dir, { recursive: true });
  });

  test("shutdown cuts short a long backoff that began before it", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const c = collector(() => new Response(null, { status: 503 }));
    const e = exporter(c, { batchDelayMs: 0, retry: { initialBackoffMs: 20_000, maxAttempts: 5, jitter: 0 }, spill: { path: spillPath, header: sampleHeader() } });
    for (const s of makeSpans(3)) e.add(s);
    await waitFor(() => c.requests.length === 1, "the first attempt");
    const t0 = Date.now();
    const r = await e.shutdown(300);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toEqual({ added: 3, sent: 0, spilled: 3, dropped: 0, rejected: 0, spillFile: spillPath });
    fs.rmSync(dir, { recursive: true });
  });

  test("a full queue spills the overflow and sends it later", async () => {
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const c = collector();
    const e = exporter(c, { protocol: "http/json", maxQueue: 5, maxBatchSize: 100, batchDelayMs: 10_000, spill: { path: spillPath, header: sampleHeader() } });
    for (const s of makeSpans(12)) e.add(s);
    expect(e.counts()).toMatchObject({ added: 12, spilled: 7, inMemory: 5 });
    expect(await e.shutdown(5000)).toEqual({ added: 12, sent: 12, spilled: 0, dropped: 0, rejected: 0 });
    expect(new Set(c.requests.flatMap(jsonSpanIds)).size).toBe(12);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("OtlpHttpExporter partial success", () => {
  test("JSON partialSuccess (int64 as a string) is logged and counted", async () => {
    captureLogs();
    const c = collector(() => Response.json({ partialSuccess: { rejectedSpans: "2", errorMessage: "attribute too long" } }));
    const e = exporter(c, { protocol: "http/json" });
    for (const s of makeSpans(5)) e.add(s);
    expect(await e.shutdown(5000)).toEqual({ added: 5, sent: 5, spilled: 0, dropped: 0, rejected: 2 });
    expect(logs).toContain("warning: OTLP collector accepted the request but rejected 2 of 5 spans: attribute too long");
  });

  test("protobuf ExportTraceServiceResponse.partial_success is decoded by the transformer", async () => {
    captureLogs();
    const msg = Buffer.from("dup id");
    // partial_success (field 1, bytes) { rejected_spans (field 1, varint) = 1, error_message (field 2) }
    const inner = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, msg.length]), msg]);
    const body = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
    const c = collector(() => new Response(body, { headers: { "Content-Type": "application/x-protobuf" } }));
    const e = exporter(c);
    for (const s of makeSpans(3)) e.add(s);
    expect(await e.shutdown(5000)).toMatchObject({ sent: 3, rejected: 1 });
    expect(logs).toContain("warning: OTLP collector accepted the request but rejected 1 of 3 spans: dup id");
  });
});

describe("parseRetryAfter", () => {
  test("delay-seconds, HTTP-date, and junk", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("7", now)).toBe(7000);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
