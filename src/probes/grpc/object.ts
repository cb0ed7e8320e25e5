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
  callMaps: maps("grpc_server_calls", "grpc_client_starts", "grpc_client_streams"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (an RPC that never wrote its status, a call that failed before making its stream)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
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
