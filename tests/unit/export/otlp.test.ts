import { describe, expect, test } from "bun:test";
import { otlpJsonLines, resourceAttributes, toOtlpJson, toOtlpProtobuf } from "../../../src/export/otlp.ts";
import { sampleHeader, sampleSpans } from "../capture/fixture.ts";

const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

describe("OTLP export", () => {
  test("a known server span encodes per the OTLP/JSON rules", () => {
    const span = sampleSpans()[0]!;
    expect(json(toOtlpJson([span], sampleHeader()))).toEqual({
      resourceSpans: [
        {
          resource: {
            attributes: [
              { key: "process.pid", value: { intValue: 4242 } },
              { key: "process.executable.name", value: { stringValue: "server" } },
              { key: "process.executable.path", value: { stringValue: "/srv/shop/server" } },
              { key: "process.runtime.name", value: { stringValue: "go" } },
              { key: "process.runtime.version", value: { stringValue: "go1.22.3" } },
              { key: "host.name", value: { stringValue: "web-1" } },
              { key: "host.arch", value: { stringValue: "amd64" } },
              { key: "os.type", value: { stringValue: "linux" } },
              { key: "os.version", value: { stringValue: "6.1.0-18-amd64" } },
              { key: "service.name", value: { stringValue: "shop" } },
              { key: "telemetry.sdk.name", value: { stringValue: "beetrace" } },
              { key: "telemetry.sdk.language", value: { stringValue: "go" } },
              { key: "telemetry.sdk.version", value: { stringValue: "0.1.0" } },
              { key: "telemetry.distro.name", value: { stringValue: "beetrace" } },
              { key: "telemetry.distro.version", value: { stringValue: "0.1.0" } },
            ],
            droppedAttributesCount: 0,
          },
          scopeSpans: [
            {
              scope: { name: "beetrace/net/http", version: "0.1.0" },
              spans: [
                {
                  // ids: lowercase hex, not base64 (OTLP/JSON exception to the proto3 mapping)
                  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
                  spanId: "00f067aa0ba902b7",
                  parentSpanId: "b7ad6b7169203331",
                  name: "GET /cart/{id}",
                  kind: 2, // SPAN_KIND_SERVER, as an integer
                  startTimeUnixNano: "1700000000123456789", // fixed64 as a decimal string, exact
                  endTimeUnixNano: "1700000000124690789",
                  attributes: [
                    { key: "http.request.method", value: { stringValue: "GET" } },
                    { key: "url.path", value: { stringValue: "/cart/7" } },
                    { key: "http.route", value: { stringValue: "/cart/{id}" } },
                    { key: "http.response.status_code", value: { intValue: 200 } },
                  ],
                  droppedAttributesCount: 0,
                  events: [],
                  droppedEventsCount: 0,
                  status: { code: 0 },
                  links: [],
                  droppedLinksCount: 0,
                  // 0x301: sampled | CONTEXT_HAS_IS_REMOTE | CONTEXT_IS_REMOTE (server parent is remote)
                  flags: 0x301,
                },
              ],
              // the semconv version our attributes follow (OTel Go auto-instrumentation sends the same)
              schemaUrl: "https://opentelemetry.io/schemas/1.37.0",
            },
          ],
        },
      ],
    });
  });

  test("client and error spans: kind 3, status code 2 with message, local parent", () => {
    const spans = sampleSpans();
    const req = json(toOtlpJson([spans[1]!, spans[3]!], sampleHeader()));
    const out = req.resourceSpans[0].scopeSpans[0].spans;
    expect(out.map((s: { kind: number; status: unknown; flags: number }) => [s.kind, s.status, s.flags])).toEqual([
      [3, { code: 0 }, 0x101],
      [2, { code: 2, message: "HTTP 503" }, 0x101],
    ]);
    expect(out[1].parentSpanId).toBeUndefined();
  });

  test("spans are grouped by instrumentation scope", () => {
    const req = json(toOtlpJson(sampleSpans(), sampleHeader()));
    expect(req.resourceSpans).toHaveLength(1);
    expect(req.resourceSpans[0].scopeSpans.map((s: { scope: { name: string }; spans: unknown[] }) => [s.scope.name, s.spans.length])).toEqual([
      ["beetrace/net/http", 3],
      ["beetrace/database/sql", 1],
    ]);
  });

  test("protobuf carries the raw 16-byte trace id and the name", () => {
    const bytes = Buffer.from(toOtlpProtobuf([sampleSpans()[0]!], sampleHeader()));
    // Span.trace_id is field 1, wire type 2 (tag 0x0a), length 16
    expect(bytes.indexOf(Buffer.from("0a104bf92f3577b34da6a3ce929d0e0e4736", "hex"))).toBeGreaterThan(0);
    expect(bytes.indexOf(Buffer.from("GET /cart/{id}"))).toBeGreaterThan(0);
  });

  test("service name falls back to unknown_service:<exe>; node arch names map to semconv", () => {
    const h = sampleHeader();
    h.target.serviceName = "";
    h.host.arch = "x64";
    const attrs = resourceAttributes(h);
    expect(attrs["service.name"]).toBe("unknown_service:server");
    expect(attrs["host.arch"]).toBe("amd64");
  });

  test("JSON Lines: one request per line, at most `batch` spans each", () => {
    const many = Array.from({ length: 7 }, (_, i) => ({ ...sampleSpans()[0]!, spanId: (i + 1).toString(16).padStart(16, "0") }));
    const lines = [...otlpJsonLines(many, sampleHeader(), 3)];
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l.includes("\n")).toBe(false);
    expect(lines.map((l) => JSON.parse(l).resourceSpans[0].scopeSpans[0].spans.length)).toEqual([3, 3, 1]);
    expect([...otlpJsonLines([], sampleHeader())]).toEqual([]);
  });
});
