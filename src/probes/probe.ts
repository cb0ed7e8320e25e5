/**
 * @module probes/probe — the declarative probe manifest: what a probe hooks, which struct
 * fields it needs, how its BPF consts are set, and how its span records become spans.
 *
 * Shared code (planner, loader, decoder, exporters, `inspect`) only reads these properties; it
 * never switches on a probe's id. Several probes may share one BPF object (net/http server and
 * client do); the object's own properties (maps, counters) are described once in a
 * BpfObjectSpec they both point to. A probe lives in one folder: bpf/<lib>.bpf.c (+
 * bpf/shared/<lib>.h for its records), src/probes/<lib>/ (manifest, decoder, the layouts
 * generated from the object's BTF) and its tests (docs/adding-a-probe.md).
 */
import type { Span, LossCounters } from "../spans/model.ts";
import type { RecordReader } from "./record.ts";
import type { BuildSpan } from "./common/span.ts";
import { compareVersions, parseGoVersion } from "../offsets/version.ts";

/** A Go struct field a probe reads, and the `volatile const` that receives its offset. */
export interface FieldDecl {
  /** rodata variable in the BPF object, e.g. "req_method_off" */
  const: string;
  /** "<import path>.<Type>.<field>", e.g. "net/http.Request.Method" (what offsets.json keys on) */
  field: string;
  /** Without it the probe cannot run (false: the probe degrades, see `flags`). */
  required: boolean;
  /** First Go (or module) version that has the field, "1.23"; absent = always there. */
  goMin?: string;
  /** Last version that has the field, "1.22"; absent = still there. */
  goMax?: string;
  /** Why the probe needs it (shown by `inspect`). */
  why: string;
}

/**
 * A function whose entry marks the end of the probed call, on the same goroutine. Its entry
 * site is usually an instruction the kernel emulates (~1 µs a hit) where a RET is
 * single-stepped (~12 µs): see docs/probe-placement.md.
 */
export interface EndMarkerDecl {
  /**
   * Ways to place this marker, best first: the first whose function resolves (any of its names;
   * Go versions renamed or moved it) and whose `fields` all have known offsets is used.
   */
  choices: { symbols: string[]; program: string; fields?: string[] }[];
  /**
   * When the marker must be placed for the markers to be used at all (else the RET sites are):
   * "always"; only when one of these functions is linked (e.g. the HTTP/2 server); or
   * "if-linked": optional, since without it linked the path it ends cannot run either.
   */
  neededIf: "always" | "if-linked" | { linked: string[] };
  why: string;
  /**
   * Not an end but a site that serves live joins between traced processes only (it records a
   * call under its connection for another process's server probe): placed only when the
   * session is one of several of one beetrace (PlanOptions.liveJoins), else it would cost a hit
   * per call for nothing.
   */
  onlyForLiveJoins?: boolean;
}

/**
 * A function the probed call runs on the same goroutine, between its entry and its end, where
 * the BPF program reads something the entry cannot see yet (e.g. the connection the net/http
 * client picks). Optional by nature: when no symbol resolves or a field offset is unknown, it is
 * not placed, the probe runs without it (its spans lack what it reads) and the plan warns once.
 */
export interface ExtraSiteDecl {
  /** Names of the function, best first (any that resolves is used; Go versions rename functions) */
  symbols: string[];
  /** BPF program attached at the function's entry site */
  program: string;
  /** Fields (declared in the manifest's `fields`) whose offsets must be known to place it */
  fields?: string[];
  /** What the spans lack without it (for the warning) */
  why: string;
  /** Not linked is normal (another site covers those calls): skipped without a warning. */
  optional?: boolean;
}

export interface UprobeDecl {
  /** Go symbol as in the symbol table / pclntab: "net/http.(*Transport).roundTrip" */
  symbol: string;
  /** BPF program attached at the function's entry site (first emulated prologue instruction) */
  entryProgram: string;
  /** BPF program attached (as a plain uprobe) at every RET, when the end markers cannot be used */
  returnProgram: string;
  /** End markers: used instead of the RET sites when every needed one resolves. */
  endMarkers?: EndMarkerDecl[];
  /** Mid-call sites: one extra hit per call each (ExtraSiteDecl). */
  extraSites?: ExtraSiteDecl[];
  /**
   * No end of its own: only the entry program is attached, neither markers nor RETs (the calls
   * it sees are ended by another of the probe's uprobes, or it ends theirs: a stream's finish).
   */
  entryOnly?: boolean;
  /**
   * The linker may leave this function out (an exported method nothing in the program calls,
   * e.g. database/sql's (*Tx).PrepareContext): when it is not in the function table it is
   * skipped, as long as another function of the probe is there.
   */
  optional?: boolean;
  /**
   * Placed only when one of these functions is linked too (with `optional`: skipped otherwise),
   * for an entry that sees the calls of interest only in programs that link them.
   */
  onlyIfLinked?: string[];
}

/** Maps a .bss counter of a BPF object to the loss it counts. */
export interface CounterDecl {
  /** .bss variable name */
  name: string;
  /** Which LossCounters field it adds to; undefined = an extra diagnostic counter. */
  loss?: keyof LossCounters;
  what: string;
}

/** One compiled BPF object (bpf/<name>.bpf.c → <name>.bpf.o) and its shared parts. */
export interface BpfObjectSpec {
  /** "nethttp" → bpf/nethttp.bpf.c */
  name: string;
  /** Per-call state maps (sized with --inflight before load; what is left in them at the end
   * are calls that never ended). */
  callMaps: string[];
  /** The slot tables in front of them (bpf/include/slots.bpf.h): the calls a goroutine still
   * owns a slot for at the end never ended either. */
  callSlots: string[];
  counters: CounterDecl[];
  /**
   * Programs that one program reading its attach cookie stands in for, where the kernel has
   * cookies (Linux 5.15+): loading one program instead of several costs one verification
   * instead of one per variant. The variants stay for older kernels.
   */
  cookieVariants?: Readonly<Record<string, { program: string; cookie: number }>>;
}

/** Everything `flags` may base its decisions on. */
export interface FlagContext {
  /** The target's Go version as in build info: "go1.22.3" */
  goVersion: string;
  /** Offset resolved for a declared field: number, null = the field does not exist in this
   * version, undefined = unknown. */
  offset(field: string): number | null | undefined;
  /** The name offset (internal/abi.Type.Str) of a type as %T prints it, undefined when the binary has no such type (src/binary/go-typenames.ts). */
  typeNameOff?(name: string): number | undefined;
  /** Entry address (ELF vaddr, from the function table) of a function, undefined when not linked. */
  functionAddress?(name: string): number | undefined;
}

/** Converts a CLOCK_BOOTTIME nanosecond timestamp to nanoseconds since the Unix epoch. */
export type ToEpoch = (monoNs: bigint) => bigint;

/** What a record decoder gets besides the record. */
export interface DecodeContext {
  toEpoch: ToEpoch;
  /**
   * The caller takes the span's ids from the record's bytes itself (the OTLP encoder, which
   * writes ids as bytes): no hex strings are made — traceId and spanId are "", and parentSpanId
   * is "" when the record has a parent (undefined otherwise, as always).
   */
  idsAsBytes?: boolean;
  /**
   * toEpoch on 32-bit halves, with no BigInt made (spans/clock.ts BootClock.toEpochWords): the
   * live OTLP path's builders use it when given.
   */
  toEpochWords?: (lo: number, hi: number, out: Uint32Array, at: number) => void;
}

export interface ProbeManifest {
  /** "nethttp.server" */
  id: string;
  /** Instrumented library (module or std package), for messages: "net/http" */
  library: string;
  object: BpfObjectSpec;
  uprobes: UprobeDecl[];
  /** Struct fields read. Declare each field once (shared declarations are imported). */
  fields: FieldDecl[];
  /** The record this probe emits: tag (first u16) and C struct name in the object's BTF. */
  record: { type: number; struct: string };
  /**
   * Feature-switch consts for a target (offset consts are set from `fields` by the loader).
   * Returns const name → value; a switch turns itself off when an optional field is unknown.
   */
  flags(ctx: FlagContext): Record<string, number | bigint>;
  /** Builds the span from one record (already checked against its layout). Never throws. */
  decode(r: RecordReader, ctx: DecodeContext): Span;
  /**
   * The same decoder written against SpanBuilder (probes/common/span.ts), where the probe has one:
   * the live OTLP exporter then writes protobuf straight from the record. `decode` is then
   * decodeWith(build), so both outputs come from one decoder.
   */
  build?: BuildSpan;
}

/** true when goVersion ("go1.22.3", "1.22") is at least `min` ("1.22"); false if unparsable. */
export function goAtLeast(goVersion: string, min: string): boolean {
  const v = parseGoVersion(goVersion.startsWith("go") ? goVersion : "go" + goVersion);
  const m = parseGoVersion("go" + min);
  if (v === undefined || m === undefined) return false;
  // "go1.23rc1" counts as 1.23: release candidates already carry the new struct fields.
  return compareVersions({ ...v, pre: [] }, m) >= 0;
}
