/**
 * @module tests/unit/capture/records — raw nethttp server span records written through this
 * build's record layout (tests/unit/probes/record-writer.ts over the BTF-generated layout, so the
 * records follow layout changes of bpf/shared/nethttp.h), and a small test
 * decoder that turns them back into spans, so capture tests do not depend on the probe decoders.
 */
import { SpanDecoder, builtinRecordSchema } from "../../../src/probes/decode.ts";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { RecordWriter } from "../probes/record-writer.ts";
import type { Span } from "../../../src/spans/model.ts";

/** enum rec_type REC_NETHTTP_SERVER (bpf/shared/span.h) */
export const REC_NETHTTP_SERVER = E.REC_NETHTTP_SERVER;
const LAYOUT = builtinRecordSchema().types[String(REC_NETHTTP_SERVER)]!;
const WRITER = new RecordWriter(LAYOUT);
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
  return WRITER.bytes({
    fields: {
      type: REC_NETHTTP_SERVER,
      flags: (r.parentSpanId ? E.REC_SPAN_F_HAS_PARENT : 0) | E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN,
      start_ns: r.startNs,
      end_ns: r.endNs,
      status: r.status ?? 0,
      proto_major: 1,
      proto_minor: 1,
    },
    hex: { trace_id: r.traceId, span_id: r.spanId, ...(r.parentSpanId ? { parent_span_id: r.parentSpanId } : {}) },
    strings: Object.fromEntries(Object.entries(STRING_VALUES).map(([name, get]) => [name, get(r)])),
  });
}

/** Decodes hand-built server records (through the file's layout for the tag) into minimal spans. */
export class TestDecoder extends SpanDecoder {
  override decode(raw: Uint8Array, toEpoch: (bootNs: bigint) => bigint): Span | undefined {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (raw.byteLength < SERVER_FIXED || getUint(v, field("type")) !== REC_NETHTTP_SERVER || this.schema.types[String(REC_NETHTTP_SERVER)] === undefined) {
      this.invalid++;
      return undefined;
    }
    const hex = (name: string) => {
      const [o, n] = field(name);
      return Buffer.from(raw.subarray(o, o + n)).toString("hex");
    };
    const u64 = (name: string) => v.getBigUint64(field(name)[0], true);
    const lens = LAYOUT.strings.map((name) => getUint(v, field(`${name}_len`)));
    let p = SERVER_FIXED;
    const all = lens.map((n) => {
      const s = new TextDecoder().decode(raw.subarray(p, p + n));
      p += n;
      return s;
    });
    const strs = ["method", "path", "host", "remote", "pattern"].map((name) => all[LAYOUT.strings.indexOf(name)] ?? "");
    const span: Span = {
      traceId: hex("trace_id"),
      spanId: hex("span_id"),
      name: `${strs[0]} ${strs[4]}`,
      kind: "server",
      startTimeUnixNano: toEpoch(u64("start_ns")),
      endTimeUnixNano: toEpoch(u64("end_ns")),
      attributes: { "http.request.method": strs[0]!, "url.path": strs[1]!, "http.response.status_code": getUint(v, field("status")) },
      status: { code: "unset" },
      scope: { name: "test", version: "0" },
    };
    if (getUint(v, field("flags")) & E.REC_SPAN_F_HAS_PARENT) span.parentSpanId = hex("parent_span_id");
    return span;
  }
}
