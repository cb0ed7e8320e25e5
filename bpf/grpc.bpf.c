// SPDX-License-Identifier: Apache-2.0
/*
 * grpc.bpf.c — spans for google.golang.org/grpc servers and clients (releases 1.40 … 1.85):
 *   server: grpc.(*Server).handleStream   one SERVER span per RPC served (unary or streaming)
 *   client: grpc.newClientStream          one CLIENT span per RPC made: Invoke (unary) and
 *           NewStream both create their stream here (grpc/call.go invoke, grpc/stream.go)
 *
 * Where the probes sit (docs/probe-placement.md): entry programs at the first emulated
 * instruction of the prologue (the JBE to morestack). Ends:
 *   server: the entry of the transport's WriteStatus ((*http2Server).WriteStatus, renamed
 *           writeStatus when ServerStream.WriteStatus became its wrapper), which grpc calls on the
 *           handler's goroutine once the handler returned (processUnaryRPC, processStreamingRPC,
 *           or handleStream itself for an unknown method): the RPC's last act, and the call that
 *           carries the status (its *status.Status argument). The RETs of handleStream are the
 *           fallback (status then unknown).
 *   client: the entry of (*clientStream).finish(err), which grpc calls exactly once per stream
 *           when it ends: the last message received, an error, or the context cancelled (then
 *           on the goroutine that watches the context, so the call state is keyed by the
 *           *clientStream, not the goroutine). (*clientStream).newAttemptLocked(cs), called on the
 *           calling goroutine while the stream is made, hands the state over from the goroutine
 *           to the stream pointer; endOfClientStream (grpc >= 1.78) ends a call whose stream
 *           could not be made. Before 1.78 such a call is seen only by newClientStream's return,
 *           so there its RETs hand the state over instead (and end the calls that failed).
 * Context in: (*http2Server).operateHeaders, on the transport's reader goroutine, finds a W3C
 * traceparent in the request's HEADERS frame and keeps it under (transport, stream id) for
 * handleStream: one more emulated hit per RPC.
 * Served through (*Server).ServeHTTP (a grpc.Server as an http.Handler): handleStream runs too,
 * with a serverHandlerTransport whose one stream has id 0; the span ends at that transport's
 * WriteStatus and is the child of the net/http server span of the request (by context).
 * Connections: server spans carry the peer end and HTTP/2 stream id; client spans the
 * connection's remote and local ends and the stream id, read at finish through cs.attempt —
 * what beetrace merge matches. Live joins (one beetrace, several processes; grpc >= 1.78 on the
 * client): the loopy writer's HEADERS handler records the call's span under {local end, stream
 * id} in bee_conn_spans (one more emulated hit per call) before the frame is written; a server
 * RPC without a traceparent looks its {peer end, stream id} up there (server_conn_join).
 *
 * One record per span, emitted at the end; entries tolerate the morestack re-run (same stream /
 * same method and conn: ignored); an end with no state is a no-op.
 *
 * Struct field offsets are `volatile const` globals that user space sets before load
 * (src/probes/grpc/ names the Go field behind each).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/span.bpf.h"
#include "include/go_context.bpf.h"
#include "include/record.bpf.h"
#include "include/go_headers.bpf.h"
#include "include/conn_ctx.bpf.h"
#include "shared/span.h"
#include "shared/grpc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(__builtin_offsetof(struct rec_grpc_server, strings) + GRPC_METHOD_CAP + GRPC_TRACESTATE_CAP <= BEE_POS_MASK,
	       "server record fits the scratch bounds");
_Static_assert(__builtin_offsetof(struct rec_grpc_client, strings) + GRPC_METHOD_CAP + GRPC_TARGET_CAP <= BEE_POS_MASK,
	       "client record fits the scratch bounds");

/* How a server span ends (the end program decides). */
enum grpc_end {
	GRPC_END_STATUS = 0, /* the transport's WriteStatus: the status is its argument */
	GRPC_END_RET = 1,    /* a RET of handleStream: status unknown */
};

/* Defaults used only when the object is loaded without user space setting them. */
#ifndef GRPC_DEFAULT_OPTIONAL_OFF
#define GRPC_DEFAULT_OPTIONAL_OFF GO_OFF_UNSET
#endif

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
/* google.golang.org/grpc/internal/transport.Stream (embedded first in ServerStream from 1.69) */
volatile const __u32 stream_method_off = GO_OFF_UNSET; /* method string */
volatile const __u32 stream_ctx_off = GRPC_DEFAULT_OPTIONAL_OFF; /* ctx context.Context */
volatile const __u32 server_stream_stream_off = GRPC_DEFAULT_OPTIONAL_OFF; /* ServerStream.Stream (>= 1.69) */
volatile const __u32 client_stream_stream_off = GRPC_DEFAULT_OPTIONAL_OFF; /* ClientStream.Stream (>= 1.69) */
/* How those wrappers hold the Stream: 0 by value (>= 1.77) or no wrapper (< 1.69), 1 by pointer
 * (*Stream, 1.69 … 1.76), 2 unknown (the stream's fields are not read). Set by user space. */
volatile const __u32 server_stream_embed = 0;
volatile const __u32 client_stream_embed = 0;
/* Stream.readRequester: not read; its offset is known or known absent (user space decides the
 * embedding from it). Declared so the manifest's field list checks against this object. */
volatile const __u32 stream_read_requester_off = GRPC_DEFAULT_OPTIONAL_OFF;
/* transport.http2Server: the remote address */
volatile const __u32 h2server_peer_off = GRPC_DEFAULT_OPTIONAL_OFF;        /* peer peer.Peer (>= 1.60) */
volatile const __u32 peer_addr_off = GRPC_DEFAULT_OPTIONAL_OFF;            /* peer.Peer.Addr net.Addr */
volatile const __u32 h2server_remote_addr_off = GRPC_DEFAULT_OPTIONAL_OFF; /* remoteAddr net.Addr (< 1.60) */
/* net.TCPAddr */
volatile const __u32 tcpaddr_ip_off = GRPC_DEFAULT_OPTIONAL_OFF;   /* IP net.IP ([]byte) */
volatile const __u32 tcpaddr_port_off = GRPC_DEFAULT_OPTIONAL_OFF; /* Port int */
/* status: internal/status.Error{s *Status}, internal/status.Status{s *spb.Status}, spb.Status.Code */
volatile const __u32 status_error_s_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 status_status_s_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 spb_status_code_off = GRPC_DEFAULT_OPTIONAL_OFF;
/* transport.Stream.id (the HTTP/2 stream id) and the HEADERS frame the server read
 * (golang.org/x/net/http2.MetaHeadersFrame.Fields, FrameHeader.StreamID): context in */
volatile const __u32 stream_id_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 mhf_fields_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 fh_stream_id_off = GRPC_DEFAULT_OPTIONAL_OFF;
/* grpc.ClientConn.target string */
volatile const __u32 cc_target_off = GRPC_DEFAULT_OPTIONAL_OFF;
/* The connection and stream of a client call, read at its end: clientStream.attempt
 * (*csAttempt); csAttempt.t / .transport (transport.ClientTransport: *http2Client) and
 * csAttempt.s / .transportStream (*Stream, *ClientStream from 1.69), renamed in 1.71;
 * http2Client.remoteAddr / .localAddr (net.Addr). */
volatile const __u32 cs_attempt_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 attempt_t_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 attempt_transport_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 attempt_s_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 attempt_transport_stream_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 h2client_remote_addr_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 h2client_local_addr_off = GRPC_DEFAULT_OPTIONAL_OFF;
/* Live joins (client side, grpc >= 1.78): clientStream.ctx, Stream.wq (a writeQuota inside the
 * stream from 1.77), ClientStream.ct (*http2Client), and the HEADERS frame the loopy writer
 * handles: headerFrame.streamID/.wq (< 1.82.1), clientHeaders.streamID/.wq (>= 1.82.1). */
volatile const __u32 cs_ctx_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 stream_wq_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 client_stream_ct_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 hf_stream_id_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 hf_wq_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 ch_stream_id_off = GRPC_DEFAULT_OPTIONAL_OFF;
volatile const __u32 ch_wq_off = GRPC_DEFAULT_OPTIONAL_OFF;

/* Server RPCs given a parent by connection (not a loss: a count for -v). */
__u64 conn_joins = 0;

/* ---- per-call state ---- */
struct server_call {
	__u64 stream; /* *transport.Stream / *ServerStream: identifies the call */
	__u64 ctx;    /* Stream.ctx data pointer registered in bee_ctx_spans, or 0 */
	__u64 start_ns;
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags;
	__u16 peer_port;
	__u8 peer_ip_size;
	__u8 peer_ip[16];
	__u32 stream_id; /* HTTP/2 stream id; 0 through ServeHTTP (serverHandlerTransport) */
	__u64 tracestate_ptr; /* the tracestate value that came with a valid traceparent */
	__s64 tracestate_len;
};

struct client_call {
	__u64 cc;         /* *ClientConn */
	__u64 method_ptr; /* method string header (the caller's string: alive for the call) */
	__s64 method_len;
	__u64 start_ns;
	__u64 g;          /* goroutine that made the stream (its grpc_client_starts entry) */
	__u64 cs;         /* *clientStream once newAttemptLocked ran, else 0 */
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags;
	__u8 finishing; /* finish of another stream runs on this goroutine: its endOfClientStream is not ours */
	__u8 conn_written; /* conn_key names this call in bee_conn_spans (live joins) */
	__u64 cs_ctx;      /* clientStream.ctx data pointer registered in grpc_client_ctxs, or 0 */
	struct bee_conn_key conn_key;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct server_call);
} grpc_server_calls SEC(".maps");

/*
 * The server's calls in flight by goroutine in slots (bpf/include/slots.bpf.h) in front of
 * grpc_server_calls, as net/http's: an LRU update, lookup and delete per RPC cost the handler's
 * goroutine ~1-2 µs (bench/RESULTS.md). Behind global functions, verified once.
 */
#define GRPC_SERVER_SLOT_BITS 12
volatile const __u32 grpc_server_slot_mask = (1u << GRPC_SERVER_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(grpc_server_slot, struct server_call, st, grpc_server_slots, grpc_server_slot_of, GRPC_SERVER_SLOT_BITS, grpc_server_slot_mask)

/* What grpc_server_calls and grpc_client_starts hold (slots.bpf.h). */
struct grpc_map_fill {
	__s64 server;
	__s64 client_starts;
};
BEE_FILL_COUNTS(struct grpc_map_fill, grpc_map_fill, grpc_fill)

/* grpc_server_call_of/_drop/_store (_get, _put unused): slots.bpf.h. */
BEE_CALL_TABLE(grpc_server_call, struct server_call, grpc_server_slot, grpc_server_slot_of, grpc_server_calls, BEE_FILL_FIELD(grpc_fill, server))

/* At an entry for `stream`: what goroutine g has in flight (enum call_peek_result); a stale
 * call's registered context in *stale_ctx, and whether it is in the map in *stale_in_map. */
__noinline int grpc_server_call_peek(__u64 g, __u64 stream, __u64 *stale_ctx, int *stale_in_map)
{
	if (!stale_ctx || !stale_in_map)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct server_call *old = grpc_server_call_of(g, grpc_server_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (old->stream == stream)
		return CALL_PEEK_SAME;
	*stale_ctx = old->ctx;
	*stale_in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* At an end: copies goroutine g's call into *out and frees its slot or entry, unless the end
 * is a marker (at_marker) for another stream than the call's. */
__noinline int grpc_server_call_take(__u64 g, int at_marker, __u64 marker_stream, struct server_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct grpc_server_slot *slot = grpc_server_slot_of(g);
	int in_slot = 0;
	struct server_call *stp = grpc_server_call_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if (at_marker && stp->stream != marker_stream)
		return CALL_TAKE_OTHER;
	*out = *stp;
	grpc_server_call_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

/* newClientStream in progress, by goroutine */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct client_call);
} grpc_client_starts SEC(".maps");

/*
 * The same in slots by goroutine (slots.bpf.h), in front of grpc_client_starts, behind global
 * functions that copy a call in and out (as net/http's client): six programs read or change a
 * call being made, and slot-or-map branches inlined into each would multiply what the verifier
 * walks. An LRU update, lookups and a delete per call were ~1 µs of the calling goroutine's time.
 */
#define GRPC_CLIENT_SLOT_BITS 12
volatile const __u32 grpc_client_slot_mask = (1u << GRPC_CLIENT_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(grpc_client_start_slot, struct client_call, st, grpc_client_start_slots, grpc_client_start_slot_of, GRPC_CLIENT_SLOT_BITS,
	       grpc_client_slot_mask)

/* Where a program copies a call being made (this CPU's, for this run). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct client_call);
} grpc_client_spare SEC(".maps");

static __always_inline struct client_call *grpc_client_spare_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&grpc_client_spare, &zero);
}

/* grpc_client_start_of/_drop/_store/_get/_put: slots.bpf.h. */
BEE_CALL_TABLE(grpc_client_start, struct client_call, grpc_client_start_slot, grpc_client_start_slot_of, grpc_client_starts,
	       BEE_FILL_FIELD(grpc_fill, client_starts))

/* At newClientStream's entry for (cc, method): what goroutine g is making already (enum
 * call_peek_result); for a stale one, *unended: it never got a stream (a call that never ended),
 * *stale_in_map: it is in the map. */
__noinline int grpc_client_start_peek(__u64 g, __u64 cc, __u64 method_ptr, int *unended, int *stale_in_map)
{
	if (!unended || !stale_in_map)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct client_call *old = grpc_client_start_of(g, grpc_client_start_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (!old->cs && old->cc == cc && old->method_ptr == method_ptr)
		return CALL_PEEK_SAME;
	*unended = !old->cs;
	*stale_in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* Which of goroutine g's calls grpc_client_start_take removes. */
enum client_start_match {
	START_ANY = 0,           /* whichever it is making */
	START_STREAM = 1,        /* only the one whose stream is cs */
	START_STREAM_OR_NONE = 2, /* the one whose stream is cs, or one with no stream yet */
};

/* Removes the call goroutine g is making, copied into *out, when it matches (enum
 * client_start_match); CALL_TAKE_OTHER: g is making another call. Another goroutine may take it
 * (a stream finished elsewhere): the slot is then given back from there. */
__noinline int grpc_client_start_take(__u64 g, int match, __u64 cs, struct client_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct grpc_client_start_slot *slot = grpc_client_start_slot_of(g);
	int in_slot = 0;
	struct client_call *stp = grpc_client_start_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if ((match == START_STREAM && stp->cs != cs) || (match == START_STREAM_OR_NONE && stp->cs && stp->cs != cs))
		return CALL_TAKE_OTHER;
	*out = *stp;
	grpc_client_start_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

/* Sets the finishing mark of the call goroutine g is making; returns the mark it had (-1: none). */
__noinline int grpc_client_start_mark(__u64 g, int finishing)
{
	int in_slot = 0;
	struct client_call *st = grpc_client_start_of(g, grpc_client_start_slot_of(g), &in_slot);
	if (!st)
		return -1;
	int was = st->finishing;
	st->finishing = (__u8)finishing;
	return was;
}

/* streams made and not finished, by *clientStream (LRU: a stream the program never finishes
 * — it neither reads to the end nor cancels its context — must not hold a slot for good) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* *clientStream */
	__type(value, struct client_call);
} grpc_client_streams SEC(".maps");

/* Calls being made, by their clientStream.ctx data pointer (-> *clientStream): the loopy writer
 * finds the call of a HEADERS frame through its stream's context, which derives from it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} grpc_client_ctxs SEC(".maps");

/* Whether the dynamic type behind an itab is *net.TCPAddr (1) or not (2), by itab address: an
 * itab never moves or changes (runtime itabs are persistent), so the shape check of tcp_addr —
 * six reads of type descriptors — runs once per itab instead of once per address read. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u8);
} grpc_tcpaddr_itabs SEC(".maps");

/* A traceparent read from a request's HEADERS frame, until the stream's handler starts. */
struct incoming_key {
	__u64 transport; /* *http2Server */
	__u64 stream_id;
};

struct incoming_ctx {
	__u8 trace_id[BEE_TRACE_ID_SIZE];
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u8 flags; /* W3C trace-flags */
	__u64 tracestate_ptr;
	__s64 tracestate_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, struct incoming_key);
	__type(value, struct incoming_ctx);
} grpc_incoming SEC(".maps");

/* Makes every record struct and enum of grpc.h appear in the object's BTF. */
const struct rec_grpc_server *grpc_btf_server __attribute__((unused));
const struct rec_grpc_client *grpc_btf_client __attribute__((unused));
const enum rec_type *grpc_btf_type __attribute__((unused));
const enum rec_span_flags *grpc_btf_span_flags __attribute__((unused));
const enum rec_grpc_server_flags *grpc_btf_server_flags __attribute__((unused));
const enum rec_grpc_client_flags *grpc_btf_client_flags __attribute__((unused));
const enum grpc_end *grpc_btf_end __attribute__((unused));

/* Go runtime type descriptors (go_types.bpf.h): the kind of a struct type's first field, and
 * its field count. */
#define GO_TYPE_SIZE_OFF 0
#define GO_STRUCTFIELD_SIZE 24 /* internal/abi.StructField: Name, Typ, Offset */

/* The type of the first field of the struct a pointer type points to; 0 unless `ptr_type` is a
 * pointer to a struct of `nfields` fields and `size` bytes (0 = any size). */
static __always_inline __u64 ptr_struct_field0(__u64 ptr_type, __u64 nfields, __u64 size)
{
	int err = 0;
	if (go_type_kind(ptr_type) != GO_KIND_POINTER)
		return 0;
	__u64 elem = go_read_u64(ptr_type + GO_PTRTYPE_ELEM_OFF, &err);
	if (err || go_type_kind(elem) != GO_KIND_STRUCT)
		return 0;
	if (size && go_read_u64(elem + GO_TYPE_SIZE_OFF, &err) != size)
		return 0;
	__u64 fields = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF, &err);
	__u64 n = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF + 8, &err);
	if (err || !fields || (nfields && n != nfields))
		return 0;
	return go_read_u64(fields + GO_STRUCTFIELD_TYP_OFF, &err);
}

/* The status code of a *internal/status.Status (0 when a read fails: *err set). */
static __always_inline __u32 status_code(__u64 st, int *err)
{
	__u64 spb = go_read_u64(st + status_status_s_off, err);
	/* spb.Status{} with Code 0 is OK; a nil *spb.Status too (status.(*Status).Code) */
	if (!spb)
		return 0;
	__u32 code = 0;
	if (bpf_probe_read_user(&code, sizeof(code), (const void *)(spb + spb_status_code_off)) != 0)
		*err = 1;
	return code;
}

/*
 * The code of an error value {itab, data}: *flags gets GRPC_CLIENT_F_STATUS when it is known
 * (nil error, io.EOF, or a status error), GRPC_CLIENT_F_OTHER_ERROR for another error.
 * A *internal/status.Error is recognised by its type's shape, not its address (stripped
 * binaries have no itab symbols): a pointer to a 1-field 8-byte struct whose field points to a
 * 1-field 8-byte struct (status.Status) whose field points to a struct (spb.Status). io.EOF
 * (errors.New("EOF"): a pointer to a struct holding one string) ends a stream normally
 * (grpc/stream.go, clientStream.finish).
 */
static __always_inline __u32 error_code(__u64 itab, __u64 data, __u16 *flags, int *err)
{
	if (!itab) {
		*flags |= GRPC_CLIENT_F_STATUS;
		return 0;
	}
	if (status_error_s_off == GO_OFF_UNSET || status_status_s_off == GO_OFF_UNSET || spb_status_code_off == GO_OFF_UNSET)
		return 0;
	int e = 0;
	__u64 type = go_read_u64(itab + GO_ITAB_TYPE_OFF, &e);
	if (e || !type)
		return 0;
	__u64 f = ptr_struct_field0(type, 1, 8);
	__u64 g2 = f ? ptr_struct_field0(f, 1, 8) : 0;
	__u64 g3 = g2 ? ptr_struct_field0(g2, 0, 0) : 0;
	if (g3 && data) {
		__u64 st = go_read_u64(data + status_error_s_off, err);
		if (st) {
			*flags |= GRPC_CLIENT_F_STATUS;
			return status_code(st, err);
		}
	}
	__u64 text = go_any_text(type, data);
	if (text) {
		struct go_string s = {};
		char b[4] = {};
		if (bpf_probe_read_user(&s, sizeof(s), (const void *)text) == 0 && s.len == 3 &&
		    bpf_probe_read_user(b, 3, (const void *)s.ptr) == 0 && b[0] == 'E' && b[1] == 'O' && b[2] == 'F') {
			*flags |= GRPC_CLIENT_F_STATUS;
			return 0;
		}
	}
	*flags |= GRPC_CLIENT_F_OTHER_ERROR;
	return 0;
}

/*
 * A net.Addr interface at `at` that holds a *net.TCPAddr{IP, Port, Zone}: its IP (4 or 16 bytes)
 * into ip, and its port. Recognised by shape — a pointer to a 3-field struct whose first field
 * is a slice (net.UnixAddr{Name, Net} starts with a string) — since stripped and PIE binaries
 * have no itab symbols to compare. 1 when read, else 0 (*err set on a failed read).
 */
static __always_inline int tcp_addr(__u64 at, __u8 *ip_out, __u8 *size_out, __u16 *port_out, int *err)
{
	if (tcpaddr_ip_off == GO_OFF_UNSET || tcpaddr_port_off == GO_OFF_UNSET)
		return 0;
	struct go_iface addr = {};
	if (bpf_probe_read_user(&addr, sizeof(addr), (const void *)at) != 0) {
		*err = 1;
		return 0;
	}
	if (!addr.tab || !addr.data)
		return 0;
	__u64 itab = addr.tab;
	__u8 *known = bpf_map_lookup_elem(&grpc_tcpaddr_itabs, &itab);
	if (!known) {
		int e = 0;
		__u64 type = go_read_u64(addr.tab + GO_ITAB_TYPE_OFF, &e);
		__u64 f0 = e ? 0 : ptr_struct_field0(type, 3, 0);
		__u8 v = f0 && go_type_kind(f0) == GO_KIND_SLICE ? 1 : 2;
		if (!e) /* a failed read is not a verdict */
			bpf_map_update_elem(&grpc_tcpaddr_itabs, &itab, &v, BPF_ANY);
		if (v != 1)
			return 0;
	} else if (*known != 1) {
		return 0;
	}
	/* IP []byte then Port int (net.TCPAddr in every Go release): one read when adjacent */
	struct {
		struct go_string ip; /* a slice's first two words: ptr, len */
		__u64 cap;
		__s64 port;
	} a = {};
	__s64 port;
	if (tcpaddr_port_off == tcpaddr_ip_off + 24) {
		if (bpf_probe_read_user(&a, sizeof(a), (const void *)(addr.data + tcpaddr_ip_off)) != 0) {
			*err = 1;
			return 0;
		}
		port = a.port;
	} else {
		if (bpf_probe_read_user(&a.ip, sizeof(a.ip), (const void *)(addr.data + tcpaddr_ip_off)) != 0) {
			*err = 1;
			return 0;
		}
		port = (__s64)go_read_u64(addr.data + tcpaddr_port_off, err);
	}
	struct go_string ip = a.ip;
	if ((ip.len != 4 && ip.len != 16) || port < 0 || port > 65535)
		return 0;
	if (bpf_probe_read_user(ip_out, ip.len == 4 ? 4 : 16, (const void *)ip.ptr) != 0) {
		*err = 1;
		return 0;
	}
	*size_out = (__u8)ip.len;
	*port_out = (__u16)port;
	return 1;
}

/* Copies the remote TCP address of the server transport (interface data `t`, an *http2Server)
 * into st. */
static __always_inline void server_peer(__u64 t, struct server_call *st, int *err)
{
	if (!t)
		return;
	__u32 off = GO_OFF_UNSET;
	if (h2server_peer_off != GO_OFF_UNSET && peer_addr_off != GO_OFF_UNSET)
		off = h2server_peer_off + peer_addr_off;
	else if (h2server_remote_addr_off != GO_OFF_UNSET)
		off = h2server_remote_addr_off;
	if (off == GO_OFF_UNSET)
		return;
	if (tcp_addr(t + off, st->peer_ip, &st->peer_ip_size, &st->peer_port, err))
		st->flags |= GRPC_SERVER_F_PEER;
}

/*
 * Where the transport.Stream sits in what handleStream / finish is handed: the pointer itself
 * (< 1.69), inside the ServerStream/ClientStream (>= 1.77), or behind its first word (1.69 …
 * 1.76 embed *Stream). 0 when unknown.
 */
static __always_inline __u64 stream_base(__u64 stream, __u32 wrapper_off, __u32 embed, int *err)
{
	if (!stream || embed > 1)
		return 0;
	if (wrapper_off == GO_OFF_UNSET)
		return stream;
	if (embed == 1)
		return go_read_u64(stream + wrapper_off, err);
	return stream + wrapper_off;
}

/*
 * Live join (one beetrace tracing several processes): an RPC that came without a traceparent,
 * on a connection whose peer end and HTTP/2 stream id are those of a client call another traced
 * process has in flight (bee_conn_spans, include/conn_ctx.bpf.h), is that call's child. Same
 * rules as the net/http server's: not the process's own calls, not an entry older than the
 * request, a loopback peer only within one network namespace.
 */
static __always_inline void server_conn_join(struct server_call *st, __u64 now)
{
	if (!bee_conn_join_on)
		return;
	if (!(st->flags & GRPC_SERVER_F_PEER) || !st->stream_id)
		return;
	struct bee_conn_key key = {};
	bee_conn_key_addr(&key, st->peer_ip, st->peer_ip_size);
	key.port = st->peer_port;
	key.stream_id = st->stream_id;
	const struct bee_conn_span *c = bee_conn_parent(&key, now);
	if (!c)
		return;
	bee_conn_adopt(&st->sc, st->parent_span_id, c);
	st->flags |= REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT | GRPC_SERVER_F_CONN_JOINED;
	bee_count(&conn_joins);
}

/* The traceparent the request's HEADERS frame carried (grpc_server_headers_*), if any: 1 when
 * one was taken. */
static __always_inline int server_context_in(__u64 t, struct server_call *st)
{
	if (!t || !st->stream_id)
		return 0;
	struct incoming_key k = {.transport = t, .stream_id = st->stream_id};
	struct incoming_ctx *in = bpf_map_lookup_elem(&grpc_incoming, &k);
	if (!in)
		return 0;
	__builtin_memcpy(st->sc.trace_id, in->trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(st->parent_span_id, in->parent_span_id, BEE_SPAN_ID_SIZE);
	st->flags |= REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT;
	/* trace-flags bit 0: sampled (W3C Trace Context) */
	st->sc.trace_flags = bee_remote_flags(st->sc.trace_id, in->flags & 1);
	st->tracestate_ptr = in->tracestate_ptr;
	st->tracestate_len = in->tracestate_len;
	bpf_map_delete_elem(&grpc_incoming, &k);
	return 1;
}

/*
 * hpack.HeaderField{Name, Value string; Sensitive bool} (golang.org/x/net/http2/hpack/hpack.go,
 * unchanged since 2014): 40 bytes, Value at 16. MetaHeadersFrame embeds *HeadersFrame first,
 * which embeds FrameHeader first (golang.org/x/net/http2/frame.go): the frame header is at
 * *(frame + 0). A request carries a handful of fields; more than GRPC_MAX_FIELDS are not looked at.
 */
#define HPACK_FIELD_SIZE 40
#define HPACK_FIELD_VALUE_OFF 16
#define GRPC_MAX_FIELDS 32

struct field_walk {
	__u64 fields;
	__u64 n;
	__u64 traceparent; /* address of the value's string header, or 0 */
	__u64 tracestate;
};

static long field_check(__u32 i, void *arg)
{
	struct field_walk *w = arg;
	if ((__u64)i >= w->n)
		return 1;
	__u64 f = w->fields + (__u64)i * HPACK_FIELD_SIZE;
	struct go_string name = {};
	if (bpf_probe_read_user(&name, sizeof(name), (const void *)f) != 0)
		return 1;
	if (name.len != 11 && name.len != 10)
		return 0;
	char b[12] = {};
	if (bpf_probe_read_user(b, 11, (const void *)name.ptr) != 0)
		return 0;
	/* gRPC metadata keys are lowercase on the wire (HTTP/2 requires it, RFC 9113 §8.2.1). */
	if (name.len == 11 && b[0] == 't' && b[1] == 'r' && b[2] == 'a' && b[3] == 'c' && b[4] == 'e' && b[5] == 'p' &&
	    b[6] == 'a' && b[7] == 'r' && b[8] == 'e' && b[9] == 'n' && b[10] == 't')
		w->traceparent = f + HPACK_FIELD_VALUE_OFF;
	else if (name.len == 10 && b[0] == 't' && b[1] == 'r' && b[2] == 'a' && b[3] == 'c' && b[4] == 'e' && b[5] == 's' &&
		 b[6] == 't' && b[7] == 'a' && b[8] == 't' && b[9] == 'e')
		w->tracestate = f + HPACK_FIELD_VALUE_OFF;
	return 0;
}

/* A request's HEADERS frame, read by the transport's reader goroutine before the stream's
 * handler goroutine starts: a valid traceparent is kept under (transport, stream id). */
static __always_inline int server_headers(__u64 t, __u64 frame)
{
	if (!t || !frame || mhf_fields_off == GO_OFF_UNSET || fh_stream_id_off == GO_OFF_UNSET || stream_id_off == GO_OFF_UNSET)
		return 0;
	int err = 0;
	struct field_walk w = {};
	w.fields = go_read_u64(frame + mhf_fields_off, &err);
	__s64 n = (__s64)go_read_u64(frame + mhf_fields_off + 8, &err);
	if (err || !w.fields || n <= 0)
		return 0;
	w.n = n > GRPC_MAX_FIELDS ? GRPC_MAX_FIELDS : (__u64)n;
	bpf_loop(GRPC_MAX_FIELDS, field_check, &w, 0);
	if (!w.traceparent)
		return 0;
	struct incoming_ctx in = {};
	if (go_parse_traceparent(w.traceparent, in.trace_id, in.parent_span_id, &in.flags) != 0)
		return 0; /* invalid: ignored (W3C Trace Context: start a new trace) */
	if (w.tracestate) {
		struct go_string ts = {};
		if (bpf_probe_read_user(&ts, sizeof(ts), (const void *)w.tracestate) == 0 && ts.len > 0) {
			in.tracestate_ptr = ts.ptr;
			in.tracestate_len = ts.len;
		}
	}
	__u64 hf = go_read_u64(frame, &err); /* *HeadersFrame: its FrameHeader is first */
	__u32 id = 0;
	if (!hf || bpf_probe_read_user(&id, sizeof(id), (const void *)(hf + fh_stream_id_off)) != 0)
		return 0;
	struct incoming_key k = {.transport = t, .stream_id = id};
	if (bpf_map_update_elem(&grpc_incoming, &k, &in, BPF_ANY) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* grpc < 1.60: func (t *http2Server) operateHeaders(frame *http2.MetaHeadersFrame, handle, traceCtx): t = RAX, frame = RBX */
SEC("uprobe")
int grpc_server_headers_v1(struct pt_regs *ctx)
{
	return server_headers(GO_PARAM1(ctx), GO_PARAM2(ctx));
}

/* grpc >= 1.60: func (t *http2Server) operateHeaders(ctx context.Context, frame *http2.MetaHeadersFrame, handle):
 * t = RAX, ctx = RBX/RCX, frame = RDI */
SEC("uprobe")
int grpc_server_headers_v2(struct pt_regs *ctx)
{
	return server_headers(GO_PARAM1(ctx), GO_PARAM4(ctx));
}

/*
 * func (s *Server) handleStream(t transport.ServerTransport, stream *transport.Stream, trInfo *traceInfo)
 * (grpc >= 1.69: stream *transport.ServerStream; later releases dropped trInfo)
 * s = RAX, t = itab RBX / data RCX, stream = RDI.
 */
SEC("uprobe")
int grpc_server_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 t = GO_PARAM3(ctx);
	__u64 stream = GO_PARAM4(ctx);
	int err = 0;

	__u64 stale_ctx = 0;
	int stale_in_map = 0;
	int seen = grpc_server_call_peek(g, stream, &stale_ctx, &stale_in_map);
	if (seen == CALL_PEEK_SAME)
		return 0; /* morestack re-ran the prologue */
	if (seen == CALL_PEEK_STALE) {
		/* The earlier RPC on this goroutine (a server worker) never reached WriteStatus. */
		bee_count(&entry_replaced);
		if (stale_ctx)
			bee_ctx_span_clear(stale_ctx);
	}

	struct server_call st = {};
	st.start_ns = now;
	st.stream = stream;
	__u64 base = stream_base(stream, server_stream_stream_off, server_stream_embed, &err);
	if (base && stream_ctx_off != GO_OFF_UNSET)
		st.ctx = go_read_u64(base + stream_ctx_off + 8, &err);
	if (base && stream_id_off != GO_OFF_UNSET && bpf_probe_read_user(&st.stream_id, sizeof(st.stream_id), (const void *)(base + stream_id_off)) != 0)
		err = 1;
	if (st.stream_id) {
		/* grpc's own HTTP/2 transport (*http2Server): its streams have odd ids from 1 */
		st.flags |= GRPC_SERVER_F_STREAM_ID;
		server_peer(t, &st, &err);
		if (!server_context_in(t, &st)) {
			bee_new_trace_id(&st.sc);
			server_conn_join(&st, now);
		}
	} else {
		/* Served through (*Server).ServeHTTP: the serverHandlerTransport makes the request's one
		 * stream with id 0 (internal/transport/handler_server.go, HandleStreams), on a context
		 * derived from the http.Request's, and runs handleStream on a goroutine of its own. The
		 * net/http server span of that request (which read any traceparent header) is the
		 * parent, found through the context. */
		int by_ctx = 0;
		struct span_ctx *parent = st.ctx ? bee_find_parent(g, st.ctx, &by_ctx) : 0;
		if (parent && by_ctx) {
			__builtin_memcpy(st.sc.trace_id, parent->trace_id, BEE_TRACE_ID_SIZE);
			__builtin_memcpy(st.parent_span_id, parent->span_id, BEE_SPAN_ID_SIZE);
			st.flags |= REC_SPAN_F_HAS_PARENT | REC_SPAN_F_PARENT_BY_CTX;
			st.sc.trace_flags = parent->trace_flags;
		} else {
			bee_new_trace_id(&st.sc);
		}
	}
	bee_new_span_id(&st.sc);
	if (err)
		bee_count(&read_errors);

	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (grpc_server_call_store(g, &st, stale_in_map) != 0) {
		bee_count(&inflight_full);
		return 0;
	}
	bee_goroutine_span_set(g, &st.sc);
	if (st.ctx && bee_ctx_span_set(st.ctx, &st.sc) != 0)
		bee_count(&ctx_map_full);
	return 0;
}

static __always_inline int server_end(struct pt_regs *ctx, __u64 marker_stream, __u64 status, __u32 how)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;

	struct server_call st = {};
	/* WriteStatus for another stream is not this RPC's end (CALL_TAKE_OTHER). */
	int taken = grpc_server_call_take(g, how == GRPC_END_STATUS, marker_stream, &st);
	if (taken == CALL_TAKE_NONE) {
		if (how == GRPC_END_RET)
			bee_count(&return_without_entry);
		return 0;
	}
	if (taken != CALL_TAKE_OK)
		return 0;
	bee_goroutine_span_clear(g);
	if (st.ctx)
		bee_ctx_span_clear(st.ctx);

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_grpc_server *r = (struct rec_grpc_server *)buf;
	__u16 flags = st.flags | st.sc.trace_flags;
	__u16 truncated = 0;
	if (how == GRPC_END_RET)
		flags |= REC_SPAN_F_END_AT_RET;
	r->h.type = REC_GRPC_SERVER;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);
	r->code = 0;
	r->stream_id = st.stream_id;
	if (status && status_status_s_off != GO_OFF_UNSET && spb_status_code_off != GO_OFF_UNSET) {
		r->code = status_code(status, &err);
		flags |= GRPC_SERVER_F_STATUS;
	}
	r->peer_port = st.peer_port;
	r->peer_ip_size = st.peer_ip_size;
	__builtin_memcpy(r->peer_ip, st.peer_ip, 16);

	__u64 base = stream_base(st.stream, server_stream_stream_off, server_stream_embed, &err);
	__u32 pos = __builtin_offsetof(struct rec_grpc_server, strings);
	r->method_len = 0;
	if (base)
		r->method_len = bee_put_go_string(buf, &pos, base + stream_method_off, GRPC_METHOD_CAP, &truncated, 0, &err);
	r->tracestate_len = 0;
	if (st.tracestate_ptr && st.tracestate_len > 0) {
		__u32 n = GRPC_TRACESTATE_CAP;
		if ((__u64)st.tracestate_len <= GRPC_TRACESTATE_CAP) {
			n = (__u32)st.tracestate_len;
		} else {
			truncated |= 2;
			bee_count(&truncated_strings);
		}
		__u32 p = pos & BEE_POS_MASK;
		if (n > GRPC_TRACESTATE_CAP)
			n = GRPC_TRACESTATE_CAP;
		if (bpf_probe_read_user(buf + p, n, (const void *)st.tracestate_ptr) == 0) {
			pos = p + n;
			r->tracestate_len = (__u8)n;
		} else {
			err = 1;
		}
	}
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/* func (t *http2Server) WriteStatus(s *Stream, st *status.Status) error (writeStatus(s *ServerStream, …)
 * from the release that made ServerStream.WriteStatus its wrapper): t = RAX, s = RBX, st = RCX. */
SEC("uprobe")
int grpc_server_end_status(struct pt_regs *ctx)
{
	return server_end(ctx, GO_PARAM2(ctx), GO_PARAM3(ctx), GRPC_END_STATUS);
}

/* At each RET of handleStream, for binaries where WriteStatus cannot be probed. */
SEC("uprobe")
int grpc_server_return(struct pt_regs *ctx)
{
	return server_end(ctx, 0, 0, GRPC_END_RET);
}

/*
 * func newClientStream(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (_ ClientStream, err error)
 * ctx = itab RAX / data RBX, desc = RCX, cc = RDI, method = RSI (ptr) / R8 (len).
 */
SEC("uprobe")
int grpc_client_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 ctx_data = GO_PARAM2(ctx);
	__u64 cc = GO_PARAM4(ctx);
	__u64 method_ptr = GO_PARAM5(ctx);
	__s64 method_len = (__s64)GO_PARAM6(ctx);

	int unended = 0, stale_in_map = 0;
	int seen = grpc_client_start_peek(g, cc, method_ptr, &unended, &stale_in_map);
	if (seen == CALL_PEEK_SAME)
		return 0; /* morestack re-ran the prologue */
	/* A stream still open keeps its state by *clientStream; a call that failed before making a
	 * stream (resolver wait, config selector) never ended. */
	if (seen == CALL_PEEK_STALE && unended)
		bee_count(&entry_replaced);

	struct client_call st = {};
	st.start_ns = now;
	st.cc = cc;
	st.g = g;
	st.method_ptr = method_ptr;
	st.method_len = method_len;
	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (grpc_client_start_store(g, &st, seen == CALL_PEEK_STALE && stale_in_map) != 0)
		bee_count(&inflight_full);
	return 0;
}

/*
 * The connection and HTTP/2 stream of a client call's attempt (cs: its *clientStream, at finish:
 * cs.attempt is the last attempt, its transport and stream still referenced): the remote and
 * local TCP ends of the *http2Client and the stream id. What the server's peer end and stream id
 * match (beetrace merge). Fields stay unset (no flag) where an offset is unknown or the attempt
 * had no transport or stream.
 */
static __always_inline void client_conn(__u64 cs, struct rec_grpc_client *r, __u16 *flags, int *err)
{
	if (!cs || cs_attempt_off == GO_OFF_UNSET)
		return;
	__u64 a = go_read_u64(cs + cs_attempt_off, err);
	if (!a)
		return;
	__u32 t_off = attempt_transport_off != GO_OFF_UNSET ? attempt_transport_off : attempt_t_off;
	if (t_off != GO_OFF_UNSET) {
		__u64 t = go_read_u64(a + t_off + 8, err); /* interface data: the *http2Client */
		if (t && h2client_remote_addr_off != GO_OFF_UNSET &&
		    tcp_addr(t + h2client_remote_addr_off, r->peer_ip, &r->peer_ip_size, &r->peer_port, err))
			*flags |= GRPC_CLIENT_F_PEER;
		if (t && h2client_local_addr_off != GO_OFF_UNSET &&
		    tcp_addr(t + h2client_local_addr_off, r->local_ip, &r->local_ip_size, &r->local_port, err))
			*flags |= GRPC_CLIENT_F_LOCAL;
	}
	__u32 s_off = attempt_transport_stream_off != GO_OFF_UNSET ? attempt_transport_stream_off : attempt_s_off;
	if (s_off == GO_OFF_UNSET || stream_id_off == GO_OFF_UNSET)
		return;
	__u64 base = stream_base(go_read_u64(a + s_off, err), client_stream_stream_off, client_stream_embed, err);
	if (!base)
		return;
	__u32 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (const void *)(base + stream_id_off)) != 0) {
		*err = 1;
		return;
	}
	/* 0: the stream was made but never got its id (it waited for stream quota) */
	if (id) {
		r->stream_id = id;
		*flags |= GRPC_CLIENT_F_STREAM_ID;
	}
}

static __always_inline void client_emit(const struct client_call *st, __u64 cs, __u64 now, __u64 err_itab, __u64 err_data, __u16 extra)
{
	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return;
	int err = 0;
	struct rec_grpc_client *r = (struct rec_grpc_client *)buf;
	__u16 flags = st->flags | extra;
	__u16 truncated = 0;
	r->h.type = REC_GRPC_CLIENT;
	r->h.start_ns = st->start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st->sc, (st->flags & REC_SPAN_F_HAS_PARENT) ? st->parent_span_id : 0);
	r->code = error_code(err_itab, err_data, &flags, &err);
	r->stream_id = 0;
	r->peer_port = 0;
	r->local_port = 0;
	r->peer_ip_size = 0;
	r->local_ip_size = 0;
	__builtin_memset(r->peer_ip, 0, 16);
	__builtin_memset(r->local_ip, 0, 16);
	client_conn(cs, r, &flags, &err);

	__u32 pos = __builtin_offsetof(struct rec_grpc_client, strings);
	/* The method string header came in registers: copy its bytes directly. */
	r->method_len = 0;
	if (st->method_len > 0 && st->method_ptr) {
		__u32 n = GRPC_METHOD_CAP;
		if ((__u64)st->method_len <= GRPC_METHOD_CAP) {
			n = (__u32)st->method_len;
		} else {
			truncated |= 1;
			bee_count(&truncated_strings);
		}
		__u32 p = pos & BEE_POS_MASK;
		if (n > GRPC_METHOD_CAP)
			n = GRPC_METHOD_CAP;
		if (bpf_probe_read_user(buf + p, n, (const void *)st->method_ptr) == 0) {
			pos = p + n;
			r->method_len = (__u8)n;
		} else {
			err = 1;
		}
	}
	r->target_len = 0;
	if (cc_target_off != GO_OFF_UNSET && st->cc)
		r->target_len = bee_put_go_string(buf, &pos, st->cc + cc_target_off, GRPC_TARGET_CAP, &truncated, 1, &err);
	bee_finish_record(buf, pos, flags, truncated, err);
}

/*
 * func (cs *clientStream) newAttemptLocked(...): cs = RAX. grpc calls it on the new stream while
 * newClientStream makes it (grpc/stream.go; later releases from withRetry's first pass), so the
 * goroutine's call now has its *clientStream: the state is copied under that key (finish may
 * run on another goroutine) and kept under the goroutine until the stream is made (a failure
 * then ends it at endOfClientStream). Retries call it again: the stream is known, nothing to do.
 */
SEC("uprobe")
int grpc_client_bind(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 cs = GO_PARAM1(ctx);
	struct client_call *stp = grpc_client_spare_buf();
	if (!stp || !grpc_client_start_get(g, stp) || stp->cs)
		return 0;
	stp->cs = cs;
	/* Live joins: the call's context, for the loopy writer (client_headers), which is placed
	 * only when this beetrace traces several processes (EndMarkerDecl.onlyForLiveJoins): else
	 * the map update here and its delete at the end (~1 µs a call) would serve nothing. */
	if (bee_conn_join_on && cs_ctx_off != GO_OFF_UNSET && stream_wq_off != GO_OFF_UNSET) {
		int err = 0;
		__u64 c = go_read_u64(cs + cs_ctx_off + 8, &err);
		if (c && bpf_map_update_elem(&grpc_client_ctxs, &c, &cs, BPF_ANY) == 0)
			stp->cs_ctx = c;
	}
	grpc_client_start_put(g, stp);
	if (bpf_map_update_elem(&grpc_client_streams, &cs, stp, BPF_ANY) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* Removes what live joins keep for a call that ended: its context's entry, and its span's entry
 * in bee_conn_spans if that still names it. */
static __always_inline void forget_conn(const struct client_call *st)
{
	if (st->cs_ctx) {
		__u64 c = st->cs_ctx;
		bpf_map_delete_elem(&grpc_client_ctxs, &c);
	}
	if (!st->conn_written)
		return;
	struct bee_conn_key key = st->conn_key;
	bee_conn_forget(&key, st->sc.span_id);
}

/* func (cs *clientStream) finish(err error): cs = RAX, err = itab RBX / data RCX. grpc calls it
 * when the stream ends (later calls return at cs.finished): only the first finds state. */
SEC("uprobe")
int grpc_client_end(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 cs = GO_PARAM1(ctx);
	__u64 g = GO_GOROUTINE(ctx);
	struct client_call *stp = bpf_map_lookup_elem(&grpc_client_streams, &cs);
	if (!stp) {
		/* A stream that failed while newClientStream was still making it, on this goroutine,
		 * before its state was handed over (grpc < 1.78 hands over at newClientStream's RET). */
		struct client_call *sp = grpc_client_spare_buf();
		if (!sp || grpc_client_start_take(g, START_STREAM_OR_NONE, cs, sp) != CALL_TAKE_OK)
			return 0;
		struct client_call st = *sp;
		client_emit(&st, cs, now, GO_PARAM2(ctx), GO_PARAM3(ctx), 0);
		return 0;
	}
	struct client_call st = *stp;
	bpf_map_delete_elem(&grpc_client_streams, &cs);
	forget_conn(&st);
	/* finish calls endOfClientStream next (grpc >= 1.6x): on this goroutine, another call still
	 * being made must not take it for its own failure. The usual case — finish on the goroutine
	 * that made the call, whose entry is still this call's — is one lookup. */
	struct client_call *sp = grpc_client_spare_buf();
	int mine = sp ? grpc_client_start_take(g, START_STREAM, cs, sp) : CALL_TAKE_NONE;
	if (mine != CALL_TAKE_OK) {
		if (mine == CALL_TAKE_OTHER)
			grpc_client_start_mark(g, 1);
		if (st.g != g && sp) /* the goroutine that made it still has it (grpc < 1.78) */
			grpc_client_start_take(st.g, START_STREAM, cs, sp);
	}
	client_emit(&st, cs, now, GO_PARAM2(ctx), GO_PARAM3(ctx), 0);
	return 0;
}

/*
 * func endOfClientStream(cc *ClientConn, err error, opts ...CallOption): cc = RAX, err = itab RBX
 * / data RCX. newClientStream's deferred cleanup calls it when making the stream failed (and
 * finish calls it for every finished stream: those already ended above).
 */
SEC("uprobe")
int grpc_client_failed(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	int was = grpc_client_start_mark(g, 0);
	if (was != 0)
		return 0; /* none (-1), or finish of another stream ran on this goroutine (1) */
	if (!GO_PARAM2(ctx))
		return 0; /* not a failure: a finished stream's cleanup */
	struct client_call *stp = grpc_client_spare_buf();
	if (!stp || grpc_client_start_take(g, START_ANY, 0, stp) != CALL_TAKE_OK)
		return 0;
	struct client_call st = *stp;
	if (st.cs) {
		/* the stream's copy knows whether its HEADERS frame went out */
		struct client_call *sp = bpf_map_lookup_elem(&grpc_client_streams, &st.cs);
		if (sp)
			forget_conn(sp);
		bpf_map_delete_elem(&grpc_client_streams, &st.cs);
	} else {
		forget_conn(&st);
	}
	client_emit(&st, 0, now, GO_PARAM2(ctx), GO_PARAM3(ctx), GRPC_CLIENT_F_NOT_STARTED);
	return 0;
}

/*
 * At each RET of newClientStream, where endOfClientStream does not exist (grpc < 1.78: a stream
 * that fails while being made, e.g. UNAVAILABLE with no connection ready, is not finished, and
 * nothing but the return tells): ClientStream = itab RAX / data RBX, error = itab RCX / data RDI.
 * A stream made: its state moves to the *clientStream for finish. None: the call ends here.
 */
SEC("uprobe")
int grpc_client_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 cs = GO_PARAM2(ctx);
	struct client_call *stp = grpc_client_spare_buf();
	if (!stp || grpc_client_start_take(g, START_ANY, 0, stp) != CALL_TAKE_OK)
		return 0; /* finish already ended it (it failed inside), or the entry was missed */
	struct client_call st = *stp;
	if (cs && !GO_PARAM3(ctx)) {
		st.cs = cs;
		if (bpf_map_update_elem(&grpc_client_streams, &cs, &st, BPF_ANY) != 0)
			bee_count(&inflight_full);
		return 0;
	}
	client_emit(&st, 0, now, GO_PARAM3(ctx), GO_PARAM4(ctx), GRPC_CLIENT_F_NOT_STARTED | REC_SPAN_F_END_AT_RET);
	return 0;
}

/*
 * Live joins, client side (grpc >= 1.78). The loopy writer goroutine of the call's transport
 * handles the HEADERS frame that opens a stream here, before writing it
 * (internal/transport/controlbuf.go: headerHandler → originateStream → writeHeader, from 1.82.1
 * clientHeaderHandler → writeHeader): the stream id is assigned (http2Client.NewStream, under the
 * control buffer's lock) and the server cannot have seen the stream yet. The frame's wq points to
 * the writeQuota inside its stream (from 1.77: `wq: &s.wq`), whose context derives from the
 * call's clientStream.ctx (registered by grpc_client_bind): that finds the call. Its span is
 * written under {the connection's local end, stream id} for the server probe of another traced
 * process (server_conn_join); finish removes it. A server's response headers (no wq) and frames
 * of untraced calls are left alone.
 */
#define GRPC_CTX_WALK_MAX 8

static __always_inline int client_headers(__u64 hdr, __u32 id_off, __u32 wq_off)
{
	if (!hdr || id_off == GO_OFF_UNSET || wq_off == GO_OFF_UNSET || stream_wq_off == GO_OFF_UNSET || stream_ctx_off == GO_OFF_UNSET ||
	    client_stream_ct_off == GO_OFF_UNSET || client_stream_stream_off == GO_OFF_UNSET || client_stream_embed != 0 ||
	    h2client_local_addr_off == GO_OFF_UNSET)
		return 0;
	int err = 0;
	__u64 wq = go_read_u64(hdr + wq_off, &err);
	if (err || !wq)
		return 0;
	__u32 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (const void *)(hdr + id_off)) != 0 || !id)
		return 0;
	__u64 base = wq - stream_wq_off;                    /* the Stream */
	__u64 cstream = base - client_stream_stream_off;    /* the ClientStream embedding it */
	__u64 c = go_read_u64(base + stream_ctx_off + 8, &err);
	__u64 *csp = 0;
	for (int i = 0; i < GRPC_CTX_WALK_MAX; i++) {
		if (!c)
			break;
		csp = bpf_map_lookup_elem(&grpc_client_ctxs, &c);
		if (csp)
			break;
		struct go_iface parent = {};
		if (bpf_probe_read_user(&parent, sizeof(parent), (const void *)c) != 0 || !parent.tab)
			break;
		c = parent.data;
	}
	if (!csp)
		return 0;
	__u64 cs = *csp;
	struct client_call *st = bpf_map_lookup_elem(&grpc_client_streams, &cs);
	if (!st)
		return 0;
	__u64 t = go_read_u64(cstream + client_stream_ct_off, &err);
	if (!t)
		return 0;
	__u8 ip[16] = {};
	__u8 size = 0;
	__u16 port = 0;
	if (!tcp_addr(t + h2client_local_addr_off, ip, &size, &port, &err))
		return 0;
	struct bee_conn_key key = {};
	bee_conn_key_addr(&key, ip, size);
	key.port = port;
	key.stream_id = id;
	struct span_ctx sc = st->sc;
	/* a root's sampler decision, or the flags inherited from its parent (grpc_client_entry) */
	sc.trace_flags = st->flags & (REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED);
	if (bee_conn_publish(&key, &sc, st->start_ns) != 0)
		return 0;
	st->conn_key = key;
	st->conn_written = 1;
	return 0;
}

/* grpc 1.78 … 1.82.0: func (l *loopyWriter) headerHandler(h *headerFrame) error: h = RBX
 * (also runs for a server's response headers, which have no wq). */
SEC("uprobe")
int grpc_client_headers_v1(struct pt_regs *ctx)
{
	return client_headers(GO_PARAM2(ctx), hf_stream_id_off, hf_wq_off);
}

/* grpc >= 1.82.1: func (l *loopyWriter) clientHeaderHandler(hdr *clientHeaders) error: hdr = RBX */
SEC("uprobe")
int grpc_client_headers_v2(struct pt_regs *ctx)
{
	return client_headers(GO_PARAM2(ctx), ch_stream_id_off, ch_wq_off);
}
