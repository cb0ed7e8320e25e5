/**
 * @module tests/e2e/collector — our OTLP output through the real OpenTelemetry Collector.
 *
 * Uses the collector built by scripts/collector/build.sh (otlp receiver + file exporter; skips
 * with that hint when it is not built — the build takes minutes, so CI runs it only when asked).
 * Sends one capture three ways to the collector's otlp receiver: `beetrace export` (protobuf),
 * each `convert --to otlp-json` line POSTed as OTLP/JSON (the pdata JSON unmarshaler the
 * otlpjsonfile receiver also uses), and each `convert --to otlp-proto` frame POSTed as protobuf
 * (proving the framing and messages). The file exporter's JSON output must then hold every span
 * three times with the original ids, names, timestamps and attributes; its proto output must
 * use the same 4-byte big-endian length framing as ours.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../harness/go.ts";
import { CaptureWriter } from "../../src/capture/writer.ts";
import { convertCommand } from "../../src/cli/convert.ts";
import { main } from "../../src/main.ts";
import { setLogSink } from "../../src/log.ts";
import { type Span, zeroLosses } from "../../src/spans/model.ts";
import { sampleHeader, sampleSpans } from "../unit/capture/fixture.ts";
import { makeSpans, waitFor } from "../unit/export/collector.ts";

const collectorExe = path.join(REPO_ROOT, ".cache", "collector", "otelcol-beetrace");
const skip = fs.existsSync(collectorExe) ? undefined : "collector not built (run scripts/collector/build.sh, ~minutes)";
if (skip) console.warn(`skip Collector tests: ${skip}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-collector-"));
let proc: ChildProcess | undefined;
afterAll(() => {
  proc?.kill();
  fs.rmSync(work, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

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

interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

function spansOf(jsonl: string): JsonSpan[] {
  return jsonl
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) =>
      (JSON.parse(l) as { resourceSpans: { scopeSpans: { spans: JsonSpan[] }[] }[] }).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
    );
}

describe.skipIf(skip !== undefined)("OpenTelemetry Collector accepts beetrace output", () => {
  test("export (protobuf), convert otlp-json and otlp-proto all arrive intact", async () => {
    const spans: Span[] = [...sampleSpans(), ...makeSpans(300)];
    const capture = path.join(work, "cap.cbor");
    const w = CaptureWriter.open(capture, sampleHeader(), { flushIntervalMs: 0 });
    for (const s of spans) w.span(s);
    w.close("duration", 1n, zeroLosses());

    const port = await freePort();
    const outJson = path.join(work, "out.jsonl");
    const outProto = path.join(work, "out.binpb");
    const cfg = path.join(work, "config.yaml");
    fs.writeFileSync(
      cfg,
      [
        "receivers:",
        "  otlp:",
        "    protocols:",
        "      http:",
        `        endpoint: 127.0.0.1:${port}`,
        "exporters:",
        "  file/json:",
        `    path: ${outJson}`,
        "    flush_interval: 100ms",
        "  file/proto:",
        `    path: ${outProto}`,
        "    format: proto",
        "    flush_interval: 100ms",
        "service:",
        "  telemetry:",
        "    metrics:",
        "      level: none",
        "  pipelines:",
        "    traces:",
        "      receivers: [otlp]",
        "      exporters: [file/json, file/proto]",
        "",
      ].join("\n"),
    );
    let stderr = "";
    proc = spawn(collectorExe, ["--config", cfg], { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr!.on("data", (d) => (stderr += String(d)));
    const base = `http://127.0.0.1:${port}`;
    let up = false;
    const t0 = Date.now();
    while (!up) {
      if (Date.now() - t0 > 30_000 || proc.exitCode !== null) throw new Error(`collector did not start:\n${stderr}`);
      up = await fetch(`${base}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
        .then((r) => r.ok)
        .catch(() => false);
    }

    // 1. beetrace export → protobuf
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    const code = await main(["export", capture, "--otlp", base, "--batch", "100"]);
    setLogSink((l) => process.stderr.write(l + "\n"));
    expect(code).toBe(0);

    // 2. convert --to otlp-json lines → OTLP/JSON POSTs
    let jsonl = "";
    await convertCommand(capture, { to: "otlp-json", batch: 128 }, async (s) => {
      jsonl += s;
    });
    for (const line of jsonl.trim().split("\n")) {
      const r = await fetch(`${base}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: line });
      expect(`${r.status} ${await r.text()}`).toStartWith("200");
    }

    // 3. convert --to otlp-proto frames → protobuf POSTs
    const ourProto = path.join(work, "ours.binpb");
    await convertCommand(capture, { to: "otlp-proto", out: ourProto, batch: 128 });
    const ours = frames(new Uint8Array(fs.readFileSync(ourProto)));
    expect(ours).toHaveLength(Math.ceil(spans.length / 128));
    for (const f of ours) {
      const r = await fetch(`${base}/v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: f });
      expect(r.status).toBe(200);
    }

    await waitFor(() => fs.existsSync(outJson) && spansOf(fs.readFileSync(outJson, "utf8")).length >= 3 * spans.length, "the file exporter to write every span", 30_000);
    const got = spansOf(fs.readFileSync(outJson, "utf8"));
    expect(got).toHaveLength(3 * spans.length);
    const want = new Map(spans.map((s) => [s.spanId, s]));
    const seen = new Map<string, number>();
    for (const g of got) {
      const s = want.get(g.spanId);
      expect(s).toBeDefined();
      seen.set(g.spanId, (seen.get(g.spanId) ?? 0) + 1);
      expect(g.traceId).toBe(s!.traceId);
      expect(g.parentSpanId ?? "").toBe(s!.parentSpanId ?? "");
      expect(g.name).toBe(s!.name);
      expect(g.startTimeUnixNano).toBe(s!.startTimeUnixNano.toString());
      expect(g.endTimeUnixNano).toBe(s!.endTimeUnixNano.toString());
      // The collector writes int64 as strings (proto3 JSON); ours may be numbers: compare as strings.
      const attrs = Object.fromEntries((g.attributes ?? []).map((a) => [a.key, String(Object.values(a.value)[0])]));
      expect(attrs).toEqual(Object.fromEntries(Object.entries(s!.attributes).map(([k, v]) => [k, String(v)])));
    }
    expect([...seen.values()].every((n) => n === 3)).toBe(true);
    // The collector's proto output uses the framing our otlp-proto writes.
    await waitFor(() => fs.existsSync(outProto) && fs.statSync(outProto).size > 0, "the proto file exporter output", 10_000);
    expect(frames(new Uint8Array(fs.readFileSync(outProto))).length).toBeGreaterThan(0);
  }, 120_000);
});
