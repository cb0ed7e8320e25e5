/**
 * @module offsets/resolve — where each struct-field offset of a target comes from.
 *
 * Order of trust: the target's own DWARF (exact for this very binary) → an offsets file the
 * operator passed (--offsets, e.g. from `beetrace offsets extract` on the unstripped twin) → the
 * embedded snapshot → (only with --unknown-versions=nearest) the nearest tracked version, recorded
 * as a guess. Everything else is *unknown*, and the probe needing it is disabled with a warning.
 */
import type { OffsetsTable } from "./table.ts";

export type OffsetSource = "dwarf" | "file" | "snapshot" | "guess";

export interface FieldResolution {
  /** "net/http.Request.Method" */
  field: string;
  /** module that defines the type ("std" for the standard library) */
  module: string;
  /** version of that module in the target ("go1.22.3", "v1.60.1") */
  version: string | undefined;
  /** the offset, or null when the field does not exist in this version (optional fields) */
  offset: number | null | undefined;
  source: OffsetSource | undefined;
  /** why the offset is unknown / how it was guessed */
  note?: string;
  /** for an unknown offset: what the operator can do (unknownVersionFix) */
  fix?: string;
}

/**
 * What fixes an unknown offset of `module` at `version`, in words an operator can act on.
 * Struct layouts depend on the release of the code that defines them, not on the service: for
 * the standard library, the DWARF of ANY program built by that exact Go release has the right
 * offsets (a hello-world net/http server will do; `GOTOOLCHAIN=go1.19.8 go build` fetches the
 * release), so nobody needs the unstripped build of the service itself. For a module, any
 * program built against that exact module version.
 */
export function unknownVersionFix(module: string, version: string | undefined): string {
  const extract = "then 'beetrace offsets extract PROGRAM -o offsets.json' and pass '--offsets offsets.json'";
  if (module === "std") {
    const v = version?.trim().split(/\s+/).pop() ?? "";
    const release = /^go\d+\.\d+/.test(v) && !/devel/.test(version ?? "") ? v : undefined;
    return release
      ? `build any program that imports net/http with exactly ${release} (GOTOOLCHAIN=${release} go build; unstripped), ${extract}; or a newer beetrace / offsets.json that covers ${release}`
      : `build any program that imports net/http with exactly the Go toolchain of this service (unstripped), ${extract}`;
  }
  return `build any program that uses ${module}${version ? `@${version}` : ""} (unstripped), ${extract}; or a newer offsets.json that covers it`;
}

export interface DwarfFieldSource {
  resolve(path: string): { offset: number } | undefined;
  /** true when the struct type exists in DWARF (so a missing member really is absent) */
  hasType?(typeName: string): boolean;
}

export interface ResolveContext {
  goVersion: string;
  /** module path → version, from build info */
  modules: Map<string, string>;
  dwarf?: DwarfFieldSource;
  file?: OffsetsTable;
  snapshot: OffsetsTable;
  allowNearest: boolean;
}

/** The module that defines the package of a field path: "std" for the standard library. */
export function moduleOfField(field: string, modules: Iterable<string>): string {
  const pkg = packageOfField(field);
  const first = pkg.split("/")[0] ?? "";
  if (!first.includes(".")) return "std";
  let best = "";
  for (const m of modules) {
    if ((pkg === m || pkg.startsWith(m + "/")) && m.length > best.length) best = m;
  }
  return best || pkg;
}

/** "google.golang.org/grpc/internal/transport.Stream.method" → "google.golang.org/grpc/internal/transport" */
export function packageOfField(field: string): string {
  const lastSlash = field.lastIndexOf("/");
  const dot = field.indexOf(".", lastSlash + 1);
  return dot < 0 ? field : field.slice(0, dot);
}

export function resolveField(field: string, ctx: ResolveContext): FieldResolution {
  const module = moduleOfField(field, ctx.modules.keys());
  const version = module === "std" ? ctx.goVersion : ctx.modules.get(module);
  const base = { field, module, version };
  if (ctx.dwarf) {
    const hit = ctx.dwarf.resolve(field);
    if (hit) return { ...base, offset: hit.offset, source: "dwarf" };
    const typeName = field.slice(0, field.lastIndexOf("."));
    if (ctx.dwarf.hasType?.(typeName)) {
      return { ...base, offset: null, source: "dwarf", note: `${typeName} has no field ${field.slice(field.lastIndexOf(".") + 1)} in this binary` };
    }
  }
  if (version === undefined) {
    return { ...base, offset: undefined, source: undefined, note: `the target does not use module ${module}` };
  }
  const tables = [
    [ctx.file, "file"],
    [ctx.snapshot, "snapshot"],
  ] as const;
  const notes: string[] = [];
  // A nested module released in lockstep with a parent module the binary also has at the same
  // version (go.opentelemetry.io/otel/trace with go.opentelemetry.io/otel): the offsets tracker
  // records its fields under the parent's entry (planned-fields.ts trackedModuleOf).
  let parent = "";
  for (const [m, v] of ctx.modules) if (module.startsWith(m + "/") && v === version && m.length > parent.length) parent = m;
  for (const [table, source] of tables) {
    if (!table) continue;
    let r = table.lookup(module, field, version);
    if (r.kind === "unknown" && parent !== "") r = table.lookup(parent, field, version);
    if (r.kind === "found") return { ...base, offset: r.offset, source };
    if (r.kind === "absent") return { ...base, offset: null, source };
    if (r.kind === "unknown") notes.push(r.reason);
  }
  if (ctx.allowNearest) {
    for (const [table] of tables) {
      if (!table) continue;
      const r = table.lookup(module, field, version, true);
      if (r.kind === "nearest") {
        return { ...base, offset: r.offset, source: "guess", note: `guessed from ${module} ${r.nearestVersion} (--unknown-versions=nearest)` };
      }
    }
  }
  return { ...base, offset: undefined, source: undefined, note: notes.join("; ") || "no offsets source", fix: unknownVersionFix(module, version) };
}
