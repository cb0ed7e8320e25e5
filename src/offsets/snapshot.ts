/**
 * @module offsets/snapshot — the offsets.json snapshot embedded in the executable, and
 * operator-supplied offsets files (--offsets FILE).
 */
import { readFileSync } from "node:fs";
import snapshotJson from "../../offsets.json" with { type: "json" };
import { fromSystemError } from "../errors.ts";
import { OffsetsTable, validateOffsetsFile } from "./table.ts";

let cached: OffsetsTable | undefined;

/** The snapshot built into this beetrace (bundled by `bun build --compile` as JSON). */
export function embeddedSnapshot(): OffsetsTable {
  cached ??= new OffsetsTable(validateOffsetsFile(snapshotJson, "embedded offsets snapshot"), "the embedded offsets snapshot");
  return cached;
}

/** An offsets file carried in next to the binary (newer than the embedded snapshot). */
export function loadOffsetsFile(path: string): OffsetsTable {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw fromSystemError(e, `--offsets ${path}`);
  }
  return OffsetsTable.parse(text, `--offsets ${path}`);
}
