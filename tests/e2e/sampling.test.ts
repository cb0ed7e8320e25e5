/**
 * @module tests/e2e/sampling — OTEL_TRACES_SAMPLER applied in BPF: the root span's trace id
 * decides (TraceIdRatioBased on its low 56 bits), children inherit the decision, and spans of
 * unsampled traces never reach the ring buffer (the tracer reports how many BPF dropped).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { traceIdRatioSampled } from "../../src/config/otel-env.ts";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("sampling");

/** The status of one GET with extra header lines (harness httpGet). */
const get = (port: number, path: string, headers: [string, string][] = []): Promise<number> => httpGet(port, path, headers).then((e) => e.status);

const REQUESTS = 160;

async function traceWith(env: Record<string, string>, send: (port: number) => Promise<void>) {
  const sample = await startSample(await buildSample({ mode: "default" }));
  try {
    const out = join(work, `s-${sample.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out, "-v"], env);
    await tr.started();
    await send(sample.port);
    tr.signal("SIGINT");
    expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
    const dropped = Number(/(\d+) of them dropped in BPF/.exec(tr.stderr())?.[1] ?? 0);
    return { spans: readSpans(out).spans, dropped };
  } finally {
    await sample.stop();
  }
}

describe.skipIf(reason !== undefined)(`sampling in BPF${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test("traceidratio 0.25: the trace id decides, a kept /proxy keeps its client span, the rest never leave BPF", async () => {
    const { spans, dropped } = await traceWith({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }, async (port) => {
      for (let i = 0; i < REQUESTS; i++) expect(await get(port, "/proxy")).toBe(200);
    });
    // Each /proxy request makes two traces: server /proxy with its client call, and the server
    // span of the /hello it calls (a new root: the sample's client sends no traceparent).
    const roots = spans.filter((s) => s.name === "GET /proxy");
    for (const s of spans) expect(traceIdRatioSampled(s.traceId, 0.25)).toBe(true);
    // Binomial(160, 0.25): mean 40, sd 5.5; these bounds are > 3.5 sd away.
    expect(roots.length).toBeGreaterThan(20);
    expect(roots.length).toBeLessThan(60);
    // Whole traces or nothing: the decision made at the root holds for every span of it.
    const byTrace = new Map<string, string[]>();
    for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), `${s.kind} ${s.name}`]);
    for (const names of byTrace.values()) expect([["client GET", "server GET /proxy"], ["server GET /hello"]]).toContainEqual(names.sort());
    expect(spans.length + dropped).toBe(3 * REQUESTS);
  }, 300_000);

  test("always_off keeps nothing; parentbased_always_off follows a caller's sampled flag", async () => {
    const off = await traceWith({ OTEL_TRACES_SAMPLER: "always_off" }, async (port) => {
      for (let i = 0; i < 20; i++) expect(await get(port, "/hello")).toBe(200);
    });
    expect(off.spans).toEqual([]);
    expect(off.dropped).toBe(20);

    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const pb = await traceWith({ OTEL_TRACES_SAMPLER: "parentbased_always_off" }, async (port) => {
      expect(await get(port, "/proxy", [["traceparent", `00-${trace}-00f067aa0ba902b7-01`]])).toBe(200);
      for (let i = 0; i < 5; i++) expect(await get(port, "/proxy")).toBe(200);
    });
    // The caller's sampled trace is kept whole (its server span and the client call); the /hello
    // that call reaches starts a trace of its own, which always_off drops like every other root.
    expect(pb.spans.map((s) => `${s.traceId} ${s.kind}`).sort()).toEqual([`${trace} client`, `${trace} server`]);
    expect(pb.dropped).toBe(1 + 5 * 3);
  }, 300_000);
});
