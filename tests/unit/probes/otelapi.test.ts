/**
 * @module tests/unit/probes/otelapi — the OTel API probe's decoder: records written through the
 * layout generated from BTF (record-writer.ts) with items packed as bpf/shared/otelapi.h says.
 */
import { describe, expect, test } from "bun:test";
import { otelApi } from "../../../src/probes/otelapi/manifest.ts";
import { parseItems } from "../../../src/probes/otelapi/items.ts";
import { ENUMERATORS as E } from "../../../src/probes/otelapi/otelapi.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { encodeTraceRequestProtobuf } from "../../../src/export/protobuf.ts";
import { SCHEMA_URL, toOtlpProtobufReference } from "../../../src/export/otlp.ts";
import { PROBES } from "../../../src/probes/registry.ts";
import type { Span } from "../../../src/spans/model.ts";
import { RecordWriter } from "./record-writer.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { T0, sampleHeader } from "../capture/fixture.ts";
import { OffsetsTable } from "../../../src/offsets/table.ts";
import { resolveField } from "../../../src/offsets/resolve.ts";

const LAYOUT = recordLayoutOf("otelapi", "rec_otelapi_span");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";
const EPOCH = 1_700_000_000_000_000_000n;
const toEpoch = (boot: bigint): bigint => boot + EPOCH;

/** Packs items the way bpf/otelapi.bpf.c does. */
class Items {
  bytes: number[] = [];
  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u64(v: bigint): this {
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((BigInt.asUintN(64, v) >> (8n * i)) & 0xffn));
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u8(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  attr(owner: number, vt: number, key: string, value: (i: this) => void): this {
    this.u8(E.OTELAPI_ITEM_ATTR).u8(owner).u8(vt).str(key);
    value(this);
    return this;
  }
  event(boot: bigint, name: string): this {
    return this.u8(E.OTELAPI_ITEM_EVENT).u64(boot).str(name);
  }
  exception(boot: bigint, message: string, type: string, pkg: string): this {
    return this.u8(E.OTELAPI_ITEM_EXCEPTION).u64(boot).str(message).str(type).str(pkg);
  }
  link(trace: string, span: string): this {
    this.u8(E.OTELAPI_ITEM_LINK);
    for (const h of [trace, span]) for (let i = 0; i < h.length; i += 2) this.bytes.push(parseInt(h.slice(i, i + 2), 16));
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const f64bits = (x: number): bigint => {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return b.getBigUint64(0, true);
};

interface Opts {
  name?: string;
  kind?: number;
  status?: number;
  desc?: string;
  scope?: [string, string, string];
  flags?: number;
  truncated?: number;
  dropped?: number;
  items?: Uint8Array;
  parent?: string;
}

/** A record: the generated layout for the fixed part and text strings, the binary items last. */
function record(o: Opts = {}): Uint8Array {
  const w = new RecordWriter(LAYOUT);
  const [sn, sv, su] = o.scope ?? ["example.com/shop", "1.2.3", "https://opentelemetry.io/schemas/1.26.0"];
  const head = w.bytes({
    fields: {
      type: E.REC_OTELAPI_SPAN,
      flags: o.flags ?? (o.parent ? E.REC_SPAN_F_HAS_PARENT : 0),
      truncated: o.truncated ?? 0,
      start_ns: 1_000n,
      end_ns: 9_000n,
      kind: o.kind ?? 0,
      status_code: o.status ?? 0,
      dropped: o.dropped ?? 0,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? "0000000000000000" },
    strings: { name: o.name ?? "checkout", scope_name: sn, scope_version: sv, schema_url: su, status_desc: o.desc ?? "" },
  });
  const items = o.items ?? new Uint8Array(0);
  const out = new Uint8Array(head.length + items.length);
  out.set(head);
  out.set(items, head.length);
  const view = new DataView(out.buffer);
  view.setUint16(LAYOUT.fields["items_len"]![0], items.length, true);
  view.setUint16(LAYOUT.fields["size"]![0], out.length, true);
  return out;
}

function decode(bytes: Uint8Array): Span {
  const d = new SpanDecoder();
  const s = d.decode(bytes, toEpoch);
  if (!s) throw new Error(`not decoded: ${d.firstInvalid}`);
  return s;
}

describe("otelapi decoder", () => {
  test("is registered with its own tag and the generated layout", () => {
    expect(PROBES.filter((p) => p.record.type === 0x0151).map((p) => p.id)).toEqual(["otelapi"]);
    expect(otelApi.record.struct).toBe("rec_otelapi_span");
    expect(LAYOUT.strings).toEqual(["name", "scope_name", "scope_version", "schema_url", "status_desc", "items"]);
  });

  test("a span with every attribute type, an event, an exception and a link", () => {
    const items = new Items()
      .attr(0, E.OTELAPI_VT_BOOL, "b", (i) => i.u64(1n))
      .attr(0, E.OTELAPI_VT_INT64, "i", (i) => i.u64(-42n))
      .attr(0, E.OTELAPI_VT_FLOAT64, "f", (i) => i.u64(f64bits(0.25)))
      .attr(0, E.OTELAPI_VT_STRING, "s", (i) => i.str("widget"))
      .attr(0, E.OTELAPI_VT_BOOLSLICE, "bs", (i) => i.u8(3).u8(1).u8(0).u8(1))
      .attr(0, E.OTELAPI_VT_INT64SLICE, "is", (i) => i.u8(2).u64(-1n).u64(1n << 40n))
      .attr(0, E.OTELAPI_VT_FLOAT64SLICE, "fs", (i) => i.u8(2).u64(f64bits(1.5)).u64(f64bits(-2.25)))
      .attr(0, E.OTELAPI_VT_STRINGSLICE, "ss", (i) => i.u8(3).str("a").str("bc").str(""))
      .event(5_000n, "validated")
      .attr(E.OTELAPI_OWNER_EVENT, E.OTELAPI_VT_INT64, "rules", (i) => i.u64(7n))
      .exception(6_000n, "inventory timeout", "*errors.errorString", "")
      .exception(6_500n, "", "errs.Timeout", "example.com/shop/errs")
      .exception(6_700n, "opaque", "", "")
      .link("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
      .attr(E.OTELAPI_OWNER_LINK, E.OTELAPI_VT_STRING, "link.reason", (i) => i.str("batch"))
      .attr(0, E.OTELAPI_VT_STRING, "after", (i) => i.str("link"))
      .done();
    const s = decode(record({ items, kind: 3, status: 1, desc: "inventory unavailable", parent: PARENT }));
    expect(s).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      parentSpanId: PARENT,
      name: "checkout",
      kind: "client",
      startTimeUnixNano: EPOCH + 1_000n,
      endTimeUnixNano: EPOCH + 9_000n,
      attributes: { b: true, i: -42, f: 0.25, s: "widget", bs: [true, false, true], is: [-1, 2 ** 40], fs: [1.5, -2.25], ss: ["a", "bc", ""], after: "link" },
      status: { code: "error", message: "inventory unavailable" },
      events: [
        { name: "validated", timeUnixNano: EPOCH + 5_000n, attributes: { rules: 7 } },
        { name: "exception", timeUnixNano: EPOCH + 6_000n, attributes: { "exception.type": "*errors.errorString", "exception.message": "inventory timeout" } },
        { name: "exception", timeUnixNano: EPOCH + 6_500n, attributes: { "exception.type": "example.com/shop/errs.Timeout" } },
        { name: "exception", timeUnixNano: EPOCH + 6_700n, attributes: { "exception.message": "opaque" } },
      ],
      links: [{ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", attributes: { "link.reason": "batch" } }],
      scope: { name: "example.com/shop", version: "1.2.3", schemaUrl: "https://opentelemetry.io/schemas/1.26.0" },
    });
  });

  test("kinds, status codes and an empty scope", () => {
    const kinds = [0, 1, 2, 3, 4, 5, 9].map((k) => decode(record({ kind: k })).kind);
    expect(kinds).toEqual(["internal", "internal", "server", "client", "producer", "consumer", "internal"]);
    expect(decode(record({ status: 2 })).status).toEqual({ code: "ok" });
    expect(decode(record({ status: 0 })).status).toEqual({ code: "unset" });
    expect(decode(record({ scope: ["lib", "", ""] })).scope).toEqual({ name: "lib", version: "" });
  });

  test("truncation and drops are marked on the span", () => {
    const items = new Items()
      .attr(0, E.OTELAPI_VT_STRING | E.OTELAPI_VT_TRUNCATED, "long", (i) => i.str("x".repeat(128)))
      .attr(0, 11, "bytes", () => {}) // BYTESLICE of newer releases: no value stored
      .done();
    const flags = E.OTELAPI_F_DROPPED | E.OTELAPI_F_VALUES_TRUNCATED | E.OTELAPI_F_OPTION_IGNORED;
    const s = decode(record({ items, truncated: 1, flags, dropped: 5 }));
    expect(s.attributes).toEqual({
      long: "x".repeat(128),
      "beetrace.truncated": "span.name,long",
      "beetrace.otel.dropped": 5,
      "beetrace.otel.unsupported": "bytes",
      "beetrace.otel.ignored_options": true,
    });
  });

  test("damaged items never throw: the walk stops and the span is marked", () => {
    const good = new Items().attr(0, E.OTELAPI_VT_INT64, "n", (i) => i.u64(1n)).done();
    for (let cut = 1; cut < good.length; cut++) {
      const s = decode(record({ items: good.subarray(0, cut) }));
      expect(s.attributes["beetrace.otel.damaged"]).toBe(true);
    }
    expect(parseItems(Uint8Array.from([99, 1, 2, 3])).damaged).toBe(true);
    // random bytes: never throws, never reads past the end
    let seed = 7;
    for (let k = 0; k < 500; k++) {
      const b = Uint8Array.from({ length: (k % 64) + 1 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
      expect(() => parseItems(b)).not.toThrow();
    }
  });

  test("OTLP protobuf of links, arrays and the tracer's schema URL equals otlp-transformer's", () => {
    const items = new Items()
      .attr(0, E.OTELAPI_VT_INT64SLICE, "is", (i) => i.u8(2).u64(-1n).u64(3n))
      .attr(0, E.OTELAPI_VT_STRINGSLICE, "ss", (i) => i.u8(2).str("a").str("b"))
      .link("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
      .attr(E.OTELAPI_OWNER_LINK, E.OTELAPI_VT_BOOL, "ok", (i) => i.u64(1n))
      .done();
    const spans = [decode(record({ items })), decode(record({ scope: ["other", "2", ""] }))];
    const resource = { "service.name": "shop" };
    const ours = encodeTraceRequestProtobuf(spans, resource, SCHEMA_URL);
    const ref = toOtlpProtobufReference(spans, resource);
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(ref).toString("hex"));
  });

  test("decoded spans with arrays, links and a schema URL survive a spill file (format-1 span items)", () => {
    const items = new Items()
      .attr(0, E.OTELAPI_VT_STRINGSLICE, "ss", (i) => i.u8(2).str("a").str("b"))
      .event(5_000n, "e")
      .attr(E.OTELAPI_OWNER_EVENT, E.OTELAPI_VT_INT64SLICE, "is", (i) => i.u8(1).u64(7n))
      .link("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
      .attr(E.OTELAPI_OWNER_LINK, E.OTELAPI_VT_BOOL, "ok", (i) => i.u64(1n))
      .done();
    const span = decode(record({ items }));
    const dir = mkdtempSync(join(tmpdir(), "beetrace-otelapi-spill-"));
    try {
      const path = join(dir, "spill.cbor");
      const w = CaptureWriter.open(path, sampleHeader(), { flushIntervalMs: 0 });
      w.span(span);
      w.close("duration", T0, zeroLosses());
      const back = readCaptureFile(path).records.filter((r) => r.type === "span");
      expect(back).toEqual([{ type: "span", ...span }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("trace.* fields resolve through the otel entry the tracker files them under (otel/trace is its own module)", () => {
    const OTEL = "go.opentelemetry.io/otel";
    const snapshot = new OffsetsTable(
      {
        schema: 1,
        modules: {
          [OTEL]: {
            versions: ["1.46.0", "1.47.0"],
            fields: { [`${OTEL}/trace.Link.Attributes`]: [{ from: "1.46.0", to: "1.47.0", offset: 64 }] },
          },
        },
      } as never,
      "embedded snapshot",
    );
    const same = new Map([
      [OTEL, "v1.47.0"],
      [`${OTEL}/trace`, "v1.47.0"],
    ]);
    expect(resolveField(`${OTEL}/trace.Link.Attributes`, { goVersion: "go1.26.0", modules: same, snapshot, allowNearest: false })).toMatchObject({
      offset: 64,
      source: "snapshot",
      module: `${OTEL}/trace`,
    });
    // Released apart (another version): not borrowed.
    const apart = new Map([
      [OTEL, "v1.47.0"],
      [`${OTEL}/trace`, "v1.46.0"],
    ]);
    expect(resolveField(`${OTEL}/trace.Link.Attributes`, { goVersion: "go1.26.0", modules: apart, snapshot, allowNearest: false }).offset).toBeUndefined();
  });
});
