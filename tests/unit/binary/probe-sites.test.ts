/**
 * @module tests/unit/binary/probe-sites — where entry probes sit: hand-assembled x86-64 and A64
 * code, and real Go builds (amd64 default and PIE, arm64 cross-build) checked against objdump /
 * llvm-objdump, which decode independently of iced-x86.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { TracerError } from "../../../src/errors.ts";
import { openGoBinary, type BinaryAnalysis } from "../../../src/binary/analyze.ts";
import { classifyProbeInstruction, entryProbeSite, isEmulatedAt, MAX_SKIPPED_INSTRUCTIONS } from "../../../src/binary/probe-sites.ts";
import { buildProbeFixture } from "./probe-sites-fixture.ts";
import { amd64EmulationKind, amd64EmulationKindByCode } from "../../../src/binary/sites/amd64.ts";
import { iced } from "../../../src/vendor/iced/index.ts";

/** amd64EmulationKind (by mnemonic and opcode) and the Code-enum version agree on every instruction of `code`; returns the count. */
function sameEmulationKinds(code: Uint8Array): number {
  const x = iced();
  const d = new x.Decoder(64, code, x.DecoderOptions.None);
  const ins = new x.Instruction();
  let n = 0;
  try {
    while (d.canDecode) {
      const off = d.position;
      d.decodeOut(ins);
      if (ins.isInvalid) break;
      const bytes = code.subarray(off, off + ins.length);
      for (const push of [true, false]) {
        const hexBytes = Buffer.from(bytes).toString("hex");
        expect({ hexBytes, push, kind: amd64EmulationKind(x, ins, bytes, push) }).toEqual({ hexBytes, push, kind: amd64EmulationKindByCode(x, ins, bytes, push) });
      }
      n++;
    }
  } finally {
    d.free();
    ins.free();
  }
  return n;
}

const x86 = (...b: number[]) => new Uint8Array(b);

/** Little-endian bytes of A64 words. */
function a64(...words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  return b;
}

// x86-64 encodings (Intel SDM vol. 2; checked with objdump -M intel).
const CMP_RSP_G = [0x49, 0x3b, 0x66, 0x10]; // cmp rsp, [r14+0x10]
const JBE8 = [0x76, 0x10]; // jbe +0x10
const JBE32 = [0x0f, 0x86, 0x00, 0x01, 0x00, 0x00]; // jbe +0x100
const LEA_R12 = [0x4c, 0x8d, 0xa4, 0x24, 0xa8, 0xfe, 0xff, 0xff]; // lea r12, [rsp-0x158]
const CMP_R12_G = [0x4d, 0x3b, 0x66, 0x10]; // cmp r12, [r14+0x10]
const PUSH_RBP = [0x55];
const MOV_RBP_RSP = [0x48, 0x89, 0xe5];
const SUB_RSP = [0x48, 0x83, 0xec, 0x18]; // sub rsp, 0x18
const MOV_RAX_RCX = [0x48, 0x89, 0xc8]; // mov rax, rcx
const MOV_MEM_R12 = [0x4c, 0x89, 0x24, 0x24]; // mov [rsp], r12
const CMP_R12_R13 = [0x4d, 0x39, 0xec]; // cmp r12, r13
const RET = [0xc3];

describe("entryProbeSite x86_64 (hand-assembled)", () => {
  test("Go's small-frame prologue: the JBE after CMPQ SP, 16(R14)", () => {
    const s = entryProbeSite("x86_64", x86(...CMP_RSP_G, ...JBE8, ...PUSH_RBP, ...RET), 0x401000);
    expect(s).toMatchObject({ addr: 0x401004, mnemonic: "jbe", emulated: true, kind: "branch", text: "jbe 0x401016" });
    expect(s.reason).toBeUndefined();
    expect(s.skipped).toEqual([{ addr: 0x401000, text: "cmp rsp, [r14+0x10]" }]);
  });

  test("big-frame prologue: LEAQ into R12 and CMPQ R12 are stepped over to the JBE rel32", () => {
    const s = entryProbeSite("x86_64", x86(...LEA_R12, ...CMP_R12_G, ...JBE32, ...RET), 0x2000);
    expect(s).toMatchObject({ addr: 0x200c, mnemonic: "jbe", emulated: true, kind: "branch" });
    expect(s.skipped.map((i) => i.text)).toEqual(["lea r12, [rsp-0x158]", "cmp r12, [r14+0x10]"]);
  });

  test("SUBQ first (no stack check, not emulated): the entry, emulated=false, with the reason", () => {
    const s = entryProbeSite("x86_64", x86(...SUB_RSP, ...JBE8, ...RET), 0x3000);
    expect(s).toMatchObject({ addr: 0x3000, mnemonic: "sub", emulated: false, skipped: [] });
    expect(s.reason).toBe("'sub rsp, 0x18' at 0x3000 writes rsp before any instruction the kernel emulates");
  });

  test("a write to RAX before the jump: the probe is not moved past it", () => {
    const s = entryProbeSite("x86_64", x86(...CMP_RSP_G, ...MOV_RAX_RCX, ...JBE8, ...RET), 0x4000);
    expect(s).toMatchObject({ addr: 0x4000, mnemonic: "cmp", emulated: false });
    expect(s.reason).toContain("'mov rax, rcx' at 0x4004 writes rax");
  });

  test("a memory write before the jump stops the walk", () => {
    const s = entryProbeSite("x86_64", x86(...MOV_MEM_R12, ...JBE8), 0x4000);
    expect(s).toMatchObject({ addr: 0x4000, emulated: false });
    expect(s.reason).toContain("writes memory");
  });

  test("PUSHQ BP first (NOSPLIT functions) is emulated at the entry, unless the kernel lacks push emulation", () => {
    const code = x86(...PUSH_RBP, ...MOV_RBP_RSP, ...RET);
    expect(entryProbeSite("x86_64", code, 0x5000)).toMatchObject({ addr: 0x5000, mnemonic: "push", emulated: true, kind: "push", skipped: [] });
    const old = entryProbeSite("x86_64", code, 0x5000, { emulatesPush: false });
    expect(old).toMatchObject({ addr: 0x5000, mnemonic: "push", emulated: false });
    expect(old.reason).toContain("writes rsp");
    // PUSH R12 (41 54) is emulated; PUSH with REX.W (48 55) or a 66 prefix is not.
    expect(entryProbeSite("x86_64", x86(0x41, 0x54), 0).emulated).toBe(true);
    expect(entryProbeSite("x86_64", x86(0x48, 0x55), 0).emulated).toBe(false);
    expect(entryProbeSite("x86_64", x86(0x66, 0x55), 0).emulated).toBe(false);
  });

  test("JMP, CALL rel32 and the kernel's NOPs are emulated; a 66-prefixed CALL is not", () => {
    expect(entryProbeSite("x86_64", x86(0xeb, 0x00), 0)).toMatchObject({ emulated: true, kind: "branch", mnemonic: "jmp" });
    expect(entryProbeSite("x86_64", x86(0xe9, 0, 0, 0, 0), 0)).toMatchObject({ emulated: true, kind: "branch" });
    expect(entryProbeSite("x86_64", x86(0xe8, 0, 0, 0, 0), 0)).toMatchObject({ emulated: true, kind: "call", mnemonic: "call" });
    expect(entryProbeSite("x86_64", x86(0x90), 0)).toMatchObject({ emulated: true, kind: "nop" });
    expect(entryProbeSite("x86_64", x86(0x66, 0x90), 0)).toMatchObject({ emulated: true, kind: "nop" });
    expect(entryProbeSite("x86_64", x86(0x0f, 0x1f, 0x44, 0x00, 0x00), 0)).toMatchObject({ emulated: true, kind: "nop" });
    // nopw 0x0(%rax,%rax,1) with an extra 2e prefix: not in x86_nops, so single-stepped.
    expect(entryProbeSite("x86_64", x86(0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0), 0).emulated).toBe(false);
    expect(entryProbeSite("x86_64", x86(0x66, 0xe8, 0, 0), 0).emulated).toBe(false);
    // RET is single-stepped (not in branch_setup_xol_ops).
    expect(entryProbeSite("x86_64", x86(...RET), 0)).toMatchObject({ emulated: false, mnemonic: "ret" });
  });

  test(`more than ${MAX_SKIPPED_INSTRUCTIONS} harmless instructions: the entry`, () => {
    const many = Array.from({ length: MAX_SKIPPED_INSTRUCTIONS + 1 }, () => CMP_R12_R13).flat();
    const s = entryProbeSite("x86_64", x86(...many, ...JBE8), 0x6000);
    expect(s).toMatchObject({ addr: 0x6000, emulated: false });
    expect(s.reason).toBe(`no instruction the kernel emulates within the first ${MAX_SKIPPED_INSTRUCTIONS + 1} instructions`);
    const enough = Array.from({ length: MAX_SKIPPED_INSTRUCTIONS }, () => CMP_R12_R13).flat();
    expect(entryProbeSite("x86_64", x86(...enough, ...JBE8), 0x6000)).toMatchObject({ addr: 0x6000 + enough.length, emulated: true });
  });

  test("undecodable, truncated or empty code: the entry with a reason, never a throw", () => {
    expect(entryProbeSite("x86_64", x86(0x06), 0x7000)).toMatchObject({ addr: 0x7000, emulated: false, reason: "undecodable instruction at 0x7000" });
    expect(entryProbeSite("x86_64", x86(0x49, 0x3b, 0x66), 0x7000).reason).toBe("undecodable instruction at 0x7000");
    expect(entryProbeSite("x86_64", x86(...CMP_RSP_G), 0x7000).reason).toBe("the function ends after 1 instruction(s) without an emulated one");
    expect(entryProbeSite("x86_64", x86(), 0x7000)).toMatchObject({ addr: 0x7000, emulated: false, mnemonic: "?" });
  });

  test("random bytes: always a site inside the code or the entry, never an exception", () => {
    let seed = 0x1234567;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    let moved = 0;
    for (let i = 0; i < 400; i++) {
      const code = Uint8Array.from({ length: 1 + (i % 40) }, rand);
      const s = entryProbeSite("x86_64", code, 0x10000);
      expect(s.addr).toBeGreaterThanOrEqual(0x10000);
      expect(s.addr).toBeLessThan(0x10000 + code.length);
      if (!s.emulated) expect(s.addr).toBe(0x10000);
      if (s.addr !== 0x10000) moved++;
    }
    expect(moved).toBeLessThan(400);
  });

  test("bad arguments are TracerErrors", () => {
    expect(() => entryProbeSite("x86_64", x86(0x90), -1)).toThrow(TracerError);
    expect(() => entryProbeSite("mips" as never, x86(0x90), 0)).toThrow(TracerError);
  });
});

test("amd64EmulationKind: by mnemonic and opcode byte, the same answers as by iced's Code enum", () => {
  // NOPs with prefixes (cs nop, o16/o64 nop, REX.B 90 = xchg r8d,eax, F3 90 = pause, 0F 1F forms),
  // calls (E8, 66 E8, FF /2), jumps and Jcc (EB, E9, 7x, 0F 8x, 66 EB), pushes (50+r, 41 50+r,
  // 66 50, 48 50, 6A ib, 68 id, FF /6), then ordinary instructions.
  const edge = [
    [0x2e, 0x90], [0x66, 0x90], [0x48, 0x90], [0x41, 0x90], [0xf3, 0x90], [0x66, 0x2e, 0x90], [0x90],
    [0x0f, 0x1f, 0x00], [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00], [0x0f, 0x1f, 0x44, 0x00, 0x01], [0x48, 0x0f, 0x1f, 0x00],
    [0xe8, 0, 0, 0, 0], [0x66, 0xe8, 0, 0, 0, 0], [0x48, 0xe8, 0, 0, 0, 0], [0xff, 0xd0], [0x41, 0xff, 0xd3],
    [0xeb, 0x02], [0xe9, 0, 0, 0, 0], [0x76, 0x10], [0x0f, 0x86, 0, 1, 0, 0], [0x66, 0xeb, 0x02], [0xff, 0xe0],
    [0x55], [0x41, 0x57], [0x66, 0x55], [0x48, 0x55], [0x49, 0x55], [0x6a, 0x01], [0x68, 1, 0, 0, 0], [0xff, 0x34, 0x24],
    CMP_RSP_G, LEA_R12, MOV_RBP_RSP, SUB_RSP, MOV_RAX_RCX, RET,
  ];
  for (const b of edge) expect(sameEmulationKinds(new Uint8Array(b))).toBe(1);
});

describe("classifyProbeInstruction", () => {
  const code = x86(...CMP_RSP_G, ...JBE8, ...PUSH_RBP, ...SUB_RSP, ...RET);
  test("each instruction of a function, by address", () => {
    const at = (a: number) => classifyProbeInstruction("x86_64", code, 0x1000, a);
    expect(at(0x1000)).toMatchObject({ mnemonic: "cmp", emulated: false, length: 4 });
    expect(at(0x1004)).toMatchObject({ mnemonic: "jbe", emulated: true, kind: "branch", length: 2 });
    expect(at(0x1006)).toMatchObject({ mnemonic: "push", emulated: true, kind: "push" });
    expect(at(0x1007)).toMatchObject({ mnemonic: "sub", emulated: false });
    expect(at(0x100b)).toMatchObject({ mnemonic: "ret", emulated: false, text: "ret" });
    expect(isEmulatedAt("x86_64", code, 0x1000, 0x1004)).toBe(true);
    expect(isEmulatedAt("x86_64", code, 0x1000, 0x2000)).toBe(false);
  });
  test("outside the code or undecodable: corrupt_binary", () => {
    expect(() => classifyProbeInstruction("x86_64", code, 0x1000, 0xfff)).toThrow("outside the given code");
    expect(() => classifyProbeInstruction("x86_64", x86(0x06), 0x1000, 0x1000)).toThrow("undecodable");
    expect(() => classifyProbeInstruction("aarch64", a64(0xd65f03c0), 0x1000, 0x1002)).toThrow(TracerError);
  });
  test("arm64 words", () => {
    const c = a64(0xf9400b90, 0x540005a9, 0xd65f03c0);
    expect(classifyProbeInstruction("aarch64", c, 0x1000, 0x1000)).toMatchObject({ mnemonic: "ldr", emulated: false, length: 4 });
    expect(classifyProbeInstruction("aarch64", c, 0x1000, 0x1004)).toMatchObject({ mnemonic: "b.ls", emulated: true });
    expect(classifyProbeInstruction("aarch64", c, 0x1000, 0x1008)).toMatchObject({ mnemonic: "ret", emulated: true });
  });
});

// A64 encodings (Arm ARM; checked with llvm-objdump).
const LDR_X16_G = 0xf9400b90; // ldr x16, [x28, #16]
const CMP_SP_X16 = 0xeb3063ff; // cmp sp, x16
const BLS = 0x540005a9; // b.ls +0xb4
const SUB_X17_SP = 0xd10583f1; // sub x17, sp, #352
const CMP_X17_X16 = 0xeb10023f; // cmp x17, x16
const STP_FP_LR = 0xa9bf7bfd; // stp x29, x30, [sp, #-16]!
const ADD_X0 = 0x91000400; // add x0, x0, #1
const SUB_SP = 0xd10043ff; // sub sp, sp, #16

describe("entryProbeSite aarch64 (hand-assembled words)", () => {
  test("Go's prologue: the B.LS after LDR x16 / CMP", () => {
    const s = entryProbeSite("aarch64", a64(LDR_X16_G, CMP_SP_X16, BLS, STP_FP_LR), 0x10000);
    expect(s).toMatchObject({ addr: 0x10008, mnemonic: "b.ls", emulated: true, kind: "branch" });
    expect(s.skipped.map((i) => i.addr)).toEqual([0x10000, 0x10004]);
  });
  test("big frame: SUB x17, sp / CMP x17, x16 are stepped over", () => {
    expect(entryProbeSite("aarch64", a64(LDR_X16_G, SUB_X17_SP, CMP_X17_X16, BLS), 0x10000)).toMatchObject({ addr: 0x1000c, emulated: true });
  });
  test("a write to x0, to sp, or an unknown word first: the entry with the reason", () => {
    const w0 = entryProbeSite("aarch64", a64(LDR_X16_G, ADD_X0, BLS), 0x10000);
    expect(w0).toMatchObject({ addr: 0x10000, emulated: false, mnemonic: "ldr" });
    expect(w0.reason).toContain("writes x0");
    expect(entryProbeSite("aarch64", a64(SUB_SP, BLS), 0x10000).reason).toContain("writes sp");
    expect(entryProbeSite("aarch64", a64(STP_FP_LR, BLS), 0x10000).reason).toContain("is not a prologue instruction this walk knows");
  });
  test("a branch first (runtime.memmove starts with CBZ) is the entry itself, emulated", () => {
    expect(entryProbeSite("aarch64", a64(0xb40004a2), 0x20000)).toMatchObject({ addr: 0x20000, mnemonic: "cbz", emulated: true, skipped: [] });
  });
  test("random words: always a site inside the code or the entry, never an exception", () => {
    let seed = 0x7654321;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    for (let i = 0; i < 300; i++) {
      const s = entryProbeSite("aarch64", a64(...Array.from({ length: 1 + (i % 8) }, rand)), 0x10000);
      if (!s.emulated) expect(s.addr).toBe(0x10000);
      expect(s.addr).toBeLessThan(0x10000 + 4 * (1 + (i % 8)));
    }
  });
  test("misaligned or short code: the entry with a reason", () => {
    expect(entryProbeSite("aarch64", a64(BLS), 0x10002).emulated).toBe(false);
    expect(entryProbeSite("aarch64", new Uint8Array(3), 0x10000).reason).toBe("the function has no complete instruction");
  });
});

// ---- real Go builds ---------------------------------------------------------------------------

const have = (cmd: string) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).error === undefined;
const skip = !have("go") ? "go is not installed" : !have("objdump") ? "objdump is not installed" : undefined;
const skipArm = skip ?? (!have("llvm-objdump") ? "llvm-objdump is not installed" : undefined);
if (skip) console.warn(`skipping Go probe-site tests: ${skip}`);

/** The functions the tracer probes (entry and end markers). */
const PROBED = [
  "net/http.serverHandler.ServeHTTP",
  "net/http.(*Transport).roundTrip",
  "net/http.(*response).finishRequest",
  "net/http.(*http2responseWriter).handlerDone",
  "net/http.(*response).Hijack",
];

function open(bin: string): BinaryAnalysis {
  return openGoBinary(new Uint8Array(readFileSync(bin)), bin);
}

function siteOf(a: BinaryAnalysis, name: string) {
  const fn = a.pcln.find(name);
  if (!fn) throw new Error(`${name} is not in ${a.path}`);
  return { fn, site: entryProbeSite(a.arch, a.elf.readVirtual(fn.entry, fn.end - fn.entry), fn.entry) };
}

/** objdump's view of [start, stop): "mnemonic operands" per instruction. */
function disasm(tool: string, bin: string, start: number, stop: number, intel: boolean): string[] {
  const args = ["-d", "--no-show-raw-insn", ...(intel ? ["-M", "intel"] : []), `--start-address=0x${start.toString(16)}`, `--stop-address=0x${stop.toString(16)}`, bin];
  const out = execFileSync(tool, args, { encoding: "utf8" });
  const lines: string[] = [];
  for (const l of out.split("\n")) {
    const m = /^\s*[0-9a-f]+:\s+(.*?)\s*(?:<.*>)?$/.exec(l);
    if (m) lines.push(m[1]!.replace(/\s+/g, " "));
  }
  return lines;
}

describe.skipIf(skip !== undefined).each([false, true])("Go build (local go, amd64, pie=%p)", (pie) => {
  test("each probed function: the JBE right after the stack check, emulated; nothing before it writes a register but R12", () => {
    const bin = buildProbeFixture({ pie });
    const a = open(bin);
    for (const name of PROBED) {
      const { fn, site } = siteOf(a, name);
      expect({ name, mnemonic: site.mnemonic, emulated: site.emulated, kind: site.kind }).toEqual({ name, mnemonic: "jbe", emulated: true, kind: "branch" });
      // Independent decode of what runs before the site: only the stack check itself.
      const before = disasm("objdump", bin, fn.entry, site.addr, true);
      expect(before.length).toBeGreaterThanOrEqual(1);
      expect(before.length).toBeLessThanOrEqual(2);
      for (const ins of before) expect({ name, ins }).toEqual({ name, ins: expect.stringMatching(/^(cmp (rsp|r12),QWORD PTR \[r14\+0x10\]|lea r12,\[rsp-0x[0-9a-f]+\])$/) });
      expect(before.at(-1)).toMatch(/^cmp /);
      expect(disasm("objdump", bin, site.addr, site.addr + 6, true)[0]).toMatch(/^jbe /);
    }
  });

  test("NOSPLIT functions: runtime.chanrecv1 starts with PUSHQ BP (emulated at the entry); runtime.memmove writes RDI first (entry, not emulated)", () => {
    const a = open(buildProbeFixture({ pie }));
    const push = siteOf(a, "runtime.chanrecv1");
    expect(push.site).toMatchObject({ addr: push.fn.entry, mnemonic: "push", emulated: true, kind: "push" });
    const mm = siteOf(a, "runtime.memmove");
    expect(mm.site).toMatchObject({ addr: mm.fn.entry, emulated: false });
    expect(mm.site.reason).toContain("writes rdi");
  });

  test("every instruction of every function: amd64EmulationKind gives what the Code-enum version gives", () => {
    const a = open(buildProbeFixture({ pie }));
    let n = 0;
    for (const fn of a.pcln.funcs()) if (fn.end > fn.entry) n += sameEmulationKinds(a.elf.readVirtual(fn.entry, fn.end - fn.entry));
    expect(n).toBeGreaterThan(100_000);
  });

  test("every function of the binary: the site is emulated or the entry; moved sites sit on a JBE/JCC/JMP/CALL/PUSH/NOP", () => {
    const a = open(buildProbeFixture({ pie }));
    let moved = 0;
    let emulated = 0;
    let total = 0;
    for (const fn of a.pcln.funcs()) {
      if (fn.end <= fn.entry) continue;
      total++;
      const site = entryProbeSite(a.arch, a.elf.readVirtual(fn.entry, Math.min(64, fn.end - fn.entry)), fn.entry);
      if (site.emulated) emulated++;
      else expect(site.addr).toBe(fn.entry);
      if (site.addr !== fn.entry) {
        moved++;
        expect(site.mnemonic).toMatch(/^(j[a-z]+|call|push|nop)$/);
      }
    }
    expect(total).toBeGreaterThan(3000);
    // Most Go functions have a stack check.
    expect(moved / total).toBeGreaterThan(0.5);
    expect(emulated).toBeGreaterThanOrEqual(moved);
  });
});

describe.skipIf(skipArm !== undefined)("Go build (local go, GOARCH=arm64 cross-build)", () => {
  test("each probed function: the B.LS right after LDR 16(g) / CMP, simulated; llvm-objdump agrees", () => {
    const bin = buildProbeFixture({ goarch: "arm64" });
    const a = open(bin);
    expect(a.arch).toBe("aarch64");
    for (const name of PROBED) {
      const { fn, site } = siteOf(a, name);
      expect({ name, mnemonic: site.mnemonic, emulated: site.emulated }).toEqual({ name, mnemonic: "b.ls", emulated: true });
      const before = disasm("llvm-objdump", bin, fn.entry, site.addr, false);
      expect(before[0]).toBe("ldr x16, [x28, #16]");
      for (const ins of before.slice(1)) expect({ name, ins }).toEqual({ name, ins: expect.stringMatching(/^(cmp (sp|x17), x16|sub x17, sp, #\d+)$/) });
      expect(disasm("llvm-objdump", bin, site.addr, site.addr + 4, false)[0]).toMatch(/^b\.ls /);
    }
  });
});
