/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.h — span records of the github.com/segmentio/kafka-go probes (bpf/kafka.bpf.c), read
 * back by src/probes/kafka/ through layouts generated from this object's BTF.
 *
 * Strings follow the fixed fields, packed in the order of their `*_len` fields (u8: bytes
 * stored, at most the cap below); rec_span.truncated bit i says string i was longer.
 */
#ifndef BEETRACE_SHARED_KAFKA_H
#define BEETRACE_SHARED_KAFKA_H

#include <linux/types.h>
#include "span.h"

/* Caps of the strings (bytes kept); each fits its u8 length field. A Kafka topic name is at
 * most 249 characters (Kafka's org.apache.kafka.common.internals.Topic, MAX_NAME_LENGTH). */
#define KAFKA_TOPIC_CAP 249
#define KAFKA_KEY_CAP 128
#define KAFKA_GROUP_CAP 128

/* rec_kafka_producer flags (bits 8-15 of rec_span.flags). */
enum rec_kafka_producer_flags {
	/* WriteMessages returned an error (err_itab names its type) */
	KAFKA_PRODUCER_F_ERROR = 1 << 8,
	/* the messages of the call go to more than one topic (Writer.Topic empty, Message.Topic
	 * differs): the span has no single destination */
	KAFKA_PRODUCER_F_MIXED_TOPICS = 1 << 9,
	/* one message with a non-nil Key: key holds it */
	KAFKA_PRODUCER_F_KEY = 1 << 10,
	/* the (single) message carries a valid W3C traceparent header the application set:
	 * msg_trace_id / msg_span_id are its creation context */
	KAFKA_PRODUCER_F_MSG_CONTEXT = 1 << 11,
	/* topic came from Writer.Topic (else from the first Message.Topic) */
	KAFKA_PRODUCER_F_WRITER_TOPIC = 1 << 12,
};

/* One (*Writer).WriteMessages call. Strings: topic, key (only for a single message). */
struct rec_kafka_producer {
	struct rec_span h;
	__u64 err_itab;  /* itab pointer of the returned error */
	__u32 msg_count; /* len(msgs), clamped to u32 */
	__u8 msg_trace_id[BEE_TRACE_ID_SIZE];
	__u8 msg_span_id[BEE_SPAN_ID_SIZE];
	__u8 topic_len;
	__u8 key_len;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_kafka_producer, strings) == 94, "rec_kafka_producer layout");

/* rec_kafka_consumer flags (bits 8-15 of rec_span.flags). */
enum rec_kafka_consumer_flags {
	/* FetchMessage returned an error: no message (err_itab names its type) */
	KAFKA_CONSUMER_F_ERROR = 1 << 8,
	/* a message was returned: topic, partition, offset are valid */
	KAFKA_CONSUMER_F_MESSAGE = 1 << 9,
	/* the message has a non-nil Key */
	KAFKA_CONSUMER_F_KEY = 1 << 10,
	/* the Reader belongs to a consumer group (ReaderConfig.GroupID non-empty) */
	KAFKA_CONSUMER_F_GROUP = 1 << 11,
};

/* One (*Reader).FetchMessage call (ReadMessage calls it). Strings: topic, key, group. */
struct rec_kafka_consumer {
	struct rec_span h;
	__u64 err_itab;  /* itab pointer of the returned error */
	__u64 offset;    /* Message.Offset */
	__u32 partition; /* Message.Partition (Kafka partitions are int32) */
	__u8 topic_len;
	__u8 key_len;
	__u8 group_len;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_kafka_consumer, strings) == 79, "rec_kafka_consumer layout");

#endif /* BEETRACE_SHARED_KAFKA_H */
