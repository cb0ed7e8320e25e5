/**
 * @module bench/records — builds realistic net/http ring-buffer records, laid out exactly as the
 * kernel lays out a BPF ring buffer's data area, for the user-space pipeline benchmark.
 *
 * Field offsets come from the layouts in src/probes/nethttp/records.ts (themselves checked
 * against the BTF of bpf/shared/records.h), so these bytes are what the BPF side would write.
 * Ring framing follows kernel/bpf/ringbuf.c: an 8-byte header { u32 len, u32 pg_off } before
 * each record, records padded to 8 bytes.
 */
import {
  C_ENUMS,
  CLIENT_END,
  CLIENT_START,
  END_HDR,
  SERVER_END,
  SERVER_START,
  START_HDR,
  type RecordLayout,
} from "../src/probes/nethttp/records.ts";
import { RINGBUF_HEADER } from "../src/bpf/ringbuf.ts";

const enc = new TextEncoder();

function off(l: RecordLayout, name: string): number {
  const f = l.fields[name];
  if (f === undefined) throw new Error(`${l.struct} has no field ${name}`);
  return f.offset;
}

/** One record: its layout and how to fill it (ids and times are written separately). */
interface Template {
  layout: RecordLayout;
  bytes: Uint8Array;
  kind: "start" | "end";
}

function put(b: Uint8Array, l: RecordLayout, field: string, text: string): void {
  const fl = l.fields[field]!;
  const bytes = enc.encode(text);
  b.set(bytes.subarray(0, fl.size), fl.offset);
  new DataView(b.buffer).setUint32(off(l, `${field}_len`), bytes.length, true);
}

function serverStart(path: string, pid: number): Template {
  const l = SERVER_START;
  const b = new Uint8Array(l.size);
  const v = new DataView(b.buffer);
  v.setUint32(off(START_HDR, "type"), C_ENUMS.REC_NETHTTP_SERVER_START, true);
  v.setUint32(off(START_HDR, "pid"), pid, true);
  v.setUint32(off(START_HDR, "tid"), pid + 3, true);
  v.setUint16(off(l, "proto_major"), 1, true);
  v.setUint16(off(l, "proto_minor"), 1, true);
  v.setUint32(off(l, "req_flags"), C_ENUMS.NETHTTP_SERVER_F_TLS_KNOWN, true);
  put(b, l, "method", "GET");
  put(b, l, "path", path);
  put(b, l, "host", "127.0.0.1:8080");
  put(b, l, "remote", "127.0.0.1:51234");
  return { layout: l, bytes: b, kind: "start" };
}

function serverEnd(pattern: string): Template {
  const l = SERVER_END;
  const b = new Uint8Array(l.size);
  const v = new DataView(b.buffer);
  v.setUint32(off(END_HDR, "type"), C_ENUMS.REC_NETHTTP_SERVER_END, true);
  v.setUint32(off(END_HDR, "flags"), C_ENUMS.NETHTTP_SERVER_END_F_STATUS | C_ENUMS.NETHTTP_SERVER_END_F_PATTERN, true);
  v.setUint32(off(l, "status"), 200, true);
  put(b, l, "pattern", pattern);
  return { layout: l, bytes: b, kind: "end" };
}

function clientStart(pid: number): Template {
  const l = CLIENT_START;
  const b = new Uint8Array(l.size);
  const v = new DataView(b.buffer);
  v.setUint32(off(START_HDR, "type"), C_ENUMS.REC_NETHTTP_CLIENT_START, true);
  v.setUint32(off(START_HDR, "pid"), pid, true);
  v.setUint32(off(START_HDR, "tid"), pid + 5, true);
  v.setUint32(off(l, "url_flags"), C_ENUMS.NETHTTP_URL_F_QUERY, true);
  put(b, l, "method", "GET");
  put(b, l, "scheme", "http");
  put(b, l, "url_host", "127.0.0.1:8080");
  put(b, l, "path", "/hello");
  put(b, l, "req_host", "127.0.0.1:8080");
  return { layout: l, bytes: b, kind: "start" };
}

function clientEnd(): Template {
  const l = CLIENT_END;
  const b = new Uint8Array(l.size);
  const v = new DataView(b.buffer);
  v.setUint32(off(END_HDR, "type"), C_ENUMS.REC_NETHTTP_CLIENT_END, true);
  v.setUint32(off(END_HDR, "flags"), C_ENUMS.NETHTTP_CLIENT_END_F_RESPONSE, true);
  v.setUint32(off(l, "status"), 200, true);
  return { layout: l, bytes: b, kind: "end" };
}

/** Which span of the group a record belongs to, and that span's parent inside the group. */
interface Step {
  t: Template;
  span: number;
  parent?: number;
  /** ns after the group's start */
  atNs: number;
}

export type Mix = "hello" | "proxy";

/**
 * The records one request produces, in the order BPF emits them:
 *  - hello: one server span (GET /items/{id} style route);
 *  - proxy: server span A, client span B (child of A), server span C (child of B) — what the
 *    sample's /proxy produces: 3 spans, 6 records.
 */
function group(mix: Mix, pid: number): Step[] {
  if (mix === "hello") {
    return [
      { t: serverStart("/items/12345", pid), span: 0, atNs: 0 },
      { t: serverEnd("GET /items/{id}"), span: 0, atNs: 48_000 },
    ];
  }
  return [
    { t: serverStart("/proxy", pid), span: 0, atNs: 0 },
    { t: clientStart(pid), span: 1, parent: 0, atNs: 20_000 },
    { t: serverStart("/hello", pid), span: 2, parent: 1, atNs: 90_000 },
    { t: serverEnd("/hello"), span: 2, atNs: 120_000 },
    { t: clientEnd(), span: 1, atNs: 180_000 },
    { t: serverEnd("/proxy"), span: 0, atNs: 200_000 },
  ];
}

export function spansPerGroup(mix: Mix): number {
  return mix === "hello" ? 1 : 3;
}

const padded = (n: number) => (n + RINGBUF_HEADER.SIZE + 7) & ~7;

/**
 * A ring-shaped buffer holding `groups` request groups back to back. `stamp(pass)` rewrites
 * trace ids, span ids and times so every pass carries fresh ids (the assembler remembers recent
 * ids and would treat a replay as duplicates); call it outside the timed region.
 */
export class RecordBatch {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly words: Uint32Array;
  readonly records: number;
  readonly spans: number;
  /** Byte length used (a producer position at the end of the last record). */
  readonly length: number;
  private readonly slots: { at: number; step: Step; group: number }[] = [];

  constructor(
    readonly mix: Mix,
    readonly groups: number,
    pid = 4242,
  ) {
    const steps = group(mix, pid);
    const per = steps.reduce((a, s) => a + padded(s.t.layout.size), 0);
    this.length = per * groups;
    this.bytes = new Uint8Array(this.length);
    this.view = new DataView(this.bytes.buffer);
    this.words = new Uint32Array(this.bytes.buffer);
    let at = 0;
    for (let g = 0; g < groups; g++) {
      for (const s of steps) {
        this.view.setUint32(at, s.t.layout.size, true); // header: len, no BUSY/DISCARD bits
        this.bytes.set(s.t.bytes, at + RINGBUF_HEADER.SIZE);
        this.slots.push({ at: at + RINGBUF_HEADER.SIZE, step: s, group: g });
        at += padded(s.t.layout.size);
      }
    }
    this.records = this.slots.length;
    this.spans = groups * spansPerGroup(mix);
  }

  /** Fresh, unique ids (pass, group, span) and boot-time stamps starting at `baseNs`. */
  stamp(pass: number, baseNs: bigint): void {
    const v = this.view;
    const per = spansPerGroup(this.mix);
    const spanId = (g: number, s: number) => (BigInt(pass) << 40n) | (BigInt(g * per + s + 1) << 8n) | 0x5an;
    for (const { at, step, group: g } of this.slots) {
      const t = baseNs + BigInt(g) * 250_000n + BigInt(step.atNs);
      if (step.t.kind === "start") {
        v.setBigUint64(at + off(START_HDR, "start_ns"), t, true);
        v.setBigUint64(at + off(START_HDR, "goroutine"), BigInt(1000 + g * per + step.span), true);
        // 16-byte trace id: pass and group in the high half, a constant low half.
        v.setBigUint64(at + off(START_HDR, "trace_id"), (BigInt(pass) << 32n) | BigInt(g + 1), false);
        v.setBigUint64(at + off(START_HDR, "trace_id") + 8, 0x0123456789abcdefn, false);
        v.setBigUint64(at + off(START_HDR, "span_id"), spanId(g, step.span), false);
        const hasParent = step.parent !== undefined;
        v.setUint32(at + off(START_HDR, "flags"), hasParent ? C_ENUMS.REC_START_F_HAS_PARENT : 0, true);
        v.setBigUint64(at + off(START_HDR, "parent_span_id"), hasParent ? spanId(g, step.parent!) : 0n, false);
      } else {
        v.setBigUint64(at + off(END_HDR, "end_ns"), t, true);
        v.setBigUint64(at + off(END_HDR, "span_id"), spanId(g, step.span), false);
      }
    }
  }
}
