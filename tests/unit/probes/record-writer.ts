/**
 * @module tests/unit/probes/record-writer — writes span records (bpf/shared/span.h) the way the
 * BPF side does, through a RecordLayout: the generated one (recordLayoutOf, from the object's
 * BTF) or a test's own (an older file's layout). No offsets are written by hand here, so a
 * change to a record struct changes these bytes with it. Shared by the probe unit tests and
 * the pipeline benchmark (bench/records.ts).
 */
import type { RecordLayout } from "../../../src/probes/record.ts";

const utf8 = new TextEncoder();

/** What goes into one record. Every name is a field or string of the layout. */
export interface RecordInput {
  /** Integer fields by name (header and probe): type, flags, start_ns, status, ... `size` and
   * the `<string>_len` fields are filled in from the strings unless given here. */
  fields?: Record<string, number | bigint>;
  /** Byte-array fields as lowercase hex: trace_id, span_id, parent_span_id. */
  hex?: Record<string, string>;
  /** Strings by name (missing = empty), packed in the layout's order. */
  strings?: Record<string, string>;
}

export class RecordWriter {
  constructor(readonly layout: RecordLayout) {}

  #field(name: string): readonly [number, number] {
    const f = this.layout.fields[name];
    if (f === undefined) throw new Error(`${this.layout.struct} has no field ${name}`);
    return f;
  }

  #encoded(input: RecordInput): Uint8Array[] {
    for (const name of Object.keys(input.strings ?? {})) {
      if (!this.layout.strings.includes(name)) throw new Error(`${this.layout.struct} has no string ${name}`);
    }
    return this.layout.strings.map((s) => utf8.encode(input.strings?.[s] ?? ""));
  }

  /** Bytes the record takes (fixed part + its strings). */
  size(input: RecordInput): number {
    return this.#encoded(input).reduce((n, s) => n + s.length, this.layout.fixed);
  }

  /** Writes the record at out[at...]; returns its size. Bytes of `out` it does not cover are left as they are. */
  write(input: RecordInput, out: Uint8Array, at = 0): number {
    const strs = this.#encoded(input);
    const size = strs.reduce((n, s) => n + s.length, this.layout.fixed);
    if (at + size > out.length) throw new Error(`${this.layout.struct}: ${size} bytes do not fit at ${at} in ${out.length}`);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    out.fill(0, at, at + this.layout.fixed);
    const ints: Record<string, number | bigint> = { size };
    this.layout.strings.forEach((s, i) => (ints[`${s}_len`] = strs[i]!.length));
    Object.assign(ints, input.fields);
    for (const [name, v] of Object.entries(ints)) {
      // A layout listing a string without its `_len` field (a test's odd layout) gets no length
      // written; names the caller gave must exist.
      if (this.layout.fields[name] === undefined && !(input.fields && name in input.fields)) continue;
      const [off, width] = this.#field(name);
      const o = at + off;
      if (width === 1) view.setUint8(o, Number(v));
      else if (width === 2) view.setUint16(o, Number(v), true);
      else if (width === 4) view.setUint32(o, Number(v), true);
      else if (width === 8) view.setBigUint64(o, BigInt(v), true);
      else throw new Error(`${this.layout.struct}.${name}: ${width}-byte field is not an integer`);
    }
    for (const [name, h] of Object.entries(input.hex ?? {})) {
      const [off, width] = this.#field(name);
      if (h.length !== 2 * width) throw new Error(`${this.layout.struct}.${name}: ${h.length / 2} bytes of hex for a ${width}-byte field`);
      for (let i = 0; i < width; i++) out[at + off + i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
    }
    let pos = at + this.layout.fixed;
    for (const s of strs) {
      out.set(s, pos);
      pos += s.length;
    }
    return size;
  }

  /** The record alone, in a buffer of its own size. */
  bytes(input: RecordInput): Uint8Array {
    const out = new Uint8Array(this.size(input));
    this.write(input, out, 0);
    return out;
  }

  /** Byte offset of a field inside the record (for writers that patch ids and times in place). */
  offsetOf(name: string): number {
    return this.#field(name)[0];
  }
}
