import { describe, expect, test } from "bun:test";
import { BootClock, type ClockSample } from "../../../src/spans/clock.ts";

/**
 * A fake machine: REALTIME = BOOTTIME + offset. Each sample() reads realtime then boottime,
 * and each read advances time by `step` ns (the cost of a clock_gettime call).
 */
class FakeMachine {
  boot = 5_000_000_000n;
  offset = 1_700_000_000_000_000_000n;
  step = 100n;
  /** extra delay injected before the boottime read of sample i (simulates preemption) */
  delays: bigint[] = [];
  private n = 0;
  sample = (): ClockSample => {
    const realtimeNs = this.boot + this.offset;
    this.boot += this.step + (this.delays[this.n++] ?? 0n);
    const boottimeNs = this.boot;
    this.boot += this.step;
    return { realtimeNs, boottimeNs };
  };
}

describe("BootClock", () => {
  test("offset comes from the tightest bracket, within half a bracket of the truth", () => {
    const m = new FakeMachine();
    // Preempt most samples for 50 µs between the realtime and boottime reads; sample 5 is clean.
    m.delays = [50_000n, 50_000n, 50_000n, 50_000n, 50_000n, 0n, 50_000n, 50_000n];
    const c = new BootClock(m.sample, { samples: 8 });
    const a = c.anchor();
    expect(a.bracketNs).toBe(200n); // two reads x 100 ns between realtime[5] and realtime[6]
    const err = a.offsetNs - m.offset;
    expect(err < 0n ? -err : err).toBeLessThanOrEqual(a.bracketNs / 2n);
    expect(a.driftNs).toBe(0n);
  });

  // Monotonic-vs-boottime mismatch (OTel Go auto #3091) cannot happen: ClockSample has no
  // monotonic field, and probes stamp with bpf_ktime_get_boot_ns, so both sides are BOOTTIME.
  test("suspend: boottime and realtime jump together, conversions do not shift", () => {
    const m = new FakeMachine();
    m.step = 0n;
    const c = new BootClock(m.sample, { reanchorIntervalNs: 0n });
    const before = c.toEpochNs(m.boot);
    expect(before).toBe(m.boot + m.offset);
    // One hour suspended: CLOCK_BOOTTIME counts it (CLOCK_MONOTONIC would not), realtime too.
    m.boot += 3_600_000_000_000n;
    const spanBoot = m.boot + 1_000n;
    expect(c.toEpochNs(spanBoot)).toBe(spanBoot + m.offset);
    c.reanchor();
    expect(c.anchor().driftNs).toBe(0n);
  });

  test("NTP step: stale until re-anchored, then exact, and the drift is reported", () => {
    const m = new FakeMachine();
    m.step = 0n;
    const seen: bigint[] = [];
    const c = new BootClock(m.sample, { reanchorIntervalNs: 10_000_000_000n, onReanchor: (a) => seen.push(a.driftNs) });
    m.offset -= 2_000_000_000n; // chrony steps the wall clock back 2 s
    m.boot += 1_000_000_000n;
    // 1 s after the anchor: not yet due, still the old offset (off by the 2 s step)
    expect(c.toEpochNs(m.boot) - (m.boot + m.offset)).toBe(2_000_000_000n);
    m.boot += 9_000_000_000n;
    // 10 s after the anchor: toEpochNs re-anchors first, and is exact again
    expect(c.toEpochNs(m.boot)).toBe(m.boot + m.offset);
    expect(seen).toEqual([-2_000_000_000n]);
    expect(c.anchor().driftNs).toBe(-2_000_000_000n);
  });

  test("slew over hours is followed by periodic re-anchoring", () => {
    const m = new FakeMachine();
    m.step = 0n;
    const c = new BootClock(m.sample, { reanchorIntervalNs: 10_000_000_000n });
    let worst = 0n;
    for (let i = 0; i < 360; i++) {
      // 1 hour in 10 s steps, slewing 50 µs per step (500 ppm, ntpd's maximum rate; 180 ms in total)
      m.boot += 10_000_000_000n;
      m.offset += 50_000n;
      const e = c.toEpochNs(m.boot) - (m.boot + m.offset);
      if ((e < 0n ? -e : e) > worst) worst = e < 0n ? -e : e;
    }
    expect(worst).toBe(0n);
  });

  test("a sampler that brackets by itself (src/bpf/clock.ts) is used as is, in one call", () => {
    let calls = 0;
    const c = new BootClock(() => {
      calls++;
      return { realtimeNs: 1_700_000_000_000_000_500n, boottimeNs: 5_000_000_000n, monotonicNs: 4_000_000_000n, uncertaintyNs: 120n };
    });
    expect(calls).toBe(1);
    expect(c.anchor()).toEqual({ realtimeNs: 1_700_000_000_000_000_500n, boottimeNs: 5_000_000_000n, offsetNs: 1_699_999_995_000_000_500n, bracketNs: 120n, driftNs: 0n });
  });

  test("realtime stepping backwards inside a sample pair is skipped", () => {
    const m = new FakeMachine();
    let calls = 0;
    const c = new BootClock(() => {
      const s = m.sample();
      // Second read: realtime jumps back 1 s (the pair (0,1) has a negative bracket)
      if (++calls === 2) return { ...s, realtimeNs: s.realtimeNs - 1_000_000_000n };
      return s;
    }, { samples: 4 });
    expect(c.anchor().bracketNs).toBeGreaterThanOrEqual(0n);
    expect(c.anchor().bracketNs).toBeLessThan(1_000_000n);
  });

  test("a clock that only ever goes backwards is an error, not a wrong offset", () => {
    let r = 10_000_000_000n;
    expect(() => new BootClock(() => ({ realtimeNs: (r -= 1_000n), boottimeNs: 1n }))).toThrow(/realtime went backwards/);
  });

  test("toEpochWords gives toEpochNs's value in 32-bit halves, carries included, and re-anchors alike", () => {
    const words = (c: BootClock, boot: bigint): bigint => {
      const out = new Uint32Array(2);
      c.toEpochWords(Number(boot & 0xffffffffn), Number(boot >> 32n), out, 0);
      return (BigInt(out[1]!) << 32n) | BigInt(out[0]!);
    };
    const m = new FakeMachine();
    m.step = 0n;
    // An offset whose low half carries into the high half for most boot stamps.
    m.offset = 1_700_000_000_000_000_000n + 0xfffffff0n - (1_700_000_000_000_000_000n & 0xffffffffn);
    const a = new BootClock(m.sample, { reanchorIntervalNs: 10_000_000_000n });
    const b = new BootClock(m.sample, { reanchorIntervalNs: 10_000_000_000n });
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      m.boot += BigInt(seed % 50_000_000); // up to 50 ms apart: re-anchors every ~400 stamps
      if (i % 500 === 0) m.offset += 1_000_000n; // and the wall clock is slewed meanwhile
      const boot = m.boot + BigInt(seed & 0xffff);
      expect(words(a, boot)).toBe(b.toEpochNs(boot));
    }
    expect(a.anchor().offsetNs).toBe(b.anchor().offsetNs);
    // Past 2^53 ns of uptime (104 days): still exact.
    const late = (1n << 60n) + 12_345n;
    expect(words(a, late)).toBe(b.toEpochNs(late));
  });
});
