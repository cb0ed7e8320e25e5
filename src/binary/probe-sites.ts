/**
 * @module binary/probe-sites — where an "entry" uprobe should really sit, and whether the kernel
 * will emulate the instruction under it.
 *
 * Why: a uprobe hit on an instruction the kernel must single-step costs about twelve times one
 * on an instruction it emulates (~12 µs vs ~1 µs measured on an x86-64 KVM guest; `beetrace
 * doctor` measures both on the host). Go functions begin with a stack check whose conditional
 * branch the kernel emulates (x86: JBE, arm64: B.LS), and nothing before that branch touches an
 * argument register, g, SP, BP or memory — so a probe on the branch reads exactly the registers
 * an entry probe would. See docs/probe-placement.md and the per-arch modules for the rules:
 * sites/amd64.ts (iced-x86 decode) and sites/arm64.ts (A64 word encodings).
 *
 * Never throws for bad code: when the walk cannot prove a later site safe (unknown or writing
 * instruction first, undecodable bytes, too long a walk) the entry itself is returned with
 * emulated=false and the reason — a correct, slower probe.
 */
import { TracerError } from "../errors.ts";
import { hex } from "./bytes.ts";
import type { Arch } from "./returns.ts";
import { defineLazy, probeInstructionAmd64, walkEntryAmd64, type EmulationKind } from "./sites/amd64.ts";
import { probeInstructionArm64, walkEntryArm64 } from "./sites/arm64.ts";

export type { Arch } from "./returns.ts";

/**
 * At most this many instructions are stepped over before the probe site. Go's prologues need
 * one (CMPQ; arm64: LDR, CMP = two) to three (huge frames: MOVQ SP, R12; SUBQ; JCS... / LDR,
 * MOVD, SUB, CMP); a longer straight run is not a stack check and is not worth reasoning about.
 */
export const MAX_SKIPPED_INSTRUCTIONS = 4;

/** How the kernel runs the probed instruction without single-stepping it. */
export type ProbeEmulation = EmulationKind | "simulated";

export interface EntryProbeSite {
  /** Virtual address to attach the uprobe at (the entry itself when emulated=false). */
  addr: number;
  /** Lower-case mnemonic of the instruction there ("jbe", "b.ls", "cmp", "sub"). */
  mnemonic: string;
  /** True when the kernel emulates/simulates this instruction (no single-step). */
  emulated: boolean;
  /** Why the site is the entry and not emulated (absent when emulated). */
  reason?: string;
  /** Which kernel path emulates it: branch/call/nop/push (x86), branch/simulated (arm64). */
  kind?: ProbeEmulation;
  /** The instruction in full ("jbe 0x64d834"; arm64: "b.ls (0x540005a9)"). */
  text?: string;
  /** Instructions executed between the entry and the site (each reads only / writes scratch). */
  skipped: { addr: number; text: string }[];
}

export interface EntryProbeOptions {
  /**
   * The kernel emulates PUSH r64 (x86 push_setup_xol_ops, absent from older kernels). Default
   * true; pass false for a kernel without it so a PUSH-first function keeps a plain entry probe.
   */
  emulatesPush?: boolean;
  /** Default MAX_SKIPPED_INSTRUCTIONS. */
  maxSkipped?: number;
}

function checkArgs(what: string, arch: Arch, addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) throw new TracerError("internal", `${what}: address ${String(addr)} is not valid`);
  if (arch !== "x86_64" && arch !== "aarch64") {
    const name: string = arch;
    throw new TracerError("unsupported_arch", `${what}: unsupported architecture '${name}'`, { hint: "beetrace supports x86_64 and aarch64 Go binaries" });
  }
}

/**
 * The first instruction, walking straight-line from `entry`, that the kernel emulates, provided
 * every instruction before it only reads registers/memory and writes scratch registers or flags
 * (x86: R12, R13; arm64: R16, R17). Otherwise the entry itself, emulated only if the entry
 * instruction is, with the reason. `code` = the function's bytes starting at `entry` (the whole
 * function or at least its first ~64 bytes).
 */
export function entryProbeSite(arch: Arch, code: Uint8Array, entry: number, opts: EntryProbeOptions = {}): EntryProbeSite {
  checkArgs("entryProbeSite", arch, entry);
  const maxSkipped = opts.maxSkipped ?? MAX_SKIPPED_INSTRUCTIONS;
  const walk = arch === "x86_64" ? walkEntryAmd64(code, entry, { maxSkipped, emulatesPush: opts.emulatesPush }) : walkEntryArm64(code, entry, { maxSkipped });
  if (walk.found) {
    const s = walk.site;
    // text is read from the walk's instructions only when asked for (amd64: formatted then).
    return defineLazy(
      {
        addr: s.addr,
        mnemonic: s.mnemonic,
        emulated: true as boolean,
        ...(s.kind ? { kind: s.kind } : {}),
        skipped: walk.skipped.map((i) => defineLazy({ addr: i.addr }, "text", () => i.text)),
      },
      "text",
      () => s.text,
    );
  }
  // The walk found no emulated instruction, so the entry one is not emulated either.
  const first = walk.first;
  return {
    addr: entry,
    mnemonic: first?.mnemonic ?? "?",
    emulated: false,
    reason: walk.reason,
    ...(first ? { text: first.text } : {}),
    skipped: [],
  };
}

export interface ProbeInstruction {
  addr: number;
  mnemonic: string;
  text: string;
  length: number;
  emulated: boolean;
  kind?: ProbeEmulation;
}

/**
 * The single instruction at `addr` judged as a uprobe site (for sites chosen elsewhere: return
 * sites, end markers). `code` holds the bytes of [codeAddr, codeAddr + code.length), e.g. the
 * whole function with codeAddr = its entry. Throws TracerError (corrupt_binary) when `addr` is
 * outside the code or does not start a decodable instruction.
 */
export function classifyProbeInstruction(arch: Arch, code: Uint8Array, codeAddr: number, addr: number, opts: { emulatesPush?: boolean } = {}): ProbeInstruction {
  checkArgs("classifyProbeInstruction", arch, codeAddr);
  const r = arch === "x86_64" ? probeInstructionAmd64(code, codeAddr, addr, opts.emulatesPush ?? true) : probeInstructionArm64(code, codeAddr, addr);
  if ("error" in r) {
    throw new TracerError("corrupt_binary", `probe site ${hex(addr)} (code at ${hex(codeAddr)}): ${r.error}`, {
      hint: "the site address or the function bounds may be wrong, or the binary damaged",
    });
  }
  return defineLazy({ addr: r.addr, mnemonic: r.mnemonic, length: r.length, emulated: r.emulated, ...(r.kind ? { kind: r.kind } : {}) }, "text", () => r.text);
}

/** Convenience: is the instruction at `addr` one the kernel emulates? (false when undecodable) */
export function isEmulatedAt(arch: Arch, code: Uint8Array, codeAddr: number, addr: number, opts: { emulatesPush?: boolean } = {}): boolean {
  try {
    return classifyProbeInstruction(arch, code, codeAddr, addr, opts).emulated;
  } catch (e) {
    if (e instanceof TracerError && e.code === "corrupt_binary") return false;
    throw e;
  }
}
