/**
 * @module probes/common/header — the common record header (bpf/shared/span.h, struct rec_span)
 * and its flags, for code that handles records of every probe (the session's sampling, the
 * span skeleton). Every BPF object includes span.h, so each object's generated bindings carry the
 * same layout; this module takes it from the net/http object's, the one every build has.
 */
import { ENUMERATORS, STRUCTS } from "../nethttp/nethttp.gen.ts";

/** struct rec_span members: offset and size in bytes. */
export const SPAN_HEADER = STRUCTS.rec_span.members;

/** Where a record's trace id, span id and parent span id are (for code that copies them as bytes: the OTLP encoder). */
export const SPAN_ID_OFFSETS = {
  traceAt: SPAN_HEADER.trace_id.offset,
  spanAt: SPAN_HEADER.span_id.offset,
  parentAt: SPAN_HEADER.parent_span_id.offset,
} as const;

/** enum rec_span_flags (bits 0-7 of rec_span.flags, common to every probe). */
export const SPAN_FLAGS = {
  HAS_PARENT: ENUMERATORS.REC_SPAN_F_HAS_PARENT,
  PARENT_BY_CTX: ENUMERATORS.REC_SPAN_F_PARENT_BY_CTX,
  READ_ERROR: ENUMERATORS.REC_SPAN_F_READ_ERROR,
  END_AT_RET: ENUMERATORS.REC_SPAN_F_END_AT_RET,
  REMOTE_PARENT: ENUMERATORS.REC_SPAN_F_REMOTE_PARENT,
  TRACE_FLAGS_KNOWN: ENUMERATORS.REC_SPAN_F_TRACE_FLAGS_KNOWN,
  SAMPLED: ENUMERATORS.REC_SPAN_F_SAMPLED,
} as const;
