import { describe, expect, test } from "bun:test";
import { SpanAssembler } from "../../../src/spans/assemble.ts";
import type { Span, SpanEnd, SpanStart } from "../../../src/spans/model.ts";
import { zeroLosses } from "../../../src/spans/model.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const id = (n: number) => n.toString(16).padStart(16, "0");

function start(n: number, parent?: number, t = 1000n * BigInt(n)): SpanStart {
  const s: SpanStart = { probe: "test.probe", traceId: TRACE, spanId: id(n), monoStartNs: t, goroutine: 0xc000001000n, pid: 1, tid: 1, fields: { path: `/p${n}` } };
  if (parent !== undefined) s.parentSpanId = id(parent);
  return s;
}
function end(n: number, t = 1000n * BigInt(n) + 500n): SpanEnd {
  return { probe: "test.probe", spanId: id(n), monoEndNs: t, fields: { status: 200 } };
}

/** A real finish: what a probe does (epoch conversion by a fixed offset). */
function finish(s: SpanStart, e: SpanEnd): Span | undefined {
  if (s.probe !== "test.probe") return undefined;
  const span: Span = {
    traceId: s.traceId,
    spanId: s.spanId,
    name: String(s.fields.path),
    kind: "server",
    startTimeUnixNano: s.monoStartNs + 1_000_000n,
    endTimeUnixNano: e.monoEndNs + 1_000_000n,
    attributes: { "http.response.status_code": Number(e.fields.status) },
    status: { code: "unset" },
    scope: { name: "test", version: "0" },
  };
  if (s.parentSpanId !== undefined) span.parentSpanId = s.parentSpanId;
  return span;
}

function setup(opts: { maxPendingStarts?: number; maxHeldEnds?: number; endGraceMs?: number } = {}) {
  const spans: Span[] = [];
  let now = 0;
  const a = new SpanAssembler({ finish, onSpan: (s) => spans.push(s), clock: () => now, ...opts });
  return { a, spans, advance: (ms: number) => (now += ms) };
}

describe("SpanAssembler", () => {
  test("pairs start and end; children may end before parents", () => {
    const { a, spans } = setup();
    a.start(start(1));
    a.start(start(2, 1));
    a.end(end(2));
    a.end(end(1));
    expect(spans.map((s) => [s.spanId, s.parentSpanId])).toEqual([
      [id(2), id(1)],
      [id(1), undefined],
    ]);
    expect(spans[0]!.startTimeUnixNano).toBe(1_002_000n);
    expect(spans[0]!.endTimeUnixNano).toBe(1_002_500n);
    expect(a.losses()).toEqual(zeroLosses());
  });

  test("an end before its start in the same drain still pairs", () => {
    const { a, spans } = setup();
    a.end(end(7));
    a.start(start(7));
    a.drained();
    expect(spans.map((s) => s.spanId)).toEqual([id(7)]);
    expect(a.losses().endWithoutStart).toBe(0);
  });

  test("an early end waits through the next drain and the grace time, then counts", () => {
    const { a, spans, advance } = setup({ endGraceMs: 100 });
    a.end(end(9));
    a.drained(); // end of its own batch
    advance(500);
    expect(a.stats().heldEnds).toBe(1);
    a.start(start(9)); // arrived in the next drain: still pairs
    a.drained();
    expect(spans).toHaveLength(1);

    a.end(end(10));
    a.drained();
    a.drained(); // two drains, but grace not yet over
    expect(a.losses().endWithoutStart).toBe(0);
    advance(100);
    a.drained();
    expect(a.losses().endWithoutStart).toBe(1);
    expect(a.stats().heldEnds).toBe(0);
    a.start(start(10)); // too late: now an open call
    a.flushIncomplete();
    expect(a.losses()).toEqual({ ...zeroLosses(), endWithoutStart: 1, incomplete: 1 });
  });

  test("duplicate starts (stack growth re-runs the entry) are ignored", () => {
    const { a, spans } = setup();
    a.start(start(3, undefined, 3000n));
    a.start(start(3, undefined, 3100n));
    a.end(end(3));
    a.start(start(3, undefined, 3200n)); // late duplicate after the span finished
    a.end(end(3)); // and a duplicate end
    a.flushIncomplete();
    expect(spans).toHaveLength(1);
    expect(spans[0]!.startTimeUnixNano).toBe(1_003_000n); // the first entry's time
    expect(a.losses()).toEqual(zeroLosses());
    expect(a.stats()).toMatchObject({ duplicateStarts: 2, duplicateEnds: 1 });
  });

  test("flushIncomplete counts open calls and invents no end times", () => {
    const { a, spans } = setup();
    a.start(start(1));
    a.start(start(2, 1));
    a.end(end(2));
    a.flushIncomplete();
    expect(spans.map((s) => s.spanId)).toEqual([id(2)]);
    expect(a.losses()).toEqual({ ...zeroLosses(), incomplete: 1 });
    expect(a.stats().pendingStarts).toBe(0);
  });

  test("memory is bounded: oldest open call is evicted and counted", () => {
    const { a, spans } = setup({ maxPendingStarts: 100, maxHeldEnds: 10 });
    for (let i = 1; i <= 150; i++) a.start(start(i));
    expect(a.stats().pendingStarts).toBe(100);
    expect(a.losses().incomplete).toBe(50);
    a.end(end(150));
    expect(spans.map((s) => s.spanId)).toEqual([id(150)]);
    for (let i = 1000; i < 1020; i++) a.end(end(i));
    expect(a.stats().heldEnds).toBe(10);
    expect(a.losses().endWithoutStart).toBe(10);
  });

  test("finish() returning undefined (unknown probe) is counted, not emitted", () => {
    const { a, spans } = setup();
    a.start({ ...start(4), probe: "nope" });
    a.end(end(4));
    expect(spans).toHaveLength(0);
    expect(a.stats().unfinished).toBe(1);
  });
});
