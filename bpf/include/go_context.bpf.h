/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_context.bpf.h — which span a Go call belongs under, shared by every probe object.
 *
 * Two maps hold the spans of calls in progress that can be parents:
 *   bee_goroutine_spans: goroutine (runtime.g) -> span it is serving, set by server probes;
 *   bee_ctx_spans: context.Context data pointer -> span, for children on other goroutines
 *   whose context derives from the request's.
 * In front of each, a table of slots (slots.bpf.h): bee_goroutine_slots, bee_ctx_slots. An
 * entry is in its slot when it could claim it, else in the map; every access goes through
 * bee_goroutine_span(_set, _clear) and bee_ctx_span_copy / _set / _clear. bee_span_map_fill
 * counts what is in the two maps, so that while they are empty (slots free, the usual case)
 * no probe pays for a hash lookup or delete there.
 * Each probe object declares them (this header); user space loads the first object and makes
 * every later object reuse the same map fds (bpf_map__reuse_fd before load), so a database
 * probe in another object sees the HTTP server's spans. Nothing is pinned in bpffs.
 */
#ifndef BEETRACE_GO_CONTEXT_BPF_H
#define BEETRACE_GO_CONTEXT_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "go_types.bpf.h"
#include "span.bpf.h"
#include "slots.bpf.h"

/* How many context.Context parents a child walks looking for a registered span; each step is
 * one map lookup and one 16-byte user read. Deep middleware stacks rarely exceed 20. */
#define BEE_CTX_WALK_MAX 32

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct span_ctx);
} bee_goroutine_spans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* context.Context data pointer */
	__type(value, struct span_ctx);
} bee_ctx_spans SEC(".maps");

/* What the maps behind the two slot tables hold (bee_fill_*, slots.bpf.h): shared by every
 * object, as the maps are. */
struct bee_span_map_fill {
	__s64 goroutine; /* entries in bee_goroutine_spans */
	__s64 ctx;       /* entries in bee_ctx_spans */
};
BEE_FILL_COUNTS(struct bee_span_map_fill, bee_span_map_fill, bee_span_fill)

#define BEE_G_SLOT_BITS 12
#define BEE_G_SLOTS (1u << BEE_G_SLOT_BITS)
/* Slot index mask, the same in every object (they share the table): BEE_G_SLOTS - 1, or
 * smaller when user space says so (BEETRACE_SERVER_SLOTS, for the tests of the map path). */
volatile const __u32 bee_goroutine_slot_mask = BEE_G_SLOTS - 1;
/* Slots owned by a goroutine. */
BEE_SLOT_TABLE(bee_goroutine_slot, struct span_ctx, st, bee_goroutine_slots, bee_goroutine_slot_of, BEE_G_SLOT_BITS, bee_goroutine_slot_mask)
/* bee_goroutine_entry_of/_drop/_store…: slots.bpf.h. Only g's own probes look up g's entry (a
 * goroutine runs on one CPU at a time), as for a probe's calls in flight. */
BEE_CALL_TABLE(bee_goroutine_entry, struct span_ctx, bee_goroutine_slot, bee_goroutine_slot_of, bee_goroutine_spans,
	       BEE_FILL_FIELD(bee_span_fill, goroutine))

/* The span goroutine g is serving, or NULL. */
static __always_inline struct span_ctx *bee_goroutine_span(__u64 g)
{
	int in_slot = 0;
	return bee_goroutine_entry_of(g, bee_goroutine_slot_of(g), &in_slot);
}

/* From now on goroutine g serves span sc (a server span's entry). An entry of g's in the map is
 * from a call that got no slot and never ended: dropped, so that it does not come back into view
 * when this one gives the slot up (stale_in_map). */
static __always_inline int bee_goroutine_span_set(__u64 g, const struct span_ctx *sc)
{
	return bee_goroutine_entry_store(g, sc, 1);
}

/* Goroutine g serves no span any more (a server span's end). A global function: its slot-or-map
 * branches, inlined into every server program, made what the verifier walks grow
 * (bench/RESULTS.md, start-up). */
__noinline int bee_goroutine_span_clear(__u64 g)
{
	struct bee_goroutine_slot *s = bee_goroutine_slot_of(g);
	bee_goroutine_entry_drop(g, s, s && s->h.owner == g);
	return 0;
}

#define BEE_CTX_SLOT_BITS 12
#define BEE_CTX_SLOTS (1u << BEE_CTX_SLOT_BITS)
/* As bee_goroutine_slot_mask, for the context table. */
volatile const __u32 bee_ctx_slot_mask = BEE_CTX_SLOTS - 1;
/* Slots owned by a context's data pointer. */
BEE_SLOT_TABLE(bee_ctx_slot, struct span_ctx, st, bee_ctx_slots, bee_ctx_slot_of, BEE_CTX_SLOT_BITS, bee_ctx_slot_mask)

/* Where the parent walk copies a context's span for its caller (this CPU's, for this run). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct span_ctx);
} bee_ctx_found SEC(".maps");


/*
 * bee_ctx_span_set(ctx, sc): registers span sc for context ctx (children on other goroutines
 * find it); nonzero when the map behind the slots is full. bee_ctx_span_copy(ctx, out): copies
 * the span registered for ctx into *out, 1 when there is one; a global function: inlined in the
 * parent walk's loop it tripled what the verifier walked for every client program
 * (bench/RESULTS.md, start-up). Both: slots.bpf.h, a context's span being looked up by other
 * goroutines, on other CPUs, while its own request may end and give the slot to another context.
 */
BEE_SHARED_TABLE(bee_ctx_span, struct span_ctx, bee_ctx_slot, bee_ctx_slot_of, bee_ctx_spans, BEE_FILL_FIELD(bee_span_fill, ctx))

/* Context ctx's span is over. A global function (see bee_goroutine_span_clear). */
__noinline int bee_ctx_span_clear(__u64 ctx)
{
	struct bee_ctx_slot *s = bee_ctx_slot_of(ctx);
	if (s && *(volatile __u64 *)&s->h.owner == ctx) {
		bee_slot_release(&s->h);
		return 0;
	}
	bee_fill_delete(&bee_ctx_spans, &ctx, BEE_FILL_FIELD(bee_span_fill, ctx));
	return 0;
}

/* Starts loading the slots a server entry is about to claim for goroutine g and context ctx
 * (bee_slot_touch). Call it from a global function: inlined into a program, its branches grew
 * what the verifier walked. */
static __always_inline void bee_span_slots_touch(__u64 g, __u64 ctx)
{
	BEE_SLOT_TOUCH(bee_goroutine_slot_of, g);
	if (ctx)
		BEE_SLOT_TOUCH(bee_ctx_slot_of, ctx);
}

/*
 * The nearest context in the chain starting at ctx_data that a span registered, else the span
 * this goroutine is serving. The chain comes first: a span started under the request inside
 * its handler (a manual OTel API span) registers the context it returns, and calls made under
 * that context are its children, not the request's. Every context implementation in Go's context package
 * (cancelCtx, valueCtx, timerCtx via cancelCtx, withoutCancelCtx, afterFuncCtx, stopCtx)
 * embeds its parent Context as the first field, so the parent's data pointer sits at +8 of
 * the child's struct. A nil interface (tab 0) ends the chain; a user type that does not embed
 * its parent first ends it at an unknown key or a failed read.
 */
static __always_inline struct span_ctx *bee_find_parent(__u64 g, __u64 ctx_data, int *by_ctx)
{
	__u32 zero = 0;
	struct span_ctx *found = bpf_map_lookup_elem(&bee_ctx_found, &zero);
	__u64 cur = ctx_data;
	for (int i = 0; i < BEE_CTX_WALK_MAX; i++) {
		if (cur == 0)
			break;
		if (found && bee_ctx_span_copy(cur, found)) {
			*by_ctx = 1;
			return found;
		}
		struct go_iface parent = {};
		if (bpf_probe_read_user(&parent, sizeof(parent), (const void *)cur) != 0 || parent.tab == 0)
			break;
		cur = parent.data;
	}
	return bee_goroutine_span(g);
}

/*
 * The ids of a span started as a child of whatever is in progress (bee_find_parent): its
 * parent's trace id and trace flags, the parent's span id in parent_span_id; else a new trace
 * (the sampler's root decision); a new span id either way. Returns the record flags it implies:
 * REC_SPAN_F_HAS_PARENT (| REC_SPAN_F_PARENT_BY_CTX) | the parent's trace flags, or the root's.
 */
static __always_inline __u16 bee_child_span(__u64 g, __u64 ctx_data, struct span_ctx *sc, __u8 parent_span_id[BEE_SPAN_ID_SIZE])
{
	__u16 flags;
	int by_ctx = 0;
	struct span_ctx *parent = bee_find_parent(g, ctx_data, &by_ctx);
	if (parent) {
		__builtin_memcpy(sc->trace_id, parent->trace_id, BEE_TRACE_ID_SIZE);
		__builtin_memcpy(parent_span_id, parent->span_id, BEE_SPAN_ID_SIZE);
		sc->trace_flags = parent->trace_flags;
		flags = REC_SPAN_F_HAS_PARENT | (by_ctx ? REC_SPAN_F_PARENT_BY_CTX : 0) | parent->trace_flags;
	} else {
		bee_new_trace_id(sc);
		flags = sc->trace_flags; /* the sampler's root decision */
	}
	bee_new_span_id(sc);
	return flags;
}

#endif /* BEETRACE_GO_CONTEXT_BPF_H */
