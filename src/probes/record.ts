/**
 * @module probes/record — reading span records by field name, through a layout.
 *
 * A record is what BPF wrote to the ring buffer (bpf/shared/span.h): `struct rec_span`, the
 * probe's fixed fields, then its strings packed back to back in the order of their `<name>_len`
 * fields. Capture files store the same bytes plus the layouts they were written with (the
 * RecordSchema below), so decoders address fields by name: a newer beetrace reads an older
 * file through the file's own layouts; a field the file's layout lacks reads as 0 / "".
 *
 * The built-in schema comes from the layouts generated from each object's BTF at build time
 * (src/probes/<lib>/<lib>.gen.ts), never from hand-written offsets.
 */
import { Buffer } from "node:buffer";

/** One record type's layout: byte offset and size of each named field, where strings start. */
export interface RecordLayout {
  /** C struct name, e.g. "rec_nethttp_server" */
  struct: string;
  /** Offset of the first string byte (offsetof the flexible `strings` member). */
  fixed: number;
  /** field → [offset, size]; the rec_span header's fields by their own names ("start_ns") */
  fields: Record<string, readonly [number, number]>;
  /** String names in packing order; each has a "<name>_len" field (u8 or u16). */
  strings: string[];
}

/** The layouts of every record type, keyed by tag (decimal string: CBOR/JSON map keys). */
export interface RecordSchema {
  version: 1;
  types: Record<string, RecordLayout>;
  /**
   * Probe id → struct fields whose offsets were guessed (--unknown-versions=nearest) when these
   * records were written: every span of that probe is marked `beetrace.guessed_offsets`, since
   * any of its values may rest on a wrong offset.
   */
  guessedOffsets?: Record<string, string[]>;
}

/** Bytes of the common header every record starts with (struct rec_span). */
export const SPAN_HEADER_SIZE = 56;

/** Size of the record at `offset` (its u16 `size` field), 0 when it cannot be a record. */
export function recordSize(bytes: Uint8Array, offset: number): number {
  if (offset < 0 || offset + 4 > bytes.length) return 0;
  const size = bytes[offset + 2]! | (bytes[offset + 3]! << 8);
  return size < SPAN_HEADER_SIZE ? 0 : size;
}

/** Tag (first u16) of the record at `offset`. */
export function recordType(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8);
}

/** A Buffer over the last byte array read (the records of one ring or file share one). */
let viewedBytes: Uint8Array | undefined;
let viewedBuffer: Buffer | undefined;

/** A Buffer over the same memory as `bytes` (no copy; cached for the common case of one source). */
function bufferOver(bytes: Uint8Array): Buffer {
  // A typed array's buffer never changes (no resizable buffers here), so identity suffices.
  if (bytes !== viewedBytes) {
    viewedBytes = bytes;
    viewedBuffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return viewedBuffer!;
}

/**
 * Lowercase hex of bytes[offset, offset + n) (ids straight from a record, e.g. for sampling).
 * Buffer's conversions build one flat string natively. Strings built by appending per byte are
 * ropes of n pieces (n heap cells of garbage each, flattened again by every reader): with ids
 * and the packed strings of every record that was most of the OTLP path's garbage.
 */
export function hexOf(bytes: Uint8Array, offset: number, n: number): string {
  return bufferOver(bytes).toString("hex", offset, offset + n);
}

/** bytes[offset, offset + n) as UTF-8, invalid sequences replaced by U+FFFD (as a non-fatal TextDecoder). */
export function utf8Of(bytes: Uint8Array, offset: number, n: number): string {
  return bufferOver(bytes).toString("utf8", offset, offset + n);
}

/**
 * Recently decoded short strings, by their bytes: a direct-mapped cache of INTERN_SLOTS slots,
 * each holding up to INTERN_MAX bytes in one shared array (no allocation on a miss) and the
 * string made from them. Most record strings repeat from span to span — methods, hosts, routes,
 * a connection's peer address — and a hit (hash + compare) costs a fraction of making the string
 * again, and allocates nothing: less garbage for the collector on the OTLP path.
 */
const INTERN_SLOTS = 1024;
const INTERN_MAX = 64;
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX);
const internLengths = new Int32Array(INTERN_SLOTS).fill(-1);
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill("");

const internView = new DataView(internBytes.buffer);

/**
 * utf8Of through the cache above (strings longer than INTERN_MAX bytes are made each time);
 * `view` covers the same memory as `bytes`. The slot comes from the length and three 32-bit
 * words (first, middle, last), not from every byte, and a hit is checked four bytes at a time:
 * a record's strings were interned at ~65 ns each byte by byte, ~28 ns this way (bench/RESULTS.md).
 */
export function internedUtf8Of(bytes: Uint8Array, view: DataView, offset: number, n: number): string {
  if (n > INTERN_MAX) return utf8Of(bytes, offset, n);
  let h = Math.imul(0x9e3779b1, n + 1);
  if (n >= 4) {
    h = Math.imul(h ^ view.getUint32(offset, true), 0x85ebca6b);
    h = Math.imul(h ^ view.getUint32(offset + n - 4, true), 0xc2b2ae35);
    h = Math.imul(h ^ view.getUint32(offset + ((n - 4) >>> 1), true), 0x27d4eb2f);
  } else {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ bytes[offset + i]!, 0x01000193);
  }
  h ^= h >>> 15;
  const slot = h & (INTERN_SLOTS - 1);
  const base = slot * INTERN_MAX;
  if (internLengths[slot] === n) {
    let i = 0;
    while (i + 4 <= n && internView.getUint32(base + i, true) === view.getUint32(offset + i, true)) i += 4;
    if (i + 4 > n) {
      while (i < n && internBytes[base + i] === bytes[offset + i]) i++;
      if (i === n) return internStrings[slot]!;
    }
  }
  const s = utf8Of(bytes, offset, n);
  for (let i = 0; i < n; i++) internBytes[base + i] = bytes[offset + i]!;
  internLengths[slot] = n;
  internStrings[slot] = s;
  return s;
}

/** A layout with its field lookups resolved once. */
export class CompiledLayout {
  /** field → [offset, size], in a prototype-less object: a keyed load is cheaper than Map.get here */
  readonly #fields: Record<string, readonly [number, number] | undefined>;
  /** Per string: [offset, size] of its length field (u8 or u16), or undefined when absent. */
  readonly lenFields: (readonly [number, number] | undefined)[];
  /** string name → its index in packing order */
  readonly stringIndex: ReadonlyMap<string, number>;
  constructor(readonly layout: RecordLayout) {
    const fields: Record<string, readonly [number, number] | undefined> = Object.create(null);
    for (const [name, at] of Object.entries(layout.fields)) fields[name] = at;
    this.#fields = fields;
    this.lenFields = layout.strings.map((s) => fields[`${s}_len`]);
    this.stringIndex = new Map(layout.strings.map((s, i) => [s, i]));
  }
  field(name: string): readonly [number, number] | undefined {
    return this.#fields[name];
  }
}

/**
 * One record, read through its layout, after the bounds checks (`check`), so accessors never read
 * outside [base, base + length). The decoder keeps one per layout and points it at each record
 * in turn (`reset`): a decoder uses it only while it decodes, and the live path makes no object
 * per record this way.
 */
export class RecordReader {
  /** per string (packing order): offset inside the record, then length */
  readonly #strings: number[] = [];
  #truncatedBits = 0;
  #flags = 0;

  constructor(
    public bytes: Uint8Array,
    public view: DataView,
    public base: number,
    public length: number,
    readonly layout: CompiledLayout,
  ) {}

  /** The record at bytes[base, base + length) instead (check() it before reading). */
  reset(bytes: Uint8Array, view: DataView, base: number, length: number): void {
    this.bytes = bytes;
    this.view = view;
    this.base = base;
    this.length = length;
  }

  /** Checks the string lengths against the record size; returns why it is damaged, or undefined. */
  check(): string | undefined {
    this.#strings.length = 0;
    this.#truncatedBits = 0;
    this.#flags = 0;
    const l = this.layout.layout;
    if (this.length < l.fixed) return `${l.struct}: ${this.length} bytes, its fixed part needs ${l.fixed}`;
    let pos = l.fixed;
    const lens = this.layout.lenFields;
    for (let i = 0; i < lens.length; i++) {
      // A file's layout is untrusted input: a length field outside the record reads as 0.
      const lf = lens[i];
      const inside = lf !== undefined && lf[0] + lf[1] <= this.length;
      const n = !inside ? 0 : lf[1] === 1 ? this.bytes[this.base + lf[0]]! : lf[1] === 2 ? this.view.getUint16(this.base + lf[0], true) : 0;
      this.#strings.push(pos, n);
      pos += n;
    }
    if (pos > this.length) return `${l.struct}: strings need ${pos} bytes, the record has ${this.length}`;
    this.#truncatedBits = this.u16("truncated");
    this.#flags = this.u16("flags");
    return undefined;
  }

  /** Where field `name` of exactly `size` bytes is in `bytes`, or -1 (absent, other size, or outside the record). */
  offsetOf(name: string, size: number): number {
    const f = this.layout.field(name);
    return f !== undefined && f[1] === size && f[0] + size <= this.length ? this.base + f[0] : -1;
  }
  /** Whether field `name` (of `size` bytes, a multiple of 4) is absent or all zero, with no BigInt made. */
  isZero(name: string, size: number): boolean {
    const at = this.offsetOf(name, size);
    if (at < 0) return true;
    for (let i = 0; i < size; i += 4) if (this.view.getUint32(at + i, true) !== 0) return false;
    return true;
  }
  u8(name: string): number {
    const at = this.offsetOf(name, 1);
    return at < 0 ? 0 : this.view.getUint8(at);
  }
  u16(name: string): number {
    const at = this.offsetOf(name, 2);
    return at < 0 ? 0 : this.view.getUint16(at, true);
  }
  u32(name: string): number {
    const at = this.offsetOf(name, 4);
    return at < 0 ? 0 : this.view.getUint32(at, true);
  }
  u64(name: string): bigint {
    const at = this.offsetOf(name, 8);
    return at < 0 ? 0n : this.view.getBigUint64(at, true);
  }
  /** Lowercase hex of a byte-array field ("" when the layout lacks it). */
  hex(name: string): string {
    const f = this.layout.field(name);
    if (f === undefined || f[0] + f[1] > this.length) return "";
    return hexOf(this.bytes, this.base + f[0], f[1]);
  }
  /** The packed string `name` (UTF-8, invalid bytes replaced). */
  str(name: string): string {
    const i = this.layout.stringIndex.get(name);
    if (i === undefined) return "";
    const n = this.#strings[2 * i + 1] ?? 0;
    if (n === 0) return "";
    const start = this.base + this.#strings[2 * i]!;
    return internedUtf8Of(this.bytes, this.view, start, n);
  }
  /** Whether string `name` was longer than its cap (bit i of h.truncated, i = packing order). */
  truncated(name: string): boolean {
    const i = this.layout.stringIndex.get(name);
    return i !== undefined && (this.#truncatedBits & (1 << i)) !== 0;
  }
  /** Whether any string was longer than its cap. */
  get anyTruncated(): boolean {
    return this.#truncatedBits !== 0;
  }
  /** rec_span.flags (read by check()) */
  get flags(): number {
    return this.#flags;
  }
}
