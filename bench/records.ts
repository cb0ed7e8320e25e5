/**
 * @module bench/records — realistic net/http span records (one per finished span, as
 * bpf/nethttp.bpf.c writes them), laid out exactly as the kernel lays out a BPF ring buffer's
 * data area, for the user-space pipeline benchmark.
 *
 * Records are written by the unit tests' RecordWriter through the layouts generated from the
 * object's BTF (recordLayoutOf), so these bytes are what the BPF side would write. Ring
 * framing follows kernel/bpf/ringbuf.c: an 8-byte header { u32 len, u32 pg_off } before each
 * record, records padded to 8 bytes.
 */
import { ENUMERATORS as E } from "../src/probes/nethttp/nethttp.gen.ts";
import { recordLayoutOf } from "../src/probes/layouts.ts";
import { RINGBUF_HEADER } from "../src/bpf/ringbuf.ts";
import { RecordWriter, type RecordInput } from "../tests/unit/probes/record-writer.ts";

const SERVER = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_server"));
const CLIENT = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_client"));

/** Both record types share the rec_span header, so these offsets hold for either. */
const HDR = {
  flags: SERVER.offsetOf("flags"),
  start_ns: SERVER.offsetOf("start_ns"),
  end_ns: SERVER.offsetOf("end_ns"),
  trace_id: SERVER.offsetOf("trace_id"),
  span_id: SERVER.offsetOf("span_id"),
  parent_span_id: SERVER.offsetOf("parent_span_id"),
};
for (const [name, off] of Object.entries(HDR)) {
  if (CLIENT.offsetOf(name) !== off) throw new Error(`rec_span.${name} is at different offsets in the server and client records`);
}

/** A server span as the sample's handlers produce it (HTTP/1.1, no TLS, status 200). */
function serverSpan(path: string, pattern: string, remote: string): { w: RecordWriter; input: RecordInput } {
  return {
    w: SERVER,
    input: {
      fields: {
        type: E.REC_NETHTTP_SERVER,
        flags: E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN,
        status: 200,
        proto_major: 1,
        proto_minor: 1,
      },
      strings: { method: "GET", path, host: "127.0.0.1:8080", remote, pattern },
    },
  };
}

/** The /proxy handler's outgoing request (http://127.0.0.1:8080/hello, 200). */
function clientSpan(): { w: RecordWriter; input: RecordInput } {
  return {
    w: CLIENT,
    input: {
      fields: { type: E.REC_NETHTTP_CLIENT, flags: E.NETHTTP_CLIENT_F_RESPONSE, status: 200 },
      strings: { method: "GET", scheme: "http", url_host: "127.0.0.1:8080", path: "/hello", req_host: "127.0.0.1:8080" },
    },
  };
}

/** One span of a request group: its record, its parent inside the group, its times. */
interface Step {
  w: RecordWriter;
  input: RecordInput;
  span: number;
  parent?: number;
  /** ns after the group's start */
  startNs: number;
  endNs: number;
}

export type Mix = "hello" | "proxy";

/**
 * The records one request produces, in the order BPF emits them (when each span ends):
 *  - hello: one server span (GET /hello, route "/hello");
 *  - proxy: server span A (/proxy), client span B (child of A), server span C (/hello, child
 *    of B): what the sample's /proxy produces, 3 spans = 3 records, C first, A last.
 */
function group(mix: Mix): Step[] {
  if (mix === "hello") return [{ ...serverSpan("/hello", "/hello", "127.0.0.1:54321"), span: 0, startNs: 0, endNs: 48_000 }];
  return [
    { ...serverSpan("/hello", "/hello", "127.0.0.1:54322"), span: 2, parent: 1, startNs: 90_000, endNs: 120_000 },
    { ...clientSpan(), span: 1, parent: 0, startNs: 20_000, endNs: 180_000 },
    { ...serverSpan("/proxy", "/proxy", "127.0.0.1:54321"), span: 0, startNs: 0, endNs: 200_000 },
  ];
}

export function spansPerGroup(mix: Mix): number {
  return mix === "hello" ? 1 : 3;
}

/** Longest request of a group, ns (its last end). */
function groupNs(mix: Mix): number {
  return Math.max(...group(mix).map((s) => s.endNs));
}

const padded = (n: number) => (n + RINGBUF_HEADER.SIZE + 7) & ~7;

/**
 * A ring-shaped buffer holding `groups` request groups back to back. `stamp` rewrites trace
 * ids, span ids and times so every pass carries fresh ids and times that follow the real
 * clock; call it outside the timed region.
 */
export class RecordBatch {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly words: Uint32Array;
  /** Records (= spans) in the batch */
  readonly records: number;
  readonly spans: number;
  /** Byte length used (a producer position at the end of the last record). */
  readonly length: number;
  /** Record bytes without ring framing (what a capture file stores per span, before CBOR) */
  readonly recordBytes: number;
  readonly #slots: { at: number; step: Step; group: number }[] = [];

  constructor(
    readonly mix: Mix,
    readonly groups: number,
  ) {
    const steps = group(mix);
    const sizes = steps.map((s) => s.w.size(s.input));
    const per = sizes.reduce((a, n) => a + padded(n), 0);
    this.length = per * groups;
    this.bytes = new Uint8Array(this.length);
    this.view = new DataView(this.bytes.buffer);
    this.words = new Uint32Array(this.bytes.buffer);
    let at = 0;
    for (let g = 0; g < groups; g++) {
      steps.forEach((s, i) => {
        this.view.setUint32(at, sizes[i]!, true); // header: len, no BUSY/DISCARD bits
        s.w.write(s.input, this.bytes, at + RINGBUF_HEADER.SIZE);
        this.#slots.push({ at: at + RINGBUF_HEADER.SIZE, step: s, group: g });
        at += padded(sizes[i]!);
      });
    }
    this.records = this.#slots.length;
    this.spans = groups * spansPerGroup(mix);
    this.recordBytes = sizes.reduce((a, n) => a + n, 0) * groups;
  }

  /**
   * Fresh, unique ids for `pass`, and CLOCK_BOOTTIME stamps that keep pace with the real
   * clock: the pass's requests end evenly spread over the `spreadNs` before `nowBootNs` (the
   * caller passes the real boot time and how long the previous pass took), as if they had
   * happened while the previous pass was being processed. Stamps running ahead of real time
   * would push every conversion past the clock's re-anchor interval (src/spans/clock.ts) and
   * make the converter re-anchor on every span, which the live session never does.
   */
  stamp(pass: number, nowBootNs: bigint, spreadNs: bigint): void {
    const v = this.view;
    const per = spansPerGroup(this.mix);
    const step = spreadNs / BigInt(this.groups);
    const last = BigInt(groupNs(this.mix));
    const spanId = (g: number, s: number) => (BigInt(pass) << 40n) | (BigInt(g * per + s + 1) << 8n) | 0x5an;
    for (const { at, step: s, group: g } of this.#slots) {
      // The group's last span ends at its slot in the spread; the others relative to it.
      const groupEnd = nowBootNs - spreadNs + step * BigInt(g + 1);
      const groupStart = groupEnd - last;
      v.setBigUint64(at + HDR.start_ns, groupStart + BigInt(s.startNs), true);
      v.setBigUint64(at + HDR.end_ns, groupStart + BigInt(s.endNs), true);
      // 16-byte trace id: pass and group in the high half, a constant low half.
      v.setBigUint64(at + HDR.trace_id, (BigInt(pass) << 32n) | BigInt(g + 1), false);
      v.setBigUint64(at + HDR.trace_id + 8, 0x0123456789abcdefn, false);
      v.setBigUint64(at + HDR.span_id, spanId(g, s.span), false);
      const hasParent = s.parent !== undefined;
      const flags = Number(s.input.fields?.flags ?? 0);
      v.setUint16(at + HDR.flags, hasParent ? flags | E.REC_SPAN_F_HAS_PARENT : flags, true);
      v.setBigUint64(at + HDR.parent_span_id, hasParent ? spanId(g, s.parent!) : 0n, false);
    }
  }
}
