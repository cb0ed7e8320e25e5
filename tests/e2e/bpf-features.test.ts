/** @module tests/e2e/bpf-features — doctor checks, uprobe self-calibration and the unprivileged error (root). */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { calibrateUprobe, checkFeatures } from "../../src/bpf/features.ts";
import { openHandleCount } from "../../src/bpf/handles.ts";
import { libbpf } from "../../src/bpf/libbpf.ts";
import { buildRingTestObject, CACHE, skipReason } from "./bpf-harness.ts";

const reason = skipReason();
const OBJECT_TS = join(import.meta.dir, "..", "..", "src", "bpf", "object.ts");

describe.skipIf(reason !== undefined)(`feature probes on this machine${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("as root every check passes (this machine has BTF, the uprobe PMU and ring buffers)", () => {
    const checks = checkFeatures();
    expect(checks.map((c) => c.name)).toEqual([
      "privileges",
      "libbpf",
      "kernel BTF",
      "uprobe PMU",
      "BPF ring buffer",
      "kernel lockdown",
      "tracefs",
      "perf_event_paranoid",
      "unprivileged_bpf_disabled",
    ]);
    for (const c of checks) expect({ name: c.name, ok: c.ok, fix: c.fix }).toEqual({ name: c.name, ok: true, fix: undefined });
    expect(checks.find((c) => c.name === "libbpf")!.detail).toBe(`libbpf ${libbpf().version} (${libbpf().source})`);
  });

  test("calibration: a uprobe on libc's getpgid in this process counts exactly our calls", () => {
    const c = calibrateUprobe(buildRingTestObject(), { program: "on_call", counter: "hits", calls: 11 });
    expect(c).toEqual({ name: "uprobe calibration", ok: true, detail: "uprobe on getpgid fired 11 times for 11 calls" });
    expect(openHandleCount()).toBe(0);
  });

  test("calibration with a program that does not exist reports why, without leaking", () => {
    const c = calibrateUprobe(buildRingTestObject(), { program: "missing", counter: "hits" });
    expect(c.ok).toBe(false);
    expect(c.detail).toBe("BPF object calibrate has no program 'missing'");
    expect(openHandleCount()).toBe(0);
  });

  test.skipIf(spawnSync("sh", ["-c", "command -v setpriv"]).status !== 0)(
    "without privileges, load fails as permission_denied with the capability hint",
    () => {
      buildRingTestObject();
      const script = `
        import { BpfObject } from ${JSON.stringify(OBJECT_TS)};
        import { readFileSync } from "node:fs";
        try { using o = BpfObject.open(new Uint8Array(readFileSync(process.argv[1])), "np"); o.load(); console.log("{}"); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`;
      const r = spawnSync(
        "setpriv",
        ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
          process.execPath, "-e", script, join(CACHE, "ring-test.bpf.o")],
        { encoding: "utf8" },
      );
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toEqual({
        code: "permission_denied",
        message: "load BPF object np: operation not permitted (EPERM)",
        hint: "run as root or grant CAP_BPF,CAP_PERFMON",
      });
    },
  );
});
