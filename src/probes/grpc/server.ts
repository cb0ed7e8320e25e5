/**
 * @module probes/grpc/server — manifest of the gRPC server probe: one SERVER span per RPC served
 * by google.golang.org/grpc.(*Server).handleStream (unary and streaming alike), ending when the
 * server writes the RPC's status (bpf/grpc.bpf.c).
 */
import type { DecodeContext, FlagContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./grpc.gen.ts";
import {
  GRPC_OBJECT,
  LIBRARY,
  SCOPE_NAME,
  SPB_CODE,
  SPB_STATUS_CODE,
  SPB_STATUS_CODE_DEFAULT,
  STATUS_STATUS_S,
  STREAM_ID,
  STREAM_CTX_FIELD,
  STREAM_ID_FIELD,
  STREAM_READ_REQUESTER_FIELD,
  TCPADDR_IP,
  TCPADDR_PORT,
  streamEmbedsPointer,
  type GrpcField,
} from "./object.ts";
import { isError, rpcAttributes, rpcSemconv, type RpcSemconv } from "./semconv.ts";
import { ipField } from "../common/net.ts";

export const SERVER_PROBE_ID = "grpc.server";

const T = "google.golang.org/grpc/internal/transport";

const SERVER_STREAM_STREAM = `${T}.ServerStream.Stream`;
const MHF_FIELDS = "golang.org/x/net/http2.MetaHeadersFrame.Fields";
const FH_STREAM_ID = "golang.org/x/net/http2.FrameHeader.StreamID";
const H2SERVER_PEER = `${T}.http2Server.peer`;
const H2SERVER_REMOTE_ADDR = `${T}.http2Server.remoteAddr`;

const SERVER_FIELDS: GrpcField[] = [
  { const: "stream_method_off", field: `${T}.Stream.method`, required: true, why: "span name, rpc.service, rpc.method" },
  STREAM_CTX_FIELD,
  // grpc >= 1.69 hands handleStream a *ServerStream embedding the Stream.
  { const: "server_stream_stream_off", field: SERVER_STREAM_STREAM, required: false, goMin: "1.69", why: "where the Stream sits in a ServerStream" },
  STREAM_READ_REQUESTER_FIELD,
  { const: "h2server_peer_off", field: H2SERVER_PEER, required: false, goMin: "1.60", why: "network.peer.address/port" },
  { const: "peer_addr_off", field: "google.golang.org/grpc/peer.Peer.Addr", required: false, why: "network.peer.address/port" },
  { const: "h2server_remote_addr_off", field: H2SERVER_REMOTE_ADDR, required: false, goMax: "1.59", why: "network.peer.address/port (grpc < 1.60)" },
  TCPADDR_IP,
  TCPADDR_PORT,
  STATUS_STATUS_S,
  SPB_CODE,
  // beetrace.http2.stream_id; context in: the traceparent of the request's HEADERS frame, joined
  // to the stream by its id.
  STREAM_ID_FIELD,
  { const: "mhf_fields_off", field: MHF_FIELDS, required: false, why: "traceparent in: the request's header fields" },
  { const: "fh_stream_id_off", field: FH_STREAM_ID, required: false, why: "traceparent in: the HEADERS frame's stream id" },
];

/** The status code offset: DWARF's when it has the type, else genproto's fixed layout. */
export function spbCodeFlags(ctx: FlagContext): Record<string, number> {
  const off = ctx.offset(SPB_STATUS_CODE);
  return { spb_status_code_off: typeof off === "number" ? off : SPB_STATUS_CODE_DEFAULT };
}

/** The status offset, and how the ServerStream handed to handleStream holds its Stream
 * (server_stream_embed: 0 by value or no wrapper, 1 by pointer, 2 unknown: stream fields unread). */
export function serverFlags(ctx: FlagContext): Record<string, number> {
  return { ...spbCodeFlags(ctx), server_stream_embed: streamEmbedsPointer(ctx, SERVER_STREAM_STREAM) ?? 2 };
}

const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { method: "rpc.method", tracestate: "tracestate" };

/** Builds the server span (semconv "RPC server span", gRPC) with the RPC conventions `mode`. */
export function buildServerWith(r: RecordReader, ctx: DecodeContext, out: SpanBuilder, mode: RpcSemconv): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "server");
  const code = flags & E.GRPC_SERVER_F_STATUS ? r.u32("code") : undefined;
  const error = code !== undefined && isError("server", code);
  out.name(rpcAttributes(out, r.str("method"), code, error, mode));
  if (flags & E.GRPC_SERVER_F_PEER) {
    const addr = ipField(r, "peer_ip_size", "peer_ip");
    if (addr !== undefined) {
      out.attr("network.peer.address", addr);
      out.attr("network.peer.port", r.u16("peer_port"));
    }
  }
  // The HTTP/2 stream: with the peer end, what names the client span that sent the RPC (merge).
  if (flags & E.GRPC_SERVER_F_STREAM_ID) out.attr("beetrace.http2.stream_id", r.u32("stream_id"));
  // Parent found by the connection (a traced client's span in flight on the peer end and stream).
  if (flags & E.GRPC_SERVER_F_CONN_JOINED && out.hasParent) out.attr("beetrace.parent_by_connection", true);
  const traceState = r.str("tracestate");
  if (traceState !== "" && out.hasParent) out.traceState(traceState);
  if (error) out.error();
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export function buildServer(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  buildServerWith(r, ctx, out, rpcSemconv());
}

export const grpcServer: ProbeManifest = {
  id: SERVER_PROBE_ID,
  library: LIBRARY,
  object: GRPC_OBJECT,
  uprobes: [
    {
      symbol: "google.golang.org/grpc.(*Server).handleStream",
      entryProgram: "grpc_server_entry",
      returnProgram: "grpc_server_return",
      endMarkers: [
        {
          // The transport's WriteStatus: grpc calls it on the handler's goroutine once the
          // handler returned (processUnaryRPC, processStreamingRPC; handleStream for an unknown
          // method), with the status as its argument. Renamed writeStatus when
          // ServerStream.WriteStatus became its (inlined) wrapper.
          choices: [
            {
              symbols: [`${T}.(*http2Server).WriteStatus`, `${T}.(*http2Server).writeStatus`],
              program: "grpc_server_end_status",
            },
          ],
          neededIf: "always",
          why: "the RPC's status is written (internal/transport/http2_server.go): the end of the RPC, and its code",
        },
        {
          // A grpc.Server used as an http.Handler ((*Server).ServeHTTP, e.g. gRPC and REST on
          // one port under net/http's HTTP/2 server): its RPCs enter handleStream too, and end
          // when the serverHandlerTransport writes the status (handler_server.go), on the same
          // goroutine, with the same arguments. Optional: without it that path cannot run.
          choices: [
            {
              symbols: [`${T}.(*serverHandlerTransport).WriteStatus`, `${T}.(*serverHandlerTransport).writeStatus`],
              program: "grpc_server_end_status",
            },
          ],
          neededIf: "if-linked",
          why: "the status of an RPC served through (*Server).ServeHTTP (internal/transport/handler_server.go)",
        },
        {
          // Not an end: the one extra probe context in takes. The transport's reader goroutine
          // decodes each request's HEADERS frame in operateHeaders before the handler's
          // goroutine exists; a traceparent found there is kept for handleStream, keyed by
          // transport and stream id. grpc 1.60 added a ctx argument before the frame (the
          // release that replaced http2Server.remoteAddr with peer, which tells them apart).
          choices: [
            { symbols: [`${T}.(*http2Server).operateHeaders`], program: "grpc_server_headers_v2", fields: [H2SERVER_PEER, STREAM_ID, MHF_FIELDS, FH_STREAM_ID] },
            { symbols: [`${T}.(*http2Server).operateHeaders`], program: "grpc_server_headers_v1", fields: [H2SERVER_REMOTE_ADDR, STREAM_ID, MHF_FIELDS, FH_STREAM_ID] },
          ],
          neededIf: "if-linked",
          why: "traceparent in: the request metadata's W3C traceparent/tracestate (not an end; skipped when offsets are unknown)",
        },
      ],
    },
  ],
  fields: SERVER_FIELDS,
  record: { type: E.REC_GRPC_SERVER, struct: "rec_grpc_server" },
  flags: serverFlags,
  decode: decodeWith(buildServer),
  build: buildServer,
};
