/**
 * `beetrace summary` against captures whose requests the test decides (tests/unit/viewer/
 * captures.ts): 100 requests to /sleep lasting 1..100 ms, 10 of them answered 500, plus
 * /hello requests; the figures (count, rate, error ratio, nearest-rank percentiles, max,
 * slowest traces, histogram) are computed here from the workload and compared.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { summaryCommand, renderSummary } from "../../../src/cli/summary.ts";
import { bucketLowNs, bucketOf, endpointOf, HIST_BUCKETS } from "../../../src/viewer/summary.ts";
import { readSpans } from "../../../src/viewer/read.ts";
import { TracerError } from "../../../src/errors.ts";
import { hexId, proxyTrace, sleepWorkload, writeCapture, BOOT0 } from "./captures.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-summary-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(files: string[], opts: Record<string, unknown> = {}, argv: string[] = []): Promise<{ json: any; text: string }> {
  let out = "";
  await summaryCommand(files, { ...opts, json: true }, async (s) => void (out += s), argv);
  let text = "";
  await summaryCommand(files, { ...opts, json: false }, async (s) => void (text += s), argv);
  return { json: JSON.parse(out), text };
}

describe("summary of 100 requests to /sleep with known durations, 10 failing", () => {
  const file = path.join(dir, "sleep.cbor");
  writeCapture(file, sleepWorkload(100, 20));

  test("count, error ratio, p50/p90/p99/max, slowest traces, rate", async () => {
    const { json, text } = await run([file]);
    expect(json.spans).toBe(120);
    const sleep = json.endpoints.find((e: any) => e.endpoint === "GET /sleep");
    expect(sleep).toMatchObject({ service: "sample", kind: "server", count: 100, errors: 10, errorRatio: 0.1 });
    // Durations are 1..100 ms: the ⌈p·n⌉-th smallest.
    expect(sleep.durationNs).toEqual({ p50: 50_000_000, p90: 90_000_000, p99: 99_000_000, max: 100_000_000 });
    expect(sleep.slowestTraces.map((t: any) => t.traceId)).toEqual([100, 99, 98, 97, 96].map((i) => hexId(i, 32, "5")));
    expect(sleep.slowestTraces[0].durationNs).toBe(100_000_000);
    // Window: first start (request 0) to last end (request 99 starts at 990 ms and lasts 100 ms).
    expect(json.window.seconds).toBeCloseTo(1.09, 9);
    expect(BigInt(json.window.endUnixNano) - BigInt(json.window.startUnixNano)).toBe(1_090_000_000n);
    expect(sleep.ratePerSecond).toBeCloseTo(100 / 1.09, 9);
    const hello = json.endpoints.find((e: any) => e.endpoint === "GET /hello");
    expect(hello).toMatchObject({ count: 20, errors: 0, errorRatio: 0, durationNs: { p50: 1_000_000, p90: 1_000_000, p99: 1_000_000, max: 1_000_000 } });
    // Histogram: every request in exactly one bucket, each duration inside its bucket's bounds.
    expect(sleep.histogram.reduce((a: number, b: any) => a + b.count, 0)).toBe(100);
    for (const b of sleep.histogram) expect(b.toNs).toBeGreaterThan(b.fromNs);
    const in50 = sleep.histogram.find((b: any) => b.fromNs <= 50_000_000 && b.toNs > 50_000_000);
    expect(in50.count).toBe([...Array(100).keys()].filter((i) => (i + 1) * 1e6 >= in50.fromNs && (i + 1) * 1e6 < in50.toNs).length);

    expect(text).toContain("120 spans over 1.090 s");
    const row = text.split("\n").find((l) => l.includes("GET /sleep") && !l.includes(":"))!;
    expect(row.split(/\s{2,}/)).toEqual(["sample", "server", "GET /sleep", "100", "91.74", "10.0%", "50ms", "90ms", "99ms", "100ms"]);
    expect(text).toContain(`sample server GET /sleep: ${hexId(100, 32, "5")} (100ms)`);
  });

  test("filters pick the spans that count", async () => {
    const errors = (await run([file], { errors: true })).json;
    expect(errors.filter).toBe("--errors");
    expect(errors.endpoints).toHaveLength(1);
    expect(errors.endpoints[0]).toMatchObject({ endpoint: "GET /sleep", count: 10, errors: 10, errorRatio: 1, durationNs: { p50: 50_000_000, max: 100_000_000 } });
    const slow = (await run([file], { minDuration: "90ms" })).json;
    expect(slow.spans).toBe(11);
    const named = (await run([file], { name: "GET /hel*" })).json;
    expect(named.endpoints.map((e: any) => e.endpoint)).toEqual(["GET /hello"]);
    const none = (await run([file], { service: "other" })).json;
    expect(none.spans).toBe(0);
    expect((await run([file], { service: "other" })).text).toContain("no spans to summarize");
    // --since/--until on epoch times: requests 10..19 start in [100 ms, 200 ms).
    const { OFFSET } = await import("./captures.ts");
    const since = (BOOT0 + OFFSET + 100_000_000n).toString();
    const until = (BOOT0 + OFFSET + 200_000_000n).toString();
    const window = (await run([file], { since: Number(since), until: Number(until), name: "GET /sleep" }, ["summary", file, "--since", since, "--until", until])).json;
    expect(window.endpoints[0].count).toBe(10);
    expect(window.endpoints[0].durationNs.max).toBe(20_000_000);
  });

  test("several files are one set", async () => {
    const second = path.join(dir, "sleep2.cbor");
    writeCapture(second, sleepWorkload(100), { host: "web-2" });
    const both = (await run([file, second])).json;
    expect(both.files.map((f: any) => f.host)).toEqual(["web-1", "web-2"]);
    expect(both.endpoints.find((e: any) => e.endpoint === "GET /sleep")).toMatchObject({ count: 200, errors: 20, durationNs: { p50: 50_000_000, p99: 99_000_000 } });
  });
});

describe("endpoints", () => {
  test("HTTP route, client peer, gRPC method, SQL operation and table, else the name", () => {
    const base = { name: "n", kind: "server" as const };
    expect(endpointOf({ ...base, attributes: { "http.request.method": "GET", "http.route": "/items/{id}" } })).toBe("GET /items/{id}");
    expect(endpointOf({ ...base, name: "GET", attributes: { "http.request.method": "GET" } })).toBe("GET");
    expect(endpointOf({ ...base, kind: "client", name: "GET", attributes: { "http.request.method": "GET", "server.address": "inventory", "server.port": 8080 } })).toBe("GET inventory:8080");
    expect(endpointOf({ ...base, attributes: { "rpc.service": "shop.Cart", "rpc.method": "Get" } })).toBe("shop.Cart/Get");
    expect(endpointOf({ ...base, kind: "client", attributes: { "db.operation.name": "SELECT", "db.collection.name": "carts" } })).toBe("SELECT carts");
    expect(endpointOf({ ...base, attributes: {} })).toBe("n");
  });

  test("a proxy trace: server and client rows of one service", async () => {
    const file = path.join(dir, "proxy.cbor");
    writeCapture(file, [...proxyTrace(0, BOOT0), ...proxyTrace(1, BOOT0 + 1_000_000n, true)]);
    const { json } = await run([file]);
    expect(json.endpoints.map((e: any) => [e.kind, e.endpoint, e.count, e.errors])).toEqual([
      ["server", "GET /hello", 2, 1],
      ["server", "GET /proxy", 2, 0],
      ["client", "GET 127.0.0.1:8080", 2, 1],
    ]);
  });

  test("histogram buckets: 4 per decade from 1 µs, edges increasing, every duration in its bucket", () => {
    for (let b = 1; b < HIST_BUCKETS; b++) expect(bucketLowNs(b + 1)).toBeGreaterThan(bucketLowNs(b));
    for (const ns of [0, 999, 1000, 1778, 1779, 10_000, 99_999_999, 1e9, 5e12]) {
      const b = bucketOf(ns);
      expect(bucketLowNs(b)).toBeLessThanOrEqual(ns);
      if (b < HIST_BUCKETS - 1) expect(bucketLowNs(b + 1)).toBeGreaterThan(ns);
    }
  });
});

describe("reading", () => {
  test("a truncated capture summarizes its complete spans; a missing file is file_not_found", async () => {
    const file = path.join(dir, "cut.cbor");
    writeCapture(file, sleepWorkload(100));
    const bytes = fs.readFileSync(file);
    const cut = path.join(dir, "cut-short.cbor");
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 300));
    const c = readSpans(cut, () => {});
    expect(c.truncated).toBe(true);
    const { json } = await run([cut]);
    expect(json.files[0].truncated).toBe(true);
    expect(json.spans).toBe(c.spans);
    expect(c.spans).toBeGreaterThan(90);
    expect(c.spans).toBeLessThan(100);
    const err = await summaryCommand([path.join(dir, "nope.cbor")], {}, async () => {}).catch((e) => e);
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("file_not_found");
  });

  test("renderSummary with no files and no spans", () => {
    expect(renderSummary({ spans: 0, windowStartNs: undefined, windowEndNs: undefined, windowSeconds: 0, endpoints: [] }, [], undefined).join("\n")).toContain("no spans to summarize");
  });
});
