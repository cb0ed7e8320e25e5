/**
 * @module tests/unit/export/protobuf — export/protobuf.ts writes exactly the bytes
 * otlp-transformer's protobuf serializer writes for the same spans (a golden set covering every
 * field we emit), and those bytes decode as the official OTLP message would (via the existing
 * OTLP receivers in the e2e tests).
 */
import { describe, expect, test } from "bun:test";
import { encodeTraceRequestProtobuf } from "../../../src/export/protobuf.ts";
import { SCHEMA_URL, toOtlpProtobufReference } from "../../../src/export/otlp.ts";
import type { Span } from "../../../src/spans/model.ts";

const T = 1_764_000_000_123_456_789n;
const base: Span = {
  traceId: "0af7651916cd43dd8448eb211c80319c",
  spanId: "b7ad6b7169203331",
  name: "GET /items/{id}",
  kind: "server",
  startTimeUnixNano: T,
  endTimeUnixNano: T + 1_234_567n,
  attributes: { "http.request.method": "GET", "http.route": "/items/{id}", "server.port": 8080, "http.response.status_code": 200 },
  status: { code: "unset" },
  scope: { name: "beetrace/net/http", version: "0.1.0" },
};

function golden(): Span[] {
  return [
    base,
    { ...base, spanId: "00f067aa0ba902b7", parentSpanId: "b7ad6b7169203331", traceState: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" },
    { ...base, spanId: "1111111111111111", kind: "client", parentSpanId: "b7ad6b7169203331", name: "GET", attributes: { "url.full": "http://h:8080/p?REDACTED", "error.type": "_OTHER" }, status: { code: "error", message: "transport error" } },
    { ...base, spanId: "2222222222222222", kind: "internal", attributes: { neg: -42, big: 2 ** 40, dbl: 1.5, nan: Number.NaN, yes: true, no: false, empty: "", "ünïcode": "日本語 ✓", "mixed.value": "ascii first, then é and 日本", ["k".repeat(200)]: "long key" } },
    {
      ...base,
      spanId: "3333333333333333",
      status: { code: "error", message: "panic: boom" },
      attributes: { "error.type": "panic" },
      events: [{ name: "exception", timeUnixNano: T + 99n, attributes: { "exception.type": "panic", "exception.message": "boom" } }],
    },
    { ...base, spanId: "4444444444444444", kind: "producer", scope: { name: "beetrace/kafka", version: "" } },
    { ...base, spanId: "5555555555555555", kind: "consumer", parentSpanId: "6666666666666666", status: { code: "ok" }, scope: { name: "beetrace/kafka", version: "" } },
    // Short enough for a one-byte length (the span's length is kept two bytes wide while it is written).
    { ...base, spanId: "8888888888888888", name: "", attributes: {} },
    // Long enough to need multi-byte length prefixes at every level.
    { ...base, spanId: "7777777777777777", name: "x".repeat(300), attributes: { "url.path": "/" + "p".repeat(20_000) } },
  ];
}

const resource = { "service.name": "shop", "process.pid": 4242, "telemetry.sdk.language": "go", "host.arch": "amd64" };

describe("OTLP protobuf writer", () => {
  test("byte-identical to otlp-transformer on the golden set, as a whole and span by span", () => {
    const spans = golden();
    expect(Buffer.from(encodeTraceRequestProtobuf(spans, resource, SCHEMA_URL)).equals(Buffer.from(toOtlpProtobufReference(spans, resource)))).toBe(true);
    for (const s of spans) {
      const mine = encodeTraceRequestProtobuf([s], resource, SCHEMA_URL);
      const ref = toOtlpProtobufReference([s], resource);
      expect({ span: s.spanId, same: Buffer.from(mine).equals(Buffer.from(ref)), mine: mine.length, ref: ref.length }).toEqual({ span: s.spanId, same: true, mine: ref.length, ref: ref.length });
    }
  });

  test("many spans (buffer growth) and no spans", () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ ...base, spanId: (i + 1).toString(16).padStart(16, "0") }));
    expect(Buffer.from(encodeTraceRequestProtobuf(many, resource, SCHEMA_URL)).equals(Buffer.from(toOtlpProtobufReference(many, resource)))).toBe(true);
    expect(encodeTraceRequestProtobuf([], resource, SCHEMA_URL).length).toBe(toOtlpProtobufReference([], resource).length);
  });
});
