/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_headers.bpf.h — finding a header in a Go http.Header (map[string][]string) from BPF, and
 * parsing a W3C traceparent. Read-only: nothing is written into the target.
 *
 * A Go map cannot be looked up from BPF (the hash is seeded and may be AES-based), so the map's
 * slots are walked and keys compared; request header maps are small (a handful of groups or
 * buckets), and the walk is bounded (GO_MAP_MAX_GROUPS groups of 8 slots, through bpf_loop so
 * the verifier checks one slot, not 64): a header beyond the bound is not found.
 *
 * Two layouts, chosen by user space (map_mode) from the Go version:
 *  - Swiss tables, Go >= 1.24 (internal/runtime/maps): Map{dirPtr, dirLen}; dirLen == 0 means
 *    dirPtr is one group (small map); else dirPtr is an array of dirLen *table, each with
 *    groups{data, lengthMask}. A group is an 8-byte control word (byte i: slot i; high bit set =
 *    empty or deleted) then 8 slots of {key string, elem []string}: 8 + 8*(16+24) = 328 bytes
 *    (internal/runtime/maps/group.go: groupSlotsOffset, SlotSize, ElemOff for these types).
 *  - Buckets, Go < 1.24 (runtime/map.go): hmap{B, buckets}; 1<<B buckets of {tophash [8]uint8,
 *    keys [8]string, elems [8][]string, overflow *bmap}: 8 + 128 + 192 + 8 = 336 bytes; a slot
 *    is filled when tophash >= minTopHash (5). Buckets being evacuated during growth are not
 *    walked (a request's header map is not growing while its handler starts).
 */
#ifndef BEETRACE_GO_HEADERS_BPF_H
#define BEETRACE_GO_HEADERS_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "go_types.bpf.h"

enum go_map_mode {
	GO_MAP_NONE = 0,    /* offsets unknown: headers are not read */
	GO_MAP_BUCKETS = 1, /* Go 1.17-1.23 */
	GO_MAP_SWISS = 2,   /* Go >= 1.24 */
};

#define GO_MAP_SLOTS 8
#define GO_SWISS_GROUP_SIZE 328
#define GO_SWISS_SLOT_SIZE 40
#define GO_SWISS_SLOTS_OFF 8
#define GO_BUCKET_SIZE 336
#define GO_BUCKET_KEYS_OFF 8
#define GO_BUCKET_ELEMS_OFF (8 + 8 * 16)
#define GO_BUCKET_OVERFLOW_OFF (8 + 8 * 16 + 8 * 24)
#define GO_MIN_TOPHASH 5
/* At most this many groups (swiss) or buckets (classic, overflow included) are walked: 64 slots,
 * more headers than real requests carry. */
#define GO_MAP_MAX_GROUPS 8

/* Whether incoming trace context is read at all (user space clears it for OTEL_PROPAGATORS
 * without "tracecontext", e.g. "none"): the header walk and the traceparent parse then return at
 * once, and every span starts its own trace unless a parent is found in the process. */
volatile const __u32 bee_context_in = 1;

/* Header names as net/http canonicalises them (textproto.CanonicalMIMEHeaderKey). */
#define HDR_TRACEPARENT_LEN 11 /* "Traceparent" */
#define HDR_TRACESTATE_LEN 10  /* "Tracestate" */

/* What the walk found: addresses of the first value's string header of each header, or 0. */
struct go_found_headers {
	__u64 traceparent;
	__u64 tracestate;
};

/* The walk's state for bpf_loop: the groups/buckets to look at and what was found. */
struct go_header_walk {
	__u64 groups[GO_MAP_MAX_GROUPS];
	__u32 ngroups;
	__u32 mode; /* enum go_map_mode */
	struct go_found_headers found;
	/* 1 while the current group (read whole into go_header_group at its slot 0) is readable */
	__u32 group_ok;
};

/* The group (or bucket) being walked, copied in one read at its first slot: a slot's control
 * byte and key and value headers are then BPF memory, and only the bytes of a key of the right
 * length are read from the process (one read per group instead of two per slot: ~0.2 µs a read
 * on the machine this was measured on). Per CPU: a walk runs within one program run. */
#define GO_HEADER_GROUP_BYTES GO_BUCKET_SIZE /* ≥ GO_SWISS_GROUP_SIZE */
struct go_header_group {
	__u8 b[GO_HEADER_GROUP_BYTES];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct go_header_group);
} go_header_group_buf SEC(".maps");

/* Compares the key (its string header at key, copied from the group) with
 * "Traceparent"/"Tracestate"; elem: the value's []string header {ptr, len, cap}, copied too. */
static __always_inline void go_check_key(const __u8 *key, const __u8 *elem, struct go_found_headers *f)
{
	struct go_string k = {};
	__builtin_memcpy(&k, key, sizeof(k));
	if (k.len != HDR_TRACEPARENT_LEN && k.len != HDR_TRACESTATE_LEN)
		return;
	__u64 v_ptr;
	__s64 v_len;
	__builtin_memcpy(&v_ptr, elem, 8);
	__builtin_memcpy(&v_len, elem + 8, 8);
	if (v_len < 1 || v_ptr == 0)
		return;
	char b[12] = {};
	if (bpf_probe_read_user(b, 11, (const void *)k.ptr) != 0)
		return;
	/* The header's first value is *ptr. */
	if (k.len == HDR_TRACEPARENT_LEN && b[0] == 'T' && b[1] == 'r' && b[2] == 'a' && b[3] == 'c' && b[4] == 'e' &&
	    b[5] == 'p' && b[6] == 'a' && b[7] == 'r' && b[8] == 'e' && b[9] == 'n' && b[10] == 't')
		f->traceparent = v_ptr;
	else if (k.len == HDR_TRACESTATE_LEN && b[0] == 'T' && b[1] == 'r' && b[2] == 'a' && b[3] == 'c' && b[4] == 'e' &&
		 b[5] == 's' && b[6] == 't' && b[7] == 'a' && b[8] == 't' && b[9] == 'e')
		f->tracestate = v_ptr;
}

/* One slot of the walk (bpf_loop callback, verified once whatever the map's size). */
static long go_header_slot(__u32 i, void *arg)
{
	struct go_header_walk *w = arg;
	__u32 gi = i / GO_MAP_SLOTS;
	__u32 slot = i % GO_MAP_SLOTS;
	if (gi >= w->ngroups || gi >= GO_MAP_MAX_GROUPS)
		return 1; /* stop */
	__u32 zero = 0;
	struct go_header_group *g = bpf_map_lookup_elem(&go_header_group_buf, &zero);
	if (!g)
		return 1;
	if (slot == 0)
		w->group_ok = bpf_probe_read_user(g->b, w->mode == GO_MAP_SWISS ? GO_SWISS_GROUP_SIZE : GO_BUCKET_SIZE, (const void *)w->groups[gi]) == 0;
	if (!w->group_ok)
		return 0;
	__u8 ctrl = g->b[slot & (GO_MAP_SLOTS - 1)]; /* byte i of the control word / tophash: slot i */
	if (w->mode == GO_MAP_SWISS) {
		if (ctrl & 0x80) /* ctrlEmpty / ctrlDeleted */
			return 0;
		__u32 off = GO_SWISS_SLOTS_OFF + (slot & (GO_MAP_SLOTS - 1)) * GO_SWISS_SLOT_SIZE;
		go_check_key(g->b + off, g->b + off + 16, &w->found);
	} else {
		if (ctrl < GO_MIN_TOPHASH) /* empty or evacuated */
			return 0;
		__u32 s = slot & (GO_MAP_SLOTS - 1);
		go_check_key(g->b + GO_BUCKET_KEYS_OFF + s * 16, g->b + GO_BUCKET_ELEMS_OFF + s * 24, &w->found);
	}
	return (w->found.traceparent && w->found.tracestate) ? 1 : 0;
}

/*
 * Start-up cost: the walk and the traceparent parse below are global (non-static, noinline)
 * functions, which the kernel verifies once, on their own, for any arguments of their types
 * (kernel docs, "BPF verifier": global functions; pointer arguments since 5.12, below bpf_loop's
 * 5.17). Inlined, they were verified again for every state their caller reached them in, and
 * the bpf_loop callback again until those states converged: nethttp_server_entry took 160-200 ms
 * of verification (68k instructions processed), 14 ms this way (bench/RESULTS.md, start-up).
 * Their pointer arguments may be NULL as far as the verifier knows, hence the checks.
 */

/* The walk itself. bpf_loop's context must be on this function's stack: w is copied. */
__noinline int go_walk_headers_global(struct go_header_walk *w)
{
	if (!w || !bee_context_in)
		return 0;
	struct go_header_walk l = {};
	__builtin_memcpy(&l, w, sizeof(l));
	bpf_loop(GO_MAP_MAX_GROUPS * GO_MAP_SLOTS, go_header_slot, &l, 0);
	w->found = l.found;
	return 0;
}

/* Walks the slots of the groups (or buckets) collected in w; what it found is in w->found. */
static __always_inline void go_walk_headers(struct go_header_walk *w)
{
	go_walk_headers_global(w);
}

/* hex_table's entry for a byte that is not a lowercase hex digit. */
#define HEX_BAD 0x80

/*
 * Each byte's hex value: 0-15 for '0'-'9' and 'a'-'f' (W3C Trace Context allows lowercase only),
 * HEX_BAD for any other. Parsing through a table leaves no branch per character: with two
 * comparisons per character the verifier explored the 48 digits' branches one by one, 4,189 of
 * nethttp_server_entry's 9,832 processed instructions (and ~6 ms of its load).
 */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winitializer-overrides" /* the digits override the range */
static const __u8 hex_table[256] = {
	[0 ... 255] = HEX_BAD,
	['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7,
	['8'] = 8, ['9'] = 9, ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};
#pragma clang diagnostic pop

static __always_inline __u8 hex_of(char c)
{
	return hex_table[(__u8)c];
}

/* Parses one lowercase hex digit; -1 otherwise (W3C Trace Context: lowercase only). */
static __always_inline int hexval(char c)
{
	__u8 v = hex_of(c);
	return v == HEX_BAD ? -1 : v;
}

static __always_inline int parse_hex(const char *s, __u8 *out, int n)
{
	__u8 bad = 0, any = 0;
	for (int i = 0; i < n; i++) {
		__u8 hi = hex_of(s[2 * i]);
		__u8 lo = hex_of(s[2 * i + 1]);
		bad |= hi | lo;
		out[i] = (__u8)(hi << 4 | lo);
		any |= out[i];
	}
	/* all zeroes is invalid for trace-id and parent-id */
	return (bad & HEX_BAD) || !any ? -1 : 0;
}

/*
 * Parses a traceparent header value (W3C Trace Context, "traceparent Header"):
 * "vv-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>". Version ff is invalid; version 00 must
 * be exactly 55 characters; a later version may be longer if the 56th character is '-'.
 * Returns 0 and fills trace_id, parent_id, flags on success; -1 for anything invalid.
 */
struct go_traceparent {
	__u8 trace_id[16];
	__u8 parent_id[8];
	__u8 flags;
};

/* The parse, global (see go_walk_headers_global); go_parse_traceparent below is its interface. */
__noinline int go_parse_traceparent_global(__u64 str_hdr, struct go_traceparent *out)
{
	struct go_string s = {};
	if (!out || !bee_context_in)
		return -1;
	if (bpf_probe_read_user(&s, sizeof(s), (const void *)str_hdr) != 0 || s.len < 55)
		return -1;
	char b[56] = {};
	if (bpf_probe_read_user(b, s.len > 55 ? 56 : 55, (const void *)s.ptr) != 0)
		return -1;
	int v1 = hexval(b[0]), v2 = hexval(b[1]);
	if (v1 < 0 || v2 < 0 || (v1 == 15 && v2 == 15))
		return -1;
	if (v1 == 0 && v2 == 0 && s.len != 55)
		return -1;
	if (s.len > 55 && b[55] != '-')
		return -1;
	if (b[2] != '-' || b[35] != '-' || b[52] != '-')
		return -1;
	if (parse_hex(b + 3, out->trace_id, 16) != 0 || parse_hex(b + 36, out->parent_id, 8) != 0)
		return -1;
	int f1 = hexval(b[53]), f2 = hexval(b[54]);
	if (f1 < 0 || f2 < 0)
		return -1;
	out->flags = (__u8)(f1 << 4 | f2);
	return 0;
}

static __always_inline int go_parse_traceparent(__u64 str_hdr, __u8 trace_id[16], __u8 parent_id[8], __u8 *flags)
{
	struct go_traceparent tp = {};
	if (go_parse_traceparent_global(str_hdr, &tp) != 0)
		return -1;
	__builtin_memcpy(trace_id, tp.trace_id, sizeof(tp.trace_id));
	__builtin_memcpy(parent_id, tp.parent_id, sizeof(tp.parent_id));
	*flags = tp.flags;
	return 0;
}

#endif /* BEETRACE_GO_HEADERS_BPF_H */
