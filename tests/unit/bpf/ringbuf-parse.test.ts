/** @module tests/unit/bpf/ringbuf-parse — the ring-buffer record walk over hand-built memory (BUSY, DISCARD, wrap, bounds). */
import { describe, expect, test } from "bun:test";
import { parseRecords, RINGBUF_HEADER, WrapScratch } from "../../../src/bpf/ringbuf.ts";

// A fake producer mapping: one "page" of producer header, then the data area, either twice in a
// row (as the kernel can map it, so records that wrap past the end are contiguous) or once (as
// RingBufferReader maps it: a wrapping record is put together in a WrapScratch).
const PAGE = 64;
const SIZE = 128;

for (const mapping of ["twice", "once"] as const) {
  describe(`parseRecords, data area mapped ${mapping}`, () => {
    function ring() {
      const copies = mapping === "twice" ? [0, SIZE] : [0];
      const buf = new ArrayBuffer(PAGE + copies.length * SIZE);
      const words = new Uint32Array(buf);
      const view = new DataView(buf);
      const wrap = mapping === "once" ? new WrapScratch() : undefined;
      /** Write a record at ring position `pos` (in each copy of the data area; wrapping within a lone copy). */
      const put = (pos: number, payload: number[], flags = 0) => {
        for (const copy of copies) {
          for (let i = 0; i < 8 + payload.length; i++) {
            let off = PAGE + copy + (pos % SIZE) + i;
            if (mapping === "once") off = PAGE + ((pos + i) % SIZE);
            // a record may run past the end of the second copy only in the first; ignore that tail
            if (off >= buf.byteLength) break;
            const b = i < 4 ? ((payload.length | flags) >>> (8 * i)) & 0xff : i < 8 ? 0 : payload[i - 8]!;
            view.setUint8(off, b);
          }
        }
        return pos + ((payload.length + 8 + 7) & ~7);
      };
      const collect = (from: number, limit: number, maxRecords = Infinity) => {
        const got: number[][] = [];
        const cursor = { pos: from, records: 0 };
        let error: unknown;
        try {
          parseRecords(
            words,
            view,
            PAGE,
            SIZE,
            cursor,
            limit,
            (v, o, l) => {
              if (got.length >= maxRecords) throw new Error("stop");
              got.push(Array.from({ length: l }, (_, i) => v.getUint8(o + i)));
            },
            wrap,
          );
        } catch (e) {
          error = e;
        }
        return { got, cursor, error };
      };
      return { put, collect };
    }

    test("reads committed records in order and pads lengths to 8 bytes", () => {
      const r = ring();
      let p = r.put(0, [1, 2, 3]);
      p = r.put(p, [4, 5, 6, 7, 8, 9, 10, 11, 12]);
      const { got, cursor } = r.collect(0, p);
      expect(got).toEqual([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12]]);
      expect(cursor).toEqual({ pos: 16 + 24, records: 2 });
      expect(r.collect(0, p).error).toBeUndefined();
    });

    test("skips discarded records but consumes their space", () => {
      const r = ring();
      let p = r.put(0, [1], RINGBUF_HEADER.DISCARD);
      p = r.put(p, [2]);
      const { got, cursor } = r.collect(0, p);
      expect(got).toEqual([[2]]);
      expect(cursor).toEqual({ pos: 32, records: 1 });
    });

    test("stops at a BUSY record and leaves it and later ones for the next batch", () => {
      const r = ring();
      let p = r.put(0, [1]);
      const busyAt = p;
      p = r.put(p, [2], RINGBUF_HEADER.BUSY);
      p = r.put(p, [3]);
      const { got, cursor } = r.collect(0, p);
      expect(got).toEqual([[1]]);
      expect(cursor.pos).toBe(busyAt);
    });

    test("a record that wraps past the end of the data area is read whole", () => {
      const r = ring();
      const start = SIZE * 3 - 8; // producer positions grow forever; pos % SIZE = 120
      const p = r.put(start, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12]);
      const { got, cursor } = r.collect(start, p);
      expect(got).toEqual([[9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12]]);
      expect(cursor.pos).toBe(start + 24);
    });

    test("records before, across and after the end of the data area, several trips around", () => {
      const r = ring();
      const want: number[][] = [];
      let p = SIZE * 5 - 40;
      const from = p;
      for (let i = 0; i < 12; i++) {
        const payload = Array.from({ length: 3 + ((i * 7) % 30) }, (_, k) => (i * 31 + k) & 0xff);
        const next = r.put(p, payload);
        const { got } = r.collect(p, next);
        expect(got).toEqual([payload]);
        want.push(payload);
        p = next;
      }
      expect(p - from).toBeGreaterThan(2 * SIZE);
      expect(want).toHaveLength(12);
    });

    test("respects the limit (batch bound) and stops exactly at it", () => {
      const r = ring();
      let p = 0;
      for (let i = 0; i < 5; i++) p = r.put(p, [i]);
      const first = r.collect(0, 32);
      expect(first.got).toEqual([[0], [1]]);
      const rest = r.collect(first.cursor.pos, p);
      expect(rest.got).toEqual([[2], [3], [4]]);
    });

    test("a throwing handler still consumes the record it was given", () => {
      const r = ring();
      let p = r.put(0, [1]);
      p = r.put(p, [2]);
      const { got, cursor, error } = r.collect(0, p, 1); // throws on the second record
      expect(got).toEqual([[1]]);
      expect((error as Error).message).toBe("stop");
      expect(cursor).toEqual({ pos: 32, records: 2 });
    });
  });
}
