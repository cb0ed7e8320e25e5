/**
 * @module tests/e2e/bpf-uprobe-multi — the uprobe_multi feature probe (its pid filter must cover
 * every thread); one uprobe_multi link over several offsets: exact hit counts, per-offset
 * cookies, the pid filter across threads, clean release; the input checks; and a net/http
 * TraceSession attached both ways (root, kernel 6.6+).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { spawnSync } from "node:child_process";
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { release } from "node:os";
import { TracerError, type ErrorCode } from "../../src/errors.ts";
import { BpfObject } from "../../src/bpf/object.ts";
import { attachUprobe, attachUprobeMulti } from "../../src/bpf/link.ts";
import { RingBufferReader } from "../../src/bpf/ringbuf.ts";
import { openHandleCount, openHandles } from "../../src/bpf/handles.ts";
import {
  judgeUprobeMultiTrial,
  overrideUprobeMultiSupport,
  overrideAttachCookieSupport,
  pidFilterTrial,
  UPROBE_MULTI_PID_FIX,
  uprobeMultiSupport,
  type UprobeMultiSupport,
  type UprobeMultiTrial,
} from "../../src/bpf/features.ts";
import { BPF_TRACE_UPROBE_MULTI } from "../../src/bpf/syscall.ts";
import { TraceSession } from "../../src/trace/session.ts";
import { describeProcess } from "../../src/target/process.ts";
import { bpfFdsOfThisProcess, buildBpfFixture, buildRingTestObject, CACHE, fileOffsetOf, skipReason } from "./bpf-harness.ts";
import { buildSample, killAll, startSample, uprobeMultiLinksOf } from "./harness.ts";

/** Linux 6.6 added BPF_TRACE_UPROBE_MULTI (commit 89ae89f53d20, "bpf: Add multi uprobe link"). */
function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m !== null && (Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor));
}

const baseReason = skipReason();
const reason =
  baseReason ?? (uprobeMultiSupport().supported ? undefined : `no usable uprobe_multi links here (${uprobeMultiSupport().detail})`);
const REC_SIZE = 56; // sizeof(struct ring_rec), _Static_assert'ed in tests/fixtures/bpf/ring-test.bpf.c

// Three probed functions: m0 and m2 on the main thread, m1 on a second thread (the pid filter
// must cover every thread of the process, not only the one whose id was given).
const COUNTS = [7, 11, 13] as const; // primes, total 31 (prime): a doubled or missed hit cannot hide
const TOTAL = COUNTS[0] + COUNTS[1] + COUNTS[2];
const COOKIES = [0xc0ffee00n, 0xc0ffee01n, 0xfedcba9876543210n]; // the last one needs all 64 bits

const TARGET_C = `
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#define PROBED __attribute__((noinline, noipa))
PROBED long bt_m0(long x) { __asm__ volatile("" ::: "memory"); return x + 1; }
PROBED long bt_m1(long x) { __asm__ volatile("" ::: "memory"); return x + 2; }
PROBED long bt_m2(long x) { __asm__ volatile("" ::: "memory"); return x + 3; }
static void *worker(void *arg) {
  long n = (long)arg, s = 0;
  for (long i = 0; i < n; i++) s += bt_m1(i);
  return (void *)s;
}
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  long n0 = atol(argv[1]), n1 = atol(argv[2]), n2 = atol(argv[3]);
  char c;
  if (read(0, &c, 1) != 1) return 2; /* held until the test has attached */
  long s = 0;
  for (long i = 0; i < n0; i++) s += bt_m0(i);
  pthread_t t;
  void *r;
  if (pthread_create(&t, 0, worker, (void *)n1) != 0 || pthread_join(t, &r) != 0) return 3;
  s += (long)r;
  for (long i = 0; i < n2; i++) s += bt_m2(i);
  printf("%ld\\n", s);
  return 0;
}
`;

function buildMultiTarget(): string {
  mkdirSync(CACHE, { recursive: true });
  const src = join(CACHE, `umulti-target.${process.pid}.c`);
  const bin = join(CACHE, "umulti-target");
  writeFileSync(src, TARGET_C);
  const r = spawnSync("gcc", ["-O1", "-g", "-pthread", "-o", `${bin}.${process.pid}`, src], { encoding: "utf8" });
  unlinkSync(src);
  if (r.status !== 0) throw new Error(`gcc failed: ${r.stderr}`);
  renameSync(`${bin}.${process.pid}`, bin); // atomic: a running copy keeps its own inode
  return bin;
}

/** sum of (i + k) for i < n, per function: what the target prints. */
const expectedSum = (): number => COUNTS.reduce((s, n, k) => s + (n * (n - 1)) / 2 + n * (k + 1), 0);

function startHeld(binary: string): { proc: Subprocess<"pipe", "pipe", "pipe">; release: () => Promise<void> } {
  const proc = Bun.spawn([binary, ...COUNTS.map(String)], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return {
    proc,
    release: async () => {
      proc.stdin.write("g");
      await proc.stdin.end();
      expect(await proc.exited).toBe(0);
      expect((await new Response(proc.stdout).text()).trim()).toBe(String(expectedSum()));
    },
  };
}

interface Rec {
  arg: bigint;
  tag: bigint;
  cookie: bigint;
  pid: number;
  tid: number;
}
function decode(v: DataView, o: number, len: number): Rec {
  expect(len).toBe(REC_SIZE);
  return { arg: v.getBigUint64(o + 8, true), tag: v.getBigUint64(o + 16, true), cookie: v.getBigUint64(o + 24, true), pid: v.getUint32(o + 40, true), tid: v.getUint32(o + 44, true) };
}

function linkIdsInKernel(): Set<number> {
  const r = spawnSync("bpftool", ["-j", "link", "show"], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`bpftool link show failed: ${r.stderr}`);
  const text = r.stdout.trim();
  return new Set(text === "" ? [] : (JSON.parse(text) as { id: number }[]).map((l) => l.id));
}

function hasBpftool(): boolean {
  return spawnSync("sh", ["-c", "command -v bpftool"]).status === 0;
}

/** Open an object whose on_call program is loaded for uprobe_multi links (or not, with `multi` false). */
function openLoaded(objBytes: Uint8Array, tag: bigint, multi = true): BpfObject {
  const obj = BpfObject.open(objBytes, "umulti_test");
  try {
    obj.setConst("tag", tag);
    // target_tgid stays 0: the kernel's pid filter is the only thing keeping other processes out.
    if (multi) obj.program("on_call").setExpectedAttachType(BPF_TRACE_UPROBE_MULTI);
    obj.load();
    return obj;
  } catch (e) {
    obj.close();
    throw e;
  }
}

async function drainAll(ring: RingBufferReader, want: number): Promise<Rec[]> {
  const recs: Rec[] = [];
  const deadline = performance.now() + 10_000;
  // The targets have exited, so every record is already in the ring; poll only to be robust.
  while (recs.length < want && performance.now() < deadline) {
    ring.drain((v, o, len) => recs.push(decode(v, o, len)));
    if (recs.length < want) await Bun.sleep(1);
  }
  ring.drain((v, o, len) => recs.push(decode(v, o, len))); // anything beyond `want` is a failure below
  return recs;
}

/** The trial's counts, or a failure of the trial itself (which no test here expects). */
function trialOf(r: UprobeMultiTrial | UprobeMultiSupport): UprobeMultiTrial {
  if ("supported" in r) throw new Error(`the trial did not run: ${r.detail}`);
  return r;
}

test("the feature probe: one pid-filtered link saw getpgid on the main thread AND on other threads; the answer is cached", () => {
  if (baseReason !== undefined) {
    console.info(`skipped: ${baseReason}`);
    return;
  }
  const a = uprobeMultiSupport();
  if (!kernelAtLeast(6, 6)) {
    expect(a.supported).toBe(false);
    expect(a.detail).toStartWith("creating a uprobe_multi link failed: ");
  } else if (kernelAtLeast(6, 10)) {
    // 6.10 carries the fix (46ba0e49b642); 6.6–6.9 depend on their stable backports.
    expect(a).toEqual({
      supported: true,
      detail: "pid filter covers all threads (getpgid: 3/3 calls on the main thread, 2/2 on other threads)",
      trial: { fn: "getpgid", mainCalls: 3, mainHits: 3n, threadCalls: 2, threadHits: 2n },
    });
  } else {
    console.info(`kernel ${release()}: ${a.supported ? "supported" : "not supported"}: ${a.detail}`);
  }
  expect(uprobeMultiSupport()).toBe(a);
  overrideUprobeMultiSupport(false);
  expect(uprobeMultiSupport()).toEqual({ supported: false, detail: "forced off" });
  overrideUprobeMultiSupport(undefined);
  expect(uprobeMultiSupport()).toBe(a);
});

test.skipIf(baseReason !== undefined)("the probe's trial over the perf-event fallback: its pid filter covers every thread too; nothing leaks", () => {
  const fds = bpfFdsOfThisProcess();
  const j = judgeUprobeMultiTrial(trialOf(pidFilterTrial("perf")));
  expect(j.trial).toEqual({ fn: "getpgid", mainCalls: 3, mainHits: 3n, threadCalls: 2, threadHits: 2n });
  expect(j.supported).toBe(true);
  expect(openHandleCount()).toBe(0);
  expect(bpfFdsOfThisProcess()).toEqual(fds);
});

describe.skipIf(reason !== undefined)(`uprobe_multi links${reason ? ` — skipped: ${reason}` : ""}`, () => {
  let objBytes: Uint8Array;
  let target: string;
  let offsets: number[];
  let fdsBefore: string[];

  beforeAll(() => {
    objBytes = buildRingTestObject();
    target = buildMultiTarget();
    offsets = ["bt_m0", "bt_m1", "bt_m2"].map((s) => fileOffsetOf(target, s));
    fdsBefore = bpfFdsOfThisProcess();
  });

  afterAll(() => {
    killAll();
    expect(openHandles()).toEqual([]);
    expect(bpfFdsOfThisProcess()).toEqual(fdsBefore);
  });

  test("the probe catches a filter that matches only the main thread (a program counting tid == tgid only); a fresh probe's cost", () => {
    const leaderOnly = { bytes: buildBpfFixture("leader-only"), program: "count_leader", counter: "leader_hits" };
    const j = judgeUprobeMultiTrial(trialOf(pidFilterTrial("uprobe_multi", leaderOnly)));
    // The main-thread calls were counted, the other threads' were not: they really ran elsewhere.
    expect(j.trial).toEqual({ fn: "getpgid", mainCalls: 3, mainHits: 3n, threadCalls: 2, threadHits: 0n });
    expect(j.supported).toBe(false);
    expect(j.detail).toStartWith("the kernel's uprobe_multi pid filter matches only the main thread, not the whole process");
    expect(j.fix).toBe(UPROBE_MULTI_PID_FIX);
    expect(openHandleCount()).toBe(0);

    // What a tracer start pays (uprobeMultiSupport() runs this once and caches it).
    const t = performance.now();
    expect(judgeUprobeMultiTrial(trialOf(pidFilterTrial("uprobe_multi"))).supported).toBe(true);
    console.info(`uprobe_multi probe (load calibrate, link, 3+2 calls, release): ${(performance.now() - t).toFixed(0)} ms`);
    expect(uprobeMultiLinksOf(process.pid)).toEqual([]);
    expect(openHandleCount()).toBe(0);
  });

  test.skipIf(!hasBpftool())("one link, three offsets: exactly the target's hits, each with its offset's cookie, on every thread; nothing after release", async () => {
    const tag = 0x7e57_0001n;
    const obj = openLoaded(objBytes, tag);
    try {
      const ring = new RingBufferReader(obj.map("events"));
      const a = startHeld(target);
      const b = startHeld(target); // same file, same offsets, not the pid we filter on
      const link = attachUprobeMulti(obj.program("on_call"), { binaryPath: target, fileOffsets: offsets, cookies: COOKIES, pid: a.proc.pid });
      expect(link.count).toBe(3);

      // The kernel's view of the link, from our own fdinfo and from bpftool.
      const mine = uprobeMultiLinksOf(process.pid);
      expect(mine.length).toBe(1);
      const info = mine[0]!;
      expect({ uprobes: info.uprobes, pid: info.pid, path: info.path }).toEqual({ uprobes: 3, pid: a.proc.pid, path: target });
      if (info.entries.length > 0) {
        // listed by kernels >= 6.9 (bpf_uprobe_multi_show_fdinfo)
        expect(info.entries.map((e) => [e.offset, e.cookie])).toEqual(offsets.map((o, i) => [o, COOKIES[i]!]));
      }
      expect(linkIdsInKernel().has(info.linkId)).toBe(true);

      await b.release();
      await a.release();
      const recs = await drainAll(ring, TOTAL);
      expect(recs.length).toBe(TOTAL);
      expect(obj.readBss("hits")).toBe(BigInt(TOTAL));
      expect(recs.every((r) => r.pid === a.proc.pid && r.tag === tag)).toBe(true);
      COUNTS.forEach((n, k) => {
        const mineK = recs.filter((r) => r.cookie === COOKIES[k]);
        // bt_mK(i) for i = 0..n-1, in order: the cookie names the offset that fired.
        expect(mineK.map((r) => r.arg)).toEqual(Array.from({ length: n }, (_, i) => BigInt(i)));
        // m1 runs on the second thread (tid != pid), m0 and m2 on the main thread.
        expect(mineK.every((r) => (k === 1 ? r.tid !== r.pid : r.tid === r.pid))).toBe(true);
      });

      link[Symbol.dispose]();
      expect(link.attached).toBe(false);
      expect(uprobeMultiLinksOf(process.pid)).toEqual([]);
      expect(linkIdsInKernel().has(info.linkId)).toBe(false);
      link[Symbol.dispose](); // twice is harmless

      // Released: a new run of the target produces nothing.
      const c = startHeld(target);
      await c.release();
      expect(await drainAll(ring, 0)).toEqual([]);
      expect(obj.readBss("hits")).toBe(BigInt(TOTAL));
      ring[Symbol.dispose]();
    } finally {
      obj.close();
    }
    expect(openHandleCount()).toBe(0);
  });

  test("without a pid every process mapping the file fires (so the filter above is what kept one out)", async () => {
    const obj = openLoaded(objBytes, 2n);
    try {
      const ring = new RingBufferReader(obj.map("events"));
      const a = startHeld(target);
      const b = startHeld(target);
      attachUprobeMulti(obj.program("on_call"), { binaryPath: target, fileOffsets: offsets });
      await Promise.all([a.release(), b.release()]);
      const recs = await drainAll(ring, 2 * TOTAL);
      expect(recs.length).toBe(2 * TOTAL);
      expect(new Set(recs.map((r) => r.pid))).toEqual(new Set([a.proc.pid, b.proc.pid]));
      expect(recs.every((r) => r.cookie === 0n)).toBe(true); // no cookies given
      ring[Symbol.dispose]();
    } finally {
      obj.close(); // releases the adopted link first
    }
    expect(uprobeMultiLinksOf(process.pid)).toEqual([]);
    expect(openHandleCount()).toBe(0);
  });

  test("wrong program kind and bad inputs fail as TracerErrors naming the problem; nothing leaks", () => {
    const errorOf = (f: () => unknown): TracerError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(TracerError);
        return e as TracerError;
      }
      throw new Error("expected a TracerError");
    };
    const me = process.pid;
    {
      using multi = openLoaded(objBytes, 3n);
      const prog = multi.program("on_call");
      expect(prog.expectedAttachType).toBe(BPF_TRACE_UPROBE_MULTI);
      const base = { binaryPath: target, fileOffsets: offsets, pid: me };
      const cases: Array<[string, () => unknown, ErrorCode, RegExp]> = [
        ["perf attach of a multi program", () => attachUprobe(prog, { binaryPath: target, fileOffset: offsets[0]!, pid: me }), "internal", /loaded for uprobe_multi links; use attachUprobeMulti$/],
        ["no offsets", () => attachUprobeMulti(prog, { ...base, fileOffsets: [] }), "internal", /: no offsets given$/],
        ["negative offset", () => attachUprobeMulti(prog, { ...base, fileOffsets: [offsets[0]!, -4] }), "offset_unknown", /: -4 is not a valid file offset$/],
        ["fractional offset", () => attachUprobeMulti(prog, { ...base, fileOffsets: [1.5] }), "offset_unknown", /: 1.5 is not a valid file offset$/],
        ["duplicate offset", () => attachUprobeMulti(prog, { ...base, fileOffsets: [offsets[0]!, offsets[0]!] }), "internal", /the same offset is listed twice$/],
        ["cookie count", () => attachUprobeMulti(prog, { ...base, cookies: [1n] }), "internal", /: 1 cookies for 3 offsets$/],
        ["relative path", () => attachUprobeMulti(prog, { ...base, binaryPath: "umulti-target" }), "internal", /the binary path must be absolute$/],
        ["missing file", () => attachUprobeMulti(prog, { ...base, binaryPath: join(CACHE, "no-such-binary") }), "file_not_found", /no-such-binary/],
        ["bad pid", () => attachUprobeMulti(prog, { ...base, pid: -3 }), "usage", /: -3 is not a process id$/],
        // pid_max is at most 2^22 (include/linux/threads.h PID_MAX_LIMIT): the kernel finds no such process.
        ["gone pid", () => attachUprobeMulti(prog, { ...base, pid: 0x3fffffff }), "target_not_found", /: process 1073741823 no longer exists$/],
        // uprobe_register refuses an offset past the end of the file.
        ["offset past EOF", () => attachUprobeMulti(prog, { ...base, fileOffsets: [0x7fffffff] }), "attach_failed", /invalid argument \(EINVAL\)$/],
      ];
      for (const [name, f, code, message] of cases) {
        const e = errorOf(f);
        expect({ name, code: e.code }).toEqual({ name, code });
        expect(e.message).toMatch(message);
        // file errors name the file (fromSystemError, as for attachUprobe); the rest name the program
        if (code !== "file_not_found") expect(e.message).toContain("on_call");
      }
      expect(uprobeMultiLinksOf(me)).toEqual([]);
    }
    {
      using plain = openLoaded(objBytes, 4n, false);
      const e = errorOf(() => attachUprobeMulti(plain.program("on_call"), { binaryPath: target, fileOffsets: offsets }));
      expect(e.code).toBe("internal");
      expect(e.message).toMatch(/loaded with attach type 0; call setExpectedAttachType\(BPF_TRACE_UPROBE_MULTI\) before load$/);
    }
    {
      using loaded = BpfObject.open(objBytes, "umulti_test");
      loaded.load();
      expect(() => loaded.program("on_call").setExpectedAttachType(BPF_TRACE_UPROBE_MULTI)).toThrow("must happen before load()");
    }
    expect(openHandleCount()).toBe(0);
  });

  test.skipIf(spawnSync("sh", ["-c", "command -v go"]).status !== 0)(
    "net/http session: the same uprobes with one link per program instead of one per offset; attach and detach times",
    async () => {
      const sample = await startSample(await buildSample({ mode: "default" }));
      try {
        const p = describeProcess(sample.pid);
        const times: Record<string, { attachMs: number; disposeMs: number; uprobes: number; links: number }> = {};
        // perf links without attach cookies (kernels < 5.15) load one program per server end;
        // with cookies one program serves them all.
        for (const [mode, cookies] of [["perf", false], ["perf", true], ["uprobe_multi", true]] as const) {
          overrideUprobeMultiSupport(mode === "uprobe_multi");
          overrideAttachCookieSupport(cookies);
          try {
            let t = performance.now();
            const s = await TraceSession.prepare({ process: p, binaryPath: p.exeLink, readPath: p.exeLink }, { allowNearest: false });
            const attachMs = performance.now() - t;
            expect(s.attachMode).toBe(mode);
            const used = new Set(s.attachedProbes().flatMap((pl) => pl.points.map((pt) => pt.program)));
            expect(used.has("nethttp_server_end")).toBe(cookies);
            expect(used.has("nethttp_server_end_http1")).toBe(!cookies);
            const multi = uprobeMultiLinksOf(process.pid);
            if (mode === "perf") expect(multi).toEqual([]);
            else {
              // one link per program in use (each probe's entry, and its end markers or its RET
              // program), together carrying every uprobe
              const programs = new Set(s.attachedProbes().flatMap((pl) => pl.points.map((pt) => pt.program)));
              expect(multi.length).toBe(programs.size);
              expect(multi.reduce((n, m) => n + m.uprobes, 0)).toBe(s.uprobeCount);
              expect(multi.every((m) => m.pid === sample.pid)).toBe(true);
            }
            t = performance.now();
            s[Symbol.dispose](); // (a failed expect above leaves it to the next test's leak check)
            const disposeMs = performance.now() - t;
            if (cookies) times[mode] = { attachMs, disposeMs, uprobes: s.uprobeCount, links: mode === "perf" ? s.uprobeCount : multi.length };
            expect(uprobeMultiLinksOf(process.pid)).toEqual([]);
            expect(openHandleCount()).toBe(0);
          } finally {
            overrideUprobeMultiSupport(undefined);
            overrideAttachCookieSupport(undefined);
          }
        }
        expect(times.uprobe_multi!.uprobes).toBe(times.perf!.uprobes);
        expect(times.perf!.uprobes).toBeGreaterThan(2); // entries and RETs: more uprobes than links
        for (const [m, t] of Object.entries(times)) {
          console.info(`${m}: ${t.uprobes} uprobes via ${t.links} links; prepare (analyze+load+attach) ${t.attachMs.toFixed(0)} ms, dispose ${t.disposeMs.toFixed(0)} ms`);
        }
        expect(sample.alive()).toBe(true);
      } finally {
        await sample.stop();
      }
    },
    120_000,
  );
});
