/**
 * @module tests/e2e/offsets — the embedded offsets snapshot against independent truth, and the
 * stripped-binary workflow an operator follows.
 *
 * 1. Snapshot vs reflect: for a sample of covered versions of each module, a program built with
 *    that exact version prints reflect's field offsets (the compiler's own layout, no DWARF);
 *    every tracked field reflect can reach must equal the snapshot.
 * 2. (root) A stripped sample built with a covered Go is traced with snapshot offsets only.
 * 3. (root) The same sample with its build-info Go version edited to an uncovered release
 *    (same length, so the file stays valid) is refused: exit 25 (nothing_attached), no probe at a
 *    guessed offset. `beetrace offsets extract` on its equally edited unstripped twin gives a file
 *    with which `--offsets FILE` traces it again.
 *
 * The tracer runs from source (bun src/main.ts) so it embeds the offsets.json of this checkout.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { embeddedSnapshot } from "../../src/offsets/snapshot.ts";
import { trackedFields } from "../../src/offsets/planned-fields.ts";
import { TEMPLATES } from "../../src/offsets/tracker/templates.ts";
import { ElfFile } from "../../src/binary/elf.ts";
import { readBuildInfo } from "../../src/binary/buildinfo.ts";
import { goToolchains, runOffsetsOracle } from "../harness/go.ts";
import { buildSample, httpGet, killAll, listeningAddress, readSpans, requireRoot, waitFor, type Exit } from "./harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const MAIN = join(ROOT, "src", "main.ts");
const TIMEOUT_MS = 600_000;
const snapshot = embeddedSnapshot();
const haveGo = spawnSync("go", ["version"]).status === 0;
const work = mkdtempSync(join(tmpdir(), "beetrace-offsets-e2e-"));
afterAll(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

const covered = (module: string): string[] => snapshot.file.modules[module]?.versions ?? [];
/** Oldest and newest covered versions: the ends of the range, where layout changes would show. */
const sampleOf = (versions: string[]): string[] => [...new Set([versions[0], versions[versions.length - 1]].filter((v): v is string => !!v))];

// ---------------------------------------------------------------------------------------------
// 1. the snapshot against reflect

/** Fields the std reflect oracle cannot reach (unexported runtime types no value hands out). */
const STD_UNREACHABLE = new Set([
  "runtime.g.goid",
  "runtime.hmap.buckets",
  "runtime.hmap.B",
  "runtime.g._panic",
  "runtime._panic.arg",
  "internal/runtime/maps.Map.dirPtr",
  "internal/runtime/maps.Map.dirLen",
  "internal/runtime/maps.table.groups",
  "internal/runtime/maps.groupsReference.data",
  "internal/runtime/maps.groupsReference.lengthMask",
  // Unexported types no exported value or field leads to: sql.Open's connector (an interface
  // field's dynamic type) and the Transport's connections (map values).
  "database/sql.dsnConnector.driver",
  "net/http.persistConn.conn",
  // Go 1.27's HTTP/2 server types are unexported in an internal package.
  "net/http/internal/http2.responseWriter.rws",
  "net/http/internal/http2.responseWriterState.status",
]);

function expectSnapshot(module: string, version: string, field: string, want: number | null): void {
  const r = snapshot.lookup(module, field, version);
  const got = r.kind === "found" ? r.offset : r.kind === "absent" ? null : `unknown: ${"reason" in r ? r.reason : r.kind}`;
  expect({ module, version, field, offset: got }).toEqual({ module, version, field, offset: want });
}

describe.skipIf(!haveGo)(`offsets snapshot vs reflect${haveGo ? "" : " — skipped: needs go on PATH"}`, () => {
  // The std sample: every toolchain the Go test matrix pins (downloaded anyway) that the snapshot
  // covers — oldest to newest, including go1.26.11, the patch release that moved response.status.
  const stdSample = goToolchains().filter((t) => covered("std").includes(t.slice(2)));
  test.skipIf(stdSample.length === 0)(`std at ${stdSample.join(", ") || "(no pinned toolchain is covered)"}`, async () => {
    const fields = trackedFields("std");
    for (const tc of stdSample) {
      const report = await runOffsetsOracle(tc, fields);
      expect(report.goVersion).toBe(tc);
      let compared = 0;
      for (const f of report.fields) {
        if (f.found) {
          expectSnapshot("std", tc, f.name, f.offset!);
          compared++;
        } else if (f.absent || /has no field/.test(f.reason ?? "")) {
          // absent here, or its struct is reached through a field this release does not have yet
          expectSnapshot("std", tc, f.name, null);
          compared++;
        } else {
          expect({ field: f.name, unreachable: STD_UNREACHABLE.has(f.name), reason: f.reason }).toMatchObject({ field: f.name, unreachable: true });
        }
      }
      expect(compared).toBe(fields.length - STD_UNREACHABLE.size);
    }
  }, TIMEOUT_MS);

  // Modules without a reflect oracle are not compared here. github.com/quic-go/quic-go: its one
  // tracked type (http3.responseWriter) is unexported and no exported API returns it, so reflect
  // cannot reach it; DWARF (the tracker) is its only source, and tests/e2e/http3.test.ts's
  // stripped runs check the offsets in use (status codes come out right from offsets.json alone).
  for (const module of TEMPLATES.map((t) => t.module).filter((m) => m !== "std" && MODULE_ORACLES[m] !== undefined)) {
    const versions = sampleOf(covered(module));
    const toolchain = snapshot.file.generated?.builtWith?.[module]?.split(", ").pop();
    const skip = versions.length === 0 ? "the snapshot covers no version yet" : !toolchain ? "the snapshot does not say which toolchain built it" : undefined;
    test.skipIf(skip !== undefined)(`${module} at ${versions.join(", ") || "-"}${skip ? ` — skipped: ${skip}` : ""}`, async () => {
      const oracle = MODULE_ORACLES[module]!;
      const fields = trackedFields(module).filter((f) => oracle.types.some((t) => f.startsWith(t.name + ".") && !f.slice(t.name.length + 1).includes(".")));
      expect(fields.length).toBeGreaterThan(0);
      await Promise.all(
        versions.map(async (v) => {
          const out = await runModuleOracle(module, "v" + v, toolchain!, oracle, fields);
          for (const f of out) {
            if (!f.typeFound) throw new Error(`${module} v${v}: reflect oracle cannot reach ${f.name}: ${f.reason}`);
            expectSnapshot(module, v, f.name, f.found ? f.offset! : null);
          }
        }),
      );
    }, TIMEOUT_MS);
  }
});

interface ModuleOracle {
  imports: string[];
  /** type name as DWARF names it → Go expression of its reflect.Type */
  types: { name: string; expr: string }[];
}

/** Exported (or reachable through a returned value) types whose tracked fields reflect can read. */
const MODULE_ORACLES: Record<string, ModuleOracle> = {
  "google.golang.org/grpc": {
    imports: ['"google.golang.org/grpc"', '"google.golang.org/grpc/peer"'],
    types: [
      { name: "google.golang.org/grpc.ClientConn", expr: "reflect.TypeOf((*grpc.ClientConn)(nil)).Elem()" },
      { name: "google.golang.org/grpc/peer.Peer", expr: "reflect.TypeOf((*peer.Peer)(nil)).Elem()" },
    ],
  },
  "golang.org/x/net": {
    imports: ['"golang.org/x/net/http2"'],
    types: [
      { name: "golang.org/x/net/http2.MetaHeadersFrame", expr: "reflect.TypeOf((*http2.MetaHeadersFrame)(nil)).Elem()" },
      { name: "golang.org/x/net/http2.FrameHeader", expr: "reflect.TypeOf((*http2.FrameHeader)(nil)).Elem()" },
    ],
  },
  "github.com/segmentio/kafka-go": {
    imports: ['kafka "github.com/segmentio/kafka-go"'],
    types: [
      ...["Message", "Writer", "Reader", "ReaderConfig"].map((t) => ({ name: `github.com/segmentio/kafka-go.${t}`, expr: `reflect.TypeOf((*kafka.${t})(nil)).Elem()` })),
      // kafka.Header is an alias of protocol.Header (kafka-go record.go); DWARF names the latter.
      { name: "github.com/segmentio/kafka-go/protocol.Header", expr: "reflect.TypeOf(kafka.Header{})" },
    ],
  },
  "go.opentelemetry.io/otel": {
    // internal/global cannot be imported; the global API hands out values of its types.
    imports: ['"go.opentelemetry.io/otel"'],
    types: [
      { name: "go.opentelemetry.io/otel/internal/global.tracer", expr: 'reflect.TypeOf(otel.Tracer("oracle")).Elem()' },
      { name: "go.opentelemetry.io/otel/internal/global.tracerProvider", expr: "reflect.TypeOf(otel.GetTracerProvider()).Elem()" },
    ],
  },
};

interface OracleField {
  name: string;
  typeFound: boolean;
  found: boolean;
  offset?: number;
  reason?: string;
}

function oracleSource(o: ModuleOracle): string {
  return `package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	${o.imports.join("\n\t")}
)

type out struct {
	Name      string \`json:"name"\`
	TypeFound bool   \`json:"typeFound"\`
	Found     bool   \`json:"found"\`
	Offset    *int   \`json:"offset,omitempty"\`
	Reason    string \`json:"reason,omitempty"\`
}

func main() {
	types := map[string]reflect.Type{
		${o.types.map((t) => `${JSON.stringify(t.name)}: ${t.expr},`).join("\n\t\t")}
	}
	res := []out{}
	for _, arg := range os.Args[1:] {
		dot := strings.LastIndex(arg, ".")
		typ, field := arg[:dot], arg[dot+1:]
		t, ok := types[typ]
		if !ok {
			res = append(res, out{Name: arg, Reason: "type not in the oracle"})
			continue
		}
		if t.PkgPath()+"."+t.Name() != typ {
			res = append(res, out{Name: arg, Reason: "expression gives " + t.PkgPath() + "." + t.Name()})
			continue
		}
		o := out{Name: arg, TypeFound: true}
		// direct members only: beetrace names a field by the struct that declares it
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.Name == field {
				off := int(f.Offset)
				o.Found, o.Offset = true, &off
			}
		}
		res = append(res, o)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}
`;
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string | undefined>): Promise<string> {
  return new Promise((res, rej) =>
    execFile(cmd, args, { cwd, env: env as NodeJS.ProcessEnv, encoding: "utf8", maxBuffer: 16 << 20, timeout: 15 * 60_000 }, (e, stdout, stderr) =>
      e ? rej(new Error(`${cmd} ${args.join(" ")} failed: ${e.message}\n${stderr}`)) : res(stdout),
    ),
  );
}

/** At most two go builds at once (2 cores shared with other work). */
let active = 0;
const waiting: Array<() => void> = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (active >= 2) await new Promise<void>((r) => waiting.push(r));
  else active++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else active--;
  }
}

async function runModuleOracle(module: string, version: string, toolchain: string, o: ModuleOracle, fields: string[]): Promise<OracleField[]> {
  const dir = join(work, `oracle-${encodeURIComponent(module)}@${version}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "go.mod"), "module beetrace.invalid/offsets-oracle\n\ngo 1.21\n");
  writeFileSync(join(dir, "main.go"), oracleSource(o));
  const env: Record<string, string | undefined> = { ...process.env, GOTOOLCHAIN: toolchain, GOFLAGS: "-buildvcs=false -mod=mod", GOWORK: "off", CGO_ENABLED: "0" };
  for (const k of ["GOOS", "GOARCH", "GOAMD64", "GOEXPERIMENT"]) delete env[k];
  // Shares the tracker's build cache when present (same toolchain: std is compiled once).
  env.GOCACHE = process.env.BEETRACE_OFFSETS_CACHE ? join(process.env.BEETRACE_OFFSETS_CACHE, "gocache") : join(ROOT, ".cache", "offsets-tracker", "gocache");
  await limited(async () => {
    await run("go", ["get", `${module}@${version}`], dir, env);
    await run("go", ["build", "-o", "oracle", "."], dir, env);
  });
  const bin = join(dir, "oracle");
  const buf = readFileSync(bin);
  const info = readBuildInfo(ElfFile.parse(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), bin));
  expect(info.deps.find((d) => d.path === module)?.version).toBe(version);
  return JSON.parse(await run(bin, fields, dir, process.env)) as OracleField[];
}

// ---------------------------------------------------------------------------------------------
// 2 + 3. tracing stripped binaries (root)

/** Replace the Go version in .go.buildinfo with another of the same length (the file stays valid). */
function editGoVersion(src: string, dst: string, from: string, to: string): void {
  if (from.length !== to.length) throw new Error(`${from} → ${to}: lengths differ`);
  const bytes = new Uint8Array(readFileSync(src));
  const elf = ElfFile.parse(bytes, src);
  const sec = elf.section(".go.buildinfo");
  if (!sec) throw new Error(`${src}: no .go.buildinfo section`);
  const hay = bytes.subarray(sec.offset, sec.offset + sec.size);
  const needle = new TextEncoder().encode(from);
  let at = -1;
  for (let i = 0; i + needle.length <= hay.length && at < 0; i++) if (needle.every((b, j) => hay[i + j] === b)) at = i;
  if (at < 0) throw new Error(`${src}: ${from} not found in .go.buildinfo`);
  hay.set(new TextEncoder().encode(to), at);
  writeFileSync(dst, bytes, { mode: 0o755 });
  const again = readBuildInfo(ElfFile.parse(new Uint8Array(readFileSync(dst)), dst));
  if (again.goVersion !== to) throw new Error(`${dst}: build info says ${again.goVersion} after the edit, not ${to}`);
}

interface Tracer {
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  kill(sig: NodeJS.Signals): void;
}

function startTracer(args: string[]): Tracer {
  const p = spawn(BUN, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT });
  let out = "";
  let err = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<Exit>((r) => p.on("exit", (code, signal) => r({ code, signal })));
  return { stdout: () => out, stderr: () => err, exited, kill: (s) => void p.kill(s) };
}

async function finish(t: Tracer, ms: number): Promise<Exit> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      t.kill("SIGKILL");
      rej(new Error(`tracer did not exit within ${ms} ms\n${t.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([t.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `run --` the binary, make requests, stop with SIGINT; returns the capture and the tracer's stderr. */
async function traceRun(bin: string, extra: string[]): Promise<{ cap: ReturnType<typeof readSpans>; ports: number[]; stderr: string }> {
  const out = join(work, `cap-${Date.now()}-${Math.random().toString(36).slice(2)}.cbor`);
  // --duration bounds the run if the test dies; the test stops it with SIGINT once it is done.
  const t = startTracer(["run", "--out", out, "--duration", "300s", ...extra, "--", bin, "-addr", "127.0.0.1:0"]);
  let exit: Exit | undefined;
  void t.exited.then((e) => (exit = e));
  const { port } = await waitFor(
    () => listeningAddress(t.stdout()) ?? (exit ? Promise.reject(new Error(`tracer exited ${JSON.stringify(exit)}:\n${t.stderr()}`)) : undefined),
    60_000,
    "the sample's 'listening on' line",
  );
  await waitFor(() => /beetrace: tracing pid/.test(t.stderr()), 30_000, "the tracer's 'tracing pid' line");
  const ports: number[] = [];
  for (const path of ["/hello", "/hello", "/fail", "/proxy"]) {
    const x = await httpGet(port, path);
    expect({ path, status: x.status }).toEqual({ path, status: path === "/fail" ? 500 : 200 });
    ports.push(x.localPort);
  }
  t.kill("SIGINT");
  const e = await finish(t, 30_000);
  expect({ exit: e, stderr: t.stderr() }).toMatchObject({ exit: { code: 0 } });
  return { cap: readSpans(out), ports, stderr: t.stderr() };
}

function checkTraced(r: Awaited<ReturnType<typeof traceRun>>, source: string): void {
  const { cap, ports } = r;
  // The sample links net/http only: every other registered probe is listed, not attached.
  expect(cap.contents.header.probes.filter((p) => p.attached).map((p) => p.id)).toEqual(["nethttp.server", "nethttp.client"]);
  // Every offset in use came from the expected place, and there were offsets.
  const sources = cap.contents.header.probes.flatMap((p) => p.offsets.map((o) => `${o.field}:${o.source}`));
  expect(sources.length).toBeGreaterThan(5);
  for (const s of sources) expect(s).toBe(s.replace(/:[a-z]+$/, `:${source}`));
  expect(r.stderr).toContain(`offsets from ${source}`);
  // One server span per request, found by the client's port, with the values the offsets read.
  for (const [i, path] of ["/hello", "/hello", "/fail", "/proxy"].entries()) {
    const spans = cap.spans.filter((s) => s.kind === "server" && s.attributes["network.peer.port"] === ports[i]);
    expect(spans.length).toBe(1);
    expect({ method: spans[0]!.attributes["http.request.method"], path: spans[0]!.attributes["url.path"], status: spans[0]!.attributes["http.response.status_code"] }).toEqual({
      method: "GET",
      path,
      status: path === "/fail" ? 500 : 200,
    });
  }
  // /proxy made one client call, itself traced as a server span of /hello.
  const clients = cap.spans.filter((s) => s.kind === "client");
  expect(clients.length).toBe(1);
  expect(clients[0]!.attributes["http.response.status_code"]).toBe(200);
}

const rootSkip = requireRoot() ?? (haveGo ? undefined : "needs go on PATH");
/** A toolchain the Go matrix pins (downloaded anyway) that the snapshot covers; newest first. */
const tracedToolchain = [...goToolchains()].reverse().find((t) => covered("std").includes(t.slice(2)));
/** Same length as `v`, not covered: "go1.27.4" → "go1.27.9" (a release the snapshot cannot know). */
function uncoveredTwin(v: string): string | undefined {
  for (const d of "987654321") {
    const cand = v.slice(0, -1) + d;
    if (cand !== v && !covered("std").includes(cand.slice(2))) return cand;
  }
  return undefined;
}

describe.skipIf(rootSkip !== undefined || !tracedToolchain)(
  `stripped binaries, traced with snapshot / refused / --offsets${rootSkip ? ` — skipped: ${rootSkip}` : !tracedToolchain ? " — skipped: the snapshot covers none of the pinned toolchains" : ""}`,
  () => {
    test(`stripped sample built with ${tracedToolchain}: traced with snapshot offsets only`, async () => {
      const stripped = await buildSample({ mode: "stripped", toolchain: tracedToolchain });
      checkTraced(await traceRun(stripped, []), "snapshot");
    }, TIMEOUT_MS);

    test(`stripped sample claiming an uncovered Go: refused (exit 25), then traced with 'offsets extract' of its twin`, async () => {
      const tc = tracedToolchain!;
      const fake = uncoveredTwin(tc)!;
      expect(fake).toBeDefined();
      const stripped = join(work, "sample-stripped-" + fake);
      const unstripped = join(work, "sample-" + fake);
      editGoVersion(await buildSample({ mode: "stripped", toolchain: tc }), stripped, tc, fake);
      editGoVersion(await buildSample({ mode: "default", toolchain: tc }), unstripped, tc, fake);

      // Refused: every probe disabled with the version named; nothing attached at a guessed
      // offset. `run` still runs the service (untraced) and passes its exit status through: it
      // is stopped with SIGTERM at the end of --duration, which counts as a clean exit (0).
      const out = join(work, "refused.cbor");
      const t = startTracer(["run", "--out", out, "--duration", "2s", "--", stripped, "-addr", "127.0.0.1:0"]);
      const e = await finish(t, 120_000);
      expect(e.code).toBe(0);
      const err = t.stderr();
      expect(err).toContain("runs on untraced");
      expect(err).toContain("no probe could be attached");
      expect(err).toContain(`std ${fake} is not covered`);
      expect(err).toContain("--offsets FILE");
      expect(err).not.toContain("is a guess");
      expect(err).not.toContain("beetrace: tracing pid");

      // extract refuses the stripped file (no DWARF) with its own exit code…
      const noDwarf = spawnSync(BUN, [MAIN, "offsets", "extract", stripped, "-o", join(work, "x.json")], { encoding: "utf8", cwd: ROOT });
      expect({ code: noDwarf.status, err: noDwarf.stderr.includes("has no DWARF") }).toEqual({ code: 16, err: true }); // offset_unknown
      // …and reads the unstripped twin.
      const file = join(work, `offsets-${fake}.json`);
      const ex = spawnSync(BUN, [MAIN, "offsets", "extract", unstripped, "-o", file], { encoding: "utf8", cwd: ROOT });
      expect({ code: ex.status, stderr: ex.stderr }).toMatchObject({ code: 0 });
      const written = JSON.parse(readFileSync(file, "utf8")) as { modules: Record<string, { versions: string[] }> };
      expect(written.modules.std?.versions).toEqual([fake.slice(2)]);

      checkTraced(await traceRun(stripped, ["--offsets", file]), "file");
    }, TIMEOUT_MS);
  },
);
