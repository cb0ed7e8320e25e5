/**
 * @module tests/unit/viewer/captures — capture files whose requests the test decides: net/http
 * server (and client) span records written through the BTF-generated layouts
 * (tests/unit/probes/record-writer.ts) into a format-2 capture by the real CaptureWriter.
 * Shared by the viewer/summary unit tests, the headless-Chromium test and
 * bench/viewer-load.bench.ts (the million-span file).
 */
import { CaptureWriter } from "../../../src/capture/writer.ts";
import type { CaptureHeader } from "../../../src/capture/format.ts";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { builtinRecordSchema } from "../../../src/probes/decode.ts";
import { zeroLosses } from "../../../src/spans/model.ts";
import { rawCaptureHeader } from "../../../src/trace/output.ts";
import { RecordWriter, type RecordInput } from "../probes/record-writer.ts";
import { sampleHeader } from "../capture/fixture.ts";

const SERVER = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_server"));
const CLIENT = new RecordWriter(recordLayoutOf("nethttp", "rec_nethttp_client"));

/** The header's BOOTTIME → epoch offset: epoch = boot + OFFSET. */
export const OFFSET = sampleHeader().clock.offsetNs;
/** Boot time of the first request (after the header's anchor). */
export const BOOT0 = 2_000_000_000n;

export interface ServerReq {
  kind?: "server";
  method?: string;
  /** Request path; the route is `pattern` (a Go 1.22 mux pattern without method, e.g. "/sleep") */
  path: string;
  pattern: string;
  status: number;
  /** Boot-time start and duration, ns */
  startNs: bigint;
  durationNs: bigint;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  peerPort?: number;
}

export interface ClientReq {
  kind: "client";
  path: string;
  status: number;
  startNs: bigint;
  durationNs: bigint;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

export type Req = ServerReq | ClientReq;

function serverInput(r: ServerReq): RecordInput {
  return {
    fields: {
      type: E.REC_NETHTTP_SERVER,
      flags: E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN | (r.parentSpanId ? E.REC_SPAN_F_HAS_PARENT : 0),
      start_ns: r.startNs,
      end_ns: r.startNs + r.durationNs,
      status: r.status,
      proto_major: 1,
      proto_minor: 1,
    },
    hex: { trace_id: r.traceId, span_id: r.spanId, parent_span_id: r.parentSpanId ?? "0000000000000000" },
    strings: { method: r.method ?? "GET", path: r.path, host: "127.0.0.1:8080", remote: `127.0.0.1:${r.peerPort ?? 54321}`, pattern: r.pattern },
  };
}

function clientInput(r: ClientReq): RecordInput {
  return {
    fields: {
      type: E.REC_NETHTTP_CLIENT,
      flags: E.NETHTTP_CLIENT_F_RESPONSE | (r.parentSpanId ? E.REC_SPAN_F_HAS_PARENT : 0),
      start_ns: r.startNs,
      end_ns: r.startNs + r.durationNs,
      status: r.status,
    },
    hex: { trace_id: r.traceId, span_id: r.spanId, parent_span_id: r.parentSpanId ?? "0000000000000000" },
    strings: { method: "GET", scheme: "http", url_host: "127.0.0.1:8080", path: r.path, req_host: "127.0.0.1:8080" },
  };
}

/**
 * The record of a request: written once per distinct content (strings, status) through the
 * layout, then copied with its ids and times patched in (writing every field of a million
 * records through RecordWriter takes most of a minute on a shared CI machine).
 */
const templates = new Map<string, Uint8Array>();
function recordOf(r: Req): Uint8Array {
  const w = r.kind === "client" ? CLIENT : SERVER;
  const input = r.kind === "client" ? clientInput(r) : serverInput(r);
  const key = `${r.kind ?? "server"}\u0000${JSON.stringify(input.strings)}\u0000${r.status}\u0000${r.parentSpanId ? 1 : 0}`;
  let tpl = templates.get(key);
  if (tpl === undefined) {
    if (templates.size > 100_000) templates.clear();
    tpl = w.bytes(input);
    templates.set(key, tpl);
  }
  const b = tpl.slice();
  const v = new DataView(b.buffer);
  v.setBigUint64(w.offsetOf("start_ns"), r.startNs, true);
  v.setBigUint64(w.offsetOf("end_ns"), r.startNs + r.durationNs, true);
  const ids: [string, string][] = [["trace_id", r.traceId], ["span_id", r.spanId], ["parent_span_id", r.parentSpanId ?? "0000000000000000"]];
  for (const [field, hex] of ids) b.set(Buffer.from(hex, "hex"), w.offsetOf(field));
  return b;
}

export function hexId(n: number, len: number, lead: string): string {
  return lead + n.toString(16).padStart(len - lead.length, "0");
}

export interface CaptureOptions {
  serviceName?: string;
  host?: string;
  /** Offsets guessed for the server probe (the spans then carry beetrace.guessed_offsets) */
  guessed?: string[];
}

export function captureHeader(o: CaptureOptions = {}): CaptureHeader {
  const base = sampleHeader();
  const h = rawCaptureHeader({
    ...base,
    host: { ...base.host, name: o.host ?? base.host.name },
    target: { ...base.target, serviceName: o.serviceName ?? "sample", exe: "/srv/sample/sample" },
  });
  if (o.guessed) h.records = { ...builtinRecordSchema(), guessedOffsets: { "nethttp.server": o.guessed } };
  return h;
}

/** Writes the requests' records (in the given order, one flush per 4096) and an end record. */
export function writeCapture(path: string, reqs: Iterable<Req>, o: CaptureOptions = {}): void {
  const w = CaptureWriter.open(path, captureHeader(o), { flushIntervalMs: 0, flushBytes: 4 * 1024 * 1024 });
  let n = 0;
  let last = BOOT0;
  for (const r of reqs) {
    w.record(recordOf(r));
    if (r.startNs + r.durationNs > last) last = r.startNs + r.durationNs;
    if (++n % 4096 === 0) w.flush();
  }
  w.close("duration", last + OFFSET, zeroLosses());
}

/**
 * The controlled workload of the summary tests: `n` requests to /sleep, request i lasting
 * (i+1) ms (so p50 = 50 ms, p90 = 90 ms, p99 = 99 ms, max = 100 ms for n = 100), started
 * 10 ms apart, every tenth (i % 10 = 9) answered 500; plus `hello` requests to /hello of 1 ms.
 */
export function* sleepWorkload(n = 100, hello = 0): Generator<ServerReq> {
  for (let i = 0; i < n; i++) {
    yield {
      path: `/sleep?ms=${i + 1}`,
      pattern: "/sleep",
      status: i % 10 === 9 ? 500 : 200,
      startNs: BOOT0 + BigInt(i) * 10_000_000n,
      durationNs: BigInt(i + 1) * 1_000_000n,
      traceId: hexId(i + 1, 32, "5"),
      spanId: hexId(i + 1, 16, "5"),
      peerPort: 40000 + i,
    };
  }
  for (let i = 0; i < hello; i++) {
    yield {
      path: "/hello",
      pattern: "/hello",
      status: 200,
      startNs: BOOT0 + BigInt(i) * 10_000_000n + 5_000_000n,
      durationNs: 1_000_000n,
      traceId: hexId(i + 1, 32, "7"),
      spanId: hexId(i + 1, 16, "7"),
    };
  }
}

/**
 * A proxy trace as the sample service makes it: server GET /proxy → client GET /hello →
 * server GET /hello, records in the order they end (innermost first). `fail` makes the
 * inner /hello answer 500 (an error server span).
 */
export function proxyTrace(i: number, startNs: bigint, fail = false): Req[] {
  const traceId = hexId(i + 1, 32, "9");
  const root = hexId(3 * i + 1, 16, "9");
  const client = hexId(3 * i + 2, 16, "9");
  const inner = hexId(3 * i + 3, 16, "9");
  return [
    { path: "/hello", pattern: "/hello", status: fail ? 500 : 200, startNs: startNs + 90_000n, durationNs: 30_000n, traceId, spanId: inner, parentSpanId: client, peerPort: 50000 + (i % 10000) },
    { kind: "client", path: "/hello", status: fail ? 500 : 200, startNs: startNs + 20_000n, durationNs: 160_000n, traceId, spanId: client, parentSpanId: root },
    { path: "/proxy", pattern: "/proxy", status: 200, startNs, durationNs: 200_000n, traceId, spanId: root, peerPort: 40000 + (i % 20000) },
  ];
}

/**
 * About `spans` spans: proxy traces (3 spans) and single /hello requests alternating, one
 * request every 50 µs, every 100th proxy trace failing. For the million-span page.
 */
export function* bigWorkload(spans: number): Generator<Req> {
  let made = 0;
  for (let i = 0; made < spans; i++) {
    const start = BOOT0 + BigInt(i) * 50_000n;
    if (i % 2 === 0 && made + 3 <= spans) {
      const t = proxyTrace(i, start, i % 200 === 0);
      made += 3;
      yield* t;
    } else {
      made++;
      yield { path: "/hello", pattern: "/hello", status: 200, startNs: start, durationNs: 40_000n + BigInt(i % 97) * 1000n, traceId: hexId(i + 1, 32, "b"), spanId: hexId(i + 1, 16, "b"), peerPort: 30000 + (i % 30000) };
    }
  }
}
