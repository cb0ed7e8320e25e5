/**
 * @module tests/e2e/nethttp — dist/beetrace traces the sample Go service (unstripped, stripped, PIE)
 * through a known workload, and the capture holds exactly the spans that workload implies:
 * names, kinds, attributes, error status, parent/child links, ids, and times that agree with
 * the wall clock the test saw around each request. Needs root; skips with the reason otherwise.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { embeddedSnapshot } from "../../src/offsets/snapshot.ts";
import { probeFields } from "../../src/probes/registry.ts";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildSample, e2eSkipReason, httpGet, listeningAddress, readSpans, runTracer, runTracerToEnd, startSample, waitFor, type Capture, type Exchange, type SampleMode, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("nethttp");

/** The Go version `go build` uses here, and whether the embedded offsets snapshot covers it. */
const goVersion = reason ? "" : spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
const localCovered = !reason && embeddedSnapshot().lookup("std", "net/http.Request.Method", goVersion).kind === "found";
const coverage = embeddedSnapshot().coverage("std");
/**
 * The toolchain for the stripped-with-snapshot test: the local one when the snapshot covers it,
 * else the newest version the snapshot covers (the go command fetches that toolchain once).
 */
const snapshotToolchain = localCovered ? undefined : coverage ? `go${coverage.newest}` : undefined;
const snapshotGap = reason || localCovered ? undefined : `offsets.json (the embedded snapshot) does not cover the local ${goVersion}: ${coverage ? `it covers ${coverage.count} versions, go${coverage.oldest} … go${coverage.newest}` : "it covers no Go version yet"}`;
if (snapshotGap) console.warn(`nethttp e2e: ${snapshotGap}${snapshotToolchain ? `; the stripped-with-snapshot test uses ${snapshotToolchain} instead` : "; the stripped-with-snapshot test is skipped"}`);

/** The workload: how many requests of each kind, in this order, one connection each. */
const WORKLOAD: { path: (i: number) => string; n: number }[] = [
  { path: () => "/hello", n: 23 },
  { path: (i) => `/items/${i + 1}`, n: 5 },
  { path: () => "/fail", n: 3 },
  { path: () => "/proxy", n: 2 },
  { path: () => "/proxy-async", n: 2 },
  { path: () => "/sleep?ms=120", n: 1 },
];
const SLEEP_MS = 120;
/** Slack above the handler's sleep for the /sleep span (scheduling on a loaded 2-core CI box). */
const SLEEP_SLACK_MS = 80;
/** Span times vs the test's wall clock: BOOTTIME→epoch conversion error allowed (ns). */
const CLOCK_TOLERANCE_NS = 3_000_000n;
/** Per test: a cold Go build of the sample plus one traced workload (bun's default is 5 s). */
const TIMEOUT_MS = 120_000;

/** Span name and http.route each request path must produce. */
function routeOf(path: string): { name: string; route: string } {
  const p = path.split("?")[0]!;
  if (p.startsWith("/items/")) return { name: "GET /items/{id}", route: "/items/{id}" };
  return { name: `GET ${p}`, route: p };
}

async function drive(port: number): Promise<Exchange[]> {
  const out: Exchange[] = [];
  for (const w of WORKLOAD) for (let i = 0; i < w.n; i++) out.push(await httpGet(port, w.path(i)));
  return out;
}

interface Traced {
  cap: Capture;
  exchanges: Exchange[];
  port: number;
  targetPid: number;
  stderr: string;
}

/** attach --pid to a running sample, drive the workload (default: WORKLOAD, one request at a time), stop with SIGINT. */
async function traceAttached(bin: string, extra: string[] = [], env?: NodeJS.ProcessEnv, workload: (port: number) => Promise<Exchange[]> = drive): Promise<Traced> {
  const sample = await startSample(bin);
  try {
    const out = join(work, `attach-${sample.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out, ...extra], env);
    const { targetPid } = await tr.started();
    const exchanges = await workload(sample.port);
    tr.signal("SIGINT");
    const exit = await tr.exit();
    expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
    expect(sample.alive()).toBe(true);
    return { cap: readSpans(out), exchanges, port: sample.port, targetPid, stderr: tr.stderr() };
  } finally {
    await sample.stop();
  }
}

/** run -- the sample under the tracer, drive the workload, stop with SIGINT (run stops the program too). */
async function traceRun(bin: string, extra: string[] = []): Promise<Traced> {
  const out = join(work, `run-${Date.now()}.cbor`);
  const tr = runTracer(["run", "--out", out, ...extra, "--", bin, "-addr", "127.0.0.1:0"]);
  const { targetPid } = await tr.started();
  try {
    const { port } = await waitFor(() => listeningAddress(tr.stdout()), 15_000, "the sample's 'listening on' line (via the tracer)");
    const exchanges = await drive(port);
    tr.signal("SIGINT");
    const exit = await tr.exit();
    expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
    // `run` owns the program: it must be gone once the tracer is.
    await waitFor(() => !existsProc(targetPid), 5_000, `run's program (pid ${targetPid}) to be stopped`);
    return { cap: readSpans(out), exchanges, port, targetPid, stderr: tr.stderr() };
  } finally {
    // If the tracer died abnormally, its program is not our test's child: do not leave it running.
    if (existsProc(targetPid)) process.kill(targetPid, "SIGKILL");
  }
}

function existsProc(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

function durationNs(s: SpanRecord): bigint {
  return s.endTimeUnixNano - s.startTimeUnixNano;
}

/** Every assertion about the capture of one workload run. */
function checkCapture(t: Traced): void {
  const { cap, exchanges, port } = t;
  // The requests themselves behaved (so a span mismatch is the tracer's fault).
  for (const x of exchanges) {
    const p = x.path.split("?")[0]!;
    expect({ path: x.path, status: x.status }).toEqual({ path: x.path, status: p === "/fail" ? 500 : 200 });
  }

  expect(cap.contents.truncated).toBe(false);
  expect(cap.end?.reason).toBe("interrupted (SIGINT)");
  expect(cap.end?.totals.spans).toBe(cap.spans.length);
  expect(cap.end?.totals.losses).toEqual({ ringbufFull: 0, inflightFull: 0, returnWithoutEntry: 0, endWithoutStart: 0, incomplete: 0, truncatedStrings: 0 });
  expect(cap.contents.header.target.pid).toBe(t.targetPid);
  // The sample links net/http only: every other registered probe is listed, not attached.
  expect(cap.contents.header.probes.filter((p) => p.attached).map((p) => p.id)).toEqual(["nethttp.server", "nethttp.client"]);

  // Exact counts per span name: every request once, plus one inner /hello server span and one
  // client span per /proxy and /proxy-async.
  const proxied = exchanges.filter((x) => x.path.startsWith("/proxy")).length;
  const counts: Record<string, number> = {};
  for (const s of cap.spans) counts[`${s.kind} ${s.name}`] = (counts[`${s.kind} ${s.name}`] ?? 0) + 1;
  const expected: Record<string, number> = {};
  for (const x of exchanges) expected[`server ${routeOf(x.path).name}`] = (expected[`server ${routeOf(x.path).name}`] ?? 0) + 1;
  expected["server GET /hello"]! += proxied;
  expected["client GET"] = proxied;
  expect(counts).toEqual(expected);

  // Ids: well-formed, non-zero, span ids unique.
  for (const s of cap.spans) {
    expect(s.traceId).toMatch(HEX32);
    expect(s.spanId).toMatch(HEX16);
    expect(/^0+$/.test(s.traceId) || /^0+$/.test(s.spanId)).toBe(false);
  }
  expect(new Set(cap.spans.map((s) => s.spanId)).size).toBe(cap.spans.length);

  // Each request the test made ↔ exactly one server span, found by the client port.
  const byPeerPort = new Map<number, SpanRecord[]>();
  for (const s of cap.spans) {
    const p = s.attributes["network.peer.port"];
    if (s.kind === "server" && typeof p === "number") byPeerPort.set(p, [...(byPeerPort.get(p) ?? []), s]);
  }
  const mine = new Set<string>();
  for (const x of exchanges) {
    const spans = byPeerPort.get(x.localPort) ?? [];
    expect({ path: x.path, spans: spans.length }).toEqual({ path: x.path, spans: 1 });
    const s = spans[0]!;
    mine.add(s.spanId);
    const { name, route } = routeOf(x.path);
    const fail = x.status >= 500;
    expect({ name: s.name, kind: s.kind, status: s.status, parent: s.parentSpanId, attributes: s.attributes }).toEqual({
      name,
      kind: "server",
      status: fail ? { code: "error" } : { code: "unset" },
      parent: undefined,
      attributes: {
        "http.request.method": "GET",
        "url.path": x.path.split("?")[0]!,
        "url.scheme": "http",
        "http.route": route,
        "server.address": "127.0.0.1",
        "server.port": port,
        "network.peer.address": "127.0.0.1",
        "network.peer.port": x.localPort,
        "network.protocol.version": "1.1",
        "http.response.status_code": x.status,
        ...(fail ? { "error.type": "500" } : {}),
      },
    });
    expect(s.scope.name).toBe("beetrace/net/http");
    // The span lies within the wall-clock window the test observed around the request.
    expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(x.t0 - CLOCK_TOLERANCE_NS);
    expect(s.endTimeUnixNano).toBeLessThanOrEqual(x.t1 + CLOCK_TOLERANCE_NS);
    expect(s.endTimeUnixNano).toBeGreaterThan(s.startTimeUnixNano);
    if (x.path.startsWith("/sleep")) {
      expect(durationNs(s)).toBeGreaterThanOrEqual(BigInt(SLEEP_MS) * 1_000_000n);
      expect(durationNs(s)).toBeLessThan(BigInt(SLEEP_MS + SLEEP_SLACK_MS) * 1_000_000n);
    } else {
      // No other handler waits; a generous bound still catches a span that swallowed the next request.
      expect(durationNs(s)).toBeLessThan(BigInt(SLEEP_MS) * 1_000_000n);
    }
  }

  // Parent/child: each proxy server span has exactly one client child in its trace; the inner
  // /hello the client called is a root span of its own trace (no header propagation).
  const clients = cap.spans.filter((s) => s.kind === "client");
  const inner = cap.spans.filter((s) => s.kind === "server" && !mine.has(s.spanId));
  expect(inner.length).toBe(proxied);
  const proxies = cap.spans.filter((s) => mine.has(s.spanId) && s.name.startsWith("GET /proxy"));
  expect(proxies.length).toBe(proxied);
  // The connection's local end is recorded when the offsets its site reads are known (DWARF, or a
  // snapshot that covers this Go release); else the client probe runs without it and says so once.
  const clientOffsets = new Set(cap.contents.header.probes.find((p) => p.id === "nethttp.client")?.offsets.map((o) => o.field));
  const connKnown = ["net/http.persistConn.conn", "net.conn.fd", "net.netFD.laddr", "net.TCPAddr.IP", "net.TCPAddr.Port"].every((f) => clientOffsets.has(f));
  if (!connKnown) expect(t.stderr.split("network.local.address/port of the request's connection not recorded").length).toBe(2);
  for (const parent of proxies) {
    const children = cap.spans.filter((s) => s.parentSpanId === parent.spanId);
    expect(children.length).toBe(1);
    const c = children[0]!;
    expect({ kind: c.kind, name: c.name, traceId: c.traceId, status: c.status, attributes: c.attributes }).toEqual({
      kind: "client",
      name: "GET",
      traceId: parent.traceId,
      status: { code: "unset" },
      attributes: {
        "http.request.method": "GET",
        "url.full": `http://127.0.0.1:${port}/hello?REDACTED`,
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        ...(connKnown ? { "network.local.address": "127.0.0.1", "network.local.port": expect.any(Number) } : {}),
      },
    });
    // The connection's local end is the inner server span's peer (what `beetrace merge` joins on).
    if (connKnown) expect(inner.map((s) => s.attributes["network.peer.port"])).toContain(c.attributes["network.local.port"]!);
    expect(c.startTimeUnixNano).toBeGreaterThanOrEqual(parent.startTimeUnixNano);
    expect(c.endTimeUnixNano).toBeLessThanOrEqual(parent.endTimeUnixNano);
    // The inner server span it caused: inside the client's interval, a root of another trace.
    const caused = inner.filter((s) => s.startTimeUnixNano >= c.startTimeUnixNano && s.endTimeUnixNano <= c.endTimeUnixNano);
    expect(caused.length).toBe(1);
    const i = caused[0]!;
    expect({ name: i.name, parent: i.parentSpanId, sameTrace: i.traceId === c.traceId, path: i.attributes["url.path"], peer: i.attributes["network.peer.address"] }).toEqual({
      name: "GET /hello",
      parent: undefined,
      sameTrace: false,
      path: "/hello",
      peer: "127.0.0.1",
    });
  }
  expect(clients.every((c) => proxies.some((p) => p.spanId === c.parentSpanId))).toBe(true);
  // Every root server span starts its own trace.
  const roots = cap.spans.filter((s) => s.parentSpanId === undefined);
  expect(new Set(roots.map((s) => s.traceId)).size).toBe(roots.length);
}

/** An --offsets file for `goVersion`, with the offsets DWARF gives in the unstripped build of the same sources. */
async function offsetsFromTwin(unstripped: string): Promise<string> {
  const fields = probeFields();
  const r = await runTracerToEnd(["inspect", unstripped, ...fields.flatMap((f) => ["--field", f]), "--json"]);
  expect(r.exit.code).toBe(0);
  const report = JSON.parse(r.stdout) as { fields: { name: string; resolved: boolean; offset: number | null; source?: string }[] };
  const v = goVersion.replace(/^go/, "");
  const out: Record<string, { from: string; to: string; offset: number | null }[]> = {};
  for (const f of report.fields) if (f.resolved && f.source === "dwarf") out[f.name] = [{ from: v, to: v, offset: f.offset }];
  const file = join(work, `offsets-${goVersion}.json`);
  writeFileSync(file, JSON.stringify({ schema: 1, generated: { by: "e2e test: DWARF of the unstripped twin" }, modules: { std: { versions: [v], fields: out } } }));
  return file;
}

describe.skipIf(reason !== undefined)(`net/http tracing end to end${reason ? ` — skipped: ${reason}` : ""}`, () => {
  const bins = new Map<SampleMode, Promise<string>>();
  const bin = (m: SampleMode) => {
    let p = bins.get(m);
    if (!p) bins.set(m, (p = buildSample({ mode: m })));
    return p;
  };

  test("unstripped sample, attach --pid: exact spans, links and times", async () => {
    const t = await traceAttached(await bin("default"));
    checkCapture(t);
    for (const p of t.cap.contents.header.probes.filter((x) => x.attached)) for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:dwarf`);
  }, TIMEOUT_MS);

  test("PIE sample, attach --pid: the same spans", async () => {
    checkCapture(await traceAttached(await bin("pie")));
  }, TIMEOUT_MS);

  // The server's calls in flight, and the span each goroutine serves (what a child's probe finds),
  // live in a direct-mapped slot per goroutine, else in an LRU map (bpf/include/slots.bpf.h).
  // With one slot, /proxy's inner request and every concurrent request but one take the LRU
  // path, goroutines race to claim the slot, and /proxy's client spans still find their parent.
  test("one server call slot (BEETRACE_SERVER_SLOTS=1): the same exact spans", async () => {
    checkCapture(await traceAttached(await bin("default"), [], { BEETRACE_SERVER_SLOTS: "1" }));
  }, TIMEOUT_MS);

  test("one server call slot, 24 requests at once: one exact span each", async () => {
    const N = 24;
    const t = await traceAttached(await bin("default"), [], { BEETRACE_SERVER_SLOTS: "1" }, (port) =>
      Promise.all(Array.from({ length: N }, (_, i) => httpGet(port, i % 2 ? `/sleep?ms=${SLEEP_MS}&i=${i}` : `/items/${i}`))),
    );
    expect(t.cap.end?.totals.losses).toEqual({ ringbufFull: 0, inflightFull: 0, returnWithoutEntry: 0, endWithoutStart: 0, incomplete: 0, truncatedStrings: 0 });
    expect(t.cap.spans.length).toBe(N);
    for (const x of t.exchanges) {
      const spans = t.cap.spans.filter((s) => s.attributes["network.peer.port"] === x.localPort);
      expect({ path: x.path, spans: spans.length }).toEqual({ path: x.path, spans: 1 });
      const s = spans[0]!;
      expect({ name: s.name, path: s.attributes["url.path"], status: s.attributes["http.response.status_code"] }).toEqual({
        name: routeOf(x.path).name,
        path: x.path.split("?")[0],
        status: 200,
      });
      expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(x.t0 - CLOCK_TOLERANCE_NS);
      expect(s.endTimeUnixNano).toBeLessThanOrEqual(x.t1 + CLOCK_TOLERANCE_NS);
      if (x.path.startsWith("/sleep")) expect(durationNs(s)).toBeGreaterThanOrEqual(BigInt(SLEEP_MS) * 1_000_000n);
    }
    expect(new Set(t.cap.spans.map((s) => s.spanId)).size).toBe(N);
  }, TIMEOUT_MS);

  const noSnapshot = !localCovered && snapshotToolchain === undefined;
  test.skipIf(noSnapshot)(
    `stripped sample (-ldflags="-s -w") built with ${localCovered ? goVersion : (snapshotToolchain ?? "-")}, run --, offsets from the embedded snapshot${noSnapshot ? ` — skipped: ${snapshotGap}` : ""}`,
    async () => {
      const stripped = await buildSample({ mode: "stripped", toolchain: snapshotToolchain });
      const t = await traceRun(stripped);
      checkCapture(t);
      expect(t.cap.contents.header.target.goVersion).toBe(localCovered ? goVersion : snapshotToolchain!);
      for (const p of t.cap.contents.header.probes.filter((x) => x.attached)) for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:snapshot`);
    },
    TIMEOUT_MS,
  );

  test(`stripped sample (-ldflags="-s -w"), run --, offsets from --offsets FILE (DWARF of its unstripped twin)`, async () => {
    const offsets = await offsetsFromTwin(await bin("default"));
    const t = await traceRun(await bin("stripped"), ["--offsets", offsets]);
    checkCapture(t);
    for (const p of t.cap.contents.header.probes.filter((x) => x.attached)) for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:file`);
  }, TIMEOUT_MS);

  // A stripped binary whose Go version the snapshot does not cover (refused, exit 25, nothing
  // guessed) is tested in tests/e2e/offsets.test.ts, which edits the version in the build info.
});
