/**
 * @module tests/e2e/nethttp-h2 — HTTP/2 server spans carry the response status: the sample's
 * /h2-self route calls its own listener over unencrypted HTTP/2 (Go >= 1.24), and the capture
 * must hold an HTTP/2 server span per inner request with network.protocol.version "2" and the
 * status the handler wrote (200, 500 → error). Offsets from DWARF (unstripped) and, when the
 * embedded snapshot covers the local Go, from the snapshot (stripped). Needs root.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { embeddedSnapshot } from "../../src/offsets/snapshot.ts";
import { goAtLeast } from "../../src/probes/probe.ts";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, type Exchange, type SampleMode, e2eWorkDir } from "./harness.ts";

const H2_FIELDS = ["net/http.http2responseWriter.rws", "net/http.http2responseWriterState.status"];

const goVersion = e2eSkipReason() ? "" : spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
/** net/http serves unencrypted HTTP/2 only from Go 1.24 (http.Protocols.SetUnencryptedHTTP2). */
const reason = e2eSkipReason() ?? (goAtLeast(goVersion.replace(/^go/, ""), "1.24") ? undefined : `the local ${goVersion} has no unencrypted HTTP/2 (needs go1.24+)`);
const snapshotGap = reason
  ? reason
  : H2_FIELDS.every((f) => embeddedSnapshot().lookup("std", f, goVersion).kind === "found")
    ? undefined
    : `offsets.json (the embedded snapshot) has no HTTP/2 writer offsets for ${goVersion}`;

const work = e2eWorkDir("nethttp-h2");

/** Inner paths the sample calls over HTTP/2, and how often each. */
const WORKLOAD: { to: string; n: number; status: number }[] = [
  { to: "/hello", n: 3, status: 200 },
  { to: "/fail", n: 2, status: 500 },
];
const TIMEOUT_MS = 120_000;

async function traceH2(mode: SampleMode, toolchain?: string): Promise<{ spans: SpanRecord[]; exchanges: Exchange[] }> {
  const bin = await buildSample({ mode, ...(toolchain ? { toolchain } : {}) });
  const sample = await startSample(bin);
  try {
    const out = join(work, `h2-${mode}-${sample.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
    await tr.started();
    const exchanges: Exchange[] = [];
    for (const w of WORKLOAD) for (let i = 0; i < w.n; i++) exchanges.push(await httpGet(sample.port, `/h2-self?to=${w.to}`));
    tr.signal("SIGINT");
    const exit = await tr.exit();
    expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
    return { spans: readSpans(out).spans, exchanges };
  } finally {
    await sample.stop();
  }
}

function check(spans: SpanRecord[], exchanges: Exchange[]): void {
  // The requests themselves went over HTTP/2 and got the expected status (so a span mismatch is ours).
  let k = 0;
  for (const w of WORKLOAD)
    for (let i = 0; i < w.n; i++) expect({ status: exchanges[k]!.status, body: exchanges[k++]!.body }).toEqual({ status: 200, body: `upstream said ${w.status} over HTTP/2.0` });

  const h2 = spans.filter((s) => s.kind === "server" && s.attributes["network.protocol.version"] === "2");
  const h1 = spans.filter((s) => s.kind === "server" && s.attributes["network.protocol.version"] === "1.1");
  expect(h1.length).toBe(exchanges.length);
  expect(h2.length).toBe(exchanges.length);
  for (const s of h1) expect({ name: s.name, code: s.attributes["http.response.status_code"] }).toEqual({ name: "GET /h2-self", code: 200 });
  for (const w of WORKLOAD) {
    const mine = h2.filter((s) => s.attributes["url.path"] === w.to);
    expect(mine.length).toBe(w.n);
    for (const s of mine) {
      const fail = w.status >= 500;
      expect({ name: s.name, status: s.status, code: s.attributes["http.response.status_code"], err: s.attributes["error.type"] }).toEqual({
        name: `GET ${w.to}`,
        status: fail ? { code: "error" } : { code: "unset" },
        code: w.status,
        err: fail ? String(w.status) : undefined,
      });
    }
  }
}

describe.skipIf(reason !== undefined)(`HTTP/2 server spans (${reason ?? goVersion})`, () => {
  test(
    "unstripped (offsets from DWARF): HTTP/2 spans carry status 200 and 500",
    async () => {
      const { spans, exchanges } = await traceH2("default");
      check(spans, exchanges);
    },
    TIMEOUT_MS,
  );

  test.skipIf(snapshotGap !== undefined)(
    `stripped (offsets from the snapshot): HTTP/2 spans carry status 200 and 500${snapshotGap ? ` — skipped: ${snapshotGap}` : ""}`,
    async () => {
      const { spans, exchanges } = await traceH2("stripped");
      check(spans, exchanges);
    },
    TIMEOUT_MS,
  );
});

/** Go 1.27 moved the HTTP/2 server into net/http/internal/http2: its own marker and status fields. */
const GO127 = "go1.27.4";
describe.skipIf(reason !== undefined)(`HTTP/2 server spans (${reason ?? GO127}, net/http/internal/http2)`, () => {
  test(
    "unstripped (offsets from DWARF): HTTP/2 spans carry status 200 and 500",
    async () => {
      const { spans, exchanges } = await traceH2("default", GO127);
      check(spans, exchanges);
    },
    TIMEOUT_MS,
  );
});
