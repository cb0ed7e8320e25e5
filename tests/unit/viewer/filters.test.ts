/**
 * The span filters of view/summary/convert (src/cli/filters.ts): parsing of every option,
 * usage errors, the raw command line for all-digit values, and what view and convert keep
 * (whole traces with a matching span).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { globToRegExp, matchingTraceIds, parseDurationNs, parseFilters, parseTimeNs, serviceOf } from "../../../src/cli/filters.ts";
import { TracerError } from "../../../src/errors.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { viewCommand } from "../../../src/cli/view.ts";
import { sampleHeader, sampleSpans, T0, writeSampleCapture } from "../capture/fixture.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-filters-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const cap = writeSampleCapture(dir);
const A = "4bf92f3577b34da6a3ce929d0e0e4736";
const B = "0af7651916cd43dd8448eb211c80319c";

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TracerError);
    expect((e as TracerError).code).toBe("usage");
    return (e as TracerError).message;
  }
  throw new Error("no usage error");
}

describe("parsing", () => {
  test("no filter given: undefined", () => {
    expect(parseFilters({})).toBeUndefined();
    expect(parseFilters({ errors: false })).toBeUndefined();
  });

  test("durations to the nanosecond; a bare number is seconds", () => {
    expect(parseDurationNs("100ms", "--min-duration")).toBe(100_000_000n);
    expect(parseDurationNs("1.5s", "x")).toBe(1_500_000_000n);
    expect(parseDurationNs("250us", "x")).toBe(250_000n);
    expect(parseDurationNs("250µs", "x")).toBe(250_000n);
    expect(parseDurationNs("7ns", "x")).toBe(7n);
    expect(parseDurationNs("2m", "x")).toBe(120_000_000_000n);
    expect(parseDurationNs("3", "x")).toBe(3_000_000_000n);
    expect(usage(() => parseDurationNs("fast", "--min-duration"))).toContain("--min-duration");
    expect(usage(() => parseDurationNs("-1s", "x"))).toContain("not a duration");
  });

  test("times: RFC 3339 with zone and nanoseconds, epoch s/ms/µs/ns by size", () => {
    const ns = 1_765_015_200_000_000_000n; // 2025-12-06T10:00:00Z
    expect(parseTimeNs("2025-12-06T10:00:00Z", "--since")).toBe(ns);
    expect(parseTimeNs("2025-12-06T11:00:00+01:00", "--since")).toBe(ns);
    expect(parseTimeNs("2025-12-06T10:00:00.000000123Z", "--since")).toBe(ns + 123n);
    expect(parseTimeNs("1765015200", "--since")).toBe(ns);
    expect(parseTimeNs("1765015200.5", "--since")).toBe(ns + 500_000_000n);
    expect(parseTimeNs("1765015200000", "--since")).toBe(ns);
    expect(parseTimeNs("1765015200000000", "--since")).toBe(ns);
    expect(parseTimeNs("1765015200000000123", "--since")).toBe(ns + 123n);
    expect(usage(() => parseTimeNs("yesterday", "--since"))).toContain("--since");
    expect(usage(() => parseTimeNs("2025-02-30T00:00:00Z", "--until"))).toContain("not a valid date");
  });

  test("globs match the whole text; classes and escapes", () => {
    expect(globToRegExp("GET /items/*").test("GET /items/{id}")).toBe(true);
    expect(globToRegExp("GET /items/*").test("xGET /items/1")).toBe(false);
    expect(globToRegExp("GET /h?llo").test("GET /hello")).toBe(true);
    expect(globToRegExp("[GP]*").test("POST /x")).toBe(true);
    expect(globToRegExp("[!GP]*").test("POST /x")).toBe(false);
    expect(globToRegExp("a.b(c)").test("a.b(c)")).toBe(true);
    expect(globToRegExp("a.b").test("axb")).toBe(false);
  });

  test("usage errors name the option", () => {
    expect(usage(() => parseFilters({ trace: "xyz" }))).toContain("--trace");
    expect(usage(() => parseFilters({ trace: true }))).toContain("--trace needs a value");
    expect(usage(() => parseFilters({ name: ["a", "b"] as never }))).toContain("more than once");
    expect(usage(() => parseFilters({ since: "2025-01-02T00:00:00Z", until: "2025-01-01T00:00:00Z" }))).toContain("not after");
  });

  test("all-digit values come from the raw command line (the parser dropped leading zeros)", () => {
    const f = parseFilters({ trace: 123 }, ["bun", "main.ts", "view", "x.cbor", "--trace", "000123"])!;
    expect(f.tracePrefix).toBe("000123");
    expect(parseFilters({ trace: 123 }, ["view", "--trace=0123"])!.tracePrefix).toBe("0123");
    const since = parseFilters({ since: 1.7e18 }, ["summary", "--since", "1700000000123456789"])!;
    expect(since.description).toBe("--since 1700000000123456789");
  });

  test("a span passes when every filter passes", () => {
    const spans = sampleSpans();
    const f = parseFilters({ service: "sh*", name: "POST *", errors: true, minDuration: "1s", since: String(T0), until: String(T0 + 3_000_000_000n) })!;
    expect(f.perSpan).toBe(true);
    expect(spans.map((s) => f.matches(s, "shop"))).toEqual([false, false, false, true]);
    expect(f.matches(spans[3]!, "other")).toBe(false);
    const t = parseFilters({ trace: "4BF9" })!;
    expect(t.perSpan).toBe(false);
    expect(spans.map((s) => t.matches(s, "shop"))).toEqual([true, true, true, false]);
    expect(matchingTraceIds(spans, parseFilters({ name: "SELECT*" })!, "shop")).toEqual(new Set([A]));
  });

  test("service.name: the resource's, else the target's, else the executable's", () => {
    const h = sampleHeader();
    expect(serviceOf(h)).toBe("shop");
    expect(serviceOf({ ...h, resource: { "service.name": "cart" } })).toBe("cart");
    expect(serviceOf({ ...h, target: { ...h.target, serviceName: "" } })).toBe("server");
  });
});

describe("view and convert keep whole traces", () => {
  async function viewText(opts: Record<string, unknown>): Promise<string> {
    let out = "";
    await viewCommand(cap, opts, async (s) => void (out += s));
    return out;
  }
  async function converted(opts: Record<string, unknown>): Promise<string[]> {
    let out = "";
    await convertCommand(cap, opts, async (s) => void (out += s));
    return [...out.matchAll(/"spanId":"([0-9a-f]+)"/g)].map((m) => m[1]!);
  }

  test("--name picks the trace of the matching span, with all its spans", async () => {
    const v = await viewText({ name: "SELECT*" });
    expect(v).toContain(`trace ${A}`);
    expect(v).not.toContain(`trace ${B}`);
    expect(v).toContain("GET /cart/{id}");
    expect(await converted({ name: "SELECT*" })).toEqual(["00f067aa0ba902b7", "1111111111111111", "2222222222222222"]);
  });

  test("--errors and --min-duration", async () => {
    expect(await converted({ errors: true })).toEqual(["3333333333333333"]);
    expect(await converted({ minDuration: "1ms" })).toHaveLength(4);
    const v = await viewText({ minDuration: "1s" });
    expect(v).toContain(`trace ${B}`);
    expect(v).not.toContain(`trace ${A}`);
  });

  test("--service that matches nothing: no trace", async () => {
    expect(await converted({ service: "nope" })).toEqual([]);
    expect(await viewText({ service: "nope" })).not.toMatch(/^trace /m);
  });
});
