/**
 * gRPC joins in `beetrace merge`: a gRPC client record keeps its connection's local end
 * (local_ip/local_ip_size/local_port, valid under GRPC_CLIENT_F_LOCAL) and the call's HTTP/2
 * stream id (stream_id, under GRPC_CLIENT_F_STREAM_ID); a server record its peer end
 * (peer_ip/peer_ip_size/peer_port, GRPC_SERVER_F_PEER) and stream id (GRPC_SERVER_F_STREAM_ID)
 * — bpf/shared/grpc.h. Both give the key "address|port#sid" (src/merge/endpoints.ts), the same
 * key a net/http HTTP/2 request and a decoded span (network.* + beetrace.http2.stream_id) give.
 */
import { describe, expect, test } from "bun:test";
import { RecordTypes, recordEndpoint, spanEndpoint } from "../../../src/merge/endpoints.ts";
import { builtinRecordSchema } from "../../../src/probes/decode.ts";
import type { Span } from "../../../src/spans/model.ts";
import { ENUMERATORS as E, STRUCTS } from "../../../src/probes/grpc/grpc.gen.ts";

/** A gRPC record with the header's tag, size and flags set, and its layout's member offsets. */
function record(type: number, members: Record<string, { offset: number }>, flags: number): { rec: Uint8Array; dv: DataView } {
  const rec = new Uint8Array(members["strings"]!.offset);
  const dv = new DataView(rec.buffer);
  dv.setUint16(0, type, true);
  dv.setUint16(2, rec.length, true);
  dv.setUint16(4, flags, true); // rec_span.flags (bpf/shared/span.h)
  return { rec, dv };
}

describe("gRPC join keys", () => {
  const types = new RecordTypes(builtinRecordSchema());

  test("client record: local end and stream id, each only under its flag", () => {
    const L = STRUCTS.rec_grpc_client.members;
    const { rec, dv } = record(E.REC_GRPC_CLIENT, L, E.GRPC_CLIENT_F_LOCAL | E.GRPC_CLIENT_F_STREAM_ID | E.GRPC_CLIENT_F_PEER);
    rec.set([10, 0, 1, 1], L.local_ip.offset);
    rec[L.local_ip_size.offset] = 4;
    dv.setUint16(L.local_port.offset, 40123, true);
    // The peer end is the server's listening address: never the key.
    rec.set([10, 0, 1, 2], L.peer_ip.offset);
    rec[L.peer_ip_size.offset] = 4;
    dv.setUint16(L.peer_port.offset, 7000, true);
    dv.setUint32(L.stream_id.offset, 5, true);
    const info = types.get(E.REC_GRPC_CLIENT);
    expect(info.endpoint?.role).toBe("client");
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.1.1|40123#5");
    // Stream id not read: the connection's key.
    dv.setUint16(4, E.GRPC_CLIENT_F_LOCAL, true);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.1.1|40123");
    // Local end not read (the call never got a transport): no key at all.
    dv.setUint16(4, E.GRPC_CLIENT_F_STREAM_ID | E.GRPC_CLIENT_F_PEER, true);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBeUndefined();
  });

  test("server record: peer end (IPv4, IPv4-mapped and IPv6) and stream id", () => {
    const L = STRUCTS.rec_grpc_server.members;
    const { rec, dv } = record(E.REC_GRPC_SERVER, L, E.GRPC_SERVER_F_PEER | E.GRPC_SERVER_F_STREAM_ID | E.GRPC_SERVER_F_STATUS);
    rec.set([10, 0, 1, 1], L.peer_ip.offset);
    rec[L.peer_ip_size.offset] = 4;
    dv.setUint16(L.peer_port.offset, 40123, true);
    dv.setUint32(L.stream_id.offset, 5, true);
    const info = types.get(E.REC_GRPC_SERVER);
    expect(info.endpoint?.role).toBe("server");
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.1.1|40123#5");
    // The same address as a 16-byte IPv4-mapped net.IP: the same key.
    rec.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 1, 1], L.peer_ip.offset);
    rec[L.peer_ip_size.offset] = 16;
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.1.1|40123#5");
    // Through ServeHTTP grpc has no stream id of its own: the connection's key.
    dv.setUint16(4, E.GRPC_SERVER_F_PEER, true);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBe("10.0.1.1|40123");
    // No peer read: nothing to join.
    dv.setUint16(4, E.GRPC_SERVER_F_STREAM_ID, true);
    expect(recordEndpoint(info, rec, 0, rec.length)).toBeUndefined();
    // A damaged size: nothing, never a read past the record.
    dv.setUint16(4, E.GRPC_SERVER_F_PEER, true);
    rec[L.peer_ip_size.offset] = 7;
    expect(recordEndpoint(info, rec, 0, rec.length)).toBeUndefined();
    rec[L.peer_ip_size.offset] = 16;
    expect(recordEndpoint(info, rec, 0, L.peer_ip.offset + 8)).toBeUndefined();
  });

  test("client and server records of one call meet on one key; the decoded spans give it too", () => {
    const C = STRUCTS.rec_grpc_client.members;
    const S = STRUCTS.rec_grpc_server.members;
    const c = record(E.REC_GRPC_CLIENT, C, E.GRPC_CLIENT_F_LOCAL | E.GRPC_CLIENT_F_STREAM_ID);
    c.rec.set([0xfd, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], C.local_ip.offset);
    c.rec[C.local_ip_size.offset] = 16;
    c.dv.setUint16(C.local_port.offset, 51000, true);
    c.dv.setUint32(C.stream_id.offset, 0x7fffffff, true);
    const s = record(E.REC_GRPC_SERVER, S, E.GRPC_SERVER_F_PEER | E.GRPC_SERVER_F_STREAM_ID);
    s.rec.set(c.rec.subarray(C.local_ip.offset, C.local_ip.offset + 16), S.peer_ip.offset);
    s.rec[S.peer_ip_size.offset] = 16;
    s.dv.setUint16(S.peer_port.offset, 51000, true);
    s.dv.setUint32(S.stream_id.offset, 0x7fffffff, true);
    const ck = recordEndpoint(types.get(E.REC_GRPC_CLIENT), c.rec, 0, c.rec.length);
    const sk = recordEndpoint(types.get(E.REC_GRPC_SERVER), s.rec, 0, s.rec.length);
    expect(ck).toBeDefined();
    expect(sk).toBe(ck!);
    const span = (kind: "client" | "server", attributes: Span["attributes"]) => ({ kind, attributes }) as unknown as Span;
    expect(spanEndpoint(span("client", { "network.local.address": "fd12::1", "network.local.port": 51000, "network.peer.address": "fd12::2", "network.peer.port": 7000, "beetrace.http2.stream_id": 0x7fffffff }))).toEqual({ role: "client", key: ck! });
    expect(spanEndpoint(span("server", { "network.peer.address": "fd12::1", "network.peer.port": 51000, "beetrace.http2.stream_id": 0x7fffffff }))).toEqual({ role: "server", key: sk! });
  });
});
