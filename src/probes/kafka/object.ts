/**
 * @module probes/kafka/object — bpf/kafka.bpf.c, shared by the kafka-go producer and consumer
 * probes, the github.com/segmentio/kafka-go struct fields both read, and the attributes both set
 * (OpenTelemetry semantic conventions v1.37, messaging spans and their Kafka section).
 */
import { spanName, type SpanBuilder } from "../common/span.ts";
import type { BpfObjectSpec, FieldDecl } from "../probe.ts";
import type { CounterName, MapName, RodataName } from "./kafka.gen.ts";

/** A FieldDecl whose const is checked against the object's generated rodata names. */
export type KafkaField = FieldDecl & { const: RodataName };

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const KAFKA_OBJECT: BpfObjectSpec = {
  name: "kafka",
  callMaps: maps("kafka_producer_calls", "kafka_consumer_calls"),
  callSlots: maps("kafka_producer_slots", "kafka_consumer_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (earlier call never ended: panic/Goexit)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
  ],
};

export const LIBRARY = "github.com/segmentio/kafka-go";
export const SCOPE_NAME = "beetrace/github.com/segmentio/kafka-go";

const KAFKA = "github.com/segmentio/kafka-go";
export const MSG_TOPIC: KafkaField = { const: "msg_topic_off", field: `${KAFKA}.Message.Topic`, required: true, why: "messaging.destination.name" };
export const MSG_KEY: KafkaField = { const: "msg_key_off", field: `${KAFKA}.Message.Key`, required: true, why: "messaging.kafka.message.key" };
export const MSG_HEADERS: KafkaField = {
  const: "msg_headers_off",
  field: `${KAFKA}.Message.Headers`,
  required: false,
  why: "the traceparent header linking consumer and producer",
};
// kafka-go's Header is an alias of protocol.Header (kafka-go record.go): DWARF names the latter.
export const HEADER_KEY: KafkaField = {
  const: "header_key_off",
  field: `${KAFKA}/protocol.Header.Key`,
  required: false,
  why: "finding the traceparent header",
};
export const HEADER_VALUE: KafkaField = {
  const: "header_value_off",
  field: `${KAFKA}/protocol.Header.Value`,
  required: false,
  why: "the traceparent header's value; with it, the stride of []Header",
};

/** Attributes every Kafka span carries (semconv v1.37: messaging.system, operation type/name). */
export function setMessaging(out: SpanBuilder, operation: "send" | "receive"): void {
  out.attr("messaging.system", "kafka");
  out.attr("messaging.operation.type", operation);
  out.attr("messaging.operation.name", operation);
}

/** Span name: "{messaging.operation.name} {destination}", or the operation alone without one. */
export function messagingSpanName(operation: string, destination: string | undefined): string {
  return destination ? spanName(operation, destination) : operation;
}

/**
 * An error returned by the probed call. Its Go type is known only by its itab address: without a
 * symbol for it the semconv fallback "_OTHER" applies.
 */
export function setError(out: SpanBuilder, what: string): void {
  out.error(what);
  out.attr("error.type", "_OTHER");
}
