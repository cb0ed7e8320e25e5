/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span.bpf.h — span identity: random W3C trace/span ids drawn in BPF, and the span context
 * stored in in-flight state and in the context -> span map.
 */
#ifndef BEETRACE_SPAN_BPF_H
#define BEETRACE_SPAN_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "../shared/span.h"

/*
 * Flags of every LRU hash map (per-call state, parent lookups, connections). The LRU is what
 * keeps a call that never ends (a goroutine that died mid-call) from filling a map for good;
 * its common (global) list costs ~2-2.5 µs per update on the 2-vCPU guest this was measured on
 * (bpf_stats, nethttp_server_entry: three updates, 11-13 µs a run; 8.3 µs with per-CPU lists,
 * 7.8 µs with plain hash maps). BPF_F_NO_COMMON_LRU gives each CPU its own list: eviction then
 * happens per CPU (max_entries / CPUs each), far above the calls in flight.
 */
#define BEE_LRU_FLAGS BPF_F_NO_COMMON_LRU

struct span_ctx {
	__u8 trace_id[BEE_TRACE_ID_SIZE];
	__u8 span_id[BEE_SPAN_ID_SIZE];
	/* REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED when the trace came in with a
	 * traceparent: its sampled flag, inherited by every span of the trace in this process */
	__u16 trace_flags;
	__u8 _pad[6];
};

/* enum bee_sampler and its ratio threshold, set by user space before load (default: the OTel
 * SDK default, parentbased_always_on). */
volatile const __u32 bee_sampler = BEE_SAMPLER_PARENT_BASED | BEE_SAMPLER_ALWAYS_ON;
volatile const __u64 bee_sample_threshold = 0;

/*
 * The root decision on a trace id, as trace flags: 0 (undecided, kept) for always_on, else
 * REC_SPAN_F_TRACE_FLAGS_KNOWN with REC_SPAN_F_SAMPLED when kept. TraceIdRatioBased reads the
 * rightmost 56 bits of the id as random (W3C Trace Context Level 2), big-endian, like
 * src/config/otel-env.ts traceIdRatioSampled.
 */
static __always_inline __u16 bee_root_flags(const __u8 *trace_id)
{
	__u32 root = bee_sampler & BEE_SAMPLER_ROOT_MASK;
	if (root == BEE_SAMPLER_ALWAYS_ON)
		return 0;
	if (root == BEE_SAMPLER_ALWAYS_OFF)
		return REC_SPAN_F_TRACE_FLAGS_KNOWN;
	__u64 r = 0;
	for (int i = 9; i < BEE_TRACE_ID_SIZE; i++)
		r = (r << 8) | trace_id[i];
	return REC_SPAN_F_TRACE_FLAGS_KNOWN | (r >= bee_sample_threshold ? REC_SPAN_F_SAMPLED : 0);
}

/* Trace flags of a span whose parent is a remote caller's (traceparent sampled bit `sampled`). */
static __always_inline __u16 bee_remote_flags(const __u8 *trace_id, int sampled)
{
	if (bee_sampler & BEE_SAMPLER_PARENT_BASED)
		return REC_SPAN_F_TRACE_FLAGS_KNOWN | (sampled ? REC_SPAN_F_SAMPLED : 0);
	return bee_root_flags(trace_id);
}

/*
 * Random ids from bpf_get_prandom_u32. An all-zero id is invalid (W3C Trace Context,
 * "trace-id" and "parent-id": all zeroes is not allowed), so a zero draw is drawn again;
 * should the second draw be zero too (probability 2^-64 or less) one bit is forced on
 * rather than loop.
 */
static __always_inline void bee_new_trace_id(struct span_ctx *sc)
{
	__u32 w[4];
	w[0] = bpf_get_prandom_u32();
	w[1] = bpf_get_prandom_u32();
	w[2] = bpf_get_prandom_u32();
	w[3] = bpf_get_prandom_u32();
	if ((w[0] | w[1] | w[2] | w[3]) == 0) {
		w[0] = bpf_get_prandom_u32();
		w[1] = bpf_get_prandom_u32();
		if ((w[0] | w[1]) == 0)
			w[0] = 1;
	}
	__builtin_memcpy(sc->trace_id, w, sizeof(w));
	/* A new trace is a root: the sampler decides it here, its spans inherit the flags. */
	sc->trace_flags = bee_root_flags(sc->trace_id);
}

static __always_inline void bee_new_span_id(struct span_ctx *sc)
{
	__u32 w[2];
	w[0] = bpf_get_prandom_u32();
	w[1] = bpf_get_prandom_u32();
	if ((w[0] | w[1]) == 0) {
		w[0] = bpf_get_prandom_u32();
		w[1] = bpf_get_prandom_u32();
		if ((w[0] | w[1]) == 0)
			w[0] = 1;
	}
	__builtin_memcpy(sc->span_id, w, sizeof(w));
}

#endif /* BEETRACE_SPAN_BPF_H */
