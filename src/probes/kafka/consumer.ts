/**
 * @module probes/kafka/consumer — manifest of the kafka-go consumer probe: one CONSUMER `receive`
 * span per (*Reader).FetchMessage call (ReadMessage calls FetchMessage, so it is covered once).
 *
 * The span covers the call: waiting for a message included, as a receive span does. A message
 * with a valid W3C `traceparent` header (read-only, parsed in BPF) continues the producer's
 * trace: the header's span is the receive span's remote parent. (Semconv v1.37 prefers a link to
 * the creation context for pull-based receives; spans have no links in beetrace's model yet, so
 * the parent relation carries it, as OpenTelemetry Go's kafka-go instrumentation does.) Without
 * the header the span is a child of the request the goroutine serves, if any, else a root.
 *
 * No `process` span: nothing in kafka-go marks where processing of a fetched message ends (the
 * application may process it on another goroutine, later, or in batches), so its duration is not
 * observable from the library.
 */
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./kafka.gen.ts";
import { HEADER_KEY, HEADER_VALUE, KAFKA_OBJECT, LIBRARY, MSG_HEADERS, MSG_KEY, MSG_TOPIC, SCOPE_NAME, messagingSpanName, setError, setMessaging, type KafkaField } from "./object.ts";

export const CONSUMER_PROBE_ID = "kafka.consumer";

const CONSUMER_FIELDS: KafkaField[] = [
  MSG_TOPIC,
  MSG_KEY,
  MSG_HEADERS,
  HEADER_KEY,
  HEADER_VALUE,
  { const: "msg_partition_off", field: `${LIBRARY}.Message.Partition`, required: true, why: "messaging.destination.partition.id" },
  { const: "msg_offset_off", field: `${LIBRARY}.Message.Offset`, required: true, why: "messaging.kafka.offset" },
  { const: "reader_config_off", field: `${LIBRARY}.Reader.config`, required: false, why: "messaging.consumer.group.name (the Reader's config)" },
  { const: "config_group_id_off", field: `${LIBRARY}.ReaderConfig.GroupID`, required: false, why: "messaging.consumer.group.name" },
];

/** Builds the receive span (semconv v1.37 messaging "Consumer spans", Kafka). */
const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { topic: "messaging.destination.name", key: "messaging.kafka.message.key", group: "messaging.consumer.group.name" };

export function buildConsumer(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "consumer");
  setMessaging(out, "receive");
  let topic = "";
  if (flags & E.KAFKA_CONSUMER_F_MESSAGE) {
    topic = r.str("topic");
    if (topic !== "") out.attr("messaging.destination.name", topic);
    out.attr("messaging.destination.partition.id", String(r.u32("partition")));
    // Offsets are int64 in Kafka; beyond 2^53 a number loses precision, so those become strings.
    const off = r.u64("offset");
    out.attr("messaging.kafka.offset", off <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(off) : off.toString());
    if (flags & E.KAFKA_CONSUMER_F_KEY) out.attr("messaging.kafka.message.key", r.str("key"));
  }
  if (flags & E.KAFKA_CONSUMER_F_GROUP) out.attr("messaging.consumer.group.name", r.str("group"));
  out.name(messagingSpanName("receive", topic));
  if (flags & E.KAFKA_CONSUMER_F_ERROR) setError(out, "FetchMessage failed");
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export const kafkaConsumer: ProbeManifest = {
  id: CONSUMER_PROBE_ID,
  library: LIBRARY,
  object: KAFKA_OBJECT,
  uprobes: [{ symbol: `${LIBRARY}.(*Reader).FetchMessage`, entryProgram: "kafka_consumer_entry", returnProgram: "kafka_consumer_return" }],
  fields: CONSUMER_FIELDS,
  record: { type: E.REC_KAFKA_CONSUMER, struct: "rec_kafka_consumer" },
  flags: () => ({}),
  decode: decodeWith(buildConsumer),
  build: buildConsumer,
};
