/**
 * @module bench/viewer-load.bench — how long the `view --html` page of a million-span capture
 * takes to load in headless Chromium (target: under 3 s), and what building it costs.
 *
 *   node_modules/.bin/bun bench/viewer-load.bench.ts [--spans 1000000] [--runs 5]
 *
 * Needs Debian's chromium (scripts/setup.sh) and playwright-core; no root. The capture is
 * tests/unit/viewer/captures.ts's bigWorkload: proxy traces (3 spans: server → client →
 * server, 1 in 100 failing) alternating with single /hello requests, net/http records written
 * through the BTF-generated layouts into a format-2 capture (cached in .cache/bench/ by span
 * count). The page is written in this process by writeHtmlView (what `view --html` runs).
 *
 * Per run, a fresh page in one browser (fresh profile): *ready* = from navigation start until
 * the viewer sets body[data-ready] (HTML parse, base64 decode, inflating the columns, first
 * render of the trace list and the first trace's waterfall), and the page's own steps
 * (body[data-timing]). Also: the time to sort the trace list by duration (a click).
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { bigWorkload, writeCapture } from "../tests/unit/viewer/captures.ts";
import { browserSkipReason, launchBrowser, openViewer } from "../tests/e2e/viewer-browser.ts";
import { writeHtmlView } from "../src/viewer/html.ts";
import { REPO_ROOT } from "../tests/harness/go.ts";
import { fmtSummary, intOption, machineLine, parseOptions, selfCpuMs, summarize } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { spans: "1000000", runs: "5" });
const spans = intOption(opts.spans, "spans");
const runs = Math.max(1, intOption(opts.runs, "runs"));
const skip = browserSkipReason();
if (skip) throw new Error(skip);

console.log(machineLine());
const dir = join(REPO_ROOT, ".cache", "bench", "viewer");
mkdirSync(dir, { recursive: true });
const cap = join(dir, `capture-${spans}.cbor`);
if (!existsSync(cap)) {
  const t = performance.now();
  writeCapture(cap, bigWorkload(spans));
  console.log(`capture: ${spans} spans, ${(statSync(cap).size / 1e6).toFixed(1)} MB written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
const html = join(dir, `page-${spans}.html`);
const cpu0 = selfCpuMs();
const t0 = performance.now();
const r = writeHtmlView([cap], html);
console.log(
  `view --html: ${r.spans} spans in ${r.traces} traces → ${(r.bytes / 1e6).toFixed(1)} MB page in ${((performance.now() - t0) / 1000).toFixed(1)} s wall, ${((selfCpuMs() - cpu0) / 1000).toFixed(1)} s CPU, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
);

const b = await launchBrowser();
try {
  const ready: number[] = [];
  const script: number[] = [];
  const sort: number[] = [];
  for (let i = 0; i < runs; i++) {
    const p = await openViewer(b, html, "", 120_000);
    ready.push(p.wallMs);
    script.push(p.loadMs);
    if (p.requests.length > 0) throw new Error(`the page requested ${p.requests.join(", ")}`);
    const shown = await p.page.textContent("#n-spans");
    if (shown !== String(r.spans)) throw new Error(`the page shows ${shown} spans, expected ${r.spans}`);
    const ts = performance.now();
    await p.page.click('#list-head button[data-sort="duration"]');
    // The click handler sorts and re-renders synchronously; this waits for it to have run.
    await p.page.waitForFunction(`document.querySelector("#list-head button.on")?.getAttribute("data-sort") === "duration"`);
    sort.push(performance.now() - ts);
    console.log(`run ${i + 1}: ready ${p.wallMs.toFixed(0)} ms (script ${p.loadMs} ms, steps ${await p.page.getAttribute("body", "data-timing")}), sort by duration ${sort[i]!.toFixed(0)} ms`);
    await p.page.close();
  }
  console.log(`ready after navigation: ${fmtSummary(summarize(ready))}`);
  console.log(`script load:            ${fmtSummary(summarize(script))}`);
  console.log(`sort by duration:       ${fmtSummary(summarize(sort))}`);
} finally {
  await b.close();
}
