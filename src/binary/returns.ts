/**
 * @module binary/returns — return sites (every return instruction) of one function, by arch.
 *
 * Why: Go return probes are uprobes on each RET, not uretprobes — a uretprobe rewrites the
 * return address on the stack, and Go moves goroutine stacks, which then crashes the process.
 * So the tracer needs the exact address of every return instruction in a probed function.
 *
 * Only RETs are reported. A function can also be left without one of its own RETs (a panic
 * unwinding through it, runtime.Goexit, a tail JMP in hand-written assembly); callers that pair
 * entries with returns must count such unmatched entries rather than invent an end.
 */
import { TracerError } from "../errors.ts";
import { hex } from "./bytes.ts";
import { findReturnSitesAmd64 } from "./returns/amd64.ts";
import { findReturnSitesArm64 } from "./returns/arm64.ts";

export type Arch = "x86_64" | "aarch64";

/**
 * Virtual addresses of every return instruction in [entry, end). `code` = the function's bytes
 * (end - entry bytes). Addresses come back in increasing order. Throws TracerError
 * (corrupt_binary) when the bytes do not decode cleanly, naming the function address — it
 * never skips bytes or guesses.
 */
export function findReturnSites(arch: Arch, code: Uint8Array, entry: number): number[] {
  if (!Number.isSafeInteger(entry) || entry < 0) {
    throw new TracerError("internal", `findReturnSites: function entry ${String(entry)} is not a valid address`);
  }
  if (!Number.isSafeInteger(entry + code.length)) {
    throw new TracerError("corrupt_binary", `function at ${hex(entry)}: end address overflows`, {
      hint: "the function bounds may be wrong or the binary damaged",
    });
  }
  switch (arch) {
    case "x86_64":
      return findReturnSitesAmd64(code, entry);
    case "aarch64":
      return findReturnSitesArm64(code, entry);
    default: {
      // Reachable when arch comes from unchecked input (an ELF e_machine mapped by a caller).
      const name: string = arch;
      throw new TracerError("unsupported_arch", `return sites: unsupported architecture '${name}'`, {
        hint: "beetrace supports x86_64 and aarch64 Go binaries",
      });
    }
  }
}
