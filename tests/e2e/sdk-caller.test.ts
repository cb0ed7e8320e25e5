/**
 * @module tests/e2e/sdk-caller — a caller instrumented with the real OpenTelemetry Go SDK
 * (otelhttp transport, W3C trace context propagator; tests/fixtures/go/sdkcaller) calls a
 * service traced by beetrace: each server span joins the SDK's trace, under the SDK's client
 * span, and keeps its sampled flag; an unsampled SDK trace leaves nothing in the capture
 * (the default sampler, parentbased_always_on, follows the caller's decision).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { buildFixture, FIXTURES_GO, run } from "../harness/go.ts";
import { buildSample, e2eSkipReason, goVersionOf, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("sdk-caller");

const REQUESTS = 5;

interface SdkLine {
  name: string;
  kind: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  sampled: boolean;
}

const parse = (stdout: string): SdkLine[] =>
  stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as SdkLine);

describe.skipIf(reason !== undefined)(`an OTel-SDK-instrumented caller${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test("the traced service's server spans join the SDK's traces, each under the SDK's client span; unsampled SDK traces are not captured", async () => {
    const toolchain = await goVersionOf();
    const [caller, service] = await Promise.all([buildFixture({ dir: join(FIXTURES_GO, "sdkcaller"), toolchain, mode: "default" }), buildSample({ mode: "stripped" })]);
    const app = await startSample(service);
    const out = join(work, "service.cbor");
    const tr = runTracer(["attach", "--pid", String(app.pid), "--out", out]);
    await tr.started();

    const sampled = parse((await run(caller, ["-url", `${app.base}/hello`, "-n", String(REQUESTS)])).stdout);
    const unsampled = parse((await run(caller, ["-url", `${app.base}/hello`, "-n", "2", "-unsampled"])).stdout);
    tr.signal("SIGINT");
    expect((await tr.exit()).code).toBe(0);

    // The SDK's own view: per request a root "caller-op" and otelhttp's client span under it.
    const roots = sampled.filter((s) => s.name === "caller-op");
    const sdkClients = sampled.filter((s) => s.kind === "client");
    expect({ roots: roots.length, clients: sdkClients.length }).toEqual({ roots: REQUESTS, clients: REQUESTS });
    for (const c of sdkClients) expect(roots.some((r) => r.spanId === c.parentSpanId && r.traceId === c.traceId)).toBe(true);

    const servers = readSpans(out).spans.filter((s) => s.kind === "server");
    expect(servers.length).toBe(REQUESTS);
    const got = servers.map((s) => ({ name: s.name, traceId: s.traceId, parent: s.parentSpanId })).sort((a, b) => (a.traceId < b.traceId ? -1 : 1));
    const want = sdkClients.map((c) => ({ name: "GET /hello", traceId: c.traceId, parent: c.spanId })).sort((a, b) => (a.traceId < b.traceId ? -1 : 1));
    expect(got).toEqual(want);
    // Nothing of the two unsampled SDK traces reached the capture.
    expect(unsampled.length).toBe(2);
    for (const u of unsampled) expect(servers.some((s) => s.traceId === u.traceId)).toBe(false);
  });
});
