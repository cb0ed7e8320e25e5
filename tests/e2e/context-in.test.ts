/**
 * @module tests/e2e/context-in — a request that arrives with a W3C traceparent continues the
 * caller's trace (read-only: the header is found by walking Request.Header in BPF at the entry
 * probe, no extra uprobe, nothing written into the target).
 *
 * Both map layouts: Go >= 1.24's Swiss tables (the local toolchain) and the bucket maps of
 * Go < 1.24 (go1.23.12); few headers (one group / one bucket) and many (a table of several
 * groups / several buckets with overflow). Invalid traceparents are ignored per the W3C rules.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("context-in");

/** The status of one GET with extra header lines (harness httpGet). */
const get = (port: number, path: string, headers: [string, string][] = []): Promise<number> => httpGet(port, path, headers).then((e) => e.status);

const TRACE = "0af7651916cd43dd8448eb211c80319c";
const PARENT = "b7ad6b7169203331";
const STATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
/** Twenty more header lines: a header map too big for one group of 8 slots or one bucket. */
const MANY: [string, string][] = Array.from({ length: 20 }, (_, i) => [`X-Extra-${i}`, `v${i}`]);

interface Case {
  name: string;
  path: string;
  headers: [string, string][];
  /** expected trace id and parent of the server span, or "new" for a fresh root */
  want: { trace: string; parent: string; state?: string } | "new" | "dropped";
}

const CASES: Case[] = [
  { name: "valid, sampled, with tracestate", path: "/hello?c=1", headers: [["traceparent", `00-${TRACE}-${PARENT}-01`], ["tracestate", STATE]], want: { trace: TRACE, parent: PARENT, state: STATE } },
  { name: "valid among many headers", path: "/hello?c=2", headers: [...MANY, ["Traceparent", `00-${TRACE.replace("0a", "1b")}-${PARENT}-01`]], want: { trace: TRACE.replace("0a", "1b"), parent: PARENT } },
  { name: "a future version with extra fields", path: "/hello?c=3", headers: [["traceparent", `cc-${TRACE.replace("0a", "2c")}-${PARENT}-01-what-ever`]], want: { trace: TRACE.replace("0a", "2c"), parent: PARENT } },
  { name: "not sampled: the default parentbased sampler drops it", path: "/hello?c=4", headers: [["traceparent", `00-${TRACE.replace("0a", "3d")}-${PARENT}-00`]], want: "dropped" },
  { name: "uppercase hex is invalid", path: "/hello?c=5", headers: [["traceparent", `00-${TRACE.toUpperCase()}-${PARENT}-01`]], want: "new" },
  { name: "all-zero trace id is invalid", path: "/hello?c=6", headers: [["traceparent", `00-${"0".repeat(32)}-${PARENT}-01`]], want: "new" },
  { name: "all-zero parent id is invalid", path: "/hello?c=7", headers: [["traceparent", `00-${TRACE}-${"0".repeat(16)}-01`]], want: "new" },
  { name: "version ff is invalid", path: "/hello?c=8", headers: [["traceparent", `ff-${TRACE}-${PARENT}-01`]], want: "new" },
  { name: "version 00 with trailing data is invalid", path: "/hello?c=9", headers: [["traceparent", `00-${TRACE}-${PARENT}-01-x`]], want: "new" },
  { name: "too short", path: "/hello?c=10", headers: [["traceparent", `00-${TRACE}-${PARENT}-1`]], want: "new" },
  { name: "no traceparent", path: "/hello?c=11", headers: MANY, want: "new" },
];

const BUILDS: { name: string; toolchain?: string }[] = [{ name: "local Go (Swiss-table maps)" }, { name: "go1.23.12 (bucket maps)", toolchain: "go1.23.12" }];

describe.skipIf(reason !== undefined)(`traceparent in${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const b of BUILDS) {
    test(`${b.name}: valid traceparents continue the caller's trace, invalid ones start a new one; children follow`, async () => {
      const sample = await startSample(await buildSample({ mode: "default", ...(b.toolchain ? { toolchain: b.toolchain } : {}) }));
      try {
        const out = join(work, `ctx-${sample.pid}.cbor`);
        const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
        await tr.started();
        for (const c of CASES) expect({ c: c.name, status: await get(sample.port, c.path, c.headers) }).toEqual({ c: c.name, status: 200 });
        // A client call made while serving a request with a traceparent stays in the caller's trace.
        expect(await get(sample.port, "/proxy", [["traceparent", `00-${TRACE.replace("0a", "4e")}-${PARENT}-01`]])).toBe(200);
        tr.signal("SIGINT");
        expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
        const spans = readSpans(out).spans;
        // The query string is not recorded (url.path only); requests were sent one after another,
        // so the /hello server spans in start order match CASES minus the dropped one.
        const ordered: SpanRecord[] = spans
          .filter((s) => s.kind === "server" && s.name === "GET /hello")
          .sort((x, y) => (x.startTimeUnixNano < y.startTimeUnixNano ? -1 : 1));
        const kept = CASES.filter((c) => c.want !== "dropped");
        // /proxy's own call to /hello is one more /hello server span, after all the cases.
        expect(ordered.length).toBe(kept.length + 1);
        kept.forEach((c, i) => {
          const s = ordered[i]!;
          if (c.want === "new" || c.want === "dropped") {
            expect({ c: c.name, parent: s.parentSpanId, trace: s.traceId === TRACE }).toEqual({ c: c.name, parent: undefined, trace: false });
          } else {
            expect({ c: c.name, trace: s.traceId, parent: s.parentSpanId, state: s.traceState }).toEqual({ c: c.name, trace: c.want.trace, parent: c.want.parent, state: c.want.state });
          }
        });
        const proxy = spans.find((s) => s.kind === "server" && s.name === "GET /proxy")!;
        expect({ trace: proxy.traceId, parent: proxy.parentSpanId }).toEqual({ trace: TRACE.replace("0a", "4e"), parent: PARENT });
        const client = spans.find((s) => s.kind === "client")!;
        expect({ trace: client.traceId, parent: client.parentSpanId }).toEqual({ trace: proxy.traceId, parent: proxy.spanId });
      } finally {
        await sample.stop();
      }
    }, 300_000);
  }

  test("OTEL_PROPAGATORS=none: incoming traceparents are not read (each request its own root, the unsampled one kept); a warning names the formats not read", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    try {
      const out = join(work, `ctx-none-${sample.pid}.cbor`);
      const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out], { OTEL_PROPAGATORS: "none,b3" });
      await tr.started();
      expect(tr.stderr()).toContain("OTEL_PROPAGATORS: b3 not read");
      const sent = [CASES[0]!, CASES[1]!, CASES[3]!];
      for (const c of sent) expect(await get(sample.port, c.path, c.headers)).toBe(200);
      tr.signal("SIGINT");
      expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
      const servers = readSpans(out).spans.filter((s) => s.kind === "server");
      // All three, the one whose caller did not sample included: nothing came in to follow.
      expect(servers.length).toBe(sent.length);
      for (const s of servers) expect({ parent: s.parentSpanId, fromHeader: s.traceId.endsWith(TRACE.slice(2)) }).toEqual({ parent: undefined, fromHeader: false });
    } finally {
      await sample.stop();
    }
  }, 300_000);
});
