/**
 * @module merge/endpoints — the connection endpoint of a span, read straight from its record.
 *
 * `merge` must keep up with ≥ 500k spans/s, and decoding a record into a Span costs 2-3 µs
 * (bench/RESULTS.md), so records are not decoded: the common header (bpf/shared/span.h) gives
 * times and ids, and only the records of the types below are read further, by field name
 * through the file's own layouts (src/probes/record.ts), for the address a join needs:
 *  - a server span's peer: the address:port string the server recorded (`remote`, Go's
 *    Request.RemoteAddr: "10.0.0.2:51234", "[::1]:51234");
 *  - a client span's local end: `local_addr` (local_addr_size bytes, 4 or 16) and `local_port`;
 *  - on HTTP/2, both sides' `h2_stream_id` (u32, 0 = HTTP/1 or unknown): many requests share an
 *    HTTP/2 connection at once, and the stream id names the one request (streamKey). Layouts
 *    without the field (captures from before it) read as HTTP/1;
 *  - gRPC (bpf/shared/grpc.h): a server span's peer end is `peer_ip` (peer_ip_size bytes, 4 or
 *    16) and `peer_port`, a client span's local end `local_ip`/`local_ip_size`/`local_port`,
 *    both with the call's HTTP/2 `stream_id`. Each is valid only under its flag
 *    (GRPC_SERVER_F_PEER, GRPC_CLIENT_F_LOCAL, GRPC_*_F_STREAM_ID): a record without the
 *    address joins nothing, one without the stream id keys by its connection alone.
 * Records of other types (and these without an address) join nothing; their ids are still
 * rewritten when their trace moves. Format-1 captures hold decoded spans: their attributes
 * (network.peer.* on server spans, network.local.* on client spans, beetrace.http2.stream_id)
 * are used instead.
 */
import type { Span } from "../spans/model.ts";
import type { RecordSchema } from "../probes/record.ts";
import { formatIp } from "../probes/common/net.ts";
import { endpointKey } from "./join.ts";
import { ENUMERATORS as GRPC } from "../probes/grpc/grpc.gen.ts";

export type EndpointRole = "client" | "server";

/** The decoded spans' stream id attribute (src/probes/nethttp/object.ts H2_STREAM_ID). */
const H2_STREAM_ID = "beetrace.http2.stream_id";

/**
 * The join key of an HTTP/2 request: its connection's key and its stream id ("addr|port#sid").
 * A stream id is used once per connection (RFC 9113 §5.1.1), so client and server spans of one
 * request share the key and nothing else on the connection does; 0 (HTTP/1) keeps the
 * connection's key, whose requests follow each other and are told apart by time.
 */
export function streamKey(key: string, streamId: number): string {
  return streamId === 0 ? key : `${key}#${streamId}`;
}

/**
 * Where a record type keeps its endpoint (by C struct name: layouts are per file), by field name:
 *  - `remote`: the packed string holding "host:port" (net/http's Request.RemoteAddr), or
 *  - `addr`/`size`/`port`: an address of `size` bytes (4 or 16), a u16 port;
 *  - `sid`: the u32 HTTP/2 stream id;
 *  - `need`/`sidNeed`: rec_span.flags bits that must be set for the address / the stream id to
 *    be valid (0: always valid, the address's size or the stream id's 0 says "unknown").
 */
interface EndpointSpec {
  role: EndpointRole;
  remote?: string;
  addr?: readonly [addr: string, size: string, port: string];
  sid: string;
  need: number;
  sidNeed: number;
}
const BY_STRUCT: Readonly<Record<string, EndpointSpec>> = {
  rec_nethttp_server: { role: "server", remote: "remote", sid: "h2_stream_id", need: 0, sidNeed: 0 },
  rec_nethttp_client: { role: "client", addr: ["local_addr", "local_addr_size", "local_port"], sid: "h2_stream_id", need: 0, sidNeed: 0 },
  rec_grpc_server: { role: "server", addr: ["peer_ip", "peer_ip_size", "peer_port"], sid: "stream_id", need: GRPC.GRPC_SERVER_F_PEER, sidNeed: GRPC.GRPC_SERVER_F_STREAM_ID },
  rec_grpc_client: { role: "client", addr: ["local_ip", "local_ip_size", "local_port"], sid: "stream_id", need: GRPC.GRPC_CLIENT_F_LOCAL, sidNeed: GRPC.GRPC_CLIENT_F_STREAM_ID },
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

/**
 * Where one record type keeps its endpoint, resolved once from its layout:
 *  - "peer": a host:port string, the `index`-th packed string (its length fields, in packing order, are `lens`);
 *  - "local": an address of `sizeAt` bytes at `addrAt` (4 or 16) and a u16 port at `portAt`
 *    (a client's local end, or a gRPC server's peer end: the same shape).
 * `sidAt` is the stream id's offset (-1: none); `need`/`sidNeed` the flags bits (EndpointSpec).
 */
export type EndpointReader =
  | { role: EndpointRole; kind: "peer"; fixed: number; lens: (readonly [number, number])[]; index: number; sidAt: number; need: number; sidNeed: number }
  | { role: EndpointRole; kind: "local"; addrAt: number; addrMax: number; sizeAt: number; portAt: number; sidAt: number; need: number; sidNeed: number };

export interface TypeInfo {
  header: HeaderOffsets;
  /** how to read the endpoint, for the types that have one */
  endpoint?: EndpointReader;
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
    t = { header };
    const spec = layout !== undefined ? BY_STRUCT[layout.struct] : undefined;
    if (layout !== undefined && spec !== undefined) {
      const { role, need, sidNeed } = spec;
      // The HTTP/2 stream id (u32; -1: the layout lacks it).
      const sid = f[spec.sid];
      const sidAt = sid !== undefined && sid[1] === 4 ? sid[0] : -1;
      if (spec.remote !== undefined) {
        const index = layout.strings.indexOf(spec.remote);
        const lens = layout.strings.slice(0, index + 1).map((s) => f[`${s}_len`]);
        if (index >= 0 && lens.every((l) => l !== undefined && (l[1] === 1 || l[1] === 2))) {
          t.endpoint = { role, kind: "peer", fixed: layout.fixed, lens: lens as (readonly [number, number])[], index, sidAt, need, sidNeed };
        }
      } else if (spec.addr !== undefined) {
        const addr = f[spec.addr[0]];
        const size = f[spec.addr[1]];
        const port = f[spec.addr[2]];
        if (addr !== undefined && size !== undefined && size[1] === 1 && port !== undefined && port[1] === 2) {
          t.endpoint = { role, kind: "local", addrAt: addr[0], addrMax: addr[1], sizeAt: size[0], portAt: port[0], sidAt, need, sidNeed };
        }
      }
    }
    this.#types.set(type, t);
    return t;
  }
}

/**
 * The endpoint key of the record at bytes[base, base + size), or undefined (no address, or a
 * field outside the record: the file's layouts are untrusted input).
 */
export function recordEndpoint(info: TypeInfo, bytes: Uint8Array, base: number, size: number, keys?: Map<number, string>): string | undefined {
  const ep = info.endpoint;
  if (ep === undefined) return undefined;
  const flags = ep.need | ep.sidNeed ? recordFlags(info, bytes, base, size) : 0;
  if ((flags & ep.need) !== ep.need) return undefined;
  const key = connectionEndpoint(info, bytes, base, size, keys);
  const at = ep.sidAt;
  if (key === undefined || at < 0 || at + 4 > size || (flags & ep.sidNeed) !== ep.sidNeed) return key;
  const p = base + at;
  return streamKey(key, (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16)) + bytes[p + 3]! * 0x1000000);
}

/** rec_span.flags of the record (0 when the field lies outside it). */
function recordFlags(info: TypeInfo, bytes: Uint8Array, base: number, size: number): number {
  const at = info.header.flags;
  return at + 2 > size ? 0 : bytes[base + at]! | (bytes[base + at + 1]! << 8);
}

/** The connection part of recordEndpoint's key ("address|port"). */
function connectionEndpoint(info: TypeInfo, bytes: Uint8Array, base: number, size: number, keys?: Map<number, string>): string | undefined {
  const ep = info.endpoint;
  if (ep === undefined) return undefined;
  if (ep.kind === "local") {
    if (ep.sizeAt + 1 > size || ep.portAt + 2 > size) return undefined;
    const n = bytes[base + ep.sizeAt]!;
    if ((n !== 4 && n !== 16) || n > ep.addrMax || ep.addrAt + n > size) return undefined;
    const a = base + ep.addrAt;
    const port = bytes[base + ep.portAt]! | (bytes[base + ep.portAt + 1]! << 8);
    if (n === 4) {
      if (keys !== undefined) return v4Key(keys, ((bytes[a]! << 24) | (bytes[a + 1]! << 16) | (bytes[a + 2]! << 8) | bytes[a + 3]!) >>> 0, port);
      return `${bytes[a]}.${bytes[a + 1]}.${bytes[a + 2]}.${bytes[a + 3]}|${port}`;
    }
    const ip = formatIp(bytes.subarray(a, a + 16));
    return ip === undefined ? undefined : endpointKey(ip, port);
  }
  let pos = ep.fixed;
  let n = 0;
  for (let i = 0; i <= ep.index; i++) {
    const [off, w] = ep.lens[i]!;
    if (off + w > size) return undefined;
    n = w === 1 ? bytes[base + off]! : bytes[base + off]! | (bytes[base + off + 1]! << 8);
    if (i < ep.index) pos += n;
  }
  if (n === 0 || pos + n > size) return undefined;
  if (keys !== undefined) {
    const k = v4PortKey(keys, bytes, base + pos, n);
    if (k !== undefined) return k;
  }
  return hostPortBytes(bytes, base + pos, n);
}

/**
 * The key of IPv4 address `addr` (a u32, first octet highest) and `port`, one string per
 * endpoint: `keys` (address * 65536 + port → key, exact below 2^53) spares building the same
 * string for every span of a connection, and equal keys are then one string (hashed once).
 */
function v4Key(keys: Map<number, string>, addr: number, port: number): string {
  const id = addr * 65536 + port;
  let k = keys.get(id);
  if (k === undefined) keys.set(id, (k = `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}|${port}`));
  return k;
}

/**
 * v4Key of "a.b.c.d:port" in ASCII bytes when the address is written the way v4Key writes it
 * (decimal octets without leading zeros), so that it is the same key hostPortBytes gives;
 * undefined for anything else.
 */
function v4PortKey(keys: Map<number, string>, b: Uint8Array, at: number, n: number): string | undefined {
  let addr = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = b[at + i]!;
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return undefined; // a leading zero
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return undefined;
    } else if (c === 0x2e && dots < 3 && digits > 0) {
      addr = addr * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c === 0x3a && dots === 3 && digits > 0) break;
    else return undefined;
  }
  if (i >= n) return undefined;
  addr = addr * 256 + part;
  // The port: 1-5 digits up to 65535 (leading zeros allowed, as hostPortBytes reads it).
  const pd = n - i - 1;
  if (pd < 1 || pd > 5) return undefined;
  let port = 0;
  for (let j = i + 1; j < n; j++) {
    const d = b[at + j]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    port = port * 10 + d;
  }
  if (port > 65535) return undefined;
  return v4Key(keys, addr, port);
}

/** hostPortKey over ASCII bytes, without building the whole string first. */
function hostPortBytes(b: Uint8Array, at: number, n: number): string | undefined {
  let colon = -1;
  for (let i = n - 1; i >= 0; i--) {
    if (b[at + i] === 0x3a) {
      colon = i;
      break;
    }
  }
  if (colon <= 0 || colon === n - 1 || n - colon - 1 > 5) return undefined;
  let port = 0;
  for (let i = colon + 1; i < n; i++) {
    const d = b[at + i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    port = port * 10 + d;
  }
  if (port > 65535) return undefined;
  let host = "";
  let plain = true;
  for (let i = 0; i < colon; i++) {
    const c = b[at + i]!;
    // Digits and dots: an IPv4 address, the key as is; anything else goes the slow way.
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2e)) plain = false;
    host += String.fromCharCode(c);
  }
  if (plain) return `${host}|${port}`;
  return hostPortKey(`${host}:${port}`);
}

/** A decoded span's endpoint (format-1 captures). */
export function spanEndpoint(span: Span): { role: EndpointRole; key: string } | undefined {
  const a = span.attributes;
  const s = a[H2_STREAM_ID];
  const sid = typeof s === "number" && Number.isInteger(s) && s > 0 ? s : 0;
  if (span.kind === "server") {
    const host = a["network.peer.address"];
    const port = a["network.peer.port"];
    if (typeof host === "string" && typeof port === "number") return { role: "server", key: streamKey(endpointKey(host, port), sid) };
  } else if (span.kind === "client") {
    const host = a["network.local.address"];
    const port = a["network.local.port"];
    if (typeof host === "string" && typeof port === "number") return { role: "client", key: streamKey(endpointKey(host, port), sid) };
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
