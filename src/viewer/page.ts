/**
 * @module viewer/page — the HTML viewer's stylesheet and script, as strings compiled into the
 * executable (no asset file to embed, no network at view time).
 *
 * The script is plain ES2020 for any current browser, with no library: the two lists (traces,
 * a trace's spans) are virtualized by hand (only the visible rows exist in the DOM; fixed row
 * height), the histograms are inline SVG. Data comes from the page's #meta JSON and the
 * gzip+base64 #data columns (src/viewer/model.ts describes them); strings are decoded from the
 * string table only when shown.
 *
 * Hooks for tests and tools: body[data-ready] is set once the data is loaded ("error" with
 * #overview saying why if it could not be); body[data-load-ms] the script's load time and
 * body[data-timing] its steps (ms since the script started: base64 decoded, columns inflated); trace rows are
 * .trow[data-trace-id], span rows .srow[data-depth][data-span-id][data-parent-id] with class
 * "error" for status Error; error counts are .err-mark; guessed offsets .guess-mark; the page
 * opens a trace given as #trace=<id> in the URL.
 *
 * The script is kept in a String.raw literal: it must not contain a backtick or a dollar sign
 * followed by a brace (tests/unit/viewer/page.test.ts parses it). Non-ASCII characters appear
 * only inside the script's string literals: Bun's transpiler writes them as \u escapes, which a
 * raw string keeps as text and JavaScript then reads back; the stylesheet uses CSS escapes.
 */

export const PAGE_CSS = `
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#fff; --alt:#f7f8fa; --sel:#dbe8ff; --err:#d92d20; --guess:#b54708; --row:22px; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; color: var(--fg); background: var(--bg); }
body { display: flex; flex-direction: column; }
header#top { display: flex; align-items: center; gap: 16px; padding: 6px 12px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.logo { font-weight: 700; }
#overview { color: var(--muted); flex: 1; min-width: 200px; }
#overview b { color: var(--fg); }
nav button { border: 1px solid var(--line); background: var(--alt); padding: 3px 10px; cursor: pointer; font: inherit; }
nav button.on { background: var(--sel); border-color: #84adff; }
main { flex: 1; min-height: 0; display: flex; }
.tab { display: none; flex: 1; min-height: 0; }
.tab.on { display: flex; }
#tab-traces { flex-direction: row; }
#tab-summary, #tab-files { overflow: auto; padding: 12px; display: none; flex-direction: column; gap: 12px; }
#tab-summary.on, #tab-files.on { display: flex; }
#list-pane { width: 46%; min-width: 320px; display: flex; flex-direction: column; border-right: 1px solid var(--line); }
#trace-pane { flex: 1; min-width: 0; display: flex; flex-direction: column; }
@media (max-width: 900px) { #tab-traces { flex-direction: column; } #list-pane { width: auto; height: 40%; border-right: 0; border-bottom: 1px solid var(--line); } }
.vscroll { position: relative; overflow: auto; flex: 1; min-height: 0; }
.vscroll .spacer { width: 1px; }
.vscroll .rows { position: absolute; left: 0; right: 0; top: 0; }
.lrow { display: grid; grid-template-columns: 9.5em 6em 4em 4.5em 7em minmax(6em, 1fr); gap: 6px; height: var(--row); align-items: center; padding: 0 8px; white-space: nowrap; }
.lrow > * { overflow: hidden; text-overflow: ellipsis; }
.lrow.head { border-bottom: 1px solid var(--line); font-weight: 600; background: var(--alt); }
.lrow.head button { all: unset; cursor: pointer; }
.lrow.head button.on::after { content: " \\25BE"; }
.lrow.head button.on.asc::after { content: " \\25B4"; }
.trow { position: absolute; left: 0; right: 0; cursor: pointer; border-bottom: 1px solid #f2f4f7; }
.trow:hover { background: var(--alt); }
.trow.sel { background: var(--sel); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.err-mark { color: #fff; background: var(--err); border-radius: 8px; padding: 0 6px; font-size: 11px; }
.guess-mark { color: var(--guess); font-weight: 700; margin-left: 4px; }
.svc-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 4px; vertical-align: middle; }
#trace-head { padding: 6px 10px; border-bottom: 1px solid var(--line); min-height: 2.2em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#trace-head code { font-size: 12px; }
#axis { position: relative; height: 20px; border-bottom: 1px solid var(--line); margin-left: 40%; color: var(--muted); font-size: 11px; }
#axis span { position: absolute; top: 3px; transform: translateX(-50%); white-space: nowrap; }
#axis span.first { transform: none; }
#axis span.last { transform: translateX(-100%); }
.srow { position: absolute; left: 0; right: 0; height: var(--row); display: flex; cursor: pointer; border-bottom: 1px solid #f2f4f7; }
.srow:hover { background: var(--alt); }
.srow.sel { background: var(--sel); }
.sname { width: 40%; flex: none; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; padding-right: 6px; line-height: var(--row); }
.srow.error .sname .nm { color: var(--err); font-weight: 600; }
.sname .tw { color: var(--muted); }
.bar-cell { position: relative; flex: 1; }
.bar { position: absolute; top: 5px; height: 12px; min-width: 2px; border-radius: 2px; }
.srow.error .bar { outline: 2px solid var(--err); background-image: repeating-linear-gradient(45deg, transparent 0 4px, rgba(217,45,32,.45) 4px 8px) !important; }
.bar-label { position: absolute; top: 2px; font-size: 11px; color: var(--muted); white-space: nowrap; }
#details { height: 38%; overflow: auto; border-top: 1px solid var(--line); padding: 8px 12px; background: var(--alt); }
#details h3 { margin: 4px 0 6px; font-size: 14px; }
#details h4 { margin: 10px 0 4px; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
table.kv { border-collapse: collapse; width: 100%; }
table.kv td { border-bottom: 1px solid var(--line); padding: 2px 6px; vertical-align: top; word-break: break-all; }
table.kv td:first-child { width: 32%; color: var(--muted); word-break: normal; }
.warn { color: var(--guess); }
.bad { color: var(--err); }
table.sum { border-collapse: collapse; }
table.sum th, table.sum td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; vertical-align: middle; }
table.sum th { background: var(--alt); }
table.sum td.num { text-align: right; }
.hist rect { fill: #84adff; }
.hist rect.p99 { fill: #f79009; }
table.sum td.slow { white-space: normal; min-width: 16em; max-width: 30em; }
a.tlink { color: #155eef; cursor: pointer; text-decoration: underline; font-family: ui-monospace, monospace; font-size: 11px; }
.card { border: 1px solid var(--line); padding: 8px 12px; }
`;

export const CLIENT_JS = String.raw`
(function () {
  "use strict";
  var ROW = 22;
  var MAX_PX = 15000000; /* below the ~33.5M px height browsers render; taller lists are scaled */
  var t0load = performance.now(), timing = {};
  var body = document.body;
  var meta, C = {}, strCache = [], dec = new TextDecoder();
  var order, sortKey = "start", sortAsc = true, selTrace = -1, selSpan = -1;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function str(i) {
    var s = strCache[i];
    if (s === undefined) { s = dec.decode(C.strBytes.subarray(C.strOff[i], C.strOff[i + 1])); strCache[i] = s; }
    return s;
  }
  function hex(bytes, from, n) {
    var s = "";
    for (var i = from; i < from + n; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return s;
  }
  function traceId(t) { return hex(C.traceIds, t * 16, 16); }
  function spanId(i) { return hex(C.spanIds, i * 8, 8); }
  function fmtDur(ns) {
    if (!(ns >= 0)) return "-";
    if (ns < 1000) return Math.round(ns) + "ns";
    if (ns < 999500) return trim(ns / 1e3) + "µs";
    if (ns < 999500000) return trim(ns / 1e6) + "ms";
    if (ns < 60e9) return (ns / 1e9).toFixed(2).replace(/\.?0+$/, "") + "s";
    var s = Math.floor(ns / 1e9), m = Math.floor(s / 60);
    return m >= 60 ? Math.floor(m / 60) + "h" + pad(m % 60, 2) + "m" : m + "m" + pad(s % 60, 2) + "s";
  }
  function trim(v) { return v < 10 ? v.toFixed(1).replace(/\.0$/, "") : String(Math.round(v)); }
  function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
  var T0 = 0n;
  function absNs(rel) { return T0 + BigInt(Math.round(rel)); }
  function isoNs(ns) {
    var ms = ns / 1000000n, d = new Date(Number(ms));
    if (isNaN(d.getTime())) return ns + "ns";
    var frac = pad(String(ns % 1000000000n), 9);
    return d.toISOString().slice(0, 19) + "." + frac + "Z";
  }
  function clockTime(rel) { var s = isoNs(absNs(rel)); return s.slice(11, 23); }
  function svcColor(i) { return "hsl(" + ((i * 137.508 + 210) % 360).toFixed(0) + ",62%,52%)"; }

  function b64(s) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
    var bin = atob(s), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function load() {
    meta = JSON.parse($("meta").textContent);
    T0 = BigInt(meta.t0);
    var packed = b64($("data").textContent.trim());
    timing.base64 = Math.round(performance.now() - t0load);
    var stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buf) {
      var T = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i32: Int32Array, f64: Float64Array };
      meta.sections.forEach(function (s) { C[s.name] = new T[s.type](buf, s.offset, s.length); });
      timing.inflate = Math.round(performance.now() - t0load);
    });
  }

  /* ---------------- overview, tabs ---------------- */
  function overview() {
    var o = $("overview");
    o.textContent = "";
    function add(t, b, id) { if (b !== undefined) { var e = el("b", "", b); if (id) e.id = id; o.appendChild(e); } if (t) o.appendChild(document.createTextNode(t)); }
    add("", String(meta.traces), "n-traces"); add(" traces, ");
    add("", String(meta.spans), "n-spans"); add(" spans");
    if (meta.filter) add(" matching " + meta.filter + " (of " + meta.spansRead + " read)");
    add(" · " + meta.files.length + (meta.files.length === 1 ? " file" : " files") + " · " + meta.services.length + (meta.services.length === 1 ? " service" : " services"));
    var errs = 0; for (var i = 0; i < C.tErr.length; i++) errs += C.tErr[i];
    add(" · "); add("", String(errs), "n-errors"); add(" error spans");
    var lost = 0; meta.files.forEach(function (f) { for (var k in f.losses) lost += f.losses[k]; if (f.truncated) lost += 0; });
    if (lost > 0) add(" · losses: " + lost);
    if (meta.files.some(function (f) { return f.truncated; })) add(" · a file is truncated");
    if (meta.files.some(function (f) { return f.probes.some(function (p) { return p.guessed.length > 0; }); })) { var g = el("span", "guess-mark", "⚠ guessed offsets"); g.title = "some struct-field offsets were guessed (--unknown-versions=nearest): see Files"; o.appendChild(g); }
  }
  function tabs() {
    document.querySelectorAll("nav button").forEach(function (b) {
      b.addEventListener("click", function () { showTab(b.dataset.tab); });
    });
  }
  function showTab(name) {
    document.querySelectorAll("nav button").forEach(function (x) { x.classList.toggle("on", x.dataset.tab === name); });
    document.querySelectorAll(".tab").forEach(function (x) { x.classList.toggle("on", x.id === "tab-" + name); });
    if (name === "traces") { listView.refresh(); wfView.refresh(); }
  }

  /* ---------------- virtual list ---------------- */
  function VList(box, count, make) {
    var spacer = box.querySelector(".spacer"), rows = box.querySelector(".rows"), pending = false, self = this;
    this.n = count;
    function layout() { spacer.style.height = Math.min(self.n * ROW, MAX_PX) + "px"; }
    function render() {
      pending = false;
      var h = box.clientHeight || 600, total = self.n * ROW, top = box.scrollTop, vtop = top;
      if (total > MAX_PX) { var room = MAX_PX - h; vtop = room > 0 ? (top / room) * (total - h) : 0; }
      var first = Math.max(0, Math.floor(vtop / ROW) - 5), last = Math.min(self.n, Math.ceil((vtop + h) / ROW) + 5);
      rows.textContent = "";
      var frag = document.createDocumentFragment();
      for (var i = first; i < last; i++) { var r = make(i); r.style.top = (i * ROW - vtop + top) + "px"; frag.appendChild(r); }
      rows.appendChild(frag);
    }
    this.refresh = function () { layout(); render(); };
    this.setCount = function (n) { self.n = n; box.scrollTop = 0; self.refresh(); };
    this.scrollTo = function (i) {
      var h = box.clientHeight || 600, total = self.n * ROW;
      if (total <= MAX_PX) { var y = i * ROW; if (y < box.scrollTop || y + ROW > box.scrollTop + h) box.scrollTop = Math.max(0, y - h / 3); }
      else box.scrollTop = (i * ROW / Math.max(1, total - h)) * (MAX_PX - h);
      render();
    };
    box.addEventListener("scroll", function () { if (!pending) { pending = true; requestAnimationFrame(render); } });
    window.addEventListener("resize", function () { if (!pending) { pending = true; requestAnimationFrame(render); } });
    layout();
  }

  /* ---------------- trace list ---------------- */
  var COLS = [["start", "Start"], ["duration", "Duration"], ["spans", "Spans"], ["errors", "Errors"], ["service", "Service"], ["name", "Root span"]];
  function sortTraces() {
    var n = meta.traces, o = new Uint32Array(n), i;
    for (i = 0; i < n; i++) o[i] = i;
    var k = sortKey, dir = sortAsc ? 1 : -1, svcRank = [];
    if (k === "service") { var names = meta.services.slice().sort(); meta.services.forEach(function (s, j) { svcRank[j] = names.indexOf(s); }); }
    if (k !== "start" || !sortAsc) {
      var key;
      if (k === "start") key = C.tStart; else if (k === "duration") key = C.tDur; else if (k === "spans") key = C.tCount; else if (k === "errors") key = C.tErr;
      else if (k === "service") { key = new Float64Array(n); for (i = 0; i < n; i++) key[i] = svcRank[C.tSvc[i]]; }
      else { key = null; }
      if (key) o.sort(function (a, b) { return (key[a] - key[b]) * dir || a - b; });
      else o.sort(function (a, b) { var x = str(C.tName[a]), y = str(C.tName[b]); return (x < y ? -1 : x > y ? 1 : 0) * dir || a - b; });
    }
    order = o;
  }
  function listHead() {
    var h = $("list-head");
    COLS.forEach(function (c) {
      var b = el("button", "", c[1]);
      b.type = "button"; b.dataset.sort = c[0];
      b.addEventListener("click", function () {
        if (sortKey === c[0]) sortAsc = !sortAsc; else { sortKey = c[0]; sortAsc = c[0] === "start" || c[0] === "service" || c[0] === "name"; }
        sortTraces(); markHead(); listView.setCount(meta.traces);
      });
      h.appendChild(b);
    });
    markHead();
  }
  function markHead() {
    document.querySelectorAll("#list-head button").forEach(function (b) { b.classList.toggle("on", b.dataset.sort === sortKey); b.classList.toggle("asc", sortAsc); });
  }
  function traceRow(pos) {
    var t = order[pos], r = el("div", "trow lrow" + (t === selTrace ? " sel" : ""));
    r.dataset.traceId = traceId(t); r.dataset.pos = pos;
    r.appendChild(el("span", "", clockTime(C.tStart[t])));
    r.appendChild(el("span", "num", fmtDur(C.tDur[t])));
    r.appendChild(el("span", "num", String(C.tCount[t])));
    var e = el("span", "num");
    if (C.tErr[t] > 0) { var m = el("span", "err-mark", "⚠ " + C.tErr[t]); m.title = C.tErr[t] + " span(s) with status Error"; e.appendChild(m); }
    r.appendChild(e);
    var s = el("span"); var dot = el("span", "svc-dot"); dot.style.background = svcColor(C.tSvc[t]); s.appendChild(dot); s.appendChild(document.createTextNode(meta.services[C.tSvc[t]] || "")); r.appendChild(s);
    var nm = el("span", "", str(C.tName[t]));
    if (C.tFlags[t] & 1) { var g = el("span", "guess-mark", "⚠"); g.title = "a span of this trace was decoded with guessed offsets"; nm.appendChild(g); }
    r.appendChild(nm);
    r.title = traceId(t);
    r.addEventListener("click", function () { selectTrace(t); });
    return r;
  }

  /* ---------------- waterfall ---------------- */
  function selectTrace(t, spanIndex) {
    selTrace = t; selSpan = spanIndex === undefined ? C.tFirst[t] : spanIndex;
    listView.refresh();
    var head = $("trace-head"); head.textContent = "";
    head.appendChild(el("b", "", str(C.tName[t]) + " "));
    if (C.tErr[t] > 0) { head.appendChild(el("span", "err-mark", "⚠ " + C.tErr[t] + " error" + (C.tErr[t] > 1 ? "s" : ""))); head.appendChild(document.createTextNode(" ")); }
    head.appendChild(el("code", "", traceId(t)));
    head.appendChild(document.createTextNode("  " + fmtDur(C.tDur[t]) + ", " + C.tCount[t] + " spans, started " + isoNs(absNs(C.tStart[t]))));
    axis(t);
    wfView.setCount(C.tCount[t]);
    if (history.replaceState) history.replaceState(null, "", "#trace=" + traceId(t));
    details(selSpan);
    wfView.scrollTo(selSpan - C.tFirst[t]);
  }
  function niceStep(span) {
    var raw = span / 5, p = Math.pow(10, Math.floor(Math.log10(raw || 1))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }
  function axis(t) {
    var a = $("axis"), d = C.tDur[t] || 1, step = niceStep(d);
    a.textContent = "";
    for (var x = 0; x <= d * 1.0001; x += step) {
      var s = el("span", x === 0 ? "first" : x + step > d * 1.0001 ? "last" : "", fmtDur(x));
      s.style.left = (x / d * 100) + "%";
      a.appendChild(s);
    }
  }
  function spanRow(k) {
    var t = selTrace, i = C.tFirst[t] + k, d = C.tDur[t] || 1, err = C.status[i] === 2;
    var r = el("div", "srow" + (err ? " error" : "") + (i === selSpan ? " sel" : ""));
    r.dataset.depth = C.depth[i]; r.dataset.spanId = spanId(i); r.dataset.index = i;
    r.dataset.parentId = C.parent[i] >= 0 ? spanId(C.parent[i]) : "";
    var n = el("div", "sname"); n.style.paddingLeft = (6 + Math.min(C.depth[i], 40) * 14) + "px";
    if (C.depth[i] > 0) n.appendChild(el("span", "tw", "└ "));
    var nm = el("span", "nm", str(C.name[i])); n.appendChild(nm);
    if (C.flags[i] & 1) { var g = el("span", "guess-mark", "⚠"); g.title = "decoded with guessed offsets"; n.appendChild(g); }
    n.title = str(C.name[i]) + " (" + meta.services[meta.files[C.file[i]].service] + ")";
    r.appendChild(n);
    var cell = el("div", "bar-cell"), b = el("div", "bar"), rel = C.start[i] - C.tStart[t];
    var left = rel / d * 100, width = Math.max(0, C.dur[i]) / d * 100;
    b.style.left = left + "%"; b.style.width = width + "%";
    b.style.background = svcColor(meta.files[C.file[i]].service);
    cell.appendChild(b);
    var lab = el("span", "bar-label", fmtDur(C.dur[i]) + (err ? " ERROR" : ""));
    if (left + width <= 80) lab.style.left = "calc(" + (left + width) + "% + 4px)";
    else if (left > 15) lab.style.right = (100 - left + 0.5) + "%";
    else { lab.style.left = "calc(" + left + "% + 4px)"; lab.style.color = "#fff"; }
    cell.appendChild(lab);
    r.appendChild(cell);
    r.addEventListener("click", function () { selSpan = i; wfView.refresh(); details(i); });
    return r;
  }

  /* ---------------- details ---------------- */
  function kvTable(rows) {
    var tb = el("table", "kv");
    rows.forEach(function (kv) { var tr = el("tr"); tr.appendChild(el("td", "", kv[0])); var v = el("td", kv[2] || "", kv[1]); tr.appendChild(v); tb.appendChild(tr); });
    return tb;
  }
  function details(i) {
    var box = $("details"); box.textContent = "";
    if (i < 0 || i === undefined) return;
    var f = meta.files[C.file[i]], st = C.status[i];
    box.appendChild(el("h3", st === 2 ? "bad" : "", str(C.name[i])));
    var rows = [
      ["service", meta.services[f.service]],
      ["kind", meta.kinds[C.kind[i]]],
      ["status", (st === 2 ? "Error" : st === 1 ? "Ok" : "Unset") + (C.statusMsg[i] ? ": " + str(C.statusMsg[i]) : ""), st === 2 ? "bad" : ""],
      ["duration", fmtDur(C.dur[i]) + " (" + Math.round(C.dur[i]) + " ns)"],
      ["start", isoNs(absNs(C.start[i]))],
      ["trace id", traceId(selTrace)],
      ["span id", spanId(i)],
      ["parent span id", C.parent[i] >= 0 ? spanId(C.parent[i]) : C.parentMissing[i] ? str(C.parentMissing[i]) + " (not in these captures)" : "none (a root span)"],
      ["scope", str(C.scope[i])],
      ["capture", f.file + " (host " + f.host + ", pid " + f.pid + ")"]
    ];
    box.appendChild(kvTable(rows));
    box.appendChild(el("h4", "", "Attributes"));
    var attrs = [], guessed = null;
    var set = C.attrSet[i];
    for (var p = C.setOff[set]; p < C.setOff[set + 1]; p += 2) {
      var k = str(C.setPairs[p]), v = str(C.setPairs[p + 1]);
      if (k === "beetrace.guessed_offsets") guessed = v;
      attrs.push([k, v, k === "beetrace.guessed_offsets" ? "warn" : ""]);
    }
    box.appendChild(attrs.length ? kvTable(attrs) : el("div", "", "none"));
    box.appendChild(el("h4", "", "Resource"));
    var res = []; for (var rk in f.resource) res.push([rk, String(f.resource[rk])]);
    box.appendChild(kvTable(res));
    var extra = C.extra[i] ? JSON.parse(str(C.extra[i])) : { events: [], links: [] };
    box.appendChild(el("h4", "", "Events"));
    var spanStart = absNs(C.start[i]);
    box.appendChild(extra.events.length ? kvTable(extra.events.map(function (e, j) {
      var at = "", attrs = [];
      try { at = "+" + fmtDur(Number(BigInt(e.timeUnixNano) - spanStart)) + " "; } catch (x) { at = ""; }
      for (var ek in (e.attributes || {})) attrs.push(ek + "=" + e.attributes[ek]);
      return [e.name || "event " + j, at + attrs.join(", ")];
    })) : el("div", "", "none recorded"));
    box.appendChild(el("h4", "", "Links"));
    box.appendChild(extra.links.length ? kvTable(extra.links.map(function (l, j) { return ["link " + j, JSON.stringify(l)]; })) : el("div", "", "none recorded"));
    box.appendChild(el("h4", "", "Clock"));
    var ci = C.clock[i], clk;
    if (ci === 0xffffffff) clk = [["source", "epoch times as the tracer wrote them (capture format " + f.format + ")"]];
    else {
      var c = meta.clocks[ci];
      clk = [
        ["source", "BPF boot-time stamps + the " + (c.index === 0 ? "capture header's anchor" : "clock item #" + c.index + " (re-anchored during the capture)")],
        ["anchor taken at", isoNs(BigInt(c.realtimeNs))],
        ["boot time then", c.boottimeNs + " ns"],
        ["epoch = boot +", c.offsetNs + " ns"]
      ];
    }
    box.appendChild(kvTable(clk));
    box.appendChild(el("h4", "", "Offsets"));
    var fileGuesses = [];
    f.probes.forEach(function (pr) { pr.guessed.forEach(function (g) { fileGuesses.push([pr.id + ": " + g.field, (g.offset === undefined ? "offset" : "offset " + g.offset) + " guessed", "warn"]); }); });
    if (guessed !== null) box.appendChild(el("div", "warn", "⚠ this span was decoded with guessed offsets for: " + guessed));
    if (fileGuesses.length) box.appendChild(kvTable(fileGuesses));
    else if (guessed === null) box.appendChild(el("div", "", "no guessed offsets in this capture (DWARF, snapshot or --offsets file)"));
  }

  /* ---------------- summary tab ---------------- */
  function bucketLow(b) { return b <= 0 ? 0 : Math.round(Math.pow(10, 3 + (b - 1) / 4)); }
  function histogram(e) {
    var h = e.histogram, first = -1, last = -1, max = 0, i;
    for (i = 0; i < h.length; i++) if (h[i] > 0) { if (first < 0) first = i; last = i; if (h[i] > max) max = h[i]; }
    var NS = "http://www.w3.org/2000/svg", W = 220, H = 34;
    var svg = document.createElementNS(NS, "svg"); svg.setAttribute("class", "hist"); svg.setAttribute("width", W); svg.setAttribute("height", H + 12);
    if (first < 0) return svg;
    first = Math.max(0, first - 1); last = Math.min(h.length - 1, last + 1);
    var n = last - first + 1, bw = W / n;
    for (i = first; i <= last; i++) {
      var r = document.createElementNS(NS, "rect"), bh = h[i] ? Math.max(1, h[i] / max * H) : 0;
      r.setAttribute("x", (i - first) * bw + 0.5); r.setAttribute("width", Math.max(1, bw - 1)); r.setAttribute("y", H - bh); r.setAttribute("height", bh);
      if (bucketLow(i + 1) > e.p99Ns) r.setAttribute("class", "p99");
      var tt = document.createElementNS(NS, "title"); tt.textContent = fmtDur(bucketLow(i)) + " – " + fmtDur(bucketLow(i + 1)) + ": " + h[i]; r.appendChild(tt);
      svg.appendChild(r);
    }
    [first, last + 1].forEach(function (b, j) {
      var tx = document.createElementNS(NS, "text"); tx.setAttribute("x", j ? W : 0); tx.setAttribute("y", H + 11); tx.setAttribute("font-size", "9"); tx.setAttribute("fill", "#667085");
      if (j) tx.setAttribute("text-anchor", "end");
      tx.textContent = fmtDur(bucketLow(b)); svg.appendChild(tx);
    });
    return svg;
  }
  function summaryTab() {
    var box = $("tab-summary"), s = meta.summary;
    box.appendChild(el("div", "", s.spans + " spans" + (meta.filter ? " matching " + meta.filter : "") + " over " + s.windowSeconds.toFixed(3) + " s; rate = count / window; percentiles are nearest-rank; histograms: spans per duration bucket (4 per decade), orange from the p99 bucket up"));
    var tb = el("table", "sum"), tr = el("tr");
    ["Service", "Kind", "Endpoint", "Count", "Rate/s", "Errors", "p50", "p90", "p99", "Max", "Latency histogram", "Slowest traces"].forEach(function (h) { tr.appendChild(el("th", "", h)); });
    tb.appendChild(tr);
    s.endpoints.forEach(function (e) {
      var r = el("tr"); r.className = "ep";
      r.appendChild(el("td", "", e.service)); r.appendChild(el("td", "", e.kind)); r.appendChild(el("td", "endpoint", e.endpoint));
      r.appendChild(el("td", "num count", String(e.count)));
      r.appendChild(el("td", "num", e.ratePerSecond === null ? "-" : e.ratePerSecond.toFixed(2)));
      r.appendChild(el("td", "num" + (e.errors ? " bad" : ""), (e.errorRatio * 100).toFixed(1) + "% (" + e.errors + ")"));
      [e.p50Ns, e.p90Ns, e.p99Ns, e.maxNs].forEach(function (v) { r.appendChild(el("td", "num", fmtDur(v))); });
      var hc = el("td"); hc.appendChild(histogram(e)); r.appendChild(hc);
      var sl = el("td", "slow");
      e.slowest.forEach(function (x) {
        var a = el("a", "tlink", x.traceId.slice(0, 12) + "… " + fmtDur(x.durationNs)); a.title = x.traceId;
        a.addEventListener("click", function () { openTraceById(x.traceId, x.spanId); });
        sl.appendChild(a); sl.appendChild(document.createTextNode(" "));
      });
      r.appendChild(sl);
      tb.appendChild(r);
    });
    box.appendChild(tb);
  }
  function filesTab() {
    var box = $("tab-files");
    meta.files.forEach(function (f) {
      var card = el("div", "card");
      card.appendChild(el("h3", "", f.file));
      var rows = [
        ["service", meta.services[f.service]], ["host", f.host], ["target", f.exe + " (pid " + f.pid + ", " + (f.goVersion || "Go version unknown") + ")"],
        ["recorded by", f.tracer + ", capture format " + f.format + ", started " + isoNs(BigInt(f.createdAt))],
        ["spans", String(f.spans)], ["ended", f.end === null ? "no end record: the tracer was killed or is still running" : f.end, f.end === null ? "warn" : ""]
      ];
      if (f.truncated) rows.push(["truncated", "the last " + f.trailingBytes + " bytes are an incomplete record", "warn"]);
      if (f.invalid) rows.push(["damaged", f.invalid + " damaged region(s), " + f.damagedBytes + " bytes skipped (everything intact is shown)", "bad"]);
      var l = []; for (var k in f.losses) if (f.losses[k]) l.push(k + " " + f.losses[k]);
      rows.push(["losses", l.length ? l.join(", ") : "none", l.length ? "warn" : ""]);
      f.probes.forEach(function (p) {
        rows.push(["probe " + p.id, (p.attached ? "attached" : "not attached") + (p.reason ? ": " + p.reason : "") + (p.guessed.length ? " · guessed offsets: " + p.guessed.map(function (g) { return g.field + (g.offset === undefined ? "" : "=" + g.offset); }).join(", ") : ""), p.guessed.length || !p.attached ? "warn" : ""]);
      });
      card.appendChild(kvTable(rows));
      box.appendChild(card);
    });
  }
  function findTrace(id) {
    id = id.toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(id)) return -1;
    var want = new Uint8Array(16), t, j;
    for (j = 0; j < 16; j++) want[j] = parseInt(id.substr(2 * j, 2), 16);
    outer: for (t = 0; t < meta.traces; t++) { for (j = 0; j < 16; j++) if (C.traceIds[t * 16 + j] !== want[j]) continue outer; return t; }
    return -1;
  }
  function openTraceById(id, sid) {
    var t = findTrace(id);
    if (t < 0) return;
    showTab("traces");
    var si;
    if (sid) for (var i = C.tFirst[t]; i < C.tFirst[t] + C.tCount[t]; i++) if (spanId(i) === sid) { si = i; break; }
    selectTrace(t, si);
    for (var p = 0; p < order.length; p++) if (order[p] === t) { listView.scrollTo(p); break; }
  }

  var listView, wfView;
  function start() {
    overview();
    tabs();
    sortTraces();
    listHead();
    listView = new VList($("list"), meta.traces, traceRow);
    wfView = new VList($("wf"), 0, spanRow);
    listView.refresh();
    summaryTab();
    filesTab();
    var m = /#trace=([0-9a-fA-F]{32})/.exec(location.hash);
    if (m) openTraceById(m[1]); else if (meta.traces > 0) selectTrace(order[0]);
    window.addEventListener("hashchange", function () {
      var h = /#trace=([0-9a-fA-F]{32})/.exec(location.hash);
      if (h && (selTrace < 0 || traceId(selTrace) !== h[1].toLowerCase())) openTraceById(h[1]);
    });
    body.dataset.loadMs = String(Math.round(performance.now() - t0load));
    body.dataset.timing = JSON.stringify(timing);
    body.dataset.ready = "1";
  }
  function fail(e) {
    $("overview").textContent = "could not load the capture data: " + (e && e.message ? e.message : e) + " (this page needs a browser with DecompressionStream: Chrome 80+, Firefox 113+, Safari 16.4+)";
    body.dataset.ready = "error";
  }
  try { load().then(start).catch(fail); } catch (e) { fail(e); }
})();
`;
