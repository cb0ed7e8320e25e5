/**
 * @module bench/pipeline.bench — spans per second the user-space pipeline sustains on one core,
 * from ring-buffer records to the capture file, and bytes per span in that file.
 *
 * The records are built by bench/records.ts with the layouts of src/probes/nethttp/records.ts
 * and framed like a BPF ring buffer's data area, then walked by the ring reader's own
 * parseRecords (src/bpf/ringbuf.ts) and sent down the path TraceSession.run uses: tag →
 * probeForRecordType → probe.decode → SpanAssembler (probe.finish with a BootClock) →
 * CaptureWriter.span into a temp file, draining in 1 MiB batches with assembler.drained() after
 * each, as the session's drain timer does. Four cumulative stages show where the time goes:
 *   parse     ring walk only (handler reads the tag)
 *   decode    + probe decode into SpanStart/SpanEnd
 *   assemble  + pairing and span building (finish), spans dropped
 *   full      + CBOR encoding and writing the capture file (then close + fsync)
 *
 *   node_modules/.bin/bun bench/pipeline.bench.ts [--mix proxy|hello|both] [--spans 300000] [--repeat 3]
 *
 * With root, bench/ringbuf.bench.ts measures the reader over a ring a BPF program filled.
 */
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseRecords } from "../src/bpf/ringbuf.ts";
import { sampleClocks } from "../src/bpf/clock.ts";
import { BootClock } from "../src/spans/clock.ts";
import { SpanAssembler } from "../src/spans/assemble.ts";
import { probeById, probeForRecordType, PROBES } from "../src/probes/registry.ts";
import { CaptureWriter } from "../src/capture/writer.ts";
import { readCaptureFile } from "../src/capture/reader.ts";
import type { CaptureHeader } from "../src/capture/format.ts";
import { BEETRACE_VERSION } from "../src/version.ts";
import { RecordBatch, type Mix } from "./records.ts";
import { intOption, machineLine, parseOptions, selfCpuMs, summarize } from "./lib.ts";

const STAGES = ["parse", "decode", "assemble", "full"] as const;
type Stage = (typeof STAGES)[number];
/** TraceSession drains at most 1 MiB of ring per object per tick (src/trace/session.ts drainOnce). */
const DRAIN_BYTES = 1 << 20;
/** The session's default ring size (src/cli/commands.ts --ringbuf-size default 4M): one pass fills it once. */
const RING_BYTES = 4 << 20;

interface StageResult {
  stage: Stage;
  spans: number;
  records: number;
  wallMs: number;
  cpuMs: number;
  fileBytes?: number;
  headerBytes?: number;
}

function header(): CaptureHeader {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    type: "header",
    format: 1,
    tracer: { name: "beetrace", version: BEETRACE_VERSION },
    createdAt: now,
    host: { name: "bench", arch: process.arch, kernel: "bench" },
    target: { pid: 4242, exe: "/srv/bench-service", goVersion: "go1.26.0", modules: [], serviceName: "bench-service" },
    clock: { realtimeNs: now, boottimeNs: 0n, offsetNs: now },
    probes: PROBES.map((p) => ({ id: p.id, attached: true, offsets: [] })),
  };
}

function runStage(stage: Stage, batch: RecordBatch, targetSpans: number, outDir: string): StageResult {
  const clock = new BootClock(() => sampleClocks());
  const boot0 = clock.anchor().boottimeNs;
  const path = join(outDir, `pipeline-${stage}-${batch.mix}.cbor`);
  const writer = stage === "full" ? CaptureWriter.open(path, header(), { flushIntervalMs: 0 }) : undefined;
  const headerBytes = writer?.totals().bytes;
  let spans = 0;
  let invalid = 0;
  let tags = 0;
  const assembler = new SpanAssembler({
    finish: (s, e) => probeById(s.probe)?.finish(s, e, (ns) => clock.toEpochNs(ns)),
    onSpan: (span) => {
      spans++;
      writer?.span(span);
    },
  });
  // The session's onRecord (src/trace/session.ts), cut short at the stage being measured.
  const onRecord = (view: DataView, off: number, len: number) => {
    if (len < 4) {
      invalid++;
      return;
    }
    const tag = view.getUint32(off, true);
    if (stage === "parse") {
      tags += tag;
      return;
    }
    const probe = probeForRecordType(tag);
    if (!probe) {
      invalid++;
      return;
    }
    const d = probe.decode(view, off, len);
    if (stage === "decode") {
      if (d.kind === "invalid") invalid++;
      else tags++;
      return;
    }
    if (d.kind === "start") assembler.start(d.start);
    else if (d.kind === "end") assembler.end(d.end);
    else invalid++;
  };

  let wall = 0;
  let cpu = 0;
  let records = 0;
  let expectedSpans = 0;
  for (let pass = 0; expectedSpans < targetSpans; pass++) {
    batch.stamp(pass, boot0 + BigInt(pass) * 1_000_000_000n);
    const t0 = performance.now();
    const c0 = selfCpuMs();
    const cursor = { pos: 0, records: 0 };
    while (cursor.pos < batch.length) {
      parseRecords(batch.words, batch.view, 0, batch.length, cursor, Math.min(batch.length, cursor.pos + DRAIN_BYTES), onRecord);
      if (stage === "assemble" || stage === "full") assembler.drained();
    }
    wall += performance.now() - t0;
    cpu += selfCpuMs() - c0;
    records += cursor.records;
    expectedSpans += batch.spans;
  }
  let fileBytes: number | undefined;
  if (writer) {
    const t0 = performance.now();
    const c0 = selfCpuMs();
    writer.close("bench", clock.toEpochNs(boot0), assembler.losses());
    wall += performance.now() - t0;
    cpu += selfCpuMs() - c0;
    fileBytes = statSync(path).size;
    // Untimed check that the file holds what we think we measured.
    const got = readCaptureFile(path).records.filter((r) => r.type === "span").length;
    if (got !== expectedSpans) throw new Error(`capture file has ${got} spans, expected ${expectedSpans}`);
    rmSync(path, { force: true });
  }
  if (invalid > 0) throw new Error(`${stage}: ${invalid} records were invalid: the benchmark input is wrong`);
  if ((stage === "assemble" || stage === "full") && spans !== expectedSpans) {
    throw new Error(`${stage}: assembled ${spans} spans, expected ${expectedSpans} (losses ${JSON.stringify(assembler.losses())})`);
  }
  if (stage === "parse" && tags === 0) throw new Error("parse stage read no tags");
  return { stage, spans: expectedSpans, records, wallMs: wall, cpuMs: cpu, fileBytes, headerBytes };
}

function main(): void {
  const o = parseOptions(Bun.argv.slice(2), { mix: "both", spans: "300000", repeat: "3" });
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
      const probe = new RecordBatch(mix, 1);
      const batch = new RecordBatch(mix, Math.max(1, Math.floor(RING_BYTES / probe.length)));
      console.log(
        `\nmix ${mix}: ${batch.records / batch.groups} records/request, ${batch.spans / batch.groups} span(s)/request, ` +
          `${(batch.length / batch.records).toFixed(0)} ring bytes/record; ${batch.groups} requests per 4 MiB pass; ≥${targetSpans} spans per run, best and median of ${repeat}`,
      );
      console.log(`  ${"stage".padEnd(9)} ${"spans/s".padStart(11)} ${"records/s".padStart(11)} ${"µs/span".padStart(8)} ${"cpu µs/span".padStart(11)}   bytes/span in file`);
      for (const stage of STAGES) {
        const runs: StageResult[] = [];
        for (let i = 0; i < repeat; i++) runs.push(runStage(stage, batch, targetSpans, outDir));
        const rate = summarize(runs.map((r) => r.spans / (r.wallMs / 1000)));
        const best = runs.reduce((a, b) => (b.spans / b.wallMs > a.spans / a.wallMs ? b : a));
        const medianRun = runs.find((r) => r.spans / (r.wallMs / 1000) === rate.median) ?? best;
        const perSpan = (medianRun.wallMs * 1000) / medianRun.spans;
        const cpuPerSpan = (medianRun.cpuMs * 1000) / medianRun.spans;
        const bytes =
          medianRun.fileBytes !== undefined ? `${((medianRun.fileBytes - (medianRun.headerBytes ?? 0)) / medianRun.spans).toFixed(1)} (file ${(medianRun.fileBytes / 1e6).toFixed(1)} MB)` : "";
        console.log(
          `  ${stage.padEnd(9)} ${Math.round(rate.median).toLocaleString("en-US").padStart(11)} ${Math.round(medianRun.records / (medianRun.wallMs / 1000)).toLocaleString("en-US").padStart(11)} ` +
            `${perSpan.toFixed(2).padStart(8)} ${cpuPerSpan.toFixed(2).padStart(11)}   ${bytes}` +
            `   (best ${Math.round(rate.max).toLocaleString("en-US")} spans/s)`,
        );
      }
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

main();
