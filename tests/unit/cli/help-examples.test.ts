/**
 * Every EXAMPLES line of `--help` runs as written (issue 13 item 6). The offline ones run here,
 * from a directory holding what they name (cap.cbor, spill.cbor, ./server, ./server-unstripped),
 * with only the collector's host replaced by a local receiver; the live ones (attach, run,
 * doctor, inspect --pid) run in tests/e2e/help-examples.test.ts as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { allExamples, isLive, shellWords, substitute } from "../../harness/help-examples.ts";
import { writeSampleCapture } from "../capture/fixture.ts";
import { startCollector, type TestCollector } from "../export/collector.ts";
import { startGrpcServer, type TestGrpcServer } from "../export/grpc-server.ts";
import { buildGoProgram, FIXTURE, haveGo } from "../binary/go-build.ts";

const ROOT = resolve(import.meta.dir, "..", "..", "..");
const CMD: [string, string[]] = [join(ROOT, "node_modules", ".bin", "bun"), [join(ROOT, "src", "main.ts")]];
const examples = allExamples(CMD);
const offline = examples.filter((e) => !isLive(e));

test("the help texts have examples of both kinds, and each is run by one of the two tests", () => {
  expect(offline.length).toBeGreaterThan(5);
  expect(examples.filter(isLive).length).toBeGreaterThan(2);
  for (const e of examples) expect(["inspect", "offsets", "view", "summary", "convert", "export", "merge", "attach", "run", "doctor"]).toContain(e.args[0] ?? "");
  expect(shellWords(`beetrace x --header 'api-key=...' "a b" # note`)).toEqual(["beetrace", "x", "--header", "api-key=...", "a b"]);
});

describe.skipIf(!haveGo())("offline examples run as written", () => {
  const dir = mkdtempSync(join(tmpdir(), "beetrace-help-examples-"));
  let http: TestCollector;
  let grpc: TestGrpcServer;
  beforeAll(async () => {
    writeSampleCapture(dir, "cap.cbor");
    writeSampleCapture(dir, "spill.cbor");
    writeSampleCapture(dir, "edge.cbor");
    writeSampleCapture(dir, "orders.cbor");
    // An unstripped net/http program serves as both ./server and ./server-unstripped.
    const bin = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode: "default" });
    copyFileSync(bin, join(dir, "server"));
    copyFileSync(bin, join(dir, "server-unstripped"));
    http = startCollector();
    grpc = await startGrpcServer();
  });
  afterAll(async () => {
    http?.stop();
    await grpc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const e of offline) {
    test(e.line, async () => {
      const args = substitute(e.args, { "collector:4318": `127.0.0.1:${http.port}`, "collector:4317": `127.0.0.1:${grpc.port}` });
      const before = { http: http.requests.length, grpc: grpc.calls.length };
      // Asynchronously: the receivers answer from this process's event loop.
      const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
        const p = spawn(CMD[0], [...CMD[1], ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" } });
        let stderr = "";
        p.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        p.on("close", (status) => res({ status, stderr }));
      });
      expect(r).toEqual({ status: 0, stderr: expect.any(String) });
      if (e.args[0] === "export") {
        const sent = http.requests.length - before.http + grpc.calls.length - before.grpc;
        expect(sent).toBeGreaterThan(0);
      }
    }, 180_000);
  }
});
