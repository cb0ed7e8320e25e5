/**
 * Planning without decoding (PlanOptions.deferDecoding, src/trace/plan.ts): a tracer plans from
 * the function table alone, loads its BPF objects, and decodes the entry sites and RETs while
 * the kernel verifies (placeDeferred). Once placed, the plans must be exactly what planning with
 * decoding gives; a function that does not decode disables its probe instead of being attached
 * at its first byte.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { openGoBinary, type BinaryAnalysis } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { PROBES } from "../../../src/probes/registry.ts";
import { placeDeferred, planProbes, type ProbePlan } from "../../../src/trace/plan.ts";
import { buildFixture, fixtureRelease, goMatrixUnavailable, newestToolchain } from "../../harness/go.ts";

const why = goMatrixUnavailable();

async function analysis(fixture: { dir: string; modfile?: string }, toolchain: string, mode: "default" | "ldflags-s-w"): Promise<BinaryAnalysis> {
  const exe = await buildFixture({ ...fixture, toolchain, mode });
  return openGoBinary(new Uint8Array(readFileSync(exe)), exe);
}

const opts = { snapshot: embeddedSnapshot(), allowNearest: false };

function deferredThenPlaced(a: BinaryAnalysis): ProbePlan[] {
  const plans = planProbes(a, PROBES, { ...opts, deferDecoding: true });
  for (const p of plans) placeDeferred(a, p);
  return plans;
}

describe.skipIf(why !== undefined)(`deferred decoding${why ? ` (skipped: ${why})` : ""}`, () => {
  // Every kind of site: net/http end markers and RETs (chain, sample), gRPC and HTTP/3 markers,
  // database/sql RETs of several result shapes (sample), stripped and not.
  const cases: Array<[string, () => Promise<BinaryAnalysis>]> = [
    ["chain, stripped", () => analysis({ dir: "tests/fixtures/go/chain" }, newestToolchain(), "ldflags-s-w")],
    ["sample, with DWARF", () => analysis({ dir: "tests/fixtures/go/sample" }, newestToolchain(), "default")],
    ["grpc 1.85, stripped", () => analysis({ dir: "tests/fixtures/go/grpc/grpc-1.85" }, "go1.26.11", "ldflags-s-w")],
    ["quic-go 0.59, stripped", () => analysis(fixtureRelease("http3", "quic-0.59"), "go1.25.14", "ldflags-s-w")],
  ];
  for (const [name, open] of cases) {
    test(`${name}: placed afterwards, the plans equal those made with decoding`, async () => {
      const a = await open();
      const direct = planProbes(a, PROBES, opts);
      expect(direct.some((p) => p.enabled)).toBe(true);
      expect(deferredThenPlaced(a)).toEqual(direct);
    });
  }

  test("before placement: nothing decoded, the sites on the functions' entries, the RET programs named", async () => {
    const a = await analysis({ dir: "tests/fixtures/go/chain" }, newestToolchain(), "ldflags-s-w");
    const plans = planProbes(a, PROBES, { ...opts, deferDecoding: true });
    const client = plans.find((p) => p.probe.id === "nethttp.client")!;
    expect(client.enabled).toBe(true);
    expect(client.pending?.sites).toBe(true);
    // roundTrip has no end marker: its RETs are left, with the program they get.
    expect(client.pending?.returns.map((r) => r.program)).toEqual([client.probe.uprobes[0]!.returnProgram]);
    expect(client.points.some((p) => p.role === "return")).toBe(false);
    for (const pt of client.points) {
      expect(pt.mnemonic).toBe("");
      expect(pt.vaddr).toBe(a.pcln.find(pt.symbol)!.entry);
    }
    placeDeferred(a, client);
    expect(client.pending).toBeUndefined();
    expect(client.points.filter((p) => p.role === "return").length).toBeGreaterThan(0);
    expect(client.points.every((p) => p.mnemonic !== "")).toBe(true);
    placeDeferred(a, client); // idempotent
    expect(client.points.filter((p) => p.role === "return").length).toBe(planProbes(a, PROBES, opts).find((p) => p.probe.id === "nethttp.client")!.points.filter((p) => p.role === "return").length);
  });

  test("a function whose RETs cannot be found safely disables its probe, the same with or without deferring", async () => {
    const exe = await buildFixture({ dir: "tests/fixtures/go/chain", toolchain: newestToolchain(), mode: "ldflags-s-w" });
    const bytes = new Uint8Array(readFileSync(exe));
    const a = openGoBinary(bytes, exe);
    const plans = planProbes(a, PROBES, { ...opts, deferDecoding: true });
    const client = plans.find((p) => p.probe.id === "nethttp.client")!;
    const fn = client.symbols[0]!;
    expect(fn.resolved && client.pending?.returns.length).toBe(1);
    if (!fn.resolved) return;
    // 0x06 (PUSH ES) is invalid in 64-bit mode (Intel SDM vol. 2, opcode map): past the
    // prologue, the linear sweep for RETs meets it and stops rather than guess a boundary.
    bytes.fill(0x06, fn.fileOffset + 32, fn.fileOffset + 48);
    placeDeferred(a, client);
    expect(client.enabled).toBe(false);
    expect(client.reason).toContain(fn.name);
    expect(client.reason).toContain("invalid x86-64 instruction");
    expect(client.points).toEqual([]);
    const direct = planProbes(a, PROBES, opts).find((p) => p.probe.id === "nethttp.client")!;
    expect(direct.enabled).toBe(false);
    expect(direct.reason).toBe(client.reason!);
  });
});
