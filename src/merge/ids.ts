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

/** Ids of 8 or 16 bytes → dense indices, by open addressing (linear probing, load ≤ 1/2). */
export class IdTable {
  /** 32-bit words per id (2 or 4) */
  readonly words: number;
  /** The ids by index, `words` words each */
  keys: Int32Array;
  /** Hash slots: index + 1, 0 when empty */
  #slots: Int32Array;
  #mask: number;
  size = 0;
  /** Scratch words of the id being looked up */
  readonly #w = new Int32Array(4);

  constructor(
    readonly idBytes: 8 | 16,
    expected = 16,
  ) {
    this.words = idBytes >> 2;
    let cap = 16;
    while (cap < 2 * expected) cap *= 2;
    this.#slots = new Int32Array(cap);
    this.#mask = cap - 1;
    this.keys = new Int32Array((cap >> 1) * this.words);
  }

  /** A 32-bit mix of the words (ids need not be random: tests and benches count up). */
  static hash(w: Int32Array, words: number): number {
    let h = 0x9e3779b9;
    for (let k = 0; k < words; k++) {
      h = Math.imul(h ^ w[k]!, 0x85ebca6b);
      h ^= h >>> 15;
    }
    // murmur3's finaliser (fmix32)
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  #load(b: Uint8Array, at: number): void {
    const w = this.#w;
    for (let k = 0; k < this.words; k++) w[k] = wordAt(b, at + 4 * k);
  }

  /** Slot of the id in #w: its index + 1 there, or the empty slot where it would go (negative: -(slot + 1)). */
  #probe(): number {
    const w = this.#w;
    const n = this.words;
    const keys = this.keys;
    const slots = this.#slots;
    let s = IdTable.hash(w, n) & this.#mask;
    for (;;) {
      const v = slots[s]!;
      if (v === 0) return -(s + 1);
      const base = (v - 1) * n;
      let k = 0;
      while (k < n && keys[base + k] === w[k]) k++;
      if (k === n) return s;
      s = (s + 1) & this.#mask;
    }
  }

  /** Index of the id in #w, added when new. */
  #intern(): number {
    const s = this.#probe();
    if (s >= 0) return this.#slots[s]! - 1;
    const i = this.size++;
    const n = this.words;
    if ((i + 1) * n > this.keys.length) {
      const k = new Int32Array(this.keys.length * 2);
      k.set(this.keys);
      this.keys = k;
    }
    for (let k = 0; k < n; k++) this.keys[i * n + k] = this.#w[k]!;
    this.#slots[-s - 1] = i + 1;
    if (2 * this.size > this.#slots.length) this.#grow();
    return i;
  }

  #grow(): void {
    const slots = new Int32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    const n = this.words;
    const w = this.#w;
    for (let i = 0; i < this.size; i++) {
      for (let k = 0; k < n; k++) w[k] = this.keys[i * n + k]!;
      let s = IdTable.hash(w, n) & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = i + 1;
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** Index of the id at b[at, at + idBytes), added when new. */
  internAt(b: Uint8Array, at: number): number {
    this.#load(b, at);
    return this.#intern();
  }

  /** Index of the id at b[at, at + idBytes), or -1. */
  findAt(b: Uint8Array, at: number): number {
    this.#load(b, at);
    const s = this.#probe();
    return s >= 0 ? this.#slots[s]! - 1 : -1;
  }

  /** Index of the id given as words (w[from..]), added when new. */
  internWords(w: ArrayLike<number>, from: number): number {
    for (let k = 0; k < this.words; k++) this.#w[k] = w[from + k]!;
    return this.#intern();
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
  ) {
    this.#keys = new IdTable(idBytes);
    this.#vw = valueBytes >> 2;
    this.#values = new Int32Array(16 * this.#vw);
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
