/**
 * Capture format 3: records chunks compressed with raw DEFLATE (`records-deflate`). Round trip,
 * what a cut and damage cost, the bounds a crafted chunk meets, and bytes per span with
 * realistic (random) ids.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { CAPTURE_FORMAT, DEFLATED_CHUNK_MAX, captureEncoder } from "../../../src/capture/format.ts";
import { CaptureScanner, type CaptureItem, itemEnd, readCapture } from "../../../src/capture/reader.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { TracerError } from "../../../src/errors.ts";
import { deflateRaw } from "../../../src/runtime.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { CaptureSink, rawCaptureHeader } from "../../../src/trace/output.ts";
import { rng } from "../binary/fuzz-harness.ts";
import { KILL_IMPORTS, T0, killedSinkBody, runAndKill, sampleHeader, tempDir } from "./fixture.ts";
import { type ServerRecord, serverRecord, typicalServer } from "./records.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A deterministic stream of random-looking hex digits (fuzz-harness rng: xorshift32), so ids do not compress. */
function hexStream(seed: number): (len: number) => string {
  const next = rng(seed);
  return (len) => {
    let s = "";
    for (let i = 0; i < len; i++) s += Math.floor(next() * 16).toString(16);
    return s;
  };
}

/** The sample's /items/17 server span with random ids and a client port that changes per connection. */
function itemsSpan(i: number, hex: (len: number) => string): ServerRecord {
  return {
    ...typicalServer(i),
    traceId: hex(32),
    spanId: hex(16),
    path: "/items/17",
    pattern: "GET /items/{id}",
    host: "127.0.0.1:18080",
    remote: `127.0.0.1:${40000 + (i % 16)}`,
  };
}

function raws(items: CaptureItem[]): Uint8Array[] {
  return items.filter((i) => i.type === "raw").map((i) => Uint8Array.from((i as { bytes: Uint8Array }).bytes));
}

/** Ticks of `perTick` records through a compressing writer; returns the records in order. */
function writeTicks(p: string, ticks: number, perTick: number, seed = 7): Uint8Array[] {
  const hex = hexStream(seed);
  const w = CaptureWriter.open(p, rawCaptureHeader(sampleHeader()), { flushIntervalMs: 0, compress: true });
  const recs: Uint8Array[] = [];
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < perTick; i++) {
      const r = serverRecord(itemsSpan(t * perTick + i, hex));
      recs.push(r);
      w.record(r);
    }
    w.flush();
  }
  w.close("done", T0, zeroLosses());
  return recs;
}

describe("records-deflate chunks", () => {
  test("a compressing writer's records come back byte for byte, in order; the file says format 3", () => {
    const p = path.join(dir, "rt.cbor");
    const recs = writeTicks(p, 4, 50);
    const bytes = fs.readFileSync(p);
    expect(Buffer.from(bytes).indexOf("records-deflate")).toBeGreaterThan(0);
    const s = new CaptureScanner(bytes);
    expect(s.header.format).toBe(CAPTURE_FORMAT);
    expect(raws([...s.items()])).toEqual(recs);
    expect(s.truncated).toBe(false);
    expect(s.invalid).toBe(0);
    // The same through runs() (the merge path) and the whole-file decoder.
    let viaRuns = 0;
    for (const it of new CaptureScanner(bytes).runs()) if (it.type === "raws") viaRuns += it.count;
    expect(viaRuns).toBe(recs.length);
    expect(readCapture(bytes).records.filter((r) => r.type === "span")).toHaveLength(recs.length);
  });

  test("raw and compressed chunks read in one file, in order", () => {
    const hex = hexStream(3);
    const recs = Array.from({ length: 30 }, (_, i) => serverRecord(itemsSpan(i, hex)));
    const enc = captureEncoder();
    const data = (from: number, to: number) => Buffer.concat(recs.slice(from, to));
    const file = Buffer.concat([
      enc.encode(rawCaptureHeader(sampleHeader())),
      enc.encode({ type: "records", data: data(0, 10) }),
      enc.encode({ type: "records-deflate", size: data(10, 20).byteLength, data: deflateRaw(data(10, 20), 1) }),
      enc.encode({ type: "records", data: data(20, 30) }),
    ]);
    const s = new CaptureScanner(file);
    expect(raws([...s.items()])).toEqual(recs);
    expect(s.invalid).toBe(0);
  });

  test("compressed chunks need a format-3 header", () => {
    const h = { ...rawCaptureHeader(sampleHeader()), format: 2 };
    expect(() => CaptureWriter.open(path.join(dir, "f2.cbor"), h, { compress: true })).toThrow(/format-3 header/);
  });

  test("a cut at any byte reads back a prefix of the records: every chunk before the cut, and what inflates of the cut one", () => {
    const p = path.join(dir, "cut.cbor");
    const recs = writeTicks(p, 3, 30);
    const bytes = new Uint8Array(fs.readFileSync(p));
    const headerEnd = itemEnd(bytes, 0);
    expect(headerEnd).toBeGreaterThan(0);
    let last = 0;
    let partial = 0;
    const ends: number[] = [];
    for (let pos = 0; pos < bytes.byteLength; ) ends.push((pos = itemEnd(bytes, pos)));
    for (let cut = headerEnd; cut <= bytes.byteLength; cut++) {
      const s = new CaptureScanner(bytes.subarray(0, cut));
      const got = raws([...s.items()]);
      // A prefix, in order, byte for byte, never shrinking as the cut moves on.
      expect(got).toEqual(recs.slice(0, got.length));
      expect(got.length).toBeGreaterThanOrEqual(last);
      if (got.length % 30 !== 0) partial++;
      last = got.length;
      expect(s.invalid).toBe(0);
      expect(s.truncated).toBe(!ends.includes(cut));
    }
    expect(last).toBe(recs.length);
    // Most cuts inside a chunk still give some of its records (DEFLATE decodes as it goes).
    expect(partial).toBeGreaterThan(0);
  });

  test("damage inside a compressed chunk costs that chunk's records after it, never the other chunks", () => {
    const p = path.join(dir, "dmg.cbor");
    const recs = writeTicks(p, 3, 30);
    const bytes = new Uint8Array(fs.readFileSync(p));
    const buf = Buffer.from(bytes);
    const second = buf.indexOf("records-deflate", buf.indexOf("records-deflate") + 1);
    expect(second).toBeGreaterThan(0);
    let runs = 0;
    for (let k = 40; k < 400; k += 7) {
      const d = Uint8Array.from(bytes);
      d[second + 30 + k] = d[second + 30 + k]! ^ 0x5a;
      const s = new CaptureScanner(d);
      const got = raws([...s.items()]);
      // The first chunk is whole; the third chunk's records all come back.
      expect(got.slice(0, 30)).toEqual(recs.slice(0, 30));
      expect(got.slice(-30)).toEqual(recs.slice(60));
      runs++;
    }
    expect(runs).toBeGreaterThan(40);
  });

  test("random damage never escapes as anything but corrupt_capture", () => {
    const p = path.join(dir, "fuzz.cbor");
    writeTicks(p, 3, 20);
    const bytes = new Uint8Array(fs.readFileSync(p));
    const hex = hexStream(11);
    for (let round = 0; round < 300; round++) {
      const d = Uint8Array.from(bytes);
      const hits = 1 + (parseInt(hex(1), 16) % 4);
      for (let h = 0; h < hits; h++) d[parseInt(hex(6), 16) % d.byteLength] = parseInt(hex(2), 16);
      try {
        const c = readCapture(d);
        expect(Array.isArray(c.records)).toBe(true);
      } catch (e) {
        expect(e).toBeInstanceOf(TracerError);
        expect((e as TracerError).code).toBe("corrupt_capture");
      }
    }
  });

  test("a chunk whose head understates its size, or claims more than the reader holds, is damage", () => {
    const recs = Array.from({ length: 20 }, (_, i) => serverRecord(itemsSpan(i, hexStream(5))));
    const data = Buffer.concat(recs);
    const z = deflateRaw(data, 1);
    const enc = captureEncoder();
    const head = enc.encode(rawCaptureHeader(sampleHeader()));
    const item = (size: number) => enc.encode({ type: "records-deflate", size, data: z });
    const end = enc.encode({ type: "end", reason: "done", at: T0, totals: { spans: 20, losses: zeroLosses() } });
    for (const size of [data.byteLength - 1, 10, DEFLATED_CHUNK_MAX + 1]) {
      const s = new CaptureScanner(Buffer.concat([head, item(size), end]));
      const items = [...s.items()];
      expect(s.invalid).toBeGreaterThan(0);
      expect(items.filter((i) => i.type === "end")).toHaveLength(1);
    }
    const ok = new CaptureScanner(Buffer.concat([head, item(data.byteLength), end]));
    expect(raws([...ok.items()])).toEqual(recs);
    expect(ok.invalid).toBe(0);
  });

  test("a compressed chunk whose length was damaged long does not swallow the items after it", () => {
    const hex = hexStream(13);
    const recs = Array.from({ length: 30 }, (_, i) => serverRecord(itemsSpan(i, hex)));
    const enc = captureEncoder();
    const chunk = (from: number, to: number) => {
      const data = Buffer.concat(recs.slice(from, to));
      return Buffer.from(enc.encode({ type: "records-deflate", size: data.byteLength, data: deflateRaw(data, 1) }));
    };
    const first = chunk(0, 10);
    const file = Buffer.concat([
      Buffer.from(enc.encode(rawCaptureHeader(sampleHeader()))),
      first,
      Buffer.from(enc.encode({ type: "stats", at: T0, losses: zeroLosses(), spans: 10 })),
      chunk(10, 20),
      chunk(20, 30),
    ]);
    // The first chunk's byte-string length (the last head before its data) grows by 300 bytes.
    const at = file.indexOf(first) + first.indexOf(Buffer.from("data")) + 4;
    expect(file[at]! >> 5).toBe(2);
    const d = Uint8Array.from(file);
    const len = d[at]! & 0x1f;
    expect(len).toBe(25); // a 2-byte length follows
    const was = (d[at + 1]! << 8) | d[at + 2]!;
    d[at + 1] = ((was + 300) >> 8) & 0xff;
    d[at + 2] = (was + 300) & 0xff;
    const s = new CaptureScanner(d);
    const items = [...s.items()];
    expect(raws(items)).toEqual(recs);
    expect(items.filter((i) => i.type === "stats")).toHaveLength(1);
    expect(s.invalid).toBeGreaterThan(0);
  });

  test("a write cut short (a full disk) counts as written exactly the records a reader gets back from the cut chunk", () => {
    const hex = hexStream(9);
    const recs = Array.from({ length: 60 }, (_, i) => serverRecord(itemsSpan(i, hex)));
    for (const keep of [0.2, 0.5, 0.9]) {
      const p = path.join(dir, `partial-${keep}.cbor`);
      let fail = false;
      let flushed = 0;
      const w = CaptureWriter.open(p, rawCaptureHeader(sampleHeader()), {
        flushIntervalMs: 0,
        compress: true,
        writeSync: (fd, b, o, l) => {
          if (!fail) return fs.writeSync(fd, b, o, l);
          if (o > 0) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
          flushed = Math.floor(keep * l);
          return fs.writeSync(fd, b, o, flushed);
        },
      });
      for (const r of recs) w.record(r);
      fail = true;
      expect(() => w.flush()).toThrow(expect.objectContaining({ code: "output_failed" }));
      const said = w.totals().spans;
      w.abandon();
      const s = new CaptureScanner(fs.readFileSync(p));
      const got = raws([...s.items()]);
      expect(got).toEqual(recs.slice(0, got.length));
      expect(said).toBe(got.length);
      expect(s.truncated).toBe(true);
      expect(flushed).toBeGreaterThan(0);
    }
  });

  test("a SIGKILLed tracer loses only what it had not flushed (at most one drain tick)", async () => {
    const p = path.join(dir, "killed3.cbor");
    await runAndKill("sink3", KILL_IMPORTS, killedSinkBody(p, 40, true));
    const bytes = fs.readFileSync(p);
    expect(Buffer.from(bytes).indexOf("records-deflate")).toBeGreaterThan(0);
    const s = new CaptureScanner(bytes);
    expect(raws([...s.items()])).toHaveLength(120);
    expect(s.truncated).toBe(false);
  });
});

describe("capture sink formats", () => {
  test("format 2 on request (compress: false, as --capture-format 2 asks): raw chunks under a format-2 header, which a format-2 reader accepts", () => {
    const values = { host: "h", pid: 7, exe: "/bin/srv", start: new Date(0) };
    const hex = hexStream(21);
    const recs = Array.from({ length: 500 }, (_, i) => serverRecord(itemsSpan(i, hex)));
    const files: Record<string, Buffer> = {};
    for (const format of [2, 3] as const) {
      const p = path.join(dir, `sink-f${format}.cbor`);
      const sink = new CaptureSink(p, values, sampleHeader(), {}, { flushIntervalMs: 0, compress: format === 3 });
      for (const r of recs) sink.record(r, () => undefined);
      sink.close("done", T0, zeroLosses());
      files[format] = fs.readFileSync(p);
      const s = new CaptureScanner(files[format]!);
      expect(s.header.format).toBe(format);
      expect(raws([...s.items()])).toEqual(recs);
    }
    expect(files[2]!.indexOf("records-deflate")).toBe(-1);
    expect(files[3]!.indexOf("records-deflate")).toBeGreaterThan(0);
    expect(files[3]!.byteLength).toBeLessThan(files[2]!.byteLength / 2);
  });
});

describe("bytes per span, compressed", () => {
  test("the sample's /items/17 server spans with random ids: ≤ 120 bytes each on disk at 15 spans per tick and up", () => {
    const values = { host: "h", pid: 7, exe: "/bin/srv", start: new Date(0) };
    const measure = (perTick: number, total: number, compress: boolean) => {
      const hex = hexStream(perTick);
      const p = path.join(dir, `bps-${perTick}-${compress}.cbor`);
      const sink = new CaptureSink(p, values, sampleHeader(), {}, { flushIntervalMs: 0, compress });
      for (let i = 0; i < total; i++) {
        sink.record(serverRecord(itemsSpan(i, hex)), () => undefined);
        if ((i + 1) % perTick === 0) sink.flush();
      }
      const empty = path.join(dir, `bps-empty-${perTick}-${compress}.cbor`);
      const e = new CaptureSink(empty, values, sampleHeader(), {}, { flushIntervalMs: 0, compress });
      sink.close("done", T0, zeroLosses());
      e.close("done", T0, zeroLosses());
      return (fs.statSync(p).size - fs.statSync(empty).size) / total;
    };
    const raw = measure(300, 6000, false);
    const busy = measure(300, 6000, true);
    const light = measure(15, 1500, true);
    const single = measure(1, 200, true);
    const rawSingle = measure(1, 200, false);
    console.log(`bytes per /items/17 server span on disk: raw ${raw.toFixed(1)}; compressed ${busy.toFixed(1)} at 300 spans/tick, ${light.toFixed(1)} at 15, ${single.toFixed(1)} at 1 (raw ${rawSingle.toFixed(1)})`);
    expect(busy).toBeLessThanOrEqual(60);
    expect(light).toBeLessThanOrEqual(120);
    // A chunk is kept compressed only when that is smaller: never worse than raw, even at one span per tick.
    expect(single).toBeLessThanOrEqual(rawSingle);
  });
});
