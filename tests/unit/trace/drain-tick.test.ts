/** @module tests/unit/trace/drain-tick — how often the drain tick runs while the ring stays empty. */
import { describe, expect, test } from "bun:test";
import { IDLE_DRAIN_AFTER_TICKS, IDLE_DRAIN_MAX_MS, IDLE_DRAIN_RING_BYTES, idleDrainDelayMs } from "../../../src/trace/session.ts";

describe("idleDrainDelayMs", () => {
  test("the configured interval while records come, and for the first empty ticks", () => {
    expect(idleDrainDelayMs(20, 0)).toBe(20);
    expect(idleDrainDelayMs(20, IDLE_DRAIN_AFTER_TICKS - 1)).toBe(20);
  });

  test("then doubling per empty tick, up to the cap, and back at once when a record comes", () => {
    const delays = [0, 1, 2, 3, 50].map((k) => idleDrainDelayMs(20, IDLE_DRAIN_AFTER_TICKS + k));
    expect(delays).toEqual([40, 80, IDLE_DRAIN_MAX_MS, IDLE_DRAIN_MAX_MS, IDLE_DRAIN_MAX_MS]);
    // emptyTicks is reset by the tick that drained something (trace/session.ts)
    expect(idleDrainDelayMs(20, 0)).toBe(20);
  });

  test("a smaller ring slows the idle tick less, in proportion; a tiny one not at all", () => {
    const late = IDLE_DRAIN_AFTER_TICKS + 20;
    expect(idleDrainDelayMs(20, late, IDLE_DRAIN_RING_BYTES * 4)).toBe(IDLE_DRAIN_MAX_MS);
    expect(idleDrainDelayMs(20, late, IDLE_DRAIN_RING_BYTES / 2)).toBe(IDLE_DRAIN_MAX_MS / 2);
    expect(idleDrainDelayMs(20, late, 64 * 1024)).toBe(20);
  });

  test("an interval already at or above the cap is kept as given", () => {
    expect(idleDrainDelayMs(250, 1000)).toBe(250);
    expect(idleDrainDelayMs(IDLE_DRAIN_MAX_MS, 1000)).toBe(IDLE_DRAIN_MAX_MS);
  });
});
