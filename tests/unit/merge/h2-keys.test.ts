/**
 * HTTP/2 joins in `beetrace merge`: client and server spans of an HTTP/2 request carry its stream
 * id (h2_stream_id in the records, beetrace.http2.stream_id on decoded spans), and the join key is
 * (address, port, stream id) — src/merge/endpoints.ts streamKey. Many requests at once on one
 * connection then pair exactly, which time alone cannot do; records whose layout lacks the
 * field (older captures) keep the connection's key.
 */
import { describe, expect, test } from "bun:test";
import { type Endpoint, join } from "../../../src/merge/join.ts";
import { RecordTypes, recordEndpoint, spanEndpoint, streamKey } from "../../../src/merge/endpoints.ts";
import { builtinRecordSchema } from "../../../src/probes/decode.ts";
import type { RecordSchema } from "../../../src/probes/record.ts";
import type { Span } from "../../../src/spans/model.ts";
import { ENUMERATORS as E, STRUCTS } from "../../../src/probes/nethttp/nethttp.gen.ts";

const MS = 1_000_000;
let ids = 0;
const id = (len: number) => (++ids).toString(16).padStart(len, "0");

describe("HTTP/2 join keys", () => {
  test("streamKey: the stream id after the connection's key; 0 (HTTP/1) keeps the connection's key", () => {
    expect(streamKey("10.0.0.2|51234", 7)).toBe("10.0.0.2|51234#7");
    expect(streamKey("10.0.0.2|51234", 0)).toBe("10.0.0.2|51234");
  });

  test("decoded spans (format 1): beetrace.http2.stream_id joins the key on both sides", () => {
    const span = (kind: "client" | "server", attributes: Span["attributes"]) => ({ kind, attributes }) as unknown as Span;
    expect(spanEndpoint(span("client", { "network.local.address": "10.0.0.2", "network.local.port": 51234, "beetrace.http2.stream_id": 5 }))).toEqual({ role: "client", key: "10.0.0.2|51234#5" });
    expect(spanEndpoint(span("server", { "network.peer.address": "::ffff:10.0.0.2", "network.peer.port": 51234, "beetrace.http2.stream_id": 5 }))).toEqual({ role: "server", key: "10.0.0.2|51234#5" });
    // Not a stream id: ignored.
    expect(spanEndpoint(span("server", { "network.peer.address": "10.0.0.2", "network.peer.port": 51234, "beetrace.http2.stream_id": "5" }))).toEqual({ role: "server", key: "10.0.0.2|51234" });
  });

  test("records: h2_stream_id read through the file's layout; a layout without it reads as HTTP/1", () => {
    const schema = builtinRecordSchema();
    const L = STRUCTS.rec_nethttp_client.members;
    const rec = new Uint8Array(L.strings.offset);
    const dv = new DataView(rec.buffer);
    dv.setUint16(0, E.REC_NETHTTP_CLIENT, true);
    dv.setUint16(2, rec.length, true);
    rec.set([10, 0, 0, 2], L.local_addr.offset);
    rec[L.local_addr_size.offset] = 4;
    dv.setUint16(L.local_port.offset, 51234, true);
    dv.setUint32(L.h2_stream_id.offset, 0x80000001, true);
    const info = new RecordTypes(schema).get(E.REC_NETHTTP_CLIENT);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe(`10.0.0.2|51234#${0x80000001}`);
    dv.setUint32(L.h2_stream_id.offset, 0, true);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.0.2|51234");
    // An older capture's layout: no h2_stream_id field.
    const old: RecordSchema = structuredClone(schema);
    const layout = old.types[String(E.REC_NETHTTP_CLIENT)]!;
    delete layout.fields["h2_stream_id"];
    dv.setUint32(L.h2_stream_id.offset, 9, true);
    expect(recordEndpoint(new RecordTypes(old).get(E.REC_NETHTTP_CLIENT), rec, 0, rec.length)).toBe("10.0.0.2|51234");
    // The field outside a (damaged) record: the connection's key, never a read past it.
    expect(recordEndpoint(info, rec, 0, L.h2_stream_id.offset + 2)).toBe("10.0.0.2|51234");
  });

  test("join: 40 requests 8 at a time on one HTTP/2 connection, server clock 3 s ahead: each server span pairs with its own stream's client span", () => {
    const conn = "10.0.0.2|51234";
    const skew = 3_000 * MS;
    const clients: Endpoint[] = [];
    const servers: Endpoint[] = [];
    let sid = 1;
    for (let batch = 0; batch < 5; batch++) {
      const t0 = batch * 50 * MS;
      for (let k = 0; k < 8; k++) {
        // Overlapping client spans: started within 1 ms of each other, answered in any order.
        const start = t0 + k * 0.1 * MS;
        const dur = (5 + ((k * 7) % 8)) * MS;
        const key = streamKey(conn, sid);
        clients.push({ file: 0, key, start, end: start + dur, traceId: id(32), spanId: id(16) });
        servers.push({ file: 1, key, start: start + 0.5 * MS + skew, end: start + dur - 0.5 * MS + skew, traceId: id(32), spanId: id(16) });
        sid += 2;
      }
    }
    const r = join(2, clients, servers);
    expect({ matches: r.matches.length, unmatchedServers: r.unmatchedServers, unmatchedClients: r.unmatchedClients, ambiguous: r.ambiguous }).toEqual({
      matches: 40,
      unmatchedServers: 0,
      unmatchedClients: 0,
      ambiguous: 0,
    });
    for (const m of r.matches) expect(m.client.key).toBe(m.server.key);
    expect(Math.abs(r.offsets[1]!.offsetNs + skew)).toBeLessThan(1 * MS);
    // Keyed by the connection alone, the same spans are ambiguous: time cannot tell them apart.
    const byConn = join(
      2,
      clients.map((c) => ({ ...c, key: conn })),
      servers.map((s) => ({ ...s, key: conn })),
    );
    expect(byConn.matches.length).toBeLessThan(40);
  });
});
