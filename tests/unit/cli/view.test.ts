import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { captureEncoder } from "../../../src/capture/format.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { formatDuration, renderCapture, viewCommand } from "../../../src/cli/view.ts";
import { TracerError } from "../../../src/errors.ts";
import { T0, sampleHeader, sampleSpans, tempDir, writeSampleCapture } from "../capture/fixture.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("beetrace view", () => {
  test("prints a summary and trace trees within 80 columns", async () => {
    const p = writeSampleCapture(dir);
    let out = "";
    await viewCommand(p, {}, async (s) => {
      out += s;
    });
    expect(out.split("\n")).toEqual([
      "capture: shop, pid 4242 /srv/shop/server (go1.22.3)",
      "  host web-1 (amd64, Linux 6.1.0-18-amd64)",
      "  recorded by beetrace 0.1.0, started 2023-11-14T22:13:20.118Z",
      "  probes: nethttp.server",
      "  not attached: grpc.client: symbol not found: google.golang.org/grpc.(*ClientC…",
      "",
      "trace 4bf92f3577b34da6a3ce929d0e0e4736",
      "  GET /cart/{id}  1.2ms  200 (parent not captured)",
      "  ├─ GET  500µs  200  http://inventory:8080/items/7  → inventory",
      "  └─ SELECT carts  12µs  ok",
      "",
      "trace 0af7651916cd43dd8448eb211c80319c",
      "  POST /checkout  1.5s  ERROR HTTP 503  503",
      "",
      "summary: 4 spans in 2 traces",
      "  losses: ringbufFull 2, incomplete 1",
      "  ended: duration",
      "",
    ]);
    for (const line of out.split("\n")) expect([...line].length).toBeLessThanOrEqual(80);
  });

  test("a truncated capture says so and shows the complete spans", () => {
    const bytes = fs.readFileSync(writeSampleCapture(dir, "t.cbor"));
    const p = path.join(dir, "cut.cbor");
    fs.writeFileSync(p, bytes.subarray(0, bytes.byteLength - 10));
    const lines = renderCapture(readCaptureFile(p));
    expect(lines).toContain("  note: no end record: the tracer was killed or is still running");
    expect(lines.find((l) => l.startsWith("  note: the file is truncated"))).toMatch(/last \d+ bytes are an incomplete record/);
    // losses come from the last stats record when there is no end record
    expect(lines).toContain("summary: 4 spans in 2 traces");
    expect(lines).toContain("  losses: ringbufFull 2");
  });

  test("deep trees are indented under the right parent; sibling order is by start time", () => {
    const base = sampleSpans()[2]!;
    const mk = (n: number, parent: number | undefined, start: bigint) => {
      const s = { ...base, spanId: String(n).repeat(16), name: `s${n}`, startTimeUnixNano: T0 + start, endTimeUnixNano: T0 + start + 1000n };
      if (parent === undefined) delete (s as { parentSpanId?: string }).parentSpanId;
      else s.parentSpanId = String(parent).repeat(16);
      return s;
    };
    const header = sampleHeader();
    const c = {
      header,
      records: [mk(1, undefined, 0n), mk(4, 2, 30n), mk(3, 1, 50n), mk(2, 1, 10n), mk(5, 4, 40n)].map((s) => ({ type: "span" as const, ...s })),
      truncated: false,
      trailingBytes: 0,
      skipped: 0,
    };
    const lines = renderCapture(c);
    const from = lines.findIndex((l) => l.startsWith("trace ")) + 1;
    const tree = lines.slice(from, lines.indexOf("", from));
    expect(tree.map((l) => l.replace(/  1µs  ok  SELECT$/, ""))).toEqual([
      "  s1",
      "  ├─ s2",
      "  │  └─ s4",
      "  │     └─ s5",
      "  └─ s3",
    ]);
  });

  test("parent cycles in a damaged file do not hang or hide spans", () => {
    const base = sampleSpans()[2]!;
    const a = { type: "span" as const, ...base, spanId: "a".repeat(16), parentSpanId: "b".repeat(16), name: "A" };
    const b = { type: "span" as const, ...base, spanId: "b".repeat(16), parentSpanId: "a".repeat(16), name: "B" };
    const lines = renderCapture({ header: sampleHeader(), records: [a, b], truncated: false, trailingBytes: 0, skipped: 0 });
    expect(lines.filter((l) => /\b[AB]  /.test(l))).toHaveLength(2);
  });

  test("durations are human-sized", () => {
    expect([0n, 850n, 1_234n, 12_345n, 999_400n, 1_234_567n, 999_600_000n, 59_990_000_000n, 123_000_000_000n, 7_500_000_000_000n].map(formatDuration)).toEqual([
      "0ns", "850ns", "1.2µs", "12µs", "999µs", "1.2ms", "1s", "59.99s", "2m03s", "2h05m",
    ]);
    expect(formatDuration(-5n)).toBe("negative duration");
  });

  test("errors: missing file, not a capture, bad --width", async () => {
    const noop = async () => {};
    await expect(viewCommand(path.join(dir, "missing.cbor"), {}, noop)).rejects.toMatchObject({ code: "file_not_found" });
    const elf = path.join(dir, "elf");
    fs.writeFileSync(elf, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
    await expect(viewCommand(elf, {}, noop)).rejects.toMatchObject({ code: "corrupt_capture", message: expect.stringContaining("ELF") });
    const p = writeSampleCapture(dir, "w.cbor");
    await expect(viewCommand(p, { width: "wide" }, noop)).rejects.toBeInstanceOf(TracerError);
    let out = "";
    await viewCommand(p, { width: 120 }, async (s) => {
      out += s;
    });
    expect(out).toContain("(*ClientConn).Invoke\n");
  });

  test("the loss counters are wrapped to the width, never cut off (issue 15 item 9)", () => {
    const losses = { ringbufFull: 123456, inflightFull: 234567, returnWithoutEntry: 345678, endWithoutStart: 456789, incomplete: 567890, truncatedStrings: 678901 };
    const c = {
      header: sampleHeader(),
      records: [{ type: "end" as const, reason: "signal", at: T0, totals: { spans: 0, losses } }],
      truncated: false,
      trailingBytes: 0,
      skipped: 0,
    };
    for (const width of [40, 80]) {
      const lines = renderCapture(c, { width });
      const at = lines.findIndex((l) => l.startsWith("  losses: "));
      const block = lines.slice(at, lines.findIndex((l) => l.startsWith("  ended:")));
      for (const l of block) expect([...l].length).toBeLessThanOrEqual(width);
      const text = block.join(" ");
      for (const [k, v] of Object.entries(losses)) expect(text).toContain(`${k} ${v}`);
      expect(text).not.toContain("…");
    }
  });

  test("view streams: a trace whose spans are far apart is printed in pieces, every span once", () => {
    const base = sampleSpans()[2]!;
    const records = Array.from({ length: 50 }, (_, i) => ({
      type: "span" as const,
      ...base,
      traceId: (i % 2 === 0 ? "a" : "b").repeat(32),
      spanId: i.toString(16).padStart(16, "0"),
      name: `s${i}`,
      startTimeUnixNano: T0 + BigInt(i) * 1000n,
      endTimeUnixNano: T0 + BigInt(i) * 1000n + 10n,
    }));
    const lines = renderCapture({ header: sampleHeader(), records, truncated: false, trailingBytes: 0, skipped: 0 }, { maxHeld: 10 });
    for (let i = 0; i < 50; i++) expect(lines.filter((l) => l.includes(`s${i}  `))).toHaveLength(1);
    expect(lines.some((l) => l.endsWith("(continued)"))).toBe(true);
    expect(lines).toContain("summary: 50 spans in " + lines.filter((l) => l.startsWith("trace ")).length + " traces");
  });

  test("unknown record types from a newer writer are skipped and noted", () => {
    const enc = captureEncoder();
    const bytes = Buffer.concat([enc.encode(sampleHeader()), enc.encode({ type: "profile", data: 1 })]);
    const p = path.join(dir, "newer.cbor");
    fs.writeFileSync(p, bytes);
    expect(renderCapture(readCaptureFile(p))).toContain("  note: 1 records of a newer kind were skipped");
  });
});
