/**
 * @module trace/session — trace one Go process into a capture file, from attach to clean detach.
 *
 * analyze the executable → plan probes (offsets, symbols, entry sites, end markers or RETs) →
 * load each BPF object with its consts (later objects reuse the first one's ring buffer and
 * span-context maps) → attach uprobes (pid-filtered) → drain the ring buffer on an adaptive
 * timer (no wake-up per record; BPF submits with BPF_RB_NO_WAKEUP) → hand each span record, as
 * raw bytes, to the outputs (capture files store them as they are; OTLP decodes them) → flush
 * the outputs once per tick, with periodic stats records.
 * Stops on the caller's AbortSignal (SIGINT/SIGTERM, --duration) or when the target exits;
 * on every path the final drain runs, the file is closed and every link and object released.
 */
import { readFileSync, statSync } from "node:fs";
import { hostname, arch as osArch, release } from "node:os";
import { TracerError, isTracerError } from "../errors.ts";
import { log, startupStage } from "../log.ts";
import type { BinaryAnalysis } from "../binary/analyze.ts";
import { openTarget } from "../target/executable.ts";
import { prepareIced } from "../vendor/iced/index.ts";
import { trimStartup } from "./footprint.ts";
import { embeddedSnapshot, loadOffsetsFile } from "../offsets/snapshot.ts";
import { PROBES } from "../probes/registry.ts";
import { untracedProtocols, type UntracedProtocol } from "../probes/protocols.ts";
import type { BpfObjectSpec } from "../probes/probe.ts";
import { SpanDecoder, builtinRecordSchema, laterDecoders, recordSize } from "../probes/decode.ts";
import { hexOf } from "../probes/record.ts";
import { SPAN_FLAGS, SPAN_HEADER } from "../probes/common/header.ts";
import { placeDeferred, planProbes, type AttachPoint, type ProbePlan } from "./plan.ts";
import { BpfObject } from "../bpf/object.ts";
import { attachUprobe, attachUprobeMulti, LinkSet } from "../bpf/link.ts";
import { attachCookieSupport, uprobeMultiSupport } from "../bpf/features.ts";
import { bpfSamplerConsts } from "../probes/common/sampling.ts";
import { GoTypeNames } from "../binary/go-typenames.ts";
import { prefaultFileRange } from "../target/prefault.ts";
import type { SamplerConfig } from "../config/otel-env.ts";
import { BPF_TRACE_UPROBE_MULTI } from "../bpf/syscall.ts";
import { RingBufferReader } from "../bpf/ringbuf.ts";
import { bpfObjectPath } from "../bpf/embedded.ts";
import { libbpf } from "../bpf/libbpf.ts";
import { bootTimeNs, sampleClocks } from "../bpf/clock.ts";
import { BootClock } from "../spans/clock.ts";
import { zeroLosses, type LossCounters, type Span } from "../spans/model.ts";
import type { SpanSink } from "./output.ts";
import { CAPTURE_FORMAT, type CaptureHeader, type ProbeInfo } from "../capture/format.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { ProcessWatch, readEnviron, type TargetProcess } from "../target/process.ts";
import { targetResource } from "../config/otel-env.ts";
import { ProcessMaps } from "./process-maps.ts";
import { Propagator } from "./propagate.ts";

const stage = startupStage;

/** What each plan does or why it does not run, as start-up messages (verbose, warnings). */
function reportPlans(plans: readonly ProbePlan[]): void {
  for (const p of plans) {
    if (!p.enabled) {
      // A library the service does not link is nothing to trace, not a problem (cron mail).
      if (p.notLinked) {
        log.verbose(`probe ${p.probe.id}: ${p.probe.library} is not linked into this binary`);
        continue;
      }
      log.warn(`probe ${p.probe.id} (${p.probe.library}) disabled: ${p.reason}`);
      if (p.fix) log.hint(p.fix);
      continue;
    }
    for (const e of p.ends) log.verbose(`probe ${p.probe.id}: ${e}`);
    for (const d of p.degraded ?? []) log.warn(`probe ${p.probe.id}: ${d}`);
    for (const f of p.fields) {
      if (f.source === "guess") log.warn(`${f.field}: offset ${f.offset} is a guess (${f.note})`);
    }
  }
}

/** The fields each probe uses with a guessed offset, for the record schema (marks its spans). */
function guessedOffsets(plans: ProbePlan[]): { guessedOffsets?: Record<string, string[]> } {
  const out: Record<string, string[]> = {};
  for (const p of plans) {
    const g = p.enabled ? p.fields.filter((f) => f.source === "guess").map((f) => f.field) : [];
    if (g.length > 0) out[p.probe.id] = g;
  }
  return Object.keys(out).length > 0 ? { guessedOffsets: out } : {};
}

/** The inode of a process's network namespace (/proc/PID/ns/net), 0 when it cannot be read. */
function netnsInode(pid: number): number {
  try {
    const ino = statSync(`/proc/${pid}/ns/net`).ino;
    return ino > 0 && ino <= 0xffffffff ? ino : 0;
  } catch {
    return 0;
  }
}

/** Offsets of rec_span.trace_id and .flags (bpf/shared/span.h), for sampling without decoding. */
const TRACE_ID_OFFSET = SPAN_HEADER.trace_id.offset;
const FLAGS_OFFSET = SPAN_HEADER.flags.offset;

/** The sampled flag the trace came in with (a caller's traceparent), if any. */
function remoteTraceFlags(b: Uint8Array, off: number): { remote: boolean; sampled: boolean } | undefined {
  const flags = b[off + FLAGS_OFFSET]! | (b[off + FLAGS_OFFSET + 1]! << 8);
  if (!(flags & SPAN_FLAGS.TRACE_FLAGS_KNOWN)) return undefined;
  return { remote: (flags & SPAN_FLAGS.REMOTE_PARENT) !== 0, sampled: (flags & SPAN_FLAGS.SAMPLED) !== 0 };
}

export interface TraceOptions {
  /** beetrace's own OTEL_RESOURCE_ATTRIBUTES (they win over the target's) */
  resourceAttributes?: Record<string, string>;
  /**
   * OTEL_TRACES_SAMPLER decision per trace; spans of unsampled traces are not written. `parent`
   * is the sampled flag a remote caller sent with the trace (traceparent), when there was one.
   */
  sample?: (traceId: string, parent: { remote: boolean; sampled: boolean } | undefined) => boolean;
  /** false: `sample` keeps every root span, so it is asked only about traces with a caller's flag */
  sampleRoots?: boolean;
  /** The sampler the BPF programs apply before a span reaches the ring (default parentbased_always_on). */
  sampler?: SamplerConfig;
  /** false: incoming traceparent/tracestate are not read (OTEL_PROPAGATORS without tracecontext) */
  contextIn?: boolean;
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
  /** --propagate: traceparent into the target's plain HTTP/1 requests (trace/propagate.ts) */
  propagate?: boolean;
  /** Maps shared with the other sessions of this beetrace (process-maps.ts); none: this session's own. */
  processMaps?: ProcessMaps;
  /** One of several processes traced by this beetrace: place the sites that serve only live joins (plan.ts). */
  liveJoins?: boolean;
  /** Slots of each slot table to use (BEETRACE_SERVER_SLOTS, cli/trace.ts serverSlots; default all). */
  serverSlots?: number;
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
}

/**
 * Maps probe objects declare and share with the first one loaded (bpf/include/events.bpf.h,
 * go_context.bpf.h, conn_ctx.bpf.h): one ring buffer for all records, one view of which span a
 * goroutine or context belongs to, so a probe in one object finds its parent in another's, and
 * the client spans in flight per connection (also shared across sessions: process-maps.ts).
 */
/** The name ending of every slot table's index mask (bpf/include/slots.bpf.h, BEE_SLOT_TABLE). */
const SLOT_MASK_SUFFIX = "_slot_mask";
const SHARED_MAPS = ["events", "bee_goroutine_spans", "bee_goroutine_slots", "bee_ctx_spans", "bee_ctx_slots", "bee_span_map_fill", "bee_conn_spans"] as const;
const RING_MAP = "events";
/** bpf/include/go_headers.bpf.h: 0 turns the header walk and the traceparent parse off */
const CONTEXT_IN_CONST = "bee_context_in";

/** The drain tick's longest delay once the ring has stayed empty (see idleDrainDelayMs), for a ring of IDLE_DRAIN_RING_BYTES or more. */
export const IDLE_DRAIN_MAX_MS = 100;
/** The default ring size (bpf/include/events.bpf.h): a smaller ring (--ringbuf-size) slows the idle tick less, in proportion. */
export const IDLE_DRAIN_RING_BYTES = 4 << 20;
/** Empty ticks in a row before the tick slows down: half a second at the default 20 ms. */
export const IDLE_DRAIN_AFTER_TICKS = 25;

/**
 * The delay before the next drain tick when the last one was not busy. While spans flow it is
 * `drainMs`; once the ring has been empty for IDLE_DRAIN_AFTER_TICKS ticks it doubles per empty
 * tick up to IDLE_DRAIN_MAX_MS, and the first tick that finds a record goes back to `drainMs`.
 * An idle tracer then wakes ~10 times a second instead of 50 (its CPU while the service is
 * idle: bench/RESULTS.md). A burst is still read within 100 ms of its start: the default 4 MiB
 * ring holds ~20,000 server spans, 200,000 a second for those 100 ms.
 */
export function idleDrainDelayMs(drainMs: number, emptyTicks: number, ringBytes = IDLE_DRAIN_RING_BYTES): number {
  const maxMs = Math.floor(IDLE_DRAIN_MAX_MS * Math.min(1, ringBytes / IDLE_DRAIN_RING_BYTES));
  if (emptyTicks < IDLE_DRAIN_AFTER_TICKS || drainMs >= maxMs) return drainMs;
  const doublings = Math.min(10, emptyTicks - IDLE_DRAIN_AFTER_TICKS + 1);
  return Math.min(maxMs, drainMs * 2 ** doublings);
}

/** Everything prepared but not yet running; `start` begins tracing. */
export class TraceSession implements Disposable {
  readonly #links = new LinkSet();
  readonly #objects: LoadedObject[] = [];
  #ring: RingBufferReader | undefined;
  #propagator: Propagator | undefined;
  #disposed = false;
  uprobeCount = 0;
  /**
   * How the uprobes were attached: one uprobe_multi link per program (kernel 6.6+; detaching
   * costs one kernel synchronisation per link) or one perf-event link per offset (older kernels;
   * one synchronisation per uprobe). Chosen before load, since it fixes how programs are loaded.
   */
  attachMode: "uprobe_multi" | "perf" = "perf";

  /** The target's Go version and modules: all a running session needs of the executable. */
  readonly goVersion: string;
  readonly modules: { path: string; version: string }[];
  /** Protocols the binary links that no probe traces (named in the start-up line). */
  readonly untraced: UntracedProtocol[];

  private constructor(
    readonly target: AttachTarget,
    analysis: BinaryAnalysis,
    readonly plans: ProbePlan[],
    readonly opts: TraceOptions,
  ) {
    // Deliberately not keeping `analysis`: it holds the executable's bytes (tens of MB for a
    // real service), which must not stay resident for the whole session.
    this.goVersion = analysis.goVersion;
    this.modules = analysis.buildInfo.deps.map((d) => ({ path: d.path, version: d.replace?.version || d.version }));
    this.untraced = untracedProtocols(analysis);
  }

  /**
   * Sessions of one beetrace (attach --pid A --pid B, --exe) prepare one after another. A
   * prepare awaits while its first object loads on a native thread, and another session must
   * not use libbpf then (its messages are suspended process-wide: BpfObject.startLoad) nor
   * configure its objects before this one has made the maps they share (ProcessMaps).
   */
  static #preparing: Promise<unknown> = Promise.resolve();

  /** Analyze, plan, load and attach. Throws nothing_attached if no probe could run. */
  static async prepare(target: AttachTarget, opts: TraceOptions): Promise<TraceSession> {
    const previous = TraceSession.#preparing;
    const mine = previous.then(() => TraceSession.#prepareNow(target, opts));
    TraceSession.#preparing = mine.catch(() => undefined);
    return mine;
  }

  static async #prepareNow(target: AttachTarget, opts: TraceOptions): Promise<TraceSession> {
    stage("prepare");
    // The x86 decoder keeps compiling on another thread: planning does not decode (below).
    const analysis = await openTarget(target.readPath, `${target.process.exePath} (pid ${target.process.pid})`, { waitForDecoder: false });
    // Start-up's memory back as soon as it is done with (trace/footprint.ts).
    trimStartup("analysed");
    stage("trimmed (analysed)");
    libbpf();
    // What the kernel can do (cached for #loadAndAttach).
    uprobeMultiSupport();
    attachCookieSupport();
    stage("libbpf loaded, kernel features probed");
    // Without decoding: what the BPF objects need (programs, consts) does not depend on the entry
    // sites and RETs, only the attach does; they are decoded while the objects load.
    const plans = planProbes(analysis, PROBES, {
      snapshot: embeddedSnapshot(),
      file: opts.offsetsFile ? loadOffsetsFile(opts.offsetsFile) : undefined,
      allowNearest: opts.allowNearest,
      liveJoins: opts.liveJoins === true,
      deferDecoding: true,
    });
    stage("planned");
    trimStartup("plans made");
    stage("trimmed (plans made)");
    const session = new TraceSession(target, analysis, plans, opts);
    // While the kernel verifies the first object's programs on another thread (#loadAndAttach):
    // the decoding planning left, and start-up's memory back.
    const whileLoading = async (): Promise<void> => {
      if (analysis.arch === "x86_64") await prepareIced(); // resolves once the decoder is ready; never rejects
      stage("decoder ready");
      for (const p of plans) placeDeferred(analysis, p);
      stage("sites placed");
      // Type descriptors and names the probes read (error causes, exception types) may sit in
      // pages the service never touched, which BPF cannot fault in: made resident before attach.
      const types = new GoTypeNames(analysis.elf).fileRange;
      if (types) {
        const t0 = performance.now();
        const n = prefaultFileRange(target.process.pid, target.readPath, types.offset, types.size);
        log.verbose(`made ${n} bytes of the target's type data resident in ${(performance.now() - t0).toFixed(1)} ms`);
      }
      stage("type data resident");
      reportPlans(plans);
      trimStartup("planned");
      stage("trimmed (planned)");
    };
    try {
      await session.#loadAndAttach(whileLoading);
    } catch (e) {
      session[Symbol.dispose]();
      throw e;
    }
    stage("prepared");
    if (session.attachedProbes().length === 0) {
      const reasons = plans.map((p) => `${p.probe.id}: ${p.reason ?? "not attached"}`);
      session[Symbol.dispose]();
      throw new TracerError("nothing_attached", `no probe could be attached to pid ${target.process.pid}`, {
        hint: plans.find((p) => p.fix && !p.notLinked)?.fix ?? plans.find((p) => p.fix)?.fix ?? "run 'beetrace inspect --pid N' to see what is missing",
        detail: reasons,
      });
    }
    return session;
  }

  attachedProbes(): ProbePlan[] {
    return this.plans.filter((p) => p.enabled);
  }

  /**
   * Open, configure, load and attach every object a plan needs. `whileLoading` runs once: while
   * the first object's programs are verified on a native thread (BpfObject.startLoad), or at
   * the end when no object was loaded. It may place what planning left undecoded (ProbePlan.pending),
   * whose programs are loaded already, and may disable a plan.
   */
  async #loadAndAttach(whileLoading: () => Promise<void>): Promise<void> {
    const multi = uprobeMultiSupport();
    stage("kernel features probed");
    this.attachMode = multi.supported ? "uprobe_multi" : "perf";
    log.verbose(
      multi.supported
        ? `attaching with uprobe_multi links (${multi.detail})`
        : `attaching with one perf-event uprobe per offset: no uprobe_multi links (${multi.detail})`,
    );
    const started = performance.now();
    const cookies = attachCookieSupport();
    let meanwhile: (() => Promise<void>) | undefined = whileLoading;
    const runMeanwhile = async (): Promise<void> => {
      const w = meanwhile;
      meanwhile = undefined;
      await w?.();
    };
    const byObject = new Map<string, ProbePlan[]>();
    for (const p of this.plans) {
      const list = byObject.get(p.probe.object.name) ?? [];
      list.push(p);
      byObject.set(p.probe.object.name, list);
    }
    const shared = new Map<string, number>();
    for (const [name, plans] of byObject) {
      if (!plans.some((p) => p.enabled)) continue;
      const spec = plans[0]!.probe.object;
      const bytes = new Uint8Array(readFileSync(bpfObjectPath(name)));
      // Where the kernel has attach cookies, one cookie-switched program replaces its variants
      // (idempotent: a variant's program is not itself a variant).
      const variantOf = (program: string) => (cookies ? spec.cookieVariants?.[program] : undefined);
      const programOf = (program: string): string => variantOf(program)?.program ?? program;
      const pointsToVariants = (): void => {
        for (const p of plans) if (p.enabled) p.points = p.points.map((pt) => ({ ...pt, ...variantOf(pt.program) }));
      };
      pointsToVariants();
      let { object, declared } = this.#openConfigured(name, bytes, spec, plans, programOf, shared);
      stage(`${name}: opened`);
      const loading = object.startLoad();
      let loaded = false;
      try {
        await runMeanwhile();
      } finally {
        loaded = loading.finish();
      }
      if (!loaded) {
        // libbpf's messages about the failure could not be shown from the loading thread: the
        // same object again, loaded on this thread, for an error that names the program.
        this.#objects.pop();
        object.close();
        ({ object, declared } = this.#openConfigured(name, bytes, spec, plans, programOf, shared));
        object.load();
      }
      stage(`${name}: loaded`);
      pointsToVariants(); // the RET sites placed meanwhile
      for (const m of declared) {
        if (shared.has(m)) continue;
        shared.set(m, object.map(m).fd);
        if (ProcessMaps.shares(m)) this.opts.processMaps?.adopt(m, object.map(m).fd);
      }
      this.#ring ??= new RingBufferReader(object.map(RING_MAP));
      for (const p of plans) if (p.enabled) this.#attachProbe(object, p);
      stage(`${name}: attached`);
    }
    await runMeanwhile(); // when there was nothing to load
    // --propagate: the socket-layer programs read the client probe's bee_conn_spans.
    if (this.opts.propagate) this.#propagator = Propagator.start({ tgid: this.target.process.pid, connSpansFd: shared.get("bee_conn_spans") });
    log.verbose(`attached ${this.uprobeCount} uprobes (${this.attachMode}) in ${(performance.now() - started).toFixed(0)} ms, including load`);
  }

  /**
   * BPF object `name` opened and configured for `plans`, not loaded: registered for disposal.
   * Its programs are those the plans' points use, and the return programs of RET sites still to
   * be placed (`programOf` maps a program to the one loaded for it); maps already made by an
   * earlier object (`shared`) are reused.
   */
  #openConfigured(
    name: string,
    bytes: Uint8Array,
    spec: BpfObjectSpec,
    plans: readonly ProbePlan[],
    programOf: (program: string) => string,
    shared: ReadonlyMap<string, number>,
  ): { object: BpfObject; declared: string[] } {
    const object = BpfObject.open(bytes, name);
    // Registered before configuration so a failure anywhere below still closes it.
    this.#objects.push({ spec, object });
    const variants = spec.cookieVariants ?? {};
    const programs = new Set([
      ...plans.flatMap((p) =>
        p.probe.uprobes.flatMap((u) => [u.entryProgram, u.returnProgram, ...(u.endMarkers ?? []).flatMap((m) => m.choices.map((c) => c.program)), ...(u.extraSites ?? []).map((x) => x.program)]),
      ),
      ...Object.values(variants).map((v) => v.program),
    ]);
    const enabled = plans.filter((p) => p.enabled);
    const used = new Set([...enabled.flatMap((p) => p.points.map((pt) => programOf(pt.program))), ...enabled.flatMap((p) => (p.pending?.returns ?? []).map((r) => programOf(r.program)))]);
    for (const prog of programs) {
      if (!used.has(prog)) {
        object.program(prog).setAutoload(false);
        continue;
      }
      // A program loaded this way can only be attached through uprobe_multi links.
      if (this.attachMode === "uprobe_multi") object.program(prog).setExpectedAttachType(BPF_TRACE_UPROBE_MULTI);
    }
    for (const p of enabled) for (const [k, v] of Object.entries(p.consts)) object.setConst(k, v);
    if (this.opts.sampler) for (const [k, v] of Object.entries(bpfSamplerConsts(this.opts.sampler))) if (object.hasConst(k)) object.setConst(k, v);
    if (this.opts.contextIn === false && object.hasConst(CONTEXT_IN_CONST)) object.setConst(CONTEXT_IN_CONST, 0);
    // The target's network namespace: loopback connections are joined only within one (conn_ctx.bpf.h).
    if (object.hasConst("bee_netns")) object.setConst("bee_netns", netnsInode(this.target.process.pid));
    // Connection entries cost a map write per client call and a peer parse per server request:
    // only when something reads them (conn_ctx.bpf.h).
    if (this.opts.liveJoins && object.hasConst("bee_conn_join_on")) object.setConst("bee_conn_join_on", 1);
    if ((this.opts.liveJoins || this.opts.propagate) && object.hasConst("bee_conn_publish_on")) object.setConst("bee_conn_publish_on", 1);
    // Slot tables (bpf/include/slots.bpf.h) narrowed for tests: every table's mask, a const
    // named "<table>_slot_mask" (the goroutine table is shared, so every object gets the same).
    if (this.opts.serverSlots !== undefined) {
      for (const c of object.sectionVars(".rodata").keys()) if (c.endsWith(SLOT_MASK_SUFFIX)) object.setConst(c, this.opts.serverSlots - 1);
    }
    if (this.opts.ringbufBytes !== undefined) object.setMapMaxEntries(RING_MAP, this.opts.ringbufBytes);
    if (this.opts.inflightEntries !== undefined) {
      for (const m of spec.callMaps) object.setMapMaxEntries(m, this.opts.inflightEntries);
    }
    const declared = SHARED_MAPS.filter((m) => object.hasMap(m));
    for (const m of declared) {
      const fd = shared.get(m) ?? (ProcessMaps.shares(m) ? this.opts.processMaps?.get(m) : undefined);
      if (fd !== undefined) object.reuseMap(m, fd);
    }
    return { object, declared };
  }

  /**
   * All-or-nothing per probe: an entry without its end probes would leave per-call state behind.
   * End programs are linked before entry programs so no entry fires before its end can clean up.
   */
  #attachProbe(object: BpfObject, plan: ProbePlan): void {
    const attached = new LinkSet();
    const pid = this.target.process.pid;
    const groups = new Map<string, AttachPoint[]>();
    for (const pt of [...plan.points].sort((a, b) => Number(a.role === "entry") - Number(b.role === "entry"))) {
      const g = groups.get(pt.program) ?? [];
      g.push(pt);
      groups.set(pt.program, g);
    }
    try {
      for (const [program, points] of groups) {
        const prog = object.program(program);
        if (this.attachMode === "uprobe_multi") {
          attached.add(
            attachUprobeMulti(prog, {
              binaryPath: this.target.binaryPath,
              fileOffsets: points.map((p) => p.fileOffset),
              cookies: points.map((p) => BigInt(p.cookie ?? 0)),
              pid,
            }),
          );
        } else {
          for (const p of points) attached.add(attachUprobe(prog, { binaryPath: this.target.binaryPath, fileOffset: p.fileOffset, pid, ...(p.cookie ? { cookie: BigInt(p.cookie) } : {}) }));
        }
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
    this.uprobeCount += plan.points.length;
    this.#links.add(attached);
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

  /** BPF-side loss counters, summed over objects (counter names are checked at build time). */
  bpfLosses(): { losses: LossCounters; other: Record<string, number> } {
    const losses = zeroLosses();
    const other: Record<string, number> = {};
    for (const o of this.#objects) {
      for (const c of o.spec.counters) {
        const v = Number(o.object.readBss(c.name));
        if (c.loss) losses[c.loss] += v;
        else other[c.name] = (other[c.name] ?? 0) + v;
      }
    }
    return { losses, other };
  }

  /** Calls that started and had not ended when tracing stopped (left in the per-call maps and
   * in the slot tables in front of them). */
  #unfinishedCalls(): number {
    let n = 0;
    for (const o of this.#objects) {
      for (const m of o.spec.callMaps) n += o.object.countEntries(m);
      for (const m of o.spec.callSlots) n += o.object.countOwnedSlots(m);
    }
    return n;
  }

  /** Trace until `signal` aborts or the target exits; always closes the capture file. */
  async run(signal: AbortSignal, openSink: (header: CaptureHeader) => SpanSink, onTick?: (s: { spans: number; losses: LossCounters }) => void): Promise<TraceSummary> {
    let sink: SpanSink | undefined;
    const clock = new BootClock(() => sampleClocks(), {
      onReanchor: (a) => {
        if (a.driftNs > 1_000_000n || a.driftNs < -1_000_000n) log.verbose(`clock re-anchored: wall clock moved ${a.driftNs} ns relative to boot time`);
        sink?.clock({ realtimeNs: a.realtimeNs, boottimeNs: a.boottimeNs, offsetNs: a.offsetNs });
      },
    });
    const env = readEnviron(this.target.process.pid);
    const resource = targetResource(this.target.process.pid, this.target.process.exePath, env, {
      goVersion: this.goVersion,
      config: { serviceName: this.opts.serviceName, resourceAttributes: this.opts.resourceAttributes ?? {} },
    });
    const serviceName = String(resource["service.name"]);
    const anchor = clock.anchor();
    const header: CaptureHeader = {
      type: "header",
      format: CAPTURE_FORMAT,
      tracer: { name: "beetrace", version: BEETRACE_VERSION },
      createdAt: anchor.realtimeNs,
      host: { name: hostname(), arch: osArch(), kernel: release() },
      target: {
        pid: this.target.process.pid,
        exe: this.target.process.exePath,
        goVersion: this.goVersion,
        modules: this.modules,
        serviceName,
      },
      clock: { realtimeNs: anchor.realtimeNs, boottimeNs: anchor.boottimeNs, offsetNs: anchor.offsetNs },
      probes: this.probeInfo(),
      resource,
      records: { ...builtinRecordSchema(), ...guessedOffsets(this.plans) },
    };
    const writer = openSink(header);
    sink = writer;
    const ring = this.#ring;
    if (!ring) throw new TracerError("internal", "trace session has no ring buffer after attach");
    const decoder = new SpanDecoder(header.records);
    const decodeCtx = { toEpoch: (ns: bigint) => clock.toEpochNs(ns) };
    writer.decodeRecordsWith?.(laterDecoders(decoder, clock));

    let spansOut = 0;
    let invalidRecords = 0;
    let unsampled = 0;
    let writeError: TracerError | undefined;
    const sample = this.opts.sample;
    const sampleRoots = this.opts.sampleRoots ?? true;
    let ringBytes: Uint8Array | undefined;
    /** The ring's DataView ringBytes was made for (compared by identity: `.buffer` is a native getter, per record it showed in profiles). */
    let ringView: DataView | undefined;
    // The record being handed to the sinks, and its span once a sink asked for it.
    let curView: DataView | undefined;
    let curOff = 0;
    let curLen = 0;
    let curSpan: Span | undefined | null = null;
    const spanOfCurrent = (): Span | undefined => {
      if (curSpan === null) curSpan = decoder.decodeAt(ringBytes!, curView!, curOff, curLen, decodeCtx);
      return curSpan;
    };
    const onRecord = (view: DataView, off: number, len: number) => {
      if (writeError) return;
      if (view !== ringView || ringBytes === undefined) {
        ringView = view;
        ringBytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      }
      const size = recordSize(ringBytes, off);
      // bpf_ringbuf_output rounds nothing: the record's own size must match what BPF submitted.
      if (size === 0 || size > len) {
        invalidRecords++;
        return;
      }
      if (sample) {
        const parent = remoteTraceFlags(ringBytes, off);
        if ((parent !== undefined || sampleRoots) && !sample(hexOf(ringBytes, off + TRACE_ID_OFFSET, 16), parent)) {
          unsampled++;
          return;
        }
      }
      curView = view;
      curOff = off;
      curLen = size;
      curSpan = null;
      try {
        writer.record(ringBytes, spanOfCurrent, off, size);
        spansOut++;
      } catch (e) {
        writeError = isTracerError(e) ? e : new TracerError("output_failed", String(e));
      }
    };
    /**
     * Drains everything the ring holds, then hands the tick's records to the outputs in one
     * flush. Bounded by one ring's worth per call so timers and signals keep running.
     */
    const drainOnce = (): number => {
      const n = ring.drain(onRecord, ring.size);
      if (n > 0) writer.flush();
      return n;
    };
    const totalLosses = (): LossCounters => this.bpfLosses().losses;

    let stopReason = "stopped";
    try {
      if (!this.opts.dryRun) {
        stopReason = await new Promise<string>((resolve) => {
          const drainMs = this.opts.drainIntervalMs ?? 20;
          const statsMs = this.opts.statsIntervalMs ?? 5000;
          let lastStats = Date.now();
          let timer: ReturnType<typeof setTimeout> | undefined;
          let done = false;
          /** Ticks in a row that found the ring empty. */
          let emptyTicks = 0;
          // Adaptive: a tick that found a busy ring comes back at once instead of after drainMs,
          // so the reader keeps up with bursts without a byte cap per tick.
          const tick = () => {
            timer = undefined;
            if (done) return;
            let busy = false;
            try {
              // Converting "now" first re-anchors the clock when due, so every output of this
              // tick (the capture's clock item, OTLP's decoded times) uses the same anchor.
              const now = clock.toEpochNs(bootTimeNs());
              const drained = drainOnce();
              busy = drained > 0 && ring.pendingBytes() > ring.size / 8;
              emptyTicks = drained > 0 ? 0 : emptyTicks + 1;
              if (writeError) return finish(`output failed: ${writeError.message}`);
              const limit = writer.limitReached();
              if (limit) return finish(limit);
              onTick?.({ spans: spansOut, losses: totalLosses() });
              if (Date.now() - lastStats >= statsMs) {
                lastStats = Date.now();
                writer.stats(now, totalLosses());
              }
            } catch (e) {
              writeError = isTracerError(e) ? e : new TracerError("internal", `drain failed: ${String(e)}`);
              return finish(`error: ${writeError.message}`);
            }
            timer = setTimeout(tick, busy ? 0 : idleDrainDelayMs(drainMs, emptyTicks, ring.size));
          };
          timer = setTimeout(tick, drainMs);
          const watch = new ProcessWatch(this.target.process);
          const alive = setInterval(() => {
            if (!watch.running()) finish("target exited");
          }, 200);
          const onAbort = () => finish(String(signal.reason ?? "stopped"));
          function finish(reason: string) {
            if (done) return;
            done = true;
            if (timer !== undefined) clearTimeout(timer);
            clearInterval(alive);
            watch[Symbol.dispose]();
            signal.removeEventListener("abort", onAbort);
            resolve(reason);
          }
          if (signal.aborted) finish(String(signal.reason ?? "stopped"));
          else signal.addEventListener("abort", onAbort);
        });
      }
      // Final drain: everything the kernel already wrote reaches the outputs.
      for (let i = 0; i < 1000 && drainOnce() > 0; i++);
      const losses = totalLosses();
      losses.incomplete = this.#unfinishedCalls();
      const at = clock.toEpochNs(sampleClocks().boottimeNs);
      if (writeError) {
        writer.abandon();
        throw writeError;
      }
      const outputs = await writer.close(stopReason, at, losses);
      const bpfUnsampled = this.#objects.reduce((n, o) => n + (o.object.hasCounter("unsampled") ? Number(o.object.readBss("unsampled")) : 0), 0);
      if (unsampled + bpfUnsampled > 0) log.verbose(`${unsampled + bpfUnsampled} spans were not kept (OTEL_TRACES_SAMPLER), ${bpfUnsampled} of them dropped in BPF`);
      invalidRecords += decoder.invalid;
      if (invalidRecords > 0) log.warn(`BUG: ${invalidRecords} ring-buffer records could not be decoded${decoder.firstInvalid ? ` (${decoder.firstInvalid})` : ""}; please report with -v output`);
      return {
        spans: spansOut,
        losses,
        probesAttached: this.attachedProbes().map((p) => p.probe.id),
        probesDisabled: this.plans.filter((p) => !p.enabled && !p.notLinked).map((p) => ({ id: p.probe.id, reason: p.reason ?? "" })),
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
      this.#propagator?.[Symbol.dispose]();
    } catch (e) {
      first = e;
    }
    try {
      this.#links[Symbol.dispose]();
    } catch (e) {
      first ??= e;
    }
    try {
      this.#ring?.[Symbol.dispose]();
    } catch (e) {
      first ??= e;
    }
    for (const o of this.#objects.reverse()) {
      try {
        o.object[Symbol.dispose]();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}
