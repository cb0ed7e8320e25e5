/**
 * @module bench/pipeline.bench — CPU per span of the session's user-space path, from ring-buffer
 * records to a capture file or to OTLP protobuf, and bytes per span in the capture file.
 *
 * The records (one per finished span) are built by bench/records.ts through the layouts
 * generated from BTF, framed like a BPF ring buffer's data area, and walked by the ring
 * reader's own parseRecords (src/bpf/ringbuf.ts) in 1 MiB ticks. Per tick the bench does what
 * TraceSession.run's tick does (src/trace/session.ts): convert "now" through the BootClock
 * (re-anchoring when due, which reaches the sink as a clock item), hand every record to the
 * sink, then flush() once. Paths:
 *   parse    ring walk only (the handler reads each record's size): the floor
 *   capture  + CaptureSink (src/trace/output.ts): record(raw, span) per record (never decodes),
 *            flush() per tick, close; the file is read back to check the span count
 *   decode   + SpanDecoder.decodeAt per record (what a sink calling span() costs)
 *   otlp     what the OTLP exporter does with the session's records (src/export/exporter.ts):
 *            a copy of each record is queued; per batch of 512 each is decoded with its ids
 *            left as bytes and the batch is encoded as OTLP protobuf (no network)
 *
 *   node_modules/.bin/bun bench/pipeline.bench.ts [--mix proxy|hello|both] [--spans 300000] [--repeat 3] [--paths parse,capture,decode,otlp]
 *
 * With root, bench/ringbuf.bench.ts measures the reader over a ring a BPF program filled.
 */
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseRecords } from "../src/bpf/ringbuf.ts";
import { sampleClocks } from "../src/bpf/clock.ts";
import { BootClock } from "../src/spans/clock.ts";
import { SpanDecoder, laterDecoders } from "../src/probes/decode.ts";
import { recordSize } from "../src/probes/record.ts";
import { SPAN_ID_OFFSETS } from "../src/probes/common/header.ts";
import { PROBES } from "../src/probes/registry.ts";
import { CaptureSink } from "../src/trace/output.ts";
import { readCaptureFile } from "../src/capture/reader.ts";
import { CAPTURE_FORMAT, type CaptureHeader } from "../src/capture/format.ts";
import { resourceAttributes } from "../src/export/otlp.ts";
import { encodeQueuedProtobuf, RecordCopies, type RecordDecoding } from "../src/export/exporter.ts";
import { zeroLosses, type Span } from "../src/spans/model.ts";
import { BEETRACE_VERSION } from "../src/version.ts";
import { RecordBatch, type Mix } from "./records.ts";
import { intOption, machineLine, parseOptions, selfCpuMs, summarize } from "./lib.ts";

const PATHS = ["parse", "capture", "decode", "otlp"] as const;
type PathName = (typeof PATHS)[number];
/** Bytes of ring handed over per tick: one 1 MiB slice at a time. */
const TICK_BYTES = 1 << 20;
/** The session's default ring size (src/cli/commands.ts --ringbuf-size default 4M): one pass fills it once. */
const RING_BYTES = 4 << 20;
/** Spans per OTLP request: the exporter's default maxBatchSize (src/export/exporter.ts). */
const OTLP_BATCH = 512;
/** Guess for the first pass's duration per span (later passes use the measured one). */
const FIRST_PASS_NS_PER_SPAN = 5_000n;

interface PathResult {
  path: PathName;
  spans: number;
  wallMs: number;
  cpuMs: number;
  /** capture: file bytes after the header */
  fileBytes?: number;
  /** otlp: protobuf bytes */
  otlpBytes?: number;
  reanchors: number;
}

function header(): CaptureHeader {
  const a = sampleClocks();
  return {
    type: "header",
    format: CAPTURE_FORMAT,
    tracer: { name: "beetrace", version: BEETRACE_VERSION },
    createdAt: a.realtimeNs,
    host: { name: "bench", arch: process.arch, kernel: "bench" },
    target: { pid: 4242, exe: "/srv/bench-service", goVersion: "go1.26.0", modules: [], serviceName: "bench-service" },
    clock: { realtimeNs: a.realtimeNs, boottimeNs: a.boottimeNs, offsetNs: a.realtimeNs - a.boottimeNs },
    probes: PROBES.map((p) => ({ id: p.id, attached: true, offsets: [] })),
  };
}

function runPath(path: PathName, batch: RecordBatch, targetSpans: number, outDir: string): PathResult {
  let sink: CaptureSink | undefined;
  let reanchors = 0;
  const clock = new BootClock(() => sampleClocks(), {
    onReanchor: (a) => {
      reanchors++;
      sink?.clock({ realtimeNs: a.realtimeNs, boottimeNs: a.boottimeNs, offsetNs: a.offsetNs });
    },
  });
  const h = header();
  const file = join(outDir, `pipeline-${path}-${batch.mix}.cbor`);
  if (path === "capture") {
    sink = new CaptureSink(file, { host: "bench", pid: 4242, exe: "/srv/bench-service", start: new Date() }, h, {}, { flushIntervalMs: 0 });
  }
  const headerBytes = sink?.bytes() ?? 0;
  const decoder = new SpanDecoder();
  const decodeCtx = { toEpoch: (ns: bigint) => clock.toEpochNs(ns) };
  const resource = resourceAttributes(h);
  let otlpBytes = 0;
  const pending: Uint8Array[] = [];
  const copies = new RecordCopies(); // as OtlpExporter.addRecord copies them
  let scratch: Uint8Array = new Uint8Array(1 << 20); // a batch of the mixes' records (~130 bytes each) fits
  // What the session hands the OTLP sink, and OtlpExporter's #encode (the same functions).
  const records: RecordDecoding = { ...laterDecoders(decoder, clock), ids: SPAN_ID_OFFSETS };
  const encodePending = (): number => {
    const queued = pending.length;
    const body = encodeQueuedProtobuf(pending, records, resource, scratch);
    if (pending.length !== queued) throw new Error("otlp: a queued record did not decode");
    scratch = body.scratch;
    pending.length = 0;
    return body.bytes.length;
  };
  let spans = 0;
  let invalid = 0;
  let sizes = 0;

  // The session's onRecord (src/trace/session.ts), minus sampling: size check, then the sink;
  // the span is decoded only when a sink asks for it.
  let ringBytes: Uint8Array | undefined;
  let curView: DataView | undefined;
  let curOff = 0;
  let curLen = 0;
  const spanOfCurrent = (): Span | undefined => decoder.decodeAt(ringBytes!, curView!, curOff, curLen, decodeCtx);
  const onRecord = (view: DataView, off: number, len: number) => {
    if (ringBytes === undefined || ringBytes.buffer !== view.buffer) ringBytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const size = recordSize(ringBytes, off);
    if (size === 0 || size > len) {
      invalid++;
      return;
    }
    if (path === "parse") {
      sizes += size;
      return;
    }
    curView = view;
    curOff = off;
    curLen = size;
    if (sink) {
      sink.record(ringBytes, spanOfCurrent, off, size);
      spans++;
      return;
    }
    if (path === "otlp") {
      pending.push(copies.copy(ringBytes, off, size)!);
      spans++;
      if (pending.length >= OTLP_BATCH) otlpBytes += encodePending();
      return;
    }
    const s = spanOfCurrent();
    if (s === undefined) return;
    spans++;
  };

  let wall = 0;
  let cpu = 0;
  let expectedSpans = 0;
  let spreadNs = BigInt(batch.spans) * FIRST_PASS_NS_PER_SPAN;
  for (let pass = 0; expectedSpans < targetSpans; pass++) {
    batch.stamp(pass, sampleClocks().boottimeNs, spreadNs);
    const t0 = performance.now();
    const c0 = selfCpuMs();
    const cursor = { pos: 0, records: 0 };
    while (cursor.pos < batch.length) {
      // The tick converts "now" first: a due re-anchor happens here, as in the session.
      clock.toEpochNs(sampleClocks().boottimeNs);
      parseRecords(batch.words, batch.view, 0, batch.length, cursor, Math.min(batch.length, cursor.pos + TICK_BYTES), onRecord);
      sink?.flush();
    }
    const passMs = performance.now() - t0;
    wall += passMs;
    cpu += selfCpuMs() - c0;
    // The next pass's requests happened while this one was processed: stamps keep real-time pace.
    spreadNs = BigInt(Math.max(1, Math.round(passMs * 1e6)));
    expectedSpans += batch.spans;
  }
  // Close the sinks inside the timed total: the last flush and partial OTLP batch are part of the cost.
  const t0 = performance.now();
  const c0 = selfCpuMs();
  if (pending.length > 0) otlpBytes += encodePending();
  sink?.close("bench", clock.toEpochNs(sampleClocks().boottimeNs), zeroLosses());
  wall += performance.now() - t0;
  cpu += selfCpuMs() - c0;

  if (invalid > 0 || decoder.invalid > 0) {
    throw new Error(`${path}: ${invalid + decoder.invalid} records were invalid (${decoder.firstInvalid ?? "bad size"}): the benchmark input is wrong`);
  }
  if (path === "parse" && sizes === 0) throw new Error("parse read no records");
  if (path !== "parse" && spans !== expectedSpans) throw new Error(`${path}: ${spans} spans, expected ${expectedSpans}`);
  let fileBytes: number | undefined;
  if (sink) {
    fileBytes = statSync(file).size - headerBytes;
    // Untimed check that the file holds what we think we measured.
    const back = readCaptureFile(file);
    const got = back.records.filter((r) => r.type === "span").length;
    if (got !== expectedSpans || back.invalid > 0) throw new Error(`capture file has ${got} spans (${back.invalid} invalid), expected ${expectedSpans}`);
    rmSync(file, { force: true });
  }
  return { path, spans: expectedSpans, wallMs: wall, cpuMs: cpu, fileBytes, otlpBytes: path === "otlp" ? otlpBytes : undefined, reanchors };
}

function main(): void {
  const o = parseOptions(Bun.argv.slice(2), { mix: "both", spans: "300000", repeat: "3", paths: PATHS.join(",") });
  const paths = o.paths.split(",").filter((p) => p !== "") as PathName[];
  for (const p of paths) if (!PATHS.includes(p)) throw new Error(`--paths: ${p} is not one of ${PATHS.join(", ")}`);
  const mixes: Mix[] = o.mix === "both" ? ["proxy", "hello"] : o.mix === "proxy" || o.mix === "hello" ? [o.mix] : [];
  if (mixes.length === 0) throw new Error(`--mix: ${o.mix} is not proxy, hello or both`);
  const targetSpans = intOption(o.spans, "spans");
  const repeat = Math.max(1, intOption(o.repeat, "repeat"));
  const outDir = join(tmpdir(), `beetrace-bench-${process.pid}`);
  mkdirSync(outDir, { recursive: true });
  console.log(`# pipeline benchmark\n${machineLine()}`);
  try {
    for (const mix of mixes) {
      // Size one pass to the session's default 4 MiB ring.
      const one = new RecordBatch(mix, 1);
      const batch = new RecordBatch(mix, Math.max(1, Math.floor(RING_BYTES / one.length)));
      console.log(
        `\nmix ${mix}: ${batch.spans / batch.groups} span(s) = record(s) per request, ${(batch.recordBytes / batch.records).toFixed(0)} record bytes/span ` +
          `(${(batch.length / batch.records).toFixed(0)} in the ring); ${batch.groups} requests per 4 MiB pass; ≥${targetSpans} spans per run, median of ${repeat}`,
      );
      console.log(`  ${"path".padEnd(8)} ${"cpu µs/span".padStart(11)} ${"wall µs/span".padStart(12)} ${"spans/s (wall)".padStart(15)}  re-anchors  bytes/span`);
      for (const path of paths) {
        const runs: PathResult[] = [];
        for (let i = 0; i < repeat; i++) runs.push(runPath(path, batch, targetSpans, outDir));
        const cpu = summarize(runs.map((r) => (r.cpuMs * 1000) / r.spans));
        const med = runs.find((r) => (r.cpuMs * 1000) / r.spans === cpu.median) ?? runs[0]!;
        const wallPerSpan = (med.wallMs * 1000) / med.spans;
        let bytes = "";
        if (med.fileBytes !== undefined) bytes = `${(med.fileBytes / med.spans).toFixed(1)} in the file (${(med.fileBytes / 1e6).toFixed(1)} MB)`;
        if (med.otlpBytes !== undefined) bytes = `${(med.otlpBytes / med.spans).toFixed(1)} of OTLP protobuf`;
        console.log(
          `  ${path.padEnd(8)} ${cpu.median.toFixed(2).padStart(11)} ${wallPerSpan.toFixed(2).padStart(12)} ${Math.round(med.spans / (med.wallMs / 1000)).toLocaleString("en-US").padStart(15)}  ` +
            `${String(med.reanchors).padStart(10)}  ${bytes}${repeat > 1 ? `   (cpu µs/span min ${cpu.min.toFixed(2)})` : ""}`,
        );
      }
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

main();
