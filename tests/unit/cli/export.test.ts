/** @module tests/unit/cli/export — `beetrace export` and `convert --to otlp-proto` against a local endpoint. */
import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportCommand } from "../../../src/cli/export.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { TracerError } from "../../../src/errors.ts";
import { setLogSink } from "../../../src/log.ts";
import { cursorPath } from "../../../src/export/spill.ts";
import { toOtlpProtobuf } from "../../../src/export/otlp.ts";
import { sampleHeader, sampleSpans, tempDir, writeSampleCapture } from "../capture/fixture.ts";
import { type TestCollector, jsonSpanIds, startCollector } from "../export/collector.ts";

let c: TestCollector | undefined;
let dir = "";
afterEach(() => {
  c?.stop();
  c = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  setLogSink((l) => process.stderr.write(l + "\n"));
});

describe("beetrace export", () => {
  test("sends every span of each file; the header's resource; flags override OTEL_* env", async () => {
    setLogSink(() => {});
    dir = tempDir();
    const a = writeSampleCapture(dir, "a.cbor");
    const b = writeSampleCapture(dir, "b.cbor");
    c = startCollector();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_EXPORTER_OTLP_HEADERS: "x-env=1", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" };
    const r = await exportCommand([a, b], { otlp: c.url, protocol: "http/json", header: ["x-flag=2"], env });
    expect(r).toEqual({ files: 2, spans: 8, sent: 8, skipped: 0, failed: 0 });
    expect(c.requests).toHaveLength(2);
    for (const req of c.requests) {
      expect(req.headers.get("x-env")).toBe("1");
      expect(req.headers.get("x-flag")).toBe("2");
      // grouped by instrumentation scope in the request, so compare as sets
      expect(new Set(jsonSpanIds(req))).toEqual(new Set(sampleSpans().map((s) => s.spanId)));
      const body = JSON.parse(new TextDecoder().decode(req.body));
      expect(body.resourceSpans[0].resource.attributes).toContainEqual({ key: "service.name", value: { stringValue: "shop" } });
    }
  });

  test("a spill file's .sent sidecar: the delivered prefix is skipped", async () => {
    setLogSink(() => {});
    dir = tempDir();
    const f = writeSampleCapture(dir, "spill.cbor");
    fs.writeFileSync(cursorPath(f), JSON.stringify({ spansSent: 3 }));
    c = startCollector();
    const r = await exportCommand([f], { otlp: c.url, protocol: "http/json", env: {} });
    expect(r).toMatchObject({ spans: 1, sent: 1, skipped: 3 });
    expect(c.requests.flatMap(jsonSpanIds)).toEqual([sampleSpans()[3]!.spanId]);
  });

  test("undelivered spans fail the command with output_failed; no endpoint is a usage error", async () => {
    setLogSink(() => {});
    dir = tempDir();
    const f = writeSampleCapture(dir);
    c = startCollector(() => new Response("no", { status: 403 }));
    const err = await exportCommand([f], { otlp: c.url, env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("output_failed");
    expect((err as TracerError).message).toBe(`4 of 4 spans were not delivered to ${c.url}`);
    const noEp = await exportCommand([f], { env: {} }).catch((e) => e);
    expect((noEp as TracerError).code).toBe("usage");
    const damaged = path.join(dir, "bad.cbor");
    fs.writeFileSync(damaged, "{}");
    expect(((await exportCommand([damaged], { otlp: c.url, env: {} }).catch((e) => e)) as TracerError).code).toBe("corrupt_capture");
  });
});

describe("convert --to otlp-proto", () => {
  test("4-byte big-endian length + ExportTraceServiceRequest per batch", async () => {
    dir = tempDir();
    const f = writeSampleCapture(dir);
    const out = path.join(dir, "out.binpb");
    expect(await convertCommand(f, { to: "otlp-proto", out, batch: 3 })).toEqual({ spans: 4, lines: 2 });
    const bytes = fs.readFileSync(out);
    const spans = sampleSpans();
    const m1 = toOtlpProtobuf(spans.slice(0, 3), sampleHeader());
    const m2 = toOtlpProtobuf(spans.slice(3), sampleHeader());
    expect(bytes.readUInt32BE(0)).toBe(m1.byteLength);
    expect(bytes.subarray(4, 4 + m1.byteLength).equals(Buffer.from(m1))).toBe(true);
    expect(bytes.readUInt32BE(4 + m1.byteLength)).toBe(m2.byteLength);
    expect(bytes.byteLength).toBe(8 + m1.byteLength + m2.byteLength);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const err = await convertCommand(f, { to: "otlp-proto" }).catch((e) => e);
    expect((err as TracerError).code).toBe("usage");
  });
});
