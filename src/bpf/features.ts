/**
 * @module bpf/features — what this machine allows, for `beetrace doctor` and for e2e skips.
 *
 * Each check is probed, not inferred from the kernel version, and reports
 * `{ name, ok, detail, fix }`. The parsers of /proc and /sys text are pure and exported for
 * unit tests; `checkFeatures()` reads the real files. `calibrateUprobe()` goes further: it
 * attaches a uprobe to a libc function in this very process, calls it, and checks the BPF side
 * counted the calls. `measureUprobeCost()` times uprobe hits on an instruction the kernel
 * single-steps and on one it emulates, in code of ours mapped from a memfd (docs/probe-placement.md).
 * `uprobeMultiSupport()` repeats the calibration through a pid-filtered uprobe_multi
 * link, with calls from the main thread and from new native threads, because some kernels'
 * filter matched only one thread (see judgeUprobeMultiTrial).
 */
import { readFileSync, existsSync, statSync, mkdirSync, writeFileSync, renameSync } from "node:fs";
import { TracerError } from "../errors.ts";
import { childProcess } from "../runtime.ts";
import { errnoText } from "./call.ts";
import { addr, closeFd, cstr, libcSymbols, readErrno, runOnNewThread, symbolAddress, systemPageSize } from "./libc.ts";
import { libbpf } from "./libbpf.ts";
import { BPF_MAP_TYPE_RINGBUF, BpfObject } from "./object.ts";
import { bpfObjectPath } from "./embedded.ts";
import { attachUprobe, attachUprobeMulti } from "./link.ts";
import { BPF_TRACE_UPROBE_MULTI } from "./syscall.ts";

export interface FeatureCheck {
  name: string;
  ok: boolean;
  /** What was found, one line. */
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

/** include/uapi/linux/capability.h */
export const CAP_SYS_ADMIN = 21;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

/** The effective capability set from /proc/<pid>/status text ("CapEff:\t000001ffffffffff"). */
export function parseCapEff(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

export function hasCap(capEff: bigint, cap: number): boolean {
  return ((capEff >> BigInt(cap)) & 1n) === 1n;
}

/** The active mode from /sys/kernel/security/lockdown ("none [integrity] confidentiality"). */
export function parseLockdown(text: string): string | undefined {
  return /\[([a-z]+)\]/.exec(text)?.[1];
}

/** A sysctl-style integer file ("2\n"), or undefined when it is not one. */
export function parseIntFile(text: string): number | undefined {
  const t = text.trim();
  return /^-?\d+$/.test(t) ? Number(t) : undefined;
}

export function privilegeCheck(status: string | undefined): FeatureCheck {
  const name = "privileges";
  const fix = "run as root (sudo) or grant CAP_BPF,CAP_PERFMON (e.g. setcap cap_bpf,cap_perfmon+ep beetrace)";
  const cap = status === undefined ? undefined : parseCapEff(status);
  if (cap === undefined) return { name, ok: false, detail: "cannot read CapEff from /proc/self/status", fix };
  const held = [
    [CAP_BPF, "CAP_BPF"],
    [CAP_PERFMON, "CAP_PERFMON"],
    [CAP_SYS_ADMIN, "CAP_SYS_ADMIN"],
  ]
    .filter(([c]) => hasCap(cap, c as number))
    .map(([, n]) => n);
  // CAP_SYS_ADMIN implies both on kernels before 5.8, which have no CAP_BPF/CAP_PERFMON.
  const ok = hasCap(cap, CAP_SYS_ADMIN) || (hasCap(cap, CAP_BPF) && hasCap(cap, CAP_PERFMON));
  const detail = held.length > 0 ? `effective capabilities include ${held.join(", ")}` : "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN";
  return ok ? { name, ok, detail } : { name, ok, detail, fix };
}

export function lockdownCheck(text: string | undefined): FeatureCheck {
  const name = "kernel lockdown";
  if (text === undefined) return { name, ok: true, detail: "no lockdown LSM (/sys/kernel/security/lockdown absent)" };
  const mode = parseLockdown(text);
  if (mode === undefined) return { name, ok: true, detail: `unrecognised lockdown state '${text.trim()}'` };
  if (mode === "confidentiality") {
    return {
      name,
      ok: false,
      detail: "lockdown is 'confidentiality': the kernel may refuse BPF memory reads",
      fix: "boot without lockdown=confidentiality (or with Secure Boot lockdown relaxed)",
    };
  }
  return { name, ok: true, detail: `lockdown is '${mode}'` };
}

export function perfParanoidCheck(text: string | undefined, privileged: boolean): FeatureCheck {
  const name = "perf_event_paranoid";
  const v = text === undefined ? undefined : parseIntFile(text);
  if (v === undefined) return { name, ok: privileged, detail: "/proc/sys/kernel/perf_event_paranoid unreadable", ...(privileged ? {} : { fix: "run as root" }) };
  if (privileged) return { name, ok: true, detail: `${v} (no effect with CAP_PERFMON or root)` };
  return { name, ok: false, detail: `${v}, and no CAP_PERFMON to override it`, fix: "run as root or grant CAP_PERFMON" };
}

export function unprivilegedBpfCheck(text: string | undefined, privileged: boolean): FeatureCheck {
  const name = "unprivileged_bpf_disabled";
  const v = text === undefined ? undefined : parseIntFile(text);
  const shown = v === undefined ? "unreadable" : String(v);
  if (privileged) return { name, ok: true, detail: `${shown} (no effect with CAP_BPF or root)` };
  if (v === 0) return { name, ok: true, detail: "0: unprivileged BPF allowed" };
  return { name, ok: false, detail: `${shown}: BPF needs privileges here`, fix: "run as root or grant CAP_BPF,CAP_PERFMON" };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function btfCheck(): FeatureCheck {
  const name = "kernel BTF";
  if (existsSync("/sys/kernel/btf/vmlinux")) return { name, ok: true, detail: "/sys/kernel/btf/vmlinux present" };
  return {
    name,
    ok: false,
    detail: "/sys/kernel/btf/vmlinux missing",
    fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020)",
  };
}

function uprobePmuCheck(): FeatureCheck {
  const name = "uprobe PMU";
  const t = readText("/sys/bus/event_source/devices/uprobe/type");
  const v = t === undefined ? undefined : parseIntFile(t);
  if (v !== undefined) return { name, ok: true, detail: `perf event type ${v}` };
  return {
    name,
    ok: false,
    detail: "/sys/bus/event_source/devices/uprobe/type missing (libbpf falls back to tracefs uprobe_events)",
    fix: "use a kernel with CONFIG_UPROBE_EVENTS=y (4.17+ for the PMU)",
  };
}

function tracefsCheck(): FeatureCheck {
  const name = "tracefs";
  for (const dir of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    if (existsSync(`${dir}/uprobe_events`)) return { name, ok: true, detail: `${dir} mounted` };
  }
  // Only needed by the legacy (pre-PMU) uprobe path and for debugging.
  const pmu = existsSync("/sys/bus/event_source/devices/uprobe/type");
  return {
    name,
    ok: pmu,
    detail: pmu ? "not mounted (not needed: the uprobe PMU is available)" : "not mounted, and there is no uprobe PMU",
    ...(pmu ? {} : { fix: "mount -t tracefs nodev /sys/kernel/tracing" }),
  };
}

function libbpfCheck(): FeatureCheck {
  try {
    const l = libbpf();
    return { name: "libbpf", ok: true, detail: `libbpf ${l.version} (${l.source})` };
  } catch (e) {
    const err = e instanceof TracerError ? e : undefined;
    return { name: "libbpf", ok: false, detail: err?.message ?? String(e), fix: err?.hint ?? "reinstall beetrace" };
  }
}

/** Create (and close) a one-page BPF ring buffer map: needs kernel >= 5.8 and BPF privileges. */
function ringbufCheck(libbpfOk: boolean): FeatureCheck {
  const name = "BPF ring buffer";
  if (!libbpfOk) return { name, ok: false, detail: "not checked: libbpf unavailable", fix: "fix libbpf first" };
  const n = cstr("bt_probe_rb");
  const fd = libbpf().sym.bpf_map_create(BPF_MAP_TYPE_RINGBUF, addr(n), 0, 0, systemPageSize(), null);
  if (fd >= 0) {
    closeFd(fd);
    return { name, ok: true, detail: "created a ring buffer map" };
  }
  return {
    name,
    ok: false,
    detail: `bpf_map_create(BPF_MAP_TYPE_RINGBUF): ${errnoText(-fd)}`,
    fix: -fd === 1 || -fd === 13 ? "run as root or grant CAP_BPF,CAP_PERFMON" : "use a kernel >= 5.8 with CONFIG_BPF_SYSCALL=y",
  };
}

/** Every check, in the order `doctor` prints them. */
export function checkFeatures(): FeatureCheck[] {
  const priv = privilegeCheck(readText("/proc/self/status"));
  const lib = libbpfCheck();
  return [
    priv,
    lib,
    btfCheck(),
    uprobePmuCheck(),
    ringbufCheck(lib.ok),
    lockdownCheck(readText("/sys/kernel/security/lockdown")),
    tracefsCheck(),
    perfParanoidCheck(readText("/proc/sys/kernel/perf_event_paranoid"), priv.ok),
    unprivilegedBpfCheck(readText("/proc/sys/kernel/unprivileged_bpf_disabled"), priv.ok),
  ];
}

/**
 * File offset of the code at `address` in this process, from /proc/self/maps
 * ("start-end perms offset dev inode path"): offset = address - start + mapping offset.
 */
export function fileOffsetInMaps(maps: string, address: number): { path: string; fileOffset: number } | undefined {
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+([0-9a-f]+)\s+\S+\s+\d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const start = parseInt(m[1]!, 16);
    const end = parseInt(m[2]!, 16);
    if (address >= start && address < end) return { path: m[4]!, fileOffset: address - start + parseInt(m[3]!, 16) };
  }
  return undefined;
}

/**
 * End-to-end calibration: load `objectBytes`, attach `program` as a uprobe on libc's getpgid in
 * this process only, call getpgid `calls` times and read the .bss `counter`. ok when the BPF side
 * counted at least `calls` hits (another thread of ours may add some).
 */
export function calibrateUprobe(objectBytes: Uint8Array, opts: { program: string; counter: string; calls?: number }): FeatureCheck {
  const name = "uprobe calibration";
  const calls = opts.calls ?? 5;
  const fn = "getpgid";
  try {
    const address = symbolAddress(fn);
    if (address === undefined) return { name, ok: false, detail: `${fn} not found in this process`, fix: "report this" };
    const maps = readFileSync("/proc/self/maps", "utf8");
    const where = fileOffsetInMaps(maps, address);
    if (where === undefined) return { name, ok: false, detail: `${fn} at 0x${address.toString(16)} is in no file mapping`, fix: "report this" };
    statSync(where.path);
    const pid = libcSymbols().getpid();
    using obj = BpfObject.open(objectBytes, "calibrate");
    obj.load();
    attachUprobe(obj.program(opts.program), { binaryPath: where.path, fileOffset: where.fileOffset, pid });
    const getpgid = libcSymbols().getpgid;
    for (let i = 0; i < calls; i++) getpgid(0);
    const seen = obj.readBss(opts.counter);
    if (seen >= BigInt(calls)) return { name, ok: true, detail: `uprobe on ${fn} fired ${seen} times for ${calls} calls` };
    return {
      name,
      ok: false,
      detail: `uprobe on ${fn} fired ${seen} times for ${calls} calls`,
      fix: "uprobes attach but do not fire: check for a security module blocking them",
    };
  } catch (e) {
    const err = e instanceof TracerError ? e : undefined;
    return { name, ok: false, detail: err?.message ?? String(e), fix: err?.hint ?? "run with -v and report this" };
  }
}

// ---- uprobe_multi links ----------------------------------------------------------------------

/**
 * bpf/calibrate.bpf.c: a uprobe program counting its hits in .bss. `cli/doctor.ts`'s calibration
 * (perf-event uprobe) and the uprobe_multi probe below (same program, loaded for uprobe_multi
 * links) both use it.
 */
export const CALIBRATE_OBJECT = { object: "calibrate", program: "calibrate_hit", counter: "calibrate_hits" } as const;

/**
 * How often the uprobe_multi probe calls the probed function on the main (JS) thread, and on
 * other threads (one call per new thread). Different numbers, so a hit counted in the wrong
 * phase cannot pass for the right one; small, because each uprobe hit costs ~5 µs.
 */
export const UPROBE_MULTI_TRIAL = { mainCalls: 3, threadCalls: 2 } as const;

/** What one run of the uprobe_multi probe counted. */
export interface UprobeMultiTrial {
  /** the libc function probed in this process */
  fn: string;
  mainCalls: number;
  /** hits counted after the main-thread calls */
  mainHits: bigint;
  threadCalls: number;
  /** hits added while other threads made their calls */
  threadHits: bigint;
}

export interface UprobeMultiSupport {
  supported: boolean;
  /** What the probe found, one line (shown at verbose level and by `doctor`). */
  detail: string;
  /** When not supported and something can be changed about it. */
  fix?: string;
  /** The counts, when the probe got as far as calling the probed function. */
  trial?: UprobeMultiTrial;
}

/**
 * The upstream fix for kernels whose uprobe_multi pid filter matched one THREAD: the link's
 * handler compared `current` with the task of the given pid (kernel/trace/bpf_trace.c,
 * uprobe_prog_run) until commit 46ba0e49b642 (Linux 6.10, May 2024; stable backports) made it
 * compare the process (`mm`, later same_thread_group()).
 */
export const UPROBE_MULTI_PID_FIX = 'Linux 6.10+, or a 6.6–6.9 stable kernel carrying commit 46ba0e49b642 ("bpf: fix multi-uprobe PID filtering logic")';

/**
 * The probe's verdict from its counts. Supported only when the pid-filtered link saw every call
 * on the main thread AND every call on the other threads: a Go service runs goroutines on many
 * threads, and a filter that matches only the thread-group leader would drop their spans
 * without any error. More hits than calls are accepted (another thread of ours may call the
 * same libc function); fewer never are.
 */
export function judgeUprobeMultiTrial(t: UprobeMultiTrial): UprobeMultiSupport {
  const main = `${t.mainHits}/${t.mainCalls} calls on the main thread`;
  const other = `${t.threadHits}/${t.threadCalls} on other threads`;
  const counts = `${t.fn}: ${main}, ${other}`;
  if (t.mainHits < BigInt(t.mainCalls)) {
    return {
      supported: false,
      detail: `a pid-filtered uprobe_multi link did not fire for every call (${counts})`,
      fix: "uprobes attach but do not fire: check for a security module blocking them",
      trial: t,
    };
  }
  if (t.threadHits === 0n) {
    return {
      supported: false,
      detail: `the kernel's uprobe_multi pid filter matches only the main thread, not the whole process (${counts})`,
      fix: UPROBE_MULTI_PID_FIX,
      trial: t,
    };
  }
  if (t.threadHits < BigInt(t.threadCalls)) {
    return { supported: false, detail: `a pid-filtered uprobe_multi link missed calls on other threads (${counts})`, trial: t };
  }
  return { supported: true, detail: `pid filter covers all threads (${counts})`, trial: t };
}

/** include/uapi/linux/bpf.h: enum bpf_prog_type BPF_PROG_TYPE_KPROBE (uprobes too), enum bpf_func_id BPF_FUNC_get_attach_cookie. */
const BPF_PROG_TYPE_KPROBE = 2;
const BPF_FUNC_GET_ATTACH_COOKIE = 174;
let cookieSupport: boolean | undefined;
let cookieOverride: boolean | undefined;

/** Force the answer of attachCookieSupport (tests: the per-variant programs of kernels < 5.15); `undefined` probes again. */
export function overrideAttachCookieSupport(supported: boolean | undefined): void {
  cookieOverride = supported;
}

/**
 * Whether a uprobe program can read its attach cookie (bpf_get_attach_cookie, Linux 5.15, with
 * the perf-event BPF links libbpf needs to pass a cookie). uprobe_multi links (6.6+) always can.
 * Older kernels load a separate program per variant instead of one switched by the cookie.
 */
export function attachCookieSupport(): boolean {
  if (cookieOverride !== undefined) return cookieOverride;
  if (uprobeMultiSupport().supported) return true;
  if (cookieSupport === undefined) {
    let r = -1;
    try {
      r = libbpf().sym.libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_GET_ATTACH_COOKIE, null);
    } catch {
      r = -1;
    }
    cookieSupport = r === 1;
  }
  return cookieSupport;
}

let multiSupport: UprobeMultiSupport | undefined;
let multiOverride: UprobeMultiSupport | undefined;

/**
 * Whether uprobe_multi links (Linux 6.6+) work here for tracing a whole process, probed once
 * and cached. Decided by behaviour, not by the kernel version: the calibrate program is loaded
 * for BPF_TRACE_UPROBE_MULTI and linked at libc's getpgid in this process, pid-filtered to us;
 * getpgid is called on the main thread and then on new native threads, and the link must have
 * counted both (see judgeUprobeMultiTrial). Needs BPF privileges and the calibrate object;
 * without them the answer is "no" with the reason (and loading the real programs fails anyway).
 */
export function uprobeMultiSupport(): UprobeMultiSupport {
  if (multiOverride !== undefined) return multiOverride;
  multiSupport ??= probeUprobeMulti();
  return multiSupport;
}

/**
 * Force the answer (tests, measurements, or an operator working around a kernel bug);
 * `undefined` returns to probing.
 */
export function overrideUprobeMultiSupport(supported: boolean | undefined): void {
  multiOverride = supported === undefined ? undefined : { supported, detail: `forced ${supported ? "on" : "off"}` };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function probeUprobeMulti(): UprobeMultiSupport {
  const cached = readTrialCache();
  if (cached) return cached;
  const r = pidFilterTrial("uprobe_multi");
  if ("supported" in r) return r; // the trial could not run (privileges, no object): not cached
  const judged = judgeUprobeMultiTrial(r);
  writeTrialCache(judged);
  return judged;
}

/*
 * The trial's answer depends only on the running kernel, and costs tens of milliseconds of every
 * start (a BPF load, a link, native threads): it is kept for the rest of the boot in /run (a
 * tmpfs, cleared at reboot), keyed by the boot id (proc(5): /proc/sys/kernel/random/boot_id) and
 * the kernel release. Unreadable, foreign or malformed cache files are ignored.
 */
const TRIAL_CACHE_DIR = "/run/beetrace";

function trialCacheKey(): { path: string; kernel: string } | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    if (!/^[0-9a-f-]{36}$/.test(boot)) return undefined;
    return { path: `${TRIAL_CACHE_DIR}/uprobe-multi-${boot}.json`, kernel };
  } catch {
    return undefined;
  }
}

function readTrialCache(): UprobeMultiSupport | undefined {
  const key = trialCacheKey();
  if (!key || process.getuid?.() !== 0) return undefined;
  try {
    const st = statSync(key.path);
    // Written by root only, and not writable by anyone else: never trust another user's answer.
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) return undefined;
    const v = JSON.parse(readFileSync(key.path, "utf8")) as { kernel?: unknown; supported?: unknown; detail?: unknown; fix?: unknown; trial?: Record<string, unknown> };
    if (v.kernel !== key.kernel || typeof v.supported !== "boolean" || typeof v.detail !== "string") return undefined;
    const out: UprobeMultiSupport = { supported: v.supported, detail: v.detail };
    if (typeof v.fix === "string") out.fix = v.fix;
    const t = v.trial;
    if (t !== undefined) {
      if (typeof t.fn !== "string" || typeof t.mainCalls !== "number" || typeof t.threadCalls !== "number" || typeof t.mainHits !== "string" || typeof t.threadHits !== "string") return undefined;
      out.trial = { fn: t.fn, mainCalls: t.mainCalls, mainHits: BigInt(t.mainHits), threadCalls: t.threadCalls, threadHits: BigInt(t.threadHits) };
    }
    return out;
  } catch {
    return undefined;
  }
}

function writeTrialCache(r: UprobeMultiSupport): void {
  const key = trialCacheKey();
  if (!key || process.getuid?.() !== 0) return;
  try {
    mkdirSync(TRIAL_CACHE_DIR, { recursive: true, mode: 0o700 });
    const tmp = `${key.path}.${process.pid}`;
    const trial = r.trial ? { ...r.trial, mainHits: String(r.trial.mainHits), threadHits: String(r.trial.threadHits) } : undefined;
    writeFileSync(tmp, JSON.stringify({ kernel: key.kernel, supported: r.supported, detail: r.detail, ...(r.fix ? { fix: r.fix } : {}), ...(trial ? { trial } : {}) }), { mode: 0o600 });
    renameSync(tmp, key.path);
  } catch {
    // A read-only /run costs only the next start's trial.
  }
}

/** A compiled BPF object whose uprobe `program` adds 1 to the .bss variable `counter` per hit. */
export interface CountingProgram {
  bytes: Uint8Array;
  program: string;
  counter: string;
}

/**
 * The measurement behind uprobeMultiSupport(): load a counting program (bpf/calibrate.bpf.c
 * unless `counting` names another) for `link`, attach it at libc's getpgid pid-filtered to this
 * process, call getpgid on the main thread, then on new native threads, and return the counts —
 * or, when it cannot get that far, the answer "not supported" with the reason. `link` "perf"
 * runs the same trial over one perf-event uprobe (the fallback), whose pid filter compares the
 * process's mm (kernel/trace/trace_uprobe.c, __uprobe_perf_filter), so it must see every thread.
 */
export function pidFilterTrial(link: "uprobe_multi" | "perf", counting?: CountingProgram): UprobeMultiTrial | UprobeMultiSupport {
  const fn = "getpgid";
  let fnAddress: number | undefined;
  let where: { path: string; fileOffset: number } | undefined;
  let prog: CountingProgram;
  try {
    fnAddress = symbolAddress(fn);
    if (fnAddress === undefined) return { supported: false, detail: `cannot probe: ${fn} not found in this process` };
    where = fileOffsetInMaps(readFileSync("/proc/self/maps", "utf8"), fnAddress);
    if (where === undefined) return { supported: false, detail: `cannot probe: ${fn} is in no file mapping` };
    prog = counting ?? { ...CALIBRATE_OBJECT, bytes: new Uint8Array(readFileSync(bpfObjectPath(CALIBRATE_OBJECT.object))) };
  } catch (e) {
    return { supported: false, detail: `cannot probe: ${messageOf(e)}` };
  }
  const pid = libcSymbols().getpid();
  try {
    using obj = BpfObject.open(prog.bytes, "umulti_probe");
    const p = obj.program(prog.program);
    if (link === "uprobe_multi") p.setExpectedAttachType(BPF_TRACE_UPROBE_MULTI);
    obj.load();
    try {
      if (link === "uprobe_multi") attachUprobeMulti(p, { binaryPath: where.path, fileOffsets: [where.fileOffset], pid });
      else attachUprobe(p, { binaryPath: where.path, fileOffset: where.fileOffset, pid });
    } catch (e) {
      // Kernels before 6.6 know no such attach type for kprobe programs: EINVAL.
      const fix = e instanceof TracerError && e.code === "permission_denied" ? e.hint : link === "uprobe_multi" ? "uprobe_multi links need Linux 6.6+" : undefined;
      return { supported: false, detail: `creating a ${link} link failed: ${messageOf(e)}`, ...(fix ? { fix } : {}) };
    }
    const getpgid = libcSymbols().getpgid;
    for (let i = 0; i < UPROBE_MULTI_TRIAL.mainCalls; i++) getpgid(0);
    const mainHits = obj.readBss(prog.counter);
    // getpgid itself is each thread's start routine: pthread_create passes its argument in the
    // first integer register (rdi on x86-64, x0 on arm64), where getpgid reads its pid_t, so
    // each thread calls getpgid(0) once and no JS ever runs off the main thread.
    for (let i = 0; i < UPROBE_MULTI_TRIAL.threadCalls; i++) {
      const rc = runOnNewThread(fnAddress, 0);
      if (rc !== 0) return { supported: false, detail: `cannot probe: starting a thread failed: ${errnoText(rc)}` };
    }
    const threadHits = obj.readBss(prog.counter) - mainHits;
    return { fn, mainCalls: UPROBE_MULTI_TRIAL.mainCalls, mainHits, threadCalls: UPROBE_MULTI_TRIAL.threadCalls, threadHits };
  } catch (e) {
    const err = e instanceof TracerError ? e : undefined;
    return { supported: false, detail: `loading the ${link} probe program failed: ${messageOf(e)}`, ...(err?.hint ? { fix: err.hint } : {}) };
  }
}

// ---- per-hit cost: single-stepped vs emulated probe instructions -----------------------------

/**
 * Machine code for the cost measurement: three loops, each calling its own tiny function `n`
 * times (n = the loop's one argument: it runs as a pthread start routine, see runOnNewThread),
 * and those functions. The uprobes go on the first instruction of `step` — one the kernel
 * single-steps out of line — and of `emulated` — a conditional branch the kernel emulates, the
 * kind docs/probe-placement.md puts Go entry probes on. `bare` is `step`'s twin, never probed:
 * the baseline. Offsets are byte offsets into CostCode.bytes.
 */
export interface CostCode {
  bytes: Uint8Array;
  loops: { step: number; emulated: number; bare: number };
  /** Probe sites: the first instruction of each probed function. */
  sites: { step: number; emulated: number };
  /** The two probed instructions, for the report. */
  names: { step: string; emulated: string };
}

/**
 * x86-64 (encodings: Intel SDM vol. 2). Each loop, at L:
 *   L+0  48 85 ff        test rdi, rdi
 *   L+3  74 0a           jz   L+15
 *   L+5  e8 <rel32>      call fn
 *   L+10 48 ff cf        dec  rdi
 *   L+13 75 f6           jnz  L+5
 *   L+15 31 c0           xor  eax, eax   (start routine returns NULL)
 *   L+17 c3              ret
 * step / bare: 48 8d 40 01 (lea rax, [rax+1]: single-stepped), c3. emulated: 76 00 (jbe +0:
 * branch_setup_xol_ops emulates it, taken or not), c3. Only caller-saved registers are used.
 */
export function costCodeX86(): CostCode {
  const b = new Uint8Array(160).fill(0xcc); // INT3 padding
  const loops = { step: 0, emulated: 32, bare: 64 };
  const fns = { step: 96, emulated: 112, bare: 128 };
  const loop = (at: number, fn: number) => {
    b.set([0x48, 0x85, 0xff, 0x74, 0x0a, 0xe8], at);
    new DataView(b.buffer).setInt32(at + 6, fn - (at + 10), true);
    b.set([0x48, 0xff, 0xcf, 0x75, 0xf6, 0x31, 0xc0, 0xc3], at + 10);
  };
  loop(loops.step, fns.step);
  loop(loops.emulated, fns.emulated);
  loop(loops.bare, fns.bare);
  b.set([0x48, 0x8d, 0x40, 0x01, 0xc3], fns.step);
  b.set([0x76, 0x00, 0xc3], fns.emulated);
  b.set([0x48, 0x8d, 0x40, 0x01, 0xc3], fns.bare);
  return { bytes: b, loops, sites: { step: fns.step, emulated: fns.emulated }, names: { step: "lea", emulated: "jbe" } };
}

/**
 * AArch64 (encodings: Arm ARM). Each loop, at L (x30 is saved in x9 because BL overwrites it):
 *   L+0  aa1e03e9   mov  x9, x30
 *   L+4  b4000080   cbz  x0, L+20
 *   L+8  94xxxxxx   bl   fn
 *   L+12 f1000400   subs x0, x0, #1
 *   L+16 54ffffc1   b.ne L+8
 *   L+20 d2800000   mov  x0, #0
 *   L+24 d65f0120   ret  x9
 * step / bare: 91000421 (add x1, x1, #1: stepped out of line), d65f03c0 (ret). emulated:
 * 54000029 (b.ls .+4: simulated by the kernel), d65f03c0.
 */
export function costCodeArm64(): CostCode {
  const words = new Uint32Array(40); // zero = UDF padding
  const loops = { step: 0, emulated: 32, bare: 64 };
  const fns = { step: 96, emulated: 112, bare: 128 };
  const loop = (at: number, fn: number) => {
    const i = at / 4;
    words.set([0xaa1e03e9, 0xb4000080, (0x94000000 | (((fn - (at + 8)) / 4) & 0x3ffffff)) >>> 0, 0xf1000400, 0x54ffffc1, 0xd2800000, 0xd65f0120], i);
  };
  loop(loops.step, fns.step);
  loop(loops.emulated, fns.emulated);
  loop(loops.bare, fns.bare);
  words.set([0x91000421, 0xd65f03c0], fns.step / 4);
  words.set([0x54000029, 0xd65f03c0], fns.emulated / 4);
  words.set([0x91000421, 0xd65f03c0], fns.bare / 4);
  const bytes = new Uint8Array(words.length * 4);
  const v = new DataView(bytes.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  return { bytes, loops, sites: { step: fns.step, emulated: fns.emulated }, names: { step: "add", emulated: "b.ls" } };
}

/** What the cost measurement found. */
export interface UprobeCost {
  /** Nanoseconds added per hit on an instruction the kernel single-steps. */
  steppedNs: number;
  /** Nanoseconds added per hit on an instruction the kernel emulates. */
  emulatedNs: number;
  /** Calls per run and runs per kind (the best run of each kind is used). */
  calls: number;
  rounds: number;
  /** The probed instructions ("lea" / "jbe"). */
  stepped: string;
  emulated: string;
}

/**
 * Each run costs calls × ~12 µs when single-stepped: 2000 calls keep a run near 25 ms, far above
 * the thread start (~50-100 µs) that the baseline subtracts. Best of 5 runs of each kind: on a
 * shared machine the minimum is the run least disturbed by other work.
 */
export const UPROBE_COST_TRIAL = { calls: 2000, rounds: 5 } as const;

/** memfd_create flags (include/uapi/linux/memfd.h) and mmap values (asm-generic/mman-common.h). */
const MFD_CLOEXEC = 0x1;
const PROT_EXEC = 0x4;
const MAP_PRIVATE = 0x02;

/** The result line of the cost measurement (pure, for unit tests). */
export function uprobeCostDetail(c: UprobeCost): string {
  const us = (ns: number) => (ns / 1000).toFixed(1);
  const ratio = c.emulatedNs > 0 ? ` (${(c.steppedNs / c.emulatedNs).toFixed(0)}x)` : "";
  return `per probe hit: single-stepped instruction (${c.stepped}) ${us(c.steppedNs)} µs, emulated (${c.emulated}) ${us(c.emulatedNs)} µs${ratio}; best of ${c.rounds} × ${c.calls} calls`;
}

/**
 * Measure what one uprobe hit costs on this host, for an instruction the kernel single-steps and
 * for one it emulates. The code of costCodeX86/costCodeArm64 is written to a memfd and mapped
 * MAP_PRIVATE + PROT_EXEC (uprobes only go into private file mappings: kernel/events/uprobes.c,
 * valid_vma), a counting program is attached at both probe sites through /proc/self/fd/N
 * (pid-filtered to us), and each loop runs on a new native thread: cost per hit = (wall time of
 * the probed loop − the bare loop) / calls. Advice only: numbers, never a verdict; `check.ok` is
 * false only when the measurement could not be made or the probes did not count every call.
 */
export function measureUprobeCost(counting: CountingProgram, trial: { calls: number; rounds: number } = UPROBE_COST_TRIAL): { check: FeatureCheck; cost?: UprobeCost } {
  const name = "uprobe cost";
  const fail = (detail: string, fix?: string) => ({ check: { name, ok: false, detail, ...(fix ? { fix } : {}) } });
  const code = process.arch === "x64" ? costCodeX86() : process.arch === "arm64" ? costCodeArm64() : undefined;
  if (code === undefined) return fail(`not measured: no calibration code for ${process.arch}`);
  const libc = libcSymbols();
  const page = systemPageSize();
  const label = cstr("beetrace-uprobe-cost");
  const fd = libc.memfd_create(addr(label), MFD_CLOEXEC);
  if (fd < 0) return fail(`not measured: memfd_create: ${errnoText(readErrnoSafe())}`);
  let mapped = 0;
  try {
    if (Number(libc.write(fd, addr(code.bytes), code.bytes.length)) !== code.bytes.length) return fail(`not measured: writing the calibration code failed`);
    const r = libc.mmap(null, page, 0x1 | PROT_EXEC, MAP_PRIVATE, fd, 0n);
    if (r === -1n) return fail(`not measured: mmap(PROT_EXEC) of the calibration code: ${errnoText(readErrnoSafe())}`, "vm.memfd_noexec may forbid executable memfds");
    mapped = Number(r);
    const path = `/proc/self/fd/${fd}`;
    const pid = libc.getpid();
    using obj = BpfObject.open(counting.bytes, "uprobe_cost");
    obj.load();
    const prog = obj.program(counting.program);
    using _step = attachUprobe(prog, { binaryPath: path, fileOffset: code.sites.step, pid });
    using _emu = attachUprobe(prog, { binaryPath: path, fileOffset: code.sites.emulated, pid });
    const best = { step: Infinity, emulated: Infinity, bare: Infinity };
    const hits = { step: 0n, emulated: 0n, bare: 0n };
    for (let round = 0; round < trial.rounds; round++) {
      for (const kind of ["bare", "step", "emulated"] as const) {
        const before = obj.readBss(counting.counter);
        const t0 = performance.now();
        const rc = runOnNewThread(mapped + code.loops[kind], trial.calls);
        const ms = performance.now() - t0;
        if (rc !== 0) return fail(`not measured: starting a thread failed: ${errnoText(rc)}`);
        hits[kind] += obj.readBss(counting.counter) - before;
        best[kind] = Math.min(best[kind], ms);
      }
    }
    const expected = BigInt(trial.calls * trial.rounds);
    if (hits.step !== expected || hits.emulated !== expected || hits.bare !== 0n) {
      return fail(`the probes counted ${hits.step}/${expected} single-stepped and ${hits.emulated}/${expected} emulated hits (and ${hits.bare} unprobed)`);
    }
    const perHit = (ms: number) => Math.max(0, Math.round(((ms - best.bare) * 1e6) / trial.calls));
    const cost: UprobeCost = {
      steppedNs: perHit(best.step),
      emulatedNs: perHit(best.emulated),
      calls: trial.calls,
      rounds: trial.rounds,
      stepped: code.names.step,
      emulated: code.names.emulated,
    };
    return { check: { name, ok: true, detail: uprobeCostDetail(cost) }, cost };
  } catch (e) {
    const err = e instanceof TracerError ? e : undefined;
    return fail(`not measured: ${messageOf(e)}`, err?.hint);
  } finally {
    if (mapped !== 0) libc.munmap(mapped, page);
    closeFd(fd);
  }
}

function readErrnoSafe(): number {
  try {
    return readErrno();
  } catch {
    return 0;
  }
}

// ---- trace context out (--propagate) ---------------------------------------------------------

/**
 * The cgroup v2 mount point from /proc/self/mountinfo text ("36 25 0:31 / /sys/fs/cgroup
 * rw,... - cgroup2 cgroup2 rw"; proc(5)): fields before " - " are id, parent, dev, root, mount
 * point, options, optional fields; the one after is the filesystem type. A mount of the
 * hierarchy's root ("/") wins over a bind mount of a sub-cgroup. Octal escapes (\040) are undone.
 */
export function parseCgroup2Mount(mountinfo: string): string | undefined {
  let found: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(" ")[0];
    if (fstype !== "cgroup2") continue;
    const f = line.slice(0, sep).split(" ");
    if (f.length < 5) continue;
    const mount = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (f[3] === "/") return mount;
    found ??= mount;
  }
  return found;
}

/** uapi/linux/bpf.h enum bpf_prog_type and enum bpf_func_id (the __BPF_FUNC_MAPPER order). */
const BPF_PROG_TYPE_SOCK_OPS = 13;
const BPF_PROG_TYPE_SK_MSG = 16;
const BPF_FUNC_probe_write_user = 36;
const BPF_FUNC_msg_pull_data = 63;
const BPF_FUNC_sock_hash_update = 70;
const BPF_FUNC_msg_push_data = 90;
const BPF_FUNC_msg_pop_data = 91;
const BPF_FUNC_sk_storage_get = 107;
const BPF_FUNC_loop = 181;

export interface PropagationMode {
  ok: boolean;
  /** what was found, or why not (one line) */
  detail: string;
  fix?: string;
}

export interface SocketPropagationSupport extends PropagationMode {
  /** where the sock_ops program is attached: the cgroup v2 mount (its root covers every process) */
  cgroupPath?: string;
}

function probeProgType(type: number): number {
  return libbpf().sym.libbpf_probe_bpf_prog_type(type, null);
}

/**
 * struct bpf_prog_load_opts, libbpf 1.1.2 (checked with offsetof): sz@0, log_level@88,
 * log_size@92, log_buf@96; sizeof = 104.
 */
const PROG_LOAD_OPTS_SIZE = 104;
const HELPER_LOG_SIZE = 16384;

/**
 * Whether programs of `type` may call helper `helper`: 1 yes, 0 no, < 0 a negative errno when
 * the kernel refused for another reason (no privileges). libbpf 1.1's libbpf_probe_bpf_helper
 * recognises only the verifier's "unknown func"/"invalid func" messages and calls every other
 * refusal support; kernels since 6.x say "program of this type cannot use helper" (so a helper
 * lockdown removed looked available). Here a program calling the helper with zero arguments
 * is loaded: the verifier either rejects the call itself (not available) or gets past it and
 * complains about the arguments, or accepts it (available).
 */
function probeHelper(type: number, helper: number): number {
  // r1 = 0; r2 = 0; r3 = 0; call helper; r0 = 0; exit (uapi/linux/bpf_common.h encodings:
  // BPF_ALU64|BPF_MOV|BPF_K = 0xb7, BPF_JMP|BPF_CALL = 0x85, BPF_JMP|BPF_EXIT = 0x95).
  const insns = new Uint8Array(6 * 8);
  const dv = new DataView(insns.buffer);
  const put = (i: number, code: number, dst: number, imm: number) => {
    dv.setUint8(i * 8, code);
    dv.setUint8(i * 8 + 1, dst & 0xf);
    dv.setInt32(i * 8 + 4, imm, true);
  };
  put(0, 0xb7, 1, 0);
  put(1, 0xb7, 2, 0);
  put(2, 0xb7, 3, 0);
  put(3, 0x85, 0, helper);
  put(4, 0xb7, 0, 0);
  put(5, 0x95, 0, 0);
  const log = new Uint8Array(HELPER_LOG_SIZE);
  const opts = new Uint8Array(PROG_LOAD_OPTS_SIZE);
  const o = new DataView(opts.buffer);
  o.setBigUint64(0, BigInt(PROG_LOAD_OPTS_SIZE), true);
  o.setUint32(88, 1, true);
  o.setUint32(92, log.length, true);
  o.setBigUint64(96, BigInt(addr(log)), true);
  const license = cstr("GPL");
  const fd = libbpf().sym.bpf_prog_load(type, null, addr(license), addr(insns), 6, addr(opts));
  if (fd >= 0) {
    closeFd(fd);
    return 1;
  }
  const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
  if (/unknown func|invalid func|cannot use helper/.test(text)) return 0;
  if (text.length === 0) return fd; // refused before the verifier ran (EPERM, ...)
  return 1;
}

/**
 * Socket-layer HTTP/1 propagation (bpf/propagate.bpf.c): a cgroup v2 hierarchy to attach
 * sock_ops to, sock_ops and sk_msg programs, and the helpers they call (msg push/pull/pop data
 * 4.17–5.0, socket storage 5.2, bpf_loop 5.17). Probed with libbpf's feature probes, which
 * load tiny programs: needs BPF privileges. `mountinfo` is /proc/self/mountinfo's text.
 */
export function socketPropagationSupport(mountinfo: string | undefined = readText("/proc/self/mountinfo")): SocketPropagationSupport {
  const cgroupPath = mountinfo === undefined ? undefined : parseCgroup2Mount(mountinfo);
  if (cgroupPath === undefined) {
    return { ok: false, detail: "no cgroup v2 hierarchy is mounted", fix: "mount -t cgroup2 none /sys/fs/cgroup/unified (or boot with systemd's unified or hybrid cgroup layout)" };
  }
  try {
    for (const [type, name] of [
      [BPF_PROG_TYPE_SOCK_OPS, "sock_ops"],
      [BPF_PROG_TYPE_SK_MSG, "sk_msg"],
    ] as const) {
      const r = probeProgType(type);
      if (r !== 1) {
        return {
          ok: false,
          detail: `${name} programs cannot be loaded${r < 0 ? ` (${errnoText(-r)})` : ""}`,
          fix: r === -1 || r === -13 ? "run as root or grant CAP_BPF,CAP_NET_ADMIN" : "use a kernel built with CONFIG_BPF_STREAM_PARSER=y and cgroup BPF (CONFIG_CGROUP_BPF=y)",
        };
      }
    }
    const helpers: [number, number, string][] = [
      [BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_hash_update, "bpf_sock_hash_update"],
      [BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_get, "bpf_sk_storage_get"],
      [BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_pull_data, "bpf_msg_pull_data"],
      [BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_push_data, "bpf_msg_push_data"],
      [BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_pop_data, "bpf_msg_pop_data"],
      [BPF_PROG_TYPE_SK_MSG, BPF_FUNC_sk_storage_get, "bpf_sk_storage_get"],
      [BPF_PROG_TYPE_SK_MSG, BPF_FUNC_loop, "bpf_loop"],
    ];
    for (const [type, helper, name] of helpers) {
      const r = probeHelper(type, helper);
      if (r !== 1) {
        return {
          ok: false,
          detail: `${name} is not available to ${type === BPF_PROG_TYPE_SK_MSG ? "sk_msg" : "sock_ops"} programs${r < 0 ? ` (${errnoText(-r)})` : ""}`,
          fix: "use a kernel >= 5.17 (bpf_loop) with sockmap support",
        };
      }
    }
  } catch (e) {
    const err = e instanceof TracerError ? e : undefined;
    return { ok: false, detail: `not checked: ${err?.message ?? String(e)}`, fix: err?.hint ?? "fix libbpf first" };
  }
  return { ok: true, detail: `sock_ops on cgroup v2 ${cgroupPath}, sk_msg with bpf_msg_push_data`, cgroupPath };
}

/**
 * Whether bpf_probe_write_user (writing into a traced process's memory, the other way to send
 * a traceparent) would be allowed: the kernel refuses the helper under lockdown "integrity"
 * and "confidentiality" (security/lockdown, LOCKDOWN_BPF_WRITE_USER), so it is probed, and the
 * lockdown mode named when known. beetrace does not use the helper; doctor only reports it.
 */
export function probeWriteUserSupport(lockdownText: string | undefined = readLockdown()): { allowed: boolean; detail: string } {
  const mode = lockdownText === undefined ? undefined : parseLockdown(lockdownText);
  let r: number;
  try {
    r = probeHelper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_probe_write_user);
  } catch (e) {
    return { allowed: false, detail: `not checked: ${e instanceof Error ? e.message : String(e)}` };
  }
  const lock = mode === undefined ? "lockdown state unknown" : `lockdown ${mode}`;
  if (r === 1) return { allowed: true, detail: lock };
  return { allowed: false, detail: r < 0 ? `${errnoText(-r)}; ${lock}` : lock };
}

/**
 * /sys/kernel/security/lockdown; when securityfs is not mounted, read through a private mount
 * of it in a new mount namespace (`unshare --mount`), so the host's mounts stay as they were.
 */
function readLockdown(): string | undefined {
  const path = "/sys/kernel/security/lockdown";
  const direct = readText(path);
  if (direct !== undefined || !existsSync("/sys/kernel/security")) return direct;
  try {
    const r = childProcess().spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", `mount -t securityfs securityfs /sys/kernel/security && cat ${path}`], {
      encoding: "utf8",
      timeout: 5000,
    });
    return r.status === 0 && r.stdout.length > 0 ? r.stdout : undefined;
  } catch {
    return undefined;
  }
}
