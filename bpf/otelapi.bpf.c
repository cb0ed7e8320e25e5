// SPDX-License-Identifier: Apache-2.0
/*
 * otelapi.bpf.c — spans an application makes itself with the OpenTelemetry Go API
 * (go.opentelemetry.io/otel) while no SDK is registered.
 *
 * Without an SDK, otel.Tracer returns the API's global delegating tracer
 * (internal/global.tracer) and its Start returns an internal/global.nonRecordingSpan whose
 * methods do nothing (internal/global/trace.go, the same in 1.0.1 and 1.47.0). Nothing is
 * written into the application (kernel lockdown `integrity` refuses it): the probes read what
 * those calls receive.
 *   (*tracer).Start            entry: parent (the span in the ctx chain, bee_find_parent), ids,
 *                              the start time; its RETs: the returned span and context — the
 *                              span's state is created, keyed by the span object's address, and
 *                              the context is registered in bee_ctx_spans so calls made under it
 *                              (HTTP clients, nested Starts) become its children
 *   (*nonRecordingSpan).SetAttributes / AddEvent / RecordError / SetStatus / SetName / AddLink:
 *                              entry only; appended to the span's state
 *   (*nonRecordingSpan).End    entry: the span's record is emitted (one record per span)
 * nonRecordingSpan is a value type: Start boxes one copy into the returned trace.Span and
 * another into the returned context (trace.ContextWithSpan), so trace.SpanFromContext(ctx)
 * calls arrive with the second address; both map to the span (otelapi_alias).
 * The span methods are the compiler's pointer wrappers `(*nonRecordingSpan).M` (the itab's
 * entries); they start with PUSHQ BP, which the kernel emulates.
 *
 * A tracer with a delegate (an SDK registered after it was made) is skipped: the SDK records
 * those spans itself.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/span.bpf.h"
#include "include/go_context.bpf.h"
#include "include/slots.bpf.h"
#include "shared/span.h"
#include "shared/otelapi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Items of a span: a new item starts only below OTELAPI_ITEMS_CAP and is at most
 * OTELAPI_ITEM_MAX bytes; positions are masked with OTELAPI_ITEMS_MASK. */
#define OTELAPI_ITEMS_SIZE 2048
#define OTELAPI_ITEMS_MASK (OTELAPI_ITEMS_SIZE - 1)
/* A power of two above the largest single copy into items (a string value). */
#define OTELAPI_WRITE_MAX 256 /* put_user masks copies with 255 */
_Static_assert(OTELAPI_VALUE_CAP < OTELAPI_WRITE_MAX && OTELAPI_SLICE_MAX * 8 < OTELAPI_WRITE_MAX, "copies fit the write bound");
_Static_assert(OTELAPI_ITEMS_CAP + OTELAPI_ITEM_MAX <= OTELAPI_ITEMS_SIZE - OTELAPI_WRITE_MAX, "items fit their buffer");
_Static_assert(4 + OTELAPI_KEY_CAP + 1 + OTELAPI_SLICE_MAX * (1 + OTELAPI_ELEM_CAP) <= OTELAPI_ITEM_MAX, "a string-slice attribute fits an item");
_Static_assert(1 + 8 + 1 + OTELAPI_VALUE_CAP + 2 * (1 + OTELAPI_TYPE_CAP) <= OTELAPI_ITEM_MAX, "an exception fits an item");
/* The record is built in its own per-CPU buffer (bigger than record.bpf.h's). */
#define OTELAPI_REC_SIZE 8192
#define OTELAPI_REC_MASK 4095
_Static_assert(__builtin_offsetof(struct rec_otelapi_span, strings) + OTELAPI_NAME_CAP + OTELAPI_SCOPE_NAME_CAP +
			       OTELAPI_SCOPE_VERSION_CAP + OTELAPI_SCHEMA_URL_CAP + OTELAPI_STATUS_CAP + OTELAPI_ITEMS_SIZE <=
		       OTELAPI_REC_MASK,
	       "record fits its buffer");

/* ---- offsets of otel struct fields (bytes from the struct start), set by user space ---- */
volatile const __u32 tracer_name_off = GO_OFF_UNSET;     /* internal/global.tracer.name string */
volatile const __u32 tracer_opts_off = GO_OFF_UNSET;     /* internal/global.tracer.opts []trace.TracerOption (optional) */
volatile const __u32 tracer_delegate_off = GO_OFF_UNSET; /* internal/global.tracer.delegate atomic.Value (optional) */
volatile const __u32 kv_key_off = GO_OFF_UNSET;          /* attribute.KeyValue.Key string */
volatile const __u32 kv_value_off = GO_OFF_UNSET;        /* attribute.KeyValue.Value Value */
volatile const __u32 value_vtype_off = GO_OFF_UNSET;     /* attribute.Value.vtype Type (int) */
volatile const __u32 value_numeric_off = GO_OFF_UNSET;   /* attribute.Value.numeric uint64 */
volatile const __u32 value_stringly_off = GO_OFF_UNSET;  /* attribute.Value.stringly string */
volatile const __u32 value_slice_off = GO_OFF_UNSET;     /* attribute.Value.slice any (an array value) */
volatile const __u32 link_sc_off = GO_OFF_UNSET;         /* trace.Link.SpanContext (optional: links) */
volatile const __u32 link_attrs_off = GO_OFF_UNSET;      /* trace.Link.Attributes []attribute.KeyValue */
volatile const __u32 sc_trace_id_off = GO_OFF_UNSET;     /* trace.SpanContext.traceID [16]byte */
volatile const __u32 sc_span_id_off = GO_OFF_UNSET;      /* trace.SpanContext.spanID [8]byte */

/*
 * Go runtime layouts read here besides go_types.bpf.h's (64-bit, Go 1.17-1.27):
 *   runtime/runtime2.go itab: inter 0, _type 8
 *   context/context.go valueCtx: Context 0, key any 16, val any 32 (unchanged since Go 1.7)
 *   internal/abi/type.go ArrayType: Type, Elem 48, Slice 56, Len 64; Type.Size_ at 0
 *   internal/abi Kind: Bool 1, Array 17, Func 19, Slice 23, Struct 25
 */
#define GO_VALUECTX_VAL_OFF 32
#define GO_ARRAYTYPE_LEN_OFF 64
#define GO_SLICETYPE_ELEM_OFF 48

/* The stack pointer at a probe (stack-assigned arguments start 8 bytes above it at entry:
 * the return address on amd64, the reserved LR slot on arm64; Go's abi-internal.md). */
#if defined(__TARGET_ARCH_x86)
#define OTELAPI_SP(ctx) ((__u64)(ctx)->rsp)
#else
#define OTELAPI_SP(ctx) ((__u64)((const struct user_pt_regs *)(ctx))->sp)
#endif

/* ---- state ---- */
struct start_call {
	__u64 tracer;   /* *global.tracer: identifies the call (morestack re-entry check) */
	__u64 name_ptr; /* the span name argument */
	__s64 name_len;
	__u64 opts_ptr; /* []trace.SpanStartOption */
	__s64 opts_len;
	__u64 start_ns;
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags;
	__u8 delegated; /* the tracer forwards to an SDK: Start's RET does nothing */
};

struct otel_span {
	__u64 start_ns;
	__u64 ctx;   /* the context Start returned, registered in bee_ctx_spans */
	__u64 alias; /* the span's copy inside that context, in otelapi_alias */
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags;
	__u8 kind;
	__u8 status_code;
	__u16 dropped;
	__u16 truncated_values;
	__u16 items_len;
	__u8 name_len;
	__u8 scope_name_len;
	__u8 scope_version_len;
	__u8 schema_url_len;
	__u8 status_desc_len;
	__u8 name_truncated;
	/* While an item is being written: where the next byte goes, and whether anything was cut.
	 * In the map value rather than on the stack: a value read from a map is an unknown scalar
	 * to the verifier, so the paths through an attribute converge instead of multiplying. */
	__u32 cursor;
	__u8 cut;
	char name[OTELAPI_NAME_CAP];
	char scope_name[OTELAPI_SCOPE_NAME_CAP];
	char scope_version[OTELAPI_SCOPE_VERSION_CAP];
	char schema_url[OTELAPI_SCHEMA_URL_CAP];
	char status_desc[OTELAPI_STATUS_CAP];
	__u8 items[OTELAPI_ITEMS_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct start_call);
} otelapi_start_calls SEC(".maps");

/* Start calls in flight by goroutine in slots (bpf/include/slots.bpf.h) in front of the map: an
 * LRU update, lookup and delete per span otherwise. */
#define OTELAPI_SLOT_BITS 10
volatile const __u32 otelapi_slot_mask = (1u << OTELAPI_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(otelapi_start_slot, struct start_call, st, otelapi_start_slots, otelapi_start_slot_of, OTELAPI_SLOT_BITS, otelapi_slot_mask)
struct otelapi_map_fill {
	__s64 start_calls;
};
BEE_FILL_COUNTS(struct otelapi_map_fill, otelapi_map_fill, otelapi_fill)
/* start_call_of/_drop/_store/_get/_take_any: slots.bpf.h. */
BEE_CALL_TABLE(start_call, struct start_call, otelapi_start_slot, otelapi_start_slot_of, otelapi_start_calls, BEE_FILL_FIELD(otelapi_fill, start_calls))

/* Spans started and not ended, by the address of the span object Start returned. LRU: a span
 * the application never ends must not hold its entry for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct otel_span);
} otelapi_spans SEC(".maps");

/* The span copy inside the returned context -> the returned span's address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, __u64);
} otelapi_alias SEC(".maps");

struct otelapi_scratch {
	struct otel_span init;
	__u8 rec[OTELAPI_REC_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct otelapi_scratch);
} otelapi_scratch_map SEC(".maps");

/* span methods that found no span (started before attach, or a tracer with a delegate) */
__u64 span_not_found = 0;
/* attributes, events or links not stored: the span's items were full or a per-call cap hit */
__u64 items_dropped = 0;

/* Every record struct and enum of otelapi.h in the object's BTF (generated bindings). */
const struct rec_otelapi_span *otelapi_btf_span __attribute__((unused));
const enum rec_type *otelapi_btf_type __attribute__((unused));
const enum rec_span_flags *otelapi_btf_span_flags __attribute__((unused));
const enum rec_otelapi_flags *otelapi_btf_flags __attribute__((unused));
const enum otelapi_item *otelapi_btf_item __attribute__((unused));
const enum otelapi_owner *otelapi_btf_owner __attribute__((unused));
const enum otelapi_vtype *otelapi_btf_vtype __attribute__((unused));

static __always_inline struct otelapi_scratch *scratch(void)
{
	__u32 key = 0;
	return bpf_map_lookup_elem(&otelapi_scratch_map, &key);
}

/* The span whose object (or its copy in a context) is at addr. */
static __always_inline struct otel_span *span_of(__u64 addr, __u64 *key)
{
	struct otel_span *s = bpf_map_lookup_elem(&otelapi_spans, &addr);
	if (s) {
		*key = addr;
		return s;
	}
	__u64 *canon = bpf_map_lookup_elem(&otelapi_alias, &addr);
	if (canon) {
		__u64 k = *canon;
		s = bpf_map_lookup_elem(&otelapi_spans, &k);
		if (s) {
			*key = k;
			return s;
		}
	}
	bee_count(&span_not_found);
	return 0;
}

/* Copies a Go string {ptr, len} into dst (cap bytes at most); returns the bytes kept and sets
 * *cut when longer. */
static __always_inline __u8 copy_str(char *dst, __u32 cap, __u64 ptr, __s64 len, int *cut)
{
	if (len <= 0 || ptr == 0)
		return 0;
	__u32 n = cap;
	if ((__u64)len <= cap)
		n = (__u32)len;
	else
		*cut = 1;
	if (n > cap)
		n = cap;
	asm volatile("" : "+r"(n));
	if (bpf_probe_read_user(dst, n, (const void *)ptr) != 0)
		return 0;
	return (__u8)n;
}

/* ---- appending items ---- */

static __always_inline int items_room(struct otel_span *s)
{
	if (s->items_len >= OTELAPI_ITEMS_CAP) {
		s->dropped++;
		bee_count(&items_dropped);
		return 0;
	}
	return 1;
}

static __always_inline void put_u8(struct otel_span *s, __u8 v)
{
	__u32 p = s->cursor & OTELAPI_ITEMS_MASK;
	s->items[p] = v;
	s->cursor = (p + 1) & OTELAPI_ITEMS_MASK;
}

static __always_inline void put_u64(struct otel_span *s, __u64 v)
{
	__u32 p = s->cursor & OTELAPI_ITEMS_MASK;
	if (p > OTELAPI_ITEMS_SIZE - 8)
		return;
	__builtin_memcpy(&s->items[p], &v, 8);
	s->cursor = p + 8;
}

/* Appends user memory [ptr, ptr+n) (n <= cap, a constant). An item starts below
 * OTELAPI_ITEMS_CAP and is at most OTELAPI_ITEM_MAX bytes, so p + n stays inside items. */
static __always_inline int put_user(struct otel_span *s, __u64 ptr, __u32 n32, __u32 cap)
{
	__u32 p = s->cursor & OTELAPI_ITEMS_MASK;
	__u64 n = n32 > cap ? cap : n32;
	/* The bound as an instruction of its own on the register the helper gets: the compiler,
	 * knowing n <= cap, would otherwise drop any clamp or mask and pass a copy the verifier
	 * has no bound for. Caps are below OTELAPI_WRITE_MAX, so the mask changes nothing. */
	asm volatile("%[n] &= 255" : [n] "+r"(n));
	if (p > OTELAPI_ITEMS_SIZE - OTELAPI_WRITE_MAX)
		return -1;
	if (n > 0 && bpf_probe_read_user(&s->items[p], n, (const void *)ptr) != 0)
		return -1;
	s->cursor = p + n;
	return 0;
}

/* A length-prefixed (u8) Go string, at most cap bytes; a longer one sets s->cut. */
static __always_inline void put_str(struct otel_span *s, __u64 ptr, __s64 len, __u32 cap)
{
	__u32 n = 0;
	if (len > 0 && ptr != 0) {
		n = (__u64)len <= cap ? (__u32)len : cap;
		if ((__u64)len > cap)
			s->cut = 1;
	}
	__u32 at = s->cursor;
	put_u8(s, (__u8)n);
	if (put_user(s, ptr, n, cap) != 0) {
		s->cursor = at; /* unreadable: store it empty */
		put_u8(s, 0);
	}
}

/* The elements of a slice value. attribute.Value.slice (`any`) holds, by release:
 *   an array value [N]T (newer: attribute/value.go via internal/attribute SliceValue): N is
 *     the array type's Len, the interface's data points at the elements;
 *   a *[]T (1.0.x: `slice: &cp`): the data points at the slice header {ptr, len, cap}.
 * Told apart by the dynamic type's kind, so no version switch is needed. */
static __always_inline void put_slice(struct otel_span *s, __u64 slice_addr, __u8 vt)
{
	struct go_iface arr = {};
	__u64 n = 0;
	if (bpf_probe_read_user(&arr, sizeof(arr), (const void *)slice_addr) == 0 && arr.tab && arr.data) {
		__u8 kind = go_type_kind(arr.tab);
		if (kind == GO_KIND_ARRAY) {
			if (bpf_probe_read_user(&n, sizeof(n), (const void *)(arr.tab + GO_ARRAYTYPE_LEN_OFF)) != 0)
				n = 0;
		} else if (kind == GO_KIND_POINTER) {
			int err = 0;
			__u64 elem = go_read_u64(arr.tab + GO_PTRTYPE_ELEM_OFF, &err);
			struct go_string hdr = {}; /* {ptr, len} of the slice */
			if (!err && go_type_kind(elem) == GO_KIND_SLICE &&
			    bpf_probe_read_user(&hdr, sizeof(hdr), (const void *)arr.data) == 0 && hdr.len > 0) {
				arr.data = hdr.ptr;
				n = (__u64)hdr.len;
			}
		}
	}
	if (n > OTELAPI_SLICE_MAX) {
		s->cut = 1;
		n = OTELAPI_SLICE_MAX;
	}
	put_u8(s, (__u8)n);
	if (vt == OTELAPI_VT_BOOLSLICE) {
		if (put_user(s, arr.data, (__u32)n, OTELAPI_SLICE_MAX) != 0)
			s->cut = 1;
		return;
	}
	if (vt == OTELAPI_VT_INT64SLICE || vt == OTELAPI_VT_FLOAT64SLICE) {
		if (put_user(s, arr.data, (__u32)n * 8, OTELAPI_SLICE_MAX * 8) != 0)
			s->cut = 1;
		return;
	}
	/* STRINGSLICE: n Go strings */
	for (__u32 i = 0; i < OTELAPI_SLICE_MAX; i++) {
		if (i >= n)
			break;
		struct go_string str = {};
		bpf_probe_read_user(&str, sizeof(str), (const void *)(arr.data + i * 16));
		put_str(s, str.ptr, str.len, OTELAPI_ELEM_CAP);
	}
}

/* Appends one attribute.KeyValue at kv. */
static __noinline void put_kv(struct otel_span *s, __u8 owner, __u64 kv)
{
	if (!s || !items_room(s))
		return;
	struct go_string key = {};
	__u64 value = kv + kv_value_off;
	__s64 vtype = 0;
	__u64 numeric = 0;
	struct go_string str = {};
	if (bpf_probe_read_user(&key, sizeof(key), (const void *)(kv + kv_key_off)) != 0 ||
	    bpf_probe_read_user(&vtype, sizeof(vtype), (const void *)(value + value_vtype_off)) != 0)
		return;
	__u8 vt = (vtype > 0 && vtype <= 0x3f) ? (__u8)vtype : 0;
	s->cursor = s->items_len;
	s->cut = 0;
	put_u8(s, OTELAPI_ITEM_ATTR);
	put_u8(s, owner);
	__u32 vt_at = s->cursor;
	put_u8(s, vt);
	put_str(s, key.ptr, key.len, OTELAPI_KEY_CAP);
	switch (vt) {
	case OTELAPI_VT_BOOL:
	case OTELAPI_VT_INT64:
	case OTELAPI_VT_FLOAT64:
		bpf_probe_read_user(&numeric, sizeof(numeric), (const void *)(value + value_numeric_off));
		put_u64(s, numeric);
		break;
	case OTELAPI_VT_STRING:
		bpf_probe_read_user(&str, sizeof(str), (const void *)(value + value_stringly_off));
		put_str(s, str.ptr, str.len, OTELAPI_VALUE_CAP);
		break;
	case OTELAPI_VT_BOOLSLICE:
	case OTELAPI_VT_INT64SLICE:
	case OTELAPI_VT_FLOAT64SLICE:
	case OTELAPI_VT_STRINGSLICE:
		put_slice(s, value + value_slice_off, vt);
		break;
	default:
		break;
	}
	if (s->cut) {
		s->items[vt_at & OTELAPI_ITEMS_MASK] = vt | OTELAPI_VT_TRUNCATED;
		s->truncated_values++;
		bee_count(&truncated_strings);
	}
	s->items_len = (__u16)s->cursor;
}

/* bpf_loop state for a run of KeyValues: the span is looked up again in the callback (a map
 * value pointer cannot travel through the loop's context), by its key. */
struct kv_loop {
	__u64 span_key;
	__u64 ptr;
	__u64 kv_size;
	__u8 owner;
};

static long kv_cb(__u32 i, void *arg)
{
	struct kv_loop *l = arg;
	__u64 key = l->span_key;
	struct otel_span *s = bpf_map_lookup_elem(&otelapi_spans, &key);
	if (!s)
		return 1;
	put_kv(s, l->owner, l->ptr + (__u64)i * l->kv_size);
	return 0;
}

/* Appends up to OTELAPI_ATTRS_PER_CALL KeyValues of the slice [ptr, len) (bpf_loop: the
 * verifier checks one KeyValue, not sixteen). */
static __always_inline void put_kvs(struct otel_span *s, __u64 span_key, __u8 owner, __u64 ptr, __s64 len)
{
	if (!s || len <= 0)
		return;
	struct kv_loop l = {};
	l.span_key = span_key;
	l.ptr = ptr;
	l.kv_size = kv_value_off + value_slice_off + 16; /* Value.slice is its last field */
	l.owner = owner;
	__u32 n = len > OTELAPI_ATTRS_PER_CALL ? OTELAPI_ATTRS_PER_CALL : (__u32)len;
	bpf_loop(n, kv_cb, &l, 0);
	if (len > OTELAPI_ATTRS_PER_CALL) {
		s = bpf_map_lookup_elem(&otelapi_spans, &span_key);
		if (s)
			s->dropped += (__u16)(len - OTELAPI_ATTRS_PER_CALL);
		bee_count(&items_dropped);
	}
}

/* Appends a link: its span context's ids, then its attributes. */
static __always_inline void put_link(struct otel_span *s, __u64 span_key, __u64 link)
{
	if (!s || link_sc_off == GO_OFF_UNSET || link_attrs_off == GO_OFF_UNSET || !items_room(s))
		return;
	s->cursor = s->items_len;
	put_u8(s, OTELAPI_ITEM_LINK);
	if (put_user(s, link + link_sc_off + sc_trace_id_off, BEE_TRACE_ID_SIZE, BEE_TRACE_ID_SIZE) != 0 ||
	    put_user(s, link + link_sc_off + sc_span_id_off, BEE_SPAN_ID_SIZE, BEE_SPAN_ID_SIZE) != 0)
		return;
	s->items_len = (__u16)s->cursor;
	struct {
		__u64 ptr;
		__s64 len;
	} attrs = {};
	if (bpf_probe_read_user(&attrs, sizeof(attrs), (const void *)(link + link_attrs_off)) == 0)
		put_kvs(s, span_key, OTELAPI_OWNER_LINK, attrs.ptr, attrs.len);
}

/*
 * Options (trace.SpanStartOption, EventOption, SpanEndOption: interfaces) by their dynamic
 * type (itab._type):
 *   a slice of 64-byte structs: trace.attributeOption ([]attribute.KeyValue, WithAttributes)
 *   a func: a closure of trace.spanOptionFunc (WithSpanKind, WithLinks, WithNewRoot); which one
 *     is told by what it captured: WithSpanKind a SpanKind (1-5) right after the code pointer,
 *     WithLinks a []Link {ptr, len, cap}
 *   anything else (timestampOption, stackTraceOption, ...) is ignored (marked on the span)
 */
static __always_inline void put_options(__u64 span_key, __u64 opts, __s64 n, __u8 owner, int start)
{
	for (int i = 0; i < OTELAPI_OPTS_PER_CALL; i++) {
		if (i >= n)
			return;
		struct otel_span *s = bpf_map_lookup_elem(&otelapi_spans, &span_key);
		if (!s)
			return;
		struct go_iface o = {};
		if (bpf_probe_read_user(&o, sizeof(o), (const void *)(opts + i * 16)) != 0 || !o.tab)
			continue;
		int err = 0;
		__u64 type = go_read_u64(o.tab + GO_ITAB_TYPE_OFF, &err);
		__u8 kind = go_type_kind(type);
		if (kind == GO_KIND_SLICE) {
			__u64 elem = go_read_u64(type + GO_SLICETYPE_ELEM_OFF, &err);
			__u64 esize = go_read_u64(elem, &err);
			__u64 kv_size = kv_value_off + value_slice_off + 16;
			if (!err && esize == kv_size && go_type_kind(elem) == GO_KIND_STRUCT) {
				/* a slice is not pointer-shaped: the interface's data points to its header */
				struct {
					__u64 ptr;
					__s64 len;
				} sl = {};
				if (bpf_probe_read_user(&sl, sizeof(sl), (const void *)o.data) == 0)
					put_kvs(s, span_key, owner, sl.ptr, sl.len);
				continue;
			}
		} else if (kind == GO_KIND_FUNC && start) {
			/* a func value is pointer-shaped: data is the closure {code, captured...} */
			__u64 w[4] = {};
			if (bpf_probe_read_user(w, sizeof(w), (const void *)o.data) == 0) {
				if (w[1] >= 1 && w[1] <= 5) {
					s->kind = (__u8)w[1];
					continue;
				}
				if (w[1] > 4096 && w[2] >= 1 && w[2] <= w[3] && w[3] < 65536 && link_attrs_off != GO_OFF_UNSET) {
					__u64 link_size = link_attrs_off + 24; /* Link.Attributes is its last field */
					for (int k = 0; k < OTELAPI_LINKS_PER_CALL; k++) {
						if ((__u64)k >= w[2])
							break;
						s = bpf_map_lookup_elem(&otelapi_spans, &span_key);
						if (!s)
							return;
						put_link(s, span_key, w[1] + k * link_size);
					}
					continue;
				}
			}
		}
		s->flags |= OTELAPI_F_OPTION_IGNORED;
	}
}

/* ---- Start ---- */

/*
 * func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption)
 *	(context.Context, trace.Span)
 * t = RAX; ctx = itab RBX, data RCX; name = RDI, RSI; opts = R8, R9, R10.
 */
SEC("uprobe")
int otelapi_start_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 t = GO_PARAM1(ctx);
	__u64 ctx_data = GO_PARAM3(ctx);
	__u64 name_ptr = GO_PARAM4(ctx);
	int err = 0;

	struct start_call st = {};
	int stale = start_call_get(g, &st);
	if (stale) {
		if (st.tracer == t && st.name_ptr == name_ptr)
			return 0; /* morestack re-ran the prologue */
		__builtin_memset(&st, 0, sizeof(st));
	}
	st.start_ns = now;
	st.tracer = t;
	st.name_ptr = name_ptr;
	/* A tracer with a delegate (atomic.Value's interface set) forwards to a registered SDK,
	 * which records the span itself; the RET must know, not count a missing entry. */
	if (tracer_delegate_off != GO_OFF_UNSET && go_read_u64(t + tracer_delegate_off, &err) != 0) {
		st.delegated = 1;
		st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
		start_call_store(g, &st, stale);
		return 0;
	}
	st.name_len = (__s64)GO_PARAM5(ctx);
	st.opts_ptr = GO_PARAM6(ctx);
	st.opts_len = (__s64)GO_PARAM7(ctx);
	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (start_call_store(g, &st, stale) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* The tracer's scope: its name, and the version and schema URL its options carry. Options
 * are closures of trace.tracerOptionFunc capturing one string (WithInstrumentationVersion,
 * WithSchemaURL): a string starting "http" is the schema URL, any other the version. */
static __noinline void read_scope(struct otel_span *s, __u64 t)
{
	int cut = 0;
	struct go_string name = {};
	if (bpf_probe_read_user(&name, sizeof(name), (const void *)(t + tracer_name_off)) == 0)
		s->scope_name_len = copy_str(s->scope_name, OTELAPI_SCOPE_NAME_CAP, name.ptr, name.len, &cut);
	if (tracer_opts_off == GO_OFF_UNSET)
		return;
	struct {
		__u64 ptr;
		__s64 len;
	} opts = {};
	if (bpf_probe_read_user(&opts, sizeof(opts), (const void *)(t + tracer_opts_off)) != 0)
		return;
	for (int i = 0; i < OTELAPI_OPTS_PER_CALL; i++) {
		if (i >= opts.len)
			break;
		struct go_iface o = {};
		if (bpf_probe_read_user(&o, sizeof(o), (const void *)(opts.ptr + i * 16)) != 0 || !o.tab)
			continue;
		int err = 0;
		__u64 type = go_read_u64(o.tab + GO_ITAB_TYPE_OFF, &err);
		if (err || go_type_kind(type) != GO_KIND_FUNC)
			continue;
		struct go_string v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(o.data + 8)) != 0 || v.len <= 0 || v.len > 1024)
			continue;
		char head[4] = {};
		if (bpf_probe_read_user(head, sizeof(head), (const void *)v.ptr) != 0)
			continue;
		if (head[0] == 'h' && head[1] == 't' && head[2] == 't' && head[3] == 'p')
			s->schema_url_len = copy_str(s->schema_url, OTELAPI_SCHEMA_URL_CAP, v.ptr, v.len, &cut);
		else
			s->scope_version_len = copy_str(s->scope_version, OTELAPI_SCOPE_VERSION_CAP, v.ptr, v.len, &cut);
	}
	if (cut)
		s->truncated_values++;
}

/* At each RET of Start: context = itab RAX, data RBX; span = itab RCX, data RDI. */
SEC("uprobe")
int otelapi_start_return(struct pt_regs *ctx)
{
	__u64 g = GO_GOROUTINE(ctx);
	__u64 ret_ctx = GO_PARAM2(ctx);
	__u64 span_tab = GO_PARAM3(ctx);
	__u64 span = GO_PARAM4(ctx);
	int err = 0;

	struct start_call st = {};
	if (!start_call_take_any(g, &st)) {
		bee_count(&return_without_entry);
		return 0;
	}
	if (st.delegated || !span || !span_tab)
		return 0;

	struct otelapi_scratch *sc = scratch();
	if (!sc)
		return 0;
	struct otel_span *s = &sc->init;
	s->start_ns = st.start_ns;
	s->ctx = ret_ctx;
	s->alias = 0;
	s->sc = st.sc;
	__builtin_memcpy(s->parent_span_id, st.parent_span_id, BEE_SPAN_ID_SIZE);
	s->flags = st.flags;
	s->kind = 0;
	s->status_code = 0;
	s->dropped = 0;
	s->truncated_values = 0;
	s->items_len = 0;
	s->cursor = 0;
	s->cut = 0;
	s->scope_name_len = 0;
	s->scope_version_len = 0;
	s->schema_url_len = 0;
	s->status_desc_len = 0;
	int cut = 0;
	s->name_len = copy_str(s->name, OTELAPI_NAME_CAP, st.name_ptr, st.name_len, &cut);
	s->name_truncated = (__u8)cut;
	read_scope(s, st.tracer);

	/* The span copy in the returned context (trace.ContextWithSpan: context.WithValue): its
	 * valueCtx.val has the returned span's dynamic type. */
	if (ret_ctx) {
		struct go_iface val = {};
		__u64 span_type = go_read_u64(span_tab + GO_ITAB_TYPE_OFF, &err);
		if (bpf_probe_read_user(&val, sizeof(val), (const void *)(ret_ctx + GO_VALUECTX_VAL_OFF)) == 0 && !err &&
		    val.tab == span_type && val.data && val.data != span) {
			s->alias = val.data;
			bpf_map_update_elem(&otelapi_alias, &val.data, &span, BPF_ANY);
		}
	}
	if (bpf_map_update_elem(&otelapi_spans, &span, s, BPF_ANY) != 0) {
		bee_count(&inflight_full);
		return 0;
	}
	put_options(span, st.opts_ptr, st.opts_len, OTELAPI_OWNER_SPAN, 1);
	if (ret_ctx && bee_ctx_span_set(ret_ctx, &st.sc) != 0)
		bee_count(&ctx_map_full);
	return 0;
}

/* ---- span methods (pointer wrappers: the span object's address in RAX) ---- */

/* func (nonRecordingSpan) SetAttributes(...attribute.KeyValue): kv = RBX, RCX */
SEC("uprobe")
int otelapi_set_attributes(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (s)
		put_kvs(s, key, OTELAPI_OWNER_SPAN, GO_PARAM2(ctx), (__s64)GO_PARAM3(ctx));
	return 0;
}

/* func (nonRecordingSpan) AddEvent(name string, opts ...trace.EventOption): name = RBX, RCX;
 * opts = RDI, RSI */
SEC("uprobe")
int otelapi_add_event(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (!s || !items_room(s))
		return 0;
	s->cursor = s->items_len;
	s->cut = 0;
	put_u8(s, OTELAPI_ITEM_EVENT);
	put_u64(s, now);
	put_str(s, GO_PARAM2(ctx), (__s64)GO_PARAM3(ctx), OTELAPI_VALUE_CAP);
	if (s->cut)
		s->truncated_values++;
	s->items_len = (__u16)s->cursor;
	put_options(key, GO_PARAM4(ctx), (__s64)GO_PARAM5(ctx), OTELAPI_OWNER_EVENT, 0);
	return 0;
}

/*
 * Go runtime type descriptors for an exception's type name (internal/abi/type.go; runtime/type.go
 * before Go 1.21; the same on 64-bit in 1.17-1.27): Type.TFlag at 20 (TFlagUncommon 1,
 * TFlagExtraStar 2), Type.Str at 40 (a nameOff: an offset from the module's `types` base);
 * StructType.PkgPath at 48 (an absolute *byte to a Name); a struct's UncommonType follows the
 * 80-byte StructType, its PkgPath (a nameOff) first. A Name (internal/abi.Name, Go >= 1.17) is a
 * flags byte, a varint length, the bytes.
 */
#define GO_TYPE_TFLAG_OFF 20
#define GO_TYPE_STR_OFF 40
#define GO_TFLAG_UNCOMMON 1
#define GO_TFLAG_EXTRA_STAR 2
#define GO_STRUCTTYPE_PKGPATH_OFF 48
#define GO_STRUCTTYPE_SIZE 80

/* Where the bytes of the Name at addr are, and how many. */
static __always_inline __u64 go_name_bytes(__u64 addr, __u32 *len)
{
	__u8 b[3] = {};
	*len = 0;
	if (!addr || bpf_probe_read_user(b, sizeof(b), (const void *)addr) != 0)
		return 0;
	if (b[1] < 0x80) {
		*len = b[1];
		return addr + 2;
	}
	*len = (b[1] & 0x7f) | ((__u32)b[2] << 7);
	return addr + 3;
}

/*
 * The error's type name, appended as two length-prefixed strings (type, package path). A
 * nameOff needs the module's `types` base, which no register or argument gives: a named struct
 * type carries its package path twice, as an absolute pointer (StructType.PkgPath) and as a
 * nameOff (UncommonType.PkgPath) to the same Name, so base = pointer - offset. Errors that are
 * (pointers to) named structs with unexported fields — errors.New, fmt.Errorf, most custom
 * errors — have both; for others both strings are stored empty.
 */
static __always_inline void put_error_type(struct otel_span *s, __u64 type)
{
	int err = 0;
	__u8 kind = go_type_kind(type);
	__u64 st = type;
	if (kind == GO_KIND_POINTER)
		st = go_read_u64(type + GO_PTRTYPE_ELEM_OFF, &err);
	__u8 tflag = 0;
	__s32 pkg_off = 0;
	__u64 pkg_abs = 0;
	__u64 base = 0;
	if (!err && st && go_type_kind(st) == GO_KIND_STRUCT &&
	    bpf_probe_read_user(&tflag, 1, (const void *)(st + GO_TYPE_TFLAG_OFF)) == 0 && (tflag & GO_TFLAG_UNCOMMON) &&
	    bpf_probe_read_user(&pkg_off, sizeof(pkg_off), (const void *)(st + GO_STRUCTTYPE_SIZE)) == 0 && pkg_off > 0) {
		pkg_abs = go_read_u64(st + GO_STRUCTTYPE_PKGPATH_OFF, &err);
		if (!err && pkg_abs > (__u64)pkg_off)
			base = pkg_abs - (__u64)pkg_off;
		/* type descriptors lie above the base, within the module */
		if (base && (st < base || st - base > (1ull << 31)))
			base = 0;
	}
	__u32 n = 0;
	__u64 str = 0;
	__s32 str_off = 0;
	if (base && bpf_probe_read_user(&str_off, sizeof(str_off), (const void *)(type + GO_TYPE_STR_OFF)) == 0 && str_off > 0 &&
	    bpf_probe_read_user(&tflag, 1, (const void *)(type + GO_TYPE_TFLAG_OFF)) == 0) {
		str = go_name_bytes(base + (__u64)str_off, &n);
		if (str && (tflag & GO_TFLAG_EXTRA_STAR) && n > 0) {
			str++;
			n--;
		}
	}
	put_str(s, str, n, OTELAPI_TYPE_CAP);
	/* reflect: a pointer type has no name (PkgPath "" and Name ""), so the SDK uses String() */
	n = 0;
	__u64 pkg = (str && kind != GO_KIND_POINTER) ? go_name_bytes(pkg_abs, &n) : 0;
	put_str(s, pkg, n, OTELAPI_TYPE_CAP);
}

/* func (nonRecordingSpan) RecordError(err error, opts ...trace.EventOption): err = itab RBX,
 * data RCX; opts = RDI, RSI. A nil error records nothing (as the SDK). */
SEC("uprobe")
int otelapi_record_error(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 tab = GO_PARAM2(ctx);
	__u64 data = GO_PARAM3(ctx);
	__u64 key = 0;
	if (!tab)
		return 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (!s || !items_room(s))
		return 0;
	int err = 0;
	__u64 type = go_read_u64(tab + GO_ITAB_TYPE_OFF, &err);
	__u64 text = go_any_text(type, data);
	struct go_string msg = {};
	if (text)
		bpf_probe_read_user(&msg, sizeof(msg), (const void *)text);
	s->cursor = s->items_len;
	s->cut = 0;
	put_u8(s, OTELAPI_ITEM_EXCEPTION);
	put_u64(s, now);
	put_str(s, msg.ptr, msg.len, OTELAPI_VALUE_CAP);
	put_error_type(s, type);
	if (s->cut)
		s->truncated_values++;
	s->items_len = (__u16)s->cursor;
	put_options(key, GO_PARAM4(ctx), (__s64)GO_PARAM5(ctx), OTELAPI_OWNER_EVENT, 0);
	return 0;
}

/* func (nonRecordingSpan) SetStatus(code codes.Code, description string): code = RBX (uint32),
 * description = RCX, RDI. */
SEC("uprobe")
int otelapi_set_status(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (!s)
		return 0;
	__u32 code = (__u32)GO_PARAM2(ctx);
	/* The SDK's rules (sdk/trace/span.go SetStatus): Ok is final; Unset never overrides; the
	 * description is kept only with Error. */
	if (s->status_code == 2 || code == 0 || code > 2)
		return 0;
	s->status_code = (__u8)code;
	int cut = 0;
	s->status_desc_len = code == 1 ? copy_str(s->status_desc, OTELAPI_STATUS_CAP, GO_PARAM3(ctx), (__s64)GO_PARAM4(ctx), &cut) : 0;
	if (cut)
		s->truncated_values++;
	return 0;
}

/* func (nonRecordingSpan) SetName(name string): name = RBX, RCX */
SEC("uprobe")
int otelapi_set_name(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (!s)
		return 0;
	int cut = 0;
	s->name_len = copy_str(s->name, OTELAPI_NAME_CAP, GO_PARAM2(ctx), (__s64)GO_PARAM3(ctx), &cut);
	s->name_truncated = (__u8)cut;
	return 0;
}

/* func (nonRecordingSpan) AddLink(link trace.Link) (otel >= 1.23): trace.Link holds arrays
 * (TraceID [16]byte), so the ABI passes it on the stack: at entry it starts right above the
 * return address. */
SEC("uprobe")
int otelapi_add_link(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (s)
		put_link(s, key, OTELAPI_SP(ctx) + 8);
	return 0;
}

/* func (nonRecordingSpan) End(options ...trace.SpanEndOption): emits the span. */
SEC("uprobe")
int otelapi_end(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 key = 0;
	struct otel_span *s = span_of(GO_PARAM1(ctx), &key);
	if (!s)
		return 0;
	struct otelapi_scratch *sc = scratch();
	if (!sc) {
		bpf_map_delete_elem(&otelapi_spans, &key);
		return 0;
	}
	__u8 *buf = sc->rec;
	struct rec_otelapi_span *r = (struct rec_otelapi_span *)buf;
	__u16 flags = s->flags;
	__u16 truncated = 0;
	r->h.type = REC_OTELAPI_SPAN;
	r->h.start_ns = s->start_ns;
	r->h.end_ns = now;
	__builtin_memcpy(r->h.trace_id, s->sc.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(r->h.span_id, s->sc.span_id, BEE_SPAN_ID_SIZE);
	if (flags & REC_SPAN_F_HAS_PARENT)
		__builtin_memcpy(r->h.parent_span_id, s->parent_span_id, BEE_SPAN_ID_SIZE);
	else
		__builtin_memset(r->h.parent_span_id, 0, BEE_SPAN_ID_SIZE);
	r->kind = s->kind;
	r->status_code = s->status_code;
	r->dropped = s->dropped;
	r->truncated_values = s->truncated_values;
	if (s->dropped)
		flags |= OTELAPI_F_DROPPED;
	if (s->truncated_values)
		flags |= OTELAPI_F_VALUES_TRUNCATED;
	if (s->name_truncated)
		truncated |= 1;

	__u32 pos = __builtin_offsetof(struct rec_otelapi_span, strings);
	__u32 n;
	n = s->name_len & 0xff;
	if (n > OTELAPI_NAME_CAP)
		n = OTELAPI_NAME_CAP;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->name);
	pos += n;
	r->name_len = (__u8)n;
	n = s->scope_name_len & 0xff;
	if (n > OTELAPI_SCOPE_NAME_CAP)
		n = OTELAPI_SCOPE_NAME_CAP;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->scope_name);
	pos += n;
	r->scope_name_len = (__u8)n;
	n = s->scope_version_len & 0xff;
	if (n > OTELAPI_SCOPE_VERSION_CAP)
		n = OTELAPI_SCOPE_VERSION_CAP;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->scope_version);
	pos += n;
	r->scope_version_len = (__u8)n;
	n = s->schema_url_len & 0xff;
	if (n > OTELAPI_SCHEMA_URL_CAP)
		n = OTELAPI_SCHEMA_URL_CAP;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->schema_url);
	pos += n;
	r->schema_url_len = (__u8)n;
	n = s->status_desc_len & 0xff;
	if (n > OTELAPI_STATUS_CAP)
		n = OTELAPI_STATUS_CAP;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->status_desc);
	pos += n;
	r->status_desc_len = (__u8)n;
	n = s->items_len & OTELAPI_ITEMS_MASK;
	bpf_probe_read_kernel(buf + (pos & OTELAPI_REC_MASK), n, s->items);
	pos += n;
	r->items_len = (__u16)n;
	r->h.flags = flags;
	r->h.truncated = truncated;
	r->h.size = (__u16)(pos & OTELAPI_REC_MASK);

	__u64 c = s->ctx;
	__u64 alias = s->alias;
	/* A decided, unsampled trace is not emitted (as record.bpf.h's bee_emit does for the others). */
	if (bee_sampler != BEE_SAMPLER_ALWAYS_ON &&
	    (flags & (REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED)) == REC_SPAN_F_TRACE_FLAGS_KNOWN)
		bee_count(&unsampled);
	else if (bpf_ringbuf_output(&events, buf, pos & OTELAPI_REC_MASK, BPF_RB_NO_WAKEUP) != 0)
		bee_count(&ringbuf_full);
	if (c)
		bee_ctx_span_clear(c);
	if (alias)
		bpf_map_delete_elem(&otelapi_alias, &alias);
	bpf_map_delete_elem(&otelapi_spans, &key);
	return 0;
}
