import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { CAPTURE_FORMAT, captureEncoder } from "../../../src/capture/format.ts";
import { itemEnd, readCapture, readCaptureFile } from "../../../src/capture/reader.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { TracerError } from "../../../src/errors.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { T0, runAndKill, sampleHeader, sampleSpans, tempDir, writeSampleCapture } from "./fixture.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectCorrupt(bytes: Uint8Array, message: RegExp): void {
  let err: unknown;
  try {
    readCapture(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TracerError);
  expect((err as TracerError).code).toBe("corrupt_capture");
  expect((err as TracerError).message).toMatch(message);
  expect((err as TracerError).hint).toBeTruthy();
}

describe("capture round trip", () => {
  test("header, spans, stats and end come back equal, bigints exact", () => {
    const p = writeSampleCapture(dir);
    const c = readCaptureFile(p);
    expect(c.header).toEqual(sampleHeader());
    expect(c.truncated).toBe(false);
    expect(c.trailingBytes).toBe(0);
    expect(c.skipped).toBe(0);
    expect(c.records.map((r) => r.type)).toEqual(["span", "span", "stats", "span", "span", "end"]);
    const spans = c.records.filter((r) => r.type === "span").map(({ type: _t, ...s }) => s);
    expect(spans).toEqual(sampleSpans());
    expect(typeof spans[0]!.startTimeUnixNano).toBe("bigint");
    expect(c.records[2]).toEqual({ type: "stats", at: T0 + 1_000_000_000n, losses: { ...zeroLosses(), ringbufFull: 2 }, spans: 2 });
    expect(c.records[5]).toEqual({
      type: "end",
      reason: "duration",
      at: T0 + 4_000_000_000n,
      totals: { spans: 4, losses: { ...zeroLosses(), ringbufFull: 2, incomplete: 1 } },
    });
  });

  test("file mode is 0600, also when the file existed with a wider mode", () => {
    const p = path.join(dir, "mode.cbor");
    fs.writeFileSync(p, "old contents", { mode: 0o644 });
    fs.chmodSync(p, 0o644);
    const w = CaptureWriter.open(p, sampleHeader(), { flushIntervalMs: 0 });
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    w.close("test", T0, zeroLosses());
    expect(readCaptureFile(p).records).toHaveLength(1);
  });

  test("plain CBOR maps: no cbor-x record tag (0xd8 0x69) and bigints as 8-byte integers", () => {
    const bytes = captureEncoder().encode({ type: "span", t: 1n });
    // b9 0002 (map of 2; cbor-x always uses a 16-bit length) 64 "type" 64 "span" 61 "t" 1b 0000000000000001
    expect(Buffer.from(bytes).toString("hex")).toBe("b900026474797065647370616e61741b0000000000000001");
  });

  test("a symlink is refused (beetrace runs as root)", () => {
    const target = path.join(dir, "real.cbor");
    fs.writeFileSync(target, "");
    const link = path.join(dir, "link.cbor");
    fs.symlinkSync(target, link);
    expect(() => CaptureWriter.open(link, sampleHeader())).toThrow(/symbolic link/);
    expect(fs.readFileSync(target).byteLength).toBe(0);
  });

  test("a write error is output_failed and says how much was written", () => {
    // /dev/full: every write fails with ENOSPC (Linux); not a regular file, so no chmod.
    let err: unknown;
    try {
      CaptureWriter.open("/dev/full", sampleHeader());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("output_failed");
    expect((err as TracerError).message).toMatch(/0 spans in 0 bytes were written before the error/);
    expect(fs.statSync("/dev/full").mode & 0o777).not.toBe(0o600);
  });

  test("buffered records reach the file on the flush timer, without close", async () => {
    const p = path.join(dir, "timer.cbor");
    const w = CaptureWriter.open(p, sampleHeader(), { flushIntervalMs: 5 });
    w.span(sampleSpans()[0]!);
    expect(readCaptureFile(p).records).toHaveLength(0);
    const deadline = Date.now() + 10_000;
    while (readCaptureFile(p).records.length === 0 && Date.now() < deadline) await Bun.sleep(5);
    expect(readCaptureFile(p).records).toHaveLength(1);
    expect(w.totals()).toEqual({ records: 2, bytes: fs.statSync(p).size, spans: 1 });
    w.close("test", T0, zeroLosses());
  });

  test("a non-regular output (/dev/null) is written without chmod or fsync errors", () => {
    const before = fs.statSync("/dev/null").mode;
    const w = CaptureWriter.open("/dev/null", sampleHeader(), { flushIntervalMs: 0 });
    w.span(sampleSpans()[0]!);
    expect(w.close("test", T0, zeroLosses()).records).toBe(3);
    expect(fs.statSync("/dev/null").mode).toBe(before);
  });

  test("missing file is file_not_found", () => {
    expect(() => readCaptureFile(path.join(dir, "nope.cbor"))).toThrow(expect.objectContaining({ code: "file_not_found" }));
  });

  test("close twice is harmless; appending after close is an internal error", () => {
    const p = path.join(dir, "twice.cbor");
    const w = CaptureWriter.open(p, sampleHeader(), { flushIntervalMs: 0 });
    const t1 = w.close("a", T0, zeroLosses());
    const t2 = w.close("b", T0, zeroLosses());
    expect(t2).toEqual(t1);
    expect(t1.records).toBe(2);
    expect(() => w.span(sampleSpans()[0]!)).toThrow(/closed/);
  });
});

describe("truncation", () => {
  test("a cut at every byte offset reads back every complete record", () => {
    const bytes = fs.readFileSync(writeSampleCapture(dir, "cut.cbor"));
    // Record boundaries, found independently of the reader by re-encoding the records.
    const full = readCapture(bytes);
    const enc = captureEncoder();
    const sizes = [full.header, ...full.records].map((r) => enc.encode(r).byteLength);
    const ends: number[] = [];
    let acc = 0;
    for (const s of sizes) ends.push((acc += s));
    expect(acc).toBe(bytes.byteLength);
    const headerEnd = ends[0]!;

    let checked = 0;
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      const part = bytes.subarray(0, cut);
      if (cut < headerEnd) {
        expectCorrupt(part, cut === 0 ? /empty/ : /ends inside its header/);
        continue;
      }
      const c = readCapture(part);
      const complete = ends.filter((e) => e <= cut).length - 1;
      expect(c.records).toEqual(full.records.slice(0, complete));
      const lastEnd = ends[complete]!;
      expect(c.truncated).toBe(cut !== lastEnd);
      expect(c.trailingBytes).toBe(cut - lastEnd);
      checked++;
    }
    expect(checked).toBe(bytes.byteLength - headerEnd + 1);
  });

  test("a SIGKILLed writer leaves every flushed record readable", async () => {
    const p = path.join(dir, "killed.cbor");
    await runAndKill(
      "writer",
      { CaptureWriter: "src/capture/writer.ts", sampleHeader: "tests/unit/capture/fixture.ts", sampleSpans: "tests/unit/capture/fixture.ts" },
      `const w = CaptureWriter.open(${JSON.stringify(p)}, sampleHeader(), { flushIntervalMs: 0 });
for (const s of sampleSpans()) w.span(s);
w.flush();
w.span(sampleSpans()[0]!); // buffered, never flushed`,
    );
    const c = readCaptureFile(p);
    expect(c.records).toHaveLength(4);
    expect(c.records.every((r) => r.type === "span")).toBe(true);
    expect(c.truncated).toBe(false);
  });
});

describe("bad input", () => {
  test("random garbage never escapes as anything but corrupt_capture", () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const good = fs.readFileSync(writeSampleCapture(dir, "fuzz.cbor"));
    let errors = 0;
    for (let i = 0; i < 400; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = new Uint8Array(1 + (i % 97));
        for (let k = 0; k < bytes.length; k++) bytes[k] = rand();
      } else {
        // Damage a real capture in a few places.
        bytes = Uint8Array.from(good);
        for (let k = 0; k < 1 + (i % 5); k++) bytes[(rand() * 257 + rand()) % bytes.length] = rand();
      }
      try {
        const c = readCapture(bytes);
        expect(c.header.type).toBe("header");
      } catch (e) {
        if (!(e instanceof TracerError) || e.code !== "corrupt_capture") throw e;
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(200);
  });

  test("wrong file types are named", () => {
    expectCorrupt(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /not a beetrace capture file \(looks like an ELF executable\)/);
    expectCorrupt(new TextEncoder().encode('{"resourceSpans":[]}\n'), /not a beetrace capture file \(looks like JSON\)/);
    expectCorrupt(new TextEncoder().encode("hello world, this is text"), /not a beetrace capture file/);
    expectCorrupt(new Uint8Array(0), /empty/);
  });

  test("a CBOR file whose first record is not a header", () => {
    const enc = captureEncoder();
    expectCorrupt(enc.encode({ type: "span" }), /first record is not a header/);
  });

  test("unsupported format version", () => {
    const enc = captureEncoder();
    expectCorrupt(enc.encode({ ...sampleHeader(), format: CAPTURE_FORMAT + 1 }), new RegExp(`capture format ${CAPTURE_FORMAT + 1} is not supported \\(this beetrace reads formats 1 to ${CAPTURE_FORMAT}\\)`));
    expectCorrupt(enc.encode({ ...sampleHeader(), format: 0 }), /invalid format version/);
  });

  test("malformed CBOR after a good header is damage with its byte range, not the end of reading", () => {
    const enc = captureEncoder();
    const h = enc.encode(sampleHeader());
    const bytes = Buffer.concat([h, Buffer.from([0xff, 0x00])]);
    const c = readCapture(bytes);
    expect(c.invalid).toBe(1);
    expect(c.damaged).toEqual([{ start: h.byteLength, end: bytes.byteLength, why: expect.stringMatching(/malformed CBOR at byte \d+: unexpected break/) }]);
    expect(c.records).toEqual([]);
  });

  test("a span item of the wrong shape costs only itself; an unknown item type is skipped", () => {
    const enc = captureEncoder();
    const h = Buffer.from(enc.encode(sampleHeader()));
    const [s0, s1] = sampleSpans();
    const good0 = Buffer.from(enc.encode({ type: "span", ...s0! }));
    const badSpan = Buffer.from(enc.encode({ type: "span", ...s0!, traceId: "XYZ" }));
    const good1 = Buffer.from(enc.encode({ type: "span", ...s1! }));
    const c = readCapture(Buffer.concat([h, good0, badSpan, good1]));
    expect(c.records.map((r) => (r.type === "span" ? r.spanId : r.type))).toEqual([s0!.spanId, s1!.spanId]);
    const start = h.byteLength + good0.byteLength;
    expect(c.damaged).toEqual([{ start, end: start + badSpan.byteLength, why: expect.stringMatching(/item 2 \(byte \d+\): traceId 'XYZ' is not 32 lowercase hex digits/) }]);
    const future = Buffer.from(enc.encode({ type: "metrics", x: 1 }));
    const f = readCapture(Buffer.concat([h, future]));
    expect(f.skipped).toBe(1);
    expect(f.records).toEqual([]);
    expect(f.invalid).toBe(0);
  });
});

describe("itemEnd (RFC 8949 item boundaries)", () => {
  const end = (hex: string) => itemEnd(Buffer.from(hex.replace(/ /g, ""), "hex"), 0);
  test("definite and indefinite items", () => {
    expect(end("00")).toBe(1); // 0
    expect(end("1b 0000000000000001")).toBe(9); // uint64
    expect(end("63 616263")).toBe(4); // "abc"
    expect(end("82 01 02")).toBe(3); // [1, 2]
    expect(end("9f 01 02 ff")).toBe(4); // [_ 1, 2]
    expect(end("7f 61 61 61 62 ff")).toBe(6); // (_ "a", "b")
    expect(end("a1 61 61 c1 1a 00000001")).toBe(9); // {"a": 1(1)}
    expect(end("f9 3c00")).toBe(3); // 1.0 half float
  });
  test("incomplete items are -1, malformed ones throw", () => {
    expect(end("1b 00000000")).toBe(-1);
    expect(end("82 01")).toBe(-1);
    expect(end("9f 01")).toBe(-1);
    expect(end("7a ffffffff")).toBe(-1); // 4 GiB string in a 5-byte file
    expect(end("9b ffffffffffffffff")).toBe(-1); // 2^64-1 items
    expect(() => end("1c")).toThrow(/reserved/);
    expect(() => end("7f 01 ff")).toThrow(/chunk/);
    expect(() => end("ff")).toThrow(/break/);
    expect(() => end("81".repeat(100) + "00")).toThrow(/nesting/);
  });
});
