/**
 * @module probes/grpc/object — bpf/grpc.bpf.c, shared by the gRPC server and client probes, and
 * the struct fields both read.
 */
import type { BpfObjectSpec, FieldDecl } from "../probe.ts";
import type { CounterName, MapName, RodataName } from "./grpc.gen.ts";

/** A FieldDecl whose const is checked against the object's generated rodata names. */
export type GrpcField = FieldDecl & { const: RodataName };

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const GRPC_OBJECT: BpfObjectSpec = {
  name: "grpc",
  callMaps: maps("grpc_server_calls", "grpc_client_starts", "grpc_client_streams", "grpc_client_ctxs"),
  callSlots: maps("grpc_server_slots", "grpc_client_start_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (an RPC that never wrote its status, a call that failed before making its stream)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
    counter("conn_joins", { what: "server RPCs without traceparent given a traced client span as parent by their connection and stream" }),
  ],
};

export const LIBRARY = "google.golang.org/grpc";
export const SCOPE_NAME = "beetrace/google.golang.org/grpc";

const GRPC = "google.golang.org/grpc";

/** genproto's google.rpc.Status message (the payload of every grpc status). */
export const SPB_STATUS_CODE = "google.golang.org/genproto/googleapis/rpc/status.Status.Code";
/**
 * Its offset when no DWARF says otherwise. The module is not in offsets.json (it publishes only
 * pseudo-versions, which the tracker cannot list), but its layout is the same in every release:
 * protoc-gen-go's open-struct messages start with state protoimpl.MessageState (8 bytes),
 * sizeCache int32, unknownFields []byte (16..40), then the fields, Code first
 * (googleapis/rpc/status/status.pb.go, checked in the 2020-05 … 2026-09 releases).
 */
export const SPB_STATUS_CODE_DEFAULT = 40;

/** internal/status: Status{s *spb.Status} (used by both sides) */
export const STATUS_STATUS_S: GrpcField = { const: "status_status_s_off", field: `${GRPC}/internal/status.Status.s`, required: false, why: "rpc.grpc.status_code" };
export const SPB_CODE: GrpcField = { const: "spb_status_code_off", field: SPB_STATUS_CODE, required: false, why: "rpc.grpc.status_code" };

const T = "google.golang.org/grpc/internal/transport";
/** transport.Stream.id: the HTTP/2 stream id (beetrace.http2.stream_id; context in) */
export const STREAM_ID = `${T}.Stream.id`;
/** transport.Stream.ctx: the stream's context (server: the handler's derives from it; client:
 * it derives from the call's) */
export const STREAM_CTX = `${T}.Stream.ctx`;
export const STREAM_CTX_FIELD: GrpcField = { const: "stream_ctx_off", field: STREAM_CTX, required: false, why: "parent/child links across goroutines (server); live joins (client: which call a HEADERS frame belongs to)" };
/** transport.Stream.readRequester: only there from grpc 1.77, the release whose ServerStream and
 * ClientStream embed Stream by value (1.69 … 1.76 embed *Stream): tells the two apart. */
export const STREAM_READ_REQUESTER = `${T}.Stream.readRequester`;
export const STREAM_ID_FIELD: GrpcField = { const: "stream_id_off", field: STREAM_ID, required: false, why: "beetrace.http2.stream_id; traceparent in (joins the HEADERS frame to its stream)" };
export const TCPADDR_IP: GrpcField = { const: "tcpaddr_ip_off", field: "net.TCPAddr.IP", required: false, why: "network.peer.address, network.local.address" };
export const TCPADDR_PORT: GrpcField = { const: "tcpaddr_port_off", field: "net.TCPAddr.Port", required: false, why: "network.peer.port, network.local.port" };
export const STREAM_READ_REQUESTER_FIELD: GrpcField = {
  const: "stream_read_requester_off",
  field: STREAM_READ_REQUESTER,
  required: false,
  goMin: "1.77",
  why: "whether ServerStream/ClientStream embed Stream by value (>= 1.77) or by pointer (1.69 … 1.76)",
};

/**
 * 1 when the ServerStream / ClientStream at hand embeds *Stream (grpc 1.69 … 1.76: the struct's
 * first word points to the Stream), 0 when it embeds the Stream itself (>= 1.77) or there is no
 * wrapper (< 1.69). Unknown (the wrapper exists, readRequester's offset is not known either way):
 * undefined, and the caller leaves the stream fields unread.
 */
export function streamEmbedsPointer(ctx: { offset(field: string): number | null | undefined }, wrapper: string): number | undefined {
  const w = ctx.offset(wrapper);
  if (typeof w !== "number") return 0;
  const rr = ctx.offset(STREAM_READ_REQUESTER);
  if (rr === undefined) return undefined;
  return rr === null ? 1 : 0;
}
