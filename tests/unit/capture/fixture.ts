/** @module tests/unit/capture/fixture — a small, realistic capture: header, spans, stats, end. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CaptureHeader } from "../../../src/capture/format.ts";
import { CaptureWriter } from "../../../src/capture/writer.ts";
import { type Span, zeroLosses } from "../../../src/spans/model.ts";

export const T0 = 1_700_000_000_123_456_789n;

export function sampleHeader(): CaptureHeader {
  return {
    type: "header",
    format: 1,
    tracer: { name: "beetrace", version: "0.1.0" },
    createdAt: T0 - 5_000_000n,
    host: { name: "web-1", arch: "amd64", kernel: "6.1.0-18-amd64" },
    target: {
      pid: 4242,
      exe: "/srv/shop/server",
      goVersion: "go1.22.3",
      modules: [{ path: "google.golang.org/grpc", version: "v1.64.0" }],
      serviceName: "shop",
    },
    clock: { realtimeNs: T0 - 5_000_000n, boottimeNs: 1_000_000_000n, offsetNs: T0 - 5_000_000n - 1_000_000_000n },
    probes: [
      { id: "nethttp.server", attached: true, offsets: [{ field: "net/http.Request.Method", offset: 0, source: "dwarf" }] },
      { id: "grpc.client", attached: false, reason: "symbol not found: google.golang.org/grpc.(*ClientConn).Invoke", offsets: [] },
    ],
  };
}

/** Trace A: GET /cart (server) → GET inventory (client) and SELECT (client); trace B: one error span. */
export function sampleSpans(): Span[] {
  const scope = { name: "beetrace/net/http", version: "0.1.0" };
  const A = "4bf92f3577b34da6a3ce929d0e0e4736";
  const B = "0af7651916cd43dd8448eb211c80319c";
  return [
    {
      traceId: A, spanId: "00f067aa0ba902b7", parentSpanId: "b7ad6b7169203331", name: "GET /cart/{id}", kind: "server",
      startTimeUnixNano: T0, endTimeUnixNano: T0 + 1_234_000n,
      attributes: { "http.request.method": "GET", "url.path": "/cart/7", "http.route": "/cart/{id}", "http.response.status_code": 200 },
      status: { code: "unset" }, scope,
    },
    {
      traceId: A, spanId: "1111111111111111", parentSpanId: "00f067aa0ba902b7", name: "GET", kind: "client",
      startTimeUnixNano: T0 + 100_000n, endTimeUnixNano: T0 + 600_000n,
      attributes: { "http.request.method": "GET", "url.full": "http://inventory:8080/items/7", "server.address": "inventory", "http.response.status_code": 200 },
      status: { code: "unset" }, scope,
    },
    {
      traceId: A, spanId: "2222222222222222", parentSpanId: "00f067aa0ba902b7", name: "SELECT carts", kind: "client",
      startTimeUnixNano: T0 + 700_000n, endTimeUnixNano: T0 + 712_300n,
      attributes: { "db.operation.name": "SELECT" }, status: { code: "ok" }, scope: { name: "beetrace/database/sql", version: "0.1.0" },
    },
    {
      traceId: B, spanId: "3333333333333333", name: "POST /checkout", kind: "server",
      startTimeUnixNano: T0 + 2_000_000_000n, endTimeUnixNano: T0 + 3_500_000_000n,
      attributes: { "http.request.method": "POST", "url.path": "/checkout", "http.response.status_code": 503 },
      status: { code: "error", message: "HTTP 503" }, scope,
    },
  ];
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "beetrace-capture-"));
}

/** Write the sample capture with the real writer; returns its path. */
export function writeSampleCapture(dir: string, name = "cap.cbor"): string {
  const p = path.join(dir, name);
  const w = CaptureWriter.open(p, sampleHeader(), { flushIntervalMs: 0 });
  const spans = sampleSpans();
  w.span(spans[0]!);
  w.span(spans[1]!);
  w.stats(T0 + 1_000_000_000n, { ...zeroLosses(), ringbufFull: 2 });
  w.span(spans[2]!);
  w.span(spans[3]!);
  w.close("duration", T0 + 4_000_000_000n, { ...zeroLosses(), ringbufFull: 2, incomplete: 1 });
  return p;
}

/**
 * Runs `body` (TypeScript, after `imports`) in a child process, waits until it prints "flushed",
 * then SIGKILLs it: what a killed tracer leaves on disk. `imports` maps names to repository
 * files (e.g. { CaptureSink: "src/trace/output.ts" }).
 */
export async function runAndKill(name: string, imports: Record<string, string>, body: string): Promise<void> {
  const root = path.resolve(import.meta.dir, "../../..");
  const byFile = new Map<string, string[]>();
  for (const [what, file] of Object.entries(imports)) byFile.set(file, [...(byFile.get(file) ?? []), what]);
  const head = [...byFile].map(([file, names]) => `import { ${names.join(", ")} } from ${JSON.stringify(path.join(root, file))};`).join("\n");
  const script = path.join(os.tmpdir(), `beetrace-kill-${name}-${process.pid}.ts`);
  fs.writeFileSync(script, `${head}\n${body}\nprocess.stdout.write("flushed\\n");\nsetInterval(() => {}, 1000);\n`);
  try {
    const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
    const reader = child.stdout.getReader();
    let seen = "";
    while (!seen.includes("flushed\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    if (seen !== "flushed\n") throw new Error(`the child did not get to "flushed" (printed ${JSON.stringify(seen)})`);
    child.kill("SIGKILL");
    if ((await child.exited) === 0) throw new Error("the child exited 0 instead of being killed");
  } finally {
    fs.rmSync(script, { force: true });
  }
}

/** What killedSinkBody's script imports (runAndKill). */
export const KILL_IMPORTS = {
  CaptureSink: "src/trace/output.ts",
  sampleHeader: "tests/unit/capture/fixture.ts",
  serverRecord: "tests/unit/capture/records.ts",
  typicalServer: "tests/unit/capture/records.ts",
};

/** A tracer's capture sink at `file`: three flushed ticks of `perTick` records, then one record never flushed. */
export function killedSinkBody(file: string, perTick: number, compress: boolean): string {
  return `const sink = new CaptureSink(${JSON.stringify(file)}, { host: "h", pid: 1, exe: "x", start: new Date(0) }, sampleHeader(), {}, { flushIntervalMs: 0, compress: ${compress} });
for (let tick = 0; tick < 3; tick++) {
  for (let i = 0; i < ${perTick}; i++) sink.record(serverRecord(typicalServer(tick * ${perTick} + i)), () => undefined);
  sink.flush();
}
sink.record(serverRecord(typicalServer(9999)), () => undefined); // this tick is never flushed`;
}
