/** @module tests/unit/binary/returns — return sites vs hand-assembled code, objdump and llvm-objdump on real Go builds. */
import { describe, expect, test } from "bun:test";
import { TracerError } from "../../../src/errors.ts";
import { findReturnSites } from "../../../src/binary/returns.ts";
import { isArm64Return } from "../../../src/binary/returns/arm64.ts";
import { generatedSha256, readGlue } from "../../../scripts/vendor-iced.ts";
import { iced, keyMnemonics, mnemonicName } from "../../../src/vendor/iced/index.ts";
import { buildFixture, missingTools, objdump, type BuildMode } from "./returns-fixture.ts";

function thrown(fn: () => unknown): TracerError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${String(e)}`);
  }
  throw new Error("expected a TracerError, nothing was thrown");
}

const x86 = (...b: number[]) => new Uint8Array(b);

describe("findReturnSites x86_64 (hand-assembled)", () => {
  test("0xC3 inside an immediate is not a return; the real RET is", () => {
    // mov eax, 0xc3 ; mov rcx, [rbx+0xc3] ; ret
    const code = x86(0xb8, 0xc3, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x8b, 0xc3, 0x00, 0x00, 0x00, 0xc3);
    expect(findReturnSites("x86_64", code, 0x401000)).toEqual([0x40100c]);
  });

  test("RET imm16 and operand-size RET are near returns; INT3 padding is skipped over", () => {
    // ret 8 ; int3 ; ret (66-prefixed) ; int3 int3
    const code = x86(0xc2, 0x08, 0x00, 0xcc, 0x66, 0xc3, 0xcc, 0xcc);
    expect(findReturnSites("x86_64", code, 0x1000)).toEqual([0x1000, 0x1004]);
  });

  test("no return at all gives an empty list; empty code gives an empty list", () => {
    // call rel32 ; jmp rel8 (back to the entry)
    expect(findReturnSites("x86_64", x86(0xe8, 0, 0, 0, 0, 0xeb, 0xf9), 0x2000)).toEqual([]);
    expect(findReturnSites("x86_64", x86(), 0x2000)).toEqual([]);
  });

  test("an invalid instruction is an error naming the function and the address, not a skip", () => {
    // nop ; 0x06 (PUSH ES: invalid in 64-bit mode) ; ret
    const e = thrown(() => findReturnSites("x86_64", x86(0x90, 0x06, 0xc3), 0x4ec480));
    expect(e.code).toBe("corrupt_binary");
    expect(e.message).toStartWith("function at 0x4ec480: ");
    expect(e.message).toContain("0x4ec481");
    expect(e.hint).toBeDefined();
  });

  test("bytes ending mid-instruction are an error", () => {
    // ret ; mov rax, [rsp+... (cut)
    const e = thrown(() => findReturnSites("x86_64", x86(0xc3, 0x48, 0x8b, 0x44), 0x5000));
    expect(e.code).toBe("corrupt_binary");
    expect(e.message).toContain("at 0x5001 (+0x1)");
  });

  test("a far return (RETF) is an error, not a return site", () => {
    const e = thrown(() => findReturnSites("x86_64", x86(0x90, 0xcb), 0x6000));
    expect(e.code).toBe("corrupt_binary");
    expect(e.message).toContain("unexpected retf at 0x6001");
  });

  test("bad entry values and unknown architectures are TracerErrors", () => {
    expect(thrown(() => findReturnSites("x86_64", x86(0xc3), -1)).code).toBe("internal");
    expect(thrown(() => findReturnSites("x86_64", x86(0xc3), Number.MAX_SAFE_INTEGER)).code).toBe("corrupt_binary");
    expect(thrown(() => findReturnSites("mips" as never, x86(0xc3), 0)).code).toBe("unsupported_arch");
  });

  test("random bytes never escape as anything but a list or a corrupt_binary TracerError", () => {
    let seed = 0x2545f491;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const code = Uint8Array.from({ length: 1 + (i % 64) }, rand);
      try {
        for (const a of findReturnSites("x86_64", code, 0x1000)) {
          expect(a).toBeGreaterThanOrEqual(0x1000);
          expect(a).toBeLessThan(0x1000 + code.length);
        }
      } catch (e) {
        expect(e).toBeInstanceOf(TracerError);
        expect((e as TracerError).code).toBe("corrupt_binary");
        errors++;
      }
    }
    // Random bytes mostly end mid-instruction or hit invalid opcodes; both paths must be exercised.
    expect(errors).toBeGreaterThan(0);
    expect(errors).toBeLessThan(300);
  });
});

/** Little-endian bytes of A64 words. */
function a64(...words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  return b;
}

describe("findReturnSites aarch64 (hand-assembled words)", () => {
  // Encodings from the Arm ARM; the PAuth_LR ones checked against LLVM's MC tests.
  const returns: Record<string, number> = {
    "ret (x30)": 0xd65f03c0,
    "ret x1": 0xd65f0020,
    retaa: 0xd65f0bff,
    retab: 0xd65f0fff,
    "retaasppcr x2": 0xd65f0be2,
    "retabsppcr x2": 0xd65f0fe2,
    "retaasppc #0": 0x5500001f,
    "retabsppc #-68": 0x5520023f,
  };
  const notReturns: Record<string, number> = {
    "br x16": 0xd61f0200,
    "blr x1": 0xd63f0020,
    eret: 0xd69f03e0,
    nop: 0xd503201f,
    "b .": 0x14000000,
    "ldr x0, [x1]": 0xf9400020,
    "ret with nonzero low bits (unallocated)": 0xd65f03c1,
    "autiasppc #0 (not a return)": 0xf380001f,
  };

  test.each(Object.entries(returns))("%s is a return", (_name, w) => {
    expect(isArm64Return(w)).toBe(true);
  });
  test.each(Object.entries(notReturns))("%s is not a return", (_name, w) => {
    expect(isArm64Return(w)).toBe(false);
  });

  test("addresses of the return words in a function", () => {
    // stp ; bl ; ldp ; ret ; b.ne ; retaa ; <pool word 0>
    const code = a64(0xa9bf7bfd, 0x94000000, 0xa8c17bfd, 0xd65f03c0, 0x54000001, 0xd65f0bff, 0x00000000);
    expect(findReturnSites("aarch64", code, 0x10000)).toEqual([0x1000c, 0x10014]);
  });

  test("misaligned entry or length is a corrupt_binary error", () => {
    expect(thrown(() => findReturnSites("aarch64", a64(0xd65f03c0), 0x10002)).code).toBe("corrupt_binary");
    expect(thrown(() => findReturnSites("aarch64", new Uint8Array(6), 0x10000)).code).toBe("corrupt_binary");
  });
});

describe("vendored iced-x86 glue", () => {
  test("src/vendor/iced/iced_x86.gen.js exists and matches the installed iced-x86 (else run scripts/setup.sh)", () => {
    expect(generatedSha256()).toBe(readGlue().sha256);
  });

  test("the mnemonic names and key values the planners use are the Mnemonic enum's, value by value", () => {
    const x = iced();
    expect(x.MnemonicNames?.length).toBe(Object.keys(x.Mnemonic).length / 2);
    for (let m = 0; m < x.MnemonicNames!.length; m++) expect(mnemonicName(x, m)).toBe(x.Mnemonic[m]!.toLowerCase());
    expect(keyMnemonics(x)).toEqual({ ret: x.Mnemonic.Ret, nop: x.Mnemonic.Nop, push: x.Mnemonic.Push });
  });
});

const skip = missingTools();
if (skip) console.warn(`skipping Go return-site comparison: ${skip}`);

// Functions the tracer probes, plus main.main and a big one (net/http.(*conn).serve, ~5.7 KB).
const NAMED = ["main.main", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip", "net/http.(*conn).serve"];

describe.skipIf(skip !== undefined).each(["default", "pie"] as BuildMode[])("against objdump, go build -buildmode=%s", (mode) => {
  test("named functions: the same RET addresses as objdump", () => {
    const fx = buildFixture(mode);
    for (const name of NAMED) {
      const f = fx.byName(name);
      const ours = findReturnSites("x86_64", fx.code(f), f.addr);
      const theirs = objdump(fx.path, f.addr, f.addr + f.size).rets;
      expect({ name, rets: ours }).toEqual({ name, rets: theirs });
      expect(ours.length).toBeGreaterThan(0);
    }
  });

  test("every function in .text: the same RET addresses as objdump; rejected ones are not plain code", () => {
    const fx = buildFixture(mode);
    const ours: number[] = [];
    const rejected: { name: string; message: string }[] = [];
    for (const f of fx.funcs) {
      try {
        ours.push(...findReturnSites("x86_64", fx.code(f), f.addr));
      } catch (e) {
        if (!(e instanceof TracerError)) throw e;
        rejected.push({ name: f.name, message: e.message });
      }
    }
    const listing = objdump(fx.path);
    const accepted = new Set(ours);
    // objdump's RETs inside rejected functions are not comparable (they embed data).
    const rejectedRanges = rejected.map((r) => fx.byName(r.name)).map((f) => [f.addr, f.addr + f.size] as const);
    const theirs = listing.rets.filter((a) => !rejectedRanges.some(([lo, hi]) => a >= lo && a < hi));
    expect(fx.funcs.length).toBeGreaterThan(5000);
    expect(ours.length).toBeGreaterThan(10000);
    expect([...accepted].sort((a, b) => a - b)).toEqual(theirs.sort((a, b) => a - b));
    // A function is only ever rejected when objdump, too, shows something no Go function runs:
    // an undecodable byte or a far/privileged return (data embedded in hand-written assembly).
    expect(rejected.length).toBeLessThan(5);
    for (const [lo, hi] of rejectedRanges) {
      const text = objdump(fx.path, lo, hi).lines.join("\n");
      expect(text).toMatch(/\(bad\)|\blret|\biret|\bsysret/);
    }
  });
});

const skipArm64 = missingTools(["go", "objdump", "llvm-objdump"]);
if (skipArm64) console.warn(`skipping arm64 Go return-site comparison: ${skipArm64}`);

describe.skipIf(skipArm64 !== undefined)("against llvm-objdump, GOARCH=arm64 cross-build", () => {
  test("every function in .text: the same return addresses as llvm-objdump", () => {
    const fx = buildFixture("arm64");
    const ours: number[] = [];
    for (const f of fx.funcs) ours.push(...findReturnSites("aarch64", fx.code(f), f.addr));
    for (const name of NAMED) {
      const f = fx.byName(name);
      expect(findReturnSites("aarch64", fx.code(f), f.addr).length).toBeGreaterThan(0);
    }
    const theirs = objdump(fx.path, undefined, undefined, "llvm-objdump").rets;
    expect(fx.funcs.length).toBeGreaterThan(5000);
    expect(ours.length).toBeGreaterThan(10000);
    expect(ours.sort((a, b) => a - b)).toEqual(theirs.sort((a, b) => a - b));
  });
});
