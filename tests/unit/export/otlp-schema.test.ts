/**
 * Every scope carries the semantic-conventions schema URL (issue 13 item 9), in OTLP/JSON, in
 * protobuf (ScopeSpans.schema_url is field 3, opentelemetry/proto/trace/v1/trace.proto) and in
 * requests built for the live exporter.
 */
import { expect, test } from "bun:test";
import { SCHEMA_URL, encodeTraceRequest, toOtlpJson, toOtlpProtobuf } from "../../../src/export/otlp.ts";
import { sampleHeader, sampleSpans } from "../capture/fixture.ts";

const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

test("the schema URL is the semconv version OTel Go auto-instrumentation sends", () => {
  expect(SCHEMA_URL).toBe("https://opentelemetry.io/schemas/1.37.0");
});

test("OTLP/JSON: every scopeSpans entry has the schema URL", () => {
  const req = json(toOtlpJson(sampleSpans(), sampleHeader()));
  const scopes = req.resourceSpans.flatMap((rs: { scopeSpans: { schemaUrl?: string }[] }) => rs.scopeSpans);
  expect(scopes.length).toBeGreaterThan(1);
  for (const s of scopes) expect(s.schemaUrl).toBe(SCHEMA_URL);
  const live = json(encodeTraceRequest(sampleSpans(), { "service.name": "x" }, "json"));
  for (const rs of live.resourceSpans) for (const s of rs.scopeSpans) expect(s.schemaUrl).toBe(SCHEMA_URL);
});

test("protobuf: ScopeSpans field 3 (tag 0x1a) holds the schema URL", () => {
  const url = Buffer.from(SCHEMA_URL);
  const field = Buffer.concat([Buffer.from([0x1a, url.length]), url]);
  for (const bytes of [toOtlpProtobuf([sampleSpans()[0]!], sampleHeader()), encodeTraceRequest([sampleSpans()[0]!], { "service.name": "x" }, "protobuf")]) {
    expect(Buffer.from(bytes).indexOf(field)).toBeGreaterThan(0);
  }
});
