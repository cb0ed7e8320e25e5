/**
 * @module tests/e2e/inspect-oracle — `beetrace inspect --json` against independent oracles, for
 * every Go toolchain × build mode of the matrix (tests/harness/go.ts).
 *
 * The inspectee (tests/fixtures/go/inspectee) is built at test time. For each binary, everything
 * the CLI claims is compared with an answer beetrace's code has no part in:
 * - Go version, main module, module versions: Go's debug/buildinfo (tests/fixtures/go/oracle);
 * - function entry/end: Go's debug/gosym (same oracle, built with the newest toolchain);
 * - return sites: every `ret` binutils objdump decodes between entry and end;
 * - struct-field offsets: reflect in a program built with the same toolchain
 *   (tests/fixtures/go/offsets-oracle).
 * The requirement is 100% agreement on everything the CLI reports as resolved, and that it
 * resolves everything the oracles can (fields: whenever the binary has DWARF). Without DWARF a
 * field may be unresolved, or resolved from another source, but never a wrong number.
 *
 * Needs go, objdump, strip and gcc, and the Go module proxy on the first run (toolchains and
 * golang.org/x/text); no root. BEETRACE_GO_TOOLCHAINS=go1.27.4,go1.21.13 narrows the matrix.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  BUILD_MODES,
  FIXTURES_GO,
  REPO_ROOT,
  buildFixture,
  goMatrixUnavailable,
  goToolchains,
  objdumpReturns,
  run,
  runOffsetsOracle,
  runOracle,
  type BuildMode,
  type OffsetsOracleReport,
  type OracleReport,
} from "../harness/go.ts";

const INSPECTEE = join(FIXTURES_GO, "inspectee");

/** Functions asked for: user code, the net/http probe sites, a third-party module, absent ones. */
const SYMBOLS = [
  "main.main",
  "main.run",
  "main.(*greeter).ServeHTTP",
  "net/http.serverHandler.ServeHTTP",
  "net/http.(*Transport).roundTrip",
  "net/http.(*conn).serve",
  "net/http.(*response).WriteHeader",
  "net/http.(*Client).do",
  "net/textproto.(*Reader).readContinuedLineSlice",
  "golang.org/x/text/cases.Caser.String",
  "runtime.newproc1",
  // Not linked into the inspectee: both sides must say so.
  "database/sql.(*DB).queryDC",
  "main.noSuchFunction",
];
/** Must be found in every binary, or the comparison would be vacuous. */
const ALWAYS_PRESENT = ["main.main", "main.(*greeter).ServeHTTP", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip"];

/** Fields the net/http probes read (research: otel-go-auto §1.1), incl. unexported ones. */
const FIELDS = [
  "net/http.Request.Method",
  "net/http.Request.URL",
  "net/http.Request.Header",
  "net/http.Request.Host",
  "net/http.Request.RemoteAddr",
  "net/http.Request.Proto",
  "net/http.Request.ctx",
  "net/http.Request.Pattern", // Go 1.23+: absent before
  "net/http.Request.pat", // Go 1.22+
  "net/http.response.req",
  "net/http.response.status",
  "net/http.response.conn",
  "net/http.Response.StatusCode",
  "net/url.URL.Scheme",
  "net/url.URL.Host",
  "net/url.URL.Path",
  "net/url.URL.RawQuery",
  "bufio.Writer.buf",
  "bufio.Writer.n",
];

interface CliSymbol {
  name: string;
  resolved: boolean;
  entry?: string;
  end?: string;
  returns?: string[];
  reason?: string;
}
interface CliField {
  name: string;
  resolved: boolean;
  offset: number | null;
  source: string | null;
  absent?: boolean;
  reason?: string;
}
interface CliModule {
  path: string;
  version: string;
  replace?: { path: string; version: string };
}
interface CliReport {
  goVersion: string;
  arch: string;
  pie: boolean;
  stripped: boolean;
  hasDwarf: boolean;
  pclntab?: { textStart?: string };
  module: CliModule;
  modules: CliModule[];
  symbols: CliSymbol[];
  fields: CliField[];
}

async function runCli(binary: string): Promise<CliReport> {
  const args = ["src/main.ts", "inspect", binary, "--json"];
  for (const s of SYMBOLS) args.push("--symbol", s);
  for (const f of FIELDS) args.push("--field", f);
  const { stdout } = await run(join(REPO_ROOT, "node_modules", ".bin", "bun"), args, { cwd: REPO_ROOT });
  return JSON.parse(stdout) as CliReport;
}

const big = (s: string | undefined): bigint | undefined => (s === undefined ? undefined : BigInt(s));
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** What was compared, for the totals printed at the end ("agreed": binaries with no disagreement). */
const tally = { agreed: 0, symbols: 0, returns: 0, fieldsDwarf: 0, fieldsOther: 0, fieldsUnresolved: 0 };

/**
 * All disagreements between the CLI and the oracles for one binary (empty = 100% agreement).
 * Collected rather than asserted one by one so a failure shows every problem at once.
 */
async function compare(
  toolchain: string,
  mode: BuildMode,
  binary: string,
  cli: CliReport,
  oracle: OracleReport,
  offsets: OffsetsOracleReport,
): Promise<string[]> {
  const bad: string[] = [];
  const same = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${what}: beetrace ${JSON.stringify(got)}, oracle ${JSON.stringify(want)}`);
  };

  // The oracles themselves must be sound for this binary before they judge anything.
  const bi = oracle.buildInfo;
  if (!bi) return [`oracle: debug/buildinfo failed: ${oracle.buildInfoError}`];
  if (bi.goVersion !== toolchain) bad.push(`oracle sanity: buildinfo says ${bi.goVersion}, built with ${toolchain}`);
  if (offsets.goVersion !== toolchain) bad.push(`oracle sanity: offsets-oracle runs ${offsets.goVersion}, want ${toolchain}`);
  const cands = Object.entries(oracle.textStart.candidates).filter(([k]) => k !== "textSection");
  if (new Set(cands.map(([, v]) => v)).size !== 1) bad.push(`oracle sanity: runtime.text candidates disagree: ${JSON.stringify(cands)}`);
  if (oracle.textStart.problems?.length) bad.push(`oracle sanity: ${oracle.textStart.problems.join("; ")}`);
  for (const s of ALWAYS_PRESENT) {
    if (!oracle.symbols.find((o) => o.name === s)?.found) bad.push(`oracle sanity: ${s} not found by debug/gosym`);
  }

  // Build info.
  same("goVersion", cli.goVersion, bi.goVersion);
  same("module", { path: cli.module?.path, version: cli.module?.version }, { path: bi.main.path, version: bi.main.version });
  const mods = (ms: Array<{ path: string; version: string; replace?: { path: string; version: string } }>) =>
    ms
      .map((m) => ({ path: m.path, version: m.version, ...(m.replace ? { replace: { path: m.replace.path, version: m.replace.version } } : {}) }))
      .sort((a, b) => a.path.localeCompare(b.path));
  same("modules", mods(cli.modules ?? []), mods(bi.deps));
  if (!bi.deps.some((d) => d.path === "golang.org/x/text")) bad.push("oracle sanity: golang.org/x/text missing from build info");

  // File properties.
  same("arch", cli.arch, { EM_X86_64: "x86_64", EM_AARCH64: "aarch64" }[oracle.machine] ?? oracle.machine);
  same("pie", cli.pie, oracle.pie);
  same("stripped", cli.stripped, !oracle.hasSymtab);
  same("hasDwarf", cli.hasDwarf, oracle.hasDwarf);
  if (cli.pclntab?.textStart !== undefined) same("pclntab.textStart", cli.pclntab.textStart, oracle.textStart.value);
  // The modes must really produce what they claim, or the matrix tests less than it says.
  same("mode sanity: pie", oracle.pie, mode === "pie");
  same("mode sanity: symbol table", oracle.hasSymtab, mode !== "strip" && mode !== "ldflags-s-w");
  same("mode sanity: DWARF", oracle.hasDwarf, mode !== "strip" && mode !== "ldflags-s-w");
  // With the external linker C code opens .text, so .text's start is not runtime.text.
  same("mode sanity: C code before runtime.text", oracle.textStart.candidates.textSection !== oracle.textStart.value, mode === "cgo");

  // Functions.
  for (const name of SYMBOLS) {
    const o = oracle.symbols.find((s) => s.name === name);
    const c = cli.symbols?.find((s) => s.name === name);
    if (!o) {
      bad.push(`${name}: oracle gave no answer`);
      continue;
    }
    if (!c) {
      bad.push(`${name}: missing from beetrace output`);
      continue;
    }
    if (!o.found) {
      if (c.resolved) bad.push(`${name}: beetrace resolved it at ${c.entry}, debug/gosym has no such function`);
      continue;
    }
    const entry = big(o.entry)!;
    const end = big(o.end)!;
    const rets = await objdumpReturns(binary, entry, end);
    if (rets.length === 0) {
      // A function that never returns normally cannot get return probes: unresolved is right.
      if (c.resolved) bad.push(`${name}: beetrace resolved it, but objdump finds no ret in [${o.entry}, ${o.end})`);
      continue;
    }
    if (!c.resolved) {
      bad.push(`${name}: beetrace says unresolved (${c.reason}), debug/gosym has it at ${o.entry}`);
      continue;
    }
    tally.symbols++;
    tally.returns += rets.length;
    same(`${name} entry`, c.entry, o.entry);
    same(`${name} end`, c.end, o.end);
    const cliRets = (c.returns ?? []).map((r) => hex(BigInt(r))).sort();
    same(`${name} returns`, cliRets, rets.map(hex).sort());
  }

  // Struct fields.
  for (const name of FIELDS) {
    const r = offsets.fields.find((f) => f.name === name);
    const c = cli.fields?.find((f) => f.name === name);
    if (!r || (!r.found && !r.absent)) {
      bad.push(`${name}: offsets-oracle cannot answer (${r?.reason ?? "no entry"})`);
      continue;
    }
    if (!c) {
      bad.push(`${name}: missing from beetrace output`);
      continue;
    }
    if (!c.resolved) {
      // Without DWARF the CLI may not know; with DWARF it must.
      if (oracle.hasDwarf) bad.push(`${name}: unresolved (${c.reason}) although the binary has DWARF`);
      else if (!c.reason) bad.push(`${name}: unresolved without a reason`);
      else tally.fieldsUnresolved++;
      continue;
    }
    if (oracle.hasDwarf && c.source !== "dwarf") bad.push(`${name}: source ${c.source}, expected dwarf (the binary has DWARF)`);
    if (r.absent) {
      if (c.offset !== null) bad.push(`${name}: beetrace offset ${c.offset}, but ${r.reason}`);
    } else if (c.offset === null) {
      bad.push(`${name}: beetrace says absent, reflect has offset ${r.offset}`);
    } else {
      same(`${name} offset`, c.offset, r.offset);
    }
    if (c.source === "dwarf") tally.fieldsDwarf++;
    else tally.fieldsOther++;
  }
  if (bad.length === 0) tally.agreed++;
  return bad;
}

const unavailable = goMatrixUnavailable();
const wanted = process.env.BEETRACE_GO_TOOLCHAINS?.split(",").map((s) => s.trim()).filter(Boolean);
const toolchains = wanted ?? goToolchains();

describe.skipIf(unavailable !== undefined)(`inspect vs oracles${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  const builds = new Map<string, Promise<string>>();
  const offsetOracles = new Map<string, Promise<OffsetsOracleReport>>();
  const key = (tc: string, mode: BuildMode) => `${tc}/${mode}`;

  beforeAll(() => {
    // Queue every build now, in test order: the harness runs two at a time while tests wait.
    for (const tc of toolchains) {
      for (const mode of BUILD_MODES) {
        const p = buildFixture({ dir: INSPECTEE, toolchain: tc, mode });
        p.catch(() => {}); // reported by the test that awaits it
        builds.set(key(tc, mode), p);
      }
      const o = runOffsetsOracle(tc, FIELDS);
      o.catch(() => {});
      offsetOracles.set(tc, o);
    }
  });

  test("the matrix names only known toolchains", () => {
    expect(toolchains.filter((t) => !goToolchains().includes(t))).toEqual([]);
    expect(toolchains.length).toBeGreaterThan(0);
  });

  for (const tc of toolchains) {
    for (const mode of BUILD_MODES) {
      test(
        `${tc} ${mode}`,
        async () => {
          const binary = await builds.get(key(tc, mode))!;
          const [cli, oracle, offsets] = await Promise.all([runCli(binary), runOracle(binary, SYMBOLS), offsetOracles.get(tc)!]);
          const problems = await compare(tc, mode, binary, cli, oracle, offsets);
          if (mode === "strip") {
            // Post-build strip keeps every address: the oracle's stripped path (runtime.text from
            // moduledata / pcHeader) must give what the symbol table gave for the same file.
            const unstripped = await builds.get(key(tc, "default"))!;
            const before = await runOracle(unstripped, SYMBOLS);
            if (JSON.stringify(before.symbols) !== JSON.stringify(oracle.symbols)) {
              problems.push("oracle sanity: debug/gosym answers differ between the binary and its stripped copy");
            }
          }
          expect(problems).toEqual([]);
        },
        { timeout: 900_000 },
      );
    }
  }

  test("totals", () => {
    // Printed so a run shows how much was compared (and that it was not nothing).
    console.log(`inspect-oracle: ${JSON.stringify(tally)}`);
    expect(tally.agreed).toBe(toolchains.length * BUILD_MODES.length);
  });
});
