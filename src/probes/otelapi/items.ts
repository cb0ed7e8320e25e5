/**
 * @module probes/otelapi/items — the packed attributes, events and links of an OTel API span
 * record (the `items` string of rec_otelapi_span; format in bpf/shared/otelapi.h).
 *
 * Pure and defensive: the bytes come from the ring buffer or a capture file, so a malformed
 * item stops the walk (counted in `damaged`), never throws and never reads outside `bytes`.
 */
import type { AttrValue, SpanAttributes } from "../../spans/model.ts";
import { ENUMERATORS as E } from "./otelapi.gen.ts";

export interface ItemEvent {
  name: string;
  /** CLOCK_BOOTTIME ns (the decoder converts) */
  bootNs: bigint;
  /** RecordError's exception event */
  exception: boolean;
  attributes: SpanAttributes;
}

export interface ItemLink {
  traceId: string;
  spanId: string;
  attributes: SpanAttributes;
}

export interface Items {
  attributes: SpanAttributes;
  events: ItemEvent[];
  links: ItemLink[];
  /** keys whose key or value BPF cut at its cap (OTELAPI_VT_TRUNCATED) */
  truncatedKeys: string[];
  /** attributes of a type BPF stores without a value (BYTESLICE, SLICE, MAP of newer releases) */
  unsupportedKeys: string[];
  /** true when the items ended in the middle of an item */
  damaged: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

class Cursor {
  pos = 0;
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  has(n: number): boolean {
    return this.pos + n <= this.bytes.length;
  }
  u8(): number {
    if (!this.has(1)) throw RangeError("items: past the end");
    return this.bytes[this.pos++]!;
  }
  u64(): bigint {
    if (!this.has(8)) throw RangeError("items: past the end");
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  f64(): number {
    if (!this.has(8)) throw RangeError("items: past the end");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** u8 length, then that many bytes as UTF-8 */
  str(): string {
    const n = this.u8();
    if (!this.has(n)) throw RangeError("items: past the end");
    const s = utf8.decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  hex(n: number): string {
    if (!this.has(n)) throw RangeError("items: past the end");
    let s = "";
    for (let i = 0; i < n; i++) s += HEX[this.bytes[this.pos + i]!];
    this.pos += n;
    return s;
  }
}

/** attribute.Value.numeric as an int64 (a Number: beyond ±2^53 it is rounded, as JSON would). */
function int64Of(raw: bigint): number {
  return Number(BigInt.asIntN(64, raw));
}

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);
/** attribute.Value.numeric holds a float64's bits (math.Float64bits, attribute/value.go). */
function float64Of(raw: bigint): number {
  U64[0] = raw;
  return F64[0]!;
}

/** One attribute's value by its vtype (without marks); undefined = stored without a value. */
function value(c: Cursor, vt: number): AttrValue | AttrValue[] | undefined {
  switch (vt) {
    case E.OTELAPI_VT_BOOL:
      return c.u64() !== 0n;
    case E.OTELAPI_VT_INT64:
      return int64Of(c.u64());
    case E.OTELAPI_VT_FLOAT64:
      return float64Of(c.u64());
    case E.OTELAPI_VT_STRING:
      return c.str();
    case E.OTELAPI_VT_BOOLSLICE: {
      const n = c.u8();
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push(c.u8() !== 0);
      return out;
    }
    case E.OTELAPI_VT_INT64SLICE:
    case E.OTELAPI_VT_FLOAT64SLICE: {
      const n = c.u8();
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(vt === E.OTELAPI_VT_INT64SLICE ? int64Of(c.u64()) : c.f64());
      return out;
    }
    case E.OTELAPI_VT_STRINGSLICE: {
      const n = c.u8();
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(c.str());
      return out;
    }
    default:
      return undefined;
  }
}

/** Walks the packed items. */
export function parseItems(bytes: Uint8Array): Items {
  const out: Items = { attributes: {}, events: [], links: [], truncatedKeys: [], unsupportedKeys: [], damaged: false };
  const c = new Cursor(bytes);
  let event: ItemEvent | undefined;
  let link: ItemLink | undefined;
  try {
    while (c.has(1)) {
      const tag = c.u8();
      if (tag === E.OTELAPI_ITEM_ATTR) {
        const owner = c.u8();
        const vtByte = c.u8();
        const key = c.str();
        const vt = vtByte & E.OTELAPI_VT_MASK;
        const v = value(c, vt);
        if (vtByte & E.OTELAPI_VT_TRUNCATED) out.truncatedKeys.push(key);
        if (v === undefined) {
          out.unsupportedKeys.push(key);
          continue;
        }
        const target = owner === E.OTELAPI_OWNER_EVENT ? event?.attributes : owner === E.OTELAPI_OWNER_LINK ? link?.attributes : out.attributes;
        if (target !== undefined) target[key] = v; // a later value for a key replaces it, as the SDK does
      } else if (tag === E.OTELAPI_ITEM_EVENT || tag === E.OTELAPI_ITEM_EXCEPTION) {
        const bootNs = c.u64();
        const text = c.str();
        const exception = tag === E.OTELAPI_ITEM_EXCEPTION;
        if (exception) {
          // RecordError's event (semconv "exception"), as the SDK writes it (sdk/trace/span.go
          // typeStr): exception.type is reflect's String() of the error's type, or for a named
          // non-pointer type "pkgpath.Name"; either part is absent when BPF could not read it.
          const type = c.str();
          const pkg = c.str();
          const attributes: SpanAttributes = {};
          if (type !== "") attributes["exception.type"] = pkg !== "" ? `${pkg}.${type.slice(type.lastIndexOf(".") + 1)}` : type;
          if (text !== "") attributes["exception.message"] = text;
          event = { name: "exception", bootNs, exception, attributes };
        } else {
          event = { name: text, bootNs, exception, attributes: {} };
        }
        out.events.push(event);
      } else if (tag === E.OTELAPI_ITEM_LINK) {
        link = { traceId: c.hex(16), spanId: c.hex(8), attributes: {} };
        out.links.push(link);
      } else {
        out.damaged = true;
        break;
      }
    }
  } catch {
    out.damaged = true;
  }
  return out;
}
