/**
 * The bulk record paths `beetrace merge` uses: CaptureScanner.runs() gives the records items()
 * gives (also around damage and in a file read through a FileSource window), and
 * CaptureWriter.records() writes the bytes record() would, flushes included.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CaptureScanner, FileSource, type RawRun } from "../../../src/capture/reader.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import type { CaptureHeader } from "../../../src/capture/format.ts";
import { builtinRecordSchema } from "../../../src/probes/decode.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { RecordWriter } from "../probes/record-writer.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-runs-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SERVER = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_server"));
const BOOT0 = 5_000_000_000n;
const EPOCH0 = 1_800_000_000_000_000_000n;

function header(): CaptureHeader {
  return {
    type: "header",
    format: 2,
    tracer: { name: "beetrace", version: "test" },
    createdAt: EPOCH0,
    host: { name: "h", arch: "x64", kernel: "test" },
    target: { pid: 1, exe: "/srv/x", goVersion: "go1.26.0", modules: [], serviceName: "x" },
    clock: { realtimeNs: EPOCH0, boottimeNs: BOOT0, offsetNs: EPOCH0 - BOOT0 },
    probes: [],
    records: builtinRecordSchema(),
  };
}

/** Server records of varying sizes (the path string varies). */
function records(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    SERVER.bytes({
      fields: { type: E.REC_NETHTTP_SERVER, flags: E.NETHTTP_SERVER_F_STATUS, start_ns: BOOT0 + BigInt(i) * 1000n, end_ns: BOOT0 + BigInt(i) * 1000n + 500n, status: 200, proto_major: 1, proto_minor: 1 },
      hex: { trace_id: "5" + i.toString(16).padStart(31, "0"), span_id: "5" + i.toString(16).padStart(15, "0") },
      strings: { method: "GET", path: "/" + "p".repeat(i % 97), host: "x:80", remote: `10.0.0.1:${1000 + (i % 5000)}` },
    }),
  );
}

/** Each record's bytes in file order, from runs() (copied) or items(). */
function collect(s: CaptureScanner, runs: boolean): { recs: string[]; kinds: string[] } {
  const recs: string[] = [];
  const kinds: string[] = [];
  for (const it of runs ? s.runs() : s.items()) {
    if (it.type === "raws") {
      const r = it as RawRun;
      for (let k = 0; k < r.count; k++) recs.push(Buffer.from(r.bytes.subarray(r.at[k]!, k + 1 < r.count ? r.at[k + 1]! : r.end)).toString("hex"));
    } else if (it.type === "raw") recs.push(Buffer.from(it.bytes).toString("hex"));
    else kinds.push(it.type);
  }
  return { recs, kinds };
}

describe("bulk record paths", () => {
  test("CaptureWriter.records writes the same bytes as record() one by one, across flushes", () => {
    const recs = records(3000);
    const one = path.join(dir, "one.cbor");
    const bulk = path.join(dir, "bulk.cbor");
    // A small flush size: a run crosses many flush points.
    const w1 = CaptureWriter.open(one, header(), { flushIntervalMs: 0, flushBytes: 20_000 });
    const w2 = CaptureWriter.open(bulk, header(), { flushIntervalMs: 0, flushBytes: 20_000 });
    for (const r of recs) w1.record(r);
    // Runs of 1, 7 and 500 records.
    for (let i = 0, n = 1; i < recs.length; n = n === 1 ? 7 : n === 7 ? 500 : 1) {
      const part = recs.slice(i, i + n);
      const bytes = new Uint8Array(part.reduce((a, r) => a + r.byteLength, 0));
      const at = new Int32Array(part.length);
      let p = 0;
      for (const [k, r] of part.entries()) {
        at[k] = p;
        bytes.set(r, p);
        p += r.byteLength;
      }
      w2.records(bytes, at, part.length, p);
      i += part.length;
    }
    expect(w2.totals().spans).toBe(w1.totals().spans);
    w1.close("t", EPOCH0, zeroLosses());
    w2.close("t", EPOCH0, zeroLosses());
    expect(Buffer.compare(fs.readFileSync(one), fs.readFileSync(bulk))).toBe(0);
  });

  test("runs() gives the records items() gives, in order, also through a file window and around damage", () => {
    const recs = records(20_000);
    const p = path.join(dir, "big.cbor");
    const w = CaptureWriter.open(p, header(), { flushIntervalMs: 0, flushBytes: 300_000 });
    for (const [i, r] of recs.entries()) {
      w.record(r);
      if (i === 9000) w.clock({ realtimeNs: EPOCH0 + 1n, boottimeNs: BOOT0, offsetNs: EPOCH0 - BOOT0 + 1n });
    }
    w.close("t", EPOCH0, zeroLosses());
    const fromItems = (() => {
      const src = new FileSource(p);
      try {
        return collect(new CaptureScanner(src), false);
      } finally {
        src.close();
      }
    })();
    expect(fromItems.recs.length).toBe(recs.length);
    const src = new FileSource(p);
    try {
      const got = collect(new CaptureScanner(src), true);
      expect(got).toEqual(fromItems);
    } finally {
      src.close();
    }
    // Damage inside a chunk: a record's size field and an unknown type.
    const bytes = fs.readFileSync(p);
    const hit = bytes.indexOf(Buffer.from(recs[5000]!));
    const hit2 = bytes.indexOf(Buffer.from(recs[15000]!));
    expect(hit).toBeGreaterThan(0);
    bytes[hit + 2] = 0xff;
    bytes[hit + 3] = 0xff;
    bytes[hit2] = 0x77;
    bytes[hit2 + 1] = 0x77;
    const a = new CaptureScanner(bytes);
    const viaItems = collect(a, false);
    const b = new CaptureScanner(bytes);
    expect(collect(b, true)).toEqual(viaItems);
    expect(b.invalid).toBe(a.invalid);
    expect(b.damaged).toEqual(a.damaged);
    expect(a.invalid).toBeGreaterThan(0);
  });
});
