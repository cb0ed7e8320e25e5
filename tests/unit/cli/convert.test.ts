import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { convertCommand } from "../../../src/cli/convert.ts";
import { setLogSink } from "../../../src/log.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { T0, sampleHeader, sampleSpans, tempDir, writeSampleCapture } from "../capture/fixture.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("beetrace convert", () => {
  test("writes OTLP JSON Lines to stdout, one request per line", async () => {
    const p = writeSampleCapture(dir);
    let out = "";
    const r = await convertCommand(p, { to: "otlp-json" }, async (s) => {
      out += s;
    });
    expect(r).toEqual({ spans: 4, lines: 1 });
    expect(out.endsWith("\n")).toBe(true);
    const lines = out.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const req = JSON.parse(lines[0]!);
    const ids = req.resourceSpans[0].scopeSpans.flatMap((s: { spans: { spanId: string }[] }) => s.spans.map((x) => x.spanId));
    expect(ids.sort()).toEqual(sampleSpans().map((s) => s.spanId).sort());
  });

  test("-o writes a 0600 file; --batch splits lines", async () => {
    const p = path.join(dir, "many.cbor");
    const w = CaptureWriter.open(p, sampleHeader(), { flushIntervalMs: 0 });
    const base = sampleSpans()[0]!;
    for (let i = 0; i < 1100; i++) w.span({ ...base, spanId: (i + 1).toString(16).padStart(16, "0"), startTimeUnixNano: T0 + BigInt(i) });
    w.close("duration", T0, zeroLosses());
    const out = path.join(dir, "out.jsonl");
    expect(await convertCommand(p, { out })).toEqual({ spans: 1100, lines: 3 });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const lines = fs.readFileSync(out, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l).resourceSpans[0].scopeSpans[0].spans.length)).toEqual([512, 512, 76]);
    expect(await convertCommand(p, { out, batch: "100" })).toEqual({ spans: 1100, lines: 11 });
  });

  test("a truncated capture converts its complete spans with a warning", async () => {
    const bytes = fs.readFileSync(writeSampleCapture(dir, "t.cbor"));
    const p = path.join(dir, "cut.cbor");
    fs.writeFileSync(p, bytes.subarray(0, bytes.byteLength - 10));
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    let out = "";
    const r = await convertCommand(p, {}, async (s) => {
      out += s;
    });
    expect(r.spans).toBe(4);
    expect(logs.some((l) => /^warning: .*cut\.cbor is truncated/.test(l))).toBe(true);
  });

  test("usage errors: unknown format, bad batch; unwritable output is output_failed", async () => {
    const p = writeSampleCapture(dir, "u.cbor");
    const noop = async () => {};
    await expect(convertCommand(p, { to: "zipkin" }, noop)).rejects.toMatchObject({ code: "usage", message: "unknown output format 'zipkin'" });
    await expect(convertCommand(p, { batch: 0 }, noop)).rejects.toMatchObject({ code: "usage" });
    await expect(convertCommand(p, { out: path.join(dir, "no/such/dir/x.jsonl") })).rejects.toMatchObject({ code: "output_failed" });
  });
});
