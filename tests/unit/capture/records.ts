/**
 * @module tests/unit/capture/records — raw nethttp server span records built from this build's
 * record layout (the BTF-generated one, builtinRecordSchema: field offsets and length-field sizes
 * by name, so the records follow layout changes of bpf/shared/nethttp.h), and a small test
 * decoder that turns them back into spans, so capture tests do not depend on the probe decoders.
 */
import { SpanDecoder, builtinRecordSchema } from "../../../src/probes/decode.ts";
import type { Span } from "../../../src/spans/model.ts";

/** enum rec_type REC_NETHTTP_SERVER (bpf/shared/span.h) */
export const REC_NETHTTP_SERVER = 0x0111;
/** sizeof(struct rec_span) */
const REC_SPAN = 56;
const LAYOUT = builtinRecordSchema().types[String(REC_NETHTTP_SERVER)]!;
/** offsetof(struct rec_nethttp_server, strings) */
const SERVER_FIXED = LAYOUT.fixed;
const field = (name: string): readonly [number, number] => {
  const f = LAYOUT.fields[name];
  if (f === undefined) throw new Error(`rec_nethttp_server has no field ${name}`);
  return f;
};
/** The values this module sets, by string name; other strings (e.g. panic, tracestate) stay empty. */
const STRING_VALUES: Record<string, (r: ServerRecord) => string> = {
  method: (r) => r.method ?? "",
  path: (r) => r.path ?? "",
  host: (r) => r.host ?? "",
  remote: (r) => r.remote ?? "",
  pattern: (r) => r.pattern ?? "",
};
function setUint(v: DataView, [off, size]: readonly [number, number], value: number): void {
  if (size === 1) v.setUint8(off, value);
  else v.setUint16(off, value, true);
}
function getUint(v: DataView, [off, size]: readonly [number, number]): number {
  return size === 1 ? v.getUint8(off) : v.getUint16(off, true);
}

export interface ServerRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  startNs: bigint;
  endNs: bigint;
  status?: number;
  method?: string;
  path?: string;
  host?: string;
  remote?: string;
  pattern?: string;
}

/** A typical server span: GET /hello on 127.0.0.1:8080 from 127.0.0.1:54321, pattern "/hello". */
export function typicalServer(i: number, startNs = 5_000_000_000n): ServerRecord {
  const hex = (n: number, len: number) => n.toString(16).padStart(len, "0");
  return {
    traceId: "a" + hex(i + 1, 31),
    spanId: "b" + hex(i + 1, 15),
    startNs: startNs + BigInt(i) * 1_000_000n,
    endNs: startNs + BigInt(i) * 1_000_000n + 250_000n,
    status: 200,
    method: "GET",
    path: "/hello",
    host: "127.0.0.1:8080",
    remote: "127.0.0.1:54321",
    pattern: "/hello",
  };
}

/** struct rec_nethttp_server with its packed strings (method, path, host, remote, pattern; others empty). */
export function serverRecord(r: ServerRecord): Uint8Array {
  const te = new TextEncoder();
  const strs = LAYOUT.strings.map((name) => te.encode(STRING_VALUES[name]?.(r) ?? ""));
  const size = SERVER_FIXED + strs.reduce((a, s) => a + s.byteLength, 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint16(0, REC_NETHTTP_SERVER, true);
  v.setUint16(2, size, true);
  // REC_SPAN_F_HAS_PARENT (1<<0), NETHTTP_SERVER_F_STATUS (1<<8), NETHTTP_SERVER_F_PATTERN (1<<9)
  v.setUint16(4, (r.parentSpanId ? 1 : 0) | 0x100 | 0x200, true);
  v.setUint16(6, 0, true);
  v.setBigUint64(8, r.startNs, true);
  v.setBigUint64(16, r.endNs, true);
  b.set(Buffer.from(r.traceId, "hex"), 24);
  b.set(Buffer.from(r.spanId, "hex"), 40);
  if (r.parentSpanId) b.set(Buffer.from(r.parentSpanId, "hex"), 48);
  setUint(v, field("status"), r.status ?? 0);
  setUint(v, field("proto_major"), 1);
  setUint(v, field("proto_minor"), 1);
  LAYOUT.strings.forEach((name, i) => setUint(v, field(`${name}_len`), strs[i]!.byteLength));
  let p = SERVER_FIXED;
  for (const s of strs) {
    b.set(s, p);
    p += s.byteLength;
  }
  if (p !== size || REC_SPAN !== 56) throw new Error("layout");
  return b;
}

/** Decodes hand-built server records (through the file's layout for the tag) into minimal spans. */
export class TestDecoder extends SpanDecoder {
  override decode(raw: Uint8Array, toEpoch: (bootNs: bigint) => bigint): Span | undefined {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (raw.byteLength < SERVER_FIXED || v.getUint16(0, true) !== REC_NETHTTP_SERVER || this.schema.types[String(REC_NETHTTP_SERVER)] === undefined) {
      this.invalid++;
      return undefined;
    }
    const hex = (o: number, n: number) => Buffer.from(raw.subarray(o, o + n)).toString("hex");
    const lens = LAYOUT.strings.map((name) => getUint(v, field(`${name}_len`)));
    let p = SERVER_FIXED;
    const all = lens.map((n) => {
      const s = new TextDecoder().decode(raw.subarray(p, p + n));
      p += n;
      return s;
    });
    const strs = ["method", "path", "host", "remote", "pattern"].map((name) => all[LAYOUT.strings.indexOf(name)] ?? "");
    const span: Span = {
      traceId: hex(24, 16),
      spanId: hex(40, 8),
      name: `${strs[0]} ${strs[4]}`,
      kind: "server",
      startTimeUnixNano: toEpoch(v.getBigUint64(8, true)),
      endTimeUnixNano: toEpoch(v.getBigUint64(16, true)),
      attributes: { "http.request.method": strs[0]!, "url.path": strs[1]!, "http.response.status_code": getUint(v, field("status")) },
      status: { code: "unset" },
      scope: { name: "test", version: "0" },
    };
    if (v.getUint16(4, true) & 1) span.parentSpanId = hex(48, 8);
    return span;
  }
}
