/**
 * @module probes/grpc/client — manifest of the gRPC client probe: one CLIENT span per RPC made.
 * (*ClientConn).Invoke (unary, through grpc's invoke) and (*ClientConn).NewStream (streams) both
 * make their stream in google.golang.org/grpc.newClientStream; the span runs from there to
 * (*clientStream).finish, which grpc calls when the stream ends: the reply received, an error,
 * or the context cancelled — or, for a call whose stream could not be made, to
 * endOfClientStream (grpc >= 1.78) or newClientStream's return (bpf/grpc.bpf.c).
 */
import type { DecodeContext, FlagContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./grpc.gen.ts";
import { GRPC_OBJECT, LIBRARY, SCOPE_NAME, SPB_CODE, STATUS_STATUS_S, STREAM_ID_FIELD, STREAM_CTX, STREAM_CTX_FIELD, STREAM_READ_REQUESTER, STREAM_READ_REQUESTER_FIELD, TCPADDR_IP, TCPADDR_PORT, streamEmbedsPointer, type GrpcField } from "./object.ts";
import { H2_STREAM_ID } from "../nethttp/object.ts";
import { CODE_UNKNOWN, isError, rpcAttributes, rpcSemconv, targetAddress, type RpcSemconv } from "./semconv.ts";
import { spbCodeFlags } from "./server.ts";
import { ipField } from "../common/net.ts";

export const CLIENT_PROBE_ID = "grpc.client";

const GRPC = "google.golang.org/grpc";
const T = "google.golang.org/grpc/internal/transport";
const CLIENT_STREAM_STREAM = `${T}.ClientStream.Stream`;
const STREAM_WQ = `${T}.Stream.wq`;
const CLIENT_STREAM_CT = `${T}.ClientStream.ct`;
const HF_STREAM_ID = `${T}.headerFrame.streamID`;
const HF_WQ = `${T}.headerFrame.wq`;
const CH_STREAM_ID = `${T}.clientHeaders.streamID`;
const CH_WQ = `${T}.clientHeaders.wq`;
/** What the live-join site needs besides the HEADERS frame's own fields. */
const LIVE_JOIN_FIELDS = [`${GRPC}.clientStream.ctx`, STREAM_CTX, STREAM_WQ, CLIENT_STREAM_CT, STREAM_READ_REQUESTER, CLIENT_STREAM_STREAM, `${T}.http2Client.localAddr`, "net.TCPAddr.IP", "net.TCPAddr.Port"];

const CLIENT_FIELDS: GrpcField[] = [
  { const: "cc_target_off", field: `${GRPC}.ClientConn.target`, required: false, why: "server.address/port" },
  { const: "status_error_s_off", field: `${GRPC}/internal/status.Error.s`, required: false, why: "rpc.grpc.status_code of the error a call ends with" },
  STATUS_STATUS_S,
  SPB_CODE,
  // The connection and HTTP/2 stream of the call, read at finish through cs.attempt: the
  // attempt's transport (an *http2Client, the only ClientTransport) and its transport stream.
  { const: "cs_attempt_off", field: `${GRPC}.clientStream.attempt`, required: false, why: "network.peer.*, network.local.*, beetrace.http2.stream_id" },
  { const: "attempt_t_off", field: `${GRPC}.csAttempt.t`, required: false, goMax: "1.70", why: "network.peer.*, network.local.* (the attempt's transport)" },
  { const: "attempt_transport_off", field: `${GRPC}.csAttempt.transport`, required: false, goMin: "1.71", why: "network.peer.*, network.local.* (the attempt's transport, renamed)" },
  { const: "attempt_s_off", field: `${GRPC}.csAttempt.s`, required: false, goMax: "1.70", why: "beetrace.http2.stream_id (the attempt's stream)" },
  { const: "attempt_transport_stream_off", field: `${GRPC}.csAttempt.transportStream`, required: false, goMin: "1.71", why: "beetrace.http2.stream_id (the attempt's stream, renamed)" },
  { const: "client_stream_stream_off", field: CLIENT_STREAM_STREAM, required: false, goMin: "1.69", why: "where the Stream sits in a ClientStream" },
  STREAM_READ_REQUESTER_FIELD,
  STREAM_ID_FIELD,
  { const: "h2client_remote_addr_off", field: `${T}.http2Client.remoteAddr`, required: false, why: "network.peer.address/port" },
  { const: "h2client_local_addr_off", field: `${T}.http2Client.localAddr`, required: false, why: "network.local.address/port (what merge and live joins match the server's peer end on)" },
  TCPADDR_IP,
  TCPADDR_PORT,
  // Live joins (grpc >= 1.78): the call's context is registered when its attempt is made, and the
  // loopy writer's header handler finds the call from the stream its HEADERS frame names.
  { const: "cs_ctx_off", field: `${GRPC}.clientStream.ctx`, required: false, why: "live joins: the call's context, which its transport stream's context derives from" },
  STREAM_CTX_FIELD,
  { const: "stream_wq_off", field: STREAM_WQ, required: false, goMin: "1.77", why: "live joins: the stream a HEADERS frame belongs to (its wq points into the stream)" },
  { const: "client_stream_ct_off", field: CLIENT_STREAM_CT, required: false, goMin: "1.69", why: "live joins: the stream's connection (local end)" },
  { const: "hf_stream_id_off", field: HF_STREAM_ID, required: false, goMax: "1.82", why: "live joins: the HEADERS frame's stream id" },
  { const: "hf_wq_off", field: HF_WQ, required: false, goMax: "1.82", why: "live joins: the HEADERS frame's stream" },
  { const: "ch_stream_id_off", field: CH_STREAM_ID, required: false, goMin: "1.82", why: "live joins: the HEADERS frame's stream id (clientHeaders, >= 1.82.1)" },
  { const: "ch_wq_off", field: CH_WQ, required: false, goMin: "1.82", why: "live joins: the HEADERS frame's stream (clientHeaders, >= 1.82.1)" },
];



/** The status offset, and how a ClientStream holds its Stream (client_stream_embed: 0 by value
 * or no wrapper, 1 by pointer (grpc 1.69 … 1.76), 2 unknown: the stream id is not read). */
export function clientFlags(ctx: FlagContext): Record<string, number> {
  return { ...spbCodeFlags(ctx), client_stream_embed: streamEmbedsPointer(ctx, CLIENT_STREAM_STREAM) ?? 2 };
}

const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { method: "rpc.method", target: "server.address" };

/** Builds the client span (semconv "RPC client span", gRPC) with the RPC conventions `mode`. */
export function buildClientWith(r: RecordReader, ctx: DecodeContext, out: SpanBuilder, mode: RpcSemconv): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "client");
  let code: number | undefined;
  if (flags & E.GRPC_CLIENT_F_STATUS) code = r.u32("code");
  else if (flags & E.GRPC_CLIENT_F_OTHER_ERROR) code = CODE_UNKNOWN; // status.Code(err) of a non-status error
  const error = code !== undefined && isError("client", code);
  out.name(rpcAttributes(out, r.str("method"), code, error, mode));
  // server.*: the name the call was made to (the target), else the connection's remote end.
  const addr = targetAddress(r.str("target"));
  const peer = flags & E.GRPC_CLIENT_F_PEER ? ipField(r, "peer_ip_size", "peer_ip") : undefined;
  if (addr) {
    out.attr("server.address", addr.host);
    if (addr.port !== undefined) out.attr("server.port", addr.port);
  } else if (peer !== undefined) {
    out.attr("server.address", peer);
    out.attr("server.port", r.u16("peer_port"));
  }
  if (peer !== undefined) {
    out.attr("network.peer.address", peer);
    out.attr("network.peer.port", r.u16("peer_port"));
  }
  // The connection's local end and the HTTP/2 stream: what the server's peer end and stream id
  // match (beetrace merge, live joins).
  const local = flags & E.GRPC_CLIENT_F_LOCAL ? ipField(r, "local_ip_size", "local_ip") : undefined;
  if (local !== undefined) {
    out.attr("network.local.address", local);
    out.attr("network.local.port", r.u16("local_port"));
  }
  if (flags & E.GRPC_CLIENT_F_STREAM_ID) out.attr(H2_STREAM_ID, r.u32("stream_id"));
  if (error) out.error();
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export function buildClient(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  buildClientWith(r, ctx, out, rpcSemconv());
}

export const grpcClient: ProbeManifest = {
  id: CLIENT_PROBE_ID,
  library: LIBRARY,
  object: GRPC_OBJECT,
  uprobes: [
    {
      symbol: `${GRPC}.newClientStream`,
      entryProgram: "grpc_client_entry",
      // Where endOfClientStream is missing (grpc < 1.78), the RETs hand the call over to its
      // *clientStream, and end it when no stream was made.
      returnProgram: "grpc_client_return",
      endMarkers: [
        {
          // The new stream's first attempt: on the calling goroutine, with the *clientStream
          // that finish will later receive (grpc/stream.go).
          choices: [{ symbols: [`${GRPC}.(*clientStream).newAttemptLocked`], program: "grpc_client_bind" }],
          neededIf: "always",
          why: "ties the call to its *clientStream (finish may run on another goroutine)",
        },
        {
          // grpc >= 1.78: newClientStream's deferred cleanup ends here a call whose stream could
          // not be made (earlier releases from 1.4x return such calls without any call to
          // finish: only the RETs see them).
          choices: [{ symbols: [`${GRPC}.endOfClientStream`], program: "grpc_client_failed" }],
          neededIf: "always",
          why: "a call whose stream could not be made (newClientStream's deferred cleanup)",
        },
        {
          // Not an end: live joins (one beetrace, several processes). The transport's loopy
          // writer goroutine handles the call's HEADERS frame here, with its stream id, before
          // writing it (internal/transport/controlbuf.go): the call's span is recorded under
          // {local end, stream id} in bee_conn_spans before the server can see the stream. The
          // frame names its stream only from grpc 1.77 (wq, a field of the stream since then);
          // with the RETs (< 1.78) no marker is placed. One emulated hit per call.
          choices: [
            { symbols: [`${T}.(*loopyWriter).clientHeaderHandler`], program: "grpc_client_headers_v2", fields: [CH_STREAM_ID, CH_WQ, ...LIVE_JOIN_FIELDS] },
            { symbols: [`${T}.(*loopyWriter).headerHandler`], program: "grpc_client_headers_v1", fields: [HF_STREAM_ID, HF_WQ, ...LIVE_JOIN_FIELDS] },
          ],
          neededIf: "if-linked",
          onlyForLiveJoins: true,
          why: "live joins: the call's span under its connection's local end and stream id (not an end; skipped when offsets are unknown)",
        },
      ],
    },
    {
      // grpc ends every stream here: reply received, error, or context cancelled. Placed in
      // every release, whichever way newClientStream's calls are handed over.
      symbol: `${GRPC}.(*clientStream).finish`,
      entryProgram: "grpc_client_end",
      returnProgram: "grpc_client_end",
      entryOnly: true,
    },
  ],
  fields: CLIENT_FIELDS,
  record: { type: E.REC_GRPC_CLIENT, struct: "rec_grpc_client" },
  flags: clientFlags,
  decode: decodeWith(buildClient),
  build: buildClient,
};
