// SPDX-License-Identifier: Apache-2.0
/*
 * http3.bpf.c — spans for HTTP/3 servers and clients built with github.com/quic-go/quic-go/http3
 * (what Caddy serves HTTP/3 with). quic-go never goes through net/http's server or Transport:
 * it builds a std *http.Request itself and calls the Handler, and its client is a RoundTripper
 * of its own, so the net/http probes see none of it.
 *
 * Server: (*RawServerConn).handleRequestStream (http3/server_conn.go, v0.59 … v0.66) decodes
 * the request, then runs the handler inside an immediately-called closure that recovers panics:
 *
 *	var panicked bool
 *	func() { defer func() { if p := recover(); p != nil { panicked = true; … } }(); handler.ServeHTTP(r, req) }()
 *
 * The compiler turns that direct closure call into a plain call with the captured variables as
 * arguments, in the order the closure body first uses them (cmd/compile, directClosureCall):
 * &panicked, c, handler (itab, data), r (*responseWriter), req — in AX, BX, CX+DI, SI, R8 by the
 * register ABI. Two shapes (enum http3_server_shape), each with its own programs:
 *   v0.59 … v0.65: handleRequestStream.func2, R8 = &req (func1, the trailer callback made before
 *                  it, also captures req, which is assigned after: captured by reference);
 *   v0.66:         handleRequestStream.func1, R8 = req (the trailer callback is gone).
 * That call is the span: its entry is the handler's start, with the final *http.Request (after
 * WithContext: children derive their contexts from its ctx) and the ResponseWriter. The end is
 * the entry of the closure's deferred recover (func2.1; func1.1 from v0.66), which runs on the
 * handler's goroutine as soon as the handler returns or panics (runtime.g._panic tells which):
 * an emulated JBE like the entry, two emulated hits per request. Without g._panic's offset the
 * end is at the closure's RETs (single-stepped; the recover makes the closure return normally),
 * reading the panicked flag the recover set; a RET ends only a span its own closure began (in
 * v0.59 … v0.65 func1 is the trailer callback, which can run during the handler on its goroutine).
 * The argument registers are a compiler convention, not an API: the entry checks that the
 * request it found has ProtoMajor 3 (requestFromHeaders sets it, http3/headers.go) and
 * counts unexpected_args otherwise, so a release that reorders the closure leaves no span
 * rather than a wrong one (v0.59 … v0.65's trailer callback, probed as a v0.66 handler closure
 * because it has that name, is turned away the same way).
 *
 * Client: (*Transport).RoundTrip → RoundTripOpt → … → (*ClientConn).RoundTrip (http3/transport.go,
 * http3/client.go); all take (receiver, req *http.Request) and return (*http.Response, error).
 * RoundTripOpt (every Transport request, dialling included) and ClientConn.RoundTrip (a
 * ClientConn used on its own) are probed; a call nested in one already running on the goroutine
 * is the same request and is left to the outer one, whose RETs end the span.
 *
 * One record per span; per-call state keyed by goroutine; a morestack re-run of a prologue
 * (same request) is ignored. Struct offsets are `volatile const`s set by user space
 * (src/probes/http3/ names the Go field behind each).
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
#include "include/go_http.bpf.h"
#include "include/slots.bpf.h"
#include "shared/span.h"
#include "shared/http3.h"

/* The client record's request strings are written by go_http.bpf.h: same caps, same flag bits,
 * the five lengths consecutive in its order. */
_Static_assert(BEE_HTTP_METHOD_CAP == HTTP3_METHOD_CAP && BEE_HTTP_SCHEME_CAP == HTTP3_SCHEME_CAP && BEE_HTTP_HOST_CAP == HTTP3_HOST_CAP &&
		       BEE_HTTP_PATH_CAP == HTTP3_PATH_CAP,
	       "go_http.bpf.h caps");
_Static_assert(BEE_HTTP_URL_QUERY == HTTP3_CLIENT_F_QUERY && BEE_HTTP_URL_USER == HTTP3_CLIENT_F_USER &&
		       BEE_HTTP_URL_PASSWORD == HTTP3_CLIENT_F_PASSWORD && BEE_HTTP_URL_OPAQUE == HTTP3_CLIENT_F_OPAQUE,
	       "go_http.bpf.h flags");
_Static_assert(__builtin_offsetof(struct rec_http3_client, scheme_len) == __builtin_offsetof(struct rec_http3_client, method_len) + 1 &&
		       __builtin_offsetof(struct rec_http3_client, url_host_len) == __builtin_offsetof(struct rec_http3_client, method_len) + 2 &&
		       __builtin_offsetof(struct rec_http3_client, path_len) == __builtin_offsetof(struct rec_http3_client, method_len) + 3 &&
		       __builtin_offsetof(struct rec_http3_client, req_host_len) == __builtin_offsetof(struct rec_http3_client, method_len) + 4,
	       "rec_http3_client: struct bee_http_request_lens order");

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(__builtin_offsetof(struct rec_http3_server, strings) + HTTP3_METHOD_CAP + HTTP3_PATH_CAP + HTTP3_HOST_CAP +
			       HTTP3_REMOTE_CAP + HTTP3_PATTERN_CAP + HTTP3_TRACESTATE_CAP <= BEE_POS_MASK,
	       "server record fits the scratch bounds");
_Static_assert(__builtin_offsetof(struct rec_http3_client, strings) + HTTP3_METHOD_CAP + HTTP3_SCHEME_CAP + HTTP3_HOST_CAP +
			       HTTP3_PATH_CAP + HTTP3_HOST_CAP <= BEE_POS_MASK,
	       "client record fits the scratch bounds");

/* Which handler closure a server span began in (its RETs end it). */
enum http3_server_shape {
	HTTP3_SERVER_REQ_BY_REF = 1, /* handleRequestStream.func2(&panicked, c, handler, r, &req): v0.59 … v0.65 */
	HTTP3_SERVER_REQ_BY_VAL = 2, /* handleRequestStream.func1(&panicked, c, handler, r, req): v0.66 */
};

/* Where a server span ends (the end program says). */
enum http3_server_end {
	HTTP3_END_RET = 0,      /* a RET of the handler closure */
	HTTP3_END_DEFERRED = 1, /* the closure's deferred recover: the handler returned or is panicking */
};

/* Which client function began a call (only that function's RETs end it); outer first. */
enum http3_client_level {
	HTTP3_CLIENT_TRANSPORT = 1, /* (*Transport).RoundTripOpt */
	HTTP3_CLIENT_CONN = 2,      /* (*ClientConn).RoundTrip */
};

/* The request quic-go's server builds says HTTP/3 (http3/headers.go: ProtoMajor = 3). */
#define HTTP3_PROTO_MAJOR 3

/* Stack pointer at a uprobe. */
#if defined(__TARGET_ARCH_x86)
#define HTTP3_SP(ctx) ((__u64)(ctx)->rsp)
#elif defined(__TARGET_ARCH_arm64)
#define HTTP3_SP(ctx) ((__u64)((const struct user_pt_regs *)(ctx))->sp)
#endif
/* &panicked farther than this from SP is not on the goroutine's stack (kept as an address). */
#define HTTP3_STACK_SPAN (1ull << 30)

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
/* net/http.Request */
volatile const __u32 req_proto_major_off = GO_OFF_UNSET; /* ProtoMajor int */
volatile const __u32 req_proto_minor_off = GO_OFF_UNSET; /* ProtoMinor int */
volatile const __u32 req_remote_addr_off = GO_OFF_UNSET; /* RemoteAddr string */
volatile const __u32 req_ctx_off = GO_OFF_UNSET;         /* ctx context.Context (optional) */
volatile const __u32 req_pattern_off = GO_OFF_UNSET;     /* Pattern string (Go >= 1.23; optional) */
volatile const __u32 req_header_off = GO_OFF_UNSET;      /* Header Header (optional: context in) */
/* net/http.Response */
volatile const __u32 resp_status_code_off = GO_OFF_UNSET; /* StatusCode int */
/* net/url.URL */
/* net/url.Userinfo */
/* github.com/quic-go/quic-go/http3.responseWriter */
volatile const __u32 rw_status_off = GO_OFF_UNSET;   /* status int (optional) */
volatile const __u32 rw_hijacked_off = GO_OFF_UNSET; /* hijacked bool (optional) */
/* runtime.g: a panic in progress while the deferred recover runs (runtime/runtime2.go) */
volatile const __u32 g_panic_off = GO_OFF_UNSET; /* _panic *_panic */
/* the runtime's map layout, to walk Request.Header (go_headers.bpf.h) */
volatile const __u32 map_mode = GO_MAP_NONE;           /* enum go_map_mode */
volatile const __u32 map_dirptr_off = GO_OFF_UNSET;   /* internal/runtime/maps.Map.dirPtr */
volatile const __u32 map_dirlen_off = GO_OFF_UNSET;   /* internal/runtime/maps.Map.dirLen */
volatile const __u32 table_groups_off = GO_OFF_UNSET; /* internal/runtime/maps.table.groups */
volatile const __u32 groups_data_off = GO_OFF_UNSET;  /* internal/runtime/maps.groupsReference.data */
volatile const __u32 groups_mask_off = GO_OFF_UNSET;  /* internal/runtime/maps.groupsReference.lengthMask */
volatile const __u32 hmap_b_off = GO_OFF_UNSET;       /* runtime.hmap.B */
volatile const __u32 hmap_buckets_off = GO_OFF_UNSET; /* runtime.hmap.buckets */

/* The handler closure's arguments did not look like quic-go's (see the header comment). */
__u64 unexpected_args = 0;

/* ---- per-call state ---- */
struct server_call {
	__u64 req;      /* *http.Request handed to the handler: identifies the call */
	__u64 rw;       /* *responseWriter */
	__s64 panicked; /* where the bool the deferred recover sets lives: its distance from SP at the
	                 * closure's entry, or its address when it is not on the stack (panicked_abs) */
	__u8 panicked_abs;
	__u64 ctx;      /* Request.ctx data pointer registered in bee_ctx_spans, or 0 */
	__u64 start_ns;
	__u64 tracestate; /* string header of the tracestate value that came with a traceparent, or 0 */
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags; /* REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT when a traceparent came in */
	__u8 shape;  /* enum http3_server_shape */
};

struct client_call {
	__u64 req;
	__u64 start_ns;
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags;
	__u8 level; /* enum http3_client_level */
};

/* LRU: a call that never ends (the goroutine died mid-handler) must not fill the map for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct server_call);
} http3_server_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct client_call);
} http3_client_calls SEC(".maps");

/*
 * The calls in flight by goroutine in slots (bpf/include/slots.bpf.h) in front of the two maps,
 * as net/http's: an LRU update, lookup and delete per request otherwise. The accessors are
 * global functions, verified once.
 */
#define HTTP3_SLOT_BITS 12
volatile const __u32 http3_slot_mask = (1u << HTTP3_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(http3_server_slot, struct server_call, st, http3_server_slots, http3_server_slot_of, HTTP3_SLOT_BITS, http3_slot_mask)
BEE_SLOT_TABLE(http3_client_slot, struct client_call, st, http3_client_slots, http3_client_slot_of, HTTP3_SLOT_BITS, http3_slot_mask)

/* What the two maps hold (slots.bpf.h). */
struct http3_map_fill {
	__s64 server;
	__s64 client;
};
BEE_FILL_COUNTS(struct http3_map_fill, http3_map_fill, http3_fill)

/* http3_server_call_of/_drop/_store and http3_client_call_of/_drop/_store: slots.bpf.h. */
BEE_CALL_TABLE(http3_server_call, struct server_call, http3_server_slot, http3_server_slot_of, http3_server_calls, BEE_FILL_FIELD(http3_fill, server))
BEE_CALL_TABLE(http3_client_call, struct client_call, http3_client_slot, http3_client_slot_of, http3_client_calls, BEE_FILL_FIELD(http3_fill, client))

/* At a server entry for request req: what goroutine g has in flight (enum call_peek_result); a
 * stale call's registered context in *stale_ctx, whether it is in the map in *stale_in_map. */
__noinline int http3_server_call_peek(__u64 g, __u64 req, __u64 *stale_ctx, int *stale_in_map)
{
	if (!stale_ctx || !stale_in_map)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct server_call *old = http3_server_call_of(g, http3_server_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (old->req == req)
		return CALL_PEEK_SAME;
	*stale_ctx = old->ctx;
	*stale_in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* At a server end: copies goroutine g's call into *out and frees its slot or entry; OTHER: a RET
 * (at_ret) of another closure than the one the call began in (shape). */
__noinline int http3_server_call_take(__u64 g, int at_ret, __u32 shape, struct server_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct http3_server_slot *slot = http3_server_slot_of(g);
	int in_slot = 0;
	struct server_call *stp = http3_server_call_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if (at_ret && stp->shape != shape)
		return CALL_TAKE_OTHER;
	*out = *stp;
	http3_server_call_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

/* At a client entry of `level` for request req: SAME also for a call nested in an outer one (the
 * outer call's span covers it); STALE: one that never ended (*stale_in_map: in the map). */
__noinline int http3_client_call_peek(__u64 g, __u64 req, __u32 level, int *stale_in_map)
{
	if (!stale_in_map)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct client_call *old = http3_client_call_of(g, http3_client_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (old->req == req || old->level < level)
		return CALL_PEEK_SAME;
	*stale_in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* At a client end of `level`: the call, taken; OTHER: a nested call returning. */
__noinline int http3_client_call_take(__u64 g, __u32 level, struct client_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct http3_client_slot *slot = http3_client_slot_of(g);
	int in_slot = 0;
	struct client_call *stp = http3_client_call_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if (stp->level != level)
		return CALL_TAKE_OTHER;
	*out = *stp;
	http3_client_call_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

/* Makes the record structs and enums appear in the object's BTF (user space generates its
 * decoders from it). */
const struct rec_http3_server *http3_btf_server __attribute__((unused));
const struct rec_http3_client *http3_btf_client __attribute__((unused));
const enum rec_type *http3_btf_type __attribute__((unused));
const enum rec_span_flags *http3_btf_span_flags __attribute__((unused));
const enum rec_http3_server_flags *http3_btf_server_flags __attribute__((unused));
const enum rec_http3_client_flags *http3_btf_client_flags __attribute__((unused));
const enum http3_client_level *http3_btf_client_level __attribute__((unused));
const enum http3_server_shape *http3_btf_server_shape __attribute__((unused));
const enum http3_server_end *http3_btf_server_end __attribute__((unused));
const enum bee_sampler *http3_btf_sampler __attribute__((unused));
const enum go_map_mode *http3_btf_map_mode __attribute__((unused));

/* The groups (Swiss tables) or buckets (classic maps, overflow chains followed) of the header
 * map m that go_walk_headers looks at; small maps only (go_headers.bpf.h says why). */
static __always_inline void header_groups(__u64 m, struct go_header_walk *w)
{
	int err = 0;
	w->mode = map_mode;
	w->ngroups = 0;
	if (map_mode == GO_MAP_SWISS) {
		if (map_dirptr_off == GO_OFF_UNSET || map_dirlen_off == GO_OFF_UNSET)
			return;
		__u64 dir = go_read_u64(m + map_dirptr_off, &err);
		__s64 dirlen = (__s64)go_read_u64(m + map_dirlen_off, &err);
		if (!dir || err)
			return;
		if (dirlen == 0) { /* dirPtr is the map's one group */
			w->groups[0] = dir;
			w->ngroups = 1;
			return;
		}
		if (dirlen != 1 || table_groups_off == GO_OFF_UNSET || groups_data_off == GO_OFF_UNSET || groups_mask_off == GO_OFF_UNSET)
			return;
		__u64 table = go_read_u64(dir, &err);
		if (!table)
			return;
		__u64 groups = go_read_u64(table + table_groups_off + groups_data_off, &err);
		__u64 mask = go_read_u64(table + table_groups_off + groups_mask_off, &err);
		if (!groups || err)
			return;
		for (int g = 0; g < GO_MAP_MAX_GROUPS; g++) {
			if ((__u64)g > mask)
				break;
			w->groups[g] = groups + (__u64)g * GO_SWISS_GROUP_SIZE;
			w->ngroups = g + 1;
		}
	} else if (map_mode == GO_MAP_BUCKETS) {
		if (hmap_b_off == GO_OFF_UNSET || hmap_buckets_off == GO_OFF_UNSET)
			return;
		__u8 b = 0;
		if (bpf_probe_read_user(&b, 1, (const void *)(m + hmap_b_off)) != 0)
			return;
		__u64 buckets = go_read_u64(m + hmap_buckets_off, &err);
		__u64 n = 1ull << (b & 7);
		__u32 k = 0;
		for (int i = 0; i < GO_MAP_MAX_GROUPS; i++) {
			if ((__u64)i >= n || !buckets || k >= GO_MAP_MAX_GROUPS)
				break;
			__u64 bucket = buckets + (__u64)i * GO_BUCKET_SIZE;
			for (int o = 0; o < 2 && bucket && k < GO_MAP_MAX_GROUPS; o++) {
				w->groups[k & (GO_MAP_MAX_GROUPS - 1)] = bucket;
				k++;
				bucket = go_read_u64(bucket + GO_BUCKET_OVERFLOW_OFF, &err);
			}
		}
		w->ngroups = k;
	}
}

/* Context in: a valid W3C traceparent in Request.Header gives the span the caller's trace, its
 * span as parent and its sampled flag; an invalid one is ignored (W3C Trace Context). */
static __always_inline void server_context_in(__u64 req, struct server_call *st)
{
	if (map_mode == GO_MAP_NONE || req_header_off == GO_OFF_UNSET)
		return;
	int err = 0;
	__u64 m = go_read_u64(req + req_header_off, &err);
	if (!m)
		return;
	struct go_header_walk w = {};
	header_groups(m, &w);
	if (w.ngroups == 0)
		return;
	go_walk_headers(&w);
	struct go_found_headers f = w.found;
	if (!f.traceparent)
		return;
	__u8 flags = 0;
	struct span_ctx in = {};
	__u8 parent[BEE_SPAN_ID_SIZE] = {};
	if (go_parse_traceparent(f.traceparent, in.trace_id, parent, &flags) != 0)
		return;
	__builtin_memcpy(st->sc.trace_id, in.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(st->parent_span_id, parent, BEE_SPAN_ID_SIZE);
	st->flags = REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT;
	/* trace-flags bit 0: sampled (W3C Trace Context) */
	st->sc.trace_flags = bee_remote_flags(st->sc.trace_id, flags & 1);
	st->tracestate = f.tracestate;
}

/*
 * The handler closure's entry: &panicked = AX, r (*responseWriter) = SI, and in R8 &req (shape
 * HTTP3_SERVER_REQ_BY_REF) or req (HTTP3_SERVER_REQ_BY_VAL); see the top of the file.
 */
static __always_inline int server_start(struct pt_regs *ctx, __u64 now, __u8 shape)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 panicked = GO_PARAM1(ctx);
	__u64 rw = GO_PARAM5(ctx);
	__u64 r8 = GO_PARAM6(ctx);
	int err = 0;

	__u64 req = shape == HTTP3_SERVER_REQ_BY_REF ? (r8 ? go_read_u64(r8, &err) : 0) : r8;
	if (!req || !rw || !panicked || err || (__s64)go_read_u64(req + req_proto_major_off, &err) != HTTP3_PROTO_MAJOR || err) {
		bee_count(&unexpected_args);
		return 0;
	}

	__u64 stale_ctx = 0;
	int stale_in_map = 0;
	int seen = http3_server_call_peek(g, req, &stale_ctx, &stale_in_map);
	if (seen == CALL_PEEK_SAME)
		return 0; /* morestack re-ran the prologue: already recorded */
	if (seen == CALL_PEEK_STALE) {
		bee_count(&entry_replaced);
		if (stale_ctx)
			bee_ctx_span_clear(stale_ctx);
	}

	struct server_call st = {};
	st.start_ns = now;
	st.req = req;
	st.rw = rw;
	/* The handler may grow the goroutine's stack, which moves it: handleRequestStream's frame, where
	 * panicked lives, keeps its distance from SP at this entry (the same SP as at the closure's
	 * RETs, both being the caller's SP less its return address). */
	__u64 sp = HTTP3_SP(ctx);
	if (panicked - sp < HTTP3_STACK_SPAN) {
		st.panicked = (__s64)(panicked - sp);
	} else {
		st.panicked = (__s64)panicked;
		st.panicked_abs = 1;
	}
	st.shape = shape;
	bee_new_trace_id(&st.sc);
	bee_new_span_id(&st.sc);
	server_context_in(req, &st);
	/* Request.ctx is an interface {tab, data}; the data pointer identifies the context. */
	if (req_ctx_off != GO_OFF_UNSET)
		st.ctx = go_read_u64(req + req_ctx_off + 8, &err);
	if (err)
		bee_count(&read_errors);

	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (http3_server_call_store(g, &st, seen == CALL_PEEK_STALE && stale_in_map) != 0) {
		bee_count(&inflight_full);
		return 0;
	}
	bee_goroutine_span_set(g, &st.sc);
	if (st.ctx && bee_ctx_span_set(st.ctx, &st.sc) != 0)
		bee_count(&ctx_map_full);
	return 0;
}

/* handleRequestStream.func2 (v0.59 … v0.65). */
SEC("uprobe")
int http3_server_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return server_start(ctx, now, HTTP3_SERVER_REQ_BY_REF);
}

/* handleRequestStream.func1 (v0.66; in older releases the trailer callback, turned away). */
SEC("uprobe")
int http3_server_entry_byval(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return server_start(ctx, now, HTTP3_SERVER_REQ_BY_VAL);
}

/*
 * Ends the server span of this goroutine: at the entry of the handler closure's deferred recover
 * (quic-go's `defer func() { if p := recover(); … }()`, on the handler's goroutine right after
 * the handler returned, or while it panics: runtime.g._panic tells, as for net/http's HTTP/2
 * server), or, where that cannot be used, at a RET of the closure (shape: which closure the RET
 * belongs to), after the recover set panicked.
 */
static __always_inline int server_end(struct pt_regs *ctx, __u64 now, __u8 shape, __u32 how)
{
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;

	struct server_call st = {};
	int taken = http3_server_call_take(g, how == HTTP3_END_RET, shape, &st);
	if (taken == CALL_TAKE_NONE) {
		/* Normal at a marker's second hit after morestack, and at the trailer callback's RETs
		 * (v0.59 … v0.65: v0.66's handler closure's name). */
		if (how == HTTP3_END_RET && shape == HTTP3_SERVER_REQ_BY_REF)
			bee_count(&return_without_entry);
		return 0;
	}
	if (taken != CALL_TAKE_OK)
		return 0; /* another function's RET on the handler's goroutine (the trailer callback) */
	__u8 panicked = 0;
	if (how == HTTP3_END_DEFERRED) {
		if (g_panic_off != GO_OFF_UNSET && go_read_u64(g + g_panic_off, &err) != 0)
			panicked = 1;
	} else {
		__u64 at = st.panicked_abs ? (__u64)st.panicked : HTTP3_SP(ctx) + (__u64)st.panicked;
		if (bpf_probe_read_user(&panicked, 1, (const void *)at) != 0)
			panicked = 0;
	}
	bee_goroutine_span_clear(g);
	if (st.ctx)
		bee_ctx_span_clear(st.ctx);

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_http3_server *r = (struct rec_http3_server *)buf;
	__u16 flags = (how == HTTP3_END_RET ? REC_SPAN_F_END_AT_RET : 0) | st.flags | st.sc.trace_flags;
	__u16 truncated = 0;
	r->h.type = REC_HTTP3_SERVER;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);

	__u64 req = st.req;
	__s64 major = (__s64)go_read_u64(req + req_proto_major_off, &err);
	__s64 minor = (__s64)go_read_u64(req + req_proto_minor_off, &err);
	r->proto_major = major < 0 ? 0 : major > 0xff ? 0xff : (__u8)major;
	r->proto_minor = minor < 0 ? 0 : minor > 0xff ? 0xff : (__u8)minor;
	r->status = 0;
	if (rw_status_off != GO_OFF_UNSET) {
		r->status = bee_clamp_status((__s64)go_read_u64(st.rw + rw_status_off, &err));
		flags |= HTTP3_SERVER_F_STATUS;
	}
	if (panicked)
		flags |= HTTP3_SERVER_F_PANIC;
	if (rw_hijacked_off != GO_OFF_UNSET) {
		__u8 b = 0;
		if (bpf_probe_read_user(&b, 1, (const void *)(st.rw + rw_hijacked_off)) == 0 && b)
			flags |= HTTP3_SERVER_F_HIJACKED;
	}

	__u32 pos = __builtin_offsetof(struct rec_http3_server, strings);
	r->method_len = bee_put_go_string(buf, &pos, req + req_method_off, HTTP3_METHOD_CAP, &truncated, 0, &err);
	__u64 url = go_read_u64(req + req_url_off, &err);
	r->path_len = url ? bee_put_go_string(buf, &pos, url + url_path_off, HTTP3_PATH_CAP, &truncated, 1, &err) : 0;
	r->host_len = bee_put_go_string(buf, &pos, req + req_host_off, HTTP3_HOST_CAP, &truncated, 2, &err);
	r->remote_len = bee_put_go_string(buf, &pos, req + req_remote_addr_off, HTTP3_REMOTE_CAP, &truncated, 3, &err);
	/* ServeMux stores the matched pattern in the Request while serving it: read it now. */
	r->pattern_len = 0;
	if (req_pattern_off != GO_OFF_UNSET) {
		r->pattern_len = bee_put_go_string(buf, &pos, req + req_pattern_off, HTTP3_PATTERN_CAP, &truncated, 4, &err);
		flags |= HTTP3_SERVER_F_PATTERN;
	}
	r->tracestate_len = 0;
	if (st.tracestate)
		r->tracestate_len = bee_put_go_string(buf, &pos, st.tracestate, HTTP3_TRACESTATE_CAP, &truncated, 5, &err);
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

SEC("uprobe")
int http3_server_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return server_end(ctx, now, HTTP3_SERVER_REQ_BY_REF, HTTP3_END_RET);
}

SEC("uprobe")
int http3_server_return_byval(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return server_end(ctx, now, HTTP3_SERVER_REQ_BY_VAL, HTTP3_END_RET);
}

/* The handler closure's deferred recover (a closure: its arguments are not read). */
SEC("uprobe")
int http3_server_end_deferred(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return server_end(ctx, now, 0, HTTP3_END_DEFERRED);
}

/* (*Transport).RoundTrip, RoundTripOpt, (*ClientConn).RoundTrip: receiver = AX, req = BX. */
static __always_inline int client_start(struct pt_regs *ctx, __u64 now, __u8 level)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 req = GO_PARAM2(ctx);
	int err = 0;

	int stale_in_map = 0;
	int seen = http3_client_call_peek(g, req, level, &stale_in_map);
	/* morestack re-ran the prologue, or a call nested in an outer one (the same request, or the
	 * outer one's copy of it): the outer call's span covers it. */
	if (seen == CALL_PEEK_SAME)
		return 0;
	if (seen == CALL_PEEK_STALE)
		bee_count(&entry_replaced);

	struct client_call st = {};
	st.start_ns = now;
	st.req = req;
	st.level = level;
	__u64 ctx_data = 0;
	if (req_ctx_off != GO_OFF_UNSET)
		ctx_data = go_read_u64(req + req_ctx_off + 8, &err);
	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	if (err)
		bee_count(&read_errors);
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (http3_client_call_store(g, &st, seen == CALL_PEEK_STALE && stale_in_map) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* A client span ends at a RET of the function that began it: *Response = AX (nil on error),
 * error = itab BX, data CX. */
static __always_inline int client_end(struct pt_regs *ctx, __u64 now, __u8 level)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 resp = GO_PARAM1(ctx);
	__u64 err_tab = GO_PARAM2(ctx);
	int err = 0;

	struct client_call st = {};
	int taken = http3_client_call_take(g, level, &st);
	if (taken == CALL_TAKE_NONE) {
		bee_count(&return_without_entry);
		return 0;
	}
	if (taken != CALL_TAKE_OK)
		return 0; /* a nested call returning: the outer one ends the span */

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_http3_client *r = (struct rec_http3_client *)buf;
	__u16 flags = st.flags | REC_SPAN_F_END_AT_RET;
	__u16 truncated = 0;
	r->h.type = REC_HTTP3_CLIENT;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);
	r->status = 0;
	if (resp) {
		r->status = bee_clamp_status((__s64)go_read_u64(resp + resp_status_code_off, &err));
		flags |= HTTP3_CLIENT_F_RESPONSE;
	}
	if (err_tab)
		flags |= HTTP3_CLIENT_F_ERROR;

	__u64 req = st.req;
	__u32 pos = __builtin_offsetof(struct rec_http3_client, strings);
	flags |= bee_put_client_request(buf, &pos, req, (struct bee_http_request_lens *)&r->method_len, &truncated, &err);
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/* (*Transport).RoundTripOpt: (*Transport).RoundTrip's one line calls it (not inlined in any
 * build checked: go1.25 … go1.27), so it sees every request sent through a Transport. */
SEC("uprobe")
int http3_client_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_start(ctx, now, HTTP3_CLIENT_TRANSPORT);
}

SEC("uprobe")
int http3_client_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_end(ctx, now, HTTP3_CLIENT_TRANSPORT);
}

/* (*ClientConn).RoundTrip: a ClientConn used directly (inside a Transport's call it is nested). */
SEC("uprobe")
int http3_client_entry_conn(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_start(ctx, now, HTTP3_CLIENT_CONN);
}

SEC("uprobe")
int http3_client_return_conn(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_end(ctx, now, HTTP3_CLIENT_CONN);
}
