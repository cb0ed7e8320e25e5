/**
 * @module tests/e2e/client-errors — a client request that fails in the transport says why:
 * error.type connection_refused / timeout / name_resolution_error, classified in BPF from the
 * error's dynamic types (bpf/include/go_errors.bpf.h; type name offsets from the binary's type
 * data, src/binary/go-typenames.ts), and the reason as the status description.
 */
import { describe, expect, test } from "bun:test";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, type SampleMode, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("client-errors");

describe.skipIf(reason !== undefined)(`transport errors${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const mode of ["default", "pie"] as SampleMode[]) {
    test(`${mode} build: refused, timed out and unresolvable requests carry their cause`, async () => {
      // Accepts and never answers: the request times out waiting for the response headers.
      const held: Socket[] = [];
      const silent = createServer((s) => void held.push(s));
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
      const silentPort = (silent.address() as { port: number }).port;
      const sample = await startSample(await buildSample({ mode }));
      try {
        const out = join(work, `e-${sample.pid}.cbor`);
        const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
        await tr.started();
        // Port 1 on loopback: nothing listens there in the test machine (tcpmux is long gone).
        expect((await httpGet(sample.port, "/dial?addr=127.0.0.1:1")).status).toBe(502);
        expect((await httpGet(sample.port, `/dial?addr=127.0.0.1:${silentPort}&timeout=300`)).status).toBe(502);
        expect((await httpGet(sample.port, "/dial?addr=no-such-host.invalid:80&timeout=3000")).status).toBe(502);
        tr.signal("SIGINT");
        expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
        const clients = readSpans(out)
          .spans.filter((s) => s.kind === "client")
          .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
        expect(clients.map((s) => [s.attributes["server.address"], s.attributes["error.type"], s.status])).toEqual([
          ["127.0.0.1", "connection_refused", { code: "error", message: "connection refused" }],
          ["127.0.0.1", "timeout", { code: "error", message: "deadline exceeded" }],
          ["no-such-host.invalid", "name_resolution_error", { code: "error", message: "DNS lookup failed" }],
        ]);
      } finally {
        await sample.stop();
        for (const s of held) s.destroy();
        silent.close();
      }
    }, 300_000);
  }
});
