/** @module tests/unit/cli/doctor — `beetrace doctor` rendering, verdict and exit code, from fake checks (no root, no kernel). */
import { describe, expect, test } from "bun:test";
import {
  blockingProblem,
  doctorCommand,
  fromFeature,
  renderDoctorJson,
  renderDoctorText,
  uprobeMultiCheck,
  type DoctorCheck,
  type DoctorFacts,
} from "../../../src/cli/doctor.ts";
import { EXIT_CODES, TracerError } from "../../../src/errors.ts";
import { costCodeArm64, costCodeX86, uprobeCostDetail } from "../../../src/bpf/features.ts";
import { entryProbeSite, classifyProbeInstruction } from "../../../src/binary/probe-sites.ts";

const OK: DoctorCheck[] = [
  { name: "privileges", status: "ok", detail: "effective capabilities include CAP_BPF, CAP_PERFMON" },
  { name: "kernel BTF", status: "ok", detail: "/sys/kernel/btf/vmlinux present" },
  { name: "uprobe calibration", status: "ok", detail: "uprobe on getpgid fired 7 times for 7 calls" },
  { name: "uprobe_multi links", status: "ok", detail: "one link per probe; pid filter covers all threads (getpgid: 3/3 calls on the main thread, 2/2 on other threads)" },
];

const COVERED = { oldest: "1.21.0", newest: "1.27.4", count: 57 };

function facts(checks: DoctorCheck[], coverage: DoctorFacts["offsets"]["coverage"] | "none" = COVERED): DoctorFacts {
  return {
    version: "0.1.0",
    checks,
    assets: { origin: "embedded", libbpf: "1.1 (memfd)", bpfObjects: ["calibrate", "nethttp"] },
    offsets: { module: "std", coverage: coverage === "none" ? undefined : coverage },
  };
}

const noPrivileges: DoctorCheck = {
  name: "privileges",
  status: "missing",
  detail: "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN",
  fix: "run as root (sudo)",
  blocks: "permission_denied",
};
const noBtf: DoctorCheck = { name: "kernel BTF", status: "missing", detail: "/sys/kernel/btf/vmlinux missing", fix: "use a kernel with BTF" };
const lockdown: DoctorCheck = { name: "kernel lockdown", status: "missing", detail: "lockdown is 'confidentiality'", fix: "boot without lockdown", blocks: "kernel_unsupported" };
const skippedCal: DoctorCheck = { name: "uprobe calibration", status: "skipped", detail: "not checked: needs BPF privileges" };

describe("doctor text", () => {
  test("all ok: one aligned line per check, assets, coverage, a positive verdict", () => {
    expect(renderDoctorText(facts(OK)).split("\n")).toEqual([
      "beetrace 0.1.0 doctor",
      "",
      "checks:",
      "  ok      privileges          effective capabilities include CAP_BPF, CAP_PERFMON",
      "  ok      kernel BTF          /sys/kernel/btf/vmlinux present",
      "  ok      uprobe calibration  uprobe on getpgid fired 7 times for 7 calls",
      "  ok      uprobe_multi links  one link per probe; pid filter covers all threads (getpgid: 3/3 calls on the main thread, 2/2 on other threads)",
      "",
      "assets:",
      "  origin       embedded in this executable",
      "  libbpf       1.1 (memfd)",
      "  BPF objects  calibrate, nethttp",
      "",
      "offsets snapshot:",
      "  std: go1.21.0 … go1.27.4 (57 versions; stripped binaries of other versions need --offsets FILE)",
      "",
      "verdict: tracing can work on this machine",
      "",
    ]);
  });

  test("missing checks show their fix; advice-only ones are 'warn'; skipped ones have no fix; no coverage is said plainly", () => {
    const text = renderDoctorText(facts([noPrivileges, noBtf, skippedCal], "none"));
    expect(text).toContain(
      [
        "  MISSING privileges          none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN",
        "                              fix: run as root (sudo)",
        "  warn    kernel BTF          /sys/kernel/btf/vmlinux missing",
        "                              fix: use a kernel with BTF",
        "  skipped uprobe calibration  not checked: needs BPF privileges",
        "",
      ].join("\n"),
    );
    expect(text).toContain("  std: no Go versions covered — stripped binaries need --offsets FILE; unstripped ones use their own DWARF\n");
    expect(text.endsWith("verdict: tracing cannot work here (exit 4, permission_denied)\n")).toBe(true);
  });

  test("source checkouts say where the assets come from", () => {
    const f = facts(OK);
    f.assets = { origin: "source", libbpf: "unavailable: cannot load libbpf", bpfObjects: [] };
    const text = renderDoctorText(f);
    expect(text).toContain("  origin       source checkout (built files under .cache/)\n  libbpf       unavailable: cannot load libbpf\n  BPF objects  none\n");
  });
});

describe("uprobe_multi check", () => {
  test("supported → ok, saying what that buys", () => {
    expect(uprobeMultiCheck({ supported: true, detail: "pid filter covers all threads (…)" })).toEqual({
      name: "uprobe_multi links",
      status: "ok",
      detail: "one link per probe; pid filter covers all threads (…)",
    });
  });

  test("not supported → advice only ('warn'): why, the fallback, and the fix; tracing can still work", () => {
    const c = uprobeMultiCheck({
      supported: false,
      detail: "the kernel's uprobe_multi pid filter matches only the main thread, not the whole process (getpgid: 3/3 calls on the main thread, 0/2 on other threads)",
      fix: "Linux 6.10+",
    });
    expect(c).toEqual({
      name: "uprobe_multi links",
      status: "missing",
      detail:
        "not available: the kernel's uprobe_multi pid filter matches only the main thread, not the whole process (getpgid: 3/3 calls on the main thread, 0/2 on other threads) — using one perf uprobe per instruction (slower attach/detach)",
      fix: "Linux 6.10+",
    });
    expect(c.blocks).toBeUndefined();
    const f = facts([...OK.slice(0, 3), c]);
    expect(blockingProblem(f)).toBeUndefined();
    const text = renderDoctorText(f);
    expect(text).toContain("  warn    uprobe_multi links  not available: the kernel's uprobe_multi pid filter matches only the main thread");
    expect(text).toContain("\n                              fix: Linux 6.10+\n");
    expect(text.endsWith("verdict: tracing can work on this machine\n")).toBe(true);
  });

  test("a forced answer has no fix line", () => {
    expect(uprobeMultiCheck({ supported: false, detail: "forced off" })).toEqual({
      name: "uprobe_multi links",
      status: "missing",
      detail: "not available: forced off — using one perf uprobe per instruction (slower attach/detach)",
    });
  });
});

describe("uprobe cost check", () => {
  const cost = { steppedNs: 12_345, emulatedNs: 1_050, calls: 2000, rounds: 5, stepped: "lea", emulated: "jbe" };

  test("the detail line gives both per-hit costs, their ratio and the trial size", () => {
    expect(uprobeCostDetail(cost)).toBe("per probe hit: single-stepped instruction (lea) 12.3 µs, emulated (jbe) 1.1 µs (12x); best of 5 × 2000 calls");
    expect(uprobeCostDetail({ ...cost, emulatedNs: 0 })).toBe("per probe hit: single-stepped instruction (lea) 12.3 µs, emulated (jbe) 0.0 µs; best of 5 × 2000 calls");
  });

  test("rendered as one ok line; a failed measurement is advice only ('warn') and keeps the verdict; JSON carries the numbers", async () => {
    const ok: DoctorCheck = { name: "uprobe cost", status: "ok", detail: uprobeCostDetail(cost) };
    const f = { ...facts([...OK.slice(0, 3), ok, OK[3]!]), uprobeCost: cost };
    expect(renderDoctorText(f)).toContain("  ok      uprobe cost         per probe hit: single-stepped instruction (lea) 12.3 µs, emulated (jbe) 1.1 µs (12x); best of 5 × 2000 calls\n");
    expect(JSON.parse(renderDoctorJson(f)).uprobeCost).toEqual(cost);
    const failed = fromFeature({ name: "uprobe cost", ok: false, detail: "not measured: memfd_create: EPERM" }, undefined);
    const g = facts([...OK, failed]);
    expect(renderDoctorText(g)).toContain("  warn    uprobe cost         not measured: memfd_create: EPERM\n");
    expect(blockingProblem(g)).toBeUndefined();
  });

  // The calibration code's probe sites must be what the probe-site rules say: the first one
  // single-stepped, the second emulated — checked with the same decoders the tracer uses.
  test("x86-64 calibration code: 'step' starts with a single-stepped LEA, 'emulated' with an emulated JBE, loops call them", () => {
    const c = costCodeX86();
    expect(classifyProbeInstruction("x86_64", c.bytes, 0, c.sites.step)).toMatchObject({ mnemonic: "lea", emulated: false });
    expect(classifyProbeInstruction("x86_64", c.bytes, 0, c.sites.emulated)).toMatchObject({ mnemonic: "jbe", emulated: true, kind: "branch" });
    for (const [kind, target] of [["step", 96], ["emulated", 112], ["bare", 128]] as const) {
      const at = c.loops[kind];
      expect(classifyProbeInstruction("x86_64", c.bytes, 0, at + 5).text).toBe(`call 0x${target.toString(16)}`);
      expect(classifyProbeInstruction("x86_64", c.bytes, 0, at + 13).text).toBe(`jne 0x${(at + 5).toString(16)}`);
      expect(classifyProbeInstruction("x86_64", c.bytes, 0, at + 3).text).toBe(`je 0x${(at + 15).toString(16)}`);
      expect(classifyProbeInstruction("x86_64", c.bytes, 0, at + 17).mnemonic).toBe("ret");
    }
    expect(entryProbeSite("x86_64", c.bytes.subarray(c.sites.step), c.sites.step).emulated).toBe(false);
  });

  test("arm64 calibration code: 'step' starts with a stepped ADD, 'emulated' with a simulated B.LS", () => {
    const c = costCodeArm64();
    expect(classifyProbeInstruction("aarch64", c.bytes, 0, c.sites.step)).toMatchObject({ mnemonic: "add", emulated: false });
    expect(classifyProbeInstruction("aarch64", c.bytes, 0, c.sites.emulated)).toMatchObject({ mnemonic: "b.ls", emulated: true });
    const v = new DataView(c.bytes.buffer);
    for (const [kind, target] of [["step", 96], ["emulated", 112], ["bare", 128]] as const) {
      const at = c.loops[kind];
      const bl = v.getUint32(at + 8, true);
      expect((bl & 0xfc000000) >>> 0).toBe(0x94000000);
      expect(at + 8 + (bl & 0x3ffffff) * 4).toBe(target);
      // cbz x0 → L+20 and b.ne → L+8 (imm19 at bits 23:5, signed)
      const imm19 = (w: number) => (((w >>> 5) & 0x7ffff) << 13) >> 13;
      expect(at + 4 + imm19(v.getUint32(at + 4, true)) * 4).toBe(at + 20);
      expect(at + 16 + imm19(v.getUint32(at + 16, true)) * 4).toBe(at + 8);
      expect(classifyProbeInstruction("aarch64", c.bytes, 0, at + 24).mnemonic).toBe("ret");
    }
  });
});

describe("doctor verdict and exit code", () => {
  test("nothing blocking (advice only) → no problem", () => {
    expect(blockingProblem(facts([...OK, noBtf]))).toBeUndefined();
  });

  test("the FIRST blocking check decides the code; the others are listed as detail", () => {
    const p = blockingProblem(facts([noBtf, lockdown, noPrivileges]))!;
    expect(p).toBeInstanceOf(TracerError);
    expect(p.code).toBe("kernel_unsupported");
    expect(p.message).toBe("tracing cannot work here: kernel lockdown: lockdown is 'confidentiality' (and 1 more blocking problem)");
    expect(p.hint).toBe("boot without lockdown");
    expect(p.detail).toEqual(["privileges: none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN — fix: run as root (sudo)"]);
    expect(blockingProblem(facts([noPrivileges, lockdown]))!.code).toBe("permission_denied");
  });

  test("fromFeature keeps ok checks plain and attaches the blocking code only to failures", () => {
    expect(fromFeature({ name: "x", ok: true, detail: "fine" }, "kernel_unsupported")).toEqual({ name: "x", status: "ok", detail: "fine" });
    expect(fromFeature({ name: "x", ok: false, detail: "bad", fix: "f" }, undefined)).toEqual({ name: "x", status: "missing", detail: "bad", fix: "f" });
    expect(fromFeature({ name: "x", ok: false, detail: "bad" }, "kernel_unsupported")).toEqual({ name: "x", status: "missing", detail: "bad", blocks: "kernel_unsupported" });
  });

  test("doctorCommand prints the report, then throws the blocking problem (main.ts turns it into the exit code)", async () => {
    let out = "";
    const write = async (s: string) => void (out += s);
    await doctorCommand({}, { gather: () => facts(OK), write });
    expect(out).toContain("verdict: tracing can work on this machine");

    out = "";
    const err = await doctorCommand({}, { gather: () => facts([noPrivileges]), write }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TracerError);
    expect(EXIT_CODES[(err as TracerError).code]).toBe(4);
    expect(out).toContain("MISSING privileges");
  });

  test("--json: one parseable object with every check, ok flag and exit code", async () => {
    let out = "";
    await doctorCommand({ json: true }, { gather: () => facts([noPrivileges, skippedCal]), write: async (s) => void (out += s) }).catch(() => {});
    expect(out.endsWith("\n")).toBe(true);
    expect(out.trimEnd().includes("\n")).toBe(false);
    const j = JSON.parse(out);
    expect(j).toEqual({
      ...facts([noPrivileges, skippedCal]),
      ok: false,
      exitCode: 4,
      blocking: {
        code: "permission_denied",
        message: "tracing cannot work here: privileges: none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN",
        hint: "run as root (sudo)",
      },
    });
    expect(JSON.parse(renderDoctorJson(facts(OK)))).toMatchObject({ ok: true, exitCode: 0 });
    expect(JSON.parse(renderDoctorJson(facts(OK))).blocking).toBeUndefined();
  });
});
