/**
 * @module cli/doctor — `beetrace doctor`: can this machine trace, and if not, what to change.
 *
 * Runs every feature check of src/bpf/features.ts, loads the nethttp BPF programs through the
 * verifier, and ends with an end-to-end calibration (a uprobe on a libc function in this very
 * process must count our calls), the per-hit cost of a uprobe on an instruction the kernel
 * single-steps and on one it emulates (measured here, advice only: docs/probe-placement.md says
 * why probes sit on emulated instructions), and the uprobe_multi probe (one link, pid-filtered
 * to us, must count calls from our main thread and from other threads; advice only, as tracing
 * falls back to one perf uprobe per instruction). Prints each check with what was found and how to fix it, the
 * origin of the assets this beetrace carries (libbpf bundle, BPF objects, offsets snapshot) and
 * which Go versions the offsets snapshot covers, and one line on sending trace context out:
 * whether `--propagate`'s socket-layer HTTP/1 insertion works here, and whether the kernel
 * would allow bpf_probe_write_user (lockdown refuses it; beetrace does not use it).
 *
 * Each failed check either blocks tracing (and names the error code it stands for) or is
 * advice only. The command returns normally when nothing blocks, and otherwise throws the
 * first blocking problem as a TracerError, so the exit code is that problem's (src/errors.ts).
 * Gathering and rendering are separate so the rendering is unit-tested with fake checks.
 */
import { readFileSync } from "node:fs";
import { EXIT_CODES, TracerError, isTracerError, type ErrorCode } from "../errors.ts";
import {
  CALIBRATE_OBJECT,
  calibrateUprobe,
  checkFeatures,
  measureUprobeCost,
  probeWriteUserSupport,
  socketPropagationSupport,
  uprobeMultiSupport,
  type FeatureCheck,
  type PropagationMode,
  type UprobeCost,
  type UprobeMultiSupport,
} from "../bpf/features.ts";
import { bpfObjectPath, embedded } from "../bpf/embedded.ts";
import { libbpf } from "../bpf/libbpf.ts";
import { BpfObject } from "../bpf/object.ts";
import { embeddedSnapshot } from "../offsets/snapshot.ts";
import { NETHTTP_OBJECT } from "../probes/nethttp/object.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { writeStdout } from "./view.ts";

export type CheckStatus = "ok" | "missing" | "skipped";

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** How to fix it (when not ok). */
  fix?: string;
  /** When missing: the error this stands for if it blocks tracing; absent = advice only. */
  blocks?: ErrorCode;
}

export interface DoctorFacts {
  version: string;
  checks: DoctorCheck[];
  assets: {
    origin: "embedded" | "source";
    /** "1.1 (memfd)", or why libbpf could not be opened */
    libbpf: string;
    bpfObjects: string[];
  };
  offsets: {
    module: string;
    /** undefined: the snapshot covers no version of the module */
    coverage: { oldest: string; newest: string; count: number } | undefined;
  };
  /** The measured per-hit uprobe costs (absent when not measured). */
  uprobeCost?: UprobeCost;
  /**
   * Which ways of sending trace context out (`--propagate`) this host allows; advice only
   * (absent when not checked: no BPF privileges or no libbpf).
   */
  propagation?: {
    /** socket-layer HTTP/1 insertion (sock_ops + sk_msg on cgroup v2): what --propagate uses */
    socketHttp1: PropagationMode;
    /** bpf_probe_write_user into the process (refused under lockdown): reported, not used */
    probeWriteUser: { allowed: boolean; detail: string };
  };
}

/** The BPF object calibrateUprobe() loads (bpf/calibrate.bpf.c) and its program and .bss counter. */
export const CALIBRATE = { ...CALIBRATE_OBJECT, calls: 7 } as const;

/**
 * What a failed feature check stands for. Kernel BTF and the uprobe PMU are advice only: our
 * programs use no CO-RE relocations against vmlinux, and without the PMU libbpf falls back to
 * tracefs (whose own check blocks when that is missing too).
 */
const FEATURE_BLOCKS: Readonly<Record<string, ErrorCode | undefined>> = {
  privileges: "permission_denied",
  libbpf: "bpf_error",
  "kernel BTF": undefined,
  "uprobe PMU": undefined,
  "BPF ring buffer": "kernel_unsupported",
  "kernel lockdown": "kernel_unsupported",
  tracefs: "kernel_unsupported",
  perf_event_paranoid: "permission_denied",
  unprivileged_bpf_disabled: "permission_denied",
};

export function fromFeature(c: FeatureCheck, blocks: ErrorCode | undefined): DoctorCheck {
  if (c.ok) return { name: c.name, status: "ok", detail: c.detail };
  return { name: c.name, status: "missing", detail: c.detail, ...(c.fix ? { fix: c.fix } : {}), ...(blocks ? { blocks } : {}) };
}

function skipped(name: string, why: string): DoctorCheck {
  return { name, status: "skipped", detail: `not checked: ${why}` };
}

/** The compiled BPF objects this beetrace needs are present (embedded or built). */
function objectsCheck(): DoctorCheck {
  const name = "BPF objects";
  const missing: string[] = [];
  for (const n of [NETHTTP_OBJECT.name, CALIBRATE.object]) {
    try {
      bpfObjectPath(n);
    } catch {
      missing.push(n);
    }
  }
  const have = Object.keys(embedded.bpfObjects).sort().join(", ") || "none";
  if (missing.length === 0) return { name, status: "ok", detail: `${have} (${embedded.origin})` };
  return {
    name,
    status: "missing",
    detail: `missing ${missing.join(", ")} (have: ${have})`,
    fix: embedded.origin === "source" ? "run 'bun build.ts' to compile bpf/*.bpf.c" : "this executable was built without them; rebuild with 'bun build.ts'",
    blocks: "file_not_found",
  };
}

function objectBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(bpfObjectPath(name)));
}

/** Load the nethttp programs with their built-in defaults: the verifier of this kernel accepts them. */
function verifierCheck(): DoctorCheck {
  const name = "nethttp programs load";
  try {
    using obj = BpfObject.open(objectBytes(NETHTTP_OBJECT.name), NETHTTP_OBJECT.name);
    obj.load();
    return { name, status: "ok", detail: "the kernel's verifier accepted every nethttp program" };
  } catch (e) {
    const err = isTracerError(e) ? e : undefined;
    return {
      name,
      status: "missing",
      detail: err?.message ?? String(e),
      fix: err?.hint ?? "run 'beetrace -v doctor' for the verifier log and report it",
      blocks: err?.code === "permission_denied" || err?.code === "kernel_unsupported" ? err.code : "verifier_rejected",
    };
  }
}

function calibrationCheck(): DoctorCheck {
  let bytes: Uint8Array;
  try {
    bytes = objectBytes(CALIBRATE.object);
  } catch (e) {
    return { name: "uprobe calibration", status: "missing", detail: isTracerError(e) ? e.message : String(e), fix: "run 'bun build.ts'", blocks: "file_not_found" };
  }
  const c = calibrateUprobe(bytes, { program: CALIBRATE.program, counter: CALIBRATE.counter, calls: CALIBRATE.calls });
  return fromFeature(c, "kernel_unsupported");
}

/**
 * The per-hit cost of a single-stepped and of an emulated probe instruction on this host. Never
 * blocking: a failed measurement says nothing about whether tracing works (the calibration does).
 */
function costCheck(): { check: DoctorCheck; cost?: UprobeCost } {
  let bytes: Uint8Array;
  try {
    bytes = objectBytes(CALIBRATE.object);
  } catch (e) {
    return { check: { name: "uprobe cost", status: "missing", detail: `not measured: ${isTracerError(e) ? e.message : String(e)}` } };
  }
  const r = measureUprobeCost({ bytes, program: CALIBRATE.program, counter: CALIBRATE.counter });
  return { check: fromFeature(r.check, undefined), ...(r.cost ? { cost: r.cost } : {}) };
}

/**
 * The uprobe_multi answer as a check. Never blocking: without usable uprobe_multi links a trace
 * attaches one perf-event uprobe per instruction, which works but attaches and detaches slower.
 */
export function uprobeMultiCheck(m: UprobeMultiSupport): DoctorCheck {
  const name = "uprobe_multi links";
  if (m.supported) return { name, status: "ok", detail: `one link per probe; ${m.detail}` };
  return {
    name,
    status: "missing",
    detail: `not available: ${m.detail} — using one perf uprobe per instruction (slower attach/detach)`,
    ...(m.fix ? { fix: m.fix } : {}),
  };
}

function libbpfDescription(): string {
  try {
    const l = libbpf();
    return `${l.version} (${l.source})`;
  } catch (e) {
    return `unavailable: ${isTracerError(e) ? e.message : String(e)}`;
  }
}

/** Run every check on this machine (needs no target process). */
export function gatherDoctorFacts(): DoctorFacts {
  const features = checkFeatures();
  const priv = features.find((c) => c.name === "privileges")?.ok ?? false;
  const checks = features.map((c) => {
    // A check added to features.ts later blocks until it is classified here.
    const blocks = c.name in FEATURE_BLOCKS ? FEATURE_BLOCKS[c.name] : "kernel_unsupported";
    // Without privileges a kernel feature probe fails with EPERM: that says nothing about the kernel.
    return fromFeature(c, blocks === "kernel_unsupported" && !priv ? "permission_denied" : blocks);
  });
  const objects = objectsCheck();
  checks.push(objects);
  const lib = features.find((c) => c.name === "libbpf")?.ok ?? false;
  const why = !priv ? "needs BPF privileges" : !lib ? "libbpf could not be loaded" : objects.status !== "ok" ? "BPF objects missing" : undefined;
  let uprobeCost: UprobeCost | undefined;
  if (why !== undefined) {
    checks.push(skipped("nethttp programs load", why), skipped("uprobe calibration", why), skipped("uprobe cost", why), skipped("uprobe_multi links", why));
  } else {
    const cost = costCheck();
    uprobeCost = cost.cost;
    checks.push(verifierCheck(), calibrationCheck(), cost.check, uprobeMultiCheck(uprobeMultiSupport()));
  }
  const propagation = priv && lib ? { socketHttp1: socketPropagationSupport(), probeWriteUser: probeWriteUserSupport() } : undefined;
  return {
    version: BEETRACE_VERSION,
    checks,
    assets: { origin: embedded.origin, libbpf: libbpfDescription(), bpfObjects: Object.keys(embedded.bpfObjects).sort() },
    offsets: { module: "std", coverage: embeddedSnapshot().coverage("std") },
    ...(uprobeCost ? { uprobeCost } : {}),
    ...(propagation ? { propagation } : {}),
  };
}

/**
 * The one line on trace context out: "propagation: socket-layer HTTP/1 (sock_ops+sk_msg) yes
 * (…); bpf_probe_write_user: refused (lockdown integrity)".
 */
export function propagationLine(p: NonNullable<DoctorFacts["propagation"]>): string {
  const s = p.socketHttp1;
  const w = p.probeWriteUser;
  return (
    `propagation: socket-layer HTTP/1 (sock_ops+sk_msg) ${s.ok ? "yes" : "no"} (${s.detail}${!s.ok && s.fix ? `; fix: ${s.fix}` : ""}); ` +
    `bpf_probe_write_user: ${w.allowed ? "allowed" : "refused"} (${w.detail})`
  );
}

/** The first check that blocks tracing, as the error the command throws; undefined when tracing can work. */
export function blockingProblem(f: DoctorFacts): TracerError | undefined {
  const bad = f.checks.filter((c) => c.status === "missing" && c.blocks !== undefined);
  const first = bad[0];
  if (first === undefined) return undefined;
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more blocking problem${bad.length > 2 ? "s" : ""})` : "";
  return new TracerError(first.blocks!, `tracing cannot work here: ${first.name}: ${first.detail}${more}`, {
    hint: first.fix ?? "see the checks above",
    detail: bad.slice(1).map((c) => `${c.name}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ""}`),
  });
}

function coverageText(f: DoctorFacts): string {
  const c = f.offsets.coverage;
  if (c === undefined) {
    return `${f.offsets.module}: no Go versions covered — stripped binaries need --offsets FILE; unstripped ones use their own DWARF`;
  }
  return `${f.offsets.module}: go${c.oldest} … go${c.newest} (${c.count} versions; stripped binaries of other versions need --offsets FILE)`;
}

const LABEL: Record<CheckStatus, string> = { ok: "ok", missing: "MISSING", skipped: "skipped" };

/** Human-readable report: one line per check, its fix indented under it, then assets, offsets, verdict. */
export function renderDoctorText(f: DoctorFacts): string {
  const width = Math.max(...f.checks.map((c) => c.name.length), 10);
  const lines = [`beetrace ${f.version} doctor`, "", "checks:"];
  for (const c of f.checks) {
    const label = c.status === "missing" && c.blocks === undefined ? "warn" : LABEL[c.status];
    lines.push(`  ${label.padEnd(7)} ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.status === "missing" && c.fix) lines.push(`  ${"".padEnd(7)} ${"".padEnd(width)}  fix: ${c.fix}`);
  }
  lines.push(
    "",
    "assets:",
    `  origin       ${f.assets.origin === "embedded" ? "embedded in this executable" : "source checkout (built files under .cache/)"}`,
    `  libbpf       ${f.assets.libbpf}`,
    `  BPF objects  ${f.assets.bpfObjects.join(", ") || "none"}`,
    "",
    "offsets snapshot:",
    `  ${coverageText(f)}`,
    "",
  );
  // Advice only: --propagate is opt-in, and fails by itself (exit 22) where it cannot work.
  if (f.propagation) lines.push(propagationLine(f.propagation), "");
  const problem = blockingProblem(f);
  lines.push(problem === undefined ? "verdict: tracing can work on this machine" : `verdict: tracing cannot work here (exit ${EXIT_CODES[problem.code]}, ${problem.code})`);
  return lines.join("\n") + "\n";
}

/** Machine-readable report (one JSON object). */
export function renderDoctorJson(f: DoctorFacts): string {
  const problem = blockingProblem(f);
  return (
    JSON.stringify({
      ...f,
      ok: problem === undefined,
      exitCode: problem === undefined ? 0 : EXIT_CODES[problem.code],
      ...(problem ? { blocking: { code: problem.code, message: problem.message, hint: problem.hint } } : {}),
    }) + "\n"
  );
}

export interface DoctorOptions {
  json?: boolean;
}

export async function doctorCommand(
  o: DoctorOptions,
  deps: { gather?: () => DoctorFacts; write?: (s: string) => Promise<void> } = {},
): Promise<void> {
  const facts = (deps.gather ?? gatherDoctorFacts)();
  const write = deps.write ?? writeStdout;
  await write(o.json ? renderDoctorJson(facts) : renderDoctorText(facts));
  const problem = blockingProblem(facts);
  if (problem) throw problem;
}
