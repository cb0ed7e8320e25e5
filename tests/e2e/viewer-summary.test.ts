/**
 * @module tests/e2e/viewer-summary — `beetrace summary` and `view --html` on a real capture:
 * dist/beetrace traces the sample Go service while the test sends 100 requests to
 * /sleep?ms=N (N = 10, 15, … 55 ms, ten of each) and 10 to /fail (500), then the figures are
 * checked against what the workload implies. A request lasts at least its sleep, so the
 * nearest-rank percentiles have exact lower bounds (p50 ≥ 30 ms: at most 40 requests sleep
 * less) and upper bounds with scheduling slack. Needs root; skips with the reason otherwise.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { buildSample, e2eSkipReason, httpGet, nowNs, runTracer, runTracerToEnd, startSample, e2eWorkDir } from "./harness.ts";
import { browserSkipReason, launchBrowser, openViewer } from "./viewer-browser.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("summary");

/** Sleep of request i: ten requests each of 10, 15, … 55 ms. */
const sleepMs = (i: number) => 10 + (i % 10) * 5;
const MS = 1_000_000;
/** Scheduling slack above a handler's sleep on a loaded 2-core CI machine. */
const SLACK_MS = 250;

describe.skipIf(reason !== undefined)(`summary of a traced workload${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("100 requests to /sleep with known durations and 10 failing requests", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin);
    const cap = join(work, "sample.cbor");
    let t0 = 0n;
    let t1 = 0n;
    try {
      const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", cap]);
      await tr.started();
      t0 = nowNs();
      for (let i = 0; i < 100; i++) expect((await httpGet(sample.port, `/sleep?ms=${sleepMs(i)}`)).status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await httpGet(sample.port, "/fail")).status).toBe(500);
      t1 = nowNs();
      tr.signal("SIGINT");
      expect(await tr.exit()).toMatchObject({ code: 0 });
    } finally {
      await sample.stop();
    }

    const r = await runTracerToEnd(["summary", cap, "--json"]);
    expect({ code: r.exit.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const s = JSON.parse(r.stdout);
    expect(s.spans).toBe(110);
    expect(s.window.seconds).toBeLessThanOrEqual(Number(t1 - t0) / 1e9);
    const sleep = s.endpoints.find((e: any) => e.endpoint === "GET /sleep");
    const fail = s.endpoints.find((e: any) => e.endpoint === "GET /fail");
    expect(s.endpoints).toHaveLength(2);
    expect(sleep).toMatchObject({ kind: "server", count: 100, errors: 0, errorRatio: 0 });
    expect(fail).toMatchObject({ kind: "server", count: 10, errors: 10, errorRatio: 1 });
    const d = sleep.durationNs;
    // The ⌈p·100⌉-th smallest: p50 is a 30 ms request or slower, p90 50 ms, p99 and max 55 ms.
    for (const [v, ms] of [
      [d.p50, 30],
      [d.p90, 50],
      [d.p99, 55],
      [d.max, 55],
    ] as const) {
      expect(v).toBeGreaterThanOrEqual(ms * MS);
      expect(v).toBeLessThan((ms + SLACK_MS) * MS);
    }
    expect(d.p50).toBeLessThanOrEqual(d.p90);
    expect(d.p90).toBeLessThanOrEqual(d.p99);
    expect(d.p99).toBeLessThanOrEqual(d.max);
    expect(sleep.slowestTraces).toHaveLength(5);
    expect(sleep.slowestTraces[0].durationNs).toBe(d.max);
    for (const t of sleep.slowestTraces) expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sleep.ratePerSecond * s.window.seconds).toBeCloseTo(100, 6);
    expect(sleep.histogram.reduce((a: number, b: any) => a + b.count, 0)).toBe(100);

    // The text form says the same.
    const text = await runTracerToEnd(["summary", cap, "--errors"]);
    expect(text.exit.code).toBe(0);
    expect(text.stdout).toMatch(/GET \/fail\s+10\s+\S+\s+100\.0%/);
    expect(text.stdout).not.toContain("GET /sleep");

    // And the HTML page, when a browser is here.
    if (browserSkipReason() === undefined) {
      const html = join(work, "sample.html");
      const v = await runTracerToEnd(["view", cap, "--html", html]);
      expect(v.exit.code).toBe(0);
      const b = await launchBrowser();
      try {
        const { page, requests } = await openViewer(b, html);
        expect(await page.textContent("#n-spans")).toBe("110");
        expect(await page.textContent("#n-errors")).toBe("10");
        await page.click('nav button[data-tab="summary"]');
        const rows = await page.$$eval("tr.ep", (els) => els.map((e) => [...e.querySelectorAll("td")].slice(2, 4).map((td) => td.textContent)));
        expect(rows).toEqual([
          ["GET /sleep", "100"],
          ["GET /fail", "10"],
        ]);
        expect(requests).toEqual([]);
      } finally {
        await b.close();
      }
    }
  }, 300_000);
});
