/**
 * @module merge/ids — trace and span ids as numbers, for `beetrace merge` (≥ 500k spans/s).
 *
 * A record's ids are read as little-endian 32-bit words straight from its bytes (no hex string
 * per record), and looked up in an open-addressing hash table over those words (no object or
 * string per id). IdTable maps an id to a dense index (0, 1, … in insertion order); IdMap adds a
 * value id per key (the new trace id of a moved trace, the new parent of a joined server span)
 * and can patch it into a record in place.
 */

/** The little-endian 32-bit word at b[at, at + 4) (as a signed int: only compared and hashed). */
export function wordAt(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
}

/** Writes `w` as a little-endian 32-bit word at b[at, at + 4). */
export function putWord(b: Uint8Array, at: number, w: number): void {
  b[at] = w & 0xff;
  b[at + 1] = (w >>> 8) & 0xff;
  b[at + 2] = (w >>> 16) & 0xff;
  b[at + 3] = w >>> 24;
}

/** Lowercase hex digit → value (ids are lowercase hex, as hexOf and Buffer#toString write them). */
const HEX_VALUE = new Int8Array(128).fill(0);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i;

/** Hex → bytes (an odd last digit is dropped; other characters read as 0). */
export function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = (HEX_VALUE[hex.charCodeAt(2 * i) & 0x7f]! << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1) & 0x7f]!;
  return out;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The hex of `words` little-endian 32-bit words (the id's bytes in order). */
export function wordsHex(w: ArrayLike<number>, from: number, words: number): string {
  let s = "";
  for (let k = 0; k < words; k++) {
    const x = w[from + k]!;
    s += HEX[x & 0xff]! + HEX[(x >>> 8) & 0xff]! + HEX[(x >>> 16) & 0xff]! + HEX[x >>> 24]!;
  }
  return s;
}

/**
 * Ids of 8 or 16 bytes → dense indices, by open addressing (linear probing, load ≤ 1/2). Each
 * slot holds the index and the id's words side by side, so a lookup touches one place in memory
 * (tables of a million ids do not fit in the caches).
 */
export class IdTable {
  /** 32-bit words per id (2 or 4) */
  readonly words: number;
  /** The ids by index, `words` words each */
  keys: Int32Array;
  /** Slots of words + 1 entries: index + 1 (0: empty), then the id's words */
  #slots: Int32Array;
  #mask: number;
  /**
   * With `filter`: a bit per hash, 16 bits per slot pair (about 6 % false positives when full),
   * small enough to stay in the caches: a lookup of an absent id mostly ends there, without
   * touching the slots.
   */
  #filter: Int32Array | undefined;
  #filterShift = 32;
  size = 0;

  constructor(
    readonly idBytes: 8 | 16,
    expected = 16,
    filter = false,
  ) {
    this.words = idBytes >> 2;
    let cap = 16;
    while (cap < 2 * expected) cap *= 2;
    this.#slots = new Int32Array(cap * (this.words + 1));
    this.#mask = cap - 1;
    this.keys = new Int32Array((cap >> 1) * this.words);
    if (filter) this.#newFilter(cap);
  }

  #newFilter(cap: number): void {
    // 8 bits per slot: 2^(log2(cap) + 3) bits.
    const bits = Math.log2(cap) + 3;
    this.#filter = new Int32Array(Math.max(1, (1 << bits) >>> 5));
    this.#filterShift = 32 - bits;
  }

  /** The filter's bit of hash h (other bits of it than the slot's). */
  #bit(h: number): number {
    return Math.imul(h, 0x9e3779b1) >>> this.#filterShift;
  }

  /** A 32-bit mix of the words (ids need not be random: tests and benches count up); c, d are 0 for 8-byte ids. */
  static hash(a: number, b: number, c: number, d: number): number {
    let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h ^ b, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h ^ c, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h ^ d, 0x85ebca6b);
    // murmur3's finaliser (fmix32)
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /**
   * Index of the id (a, b, c, d) (c, d: 0 for 8-byte ids); when absent, -1, or with `add` a new
   * index.
   */
  #lookup(a: number, b: number, c: number, d: number, add: boolean): number {
    const slots = this.#slots;
    const mask = this.#mask;
    const h = IdTable.hash(a, b, c, d);
    const filter = this.#filter;
    if (filter !== undefined) {
      const bit = this.#bit(h);
      if ((filter[bit >>> 5]! & (1 << (bit & 31))) === 0) {
        if (!add) return -1;
        filter[bit >>> 5] = filter[bit >>> 5]! | (1 << (bit & 31));
      }
    }
    let s = h & mask;
    if (this.words === 2) {
      for (;;) {
        const o = s * 3;
        const v = slots[o]!;
        if (v === 0) break;
        if (slots[o + 1] === a && slots[o + 2] === b) return v - 1;
        s = (s + 1) & mask;
      }
    } else {
      for (;;) {
        const o = s * 5;
        const v = slots[o]!;
        if (v === 0) break;
        if (slots[o + 1] === a && slots[o + 2] === b && slots[o + 3] === c && slots[o + 4] === d) return v - 1;
        s = (s + 1) & mask;
      }
    }
    if (!add) return -1;
    const i = this.size++;
    const n = this.words;
    if ((i + 1) * n > this.keys.length) {
      const k = new Int32Array(this.keys.length * 2);
      k.set(this.keys);
      this.keys = k;
    }
    const keys = this.keys;
    const o = s * (n + 1);
    slots[o] = i + 1;
    slots[o + 1] = keys[i * n] = a;
    slots[o + 2] = keys[i * n + 1] = b;
    if (n === 4) {
      slots[o + 3] = keys[i * n + 2] = c;
      slots[o + 4] = keys[i * n + 3] = d;
    }
    if (2 * this.size > mask + 1) this.#grow();
    return i;
  }

  #grow(): void {
    const n = this.words;
    const cap = 2 * (this.#mask + 1);
    const slots = new Int32Array(cap * (n + 1));
    const mask = cap - 1;
    const keys = this.keys;
    if (this.#filter !== undefined) this.#newFilter(cap);
    const filter = this.#filter;
    for (let i = 0; i < this.size; i++) {
      const a = keys[i * n]!;
      const b = keys[i * n + 1]!;
      const c = n === 4 ? keys[i * n + 2]! : 0;
      const d = n === 4 ? keys[i * n + 3]! : 0;
      const h = IdTable.hash(a, b, c, d);
      if (filter !== undefined) {
        const bit = this.#bit(h);
        filter[bit >>> 5] = filter[bit >>> 5]! | (1 << (bit & 31));
      }
      let s = h & mask;
      while (slots[s * (n + 1)] !== 0) s = (s + 1) & mask;
      const o = s * (n + 1);
      slots[o] = i + 1;
      slots[o + 1] = a;
      slots[o + 2] = b;
      if (n === 4) {
        slots[o + 3] = c;
        slots[o + 4] = d;
      }
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** Index of the id at b[at, at + idBytes), added when new. */
  internAt(b: Uint8Array, at: number): number {
    const wide = this.words === 4;
    return this.#lookup(wordAt(b, at), wordAt(b, at + 4), wide ? wordAt(b, at + 8) : 0, wide ? wordAt(b, at + 12) : 0, true);
  }

  /** Index of the id at b[at, at + idBytes), or -1. */
  findAt(b: Uint8Array, at: number): number {
    const wide = this.words === 4;
    return this.#lookup(wordAt(b, at), wordAt(b, at + 4), wide ? wordAt(b, at + 8) : 0, wide ? wordAt(b, at + 12) : 0, false);
  }

  /** Index of the id given as words (w[from..]), added when new. */
  internWords(w: ArrayLike<number>, from: number): number {
    const wide = this.words === 4;
    return this.#lookup(w[from]!, w[from + 1]!, wide ? w[from + 2]! : 0, wide ? w[from + 3]! : 0, true);
  }

  /** Index of the id (a, b, c, d) (c, d: 0 for 8-byte ids), added when new. */
  intern(a: number, b: number, c: number, d: number): number {
    return this.#lookup(a, b, c, d, true);
  }

  internHex(hex: string): number {
    return this.internAt(fixedBytes(hex, this.idBytes), 0);
  }

  findHex(hex: string): number {
    if (hex.length !== 2 * this.idBytes) return -1;
    return this.findAt(hexBytes(hex), 0);
  }

  /** The id of index i as bytes. */
  bytes(i: number): Uint8Array {
    const out = new Uint8Array(this.idBytes);
    for (let k = 0; k < this.words; k++) putWord(out, 4 * k, this.keys[i * this.words + k]!);
    return out;
  }
}

/** The id's bytes, zero-padded or cut to `n` (ids from hex that is not `2n` digits long). */
function fixedBytes(hex: string, n: number): Uint8Array {
  const b = hexBytes(hex);
  if (b.length === n) return b;
  const out = new Uint8Array(n);
  out.set(b.subarray(0, n));
  return out;
}

/**
 * Id → id (same or other width), looked up straight from a record's bytes. Setting a key again
 * replaces its value.
 */
export class IdMap {
  readonly #keys: IdTable;
  #values: Int32Array;
  readonly #vw: number;

  constructor(
    readonly idBytes: 8 | 16,
    readonly valueBytes: 8 | 16 = idBytes,
    expected = 16,
  ) {
    // Filtered: most records a merge looks up are not in the map.
    this.#keys = new IdTable(idBytes, expected, true);
    this.#vw = valueBytes >> 2;
    this.#values = new Int32Array(Math.max(16, expected) * this.#vw);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Sets the key at kb[ka..] to the value given as words (vw[vfrom..]). */
  setWords(kb: Uint8Array, ka: number, vw: ArrayLike<number>, vfrom: number): void {
    this.#put(this.#keys.internAt(kb, ka), vw, vfrom);
  }

  /** Sets the key given as words to the value given as words. */
  setWordsWords(kw: ArrayLike<number>, kfrom: number, vw: ArrayLike<number>, vfrom: number): void {
    this.#put(this.#keys.internWords(kw, kfrom), vw, vfrom);
  }

  #put(i: number, vw: ArrayLike<number>, vfrom: number): void {
    const n = this.#vw;
    if ((i + 1) * n > this.#values.length) {
      const v = new Int32Array(Math.max(this.#values.length * 2, (i + 1) * n));
      v.set(this.#values);
      this.#values = v;
    }
    for (let k = 0; k < n; k++) this.#values[i * n + k] = vw[vfrom + k]!;
  }

  set(idHex: string, to: Uint8Array): void {
    const k = fixedBytes(idHex, this.idBytes);
    const v = new Int32Array(this.#vw);
    const vb = new Uint8Array(this.valueBytes);
    vb.set(to.subarray(0, this.valueBytes));
    for (let j = 0; j < this.#vw; j++) v[j] = wordAt(vb, 4 * j);
    this.setWords(k, 0, v, 0);
  }

  /** Index of the key at b[at, at + idBytes), or -1. */
  indexAt(b: Uint8Array, at: number): number {
    return this.#keys.findAt(b, at);
  }

  /** Writes the value of index i into b[at, at + valueBytes). */
  writeValue(i: number, b: Uint8Array, at: number): void {
    const n = this.#vw;
    for (let k = 0; k < n; k++) putWord(b, at + 4 * k, this.#values[i * n + k]!);
  }

  /** The value for the id at b[at, at + idBytes). */
  getAt(b: Uint8Array, at: number): Uint8Array | undefined {
    const i = this.indexAt(b, at);
    if (i < 0) return undefined;
    const out = new Uint8Array(this.valueBytes);
    this.writeValue(i, out, 0);
    return out;
  }

  get(idHex: string): Uint8Array | undefined {
    if (idHex.length !== 2 * this.idBytes) return undefined;
    return this.getAt(hexBytes(idHex), 0);
  }

  has(idHex: string): boolean {
    return this.get(idHex) !== undefined;
  }
}
