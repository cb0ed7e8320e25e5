/**
 * @module target/executable — read a target's executable from disk (or /proc/PID/exe) and open it
 * as a Go binary. The async path reads the file off the main thread while the x86 decoder starts
 * up (prepareIced), so `inspect` and `attach` pay for one, not both.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { TracerError, fromSystemError } from "../errors.ts";
import { EM_X86_64 } from "../binary/elf.ts";
import { openGoBinary, type BinaryAnalysis } from "../binary/analyze.ts";
import { prepareIced } from "../vendor/iced/index.ts";

export function readTargetBytes(path: string): Uint8Array {
  notDirectory(path);
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw fromSystemError(e, path);
  }
}

/** readTargetBytes, with the read done off the main thread so the caller can overlap other start-up work. */
export async function readTargetBytesAsync(path: string): Promise<Uint8Array> {
  notDirectory(path);
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw fromSystemError(e, path);
  }
}

function notDirectory(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw fromSystemError(e, path);
  }
  if (st.isDirectory()) {
    throw new TracerError("io_error", `${path} is a directory`, { hint: "pass the path of the Go executable" });
  }
}

/**
 * Read and open the Go executable at `path` (`label` names it in messages) with the x86 decoder
 * ready: for an x86-64 file the decoder's start-up (prepareIced) runs while the file is read on
 * a background thread, instead of on the first resolveSymbol. Same result and errors as
 * openGoBinary(readTargetBytes(path), label); measured in bench/RESULTS.md.
 */
export async function openTarget(path: string, label: string): Promise<BinaryAnalysis> {
  const reading = readTargetBytesAsync(path);
  const decoder = peekMachine(path) === EM_X86_64 ? prepareIced() : undefined;
  const a = openGoBinary(await reading, label);
  if (decoder && a.arch === "x86_64") await decoder;
  return a;
}

/** e_machine of an ELF64 little-endian file (offset 18, u16), or undefined for anything else or on error; the full read reports problems. */
function peekMachine(path: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const h = new Uint8Array(20);
    if (readSync(fd, h, 0, 20, 0) < 20) return undefined;
    // \x7fELF, EI_CLASS = ELFCLASS64 (2), EI_DATA = ELFDATA2LSB (1): gABI e_ident.
    if (h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46 || h[4] !== 2 || h[5] !== 1) return undefined;
    return (h[18] ?? 0) | ((h[19] ?? 0) << 8);
  } catch {
    return undefined;
  } finally {
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // nothing to report: the header was read or the full read will say what is wrong
    }
  }
}
