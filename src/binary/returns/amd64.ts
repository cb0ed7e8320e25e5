/**
 * @module binary/returns/amd64 — addresses of every near RET in an x86-64 function, found by
 * decoding it instruction by instruction with iced-x86 (linear sweep from the entry).
 *
 * Why a decoder and not a byte scan: 0xC3 (RET) occurs inside other instructions (ModRM bytes,
 * immediates, displacements); a uprobe placed there would corrupt the instruction.
 *
 * Why a linear sweep is sound for compiled Go: the Go compiler puts no data between
 * instructions in .text on amd64 (jump tables and constants live in .rodata; functions are
 * padded with INT3), so decoding from the entry visits every instruction boundary. Hand-written
 * assembly can break this with BYTE/WORD directives (crypto/internal/boring/sig.StandardCrypto
 * embeds a marker after a JMP); when the sweep then meets an invalid or impossible instruction
 * we stop with an error naming the function, never skip bytes or resynchronise by guessing.
 * Data that happens to decode as ordinary instructions cannot be detected this way; the
 * functions the tracer probes are compiler output, where that does not occur.
 */
import { TracerError } from "../../errors.ts";
import { hex } from "../bytes.ts";
import { iced, keyMnemonics, mnemonicName } from "../../vendor/iced/index.ts";

/** Virtual addresses of every near return instruction in [entry, entry + code.length). */
export function findReturnSitesAmd64(code: Uint8Array, entry: number): number[] {
  const x = iced();
  const sites: number[] = [];
  if (code.length === 0) return sites;
  const decoder = new x.Decoder(64, code, x.DecoderOptions.None);
  const ins = new x.Instruction();
  const { Return, Exception } = x.FlowControl;
  try {
    // Two WASM calls per instruction (decodeOut, flowControl); invalid encodings decode as
    // FlowControl.Exception, so isInvalid is only asked for those (and for UD2/INT1...).
    while (decoder.canDecode) {
      decoder.decodeOut(ins);
      const flow = ins.flowControl;
      if (flow === Exception && ins.isInvalid) {
        const off = decoder.position - ins.length;
        throw undecodable(entry, off, code, decoder.lastError === x.DecoderError.NoMoreBytes);
      }
      if (flow === Return) {
        const off = decoder.position - ins.length;
        if (ins.mnemonic !== keyMnemonics(x).ret) {
          // RETF, IRET, SYSRET, SYSEXIT, RSM...: never emitted by Go, invalid or privileged in a
          // 64-bit user process. Seeing one means these bytes are not plain instructions (e.g.
          // crypto/internal/boring/sig.StandardCrypto embeds a data marker in .text).
          throw new TracerError(
            "corrupt_binary",
            `function at ${hex(entry)}: unexpected ${mnemonicName(x, ins.mnemonic)} at ${hex(entry + off)} (+${hex(off)}); Go code never contains it`,
            { hint: "the function bounds may be wrong, the function may embed data, or the binary is damaged; return probes for this function are not placed" },
          );
        }
        sites.push(entry + off);
      }
    }
  } finally {
    // wasm-bindgen objects own WASM heap memory and this glue has no FinalizationRegistry.
    decoder.free();
    ins.free();
  }
  return sites;
}

function undecodable(entry: number, off: number, code: Uint8Array, truncated: boolean): TracerError {
  const bytes = Array.from(code.subarray(off, off + 15), (b) => b.toString(16).padStart(2, "0")).join(" ");
  const what = truncated
    ? `the function's bytes end inside an undecodable instruction at ${hex(entry + off)} (+${hex(off)}): ${bytes}`
    : `invalid x86-64 instruction at ${hex(entry + off)} (+${hex(off)}): ${bytes}`;
  return new TracerError("corrupt_binary", `function at ${hex(entry)}: ${what}`, {
    hint: "the function bounds may be wrong (symbol table vs pclntab) or the binary damaged; return probes for this function are not placed",
  });
}
