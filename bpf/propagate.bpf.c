// SPDX-License-Identifier: Apache-2.0
/*
 * propagate.bpf.c — `--propagate`: a W3C `traceparent` header inserted into the plain HTTP/1
 * requests a traced Go client sends, at the socket layer, so the next service (traced by
 * another beetrace, or instrumented with an OpenTelemetry SDK) continues the trace.
 *
 * Nothing is written into the traced process: the bytes are added to the outgoing message in
 * the kernel, after the process handed them to write(2), which works under kernel lockdown
 * (unlike bpf_probe_write_user, refused by lockdown "integrity").
 *
 *   propagate_sockops (sock_ops, attached to the cgroup v2 root): when a process connects
 *     (BPF_SOCK_OPS_TCP_CONNECT_CB runs in the connect(2) caller's context), a socket of the
 *     traced process is marked in its socket storage; when the connection is established
 *     (BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, a TCP socket may only enter a sockhash once
 *     established) a marked socket is added to bee_prop_socks. Any other socket of the host
 *     costs one program run at connect and one at establishment, and its messages never see
 *     BPF: only sockets in the sockhash go through the sk_msg program.
 *   propagate_msg (sk_msg, attached to bee_prop_socks): runs once per message the process
 *     sends (a write(2) is one message, or several when larger than the socket's buffer).
 *     The client probe (bpf/nethttp.bpf.c) stores the request's client span in bee_conn_spans
 *     under the connection's local end when the request picks its connection, before the
 *     transport's writeLoop writes it. The first message sent after a new span appears there
 *     is the start of that request (HTTP/1 sends one request at a time per connection); every
 *     later message of the same span (the rest of the headers, the body) is left alone, so a
 *     body chunk that happens to begin with "GET " is never rewritten. When that first message
 *     is an HTTP/1 request line followed by the whole header block (within PROP_SCAN_MAX
 *     bytes) and no header is named traceparent (case-insensitive), the header is inserted
 *     right after the request line (bpf_msg_push_data). An application's own traceparent is
 *     never replaced, and a header block longer than the scan window is not touched (it might
 *     carry one further on). HTTP/2 (h2c, gRPC) and TLS are not rewritten: the HTTP/2 client
 *     keys its entries with a stream id, which this program never looks up, and neither's
 *     first message is an HTTP/1 request line.
 * Connections the process opened before the sock_ops program was attached are added to
 * bee_prop_socks by user space (src/trace/propagate.ts, from the process's open sockets).
 * Counters in .bss say what happened to each request start (src/trace/propagate.ts reads them).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/conn_ctx.bpf.h"

/* linux/socket.h */
#define PROP_AF_INET 2
#define PROP_AF_INET6 10

/* The window searched for the request line and the header block: Go's transport writes a
 * request through a 4 KiB bufio.Writer (net/http/transport.go, persistConn.bw, default
 * Transport.WriteBufferSize), so its first message holds at most this much of it. */
#define PROP_SCAN_MAX 4096
/* "traceparent: 00-" 32 hex "-" 16 hex "-" 2 hex "\r\n" (W3C Trace Context, version 00) */
#define PROP_HDR_LEN 70
/* The longest method token we accept before its SP (RFC 9110 methods in use are <= 7). */
#define PROP_METHOD_MAX 16

/* The traced process (tgid), set by user space before load. */
volatile const __u32 bee_prop_tgid = 0;

/* Per-socket state: marked at connect, the span whose request start was last examined. */
struct prop_sk {
	__u64 marked;
	__u64 last_span; /* the span id's 8 bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct prop_sk);
} bee_prop_sk SEC(".maps");

/* The traced process's established TCP client sockets, by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} bee_prop_socks SEC(".maps");

/* The per-CPU copy the scan reads. An sk_msg program runs with migration, not preemption,
 * disabled (bpf_prog_run_pin_on_cpu), so another sender on the same CPU can take the buffer
 * mid-scan: `owner` (the thread that filled it) says whether the copy is still ours. */
struct prop_buf {
	__u64 owner;
	__u8 b[PROP_SCAN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prop_buf);
} bee_prop_scratch SEC(".maps");

/* a traceparent header was inserted */
__u64 prop_inserted = 0;
/* the request already carried a traceparent (the application's): left as it was */
__u64 prop_existing = 0;
/* a message that begins like an HTTP request on a traced socket had no client span */
__u64 prop_no_span = 0;
/* the request line or the end of the header block was not within the scan window */
__u64 prop_unscanned = 0;
/* the first message of a client span was not an HTTP/1 request (HTTP/2, TLS, ...) */
__u64 prop_not_http1 = 0;
/* pulling, pushing or writing the message failed: nothing (or no header) inserted */
__u64 prop_failed = 0;
/* sockets added to bee_prop_socks */
__u64 prop_sockets = 0;

static __always_inline void prop_count(__u64 *c)
{
	__sync_fetch_and_add(c, 1);
}

SEC("sockops")
int propagate_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk;
	struct prop_sk *st;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if ((__u32)(bpf_get_current_pid_tgid() >> 32) != bee_prop_tgid)
			return 1;
		sk = skops->sk;
		if (!sk)
			return 1;
		st = bpf_sk_storage_get(&bee_prop_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (st)
			st->marked = 1;
		return 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
		sk = skops->sk;
		if (!sk)
			return 1;
		st = bpf_sk_storage_get(&bee_prop_sk, sk, 0, 0);
		if (!st || !st->marked)
			return 1;
		__u64 cookie = bpf_get_socket_cookie(skops);
		if (bpf_sock_hash_update(skops, &bee_prop_socks, &cookie, BPF_NOEXIST) == 0)
			prop_count(&prop_sockets);
		else
			prop_count(&prop_failed);
		return 1;
	}
	}
	return 1;
}

/* "traceparent:" as two little-endian words ("tracepar", "ent:"): no string in .rodata */
#define PROP_NAME_LO 0x7261706563617274ULL
#define PROP_NAME_HI 0x3a746e65ULL
#define PROP_NAME_LEN 12

static __always_inline __u8 prop_name_at(__u32 k)
{
	return k < 8 ? (__u8)(PROP_NAME_LO >> (8 * k)) : (__u8)(PROP_NAME_HI >> (8 * ((k - 8) & 7)));
}

struct prop_scan {
	struct prop_buf *buf;
	__u32 n;
	__u32 reqline_end; /* offset just after the request line's CRLF; 0 while not seen */
	__u32 line_len;    /* bytes of the current header line so far */
	__s32 match;       /* chars of "traceparent:" matched from the line's start; -1 none */
	__u8 found;        /* a traceparent header exists */
	__u8 done;         /* the empty line ending the header block was seen */
	__u8 bad;          /* the request line is not HTTP/1.x */
};

static __always_inline __u8 prop_at(struct prop_buf *buf, __u32 i)
{
	return buf->b[i & (PROP_SCAN_MAX - 1)];
}

static long prop_scan_byte(__u64 index, void *ctx)
{
	struct prop_scan *s = ctx;
	struct prop_buf *buf = s->buf;
	__u32 i = (__u32)index;

	if (!buf || i >= s->n)
		return 1;
	__u8 c = prop_at(buf, i);
	if (s->reqline_end == 0) {
		if (c != '\n')
			return 0;
		/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3) */
		if (i < 10 || prop_at(buf, i - 1) != '\r' || prop_at(buf, i - 10) != ' ' ||
		    prop_at(buf, i - 9) != 'H' || prop_at(buf, i - 8) != 'T' || prop_at(buf, i - 7) != 'T' ||
		    prop_at(buf, i - 6) != 'P' || prop_at(buf, i - 5) != '/' || prop_at(buf, i - 4) != '1' ||
		    prop_at(buf, i - 3) != '.' || prop_at(buf, i - 2) < '0' || prop_at(buf, i - 2) > '9') {
			s->bad = 1;
			return 1;
		}
		s->reqline_end = i + 1;
		s->line_len = 0;
		s->match = 0;
		return 0;
	}
	if (c == '\n') {
		if (s->line_len == 1 && prop_at(buf, i - 1) == '\r') {
			s->done = 1;
			return 1;
		}
		s->line_len = 0;
		s->match = 0;
		return 0;
	}
	if (s->match >= 0 && s->match < PROP_NAME_LEN) {
		__u8 lc = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
		if (lc == prop_name_at((__u32)s->match)) {
			s->match++;
			if (s->match == PROP_NAME_LEN) {
				s->found = 1;
				return 1;
			}
		} else {
			s->match = -1;
		}
	}
	s->line_len++;
	return 0;
}

static __always_inline char prop_hex(__u8 v)
{
	v &= 0xf;
	return v < 10 ? '0' + v : 'a' + (v - 10);
}

SEC("sk_msg")
int propagate_msg(struct sk_msg_md *msg)
{
	struct bee_conn_key key = {};
	__u32 family = msg->family;

	if (family == PROP_AF_INET) {
		__u32 a4 = msg->local_ip4; /* network byte order: its bytes are a.b.c.d in memory */
		bee_conn_key_addr(&key, (const __u8 *)&a4, 4);
	} else if (family == PROP_AF_INET6) {
		__u32 a6[4];
		a6[0] = msg->local_ip6[0];
		a6[1] = msg->local_ip6[1];
		a6[2] = msg->local_ip6[2];
		a6[3] = msg->local_ip6[3];
		bee_conn_key_addr(&key, (const __u8 *)a6, 16);
	} else {
		return SK_PASS;
	}
	key.port = (__u16)msg->local_port; /* sk_msg_md.local_port is in host byte order */

	struct bee_conn_span *cs = bpf_map_lookup_elem(&bee_conn_spans, &key);
	/* Only this process's own spans: the map is shared by every process one beetrace traces,
	 * and processes in different network namespaces can have the same local end. */
	if (cs && cs->tgid != bee_prop_tgid)
		cs = 0;
	if (!cs) {
		/* Only counted: a request this beetrace did not see start (no client probe on it). */
		__u8 *d = msg->data, *e = msg->data_end;
		if (d + 4 <= e && d[0] >= 'A' && d[0] <= 'Z' && d[1] >= 'A' && d[1] <= 'Z' && d[2] >= 'A' && d[2] <= 'Z' &&
		    (d[3] == ' ' || (d[3] >= 'A' && d[3] <= 'Z')))
			prop_count(&prop_no_span);
		return SK_PASS;
	}
	struct bpf_sock *sk = msg->sk;
	if (!sk)
		return SK_PASS;
	struct prop_sk *st = bpf_sk_storage_get(&bee_prop_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return SK_PASS;
	/* A copy: the client probe may overwrite the entry while this runs. */
	struct span_ctx sc;
	__builtin_memcpy(&sc, &cs->sc, sizeof(sc));
	__u64 sid;
	__builtin_memcpy(&sid, sc.span_id, sizeof(sid));
	if (st->last_span == sid)
		return SK_PASS; /* not the first message of this request */
	st->last_span = sid;

	__u32 zero = 0;
	struct prop_buf *buf = bpf_map_lookup_elem(&bee_prop_scratch, &zero);
	if (!buf)
		return SK_PASS;
	__u32 n = msg->size;
	if (n > PROP_SCAN_MAX)
		n = PROP_SCAN_MAX;
	if (n < 16) {
		prop_count(&prop_not_http1);
		return SK_PASS;
	}
	if (bpf_msg_pull_data(msg, 0, n, 0) != 0) {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	void *data = msg->data, *data_end = msg->data_end;
	if (data + n > data_end) {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	/* Scanned from a copy: a bpf_loop callback cannot hold packet pointers, and a plain
	 * bounded loop over 4 KiB of packet bytes costs the verifier far more. */
	__u64 self = bpf_get_current_pid_tgid();
	buf->owner = self;
	if (bpf_probe_read_kernel(buf->b, n, data) != 0) {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	/* method = token (RFC 9110 §9.1); methods in use are upper-case letters */
	__u32 sp = 0;
	for (__u32 i = 0; i < PROP_METHOD_MAX; i++) {
		__u8 c = buf->b[i];
		if (c == ' ') {
			sp = i;
			break;
		}
		if (c < 'A' || c > 'Z')
			break;
	}
	if (sp == 0) {
		prop_count(&prop_not_http1);
		return SK_PASS;
	}

	struct prop_scan s = { .buf = buf, .n = n };
	bpf_loop(PROP_SCAN_MAX, prop_scan_byte, &s, 0);
	if (buf->owner != self) {
		/* another sender used the copy meanwhile: its verdict is not this message's */
		prop_count(&prop_failed);
		return SK_PASS;
	}
	if (s.bad) {
		prop_count(&prop_not_http1);
		return SK_PASS;
	}
	if (s.found) {
		prop_count(&prop_existing);
		return SK_PASS;
	}
	if (!s.done || s.reqline_end == 0 || s.reqline_end >= PROP_SCAN_MAX) {
		prop_count(&prop_unscanned);
		return SK_PASS;
	}

	char hdr[PROP_HDR_LEN + 2];
	__builtin_memcpy(hdr, "traceparent: 00-", 16);
	for (int i = 0; i < BEE_TRACE_ID_SIZE; i++) {
		hdr[16 + 2 * i] = prop_hex(sc.trace_id[i] >> 4);
		hdr[17 + 2 * i] = prop_hex(sc.trace_id[i]);
	}
	hdr[48] = '-';
	for (int i = 0; i < BEE_SPAN_ID_SIZE; i++) {
		hdr[49 + 2 * i] = prop_hex(sc.span_id[i] >> 4);
		hdr[50 + 2 * i] = prop_hex(sc.span_id[i]);
	}
	hdr[65] = '-';
	/* sampled unless the sampler decided against this trace (span.bpf.h, trace_flags) */
	int sampled = !(sc.trace_flags & REC_SPAN_F_TRACE_FLAGS_KNOWN) || (sc.trace_flags & REC_SPAN_F_SAMPLED);
	hdr[66] = '0';
	hdr[67] = sampled ? '1' : '0';
	hdr[68] = '\r';
	hdr[69] = '\n';

	__u32 at = s.reqline_end;
	/* The insertion point, checked on the message itself: right after the request line's CRLF. */
	if (at < 2 || at > n) {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	__u8 *crlf = (__u8 *)data + (at - 2);
	if ((void *)(crlf + 2) > data_end || crlf[0] != '\r' || crlf[1] != '\n') {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	if (bpf_msg_push_data(msg, at, PROP_HDR_LEN, 0) != 0) {
		prop_count(&prop_failed);
		return SK_PASS;
	}
	/* The pushed bytes are not initialised: if they cannot be written they must go again,
	 * or the request would carry garbage. */
	if (bpf_msg_pull_data(msg, at, at + PROP_HDR_LEN, 0) != 0) {
		bpf_msg_pop_data(msg, at, PROP_HDR_LEN, 0);
		prop_count(&prop_failed);
		return SK_PASS;
	}
	data = msg->data;
	data_end = msg->data_end;
	if (data + PROP_HDR_LEN > data_end) {
		bpf_msg_pop_data(msg, at, PROP_HDR_LEN, 0);
		prop_count(&prop_failed);
		return SK_PASS;
	}
	__builtin_memcpy(data, hdr, PROP_HDR_LEN);
	prop_count(&prop_inserted);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
