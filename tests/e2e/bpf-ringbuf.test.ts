/** @module tests/e2e/bpf-ringbuf — load, configure, attach by file offset, drain, verifier errors and leak checks (root). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { TracerError } from "../../src/errors.ts";
import { BpfObject } from "../../src/bpf/object.ts";
import { attachUprobe, LinkSet } from "../../src/bpf/link.ts";
import { RingBufferReader } from "../../src/bpf/ringbuf.ts";
import { openHandleCount, openHandles } from "../../src/bpf/handles.ts";
import { sampleClocks } from "../../src/bpf/clock.ts";
import { bpfFdsOfThisProcess, buildRingTestObject, buildTarget, fileOffsetOf, loadedProgramNames, skipReason } from "./bpf-harness.ts";

const reason = skipReason();
const CALLS = 23; // a prime: a doubled or missed event cannot hide in a round number
const REC_SIZE = 56; // sizeof(struct ring_rec), _Static_assert'ed in the fixture

interface Rec {
  seq: bigint;
  arg: bigint;
  tag: bigint;
  cookie: bigint;
  ktime: bigint;
  pid: number;
  tid: number;
  burstIndex: number;
}
function decode(v: DataView, o: number, len: number): Rec {
  expect(len).toBe(REC_SIZE);
  return {
    seq: v.getBigUint64(o, true),
    arg: v.getBigUint64(o + 8, true),
    tag: v.getBigUint64(o + 16, true),
    cookie: v.getBigUint64(o + 24, true),
    ktime: v.getBigUint64(o + 32, true),
    pid: v.getUint32(o + 40, true),
    tid: v.getUint32(o + 44, true),
    burstIndex: v.getUint32(o + 48, true),
  };
}

/** A target process that waits for a byte on stdin, then calls bt_probe_me(0..n-1). */
function startHeld(binary: string, n = CALLS): { proc: Subprocess<"pipe", "pipe", "pipe">; release: () => Promise<void> } {
  const proc = Bun.spawn([binary, String(n)], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return {
    proc,
    release: async () => {
      proc.stdin.write("g");
      await proc.stdin.end();
      expect(await proc.exited).toBe(0);
      expect((await new Response(proc.stdout).text()).trim()).toBe(String((n * (n + 1)) / 2)); // sum of x+1
    },
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(1);
  }
}

describe.skipIf(reason !== undefined)(`src/bpf end to end${reason ? ` — skipped: ${reason}` : ""}`, () => {
  let objBytes: Uint8Array;
  let target: string;
  let offset: number;
  let fdsBefore: string[];

  beforeAll(() => {
    objBytes = buildRingTestObject();
    target = buildTarget();
    offset = fileOffsetOf(target, "bt_probe_me");
    fdsBefore = bpfFdsOfThisProcess();
  });

  afterAll(() => {
    // Whatever a test did, nothing native may outlive it.
    expect(openHandles()).toEqual([]);
    expect(bpfFdsOfThisProcess()).toEqual(fdsBefore);
  });

  test(`${CALLS} calls give exactly ${CALLS} records carrying the constants, cookie and pid; .bss counts them`, async () => {
    const held = startHeld(target);
    const before = sampleClocks();
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.setConst("tag", 0x5eed_beefn);
    obj.setMapMaxEntries("events", 1 << 20);
    obj.load();
    using links = new LinkSet();
    links.add(attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: held.proc.pid, cookie: 0xc0ffee }));
    using rb = new RingBufferReader(obj.map("events"));
    expect(rb.size).toBe(1 << 20);

    await held.release();
    const after = sampleClocks();
    const recs: Rec[] = [];
    expect(rb.drain((v, o, l) => recs.push(decode(v, o, l)))).toBe(CALLS);
    expect(rb.drain(() => {})).toBe(0);
    expect(rb.pendingBytes()).toBe(0);

    expect(recs.map((r) => r.arg)).toEqual(Array.from({ length: CALLS }, (_, i) => BigInt(i)));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: CALLS }, (_, i) => BigInt(i)));
    for (const r of recs) {
      expect(r.tag).toBe(0x5eed_beefn);
      expect(r.cookie).toBe(0xc0ffeen);
      expect(r.pid).toBe(held.proc.pid);
      expect(r.tid).toBe(held.proc.pid); // single-threaded target
      // bpf_ktime_get_boot_ns() lies between our two boot-time samples
      expect(r.ktime > before.boottimeNs && r.ktime < after.boottimeNs).toBe(true);
    }
    expect(obj.readBss("hits")).toBe(BigInt(CALLS));
    expect(obj.readBss("produced")).toBe(BigInt(CALLS));
    expect(obj.readBss("dropped")).toBe(0n);
    // The raw view agrees with the named reads (hits is at offset 0 per the object's BTF).
    expect(obj.sectionVars(".bss").get("hits")).toEqual({ name: "hits", offset: 0, size: 8 });
    expect(obj.bss().getBigUint64(0, true)).toBe(BigInt(CALLS));
  });

  test("the pid filter ignores another process running the same binary", async () => {
    const traced = startHeld(target);
    const other = startHeld(target);
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.load();
    using _link = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: traced.proc.pid });
    using rb = new RingBufferReader(obj.map("events"));
    await other.release();
    expect(rb.drain(() => {})).toBe(0);
    expect(obj.readBss("hits")).toBe(0n);
    await traced.release();
    const pids = new Set<number>();
    expect(rb.drain((v, o, l) => pids.add(decode(v, o, l).pid))).toBe(CALLS);
    expect([...pids]).toEqual([traced.proc.pid]);
  });

  test("the rodata constant really filters in BPF: target_tgid of another process gives no hits", async () => {
    const held = startHeld(target);
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.setConst("target_tgid", process.pid); // us, not the target
    obj.load();
    expect(() => obj.setConst("tag", 1)).toThrow("must happen before load()");
    using _link = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset });
    using rb = new RingBufferReader(obj.map("events"));
    await held.release();
    expect(rb.drain(() => {})).toBe(0);
    expect(obj.readBss("hits")).toBe(0n);
  });

  test("drain is bounded by maxBytes, and the drain timer empties the ring on its own", async () => {
    const held = startHeld(target);
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.load();
    using _link = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: held.proc.pid });
    using rb = new RingBufferReader(obj.map("events"));
    await held.release();
    const perCall: number[] = [];
    for (let n = rb.drain(() => {}, REC_SIZE + 8); n > 0; n = rb.drain(() => {}, REC_SIZE + 8)) perCall.push(n);
    expect(perCall).toEqual(Array.from({ length: CALLS }, () => 1));

    const again = startHeld(target);
    // Re-attaching to a new process needs a new link; the old pid is gone.
    using _link2 = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: again.proc.pid });
    const args: bigint[] = [];
    using timer = rb.startDrainTimer(1, (v, o, l) => args.push(decode(v, o, l).arg));
    await again.release();
    await waitFor(() => timer.records === CALLS, `${CALLS} records from the drain timer`);
    expect(args).toEqual(Array.from({ length: CALLS }, (_, i) => BigInt(i)));
  });

  test("a handler that throws does not make the reader replay records", async () => {
    const held = startHeld(target);
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.load();
    using _link = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: held.proc.pid });
    using rb = new RingBufferReader(obj.map("events"));
    await held.release();
    let seen = 0;
    expect(() =>
      rb.drain(() => {
        if (++seen === 5) throw new Error("handler bug");
      }),
    ).toThrow("handler bug");
    expect(rb.drain(() => {})).toBe(CALLS - 5);
  });

  test("a program the verifier rejects gives verifier_rejected with the verifier log as detail", () => {
    using obj = BpfObject.open(buildRingTestObject({ bad: true }), "ring_bad");
    let err: unknown;
    try {
      obj.load();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    const e = err as TracerError;
    expect(e.code).toBe("verifier_rejected");
    expect(e.message).toContain("program bad_deref");
    expect(e.detail?.some((l) => l.includes("invalid mem access"))).toBe(true);
    expect(e.detail?.some((l) => /^processed \d+ insns/.test(l))).toBe(true);
    expect(obj.loaded).toBe(false);
  });

  test("startLoad verifies on another thread: the object is closed to this thread until finish(), then works like load()", async () => {
    const held = startHeld(target);
    using obj = BpfObject.open(objBytes, "ring_test");
    obj.setConst("tag", 7n);
    const loading = obj.startLoad();
    // Meanwhile the object belongs to the loading thread.
    expect(() => obj.program("on_call")).toThrow("while it loads on another thread");
    expect(loading.finish()).toBe(true);
    expect(loading.finish()).toBe(true); // once joined, the answer stays
    expect(obj.loaded).toBe(true);
    using _link = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: held.proc.pid });
    using rb = new RingBufferReader(obj.map("events"));
    await held.release();
    const tags = new Set<bigint>();
    expect(rb.drain((v, o, l) => tags.add(decode(v, o, l).tag))).toBe(CALLS);
    expect([...tags]).toEqual([7n]);
  });

  test("startLoad of a program the verifier rejects: finish() is false, and load() of the object opened again names the program", () => {
    const bad = buildRingTestObject({ bad: true });
    {
      using obj = BpfObject.open(bad, "ring_bad");
      expect(obj.startLoad().finish()).toBe(false);
      expect(obj.loaded).toBe(false);
    }
    // libbpf's messages are back on (the error names the program from them).
    using again = BpfObject.open(bad, "ring_bad");
    let err: unknown;
    try {
      again.load();
    } catch (e) {
      err = e;
    }
    expect((err as TracerError).code).toBe("verifier_rejected");
    expect((err as TracerError).message).toContain("program bad_deref");
  });

  test("disposing an object while it loads waits for the loading thread", () => {
    const obj = BpfObject.open(objBytes, "ring_test");
    obj.startLoad();
    obj[Symbol.dispose](); // must not free what the thread uses (a crash, or a leaked fd below)
    expect(() => obj.program("on_call")).toThrow("after close");
  });

  test("bad attach targets are reported, not guessed", () => {
    using obj = BpfObject.open(objBytes, "ring_test");
    const prog = obj.program("on_call");
    expect(() => attachUprobe(prog, { binaryPath: target, fileOffset: offset })).toThrow("needs load() first");
    obj.load();
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof TracerError ? `${e.code}: ${e.message}` : `not a TracerError: ${String(e)}`;
      }
      return "no error";
    };
    expect(code(() => attachUprobe(prog, { binaryPath: `${target}.missing`, fileOffset: offset }))).toStartWith("file_not_found:");
    expect(code(() => attachUprobe(prog, { binaryPath: "target", fileOffset: offset }))).toStartWith("internal:");
    expect(code(() => attachUprobe(prog, { binaryPath: target, fileOffset: -1 }))).toStartWith("offset_unknown:");
    // A pid that cannot exist (above pid_max's hard limit of 2^22).
    expect(code(() => attachUprobe(prog, { binaryPath: target, fileOffset: offset, pid: 0x7ffffff0 }))).toMatch(/^attach_failed: attach on_call at .*no such process \(ESRCH\)$/);
    expect(() => obj.program("nope")).toThrow("has no program 'nope'");
    expect(() => obj.map("nope")).toThrow("has no map 'nope'");
  });

  test("after dispose no handle, fd, link or program of ours survives", async () => {
    const progsBefore = loadedProgramNames()?.filter((n) => n === "on_call").length;
    const held = startHeld(target);
    {
      using obj = BpfObject.open(objBytes, "ring_test");
      obj.load();
      attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: offset, pid: held.proc.pid }); // adopted by obj
      const rb = new RingBufferReader(obj.map("events")); // also adopted: disposed with obj
      obj.bss();
      expect(openHandleCount()).toBe(4);
      expect(bpfFdsOfThisProcess().length).toBeGreaterThan(fdsBefore.length);
      if (progsBefore !== undefined) expect(loadedProgramNames()!.filter((n) => n === "on_call").length).toBe(progsBefore + 1);
      void rb;
    }
    expect(openHandleCount()).toBe(0);
    expect(bpfFdsOfThisProcess()).toEqual(fdsBefore);
    if (progsBefore !== undefined) expect(loadedProgramNames()!.filter((n) => n === "on_call").length).toBe(progsBefore);
    // With the probe gone, the target runs untraced to completion.
    await held.release();
  });
});
