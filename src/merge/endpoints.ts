/**
 * @module merge/endpoints — the connection endpoint of a span, read straight from its record.
 *
 * `merge` must keep up with ≥ 500k spans/s, and decoding a record into a Span costs 2-3 µs
 * (bench/RESULTS.md), so records are not decoded: the common header (bpf/shared/span.h) gives
 * times and ids, and only the records of the types below are read further, by field name
 * through the file's own layouts (src/probes/record.ts), for the address a join needs:
 *  - a server span's peer: the address:port string the server recorded (`remote`, Go's
 *    Request.RemoteAddr: "10.0.0.2:51234", "[::1]:51234");
 *  - a client span's local end: `local_addr` (local_addr_size bytes, 4 or 16) and `local_port`.
 * Records of other types (and these without an address) join nothing; their ids are still
 * rewritten when their trace moves. Format-1 captures hold decoded spans: their attributes
 * (network.peer.* on server spans, network.local.* on client spans) are used instead.
 */
import type { Span } from "../spans/model.ts";
import { CompiledLayout, RecordReader, type RecordSchema } from "../probes/record.ts";
import { formatIp } from "../probes/grpc/semconv.ts";
import { endpointKey } from "./join.ts";

export type EndpointRole = "client" | "server";

/** Where a record type keeps its endpoint (by C struct name: layouts are per file). */
const BY_STRUCT: Readonly<Record<string, { role: EndpointRole; read: (r: RecordReader) => string | undefined }>> = {
  rec_nethttp_server: { role: "server", read: (r) => hostPortKey(r.str("remote")) },
  rec_nethttp_client: { role: "client", read: localKey },
};

/** The common header's fields (bpf/shared/span.h struct rec_span), as every layout names them. */
export interface HeaderOffsets {
  flags: number;
  start: number;
  end: number;
  traceId: number;
  spanId: number;
  parent: number;
}

const DEFAULT_HEADER: HeaderOffsets = { flags: 4, start: 8, end: 16, traceId: 24, spanId: 40, parent: 48 };

export interface TypeInfo {
  header: HeaderOffsets;
  /** how to read the endpoint, for the types that have one */
  endpoint?: { role: EndpointRole; layout: CompiledLayout; read: (r: RecordReader) => string | undefined };
}

/** Per record type of one file (or section): header offsets and endpoint reader. */
export class RecordTypes {
  readonly #types = new Map<number, TypeInfo>();
  constructor(readonly schema: RecordSchema | undefined) {}

  get(type: number): TypeInfo {
    let t = this.#types.get(type);
    if (t !== undefined) return t;
    const layout = this.schema?.types[String(type)];
    const f = layout?.fields ?? {};
    const at = (name: string, size: number, dflt: number): number => {
      const x = f[name];
      return x !== undefined && x[1] === size ? x[0] : dflt;
    };
    const header: HeaderOffsets = {
      flags: at("flags", 2, DEFAULT_HEADER.flags),
      start: at("start_ns", 8, DEFAULT_HEADER.start),
      end: at("end_ns", 8, DEFAULT_HEADER.end),
      traceId: at("trace_id", 16, DEFAULT_HEADER.traceId),
      spanId: at("span_id", 8, DEFAULT_HEADER.spanId),
      parent: at("parent_span_id", 8, DEFAULT_HEADER.parent),
    };
    const ep = layout !== undefined ? BY_STRUCT[layout.struct] : undefined;
    t = { header, ...(ep !== undefined && layout !== undefined ? { endpoint: { role: ep.role, layout: new CompiledLayout(layout), read: ep.read } } : {}) };
    this.#types.set(type, t);
    return t;
  }
}

/** The endpoint key of a record of a type that has one, or undefined (no address, or a bad record). */
export function recordEndpoint(info: TypeInfo, bytes: Uint8Array, view: DataView, base: number, size: number): string | undefined {
  const ep = info.endpoint;
  if (ep === undefined) return undefined;
  const r = new RecordReader(bytes, view, base, size, ep.layout);
  if (r.check() !== undefined) return undefined;
  return ep.read(r);
}

/** A decoded span's endpoint (format-1 captures). */
export function spanEndpoint(span: Span): { role: EndpointRole; key: string } | undefined {
  const a = span.attributes;
  if (span.kind === "server") {
    const host = a["network.peer.address"];
    const port = a["network.peer.port"];
    if (typeof host === "string" && typeof port === "number") return { role: "server", key: endpointKey(host, port) };
  } else if (span.kind === "client") {
    const host = a["network.local.address"];
    const port = a["network.local.port"];
    if (typeof host === "string" && typeof port === "number") return { role: "client", key: endpointKey(host, port) };
  }
  return undefined;
}

/** "10.0.0.2:51234" / "[::1]:51234" → key; undefined when it is not address:port. */
export function hostPortKey(s: string): string | undefined {
  const i = s.lastIndexOf(":");
  if (i <= 0) return undefined;
  const port = s.slice(i + 1);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
  const host = s.slice(0, i);
  // An unbracketed IPv6 address has more colons: "::1:80" is ambiguous, not ours to split.
  if (host.includes(":") && !(host.startsWith("[") && host.endsWith("]"))) return undefined;
  return endpointKey(host, Number(port));
}

function localKey(r: RecordReader): string | undefined {
  const n = r.u8("local_addr_size");
  if (n !== 4 && n !== 16) return undefined;
  const f = r.layout.field("local_addr");
  if (f === undefined || f[1] < n || f[0] + n > r.length) return undefined;
  const ip = formatIp(r.bytes.subarray(r.base + f[0], r.base + f[0] + n));
  return ip === undefined ? undefined : endpointKey(ip, r.u16("local_port"));
}
