/**
 * @module tests/unit/export/builders — the live OTLP path writes protobuf straight from records
 * through the probes' builders (ProbeManifest.build → ProtobufSpanBuilder): for random records of
 * every probe, with every flag bit and string shape, the request it writes is byte for byte the
 * one otlp-transformer's serializer writes for the spans the same records decode to (hex ids).
 */
import { describe, expect, test } from "bun:test";
import { encodeQueuedProtobuf, type Queued, type RecordDecoding } from "../../../src/export/exporter.ts";
import { toOtlpProtobufReference } from "../../../src/export/otlp.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { SPAN_ID_OFFSETS } from "../../../src/probes/common/header.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { PROBES } from "../../../src/probes/registry.ts";
import type { ProbeManifest } from "../../../src/probes/probe.ts";
import type { RecordSchema } from "../../../src/probes/record.ts";
import type { Span } from "../../../src/spans/model.ts";
import { RecordWriter } from "../probes/record-writer.ts";
import { setRpcSemconv } from "../../../src/probes/grpc/semconv.ts";

const resource = { "service.name": "shop", "process.pid": 4242 };
const toEpoch = (ns: bigint): bigint => ns + 1_700_000_000_000_000_000n;

/** A deterministic generator (xorshift32: its low bits vary as much as its high ones), so a failure is reproducible. */
function rng(seed: number): () => number {
  let s = seed | 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) & 0x7fffffff;
  };
}

/** String shapes decoders see: empty, methods, paths, host:port, IPv6, patterns, non-ASCII, long. */
const STRINGS = ["", "GET", "POST", "BREW", "/items/17", "/café/ü", "shop.internal:8080", "[::1]:443", "10.0.0.7:51234", "GET /items/{id}", "example.com/x/", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "boom", "日本語 ✓", "x".repeat(300), "a:b:c", "host:99999"];

function randomRecord(probe: ProbeManifest, next: () => number): Uint8Array {
  const layout = recordLayoutOf(probe.object.name, probe.record.struct);
  const fields: Record<string, number | bigint> = { type: probe.record.type };
  for (const [name, [, width]] of Object.entries(layout.fields)) {
    if (name === "type" || name === "size" || name.endsWith("_len") || name === "trace_id" || name === "span_id" || name === "parent_span_id") continue;
    if (width === 1) fields[name] = next() & 0xff;
    else if (width === 2) fields[name] = name === "status" ? [0, 200, 404, 500, 503, 99][next() % 6]! : next() & 0xffff;
    else if (width === 4) fields[name] = name === "code" ? next() % 20 : next() % 4 === 0 ? 0 : next() >>> 0;
    else if (width === 8) fields[name] = BigInt(next()) * 1_000_003n;
  }
  fields.start_ns = 1_000_000_000n + BigInt(next());
  fields.end_ns = (fields.start_ns as bigint) + BigInt(next() % 1_000_000);
  const hex = (n: number): string => Array.from({ length: n }, () => (next() & 0xff).toString(16).padStart(2, "0")).join("");
  const ids: Record<string, string> = { trace_id: hex(16), span_id: hex(8), parent_span_id: next() % 3 === 0 ? "0".repeat(16) : hex(8) };
  const strings: Record<string, string> = {};
  for (const s of layout.strings) strings[s] = STRINGS[next() % STRINGS.length]!;
  return new RecordWriter(layout).bytes({ fields, hex: ids, strings });
}

/** toEpoch on 32-bit halves, as the session's clock gives it (spans/clock.ts toEpochWords). */
function toEpochWords(lo: number, hi: number, out: Uint32Array, at: number): void {
  const t = toEpoch((BigInt(hi) << 32n) | BigInt(lo));
  out[at] = Number(t & 0xffffffffn);
  out[at + 1] = Number(t >> 32n);
}

function decoders(decoder: SpanDecoder, words: boolean): RecordDecoding {
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    decode: (bytes, offset, length, idsAsBytes) => decoder.decodeAt(bytes, view(bytes), offset, length, { toEpoch, idsAsBytes }),
    build: (bytes, offset, length, out) => decoder.buildAt(bytes, view(bytes), offset, length, words ? { toEpoch, toEpochWords } : { toEpoch }, out),
    ids: SPAN_ID_OFFSETS,
  };
}

/** The request the live path writes for `records`, and the reference: the decoded spans through otlp-transformer. */
function bothWays(records: Uint8Array[], schema?: RecordSchema): { ours: Uint8Array; reference: Uint8Array; kept: number; spans: Span[] } {
  const batch: Queued[] = [...records];
  const ours = encodeQueuedProtobuf(batch, decoders(new SpanDecoder(schema), true), resource, new Uint8Array(64)).bytes;
  // The times through toEpoch (BigInt) instead of toEpochWords: the same bytes.
  const viaBigInt = encodeQueuedProtobuf([...records], decoders(new SpanDecoder(schema), false), resource, new Uint8Array(64)).bytes;
  expect(Buffer.from(viaBigInt).equals(Buffer.from(ours))).toBe(true);
  const reference = new SpanDecoder(schema);
  const spans = records.flatMap((r) => reference.decode(r, toEpoch) ?? []);
  return { ours, reference: toOtlpProtobufReference(spans, resource), kept: batch.length, spans };
}

const BUILT = PROBES.filter((p) => p.build !== undefined);

describe("OTLP protobuf written from records through the probes' builders", () => {
  test("every probe has a builder but the OTel API's (its spans carry the application's own scopes, links and arrays)", () => {
    expect(PROBES.filter((p) => p.build === undefined).map((p) => p.id)).toEqual(["otelapi"]);
  });

  for (const mode of ["stable", "dup"] as const) {
    test(`gRPC with OTEL_SEMCONV_STABILITY_OPT_IN's ${mode} RPC names: byte-identical too (rpc.method set once in dup)`, () => {
      setRpcSemconv(mode);
      try {
        const grpc = BUILT.filter((p) => p.id.startsWith("grpc."));
        expect(grpc).toHaveLength(2);
        for (const probe of grpc) {
          const next = rng(probe.record.type * 31);
          const { ours, reference, spans } = bothWays(Array.from({ length: 200 }, () => randomRecord(probe, next)));
          expect(spans.some((s) => s.attributes["rpc.system.name"] === "grpc")).toBe(true);
          expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
        }
      } finally {
        setRpcSemconv(undefined);
      }
    });
  }

  for (const probe of BUILT) {
    test(`${probe.id}: 400 random records, byte-identical to otlp-transformer's request of the decoded spans`, () => {
      const next = rng(probe.record.type * 7919);
      const records = Array.from({ length: 400 }, () => randomRecord(probe, next));
      const { ours, reference, kept, spans } = bothWays(records);
      expect(spans.length).toBe(400);
      expect(kept).toBe(400);
      expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
      // The random flags reached the decoder's branches: errors, events, parents, trace states.
      expect(spans.some((s) => s.status.code === "error")).toBe(true);
      expect(spans.some((s) => s.parentSpanId !== undefined) && spans.some((s) => s.parentSpanId === undefined)).toBe(true);
      expect(spans.some((s) => s.attributes["beetrace.truncated"] !== undefined)).toBe(true);
      if (probe.id === "nethttp.server") expect(spans.some((s) => s.events !== undefined) && spans.some((s) => s.traceState !== undefined)).toBe(true);
    });
  }

  test("every probe's records mixed in one batch: scopes grouped in order of first appearance, builders or not", () => {
    const next = rng(4242);
    const records = Array.from({ length: 300 }, (_, i) => randomRecord(PROBES[(next() + i) % PROBES.length]!, next));
    const { ours, reference, kept, spans } = bothWays(records);
    expect(kept).toBe(spans.length);
    expect(new Set(spans.map((s) => s.scope.name)).size).toBeGreaterThan(3);
    expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
  });

  test("guessed offsets mark the spans of both paths alike", () => {
    const next = rng(99);
    const server = BUILT.find((p) => p.id === "nethttp.server")!;
    const schema = new SpanDecoder().schema;
    const records = Array.from({ length: 20 }, () => randomRecord(server, next));
    const { ours, reference, spans } = bothWays(records, { ...schema, guessedOffsets: { [server.id]: ["net/http.Request.Pattern"] } });
    expect(spans.every((s) => s.attributes["beetrace.guessed_offsets"] === "net/http.Request.Pattern")).toBe(true);
    expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
  });

  test("a record that cannot be decoded is left out of the request and of the batch", () => {
    const next = rng(7);
    const server = BUILT.find((p) => p.id === "nethttp.server")!;
    const good = Array.from({ length: 5 }, () => randomRecord(server, next));
    const bad = good[2]!.slice();
    new DataView(bad.buffer).setUint16(2, bad.length + 40, true); // declares more bytes than it has
    const records = [good[0]!, good[1]!, bad, good[3]!, good[4]!];
    const { ours, reference, kept, spans } = bothWays(records);
    expect([kept, spans.length]).toEqual([4, 4]);
    expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
  });
});
