/**
 * @module tests/e2e/nethttp-panic — a handler that panics is what an operator most needs to see.
 *
 * net/http recovers a handler's panic and resets the connection (HTTP/1) or the stream (HTTP/2);
 * no RET of the handler runs and finishRequest is skipped. The span must still end, where net/http
 * recovers (conn.serve's deferred func; runHandler's deferred func on HTTP/2), with status Error,
 * error.type "panic" and an "exception" event holding the panic value's text; and no per-call
 * state may be left behind: after 20,000 panics normal requests are still traced and the capture
 * counts no incomplete call.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { goAtLeast } from "../../src/probes/probe.ts";
import { buildSample, e2eSkipReason, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const goVersion = reason ? "" : spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
const work = e2eWorkDir("panic");

/** One GET whose handler panics: net/http closes the connection without a response. */
function getUntilClosed(port: number, path: string): Promise<string> {
  return new Promise((res, rej) => {
    const sock = connect({ host: "127.0.0.1", port });
    let data = "";
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    sock.on("data", (d: string) => (data += d));
    sock.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? undefined : rej(e)));
    sock.on("close", () => res(data));
  });
}

const PANICS = [
  { kind: "string", text: "boom: a string" },
  { kind: "error", text: "boom: an error value" },
  { kind: "nil", text: "invalid memory address or nil pointer dereference" },
];
const MANY = 20_000;
const CONCURRENCY = 16;

function panicSpans(spans: SpanRecord[], path = "/panic"): SpanRecord[] {
  return spans.filter((s) => s.kind === "server" && s.attributes["url.path"] === path);
}

describe.skipIf(reason !== undefined)(`panicking handlers${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test(
    `each panic is one Error span with the panic text; after ${MANY} panics normal requests are still traced and nothing stays open`,
    async () => {
      const bin = await buildSample({ mode: "default" });
      const sample = await startSample(bin, ["-quiet-errors"]);
      try {
        const out = join(work, `panic-${sample.pid}.cbor`);
        const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
        await tr.started();
        for (const p of PANICS) expect(await getUntilClosed(sample.port, `/panic?kind=${p.kind}`)).toBe("");
        // Many more, a few connections at a time (each panic costs its connection).
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < MANY) {
              next++;
              await getUntilClosed(sample.port, "/panic?kind=string");
            }
          }),
        );
        const after = [];
        for (let i = 0; i < 5; i++) after.push(await httpGet(sample.port, "/hello"));
        expect(after.map((e) => e.status)).toEqual([200, 200, 200, 200, 200]);
        tr.signal("SIGINT");
        expect(await tr.exit()).toMatchObject({ code: 0, signal: null });

        const cap = readSpans(out);
        const panics = panicSpans(cap.spans);
        expect(panics.length).toBe(PANICS.length + MANY);
        for (const [i, p] of PANICS.entries()) {
          const s = panics.find((x) => x.events?.[0]?.attributes["exception.message"] === p.text);
          expect({ i, found: s !== undefined }).toEqual({ i, found: true });
          expect(s!.status).toEqual({ code: "error", message: `panic: ${p.text}` });
          expect(s!.attributes["error.type"]).toBe("panic");
          expect(s!.attributes["http.response.status_code"]).toBeUndefined();
          expect(s!.events).toEqual([{ name: "exception", timeUnixNano: s!.endTimeUnixNano, attributes: { "exception.type": "panic", "exception.message": p.text } }]);
          expect(s!.name).toBe("GET /panic");
        }
        for (const s of panics) expect(s.status.code).toBe("error");
        const hello = cap.spans.filter((s) => s.attributes["url.path"] === "/hello");
        expect(hello.length).toBe(5);
        for (const s of hello) expect({ code: s.attributes["http.response.status_code"], status: s.status.code }).toEqual({ code: 200, status: "unset" });
        // No per-call state was left behind by 20,003 panics.
        expect(cap.end?.totals.losses).toMatchObject({ incomplete: 0, inflightFull: 0, ringbufFull: 0 });
      } finally {
        await sample.stop();
      }
    },
    300_000,
  );

  test.skipIf(!goAtLeast(goVersion.replace(/^go/, ""), "1.24"))("an HTTP/2 handler that panics: its span ends at runHandler's deferred func, status Error with the text", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin, ["-quiet-errors"]);
    try {
      const out = join(work, `panic-h2-${sample.pid}.cbor`);
      const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out]);
      await tr.started();
      const e = await httpGet(sample.port, `/h2-self?to=${encodeURIComponent("/panic?kind=error")}`);
      expect(e.status).toBe(502); // the HTTP/2 client saw the stream reset
      const ok = await httpGet(sample.port, `/h2-self?to=${encodeURIComponent("/hello")}`);
      expect(ok.status).toBe(200);
      tr.signal("SIGINT");
      expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
      const spans = readSpans(out).spans.filter((s) => s.attributes["network.protocol.version"] === "2");
      const p = panicSpans(spans);
      expect(p.length).toBe(1);
      expect(p[0]!.status).toEqual({ code: "error", message: "panic: boom: an error value" });
      expect(p[0]!.events?.[0]?.attributes).toEqual({ "exception.type": "panic", "exception.message": "boom: an error value" });
      const hello = panicSpans(spans, "/hello");
      expect(hello.map((s) => [s.status.code, s.attributes["http.response.status_code"]])).toEqual([["unset", 200]]);
    } finally {
      await sample.stop();
    }
  });
});
