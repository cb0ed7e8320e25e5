/**
 * @module trace/session — trace one Go process into a capture file, from attach to clean detach.
 *
 * analyze the executable → plan probes (offsets, symbols, RETs) → load each BPF object with its
 * consts → attach a uprobe at every entry and every RET (pid-filtered) → drain the ring buffer
 * on a timer (no wake-up per record; BPF submits with BPF_RB_NO_WAKEUP) → pair start/end
 * records into spans → write them to the capture file, with periodic stats records.
 * Stops on the caller's AbortSignal (SIGINT/SIGTERM, --duration) or when the target exits;
 * on every path the final drain runs, the file is closed and every link and object released.
 */
import { readFileSync } from "node:fs";
import { hostname, arch as osArch, release } from "node:os";
import { TracerError, isTracerError } from "../errors.ts";
import { log } from "../log.ts";
import type { BinaryAnalysis } from "../binary/analyze.ts";
import { openTarget } from "../target/executable.ts";
import { embeddedSnapshot, loadOffsetsFile } from "../offsets/snapshot.ts";
import { PROBES, probeForRecordType, probeById } from "../probes/registry.ts";
import type { BpfObjectSpec } from "../probes/probe.ts";
import { planProbes, type ProbePlan } from "./plan.ts";
import { BpfObject } from "../bpf/object.ts";
import { attachUprobe, attachUprobeMulti, LinkSet } from "../bpf/link.ts";
import { uprobeMultiSupport } from "../bpf/features.ts";
import { BPF_TRACE_UPROBE_MULTI } from "../bpf/syscall.ts";
import { RingBufferReader } from "../bpf/ringbuf.ts";
import { bpfObjectPath } from "../bpf/embedded.ts";
import { sampleClocks } from "../bpf/clock.ts";
import { BootClock } from "../spans/clock.ts";
import { SpanAssembler } from "../spans/assemble.ts";
import { zeroLosses, type LossCounters } from "../spans/model.ts";
import type { SpanSink } from "./output.ts";
import type { CaptureHeader, ProbeInfo } from "../capture/format.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { isAlive, readEnviron, type TargetProcess } from "../target/process.ts";
import { targetResource } from "../config/otel-env.ts";

export interface TraceOptions {
  /** beetrace's own OTEL_RESOURCE_ATTRIBUTES (they win over the target's) */
  resourceAttributes?: Record<string, string>;
  /** OTEL_TRACES_SAMPLER decision per trace id; spans of unsampled traces are not written */
  sample?: (traceId: string) => boolean;
  serviceName?: string;
  offsetsFile?: string;
  allowNearest: boolean;
  /** ring buffer size in bytes (power of two, ≥ page size) */
  ringbufBytes?: number;
  /** in-flight map entries per map (concurrent calls tracked) */
  inflightEntries?: number;
  drainIntervalMs?: number;
  statsIntervalMs?: number;
  /** load and attach, then stop at once (checks everything without tracing) */
  dryRun?: boolean;
}

/** Where the uprobes go: the file to attach to and the process to filter on. */
export interface AttachTarget {
  process: TargetProcess;
  /** path of the executable for uprobes (/proc/PID/exe for running processes) */
  binaryPath: string;
  /** path to read the ELF from (usually the same) */
  readPath: string;
}

export interface TraceSummary {
  spans: number;
  losses: LossCounters;
  probesAttached: string[];
  probesDisabled: { id: string; reason: string }[];
  stopReason: string;
  /** where the spans went, one line each (files, exporters) */
  outputs: string[];
  uprobes: number;
}

interface LoadedObject {
  spec: BpfObjectSpec;
  object: BpfObject;
  ring: RingBufferReader;
}

/** Everything prepared but not yet running; `start` begins tracing. */
export class TraceSession implements Disposable {
  readonly #links = new LinkSet();
  readonly #objects: LoadedObject[] = [];
  #disposed = false;
  uprobeCount = 0;
  /**
   * How the uprobes were attached: one uprobe_multi link per program (kernel 6.6+; detaching
   * costs one kernel synchronisation per link) or one perf-event link per offset (older kernels;
   * one synchronisation per uprobe). Chosen before load, since it fixes how programs are loaded.
   */
  attachMode: "uprobe_multi" | "perf" = "perf";

  private constructor(
    readonly target: AttachTarget,
    readonly analysis: BinaryAnalysis,
    readonly plans: ProbePlan[],
    readonly opts: TraceOptions,
  ) {}

  /** Analyze, plan, load and attach. Throws nothing_attached if no probe could run. */
  static async prepare(target: AttachTarget, opts: TraceOptions): Promise<TraceSession> {
    const analysis = await openTarget(target.readPath, `${target.process.exePath} (pid ${target.process.pid})`);
    const plans = planProbes(analysis, PROBES, {
      snapshot: embeddedSnapshot(),
      file: opts.offsetsFile ? loadOffsetsFile(opts.offsetsFile) : undefined,
      allowNearest: opts.allowNearest,
    });
    for (const p of plans) {
      if (!p.enabled) {
        log.warn(`probe ${p.probe.id} (${p.probe.library}) disabled: ${p.reason}`);
        if (p.fix) log.hint(p.fix);
      }
      for (const f of p.fields) {
        if (f.source === "guess") log.warn(`${f.field}: offset ${f.offset} is a guess (${f.note})`);
      }
    }
    const session = new TraceSession(target, analysis, plans, opts);
    try {
      session.#loadAndAttach();
    } catch (e) {
      session[Symbol.dispose]();
      throw e;
    }
    if (session.attachedProbes().length === 0) {
      const reasons = plans.map((p) => `${p.probe.id}: ${p.reason ?? "not attached"}`);
      session[Symbol.dispose]();
      throw new TracerError("nothing_attached", `no probe could be attached to pid ${target.process.pid}`, {
        hint: plans.find((p) => p.fix)?.fix ?? "run 'beetrace inspect --pid N' to see what is missing",
        detail: reasons,
      });
    }
    return session;
  }

  attachedProbes(): ProbePlan[] {
    return this.plans.filter((p) => p.enabled);
  }

  #loadAndAttach(): void {
    const multi = uprobeMultiSupport();
    this.attachMode = multi.supported ? "uprobe_multi" : "perf";
    log.verbose(
      multi.supported
        ? `attaching with uprobe_multi links (${multi.detail})`
        : `attaching with one perf-event uprobe per offset: no uprobe_multi links (${multi.detail})`,
    );
    const started = performance.now();
    const byObject = new Map<string, ProbePlan[]>();
    for (const p of this.plans) {
      const list = byObject.get(p.probe.object.name) ?? [];
      list.push(p);
      byObject.set(p.probe.object.name, list);
    }
    for (const [name, plans] of byObject) {
      if (!plans.some((p) => p.enabled)) continue;
      const spec = plans[0]!.probe.object;
      const bytes = new Uint8Array(readFileSync(bpfObjectPath(name)));
      const object = BpfObject.open(bytes, name);
      // Registered before load so a failure anywhere below still closes it.
      this.#objects.push({ spec, object, ring: undefined as unknown as RingBufferReader });
      for (const p of plans) {
        if (!p.enabled) {
          for (const u of p.probe.uprobes) {
            object.program(u.entryProgram).setAutoload(false);
            object.program(u.returnProgram).setAutoload(false);
          }
          continue;
        }
        for (const [k, v] of Object.entries(p.consts)) object.setConst(k, v);
        if (this.attachMode === "uprobe_multi") {
          // A program loaded this way can only be attached through uprobe_multi links.
          for (const u of p.probe.uprobes) {
            object.program(u.entryProgram).setExpectedAttachType(BPF_TRACE_UPROBE_MULTI);
            object.program(u.returnProgram).setExpectedAttachType(BPF_TRACE_UPROBE_MULTI);
          }
        }
      }
      if (this.opts.ringbufBytes !== undefined) object.setMapMaxEntries(spec.ringbufMap, this.opts.ringbufBytes);
      if (this.opts.inflightEntries !== undefined) {
        for (const m of spec.inflightMaps) object.setMapMaxEntries(m, this.opts.inflightEntries);
      }
      object.load();
      this.#objects[this.#objects.length - 1]!.ring = new RingBufferReader(object.map(spec.ringbufMap));
      for (const p of plans) if (p.enabled) this.#attachProbe(object, p);
    }
    log.verbose(`attached ${this.uprobeCount} uprobes (${this.attachMode}) in ${(performance.now() - started).toFixed(0)} ms, including load`);
  }

  /** All-or-nothing per probe: an entry without all its RET probes would leak in-flight state. */
  #attachProbe(object: BpfObject, plan: ProbePlan): void {
    const attached = new LinkSet();
    let uprobes = 0;
    try {
      if (this.attachMode === "uprobe_multi") {
        uprobes = this.#attachProbeMulti(object, plan, attached);
      } else {
        plan.probe.uprobes.forEach((u, i) => {
          const sym = plan.symbols[i]!;
          if (!sym.resolved) throw new TracerError("internal", `${u.symbol} unresolved after planning`);
          const pid = this.target.process.pid;
          attached.add(attachUprobe(object.program(u.entryProgram), { binaryPath: this.target.binaryPath, fileOffset: sym.fileOffset, pid }));
          for (const ret of sym.returns) {
            const fileOffset = this.analysis.elf.vaddrToFileOffset(ret);
            if (fileOffset === undefined) throw new TracerError("attach_failed", `return site 0x${ret.toString(16)} of ${u.symbol} is not file-backed`);
            attached.add(attachUprobe(object.program(u.returnProgram), { binaryPath: this.target.binaryPath, fileOffset, pid, cookie: ret - sym.entry }));
          }
        });
        uprobes = attached.size; // one perf link per uprobe
      }
    } catch (e) {
      const n = this.attachMode === "uprobe_multi" ? `${attached.size} uprobe_multi links` : `${attached.size} uprobes`;
      attached[Symbol.dispose]();
      if (!isTracerError(e)) throw e;
      plan.enabled = false;
      plan.reason = `attaching failed after ${n}: ${e.message}`;
      plan.fix = e.hint;
      log.warn(`probe ${plan.probe.id} disabled: ${plan.reason}`);
      return;
    }
    this.uprobeCount += uprobes;
    this.#links.add(attached);
  }

  /**
   * One uprobe_multi link per program: the entry program over every entry offset, the return
   * program over every RET (cookie = RET offset from the function entry, as in perf mode).
   * Return programs are linked first so no entry fires before its returns can clean up.
   * Returns the number of uprobes attached.
   */
  #attachProbeMulti(object: BpfObject, plan: ProbePlan, attached: LinkSet): number {
    const returns = new Map<string, { offsets: number[]; cookies: bigint[] }>();
    const entries = new Map<string, { offsets: number[]; cookies: bigint[] }>();
    const add = (groups: typeof returns, program: string, offset: number, cookie: bigint) => {
      const g = groups.get(program) ?? { offsets: [], cookies: [] };
      g.offsets.push(offset);
      g.cookies.push(cookie);
      groups.set(program, g);
    };
    plan.probe.uprobes.forEach((u, i) => {
      const sym = plan.symbols[i]!;
      if (!sym.resolved) throw new TracerError("internal", `${u.symbol} unresolved after planning`);
      add(entries, u.entryProgram, sym.fileOffset, 0n);
      for (const ret of sym.returns) {
        const fileOffset = this.analysis.elf.vaddrToFileOffset(ret);
        if (fileOffset === undefined) throw new TracerError("attach_failed", `return site 0x${ret.toString(16)} of ${u.symbol} is not file-backed`);
        add(returns, u.returnProgram, fileOffset, BigInt(ret - sym.entry));
      }
    });
    const pid = this.target.process.pid;
    let n = 0;
    for (const groups of [returns, entries]) {
      for (const [program, g] of groups) {
        attached.add(attachUprobeMulti(object.program(program), { binaryPath: this.target.binaryPath, fileOffsets: g.offsets, cookies: g.cookies, pid }));
        n += g.offsets.length;
      }
    }
    return n;
  }

  /** Provenance for the capture header: per probe, attached or why not, and where offsets came from. */
  probeInfo(): ProbeInfo[] {
    return this.plans.map((p) => ({
      id: p.probe.id,
      attached: p.enabled,
      ...(p.reason ? { reason: p.reason } : {}),
      offsets: p.fields
        .filter((f) => typeof f.offset === "number" && f.source !== undefined)
        .map((f) => ({ field: f.field, offset: f.offset as number, source: f.source! })),
    }));
  }

  /** BPF-side loss counters, summed over objects. */
  bpfLosses(): { losses: LossCounters; other: Record<string, number> } {
    const losses = zeroLosses();
    const other: Record<string, number> = {};
    for (const o of this.#objects) {
      for (const c of o.spec.counters) {
        let v = 0;
        try {
          v = Number(o.object.readBss(c.name));
        } catch {
          continue;
        }
        if (c.loss) losses[c.loss] += v;
        else other[c.name] = (other[c.name] ?? 0) + v;
      }
    }
    return { losses, other };
  }

  /** Trace until `signal` aborts or the target exits; always closes the capture file. */
  async run(signal: AbortSignal, openSink: (header: CaptureHeader) => SpanSink, onTick?: (s: { spans: number; losses: LossCounters }) => void): Promise<TraceSummary> {
    const clock = new BootClock(() => sampleClocks(), {
      onReanchor: (a) => {
        if (a.driftNs > 1_000_000n || a.driftNs < -1_000_000n) log.verbose(`clock re-anchored: wall clock moved ${a.driftNs} ns relative to boot time`);
      },
    });
    const env = readEnviron(this.target.process.pid);
    const resource = targetResource(this.target.process.pid, this.target.process.exePath, env, {
      goVersion: this.analysis.goVersion,
      config: { serviceName: this.opts.serviceName, resourceAttributes: this.opts.resourceAttributes ?? {} },
    });
    const serviceName = String(resource["service.name"]);
    const anchor = clock.anchor();
    const header: CaptureHeader = {
      type: "header",
      format: 1,
      tracer: { name: "beetrace", version: BEETRACE_VERSION },
      createdAt: anchor.realtimeNs,
      host: { name: hostname(), arch: osArch(), kernel: release() },
      target: {
        pid: this.target.process.pid,
        exe: this.target.process.exePath,
        goVersion: this.analysis.goVersion,
        modules: this.analysis.buildInfo.deps.map((d) => ({ path: d.path, version: d.replace?.version || d.version })),
        serviceName,
      },
      clock: { realtimeNs: anchor.realtimeNs, boottimeNs: anchor.boottimeNs, offsetNs: anchor.offsetNs },
      probes: this.probeInfo(),
      resource,
    };
    const writer = openSink(header);
    let spansOut = 0;

    let invalidRecords = 0;
    let unsampled = 0;
    let writeError: TracerError | undefined;
    const assembler = new SpanAssembler({
      finish: (s, e) => probeById(s.probe)?.finish(s, e, (ns) => clock.toEpochNs(ns)),
      onSpan: (span) => {
        if (writeError) return;
        if (this.opts.sample && !this.opts.sample(span.traceId)) {
          unsampled++;
          return;
        }
        try {
          writer.span(span);
          spansOut++;
        } catch (e) {
          writeError = isTracerError(e) ? e : new TracerError("output_failed", String(e));
        }
      },
    });
    const onRecord = (view: DataView, off: number, len: number) => {
      if (len < 4) {
        invalidRecords++;
        return;
      }
      const probe = probeForRecordType(view.getUint32(off, true));
      if (!probe) {
        invalidRecords++;
        return;
      }
      const d = probe.decode(view, off, len);
      if (d.kind === "start") assembler.start(d.start);
      else if (d.kind === "end") assembler.end(d.end);
      else {
        invalidRecords++;
        log.debug(`BUG: undecodable record from ${probe.id}: ${d.reason}`);
      }
    };
    // Bounded batches so the event loop (timers, signals) never starves under load.
    const drainOnce = (): number => {
      let n = 0;
      for (const o of this.#objects) n += o.ring.drain(onRecord, 1 << 20);
      assembler.drained();
      return n;
    };
    const totalLosses = (): LossCounters => {
      const bpf = this.bpfLosses().losses;
      const user = assembler.losses();
      const sum = zeroLosses();
      for (const k of Object.keys(sum) as (keyof LossCounters)[]) sum[k] = bpf[k] + user[k];
      return sum;
    };

    let stopReason = "stopped";
    try {
      if (!this.opts.dryRun) {
        stopReason = await new Promise<string>((resolve) => {
          const drainMs = this.opts.drainIntervalMs ?? 20;
          const statsMs = this.opts.statsIntervalMs ?? 5000;
          let lastStats = Date.now();
          const timer = setInterval(() => {
            try {
              drainOnce();
              if (writeError) return finish(`output failed: ${writeError.message}`);
              const limit = writer.limitReached();
              if (limit) return finish(limit);
              onTick?.({ spans: spansOut, losses: totalLosses() });
              if (Date.now() - lastStats >= statsMs) {
                lastStats = Date.now();
                writer.stats(clock.toEpochNs(sampleClocks().boottimeNs), totalLosses());
              }
            } catch (e) {
              writeError = isTracerError(e) ? e : new TracerError("internal", `drain failed: ${String(e)}`);
              finish(`error: ${writeError.message}`);
            }
          }, drainMs);
          const alive = setInterval(() => {
            if (!isAlive(this.target.process)) finish("target exited");
          }, 200);
          const onAbort = () => finish(String(signal.reason ?? "stopped"));
          let done = false;
          function finish(reason: string) {
            if (done) return;
            done = true;
            clearInterval(timer);
            clearInterval(alive);
            signal.removeEventListener("abort", onAbort);
            resolve(reason);
          }
          if (signal.aborted) finish(String(signal.reason ?? "stopped"));
          else signal.addEventListener("abort", onAbort);
        });
      }
      // Final drain: everything the kernel already wrote reaches the file.
      for (let i = 0; i < 1000 && drainOnce() > 0; i++);
      assembler.drained();
      assembler.flushIncomplete();
      const losses = totalLosses();
      const at = clock.toEpochNs(sampleClocks().boottimeNs);
      if (writeError) {
        writer.abandon();
        throw writeError;
      }
      const outputs = await writer.close(stopReason, at, losses);
      const spans = spansOut;
      if (unsampled > 0) log.verbose(`${unsampled} spans were not kept (OTEL_TRACES_SAMPLER)`);
      if (invalidRecords > 0) log.warn(`BUG: ${invalidRecords} ring-buffer records could not be decoded; please report with -v output`);
      return {
        spans,
        losses,
        probesAttached: this.attachedProbes().map((p) => p.probe.id),
        probesDisabled: this.plans.filter((p) => !p.enabled).map((p) => ({ id: p.probe.id, reason: p.reason ?? "" })),
        stopReason,
        outputs,
        uprobes: this.uprobeCount,
      };
    } catch (e) {
      try {
        writer.abandon();
      } catch {
        /* already failing */
      }
      throw e;
    } finally {
      this[Symbol.dispose]();
    }
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    let first: unknown;
    try {
      this.#links[Symbol.dispose]();
    } catch (e) {
      first = e;
    }
    for (const o of this.#objects.reverse()) {
      try {
        o.ring?.[Symbol.dispose]();
      } catch (e) {
        first ??= e;
      }
      try {
        o.object[Symbol.dispose]();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}
