/**
 * @module offsets/snapshot — the offsets.json snapshot embedded in the executable, and
 * operator-supplied offsets files (--offsets FILE).
 */
import { readFileSync } from "node:fs";
import { embedded } from "../bpf/embedded.ts";
import { TracerError, fromSystemError } from "../errors.ts";
import { OffsetsTable, validateOffsetsFile } from "./table.ts";
import { readRegularFile } from "../target/input.ts";

/** An offsets file covering every Go release and tracked module is ~100 KB; 64 MiB is far past any real one. */
const MAX_OFFSETS_FILE = 64 * 1024 * 1024;

let cached: OffsetsTable | undefined;

/**
 * The snapshot built into this beetrace: embedded as a file by `bun build --compile` (build.ts),
 * or offsets.json at the repository root when running from source (src/bpf/embedded.ts).
 */
export function embeddedSnapshot(): OffsetsTable {
  if (cached) return cached;
  let text: string;
  try {
    text = readFileSync(embedded.offsetsJson, "utf8");
  } catch (e) {
    throw fromSystemError(e, "the embedded offsets snapshot");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TracerError("internal", `the embedded offsets snapshot is not valid JSON: ${(e as Error).message}`, { hint: "rebuild beetrace with 'bun build.ts'" });
  }
  cached = new OffsetsTable(validateOffsetsFile(json, "the embedded offsets snapshot"), "the embedded offsets snapshot");
  return cached;
}

/** An offsets file carried in next to the binary (newer than the embedded snapshot). */
export function loadOffsetsFile(path: string): OffsetsTable {
  let text: string;
  try {
    // A regular file of bounded size: --offsets /dev/zero or a FIFO must not read forever.
    text = new TextDecoder().decode(readRegularFile(path, "offsets file", MAX_OFFSETS_FILE, "pass a file written by 'beetrace offsets extract'"));
  } catch (e) {
    if (e instanceof TracerError) throw e.withContext("--offsets");
    throw fromSystemError(e, `--offsets ${path}`);
  }
  return OffsetsTable.parse(text, `--offsets ${path}`);
}
