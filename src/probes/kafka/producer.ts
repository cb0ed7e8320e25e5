/**
 * @module probes/kafka/producer — manifest of the kafka-go producer probe: one PRODUCER `send`
 * span per (*Writer).WriteMessages call (bpf/kafka.bpf.c says why one per call and not one per
 * message: semconv v1.37 gives a batch sent in one operation one `send` span with
 * `messaging.batch.message_count`).
 *
 * With `Writer.Async` set, WriteMessages returns once the messages are queued (kafka-go
 * writer.go): the span then covers the queuing, not the broker's acknowledgement.
 *
 * Read-only: no traceparent is written into the messages. When the application set one on a
 * single message itself (its own creation context), the span records it as
 * `beetrace.messaging.creation_context` (the W3C traceparent form), which is what the consumer's
 * `receive` span continues: the two spans join through it.
 */
import type { DecodeContext, ProbeManifest } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E } from "./kafka.gen.ts";
import { HEADER_KEY, HEADER_VALUE, KAFKA_OBJECT, LIBRARY, MSG_HEADERS, MSG_KEY, MSG_TOPIC, SCOPE_NAME, messagingSpanName, setError, setMessaging, type KafkaField } from "./object.ts";

export const PRODUCER_PROBE_ID = "kafka.producer";

const PRODUCER_FIELDS: KafkaField[] = [
  { const: "writer_topic_off", field: `${LIBRARY}.Writer.Topic`, required: true, why: "messaging.destination.name (the Writer's topic)" },
  MSG_TOPIC,
  MSG_KEY,
  MSG_HEADERS,
  HEADER_KEY,
  HEADER_VALUE,
  // Message ends with Time time.Time: its offset + 24 is the stride of []Message (bpf/kafka.bpf.c).
  { const: "msg_time_off", field: `${LIBRARY}.Message.Time`, required: true, why: "the size of a Message, to look at each message of a batch" },
];

/** Builds the send span (semconv v1.37 messaging "Producer spans", Kafka). */
const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { topic: "messaging.destination.name", key: "messaging.kafka.message.key" };

export function buildProducer(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "producer");
  setMessaging(out, "send");
  const count = r.u32("msg_count");
  const mixed = (flags & E.KAFKA_PRODUCER_F_MIXED_TOPICS) !== 0;
  // A batch for several topics has no single destination (semconv: the destination attributes
  // are set only when every message of the batch shares them).
  const topic = mixed ? "" : r.str("topic");
  if (topic !== "") out.attr("messaging.destination.name", topic);
  // "messaging.batch.message_count: ... SHOULD NOT be set on spans that operate with a single message."
  if (count !== 1) out.attr("messaging.batch.message_count", count);
  if (flags & E.KAFKA_PRODUCER_F_KEY) out.attr("messaging.kafka.message.key", r.str("key"));
  if (flags & E.KAFKA_PRODUCER_F_MSG_CONTEXT) out.attr("beetrace.messaging.creation_context", `00-${r.hex("msg_trace_id")}-${r.hex("msg_span_id")}-01`);
  out.name(messagingSpanName("send", topic));
  if (flags & E.KAFKA_PRODUCER_F_ERROR) setError(out, "WriteMessages failed");
  noteTruncated(out, r, TRUNCATED_NAMES);
}

export const kafkaProducer: ProbeManifest = {
  id: PRODUCER_PROBE_ID,
  library: LIBRARY,
  object: KAFKA_OBJECT,
  uprobes: [{ symbol: `${LIBRARY}.(*Writer).WriteMessages`, entryProgram: "kafka_producer_entry", returnProgram: "kafka_producer_return" }],
  fields: PRODUCER_FIELDS,
  record: { type: E.REC_KAFKA_PRODUCER, struct: "rec_kafka_producer" },
  flags: () => ({}),
  decode: decodeWith(buildProducer),
  build: buildProducer,
};
