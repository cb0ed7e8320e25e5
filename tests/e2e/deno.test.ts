/**
 * @module tests/e2e/deno — beetrace from source under Deno (the design card's second runtime):
 * the same CLI inspects the sample and traces it through Deno's FFI, and the capture file it
 * writes holds the spans of a known workload. Needs root and the deno npm package.
 */
import { PROBES } from "../../src/probes/registry.ts";
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, buildSample, e2eSkipReason, httpGet, killAll, readSpans, runTracer, startSample } from "./harness.ts";

const deno = join(ROOT, "node_modules", ".bin", "deno");
const reason = e2eSkipReason(existsSync(deno) ? [] : ["the deno npm package is not installed (npm ci)"]);
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-deno-"));
afterAll(() => {
  delete process.env.BEETRACE_E2E_RUNTIME;
  killAll();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(reason !== undefined)(`beetrace under Deno${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("inspect --json resolves the probed functions with their return sites", async () => {
    const bin = await buildSample({ mode: "stripped" });
    const r = spawnSync(deno, ["run", "-A", join(ROOT, "src", "main.ts"), "inspect", bin, "--json"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { stripped: boolean; symbols: { name: string; resolved: boolean; returns?: string[]; probeSite?: { emulated: boolean } }[] };
    expect(out.stripped).toBe(true);
    // The probed functions resolve, with their RETs and an emulated entry site; end markers
    // list every name a Go version may use, so only some of them are in any one binary.
    // (the sample links net/http only)
    const probed = PROBES.filter((p) => p.object.name === "nethttp").flatMap((p) => p.uprobes.filter((u) => !u.optional).map((u) => u.symbol));
    for (const s of out.symbols.filter((x) => probed.includes(x.name))) {
      expect({ s: s.name, resolved: s.resolved, emulated: s.probeSite?.emulated }).toEqual({ s: s.name, resolved: true, emulated: true });
      expect(s.returns!.length).toBeGreaterThan(0);
    }
    expect(out.symbols.filter((x) => x.resolved).length).toBeGreaterThan(probed.length);
  }, 120_000);

  test("attach traces a known workload into a capture file", async () => {
    process.env.BEETRACE_E2E_RUNTIME = "deno";
    const sample = await startSample(await buildSample({ mode: "default" }));
    const out = join(work, "deno.cbor");
    const tracer = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
    await tracer.started(60_000);
    for (let i = 0; i < 5; i++) await httpGet(sample.port, "/hello");
    await httpGet(sample.port, "/proxy");
    tracer.signal("SIGINT");
    expect((await tracer.exit()).code).toBe(0);
    delete process.env.BEETRACE_E2E_RUNTIME;
    const cap = readSpans(out);
    expect(cap.spans.filter((s) => s.kind === "server").length).toBe(5 + 2);
    const client = cap.spans.filter((s) => s.kind === "client");
    expect(client.length).toBe(1);
    const parent = cap.spans.find((s) => s.spanId === client[0]!.parentSpanId);
    expect(parent?.name).toBe("GET /proxy");
    expect(cap.end?.reason).toBe("interrupted (SIGINT)");
    // Deno compressed the chunks with node:zlib (Bun uses its own DEFLATE); Deno reads them back too.
    expect(readFileSync(out).indexOf("records-deflate")).toBeGreaterThan(0);
    const viewed = spawnSync(deno, ["run", "-A", join(ROOT, "src", "main.ts"), "view", out], { encoding: "utf8" });
    expect(viewed.status).toBe(0);
    expect(viewed.stdout).toContain("GET /proxy");
    await sample.stop();
  }, 120_000);
});
