/**
 * @module trace/plan — decide, per probe, whether it can run on this target and with which
 * consts. Pure (no FFI): the result is shown by `inspect`/`doctor`, written to the capture
 * header as provenance, and executed by trace/session.ts.
 *
 * A probe runs only when every symbol it hooks resolved (entry + at least one RET) and every
 * required struct field has a known offset. Otherwise it is disabled with a reason that names
 * the version and the fix; other probes keep running. Offsets are never guessed unless the
 * operator asked for --unknown-versions=nearest (then recorded as source "guess").
 */
import type { BinaryAnalysis, SymbolReport } from "../binary/analyze.ts";
import { resolveFields, resolveSymbol } from "../binary/analyze.ts";
import type { FieldResolution } from "../offsets/resolve.ts";
import type { OffsetsTable } from "../offsets/table.ts";
import type { ProbeManifest } from "../probes/probe.ts";

export interface ProbePlan {
  probe: ProbeManifest;
  enabled: boolean;
  /** why the probe is disabled (one line), and how to fix it */
  reason?: string;
  fix?: string;
  symbols: SymbolReport[];
  fields: FieldResolution[];
  /** const name → value for the BPF object (offsets + feature flags) */
  consts: Record<string, number | bigint>;
}

export interface PlanOptions {
  snapshot: OffsetsTable;
  file?: OffsetsTable;
  allowNearest: boolean;
}

export function planProbes(a: BinaryAnalysis, probes: readonly ProbeManifest[], opts: PlanOptions): ProbePlan[] {
  const symbolCache = new Map<string, SymbolReport>();
  const allFields = [...new Set(probes.flatMap((p) => p.fields.map((f) => f.field)))];
  const resolved = new Map(resolveFields(a, allFields, opts).map((r) => [r.field, r]));
  return probes.map((probe) => {
    const symbols = probe.uprobes.map((u) => {
      let r = symbolCache.get(u.symbol);
      if (!r) symbolCache.set(u.symbol, (r = resolveSymbol(a, u.symbol)));
      return r;
    });
    const fields = probe.fields.map((f) => resolved.get(f.field)!);
    const consts: Record<string, number | bigint> = {};
    let reason: string | undefined;
    let fix: string | undefined;

    for (const s of symbols) {
      if (!s.resolved && reason === undefined) {
        reason = `${s.name} is unresolved: ${s.reason}`;
        fix = "this service may not use this library (nothing to trace), or was built in a way beetrace does not support yet";
      }
    }
    probe.fields.forEach((decl, i) => {
      const r = fields[i]!;
      if (typeof r.offset === "number") {
        consts[decl.const] = r.offset;
        return;
      }
      if (!decl.required) return; // the probe degrades (its flags() sees the offset as unknown/absent)
      if (reason !== undefined) return;
      if (r.offset === null) {
        reason = `${decl.field} does not exist in ${r.module} ${r.version ?? "?"}`;
        fix = "this version of the library is not supported by this probe";
      } else {
        reason = `offset of ${decl.field} is unknown for ${r.module} ${r.version ?? "(not in build info)"}: ${r.note ?? "no source"}`;
        fix =
          "pass --offsets FILE (made by 'beetrace offsets extract' from an unstripped build of the same service, or a newer offsets.json), " +
          "or --unknown-versions=nearest to use the nearest known version (recorded as a guess)";
      }
    });
    if (reason === undefined) {
      const flagConsts = probe.flags({
        goVersion: a.goVersion,
        offset: (field) => {
          const r = resolved.get(field);
          return r === undefined ? undefined : r.offset;
        },
        // Symbol addresses need the run-time load bias; probes must work without them (the
        // net/http server falls back to ProtoMajor when the itab address is unknown).
        address: () => undefined,
      });
      Object.assign(consts, flagConsts);
    }
    return { probe, enabled: reason === undefined, reason, fix, symbols, fields, consts };
  });
}
