/**
 * `beetrace merge` end to end on synthetic captures (no root): raw format-2 records and
 * format-1 span items, sections in the output, trace/parent rewrites, the clock correction,
 * and one-line errors with the documented exit codes for bad input.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import type { CaptureHeader, SectionRecord } from "../../../src/capture/format.ts";
import { readCaptureFile } from "../../../src/capture/reader.ts";
import { mergeCommand, parseSkews } from "../../../src/cli/merge.ts";
import { convertCommand } from "../../../src/cli/convert.ts";
import { exportCommand } from "../../../src/cli/export.ts";
import { startCollector } from "../export/collector.ts";
import { EXIT_CODES, TracerError } from "../../../src/errors.ts";
import { builtinRecordSchema } from "../../../src/probes/decode.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { type Span, zeroLosses } from "../../../src/spans/model.ts";
import { RecordWriter } from "../probes/record-writer.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-merge-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SERVER = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_server"));
const CLIENT = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_client"));
const BOOT0 = 5_000_000_000n;
const EPOCH0 = 1_800_000_000_000_000_000n;
const MS = 1_000_000n;

function header(service: string, aheadNs: bigint, format = 2): CaptureHeader {
  const offsetNs = EPOCH0 - BOOT0 + aheadNs;
  return {
    type: "header",
    format,
    tracer: { name: "beetrace", version: "test" },
    createdAt: BOOT0 + offsetNs,
    host: { name: `${service}-host`, arch: "x64", kernel: "test" },
    target: { pid: 1, exe: `/srv/${service}`, goVersion: "go1.26.0", modules: [], serviceName: service },
    clock: { realtimeNs: BOOT0 + offsetNs, boottimeNs: BOOT0, offsetNs },
    probes: [],
    ...(format >= 2 ? { records: builtinRecordSchema() } : {}),
  };
}

const hex = (n: number, len: number, lead: string) => lead + n.toString(16).padStart(len - 1, "0");

/**
 * edge.cbor: per request a server span (root) and its client span, on one keep-alive
 * connection 10.1.2.3:40000; orders.cbor: the server span each request caused, on a host whose
 * wall clock is `ahead` ahead (its clock anchor; boot-time stamps are the host's own), and a
 * child (a client span to somewhere untraced, no local address).
 */
function writePair(name: string, n: number, ahead: bigint): { edge: string; orders: string } {
  const edge = path.join(dir, `${name}-edge.cbor`);
  const orders = path.join(dir, `${name}-orders.cbor`);
  const we = CaptureWriter.open(edge, header("edge", 0n), { flushIntervalMs: 0 });
  const wo = CaptureWriter.open(orders, header("orders", ahead), { flushIntervalMs: 0 });
  let t = BOOT0 + 100n * MS;
  for (let i = 0; i < n; i++) {
    const trace = hex(i + 1, 32, "e");
    we.record(
      SERVER.bytes({
        fields: { type: E.REC_NETHTTP_SERVER, flags: E.NETHTTP_SERVER_F_STATUS, start_ns: t, end_ns: t + 10n * MS, status: 200, proto_major: 1, proto_minor: 1 },
        hex: { trace_id: trace, span_id: hex(i + 1, 16, "a") },
        strings: { method: "GET", path: "/work", host: "edge:80", remote: `192.0.2.1:${5000 + i}` },
      }),
    );
    we.record(
      CLIENT.bytes({
        fields: { type: E.REC_NETHTTP_CLIENT, flags: E.NETHTTP_CLIENT_F_RESPONSE | E.REC_SPAN_F_HAS_PARENT, start_ns: t + MS, end_ns: t + 9n * MS, status: 200, local_port: 40000, local_addr_size: 4 },
        hex: { trace_id: trace, span_id: hex(i + 1, 16, "c"), parent_span_id: hex(i + 1, 16, "a"), local_addr: "0a010203" + "0".repeat(24) },
        strings: { method: "GET", scheme: "http", url_host: "orders:80", path: "/work", req_host: "orders:80" },
      }),
    );
    const s0 = t + 2n * MS + BigInt(i % 3) * 100_000n;
    const otrace = hex(i + 1, 32, "0");
    wo.record(
      SERVER.bytes({
        fields: { type: E.REC_NETHTTP_SERVER, flags: E.NETHTTP_SERVER_F_STATUS, start_ns: s0, end_ns: s0 + 5n * MS, status: 200, proto_major: 1, proto_minor: 1 },
        hex: { trace_id: otrace, span_id: hex(i + 1, 16, "5") },
        strings: { method: "GET", path: "/work", host: "orders:80", remote: "10.1.2.3:40000" },
      }),
    );
    wo.record(
      CLIENT.bytes({
        fields: { type: E.REC_NETHTTP_CLIENT, flags: E.NETHTTP_CLIENT_F_RESPONSE | E.REC_SPAN_F_HAS_PARENT, start_ns: s0 + MS, end_ns: s0 + 2n * MS, status: 200 },
        hex: { trace_id: otrace, span_id: hex(i + 1, 16, "6"), parent_span_id: hex(i + 1, 16, "5") },
        strings: { method: "GET", scheme: "http", url_host: "db:80", path: "/q", req_host: "db:80" },
      }),
    );
    // Irregular gaps between requests (a keep-alive connection of real traffic).
    t += 20n * MS + BigInt((i * 7919) % 17) * MS;
  }
  we.close("test", EPOCH0, zeroLosses());
  wo.close("test", EPOCH0, zeroLosses());
  return { edge, orders };
}

const quiet = async () => {};

function expectError(e: unknown, code: keyof typeof EXIT_CODES, text: RegExp): void {
  expect(e).toBeInstanceOf(TracerError);
  const t = e as TracerError;
  expect({ code: t.code, message: t.message }).toMatchObject({ code, message: expect.stringMatching(text) });
  expect(t.message.includes("\n")).toBe(false);
  expect(t.hint).toBeTruthy();
}

async function failure(files: string[], opts: Parameters<typeof mergeCommand>[1]): Promise<unknown> {
  try {
    await mergeCommand(files, opts, quiet);
  } catch (e) {
    return e;
  }
  throw new Error("merge did not fail");
}

describe("merge", () => {
  test("raw captures: sections per input, every orders span in edge's trace, parents right, the skew found and undone", async () => {
    const ahead = 3_000n * MS;
    const { edge, orders } = writePair("raw", 12, ahead);
    const out = path.join(dir, "raw-merged.cbor");
    const r = await mergeCommand([edge, orders], { out }, quiet);
    expect(r.joined).toBe(12);
    expect(r.tracesJoined).toBe(12);
    // The pairs allow [-1 ms, +1.8 ms] around the true offset (a span's slack in its caller).
    expect(Math.abs(r.files[1]!.clockOffsetNs - Number(ahead))).toBeLessThan(2 * Number(MS));
    expect(r.unjoined).toEqual({ servers: 12, clients: 0, ambiguous: 0, clockConflicts: 0, traceConflicts: 0 }); // edge's callers are untraced

    const c = readCaptureFile(out);
    expect(c.invalid).toBe(0);
    expect(c.header.target.serviceName).toBe("edge");
    const sections = c.records.filter((x): x is SectionRecord => x.type === "section");
    expect(sections.map((s) => s.header.target.serviceName)).toEqual(["orders"]);
    const spans = c.records.filter((x) => x.type === "span") as (Span & { type: "span" })[];
    expect(spans.length).toBe(48);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    for (let i = 1; i <= 12; i++) {
      const os = byId.get(hex(i, 16, "5"))!;
      const ec = byId.get(hex(i, 16, "c"))!;
      const child = byId.get(hex(i, 16, "6"))!;
      expect(os.parentSpanId).toBe(ec.spanId);
      expect(os.traceId).toBe(ec.traceId);
      expect(child.traceId).toBe(ec.traceId); // the whole subtree moved
      expect(child.parentSpanId).toBe(os.spanId);
      expect(os.startTimeUnixNano).toBeGreaterThanOrEqual(ec.startTimeUnixNano);
      expect(os.startTimeUnixNano).toBeLessThanOrEqual(ec.endTimeUnixNano);
      // The correction: orders' span is back 1-1.2 ms after its caller started (true time).
      expect(Number(os.startTimeUnixNano - ec.startTimeUnixNano)).toBeLessThan(2 * Number(MS));
    }

    // convert gives each section its own resource (service.name).
    const lines: string[] = [];
    await convertCommand(out, {}, async (l) => void lines.push(l));
    const services = new Map<string, number>();
    for (const l of lines) {
      const req = JSON.parse(l) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: unknown[] }[] }[] };
      for (const rs of req.resourceSpans) {
        const name = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
        services.set(name, (services.get(name) ?? 0) + rs.scopeSpans.reduce((n, ss) => n + ss.spans.length, 0));
      }
    }
    expect(Object.fromEntries(services)).toEqual({ edge: 24, orders: 24 });

    // So does export: one resource per section.
    const col = startCollector();
    try {
      const sent = await exportCommand([out], { otlp: col.url, protocol: "http/json", env: {} });
      expect(sent.sent).toBe(48);
      const exported = new Map<string, number>();
      for (const req of col.requests) {
        const body = JSON.parse(new TextDecoder().decode(req.body)) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: unknown[] }[] }[] };
        for (const rs of body.resourceSpans) {
          const name = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
          exported.set(name, (exported.get(name) ?? 0) + rs.scopeSpans.reduce((n, ss) => n + ss.spans.length, 0));
        }
      }
      expect(Object.fromEntries(exported)).toEqual({ edge: 24, orders: 24 });
    } finally {
      col.stop();
    }
  });

  test("--skew: a known shift added to one file is reported back", async () => {
    const { edge, orders } = writePair("skew", 8, 0n);
    const out = path.join(dir, "skew-merged.cbor");
    const r = await mergeCommand([edge, orders], { out, skew: "1=-750ms" }, quiet);
    expect(r.joined).toBe(8);
    expect(Math.abs(r.files[1]!.clockOffsetNs + 750_000_000)).toBeLessThan(2 * Number(MS));
    expect(parseSkews(["0=1.5s", "1=-2ms"], 2)).toEqual(new Map([[0, 1_500_000_000n], [1, -2_000_000n]]));
  });

  test("format-1 inputs (decoded spans) join through their attributes", async () => {
    const t0 = EPOCH0 + 1_000n * MS;
    const mk = (p: Partial<Span> & Pick<Span, "traceId" | "spanId" | "kind">): Span => ({
      name: "GET",
      startTimeUnixNano: t0,
      endTimeUnixNano: t0 + 10n * MS,
      attributes: {},
      status: { code: "unset" },
      scope: { name: "beetrace/net/http", version: "test" },
      ...p,
    });
    const a = path.join(dir, "f1-a.cbor");
    const b = path.join(dir, "f1-b.cbor");
    const wa = CaptureWriter.open(a, header("a", 0n, 1), { flushIntervalMs: 0 });
    wa.span(mk({ traceId: "a".repeat(32), spanId: "a".repeat(16), kind: "client", attributes: { "network.local.address": "::ffff:10.0.0.9", "network.local.port": 4444 } }));
    wa.close("test", EPOCH0, zeroLosses());
    const wb = CaptureWriter.open(b, header("b", 0n, 1), { flushIntervalMs: 0 });
    wb.span(mk({ traceId: "b".repeat(32), spanId: "b".repeat(16), kind: "server", startTimeUnixNano: t0 + MS, endTimeUnixNano: t0 + 2n * MS, attributes: { "network.peer.address": "10.0.0.9", "network.peer.port": 4444 } }));
    wb.close("test", EPOCH0, zeroLosses());
    const out = path.join(dir, "f1-merged.cbor");
    const r = await mergeCommand([a, b], { out }, quiet);
    expect(r.joined).toBe(1);
    const spans = readCaptureFile(out).records.filter((x) => x.type === "span") as Span[];
    const server = spans.find((s) => s.kind === "server")!;
    expect(server.traceId).toBe("a".repeat(32));
    expect(server.parentSpanId).toBe("a".repeat(16));
  });

  test("a damaged input: everything intact is merged, then corrupt_capture (exit 17)", async () => {
    const { edge, orders } = writePair("damaged", 6, 0n);
    const bytes = fs.readFileSync(orders);
    // Break the size field of the third server record (found by its span id, 40 bytes in).
    const id = Buffer.from(hex(3, 16, "5"), "hex");
    const at = bytes.indexOf(id) - 40;
    expect(at).toBeGreaterThan(0);
    bytes[at + 2] = 0xff;
    bytes[at + 3] = 0x7f;
    const bad = path.join(dir, "damaged-orders-bad.cbor");
    fs.writeFileSync(bad, bytes);
    const out = path.join(dir, "damaged-merged.cbor");
    const e = await failure([edge, bad], { out });
    expectError(e, "corrupt_capture", /damaged/);
    expect(readCaptureFile(out).records.filter((x) => x.type === "span").length).toBeGreaterThan(12);
  });

  test("bad input: one-line errors, hints, the other commands' exit codes", async () => {
    const { edge, orders } = writePair("bad", 2, 0n);
    const out = path.join(dir, "bad-out.cbor");
    expectError(await failure([edge], { out }), "usage", /at least two/);
    expectError(await failure([edge, orders], {}), "usage", /-o FILE/);
    expectError(await failure([edge, orders], { out: edge }), "usage", /also an input/);
    expectError(await failure([edge, orders], { out, skew: "x" }), "usage", /--skew/);
    expectError(await failure([edge, orders], { out, skew: "5=1s" }), "usage", /does not exist/);
    expectError(await failure([edge, path.join(dir, "nope.cbor")], { out }), "file_not_found", /no such file/);
    expectError(await failure([edge, dir], { out }), "not_regular_file", /./);
    const junk = path.join(dir, "junk.cbor");
    fs.writeFileSync(junk, "this is not a capture\n");
    expectError(await failure([edge, junk], { out }), "corrupt_capture", /junk\.cbor/);
    expectError(await failure([edge, orders], { out: path.join(dir, "no-such-dir", "x.cbor") }), "file_not_found", /no such file/);
    expect(EXIT_CODES.usage).toBe(2);
  });
});
