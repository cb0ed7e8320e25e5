/**
 * @module viewer/html — `beetrace view FILE... --html OUT.html`: one self-contained HTML file.
 *
 * The page holds everything it shows: the viewer's CSS and script (src/viewer/page.ts, plain
 * strings compiled into the executable, so dist/beetrace needs no asset file), a small JSON part
 * and the span columns (src/viewer/model.ts) gzip-compressed and base64-encoded in a
 * non-executed script element, which the page inflates with the browser's own
 * DecompressionStream. A Content-Security-Policy allows no fetch of any kind, so the file opens
 * the same from a USB stick, offline, and can never call home.
 */
import * as fs from "node:fs";
import { zlib } from "../runtime.ts";
import { TracerError, fromSystemError } from "../errors.ts";
import { log } from "../log.ts";
import { parseFilters, type FilterOptions } from "../cli/filters.ts";
import { damageOf, readSpans, type CaptureSummary } from "./read.ts";
import { ViewerModelBuilder, type ViewerData } from "./model.ts";
import { CLIENT_JS, PAGE_CSS } from "./page.ts";

export interface HtmlResult {
  spans: number;
  traces: number;
  bytes: number;
}

/** Reads `files` as one set and writes the page to `out` (mode 0600: it holds the spans' URLs and peers). */
export function writeHtmlView(files: string[], out: string, filters: FilterOptions = {}, argv?: readonly string[]): HtmlResult {
  const filter = parseFilters(filters, argv);
  const builder = new ViewerModelBuilder(filter);
  const captures: CaptureSummary[] = [];
  for (const file of files) {
    const c = readSpans(file, (span, clock, header) => builder.add(span, clock, header));
    builder.endFile(c);
    captures.push(c);
    if (c.truncated) log.warn(`${file} is truncated (last ${c.trailingBytes} bytes incomplete); its ${c.spans} complete spans are shown`);
  }
  const title = files.length === 1 ? files[0]!.split("/").pop()! : `${files.length} captures`;
  const data = builder.build(title);
  const html = renderHtml(data);
  let fd: number;
  try {
    fd = fs.openSync(out, "w", 0o600);
  } catch (e) {
    const t = fromSystemError(e, `write ${out}`);
    throw new TracerError("output_failed", t.message, { hint: t.hint ?? "choose another --html path", cause: e });
  }
  try {
    fs.writeSync(fd, html);
  } catch (e) {
    const t = fromSystemError(e, `write ${out}`);
    throw new TracerError("output_failed", t.message, { hint: t.hint ?? "check the free space", cause: e });
  } finally {
    fs.closeSync(fd);
  }
  log.verbose(`wrote ${out}: ${data.meta.spans} spans in ${data.meta.traces} traces, ${html.length} bytes`);
  // Damaged files: the page shows everything intact; the exit status still says so (17).
  for (const c of captures) {
    const e = damageOf(c);
    if (e !== undefined) throw e;
  }
  return { spans: data.meta.spans, traces: data.meta.traces, bytes: html.length };
}

/** JSON safe inside a <script> element: no "</script" or "<!--" can form. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page for `data`. Level 6 gzip: the columns are mostly small integers and shrink ~5-10×. */
export function renderHtml(data: ViewerData): string {
  const packed = Buffer.from(zlib().gzipSync(data.blob, { level: 6 })).toString("base64");
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    // No network of any kind: inline script and style only, images only as data: URLs.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>beetrace: ${escapeHtml(data.meta.title)}</title>`,
    `<style>${PAGE_CSS}</style></head><body>`,
    '<header id="top"><span class="logo">beetrace</span><span id="overview">loading…</span>',
    '<nav><button type="button" data-tab="traces" class="on">Traces</button><button type="button" data-tab="summary">Summary</button><button type="button" data-tab="files">Files</button></nav></header>',
    '<main><section id="tab-traces" class="tab on">',
    '<div id="list-pane"><div id="list-head" class="lrow head"></div><div id="list" class="vscroll"><div class="spacer"></div><div class="rows"></div></div></div>',
    '<div id="trace-pane"><div id="trace-head">Select a trace</div><div id="axis"></div><div id="wf" class="vscroll"><div class="spacer"></div><div class="rows"></div></div><div id="details"></div></div>',
    '</section><section id="tab-summary" class="tab"></section><section id="tab-files" class="tab"></section></main>',
    `<script type="application/json" id="meta">${scriptJson(data.meta)}</script>`,
    `<script type="application/octet-stream" id="data">${packed}</script>`,
    `<script>${CLIENT_JS}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}
