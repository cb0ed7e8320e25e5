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
 * Random ids: SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014) over a per-CPU state, seeded from bpf_get_prandom_u32 at its first use on each
 * CPU. The six bpf_get_prandom_u32 calls a server span's ids took cost ~0.15 µs of the traced
 * service's time on the 2-core KVM guest of bench/RESULTS.md (perf, bpf_user_rnd_u32); a draw of
 * two words here is one call of a few ns. The helper is a per-CPU Tausworthe generator (prandom_u32_state) of no better
 * quality, run without a lock like this one (a program preempted mid-step by another on its CPU
 * may draw what that one draws, for both). Each step's output is a bijection of a state no
 * earlier step on that CPU had: a CPU's draws do not repeat within 2^64 steps.
 */
struct bee_id_rng {
	__u64 state; /* 0 until seeded */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bee_id_rng);
} bee_id_rng_state SEC(".maps");

/* SplitMix64's increment, the 64-bit golden ratio: 2^64/φ. */
#define BEE_SPLITMIX_GAMMA 0x9E3779B97F4A7C15ull

static __always_inline __u64 bee_splitmix_next(struct bee_id_rng *r)
{
	__u64 z = r->state + BEE_SPLITMIX_GAMMA;
	r->state = z;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* 64 bits from the kernel's per-CPU generator (two bpf_get_prandom_u32 calls). */
static __always_inline __u64 bee_prandom_u64(void)
{
	return (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();
}

/* Two random non-zero 64-bit words. */
struct bee_draw {
	__u64 w[2];
};

/*
 * Draws d's words from this CPU's generator, seeded on first use. An all-zero id is invalid (W3C
 * Trace Context, "trace-id" and "parent-id"): a zero draw (one state in 2^64) becomes 1. A global
 * function, verified once: inlined at every id with its branches, it nearly doubled what the
 * verifier walked for nethttp_server_entry (6.3k -> 11.6k instructions).
 */
__noinline int bee_draw_words(struct bee_draw *d)
{
	if (!d)
		return 0;
	__u32 zero = 0;
	struct bee_id_rng *r = bpf_map_lookup_elem(&bee_id_rng_state, &zero);
	if (!r) { /* never: a one-element array */
		d->w[0] = bee_prandom_u64() | 1;
		d->w[1] = bee_prandom_u64() | 1;
		return 0;
	}
	if (r->state == 0)
		r->state = bee_prandom_u64() ^ bpf_ktime_get_boot_ns();
	__u64 a = bee_splitmix_next(r);
	__u64 b = bee_splitmix_next(r);
	d->w[0] = a | (a == 0);
	d->w[1] = b | (b == 0);
	return 0;
}

static __always_inline void bee_new_trace_id(struct span_ctx *sc)
{
	struct bee_draw d = {};
	bee_draw_words(&d);
	__builtin_memcpy(sc->trace_id, d.w, sizeof(d.w));
	/* A new trace is a root: the sampler decides it here, its spans inherit the flags. */
	sc->trace_flags = bee_root_flags(sc->trace_id);
}

static __always_inline void bee_new_span_id(struct span_ctx *sc)
{
	struct bee_draw d = {};
	bee_draw_words(&d);
	__builtin_memcpy(sc->span_id, &d.w[0], sizeof(d.w[0]));
}

#endif /* BEETRACE_SPAN_BPF_H */
