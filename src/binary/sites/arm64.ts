/**
 * @module binary/sites/arm64 — which AArch64 instruction a uprobe should sit on so the kernel
 * SIMULATES it instead of single-stepping it out of line.
 *
 * A64 instructions are fixed 4-byte little-endian words; like returns/arm64.ts each word is
 * matched against encodings from the Arm Architecture Reference Manual (mask/match), no
 * decoder library. Only the handful of forms Go's prologue uses are recognised; anything else
 * ends the walk, so an unknown word can never be stepped over.
 *
 * Simulated on arm64 (Linux arch/arm64/kernel/probes/decode-insn.c, arm_probe_decode_insn, and
 * simulate-insn.c; the masks are those of arch/arm64/include/asm/insn.h): B, BL, B.cond,
 * CBZ/CBNZ, TBZ/TBNZ, BR/BLR/RET, ADR/ADRP, LDR (literal), LDRSW (literal).
 *
 * Go's arm64 prologue (cmd/internal/obj/arm64/obj7.go, stacksplit):
 *   ldr x16, [x28, #16]        MOVD 16(g), R16        (g = R28; writes R16)
 *   cmp sp, x16                CMP R16, RSP           (flags only)
 *   b.ls morestack             BLS                    (simulated)
 * or for larger frames `sub x17, sp, #N; cmp x17, x16`. R16/R17 (IP0/IP1) are Go's scratch
 * registers there (REGRT1/REGRT2); the argument registers R0-R15, g (R28), LR (R30), FP (R29)
 * and SP are untouched until after the branch.
 */
import { hex } from "../bytes.ts";

export interface Arm64ProbeInstruction {
  addr: number;
  length: 4;
  mnemonic: string;
  /** The word and the mnemonic ("b.ls (0x540005a9)"). */
  text: string;
  emulated: boolean;
  kind?: "branch" | "simulated";
}

interface Form {
  mnemonic: string | ((w: number) => string);
  mask: number;
  match: number;
}

const COND = ["eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"];

/** Simulated by the kernel (see the module comment). Order matters only for names. */
const SIMULATED: readonly (Form & { kind: "branch" | "simulated" })[] = [
  { mnemonic: "b", mask: 0xfc000000, match: 0x14000000, kind: "branch" },
  { mnemonic: "bl", mask: 0xfc000000, match: 0x94000000, kind: "branch" },
  { mnemonic: (w) => `b.${COND[w & 0xf]}`, mask: 0xff000010, match: 0x54000000, kind: "branch" },
  { mnemonic: (w) => ((w >>> 24) & 1 ? "cbnz" : "cbz"), mask: 0x7e000000, match: 0x34000000, kind: "branch" },
  { mnemonic: (w) => ((w >>> 24) & 1 ? "tbnz" : "tbz"), mask: 0x7e000000, match: 0x36000000, kind: "branch" },
  { mnemonic: "br", mask: 0xfffffc1f, match: 0xd61f0000, kind: "branch" },
  { mnemonic: "blr", mask: 0xfffffc1f, match: 0xd63f0000, kind: "branch" },
  { mnemonic: "ret", mask: 0xfffffc1f, match: 0xd65f0000, kind: "branch" },
  { mnemonic: "adr", mask: 0x9f000000, match: 0x10000000, kind: "simulated" },
  { mnemonic: "adrp", mask: 0x9f000000, match: 0x90000000, kind: "simulated" },
  { mnemonic: "ldr (literal)", mask: 0xbf000000, match: 0x18000000, kind: "simulated" },
  { mnemonic: "ldrsw (literal)", mask: 0xff000000, match: 0x98000000, kind: "simulated" },
];

/** Registers a prologue may write before the probe site: R16, R17 (IP0/IP1, Go's REGRT1/REGRT2). */
const SCRATCH = new Set([16, 17]);

const matches = (w: number, f: { mask: number; match: number }) => (w & f.mask) >>> 0 === f.match >>> 0;
const nameOf = (f: Form, w: number) => (typeof f.mnemonic === "string" ? f.mnemonic : f.mnemonic(w));

/** The simulated form of `word`, if the kernel simulates it. */
export function arm64Simulated(word: number): { mnemonic: string; kind: "branch" | "simulated" } | undefined {
  for (const f of SIMULATED) if (matches(word, f)) return { mnemonic: nameOf(f, word), kind: f.kind };
  return undefined;
}

/**
 * A word that only reads registers/memory and writes scratch registers or the flags, as the Go
 * prologue does; its mnemonic, or a reason it may not be stepped over.
 */
export function arm64ScratchOnly(word: number): { ok: true; mnemonic: string } | { ok: false; mnemonic: string; why: string } {
  const rd = word & 0x1f;
  const s = (word >>> 29) & 1;
  const op = (word >>> 30) & 1;
  const dest = (r: number) => (r === 31 ? "sp" : `x${r}`);
  // ADD/SUB (immediate): sf op S 100010 sh imm12 Rn Rd. Rd = 31 is SP unless S (then XZR: CMP/CMN).
  if (matches(word, { mask: 0x1f800000, match: 0x11000000 })) {
    const m = s ? (rd === 31 ? (op ? "cmp" : "cmn") : op ? "subs" : "adds") : op ? "sub" : "add";
    if ((s && rd === 31) || SCRATCH.has(rd)) return { ok: true, mnemonic: m };
    return { ok: false, mnemonic: m, why: `writes ${dest(rd)}` };
  }
  // ADD/SUB (shifted register): sf op S 01011 shift 0 Rm imm6 Rn Rd. Rd = 31 is XZR.
  // ADD/SUB (extended register): sf op S 01011 00 1 Rm option imm3 Rn Rd. Rd = 31 is SP unless S.
  const shifted = matches(word, { mask: 0x1f200000, match: 0x0b000000 });
  const extended = matches(word, { mask: 0x1fe00000, match: 0x0b200000 });
  if (shifted || extended) {
    const m = s && rd === 31 ? (op ? "cmp" : "cmn") : `${op ? "sub" : "add"}${s ? "s" : ""}`;
    if (SCRATCH.has(rd) || (rd === 31 && (s || shifted))) return { ok: true, mnemonic: m };
    return { ok: false, mnemonic: m, why: `writes ${rd === 31 ? "sp" : dest(rd)}` };
  }
  // LDR (immediate, unsigned offset), 64- and 32-bit: 1x 111 0 01 01 imm12 Rn Rt.
  if (matches(word, { mask: 0xbfc00000, match: 0xb9400000 })) {
    if (SCRATCH.has(rd)) return { ok: true, mnemonic: "ldr" };
    return { ok: false, mnemonic: "ldr", why: `writes ${rd === 31 ? "xzr" : `x${rd}`}` };
  }
  // MOVN/MOVZ/MOVK: sf opc 100101 hw imm16 Rd (opc 01 is unallocated).
  if (matches(word, { mask: 0x1f800000, match: 0x12800000 }) && ((word >>> 29) & 3) !== 1) {
    const m = ["movn", "?", "movz", "movk"][(word >>> 29) & 3]!;
    if (SCRATCH.has(rd)) return { ok: true, mnemonic: m };
    return { ok: false, mnemonic: m, why: `writes x${rd}` };
  }
  return { ok: false, mnemonic: `.word ${hex(word >>> 0)}`, why: "is not a prologue instruction this walk knows" };
}

function describe(addr: number, word: number): Arm64ProbeInstruction {
  const sim = arm64Simulated(word);
  const mnemonic = sim?.mnemonic ?? arm64ScratchOnly(word).mnemonic;
  return { addr, length: 4, mnemonic, text: `${mnemonic} (${hex(word >>> 0)})`, emulated: sim !== undefined, ...(sim ? { kind: sim.kind } : {}) };
}

export type Arm64EntryWalk =
  | { found: true; site: Arm64ProbeInstruction; skipped: Arm64ProbeInstruction[] }
  | { found: false; reason: string; first?: Arm64ProbeInstruction };

/** Walk from `entry` to the first simulated word, stepping over at most `maxSkipped` scratch-only ones. */
export function walkEntryArm64(code: Uint8Array, entry: number, opts: { maxSkipped: number }): Arm64EntryWalk {
  if (entry % 4 !== 0) return { found: false, reason: `entry ${hex(entry)} is not 4-byte aligned` };
  if (code.length < 4) return { found: false, reason: "the function has no complete instruction" };
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const skipped: Arm64ProbeInstruction[] = [];
  let first: Arm64ProbeInstruction | undefined;
  for (let off = 0; off + 4 <= code.length; off += 4) {
    const word = view.getUint32(off, true);
    const here = describe(entry + off, word);
    first ??= here;
    if (here.emulated) return { found: true, site: here, skipped };
    const scratch = arm64ScratchOnly(word);
    if (!scratch.ok) return { found: false, reason: `'${scratch.mnemonic}' at ${hex(entry + off)} ${scratch.why} before any instruction the kernel simulates`, first };
    skipped.push(here);
    if (skipped.length > opts.maxSkipped) return { found: false, reason: `no instruction the kernel simulates within the first ${opts.maxSkipped + 1} instructions`, first };
  }
  return { found: false, reason: `the function ends after ${skipped.length} instruction(s) without a simulated one`, first };
}

/** The word at `addr` judged as a probe site. */
export function probeInstructionArm64(code: Uint8Array, codeAddr: number, addr: number): Arm64ProbeInstruction | { error: string } {
  const off = addr - codeAddr;
  if (!Number.isSafeInteger(off) || off < 0 || off + 4 > code.length) return { error: `${hex(addr)} is outside the given code` };
  if (addr % 4 !== 0) return { error: `${hex(addr)} is not 4-byte aligned` };
  return describe(addr, new DataView(code.buffer, code.byteOffset, code.byteLength).getUint32(off, true));
}
