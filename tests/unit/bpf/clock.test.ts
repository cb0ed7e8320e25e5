/** @module tests/unit/bpf/clock — paired realtime/boottime/monotonic samples through libc. */
import { describe, expect, test } from "bun:test";
import { sampleClocks } from "../../../src/bpf/clock.ts";

describe("sampleClocks", () => {
  test("pairs the three clocks tightly and agrees with the JS wall clock", () => {
    const wallBefore = BigInt(Date.now()) * 1_000_000n;
    const a = sampleClocks();
    const b = sampleClocks(3);
    const wallAfter = BigInt(Date.now() + 1) * 1_000_000n;
    // realtime is inside the JS clock's window (Date.now has 1 ms resolution)
    expect(a.realtimeNs >= wallBefore - 1_000_000n && a.realtimeNs <= wallAfter).toBe(true);
    // every clock moves forward, by about the same amount
    expect(b.realtimeNs > a.realtimeNs && b.monotonicNs > a.monotonicNs && b.boottimeNs > a.boottimeNs).toBe(true);
    const dMono = b.monotonicNs - a.monotonicNs;
    const dBoot = b.boottimeNs - a.boottimeNs;
    expect(dBoot - dMono < 1_000_000n && dMono - dBoot < 1_000_000n).toBe(true);
    // boot time counts suspend too, so it is never behind monotonic (beyond the nanoseconds
    // between the two readings, which sampleClocks takes one after the other)
    expect(a.boottimeNs + a.uncertaintyNs >= a.monotonicNs).toBe(true);
    // the best of 7 brackets is well under a millisecond on any sane machine
    expect(a.uncertaintyNs >= 0n && a.uncertaintyNs < 1_000_000n).toBe(true);
  });
});
