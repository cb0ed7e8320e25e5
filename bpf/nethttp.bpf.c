// SPDX-License-Identifier: Apache-2.0
/*
 * nethttp.bpf.c — spans for Go's net/http server and client:
 *   net/http.serverHandler.ServeHTTP      (server: one span per request handled)
 *   net/http.(*Transport).roundTrip       (client: one span per request sent)
 *
 * Where the probes sit (docs/probe-placement.md): a uprobe costs ~1 µs on an instruction the
 * kernel emulates (jumps, calls, push) and ~12 µs on one it must single-step (the first
 * instruction of a Go function, every RET). So user space attaches entry programs at the
 * first emulated instruction of the prologue (the JBE/JLS to morestack right after the stack
 * bound check, before any argument register changes), and ends a server span at the entry of
 * the function net/http calls right after the handler returns, on the same goroutine:
 *   HTTP/1: (*response).finishRequest(w)        net/http/server.go, conn.serve
 *   HTTP/2: (*http2serverConn).runHandler.func1 net/http/h2_bundle.go, runHandler's deferred func
 *           (Go 1.27: net/http/internal/http2.(*serverConn).runHandler.func1)
 *   hijacked connections: (*response).Hijack(w) (finishRequest never runs for them)
 *   panics on HTTP/1: (*conn).serve.func1, conn.serve's deferred recover (once per connection)
 * A deferred function runs while a panic unwinds: runtime.g._panic is then set, and its value
 * becomes the span's error (the HTTP/2 marker sees both endings, the HTTP/1 one only panics
 * and runtime.Goexit, since finishRequest ended every normal request before it).
 * When a binary lacks these, the end program runs at every RET of the probed function
 * instead (never a uretprobe: it rewrites the return address on the goroutine stack, and Go
 * moves stacks, golang/go#22008). The client has no such marker and ends at its RETs.
 *
 * Live joins (one beetrace tracing several processes): the client records which span is in
 * flight on each HTTP/1 connection, by the connection's local end (bee_conn_spans,
 * include/conn_ctx.bpf.h); a server request that comes without a traceparent looks its peer
 * end up there and, when another traced process has a client span in flight on it, continues
 * that span's trace as its child (server_conn_join). One map lookup per such request.
 *
 * One record per span: the entry keeps the start time, ids and pointers in a per-call map
 * entry keyed by goroutine; the end reads the clock first, then the request and response
 * fields, and emits the whole span (bpf/shared/nethttp.h). Go's stack-growth prologue calls
 * runtime.morestack and re-runs the function, so an entry (and a marker) can fire twice for
 * one call: an entry with the same request pointer is ignored, a marker with no state is too.
 *
 * Struct field offsets and feature switches are `volatile const` globals that user space sets
 * before load (src/probes/nethttp/ names the Go field behind each).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/go_view.bpf.h"
#include "include/slots.bpf.h"
#include "include/span.bpf.h"
#include "include/go_context.bpf.h"
#include "include/record.bpf.h"
#include "include/go_headers.bpf.h"
#include "include/go_http.bpf.h"
#include "include/go_errors.bpf.h"
#include "include/conn_ctx.bpf.h"
#include "shared/span.h"
#include "shared/nethttp.h"

/* The client record's request strings are written by go_http.bpf.h: same caps, same flag bits,
 * the five lengths consecutive in its order. */
_Static_assert(BEE_HTTP_METHOD_CAP == NETHTTP_METHOD_CAP && BEE_HTTP_SCHEME_CAP == NETHTTP_SCHEME_CAP && BEE_HTTP_HOST_CAP == NETHTTP_HOST_CAP &&
		       BEE_HTTP_PATH_CAP == NETHTTP_PATH_CAP,
	       "go_http.bpf.h caps");
_Static_assert(BEE_HTTP_URL_QUERY == NETHTTP_CLIENT_F_QUERY && BEE_HTTP_URL_USER == NETHTTP_CLIENT_F_USER &&
		       BEE_HTTP_URL_PASSWORD == NETHTTP_CLIENT_F_PASSWORD && BEE_HTTP_URL_OPAQUE == NETHTTP_CLIENT_F_OPAQUE,
	       "go_http.bpf.h flags");
_Static_assert(__builtin_offsetof(struct rec_nethttp_client, scheme_len) == __builtin_offsetof(struct rec_nethttp_client, method_len) + 1 &&
		       __builtin_offsetof(struct rec_nethttp_client, url_host_len) == __builtin_offsetof(struct rec_nethttp_client, method_len) + 2 &&
		       __builtin_offsetof(struct rec_nethttp_client, path_len) == __builtin_offsetof(struct rec_nethttp_client, method_len) + 3 &&
		       __builtin_offsetof(struct rec_nethttp_client, req_host_len) == __builtin_offsetof(struct rec_nethttp_client, method_len) + 4,
	       "rec_nethttp_client: struct bee_http_request_lens order");

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(__builtin_offsetof(struct rec_nethttp_server, strings) + NETHTTP_METHOD_CAP + NETHTTP_PATH_CAP +
			       NETHTTP_HOST_CAP + NETHTTP_REMOTE_CAP + NETHTTP_PATTERN_CAP + NETHTTP_PANIC_CAP +
			       NETHTTP_TRACESTATE_CAP <= BEE_POS_MASK,
	       "server record fits the scratch bounds");
_Static_assert(__builtin_offsetof(struct rec_nethttp_client, strings) + NETHTTP_METHOD_CAP + NETHTTP_SCHEME_CAP +
			       NETHTTP_HOST_CAP + NETHTTP_PATH_CAP + NETHTTP_HOST_CAP <= BEE_POS_MASK,
	       "client record fits the scratch bounds");

/* Where the ServeMux route pattern lives (pattern_mode). */
enum nethttp_pattern_mode {
	NETHTTP_PATTERN_NONE = 0,    /* Go < 1.22, or offsets unknown */
	NETHTTP_PATTERN_PAT_STR = 1, /* Request.pat->str (Go 1.22) */
	NETHTTP_PATTERN_FIELD = 2,   /* Request.Pattern (Go >= 1.23) */
};

/* How a span ends (the end program decides). */
enum nethttp_end {
	NETHTTP_END_MARKER = 0,   /* a marker that runs only when the handler returned normally */
	NETHTTP_END_DEFERRED = 1, /* a deferred func: the handler returned, panicked or called Goexit */
	NETHTTP_END_RET = 2,      /* a RET of serverHandler.ServeHTTP */
};

/* Which ResponseWriter an end program is handed (the marker it runs at decides). */
enum nethttp_writer {
	NETHTTP_WRITER_UNKNOWN = 0, /* at a RET: decided by Request.ProtoMajor */
	NETHTTP_WRITER_HTTP1 = 1,   /* *http.response */
	NETHTTP_WRITER_HTTP2 = 2,   /* *http.http2responseWriter */
	NETHTTP_WRITER_XNET_H2 = 3, /* *golang.org/x/net/http2.responseWriter */
};

/*
 * The attach cookie of nethttp_server_end: which end a site is (bits 0-1: enum nethttp_writer,
 * bits 2-3: enum nethttp_end, then whether the marker receives the ResponseWriter in its first
 * argument register and whether it is Hijack). One program for every end is verified once;
 * the per-end programs below each carried a copy of server_end for the verifier to check
 * (~10-30 ms each here), which is what kernels without attach cookies (< 5.15) still load.
 */
enum nethttp_end_cookie {
	NETHTTP_COOKIE_WRITER_MASK = 0x3,
	NETHTTP_COOKIE_HOW_SHIFT = 2,
	NETHTTP_COOKIE_HOW_MASK = 0x3,
	NETHTTP_COOKIE_RW_ARG = 1 << 4,
	NETHTTP_COOKIE_HIJACKED = 1 << 5,
};

/* Defaults used only when the object is loaded without user space setting them (bpftool
 * loadall in tests). */
#ifndef NETHTTP_DEFAULT_OPTIONAL_OFF
#define NETHTTP_DEFAULT_OPTIONAL_OFF GO_OFF_UNSET
#endif
#ifndef NETHTTP_DEFAULT_MAP_MODE
#define NETHTTP_DEFAULT_MAP_MODE GO_MAP_NONE
#endif

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
/* net/http.Request */
volatile const __u32 req_proto_major_off = GO_OFF_UNSET; /* ProtoMajor int */
volatile const __u32 req_proto_minor_off = GO_OFF_UNSET; /* ProtoMinor int */
volatile const __u32 req_remote_addr_off = GO_OFF_UNSET; /* RemoteAddr string */
volatile const __u32 req_tls_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* TLS *tls.ConnectionState (optional) */
volatile const __u32 req_ctx_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* ctx context.Context (optional) */
volatile const __u32 req_pattern_off = GO_OFF_UNSET;     /* Pattern string (Go >= 1.23) */
volatile const __u32 req_pat_off = GO_OFF_UNSET;         /* pat *pattern (Go 1.22) */
/* net/http.pattern */
volatile const __u32 pattern_str_off = GO_OFF_UNSET;     /* str string (Go 1.22) */
/* net/http.response (the HTTP/1 ResponseWriter) */
volatile const __u32 response_status_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* status int (optional) */
/* net/http.http2responseWriter (the HTTP/2 ResponseWriter, net/http/h2_bundle.go; optional) */
volatile const __u32 h2_rw_rws_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* rws *http2responseWriterState */
/* net/http.http2responseWriterState (optional) */
volatile const __u32 h2_rws_status_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* status int */
/* golang.org/x/net/http2.responseWriter / responseWriterState (the x/net HTTP/2 server; optional) */
volatile const __u32 xnet_rw_rws_off = NETHTTP_DEFAULT_OPTIONAL_OFF;     /* rws *responseWriterState */
volatile const __u32 xnet_rws_status_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* status int */
/* net/http.Response */
volatile const __u32 resp_status_code_off = GO_OFF_UNSET; /* StatusCode int */
/* net/url.URL */
/* net/http.Request.Header, and the runtime's map layout (go_headers.bpf.h): context in */
volatile const __u32 req_header_off = NETHTTP_DEFAULT_OPTIONAL_OFF;  /* Header Header (map) */
volatile const __u32 map_mode = NETHTTP_DEFAULT_MAP_MODE;             /* enum go_map_mode */
volatile const __u32 map_dirptr_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* internal/runtime/maps.Map.dirPtr */
volatile const __u32 map_dirlen_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* internal/runtime/maps.Map.dirLen */
volatile const __u32 table_groups_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* internal/runtime/maps.table.groups */
volatile const __u32 groups_data_off = NETHTTP_DEFAULT_OPTIONAL_OFF;  /* internal/runtime/maps.groupsReference.data */
volatile const __u32 groups_mask_off = NETHTTP_DEFAULT_OPTIONAL_OFF;  /* internal/runtime/maps.groupsReference.lengthMask */
volatile const __u32 hmap_b_off = NETHTTP_DEFAULT_OPTIONAL_OFF;       /* runtime.hmap.B */
volatile const __u32 hmap_buckets_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* runtime.hmap.buckets */
/* runtime.g and runtime._panic (optional: without them a panic ends the span without its value) */
volatile const __u32 g_panic_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* _panic *_panic */
volatile const __u32 panic_arg_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* arg any */
/* net/url.Userinfo */
/* The local address of a client request's connection (nethttp_client_conn; all optional: without
 * them the client span lacks network.local.address/port). */
volatile const __u32 pconn_conn_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* net/http.persistConn.conn net.Conn */
volatile const __u32 tls_conn_conn_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* crypto/tls.Conn.conn net.Conn */
volatile const __u32 netconn_fd_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* net.conn.fd *netFD */
volatile const __u32 netfd_laddr_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* net.netFD.laddr net.Addr */
volatile const __u32 tcpaddr_ip_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* net.TCPAddr.IP IP ([]byte) */
volatile const __u32 tcpaddr_port_off = NETHTTP_DEFAULT_OPTIONAL_OFF;  /* net.TCPAddr.Port int */
/* An HTTP/2 client request's stream and connection, read at the stream's encodeAndWriteHeaders
 * (nethttp_client_h2*; all optional: without them HTTP/2 client spans lack the stream id and the
 * local end). net/http's bundled client (Go <= 1.26: http2clientStream, http2ClientConn; Go 1.27:
 * net/http/internal/http2.clientStream, ClientConn) and golang.org/x/net/http2's. */
volatile const __u32 h2_cs_id_off = NETHTTP_DEFAULT_OPTIONAL_OFF;      /* clientStream.ID uint32 */
volatile const __u32 h2_cs_cc_off = NETHTTP_DEFAULT_OPTIONAL_OFF;      /* clientStream.cc *ClientConn */
volatile const __u32 h2_cc_tconn_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* ClientConn.tconn net.Conn */
/* URL *url.URL of the request encodeAndWriteHeaders receives: net/http.Request.URL (Go <= 1.26),
 * net/http/internal/http2.ClientRequest.URL (Go 1.27, which copies it from the Request) */
volatile const __u32 h2_creq_url_off = NETHTTP_DEFAULT_OPTIONAL_OFF;
volatile const __u32 xnet_cs_id_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* golang.org/x/net/http2.clientStream.ID */
volatile const __u32 xnet_cs_cc_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* golang.org/x/net/http2.clientStream.cc */
volatile const __u32 xnet_cc_tconn_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* golang.org/x/net/http2.ClientConn.tconn */
/* An HTTP/2 server request's stream id: ResponseWriter → rws → stream → id (optional). */
volatile const __u32 h2_rws_stream_off = NETHTTP_DEFAULT_OPTIONAL_OFF;   /* (http2)responseWriterState.stream */
volatile const __u32 h2_stream_id_off = NETHTTP_DEFAULT_OPTIONAL_OFF;    /* (http2)stream.id uint32 */
volatile const __u32 xnet_rws_stream_off = NETHTTP_DEFAULT_OPTIONAL_OFF; /* golang.org/x/net/http2.responseWriterState.stream */
volatile const __u32 xnet_stream_id_off = NETHTTP_DEFAULT_OPTIONAL_OFF;  /* golang.org/x/net/http2.stream.id */

/* net/http/internal/http2.ServerRequest (Go 1.27): the request x/net >= v0.62's h2c server hands
 * net/http's http2Handler.ServeHTTP, which builds a *Request from it for the handler alone
 * (src/net/http/http2.go). Spans begun there read these instead of the Request fields above
 * (all optional: without them those requests have no span). */
volatile const __u32 srq_ctx_off = GO_OFF_UNSET;         /* Context context.Context */
volatile const __u32 srq_proto_major_off = GO_OFF_UNSET; /* ProtoMajor int */
volatile const __u32 srq_proto_minor_off = GO_OFF_UNSET; /* ProtoMinor int */
volatile const __u32 srq_method_off = GO_OFF_UNSET;      /* Method string */
volatile const __u32 srq_url_off = GO_OFF_UNSET;         /* URL *url.URL */
volatile const __u32 srq_header_off = GO_OFF_UNSET;      /* Header Header (map) */
volatile const __u32 srq_host_off = GO_OFF_UNSET;        /* Host string */
volatile const __u32 srq_remote_addr_off = GO_OFF_UNSET; /* RemoteAddr string */
volatile const __u32 srq_tls_off = GO_OFF_UNSET;         /* TLS *tls.ConnectionState */
/* The name offset of net/http.serverHandler's type (go-typenames.ts; -1 unknown): an
 * http2Handler around it is net/http's own server, traced at serverHandler.ServeHTTP. */
volatile const __s32 nameoff_server_handler = -1;
/* The name offset of *net/http.response (-1 unknown): an HTTP/1 connection's writer, also when
 * the request says ProtoMajor 2 (h2c's "PRI * HTTP/2.0" preface reaches serverHandler over HTTP/1). */
volatile const __s32 nameoff_http1_response = -1;

/* Where a server call's request keeps its fields: an *http.Request, or (srq) a ServerRequest. */
struct req_layout {
	__u32 method, url, host, remote, major, minor, tls, header, ctx;
};

static __always_inline void req_layout_of(int srq, struct req_layout *l)
{
	if (srq) {
		l->method = srq_method_off;
		l->url = srq_url_off;
		l->host = srq_host_off;
		l->remote = srq_remote_addr_off;
		l->major = srq_proto_major_off;
		l->minor = srq_proto_minor_off;
		l->tls = srq_tls_off;
		l->header = srq_header_off;
		l->ctx = srq_ctx_off;
	} else {
		l->method = req_method_off;
		l->url = req_url_off;
		l->host = req_host_off;
		l->remote = req_remote_addr_off;
		l->major = req_proto_major_off;
		l->minor = req_proto_minor_off;
		l->tls = req_tls_off;
		l->header = req_header_off;
		l->ctx = req_ctx_off;
	}
}

/* The views (go_view.bpf.h) the server programs read: the request (or ServerRequest), and at
 * entry its header map's Map struct. */
#define REQ_VIEW 0
#define MAP_VIEW 1

/* ---- feature switches ---- */
volatile const __u32 pattern_mode = NETHTTP_PATTERN_NONE; /* enum nethttp_pattern_mode */

/* The part of the request the entry reads (one read: go_view.bpf.h): ProtoMajor, Header, ctx,
 * and RemoteAddr when connections are joined. */
static __always_inline __u32 req_entry_view_len(const struct req_layout *l)
{
	__u32 n = go_view_end(l->major, 8);
	n = go_view_max(n, go_view_end(l->header, 8));
	n = go_view_max(n, go_view_end(l->ctx, 16));
	if (bee_conn_join_on)
		n = go_view_max(n, go_view_end(l->remote, 16));
	return n;
}

/* The part of the request the end reads: every field of the record that is in the request. */
static __always_inline __u32 req_end_view_len(const struct req_layout *l, int srq)
{
	__u32 n = go_view_end(l->method, 16);
	n = go_view_max(n, go_view_end(l->url, 8));
	n = go_view_max(n, go_view_end(l->host, 16));
	n = go_view_max(n, go_view_end(l->remote, 16));
	n = go_view_max(n, go_view_end(l->major, 8));
	n = go_view_max(n, go_view_end(l->minor, 8));
	n = go_view_max(n, go_view_end(l->tls, 8));
	if (!srq && pattern_mode == NETHTTP_PATTERN_FIELD)
		n = go_view_max(n, go_view_end(req_pattern_off, 16));
	else if (!srq && pattern_mode == NETHTTP_PATTERN_PAT_STR)
		n = go_view_max(n, go_view_end(req_pat_off, 8));
	return n;
}

/* ---- per-call state ---- */
struct server_call {
	__u64 req;        /* *http.Request: identifies the call (morestack re-entry check) */
	__u64 rw;         /* ResponseWriter data pointer passed to ServeHTTP: end markers must match it */
	__u64 ctx;        /* Request.ctx data pointer registered in bee_ctx_spans, or 0 */
	__u64 start_ns;   /* CLOCK_BOOTTIME, read first thing at entry */
	__u64 tracestate; /* string header of the tracestate value that came with a traceparent, or 0 */
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags; /* REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT when a traceparent came in */
	__u32 h2_stream_id; /* HTTP/2 stream id (0: HTTP/1, or unknown) */
	__u8 srq;           /* req is a net/http/internal/http2.ServerRequest (http2Handler.ServeHTTP) */
};

/*
 * Context in: the W3C traceparent (and tracestate) of the request, read from Request.Header at
 * the entry the probe already has (no extra uprobe). A valid one gives the span its trace id,
 * the caller's span as parent and the caller's sampled flag; an invalid one is ignored
 * (W3C Trace Context: start a new trace).
 */
static __always_inline void server_context_in(__u32 header_off, struct server_call *st)
{
	if (map_mode == GO_MAP_NONE || header_off == GO_OFF_UNSET)
		return;
	int err = 0;
	__u64 m = go_view_u64(REQ_VIEW, header_off, &err);
	if (!m)
		return;
	/* Collect the groups (swiss) or buckets (classic, overflow chains followed) to walk. */
	struct go_header_walk w = {};
	w.mode = map_mode;
	if (map_mode == GO_MAP_SWISS && map_dirptr_off != GO_OFF_UNSET && map_dirlen_off != GO_OFF_UNSET) {
		go_view_read(MAP_VIEW, m, go_view_max(go_view_end(map_dirptr_off, 8), go_view_end(map_dirlen_off, 8)));
		__u64 dir = go_view_u64(MAP_VIEW, map_dirptr_off, &err);
		__s64 dirlen = (__s64)go_view_u64(MAP_VIEW, map_dirlen_off, &err);
		if (!dir)
			return;
		if (dirlen == 0) {
			w.groups[0] = dir; /* a small map: dirPtr is its one group */
			w.ngroups = 1;
		} else if (table_groups_off != GO_OFF_UNSET && groups_data_off != GO_OFF_UNSET && groups_mask_off != GO_OFF_UNSET) {
			/* Small directories only: a header map big enough for several tables is not walked. */
			__u64 table = go_read_u64(dir, &err);
			__u64 groups = table ? go_read_u64(table + table_groups_off + groups_data_off, &err) : 0;
			__u64 mask = table ? go_read_u64(table + table_groups_off + groups_mask_off, &err) : 0;
			for (int g = 0; g < GO_MAP_MAX_GROUPS; g++) {
				if (!groups || (__u64)g > mask || dirlen != 1)
					break;
				w.groups[g] = groups + (__u64)g * GO_SWISS_GROUP_SIZE;
				w.ngroups = g + 1;
			}
		}
	} else if (map_mode == GO_MAP_BUCKETS && hmap_b_off != GO_OFF_UNSET && hmap_buckets_off != GO_OFF_UNSET) {
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
				w.groups[k & (GO_MAP_MAX_GROUPS - 1)] = bucket;
				k++;
				bucket = go_read_u64(bucket + GO_BUCKET_OVERFLOW_OFF, &err);
			}
		}
		w.ngroups = k;
	}
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
 * Live connection-matched join (bpf/include/conn_ctx.bpf.h): a request that came without a
 * traceparent, on an HTTP/1 connection whose peer end is the local end of a client request
 * another process traced by this beetrace has in flight, is that client span's child.
 *
 * The peer end is Request.RemoteAddr, the text net/http made of the connection's remote
 * address (net/http/server.go: c.remoteAddr = c.rwc.RemoteAddr().String(); net.TCPAddr.String
 * is net.JoinHostPort(IP.String(), port)): "a.b.c.d:port" for IPv4 and IPv4-mapped addresses,
 * "[x:x::x]:port" for IPv6 (RFC 5952 text, "%zone" inside the brackets for a zoned address).
 * It is parsed here into the key's form, one character per bpf_loop step (verified once).
 */
/* Server requests given a parent by connection (not a loss: a count for -v). */
__u64 conn_joins = 0;

#define CONN_TEXT_MAX 64 /* ≥ "[" + 39 (IPv6 text) + "%" + 15 (IFNAMSIZ-1) + "]:" + 5 digits */

enum conn_text_phase {
	CONN_TEXT_HOST = 0,
	CONN_TEXT_ZONE = 1,     /* inside "%zone]" */
	CONN_TEXT_BRACKET = 2,  /* after "]": ':' follows */
	CONN_TEXT_PORT = 3,
};

struct conn_text {
	__u8 s[CONN_TEXT_MAX];
	__u32 len;
	__u32 cur;  /* the number being read (octet, hex group, port) */
	__u32 port;
	__u16 g[8]; /* IPv6 groups, or the IPv4 octets in g[0..3] */
	__u8 phase; /* enum conn_text_phase */
	__u8 v6;
	__u8 n;     /* groups (octets) stored */
	__u8 nd;    /* digits in cur */
	__s8 gap;   /* IPv6: index in g where "::" stands, -1 none */
	__u8 colon; /* IPv6: the previous character was a ':' that ended nothing */
	__u8 bad;
};

static __always_inline int hex_val(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long conn_text_step(__u64 i, void *arg)
{
	struct conn_text *p = arg;
	if (i >= p->len || i >= CONN_TEXT_MAX)
		return 1;
	__u8 c = p->s[i & (CONN_TEXT_MAX - 1)];
	if (p->phase == CONN_TEXT_PORT) {
		if (c < '0' || c > '9' || p->nd >= 5)
			goto bad;
		p->port = p->port * 10 + (c - '0');
		p->nd++;
		return p->port > 65535 ? (p->bad = 1) : 0;
	}
	if (p->phase == CONN_TEXT_BRACKET) {
		if (c != ':')
			goto bad;
		p->phase = CONN_TEXT_PORT;
		p->nd = 0;
		return 0;
	}
	if (p->phase == CONN_TEXT_ZONE) {
		if (c == ']')
			p->phase = CONN_TEXT_BRACKET;
		return 0;
	}
	if (i == 0 && c == '[') {
		p->v6 = 1;
		return 0;
	}
	if (!p->v6) {
		if (c >= '0' && c <= '9') {
			p->cur = p->cur * 10 + (c - '0');
			p->nd++;
			if (p->nd > 3 || p->cur > 255)
				goto bad;
			return 0;
		}
		if ((c != '.' && c != ':') || p->nd == 0 || p->n > 3 || (c == '.') != (p->n < 3))
			goto bad;
		p->g[p->n & 7] = (__u16)p->cur;
		p->n++;
		p->cur = 0;
		p->nd = 0;
		if (c == ':')
			p->phase = CONN_TEXT_PORT;
		return 0;
	}
	int h = hex_val(c);
	if (h >= 0) {
		p->cur = (p->cur << 4) | (__u32)h;
		p->nd++;
		p->colon = 0;
		return p->nd > 4 ? (p->bad = 1) : 0;
	}
	if (c == ':' || c == ']' || c == '%') {
		if (p->nd > 0) {
			if (p->n >= 8)
				goto bad;
			p->g[p->n & 7] = (__u16)p->cur;
			p->n++;
			p->cur = 0;
			p->nd = 0;
			p->colon = c == ':';
		} else if (c == ':') {
			if (p->colon) {
				if (p->gap >= 0)
					goto bad;
				p->gap = (__s8)p->n; /* "::" */
				p->colon = 0;
			} else {
				p->colon = 1; /* the first ':' of a leading "::" */
			}
		}
		if (c == ']')
			p->phase = CONN_TEXT_BRACKET;
		else if (c == '%')
			p->phase = CONN_TEXT_ZONE;
		return 0;
	}
bad:
	p->bad = 1;
	return 1;
}

/* Request.RemoteAddr as a bee_conn_key (stream_id 0); 0 when it is not an IP:port text. */
static __always_inline int remote_addr_key(__u32 remote_off, struct bee_conn_key *key)
{
	struct conn_text p = {};
	int err = 0;
	struct go_string hdr = go_view_string(REQ_VIEW, remote_off, &err);
	if (err)
		return 0;
	if (hdr.len < 9 || hdr.len >= CONN_TEXT_MAX) /* "1.2.3.4:5" is the shortest */
		return 0;
	__u32 n = (__u32)hdr.len & (CONN_TEXT_MAX - 1);
	if (bpf_probe_read_user(p.s, n, (const void *)hdr.ptr) != 0)
		return 0;
	p.len = n;
	p.gap = -1;
	bpf_loop(CONN_TEXT_MAX, conn_text_step, &p, 0);
	if (p.bad || p.phase != CONN_TEXT_PORT || p.nd == 0)
		return 0;
	if (!p.v6) {
		if (p.n != 4)
			return 0;
		__u8 v4[4] = {(__u8)p.g[0], (__u8)p.g[1], (__u8)p.g[2], (__u8)p.g[3]};
		bee_conn_key_addr(key, v4, 4);
	} else {
		if ((p.gap < 0 && p.n != 8) || (p.gap >= 0 && p.n > 7))
			return 0;
		/* "::" stands for the 8 - n zero groups at gap */
		__u32 zeros = p.gap < 0 ? 0 : 8 - p.n;
		__u32 gap = p.gap < 0 ? 8 : (__u32)p.gap;
		for (__u32 i = 0; i < 8; i++) {
			__u16 v = i < gap ? p.g[i & 7] : i < gap + zeros ? 0 : p.g[(i - zeros) & 7];
			key->addr[(2 * i) & 15] = (__u8)(v >> 8);
			key->addr[(2 * i + 1) & 15] = (__u8)v;
		}
	}
	key->port = (__u16)p.port;
	return 1;
}

static __always_inline void server_conn_join(__u32 remote_off, struct server_call *st)
{
	if (!bee_conn_join_on)
		return;
	__u64 now = bpf_ktime_get_boot_ns();
	struct bee_conn_key key = {};
	if (remote_off == GO_OFF_UNSET || !remote_addr_key(remote_off, &key))
		return;
	/* HTTP/2: the client's entry names its stream (nethttp_client_h2*), written before the
	 * stream's HEADERS go out, so before this server can have read them. */
	key.stream_id = st->h2_stream_id;
	const struct bee_conn_span *c = bee_conn_parent(&key, now);
	if (!c)
		return;
	bee_conn_adopt(&st->sc, st->parent_span_id, c);
	st->flags = REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT | NETHTTP_SERVER_F_CONN_JOINED;
	bee_count(&conn_joins);
}

struct client_call {
	__u64 req; /* *http.Request */
	__u64 start_ns;
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags; /* REC_SPAN_F_HAS_PARENT, REC_SPAN_F_PARENT_BY_CTX */
	/* the connection's local end (nethttp_client_conn); local_addr_size 0 = unknown */
	__u16 local_port;
	__u8 local_addr_size;
	__u8 local_addr[16];
	__u8 xnet; /* begun by x/net's ClientConn: 1 RoundTrip, 2 roundTrip (only that function's RETs end it) */
	__u32 h2_stream_id; /* HTTP/2: the request's stream (nethttp_client_h2*); 0 HTTP/1 or unknown */
	__u64 url;          /* Request.URL: finds the call from the HTTP/2 stream's goroutine */
};

/* LRU: a call that never ends (a panic unwinding the handler, a hijack on another goroutine)
 * must not fill the map for good; entry_replaced counts the ones seen again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct server_call);
} nethttp_server_calls SEC(".maps");

/*
 * The fast path in front of nethttp_server_calls: a direct-mapped table of calls in flight by
 * goroutine (bpf/include/slots.bpf.h): one array element instead of an LRU lookup, update,
 * lookup and delete per request.
 */
#define SERVER_SLOT_BITS 12
#define SERVER_SLOTS (1u << SERVER_SLOT_BITS) /* ~0.5 MB of state */
/* Slot index mask: SERVER_SLOTS - 1, or smaller when user space says so (BEETRACE_SERVER_SLOTS:
 * the e2e tests make every goroutine share one slot, so the LRU path and the claim race run). */
volatile const __u32 server_slot_mask = SERVER_SLOTS - 1;
/* Slots owned by a goroutine, holding its call. */
BEE_SLOT_TABLE(server_slot, struct server_call, st, nethttp_server_slots, server_slot_of, SERVER_SLOT_BITS, server_slot_mask)

/* What nethttp_server_calls, nethttp_client_calls and nethttp_client_urls hold (slots.bpf.h:
 * while a map is empty, a goroutine without a slot is not looked up there). */
struct nethttp_map_fill {
	__s64 server;
	__s64 client;
	__s64 urls; /* nethttp_client_urls */
};
BEE_FILL_COUNTS(struct nethttp_map_fill, nethttp_map_fill, nethttp_fill)

/* Where the entry builds a call before server_call_store copies it into its slot or the LRU map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct server_call);
} nethttp_server_spare SEC(".maps");

/* server_call_of/_drop/_store (_get, _put unused): slots.bpf.h. Their slot-or-map branches,
 * inlined, doubled what the verifier walked through the entry's header walk and the end's
 * record building; peek and take below are global functions for the same reason. */
BEE_CALL_TABLE(server_call, struct server_call, server_slot, server_slot_of, nethttp_server_calls, BEE_FILL_FIELD(nethttp_fill, server))

/* What goroutine g had in flight, for an entry of request req (enum call_peek_result). */
struct server_peek {
	__u64 ctx;      /* the stale call's registered context, or 0 */
	__u8 srq;       /* the stale call was begun at http2Handler.ServeHTTP */
	__u8 in_map;    /* the stale call is in the LRU map (not in the slot) */
};

__noinline int server_call_peek(__u64 g, __u64 req, struct server_peek *out)
{
	if (!out)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct server_call *old = server_call_of(g, server_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (old->req == req)
		return CALL_PEEK_SAME;
	out->ctx = old->ctx;
	out->srq = old->srq;
	out->in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* Takes goroutine g's call at an end: copies it into *out and frees its slot or map entry,
 * unless marker_rw names another writer than the call's. */
__noinline int server_call_take(__u64 g, __u64 marker_rw, struct server_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct server_slot *slot = server_slot_of(g);
	int in_slot = 0;
	struct server_call *stp = server_call_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if (marker_rw && stp->rw != marker_rw)
		return CALL_TAKE_OTHER;
	*out = *stp;
	server_call_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct client_call);
} nethttp_client_calls SEC(".maps");

/*
 * The client's calls in flight by goroutine: slots in front of nethttp_client_calls, as the
 * server's, behind global functions (inlined, the slot-or-map branches through every client
 * program cost ~40 ms of verification). The programs that add to a call in flight (the
 * connection's local end, an HTTP/2 stream's id) work on a copy (client_call_get) and put it
 * back (client_call_put); an HTTP/2 stream's goroutine does so for the caller's goroutine, which
 * waits in RoundTrip meanwhile.
 */
#define CLIENT_SLOT_BITS 12
#define CLIENT_SLOTS (1u << CLIENT_SLOT_BITS)
volatile const __u32 client_slot_mask = CLIENT_SLOTS - 1; /* as server_slot_mask */
BEE_SLOT_TABLE(client_slot, struct client_call, st, nethttp_client_slots, client_slot_of, CLIENT_SLOT_BITS, client_slot_mask)

/* Where client_call_get copies a call for the program that adds to it (this CPU's). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct client_call);
} nethttp_client_spare SEC(".maps");

/* client_call_of/_drop/_store/_get/_put: slots.bpf.h. */
BEE_CALL_TABLE(client_call, struct client_call, client_slot, client_slot_of, nethttp_client_calls, BEE_FILL_FIELD(nethttp_fill, client))

/* As server_call_peek: NONE, SAME (morestack) or STALE (*stale_in_map: it is in the LRU map). */
__noinline int client_call_peek(__u64 g, __u64 req, int *stale_in_map)
{
	if (!stale_in_map)
		return CALL_PEEK_NONE;
	int in_slot = 0;
	struct client_call *old = client_call_of(g, client_slot_of(g), &in_slot);
	if (!old)
		return CALL_PEEK_NONE;
	if (old->req == req)
		return CALL_PEEK_SAME;
	*stale_in_map = !in_slot;
	return CALL_PEEK_STALE;
}

/* Takes goroutine g's call at an end, as server_call_take; OTHER: an x/net call nested in
 * another (xnet given and different from the call's): the outer call's RETs end the span. */
__noinline int client_call_take(__u64 g, __u32 xnet, struct client_call *out)
{
	if (!out)
		return CALL_TAKE_NONE;
	struct client_slot *slot = client_slot_of(g);
	int in_slot = 0;
	struct client_call *stp = client_call_of(g, slot, &in_slot);
	if (!stp)
		return CALL_TAKE_NONE;
	if (xnet && stp->xnet != xnet)
		return CALL_TAKE_OTHER;
	*out = *stp;
	client_call_drop(g, slot, in_slot);
	return CALL_TAKE_OK;
}

/*
 * Request.URL pointer → the goroutine of the client call that sends it. HTTP/2 writes a request
 * from a goroutine of its own (clientStream.doRequest), which knows the request, not the caller:
 * the URL pointer is what every copy of the request on the way there shares (net/http's
 * setupRewindBody/rewindBody and http2's retry make shallow copies; Go 1.27's ClientRequest
 * copies the pointer), while distinct requests parse their own URL.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64);   /* *url.URL */
	__type(value, __u64); /* goroutine */
} nethttp_client_urls SEC(".maps");

/*
 * The same in slots keyed by the URL pointer (slots.bpf.h), in front of nethttp_client_urls:
 * every client call registers its URL at entry and removes it at its end, an LRU update, lookup
 * and delete (~1 µs a call) where most calls (HTTP/1) never look it up. The reader is another
 * goroutine (the HTTP/2 stream's), so it takes the goroutine between two reads of the owner, as
 * bee_ctx_span_copy does; BEETRACE_SERVER_SLOTS narrows these with client_slot_mask.
 */
#define CLIENT_URL_SLOT_BITS 12
BEE_SLOT_TABLE(client_url_slot, __u64, st, nethttp_client_url_slots, client_url_slot_of, CLIENT_URL_SLOT_BITS, client_slot_mask)
/* client_url_set(url, &g): from now on the call of goroutine g sends URL url (a client call's
 * entry; a URL registered again, a request copied with its URL pointer and sent meanwhile on
 * another goroutine, goes to the latest call, as in the map). client_url_copy(url, &g): the
 * goroutine whose call sends it (an HTTP/2 stream's goroutine asks). slots.bpf.h. */
BEE_SHARED_TABLE(client_url, __u64, client_url_slot, client_url_slot_of, nethttp_client_urls, BEE_FILL_FIELD(nethttp_fill, urls))

/* The call of goroutine g that sent URL url is over (unless the URL is another call's now). */
__noinline int client_url_clear(__u64 url, __u64 g)
{
	struct client_url_slot *s = client_url_slot_of(url);
	if (s && *(volatile __u64 *)&s->h.owner == url) {
		if (s->st == g)
			bee_slot_release(&s->h);
		return 0;
	}
	__s64 *count = BEE_FILL_FIELD(nethttp_fill, urls);
	__u64 *owner = bee_fill_lookup(&nethttp_client_urls, &url, count);
	if (owner && *owner == g)
		bee_fill_delete(&nethttp_client_urls, &url, count);
	return 0;
}

/* Makes every record struct and enum of nethttp.h appear in the object's BTF (user space
 * generates its decoders from it): a pointer is enough for clang to emit the full types. */
const struct rec_nethttp_server *nethttp_btf_server __attribute__((unused));
const struct rec_nethttp_client *nethttp_btf_client __attribute__((unused));
const enum rec_type *nethttp_btf_type __attribute__((unused));
const enum rec_span_flags *nethttp_btf_span_flags __attribute__((unused));
const enum rec_nethttp_server_flags *nethttp_btf_server_flags __attribute__((unused));
const enum rec_nethttp_client_flags *nethttp_btf_client_flags __attribute__((unused));
const enum nethttp_pattern_mode *nethttp_btf_pattern_mode __attribute__((unused));
const enum nethttp_end *nethttp_btf_end __attribute__((unused));
const enum nethttp_writer *nethttp_btf_writer __attribute__((unused));
const enum nethttp_end_cookie *nethttp_btf_end_cookie __attribute__((unused));
const enum bee_sampler *nethttp_btf_sampler __attribute__((unused));
const enum go_err_cause *nethttp_btf_err_cause __attribute__((unused));
const enum go_map_mode *nethttp_btf_map_mode __attribute__((unused));

/* Starts loading goroutine g's slots (its call, its span) and context ctx's (bee_slot_touch):
 * global, verified once. */
__noinline int server_slots_touch(__u64 g, __u64 ctx)
{
	BEE_SLOT_TOUCH(server_slot_of, g);
	bee_span_slots_touch(g, ctx);
	return 0;
}

static __always_inline __u8 clamp_u8(__s64 v)
{
	return v < 0 ? 0 : v > 0xff ? 0xff : (__u8)v;
}

/* An HTTP/2 server request's stream id: ResponseWriter → rws → stream → id (0 unknown). The
 * state is the handler's for the whole request (runHandler hands it out before the handler runs). */
static __always_inline __u32 h2_server_stream(__u64 rw, __u32 rws_off, __u32 stream_off, __u32 id_off)
{
	if (rws_off == GO_OFF_UNSET || stream_off == GO_OFF_UNSET || id_off == GO_OFF_UNSET || !rw)
		return 0;
	int err = 0;
	__u64 rws = go_read_u64(rw + rws_off, &err);
	__u64 stream = rws ? go_read_u64(rws + stream_off, &err) : 0;
	__u32 id = 0;
	if (err || !stream || bpf_probe_read_user(&id, sizeof(id), (const void *)(stream + id_off)) != 0)
		return 0;
	return id;
}

/* A server span starts: rw is the ResponseWriter's data pointer, req the *http.Request; http1:
 * an HTTP/1 request; sid: an HTTP/2 request's stream id (0 unknown). Both can be joined by
 * connection (one request at a time on HTTP/1; the stream names the request on HTTP/2). */
static __always_inline int server_start(struct pt_regs *ctx, __u64 rw, __u64 req, int http1, __u32 sid, int srq)
{
	struct req_layout l = {};
	req_layout_of(srq, &l);
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;
	{
		/* The context is read again below, where a failed read counts: an error flag set
		 * this early would double the states the verifier walks through the rest. */
		int touch_err = 0;
		server_slots_touch(g, l.ctx != GO_OFF_UNSET ? go_view_u64(REQ_VIEW, l.ctx + 8, &touch_err) : 0);
	}

	struct server_peek peek = {};
	int seen = server_call_peek(g, req, &peek);
	if (seen == CALL_PEEK_SAME)
		return 0; /* morestack re-ran the prologue: already recorded */
	if (seen == CALL_PEEK_STALE) {
		/* The earlier call on this goroutine never ended (panic, Goexit). */
		if (!peek.srq)
			bee_count(&entry_replaced);
		if (peek.ctx)
			bee_ctx_span_clear(peek.ctx);
	}

	/* Built in this CPU's spare (off the stack, which the header walk's frames nearly fill),
	 * then stored in the goroutine's slot or the LRU map (server_call_store). */
	__u32 zero = 0;
	struct server_call *st = bpf_map_lookup_elem(&nethttp_server_spare, &zero);
	if (!st)
		return 0;
	__builtin_memset(st, 0, sizeof(*st));
	st->req = req;
	st->rw = rw;
	st->h2_stream_id = sid;
	st->srq = (__u8)srq;
	bee_new_trace_id(&st->sc);
	bee_new_span_id(&st->sc);
	server_context_in(l.header, st);
	if (!(st->flags & REC_SPAN_F_HAS_PARENT) && (http1 || sid))
		server_conn_join(l.remote, st);
	/* Request.ctx is an interface {tab, data}; the data pointer identifies the context (the
	 * ServerRequest's Context is the one http2Handler gives the Request it builds). */
	__u64 req_ctx = 0;
	if (l.ctx != GO_OFF_UNSET)
		req_ctx = go_view_u64(REQ_VIEW, l.ctx + 8, &err);
	st->ctx = req_ctx;
	if (err)
		bee_count(&read_errors);

	/* Children find the span from here on. */
	bee_goroutine_span_set(g, &st->sc);
	if (req_ctx && bee_ctx_span_set(req_ctx, &st->sc) != 0)
		bee_count(&ctx_map_full);
	/* The span starts when the service goes on: this program's own work (ids, the header walk,
	 * the map updates: several µs) is the tracer's time, not the request's. No child can start
	 * before this (the handler runs after the program returns). The entry reads no other clock. */
	st->start_ns = bpf_ktime_get_boot_ns();
	if (server_call_store(g, st, seen == CALL_PEEK_STALE && peek.in_map) != 0) {
		bee_count(&inflight_full);
		bee_goroutine_span_clear(g);
		if (req_ctx)
			bee_ctx_span_clear(req_ctx);
		return 0;
	}
	return 0;
}

/* The request's fields server_start reads, in one read (srq: a ServerRequest). */
static __always_inline void server_entry_view(__u64 req, int srq)
{
	struct req_layout l = {};
	req_layout_of(srq, &l);
	go_view_read(REQ_VIEW, req, req_entry_view_len(&l));
}

/*
 * func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)
 * serverHandler is a one-pointer struct (RAX); rw = itab RBX, data RCX; req = RDI.
 */
SEC("uprobe")
int nethttp_server_entry(struct pt_regs *ctx)
{
	__u64 req = GO_PARAM4(ctx);
	/* serverHandler.ServeHTTP also serves net/http's own HTTP/2 requests (ProtoMajor 2), whose
	 * ResponseWriter is an *http2responseWriter (Go 1.27: pointer-shaped http2ResponseWriter
	 * around *internal/http2.responseWriter): the stream id is read from it. */
	int err = 0;
	server_entry_view(req, 0);
	__u64 major = req_proto_major_off != GO_OFF_UNSET ? go_view_u64(REQ_VIEW, req_proto_major_off, &err) : 0;
	int http1 = major == 1 && !err;
	__u64 rw = GO_PARAM3(ctx);
	__u32 sid = 0;
	if (major == 2 && !err && (nameoff_http1_response < 0 || go_error_type_nameoff(GO_PARAM2(ctx)) != nameoff_http1_response))
		sid = h2_server_stream(rw, h2_rw_rws_off, h2_rws_stream_off, h2_stream_id_off);
	return server_start(ctx, rw, req, http1, sid, 0);
}

/*
 * golang.org/x/net/http2: func (sc *serverConn) runHandler(rw *responseWriter, req *http.Request,
 * handler func(http.ResponseWriter, *http.Request)): sc = RAX, rw = RBX, req = RCX. The x/net
 * server (h2c.NewHandler, http2.ConfigureServer, Server.ServeConn) calls the handler from here,
 * never through serverHandler.ServeHTTP.
 */
SEC("uprobe")
int nethttp_server_entry_xnet(struct pt_regs *ctx)
{
	__u64 rw = GO_PARAM2(ctx);
	__u64 req = GO_PARAM3(ctx);
	server_entry_view(req, 0);
	return server_start(ctx, rw, req, 0, h2_server_stream(rw, xnet_rw_rws_off, xnet_rws_stream_off, xnet_stream_id_off), 0);
}

/*
 * Go 1.27: func (h http2Handler) ServeHTTP(w *http2.ResponseWriter, req *http2.ServerRequest)
 * (src/net/http/http2.go): h is a one-interface struct (itab RAX, data RBX), w = RCX, req = RDI.
 * net/http's HTTP/2 server (net/http/internal/http2) calls every handler through it; around
 * serverHandler (net/http's own server, TLS or h2c) the request reaches serverHandler.ServeHTTP,
 * which traces it, so nothing is done here. Around anything else — x/net >= v0.62's h2c server
 * (golang.org/x/net/http2/server_wrap.go) hands the application's handler to net/http's server —
 * the handler gets a *Request built here that no probe sees: the span begins here and reads the
 * ServerRequest (the same method, URL, host, peer, TLS, headers and context; no route: ServeMux
 * sets Request.Pattern on the copy). It ends at runHandler's deferred func like every HTTP/2
 * request of net/http/internal/http2 (the markers of serverHandler.ServeHTTP's uprobe).
 */
SEC("uprobe")
int nethttp_server_entry_h2handler(struct pt_regs *ctx)
{
	if (nameoff_server_handler < 0 || srq_method_off == GO_OFF_UNSET || srq_url_off == GO_OFF_UNSET || srq_host_off == GO_OFF_UNSET ||
	    srq_remote_addr_off == GO_OFF_UNSET || srq_proto_major_off == GO_OFF_UNSET || srq_proto_minor_off == GO_OFF_UNSET)
		return 0;
	__u64 tab = GO_PARAM1(ctx);
	if (!tab || go_error_type_nameoff(tab) == nameoff_server_handler)
		return 0;
	__u64 rw = GO_PARAM3(ctx);
	__u64 req = GO_PARAM4(ctx);
	server_entry_view(req, 1);
	return server_start(ctx, rw, req, 0, h2_server_stream(rw, h2_rw_rws_off, h2_rws_stream_off, h2_stream_id_off), 1);
}

/* Status of the response being finished; *flags gets NETHTTP_SERVER_F_STATUS when read. */
static __always_inline __u16 server_status(__u64 rw, __u32 writer, __u8 proto_major, __u16 *flags, int *err)
{
	/*
	 * At a RET the writer's type is not known from the marker: serverHandler.ServeHTTP receives a
	 * *http.response only from the HTTP/1 server (net/http/server.go, conn.serve); the bundled
	 * HTTP/2 server passes an *http2responseWriter with ProtoMajor 2 (net/http/h2_bundle.go).
	 */
	if (writer == NETHTTP_WRITER_UNKNOWN && req_proto_major_off != GO_OFF_UNSET)
		writer = proto_major == 1 ? NETHTTP_WRITER_HTTP1 : proto_major == 2 ? NETHTTP_WRITER_HTTP2 : NETHTTP_WRITER_UNKNOWN;
	if (writer == NETHTTP_WRITER_HTTP1 && response_status_off != GO_OFF_UNSET) {
		*flags |= NETHTTP_SERVER_F_STATUS;
		return bee_clamp_status((__s64)go_read_u64(rw + response_status_off, err));
	}
	if (writer == NETHTTP_WRITER_XNET_H2 && xnet_rw_rws_off != GO_OFF_UNSET && xnet_rws_status_off != GO_OFF_UNSET) {
		__u64 rws = go_read_u64(rw + xnet_rw_rws_off, err);
		if (rws) {
			*flags |= NETHTTP_SERVER_F_STATUS;
			return bee_clamp_status((__s64)go_read_u64(rws + xnet_rws_status_off, err));
		}
	}
	/* The HTTP/2 writer's state (rws) stays valid until runHandler's deferred handlerDone. */
	if (writer == NETHTTP_WRITER_HTTP2 && h2_rw_rws_off != GO_OFF_UNSET && h2_rws_status_off != GO_OFF_UNSET) {
		__u64 rws = go_read_u64(rw + h2_rw_rws_off, err);
		if (rws) {
			*flags |= NETHTTP_SERVER_F_STATUS;
			return bee_clamp_status((__s64)go_read_u64(rws + h2_rws_status_off, err));
		}
	}
	return 0;
}

/*
 * Ends the server span of this goroutine. marker_rw: the ResponseWriter the marker function
 * received (0 when it receives none); a marker call for another writer is not this span's end.
 */
static __always_inline int server_end(struct pt_regs *ctx, __u64 marker_rw, __u32 writer, __u32 how, __u16 end_flags)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;
	/* After a long handler the slots the entry claimed are cold again (bee_slot_touch). */
	server_slots_touch(g, 0);

	struct server_call st = {};
	int taken = server_call_take(g, marker_rw, &st);
	if (taken == CALL_TAKE_NONE) {
		/* At a marker this is normal (a second hit after morestack, a request we did not see
		 * start, a connection closing after its last request); at a RET it means the entry was
		 * missed (attached mid-call). */
		if (how == NETHTTP_END_RET)
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
	struct rec_nethttp_server *r = (struct rec_nethttp_server *)buf;
	__u16 flags = end_flags;
	__u16 truncated = 0;
	/* In a deferred func, a panic in progress is g._panic (runtime/runtime2.go). */
	__u64 panic_text = 0;
	if (how == NETHTTP_END_DEFERRED) {
		__u64 p = g_panic_off != GO_OFF_UNSET ? go_read_u64(g + g_panic_off, &err) : 0;
		if (p) {
			flags |= NETHTTP_SERVER_F_PANIC;
			if (panic_arg_off != GO_OFF_UNSET) {
				struct go_iface arg = {};
				if (bpf_probe_read_user(&arg, sizeof(arg), (const void *)(p + panic_arg_off)) == 0)
					panic_text = go_any_text(arg.tab, arg.data);
			}
		} else if (writer == NETHTTP_WRITER_HTTP1) {
			/* conn.serve's deferred func after a request that never finished: runtime.Goexit,
			 * or a panic we cannot see without g._panic's offset (user space then uses
			 * handlerDone rather than this path for HTTP/2). */
			flags |= NETHTTP_SERVER_F_ABORTED;
		}
	}
	if (how == NETHTTP_END_RET)
		flags |= REC_SPAN_F_END_AT_RET;
	flags |= st.flags | st.sc.trace_flags;
	r->h.type = REC_NETHTTP_SERVER;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);
	r->h2_stream_id = st.h2_stream_id;

	__u64 req = st.req;
	struct req_layout l = {};
	req_layout_of(st.srq, &l);
	go_view_read(REQ_VIEW, req, req_end_view_len(&l, st.srq));
	r->proto_major = clamp_u8((__s64)go_view_u64(REQ_VIEW, l.major, &err));
	r->proto_minor = clamp_u8((__s64)go_view_u64(REQ_VIEW, l.minor, &err));
	/* The status is set by WriteHeader during the handler, so it is read at the end. */
	r->status = server_status(st.rw, writer, r->proto_major, &flags, &err);
	if (l.tls != GO_OFF_UNSET) {
		flags |= NETHTTP_SERVER_F_TLS_KNOWN;
		if (go_view_u64(REQ_VIEW, l.tls, &err) != 0)
			flags |= NETHTTP_SERVER_F_TLS;
	}

	__u32 pos = __builtin_offsetof(struct rec_nethttp_server, strings);
	r->method_len = bee_put_go_str(buf, &pos, go_view_string(REQ_VIEW, l.method, &err), NETHTTP_METHOD_CAP, &truncated, 0, &err);
	__u64 url = go_view_u64(REQ_VIEW, l.url, &err);
	r->path_len = url ? bee_put_go_string(buf, &pos, url + url_path_off, NETHTTP_PATH_CAP, &truncated, 1, &err) : 0;
	r->host_len = bee_put_go_str(buf, &pos, go_view_string(REQ_VIEW, l.host, &err), NETHTTP_HOST_CAP, &truncated, 2, &err);
	r->remote_len = bee_put_go_str(buf, &pos, go_view_string(REQ_VIEW, l.remote, &err), NETHTTP_REMOTE_CAP, &truncated, 3, &err);
	/* ServeMux stores the matched pattern in the Request during ServeHTTP: read it now (a
	 * ServerRequest has none). */
	r->pattern_len = 0;
	if (st.srq) {
	} else if (pattern_mode == NETHTTP_PATTERN_FIELD) {
		r->pattern_len = bee_put_go_str(buf, &pos, go_view_string(REQ_VIEW, req_pattern_off, &err), NETHTTP_PATTERN_CAP, &truncated, 4, &err);
		flags |= NETHTTP_SERVER_F_PATTERN;
	} else if (pattern_mode == NETHTTP_PATTERN_PAT_STR) {
		__u64 pat = go_view_u64(REQ_VIEW, req_pat_off, &err);
		if (pat)
			r->pattern_len = bee_put_go_string(buf, &pos, pat + pattern_str_off, NETHTTP_PATTERN_CAP, &truncated, 4, &err);
		flags |= NETHTTP_SERVER_F_PATTERN;
	}
	r->panic_len = 0;
	if (panic_text)
		r->panic_len = bee_put_go_string(buf, &pos, panic_text, NETHTTP_PANIC_CAP, &truncated, 5, &err);
	r->tracestate_len = 0;
	if (st.tracestate)
		r->tracestate_len = bee_put_go_string(buf, &pos, st.tracestate, NETHTTP_TRACESTATE_CAP, &truncated, 6, &err);
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/* func (w *response) finishRequest(): w = RAX. conn.serve calls it right after the handler. */
SEC("uprobe")
int nethttp_server_end_http1(struct pt_regs *ctx)
{
	return server_end(ctx, GO_PARAM1(ctx), NETHTTP_WRITER_HTTP1, NETHTTP_END_MARKER, 0);
}

/* runHandler's deferred func (a closure: no arguments in registers): the HTTP/2 handler has
 * returned or is panicking. The goroutine runs only this request's handler. */
SEC("uprobe")
int nethttp_server_end_http2(struct pt_regs *ctx)
{
	return server_end(ctx, 0, NETHTTP_WRITER_HTTP2, NETHTTP_END_DEFERRED, 0);
}

/* func (w *http2responseWriter) handlerDone(): w = RAX; only a normal return reaches it (used
 * when g._panic's offset is unknown, so runHandler's deferred func cannot tell a panic). */
SEC("uprobe")
int nethttp_server_end_http2_done(struct pt_regs *ctx)
{
	return server_end(ctx, GO_PARAM1(ctx), NETHTTP_WRITER_HTTP2, NETHTTP_END_MARKER, 0);
}

/* conn.serve's deferred func (a closure): the connection's goroutine is ending; a request
 * still open on it panicked (or called runtime.Goexit). */
SEC("uprobe")
int nethttp_server_end_conn(struct pt_regs *ctx)
{
	return server_end(ctx, 0, NETHTTP_WRITER_HTTP1, NETHTTP_END_DEFERRED, 0);
}

/* func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error): w = RAX. The connection
 * leaves net/http; no finishRequest will follow. */
SEC("uprobe")
int nethttp_server_end_hijack(struct pt_regs *ctx)
{
	return server_end(ctx, GO_PARAM1(ctx), NETHTTP_WRITER_HTTP1, NETHTTP_END_MARKER, NETHTTP_SERVER_F_HIJACKED);
}

/* golang.org/x/net/http2: runHandler's deferred func (as nethttp_server_end_http2). */
SEC("uprobe")
int nethttp_server_end_xnet(struct pt_regs *ctx)
{
	return server_end(ctx, 0, NETHTTP_WRITER_XNET_H2, NETHTTP_END_DEFERRED, 0);
}

/* golang.org/x/net/http2: func (w *responseWriter) handlerDone(), w = RAX (as nethttp_server_end_http2_done). */
SEC("uprobe")
int nethttp_server_end_xnet_done(struct pt_regs *ctx)
{
	return server_end(ctx, GO_PARAM1(ctx), NETHTTP_WRITER_XNET_H2, NETHTTP_END_MARKER, 0);
}

/* At each RET of x/net's runHandler, when its markers cannot be used. */
SEC("uprobe")
int nethttp_server_return_xnet(struct pt_regs *ctx)
{
	return server_end(ctx, 0, NETHTTP_WRITER_XNET_H2, NETHTTP_END_RET, 0);
}

/* Every server end at once, told apart by the attach cookie (enum nethttp_end_cookie). */
SEC("uprobe")
int nethttp_server_end(struct pt_regs *ctx)
{
	__u64 c = bpf_get_attach_cookie(ctx);
	__u64 rw = (c & NETHTTP_COOKIE_RW_ARG) ? GO_PARAM1(ctx) : 0;
	__u16 end_flags = (c & NETHTTP_COOKIE_HIJACKED) ? NETHTTP_SERVER_F_HIJACKED : 0;
	return server_end(ctx, rw, c & NETHTTP_COOKIE_WRITER_MASK, (c >> NETHTTP_COOKIE_HOW_SHIFT) & NETHTTP_COOKIE_HOW_MASK, end_flags);
}

/* At each RET of serverHandler.ServeHTTP, for binaries without the markers above. */
SEC("uprobe")
int nethttp_server_return(struct pt_regs *ctx)
{
	return server_end(ctx, 0, NETHTTP_WRITER_UNKNOWN, NETHTTP_END_RET, 0);
}

/*
 * func (t *Transport) roundTrip(req *Request) (*Response, error)
 * t = RAX, req = RBX.
 */
static __always_inline int client_start(struct pt_regs *ctx, __u64 now, __u8 xnet)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 req = GO_PARAM2(ctx);
	int err = 0;

	int stale_in_map = 0;
	int seen = client_call_peek(g, req, &stale_in_map);
	if (seen == CALL_PEEK_SAME)
		return 0; /* morestack re-ran the prologue: already recorded */
	if (seen == CALL_PEEK_STALE)
		bee_count(&entry_replaced);

	struct client_call st = {};
	st.start_ns = now;
	st.req = req;
	st.xnet = xnet;
	__u64 ctx_data = 0;
	if (req_ctx_off != GO_OFF_UNSET)
		ctx_data = go_read_u64(req + req_ctx_off + 8, &err);
	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	st.url = go_read_u64(req + req_url_off, &err);
	if (err)
		bee_count(&read_errors);
	/* As for a server span (server_start): the span starts when the service goes on, after
	 * this program's own work (the parent walk, the ids). */
	st.start_ns = bpf_ktime_get_boot_ns();
	if (client_call_store(g, &st, stale_in_map) != 0) {
		bee_count(&inflight_full);
		return 0;
	}
	if (st.url)
		client_url_set(st.url, &g);
	return 0;
}

SEC("uprobe")
int nethttp_client_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_start(ctx, now, 0);
}

/*
 * golang.org/x/net/http2: func (cc *ClientConn) RoundTrip(req *http.Request) (*http.Response, error)
 * and, in releases where RoundTrip is a one-line wrapper the compiler inlines,
 * func (cc *ClientConn) roundTrip(req *http.Request, ...) (*http.Response, error): cc = RAX,
 * req = RBX, the registers of net/http's roundTrip. Reached directly (an http2.Transport as the
 * client's RoundTripper) or from net/http's roundTrip (http2.ConfigureTransport); when a call
 * nests in another, the same request is already traced on this goroutine and client_start leaves
 * it alone.
 */
SEC("uprobe")
int nethttp_client_entry_xnet(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_start(ctx, now, 1);
}

SEC("uprobe")
int nethttp_client_entry_xnet_inner(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_start(ctx, now, 2);
}

/* The bee_conn_spans key of the connection a client call went out on (local_addr_size != 0). */
static __always_inline void client_conn_key(const struct client_call *st, struct bee_conn_key *key)
{
	bee_conn_key_addr(key, st->local_addr, st->local_addr_size);
	key->port = st->local_port;
	key->stream_id = st->h2_stream_id;
}

/* Removes the connection's entry if it still names this call's span (a later request on the
 * connection has replaced it otherwise; an entry that stays is bounded by the LRU). */
static __always_inline void client_conn_forget(const struct client_call *st)
{
	if (!bee_conn_publish_on)
		return;
	struct bee_conn_key key = {};
	client_conn_key(st, &key);
	bee_conn_forget(&key, st->sc.span_id);
}

/*
 * iface_field0_kind's answers by itab: seven reads of type descriptors per interface, twice per
 * client request, for answers that never change (an itab and the types it names live as long as
 * the process). One word per entry, itab << 8 | kind (user addresses are below 2^48), so a
 * reader never sees one itab's address with another's kind; only found kinds are kept.
 */
#define ITAB_KIND_SLOT_BITS 8
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1u << ITAB_KIND_SLOT_BITS);
	__type(key, __u32);
	__type(value, __u64);
} nethttp_itab_kinds SEC(".maps");

/* The kind of the first field of the struct that the pointer type behind `itab` points to
 * (0 when the dynamic type is not a pointer to a struct, or a read fails). A global function:
 * verified once, not at each of its inlined uses (start-up). */
__noinline int iface_field0_kind(__u64 itab)
{
	__u32 i = bee_slot_index(itab, ITAB_KIND_SLOT_BITS, (1u << ITAB_KIND_SLOT_BITS) - 1);
	__u64 *cached = bpf_map_lookup_elem(&nethttp_itab_kinds, &i);
	if (cached) {
		__u64 v = *(volatile __u64 *)cached;
		if (v && (v >> 8) == itab)
			return (__u8)v;
	}
	int err = 0;
	__u64 type = go_read_u64(itab + GO_ITAB_TYPE_OFF, &err);
	if (err || go_type_kind(type) != GO_KIND_POINTER)
		return 0;
	__u64 elem = go_read_u64(type + GO_PTRTYPE_ELEM_OFF, &err);
	if (err || go_type_kind(elem) != GO_KIND_STRUCT)
		return 0;
	__u64 fields = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF, &err);
	__u64 n = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF + 8, &err);
	if (err || !fields || !n)
		return 0;
	__u8 kind = go_type_kind(go_read_u64(fields + GO_STRUCTFIELD_TYP_OFF, &err));
	if (cached && !err && kind && itab < (1ull << 56))
		*(volatile __u64 *)cached = itab << 8 | kind;
	return kind;
}

/*
 * func (pc *persistConn) roundTrip(req *transportRequest) (*Response, error); pc = RAX.
 * Runs on the goroutine of (*Transport).roundTrip once it has chosen the connection (HTTP/1;
 * HTTP/2 requests go to the http2 transport instead): records the connection's local address
 * in the call state, for the client record, and the span under that address in bee_conn_spans
 * (the request in flight on the connection: live joins, socket-layer propagation; removed at
 * the span's end if no later request replaced it). The connection is recognised by the shape of its
 * dynamic type, not by an address (stripped and PIE binaries have no itab symbols to compare):
 *   *net.TCPConn: a pointer to a struct whose first field is the struct net.conn {fd *netFD};
 *   *crypto/tls.Conn: a pointer to a struct whose first field is an interface (its net.Conn),
 *     unwrapped once;
 * and netFD.laddr must be a *net.TCPAddr: a pointer to a struct whose first field (IP) is a
 * slice (net.UnixAddr starts with a string), 4 or 16 bytes long, with a port in 0-65535.
 * Anything else leaves the address unknown. A retried request (roundTrip picks another
 * connection) records the connection it last went out on.
 */
/*
 * The local end of a connection `c` (a net.Conn interface value) into st's local_addr/port:
 * *net.TCPConn, or a *crypto/tls.Conn around one (see nethttp_client_conn). 1 when found.
 */
static __always_inline int conn_local_end(struct go_iface c, struct client_call *st)
{
	int err = 0;
	if (!c.tab || !c.data)
		return 0;
	__u8 kind = iface_field0_kind(c.tab);
	if (kind == GO_KIND_INTERFACE && tls_conn_conn_off != GO_OFF_UNSET) {
		if (bpf_probe_read_user(&c, sizeof(c), (const void *)(c.data + tls_conn_conn_off)) != 0 || !c.tab || !c.data)
			return 0;
		kind = iface_field0_kind(c.tab);
	}
	if (kind != GO_KIND_STRUCT)
		return 0;
	__u64 fd = go_read_u64(c.data + netconn_fd_off, &err);
	if (err || !fd)
		return 0;
	struct go_iface laddr = {};
	if (bpf_probe_read_user(&laddr, sizeof(laddr), (const void *)(fd + netfd_laddr_off)) != 0 || !laddr.tab || !laddr.data)
		return 0;
	if (iface_field0_kind(laddr.tab) != GO_KIND_SLICE)
		return 0;
	struct go_string ip = {}; /* a slice's first two words: ptr, len */
	if (bpf_probe_read_user(&ip, sizeof(ip), (const void *)(laddr.data + tcpaddr_ip_off)) != 0)
		return 0;
	__s64 port = (__s64)go_read_u64(laddr.data + tcpaddr_port_off, &err);
	if (err || (ip.len != 4 && ip.len != 16) || port < 0 || port > 65535)
		return 0;
	if (bpf_probe_read_user(st->local_addr, ip.len == 4 ? 4 : 16, (const void *)ip.ptr) != 0) {
		st->local_addr_size = 0;
		return 0;
	}
	st->local_addr_size = (__u8)ip.len;
	st->local_port = (__u16)port;
	return 1;
}

/* This request is the one in flight on the connection (HTTP/1: one at a time) or on its stream
 * (HTTP/2): a server traced by this beetrace that receives it joins it by its peer end and
 * stream (server_conn_join). */
static __always_inline void client_conn_publish(const struct client_call *st)
{
	struct bee_conn_key key = {};
	client_conn_key(st, &key);
	struct span_ctx sc = st->sc;
	/* a root's sampler decision, or the flags inherited from its parent (client_start) */
	sc.trace_flags = st->flags & (REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED);
	bee_conn_publish(&key, &sc, st->start_ns);
}

static __always_inline int local_end_known(void)
{
	return netconn_fd_off != GO_OFF_UNSET && netfd_laddr_off != GO_OFF_UNSET && tcpaddr_ip_off != GO_OFF_UNSET &&
	       tcpaddr_port_off != GO_OFF_UNSET;
}

/*
 * func (pc *persistConn) roundTrip(req *transportRequest) (*Response, error); pc = RAX.
 * Runs on the goroutine of (*Transport).roundTrip once it has chosen the connection (HTTP/1;
 * HTTP/2 requests go to the http2 transport instead): records the connection's local address
 * in the call state, for the client record, and the span under that address in bee_conn_spans
 * (the request in flight on the connection: live joins, socket-layer propagation; removed at
 * the span's end if no later request replaced it). The connection is recognised by the shape of its
 * dynamic type, not by an address (stripped and PIE binaries have no itab symbols to compare):
 *   *net.TCPConn: a pointer to a struct whose first field is the struct net.conn {fd *netFD};
 *   *crypto/tls.Conn: a pointer to a struct whose first field is an interface (its net.Conn),
 *     unwrapped once;
 * and netFD.laddr must be a *net.TCPAddr: a pointer to a struct whose first field (IP) is a
 * slice (net.UnixAddr starts with a string), 4 or 16 bytes long, with a port in 0-65535.
 * Anything else leaves the address unknown. A retried request (roundTrip picks another
 * connection) records the connection it last went out on.
 */
SEC("uprobe")
int nethttp_client_conn(struct pt_regs *ctx)
{
	if (pconn_conn_off == GO_OFF_UNSET || !local_end_known())
		return 0;
	__u64 g = GO_GOROUTINE(ctx);
	__u32 zero = 0;
	struct client_call *st = bpf_map_lookup_elem(&nethttp_client_spare, &zero);
	if (!st || !client_call_get(g, st))
		return 0;
	__u64 pc = GO_PARAM1(ctx);
	struct go_iface c = {};
	if (!pc || bpf_probe_read_user(&c, sizeof(c), (const void *)(pc + pconn_conn_off)) != 0)
		return 0;
	/* A retried request (another connection): the earlier connection's entry is not its any more. */
	if (st->local_addr_size)
		client_conn_forget(st);
	if (!conn_local_end(c, st))
		st->local_addr_size = 0; /* not the earlier connection's end either */
	client_call_put(g, st);
	if (st->local_addr_size)
		client_conn_publish(st);
	return 0;
}

/*
 * func (cs *clientStream) encodeAndWriteHeaders(req) error; cs = RAX, req = RBX (an *http.Request;
 * Go 1.27's internal http2: a *ClientRequest). Runs on the stream's own goroutine
 * (clientStream.doRequest, started by ClientConn.roundTrip) right after addStreamLocked gave the
 * stream its id and before its HEADERS frame is written (net/http/h2_bundle.go writeRequest;
 * golang.org/x/net/http2/transport.go; net/http/internal/http2/transport.go). The caller's span is
 * found by the request's URL pointer (nethttp_client_urls); it gets the stream id and the local
 * end of ClientConn.tconn, and is published under (local end, stream id) for live joins before
 * the server can have read the request. A retried stream (another connection, or another stream
 * after a refused one) records the last.
 */
static __always_inline int client_h2_stream(struct pt_regs *ctx, __u32 id_off, __u32 cc_off, __u32 tconn_off, __u32 url_off)
{
	if (id_off == GO_OFF_UNSET || cc_off == GO_OFF_UNSET || tconn_off == GO_OFF_UNSET || url_off == GO_OFF_UNSET)
		return 0;
	__u64 cs = GO_PARAM1(ctx);
	__u64 req = GO_PARAM2(ctx);
	int err = 0;
	__u64 url = go_read_u64(req + url_off, &err);
	if (err || !url)
		return 0;
	__u64 g = 0;
	if (!client_url_copy(url, &g) || !g)
		return 0;
	__u32 zero = 0;
	struct client_call *st = bpf_map_lookup_elem(&nethttp_client_spare, &zero);
	if (!st || !client_call_get(g, st) || st->url != url)
		return 0;
	__u32 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (const void *)(cs + id_off)) != 0 || id == 0)
		return 0;
	if (st->local_addr_size)
		client_conn_forget(st);
	st->h2_stream_id = id;
	__u64 cc = go_read_u64(cs + cc_off, &err);
	struct go_iface c = {};
	if (err || !cc || !local_end_known() || bpf_probe_read_user(&c, sizeof(c), (const void *)(cc + tconn_off)) != 0 ||
	    !conn_local_end(c, st))
		st->local_addr_size = 0;
	client_call_put(g, st);
	if (st->local_addr_size)
		client_conn_publish(st);
	return 0;
}

/* net/http's bundled HTTP/2 client (Go <= 1.26: (*http2clientStream).encodeAndWriteHeaders;
 * Go 1.27: net/http/internal/http2.(*clientStream).encodeAndWriteHeaders). */
SEC("uprobe")
int nethttp_client_h2(struct pt_regs *ctx)
{
	return client_h2_stream(ctx, h2_cs_id_off, h2_cs_cc_off, h2_cc_tconn_off, h2_creq_url_off);
}

/* golang.org/x/net/http2.(*clientStream).encodeAndWriteHeaders (req: an *http.Request). */
SEC("uprobe")
int nethttp_client_h2_xnet(struct pt_regs *ctx)
{
	return client_h2_stream(ctx, xnet_cs_id_off, xnet_cs_cc_off, xnet_cc_tconn_off, req_url_off);
}

/* A client span ends at a RET: *Response = RAX (nil on error), error = itab RBX, data RCX. */
static __always_inline int client_end(struct pt_regs *ctx, __u64 now, __u8 xnet)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 resp = GO_PARAM1(ctx);
	__u64 err_tab = GO_PARAM2(ctx);
	int err = 0;

	struct client_call st = {};
	int taken = client_call_take(g, xnet, &st);
	if (taken == CALL_TAKE_NONE) {
		bee_count(&return_without_entry);
		return 0;
	}
	/* An x/net call nested in another (net/http's roundTrip, or RoundTrip around roundTrip):
	 * the outer call's RETs end the span. */
	if (taken != CALL_TAKE_OK)
		return 0;
	if (st.local_addr_size)
		client_conn_forget(&st);
	if (st.url)
		client_url_clear(st.url, g);

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_nethttp_client *r = (struct rec_nethttp_client *)buf;
	__u16 flags = st.flags | REC_SPAN_F_END_AT_RET;
	__u16 truncated = 0;
	r->h.type = REC_NETHTTP_CLIENT;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);
	r->status = 0;
	r->err_cause = GO_ERR_NONE;
	r->err_errno = 0;
	r->local_port = st.local_port;
	r->local_addr_size = st.local_addr_size;
	r->h2_stream_id = st.h2_stream_id;
	__builtin_memcpy(r->local_addr, st.local_addr, sizeof(r->local_addr));
	if (resp) {
		r->status = bee_clamp_status((__s64)go_read_u64(resp + resp_status_code_off, &err));
		flags |= NETHTTP_CLIENT_F_RESPONSE;
	}
	if (err_tab) {
		__u16 errno = 0;
		r->err_cause = go_error_cause(err_tab, GO_PARAM3(ctx), &errno);
		r->err_errno = errno;
		flags |= NETHTTP_CLIENT_F_ERROR;
	}

	__u64 req = st.req;
	__u32 pos = __builtin_offsetof(struct rec_nethttp_client, strings);
	flags |= bee_put_client_request(buf, &pos, req, (struct bee_http_request_lens *)&r->method_len, &truncated, &err);
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/* At each RET of roundTrip: *Response = RAX (nil on error), error = itab RBX, data RCX. */
SEC("uprobe")
int nethttp_client_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_end(ctx, now, 0);
}

/* At each RET of x/net's ClientConn.RoundTrip / roundTrip (the same results in the same registers). */
SEC("uprobe")
int nethttp_client_return_xnet(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_end(ctx, now, 1);
}

SEC("uprobe")
int nethttp_client_return_xnet_inner(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	return client_end(ctx, now, 2);
}
