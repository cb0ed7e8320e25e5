// SPDX-License-Identifier: Apache-2.0
/*
 * kafka.bpf.c — spans for github.com/segmentio/kafka-go producers and consumers:
 *   (*Writer).WriteMessages(ctx, msgs ...Message) error   producer: one PRODUCER `send` span a call
 *   (*Reader).FetchMessage(ctx) (Message, error)          consumer: one CONSUMER `receive` span a call
 * ReadMessage is FetchMessage plus a commit (kafka-go reader.go): it calls FetchMessage, so
 * probing FetchMessage alone covers both without counting a message twice.
 *
 * Why one `send` span per WriteMessages call and not one per message (OTel semantic conventions
 * v1.37, messaging spans, "Producer spans"): a `send` span describes one send operation; a
 * batch sent in one operation gets ONE send span carrying `messaging.batch.message_count`, and
 * per-message identity belongs to per-message "create" contexts that the span links to.
 * WriteMessages is one operation for the whole slice (it blocks until every batch it made is
 * acknowledged, writer.go), so N spans with identical start and end would claim N operations
 * that did not happen. Those per-message creation contexts exist only when something puts a
 * traceparent into the message: beetrace does not write into the process (kernel lockdown), so
 * the only ones are those the application set itself; for a single message its context is
 * recorded (msg_trace_id/msg_span_id) so the send span can be joined with the consumer's
 * `receive` span, which continues the trace of that header.
 *
 * Where the probes sit (docs/probe-placement.md): entries at the first emulated prologue
 * instruction; ends at every RET (kafka-go calls nothing on the same goroutine right after
 * these return that could serve as an end marker). Never a uretprobe (Go moves stacks).
 *
 * FetchMessage's Message result (19 words) does not fit the nine integer result registers, so
 * Go's register ABI puts it in the caller's stack result area (src/cmd/compile/abi-internal.md:
 * a result that cannot be register-assigned is stack-assigned; the error still goes in
 * registers). FetchMessage takes no stack-assigned arguments, so at its RET the Message starts
 * right above the return address: SP + 8 (amd64: RET pops the address at SP; arm64: the frame
 * keeps the slot at 0(RSP) for the saved LR, arguments start at 8(RSP)).
 *
 * A `process` span is not made: kafka-go has no call that marks the end of processing (the
 * application may hand the message to another goroutine, batch it, or commit much later), so
 * the processing time is not observable from the library's functions.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/span.bpf.h"
#include "include/go_context.bpf.h"
#include "include/record.bpf.h"
#include "include/go_headers.bpf.h"
#include "include/slots.bpf.h"
#include "shared/span.h"
#include "shared/kafka.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(__builtin_offsetof(struct rec_kafka_producer, strings) + KAFKA_TOPIC_CAP + KAFKA_KEY_CAP <= BEE_POS_MASK,
	       "producer record fits the scratch bounds");
_Static_assert(__builtin_offsetof(struct rec_kafka_consumer, strings) + KAFKA_TOPIC_CAP + KAFKA_KEY_CAP + KAFKA_GROUP_CAP <=
		       BEE_POS_MASK,
	       "consumer record fits the scratch bounds");

/* Stack pointer at a uprobe (the results of FetchMessage are above it). */
#if defined(__TARGET_ARCH_x86)
#define KAFKA_SP(ctx) ((__u64)(ctx)->rsp)
#elif defined(__TARGET_ARCH_arm64)
#define KAFKA_SP(ctx) ((__u64)((const struct user_pt_regs *)(ctx))->sp)
#endif
/* Offset of the first stack-assigned result from SP at a RET (see the header comment). */
#define KAFKA_STACK_RESULTS_OFF 8

/* At most this many messages are looked at for mixed topics, and headers for a traceparent. */
#define KAFKA_MAX_MSGS 16
#define KAFKA_MAX_HEADERS 8
/* The header key OTel's propagators use for Kafka (W3C Trace Context, lowercase). */
#define KAFKA_TRACEPARENT_LEN 11
/* How many leading bytes of two topic names are compared for "mixed topics". */
#define KAFKA_TOPIC_CMP 32

/* Defaults used only when the object is loaded without user space setting them. */
#ifndef KAFKA_DEFAULT_OPTIONAL_OFF
#define KAFKA_DEFAULT_OPTIONAL_OFF GO_OFF_UNSET
#endif

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
/* kafka-go.Writer */
volatile const __u32 writer_topic_off = GO_OFF_UNSET; /* Topic string */
/* kafka-go.Message */
volatile const __u32 msg_topic_off = GO_OFF_UNSET;     /* Topic string */
volatile const __u32 msg_partition_off = GO_OFF_UNSET; /* Partition int */
volatile const __u32 msg_offset_off = GO_OFF_UNSET;    /* Offset int64 */
volatile const __u32 msg_key_off = GO_OFF_UNSET;       /* Key []byte */
volatile const __u32 msg_headers_off = KAFKA_DEFAULT_OPTIONAL_OFF; /* Headers []Header (optional) */
volatile const __u32 msg_time_off = GO_OFF_UNSET;      /* Time time.Time: the last field */
/* kafka-go.Reader / ReaderConfig */
volatile const __u32 reader_config_off = KAFKA_DEFAULT_OPTIONAL_OFF;   /* config ReaderConfig (optional) */
volatile const __u32 config_group_id_off = KAFKA_DEFAULT_OPTIONAL_OFF; /* GroupID string (optional) */
/* kafka-go/protocol.Header (optional; without them no traceparent is read) */
volatile const __u32 header_key_off = KAFKA_DEFAULT_OPTIONAL_OFF;   /* Key string */
volatile const __u32 header_value_off = KAFKA_DEFAULT_OPTIONAL_OFF; /* Value []byte: the last field */

/*
 * Strides of []Message and []protocol.Header: the offset of the struct's last field plus its
 * size, since neither struct has padding after it (all fields are 8-byte words). Message ends
 * with Time time.Time {wall uint64, ext int64, loc *Location} = 24 bytes (kafka-go message.go,
 * Go's time/time.go); protocol.Header ends with Value []byte {ptr, len, cap} = 24 bytes
 * (kafka-go protocol/record.go). Both hold for every kafka-go 0.4.x the tracker covers.
 */
#define KAFKA_TIME_SIZE 24
#define KAFKA_SLICE_SIZE 24
#define MSG_SIZE ((__u64)msg_time_off + KAFKA_TIME_SIZE)
#define HEADER_SIZE ((__u64)header_value_off + KAFKA_SLICE_SIZE)

/* ---- per-call state ---- */
struct producer_call {
	__u64 w;    /* *Writer: with msgs, identifies the call (morestack re-entry check) */
	__u64 msgs; /* []Message data pointer */
	__u64 nmsgs;
	__u64 start_ns;
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags; /* REC_SPAN_F_HAS_PARENT, REC_SPAN_F_PARENT_BY_CTX, trace flags */
};

struct consumer_call {
	__u64 r;   /* *Reader */
	__u64 ctx; /* context.Context data pointer (parent lookup at the end) */
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct producer_call);
} kafka_producer_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct consumer_call);
} kafka_consumer_calls SEC(".maps");

/* The calls in flight by goroutine in slots (bpf/include/slots.bpf.h) in front of the two maps:
 * an LRU update, lookup and delete per call otherwise. */
#define KAFKA_SLOT_BITS 10
volatile const __u32 kafka_slot_mask = (1u << KAFKA_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(kafka_producer_slot, struct producer_call, st, kafka_producer_slots, kafka_producer_slot_of, KAFKA_SLOT_BITS, kafka_slot_mask)
BEE_SLOT_TABLE(kafka_consumer_slot, struct consumer_call, st, kafka_consumer_slots, kafka_consumer_slot_of, KAFKA_SLOT_BITS, kafka_slot_mask)
struct kafka_map_fill {
	__s64 producer;
	__s64 consumer;
};
BEE_FILL_COUNTS(struct kafka_map_fill, kafka_map_fill, kafka_fill)
/* producer_call_of/_drop/_store/_get/_take_any and consumer_call_…: slots.bpf.h. */
BEE_CALL_TABLE(producer_call, struct producer_call, kafka_producer_slot, kafka_producer_slot_of, kafka_producer_calls, BEE_FILL_FIELD(kafka_fill, producer))
BEE_CALL_TABLE(consumer_call, struct consumer_call, kafka_consumer_slot, kafka_consumer_slot_of, kafka_consumer_calls, BEE_FILL_FIELD(kafka_fill, consumer))

/* Makes every record struct and enum of kafka.h appear in the object's BTF. */
const struct rec_kafka_producer *kafka_btf_producer __attribute__((unused));
const struct rec_kafka_consumer *kafka_btf_consumer __attribute__((unused));
const enum rec_type *kafka_btf_type __attribute__((unused));
const enum rec_span_flags *kafka_btf_span_flags __attribute__((unused));
const enum rec_kafka_producer_flags *kafka_btf_producer_flags __attribute__((unused));
const enum rec_kafka_consumer_flags *kafka_btf_consumer_flags __attribute__((unused));
const enum bee_sampler *kafka_btf_sampler __attribute__((unused));

/* Appends the []byte whose header is at hdr_addr ({ptr, len, cap}: its first two words are a
 * string header) to buf; see bee_put_go_string. */
#define put_go_bytes bee_put_go_string

/*
 * The W3C traceparent among a message's headers (Message.Headers []protocol.Header, each
 * {Key string, Value []byte}): the address of the Value's slice header, or 0. Keys compare
 * exactly with "traceparent" (OTel's Kafka carriers write it lowercase; Kafka header keys are
 * case-sensitive). Bounded: the first KAFKA_MAX_HEADERS headers.
 */
static __always_inline __u64 find_traceparent(__u64 msg)
{
	if (msg_headers_off == GO_OFF_UNSET || header_key_off == GO_OFF_UNSET || header_value_off == GO_OFF_UNSET)
		return 0;
	struct {
		__u64 ptr;
		__s64 len;
	} hs = {};
	if (bpf_probe_read_user(&hs, sizeof(hs), (const void *)(msg + msg_headers_off)) != 0 || hs.ptr == 0 || hs.len <= 0)
		return 0;
	for (int i = 0; i < KAFKA_MAX_HEADERS; i++) {
		if (i >= hs.len)
			break;
		__u64 h = hs.ptr + (__u64)i * HEADER_SIZE;
		struct go_string k = {};
		if (bpf_probe_read_user(&k, sizeof(k), (const void *)(h + header_key_off)) != 0)
			break;
		if (k.len != KAFKA_TRACEPARENT_LEN || k.ptr == 0)
			continue;
		char b[KAFKA_TRACEPARENT_LEN] = {};
		if (bpf_probe_read_user(b, sizeof(b), (const void *)k.ptr) != 0)
			continue;
		if (b[0] == 't' && b[1] == 'r' && b[2] == 'a' && b[3] == 'c' && b[4] == 'e' && b[5] == 'p' && b[6] == 'a' &&
		    b[7] == 'r' && b[8] == 'e' && b[9] == 'n' && b[10] == 't')
			return h + header_value_off;
	}
	return 0;
}

/* Whether two Go strings (headers at a and b) differ: length, then the first KAFKA_TOPIC_CMP
 * bytes (topic names that differ only further on count as equal). */
static __always_inline int topics_differ(__u64 a, __u64 b, int *err)
{
	struct go_string sa = {}, sb = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (const void *)a) != 0 || bpf_probe_read_user(&sb, sizeof(sb), (const void *)b) != 0) {
		*err = 1;
		return 0;
	}
	if (sa.len != sb.len)
		return 1;
	if (sa.len <= 0 || sa.ptr == sb.ptr)
		return 0;
	char ba[KAFKA_TOPIC_CMP] = {}, bb[KAFKA_TOPIC_CMP] = {};
	__u32 n = KAFKA_TOPIC_CMP;
	if (sa.len < KAFKA_TOPIC_CMP)
		n = (__u32)sa.len;
	if (n > KAFKA_TOPIC_CMP) /* restates the bound for the verifier */
		n = KAFKA_TOPIC_CMP;
	if (bpf_probe_read_user(ba, n, (const void *)sa.ptr) != 0 || bpf_probe_read_user(bb, n, (const void *)sb.ptr) != 0) {
		*err = 1;
		return 0;
	}
	__u64 *wa = (__u64 *)ba, *wb = (__u64 *)bb;
	for (int i = 0; i < KAFKA_TOPIC_CMP / 8; i++)
		if (wa[i] != wb[i])
			return 1;
	return 0;
}

/*
 * func (w *Writer) WriteMessages(ctx context.Context, msgs ...Message) error
 * w = RAX; ctx = itab RBX, data RCX; msgs = ptr RDI, len RSI, cap R8.
 */
SEC("uprobe")
int kafka_producer_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 w = GO_PARAM1(ctx);
	__u64 ctx_data = GO_PARAM3(ctx);
	__u64 msgs = GO_PARAM4(ctx);
	__u64 nmsgs = GO_PARAM5(ctx);

	struct producer_call st = {};
	int stale = producer_call_get(g, &st);
	if (stale) {
		if (st.w == w && st.msgs == msgs)
			return 0; /* morestack re-ran the prologue: already recorded */
		bee_count(&entry_replaced);
		__builtin_memset(&st, 0, sizeof(st));
	}
	st.start_ns = now;
	st.w = w;
	st.msgs = msgs;
	st.nmsgs = nmsgs;
	/* Parent: the request this goroutine serves, or the one ctx derives from (as the net/http
	 * client does). */
	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (producer_call_store(g, &st, stale) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* At each RET of WriteMessages: error = itab RAX, data RBX. */
SEC("uprobe")
int kafka_producer_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 err_tab = GO_PARAM1(ctx);
	int err = 0;

	struct producer_call st = {};
	if (!producer_call_take_any(g, &st)) {
		bee_count(&return_without_entry);
		return 0;
	}

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_kafka_producer *r = (struct rec_kafka_producer *)buf;
	__u16 flags = st.flags | REC_SPAN_F_END_AT_RET;
	__u16 truncated = 0;
	r->h.type = REC_KAFKA_PRODUCER;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	bee_put_ids(&r->h, &st.sc, (st.flags & REC_SPAN_F_HAS_PARENT) ? st.parent_span_id : 0);
	r->err_itab = err_tab;
	if (err_tab)
		flags |= KAFKA_PRODUCER_F_ERROR;
	r->msg_count = st.nmsgs > 0xffffffffull ? 0xffffffffu : (__u32)st.nmsgs;
	__builtin_memset(r->msg_trace_id, 0, BEE_TRACE_ID_SIZE);
	__builtin_memset(r->msg_span_id, 0, BEE_SPAN_ID_SIZE);

	__u32 pos = __builtin_offsetof(struct rec_kafka_producer, strings);
	r->topic_len = 0;
	r->key_len = 0;
	/* The destination: Writer.Topic when set, else the messages' own Topic (kafka-go
	 * writer.go chooseTopic: a Writer with a Topic refuses messages that set one). */
	__u64 wtopic = st.w + writer_topic_off;
	if (go_string_len(wtopic, &err) != 0) {
		r->topic_len = bee_put_go_string(buf, &pos, wtopic, KAFKA_TOPIC_CAP, &truncated, 0, &err);
		flags |= KAFKA_PRODUCER_F_WRITER_TOPIC;
	} else if (st.nmsgs > 0 && st.msgs && msg_time_off != GO_OFF_UNSET) {
		__u64 first = st.msgs + msg_topic_off;
		r->topic_len = bee_put_go_string(buf, &pos, first, KAFKA_TOPIC_CAP, &truncated, 0, &err);
		for (int i = 1; i < KAFKA_MAX_MSGS; i++) {
			if ((__u64)i >= st.nmsgs)
				break;
			if (topics_differ(first, st.msgs + (__u64)i * MSG_SIZE + msg_topic_off, &err)) {
				flags |= KAFKA_PRODUCER_F_MIXED_TOPICS;
				break;
			}
		}
	}
	/* Per-message attributes only when the span is about one message (semconv: key and the
	 * creation context belong to a single message). */
	if (st.nmsgs == 1 && st.msgs) {
		__u64 key = go_read_u64(st.msgs + msg_key_off, &err);
		if (key) {
			flags |= KAFKA_PRODUCER_F_KEY;
			r->key_len = put_go_bytes(buf, &pos, st.msgs + msg_key_off, KAFKA_KEY_CAP, &truncated, 1, &err);
		}
		__u64 tp = find_traceparent(st.msgs);
		__u8 tflags = 0;
		if (tp && go_parse_traceparent(tp, r->msg_trace_id, r->msg_span_id, &tflags) == 0)
			flags |= KAFKA_PRODUCER_F_MSG_CONTEXT;
		else {
			__builtin_memset(r->msg_trace_id, 0, BEE_TRACE_ID_SIZE);
			__builtin_memset(r->msg_span_id, 0, BEE_SPAN_ID_SIZE);
		}
	}
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/*
 * func (r *Reader) FetchMessage(ctx context.Context) (Message, error)
 * r = RAX; ctx = itab RBX, data RCX.
 */
SEC("uprobe")
int kafka_consumer_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 rd = GO_PARAM1(ctx);
	__u64 ctx_data = GO_PARAM3(ctx);

	struct consumer_call st = {};
	int stale = consumer_call_get(g, &st);
	if (stale) {
		if (st.r == rd && st.ctx == ctx_data)
			return 0; /* morestack re-ran the prologue */
		bee_count(&entry_replaced);
		__builtin_memset(&st, 0, sizeof(st));
	}
	st.start_ns = now;
	st.r = rd;
	st.ctx = ctx_data;
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (consumer_call_store(g, &st, stale) != 0)
		bee_count(&inflight_full);
	return 0;
}

/* At each RET of FetchMessage: Message at SP + 8 (stack-assigned), error = itab RAX, data RBX. */
SEC("uprobe")
int kafka_consumer_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 err_tab = GO_PARAM1(ctx);
	__u64 msg = KAFKA_SP(ctx) + KAFKA_STACK_RESULTS_OFF;
	int err = 0;

	struct consumer_call st = {};
	if (!consumer_call_take_any(g, &st)) {
		bee_count(&return_without_entry);
		return 0;
	}

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_kafka_consumer *r = (struct rec_kafka_consumer *)buf;
	__u16 flags = REC_SPAN_F_END_AT_RET;
	__u16 truncated = 0;
	r->h.type = REC_KAFKA_CONSUMER;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	r->err_itab = err_tab;
	r->offset = 0;
	r->partition = 0;

	/* Identity: the message's traceparent continues the producer's trace (the creation context
	 * becomes the remote parent); else the request this goroutine serves; else a new trace. */
	struct span_ctx sc = {};
	__u8 parent_id[BEE_SPAN_ID_SIZE] = {};
	int have_parent = 0;
	__u64 tp = err_tab ? 0 : find_traceparent(msg);
	__u8 tflags = 0;
	if (tp && go_parse_traceparent(tp, sc.trace_id, parent_id, &tflags) == 0) {
		have_parent = 1;
		/* trace-flags bit 0: sampled (W3C Trace Context); the sampler decides what it means */
		flags |= REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT | bee_remote_flags(sc.trace_id, tflags & 1);
	} else {
		int by_ctx = 0;
		struct span_ctx *parent = bee_find_parent(g, st.ctx, &by_ctx);
		if (parent) {
			have_parent = 1;
			__builtin_memcpy(sc.trace_id, parent->trace_id, BEE_TRACE_ID_SIZE);
			__builtin_memcpy(parent_id, parent->span_id, BEE_SPAN_ID_SIZE);
			flags |= REC_SPAN_F_HAS_PARENT | (by_ctx ? REC_SPAN_F_PARENT_BY_CTX : 0) | parent->trace_flags;
		} else {
			bee_new_trace_id(&sc);
			flags |= sc.trace_flags; /* the sampler's root decision */
		}
	}
	bee_new_span_id(&sc);
	bee_put_ids(&r->h, &sc, have_parent ? parent_id : 0);

	__u32 pos = __builtin_offsetof(struct rec_kafka_consumer, strings);
	r->topic_len = 0;
	r->key_len = 0;
	r->group_len = 0;
	if (err_tab) {
		flags |= KAFKA_CONSUMER_F_ERROR;
	} else {
		flags |= KAFKA_CONSUMER_F_MESSAGE;
		__s64 part = (__s64)go_read_u64(msg + msg_partition_off, &err);
		r->partition = part < 0 ? 0 : part > 0x7fffffff ? 0x7fffffff : (__u32)part;
		r->offset = go_read_u64(msg + msg_offset_off, &err);
		r->topic_len = bee_put_go_string(buf, &pos, msg + msg_topic_off, KAFKA_TOPIC_CAP, &truncated, 0, &err);
		if (go_read_u64(msg + msg_key_off, &err) != 0) {
			flags |= KAFKA_CONSUMER_F_KEY;
			r->key_len = put_go_bytes(buf, &pos, msg + msg_key_off, KAFKA_KEY_CAP, &truncated, 1, &err);
		}
	}
	if (reader_config_off != GO_OFF_UNSET && config_group_id_off != GO_OFF_UNSET) {
		__u64 group = st.r + reader_config_off + config_group_id_off;
		if (go_string_len(group, &err) != 0) {
			flags |= KAFKA_CONSUMER_F_GROUP;
			r->group_len = bee_put_go_string(buf, &pos, group, KAFKA_GROUP_CAP, &truncated, 2, &err);
		}
	}
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}
