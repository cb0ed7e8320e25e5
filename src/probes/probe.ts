/**
 * @module probes/probe — the declarative probe manifest: what a probe hooks, which struct
 * fields and symbols it needs, how its BPF consts are set, and how its records become spans.
 *
 * Shared code (loader, offsets tracker, assembler, exporters, `inspect`) only reads these
 * properties; it never switches on a probe's id. Several probes may share one BPF object
 * (net/http server and client do, so the client can see the server's maps); the object's
 * own properties (maps, counters) are described once in a BpfObjectSpec they both point to.
 */
import type { Span, SpanEnd, SpanStart, LossCounters } from "../spans/model.ts";
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

/** A symbol whose run-time address (load bias applied) goes into a u64 const. */
export interface AddressDecl {
  const: string;
  /** ELF symbol name, e.g. "go:itab.*net/http.response,net/http.ResponseWriter" */
  symbol: string;
  required: boolean;
  why: string;
}

export interface UprobeDecl {
  /** Go symbol as in the symbol table / pclntab: "net/http.(*Transport).roundTrip" */
  symbol: string;
  /** BPF program attached at the function entry */
  entryProgram: string;
  /** BPF program attached (as a plain uprobe) at every RET instruction of the function */
  returnProgram: string;
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
  /** The ring buffer map every record goes to (sized with --ringbuf-size before load). */
  ringbufMap: string;
  /** In-flight state maps, sized together (max_entries) before load. */
  inflightMaps: string[];
  counters: CounterDecl[];
}

/** Everything `flags` may base its decisions on. */
export interface FlagContext {
  /** The target's Go version as in build info: "go1.22.3" */
  goVersion: string;
  /** Offset resolved for a declared field: number, null = the field does not exist in this
   * version, undefined = unknown. */
  offset(field: string): number | null | undefined;
  /** Run-time address resolved for a declared symbol (AddressDecl), undefined = unknown. */
  address(symbol: string): bigint | undefined;
}

/** A decoded ring-buffer record. */
export type Decoded =
  | { kind: "start"; start: SpanStart }
  | { kind: "end"; end: SpanEnd }
  /** The bytes cannot be decoded (too short, unknown tag): a bug of ours, to be counted. */
  | { kind: "invalid"; reason: string };

/** Converts a CLOCK_BOOTTIME nanosecond timestamp to nanoseconds since the Unix epoch. */
export type ToEpoch = (monoNs: bigint) => bigint;

export interface ProbeManifest {
  /** "nethttp.server"; also SpanStart.probe */
  id: string;
  /** Instrumented library (module or std package), for messages: "net/http" */
  library: string;
  object: BpfObjectSpec;
  uprobes: UprobeDecl[];
  /** Struct fields read. Declare each field once (shared declarations are imported). */
  fields: FieldDecl[];
  /** Symbol addresses written into consts. */
  addresses: AddressDecl[];
  /** Record tags (`type`, first u32 of every record) this probe decodes. */
  recordTypes: number[];
  /**
   * Feature-switch consts for a target (offset consts are set from `fields` by the loader).
   * Returns const name → value; a switch turns itself off when an optional field is unknown.
   */
  flags(ctx: FlagContext): Record<string, number | bigint>;
  /** Decode one record whose tag is in recordTypes. Never throws. */
  decode(view: DataView, offset: number, length: number): Decoded;
  /** Build the finished span from a start and an end of this probe. */
  finish(start: SpanStart, end: SpanEnd, toEpoch: ToEpoch): Span;
}

/** true when goVersion ("go1.22.3", "1.22") is at least `min` ("1.22"); false if unparsable. */
export function goAtLeast(goVersion: string, min: string): boolean {
  const v = parseGoVersion(goVersion.startsWith("go") ? goVersion : "go" + goVersion);
  const m = parseGoVersion("go" + min);
  if (v === undefined || m === undefined) return false;
  // "go1.23rc1" counts as 1.23: release candidates already carry the new struct fields.
  return compareVersions({ ...v, pre: [] }, m) >= 0;
}
