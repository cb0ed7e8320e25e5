/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span.h — the common prefix of every span record BPF writes to the ring buffer.
 *
 * One record per finished span, emitted when the call ends: the entry program keeps the
 * start time, ids and the pointers it needs in a per-call map entry, the end program reads
 * the clock first, then the fields, and writes the whole span at once. User space never
 * pairs records.
 *
 * A record is `struct rec_span` + the probe's fixed fields + its strings packed back to back
 * (each probe's header says in which order and with which `*_len` field, u8 or u16). `size` is the whole
 * record, so records can be stored back to back with no other framing: that is exactly how
 * capture files store them (src/capture/), with the layouts below written into the file
 * header so a newer beetrace can still read an older file.
 *
 * Plain C: fixed-width types, no kernel types, so a user-space C program could include it.
 * Times are bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME: keeps counting across suspend).
 */
#ifndef BEETRACE_SHARED_SPAN_H
#define BEETRACE_SHARED_SPAN_H

#include <linux/types.h>

/* W3C Trace Context (https://www.w3.org/TR/trace-context/#trace-id): 16-byte trace id,
 * 8-byte span (parent) id. */
#define BEE_TRACE_ID_SIZE 16
#define BEE_SPAN_ID_SIZE 8

/* Record tags. Values are unique across all probes (high byte = library), so one
 * dispatcher can route any record to its decoder. Format-2 tags: the two-record layout of
 * format 1 (0x0101-0x0104) is never reused. */
enum rec_type {
	REC_NETHTTP_SERVER = 0x0111,
	REC_NETHTTP_CLIENT = 0x0112,
	REC_GRPC_SERVER = 0x0121,
	REC_GRPC_CLIENT = 0x0122,
	REC_DATABASESQL = 0x0131,
	REC_KAFKA_PRODUCER = 0x0141,
	REC_KAFKA_CONSUMER = 0x0142,
	REC_OTELAPI_SPAN = 0x0151,
	REC_HTTP3_SERVER = 0x0161,
	REC_HTTP3_CLIENT = 0x0162,
};

/* rec_span.flags, bits 0-7: common to every probe. Bits 8-15 belong to the probe. */
enum rec_span_flags {
	/* parent_span_id is valid (a parent was found) */
	REC_SPAN_F_HAS_PARENT = 1 << 0,
	/* the parent was found through the context.Context chain, not the goroutine */
	REC_SPAN_F_PARENT_BY_CTX = 1 << 1,
	/* a bpf_probe_read_user of a target field failed; that field is empty */
	REC_SPAN_F_READ_ERROR = 1 << 2,
	/* the span ended at a RET of the probed function (no end marker for this binary) */
	REC_SPAN_F_END_AT_RET = 1 << 3,
	/* the parent is a remote caller's span (W3C traceparent): trace id and parent came with it */
	REC_SPAN_F_REMOTE_PARENT = 1 << 4,
	/* REC_SPAN_F_SAMPLED is the trace's sampled flag: it came in with a traceparent, or the
	 * sampler decided it at the root (any sampler but always_on) */
	REC_SPAN_F_TRACE_FLAGS_KNOWN = 1 << 5,
	REC_SPAN_F_SAMPLED = 1 << 6,
};

/*
 * OTEL_TRACES_SAMPLER as the BPF programs apply it (rodata bee_sampler, span.bpf.h): the root
 * decision, or'ed with BEE_SAMPLER_PARENT_BASED when a known parent's sampled flag decides
 * instead (OTel SDK spec, "Built-in samplers"). Spans of unsampled traces never reach the ring.
 */
enum bee_sampler {
	BEE_SAMPLER_ALWAYS_ON = 0,
	BEE_SAMPLER_ALWAYS_OFF = 1,
	BEE_SAMPLER_RATIO = 2, /* TraceIdRatioBased: keep iff the trace id's low 56 bits >= bee_sample_threshold */
	BEE_SAMPLER_ROOT_MASK = 3,
	BEE_SAMPLER_PARENT_BASED = 1 << 2,
};

/* What go_errors.bpf.h made of an error (user space turns it into error.type). */
enum go_err_cause {
	GO_ERR_NONE = 0,
	GO_ERR_OTHER = 1,   /* a type outside the walk */
	GO_ERR_ERRNO = 2,   /* a syscall.Errno was found: its value says (refused, reset, ...) */
	GO_ERR_TIMEOUT = 3, /* a deadline passed (poll or context) */
	GO_ERR_DNS = 4,     /* *net.DNSError */
	GO_ERR_TLS = 5,     /* certificate verification failed */
};

struct rec_span {
	__u16 type;      /* enum rec_type */
	__u16 size;      /* bytes in this record: this header, the probe's fields, its strings */
	__u16 flags;     /* enum rec_span_flags | probe flags (bits 8-15) */
	__u16 truncated; /* bit i set: the probe's string i was longer than its cap */
	__u64 start_ns;  /* CLOCK_BOOTTIME at the entry probe */
	__u64 end_ns;    /* CLOCK_BOOTTIME at the end probe */
	__u8 trace_id[BEE_TRACE_ID_SIZE];
	__u8 span_id[BEE_SPAN_ID_SIZE];
	__u8 parent_span_id[BEE_SPAN_ID_SIZE]; /* zero unless REC_SPAN_F_HAS_PARENT */
};
_Static_assert(sizeof(struct rec_span) == 56, "rec_span layout");

#endif /* BEETRACE_SHARED_SPAN_H */
