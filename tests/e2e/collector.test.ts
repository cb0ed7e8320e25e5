/**
 * @module tests/e2e/collector — our OTLP output through the real OpenTelemetry Collector.
 *
 * The Collector is scripts/collector/otelcol (core otlp receiver + contrib file exporter, pinned
 * versions from the Go module proxy), built by scripts/collector/build.sh into .cache/collector/
 * (scripts/setup.sh builds it; this test runs the script too, which is instant when cached).
 * Every check starts its own Collector and reads back the file exporter's OTLP JSON output, then
 * compares it span by span with what was sent: ids, parent, name, kind, exact nanosecond times,
 * attributes, status, scope and resource.
 *
 * - offline (no root): a capture sent by `beetrace export` over OTLP/HTTP (protobuf) and over
 *   OTLP/gRPC; each `convert --to otlp-json` line POSTed as OTLP/JSON (the pdata JSON unmarshaler,
 *   which the contrib otlpjsonfile receiver also uses: that receiver is not served by the module
 *   proxy, see scripts/collector/build.sh); each `convert --to otlp-proto` frame POSTed as
 *   protobuf, and the Collector's own `format: proto` output split with the same framing.
 * - live (root): the sample service traced by dist/beetrace with `--otlp` (HTTP, then gRPC) and
 *   `--out` together: the Collector receives exactly the spans of the capture file.
 *
 * Needs `go` (to build the Collector); the live part also root. Skips name the reason (in CI a
 * skip fails: tests/harness/require-e2e.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Collector, ensureCollector, readCollectorJson, attributesOf, type CollectorSpan } from "../../scripts/collector/collector.ts";
import { CaptureWriter } from "../../src/capture/writer.ts";
import { convertCommand } from "../../src/cli/convert.ts";
import { main } from "../../src/main.ts";
import { setLogSink } from "../../src/log.ts";
import { type Span, zeroLosses } from "../../src/spans/model.ts";
import { sampleHeader, sampleSpans } from "../unit/capture/fixture.ts";
import { makeSpans } from "../unit/export/collector.ts";
import { buildSample, e2eSkipReason, httpGet, killAll, readSpans, runTracer, startSample, waitFor } from "./harness.ts";

const hasGo = spawnSync("sh", ["-c", "command -v go"]).status === 0;
const offlineSkip = hasGo ? undefined : "needs go on PATH to build the Collector (scripts/setup.sh installs it)";
const liveSkip = offlineSkip ?? e2eSkipReason();
if (offlineSkip) console.warn(`skip Collector tests: ${offlineSkip}`);
else if (liveSkip) console.warn(`skip live Collector tests: ${liveSkip}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-collector-"));
const collectors: Collector[] = [];
let exe = "";
afterAll(async () => {
  for (const c of collectors) await c.kill();
  killAll();
  fs.rmSync(work, { recursive: true, force: true });
});

async function startCollector(name: string, proto = false): Promise<Collector> {
  const c = await Collector.start(exe, { dir: work, name, proto });
  collectors.push(c);
  return c;
}

// OTLP enums (opentelemetry/proto/trace/v1/trace.proto): SpanKind, Status.StatusCode.
const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
const STATUS = { unset: 0, ok: 1, error: 2 } as const;

/** One span in a form both sides map to; attribute values as strings (OTLP JSON writes int64 as strings). */
interface Comparable {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  start: string;
  end: string;
  attributes: Record<string, string>;
  status: { code: number; message: string };
  events: { name: string; time: string; attributes: Record<string, string> }[];
  scope: { name: string; version: string };
}

const strings = (a: Record<string, unknown>) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, String(v)]));

function ours(s: Span): Comparable {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId ?? "",
    name: s.name,
    kind: KIND[s.kind],
    start: s.startTimeUnixNano.toString(),
    end: s.endTimeUnixNano.toString(),
    attributes: strings(s.attributes),
    status: { code: STATUS[s.status.code], message: s.status.message ?? "" },
    events: (s.events ?? []).map((e) => ({ name: e.name, time: e.timeUnixNano.toString(), attributes: strings(e.attributes) })),
    scope: { name: s.scope.name, version: s.scope.version },
  };
}

function theirs(s: CollectorSpan & { events?: { name: string; timeUnixNano: string; attributes?: { key: string; value: Record<string, unknown> }[] }[] }, scope: { name?: string; version?: string }): Comparable {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId ?? "",
    name: s.name,
    kind: s.kind ?? 0,
    start: s.startTimeUnixNano,
    end: s.endTimeUnixNano,
    attributes: strings(attributesOf(s.attributes)),
    status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
    events: (s.events ?? []).map((e) => ({ name: e.name, time: e.timeUnixNano, attributes: strings(attributesOf(e.attributes)) })),
    scope: { name: scope.name ?? "", version: scope.version ?? "" },
  };
}

interface Received {
  spans: Map<string, Comparable[]>;
  resources: Record<string, unknown>[];
  count: number;
}

async function received(c: Collector): Promise<Received> {
  const spans = new Map<string, Comparable[]>();
  const resources: Record<string, unknown>[] = [];
  let count = 0;
  const r = await readCollectorJson(c.jsonPath, (s, _line, resource, scope) => {
    const list = spans.get(s.spanId) ?? [];
    list.push(theirs(s, scope));
    spans.set(s.spanId, list);
    resources.push(resource);
    count++;
  });
  expect(r.tornTail).toBe(false);
  return { spans, resources, count };
}

/** Waits until the Collector has written `n` spans (it writes before it acknowledges, so this is quick). */
async function waitForSpans(c: Collector, n: number, timeoutMs = 60_000): Promise<Received> {
  return waitFor(
    async () => {
      const r = await received(c);
      return r.count >= n ? r : undefined;
    },
    timeoutMs,
    `the Collector to write ${n} spans (log:\n${c.log.slice(-2000)})`,
  );
}

/** Every sent span arrived exactly once and is identical; returns the resources seen. */
function expectSameSpans(got: Received, sent: Span[]): void {
  expect(got.count).toBe(sent.length);
  for (const s of sent) {
    const g = got.spans.get(s.spanId);
    expect(g?.length ?? 0, `span ${s.spanId} (${s.name}) arrived ${g?.length ?? 0} times`).toBe(1);
    expect(g![0]).toEqual(ours(s));
  }
}

describe.skipIf(offlineSkip !== undefined)(`OpenTelemetry Collector (otlp receiver → file exporter)${offlineSkip ? ` — skipped: ${offlineSkip}` : ""}`, () => {
  const spans: Span[] = [...sampleSpans(), ...makeSpans(700)];
  const capture = path.join(work, "cap.cbor");
  const resources: Record<string, Record<string, unknown>> = {};

  beforeAll(() => {
    exe = ensureCollector();
    const w = CaptureWriter.open(capture, sampleHeader(), { flushIntervalMs: 0 });
    for (const s of spans) w.span(s);
    w.close("duration", 1n, zeroLosses());
  }, 15 * 60_000);

  async function exportTo(endpoint: string, extra: string[]): Promise<void> {
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    try {
      const code = await main(["export", capture, "--otlp", endpoint, "--batch", "100", ...extra]);
      expect(code, logs.join("\n")).toBe(0);
    } finally {
      setLogSink((l) => process.stderr.write(l + "\n"));
    }
  }

  test("beetrace export over OTLP/HTTP (protobuf): every span arrives once, identical", async () => {
    const c = await startCollector("export-http");
    await exportTo(c.httpBase, []);
    const got = await waitForSpans(c, spans.length);
    expectSameSpans(got, spans);
    resources.http = got.resources[0]!;
    expect(got.resources.every((r) => JSON.stringify(r) === JSON.stringify(resources.http))).toBe(true);
    expect(resources.http!["service.name"]).toBe("shop");
  }, 120_000);

  test("beetrace export over OTLP/gRPC (+ gzip): every span arrives once, identical", async () => {
    const c = await startCollector("export-grpc");
    await exportTo(c.grpcBase, ["--protocol", "grpc", "--compression", "gzip"]);
    const got = await waitForSpans(c, spans.length);
    expectSameSpans(got, spans);
    resources.grpc = got.resources[0]!;
    expect(resources.grpc!["service.name"]).toBe("shop");
  }, 120_000);

  test("convert --to otlp-json: each line accepted as OTLP/JSON, every span identical", async () => {
    const c = await startCollector("convert-json");
    let jsonl = "";
    await convertCommand(capture, { to: "otlp-json", batch: 128 }, async (s) => {
      jsonl += s;
    });
    const lines = jsonl.trim().split("\n");
    expect(lines).toHaveLength(Math.ceil(spans.length / 128));
    for (const line of lines) {
      const r = await fetch(`${c.httpBase}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: line });
      expect(`${r.status} ${await r.text()}`).toStartWith("200");
    }
    const got = await waitForSpans(c, spans.length);
    expectSameSpans(got, spans);
    resources.json = got.resources[0]!;
    expect(resources.json!["service.name"]).toBe("shop");
  }, 120_000);

  test("convert --to otlp-proto: each frame accepted as protobuf; the Collector's proto output has the same framing", async () => {
    const c = await startCollector("convert-proto", true);
    const ourProto = path.join(work, "ours.binpb");
    await convertCommand(capture, { to: "otlp-proto", out: ourProto, batch: 128 });
    const ourFrames = frames(new Uint8Array(fs.readFileSync(ourProto)));
    expect(ourFrames).toHaveLength(Math.ceil(spans.length / 128));
    for (const f of ourFrames) {
      const r = await fetch(`${c.httpBase}/v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: f });
      expect(r.status).toBe(200);
    }
    const got = await waitForSpans(c, spans.length);
    expectSameSpans(got, spans);
    resources.proto = got.resources[0]!;
    // The Collector's `format: proto` file: one length-prefixed ExportTraceServiceRequest per request.
    await waitFor(() => fs.existsSync(c.protoPath!) && frames(new Uint8Array(fs.readFileSync(c.protoPath!))).length === ourFrames.length, 10_000, "the proto file exporter output");
  }, 120_000);

  test("every way gives the same resource", () => {
    expect(Object.keys(resources).sort()).toEqual(["grpc", "http", "json", "proto"]);
    expect(resources.grpc).toEqual(resources.http!);
    expect(resources.json).toEqual(resources.http!);
    expect(resources.proto).toEqual(resources.http!);
  });
});

describe.skipIf(liveSkip !== undefined)(`Collector receives live tracing (--otlp + --out)${liveSkip ? ` — skipped: ${liveSkip}` : ""}`, () => {
  beforeAll(() => {
    exe = ensureCollector();
  }, 15 * 60_000);

  for (const protocol of ["http/protobuf", "grpc"] as const) {
    test(`${protocol}: the Collector gets exactly the spans of the capture file`, async () => {
      const c = await startCollector(`live-${protocol.replace("/", "-")}`);
      const sample = await startSample(await buildSample({ mode: "default" }));
      const out = path.join(work, `live-${protocol.replace("/", "-")}.cbor`);
      const endpoint = protocol === "grpc" ? c.grpcBase : c.httpBase;
      const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", out, "--otlp", endpoint, "--protocol", protocol]);
      await tracer.started();
      for (let i = 0; i < 20; i++) await httpGet(sample.port, `/items/${i}`);
      for (let i = 0; i < 5; i++) await httpGet(sample.port, "/proxy");
      await httpGet(sample.port, "/fail");
      tracer.signal("SIGINT");
      expect((await tracer.exit()).code).toBe(0);
      await sample.stop();

      const cap = readSpans(out);
      expect(cap.spans.length).toBe(20 + 5 * 3 + 1);
      const got = await waitForSpans(c, cap.spans.length);
      expectSameSpans(got, cap.spans);
      for (const r of got.resources) {
        expect(r["process.pid"]).toBe(String(sample.pid)); // int64 → decimal string in OTLP JSON
        expect(r["process.runtime.name"]).toBe("go");
        expect(r["service.name"]).toBe(cap.contents.header.target.serviceName);
      }
    }, 240_000);
  }
});

/** Split a length-prefixed proto file (4-byte big-endian length + message), failing on any slack. */
function frames(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos < bytes.byteLength) {
    if (pos + 4 > bytes.byteLength) throw new Error(`cut length prefix at ${pos}`);
    const len = dv.getUint32(pos, false);
    if (pos + 4 + len > bytes.byteLength) throw new Error(`frame at ${pos} runs past the end`);
    out.push(bytes.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}
