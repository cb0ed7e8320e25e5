/**
 * @module tests/e2e/otlp-grpc — OTLP/gRPC export checked by the official gRPC server and OTLP types.
 *
 * tests/fixtures/go/otlp-grpc-receiver serves TraceService with google.golang.org/grpc and the
 * generated go.opentelemetry.io/proto/otlp code and prints each span as JSON. A capture file
 * written by the real CaptureWriter is sent with `beetrace export --protocol grpc` (the CLI,
 * in-process); every span must arrive identical (ids, name, kind, attributes, status, scope,
 * exact nanosecond times, the header's resource). The receiver can answer UNAVAILABLE (with
 * RetryInfo) a few times, and can be down then up: nothing may be lost or sent twice. Also
 * measures gRPC vs HTTP throughput, and runs the exporter under Deno's node:http2 when a deno
 * executable exists. Needs the Go toolchain (no root): skips with the reason when `go` is missing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildFixture, FIXTURES_GO, newestToolchain, REPO_ROOT } from "../harness/go.ts";
import { CaptureWriter } from "../../src/capture/writer.ts";
import { main } from "../../src/main.ts";
import { setLogSink } from "../../src/log.ts";
import { resourceAttributes } from "../../src/export/otlp.ts";
import { OtlpGrpcExporter } from "../../src/export/otlp-grpc.ts";
import { OtlpHttpExporter } from "../../src/export/otlp-http.ts";
import { type Span, zeroLosses } from "../../src/spans/model.ts";
import { sampleHeader, sampleSpans } from "../unit/capture/fixture.ts";
import { makeSpans, waitFor } from "../unit/export/collector.ts";
import { Receiver, type Received, expectedReceived } from "./otlp-receiver.ts";

const haveGo = spawnSync("go", ["version"]).status === 0;
const skip = haveGo ? undefined : "the go command is missing (scripts/setup.sh installs it)";
if (skip) console.warn(`skip OTLP/gRPC receiver tests: ${skip}`);


/** Every span of `sent` arrived exactly once, identical, with `resource`. */
function expectIdentical(got: Received[], sent: Span[], resource: Record<string, unknown>): void {
  expect(got).toHaveLength(sent.length);
  const byId = new Map(got.map((s) => [s.spanId, s]));
  expect(byId.size).toBe(sent.length);
  for (const s of sent) {
    const g = byId.get(s.spanId);
    expect(g).toBeDefined();
    const { resource: res, request: _r, metadata: _m, ...rest } = g! as Received & { metadata?: unknown };
    expect(rest).toEqual(expectedReceived(s));
    expect(res).toEqual(resource);
  }
}

interface Call {
  call: number;
  code: number;
  at: number;
}
function readCalls(file: string): Call[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Call);
}

let work = "";
let exe = "";
let capture = "";
const receivers: Receiver[] = [];
const spans: Span[] = [...sampleSpans(), ...makeSpans(1200)];

async function receiver(args: string[] = [], addr = "127.0.0.1:0"): Promise<Receiver> {
  const r = await Receiver.start(exe, addr, args);
  receivers.push(r);
  return r;
}

/** `beetrace export` in-process; returns the exit code and the error lines it logged. */
async function exportCli(args: string[]): Promise<{ code: number; errors: string[]; logs: string[] }> {
  const logs: string[] = [];
  setLogSink((l) => logs.push(l));
  try {
    const code = await main(["export", capture, ...args]);
    return { code, errors: logs.filter((l) => l.startsWith("error")), logs };
  } finally {
    setLogSink((l) => process.stderr.write(l + "\n"));
  }
}

beforeAll(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-otlp-grpc-e2e-"));
  exe = await buildFixture({ dir: path.join(FIXTURES_GO, "otlp-grpc-receiver"), toolchain: newestToolchain(), mode: "default" });
  capture = path.join(work, "cap.cbor");
  const w = CaptureWriter.open(capture, sampleHeader(), { flushIntervalMs: 0 });
  for (const s of spans) w.span(s);
  w.close("duration", spans[0]!.endTimeUnixNano, zeroLosses());
}, 300_000); // a first run downloads the modules and builds the receiver

afterAll(async () => {
  for (const r of receivers) await r.stopAndWait();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)("OTLP/gRPC to the official grpc-go TraceService", () => {
  for (const compression of ["none", "gzip"]) {
    test(`beetrace export --protocol grpc (compression ${compression}): every span arrives intact`, async () => {
      const r = await receiver();
      const { code, errors } = await exportCli(["--otlp", r.base, "--protocol", "grpc", "--compression", compression, "--batch", "500", "--header", "x-tenant=team a"]);
      expect(errors).toEqual([]);
      expect(code).toBe(0);
      await r.waitFor(spans.length);
      // 1204 spans at --batch 500 → 3 calls
      expect(new Set(r.spans.map((s) => s.request))).toEqual(new Set([1, 2, 3]));
      expectIdentical(r.spans, spans, resourceAttributes(sampleHeader()));
      expect(new Set(r.spans.map((s) => JSON.stringify((s as Received & { metadata?: unknown }).metadata)))).toEqual(new Set([JSON.stringify({ "x-tenant": "team a" })]));
    }, 60_000);
  }

  test("OTEL_EXPORTER_OTLP_PROTOCOL=grpc with the base endpoint variable: no /v1/traces, same result", async () => {
    const r = await receiver();
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    const { exportCommand } = await import("../../src/cli/export.ts");
    const summary = await exportCommand([capture], { env: { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: r.base } }).finally(() =>
      setLogSink((l) => process.stderr.write(l + "\n")),
    );
    expect(summary).toMatchObject({ spans: spans.length, sent: spans.length, failed: 0 });
    await r.waitFor(spans.length);
    expectIdentical(r.spans, spans, resourceAttributes(sampleHeader()));
  }, 60_000);

  test("UNAVAILABLE three times (with RetryInfo 200 ms), then OK: retried, nothing lost or duplicated", async () => {
    const calls = path.join(work, "calls-unavailable.jsonl");
    const r = await receiver(["-fail-count", "3", "-retry-delay-ms", "200", "-calls", calls]);
    const { code, errors } = await exportCli(["--otlp", r.base, "--protocol", "grpc"]);
    expect(errors).toEqual([]);
    expect(code).toBe(0);
    await r.waitFor(spans.length);
    expectIdentical(r.spans, spans, resourceAttributes(sampleHeader()));
    const log = readCalls(calls);
    // 3 refusals of the first batch, then 3 OK calls (1204 spans at the default 512 per call).
    expect(log.map((c) => c.code)).toEqual([14, 14, 14, 0, 0, 0]);
    // The exporter waited the server's RetryInfo delay (its own first backoff would be 1 s).
    for (let i = 1; i <= 3; i++) {
      const gap = log[i]!.at - log[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(190);
      expect(gap).toBeLessThan(900);
    }
  }, 60_000);

  test("UNAVAILABLE without RetryInfo uses our backoff; INVALID_ARGUMENT is permanent (one call, export fails)", async () => {
    const calls = path.join(work, "calls-backoff.jsonl");
    const r = await receiver(["-fail-count", "2", "-calls", calls]);
    const many = makeSpans(40);
    const e = new OtlpGrpcExporter({ endpoint: r.base, resource: { "service.name": "b" }, batchDelayMs: 0, retry: { initialBackoffMs: 100, jitter: 0 } });
    for (const s of many) e.add(s);
    expect(await e.shutdown(10_000)).toEqual({ added: 40, sent: 40, spilled: 0, dropped: 0, rejected: 0 });
    const log = readCalls(calls);
    expect(log.map((c) => c.code)).toEqual([14, 14, 0]);
    expect(log[1]!.at - log[0]!.at).toBeGreaterThanOrEqual(95);
    expect(log[2]!.at - log[1]!.at).toBeGreaterThanOrEqual(195);

    const callsBad = path.join(work, "calls-invalid.jsonl");
    const bad = await receiver(["-fail-count", "100", "-fail-code", "3", "-calls", callsBad]);
    const out = await exportCli(["--otlp", bad.base, "--protocol", "grpc"]);
    expect(out.code).not.toBe(0);
    expect(out.logs.some((l) => l.includes("gRPC INVALID_ARGUMENT (3): scripted failure 1 of 100"))).toBe(true);
    // Permanent: no batch retried. export sends the first two batches of 512 (it flushes every
    // 2 batches), sees the collector refuse them, and counts the rest of the file unsent.
    expect(readCalls(callsBad).map((c) => c.code)).toEqual([3, 3]);
    expect(out.logs.some((l) => l.includes("the collector is not taking spans"))).toBe(true);
  }, 60_000);

  test("receiver down: spans spill; when it is up again they are resent, identical, once", async () => {
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    try {
      // Reserve a port, then stop the receiver: connections are refused until it listens there again.
      const first = await receiver();
      const addr = first.base.slice("http://".length);
      await first.stopAndWait();
      const spillPath = path.join(work, "spill-grpc.cbor");
      const resource = { "service.name": "spilled", "telemetry.sdk.name": "beetrace" };
      const e = new OtlpGrpcExporter({
        endpoint: first.base,
        resource,
        maxBatchSize: 100,
        batchDelayMs: 10,
        retry: { initialBackoffMs: 20, maxBackoffMs: 100, maxAttempts: 2, jitter: 0 },
        spill: { path: spillPath, header: sampleHeader() },
      });
      const before = makeSpans(250, 10_000);
      for (const s of before) e.add(s);
      await waitFor(() => e.offline && e.counts().spilled === 250, "250 spans spilled while the receiver is down", 20_000);
      expect(fs.existsSync(spillPath)).toBe(true);
      const r = await receiver([], addr);
      await waitFor(() => e.counts().sent === 250, "the spill resent after the receiver came back", 20_000);
      const after = makeSpans(30, 20_000);
      for (const s of after) e.add(s);
      expect(await e.shutdown(10_000)).toEqual({ added: 280, sent: 280, spilled: 0, dropped: 0, rejected: 0 });
      await r.waitFor(280);
      expectIdentical(r.spans, [...before, ...after], resource);
      expect(fs.existsSync(spillPath)).toBe(false);
      expect(logs.some((l) => l.includes("unreachable (gRPC UNAVAILABLE (14)"))).toBe(true);
      expect(logs.some((l) => l.includes("reachable again"))).toBe(true);
      // The refused connection was dropped; the resend used a new one.
      expect(e.transport.connections).toBeGreaterThanOrEqual(2);
    } finally {
      setLogSink((l) => process.stderr.write(l + "\n"));
    }
  }, 60_000);

  test("throughput: gRPC vs HTTP/protobuf into the same Go process, printing every span and not", async () => {
    const n = 30_000;
    const many = makeSpans(n, 100_000);
    const resource = resourceAttributes(sampleHeader());
    const rates: Record<string, number> = {};
    // The receiver binary serves either protocol (-http) with the same decoding and printing;
    // -discard prints one {request,count} line per call instead of every span.
    for (const [name, args] of [
      ["grpc", []],
      ["http/protobuf", ["-http"]],
      ["grpc, receiver not printing", ["-discard"]],
      ["http/protobuf, receiver not printing", ["-http", "-discard"]],
    ] as const) {
      const r = await receiver([...args]);
      const count = (args as readonly string[]).includes("-discard") ? () => r.spans.reduce((a, s) => a + Number((s as unknown as { count: number }).count), 0) : () => r.spans.length;
      const e = name.startsWith("grpc")
        ? new OtlpGrpcExporter({ endpoint: r.base, resource, batchDelayMs: 0, maxQueue: n })
        : new OtlpHttpExporter({ endpoint: `${r.base}/v1/traces`, resource, batchDelayMs: 0, maxQueue: n });
      const t0 = performance.now();
      for (const s of many) e.add(s);
      const res = await e.shutdown(60_000);
      const ms = performance.now() - t0;
      await waitFor(() => count() >= n, `${name}: ${n} spans at the receiver`, 30_000);
      expect(res).toEqual({ added: n, sent: n, spilled: 0, dropped: 0, rejected: 0 });
      expect(count()).toBe(n);
      rates[name] = Math.round((n / ms) * 1000);
      await r.stopAndWait();
    }
    console.log(`OTLP export of ${n} spans, 512 per request (spans/s): ${Object.entries(rates).map(([k, v]) => `${k}: ${v}`).join("; ")}`);
  }, 120_000);
});

// The same exporter under Deno's node:http2 (runs when a deno executable exists).
function findDeno(): string | undefined {
  const local = path.join(REPO_ROOT, "node_modules", ".bin", "deno");
  if (fs.existsSync(local)) return local;
  const r = spawnSync("sh", ["-c", "command -v deno"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const deno = findDeno();
const denoSkip = skip ?? (deno === undefined ? "no deno executable" : undefined);

describe.skipIf(denoSkip !== undefined)(`OTLP/gRPC under Deno${denoSkip ? ` — skipped: ${denoSkip}` : ""}`, () => {
  test("OtlpGrpcExporter in Deno: retried through UNAVAILABLE, every span arrives intact", async () => {
    const calls = path.join(work, "calls-deno.jsonl");
    const r = await receiver(["-fail-count", "1", "-retry-delay-ms", "100", "-calls", calls]);
    // Inside the repository, so Deno resolves the npm imports from its node_modules.
    const cacheDir = path.join(REPO_ROOT, ".cache");
    fs.mkdirSync(cacheDir, { recursive: true });
    const script = path.join(cacheDir, "otlp-grpc-deno-check.ts");
    fs.writeFileSync(
      script,
      `import { OtlpGrpcExporter } from "${path.join(REPO_ROOT, "src/export/otlp-grpc.ts")}";
import { makeSpans } from "${path.join(REPO_ROOT, "tests/unit/export/collector.ts")}";
const e = new OtlpGrpcExporter({ endpoint: Deno.args[0], resource: { "service.name": "deno" }, batchDelayMs: 0, compression: "gzip", maxBatchSize: 100 });
for (const s of makeSpans(250)) e.add(s);
console.log(JSON.stringify(await e.shutdown(20000)));
`,
    );
    const proc = Bun.spawn([deno!, "run", "--allow-net", "--allow-read", "--allow-env", "--allow-sys", script, r.base], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
    const [out, err, status] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (status !== 0) console.error(err);
    expect(status).toBe(0);
    expect(JSON.parse(out.trim().split("\n").pop()!)).toEqual({ added: 250, sent: 250, spilled: 0, dropped: 0, rejected: 0 });
    await r.waitFor(250);
    expectIdentical(r.spans, makeSpans(250), { "service.name": "deno" });
    expect(readCalls(calls).map((c) => c.code)).toEqual([14, 0, 0, 0]);
  }, 120_000);
});
