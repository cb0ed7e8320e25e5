/**
 * @module tests/e2e/otlp — our OTLP output checked by an independent decoder.
 *
 * tests/fixtures/go/otlp-receiver decodes requests with the official OTLP Go protobuf types
 * and prints each span as JSON. A capture file written by the real CaptureWriter is sent with
 * `beetrace export` (the CLI, in-process); every span must arrive with the same ids, name,
 * kind, attributes, status, scope and exact nanosecond timestamps, with the header's resource.
 * `convert --to otlp-json` must carry the same spans. Also measures export throughput.
 * Needs the Go toolchain (no root): skips with the reason when `go` is missing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildFixture, FIXTURES_GO, newestToolchain } from "../harness/go.ts";
import { CaptureWriter } from "../../src/capture/writer.ts";
import { main } from "../../src/main.ts";
import { setLogSink } from "../../src/log.ts";
import { convertCommand } from "../../src/cli/convert.ts";
import { resourceAttributes } from "../../src/export/otlp.ts";
import { OtlpHttpExporter } from "../../src/export/otlp-http.ts";
import { type Span, zeroLosses } from "../../src/spans/model.ts";
import { sampleHeader, sampleSpans } from "../unit/capture/fixture.ts";
import { makeSpans } from "../unit/export/collector.ts";
import { Receiver, expectedReceived } from "./otlp-receiver.ts";

const haveGo = spawnSync("go", ["version"]).status === 0;
const skip = haveGo ? undefined : "the go command is missing (scripts/setup.sh installs it)";
if (skip) console.warn(`skip OTLP receiver tests: ${skip}`);


let work = "";
let receiver: Receiver | undefined;
let capture = "";
const spans: Span[] = [...sampleSpans(), ...makeSpans(1200)];

beforeAll(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-otlp-e2e-"));
  const exe = await buildFixture({ dir: path.join(FIXTURES_GO, "otlp-receiver"), toolchain: newestToolchain(), mode: "default" });
  receiver = await Receiver.start(exe);
  capture = path.join(work, "cap.cbor");
  const w = CaptureWriter.open(capture, sampleHeader(), { flushIntervalMs: 0 });
  for (const s of spans) w.span(s);
  w.close("duration", spans[0]!.endTimeUnixNano, zeroLosses());
}, 300_000); // a first run builds the receiver (module download + go build)

afterAll(() => {
  receiver?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)("OTLP/HTTP to the official-proto receiver", () => {
  for (const compression of ["none", "gzip"]) {
    test(`beetrace export (protobuf, compression ${compression}): every span arrives intact`, async () => {
      const r = receiver!;
      r.reset();
      const logs: string[] = [];
      setLogSink((l) => logs.push(l));
      const code = await main(["export", capture, "--otlp", r.base, "--compression", compression, "--batch", "500"]);
      setLogSink((l) => process.stderr.write(l + "\n"));
      expect(logs.filter((l) => l.startsWith("error"))).toEqual([]);
      expect(code).toBe(0);
      await r.waitFor(spans.length);
      expect(r.spans).toHaveLength(spans.length);
      // 1204 spans at --batch 500 → 3 requests
      expect(new Set(r.spans.map((s) => s.request)).size).toBe(3);
      const byId = new Map(r.spans.map((s) => [s.spanId, s]));
      expect(byId.size).toBe(spans.length);
      const resource = resourceAttributes(sampleHeader());
      for (const s of spans) {
        const got = byId.get(s.spanId);
        expect(got).toBeDefined();
        const { resource: res, request: _req, ...rest } = got!;
        expect(rest).toEqual(expectedReceived(s));
        expect(res).toEqual(resource);
      }
    }, 60_000);
  }

  test("convert --to otlp-json carries the same spans the receiver decoded", async () => {
    const r = receiver!;
    if (r.spans.length !== spans.length) {
      r.reset();
      expect(await main(["export", capture, "--otlp", r.base])).toBe(0);
      await r.waitFor(spans.length);
    }
    let out = "";
    await convertCommand(capture, { to: "otlp-json" }, async (s) => {
      out += s;
    });
    const fromJson = out
      .trim()
      .split("\n")
      .flatMap((line) =>
        (JSON.parse(line) as { resourceSpans: { scopeSpans: { scope: { name: string; version: string }; spans: Record<string, unknown>[] }[] }[] }).resourceSpans.flatMap(
          (rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((sp): Record<string, unknown> => ({ ...sp, scope: ss.scope }))),
        ),
      );
    expect(fromJson).toHaveLength(spans.length);
    const received = new Map(r.spans.map((s) => [s.spanId, s]));
    for (const j of fromJson) {
      const got = received.get(j.spanId as string)!;
      expect(got).toBeDefined();
      expect(j.traceId).toBe(got.traceId);
      expect(j.parentSpanId).toBe(got.parentSpanId);
      expect(j.name).toBe(got.name);
      expect(j.kind).toBe(got.kind);
      expect(j.startTimeUnixNano).toBe(got.startTimeUnixNano);
      expect(j.endTimeUnixNano).toBe(got.endTimeUnixNano);
      const attrs = Object.fromEntries(
        (j.attributes as { key: string; value: Record<string, unknown> }[]).map((a) => [a.key, Object.values(a.value)[0]]),
      );
      expect(attrs).toEqual(got.attributes);
      expect(j.scope).toEqual(got.scope);
    }
  });

  test("throughput: streaming exporter to the receiver (protobuf, batches of 512)", async () => {
    const r = receiver!;
    r.reset();
    const n = 20_000;
    const many = makeSpans(n, 100_000);
    // maxQueue n: the spans are added in one synchronous burst (the default queue would spill/drop).
    const e = new OtlpHttpExporter({ endpoint: `${r.base}/v1/traces`, resource: resourceAttributes(sampleHeader()), batchDelayMs: 0, maxQueue: n });
    const t0 = performance.now();
    for (const s of many) e.add(s);
    const res = await e.shutdown(60_000);
    const ms = performance.now() - t0;
    await r.waitFor(n);
    expect(res).toEqual({ added: n, sent: n, spilled: 0, dropped: 0, rejected: 0 });
    console.log(`OTLP/HTTP protobuf export: ${n} spans in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000)} spans/s (receiver decoding and printing each span)`);
  }, 120_000);
});
