/**
 * @module tests/e2e/losses — every lost call is counted once, under its true cause.
 *
 * A one-page ring buffer (--ringbuf-size 4096 holds ~30 server spans) under a burst of requests
 * overflows between two drains. With one record per span, written at the span's end, a full
 * ring loses exactly that span: spans written + ring-full drops = requests served, nothing is
 * blamed on "returns without an entry", and no call is left open.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { buildSample, e2eSkipReason, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("losses");

const REQUESTS = 6000;
const CONCURRENCY = 32;

describe.skipIf(reason !== undefined)(`loss accounting${reason ? ` (skipped: ${reason})` : ""}`, () => {
  // Calls still running when tracing stops are counted as incomplete wherever their state is:
  // in its goroutine's slot, or in the LRU map behind the slots (one slot: the second call).
  for (const slots of [undefined, "1"] as const) {
    test(`requests still in their handlers when tracing stops are counted as incomplete${slots ? ` (BEETRACE_SERVER_SLOTS=${slots}: one of them in the LRU map)` : ""}`, async () => {
      const sample = await startSample(await buildSample({ mode: "default" }));
      const running = new AbortController();
      try {
        const out = join(work, `incomplete${slots ? `-slots${slots}` : ""}.cbor`);
        const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out], slots ? { BEETRACE_SERVER_SLOTS: slots } : undefined);
        await tr.started();
        // fetch resolves at the response headers, which /sleep?flush=1 sends before it sleeps:
        // both handlers are running when the tracer stops.
        const inFlight = await Promise.all(
          [0, 1].map(() => fetch(`http://127.0.0.1:${sample.port}/sleep?ms=60000&flush=1`, { signal: running.signal })),
        );
        expect(inFlight.map((r) => r.status)).toEqual([200, 200]);
        tr.signal("SIGINT");
        expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
        const cap = readSpans(out);
        expect(cap.spans.filter((s) => s.attributes["url.path"] === "/sleep")).toEqual([]);
        expect(cap.end!.totals.losses).toMatchObject({ incomplete: 2, inflightFull: 0, returnWithoutEntry: 0 });
      } finally {
        running.abort();
        await sample.stop();
      }
    });
  }


  test("a forced ring overflow: spans written + ring-full drops = requests, nothing else blamed", async () => {
    const sample = await startSample(await buildSample({ mode: "default" }));
    try {
      const out = join(work, "losses.cbor");
      const tr = runTracer(["attach", "--pid", String(sample.pid), "--out", out, "--ringbuf-size", "4096"]);
      await tr.started();
      let next = 0;
      let ok = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < REQUESTS) {
            next++;
            const r = await fetch(`http://127.0.0.1:${sample.port}/hello`);
            await r.text();
            if (r.status === 200) ok++;
          }
        }),
      );
      expect(ok).toBe(REQUESTS);
      tr.signal("SIGINT");
      expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
      const cap = readSpans(out);
      const spans = cap.spans.filter((s) => s.attributes["url.path"] === "/hello").length;
      const losses = cap.end!.totals.losses;
      // The ring really overflowed (4 KiB against thousands of requests a second)...
      expect(losses.ringbufFull).toBeGreaterThan(0);
      // ...and every request is either a span or one ring-full drop, never both or neither.
      expect(spans + losses.ringbufFull).toBe(REQUESTS);
      expect({ returnWithoutEntry: losses.returnWithoutEntry, endWithoutStart: losses.endWithoutStart, incomplete: losses.incomplete, inflightFull: losses.inflightFull }).toEqual({
        returnWithoutEntry: 0,
        endWithoutStart: 0,
        incomplete: 0,
        inflightFull: 0,
      });
      // The exit report names the ring and nothing about calls running before tracing began.
      expect(tr.stderr()).toContain(`ring buffer full: ${losses.ringbufFull}`);
      expect(tr.stderr()).not.toContain("had no matching entry");
    } finally {
      await sample.stop();
    }
  });
});
