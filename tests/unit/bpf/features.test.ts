/** @module tests/unit/bpf/features — parsers and judgments of the doctor feature checks, on sample /proc and /sys text. */
import { describe, expect, test } from "bun:test";
import {
  CAP_BPF,
  CAP_PERFMON,
  CAP_SYS_ADMIN,
  fileOffsetInMaps,
  hasCap,
  judgeUprobeMultiTrial,
  lockdownCheck,
  parseCapEff,
  parseIntFile,
  parseLockdown,
  perfParanoidCheck,
  privilegeCheck,
  unprivilegedBpfCheck,
  UPROBE_MULTI_PID_FIX,
  UPROBE_MULTI_TRIAL,
  type UprobeMultiTrial,
} from "../../../src/bpf/features.ts";

const status = (capEff: string) => `Name:\tbeetrace\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

describe("capabilities", () => {
  test("parseCapEff reads the hex mask; junk gives undefined", () => {
    expect(parseCapEff(status("000001ffffffffff"))).toBe(0x1ffffffffffn);
    expect(parseCapEff("CapEff:\tzzzz\n")).toBeUndefined();
    expect(parseCapEff("")).toBeUndefined();
  });

  test("root's full set is enough", () => {
    const c = privilegeCheck(status("000001ffffffffff"));
    expect(c.ok).toBe(true);
    expect(c.detail).toBe("effective capabilities include CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN");
    expect(c.fix).toBeUndefined();
  });

  test("CAP_BPF+CAP_PERFMON is enough; CAP_BPF alone is not", () => {
    const both = (1n << BigInt(CAP_BPF)) | (1n << BigInt(CAP_PERFMON));
    expect(privilegeCheck(status(both.toString(16))).ok).toBe(true);
    const bpfOnly = privilegeCheck(status((1n << BigInt(CAP_BPF)).toString(16)));
    expect(bpfOnly.ok).toBe(false);
    expect(bpfOnly.fix).toContain("CAP_BPF,CAP_PERFMON");
  });

  test("CAP_SYS_ADMIN alone is enough (kernels before 5.8 have no CAP_BPF)", () => {
    expect(hasCap(1n << 21n, CAP_SYS_ADMIN)).toBe(true);
    expect(privilegeCheck(status((1n << 21n).toString(16))).ok).toBe(true);
  });

  test("no capabilities, or unreadable status, is not ok and says how to fix it", () => {
    expect(privilegeCheck(status("0000000000000000"))).toEqual({
      name: "privileges",
      ok: false,
      detail: "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN",
      fix: "run as root (sudo) or grant CAP_BPF,CAP_PERFMON (e.g. setcap cap_bpf,cap_perfmon+ep beetrace)",
    });
    expect(privilegeCheck(undefined).ok).toBe(false);
  });
});

describe("sysctl and securityfs text", () => {
  test("lockdown modes", () => {
    expect(parseLockdown("none [integrity] confidentiality\n")).toBe("integrity");
    expect(lockdownCheck("[none] integrity confidentiality\n").ok).toBe(true);
    expect(lockdownCheck("none integrity [confidentiality]\n").ok).toBe(false);
    expect(lockdownCheck(undefined)).toEqual({ name: "kernel lockdown", ok: true, detail: "no lockdown LSM (/sys/kernel/security/lockdown absent)" });
  });

  test("integer files", () => {
    expect(parseIntFile("2\n")).toBe(2);
    expect(parseIntFile("-1\n")).toBe(-1);
    expect(parseIntFile("two")).toBeUndefined();
    expect(perfParanoidCheck("2\n", true).ok).toBe(true);
    expect(perfParanoidCheck("2\n", false).ok).toBe(false);
    expect(unprivilegedBpfCheck("0\n", false).ok).toBe(true);
    expect(unprivilegedBpfCheck("2\n", false).fix).toBe("run as root or grant CAP_BPF,CAP_PERFMON");
  });
});

describe("fileOffsetInMaps", () => {
  const maps = [
    "55d0c0000000-55d0c0001000 r--p 00000000 fd:01 1234 /usr/bin/prog",
    "7f0000000000-7f0000028000 r--p 00000000 fd:01 42 /usr/lib/x86_64-linux-gnu/libc.so.6",
    "7f0000028000-7f000019d000 r-xp 00028000 fd:01 42 /usr/lib/x86_64-linux-gnu/libc.so.6",
    "7f00001a0000-7f00001a1000 rw-p 00000000 00:00 0 ",
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]",
  ].join("\n");

  test("maps an address to path + file offset through its mapping's offset", () => {
    expect(fileOffsetInMaps(maps, 0x7f0000028000 + 0x1234)).toEqual({
      path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
      fileOffset: 0x28000 + 0x1234,
    });
  });

  test("anonymous and unmapped addresses are unknown, not guessed", () => {
    expect(fileOffsetInMaps(maps, 0x7f00001a0010)).toBeUndefined();
    expect(fileOffsetInMaps(maps, 0x7ffd00000010)).toBeUndefined();
    expect(fileOffsetInMaps(maps, 0x1000)).toBeUndefined();
  });
});

describe("judgeUprobeMultiTrial: uprobe_multi is used only when its pid filter covers every thread", () => {
  const trial = (mainHits: number, threadHits: number): UprobeMultiTrial => ({
    fn: "getpgid",
    mainCalls: 3,
    mainHits: BigInt(mainHits),
    threadCalls: 2,
    threadHits: BigInt(threadHits),
  });

  test("every call seen on both the main and the other threads → supported, counts in the detail", () => {
    const t = trial(3, 2);
    expect(judgeUprobeMultiTrial(t)).toEqual({
      supported: true,
      detail: "pid filter covers all threads (getpgid: 3/3 calls on the main thread, 2/2 on other threads)",
      trial: t,
    });
  });

  test("extra hits (another thread of ours calling getpgid) do not hide anything and are accepted", () => {
    expect(judgeUprobeMultiTrial(trial(4, 5)).supported).toBe(true);
  });

  test("main thread seen, other threads not → not supported: the filter matches a thread, not the process", () => {
    const j = judgeUprobeMultiTrial(trial(3, 0));
    expect(j.supported).toBe(false);
    expect(j.detail).toBe(
      "the kernel's uprobe_multi pid filter matches only the main thread, not the whole process (getpgid: 3/3 calls on the main thread, 0/2 on other threads)",
    );
    expect(j.fix).toBe(UPROBE_MULTI_PID_FIX);
    expect(j.fix).toContain("46ba0e49b642");
  });

  test("some other-thread calls lost → not supported", () => {
    const j = judgeUprobeMultiTrial(trial(3, 1));
    expect(j.supported).toBe(false);
    expect(j.detail).toBe("a pid-filtered uprobe_multi link missed calls on other threads (getpgid: 3/3 calls on the main thread, 1/2 on other threads)");
  });

  test("main-thread calls missed → not supported, whatever the other threads saw", () => {
    for (const [m, o] of [[0, 0], [2, 2], [0, 2]] as const) {
      const j = judgeUprobeMultiTrial(trial(m, o));
      expect({ m, o, supported: j.supported }).toEqual({ m, o, supported: false });
      expect(j.detail).toStartWith("a pid-filtered uprobe_multi link did not fire for every call");
    }
  });

  test("the trial's call counts differ, so a phase's hits cannot pass for the other's", () => {
    expect(UPROBE_MULTI_TRIAL.mainCalls).not.toBe(UPROBE_MULTI_TRIAL.threadCalls);
    expect(UPROBE_MULTI_TRIAL.threadCalls).toBeGreaterThan(0);
  });
});
