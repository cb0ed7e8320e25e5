/**
 * @module binary/returns/arm64 — addresses of every return instruction in an AArch64 function.
 *
 * A64 instructions are fixed 4-byte little-endian words, so no decoder is needed: each word is
 * matched against the return encodings (Arm Architecture Reference Manual, "RET", "RETAA,
 * RETAB", "RETAASPPC, RETABSPPC", "RETAASPPCR, RETABSPPCR"). Go itself emits only `RET` (= RET
 * X30, 0xd65f03c0; cmd/internal/obj/arm64/asm7.go opbrr: OPBLR(2)); the pointer-authenticating
 * forms can appear in cgo C code built with -mbranch-protection.
 *
 * Known limit: Go's arm64 assembler places literal pools (constants) inline in .text after an
 * unconditional branch (asm7.go flushpool). A pool word whose value happens to equal a return
 * encoding would be reported as a return site; telling data from code needs control-flow
 * analysis, which this word scan does not do.
 */
import { TracerError } from "../../errors.ts";
import { hex } from "../bytes.ts";

/** A return encoding family: word & mask === match. */
interface ReturnEncoding {
  name: string;
  mask: number;
  match: number;
}

// All values are unsigned 32-bit; `>>> 0` keeps JS bitwise results unsigned for comparison.
const RETURN_ENCODINGS: readonly ReturnEncoding[] = [
  // RET Xn: 1101011 0 0 10 11111 0000 0 0 Rn 00000
  { name: "RET", mask: 0xfffffc1f, match: 0xd65f0000 },
  // RETAA / RETAB (FEAT_PAuth, Armv8.3): 0xd65f0bff / 0xd65f0fff, and RETAASPPCR /
  // RETABSPPCR Xm (FEAT_PAuth_LR, Armv9.5): 0xd65f0be0 | Rm, 0xd65f0fe0 | Rm. RETAA(B) is the
  // Rm = 31 slot of the same pattern, so one mask (M at bit 10, Rm in bits 4:0) covers all four.
  { name: "RETAA/RETAB/RETAxSPPCR", mask: 0xfffffbe0, match: 0xd65f0be0 },
  // RETAASPPC / RETABSPPC <label> (FEAT_PAuth_LR): 0101 0101 00 M imm16 11111.
  { name: "RETAxSPPC", mask: 0xffdf001f, match: 0x5500001f },
];

/** True if the little-endian A64 word is a return instruction. */
export function isArm64Return(word: number): boolean {
  for (const e of RETURN_ENCODINGS) if ((word & e.mask) >>> 0 === e.match) return true;
  return false;
}

/** Virtual addresses of every return instruction in [entry, entry + code.length). */
export function findReturnSitesArm64(code: Uint8Array, entry: number): number[] {
  // A64 instructions are 4-byte aligned (Arm ARM: PC alignment checking); anything else is not
  // a function start or end we can trust.
  if (entry % 4 !== 0 || code.length % 4 !== 0) {
    throw new TracerError(
      "corrupt_binary",
      `function at ${hex(entry)}: arm64 code must be 4-byte aligned, got entry ${hex(entry)} and ${code.length} bytes`,
      { hint: "the function bounds may be wrong or the binary damaged; return probes for this function are not placed" },
    );
  }
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const sites: number[] = [];
  for (let off = 0; off < code.length; off += 4) {
    if (isArm64Return(view.getUint32(off, true))) sites.push(entry + off);
  }
  return sites;
}
