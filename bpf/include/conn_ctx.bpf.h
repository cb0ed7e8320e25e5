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
	__uint(map_flags, BEE_LRU_FLAGS);
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

/* The inode of the traced process's network namespace (/proc/PID/ns/net), set by user space;
 * 0 unknown. */
volatile const __u32 bee_netns = 0;

/* Set by user space. bee_conn_join_on: this beetrace traces several processes, so a server
 * request may be joined to another's client span (live joins); else the server probes skip the
 * peer parse and the lookup. bee_conn_publish_on: something reads the entries (live joins, or
 * --propagate's socket program); else the client probes write none. */
volatile const __u32 bee_conn_join_on = 0;
volatile const __u32 bee_conn_publish_on = 0;

/* 127.0.0.0/8 (as ::ffff:127.x.x.x) or ::1: an address every network namespace has. */
static __always_inline int bee_conn_key_loopback(const struct bee_conn_key *key)
{
	__u64 hi, lo;
	__builtin_memcpy(&hi, key->addr, 8);
	__builtin_memcpy(&lo, key->addr + 8, 8);
	if (hi != 0)
		return 0;
	return (key->addr[8] == 0 && key->addr[9] == 0 && key->addr[10] == 0xff && key->addr[11] == 0xff && key->addr[12] == 127) ||
	       (lo == 0x0100000000000000ULL); /* bytes 00..00 01, read little-endian */
}

/*
 * Records the client span `sc` (its own span id; trace_flags: the root's sampler decision or
 * the flags inherited from its parent), begun at start_ns, under the connection end `key`.
 * Returns bpf_map_update_elem's result.
 */
static __always_inline long bee_conn_publish(const struct bee_conn_key *key, const struct span_ctx *sc, __u64 start_ns)
{
	if (!bee_conn_publish_on)
		return -1;
	struct bee_conn_span v = {};
	__builtin_memcpy(v.sc.trace_id, sc->trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(v.sc.span_id, sc->span_id, BEE_SPAN_ID_SIZE);
	v.sc.trace_flags = sc->trace_flags;
	v.start_ns = start_ns;
	v.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	v.netns = bee_netns;
	return bpf_map_update_elem(&bee_conn_spans, key, &v, BPF_ANY);
}

/*
 * The client span a server request arriving at `now` on the connection whose peer end (and
 * HTTP/2 stream) is `key` is the child of, or NULL. Joined only: another process's call (a
 * process's calls to itself are its own business), one that began before the request arrived
 * (not a stale entry of an earlier connection on the same port), and, for a loopback peer, a
 * client in this network namespace (loopback ends repeat in every namespace).
 */
static __always_inline const struct bee_conn_span *bee_conn_parent(const struct bee_conn_key *key, __u64 now)
{
	if (!bee_conn_join_on)
		return NULL;
	const struct bee_conn_span *c = bpf_map_lookup_elem(&bee_conn_spans, key);
	if (!c || c->tgid == (__u32)(bpf_get_current_pid_tgid() >> 32) || c->start_ns > now)
		return NULL;
	if (bee_conn_key_loopback(key) && (c->netns != bee_netns || bee_netns == 0))
		return NULL;
	return c;
}

/* Makes a server span the child of client span c, as a traceparent from it would: c's trace id,
 * c's span as parent, sampled unless c's trace was decided unsampled. */
static __always_inline void bee_conn_adopt(struct span_ctx *sc, __u8 parent_span_id[BEE_SPAN_ID_SIZE], const struct bee_conn_span *c)
{
	__builtin_memcpy(sc->trace_id, c->sc.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(parent_span_id, c->sc.span_id, BEE_SPAN_ID_SIZE);
	__u16 tf = c->sc.trace_flags;
	sc->trace_flags = bee_remote_flags(sc->trace_id, !(tf & REC_SPAN_F_TRACE_FLAGS_KNOWN) || (tf & REC_SPAN_F_SAMPLED));
}

/* Removes the entry at key if it still names the span span_id (a later request on the
 * connection has replaced it otherwise; an entry that stays is bounded by the LRU). */
static __always_inline void bee_conn_forget(const struct bee_conn_key *key, const __u8 span_id[BEE_SPAN_ID_SIZE])
{
	struct bee_conn_span *c = bpf_map_lookup_elem(&bee_conn_spans, key);
	if (!c)
		return;
	__u64 theirs, ours; /* span ids as 8-byte words (BPF has no memcmp) */
	__builtin_memcpy(&theirs, c->sc.span_id, sizeof(theirs));
	__builtin_memcpy(&ours, span_id, sizeof(ours));
	if (theirs == ours)
		bpf_map_delete_elem(&bee_conn_spans, key);
}

#endif
