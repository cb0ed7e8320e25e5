/**
 * @module binary/sites/amd64 — which x86-64 instruction a uprobe should sit on so the kernel
 * EMULATES it instead of single-stepping it, decoded with iced-x86 (never byte patterns).
 *
 * Why: a uprobe replaces one instruction with INT3. On the hit the kernel must then run the
 * original instruction: for most it copies it into an "execute out of line" slot and
 * single-steps it (a second trap, ~12 µs per hit measured on a KVM guest), but a few it
 * emulates in the trap handler (~1 µs). Linux arch/x86/kernel/uprobes.c decides in
 * arch_uprobe_analyze_insn:
 *  - branch_setup_xol_ops: JMP rel8/rel32 (EB, E9), CALL rel32 (E8), Jcc rel8 (70-7F) and
 *    Jcc rel32 (0F 80-8F) — but not with a 0x66 prefix (rejected "-ENOTSUPP") —, NOP (0x90 with
 *    any prefixes) and the kernel's own multi-byte NOPs (x86_nops[len], len <= ASM_NOP_MAX = 8);
 *  - push_setup_xol_ops (newer kernels): PUSH r64, one byte 50-57 or REX 41 + 50-57 (no other
 *    prefix, no REX.W).
 * Everything else (CMP, SUB, MOV, LEA, RET, POP...) is single-stepped.
 *
 * Go's amd64 prologue is `CMPQ SP, 16(R14)` (or `LEAQ -N(SP), R12; CMPQ R12, 16(R14)`) followed
 * by `JBE morestack`: the JBE is emulated and nothing before it touches an argument register,
 * SP, BP or memory, so a probe on it sees exactly what a probe on the entry would — at a
 * twelfth of the cost. The walk below generalises that: it accepts, before the emulated
 * instruction, only straight-line instructions whose every write goes to a scratch register
 * (R12, R13: Go's ABIInternal leaves them free at entry, see the Go internal ABI spec,
 * "amd64 architecture") or to RFLAGS; memory may be read, never written.
 */
import { iced, keyMnemonics, mnemonicName, type Iced } from "../../vendor/iced/index.ts";
import { hex } from "../bytes.ts";

/** How the kernel runs the original instruction after a uprobe hit on it. */
export type EmulationKind = "branch" | "call" | "nop" | "push";

/** One decoded instruction, judged as a uprobe site. */
export interface Amd64ProbeInstruction {
  addr: number;
  length: number;
  /** Lower-case mnemonic ("jbe", "cmp"). */
  mnemonic: string;
  /** The whole instruction in Intel syntax ("jbe 0x64d834"); formatted when first read (withLazyText). */
  text: string;
  emulated: boolean;
  /** When emulated: which kernel path emulates it. */
  kind?: EmulationKind;
}

/**
 * Multi-byte NOPs the x86 kernel emulates: its x86_nops table (arch/x86/include/asm/nops.h,
 * BYTES_NOP1..BYTES_NOP8), compared byte for byte with the probed instruction.
 */
const KERNEL_NOPS: readonly (readonly number[])[] = [
  [0x90],
  [0x66, 0x90],
  [0x0f, 0x1f, 0x00],
  [0x0f, 0x1f, 0x40, 0x00],
  [0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
  [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/** Legacy prefix bytes (Intel SDM vol. 2A, 2.1.1); REX (40-4F) comes after them. */
const LEGACY_PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/** The legacy prefixes of an instruction's bytes, and whether a REX byte follows them. */
function prefixesOf(bytes: Uint8Array): { legacy: number[]; rex: number | undefined } {
  const legacy: number[] = [];
  let i = 0;
  while (i < bytes.length - 1 && LEGACY_PREFIXES.has(bytes[i]!)) legacy.push(bytes[i++]!);
  const b = bytes[i];
  return { legacy, rex: b !== undefined && b >= 0x40 && b <= 0x4f && i < bytes.length - 1 ? b : undefined };
}

/**
 * Whether (and how) the kernel emulates the decoded instruction `ins` whose bytes are `bytes`.
 * Mirrors arch/x86/kernel/uprobes.c (see the module comment); `emulatesPush` = the kernel has
 * push_setup_xol_ops.
 */
export function amd64EmulationKind(x: Iced, ins: InstanceType<Iced["Instruction"]>, bytes: Uint8Array, emulatesPush = true): EmulationKind | undefined {
  const { legacy, rex } = prefixesOf(bytes);
  // NOP first: the kernel checks x86_nops before the opcode switch (so 66 90 is emulated).
  if (bytes.length <= 8 && KERNEL_NOPS.some((n) => n.length === bytes.length && n.every((b, i) => bytes[i] === b))) return "nop";
  // Told apart by mnemonic and opcode byte, not by iced's Code enum: the first use of x.Code
  // builds its ~4,900 members (11-21 ms of start-up, bench/RESULTS.md). Same answers
  // (tests/unit/binary/probe-sites.test.ts compares them over every instruction of a binary):
  // - Code.Nopw/Nopd/Nopq are NOP with opcode 90 (o16/o32/o64); 0F 1F is Nop_rm*, PAUSE is F3 90;
  // - Code.Call_rel32_64 is the only near direct call (isCallNear) of 64-bit code (a 66 prefix
  //   is refused below either way);
  // - Code.Push_r64 is the only PUSH of one byte, or of two starting with REX 41 (50+r).
  const M = keyMnemonics(x);
  const opcode = bytes[legacy.length + (rex === undefined ? 0 : 1)];
  if (ins.mnemonic === M.nop && opcode === 0x90) return rex === undefined ? "nop" : undefined;
  const call = ins.isCallNear;
  if (ins.isJccShortOrNear || ins.isJmpShortOrNear || call) {
    // 16-bit operand-size overrides (66 E8 ...) are refused by the kernel.
    if (legacy.includes(0x66)) return undefined;
    return call ? "call" : "branch";
  }
  if (emulatesPush && ins.mnemonic === M.push && legacy.length === 0 && (bytes.length === 1 || (bytes.length === 2 && rex === 0x41))) return "push";
  return undefined;
}

/** amd64EmulationKind as it was, by iced's Code enum: what the tests compare it with. */
export function amd64EmulationKindByCode(x: Iced, ins: InstanceType<Iced["Instruction"]>, bytes: Uint8Array, emulatesPush = true): EmulationKind | undefined {
  const { legacy, rex } = prefixesOf(bytes);
  if (bytes.length <= 8 && KERNEL_NOPS.some((n) => n.length === bytes.length && n.every((b, i) => bytes[i] === b))) return "nop";
  const C = x.Code;
  if (ins.code === C.Nopd || ins.code === C.Nopw || ins.code === C.Nopq) return rex === undefined ? "nop" : undefined;
  if (ins.isJccShortOrNear || ins.isJmpShortOrNear || ins.code === C.Call_rel32_64) {
    if (legacy.includes(0x66)) return undefined;
    return ins.code === C.Call_rel32_64 ? "call" : "branch";
  }
  if (emulatesPush && ins.code === C.Push_r64 && legacy.length === 0 && (bytes.length === 1 || (bytes.length === 2 && rex === 0x41))) return "push";
  return undefined;
}

/**
 * Registers a Go function may write before its probe site without changing what an entry probe
 * would read: the scratch registers R12 and R13 (every width). R14 (g), R15 (GOT pointer with
 * -dynlink), SP, BP and the argument registers RAX RBX RCX RDI RSI R8-R11 are never allowed.
 */
function scratchRegisters(x: Iced): Set<number> {
  const R = x.Register;
  return new Set([R.R12, R.R12D, R.R12W, R.R12L, R.R13, R.R13D, R.R13W, R.R13L]);
}

/** OpAccess values that write (iced-x86 OpAccess: Write, CondWrite, ReadWrite, ReadCondWrite). */
function writeAccesses(x: Iced): Set<number> {
  const A = x.OpAccess;
  return new Set([A.Write, A.CondWrite, A.ReadWrite, A.ReadCondWrite]);
}

/** Why `ins` may not be stepped over on the way to a probe site, or undefined when it may. */
function unsafeBecause(
  x: Iced,
  info: InstanceType<Iced["InstructionInfo"]>,
  ins: InstanceType<Iced["Instruction"]>,
  scratch: Set<number>,
): string | undefined {
  if (ins.flowControl !== x.FlowControl.Next) return "changes control flow";
  if (ins.isStackInstruction) return "writes rsp (a stack instruction)";
  if (ins.isSaveRestoreInstruction) return "saves or restores register state";
  if (ins.isPrivileged) return "is privileged";
  const mems = info.usedMemory() as InstanceType<Iced["UsedMemory"]>[];
  const regs = info.usedRegisters() as InstanceType<Iced["UsedRegister"]>[];
  try {
    const writes = writeAccesses(x);
    for (const m of mems) if (writes.has(m.access)) return "writes memory";
    for (const r of regs) {
      if (writes.has(r.access) && !scratch.has(r.register)) return `writes ${(x.Register[r.register] ?? String(r.register)).toLowerCase()}`;
    }
  } finally {
    for (const m of mems) m.free();
    for (const r of regs) r.free();
  }
  return undefined;
}

/**
 * Gives `obj` a `text` property (the instruction in `bytes` at `addr`, Intel syntax) that is
 * formatted when first read. Attaching never reads it (only `inspect` and messages do), and
 * iced's formatter costs 6-23 ms of start-up the first time one is made (bench/RESULTS.md,
 * start-up). The bytes are copied: `code` may be a view of the whole mapped target file.
 */
export function withLazyText<T extends object>(obj: T, bytes: Uint8Array, addr: number): T & { text: string } {
  const own = bytes.slice();
  return defineLazy(obj, "text", () => formatInstruction(own, addr));
}

/** An enumerable property computed on its first read, then kept as a plain value. */
export function defineLazy<T extends object, K extends string, V>(obj: T, key: K, compute: () => V): T & Record<K, V> {
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = compute();
      Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      return value;
    },
  });
  return obj as T & Record<K, V>;
}

/** One instruction formatted on its own (decoded again: the caller's decoder is gone by then). */
function formatInstruction(bytes: Uint8Array, addr: number): string {
  const x = iced();
  const decoder = new x.Decoder(64, bytes, x.DecoderOptions.None);
  decoder.ip = BigInt(addr);
  const ins = new x.Instruction();
  const formatter = newFormatter(x);
  try {
    decoder.decodeOut(ins);
    return formatter.format(ins);
  } finally {
    decoder.free();
    ins.free();
    formatter.free();
  }
}

/** Intel syntax the way objdump -M intel prints it: "jbe 0x64d834", "cmp rsp, [r14+0x10]". */
function newFormatter(x: Iced): InstanceType<Iced["Formatter"]> {
  const f = new x.Formatter(x.FormatterSyntax.Intel);
  f.hexPrefix = "0x";
  f.hexSuffix = "";
  f.uppercaseHex = false;
  f.branchLeadingZeros = false;
  f.showBranchSize = false;
  f.spaceAfterOperandSeparator = true;
  f.smallHexNumbersInDecimal = false;
  return f;
}

/** Result of the entry walk, before the caller adds the fallback address. */
export type Amd64EntryWalk =
  | { found: true; site: Amd64ProbeInstruction; skipped: Amd64ProbeInstruction[] }
  | { found: false; reason: string; first?: Amd64ProbeInstruction };

/**
 * Walk straight-line from `entry` (code = the function's bytes from its entry) to the first
 * instruction the kernel emulates, stepping over at most `maxSkipped` scratch-only ones.
 */
export function walkEntryAmd64(code: Uint8Array, entry: number, opts: { maxSkipped: number; emulatesPush?: boolean }): Amd64EntryWalk {
  const x = iced();
  if (code.length === 0) return { found: false, reason: "the function has no bytes" };
  const decoder = new x.Decoder(64, code, x.DecoderOptions.None);
  decoder.ip = BigInt(entry);
  const ins = new x.Instruction();
  const factory = new x.InstructionInfoFactory();
  const scratch = scratchRegisters(x);
  const skipped: Amd64ProbeInstruction[] = [];
  let first: Amd64ProbeInstruction | undefined;
  try {
    for (;;) {
      if (!decoder.canDecode) return { found: false, reason: `the function ends after ${skipped.length} instruction(s) without an emulated one`, first };
      const off = decoder.position;
      decoder.decodeOut(ins);
      if (ins.isInvalid) return { found: false, reason: `undecodable instruction at ${hex(entry + off)}`, first };
      const bytes = code.subarray(off, off + ins.length);
      const kind = amd64EmulationKind(x, ins, bytes, opts.emulatesPush ?? true);
      const here: Amd64ProbeInstruction = withLazyText(
        {
          addr: entry + off,
          length: ins.length,
          mnemonic: mnemonicName(x, ins.mnemonic),
          emulated: kind !== undefined,
          ...(kind ? { kind } : {}),
        },
        bytes,
        entry + off,
      );
      first ??= here;
      if (kind !== undefined) return { found: true, site: here, skipped };
      const info = factory.info(ins);
      let why: string | undefined;
      try {
        why = unsafeBecause(x, info, ins, scratch);
      } finally {
        info.free();
      }
      if (why !== undefined) {
        return { found: false, reason: `'${here.text}' at ${hex(here.addr)} ${why} before any instruction the kernel emulates`, first };
      }
      skipped.push(here);
      if (skipped.length > opts.maxSkipped) {
        return { found: false, reason: `no instruction the kernel emulates within the first ${opts.maxSkipped + 1} instructions`, first };
      }
    }
  } finally {
    // wasm-bindgen objects own WASM heap memory and this glue has no FinalizationRegistry.
    decoder.free();
    ins.free();
    factory.free();
  }
}

/** The instruction at `addr` (inside [codeAddr, codeAddr + code.length)) judged as a probe site. */
export function probeInstructionAmd64(code: Uint8Array, codeAddr: number, addr: number, emulatesPush = true): Amd64ProbeInstruction | { error: string } {
  const off = addr - codeAddr;
  if (!Number.isSafeInteger(off) || off < 0 || off >= code.length) return { error: `${hex(addr)} is outside the given code` };
  const x = iced();
  const bytesFrom = code.subarray(off, Math.min(code.length, off + 15));
  const decoder = new x.Decoder(64, bytesFrom, x.DecoderOptions.None);
  decoder.ip = BigInt(addr);
  const ins = new x.Instruction();
  try {
    decoder.decodeOut(ins);
    if (ins.isInvalid) return { error: `undecodable instruction at ${hex(addr)}` };
    const bytes = bytesFrom.subarray(0, ins.length);
    const kind = amd64EmulationKind(x, ins, bytes, emulatesPush);
    return withLazyText(
      {
        addr,
        length: ins.length,
        mnemonic: mnemonicName(x, ins.mnemonic),
        emulated: kind !== undefined,
        ...(kind ? { kind } : {}),
      },
      bytes,
      addr,
    );
  } finally {
    decoder.free();
    ins.free();
  }
}
