/**
 * @module cli/inspect — `beetrace inspect BINARY | --pid N`: what beetrace would attach to, offline.
 *
 * No root needed for a file. Prints versions, the probed functions with entry/end and every
 * return site, and the struct-field offsets with where each came from. `--json` prints one object
 * (addresses as "0x…" virtual addresses) for scripts and tests.
 */
import { TracerError } from "../errors.ts";
import { hex } from "../binary/bytes.ts";
import { openGoBinary, resolveFields, resolveSymbol, type SymbolReport } from "../binary/analyze.ts";
import { openTarget } from "../target/executable.ts";
import { embeddedSnapshot, loadOffsetsFile } from "../offsets/snapshot.ts";
import type { FieldResolution } from "../offsets/resolve.ts";
import { describeProcess, parsePid } from "../target/process.ts";
import { probeSymbols, probeFields } from "../probes/registry.ts";
import { untracedProtocols } from "../probes/protocols.ts";

export interface InspectOptions {
  pid?: string;
  symbol?: string | string[];
  field?: string | string[];
  json?: boolean;
  offsets?: string;
  unknownVersions?: string;
}

export function unknownVersionsPolicy(v: string | undefined): boolean {
  if (v === undefined || v === "refuse") return false;
  if (v === "nearest") return true;
  throw new TracerError("usage", `--unknown-versions: "${v}" is not a policy`, { hint: "use --unknown-versions=refuse (default) or --unknown-versions=nearest" });
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

export async function inspectCommand(binary: string | undefined, opts: InspectOptions, write: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let path: string;
  let label: string;
  if (opts.pid !== undefined) {
    if (binary) throw new TracerError("usage", "pass either BINARY or --pid, not both", { hint: "beetrace inspect ./server   or   beetrace inspect --pid 1234" });
    const proc = describeProcess(parsePid(String(opts.pid)));
    path = proc.exeLink;
    label = `${proc.exePath} (pid ${proc.pid})`;
  } else if (binary) {
    path = binary;
    label = binary;
  } else {
    throw new TracerError("usage", "inspect needs a BINARY or --pid N", { hint: "beetrace inspect ./server   or   beetrace inspect --pid 1234" });
  }
  const allowNearest = unknownVersionsPolicy(opts.unknownVersions);
  const a = await openTarget(path, label);

  const symbols = list(opts.symbol);
  const fields = list(opts.field);
  const symbolNames = symbols.length > 0 ? symbols : probeSymbols();
  const fieldNames = fields.length > 0 ? fields : symbols.length > 0 ? [] : probeFields();

  const symbolReports = symbolNames.map((s) => resolveSymbol(a, s));
  const fieldReports = resolveFields(a, fieldNames, {
    snapshot: embeddedSnapshot(),
    file: opts.offsets ? loadOffsetsFile(opts.offsets) : undefined,
    allowNearest,
  });

  const mainModule = a.buildInfo.main;
  if (opts.json) {
    const out = {
      file: label,
      goVersion: a.goVersion,
      arch: a.arch,
      pie: a.pie,
      stripped: a.stripped,
      hasDwarf: a.dwarf !== undefined,
      pclntab: { source: a.pcln.source, textStart: hex(a.pcln.textStart) },
      module: { path: mainModule.path, version: mainModule.version },
      modules: a.buildInfo.deps.map((d) => ({
        path: d.path,
        version: d.version,
        ...(d.replace ? { replace: { path: d.replace.path, version: d.replace.version } } : {}),
      })),
      symbols: symbolReports.map(symbolJson),
      fields: fieldReports.map(fieldJson),
      untraced: untracedProtocols(a),
    };
    write(JSON.stringify(out, null, 2) + "\n");
  } else {
    const untraced = untracedProtocols(a);
    write(
      renderHuman(label, a, symbolReports, fieldReports) +
        (untraced.length > 0 ? `  not traced (linked, no probe yet):\n${untraced.map((u) => `    ${u.name} — ${u.via}: ${u.what}\n`).join("")}` : ""),
    );
  }
  return 0;
}

function symbolJson(s: SymbolReport): object {
  return s.resolved
    ? {
        name: s.name,
        resolved: true,
        entry: hex(s.entry),
        end: hex(s.end),
        fileOffset: hex(s.fileOffset),
        probeSite: { addr: hex(s.site.addr), instruction: s.site.mnemonic, emulated: s.site.emulated, ...(s.site.reason ? { reason: s.site.reason } : {}) },
        returns: s.returns.map(hex),
      }
    : { name: s.name, resolved: false, reason: s.reason };
}

function fieldJson(f: FieldResolution): object {
  const base = { name: f.field, module: f.module, version: f.version ?? null };
  if (f.offset === undefined) return { ...base, resolved: false, offset: null, source: null, reason: f.note ?? "unknown" };
  if (f.offset === null) return { ...base, resolved: true, absent: true, offset: null, source: f.source, ...(f.note ? { note: f.note } : {}) };
  return { ...base, resolved: true, offset: f.offset, source: f.source, ...(f.note ? { note: f.note } : {}) };
}

function renderHuman(label: string, a: ReturnType<typeof openGoBinary>, syms: SymbolReport[], fields: FieldResolution[]): string {
  const yes = (b: boolean) => (b ? "yes" : "no");
  const lines: string[] = [];
  lines.push(label);
  lines.push(`  Go ${a.goVersion}  ${a.arch}  PIE: ${yes(a.pie)}  stripped: ${yes(a.stripped)}  DWARF: ${yes(a.dwarf !== undefined)}`);
  lines.push(`  main module: ${a.buildInfo.main.path} ${a.buildInfo.main.version}`);
  lines.push(`  function table: .gopclntab found by ${a.pcln.source}, text start ${hex(a.pcln.textStart)}`);
  if (a.buildInfo.deps.length > 0) {
    lines.push(`  modules (${a.buildInfo.deps.length}):`);
    for (const d of a.buildInfo.deps) lines.push(`    ${d.path} ${d.version}${d.replace ? ` => ${d.replace.path} ${d.replace.version}` : ""}`);
  }
  lines.push("  functions:");
  for (const s of syms) {
    if (s.resolved) {
      lines.push(`    ${s.name}`);
      lines.push(`      entry ${hex(s.entry)}  end ${hex(s.end)}  file offset ${hex(s.fileOffset)}`);
      const site = s.site.emulated ? `${s.site.mnemonic} (emulated by the kernel)` : `${s.site.mnemonic} (single-stepped: ${s.site.reason ?? "no emulated prologue instruction"})`;
      lines.push(`      probe site ${hex(s.site.addr)}: ${site}`);
      lines.push(`      ${s.returns.length} return site${s.returns.length === 1 ? "" : "s"}: ${s.returns.map(hex).join(" ")}`);
    } else {
      lines.push(`    ${s.name}: unresolved — ${s.reason}`);
    }
  }
  if (fields.length > 0) {
    lines.push("  struct fields:");
    for (const f of fields) {
      if (f.offset === undefined) lines.push(`    ${f.field}: unknown — ${f.note ?? ""}`);
      else if (f.offset === null) lines.push(`    ${f.field}: not present in this version (${f.source})`);
      else lines.push(`    ${f.field}: offset ${f.offset} (${f.source}${f.note ? `; ${f.note}` : ""})`);
    }
  }
  return lines.join("\n") + "\n";
}
