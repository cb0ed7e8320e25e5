/**
 * @module spans/clock — converts BPF CLOCK_BOOTTIME nanoseconds to Unix-epoch nanoseconds.
 *
 * Why BOOTTIME: probes stamp records with bpf_ktime_get_boot_ns() (kernel >= 5.8), which is
 * CLOCK_BOOTTIME. Unlike CLOCK_MONOTONIC it keeps counting while the machine is suspended, so
 * `realtime - boottime` stays constant across a suspend/resume and spans recorded after a
 * laptop or VM wakes up are not shifted into the past. (A tracer that stamps with
 * bpf_ktime_get_ns() = MONOTONIC but anchors against BOOTTIME shifts every span by the total
 * suspended time; see the OTel Go auto-instrumentation issue #3091.) The sampler this class
 * takes returns only {realtime, boottime} pairs, so pairing MONOTONIC with BOOTTIME cannot
 * happen here by construction.
 *
 * Why re-anchor periodically: CLOCK_REALTIME is what NTP/chrony and operators adjust. A step
 * (`date -s`, chrony makestep) or hours of slewing change `realtime - boottime`, while
 * BOOTTIME itself never jumps. An offset computed once at start would leave a long-running
 * capture off by the accumulated correction, so the anchor is refreshed every
 * `reanchorIntervalNs` (default 10 s) of boot time and the change is reported as drift.
 *
 * Why several samples: the two clocks cannot be read atomically. A plain sampler reads REALTIME
 * then BOOTTIME; taking consecutive samples gives realtime readings r[i] <= (true realtime at
 * b[i]) <= r[i+1], so each BOOTTIME reading is bracketed by two REALTIME readings. The sample
 * with the narrowest bracket (least preemption between reads) gives the best offset, taken at
 * the bracket midpoint (error <= bracket / 2). A sampler that brackets by itself (reports
 * `uncertaintyNs`) is trusted to have done this already.
 */
import { TracerError } from "../errors.ts";

export interface ClockSample {
  /** CLOCK_REALTIME, ns since the Unix epoch (read first, or the bracket midpoint) */
  realtimeNs: bigint;
  /** CLOCK_BOOTTIME, ns since boot including suspend (read second) */
  boottimeNs: bigint;
  /**
   * Set when the sampler already bracketed BOOTTIME between two REALTIME reads and returns
   * the midpoint (src/bpf/clock.ts sampleClocks does): the bracket width. Such a sample is
   * used as is; without it, BootClock brackets consecutive samples itself.
   */
  uncertaintyNs?: bigint;
}

export interface ClockAnchor {
  realtimeNs: bigint;
  boottimeNs: bigint;
  /** epochNs = bootNs + offsetNs */
  offsetNs: bigint;
  /** Width of the realtime bracket around the chosen boottime reading (uncertainty x2). */
  bracketNs: bigint;
  /** Change of offsetNs at the last re-anchor (0 for the first anchor). */
  driftNs: bigint;
}

export interface BootClockOptions {
  /** Consecutive samples per anchor (the best bracket of samples-1 pairs is kept). Default 8. */
  samples?: number;
  /** Re-anchor when a converted timestamp is this far past the anchor. Default 10 s. 0 = never. */
  reanchorIntervalNs?: bigint;
  /** Called after every re-anchor (not the first anchor), e.g. to log large drift. */
  onReanchor?: (anchor: ClockAnchor) => void;
}

const DEFAULT_SAMPLES = 8;
const DEFAULT_REANCHOR_NS = 10_000_000_000n;

export class BootClock {
  private current: ClockAnchor;
  private readonly samples: number;
  private readonly intervalNs: bigint;
  private readonly onReanchor: ((a: ClockAnchor) => void) | undefined;
  /** Boot time at which the anchor is stale (never, when re-anchoring is off) */
  #due = 0n;
  /** #due as a double, and offsetNs mod 2^64 as two 32-bit halves: for toEpochWords. */
  #dueApprox = 0;
  #offsetLo = 0;
  #offsetHi = 0;

  constructor(
    private readonly sample: () => ClockSample,
    options: BootClockOptions = {},
  ) {
    this.samples = Math.max(2, Math.floor(options.samples ?? DEFAULT_SAMPLES));
    this.intervalNs = options.reanchorIntervalNs ?? DEFAULT_REANCHOR_NS;
    this.onReanchor = options.onReanchor;
    this.current = { ...this.measure(), driftNs: 0n };
    this.#anchored();
  }

  /** Convert a BPF boot-time stamp to epoch ns, re-anchoring first if the anchor is stale. */
  toEpochNs(bootNs: bigint): bigint {
    // One comparison against a precomputed limit: this runs twice per span (no BigInt
    // subtraction allocated per call).
    if (bootNs >= this.#due) this.reanchor();
    return bootNs + this.current.offsetNs;
  }

  /**
   * toEpochNs without BigInts, for the live OTLP encoder (a BigInt is a heap object; two per
   * time was most of what a streamed span still allocated): the boot stamp's 32-bit halves in,
   * the epoch time's halves out (out[at] low, out[at + 1] high). Exact: the halves are added
   * with carry, modulo 2^64 as the u64 on the wire.
   */
  toEpochWords(lo: number, hi: number, out: Uint32Array, at: number): void {
    // A double is exact to the ns below 2^53 ns of uptime (104 days) and within 2 µs past it:
    // enough to tell when the anchor is due.
    if (hi * 4294967296 + lo >= this.#dueApprox) this.toEpochNs((BigInt(hi) << 32n) | BigInt(lo));
    const low = lo + this.#offsetLo;
    out[at] = low;
    out[at + 1] = hi + this.#offsetHi + (low > 0xffffffff ? 1 : 0);
  }

  /** Take a fresh anchor now; drift (new offset - old offset) is kept in anchor().driftNs. */
  reanchor(): void {
    const next = this.measure();
    this.current = { ...next, driftNs: next.offsetNs - this.current.offsetNs };
    this.#anchored();
    this.onReanchor?.(this.anchor());
  }

  anchor(): ClockAnchor {
    return { ...this.current };
  }

  private measure(): Omit<ClockAnchor, "driftNs"> {
    const first = this.sample();
    if (first.uncertaintyNs !== undefined) {
      return { realtimeNs: first.realtimeNs, boottimeNs: first.boottimeNs, offsetNs: first.realtimeNs - first.boottimeNs, bracketNs: first.uncertaintyNs };
    }
    const s: ClockSample[] = [first];
    for (let i = 1; i < this.samples; i++) s.push(this.sample());
    let best: Omit<ClockAnchor, "driftNs"> | undefined;
    for (let i = 0; i + 1 < s.length; i++) {
      const a = s[i]!;
      const b = s[i + 1]!;
      const bracket = b.realtimeNs - a.realtimeNs;
      // A negative bracket means REALTIME stepped back between reads; the pair is useless.
      if (bracket < 0n) continue;
      if (best !== undefined && bracket >= best.bracketNs) continue;
      const mid = a.realtimeNs + bracket / 2n;
      best = { realtimeNs: mid, boottimeNs: a.boottimeNs, offsetNs: mid - a.boottimeNs, bracketNs: bracket };
    }
    if (best === undefined) {
      throw new TracerError("internal", "could not anchor CLOCK_BOOTTIME to CLOCK_REALTIME: realtime went backwards in every sample", {
        hint: "the system clock is being stepped repeatedly; retry once NTP has settled",
      });
    }
    return best;
  }

  /** After every anchor: when it is due, and its offset's halves. */
  #anchored(): void {
    this.#due = this.#dueAfter(this.current);
    this.#dueApprox = Number(this.#due);
    const offset = BigInt.asUintN(64, this.current.offsetNs);
    this.#offsetLo = Number(offset & 0xffffffffn);
    this.#offsetHi = Number(offset >> 32n);
  }

  #dueAfter(a: ClockAnchor): bigint {
    // 2^64: past any u64 boot-time stamp
    return this.intervalNs > 0n ? a.boottimeNs + this.intervalNs : 1n << 64n;
  }
}
