/**
 * @module tests/unit/probes/nethttp-conn-join.test — decoding a server record whose parent BPF
 * found by connection (NETHTTP_SERVER_F_CONN_JOINED, bpf/nethttp.bpf.c server_conn_join): the
 * client span is the parent, the span says how it was found, and nothing is taken from headers
 * that did not come (no tracestate).
 */
import { describe, expect, test } from "bun:test";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import type { Span } from "../../../src/spans/model.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";

const SERVER = recordLayoutOf("nethttp", "rec_nethttp_server");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const CLIENT_SPAN = "c1c2c3c4c5c6c7c8";

function decode(flags: number, parent: string, tracestate = ""): Span {
  const input: RecordInput = {
    fields: { type: E.REC_NETHTTP_SERVER, flags: flags | E.NETHTTP_SERVER_F_STATUS, truncated: 0, start_ns: 1_000n, end_ns: 2_000n, status: 200, proto_major: 1, proto_minor: 1 },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: parent },
    strings: { method: "GET", path: "/work", host: "10.1.1.2:8080", remote: "10.1.1.1:41234", pattern: "", panic: "", tracestate },
  };
  const w = new RecordWriter(SERVER);
  const size = w.size(input);
  const buf = new Uint8Array(size);
  w.write(input, buf, 0);
  const d = new SpanDecoder();
  const span = d.decodeAt(buf, new DataView(buf.buffer), 0, size, { toEpoch: (ns) => ns });
  if (span === undefined) throw new Error(`record refused: ${d.firstInvalid}`);
  return span;
}

const JOINED = E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT | E.NETHTTP_SERVER_F_CONN_JOINED | E.REC_SPAN_F_TRACE_FLAGS_KNOWN | E.REC_SPAN_F_SAMPLED;

describe("server span joined by connection", () => {
  test("the client span is the parent, and the span says it was found by connection", () => {
    const s = decode(JOINED, CLIENT_SPAN);
    expect({ trace: s.traceId, parent: s.parentSpanId, by: s.attributes["beetrace.parent_by_connection"] }).toEqual({ trace: TRACE, parent: CLIENT_SPAN, by: true });
    expect(s.attributes["network.peer.address"]).toBe("10.1.1.1");
  });

  test("no tracestate is taken: none came (a stale string in the record is ignored)", () => {
    expect(decode(JOINED, CLIENT_SPAN, "rojo=1").traceState).toBeUndefined();
  });

  test("a parent from a traceparent is not marked; no parent, no mark", () => {
    const viaHeader = decode(E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT, CLIENT_SPAN, "rojo=1");
    expect({ by: viaHeader.attributes["beetrace.parent_by_connection"], state: viaHeader.traceState }).toEqual({ by: undefined, state: "rojo=1" });
    const root = decode(E.NETHTTP_SERVER_F_CONN_JOINED, "0000000000000000");
    expect({ parent: root.parentSpanId, by: root.attributes["beetrace.parent_by_connection"] }).toEqual({ parent: undefined, by: undefined });
  });
});
