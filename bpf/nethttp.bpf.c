// SPDX-License-Identifier: Apache-2.0
/*
 * nethttp.bpf.c — spans for Go's net/http server and client, from uprobes on
 *   net/http.serverHandler.ServeHTTP      (server: one span per request handled)
 *   net/http.(*Transport).roundTrip       (client: one span per request sent)
 * Both live in one object so the client can find its parent in the server's maps.
 *
 * Entry programs attach at the function's first instruction; return programs attach as plain
 * uprobes at EVERY RET instruction of the function, never as uretprobes: a uretprobe rewrites
 * the return address on the goroutine stack, and Go moves stacks (golang/go#22008).
 *
 * Per-call state is keyed by the goroutine (runtime.g pointer). Go's stack-growth prologue
 * calls runtime.morestack and then re-runs the function from its first instruction, so an
 * entry can fire twice for one call: state with the same request pointer means "already
 * seen" and the second hit does nothing.
 *
 * Struct field offsets and feature switches are `volatile const` globals that user space sets
 * before load (the probe manifests in src/probes/nethttp/ name the Go field behind each).
 * Map sizes are defaults that user space adjusts with bpf_map__set_max_entries before load.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/span.bpf.h"
#include "shared/records.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Defaults used only when the object is loaded without user space setting them (bpftool
 * loadall in tests); the build may override them with -D to check each combination. */
#ifndef NETHTTP_DEFAULT_PATTERN_MODE
#define NETHTTP_DEFAULT_PATTERN_MODE 0
#endif
#ifndef NETHTTP_DEFAULT_RW_ITAB
#define NETHTTP_DEFAULT_RW_ITAB 0
#endif
#ifndef NETHTTP_DEFAULT_PASSWORD_SET_OFF
#define NETHTTP_DEFAULT_PASSWORD_SET_OFF GO_OFF_UNSET
#endif
#ifndef NETHTTP_DEFAULT_CTX_OFF
#define NETHTTP_DEFAULT_CTX_OFF GO_OFF_UNSET
#endif
#ifndef NETHTTP_DEFAULT_TLS_OFF
#define NETHTTP_DEFAULT_TLS_OFF GO_OFF_UNSET
#endif
#ifndef NETHTTP_DEFAULT_H2_RW_RWS_OFF
#define NETHTTP_DEFAULT_H2_RW_RWS_OFF GO_OFF_UNSET
#endif
#ifndef NETHTTP_DEFAULT_H2_RWS_STATUS_OFF
#define NETHTTP_DEFAULT_H2_RWS_STATUS_OFF GO_OFF_UNSET
#endif

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
/* net/http.Request */
volatile const __u32 req_method_off = GO_OFF_UNSET;      /* Method string */
volatile const __u32 req_url_off = GO_OFF_UNSET;         /* URL *url.URL */
volatile const __u32 req_proto_major_off = GO_OFF_UNSET; /* ProtoMajor int */
volatile const __u32 req_proto_minor_off = GO_OFF_UNSET; /* ProtoMinor int */
volatile const __u32 req_host_off = GO_OFF_UNSET;        /* Host string */
volatile const __u32 req_remote_addr_off = GO_OFF_UNSET; /* RemoteAddr string */
volatile const __u32 req_tls_off = NETHTTP_DEFAULT_TLS_OFF; /* TLS *tls.ConnectionState (optional) */
volatile const __u32 req_ctx_off = NETHTTP_DEFAULT_CTX_OFF; /* ctx context.Context (optional) */
volatile const __u32 req_pattern_off = GO_OFF_UNSET;     /* Pattern string (Go >= 1.23) */
volatile const __u32 req_pat_off = GO_OFF_UNSET;         /* pat *pattern (Go 1.22) */
/* net/http.pattern */
volatile const __u32 pattern_str_off = GO_OFF_UNSET;     /* str string (Go 1.22) */
/* net/http.response (the HTTP/1 ResponseWriter) */
volatile const __u32 response_status_off = GO_OFF_UNSET; /* status int */
/* net/http.http2responseWriter (the HTTP/2 ResponseWriter, net/http/h2_bundle.go; optional) */
volatile const __u32 h2_rw_rws_off = NETHTTP_DEFAULT_H2_RW_RWS_OFF; /* rws *http2responseWriterState */
/* net/http.http2responseWriterState (optional) */
volatile const __u32 h2_rws_status_off = NETHTTP_DEFAULT_H2_RWS_STATUS_OFF; /* status int */
/* net/http.Response */
volatile const __u32 resp_status_code_off = GO_OFF_UNSET; /* StatusCode int */
/* net/url.URL */
volatile const __u32 url_scheme_off = GO_OFF_UNSET;    /* Scheme string */
volatile const __u32 url_opaque_off = GO_OFF_UNSET;    /* Opaque string */
volatile const __u32 url_user_off = GO_OFF_UNSET;      /* User *Userinfo */
volatile const __u32 url_host_off = GO_OFF_UNSET;      /* Host string */
volatile const __u32 url_path_off = GO_OFF_UNSET;      /* Path string */
volatile const __u32 url_raw_query_off = GO_OFF_UNSET; /* RawQuery string */
/* net/url.Userinfo */
volatile const __u32 userinfo_password_set_off = NETHTTP_DEFAULT_PASSWORD_SET_OFF; /* passwordSet bool (optional) */

/* ---- feature switches ---- */
/* Where the ServeMux route pattern lives: 0 = nowhere (Go < 1.22, or offsets unknown),
 * 1 = Request.pat->str (Go 1.22), 2 = Request.Pattern (Go >= 1.23). */
#define PATTERN_NONE 0
#define PATTERN_PAT_STR 1
#define PATTERN_FIELD 2
volatile const __u32 pattern_mode = NETHTTP_DEFAULT_PATTERN_MODE;
/* Run-time address of the itab `go:itab.*net/http.response,net/http.ResponseWriter`.
 * Status is read only when ServeHTTP's ResponseWriter has exactly this itab: an HTTP/2
 * writer (http2responseWriter) has no `status` at that offset. 0 = unknown: no status. */
volatile const __u64 rw_itab_addr = NETHTTP_DEFAULT_RW_ITAB;

/* How many context.Context parents the client walks looking for a server span; each step
 * is one map lookup and one 16-byte user read. Deep middleware stacks rarely exceed 20. */
#define CTX_WALK_MAX 32

/* ---- maps ---- */
struct server_state {
	__u64 req;     /* *http.Request: identifies the call (morestack re-entry check) */
	__u64 rw;      /* *http.response, 0 when the writer is not the HTTP/1 one */
	__u64 h2rw;    /* *http.http2responseWriter, 0 unless HTTP/2 and its offsets are known */
	__u64 ctx;     /* Request.ctx data pointer registered in go_ctx_spans, or 0 */
	struct span_ctx sc;
};

struct client_state {
	__u64 req; /* *http.Request */
	__u8 span_id[BEE_SPAN_ID_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct server_state);
} nethttp_server_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct client_state);
} nethttp_client_inflight SEC(".maps");

/* context.Context data pointer of an in-flight server request -> that request's span, so a
 * client call made on another goroutine with a context derived from it finds its parent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct span_ctx);
} go_ctx_spans SEC(".maps");

/* Clang emits full BTF only for types used by value: this otherwise unused .bss variable
 * makes every record struct and tag enum appear in the object's BTF, which user space checks
 * its decoders against (records-layout test). Costs one largest-record of .bss. */
union nethttp_record_types {
	enum rec_type type;
	enum rec_start_flags start_flags;
	enum rec_nethttp_server_req_flags server_req_flags;
	enum rec_nethttp_server_end_flags server_end_flags;
	enum rec_nethttp_client_url_flags client_url_flags;
	enum rec_nethttp_client_end_flags client_end_flags;
	struct rec_nethttp_server_start server_start;
	struct rec_nethttp_server_end server_end;
	struct rec_nethttp_client_start client_start;
	struct rec_nethttp_client_end client_end;
};
union nethttp_record_types nethttp_record_types_btf __attribute__((unused));

static __always_inline void fill_start_hdr(struct rec_start_hdr *h, __u32 type, __u64 g)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	h->type = type;
	h->flags = 0;
	h->pid = (__u32)(pid_tgid >> 32);
	h->tid = (__u32)pid_tgid;
	h->start_ns = bpf_ktime_get_boot_ns();
	h->goroutine = g;
}

static __always_inline __u16 clamp_u16(__s64 v)
{
	return v < 0 ? 0 : v > 0xffff ? 0xffff : (__u16)v;
}

static __always_inline __u32 clamp_status(__s64 v)
{
	/* Status codes are three digits (RFC 9110 §15); anything else is stored as read, clamped
	 * to u32, and user space decides. */
	return v < 0 ? 0 : v > 0xffffffffll ? 0xffffffffu : (__u32)v;
}

/*
 * func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)
 * serverHandler is a one-pointer struct (RAX); rw = itab RBX, data RCX; req = RDI.
 */
SEC("uprobe")
int nethttp_server_entry(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 rw_tab = GO_PARAM2(ctx);
	__u64 rw = GO_PARAM3(ctx);
	__u64 req = GO_PARAM4(ctx);
	int err = 0;

	struct server_state *old = bpf_map_lookup_elem(&nethttp_server_inflight, &g);
	if (old) {
		if (old->req == req)
			return 0; /* morestack re-ran the prologue: already recorded */
		/* The earlier call on this goroutine never reached a RET (panic, Goexit). */
		bee_count(&entry_replaced);
		__u64 stale_ctx = old->ctx;
		if (stale_ctx)
			bpf_map_delete_elem(&go_ctx_spans, &stale_ctx);
	}

	struct rec_nethttp_server_start *r = bee_reserve(sizeof(*r));
	if (!r)
		return 0;

	struct server_state st = {};
	st.req = req;
	st.rw = (rw_itab_addr != 0 && rw_tab == rw_itab_addr) ? rw : 0;
	bee_new_trace_id(&st.sc);
	bee_new_span_id(&st.sc);

	fill_start_hdr(&r->h, REC_NETHTTP_SERVER_START, g);
	__builtin_memcpy(r->h.trace_id, st.sc.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(r->h.span_id, st.sc.span_id, BEE_SPAN_ID_SIZE);
	__builtin_memset(r->h.parent_span_id, 0, BEE_SPAN_ID_SIZE);

	go_read_string(req + req_method_off, r->method, sizeof(r->method), &r->method_len, &err);
	__u64 url = go_read_u64(req + req_url_off, &err);
	if (url)
		go_read_string(url + url_path_off, r->path, sizeof(r->path), &r->path_len, &err);
	else
		r->path_len = 0;
	go_read_string(req + req_host_off, r->host, sizeof(r->host), &r->host_len, &err);
	go_read_string(req + req_remote_addr_off, r->remote, sizeof(r->remote), &r->remote_len, &err);
	r->proto_major = clamp_u16((__s64)go_read_u64(req + req_proto_major_off, &err));
	r->proto_minor = clamp_u16((__s64)go_read_u64(req + req_proto_minor_off, &err));
	/*
	 * Stripped binaries have no itab symbol to compare with. serverHandler.ServeHTTP receives a
	 * *http.response only from the HTTP/1 server (net/http/server.go, conn.serve); the bundled
	 * HTTP/2 server passes an *http2responseWriter with ProtoMajor 2 (net/http/h2_bundle.go),
	 * so ProtoMajor == 1 identifies the writer whose `status` field we read at return.
	 */
	if (rw_itab_addr == 0 && r->proto_major == 1 && req_proto_major_off != GO_OFF_UNSET)
		st.rw = rw;
	/*
	 * HTTP/2: the bundled server (h2_bundle.go, http2serverConn.newWriterAndRequest) passes an
	 * *http2responseWriter for requests with ProtoMajor 2; its rws stays valid until
	 * runHandler's deferred handlerDone, i.e. after ServeHTTP returns, so it is read at return.
	 * Never when the itab says HTTP/1, and only when both offsets are known.
	 */
	if (st.rw == 0 && r->proto_major == 2 && req_proto_major_off != GO_OFF_UNSET &&
	    h2_rw_rws_off != GO_OFF_UNSET && h2_rws_status_off != GO_OFF_UNSET)
		st.h2rw = rw;
	r->req_flags = 0;
	if (req_tls_off != GO_OFF_UNSET) {
		r->req_flags |= NETHTTP_SERVER_F_TLS_KNOWN;
		if (go_read_u64(req + req_tls_off, &err) != 0)
			r->req_flags |= NETHTTP_SERVER_F_TLS;
	}
	/* Request.ctx is an interface {tab, data}; the data pointer identifies the context. */
	if (req_ctx_off != GO_OFF_UNSET)
		st.ctx = go_read_u64(req + req_ctx_off + 8, &err);
	if (err) {
		r->h.flags |= REC_START_F_READ_ERROR;
		bee_count(&read_errors);
	}

	if (bpf_map_update_elem(&nethttp_server_inflight, &g, &st, BPF_ANY) != 0) {
		bee_count(&inflight_full);
		bee_discard(r);
		return 0;
	}
	if (st.ctx && bpf_map_update_elem(&go_ctx_spans, &st.ctx, &st.sc, BPF_ANY) != 0)
		bee_count(&ctx_map_full);
	bee_submit(r);
	return 0;
}

/* At each RET of serverHandler.ServeHTTP (no results). */
SEC("uprobe")
int nethttp_server_return(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;

	struct server_state *stp = bpf_map_lookup_elem(&nethttp_server_inflight, &g);
	if (!stp) {
		bee_count(&return_without_entry);
		return 0;
	}
	struct server_state st = *stp;
	bpf_map_delete_elem(&nethttp_server_inflight, &g);
	if (st.ctx)
		bpf_map_delete_elem(&go_ctx_spans, &st.ctx);

	struct rec_nethttp_server_end *r = bee_reserve(sizeof(*r));
	if (!r)
		return 0;
	r->h.type = REC_NETHTTP_SERVER_END;
	r->h.flags = 0;
	r->h.end_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(r->h.span_id, st.sc.span_id, BEE_SPAN_ID_SIZE);

	/* The status is set by WriteHeader during ServeHTTP, so it is read here, at return. */
	r->status = 0;
	if (st.rw) {
		r->status = clamp_status((__s64)go_read_u64(st.rw + response_status_off, &err));
		r->h.flags |= NETHTTP_SERVER_END_F_STATUS;
	} else if (st.h2rw && h2_rw_rws_off != GO_OFF_UNSET && h2_rws_status_off != GO_OFF_UNSET) {
		/* Checked again so the verifier sees the offsets known on this path too. */
		__u64 rws = go_read_u64(st.h2rw + h2_rw_rws_off, &err);
		if (rws) {
			r->status = clamp_status((__s64)go_read_u64(rws + h2_rws_status_off, &err));
			r->h.flags |= NETHTTP_SERVER_END_F_STATUS;
		}
	}

	/* ServeMux stores the matched pattern in the Request during ServeHTTP: read it now. */
	r->pattern_len = 0;
	if (pattern_mode == PATTERN_FIELD) {
		go_read_string(st.req + req_pattern_off, r->pattern, sizeof(r->pattern), &r->pattern_len, &err);
		r->h.flags |= NETHTTP_SERVER_END_F_PATTERN;
	} else if (pattern_mode == PATTERN_PAT_STR) {
		__u64 pat = go_read_u64(st.req + req_pat_off, &err);
		if (pat)
			go_read_string(pat + pattern_str_off, r->pattern, sizeof(r->pattern), &r->pattern_len, &err);
		r->h.flags |= NETHTTP_SERVER_END_F_PATTERN;
	}
	if (err) {
		r->h.flags |= NETHTTP_SERVER_END_F_READ_ERROR;
		bee_count(&read_errors);
	}
	bee_submit(r);
	return 0;
}

/*
 * The span of the request this goroutine is serving, else of the nearest context in the
 * request's context.Context chain that a server registered. Every context implementation in
 * Go's context package (cancelCtx, valueCtx, timerCtx via cancelCtx, withoutCancelCtx,
 * afterFuncCtx, stopCtx) embeds its parent Context as the first field, so the parent's data
 * pointer sits at +8 of the child's struct. A nil interface (tab 0) ends the chain; a user
 * type that does not embed its parent first ends it at an unknown key or a failed read.
 */
static __always_inline struct span_ctx *find_parent(__u64 g, __u64 ctx_data, __u32 *flags)
{
	struct server_state *srv = bpf_map_lookup_elem(&nethttp_server_inflight, &g);
	if (srv)
		return &srv->sc;

	__u64 cur = ctx_data;
	for (int i = 0; i < CTX_WALK_MAX; i++) {
		if (cur == 0)
			break;
		struct span_ctx *sc = bpf_map_lookup_elem(&go_ctx_spans, &cur);
		if (sc) {
			*flags |= REC_START_F_PARENT_BY_CTX;
			return sc;
		}
		struct go_iface parent = {};
		if (bpf_probe_read_user(&parent, sizeof(parent), (const void *)cur) != 0 || parent.tab == 0)
			break;
		cur = parent.data;
	}
	return 0;
}

/*
 * func (t *Transport) roundTrip(req *Request) (*Response, error)
 * t = RAX, req = RBX.
 */
SEC("uprobe")
int nethttp_client_entry(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 req = GO_PARAM2(ctx);
	int err = 0;

	struct client_state *old = bpf_map_lookup_elem(&nethttp_client_inflight, &g);
	if (old) {
		if (old->req == req)
			return 0; /* morestack re-ran the prologue: already recorded */
		bee_count(&entry_replaced);
	}

	struct rec_nethttp_client_start *r = bee_reserve(sizeof(*r));
	if (!r)
		return 0;

	fill_start_hdr(&r->h, REC_NETHTTP_CLIENT_START, g);
	struct span_ctx sc = {};
	__u32 flags = 0;
	__u64 ctx_data = 0;
	if (req_ctx_off != GO_OFF_UNSET)
		ctx_data = go_read_u64(req + req_ctx_off + 8, &err);
	struct span_ctx *parent = find_parent(g, ctx_data, &flags);
	if (parent) {
		__builtin_memcpy(sc.trace_id, parent->trace_id, BEE_TRACE_ID_SIZE);
		__builtin_memcpy(r->h.parent_span_id, parent->span_id, BEE_SPAN_ID_SIZE);
		flags |= REC_START_F_HAS_PARENT;
	} else {
		bee_new_trace_id(&sc);
		__builtin_memset(r->h.parent_span_id, 0, BEE_SPAN_ID_SIZE);
	}
	bee_new_span_id(&sc);
	__builtin_memcpy(r->h.trace_id, sc.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(r->h.span_id, sc.span_id, BEE_SPAN_ID_SIZE);

	go_read_string(req + req_method_off, r->method, sizeof(r->method), &r->method_len, &err);
	go_read_string(req + req_host_off, r->req_host, sizeof(r->req_host), &r->req_host_len, &err);
	r->url_flags = 0;
	r->scheme_len = 0;
	r->url_host_len = 0;
	r->path_len = 0;
	__u64 url = go_read_u64(req + req_url_off, &err);
	if (url) {
		go_read_string(url + url_scheme_off, r->scheme, sizeof(r->scheme), &r->scheme_len, &err);
		go_read_string(url + url_host_off, r->url_host, sizeof(r->url_host), &r->url_host_len, &err);
		go_read_string(url + url_path_off, r->path, sizeof(r->path), &r->path_len, &err);
		/* Only whether these exist: query values and userinfo never leave the process. */
		if (go_string_len(url + url_raw_query_off, &err) != 0)
			r->url_flags |= NETHTTP_URL_F_QUERY;
		if (go_string_len(url + url_opaque_off, &err) != 0)
			r->url_flags |= NETHTTP_URL_F_OPAQUE;
		__u64 user = go_read_u64(url + url_user_off, &err);
		if (user) {
			r->url_flags |= NETHTTP_URL_F_USER;
			if (userinfo_password_set_off != GO_OFF_UNSET) {
				__u8 set = 0;
				if (bpf_probe_read_user(&set, 1, (const void *)(user + userinfo_password_set_off)) != 0)
					err = 1;
				else if (set)
					r->url_flags |= NETHTTP_URL_F_PASSWORD;
			}
		}
	}
	if (err) {
		flags |= REC_START_F_READ_ERROR;
		bee_count(&read_errors);
	}
	r->h.flags = flags;

	struct client_state st = {};
	st.req = req;
	__builtin_memcpy(st.span_id, sc.span_id, BEE_SPAN_ID_SIZE);
	if (bpf_map_update_elem(&nethttp_client_inflight, &g, &st, BPF_ANY) != 0) {
		bee_count(&inflight_full);
		bee_discard(r);
		return 0;
	}
	bee_submit(r);
	return 0;
}

/* At each RET of roundTrip: *Response = RAX (nil on error), error = itab RBX, data RCX. */
SEC("uprobe")
int nethttp_client_return(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 resp = GO_PARAM1(ctx);
	__u64 err_tab = GO_PARAM2(ctx);
	int err = 0;

	struct client_state *stp = bpf_map_lookup_elem(&nethttp_client_inflight, &g);
	if (!stp) {
		bee_count(&return_without_entry);
		return 0;
	}
	struct client_state st = *stp;
	bpf_map_delete_elem(&nethttp_client_inflight, &g);

	struct rec_nethttp_client_end *r = bee_reserve(sizeof(*r));
	if (!r)
		return 0;
	r->h.type = REC_NETHTTP_CLIENT_END;
	r->h.end_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(r->h.span_id, st.span_id, BEE_SPAN_ID_SIZE);
	__u32 flags = 0;
	r->status = 0;
	r->_pad0 = 0;
	r->err_itab = 0;
	if (resp) {
		r->status = clamp_status((__s64)go_read_u64(resp + resp_status_code_off, &err));
		flags |= NETHTTP_CLIENT_END_F_RESPONSE;
	}
	if (err_tab) {
		r->err_itab = err_tab;
		flags |= NETHTTP_CLIENT_END_F_ERROR;
	}
	if (err) {
		flags |= NETHTTP_CLIENT_END_F_READ_ERROR;
		bee_count(&read_errors);
	}
	r->h.flags = flags;
	bee_submit(r);
	return 0;
}
