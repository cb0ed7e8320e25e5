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

struct span_ctx {
	__u8 trace_id[BEE_TRACE_ID_SIZE];
	__u8 span_id[BEE_SPAN_ID_SIZE];
	/* REC_SPAN_F_TRACE_FLAGS_KNOWN | REC_SPAN_F_SAMPLED when the trace came in with a
	 * traceparent: its sampled flag, inherited by every span of the trace in this process */
	__u16 trace_flags;
	__u8 _pad[6];
};

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
