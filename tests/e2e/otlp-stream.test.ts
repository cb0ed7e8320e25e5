/**
 * @module tests/e2e/otlp-stream — live tracing streamed as OTLP/HTTP to a receiver that decodes
 * with the official OTLP protobuf types, together with a capture file (`--otlp` and `--out`):
 * the same spans arrive both ways, with the target's resource; and a collector outage in the
 * middle of a run loses nothing (spans spill to disk and are sent when it is back).
 * Needs root and Go; skips with the reason otherwise.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { buildFixture, FIXTURES_GO, newestToolchain } from "../harness/go.ts";
import { buildSample, e2eSkipReason, httpGet, killAll, listeningAddress, readSpans, runTracer, waitFor } from "./harness.ts";
import { Receiver } from "./otlp-receiver.ts";

const reason = e2eSkipReason();
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-otlp-stream-"));
const receivers: Receiver[] = [];
const samples: { stop(): void }[] = [];
afterAll(() => {
  for (const r of receivers) r.stop();
  for (const s of samples) s.stop();
  killAll();
  rmSync(work, { recursive: true, force: true });
});

const receiverExe = () => buildFixture({ dir: join(FIXTURES_GO, "otlp-receiver"), toolchain: newestToolchain(), mode: "default" });

/** The sample started with an OTel environment of its own (what the resource must pick up). */
async function startSampleWithEnv(bin: string, env: Record<string, string>) {
  const proc = spawn(bin, ["-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const sample = { pid: proc.pid!, port: 0, stop: () => void proc.kill("SIGTERM") };
  samples.push(sample);
  sample.port = (await waitFor(() => listeningAddress(out), 15_000, "the sample's listening line")).port;
  return sample;
}

describe.skipIf(reason !== undefined)(`OTLP streaming${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("--otlp and --out together: the receiver gets exactly the spans of the capture file, with the target's resource", async () => {
    const receiver = await Receiver.start(await receiverExe());
    receivers.push(receiver);
    const sample = await startSampleWithEnv(await buildSample({ mode: "default" }), {
      OTEL_SERVICE_NAME: "checkout",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=e2e,team=payments",
    });
    const out = join(work, "both.cbor");
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", out, "--otlp", receiver.base]);
    await tracer.started();
    for (let i = 0; i < 7; i++) await httpGet(sample.port, "/hello");
    await httpGet(sample.port, "/proxy");
    await httpGet(sample.port, "/fail");
    tracer.signal("SIGINT");
    expect((await tracer.exit()).code).toBe(0);
    sample.stop();

    const cap = readSpans(out);
    expect(cap.spans.length).toBe(7 + 3 + 1);
    await receiver.waitFor(cap.spans.length);
    expect(receiver.spans.length).toBe(cap.spans.length);
    const got = new Map(receiver.spans.map((s) => [s.spanId, s]));
    for (const s of cap.spans) {
      const r = got.get(s.spanId)!;
      expect(r).toBeDefined();
      expect(r.traceId).toBe(s.traceId);
      expect(r.parentSpanId ?? undefined).toBe(s.parentSpanId);
      expect(r.name).toBe(s.name);
      expect(r.startTimeUnixNano).toBe(s.startTimeUnixNano.toString());
      expect(r.endTimeUnixNano).toBe(s.endTimeUnixNano.toString());
      expect(r.attributes).toEqual(s.attributes);
      expect(r.resource["service.name"]).toBe("checkout");
      expect(r.resource["deployment.environment.name"]).toBe("e2e");
      expect(r.resource["team"]).toBe("payments");
      expect(r.resource["process.pid"]).toBe(sample.pid);
      expect(r.resource["process.runtime.name"]).toBe("go");
      expect(r.resource["telemetry.distro.name"]).toBe("beetrace");
    }
    expect(cap.contents.header.target.serviceName).toBe("checkout");
  }, 180_000);

  test("the collector down for part of the run and back: every span arrives exactly once", async () => {
    const exe = await receiverExe();
    // Take a free port from a first receiver, then stop it: the collector is down at attach time.
    const first = await Receiver.start(exe);
    receivers.push(first);
    const addr = first.base.replace(/^http:\/\//, "");
    await first.stopAndWait();
    const sample = await startSampleWithEnv(await buildSample({ mode: "default" }), {});
    const spillDir = join(work, "spill");
    require("node:fs").mkdirSync(spillDir, { recursive: true });
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--otlp", `http://${addr}`, "--spill-dir", spillDir]);
    await tracer.started();
    for (let i = 0; i < 5; i++) await httpGet(sample.port, "/hello");
    // The exporter notices the outage and spills to disk.
    await waitFor(() => readdirSync(spillDir).some((f) => f.endsWith(".cbor")) || undefined, 60_000, "a spill file");

    const back = await Receiver.start(exe, addr);
    receivers.push(back);
    for (let i = 0; i < 6; i++) await httpGet(sample.port, "/items/" + i);
    await back.waitFor(11, 90_000);
    tracer.signal("SIGINT");
    expect((await tracer.exit()).code).toBe(0);
    sample.stop();
    const ids = back.spans.map((s) => s.spanId);
    expect(new Set(ids).size).toBe(11);
    expect(ids.length).toBe(11);
    // Fully sent: the spill file is gone.
    expect(readdirSync(spillDir).filter((f) => f.endsWith(".cbor"))).toEqual([]);
  }, 240_000);
});
