/**
 * @module cli/offsets — `beetrace offsets extract BINARY -o FILE`: the offsets of every tracked
 * struct field, read from the DWARF of an UNSTRIPPED build of a service, written as an offsets
 * file (the offsets.json schema) for its stripped production twin: `beetrace run --offsets FILE`.
 *
 * The versions recorded are the binary's own (Go version and module versions from its build
 * info), so the file applies exactly to builds with the same toolchain and dependencies.
 */
import { writeFileSync } from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import { openGoBinary } from "../binary/analyze.ts";
import { trackedFields } from "../offsets/planned-fields.ts";
import { moduleOfField } from "../offsets/resolve.ts";
import type { ModuleOffsets, OffsetsFile } from "../offsets/table.ts";
import { parseAnyVersion, versionKey } from "../offsets/version.ts";
import { serializeOffsetsFile } from "../offsets/tracker/compact.ts";
import { readTargetBytes } from "../target/executable.ts";

export interface OffsetsOptions {
  out?: string;
  o?: string;
}

export interface ExtractSummary {
  file: OffsetsFile;
  /** fields whose struct is not in this binary's DWARF (its code does not use them): left out */
  missingTypes: string[];
}

/** Pure part: analyze `bytes` and build the offsets file. Throws offset_unknown when there is no DWARF. */
export function extractOffsets(bytes: Uint8Array, label: string): ExtractSummary {
  const a = openGoBinary(bytes, label);
  const dwarf = a.dwarf;
  if (!dwarf) {
    throw new TracerError("offset_unknown", `${label} has no DWARF debug info (stripped or built with -ldflags=-w)`, {
      hint: "run 'offsets extract' on the UNSTRIPPED build of the same source and toolchain (go build without -ldflags='-s -w'), then pass the file to the stripped binary with --offsets",
    });
  }
  const goV = parseAnyVersion(a.goVersion);
  const modules: Record<string, ModuleOffsets> = {};
  const missingTypes = new Set<string>();
  for (const field of trackedFields()) {
    const module = moduleOfField(field, a.modules.keys());
    const raw = module === "std" ? a.goVersion : a.modules.get(module);
    if (raw === undefined) continue; // the service does not use this module
    const v = module === "std" ? goV : parseAnyVersion(raw);
    if (!v) continue; // "(devel)" and other unorderable versions cannot be looked up anyway
    const key = versionKey(v);
    const typeName = field.slice(0, field.lastIndexOf("."));
    const hit = dwarf.resolve(field);
    let offset: number | null;
    if (hit) offset = hit.offset;
    else if (dwarf.typeSize(typeName) !== undefined) offset = null; // the struct is here, the field is not
    else {
      missingTypes.add(typeName); // not linked into this service: unknown, so not written
      continue;
    }
    const m = (modules[module] ??= { versions: [key], fields: {} });
    m.fields[field] = [{ from: key, to: key, offset }];
  }
  const file: OffsetsFile = {
    schema: 1,
    generated: { by: "beetrace offsets extract", goVersion: a.goVersion, mainModule: a.buildInfo.main.path },
    modules,
  };
  return { file, missingTypes: [...missingTypes].sort() };
}

export async function offsetsCommand(
  action: string,
  binary: string | undefined,
  opts: OffsetsOptions,
  write: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  if (action !== "extract") {
    throw new TracerError("usage", `unknown offsets action '${action}'`, { hint: "beetrace offsets extract ./server-unstripped -o offsets.json" });
  }
  if (!binary) throw new TracerError("usage", "offsets extract needs a BINARY", { hint: "beetrace offsets extract ./server-unstripped -o offsets.json" });
  const out = opts.out ?? opts.o;
  if (!out || typeof out !== "string") {
    throw new TracerError("usage", "offsets extract needs -o FILE", { hint: "beetrace offsets extract ./server-unstripped -o offsets.json" });
  }
  const { file, missingTypes } = extractOffsets(readTargetBytes(binary), binary);
  const text = serializeOffsetsFile(file);
  try {
    writeFileSync(out, text);
  } catch (e) {
    throw fromSystemError(e, out).withContext("writing the offsets file");
  }
  const n = Object.values(file.modules).reduce((s, m) => s + Object.keys(m.fields).length, 0);
  const mods = Object.entries(file.modules).map(([m, v]) => `${m} ${v.versions[0]}`);
  write(`wrote ${out}: ${n} field offsets for ${mods.join(", ") || "no tracked module"}\n`);
  if (missingTypes.length > 0) write(`not in this binary (its code does not use them): ${missingTypes.join(", ")}\n`);
  write(`trace the stripped build of the same source with: beetrace run --offsets ${out} -- ./server\n`);
  return 0;
}
