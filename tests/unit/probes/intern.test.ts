/**
 * @module tests/unit/probes/intern — the record strings' cache (probes/record.ts internedUtf8Of):
 * whatever the bytes, the lengths and the collisions between them, it returns what decoding the
 * bytes gives (invalid UTF-8 replaced), and the same string object for the same bytes on a hit.
 */
import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { internedUtf8Of } from "../../../src/probes/record.ts";

describe("internedUtf8Of", () => {
  test("5,000 distinct byte strings (0-70 bytes, ASCII, UTF-8, invalid) looked up in a shuffled order: always their text", () => {
    let seed = 12345;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const buf = new Uint8Array(1 << 20);
    const view = new DataView(buf.buffer);
    const at: [number, number][] = [];
    let pos = 0;
    for (let k = 0; k < 5000; k++) {
      const n = next() % 71;
      const kind = next() % 3;
      for (let i = 0; i < n; i++) buf[pos + i] = kind === 0 ? 0x20 + (next() % 95) : kind === 1 ? [0x61, 0xc3, 0xa9, 0x2f][next() % 4]! : next() & 0xff;
      // Strings that share their first, middle and last words: only the other bytes differ.
      if (k % 7 === 0 && k > 0 && n === at[k - 1]![1] && n > 12) {
        buf.copyWithin(pos, at[k - 1]![0], at[k - 1]![0] + n);
        buf[pos + 5] = (buf[pos + 5]! + 1) & 0xff;
      }
      at.push([pos, n]);
      pos += n;
    }
    for (let round = 0; round < 3; round++) {
      for (let j = 0; j < at.length; j++) {
        const [o, n] = at[(j * 7919 + round * 31) % at.length]!;
        expect(internedUtf8Of(buf, view, o, n)).toBe(Buffer.from(buf.buffer, o, n).toString("utf8"));
      }
    }
  });

  test("256 strings that differ only in their last byte (some share a slot): each lookup gives its own text", () => {
    const buf = new Uint8Array(256 * 13);
    const view = new DataView(buf.buffer);
    const prefix = new TextEncoder().encode("/items/abcde");
    for (let k = 0; k < 256; k++) {
      buf.set(prefix, k * 13);
      buf[k * 13 + 12] = k;
    }
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < 256; k++) {
        const j = (k * 97 + round) % 256;
        expect(internedUtf8Of(buf, view, j * 13, 13)).toBe(Buffer.from(buf.buffer, j * 13, 13).toString("utf8"));
      }
    }
  });

  test("a hit gives the same string object; a view at an offset inside a larger buffer reads the right bytes", () => {
    const backing = new Uint8Array(64);
    const bytes = backing.subarray(8);
    const view = new DataView(backing.buffer, 8);
    bytes.set(new TextEncoder().encode("127.0.0.1:54321"), 3);
    const a = internedUtf8Of(bytes, view, 3, 15);
    expect(a).toBe("127.0.0.1:54321");
    expect(internedUtf8Of(bytes, view, 3, 15)).toBe(a);
    bytes[3 + 14] = 0x32; // "127.0.0.1:54322"
    expect(internedUtf8Of(bytes, view, 3, 15)).toBe("127.0.0.1:54322");
  });
});
