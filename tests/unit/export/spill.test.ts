/** @module tests/unit/export/spill — the spill file: cursor, sidecar, compaction, no overwrites. */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { SpillFile, cursorPath, freshPath, readSpillCursor } from "../../../src/export/spill.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { sampleHeader, tempDir } from "../capture/fixture.ts";
import { setLogSink } from "../../../src/log.ts";
import { makeSpans } from "./collector.ts";

function spanIds(file: string): string[] {
  return readCaptureFile(file).records.flatMap((r) => (r.type === "span" ? [r.spanId] : []));
}

describe("SpillFile", () => {
  test("nothing spilled: no file is created", () => {
    const dir = tempDir();
    const s = new SpillFile(path.join(dir, "s.cbor"), sampleHeader());
    expect(s.close()).toEqual({ path: undefined, pending: 0 });
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.rmSync(dir, { recursive: true });
  });

  test("batches come back in order; the cursor sidecar follows each ack; fully sent → deleted", () => {
    const dir = tempDir();
    const p = path.join(dir, "s.cbor");
    const s = new SpillFile(p, sampleHeader());
    const spans = makeSpans(7);
    expect(s.append(spans.slice(0, 5))).toBe(5);
    const b1 = s.nextBatch(3);
    expect(b1.map((x) => x.spanId)).toEqual(spans.slice(0, 3).map((x) => x.spanId));
    // Spans round-trip exactly (bigint times, attributes).
    expect(b1[0]).toEqual(spans[0]!);
    s.ack(3);
    expect(readSpillCursor(p)).toBe(3);
    s.append(spans.slice(5));
    expect(s.pending).toBe(4);
    expect(s.nextBatch(10).map((x) => x.spanId)).toEqual(spans.slice(3, 5).map((x) => x.spanId));
    s.ack(2);
    // Appended after the last read-back: a new read picks them up.
    expect(s.nextBatch(10).map((x) => x.spanId)).toEqual(spans.slice(5).map((x) => x.spanId));
    s.ack(2);
    expect(s.pending).toBe(0);
    expect(s.close()).toEqual({ path: undefined, pending: 0 });
    expect(fs.existsSync(p)).toBe(false);
    expect(fs.existsSync(cursorPath(p))).toBe(false);
    fs.rmSync(dir, { recursive: true });
  });

  test("a backlog of many windows, growing while it is resent: each span once, in order, each decoded about once", () => {
    const dir = tempDir();
    const p = path.join(dir, "s.cbor");
    const s = new SpillFile(p, sampleHeader());
    const spans = makeSpans(12_000);
    s.append(spans.slice(0, 9000));
    const sent: string[] = [];
    let next = 9000;
    while (s.pending > 0) {
      const b = s.nextBatch(700);
      sent.push(...b.map((x) => x.spanId));
      s.ack(b.length);
      if (next < spans.length) {
        s.append(spans.slice(next, next + 500));
        next += 500;
      }
    }
    expect(sent).toEqual(spans.map((x) => x.spanId));
    // Reading every window from the start would decode ~n²/(2·window) records (~20k here).
    expect(s.decodedOnReadBack).toBe(spans.length);
    expect(s.close()).toEqual({ path: undefined, pending: 0 });
    fs.rmSync(dir, { recursive: true });
  });

  test("partly sent at close: the file is rewritten with only the unsent spans", () => {
    const dir = tempDir();
    const p = path.join(dir, "s.cbor");
    const s = new SpillFile(p, sampleHeader());
    const spans = makeSpans(6);
    s.append(spans);
    s.nextBatch(4);
    s.ack(4);
    expect(s.close()).toEqual({ path: p, pending: 2 });
    expect(spanIds(p)).toEqual(spans.slice(4).map((x) => x.spanId));
    expect(readCaptureFile(p).header.target.exe).toBe(sampleHeader().target.exe);
    expect(fs.existsSync(cursorPath(p))).toBe(false);
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    fs.rmSync(dir, { recursive: true });
  });

  test("an existing file (an earlier run's kept spans) is never overwritten", () => {
    const dir = tempDir();
    const p = path.join(dir, "s.cbor");
    fs.writeFileSync(p, "earlier");
    fs.writeFileSync(path.join(dir, "s.1.cbor"), "earlier too");
    expect(freshPath(p)).toBe(path.join(dir, "s.2.cbor"));
    const s = new SpillFile(p, sampleHeader());
    s.append(makeSpans(1));
    const r = s.close();
    expect(r.path).toBe(path.join(dir, "s.2.cbor"));
    expect(fs.readFileSync(p, "utf8")).toBe("earlier");
    expect(freshPath(path.join(dir, "noext"))).toBe(path.join(dir, "noext"));
    fs.rmSync(dir, { recursive: true });
  });

  test("an unwritable location: spans are counted as lost, never pending", () => {
    const dir = tempDir();
    const s = new SpillFile(path.join(dir, "missing-dir", "s.cbor"), sampleHeader());
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    try {
      expect(s.append(makeSpans(3))).toBe(0);
    } finally {
      setLogSink((l) => process.stderr.write(l + "\n"));
    }
    expect(logs.some((l) => l.startsWith("error: spill file") && l.includes("now dropped"))).toBe(true);
    expect(s.lost).toBe(3);
    expect(s.pending).toBe(0);
    expect(s.failed).toBe(true);
    expect(s.append(makeSpans(2))).toBe(0);
    expect(s.lost).toBe(5);
    fs.rmSync(dir, { recursive: true });
  });

  test("readSpillCursor: missing or malformed sidecar reads as 0", () => {
    const dir = tempDir();
    const p = path.join(dir, "x.cbor");
    expect(readSpillCursor(p)).toBe(0);
    fs.writeFileSync(cursorPath(p), "{not json");
    expect(readSpillCursor(p)).toBe(0);
    fs.writeFileSync(cursorPath(p), JSON.stringify({ spansSent: -4 }));
    expect(readSpillCursor(p)).toBe(0);
    fs.writeFileSync(cursorPath(p), JSON.stringify({ spansSent: 12 }));
    expect(readSpillCursor(p)).toBe(12);
    fs.rmSync(dir, { recursive: true });
  });
});
