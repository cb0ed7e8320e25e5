/**
 * @module target/executable — read a target's executable from disk (or /proc/PID/exe) and open it
 * as a Go binary. The file is mapped read-only (src/target/input.ts), so its size costs no
 * memory, and the x86 decoder starts up (prepareIced) while the ELF is parsed.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { EM_X86_64 } from "../binary/elf.ts";
import { openGoBinary, type BinaryAnalysis } from "../binary/analyze.ts";
import { prepareIced } from "../vendor/iced/index.ts";
import { mapRegularFile } from "./input.ts";
import { startupStage } from "../log.ts";

const stage = startupStage;

/**
 * Largest executable accepted. Go binaries are tens of MB (the largest services a few hundred);
 * the bound only matters for the reading fallback, where the file is read whole.
 */
const MAX_EXECUTABLE = 4 * 1024 * 1024 * 1024;
const HINT_EXECUTABLE = "pass the path of the Go executable (a regular file)";

/** \x7fELF (gABI e_ident[EI_MAG0..3]). */
function isElfHead(h: Uint8Array): boolean {
  return h[0] === 0x7f && h[1] === 0x45 && h[2] === 0x4c && h[3] === 0x46;
}

/**
 * The bytes of the executable at `path`: mapped read-only, so only the parts the ELF readers
 * touch are resident (src/target/input.ts), or read when the runtime cannot map. A directory,
 * FIFO or device is refused (not_regular_file) without reading.
 */
export function readTargetBytes(path: string): Uint8Array {
  return mapRegularFile(path, "executable", MAX_EXECUTABLE, HINT_EXECUTABLE, { worthReading: isElfHead });
}

/** readTargetBytes, as a promise (kept for callers that overlap it with other start-up work). */
export async function readTargetBytesAsync(path: string): Promise<Uint8Array> {
  return readTargetBytes(path);
}

/**
 * Read and open the Go executable at `path` (`label` names it in messages) with the x86 decoder
 * ready (unless `waitForDecoder: false`): for an x86-64 file the decoder's start-up (prepareIced)
 * runs while the file is read on a background thread, instead of on the first resolveSymbol.
 * Same result and errors as openGoBinary(readTargetBytes(path), label); measured in
 * bench/RESULTS.md.
 */
export async function openTarget(path: string, label: string, opts: OpenTargetOptions = {}): Promise<BinaryAnalysis> {
  const bytes = readTargetBytes(path);
  const decoder = peekMachine(path) === EM_X86_64 ? prepareIced() : undefined;
  stage("executable mapped, decoder started");
  const a = openGoBinary(bytes, label);
  stage("executable parsed");
  if (decoder && a.arch === "x86_64" && opts.waitForDecoder !== false) await decoder;
  return a;
}

export interface OpenTargetOptions {
  /**
   * false: return as soon as the executable is parsed, with the decoder still starting up
   * (prepareIced); the caller awaits prepareIced() before it decodes. A tracer plans without
   * decoding and decodes while its BPF objects load (trace/plan.ts deferDecoding).
   */
  waitForDecoder?: boolean;
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
