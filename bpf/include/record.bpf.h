/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.bpf.h — building one variable-length span record and sending it to the ring buffer.
 *
 * A record (bpf/shared/span.h) is built in a per-CPU scratch buffer: fixed fields first, then
 * each string appended at the current position with its length stored in the fixed part. The
 * finished record is copied to the ring with bpf_ringbuf_output: reserving the largest possible
 * record instead would occupy ring space for every span at its worst-case size.
 *
 * Verifier bounds: positions are masked with BEE_POS_MASK and every copy is at most its cap,
 * so buf + pos + n always lies inside the BEE_SCRATCH_SIZE value. A probe's fixed part plus
 * all its string caps must stay below BEE_POS_MASK + 1 (each probe asserts it).
 */
#ifndef BEETRACE_RECORD_BPF_H
#define BEETRACE_RECORD_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "events.bpf.h"
#include "span.bpf.h"
#include "go_types.bpf.h"

#define BEE_POS_MASK 2047
#define BEE_SCRATCH_SIZE 4096 /* > BEE_POS_MASK + the largest string cap */

struct bee_scratch {
	__u8 buf[BEE_SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bee_scratch);
} bee_scratch_map SEC(".maps");

/* This CPU's scratch buffer (a uprobe program runs to completion on one CPU). */
static __always_inline __u8 *bee_scratch_buf(void)
{
	__u32 key = 0;
	struct bee_scratch *s = bpf_map_lookup_elem(&bee_scratch_map, &key);
	return s ? s->buf : 0;
}

/*
 * Appends the Go string whose header is at hdr_addr to buf at *pos, keeping at most `cap`
 * bytes (cap: a compile-time constant ≤ BEE_SCRATCH_SIZE - BEE_POS_MASK - 1). Returns the bytes
 * stored; a longer string sets `bit` in *truncated and counts truncated_strings. A failed read
 * stores nothing and sets *err.
 */
/* The largest cap bee_put_go_string accepts: buf + pos + n then stays inside the scratch value. */
#define BEE_MAX_STRING_CAP (BEE_SCRATCH_SIZE - BEE_POS_MASK - 1)

/* bee_put_go_string's arguments and results, for the global function below. */
struct bee_put_string {
	__u64 hdr_addr; /* where the string header is, when have_str is 0 */
	struct go_string str; /* the header itself, when have_str is 1 (taken from a go_view) */
	__u32 have_str;
	__u32 pos;
	__u32 cap;
	__u32 bit;
	__u16 truncated;
	__u16 n;
	__s32 err;
};

/*
 * The copy itself, global (non-static, noinline): the kernel verifies it once, on its own,
 * whatever state its caller is in. Inlined, every string of a record multiplied the states the
 * verifier walked (truncation bits, errors, positions): start-up time (bench/RESULTS.md).
 * The scratch buffer is this CPU's (bee_scratch_buf), the one the caller builds the record in.
 */
__noinline int bee_put_go_string_global(struct bee_put_string *a)
{
	if (!a)
		return 0;
	a->n = 0;
	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct go_string s = {};
	if (a->have_str) {
		s = a->str;
	} else if (a->hdr_addr == 0 || bpf_probe_read_user(&s, sizeof(s), (const void *)a->hdr_addr) != 0) {
		a->err = 1;
		return 0;
	}
	if (s.len <= 0) /* empty, or a corrupt negative length: nothing to copy */
		return 0;
	__u32 cap = a->cap;
	if (cap > BEE_MAX_STRING_CAP)
		cap = BEE_MAX_STRING_CAP;
	__u32 n = cap;
	if ((__u64)s.len <= cap) {
		n = (__u32)s.len;
	} else {
		a->truncated |= (__u16)(1u << (a->bit & 15));
		bee_count(&truncated_strings);
	}
	__u32 p = a->pos & BEE_POS_MASK;
	if (n > BEE_MAX_STRING_CAP) /* restates the bound for the verifier */
		n = BEE_MAX_STRING_CAP;
	if (bpf_probe_read_user(buf + p, n, (const void *)s.ptr) != 0) {
		a->err = 1;
		return 0;
	}
	a->pos = p + n;
	a->n = (__u16)n;
	return 0;
}

/*
 * Appends the Go string whose header is at hdr_addr to buf at *pos, keeping at most `cap`
 * bytes (cap: a compile-time constant ≤ BEE_MAX_STRING_CAP). Returns the bytes stored; a longer
 * string sets `bit` in *truncated and counts truncated_strings. A failed read stores nothing
 * and sets *err. buf must be bee_scratch_buf() (the global function writes there).
 */
static __always_inline __u16 bee_put_go_string(__u8 *buf, __u32 *pos, __u64 hdr_addr, __u32 cap, __u16 *truncated,
					       int bit, int *err)
{
	(void)buf;
	struct bee_put_string a = {.hdr_addr = hdr_addr, .pos = *pos, .cap = cap, .bit = (__u32)bit, .truncated = *truncated, .err = *err};
	bee_put_go_string_global(&a);
	*pos = a.pos;
	*truncated = a.truncated;
	*err = a.err;
	return a.n;
}

/* As bee_put_go_string, for a string whose header the caller already has (go_view_string). */
static __always_inline __u16 bee_put_go_str(__u8 *buf, __u32 *pos, struct go_string str, __u32 cap, __u16 *truncated, int bit, int *err)
{
	(void)buf;
	struct bee_put_string a = {.str = str, .have_str = 1, .pos = *pos, .cap = cap, .bit = (__u32)bit, .truncated = *truncated, .err = *err};
	bee_put_go_string_global(&a);
	*pos = a.pos;
	*truncated = a.truncated;
	*err = a.err;
	return a.n;
}

/* Sends the record of `size` bytes built in buf; a full ring counts ringbuf_full. */
static __always_inline void bee_emit(__u8 *buf, __u32 size)
{
	/* A decided, unsampled trace (bee_root_flags, bee_remote_flags): dropped here, once, for
	 * every probe; always_on keeps everything whatever a caller's flag says. */
	__u16 flags = ((const struct rec_span *)buf)->flags;
	if (bee_sampler != BEE_SAMPLER_ALWAYS_ON && (flags & (REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED)) == REC_SPAN_F_TRACE_FLAGS_KNOWN) {
		bee_count(&unsampled);
		return;
	}
	__u32 n = size & BEE_POS_MASK;
	if (bpf_ringbuf_output(&events, buf, n, BPF_RB_NO_WAKEUP) != 0)
		bee_count(&ringbuf_full);
}

/* The record header's ids: the span's trace and span id, and its parent's span id (zeros for a
 * root: parent NULL). */
static __always_inline void bee_put_ids(struct rec_span *h, const struct span_ctx *sc, const __u8 *parent)
{
	__builtin_memcpy(h->trace_id, sc->trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(h->span_id, sc->span_id, BEE_SPAN_ID_SIZE);
	if (parent)
		__builtin_memcpy(h->parent_span_id, parent, BEE_SPAN_ID_SIZE);
	else
		__builtin_memset(h->parent_span_id, 0, BEE_SPAN_ID_SIZE);
}

/* An HTTP status code for a u16 record field: status codes are three digits (RFC 9110 §15);
 * anything else is clamped and user space decides. */
static __always_inline __u16 bee_clamp_status(__s64 v)
{
	return v < 0 ? 0 : v > 0xffff ? 0xffff : (__u16)v;
}

/* Completes the record at buf (its header's flags, truncation bits and size; a failed read marks
 * it and is counted) and emits it. */
static __always_inline void bee_finish_record(__u8 *buf, __u32 pos, __u16 flags, __u16 truncated, int err)
{
	struct rec_span *h = (struct rec_span *)buf;
	if (err) {
		flags |= REC_SPAN_F_READ_ERROR;
		bee_count(&read_errors);
	}
	h->flags = flags;
	h->truncated = truncated;
	h->size = (__u16)(pos & BEE_POS_MASK);
	bee_emit(buf, pos);
}

#endif /* BEETRACE_RECORD_BPF_H */
