/**
 * @module tests/unit/capture/damage.test — issue 15 item 3: one damaged record costs only
 * itself. A capture of 200 span records in 20 chunks is damaged in the middle in different ways;
 * `convert` writes every other span (so all intact records before and after the damage), then
 * fails with corrupt_capture (exit 17) naming the damaged byte range.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { readCapture } from "../../../src/capture/reader.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { TracerError } from "../../../src/errors.ts";
import { setLogSink } from "../../../src/log.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { rawCaptureHeader } from "../../../src/trace/output.ts";
import { T0, sampleHeader, tempDir } from "./fixture.ts";
import { serverRecord, typicalServer } from "./records.ts";

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 200;
const PER_CHUNK = 10;

/** The sample capture's bytes and where each record is. */
function sample(): { bytes: Uint8Array; recs: { start: number; end: number; spanId: string }[]; chunkStarts: number[] } {
  const p = path.join(dir, "sample.cbor");
  const w = CaptureWriter.open(p, rawCaptureHeader(sampleHeader()), { flushIntervalMs: 0 });
  const raws: Uint8Array[] = [];
  for (let i = 0; i < N; i++) {
    const r = serverRecord(typicalServer(i));
    raws.push(r);
    w.record(r);
    if (i % PER_CHUNK === PER_CHUNK - 1) {
      w.stats(T0 + BigInt(i), zeroLosses());
      w.flush();
    }
  }
  w.close("duration", T0 + 10_000_000_000n, zeroLosses());
  const bytes = new Uint8Array(fs.readFileSync(p));
  const buf = Buffer.from(bytes);
  const recs = raws.map((r, i) => {
    const start = buf.indexOf(Buffer.from(r));
    return { start, end: start + r.byteLength, spanId: typicalServer(i).spanId };
  });
  // The writer's chunk head: {"type": "records", "data": bytes(u32 len)}, 24 bytes before the first record.
  const chunkStarts = Array.from({ length: N / PER_CHUNK }, (_, c) => recs[c * PER_CHUNK]!.start - 24);
  return { bytes, recs, chunkStarts };
}

async function convert(bytes: Uint8Array, name: string): Promise<{ spanIds: Set<string>; error: TracerError | undefined }> {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  const out = path.join(dir, `${name}.jsonl`);
  let error: TracerError | undefined;
  setLogSink(() => undefined);
  try {
    await convertCommand(p, { to: "otlp-json", out });
  } catch (e) {
    if (!(e instanceof TracerError)) throw e;
    error = e;
  } finally {
    setLogSink((l) => process.stderr.write(l + "\n"));
  }
  const spanIds = new Set<string>();
  for (const line of fs.readFileSync(out, "utf8").split("\n")) {
    if (line === "") continue;
    for (const rs of JSON.parse(line).resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spanIds.add(s.spanId);
  }
  return { spanIds, error };
}

const all = (recs: { spanId: string }[]) => recs.map((r) => r.spanId);

describe("a damaged record costs only itself", () => {
  test("undamaged: all 200 spans, exit 0", async () => {
    const { bytes, recs } = sample();
    const { spanIds, error } = await convert(bytes, "clean.cbor");
    expect(error).toBeUndefined();
    expect([...spanIds].sort()).toEqual(all(recs).sort());
  });

  test("a record's size field zeroed in the middle: the other 199 spans, then exit 17 with the record's byte range", async () => {
    const { bytes, recs } = sample();
    const bad = recs[105]!;
    bytes[bad.start + 2] = 0;
    bytes[bad.start + 3] = 0;
    const { spanIds, error } = await convert(bytes, "size0.cbor");
    expect([...spanIds].sort()).toEqual(all(recs).filter((id) => id !== bad.spanId).sort());
    expect(error?.code).toBe("corrupt_capture");
    expect(error?.message).toContain(`bytes ${bad.start}–${bad.end}`);
  });

  test("a record whose contents do not decode (a string length past its end): the other 199 spans", async () => {
    const { bytes, recs } = sample();
    const bad = recs[77]!;
    // method_len (u16 at 60, struct rec_nethttp_server) → 0xffff: its strings no longer fit the record.
    bytes[bad.start + 60] = 0xff;
    bytes[bad.start + 61] = 0xff;
    const { spanIds, error } = await convert(bytes, "strings.cbor");
    expect([...spanIds].sort()).toEqual(all(recs).filter((id) => id !== bad.spanId).sort());
    expect(error?.message).toContain(`bytes ${bad.start}–${bad.end}`);
  });

  test("a chunk's head damaged: its records are still read (all 200 spans); the damage is the head", async () => {
    const { bytes, recs, chunkStarts } = sample();
    const c = chunkStarts[10]!;
    bytes[c] = 0x00; // the map head → an integer: the item is not a map
    const { spanIds, error } = await convert(bytes, "head.cbor");
    expect(spanIds.size).toBe(N);
    expect(error?.message).toContain(`bytes ${c}–${recs[100]!.start}`);
  });

  test("a chunk's length damaged (too long, too short): every span is still read", async () => {
    for (const delta of [+1000, -3 * (recs0Size() + 0)]) {
      const { bytes, recs, chunkStarts } = sample();
      const c = chunkStarts[10]!;
      const v = new DataView(bytes.buffer, bytes.byteOffset);
      v.setUint32(c + 20, v.getUint32(c + 20, false) + delta, false);
      const { spanIds, error } = await convert(bytes, `len${delta}.cbor`);
      expect({ delta, spans: spanIds.size }).toEqual({ delta, spans: N });
      expect(error?.code).toBe("corrupt_capture");
      expect(recs).toHaveLength(N);
    }
  });

  test("50 garbage bytes across a record boundary lose at most the two records they touch", async () => {
    const { bytes, recs } = sample();
    const at = recs[150]!.end - 25;
    for (let k = 0; k < 50; k++) bytes[at + k] = (k * 37 + 11) & 0xff;
    const { spanIds, error } = await convert(bytes, "garbage.cbor");
    const lost = all(recs).filter((id) => !spanIds.has(id));
    expect(lost.length).toBeLessThanOrEqual(2);
    expect(lost.every((id) => id === recs[150]!.spanId || id === recs[151]!.spanId)).toBe(true);
    expect(error?.code).toBe("corrupt_capture");
  });

  test("bytes inserted between two chunks: all 200 spans; the damage is exactly the inserted bytes", async () => {
    const { bytes, chunkStarts } = sample();
    const c = chunkStarts[12]!;
    const junk = Uint8Array.from([1, 2, 3, 4, 5, 6, 7]);
    const damaged = new Uint8Array([...bytes.subarray(0, c), ...junk, ...bytes.subarray(c)]);
    const { spanIds, error } = await convert(damaged, "inserted.cbor");
    expect(spanIds.size).toBe(N);
    expect(error?.message).toContain(`bytes ${c}–${c + junk.byteLength} `);
    const back = readCapture(damaged);
    expect(back.damaged).toEqual([{ start: c, end: c + 7, why: expect.any(String) }]);
  });
});

function recs0Size(): number {
  return serverRecord(typicalServer(0)).byteLength;
}
