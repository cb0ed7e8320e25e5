/**
 * The HTML viewer's data (src/viewer/model.ts) and page (src/viewer/html.ts, page.ts) without a
 * browser: spans laid out trace by trace in tree order with depths and parents, per-trace
 * figures, the string table, guessed-offset and clock columns, several files as one set, and a
 * self-contained page (CSP, no external reference, a script that parses).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { ViewerModelBuilder, type ViewerData } from "../../../src/viewer/model.ts";
import { readSpans } from "../../../src/viewer/read.ts";
import { renderHtml, writeHtmlView } from "../../../src/viewer/html.ts";
import { CLIENT_JS, PAGE_CSS } from "../../../src/viewer/page.ts";
import { parseFilters } from "../../../src/cli/filters.ts";
import { TracerError } from "../../../src/errors.ts";
import { BOOT0, OFFSET, proxyTrace, sleepWorkload, writeCapture } from "./captures.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-viewer-model-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function build(files: string[], filter = parseFilters({})): ViewerData {
  const b = new ViewerModelBuilder(filter);
  for (const f of files) b.endFile(readSpans(f, (s, c, h) => b.add(s, c, h)));
  return b.build("t");
}

/** Columns of the blob by name. */
function columns(d: ViewerData): Record<string, ArrayLike<number>> {
  const T = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i32: Int32Array, f64: Float64Array } as const;
  const buf = d.blob.buffer.slice(d.blob.byteOffset, d.blob.byteOffset + d.blob.byteLength) as ArrayBuffer;
  return Object.fromEntries(d.meta.sections.map((s) => [s.name, new T[s.type](buf, s.offset, s.length)]));
}

function strings(c: Record<string, ArrayLike<number>>): (i: number) => string {
  const bytes = c.strBytes as Uint8Array;
  const off = c.strOff as Uint32Array;
  return (i) => new TextDecoder().decode(bytes.subarray(off[i], off[i + 1]));
}

describe("layout", () => {
  const file = path.join(dir, "proxy.cbor");
  // Two proxy traces (records innermost first, as BPF writes them), the second failing inside.
  writeCapture(file, [...proxyTrace(1, BOOT0 + 5_000_000n, true), ...proxyTrace(0, BOOT0)], { guessed: ["net/http.Request.Pattern"] });
  const d = build([file]);
  const c = columns(d);
  const str = strings(c);

  test("traces by start, spans in tree order with depth and parent", () => {
    expect(d.meta.traces).toBe(2);
    expect(d.meta.spans).toBe(6);
    expect(Array.from(c.tFirst!)).toEqual([0, 3]);
    expect(Array.from(c.tCount!)).toEqual([3, 3]);
    expect(Array.from(c.name!).map(str)).toEqual(["GET /proxy", "GET", "GET /hello", "GET /proxy", "GET", "GET /hello"]);
    expect(Array.from(c.depth!)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from(c.parent!)).toEqual([-1, 0, 1, -1, 3, 4]);
    // t0 is the first request's start; times are relative to it.
    expect(BigInt(d.meta.t0)).toBe(BOOT0 + OFFSET);
    expect(Array.from(c.start!)).toEqual([0, 20_000, 90_000, 5_000_000, 5_020_000, 5_090_000]);
    expect(Array.from(c.dur!)).toEqual([200_000, 160_000, 30_000, 200_000, 160_000, 30_000]);
    expect(Array.from(c.tStart!)).toEqual([0, 5_000_000]);
    expect(Array.from(c.tDur!)).toEqual([200_000, 200_000]);
  });

  test("errors, root names, ids, guessed offsets, clocks", () => {
    expect(Array.from(c.status!)).toEqual([0, 0, 0, 0, 2, 2]);
    expect(Array.from(c.tErr!)).toEqual([0, 2]);
    expect(Array.from(c.tName!).map(str)).toEqual(["GET /proxy", "GET /proxy"]);
    const hex = (b: ArrayLike<number>, i: number, n: number) => Array.from({ length: n }, (_, k) => b[i * n + k]!.toString(16).padStart(2, "0")).join("");
    expect(hex(c.traceIds!, 0, 16)).toBe(proxyTrace(0, 0n)[0]!.traceId);
    expect(hex(c.spanIds!, 0, 8)).toBe(proxyTrace(0, 0n)[2]!.spanId);
    // Server spans of the guessed probe carry beetrace.guessed_offsets; the client span does not.
    expect(Array.from(c.flags!)).toEqual([1, 0, 1, 1, 0, 1]);
    expect(Array.from(c.tFlags!)).toEqual([1, 1]);
    const attrs = (i: number) => {
      const out: Record<string, string> = {};
      const set = c.attrSet![i]!;
      for (let p = c.setOff![set]!; p < c.setOff![set + 1]!; p += 2) out[str(c.setPairs![p]!)] = str(c.setPairs![p + 1]!);
      return out;
    };
    expect(attrs(0)).toMatchObject({ "http.request.method": "GET", "http.route": "/proxy", "url.path": "/proxy", "beetrace.guessed_offsets": "net/http.Request.Pattern" });
    expect(attrs(5)["http.response.status_code"]).toBe("500");
    expect(Array.from(c.clock!)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(d.meta.clocks).toEqual([{ file: 0, index: 0, realtimeNs: expect.any(String), boottimeNs: expect.any(String), offsetNs: OFFSET.toString() }]);
    expect(d.meta.files[0]!.probes.find((p) => p.id === "nethttp.server")).toBeDefined();
    expect(d.meta.summary.endpoints.map((e) => [e.kind, e.endpoint, e.count, e.errors])).toEqual([
      ["server", "GET /hello", 2, 1],
      ["server", "GET /proxy", 2, 0],
      ["client", "GET 127.0.0.1:8080", 2, 1],
    ]);
  });

  test("a filter keeps whole traces; the summary counts matching spans", () => {
    const f = build([file], parseFilters({ errors: true }));
    expect(f.meta.traces).toBe(1);
    expect(f.meta.spans).toBe(3);
    expect(f.meta.spansRead).toBe(6);
    expect(f.meta.filter).toBe("--errors");
    expect(f.meta.summary.spans).toBe(2);
  });
});

describe("events", () => {
  test("a span's events are kept as JSON (times as decimal strings)", () => {
    const file = path.join(dir, "one.cbor");
    writeCapture(file, sleepWorkload(1));
    const b = new ViewerModelBuilder(undefined);
    const c = readSpans(file, (s, k, h) => b.add({ ...s, events: [{ name: "exception", timeUnixNano: s.startTimeUnixNano + 5n, attributes: { "exception.message": "boom" } }] }, k, h));
    b.endFile(c);
    const d = b.build("t");
    const cols = columns(d);
    const ev = JSON.parse(strings(cols)(cols.extra![0]!));
    expect(ev).toEqual({ events: [{ name: "exception", timeUnixNano: String(BOOT0 + OFFSET + 5n), attributes: { "exception.message": "boom" } }], links: [] });
  });
});

describe("several files", () => {
  test("one set: services, files and a trace spread over two captures", () => {
    const a = path.join(dir, "a.cbor");
    const b = path.join(dir, "b.cbor");
    const [inner, client, root] = proxyTrace(0, BOOT0);
    // The caller's capture has the root and the client span; the callee's the inner server span.
    writeCapture(a, [client!, root!], { serviceName: "front", host: "h1" });
    writeCapture(b, [inner!, ...sleepWorkload(3)], { serviceName: "back", host: "h2" });
    const d = build([a, b]);
    const c = columns(d);
    expect(d.meta.services).toEqual(["front", "back"]);
    expect(d.meta.files.map((f) => [f.host, d.meta.services[f.service]])).toEqual([
      ["h1", "front"],
      ["h2", "back"],
    ]);
    expect(d.meta.traces).toBe(4);
    const t = Array.from(c.tCount!).indexOf(3);
    const first = c.tFirst![t]!;
    expect(Array.from(c.depth!).slice(first, first + 3)).toEqual([0, 1, 2]);
    expect(Array.from(c.file!).slice(first, first + 3)).toEqual([0, 0, 1]);
  });
});

describe("page", () => {
  test("self-contained: CSP without network, no external reference, data inflates to the blob", () => {
    const file = path.join(dir, "sleep.cbor");
    writeCapture(file, sleepWorkload(20));
    const out = path.join(dir, "sleep.html");
    const r = writeHtmlView([file], out);
    expect(r).toMatchObject({ spans: 20, traces: 20 });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const html = fs.readFileSync(out, "utf8");
    expect(html).toContain(`content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/<script[^>]+src=|<link |@import|url\(/i);
    // The only URL-looking text is the SVG namespace name (not fetched).
    expect([...html.matchAll(/https?:\/\/[^\s"'<]+/g)].map((m) => m[0])).toEqual(["http://www.w3.org/2000/svg"]);
    const d = build([file]);
    const packed = /<script type="application\/octet-stream" id="data">([^<]*)<\/script>/.exec(renderHtml(d))![1]!;
    expect(Buffer.compare(gunzipSync(Buffer.from(packed, "base64")), Buffer.from(d.blob))).toBe(0);
    const meta = JSON.parse(/<script type="application\/json" id="meta">([^<]*)<\/script>/.exec(html)![1]!);
    expect(meta.spans).toBe(20);
  });

  test("a damaged capture: the page shows every intact span, then corrupt_capture (exit 17)", () => {
    const file = path.join(dir, "damaged.cbor");
    writeCapture(file, sleepWorkload(50));
    const bytes = fs.readFileSync(file);
    // A record in the middle of the records chunk gets an impossible size (u16 type 0x0111, u16 size).
    const at = bytes.indexOf(Buffer.from([0x11, 0x01]), Math.floor(bytes.length / 2));
    bytes.writeUInt16LE(3, at + 2);
    fs.writeFileSync(file, bytes);
    const out = path.join(dir, "damaged.html");
    let err: unknown;
    try {
      writeHtmlView([file], out);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("corrupt_capture");
    const meta = JSON.parse(/<script type="application\/json" id="meta">([^<]*)<\/script>/.exec(fs.readFileSync(out, "utf8"))![1]!);
    expect(meta.spans).toBeGreaterThan(40);
    expect(meta.spans).toBeLessThan(50);
    expect(meta.files[0].invalid).toBeGreaterThan(0);
  });

  test("an empty capture makes a page with no trace", () => {
    const file = path.join(dir, "empty.cbor");
    writeCapture(file, []);
    expect(writeHtmlView([file], path.join(dir, "empty.html"))).toMatchObject({ spans: 0, traces: 0 });
  });

  test("no text in the data can close the script element", () => {
    const file = path.join(dir, "evil.cbor");
    writeCapture(file, [{ path: "/</script><script>alert(1)</script>", pattern: "/</script>", status: 200, startNs: BOOT0, durationNs: 1000n, traceId: "1".repeat(32), spanId: "1".repeat(16) }]);
    const html = renderHtml(build([file]));
    expect(html.match(/<\/script>/g)).toHaveLength(3);
  });

  test("the script parses and has no template-literal hazards; the stylesheet is ASCII", () => {
    expect(() => new Function(CLIENT_JS)).not.toThrow();
    expect(CLIENT_JS).not.toContain("`");
    expect(CLIENT_JS).not.toContain("${");
    expect(/^[\x20-\x7e\n]*$/.test(PAGE_CSS)).toBe(true);
  });
});
