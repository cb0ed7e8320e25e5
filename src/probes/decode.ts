/**
 * @module probes/decode — one finished-span record (bpf/shared/span.h) → Span, for every probe.
 *
 * Records start with `u16 type, u16 size` (little-endian; size = the whole record), so a
 * stream of them needs no other framing. The layouts (RecordSchema) are written into capture
 * file headers, and a file is decoded with the layouts it was written with; the live session
 * decodes with this build's. Each probe's `decode` builds the span; this module routes a
 * record to its probe, checks it against its layout and counts what cannot be decoded.
 * (Owned by the probes layer: capture readers and outputs only call SpanDecoder.)
 */
import type { Span } from "../spans/model.ts";
import type { DecodeContext, ProbeManifest } from "./probe.ts";
import type { SpanBuilder } from "./common/span.ts";
import { CompiledLayout, RecordReader, recordSize, recordType, type RecordLayout, type RecordSchema } from "./record.ts";
import { PROBES } from "./registry.ts";
import { recordLayoutOf } from "./layouts.ts";

export { type RecordLayout, type RecordSchema, recordSize } from "./record.ts";

/** The layouts this build's BPF objects write, from their BTF (src/probes/<lib>/<lib>.gen.ts). */
export function builtinRecordSchema(): RecordSchema {
  const types: Record<string, RecordLayout> = {};
  for (const p of PROBES) types[String(p.record.type)] = recordLayoutOf(p.object.name, p.record.struct);
  return { version: 1, types };
}

/** A record type's probe, and the reader (with its layout) its records are read through, one at a time. */
interface Compiled {
  probe: ProbeManifest;
  reader: RecordReader;
}

const PROBE_BY_TYPE: ReadonlyMap<number, ProbeManifest> = new Map(PROBES.map((p) => [p.record.type, p]));

/** Decodes records with a file's layouts (default: this build's); counts what it cannot decode. */
export class SpanDecoder {
  readonly schema: RecordSchema;
  /** Records that could not be decoded (unknown type, bad size, bad contents) */
  invalid = 0;
  /** Why the first undecodable record was refused (for a message) */
  firstInvalid: string | undefined;
  readonly #compiled = new Map<number, Compiled | null>();
  readonly #guessed: ReadonlyMap<string, string>;

  constructor(fileSchema?: RecordSchema) {
    this.schema = fileSchema ?? builtinRecordSchema();
    const g = this.schema.guessedOffsets ?? {};
    this.#guessed = new Map(Object.entries(g).filter(([, fields]) => Array.isArray(fields) && fields.length > 0).map(([id, fields]) => [id, fields.join(",")]));
  }

  #forType(type: number): Compiled | null {
    let c = this.#compiled.get(type);
    if (c === undefined) {
      const probe = PROBE_BY_TYPE.get(type);
      const layout = this.schema.types[String(type)];
      if (probe !== undefined && layout !== undefined) {
        const empty = new Uint8Array(0);
        c = { probe, reader: new RecordReader(empty, new DataView(empty.buffer), 0, 0, new CompiledLayout(layout)) };
      } else c = null;
      this.#compiled.set(type, c);
    }
    return c;
  }

  /** The span of the record at bytes[offset, offset + length), or undefined (counted). */
  decodeAt(bytes: Uint8Array, view: DataView, offset: number, length: number, ctx: DecodeContext): Span | undefined {
    const at = this.#reader(bytes, view, offset, length);
    if (at === undefined) return undefined;
    try {
      const span = at.probe.decode(at.reader, ctx);
      const guessed = this.#guessed.get(at.probe.id);
      if (guessed !== undefined) span.attributes["beetrace.guessed_offsets"] = guessed;
      return span;
    } catch (e) {
      // A decoder bug must not stop a reader: the record counts as invalid.
      return this.#invalid(`${at.probe.id}: ${String(e)}`);
    }
  }

  /**
   * The record's span written through `out`, for probes that have a builder (ProbeManifest.build):
   * true when built, false when the record cannot be decoded (counted; `out` may hold a partial
   * span), undefined when its probe has no builder (nothing counted: decode it instead, which
   * checks it again).
   */
  buildAt(bytes: Uint8Array, view: DataView, offset: number, length: number, ctx: DecodeContext, out: SpanBuilder): boolean | undefined {
    const at = this.#reader(bytes, view, offset, length);
    if (at === undefined) return false;
    if (at.probe.build === undefined) return undefined;
    try {
      at.probe.build!(at.reader, ctx, out);
      const guessed = this.#guessed.get(at.probe.id);
      if (guessed !== undefined) out.attr("beetrace.guessed_offsets", guessed);
      return true;
    } catch (e) {
      this.#invalid(`${at.probe.id}: ${String(e)}`);
      return false;
    }
  }

  /** The record's probe, with its layout's reader pointed at the record and checked; undefined (counted) when it cannot be decoded. */
  #reader(bytes: Uint8Array, view: DataView, offset: number, length: number): Compiled | undefined {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || offset + Math.max(0, length) > bytes.length) {
      return this.#invalid(`record [${offset}, +${length}) lies outside its ${bytes.length}-byte buffer`);
    }
    const size = recordSize(bytes, offset);
    if (size === 0 || size > length) return this.#invalid(`record of ${length} bytes declares size ${size}`);
    const type = recordType(bytes, offset);
    const c = this.#forType(type);
    if (c === null) return this.#invalid(`unknown record type 0x${type.toString(16)}`);
    c.reader.reset(bytes, view, offset, size);
    const bad = c.reader.check();
    if (bad !== undefined) return this.#invalid(bad);
    return c;
  }

  /** The span of one record (`raw` holds exactly one, or starts with one). */
  decode(raw: Uint8Array, toEpoch: (bootNs: bigint) => bigint): Span | undefined {
    return this.decodeAt(raw, new DataView(raw.buffer, raw.byteOffset, raw.byteLength), 0, raw.byteLength, { toEpoch });
  }

  #invalid(why: string): undefined {
    this.invalid++;
    this.firstInvalid ??= why;
    return undefined;
  }
}

/** The clock a live session's times go through (spans/clock.ts BootClock). */
export interface EpochClock {
  toEpochNs(bootNs: bigint): bigint;
  toEpochWords(lo: number, hi: number, out: Uint32Array, at: number): void;
}

/**
 * Decoding records later, from copies (trace/output.ts SpanSink.decodeRecordsWith, export/exporter.ts
 * RecordDecoding): `decode` makes a Span (`idsAsBytes` as in probes/probe.ts DecodeContext), `build`
 * writes it through a SpanBuilder. laterDecoders below makes them.
 */
export interface LaterDecoders {
  decode(bytes: Uint8Array, offset: number, length: number, idsAsBytes: boolean): Span | undefined;
  build(bytes: Uint8Array, offset: number, length: number, out: SpanBuilder): boolean | undefined;
}

/**
 * `decoder` over any byte array holding records (the OTLP exporter's working copies), with times
 * through `clock`: what a live session hands its sinks, and what the benches measure. One
 * DataView per byte array, made when the array changes.
 */
export function laterDecoders(decoder: SpanDecoder, clock: EpochClock): LaterDecoders {
  const decodeCtx: DecodeContext = { toEpoch: (ns) => clock.toEpochNs(ns) };
  const bytesCtx: DecodeContext = { ...decodeCtx, idsAsBytes: true };
  const buildCtx: DecodeContext = { ...decodeCtx, toEpochWords: (lo, hi, out, at) => clock.toEpochWords(lo, hi, out, at) };
  let viewed: Uint8Array | undefined;
  let view: DataView | undefined;
  const viewOf = (bytes: Uint8Array): DataView => {
    if (bytes !== viewed) {
      viewed = bytes;
      view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    return view!;
  };
  return {
    decode: (bytes, offset, length, idsAsBytes) => decoder.decodeAt(bytes, viewOf(bytes), offset, length, idsAsBytes ? bytesCtx : decodeCtx),
    build: (bytes, offset, length, out) => decoder.buildAt(bytes, viewOf(bytes), offset, length, buildCtx, out),
  };
}
