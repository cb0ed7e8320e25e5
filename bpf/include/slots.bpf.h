/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots.bpf.h — direct-mapped tables keyed by a 64-bit id (a goroutine), in front of LRU maps.
 *
 * An LRU hash map costs several cache misses per update or delete (its bucket, lock, LRU lists
 * and element): ~0.3-1 µs each on the 2-core KVM guest this was measured on, per step in the
 * net/http server's entry, paid by the traced service on every request. A slot is one array
 * element at a hash of the id. Two ids may hash to one slot, and two CPUs may claim it at once,
 * so a slot is claimed (bee_slot_claim) and given back (bee_slot_release); an id whose slot is
 * taken uses the LRU map as before, which also keeps what is never given back (a call that
 * never ends keeps its slot until its goroutine comes back).
 */
#ifndef BEETRACE_SLOTS_BPF_H
#define BEETRACE_SLOTS_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The head of every slot: claims in progress or held (1 while owned), and the owner id (0 none). */
struct bee_slot_head {
	__u64 claims;
	__u64 owner;
};

/* Slot index of `id` among 2^bits slots: Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4), the top
 * bits of id * 2^64/φ; `mask` (≤ 2^bits - 1) narrows it further. */
static __always_inline __u32 bee_slot_index(__u64 id, __u32 bits, __u32 mask)
{
	return (__u32)((id * 0x9E3779B97F4A7C15ull) >> (64 - bits)) & mask;
}

/*
 * Declares one table: struct slot_type {head; field_type field;}, the array map `map` of
 * 2^bits of them, and lookup_fn(id) giving id's slot (the index also masked by `mask`, a
 * volatile const user space may narrow: BEETRACE_SERVER_SLOTS sets every .rodata const whose
 * name ends in "_slot_mask", so a mask must be named so).
 */
#define BEE_SLOT_TABLE(slot_type, field_type, field, map, lookup_fn, bits, mask)                        \
	struct slot_type {                                                                              \
		struct bee_slot_head h;                                                                 \
		field_type field;                                                                       \
	};                                                                                              \
	struct {                                                                                        \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                       \
		__uint(max_entries, 1u << (bits));                                                      \
		__type(key, __u32);                                                                     \
		__type(value, struct slot_type);                                                        \
	} map SEC(".maps");                                                                             \
	static __always_inline struct slot_type *lookup_fn(__u64 id)                                  \
	{                                                                                               \
		__u32 i = bee_slot_index(id, bits, (mask) & ((1u << (bits)) - 1));                      \
		return bpf_map_lookup_elem(&map, &i);                                                   \
	}

/*
 * Claims a free slot with an atomic add (BPF_XADD: every BPF ISA version; -mcpu=v3's
 * compare-and-swap made the net/http object's verification slower) and a read: the claimant
 * that reads 1 owns the slot. Claimants that read more give their add back and use the LRU map;
 * two at once both lose. Never two owners: while one owns the slot its add stays in the count,
 * so any other claimant reads at least 2.
 */
static __always_inline int bee_slot_claim(struct bee_slot_head *h)
{
	if (*(volatile __u64 *)&h->claims != 0)
		return 0;
	__sync_fetch_and_add(&h->claims, 1);
	if (*(volatile __u64 *)&h->claims != 1) {
		__sync_fetch_and_add(&h->claims, -1);
		return 0;
	}
	return 1;
}

/* Makes the claimed slot findable under `id`, after its contents were written (a table read by
 * other CPUs checks the owner before and after copying: bee_ctx_span). */
static __always_inline void bee_slot_publish(struct bee_slot_head *h, __u64 id)
{
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&h->owner = id;
}

/* Gives the slot back, once its contents were read: the owner first (lookups stop matching),
 * then the claim. The barrier keeps the compiler from moving earlier loads of the slot past
 * these stores (x86 keeps stores after loads; the add is a locked instruction). */
static __always_inline void bee_slot_release(struct bee_slot_head *h)
{
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&h->owner = 0;
	__sync_fetch_and_add(&h->claims, -1);
}

/*
 * Starts loading a slot's cache line early. A slot table is touched once per request, so by the
 * next request on that goroutine or context its line (and often its page's TLB entry) is gone:
 * each first access cost ~0.2-0.3 µs of the entry on the 2-core KVM guest of bench/RESULTS.md
 * (perf: the load of the owner in server_call_peek, bee_goroutine_entry_store and
 * bee_ctx_span_set). Touched together, straight-line, the CPU can wait for the misses at once
 * instead of one after another; in part, as measured (bench/RESULTS.md §0000000000: the stalls
 * went from 11.1 % of the uprobe path to 7.4-9.2 %).
 */
static __always_inline void bee_slot_touch(const struct bee_slot_head *h)
{
	if (h)
		(void)*(volatile const __u64 *)&h->owner;
}

/* Touches id's slot in the table whose lookup function is lookup_fn (BEE_SLOT_TABLE). */
#define BEE_SLOT_TOUCH(lookup_fn, id)                                                               \
	({                                                                                          \
		__typeof__(lookup_fn(0)) s_ = lookup_fn(id);                                        \
		if (s_)                                                                             \
			bee_slot_touch(&s_->h);                                                     \
	})

/*
 * Per-call tables (a probe's calls in flight by goroutine, in slots then an LRU map) are read
 * and written by a probe's own global functions; what they answer:
 */
/* peek, at an entry: what the goroutine has in flight already. */
enum call_peek_result {
	CALL_PEEK_NONE = 0,
	CALL_PEEK_SAME = 1,  /* the same call: morestack re-ran the prologue */
	CALL_PEEK_STALE = 2, /* another call that never ended (panic, Goexit) */
};
/* take, at an end: the call, removed from its slot or map entry. */
enum call_take_result {
	CALL_TAKE_NONE = 0,
	CALL_TAKE_OK = 1,    /* *out has the call, its slot or entry is free */
	CALL_TAKE_OTHER = 2, /* not this end's call (another writer or stream than the marker's, a nested call) */
};

/*
 * Fill counts: how many entries the map behind a slot table may hold, added to (a locked add)
 * before an insert and taken from after a delete that found one, so it is never below the
 * entries the map holds, whoever inserts and deletes: an entry inserted before a reader looked
 * was counted before that too. It may be above them: an insert that replaced an entry, or an
 * entry the LRU evicted, leaves it too high, which only costs the lookups and deletes it saves.
 * While it is 0 the map is not touched: an LRU lookup or delete cost ~0.1-0.4 µs on the 2-core
 * KVM guest of bench/RESULTS.md even for a key the map did not hold, and the slots leave the
 * maps empty but for collisions and calls that never end.
 */

/* Whether the map may hold an entry (*count > 0); true when the count is unknown (NULL). */
static __always_inline int bee_fill_any(const __s64 *count)
{
	return !count || *(volatile const __s64 *)count > 0;
}

/* bpf_map_update_elem(map, key, value, flags), counted in *count when it may add an entry. */
static __always_inline long bee_fill_update(void *map, const void *key, const void *value, __u64 flags, __s64 *count)
{
	if (flags == BPF_EXIST)
		return bpf_map_update_elem(map, key, value, flags);
	if (count)
		__sync_fetch_and_add(count, 1);
	long err = bpf_map_update_elem(map, key, value, flags);
	if (err && count)
		__sync_fetch_and_add(count, -1);
	return err;
}

/* Deletes key from map when the map may hold it, and counts what it found. */
static __always_inline void bee_fill_delete(void *map, const void *key, __s64 *count)
{
	if (bee_fill_any(count) && bpf_map_delete_elem(map, key) == 0 && count)
		__sync_fetch_and_add(count, -1);
}

/* bpf_map_lookup_elem(map, key), or NULL without a lookup while the map is empty. */
static __always_inline void *bee_fill_lookup(void *map, const void *key, const __s64 *count)
{
	return bee_fill_any(count) ? bpf_map_lookup_elem(map, key) : 0;
}

/* Declares a one-element array `map` of `counts_type`, whose fields are fill counts, and fn() giving
 * the element (NULL never in practice; every helper above takes NULL as "unknown"). */
#define BEE_FILL_COUNTS(counts_type, map, fn)                                                       \
	struct {                                                                                    \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                   \
		__uint(max_entries, 1);                                                             \
		__type(key, __u32);                                                                 \
		__type(value, counts_type);                                                         \
	} map SEC(".maps");                                                                         \
	static __always_inline counts_type *fn(void)                                                \
	{                                                                                           \
		__u32 zero = 0;                                                                     \
		return bpf_map_lookup_elem(&map, &zero);                                            \
	}

/* The fill count field `field` of the counts fn() gives, or NULL (as "unknown"). */
#define BEE_FILL_FIELD(fn, field)                                                                   \
	({                                                                                          \
		__typeof__(fn()) f_ = fn();                                                         \
		f_ ? &f_->field : (__s64 *)0;                                                       \
	})

/*
 * A probe's calls in flight by goroutine: slot table `slot_type` (BEE_SLOT_TABLE, field `st`)
 * in front of LRU map `lru_map`, counted by `count` (an expression giving its fill count:
 * BEE_FILL_FIELD). Declares
 *   name##_of(g, slot, &in_slot)  the call g has in flight (its slot, else the map), or NULL;
 *   name##_drop(g, slot, in_slot) gives it up (where name##_of found it);
 *   name##_store(g, st, stale_in_map)  stores st as g's call: in its slot, else in the map
 *       (nonzero when that is full); stale_in_map: an earlier call of g's is in the map, to drop
 *       when this one gets the slot;
 *   name##_get(g, out), name##_put(g, in)  copy g's call out and back (a program that adds to a
 *       call in flight: put writes only where the call still is);
 *   name##_take_any(g, out)  copies g's call out and gives it up (an end that needs no check).
 * _store, _get, _put and _take_any are global functions, verified once: slot-or-map branches
 * inlined into every program multiplied what the verifier walked (bench/RESULTS.md, start-up). Entries, and ends
 * that must check whose call it is, compare the fields that identify a call themselves: with
 * _get into the call they build, or with peek and take functions of their own (global too).
 */
#define BEE_CALL_TABLE(name, call_type, slot_type, slot_of, lru_map, count)                         \
	static __always_inline call_type *name##_of(__u64 g, struct slot_type *slot, int *in_slot)  \
	{                                                                                           \
		*in_slot = slot && slot->h.owner == g;                                              \
		if (*in_slot)                                                                       \
			return &slot->st;                                                           \
		return bee_fill_lookup(&lru_map, &g, count);                                        \
	}                                                                                           \
	static __always_inline void name##_drop(__u64 g, struct slot_type *slot, int in_slot)       \
	{                                                                                           \
		if (in_slot && slot)                                                                \
			bee_slot_release(&slot->h);                                                 \
		else                                                                                \
			bee_fill_delete(&lru_map, &g, count);                                       \
	}                                                                                           \
	__noinline int name##_store(__u64 g, const call_type *st, int stale_in_map)                 \
	{                                                                                           \
		if (!st)                                                                            \
			return 0;                                                                   \
		struct slot_type *slot = slot_of(g);                                                \
		if (slot && (slot->h.owner == g || bee_slot_claim(&slot->h))) {                     \
			slot->st = *st;                                                             \
			bee_slot_publish(&slot->h, g); /* only g's own probes look it up */         \
			if (stale_in_map)                                                           \
				bee_fill_delete(&lru_map, &g, count);                               \
			return 0;                                                                   \
		}                                                                                   \
		return bee_fill_update(&lru_map, &g, st, BPF_ANY, count) != 0;                      \
	}                                                                                           \
	__noinline int name##_get(__u64 g, call_type *out)                                          \
	{                                                                                           \
		if (!out)                                                                           \
			return 0;                                                                   \
		int in_slot = 0;                                                                    \
		call_type *st = name##_of(g, slot_of(g), &in_slot);                                 \
		if (!st)                                                                            \
			return 0;                                                                   \
		*out = *st;                                                                         \
		return 1;                                                                           \
	}                                                                                           \
	__noinline int name##_put(__u64 g, const call_type *in)                                     \
	{                                                                                           \
		if (!in)                                                                            \
			return 0;                                                                   \
		struct slot_type *slot = slot_of(g);                                                \
		if (slot && slot->h.owner == g) {                                                   \
			slot->st = *in;                                                             \
			return 0;                                                                   \
		}                                                                                   \
		if (bee_fill_any(count))                                                            \
			bpf_map_update_elem(&lru_map, &g, in, BPF_EXIST);                           \
		return 0;                                                                           \
	}                                                                                           \
	__noinline int name##_take_any(__u64 g, call_type *out)                                     \
	{                                                                                           \
		if (!out)                                                                           \
			return 0;                                                                   \
		struct slot_type *slot = slot_of(g);                                                \
		int in_slot = 0;                                                                    \
		call_type *st = name##_of(g, slot, &in_slot);                                       \
		if (!st)                                                                            \
			return 0;                                                                   \
		*out = *st;                                                                         \
		name##_drop(g, slot, in_slot);                                                      \
		return 1;                                                                           \
	}

/*
 * A table keyed by an address that goroutines on other CPUs look up (a context, a request's
 * URL): slot table `slot_type` (field `st`) in front of LRU map `lru_map`, counted by `count`.
 * Unlike a goroutine's call, an entry may be read while its owner ends and its slot goes to
 * another key: a reader copies the value between two reads of the owner and keeps it only when
 * both name its key; a writer publishes the owner after the value. Declares, as global functions
 * (verified once):
 *   name##_set(key, v)   registers *v for key (again for a key already registered: the latest
 *       wins, as in the map); nonzero when the map behind the slots is full;
 *   name##_copy(key, out)  copies key's value into *out: 1 when it has one.
 * Each table gives an entry up with its own rule (bee_ctx_span_clear, client_url_clear).
 */
#define BEE_SHARED_TABLE(name, value_type, slot_type, slot_of, lru_map, count)                      \
	__noinline long name##_set(__u64 key, const value_type *v)                                  \
	{                                                                                           \
		if (!v)                                                                             \
			return 0;                                                                   \
		struct slot_type *s = slot_of(key);                                                 \
		if (s) {                                                                            \
			int again = *(volatile __u64 *)&s->h.owner == key;                          \
			if (again)                                                                  \
				*(volatile __u64 *)&s->h.owner = 0; /* readers stop matching while it is rewritten */ \
			if (again || bee_slot_claim(&s->h)) {                                       \
				s->st = *v;                                                         \
				bee_slot_publish(&s->h, key);                                       \
				/* an entry for key in the map got no slot and never ended: it must not come \
				 * back into view when this one gives the slot up */                \
				bee_fill_delete(&lru_map, &key, count);                             \
				return 0;                                                           \
			}                                                                           \
		}                                                                                   \
		return bee_fill_update(&lru_map, &key, v, BPF_ANY, count);                          \
	}                                                                                           \
	__noinline int name##_copy(__u64 key, value_type *out)                                      \
	{                                                                                           \
		if (!out)                                                                           \
			return 0;                                                                   \
		struct slot_type *s = slot_of(key);                                                 \
		if (s && *(volatile __u64 *)&s->h.owner == key) {                                   \
			*out = s->st;                                                               \
			asm volatile("" ::: "memory");                                              \
			return *(volatile __u64 *)&s->h.owner == key; /* else: ending right now */  \
		}                                                                                   \
		value_type *m = bee_fill_lookup(&lru_map, &key, count);                             \
		if (!m)                                                                             \
			return 0;                                                                   \
		*out = *m;                                                                          \
		return 1;                                                                           \
	}

#endif /* BEETRACE_SLOTS_BPF_H */
