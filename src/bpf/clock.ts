/**
 * @module bpf/clock — simultaneous readings of the realtime, monotonic and boot-time clocks.
 *
 * BPF timestamps come from bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME, which keeps counting during
 * suspend); spans need wall-clock time. The spans code converts with one paired sample:
 * wall = realtimeNs + (bpfNs - boottimeNs).
 */
import { TracerError } from "../errors.ts";
import { readErrno, addr, libcSymbols } from "./libc.ts";
import { errnoText } from "./call.ts";

/** <linux/time.h>: CLOCK_REALTIME 0, CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7. */
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;

export interface ClockSample {
  realtimeNs: bigint;
  boottimeNs: bigint;
  monotonicNs: bigint;
  /** Width of the realtime bracket around the other two readings: the pairing's uncertainty. */
  uncertaintyNs: bigint;
}

const bootBuf = new BigInt64Array(2);

/**
 * CLOCK_BOOTTIME now, in ns: one clock_gettime, the clock BPF stamps records with. For "now" on
 * each drain tick; pairing it with wall time is sampleClocks' job (a BootClock re-anchors with
 * it when due), which reads four clocks seven times.
 */
export function bootTimeNs(): bigint {
  if (libcSymbols().clock_gettime(CLOCK_BOOTTIME, addr(bootBuf)) !== 0) {
    throw new TracerError("kernel_unsupported", `clock_gettime(CLOCK_BOOTTIME): ${errnoText(readErrno())}`);
  }
  return bootBuf[0]! * 1_000_000_000n + bootBuf[1]!;
}

/**
 * Read the three clocks `samples` times, each time bracketing BOOTTIME and MONOTONIC between two
 * REALTIME readings, and keep the tightest bracket (so a preemption in one sample does not skew
 * the pairing). realtimeNs is the bracket's midpoint.
 */
export function sampleClocks(samples = 7): ClockSample {
  const c = libcSymbols();
  // struct timespec on 64-bit Linux: { i64 tv_sec; i64 tv_nsec } — four of them.
  const ts = new BigInt64Array(8);
  const base = addr(ts);
  let best: ClockSample | undefined;
  for (let i = 0; i < Math.max(1, samples); i++) {
    const r =
      c.clock_gettime(CLOCK_REALTIME, base) |
      c.clock_gettime(CLOCK_BOOTTIME, base + 16) |
      c.clock_gettime(CLOCK_MONOTONIC, base + 32) |
      c.clock_gettime(CLOCK_REALTIME, base + 48);
    if (r !== 0) throw new TracerError("kernel_unsupported", `clock_gettime: ${errnoText(readErrno())}`);
    const ns = (k: number) => ts[k]! * 1_000_000_000n + ts[k + 1]!;
    const r1 = ns(0);
    const r2 = ns(6);
    const width = r2 - r1;
    if (best === undefined || width < best.uncertaintyNs) {
      best = { realtimeNs: r1 + width / 2n, boottimeNs: ns(2), monotonicNs: ns(4), uncertaintyNs: width };
    }
  }
  return best!;
}
