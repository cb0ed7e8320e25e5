/**
 * @module tests/e2e/viewer-html — `beetrace view FILE... --html OUT` opened in a real headless
 * Chromium (Debian's package, tests/e2e/viewer-browser.ts): the DOM shows the traces and spans
 * the captures hold (trace count, a known trace's span names and nesting, error marks,
 * guessed-offset marks, sorting, the summary tab), the page fetches nothing, and a
 * million-span capture loads and shows its summary. Screenshots are saved under
 * .cache/e2e/viewer/ for a person to look at. The load time of the big page is measured by
 * bench/viewer-load.bench.ts, not asserted here. Needs no root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { E2E_CACHE, runTracerToEnd } from "./harness.ts";
import { browserSkipReason, launchBrowser, openViewer, type Browser } from "./viewer-browser.ts";
import { BOOT0, bigWorkload, proxyTrace, sleepWorkload, writeCapture, type Req } from "../unit/viewer/captures.ts";
import { writeHtmlView } from "../../src/viewer/html.ts";

const reason = browserSkipReason();
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-viewer-"));
export const SHOTS = join(E2E_CACHE, "viewer");
mkdirSync(SHOTS, { recursive: true });
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

/**
 * Two captures, as from two hosts: "front" has 5 proxy traces (the third fails inside: its client
 * span and the inner server span are errors) and 30 /sleep requests (3 failing, guessed offsets);
 * "back" has 10 /sleep requests. 45 traces, 55 spans.
 */
const FAILING = proxyTrace(2, 0n)[0]!.traceId;
function writeCaptures(): string[] {
  const a = join(work, "front.cbor");
  const b = join(work, "back.cbor");
  const proxies: Req[] = [];
  for (let i = 0; i < 5; i++) proxies.push(...proxyTrace(i, BOOT0 + 2_000_000_000n + BigInt(i) * 1_000_000n, i === 2));
  writeCapture(a, [...proxies, ...sleepWorkload(30)], { serviceName: "front", host: "web-1", guessed: ["net/http.Request.Pattern"] });
  const back = [...sleepWorkload(10)].map((r, i) => ({ ...r, traceId: "c" + r.traceId.slice(1), spanId: "c" + r.spanId.slice(1), status: 200, startNs: r.startNs + BigInt(i) * 7_000n }));
  writeCapture(b, back, { serviceName: "back", host: "web-2" });
  return [a, b];
}

describe.skipIf(reason !== undefined)(`view --html in headless Chromium${reason ? ` — skipped: ${reason}` : ""}`, () => {
  const html = join(work, "view.html");
  beforeAll(async () => {
    const files = writeCaptures();
    // The executable the user runs (its page template is compiled in).
    const r = await runTracerToEnd(["view", ...files, "--html", html], 120_000);
    expect(r.stderr).toBe("");
    expect(r.exit.code).toBe(0);
    browser = await launchBrowser();
  }, 180_000);

  test("trace list, a known trace's waterfall and its error marks; nothing fetched", async () => {
    const p = await openViewer(browser!, html, `#trace=${FAILING}`);
    const { page } = p;
    expect(await page.textContent("#n-traces")).toBe("45");
    expect(await page.textContent("#n-spans")).toBe("55");
    expect(await page.textContent("#n-errors")).toBe("5");
    expect(await page.textContent("#overview")).toContain("2 files · 2 services");
    // The failing proxy trace: three spans nested root → client → inner server, two errors.
    const rows = await page.$$eval(".srow", (els) =>
      els.map((e) => ({ name: e.querySelector(".nm")!.textContent, depth: Number(e.getAttribute("data-depth")), id: e.getAttribute("data-span-id"), parent: e.getAttribute("data-parent-id"), error: e.classList.contains("error") })),
    );
    const [inner, client, root] = proxyTrace(2, 0n);
    expect(rows).toEqual([
      { name: "GET /proxy", depth: 0, id: root!.spanId, parent: "", error: false },
      { name: "GET", depth: 1, id: client!.spanId, parent: root!.spanId, error: true },
      { name: "GET /hello", depth: 2, id: inner!.spanId, parent: client!.spanId, error: true },
    ]);
    expect(await page.textContent("#trace-head")).toContain(FAILING);
    // Its row in the trace list is selected and carries the error count.
    const sel = await page.$eval(".trow.sel", (e) => ({ id: e.getAttribute("data-trace-id"), err: e.querySelector(".err-mark")?.textContent }));
    expect(sel).toEqual({ id: FAILING, err: "⚠ 2" });
    // Details of a span: click the inner server span.
    await page.click(`.srow[data-span-id="${inner!.spanId}"]`);
    const details = await page.textContent("#details");
    expect(details).toContain("http.response.status_code500");
    expect(details).toContain("service.namefront");
    expect(details).toContain("capture header's anchor");
    expect(details).toContain("guessed offsets for: net/http.Request.Pattern");
    await page.screenshot({ path: join(SHOTS, "trace.png") });
    expect(p.requests).toEqual([]);
    expect(p.errors).toEqual([]);
    await page.close();
  }, 120_000);

  test("sorting by duration, errors and service; the summary tab; several files as one set", async () => {
    const { page, errors } = await openViewer(browser!, html);
    const firstIds = () => page.$$eval(".trow", (els) => els.slice(0, 3).map((e) => e.getAttribute("data-trace-id")));
    await page.click('#list-head button[data-sort="duration"]');
    // Longest first: the /sleep requests of 30, 29, 28 ms in "front".
    expect(await firstIds()).toEqual([30, 29, 28].map((i) => "5" + i.toString(16).padStart(31, "0")));
    await page.click('#list-head button[data-sort="errors"]');
    expect((await firstIds())[0]).toBe(FAILING);
    await page.click('#list-head button[data-sort="service"]');
    const services = await page.$$eval(".trow", (els) => els.map((e) => e.children[4]!.textContent));
    expect(services[0]).toBe("back");
    expect(services.filter((s) => s === "back")).toHaveLength(10);

    await page.click('nav button[data-tab="summary"]');
    const summary = await page.$$eval("tr.ep", (els) => els.map((e) => [...e.querySelectorAll("td")].slice(0, 6).map((td) => td.textContent)));
    expect(summary).toContainEqual(["front", "server", "GET /sleep", "30", expect.any(String), "10.0% (3)"]);
    expect(summary).toContainEqual(["back", "server", "GET /sleep", "10", expect.any(String), "0.0% (0)"]);
    expect(summary).toContainEqual(["front", "client", "GET 127.0.0.1:8080", "5", expect.any(String), "20.0% (1)"]);
    expect(await page.$$eval("tr.ep svg.hist rect", (els) => els.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, "summary.png") });
    await page.click('nav button[data-tab="files"]');
    expect(await page.textContent("#tab-files")).toContain("guessed offsets: net/http.Request.Pattern");
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  test("a million-span capture loads and shows its summary", async () => {
    const cap = join(work, "million.cbor");
    const big = join(work, "million.html");
    writeCapture(cap, bigWorkload(1_000_000));
    const r = writeHtmlView([cap], big);
    expect(r.spans).toBe(1_000_000);
    const p = await openViewer(browser!, big, "", 120_000);
    const { page } = p;
    expect(await page.textContent("#n-spans")).toBe("1000000");
    expect(await page.textContent("#n-traces")).toBe(String(r.traces));
    // Only the visible rows exist: the list is virtualized. Scrolled to the end, it shows the last trace.
    expect(await page.$$eval(".trow", (els) => els.length)).toBeLessThan(200);
    await page.$eval("#list", (e) => void (e.scrollTop = e.scrollHeight));
    await page.waitForSelector(`.trow[data-pos="${r.traces - 1}"]`, { timeout: 10_000 });
    expect(await page.$$eval(".trow", (els) => els.length)).toBeLessThan(200);
    await page.click('nav button[data-tab="summary"]');
    const counts = await page.$$eval("tr.ep", (els) => els.map((e) => Number(e.querySelector("td.count")!.textContent)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1_000_000);
    await page.click('nav button[data-tab="traces"]');
    await page.screenshot({ path: join(SHOTS, "million.png") });
    console.log(`million-span page: ${Math.round(r.bytes / 1e6)} MB, ready ${Math.round(p.wallMs)} ms after navigation (script ${p.loadMs} ms); timing not asserted (bench/viewer-load.bench.ts)`);
    expect(p.requests).toEqual([]);
    await page.close();
  }, 600_000);
});
