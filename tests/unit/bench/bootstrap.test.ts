/** @module tests/unit/bench/bootstrap — the bootstrap interval bench/service-overhead.ts prints next to its ratio. */
import { describe, expect, test } from "bun:test";
import { bootstrapInterval, percentile } from "../../../bench/lib.ts";

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

describe("bootstrapInterval", () => {
  test("constant rows give a point; the interval holds the statistic and narrows with more rows", () => {
    expect(bootstrapInterval([5, 5, 5, 5], median)).toEqual([5, 5]);
    // Rows 0..n-1 spread evenly: the median's interval narrows roughly as 1/sqrt(n) of the range.
    const few = Array.from({ length: 8 }, (_, i) => i / 7);
    const many = Array.from({ length: 200 }, (_, i) => i / 199);
    const [a, b] = bootstrapInterval(few, median);
    const [c, d] = bootstrapInterval(many, median);
    expect(a).toBeLessThanOrEqual(median(few));
    expect(b).toBeGreaterThanOrEqual(median(few));
    expect(c).toBeLessThanOrEqual(0.5);
    expect(d).toBeGreaterThanOrEqual(0.49);
    expect(d - c).toBeLessThan((b - a) / 2);
  });

  test("paired rows stay together (a ratio of medians over rounds), and the same data gives the same interval", () => {
    const rounds = Array.from({ length: 24 }, (_, i) => ({ added: 8 + (i % 5), floor: 32 + ((i * 7) % 9) }));
    const ratio = (s: typeof rounds) => median(s.map((r) => r.added)) / median(s.map((r) => r.floor));
    const one = bootstrapInterval(rounds, ratio);
    expect(one).toEqual(bootstrapInterval(rounds, ratio));
    expect(one[0]).toBeLessThanOrEqual(ratio(rounds));
    expect(one[1]).toBeGreaterThanOrEqual(ratio(rounds));
    expect(bootstrapInterval([], ratio).every(Number.isNaN)).toBe(true);
  });
});
