/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_ctx.bpf.h — the span of the client request now in flight on each outgoing TCP
 * connection, keyed by the connection's local end (the client's address and port).
 *
 * Written by client probes when a request has picked its connection (net/http:
 * persistConn.roundTrip for HTTP/1, stream_id 0; HTTP/2: the stream's encodeAndWriteHeaders, on
 * the stream's goroutine once it has its id and before its HEADERS are written, keyed with that
 * stream id). Read by:
 *   - server entry probes of another process traced by the same beetrace: a request that
 *     arrives without a traceparent, on a connection whose peer end is a key here, is that
 *     client span's child (live connection-matched join, no write into any process);
 *   - the socket-layer propagation program (--propagate): the traceparent it inserts into an
 *     outgoing HTTP/1 request names this span.
 * HTTP/1 sends one request at a time per connection, so the entry is always the current one;
 * an HTTP/2 stream carries one request.
 * Like the parent maps in go_context.bpf.h, every object that includes this header declares
 * the map and user space makes later objects reuse the first one's fd (bpf_map__reuse_fd);
 * nothing is pinned.
 */
#ifndef BEETRACE_CONN_CTX_BPF_H
#define BEETRACE_CONN_CTX_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "span.bpf.h"

struct bee_conn_key {
	/* IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so a Go
	 * 4-byte or 16-byte net.IP and a socket's local_ip4/local_ip6 give the same key */
	__u8 addr[16];
	__u16 port; /* host byte order */
	__u16 _pad;
	__u32 stream_id; /* HTTP/2 stream id; 0 for HTTP/1 */
};

struct bee_conn_span {
	struct span_ctx sc; /* the client span: its trace id, its own span id, trace flags */
	__u64 start_ns;     /* the client span's start (bpf_ktime_get_boot_ns, like every span time) */
	__u32 tgid;         /* the client process */
	/* inode of the client's network namespace (/proc/PID/ns/net; 0 unknown): loopback ends
	 * repeat in every namespace, so a loopback peer is joined only within one */
	__u32 netns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bee_conn_key);
	__type(value, struct bee_conn_span);
} bee_conn_spans SEC(".maps");

/* Fill key->addr from a 4- or 16-byte address already in BPF memory. */
static __always_inline void bee_conn_key_addr(struct bee_conn_key *key, const __u8 *addr, __u32 size)
{
	if (size == 4) {
		__builtin_memset(key->addr, 0, 10);
		key->addr[10] = 0xff;
		key->addr[11] = 0xff;
		key->addr[12] = addr[0];
		key->addr[13] = addr[1];
		key->addr[14] = addr[2];
		key->addr[15] = addr[3];
	} else {
		__builtin_memcpy(key->addr, addr, 16);
	}
}

#endif
