/**
 * @module viewer/model — turns the spans of one or more capture files into the compact data the
 * HTML viewer embeds: columns (typed arrays, one value per span or per trace), one string table
 * for every name, attribute key and value, and a small JSON part (files, services, clocks, the
 * pre-computed summary, where each column is).
 *
 * Spans are stored trace by trace (traces by start time), each trace in tree order (depth-first,
 * children by start time, with a depth per span), so the page shows a trace's waterfall by
 * reading a contiguous range and never builds a tree itself. Per-trace figures (start,
 * duration, span and error counts, root name and service) are computed here, so the trace list
 * of a million-span capture needs no pass over the spans in the browser.
 *
 * Memory while building: a few typed arrays per span plus the string table; a span's Span
 * object is dropped as soon as it is read.
 */
import type { CaptureHeader, ClockFields } from "../capture/format.ts";
import type { Span, SpanKind } from "../spans/model.ts";
import type { SpanFilter } from "../cli/filters.ts";
import { serviceOf } from "../cli/filters.ts";
import type { CaptureSummary } from "./read.ts";
import { type Summary, SummaryBuilder } from "./summary.ts";

export const KINDS: readonly SpanKind[] = ["internal", "server", "client", "producer", "consumer"];
const KIND_INDEX = new Map(KINDS.map((k, i) => [k, i]));
/** Span attribute naming the struct fields whose offsets were guessed (--unknown-versions=nearest). */
export const GUESSED_ATTR = "beetrace.guessed_offsets";
/** Column value for "no clock anchor: the span's epoch times were stored as such" */
const STORED_CLOCK = 0xffff_ffff;

type Growable = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
type Ctor<T extends Growable> = { new (n: number): T; readonly BYTES_PER_ELEMENT: number };

class Column<T extends Growable> {
  data: T;
  length = 0;
  constructor(private readonly ctor: Ctor<T>) {
    this.data = new ctor(1024);
  }
  push(v: number): void {
    if (this.length === this.data.length) this.#grow(this.length + 1);
    this.data[this.length++] = v;
  }
  pushBytes(hex: string): void {
    // Ids are validated lowercase hex (reader and decoders), two digits per byte.
    const n = hex.length >> 1;
    if (this.length + n > this.data.length) this.#grow(this.length + n);
    for (let i = 0; i < n; i++) this.data[this.length++] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  #grow(min: number): void {
    const next = new this.ctor(Math.max(min, this.data.length * 2));
    next.set(this.data as never);
    this.data = next;
  }
  view(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

/** Where one column sits in the blob. */
export interface SectionInfo {
  name: string;
  type: "u8" | "u16" | "u32" | "i32" | "f64";
  offset: number;
  length: number;
}

export interface ViewerFileInfo {
  file: string;
  service: number;
  host: string;
  exe: string;
  pid: number;
  goVersion: string;
  format: number;
  tracer: string;
  createdAt: string;
  spans: number;
  truncated: boolean;
  trailingBytes: number;
  invalid: number;
  damagedBytes: number;
  skipped: number;
  end: string | null;
  losses: Record<string, number>;
  resource: Record<string, string | number | boolean>;
  /** `guessed`: offsets of the probe that were guessed (--unknown-versions=nearest) */
  probes: { id: string; attached: boolean; reason?: string; guessed: { field: string; offset?: number }[] }[];
}

export interface ViewerClock {
  file: number;
  /** 0: the header's anchor; n ≥ 1: the n-th clock item */
  index: number;
  realtimeNs: string;
  boottimeNs: string;
  offsetNs: string;
}

export interface ViewerMeta {
  version: 1;
  title: string;
  /** Epoch ns of time 0 of the span columns (the earliest span start) */
  t0: string;
  spans: number;
  traces: number;
  /** Spans read from the files before filtering */
  spansRead: number;
  filter: string | null;
  files: ViewerFileInfo[];
  services: string[];
  kinds: readonly SpanKind[];
  clocks: ViewerClock[];
  strings: number;
  summary: ReturnType<typeof summaryForPage>;
  sections: SectionInfo[];
}

export interface ViewerData {
  meta: ViewerMeta;
  /** The columns, concatenated at 8-byte aligned offsets (meta.sections says where) */
  blob: Uint8Array;
}

/** Collects spans of several files, then lays them out for the page (build()). */
export class ViewerModelBuilder {
  readonly #strings = new Map<string, number>([["", 0]]);
  readonly #stringList: string[] = [""];
  readonly #traceIndex = new Map<string, number>();
  readonly #traceIds: string[] = [];
  readonly #traceMatched: number[] = [];
  readonly #services = new Map<string, number>();
  readonly #files: ViewerFileInfo[] = [];
  readonly #clocks: ViewerClock[] = [];
  /** Per file: index of its first clock in #clocks */
  #fileClockBase = 0;
  #base: bigint | undefined;
  readonly #summary = new SummaryBuilder();
  #spansRead = 0;

  // per span, in read order
  readonly #trace = new Column(Uint32Array);
  readonly #start = new Column(Float64Array);
  readonly #dur = new Column(Float64Array);
  readonly #name = new Column(Uint32Array);
  readonly #kind = new Column(Uint8Array);
  readonly #status = new Column(Uint8Array);
  readonly #statusMsg = new Column(Uint32Array);
  readonly #file = new Column(Uint16Array);
  readonly #clock = new Column(Uint32Array);
  readonly #scope = new Column(Uint32Array);
  readonly #flags = new Column(Uint8Array);
  readonly #extra = new Column(Uint32Array);
  /**
   * Attributes: each distinct list of (key, value) string indices is stored once (a "set");
   * a span holds its set's index. Spans of one endpoint differ mostly in a few values (peer
   * port, path), so a million spans make far fewer sets.
   */
  readonly #attrSet = new Column(Uint32Array);
  readonly #setIndex = new Map<string, number>();
  readonly #setOff = new Column(Uint32Array);
  readonly #setPairs = new Column(Uint32Array);
  readonly #pairs: number[] = [];
  /** Span and parent ids as two u32 halves each (parent 0:0 = none: ids are never all zeros) */
  readonly #idHi = new Column(Uint32Array);
  readonly #idLo = new Column(Uint32Array);
  readonly #parHi = new Column(Uint32Array);
  readonly #parLo = new Column(Uint32Array);
  #service = "";

  constructor(private readonly filter: SpanFilter | undefined) {}

  #str(s: string): number {
    let i = this.#strings.get(s);
    if (i === undefined) {
      i = this.#stringList.length;
      this.#strings.set(s, i);
      this.#stringList.push(s);
    }
    return i;
  }

  /** The header of the file being read (its first span or endFile registers it). */
  #current: CaptureHeader | undefined;

  #begin(header: CaptureHeader): void {
    this.#current = header;
    const svc = serviceOf(header);
    this.#service = svc;
    if (!this.#services.has(svc)) this.#services.set(svc, this.#services.size);
    this.#fileClockBase = this.#clocks.length;
  }

  /** A span of the current file; `clock` as readSpans hands it (-1: stored epoch times). */
  add(span: Span, clock: number, header: CaptureHeader): void {
    if (this.#current !== header) this.#begin(header);
    this.#spansRead++;
    const fileIdx = this.#files.length;
    const service = this.#service;
    const matched = this.filter === undefined || this.filter.matches(span, service);
    if (matched) this.#summary.add(span, service);

    let t = this.#traceIndex.get(span.traceId);
    if (t === undefined) {
      t = this.#traceIds.length;
      this.#traceIndex.set(span.traceId, t);
      this.#traceIds.push(span.traceId);
      this.#traceMatched.push(0);
    }
    if (matched) this.#traceMatched[t] = 1;
    this.#trace.push(t);
    this.#base ??= span.startTimeUnixNano;
    this.#start.push(Number(span.startTimeUnixNano - this.#base));
    this.#dur.push(Number(span.endTimeUnixNano - span.startTimeUnixNano));
    this.#name.push(this.#str(span.name));
    this.#kind.push(KIND_INDEX.get(span.kind) ?? 0);
    this.#status.push(span.status.code === "error" ? 2 : span.status.code === "ok" ? 1 : 0);
    this.#statusMsg.push(this.#str(span.status.message ?? ""));
    this.#file.push(fileIdx);
    this.#clock.push(clock < 0 ? STORED_CLOCK : this.#fileClockBase + clock);
    this.#scope.push(this.#str(`${span.scope.name} ${span.scope.version}`.trim()));
    let flags = 0;
    const attrs = span.attributes;
    const pairs = this.#pairs;
    pairs.length = 0;
    for (const k in attrs) {
      pairs.push(this.#str(k), this.#str(String(attrs[k])));
      if (k === GUESSED_ATTR) flags |= 1;
    }
    const setKey = pairs.join(",");
    let set = this.#setIndex.get(setKey);
    if (set === undefined) {
      set = this.#setOff.length;
      this.#setIndex.set(setKey, set);
      this.#setOff.push(this.#setPairs.length);
      for (const x of pairs) this.#setPairs.push(x);
    }
    this.#attrSet.push(set);
    this.#flags.push(flags);
    // Events (e.g. a panic's exception event) and links (not in the span model yet), as JSON.
    const more = span as Span & { links?: unknown };
    const extra = more.events !== undefined || more.links !== undefined ? JSON.stringify({ events: more.events ?? [], links: more.links ?? [] }, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) : "";
    this.#extra.push(this.#str(extra));
    // Ids are validated lowercase hex (reader and decoders): 16 digits, two halves.
    const id = span.spanId;
    this.#idHi.push(parseInt(id.slice(0, 8), 16));
    this.#idLo.push(parseInt(id.slice(8, 16), 16));
    const p = span.parentSpanId;
    const hasParent = p !== undefined && p !== id;
    this.#parHi.push(hasParent ? parseInt(p.slice(0, 8), 16) : 0);
    this.#parLo.push(hasParent ? parseInt(p.slice(8, 16), 16) : 0);
  }

  /** Call after the file's spans, with what readSpans returned. */
  endFile(c: CaptureSummary): void {
    const h = c.header;
    if (this.#current !== h) this.#begin(h);
    this.#current = undefined;
    const svc = this.#services.get(serviceOf(h))!;
    const fileIdx = this.#files.length;
    c.clocks.forEach((k: ClockFields, i) => this.#clocks.push({ file: fileIdx, index: i, realtimeNs: k.realtimeNs.toString(), boottimeNs: k.boottimeNs.toString(), offsetNs: k.offsetNs.toString() }));
    const resource: Record<string, string | number | boolean> = {
      "service.name": serviceOf(h),
      "host.name": h.host.name,
      "host.arch": h.host.arch,
      "os.type": "linux",
      "os.version": h.host.kernel,
      "process.pid": h.target.pid,
      "process.executable.path": h.target.exe,
      "process.runtime.name": "go",
      "process.runtime.version": h.target.goVersion,
      ...(h.resource ?? {}),
    };
    this.#files.push({
      file: c.file,
      service: svc,
      host: h.host.name,
      exe: h.target.exe,
      pid: h.target.pid,
      goVersion: h.target.goVersion,
      format: h.format,
      tracer: `${h.tracer.name} ${h.tracer.version}`,
      createdAt: h.createdAt.toString(),
      spans: c.spans,
      truncated: c.truncated,
      trailingBytes: c.trailingBytes,
      invalid: c.invalid,
      damagedBytes: c.damagedBytes,
      skipped: c.skipped,
      end: c.end?.reason ?? null,
      losses: { ...c.losses },
      resource,
      probes: h.probes.map((p) => ({
        id: p.id,
        attached: p.attached,
        ...(p.reason !== undefined ? { reason: p.reason } : {}),
        guessed: guessedOf(p, h),
      })),
    });
  }

  build(title: string): ViewerData {
    const n = this.#trace.length;
    const traceOf = this.#trace.view();
    const start = this.#start.view();
    const dur = this.#dur.view();
    const nTraces = this.#traceIds.length;

    // Spans per trace (counting sort), selected traces only.
    const counts = new Uint32Array(nTraces + 1);
    for (let i = 0; i < n; i++) if (this.#traceMatched[traceOf[i]!]) counts[traceOf[i]! + 1]!++;
    for (let t = 0; t < nTraces; t++) counts[t + 1]! += counts[t]!;
    const bucketStart = counts.slice(0, nTraces);
    const byTrace = new Uint32Array(counts[nTraces]!);
    const fill = counts.slice(0, nTraces);
    for (let i = 0; i < n; i++) if (this.#traceMatched[traceOf[i]!]) byTrace[fill[traceOf[i]!]!++] = i;

    // Trace start (earliest span start) and order of the selected traces.
    const tMin = new Float64Array(nTraces).fill(Infinity);
    const tMax = new Float64Array(nTraces).fill(-Infinity);
    for (let i = 0; i < n; i++) {
      const t = traceOf[i]!;
      if (!this.#traceMatched[t]) continue;
      if (start[i]! < tMin[t]!) tMin[t] = start[i]!;
      const e = start[i]! + Math.max(0, dur[i]!);
      if (e > tMax[t]!) tMax[t] = e;
    }
    const traces: number[] = [];
    for (let t = 0; t < nTraces; t++) if (this.#traceMatched[t]) traces.push(t);
    traces.sort((a, b) => tMin[a]! - tMin[b]! || (this.#traceIds[a]! < this.#traceIds[b]! ? -1 : 1));
    const t0rel = traces.length > 0 ? tMin[traces[0]!]! : 0;
    const t0 = (this.#base ?? 0n) + BigInt(t0rel);

    // Tree order inside each trace.
    const total = byTrace.length;
    const order = new Uint32Array(total);
    const depth = new Uint16Array(total);
    const parentOut = new Int32Array(total).fill(-1);
    const newIndex = new Int32Array(n).fill(-1);
    const tFirst = new Uint32Array(traces.length);
    const tCount = new Uint32Array(traces.length);
    let pos = 0;
    const idHi = this.#idHi.view();
    const idLo = this.#idLo.view();
    const parHi = this.#parHi.view();
    const parLo = this.#parLo.view();
    /** Parent of span i (read order) within its trace, or -1; filled per trace below. */
    const parentOf = new Int32Array(n).fill(-1);
    traces.forEach((t, k) => {
      const members = Array.from(byTrace.subarray(bucketStart[t]!, bucketStart[t]! + (counts[t + 1]! - counts[t]!)));
      members.sort((a, b) => start[a]! - start[b]! || a - b);
      resolveParents(members, idHi, idLo, parHi, parLo, parentOf);
      const children = new Map<number, number[]>();
      const roots: number[] = [];
      for (const i of members) {
        const p = parentOf[i]!;
        if (p < 0) roots.push(i);
        else {
          const list = children.get(p);
          if (list === undefined) children.set(p, [i]);
          else list.push(i);
        }
      }
      tFirst[k] = pos;
      const seen = new Set<number>();
      // Iterative walk: depth is unbounded and parent links may cycle in an untrusted file.
      const walk = (root: number) => {
        const stack: [number, number][] = [[root, 0]];
        while (stack.length > 0) {
          const [i, d] = stack.pop()!;
          if (seen.has(i)) continue;
          seen.add(i);
          order[pos] = i;
          depth[pos] = Math.min(d, 0xffff);
          newIndex[i] = pos;
          pos++;
          const kids = children.get(i);
          if (kids) for (let c = kids.length - 1; c >= 0; c--) stack.push([kids[c]!, d + 1]);
        }
      };
      for (const r of roots) walk(r);
      // Spans in a parent cycle are unreachable from a root: shown flat at the end.
      for (const i of members) if (!seen.has(i)) walk(i);
      tCount[k] = pos - tFirst[k]!;
    });
    // A parent id that names no span of the set (the caller's span, in another service's capture).
    const parentMissing = new Uint32Array(total);
    const hex8 = (x: number) => x.toString(16).padStart(8, "0");
    for (let q = 0; q < total; q++) {
      const i = order[q]!;
      const p = parentOf[i]!;
      parentOut[q] = p < 0 ? -1 : newIndex[p]!;
      if (p < 0 && (parHi[i] !== 0 || parLo[i] !== 0)) parentMissing[q] = this.#str(hex8(parHi[i]!) + hex8(parLo[i]!));
    }

    // Span columns in the new order.
    const pick = <T extends Growable>(src: T, Ctor: Ctor<T>, width = 1): T => {
      const out = new Ctor(total * width);
      for (let q = 0; q < total; q++) for (let w = 0; w < width; w++) out[q * width + w] = src[order[q]! * width + w]!;
      return out;
    };
    const startCol = new Float64Array(total);
    for (let q = 0; q < total; q++) startCol[q] = start[order[q]!]! - t0rel;
    const setOff = new Uint32Array(this.#setOff.length + 1);
    setOff.set(this.#setOff.view());
    setOff[this.#setOff.length] = this.#setPairs.length;

    // Per-trace figures.
    const status = this.#status.view();
    const flagsIn = this.#flags.view();
    const fileIn = this.#file.view();
    const nameIn = this.#name.view();
    const tStart = new Float64Array(traces.length);
    const tDur = new Float64Array(traces.length);
    const tErr = new Uint32Array(traces.length);
    const tName = new Uint32Array(traces.length);
    const tSvc = new Uint16Array(traces.length);
    const tFlags = new Uint8Array(traces.length);
    const traceIds = new Column(Uint8Array);
    const fileService = this.#files.map((f) => f.service);
    traces.forEach((t, k) => {
      tStart[k] = tMin[t]! - t0rel;
      tDur[k] = tMax[t]! - tMin[t]!;
      const root = order[tFirst[k]!]!;
      tName[k] = nameIn[root]!;
      tSvc[k] = fileService[fileIn[root]!] ?? 0;
      let errs = 0;
      let fl = 0;
      for (let q = tFirst[k]!; q < tFirst[k]! + tCount[k]!; q++) {
        if (status[order[q]!] === 2) errs++;
        fl |= flagsIn[order[q]!]!;
      }
      tErr[k] = errs;
      tFlags[k] = fl;
      traceIds.pushBytes(this.#traceIds[t]!);
    });

    // Strings: offsets + UTF-8 bytes, decoded lazily by the page.
    const enc = new TextEncoder();
    const encoded = this.#stringList.map((s) => enc.encode(s));
    const strOff = new Uint32Array(encoded.length + 1);
    let sp = 0;
    encoded.forEach((b, i) => {
      strOff[i] = sp;
      sp += b.byteLength;
    });
    strOff[encoded.length] = sp;
    const strBytes = new Uint8Array(sp);
    sp = 0;
    for (const b of encoded) {
      strBytes.set(b, sp);
      sp += b.byteLength;
    }

    const columns: [string, Growable][] = [
      ["parent", parentOut],
      ["parentMissing", narrow(parentMissing)],
      ["depth", depth],
      ["start", startCol],
      ["dur", pick(dur, Float64Array)],
      ["name", narrow(pick(nameIn, Uint32Array))],
      ["kind", pick(this.#kind.view(), Uint8Array)],
      ["status", pick(status, Uint8Array)],
      ["statusMsg", narrow(pick(this.#statusMsg.view(), Uint32Array))],
      ["file", pick(fileIn, Uint16Array)],
      ["clock", pick(this.#clock.view(), Uint32Array)],
      ["scope", narrow(pick(this.#scope.view(), Uint32Array))],
      ["flags", pick(flagsIn, Uint8Array)],
      ["extra", narrow(pick(this.#extra.view(), Uint32Array))],
      ["attrSet", narrow(pick(this.#attrSet.view(), Uint32Array))],
      ["setOff", setOff],
      ["setPairs", this.#setPairs.view()],
      ["spanIds", spanIds(order, idHi, idLo)],
      ["tFirst", tFirst],
      ["tCount", tCount],
      ["tStart", tStart],
      ["tDur", tDur],
      ["tErr", tErr],
      ["tName", narrow(tName)],
      ["tSvc", tSvc],
      ["tFlags", tFlags],
      ["traceIds", traceIds.view()],
      ["strOff", strOff],
      ["strBytes", strBytes],
    ];
    const sections: SectionInfo[] = [];
    let size = 0;
    for (const [name, arr] of columns) {
      size = (size + 7) & ~7;
      sections.push({ name, type: typeName(arr), offset: size, length: arr.length });
      size += arr.byteLength;
    }
    const blob = new Uint8Array(size);
    columns.forEach(([, arr], i) => blob.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), sections[i]!.offset));

    const services = [...this.#services.keys()];
    return {
      meta: {
        version: 1,
        title,
        t0: t0.toString(),
        spans: total,
        traces: traces.length,
        spansRead: this.#spansRead,
        filter: this.filter?.description ?? null,
        files: this.#files,
        services,
        kinds: KINDS,
        clocks: this.#clocks,
        strings: this.#stringList.length,
        summary: summaryForPage(this.#summary.summarize()),
        sections,
      },
      blob,
    };
  }
}

/**
 * parentOf[i] for the spans of one trace: the member whose span id is i's parent id. Small
 * traces compare ids directly; larger ones index them (a repeated span id keeps its first span).
 */
function resolveParents(members: number[], hi: Uint32Array, lo: Uint32Array, pHi: Uint32Array, pLo: Uint32Array, parentOf: Int32Array): void {
  if (members.length <= 32) {
    for (const i of members) {
      if (pHi[i] === 0 && pLo[i] === 0) continue;
      for (const j of members) {
        if (j !== i && hi[j] === pHi[i] && lo[j] === pLo[i]) {
          parentOf[i] = j;
          break;
        }
      }
    }
    return;
  }
  const byId = new Map<string, number>();
  for (const j of members) {
    const key = `${hi[j]}:${lo[j]}`;
    if (!byId.has(key)) byId.set(key, j);
  }
  for (const i of members) {
    if (pHi[i] === 0 && pLo[i] === 0) continue;
    const j = byId.get(`${pHi[i]}:${pLo[i]}`);
    if (j !== undefined && j !== i) parentOf[i] = j;
  }
}

/** Span ids as 8 big-endian bytes each, in output order. */
function spanIds(order: Uint32Array, hi: Uint32Array, lo: Uint32Array): Uint8Array {
  const out = new Uint8Array(order.length * 8);
  const v = new DataView(out.buffer);
  for (let q = 0; q < order.length; q++) {
    v.setUint32(q * 8, hi[order[q]!]!, false);
    v.setUint32(q * 8 + 4, lo[order[q]!]!, false);
  }
  return out;
}

/** A probe's guessed offsets: from its offset list, and the record layouts' list (newer files). */
function guessedOf(p: CaptureHeader["probes"][number], h: CaptureHeader): { field: string; offset?: number }[] {
  const out: { field: string; offset?: number }[] = p.offsets.filter((o) => o.source === "guess").map((o) => ({ field: o.field, offset: o.offset }));
  for (const field of h.records?.guessedOffsets?.[p.id] ?? []) if (!out.some((o) => o.field === field)) out.push({ field });
  return out;
}

/** The narrowest unsigned type that holds every value: less for the page to inflate. */
function narrow(a: Uint32Array): Uint8Array | Uint16Array | Uint32Array {
  let max = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > max) max = a[i]!;
  return max < 0x100 ? Uint8Array.from(a) : max < 0x10000 ? Uint16Array.from(a) : a;
}

function typeName(a: Growable): SectionInfo["type"] {
  if (a instanceof Uint8Array) return "u8";
  if (a instanceof Uint16Array) return "u16";
  if (a instanceof Uint32Array) return "u32";
  if (a instanceof Int32Array) return "i32";
  return "f64";
}

/** The summary with its bigints as strings (the page's JSON). */
export function summaryForPage(s: Summary) {
  return {
    spans: s.spans,
    windowStartNs: s.windowStartNs?.toString() ?? null,
    windowEndNs: s.windowEndNs?.toString() ?? null,
    windowSeconds: s.windowSeconds,
    endpoints: s.endpoints,
  };
}
