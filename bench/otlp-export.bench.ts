/**
 * @module bench/otlp-export.bench — `beetrace export` throughput, OTLP/gRPC vs OTLP/HTTP protobuf,
 * from source (bun src/main.ts) and from the compiled dist/beetrace, on the same capture file.
 *
 * The receiver is tests/fixtures/go/otlp-grpc-receiver, which serves either protocol (-http) with
 * the same protobuf decoding, so only the transport differs. Two receiver modes: printing every
 * span as JSON (the e2e tests' mode) and -discard (decode, print one line per request), which
 * leaves our side as the limit. Each run is a whole command: process start, reading and
 * decoding the capture file, encoding, sending in batches of 512, waiting for every answer.
 * Spans/s = spans / wall time of the command; the median of --repeat runs is reported.
 * First, in this process: encoding alone, and each transport alone (GrpcTransport /
 * HttpTransport sending the same encoded 512-span request 200 times to a -discard receiver).
 *
 *   node_modules/.bin/bun bench/otlp-export.bench.ts [--spans 100000] [--repeat 3] [--compiled dist/beetrace]
 *
 * Needs the Go toolchain (the receiver is built like the e2e tests build it). Run
 * `node_modules/.bin/bun build.ts` first for the compiled numbers (skipped when the file is missing).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFixture, FIXTURES_GO, newestToolchain, REPO_ROOT } from "../tests/harness/go.ts";
import { Receiver } from "../tests/e2e/otlp-receiver.ts";
import { makeSpans } from "../tests/unit/export/collector.ts";
import { sampleHeader } from "../tests/unit/capture/fixture.ts";
import { CaptureWriter } from "../src/capture/writer.ts";
import { zeroLosses } from "../src/spans/model.ts";
import { encodeTraceRequest } from "../src/export/otlp.ts";
import { GrpcTransport } from "../src/export/otlp-grpc.ts";
import { HttpTransport } from "../src/export/otlp-http.ts";
import { intOption, machineLine, parseOptions, summarize } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { spans: "100000", repeat: "3", compiled: join(REPO_ROOT, "dist", "beetrace") });
const n = intOption(opts.spans, "spans");
const repeat = Math.max(1, intOption(opts.repeat, "repeat"));

const work = mkdtempSync(join(tmpdir(), "beetrace-otlp-bench-"));
try {
  const receiverExe = await buildFixture({ dir: join(FIXTURES_GO, "otlp-grpc-receiver"), toolchain: newestToolchain(), mode: "default" });
  const capture = join(work, "cap.cbor");
  const w = CaptureWriter.open(capture, sampleHeader(), { flushIntervalMs: 0 });
  const spans = makeSpans(n);
  for (const s of spans) w.span(s);
  w.close("duration", spans[0]!.endTimeUnixNano, zeroLosses());

  const runners: [string, string[]][] = [["source (bun src/main.ts)", [process.execPath, join(REPO_ROOT, "src", "main.ts")]]];
  if (existsSync(opts.compiled)) runners.push(["compiled dist/beetrace", [opts.compiled]]);
  else console.log(`(no ${opts.compiled}: compiled runs skipped; run node_modules/.bin/bun build.ts)`);

  console.log(machineLine());
  const batch = makeSpans(512);
  const res = { "service.name": "bench" };
  const body = encodeTraceRequest(batch, res, "protobuf");
  const calls = 200;
  const enc: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    for (let k = 0; k < calls; k++) encodeTraceRequest(batch, res, "protobuf");
    enc.push(((calls * 512) / (performance.now() - t0)) * 1000);
  }
  const only: string[] = [`encoding ${Math.round(summarize(enc).median)}`];
  for (const protocol of ["grpc", "http/protobuf"] as const) {
    const r = await Receiver.start(receiverExe, "127.0.0.1:0", protocol === "grpc" ? ["-discard"] : ["-http", "-discard"]);
    const t = protocol === "grpc" ? new GrpcTransport({ endpoint: r.base }) : new HttpTransport(`${r.base}/v1/traces`, "http/protobuf", {});
    const rates: number[] = [];
    try {
      for (let i = 0; i < repeat; i++) {
        const t0 = performance.now();
        for (let k = 0; k < calls; k++) {
          const a = await t.send(body, { compressed: false, timeoutMs: 10_000, signal: undefined });
          if (a.kind !== "ok") throw new Error(`${protocol} transport: ${a.reason}`);
        }
        rates.push(((calls * 512) / (performance.now() - t0)) * 1000);
      }
    } finally {
      t.close();
      await r.stopAndWait();
    }
    only.push(`${protocol} transport ${Math.round(summarize(rates).median)}`);
  }
  console.log(`in-process, one ${body.byteLength}-byte 512-span request × ${calls} (spans/s): ${only.join(", ")}`);
  console.log(`${n} spans, batches of 512, median of ${repeat} runs (spans/s, whole command)`);
  for (const [runner, cmd] of runners) {
    for (const printing of [false, true]) {
      const row: string[] = [];
      for (const protocol of ["grpc", "http/protobuf"] as const) {
        const rates: number[] = [];
        for (let i = 0; i < repeat; i++) {
          const args = [...(protocol === "grpc" ? [] : ["-http"]), ...(printing ? [] : ["-discard"])];
          const r = await Receiver.start(receiverExe, "127.0.0.1:0", args);
          try {
            const t0 = performance.now();
            const p = Bun.spawn([...cmd, "export", capture, "--otlp", r.base, "--protocol", protocol], { stdout: "ignore", stderr: "pipe" });
            const code = await p.exited;
            const ms = performance.now() - t0;
            if (code !== 0) throw new Error(`${runner} ${protocol}: exit ${code}: ${await new Response(p.stderr).text()}`);
            const got = printing ? r.spans.length : r.spans.reduce((a, s) => a + Number((s as unknown as { count: number }).count), 0);
            if (got !== n) throw new Error(`${runner} ${protocol}: the receiver got ${got} of ${n} spans`);
            rates.push((n / ms) * 1000);
          } finally {
            await r.stopAndWait();
          }
        }
        row.push(`${protocol} ${Math.round(summarize(rates).median)}`);
      }
      console.log(`${runner}, receiver ${printing ? "printing every span" : "not printing (-discard)"}: ${row.join(", ")}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
