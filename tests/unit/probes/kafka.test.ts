/**
 * @module tests/unit/probes/kafka — span building of the kafka-go probes (semconv v1.37 messaging
 * spans) from records written through the layouts generated from BTF (record-writer.ts).
 */
import { describe, expect, test } from "bun:test";
import { kafkaConsumer } from "../../../src/probes/kafka/consumer.ts";
import { kafkaProducer } from "../../../src/probes/kafka/producer.ts";
import { ENUMERATORS as E } from "../../../src/probes/kafka/kafka.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import type { RecordLayout } from "../../../src/probes/record.ts";
import { PROBES, probeFields, probeSymbols } from "../../../src/probes/registry.ts";
import type { Span } from "../../../src/spans/model.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";

const PRODUCER = recordLayoutOf("kafka", "rec_kafka_producer");
const CONSUMER = recordLayoutOf("kafka", "rec_kafka_consumer");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";
const NO_PARENT = "0000000000000000";
const EPOCH = 1_700_000_000_000_000_000n;
const toEpoch = (boot: bigint): bigint => boot + EPOCH;
const HAS_PARENT = E.REC_SPAN_F_HAS_PARENT;

function decode(layout: RecordLayout, input: RecordInput): Span {
  const w = new RecordWriter(layout);
  const size = w.size(input);
  const buf = new Uint8Array(16 + size + 16).fill(0xee);
  w.write(input, buf, 16);
  const d = new SpanDecoder();
  const span = d.decodeAt(buf, new DataView(buf.buffer), 16, size, { toEpoch });
  if (span === undefined) throw new Error(`record refused: ${d.firstInvalid}`);
  return span;
}

interface ProducerOpts {
  flags?: number;
  count?: number;
  topic?: string;
  key?: string;
  parent?: string;
  truncated?: number;
  msgTrace?: string;
  msgSpan?: string;
}
const producer = (o: ProducerOpts = {}): Span =>
  decode(PRODUCER, {
    fields: { type: E.REC_KAFKA_PRODUCER, flags: o.flags ?? 0, truncated: o.truncated ?? 0, start_ns: 1_000_000n, end_ns: 4_000_000n, msg_count: o.count ?? 1, err_itab: 0 },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT, msg_trace_id: o.msgTrace ?? "0".repeat(32), msg_span_id: o.msgSpan ?? NO_PARENT },
    strings: { topic: o.topic ?? "orders", key: o.key ?? "" },
  });

interface ConsumerOpts {
  flags?: number;
  topic?: string;
  key?: string;
  group?: string;
  partition?: number;
  offset?: bigint;
  parent?: string;
}
const consumer = (o: ConsumerOpts = {}): Span =>
  decode(CONSUMER, {
    fields: { type: E.REC_KAFKA_CONSUMER, flags: o.flags ?? E.KAFKA_CONSUMER_F_MESSAGE, start_ns: 2_000_000n, end_ns: 9_000_000n, partition: o.partition ?? 0, offset: o.offset ?? 0n },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT },
    strings: { topic: o.topic ?? "orders", key: o.key ?? "", group: o.group ?? "" },
  });

const BASE_SEND = { "messaging.system": "kafka", "messaging.operation.type": "send", "messaging.operation.name": "send" };
const BASE_RECEIVE = { "messaging.system": "kafka", "messaging.operation.type": "receive", "messaging.operation.name": "receive" };

describe("kafka-go producer: one send span per WriteMessages call", () => {
  test("a single message: destination, key, parent, PRODUCER kind, times", () => {
    const s = producer({ flags: HAS_PARENT | E.KAFKA_PRODUCER_F_KEY | E.KAFKA_PRODUCER_F_WRITER_TOPIC, key: "user-42", parent: PARENT });
    expect(s).toMatchObject({ name: "send orders", kind: "producer", traceId: TRACE, spanId: SPAN, parentSpanId: PARENT, status: { code: "unset" } });
    expect(s.attributes).toEqual({ ...BASE_SEND, "messaging.destination.name": "orders", "messaging.kafka.message.key": "user-42" });
    expect(s.startTimeUnixNano).toBe(EPOCH + 1_000_000n);
    expect(s.endTimeUnixNano).toBe(EPOCH + 4_000_000n);
    expect(s.scope.name).toBe("beetrace/github.com/segmentio/kafka-go");
  });

  test("a batch: messaging.batch.message_count, no per-message key", () => {
    const s = producer({ count: 3 });
    expect(s.parentSpanId).toBeUndefined();
    expect(s.attributes).toEqual({ ...BASE_SEND, "messaging.destination.name": "orders", "messaging.batch.message_count": 3 });
  });

  test("an empty call still says its count (0); a single message has none", () => {
    expect(producer({ count: 0 }).attributes["messaging.batch.message_count"]).toBe(0);
    expect(producer({ count: 1 }).attributes["messaging.batch.message_count"]).toBeUndefined();
  });

  test("messages for several topics: no destination, name is the operation alone", () => {
    const s = producer({ count: 2, flags: E.KAFKA_PRODUCER_F_MIXED_TOPICS, topic: "a" });
    expect(s.name).toBe("send");
    expect(s.attributes["messaging.destination.name"]).toBeUndefined();
  });

  test("an error: Error status, error.type _OTHER", () => {
    const s = producer({ flags: E.KAFKA_PRODUCER_F_ERROR });
    expect(s.status).toEqual({ code: "error", message: "WriteMessages failed" });
    expect(s.attributes["error.type"]).toBe("_OTHER");
  });

  test("an application-set traceparent on the message is recorded as its creation context", () => {
    const s = producer({ flags: E.KAFKA_PRODUCER_F_MSG_CONTEXT, msgTrace: "ab".repeat(16), msgSpan: "cd".repeat(8) });
    expect(s.attributes["beetrace.messaging.creation_context"]).toBe(`00-${"ab".repeat(16)}-${"cd".repeat(8)}-01`);
    expect(producer().attributes["beetrace.messaging.creation_context"]).toBeUndefined();
  });

  test("a truncated topic is marked", () => {
    const bit = 1 << PRODUCER.strings.indexOf("topic");
    expect(producer({ truncated: bit }).attributes["beetrace.truncated"]).toBe("messaging.destination.name");
  });
});

describe("kafka-go consumer: one receive span per FetchMessage call", () => {
  test("a message: destination, partition, offset, key, group, CONSUMER kind", () => {
    const s = consumer({ flags: E.KAFKA_CONSUMER_F_MESSAGE | E.KAFKA_CONSUMER_F_KEY | E.KAFKA_CONSUMER_F_GROUP, key: "k", group: "billing", partition: 7, offset: 1234n });
    expect(s).toMatchObject({ name: "receive orders", kind: "consumer", traceId: TRACE, status: { code: "unset" } });
    expect(s.parentSpanId).toBeUndefined();
    expect(s.attributes).toEqual({
      ...BASE_RECEIVE,
      "messaging.destination.name": "orders",
      "messaging.destination.partition.id": "7",
      "messaging.kafka.offset": 1234,
      "messaging.kafka.message.key": "k",
      "messaging.consumer.group.name": "billing",
    });
  });

  test("the producer's traceparent (remote parent) becomes the parent", () => {
    const s = consumer({ flags: E.KAFKA_CONSUMER_F_MESSAGE | HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT, parent: PARENT });
    expect(s.parentSpanId).toBe(PARENT);
  });

  test("an empty key is not the same as no key", () => {
    expect(consumer({ flags: E.KAFKA_CONSUMER_F_MESSAGE | E.KAFKA_CONSUMER_F_KEY, key: "" }).attributes["messaging.kafka.message.key"]).toBe("");
    expect(consumer().attributes["messaging.kafka.message.key"]).toBeUndefined();
  });

  test("offsets past 2^53 keep every digit", () => {
    expect(consumer({ offset: 2n ** 60n }).attributes["messaging.kafka.offset"]).toBe((2n ** 60n).toString());
  });

  test("an error: no message attributes, Error status, the group still named", () => {
    const s = consumer({ flags: E.KAFKA_CONSUMER_F_ERROR | E.KAFKA_CONSUMER_F_GROUP, group: "g", topic: "ignored" });
    expect(s.name).toBe("receive");
    expect(s.status).toEqual({ code: "error", message: "FetchMessage failed" });
    expect(s.attributes).toEqual({ ...BASE_RECEIVE, "messaging.consumer.group.name": "g", "error.type": "_OTHER" });
  });
});

describe("kafka-go manifests", () => {
  test("registered, with their own record tags, symbols and fields", () => {
    expect(PROBES).toContain(kafkaProducer);
    expect(PROBES).toContain(kafkaConsumer);
    expect([kafkaProducer.record.type, kafkaConsumer.record.type]).toEqual([0x0141, 0x0142]);
    expect(probeSymbols()).toContain("github.com/segmentio/kafka-go.(*Writer).WriteMessages");
    expect(probeSymbols()).toContain("github.com/segmentio/kafka-go.(*Reader).FetchMessage");
    for (const f of ["github.com/segmentio/kafka-go.Writer.Topic", "github.com/segmentio/kafka-go.ReaderConfig.GroupID", "github.com/segmentio/kafka-go/protocol.Header.Value"]) {
      expect(probeFields()).toContain(f);
    }
  });

  test("each const is declared once per probe", () => {
    for (const p of [kafkaProducer, kafkaConsumer]) expect(new Set(p.fields.map((f) => f.const)).size).toBe(p.fields.length);
  });
});
