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

/*
 * Go's runtime type descriptors (internal/abi/type.go; runtime/type.go before Go 1.21), the
 * same layout on 64-bit targets in every release with the register ABI (1.17-1.27):
 *   Type:        Size_ 0, PtrBytes 8, Hash 16, TFlag 20, Align_ 21, FieldAlign_ 22, Kind_ 23,
 *                Equal 24, GCData 32, Str 40, PtrToThis 44; 48 bytes
 *   PtrType:     Type, Elem *Type at 48
 *   StructType:  Type, PkgPath Name at 48, Fields []StructField at 56
 *   StructField: Name 0, Typ *Type 8, Offset 16 (Go <= 1.18: offsetAnon = offset<<1 | embedded)
 * Kind_ & 0x1f is the kind (internal/abi/type.go Kind).
 */
#define GO_TYPE_KIND_OFF 23
#define GO_TYPE_KIND_MASK 0x1f
#define GO_KIND_ARRAY 17
#define GO_KIND_FUNC 19
#define GO_KIND_INTERFACE 20
#define GO_KIND_POINTER 22
#define GO_KIND_SLICE 23
#define GO_KIND_STRING 24
#define GO_KIND_STRUCT 25
/* runtime.itab (runtime/runtime2.go; internal/abi.ITab from Go 1.22): Inter *InterfaceType at 0,
 * Type *Type at 8, Hash 16, Fun 24. */
#define GO_ITAB_TYPE_OFF 8
#define GO_PTRTYPE_ELEM_OFF 48
#define GO_STRUCTTYPE_FIELDS_OFF 56
#define GO_STRUCTFIELD_TYP_OFF 8
#define GO_STRUCTFIELD_OFFSET_OFF 16

/* Kind of the runtime type at type_addr (0 when it cannot be read). */
static __always_inline __u8 go_type_kind(__u64 type_addr)
{
	__u8 k = 0;
	if (type_addr == 0 || bpf_probe_read_user(&k, 1, (const void *)(type_addr + GO_TYPE_KIND_OFF)) != 0)
		return 0;
	return k & GO_TYPE_KIND_MASK;
}

/*
 * Where the text of an `any` value {type, data} is, as the address of a Go string header: the
 * value itself when it is a string (panic("boom"), runtime.errorString), else the first field of
 * the struct a pointer points to when that field is a string at offset 0 (*errors.errorString,
 * *fmt.wrapError). 0 when the value has no such text.
 */
static __always_inline __u64 go_any_text(__u64 type_addr, __u64 data)
{
	int err = 0;
	__u8 kind = go_type_kind(type_addr);
	if (kind == GO_KIND_STRING)
		return data;
	if (kind != GO_KIND_POINTER || data == 0)
		return 0;
	__u64 elem = go_read_u64(type_addr + GO_PTRTYPE_ELEM_OFF, &err);
	if (err || go_type_kind(elem) != GO_KIND_STRUCT)
		return 0;
	__u64 fields = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF, &err);
	__u64 nfields = go_read_u64(elem + GO_STRUCTTYPE_FIELDS_OFF + 8, &err);
	if (err || fields == 0 || nfields == 0)
		return 0;
	__u64 f0type = go_read_u64(fields + GO_STRUCTFIELD_TYP_OFF, &err);
	__u64 f0off = go_read_u64(fields + GO_STRUCTFIELD_OFFSET_OFF, &err);
	if (err || f0off > 1 || go_type_kind(f0type) != GO_KIND_STRING)
		return 0;
	return data;
}

#endif /* BEETRACE_GO_TYPES_BPF_H */
