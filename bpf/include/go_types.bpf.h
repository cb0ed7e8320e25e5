/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_types.bpf.h — Go runtime value layouts (64-bit targets) and bounds-checked copies of
 * them out of the traced process.
 *
 * Layouts, from Go's src/runtime: a string is {ptr, len} (runtime/string.go stringStruct),
 * an interface is {itab or type, data} (runtime/runtime2.go iface/eface), `int` is 8 bytes.
 */
#ifndef BEETRACE_GO_TYPES_BPF_H
#define BEETRACE_GO_TYPES_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "events.bpf.h"

struct go_string {
	__u64 ptr;
	__s64 len;
};

struct go_iface {
	__u64 tab; /* *itab (non-empty interface) or *_type (any); 0 = nil interface */
	__u64 data;
};

/* Sentinel for an offset user space did not set (see the probe manifest's fields). */
#define GO_OFF_UNSET 0xffffffffu

/* Reads a pointer-sized word at addr; 0 when addr is 0 or the read fails (*err set). */
static __always_inline __u64 go_read_u64(__u64 addr, int *err)
{
	__u64 v = 0;
	if (addr == 0 || bpf_probe_read_user(&v, sizeof(v), (const void *)addr) != 0) {
		*err = 1;
		return 0;
	}
	return v;
}

/*
 * Copies the Go string whose header is at hdr_addr into buf[0..size). Stores the string's
 * real length (clamped to u32) in *out_len so user space can see truncation, and counts a
 * truncation in `truncated_strings`. A failed read leaves *out_len = 0 and sets *err.
 * `size` must be a compile-time constant (the verifier needs the copy length bounded).
 */
static __always_inline void go_read_string(__u64 hdr_addr, char *buf, __u32 size, __u32 *out_len, int *err)
{
	struct go_string s = {};
	*out_len = 0;
	if (hdr_addr == 0 || bpf_probe_read_user(&s, sizeof(s), (const void *)hdr_addr) != 0) {
		*err = 1;
		return;
	}
	if (s.len <= 0) /* empty, or a corrupt negative length: nothing to copy */
		return;
	__u64 len = (__u64)s.len;
	__u32 n = size;
	if (len <= size)
		n = (__u32)len;
	else
		bee_count(&truncated_strings);
	if (bpf_probe_read_user(buf, n, (const void *)s.ptr) != 0) {
		*err = 1;
		return;
	}
	*out_len = len > 0xffffffffull ? 0xffffffffu : (__u32)len;
}

/* Length of the Go string whose header is at hdr_addr (0 on a failed read, *err set). */
static __always_inline __u64 go_string_len(__u64 hdr_addr, int *err)
{
	__s64 len = (__s64)go_read_u64(hdr_addr + 8, err);
	return len > 0 ? (__u64)len : 0;
}

#endif /* BEETRACE_GO_TYPES_BPF_H */
