/**
 * @module trace/plan — decide, per probe, whether it can run on this target, with which consts,
 * and where each of its uprobes goes. Pure (no FFI): the result is shown by `inspect`/`doctor`,
 * written to the capture header as provenance, and executed by trace/session.ts.
 *
 * A probe runs only when every symbol it hooks resolved and every required struct field has a
 * known offset. Otherwise it is disabled with a reason that names the version and the fix;
 * other probes keep running. Offsets are never guessed unless the operator asked for
 * --unknown-versions=nearest (then recorded as source "guess").
 *
 * Where: the entry program at the function's entry site (the first emulated instruction of
 * the prologue, src/binary/probe-sites.ts); the end program at the entry sites of the
 * probe's end markers when every needed marker resolves, else at every RET of the function;
 * extra (mid-call) programs at the entry sites of their functions when those resolve and their
 * fields are known, else the probe runs without them and `degraded` says what its spans lack.
 */
import { GoTypeNames } from "../binary/go-typenames.ts";
import type { BinaryAnalysis, SymbolReport } from "../binary/analyze.ts";
import { locateSymbol, resolveFields, resolveSymbol } from "../binary/analyze.ts";
import type { FieldResolution } from "../offsets/resolve.ts";
import type { OffsetsTable } from "../offsets/table.ts";
import type { ExtraSiteDecl, ProbeManifest, UprobeDecl } from "../probes/probe.ts";

/** One uprobe to attach. */
export interface AttachPoint {
  program: string;
  /** function the site belongs to */
  symbol: string;
  role: "entry" | "end-marker" | "return" | "extra";
  vaddr: number;
  fileOffset: number;
  /** instruction the uprobe sits on ("jbe", "ret") and whether the kernel emulates it */
  mnemonic: string;
  emulated: boolean;
  /** bpf_get_attach_cookie() value, for a program that serves several sites (BpfObjectSpec.cookieVariants) */
  cookie?: number;
}

export interface ProbePlan {
  probe: ProbeManifest;
  enabled: boolean;
  /** why the probe is disabled (one line), and how to fix it */
  reason?: string;
  fix?: string;
  /** the probe's library is not linked into this binary: nothing to trace, nothing to warn about */
  notLinked?: boolean;
  /** the probed functions (one per UprobeDecl) */
  symbols: SymbolReport[];
  fields: FieldResolution[];
  /** const name → value for the BPF object (offsets + feature flags) */
  consts: Record<string, number | bigint>;
  /** every uprobe, when enabled */
  points: AttachPoint[];
  /** per UprobeDecl: how its calls end ("markers" or "returns" and why) */
  ends: string[];
  /** What the probe runs without (an extra site not placed), one line each: warned once per target */
  degraded?: string[];
  /**
   * Decoding left for later (PlanOptions.deferDecoding): the entry sites of the points (they sit on
   * their functions' first instructions until then) and the functions whose calls end at their
   * RETs. `placeDeferred` decodes them, or disables the probe. The programs are already known.
   */
  pending?: { sites: boolean; returns: PendingReturns[] };
}

/** One probed function whose RET sites are still to be found (see ProbePlan.pending). */
export interface PendingReturns {
  /** index into probe.uprobes (and ProbePlan.symbols) */
  uprobe: number;
  /** the program its RETs get */
  program: string;
  /** index into ProbePlan.ends of the line that describes them */
  endsLine: number;
  /** why its end markers were not used, if they exist */
  why?: string;
}

export interface PlanOptions {
  snapshot: OffsetsTable;
  file?: OffsetsTable;
  allowNearest: boolean;
  /** This session is one of several of one beetrace: place the live-join sites (EndMarkerDecl.onlyForLiveJoins). */
  liveJoins?: boolean;
  /**
   * Decode nothing: the probes' functions are looked up in the function table, and their entry
   * sites and RETs are left to `placeDeferred` (ProbePlan.pending). What the BPF objects need
   * (programs, consts) does not depend on them, only the attach does, so a tracer decodes while
   * the kernel verifies the programs; the decoder's cold start alone (~20 ms on the 2-core test
   * machine) is then off the path to the load. Placed, the plans are those planning with
   * decoding gives (tests/unit/trace/plan-deferred.test.ts): the lookup already checked what
   * makes a function unusable before its bytes are decoded (in the table, at executable,
   * file-backed code), and a failure to decode disables a probe in both.
   */
  deferDecoding?: boolean;
}

const NOT_LINKED = "not in the function table";
/** The fix of a probe disabled because one of its functions could not be read safely. */
const UNREADABLE_FIX = "the function could not be read safely; run 'beetrace inspect' on the binary for details";

export function planProbes(a: BinaryAnalysis, probes: readonly ProbeManifest[], opts: PlanOptions): ProbePlan[] {
  let typeNames: GoTypeNames | undefined; // read only when a probe asks
  // Entry sites need only a function's prologue; its RETs (the whole function decoded) are
  // resolved only where they are used: a probe whose end markers cannot all be placed.
  const siteCache = new Map<string, SymbolReport>();
  const resolve = (name: string): SymbolReport => {
    let r = siteCache.get(name);
    if (!r) siteCache.set(name, (r = opts.deferDecoding ? locateSymbol(a, name) : resolveSymbol(a, name, { returns: false })));
    return r;
  };
  const allFields = [...new Set(probes.flatMap((p) => p.fields.map((f) => f.field)))];
  const resolved = new Map(resolveFields(a, allFields, opts).map((r) => [r.field, r]));
  return probes.map((probe) => {
    const symbols = probe.uprobes.map((u): SymbolReport =>
      u.onlyIfLinked && !u.onlyIfLinked.some((n) => a.pcln.find(n) !== undefined)
        ? { name: u.symbol, resolved: false, reason: `${NOT_LINKED} (placed only with ${u.onlyIfLinked.join(" or ")})` }
        : resolve(u.symbol),
    );
    const fields = probe.fields.map((f) => resolved.get(f.field)!);
    const consts: Record<string, number | bigint> = {};
    let reason: string | undefined;
    let fix: string | undefined;
    let notLinked = false;

    const anyLinked = symbols.some((s) => s.resolved);
    for (const [i, s] of symbols.entries()) {
      // An optional function the linker left out is skipped while another one is probed.
      if (!s.resolved && probe.uprobes[i]!.optional && anyLinked && s.reason.startsWith(NOT_LINKED)) continue;
      if (!s.resolved && reason === undefined) {
        reason = `${s.name} is unresolved: ${s.reason}`;
        notLinked = s.reason.startsWith(NOT_LINKED);
        fix = notLinked
          ? `this service does not use ${probe.library} (nothing to trace)`
          : UNREADABLE_FIX;
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
          `pass --offsets FILE made by 'beetrace offsets extract' from ANY unstripped program built with the same ${r.module === "std" ? "Go release" : "module version"} ` +
          "(a hello-world built by that toolchain is enough for the standard library), or a newer offsets.json; " +
          "or --unknown-versions=nearest to use the nearest known version (recorded as a guess)";
      }
    });
    const points: AttachPoint[] = [];
    const ends: string[] = [];
    const degraded: string[] = [];
    const pendingReturns: PendingReturns[] = [];
    if (reason === undefined) {
      Object.assign(
        consts,
        probe.flags({
          goVersion: a.goVersion,
          offset: (field) => {
            const r = resolved.get(field);
            return r === undefined ? undefined : r.offset;
          },
          functionAddress: (name) => a.pcln.find(name)?.entry,
          typeNameOff: (name) => (typeNames ??= new GoTypeNames(a.elf)).nameOff(name),
        }),
      );
      probe.uprobes.forEach((u, i) => {
        const s = symbols[i]!;
        if (!s.resolved) return;
        points.push(siteOf(u.entryProgram, s, "entry"));
        for (const x of u.extraSites ?? []) {
          if (x.optional && !x.symbols.some((n) => resolve(n).resolved)) continue;
          const site = extraSite(x, resolve, (field) => typeof resolved.get(field)?.offset === "number");
          if (typeof site === "string") degraded.push(`${x.why} not recorded: ${site}`);
          // Two uprobes of a probe may share a site (x/net's RoundTrip and roundTrip): placed once.
          else if (!points.some((p) => p.program === site.program && p.vaddr === site.vaddr)) points.push(site);
        }
        if (u.entryOnly) {
          ends.push(`${u.symbol}: entry only`);
          return;
        }
        const markers = endMarkers(a, u, resolve, (field) => typeof resolved.get(field)?.offset === "number", opts.liveJoins === true);
        if (markers.ok) {
          for (const m of markers.points) points.push(m);
          ends.push(`${u.symbol}: ends at ${markers.points.map((p) => p.symbol).join(", ")}`);
        } else {
          pendingReturns.push({ uprobe: i, program: u.returnProgram, endsLine: ends.length, ...(markers.why ? { why: markers.why } : {}) });
          ends.push(`${u.symbol}: ends at its RETs (not yet decoded)`);
        }
      });
    }
    const plan: ProbePlan = {
      probe,
      enabled: reason === undefined,
      ...(reason !== undefined ? { reason, fix } : {}),
      ...(notLinked ? { notLinked } : {}),
      symbols,
      fields,
      consts,
      points: reason === undefined ? points : [],
      ends,
      ...(reason === undefined && degraded.length > 0 ? { degraded } : {}),
      ...(reason === undefined && (opts.deferDecoding || pendingReturns.length > 0) ? { pending: { sites: opts.deferDecoding === true, returns: pendingReturns } } : {}),
    };
    if (!opts.deferDecoding) placeDeferred(a, plan);
    return plan;
  });
}

/**
 * What `plan.pending` left: the entry site of every point that sits on a function's entry, then a
 * return point at each RET of the functions that end at their RETs. When one of them cannot be
 * read safely the plan is disabled (reason set, no points). Idempotent.
 */
export function placeDeferred(a: BinaryAnalysis, plan: ProbePlan): void {
  const pending = plan.pending;
  if (pending === undefined) return;
  delete plan.pending;
  let reason: string | undefined;
  if (pending.sites) {
    const reports = new Map<string, SymbolReport>();
    const decoded = (name: string): SymbolReport => {
      let r = reports.get(name);
      if (!r) reports.set(name, (r = resolveSymbol(a, name, { returns: false })));
      return r;
    };
    plan.points = plan.points.map((pt) => {
      if (pt.role === "return") return pt;
      const r = decoded(pt.symbol);
      if (!r.resolved) {
        reason ??= `${pt.symbol}: ${r.reason}`;
        return pt;
      }
      return { ...pt, vaddr: r.site.addr, fileOffset: r.site.fileOffset, mnemonic: r.site.mnemonic, emulated: r.site.emulated };
    });
    plan.symbols = plan.symbols.map((s) => (s.resolved ? decoded(s.name) : s));
  }
  for (const p of pending.returns) {
    const u = plan.probe.uprobes[p.uprobe]!;
    const full = resolveSymbol(a, u.symbol);
    if (!full.resolved) {
      reason ??= `${u.symbol}: ${full.reason}`;
      plan.ends[p.endsLine] = `${u.symbol}: its RETs could not be placed (${full.reason})`;
      continue;
    }
    plan.symbols[p.uprobe] = full;
    for (const ret of full.returns) {
      const fileOffset = a.elf.vaddrToFileOffset(ret);
      if (fileOffset === undefined) {
        reason ??= `return site 0x${ret.toString(16)} of ${u.symbol} is not file-backed`;
        continue;
      }
      plan.points.push({ program: p.program, symbol: u.symbol, role: "return", vaddr: ret, fileOffset, mnemonic: "ret", emulated: false });
    }
    plan.ends[p.endsLine] = `${u.symbol}: ends at its ${full.returns.length} RET${full.returns.length === 1 ? "" : "s"}${p.why ? ` (${p.why})` : ""}`;
  }
  if (reason !== undefined) {
    plan.enabled = false;
    plan.reason = reason;
    plan.fix = UNREADABLE_FIX;
    plan.points = [];
    delete plan.degraded;
  }
}

function siteOf(program: string, s: Extract<SymbolReport, { resolved: true }>, role: AttachPoint["role"]): AttachPoint {
  return { program, symbol: s.name, role, vaddr: s.site.addr, fileOffset: s.site.fileOffset, mnemonic: s.site.mnemonic, emulated: s.site.emulated };
}

/** The entry site of an extra (mid-call) site, or why it is not placed. */
function extraSite(x: ExtraSiteDecl, resolve: (name: string) => SymbolReport, known: (field: string) => boolean): AttachPoint | string {
  const unknown = (x.fields ?? []).filter((f) => !known(f));
  if (unknown.length > 0) return `offset of ${unknown.join(", ")} unknown (pass --offsets FILE, or a newer beetrace)`;
  const found = x.symbols.map(resolve).find((r) => r.resolved);
  if (found === undefined || !found.resolved) return `${x.symbols[0] ?? "?"} not found`;
  return siteOf(x.program, found, "extra");
}

/** The end-marker sites of a probed function, or why its RETs are used instead. */
function endMarkers(
  a: BinaryAnalysis,
  u: UprobeDecl,
  resolve: (name: string) => SymbolReport,
  known: (field: string) => boolean,
  liveJoins: boolean,
): { ok: true; points: AttachPoint[] } | { ok: false; why?: string } {
  if (!u.endMarkers || u.endMarkers.length === 0) return { ok: false };
  const points: AttachPoint[] = [];
  for (const m of u.endMarkers) {
    if (m.onlyForLiveJoins && !liveJoins) continue;
    let placed = false;
    for (const c of m.choices) {
      if (!(c.fields ?? []).every(known)) continue;
      const found = c.symbols.map(resolve).find((r) => r.resolved);
      if (found && found.resolved) {
        points.push(siteOf(c.program, found, "end-marker"));
        placed = true;
        break;
      }
    }
    if (placed || m.neededIf === "if-linked") continue;
    const needed = m.neededIf === "always" || m.neededIf.linked.some((name) => a.pcln.find(name) !== undefined);
    if (needed) return { ok: false, why: `end marker ${m.choices[0]?.symbols[0] ?? "?"} not found` };
  }
  return { ok: true, points };
}
