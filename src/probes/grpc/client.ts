/**
 * @module probes/grpc/client — manifest of the gRPC client probe: one CLIENT span per RPC made.
 * (*ClientConn).Invoke (unary, through grpc's invoke) and (*ClientConn).NewStream (streams) both
 * make their stream in google.golang.org/grpc.newClientStream; the span runs from there to
 * (*clientStream).finish, which grpc calls when the stream ends: the reply received, an error,
 * or the context cancelled — or, for a call whose stream could not be made, to
 * endOfClientStream (grpc >= 1.78) or newClientStream's return (bpf/grpc.bpf.c).
 */
import type { Attributes, Span } from "../../spans/model.ts";
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { baseSpan, noteTruncated } from "../common/span.ts";
import { ENUMERATORS as E } from "./grpc.gen.ts";
import { GRPC_OBJECT, LIBRARY, SCOPE_NAME, SPB_CODE, STATUS_STATUS_S, type GrpcField } from "./object.ts";
import { CODE_UNKNOWN, isError, rpcAttributes, rpcSemconv, targetAddress, type RpcSemconv } from "./semconv.ts";
import { spbCodeFlags } from "./server.ts";

export const CLIENT_PROBE_ID = "grpc.client";

const GRPC = "google.golang.org/grpc";

const CLIENT_FIELDS: GrpcField[] = [
  { const: "cc_target_off", field: `${GRPC}.ClientConn.target`, required: false, why: "server.address/port" },
  { const: "status_error_s_off", field: `${GRPC}/internal/status.Error.s`, required: false, why: "rpc.grpc.status_code of the error a call ends with" },
  STATUS_STATUS_S,
  SPB_CODE,
];

/** Builds the client span (semconv "RPC client span", gRPC). */
export function decodeClientWith(r: RecordReader, ctx: DecodeContext, mode: RpcSemconv): Span {
  const flags = r.flags;
  const attrs: Attributes = {};
  let code: number | undefined;
  if (flags & E.GRPC_CLIENT_F_STATUS) code = r.u32("code");
  else if (flags & E.GRPC_CLIENT_F_OTHER_ERROR) code = CODE_UNKNOWN; // status.Code(err) of a non-status error
  const error = code !== undefined && isError("client", code);
  const name = rpcAttributes(attrs, r.str("method"), code, error, mode);
  const addr = targetAddress(r.str("target"));
  if (addr) {
    attrs["server.address"] = addr.host;
    if (addr.port !== undefined) attrs["server.port"] = addr.port;
  }
  const span = baseSpan(r, ctx, SCOPE_NAME, name, "client", attrs);
  if (error) span.status = { code: "error" };
  noteTruncated(attrs, r, { method: "rpc.method", target: "server.address" });
  return span;
}

export function decodeClient(r: RecordReader, ctx: DecodeContext): Span {
  return decodeClientWith(r, ctx, rpcSemconv());
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
  flags: spbCodeFlags,
  decode: decodeClient,
};
