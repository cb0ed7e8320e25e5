/**
 * Capture format 2: raw span records in `records` chunks, clock items, one write per flush,
 * truncation inside a chunk, rotation and limits of the capture sink, bytes per span.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { CAPTURE_FORMAT, type CaptureHeader, type ClockFields } from "../../../src/capture/format.ts";
import { CaptureScanner, type CaptureItem, decodeRecords, itemEnd, readCapture, readCaptureFile } from "../../../src/capture/reader.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { TracerError } from "../../../src/errors.ts";
import { builtinRecordSchema, recordSize } from "../../../src/probes/decode.ts";
import { zeroLosses, type Span } from "../../../src/spans/model.ts";
import { CaptureSink, FanOutSink, rawCaptureHeader, type SpanSink } from "../../../src/trace/output.ts";
import { renderCapture } from "../../../src/cli/view.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { setLogSink } from "../../../src/log.ts";
import { KILL_IMPORTS, T0, killedSinkBody, runAndKill, sampleHeader, tempDir } from "./fixture.ts";
import { TestDecoder, serverRecord, typicalServer } from "./records.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function header2(): CaptureHeader {
  return rawCaptureHeader(sampleHeader());
}
const OFFSET0 = sampleHeader().clock.offsetNs;
const ANCHOR2: ClockFields = { realtimeNs: T0 + 20_000_000_000n, boottimeNs: 21_000_000_000n, offsetNs: OFFSET0 + 7_000n };

/** Records 0-1, stats, (flush), clock, records 2-4 in two ticks, end. */
function writeSample(name: string): { path: string; recs: Uint8Array[] } {
  const p = path.join(dir, name);
  const recs = [0, 1, 2, 3, 4].map((i) => serverRecord({ ...typicalServer(i), ...(i === 3 ? { parentSpanId: "c".repeat(16) } : {}) }));
  const w = CaptureWriter.open(p, header2(), { flushIntervalMs: 0 });
  w.record(recs[0]!);
  w.record(recs[1]!);
  w.stats(T0 + 1_000_000_000n, { ...zeroLosses(), ringbufFull: 1 });
  w.flush();
  w.clock(ANCHOR2);
  w.record(recs[2]!);
  w.flush();
  w.record(recs[3]!);
  w.record(recs[4]!);
  w.close("duration", T0 + 4_000_000_000n, zeroLosses());
  return { path: p, recs };
}

function kinds(items: Iterable<CaptureItem>): string[] {
  return [...items].map((i) => i.type);
}

describe("format 2 round trip", () => {
  test("header carries the record layouts; raw records come back byte for byte, in order, with their clock", () => {
    const { path: p, recs } = writeSample("rt.cbor");
    const s = new CaptureScanner(fs.readFileSync(p));
    expect(s.header.format).toBe(CAPTURE_FORMAT);
    expect(s.header.records).toEqual(builtinRecordSchema());
    const { records: _r, format: _f, ...rest } = s.header;
    const { format: _f1, ...expected } = sampleHeader();
    expect(rest).toEqual(expected);
    const items = [...s.items()];
    expect(kinds(items)).toEqual(["raw", "raw", "stats", "clock", "raw", "raw", "raw", "end"]);
    const raws = items.filter((i) => i.type === "raw");
    expect(raws.map((r) => Buffer.from(r.bytes).toString("hex"))).toEqual(recs.map((r) => Buffer.from(r).toString("hex")));
    expect(raws[0]!.toEpoch(10n)).toBe(10n + OFFSET0);
    expect(raws[2]!.toEpoch(10n)).toBe(10n + ANCHOR2.offsetNs);
    expect(raws[4]!.toEpoch(10n)).toBe(10n + ANCHOR2.offsetNs);
    expect(items[2]).toEqual({ type: "stats", at: T0 + 1_000_000_000n, losses: { ...zeroLosses(), ringbufFull: 1 }, spans: 2 });
    expect(items[3]).toEqual({ type: "clock", ...ANCHOR2 });
    expect(items.at(-1)).toEqual({ type: "end", reason: "duration", at: T0 + 4_000_000_000n, totals: { spans: 5, losses: zeroLosses() } });
    expect(s.truncated).toBe(false);
    expect(s.invalid).toBe(0);
  });

  test("every record is decoded through the decoder, with the clock item before its chunk", () => {
    const { path: p } = writeSample("dec.cbor");
    const s = new CaptureScanner(fs.readFileSync(p));
    const dec = new TestDecoder(s.header.records);
    const spans = [...decodeRecords(s, dec)].filter((r) => r.type === "span");
    expect(dec.invalid).toBe(0);
    expect(spans.map((x) => x.spanId)).toEqual([0, 1, 2, 3, 4].map((i) => typicalServer(i).spanId));
    expect(spans[0]!.startTimeUnixNano).toBe(typicalServer(0).startNs + OFFSET0);
    expect(spans[2]!.startTimeUnixNano).toBe(typicalServer(2).startNs + ANCHOR2.offsetNs);
    expect(spans[3]!.parentSpanId).toBe("c".repeat(16));
    expect(spans[4]!.attributes).toEqual({ "http.request.method": "GET", "url.path": "/hello", "http.response.status_code": 200 });
  });

  test("readCapture decodes with the probes' decoders (src/probes/decode.ts) and the file's clock items", () => {
    const c = readCaptureFile(writeSample("builtin.cbor").path);
    expect(c.invalid).toBe(0);
    expect(c.records.map((r) => r.type)).toEqual(["span", "span", "stats", "clock", "span", "span", "span", "end"]);
    const spans = c.records.filter((r) => r.type === "span");
    expect(spans[0]).toMatchObject({ name: "GET /hello", kind: "server", spanId: typicalServer(0).spanId, startTimeUnixNano: typicalServer(0).startNs + OFFSET0 });
    expect(spans[0]!.attributes).toMatchObject({ "http.request.method": "GET", "url.path": "/hello", "http.route": "/hello", "http.response.status_code": 200 });
    expect(spans[2]!.startTimeUnixNano).toBe(typicalServer(2).startNs + ANCHOR2.offsetNs);
    expect(spans[3]!.parentSpanId).toBe("c".repeat(16));
  });

  test("view and convert read a format-2 capture, also one cut inside its last chunk", async () => {
    const { path: p } = writeSample("cli.cbor");
    const lines = renderCapture(readCaptureFile(p));
    expect(lines).toContain("summary: 5 spans in 5 traces");
    expect(lines).toContain("  losses: none");
    expect(lines.filter((l) => l.startsWith("  GET /hello  250µs  200"))).toHaveLength(5);
    const bytes = fs.readFileSync(p);
    const cut = path.join(dir, "cli-cut.cbor");
    const lastRec = Buffer.from(bytes).indexOf(Buffer.from(serverRecord(typicalServer(4))));
    fs.writeFileSync(cut, bytes.subarray(0, lastRec + 10));
    const cutLines = renderCapture(readCaptureFile(cut));
    expect(cutLines).toContain("summary: 4 spans in 4 traces");
    expect(cutLines).toContain("  losses: ringbufFull 1");
    expect(cutLines).toContain("  note: the file is truncated; the last 10 bytes are an incomplete record");
    const logs: string[] = [];
    setLogSink((l) => logs.push(l));
    let out = "";
    const r = await convertCommand(cut, { to: "otlp-json" }, async (s) => {
      out += s;
    }).finally(() => setLogSink((l) => process.stderr.write(l + "\n")));
    expect(r.spans).toBe(4);
    expect(logs.some((l) => /^warning: .*cli-cut\.cbor is truncated/.test(l))).toBe(true);
    expect(out).toContain(typicalServer(3).spanId);
  });

  test("a record is stored as its size field says; a size that does not fit is refused", () => {
    const p = path.join(dir, "sizes.cbor");
    const w = CaptureWriter.open(p, header2(), { flushIntervalMs: 0 });
    const rec = serverRecord(typicalServer(0));
    // A ring-buffer sample may be longer than the record (8-byte rounding).
    const sample = new Uint8Array(rec.byteLength + 6);
    sample.set(rec);
    expect(w.record(sample)).toBe(true);
    const tooBig = Uint8Array.from(rec);
    new DataView(tooBig.buffer).setUint16(2, rec.byteLength + 1, true);
    expect(w.record(tooBig)).toBe(false);
    expect(w.record(new Uint8Array(3))).toBe(false);
    w.close("test", T0, zeroLosses());
    const raws = [...new CaptureScanner(fs.readFileSync(p)).items()].filter((i) => i.type === "raw");
    expect(raws.map((r) => r.bytes.byteLength)).toEqual([rec.byteLength]);
  });

  test("raw records need a format-2 header; format-1 writers still write span items", () => {
    const w = CaptureWriter.open(path.join(dir, "f1.cbor"), sampleHeader(), { flushIntervalMs: 0 });
    expect(() => w.record(serverRecord(typicalServer(0)))).toThrow(/format-2 header/);
    w.close("test", T0, zeroLosses());
  });

  test("span items are read in a format-2 file too (the OTLP spill file writes them)", () => {
    const p = path.join(dir, "mixed.cbor");
    const w = CaptureWriter.open(p, header2(), { flushIntervalMs: 0 });
    const span: Span = {
      traceId: "1".repeat(32), spanId: "2".repeat(16), name: "GET", kind: "client",
      startTimeUnixNano: T0, endTimeUnixNano: T0 + 1n, attributes: {}, status: { code: "unset" }, scope: { name: "s", version: "1" },
    };
    w.span(span);
    w.record(serverRecord(typicalServer(0)));
    w.close("test", T0, zeroLosses());
    const items = [...new CaptureScanner(fs.readFileSync(p)).items()];
    expect(kinds(items)).toEqual(["span", "raw", "end"]);
    expect(items[0]).toEqual({ type: "span", ...span });
  });
});

describe("format 2 truncation", () => {
  test("a cut at every byte reads back every complete item and every complete record of a cut chunk", () => {
    const { path: p, recs } = writeSample("cut.cbor");
    const bytes = new Uint8Array(fs.readFileSync(p));
    // Boundaries found independently of the scanner: top-level items by itemEnd (tested on its
    // own), records by searching for their bytes (all distinct).
    const ends: number[] = [];
    for (let pos = 0; pos < bytes.byteLength; ) ends.push((pos = itemEnd(bytes, pos)));
    const headerEnd = ends[0]!;
    const buf = Buffer.from(bytes);
    const recSpans = recs.map((r) => {
      const at = buf.indexOf(Buffer.from(r));
      expect(at).toBeGreaterThan(0);
      return { start: at, end: at + r.byteLength };
    });
    const inRecord = (start: number, end: number) => recSpans.some((r) => r.start >= start && r.end <= end);
    // Non-chunk items: [start, end) of items holding no record.
    const others: { start: number; end: number }[] = [];
    ends.forEach((e, i) => {
      const start = i === 0 ? 0 : ends[i - 1]!;
      if (i > 0 && !inRecord(start, e)) others.push({ start, end: e });
    });
    expect(others).toHaveLength(3); // stats, clock, end
    const full = [...new CaptureScanner(bytes).items()];
    const fullByOffset = (k: string) => full.filter((i) => i.type === k);
    expect(fullByOffset("raw")).toHaveLength(5);

    let checked = 0;
    for (let cut = headerEnd; cut <= bytes.byteLength; cut++) {
      const part = bytes.subarray(0, cut);
      const s = new CaptureScanner(part);
      const got = [...s.items()];
      const wantRaw = recSpans.filter((r) => r.end <= cut).map((r) => r.start);
      expect(got.filter((i) => i.type === "raw").map((i) => (i as { offset: number }).offset)).toEqual(wantRaw);
      const wantOthers = others.filter((o) => o.end <= cut).length;
      expect(got.filter((i) => i.type !== "raw")).toHaveLength(wantOthers);
      // What is not read back: from the end of the last complete thing to the cut.
      const lastEnd = Math.max(headerEnd, ...recSpans.filter((r) => r.end <= cut).map((r) => r.end), ...others.filter((o) => o.end <= cut).map((o) => o.end));
      expect(s.trailingBytes).toBe(cut - lastEnd);
      expect(s.truncated).toBe(!ends.includes(cut));
      expect(s.invalid).toBe(0);
      checked++;
    }
    expect(checked).toBe(bytes.byteLength - headerEnd + 1);
    for (let cut = 0; cut < headerEnd; cut++) expect(() => new CaptureScanner(bytes.subarray(0, cut))).toThrow(TracerError);
  });

  test("a SIGKILLed tracer loses only what it had not flushed (at most one drain tick)", async () => {
    const p = path.join(dir, "killed2.cbor");
    await runAndKill("sink2", KILL_IMPORTS, killedSinkBody(p, 4, false));
    const s = new CaptureScanner(fs.readFileSync(p));
    expect([...s.items()].filter((i) => i.type === "raw")).toHaveLength(12);
    expect(s.truncated).toBe(false);
  });
});

describe("format 2 damage", () => {
  test("bad record framing inside a chunk is counted, the chunks around it still read", () => {
    const { path: p } = writeSample("damaged.cbor");
    const bytes = new Uint8Array(fs.readFileSync(p));
    const first = Buffer.from(bytes).indexOf(Buffer.from(serverRecord(typicalServer(0))));
    const len0 = serverRecord(typicalServer(0)).byteLength;
    // Record 0's size field → 1: the reader resynchronises at record 1, so only record 0 is lost.
    bytes[first + 2] = 1;
    bytes[first + 3] = 0;
    const s = new CaptureScanner(bytes);
    const items = [...s.items()];
    expect(kinds(items)).toEqual(["raw", "stats", "clock", "raw", "raw", "raw", "end"]);
    expect(s.invalid).toBe(1);
    expect(s.damaged).toEqual([{ start: first, end: first + len0, why: expect.stringContaining("damaged record") }]);
    expect(readCapture(bytes).invalid).toBeGreaterThanOrEqual(1);
  });

  test("an unknown record type is invalid for the decoder, not an error", () => {
    const p = path.join(dir, "unknown.cbor");
    const w = CaptureWriter.open(p, header2(), { flushIntervalMs: 0 });
    const rec = serverRecord(typicalServer(0));
    const odd = Uint8Array.from(rec);
    odd[0] = 0x99;
    w.record(odd);
    w.record(rec);
    w.close("test", T0, zeroLosses());
    const s = new CaptureScanner(fs.readFileSync(p));
    const dec = new TestDecoder(s.header.records);
    const spans = [...decodeRecords(s, dec)].filter((r) => r.type === "span");
    expect(spans).toHaveLength(1);
    expect(dec.invalid).toBe(1);
  });

  test("random damage to a format-2 file never escapes as anything but corrupt_capture", () => {
    const good = new Uint8Array(fs.readFileSync(writeSample("fuzz2.cbor").path));
    let seed = 777;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xffff;
    let ok = 0;
    for (let i = 0; i < 600; i++) {
      const bytes = Uint8Array.from(good);
      for (let k = 0; k < 1 + (i % 4); k++) bytes[rand() % bytes.length] = rand() & 0xff;
      const cut = i % 3 === 0 ? bytes.subarray(0, rand() % bytes.length) : bytes;
      try {
        const c = readCapture(cut);
        const s = new CaptureScanner(cut);
        [...decodeRecords(s, new TestDecoder(s.header.records))];
        expect(c.header.type).toBe("header");
        ok++;
      } catch (e) {
        if (!(e instanceof TracerError) || e.code !== "corrupt_capture") throw e;
      }
    }
    expect(ok).toBeGreaterThan(100);
  });

  test("malformed record layouts in the header are corrupt_capture; a newer layout version says so", () => {
    const enc = (h: object) => {
      const p = path.join(dir, "badschema.cbor");
      const w = CaptureWriter.open(p, h as CaptureHeader, { flushIntervalMs: 0 });
      w.close("t", T0, zeroLosses());
      return fs.readFileSync(p);
    };
    const bad = { ...header2(), records: { version: 1, types: { "273": { struct: "x", fixed: 70, fields: { a: "no" }, strings: [] } } } };
    expect(() => readCapture(enc(bad))).toThrow(/is not \[offset, size\]/);
    const newer = { ...header2(), records: { version: 2, types: {} } };
    expect(() => readCapture(enc(newer))).toThrow(/record layouts version 2 is not supported/);
  });
});

describe("writer: one write per flush", () => {
  test("a drain tick's records, clock and stats reach the file with one write; an idle tick writes nothing", () => {
    const writes: number[] = [];
    const sink = new CaptureSink(path.join(dir, "ticks.cbor"), { host: "h", pid: 1, exe: "x", start: new Date(0) }, sampleHeader(), {}, {
      flushIntervalMs: 0,
      writeSync: (fd, b, o, l) => {
        writes.push(l);
        return fs.writeSync(fd, b, o, l);
      },
    });
    expect(writes).toHaveLength(1); // the header
    let n = 0;
    for (let tick = 0; tick < 5; tick++) {
      writes.length = 0;
      for (let i = 0; i < 200; i++) sink.record(serverRecord(typicalServer(n++)), () => undefined);
      if (tick === 2) sink.clock(ANCHOR2);
      if (tick === 3) sink.stats(T0, zeroLosses());
      expect(writes).toHaveLength(0);
      sink.flush();
      expect(writes).toHaveLength(1);
    }
    writes.length = 0;
    sink.flush();
    expect(writes).toHaveLength(0);
    sink.close("test", T0, zeroLosses());
    const s = new CaptureScanner(fs.readFileSync(sink.files[0]!));
    const items = [...s.items()];
    expect(items.filter((i) => i.type === "raw")).toHaveLength(1000);
    // The clock item splits tick 2's chunk: records before it keep the old anchor.
    const clockAt = items.findIndex((i) => i.type === "clock");
    expect(clockAt).toBe(600);
    expect((items[599] as { toEpoch: (b: bigint) => bigint }).toEpoch(0n)).toBe(OFFSET0);
    expect((items[601] as { toEpoch: (b: bigint) => bigint }).toEpoch(0n)).toBe(ANCHOR2.offsetNs);
  });

  test("a failed write counts the complete records of the cut chunk as written", () => {
    const p = path.join(dir, "partial.cbor");
    let fail = false;
    const rec = serverRecord(typicalServer(0));
    const w = CaptureWriter.open(p, header2(), {
      flushIntervalMs: 0,
      writeSync: (fd, b, o, l) => {
        if (!fail) return fs.writeSync(fd, b, o, l);
        // The disk fills up: a short write (the chunk head and 2.5 records), then ENOSPC.
        if (o > 0) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        return fs.writeSync(fd, b, o, 24 + Math.floor(2.5 * rec.byteLength));
      },
    });
    const before = w.totals();
    for (let i = 0; i < 4; i++) w.record(serverRecord(typicalServer(i)));
    fail = true;
    expect(() => w.flush()).toThrow(expect.objectContaining({ code: "output_failed" }));
    expect(w.totals().spans).toBe(2);
    expect(w.totals().bytes).toBe(before.bytes + 24 + Math.floor(2.5 * rec.byteLength));
    w.abandon();
    const s = new CaptureScanner(fs.readFileSync(p));
    expect([...s.items()].filter((i) => i.type === "raw")).toHaveLength(2);
    expect(s.truncated).toBe(true);
  });
});

describe("capture sink", () => {
  const values = { host: "h", pid: 7, exe: "/bin/srv", start: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) };

  test("rotation by size: every file reads back, records are counted, the clock carries over", () => {
    const rec = serverRecord(typicalServer(0));
    // The header (record layouts of every registered probe) and end record of an empty file come on top of the records.
    // Raw chunks (not compressed), so the files' sizes follow the records' and rotation is exercised.
    const empty = new CaptureSink(path.join(dir, "rot-empty.cbor"), values, sampleHeader(), {}, { flushIntervalMs: 0, compress: false });
    empty.clock(ANCHOR2);
    const base = fs.statSync(empty.close("done", T0, zeroLosses())[0]!).size;
    const rotateBytes = base + 2000;
    const sink = new CaptureSink(path.join(dir, "rot-{pid}.cbor"), values, sampleHeader(), { rotateBytes }, { flushIntervalMs: 0, compress: false });
    sink.clock(ANCHOR2);
    for (let i = 0; i < 60; i++) {
      sink.record(serverRecord(typicalServer(i)), () => {
        throw new Error("a capture file never decodes");
      });
      if (i % 7 === 6) sink.flush();
    }
    expect(sink.spans).toBe(60);
    const files = sink.close("done", T0, zeroLosses());
    expect(files.length).toBeGreaterThan(2);
    expect(files[0]).toBe(path.join(dir, "rot-7.cbor"));
    expect(files[1]).toBe(path.join(dir, "rot-7.1.cbor"));
    let total = 0;
    let bytes = 0;
    for (const f of files) {
      const s = new CaptureScanner(fs.readFileSync(f));
      const items = [...s.items()];
      expect(s.truncated).toBe(false);
      expect(items[0]).toEqual({ type: "clock", ...ANCHOR2 });
      expect(items.at(-1)!.type).toBe("end");
      // At most one record and the end record past the rotation size.
      expect(fs.statSync(f).size).toBeLessThan(rotateBytes + rec.byteLength + 200);
      total += items.filter((i) => i.type === "raw").length;
      bytes += fs.statSync(f).size;
    }
    expect(total).toBe(60);
    expect(sink.bytes()).toBe(bytes);
  });

  test("--max-spans counts records and stops the session; later records are not written", () => {
    const sink = new CaptureSink(path.join(dir, "max.cbor"), values, sampleHeader(), { maxSpans: 5 }, { flushIntervalMs: 0 });
    for (let i = 0; i < 8; i++) sink.record(serverRecord(typicalServer(i)), () => undefined);
    expect(sink.limitReached()).toBe("--max-spans 5 reached");
    sink.close("limit", T0, zeroLosses());
    const raws = [...new CaptureScanner(fs.readFileSync(sink.files[0]!)).items()].filter((i) => i.type === "raw");
    expect(raws).toHaveLength(5);
  });

  test("--max-bytes counts file bytes", () => {
    const sink = new CaptureSink(path.join(dir, "maxb.cbor"), values, sampleHeader(), { maxBytes: 3000 }, { flushIntervalMs: 0 });
    let n = 0;
    while (!sink.limitReached() && n < 1000) sink.record(serverRecord(typicalServer(n++)), () => undefined);
    expect(sink.limitReached()).toBe("--max-bytes 3000 reached");
    sink.close("limit", T0, zeroLosses());
    expect(sink.bytes()).toBe(fs.statSync(sink.files[0]!).size);
    expect(fs.statSync(sink.files[0]!).size).toBeGreaterThanOrEqual(3000);
  });

  test("the same clock anchor twice writes one clock item", () => {
    const sink = new CaptureSink(path.join(dir, "clock2.cbor"), values, sampleHeader(), {}, { flushIntervalMs: 0 });
    sink.clock(sampleHeader().clock); // the header's own anchor: nothing to write
    sink.clock(ANCHOR2);
    sink.clock({ ...ANCHOR2 });
    sink.close("t", T0, zeroLosses());
    expect(kinds(new CaptureScanner(fs.readFileSync(sink.files[0]!)).items())).toEqual(["clock", "end"]);
  });

  test("fan-out hands every sink the raw record and the same lazy span", () => {
    const seen: string[] = [];
    const fake = (name: string, decode: boolean): SpanSink => ({
      record: (raw, span) => seen.push(`${name}:${recordSize(raw, 0)}:${decode ? span()?.name : "-"}`),
      flush: () => seen.push(`${name}:flush`),
      clock: (a) => seen.push(`${name}:clock:${a.offsetNs}`),
      stats: () => undefined,
      close: () => [],
      abandon: () => undefined,
      limitReached: () => undefined,
    });
    const f = new FanOutSink([fake("cap", false), fake("otlp", true)]);
    let decodes = 0;
    const rec = serverRecord(typicalServer(0));
    let memo: Span | undefined;
    f.record(rec, () => {
      if (memo === undefined) {
        decodes++;
        memo = new TestDecoder().decode(rec, (b) => b);
      }
      return memo;
    });
    f.clock({ realtimeNs: 0n, boottimeNs: 0n, offsetNs: 5n });
    f.flush();
    expect(seen).toEqual([`cap:${rec.byteLength}:-`, `otlp:${rec.byteLength}:GET /hello`, "cap:clock:5", "otlp:clock:5", "cap:flush", "otlp:flush"]);
    expect(decodes).toBe(1);
  });
});

describe("bytes per span", () => {
  test("typical server spans (GET /hello, 127.0.0.1:8080 ← 127.0.0.1:54321, pattern /hello)", () => {
    const rec = serverRecord(typicalServer(0));
    // 56 rec_span + the server fields and string lengths (this build's layout) + 44 string bytes
    expect(rec.byteLength).toBe(builtinRecordSchema().types["273"]!.fixed + 44);
    const measure = (perTick: number, total: number) => {
      const p = path.join(dir, `bps-${perTick}.cbor`);
      const sink = new CaptureSink(p, values, sampleHeader(), {}, { flushIntervalMs: 0 });
      for (let i = 0; i < total; i++) {
        sink.record(serverRecord(typicalServer(i)), () => undefined);
        if ((i + 1) % perTick === 0) sink.flush();
      }
      const empty = path.join(dir, `bps-empty-${perTick}.cbor`);
      const e = new CaptureSink(empty, values, sampleHeader(), {}, { flushIntervalMs: 0 });
      sink.close("done", T0, zeroLosses());
      e.close("done", T0, zeroLosses());
      // Per span: file bytes minus a file with no spans (header, end record).
      return (fs.statSync(p).size - fs.statSync(empty).size) / total;
    };
    const busy = measure(100, 10_000);
    const quiet = measure(5, 1000);
    const single = measure(1, 200);
    console.log(`bytes per typical server span on disk: ${busy.toFixed(2)} at 100 spans/tick, ${quiet.toFixed(2)} at 5 spans/tick, ${single.toFixed(2)} at 1 span/tick`);
    // The record is 116 bytes since the server record gained its panic string length (u16).
    expect(busy).toBeLessThanOrEqual(122);
    expect(quiet).toBeLessThanOrEqual(122);
  });
  const values = { host: "h", pid: 7, exe: "/bin/srv", start: new Date(0) };
});
