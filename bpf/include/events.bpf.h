/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.bpf.h — the ring buffer every record goes to, and the loss counters.
 *
 * Counters live in .bss so user space reads them by name (no map lookups, no syscalls per
 * read once mmapped). Every way a span can be lost or damaged increments one: nothing is
 * dropped silently. Records are submitted with BPF_RB_NO_WAKEUP: user space drains on a
 * timer, because a wake-up per record slowed the traced process 3-5x (spike measurement).
 */
#ifndef BEETRACE_EVENTS_BPF_H
#define BEETRACE_EVENTS_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Default 4 MiB; user space resizes with bpf_map__set_max_entries before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* bpf_ringbuf_reserve failed (ring full): the record and so the span is lost */
__u64 ringbuf_full = 0;
/* an in-flight map was full at entry: the call is not traced */
__u64 inflight_full = 0;
/* a return probe ran with no entry state (entry lost, or attached mid-call) */
__u64 return_without_entry = 0;
/* a string field was longer than its record buffer */
__u64 truncated_strings = 0;
/* a bpf_probe_read_user of a target field failed (the record carries a READ_ERROR flag) */
__u64 read_errors = 0;
/* an entry found stale state for its goroutine (the earlier call never returned: panic or
 * Goexit) and replaced it; that earlier span stays incomplete */
__u64 entry_replaced = 0;
/* the context -> span map was full: children on other goroutines lose their parent */
__u64 ctx_map_full = 0;
/* a span of a trace the sampler (OTEL_TRACES_SAMPLER) did not keep: not emitted, by design */
__u64 unsampled = 0;

static __always_inline void bee_count(__u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

static __always_inline void *bee_reserve(__u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		bee_count(&ringbuf_full);
	return r;
}

static __always_inline void bee_submit(void *r)
{
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static __always_inline void bee_discard(void *r)
{
	bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
}

#endif /* BEETRACE_EVENTS_BPF_H */
