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
