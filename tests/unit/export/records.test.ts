/**
 * @module tests/unit/export/records — the exporter's record queue (addRecord): records decoded
 * only when their batch is encoded, ids written from the record bytes, and the same request
 * bytes, spill contents and accounting as when the decoded spans are added.
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { OtlpHttpExporter, type OtlpHttpExporterConfig } from "../../../src/export/otlp-http.ts";
import { encodeTraceRequest } from "../../../src/export/otlp.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { SPAN_ID_OFFSETS } from "../../../src/probes/common/header.ts";
import type { Span } from "../../../src/spans/model.ts";
import { sampleHeader, tempDir } from "../capture/fixture.ts";
import { serverRecord, typicalServer } from "../capture/records.ts";
import { jsonSpanIds, waitFor } from "./collector.ts";
import { collectorsPerTest } from "./per-test.ts";

const resource = { "service.name": "shop", "telemetry.sdk.name": "beetrace" };
const fastRetry = { initialBackoffMs: 10, maxBackoffMs: 40, maxAttempts: 2, jitter: 0 };
const EPOCH_OFFSET = 1_700_000_000_000_000_000n;
const toEpoch = (ns: bigint) => ns + EPOCH_OFFSET;

const { collector, captureLogs, logs } = collectorsPerTest();

/** Server records: every third one has a parent (a remote caller), the others are roots. */
function records(n: number, from = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const r = typicalServer(i);
    if (i % 3 === 0) r.parentSpanId = "c" + (i + 1).toString(16).padStart(15, "0");
    if (i % 5 === 0) r.path = "/caf\u00e9/" + i; // a non-ASCII string on the record path too
    return serverRecord(r);
  });
}

function decodedSpans(recs: Uint8Array[]): Span[] {
  const d = new SpanDecoder();
  return recs.map((r) => {
    const s = d.decode(r, toEpoch);
    if (s === undefined) throw new Error(`test record did not decode: ${d.firstInvalid}`);
    return s;
  });
}

function exporter(url: string, extra: Partial<OtlpHttpExporterConfig> = {}): { e: OtlpHttpExporter; decoder: SpanDecoder } {
  const e = new OtlpHttpExporter({ endpoint: url, resource, batchDelayMs: 20, retry: fastRetry, ...extra });
  const decoder = new SpanDecoder();
  e.decodeRecordsWith({
    decode: (bytes, offset, length, idsAsBytes) => decoder.decodeAt(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, length, { toEpoch, idsAsBytes }),
    build: (bytes, offset, length, out) => decoder.buildAt(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, length, { toEpoch }, out),
    ids: SPAN_ID_OFFSETS,
  });
  return { e, decoder };
}

describe("OTLP exporter fed records", () => {
  test("protobuf: byte-identical to the request encoded from the decoded spans (hex ids)", async () => {
    const c = collector();
    const recs = records(40);
    const { e } = exporter(c.url, { maxBatchSize: 64 });
    // The exporter copies: overwriting the caller's buffer afterwards must not change what is sent.
    for (const r of recs) {
      const ring = r.slice();
      e.addRecord(ring);
      ring.fill(0xee);
    }
    expect(await e.shutdown(5000)).toEqual({ added: 40, sent: 40, spilled: 0, dropped: 0, rejected: 0 });
    expect(c.requests).toHaveLength(1);
    const expected = encodeTraceRequest(decodedSpans(recs), resource, "protobuf");
    expect(Buffer.from(c.requests[0]!.body).equals(Buffer.from(expected))).toBe(true);
  });

  test("records and spans mixed in one batch keep their order and ids", async () => {
    const c = collector();
    const recs = records(6);
    const spans = decodedSpans(recs);
    const { e } = exporter(c.url, { maxBatchSize: 64 });
    recs.forEach((r, i) => (i % 2 === 0 ? e.addRecord(r) : e.add(spans[i]!)));
    await e.shutdown(5000);
    expect(Buffer.from(c.requests[0]!.body).equals(Buffer.from(encodeTraceRequest(spans, resource, "protobuf")))).toBe(true);
  });

  test("http/json: records are decoded with hex ids and give the same JSON", async () => {
    const c = collector();
    const recs = records(7);
    const { e } = exporter(c.url, { protocol: "http/json" });
    for (const r of recs) e.addRecord(r);
    await e.shutdown(5000);
    const spans = decodedSpans(recs);
    expect(new TextDecoder().decode(c.requests[0]!.body)).toBe(new TextDecoder().decode(encodeTraceRequest(spans, resource, "json")));
  });

  test("collector down: queued records go to the spill file as spans with their ids, and are resent", async () => {
    captureLogs();
    const dir = tempDir();
    const spillPath = path.join(dir, "spill.cbor");
    const probe = collector();
    const port = probe.port;
    probe.stop();
    const url = `http://127.0.0.1:${port}/v1/traces`;
    const { e } = exporter(url, { protocol: "http/json", maxBatchSize: 10, batchDelayMs: 10, spill: { path: spillPath, header: sampleHeader() } });
    const recs = records(25);
    for (const r of recs) e.addRecord(r);
    await waitFor(() => e.offline && e.counts().spilled === 25, "all 25 spans spilled while the collector is down");
    const spilled = () => readCaptureFile(spillPath).records.flatMap((r) => (r.type === "span" ? [r] : []));
    await waitFor(() => spilled().length === 25, "the spill file's writer flushed the 25 spans");
    const onDisk = spilled();
    const spans = decodedSpans(recs);
    // (The batch that failed is spilled after the spans queued behind it: compare in id order.)
    const ids = (list: Span[]) => list.map((s) => [s.spanId, s.traceId, s.parentSpanId]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    expect(ids(onDisk)).toEqual(ids(spans));

    const up = collector(undefined, port);
    await waitFor(() => e.counts().sent === 25, "the spill resent after the collector came back");
    expect(await e.shutdown(5000)).toEqual({ added: 25, sent: 25, spilled: 0, dropped: 0, rejected: 0 });
    expect(new Set(up.requests.flatMap(jsonSpanIds))).toEqual(new Set(spans.map((s) => s.spanId)));
    fs.rmSync(dir, { recursive: true });
  });

  test("an undecodable record is dropped and counted; the rest of its batch is sent", async () => {
    const c = collector();
    const recs = records(5);
    const bad = recs[2]!.slice();
    bad[0] = 0x7f; // an unknown record type
    bad[1] = 0x7f;
    const { e, decoder } = exporter(c.url);
    for (const r of [recs[0]!, recs[1]!, bad, recs[3]!, recs[4]!]) e.addRecord(r);
    expect(await e.shutdown(5000)).toEqual({ added: 5, sent: 4, spilled: 0, dropped: 1, rejected: 0 });
    expect(decoder.invalid).toBe(1);
    const good = decodedSpans([recs[0]!, recs[1]!, recs[3]!, recs[4]!]);
    expect(Buffer.from(c.requests[0]!.body).equals(Buffer.from(encodeTraceRequest(good, resource, "protobuf")))).toBe(true);
  });

  test("a batch of only undecodable records sends nothing", async () => {
    const c = collector();
    const bad = records(1)[0]!.slice();
    bad[0] = 0x7f;
    bad[1] = 0x7f;
    const { e } = exporter(c.url);
    e.addRecord(bad);
    expect(await e.shutdown(5000)).toEqual({ added: 1, sent: 0, spilled: 0, dropped: 1, rejected: 0 });
    expect(c.requests).toHaveLength(0);
  });

  test("addRecord without a decoder: dropped, counted, one BUG line", async () => {
    captureLogs();
    const c = collector();
    const e = new OtlpHttpExporter({ endpoint: c.url, resource, batchDelayMs: 20, retry: fastRetry });
    for (const r of records(2)) e.addRecord(r);
    expect(await e.shutdown(1000)).toEqual({ added: 2, sent: 0, spilled: 0, dropped: 2, rejected: 0 });
    expect(logs.filter((l) => l.includes("without a decoder"))).toHaveLength(1);
  });
});
