/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_view.bpf.h — many fields of one Go struct for the price of one read.
 *
 * A bpf_probe_read_user costs about the same for 8 bytes as for a few hundred (the fault-safe
 * copy's fixed part: the access check, pagefault_disable, the hardened-usercopy check of the
 * destination): ~0.15-0.2 µs each on the 2-core KVM guest this was measured on, where the
 * net/http server's programs made ~21 of them per request (bench/RESULTS.md, "one read per
 * struct"). A program that wants several fields of an http.Request reads the part of the struct
 * that holds them once into a per-CPU buffer (a "view") and takes each field from there.
 *
 * Any layout works: a field outside the view (a struct wider than GO_VIEW_SIZE, or a view whose
 * read failed) is read from the process on its own, as before. The buffer is this CPU's and
 * lives until the next go_view_read of the same slot in the same program run.
 */
#ifndef BEETRACE_GO_VIEW_BPF_H
#define BEETRACE_GO_VIEW_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "go_types.bpf.h"

/* Wider than the fields any probe takes from one struct (http.Request's last one ends near
 * 290 bytes in Go 1.27); a power of two, so offsets are masked for the verifier. */
#define GO_VIEW_SIZE 512
/* Views a program run may hold at once (a request and its header map at entry). */
#define GO_VIEW_SLOTS 2

/* A view: the struct's address, how much of it was copied (0: nothing, every field is then read
 * on its own), and the copy. Kept in the map value, not on the program's stack (512 bytes for
 * the whole call chain, which the header walk nearly fills): a view is named by its slot. */
struct go_view_buf {
	__u64 addr;
	__u32 len;
	__u32 pad;
	__u8 b[GO_VIEW_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GO_VIEW_SLOTS);
	__type(key, __u32);
	__type(value, struct go_view_buf);
} go_view_bufs SEC(".maps");

static __always_inline struct go_view_buf *go_view_get(__u32 slot)
{
	__u32 k = slot;
	return bpf_map_lookup_elem(&go_view_bufs, &k);
}

/* The end of field [off, off + size) when off is set, else 0: for the length a view needs. */
static __always_inline __u32 go_view_end(__u32 off, __u32 size)
{
	return off == GO_OFF_UNSET ? 0 : off + size;
}

static __always_inline __u32 go_view_max(__u32 a, __u32 b)
{
	return a > b ? a : b;
}

/* Copies [addr, addr + len) into view `slot`; on any failure the view is empty (not an error:
 * the fields are then read one by one, and those reads report their own failures). */
static __always_inline void go_view_read(__u32 slot, __u64 addr, __u32 len)
{
	struct go_view_buf *v = go_view_get(slot);
	if (!v)
		return;
	v->addr = addr;
	v->len = 0;
	if (addr == 0 || len == 0 || len > GO_VIEW_SIZE)
		return;
	if (bpf_probe_read_user(v->b, len, (const void *)addr) == 0)
		v->len = len;
}

/* The 8-byte field at off (a pointer, an int) of view `slot`'s struct. */
static __always_inline __u64 go_view_u64(__u32 slot, __u32 off, int *err)
{
	struct go_view_buf *v = go_view_get(slot);
	if (!v) {
		*err = 1;
		return 0;
	}
	if (off <= GO_VIEW_SIZE - 8 && off + 8 <= v->len)
		return *(const __u64 *)(v->b + (off & (GO_VIEW_SIZE - 1)));
	return go_read_u64(v->addr + off, err);
}

/* The string header at off of view `slot`'s struct; {0, 0} and *err set when it cannot be read. */
static __always_inline struct go_string go_view_string(__u32 slot, __u32 off, int *err)
{
	struct go_string s = {};
	struct go_view_buf *v = go_view_get(slot);
	if (!v) {
		*err = 1;
		return s;
	}
	if (off <= GO_VIEW_SIZE - 16 && off + 16 <= v->len) {
		s.ptr = *(const __u64 *)(v->b + (off & (GO_VIEW_SIZE - 1)));
		s.len = *(const __s64 *)(v->b + ((off + 8) & (GO_VIEW_SIZE - 1)));
		return s;
	}
	if (v->addr == 0 || bpf_probe_read_user(&s, sizeof(s), (const void *)(v->addr + off)) != 0) {
		*err = 1;
		s.ptr = 0;
		s.len = 0;
	}
	return s;
}

#endif /* BEETRACE_GO_VIEW_BPF_H */
