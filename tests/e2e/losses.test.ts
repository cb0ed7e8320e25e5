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
