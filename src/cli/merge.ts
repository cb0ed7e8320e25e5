/**
 * @module cli/merge — `beetrace merge FILE... -o OUT.cbor`: one capture from the captures of
 * several processes and hosts, with each request's spans joined into one trace across them.
 *
 * Two streaming passes over the inputs (memory grows with the spans that carry a connection
 * endpoint, not with the files):
 *  1. read every record's times and ids, and the connection endpoint of client and server spans
 *     (src/merge/endpoints.ts, without decoding the records); src/merge/join.ts then matches
 *     server spans to the client spans that caused them and estimates each file's clock offset.
 *  2. write OUT: the first input's header, then each further input as a section (its own
 *     header: service, resource, layouts; format.ts SectionRecord), records copied byte for
 *     byte except that a joined server span gets the client span as its (remote) parent and
 *     every span of a joined trace gets the client's trace id. Clock corrections go into the
 *     sections' clock anchors (epoch = boot + offsetNs), so the records' own stamps stay as
 *     BPF wrote them.
 *
 * A trace joins at most one other: a server span whose trace is already joined elsewhere (two
 * callers claimed spans of one trace) or whose join would close a cycle stays unjoined
 * (counted). Damaged inputs: every intact record is merged, then the command exits 17 naming
 * the damage, as `convert` does.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Buffer } from "node:buffer";
import { TracerError, fromSystemError } from "../errors.ts";
import { log } from "../log.ts";
import { CaptureScanner, FileSource, damageError } from "../capture/reader.ts";
import { CaptureWriter } from "../capture/writer.ts";
import type { CaptureHeader, ClockFields } from "../capture/format.ts";
import { builtinRecordSchema } from "../probes/decode.ts";
import { hexOf } from "../probes/record.ts";
import { type LossCounters, type Span, zeroLosses } from "../spans/model.ts";
import { type Endpoint, type JoinResult, join } from "../merge/join.ts";
import { RecordTypes, recordEndpoint, spanEndpoint } from "../merge/endpoints.ts";
import { parseDurationNs, serviceOf } from "./filters.ts";
import { writeStdout } from "./view.ts";

export interface MergeOptions {
  out?: string;
  /** "N=DURATION" (repeatable): pretend input N's clock is off by DURATION (testing the estimate) */
  skew?: string | string[];
  json?: boolean;
}

export interface MergedFile {
  file: string;
  service: string;
  host: string;
  spans: number;
  /** how far this file's clock is ahead of the reference file's, as estimated (ns) */
  clockOffsetNs: number;
  /** the file it was measured against; undefined for a reference file */
  against?: string;
  /** matched pairs behind the estimate */
  pairs: number;
  /** ± how precise the estimate is (ns), when measured */
  uncertaintyNs?: number;
  /** true when no single offset fitted every pair (drift): pairs outside were left unjoined */
  conflicting?: boolean;
}

export interface MergeReport {
  out: string;
  spans: number;
  files: MergedFile[];
  /** server spans joined to the client span that caused them */
  joined: number;
  /** traces moved into another trace */
  tracesJoined: number;
  unjoined: {
    /** server spans with a peer address that matched no client span (ambiguous and clock conflicts included) */
    servers: number;
    /** client spans with a local address that matched no server span */
    clients: number;
    ambiguous: number;
    clockConflicts: number;
    /** matches dropped because the server span's trace was already joined to another trace, or would close a cycle */
    traceConflicts: number;
  };
}

/** What pass 1 keeps per input. */
interface Input {
  file: string;
  header: CaptureHeader;
  spans: number;
  skewNs: bigint;
}

export async function mergeCommand(files: string[], opts: MergeOptions = {}, write: (s: string) => Promise<void> = writeStdout): Promise<MergeReport> {
  if (files.length < 2) {
    throw new TracerError("usage", `merge needs at least two capture files, got ${files.length}`, { hint: "beetrace merge edge.cbor orders.cbor -o joined.cbor" });
  }
  const out = opts.out;
  if (out === undefined || out === "" || out === "-") {
    throw new TracerError("usage", "merge writes a capture file and needs -o FILE", { hint: "beetrace merge edge.cbor orders.cbor -o joined.cbor" });
  }
  const outAbs = path.resolve(out);
  for (const f of files) {
    if (path.resolve(f) === outAbs) throw new TracerError("usage", `-o ${out} is also an input`, { hint: "write the merged capture to a new file" });
  }
  const skews = parseSkews(opts.skew, files.length);
  checkOutputDir(out);

  // Pass 1: endpoints.
  const t0 = performance.now();
  let origin: bigint | undefined;
  const inputs: Input[] = [];
  const clients: Endpoint[] = [];
  const servers: Endpoint[] = [];
  for (const [i, file] of files.entries()) {
    const skewNs = skews.get(i) ?? 0n;
    const got = scanEndpoints(file, i, skewNs, () => origin, (o) => (origin ??= o), clients, servers);
    inputs.push({ file, header: got.header, spans: got.spans, skewNs });
  }
  const t1 = performance.now();
  const result = join(files.length, clients, servers);
  const t2 = performance.now();

  // Trace and parent rewrites.
  const rw = rewrites(result, files.length);

  // Pass 2: write.
  const corrections = result.offsets.map((o, i) => BigInt(Math.round(o.offsetNs)) + inputs[i]!.skewNs);
  const t3 = performance.now();
  const damaged = writeMerged(out, inputs, corrections, rw);
  const t4 = performance.now();
  log.verbose(`merge: read ${(t1 - t0).toFixed(0)} ms (${clients.length} client, ${servers.length} server endpoints), join ${(t2 - t1).toFixed(0)} ms, rewrites ${(t3 - t2).toFixed(0)} ms, write ${(t4 - t3).toFixed(0)} ms`);

  const report: MergeReport = {
    out,
    spans: inputs.reduce((n, x) => n + x.spans, 0),
    files: inputs.map((x, i) => {
      const o = result.offsets[i]!;
      return {
        file: x.file,
        service: serviceOf(x.header),
        host: x.header.host.name,
        spans: x.spans,
        // The correction undoes the clock's lead: a clock ahead by X needs -X.
        clockOffsetNs: -Math.round(o.offsetNs) + 0,
        ...(o.against !== undefined ? { against: files[o.against]! } : {}),
        pairs: o.pairs,
        ...(o.uncertaintyNs !== undefined ? { uncertaintyNs: Math.round(o.uncertaintyNs) } : {}),
        ...(o.conflicting ? { conflicting: true } : {}),
      };
    }),
    joined: rw.joined,
    tracesJoined: rw.traces.size,
    unjoined: {
      servers: result.unmatchedServers,
      clients: result.unmatchedClients,
      ambiguous: result.ambiguous,
      clockConflicts: result.clockConflicts,
      traceConflicts: rw.conflicts,
    },
  };
  await write(opts.json ? JSON.stringify(report) + "\n" : formatReport(report));
  if (damaged !== undefined) throw damaged;
  return report;
}

/** `--skew N=DURATION` → input index → ns (DURATION may be negative). */
export function parseSkews(v: string | string[] | undefined, files: number): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const s of v === undefined ? [] : Array.isArray(v) ? v : [v]) {
    const m = /^(\d+)=(-?)(.+)$/.exec(String(s).trim());
    if (!m) throw new TracerError("usage", `--skew: '${String(s).slice(0, 80)}' is not N=DURATION`, { hint: "e.g. --skew 1=2.5s shifts the second file's times by 2.5 s (N counts the files from 0)" });
    const n = Number(m[1]);
    if (n >= files) throw new TracerError("usage", `--skew: file ${n} does not exist (${files} files, counted from 0)`, { hint: "N is the position of the file on the command line, from 0" });
    const ns = parseDurationNs(m[3]!, "--skew");
    out.set(n, m[2] === "-" ? -ns : ns);
  }
  return out;
}

function checkOutputDir(out: string): void {
  const dir = path.dirname(path.resolve(out));
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const t = fromSystemError(e, `output directory ${dir}`);
    throw new TracerError(t.code === "file_not_found" ? "file_not_found" : "output_failed", t.message, { hint: "create the directory or choose another -o path" });
  }
  if (!st.isDirectory()) throw new TracerError("output_failed", `${dir} is not a directory`, { hint: "choose another -o path" });
}

/** Pass 1 over one file: its endpoints, spans counted. */
function scanEndpoints(
  file: string,
  index: number,
  skewNs: bigint,
  getOrigin: () => bigint | undefined,
  setOrigin: (o: bigint) => bigint,
  clients: Endpoint[],
  servers: Endpoint[],
): { header: CaptureHeader; spans: number } {
  const src = new FileSource(file);
  try {
    let scanner: CaptureScanner;
    try {
      scanner = new CaptureScanner(src);
    } catch (e) {
      if (e instanceof TracerError) throw e.withContext(file);
      throw e;
    }
    const header = scanner.header;
    // Times are kept as float ns relative to the first file's start: exact for 104 days.
    const origin = getOrigin() ?? setOrigin(header.createdAt);
    let types = new RecordTypes(header.records);
    let spans = 0;
    // epoch - origin for boot time 0 under the clock in force (one per records chunk's clock).
    let lastToEpoch: ((b: bigint) => bigint) | undefined;
    let zero = 0;
    for (const it of scanner.items()) {
      if (it.type === "raw") {
        spans++;
        const b = it.bytes;
        const info = types.get(b[0]! | (b[1]! << 8));
        if (info.endpoint === undefined) continue;
        const key = recordEndpoint(info, b, 0, b.byteLength);
        if (key === undefined) continue;
        const h = info.header;
        if (h.end + 8 > b.byteLength || h.spanId + 8 > b.byteLength || h.traceId + 16 > b.byteLength) continue;
        if (it.toEpoch !== lastToEpoch) {
          lastToEpoch = it.toEpoch;
          zero = Number(it.toEpoch(0n) + skewNs - origin);
        }
        const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
        const ep: Endpoint = {
          file: index,
          key,
          // Boot-time stamps as doubles: exact below 2^53 ns (104 days of uptime), within a few ns after.
          start: zero + u64(b, h.start),
          end: zero + u64(b, h.end),
          traceId: buf.toString("hex", h.traceId, h.traceId + 16),
          spanId: buf.toString("hex", h.spanId, h.spanId + 8),
        };
        (info.endpoint.role === "client" ? clients : servers).push(ep);
      } else if (it.type === "span") {
        spans++;
        const e = spanEndpoint(it);
        if (e === undefined) continue;
        const ep: Endpoint = {
          file: index,
          key: e.key,
          start: Number(it.startTimeUnixNano + skewNs - origin),
          end: Number(it.endTimeUnixNano + skewNs - origin),
          traceId: it.traceId,
          spanId: it.spanId,
        };
        (e.role === "client" ? clients : servers).push(ep);
      } else if (it.type === "section") {
        types = new RecordTypes(it.header.records);
      }
    }
    if (scanner.truncated) log.warn(`${file} is truncated (last ${scanner.trailingBytes} bytes incomplete); its complete spans are merged`);
    return { header, spans };
  } finally {
    src.close();
  }
}

interface Rewrites {
  /** old trace id → new trace id bytes (resolved to the root of its chain) */
  traces: IdMap;
  /** per file: server span id → the client span id bytes that becomes its parent */
  parents: IdMap[];
  joined: number;
  conflicts: number;
}

/**
 * Trace or span id → bytes, looked up straight from a record's bytes: keyed by a 30-bit hash of
 * the id (no hex string per record), the whole id compared on a hit.
 */
export class IdMap {
  readonly #map = new Map<number, { id: Uint8Array; to: Uint8Array }[]>();
  #size = 0;
  constructor(readonly idBytes: 8 | 16) {}

  get size(): number {
    return this.#size;
  }

  /** 30 bits of an FNV-1a hash of the whole id: a small integer key, which Maps hash fastest (ids need not be random: tests and benches count). */
  #key(b: Uint8Array, at: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.idBytes; i++) h = Math.imul(h ^ b[at + i]!, 0x01000193);
    return (h ^ (h >>> 30)) & 0x3fffffff;
  }

  set(idHex: string, to: Uint8Array): void {
    const id = hexBytes(idHex);
    const k = this.#key(id, 0);
    let l = this.#map.get(k);
    if (l === undefined) this.#map.set(k, (l = []));
    for (const e of l) {
      if (equalAt(e.id, id, 0)) {
        e.to = to;
        return;
      }
    }
    l.push({ id, to });
    this.#size++;
  }

  /** The value for the id at b[at, at + idBytes). */
  getAt(b: Uint8Array, at: number): Uint8Array | undefined {
    const l = this.#map.get(this.#key(b, at));
    if (l === undefined) return undefined;
    for (const e of l) if (equalAt(e.id, b, at)) return e.to;
    return undefined;
  }

  get(idHex: string): Uint8Array | undefined {
    if (idHex.length !== 2 * this.idBytes) return undefined;
    return this.getAt(hexBytes(idHex), 0);
  }

  has(idHex: string): boolean {
    return this.get(idHex) !== undefined;
  }
}

function equalAt(id: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < id.length; i++) if (id[i] !== b[at + i]) return false;
  return true;
}

/** Lowercase hex digit → value (the ids are lowercase hex from hexOf / Buffer#toString). */
const HEX_VALUE = new Int8Array(128).fill(0);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i;

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = (HEX_VALUE[hex.charCodeAt(2 * i) & 0x7f]! << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1) & 0x7f]!;
  return out;
}

/** A little-endian u64 as a double. */
function u64(b: Uint8Array, at: number): number {
  const lo = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
  const hi = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16)) + b[at + 7]! * 0x1000000;
  return hi * 4294967296 + lo;
}

/** Trace and parent rewrites from the matches; a trace joins at most one other trace (see the module comment). */
export function rewrites(result: JoinResult, files: number): Rewrites {
  const next = new Map<string, string>();
  const root = (t: string): string => {
    let x = t;
    for (let i = 0; i < 10_000; i++) {
      const n = next.get(x);
      if (n === undefined) return x;
      x = n;
    }
    return x;
  };
  const parents: IdMap[] = Array.from({ length: files }, () => new IdMap(8));
  let joined = 0;
  let conflicts = 0;
  // With several claims on one trace, the first match found (by connection, then time) keeps it.
  for (const m of result.matches) {
    const from = m.server.traceId;
    const to = root(m.client.traceId);
    if (root(from) !== to) {
      // `to` is a root and differs from `from`: no cycle. A trace already joined elsewhere stays there.
      if (next.has(from)) {
        conflicts++;
        continue;
      }
      next.set(from, to);
    }
    parents[m.server.file]!.set(m.server.spanId, hexBytes(m.client.spanId));
    joined++;
  }
  const traces = new IdMap(16);
  const rootBytes = new Map<string, Uint8Array>();
  for (const t of next.keys()) {
    const r = root(t);
    let b = rootBytes.get(r);
    if (b === undefined) rootBytes.set(r, (b = hexBytes(r)));
    traces.set(t, b);
  }
  return { traces, parents, joined, conflicts };
}

/** The anchor shifted by a correction. */
function shifted(c: ClockFields, ns: bigint): ClockFields {
  return { realtimeNs: c.realtimeNs + ns, boottimeNs: c.boottimeNs, offsetNs: c.offsetNs + ns };
}

function shiftedHeader(h: CaptureHeader, ns: bigint): CaptureHeader {
  return { ...h, createdAt: h.createdAt + ns, clock: shifted(h.clock, ns) };
}

function addLosses(a: LossCounters, b: LossCounters): void {
  for (const k of Object.keys(a) as (keyof LossCounters)[]) a[k] += Number(b[k] ?? 0) || 0;
}

/** Pass 2: writes OUT; returns the damage error of the first damaged input (thrown after the report). */
function writeMerged(out: string, inputs: Input[], corrections: bigint[], rw: Rewrites): TracerError | undefined {
  const first = inputs[0]!;
  const h0 = shiftedHeader(first.header, corrections[0]!);
  // Raw records of later sections need a format-2 file (the section headers carry their layouts).
  const header: CaptureHeader = h0.records !== undefined ? h0 : { ...h0, format: 2, records: builtinRecordSchema() };
  const w = CaptureWriter.open(out, header, { flushIntervalMs: 0, flushBytes: 4 * 1024 * 1024 });
  const losses = zeroLosses();
  let damaged: TracerError | undefined;
  try {
    for (const [i, input] of inputs.entries()) {
      const shift = corrections[i]!;
      const parents = rw.parents[i]!;
      const traces = rw.traces;
      const src = new FileSource(input.file);
      try {
        const scanner = new CaptureScanner(src);
        if (i > 0) w.section(shiftedHeader(scanner.header, shift));
        let types = new RecordTypes(scanner.header.records);
        let fileLosses: LossCounters | undefined;
        for (const it of scanner.items()) {
          switch (it.type) {
            case "raw": {
              const b = it.bytes;
              const h = types.get(b[0]! | (b[1]! << 8)).header;
              const rec = b;
              let newTrace: Uint8Array | undefined;
              let parent: Uint8Array | undefined;
              if ((traces.size > 0 || parents.size > 0) && h.traceId + 16 <= b.byteLength && h.spanId + 8 <= b.byteLength && h.parent + 8 <= b.byteLength && h.flags + 2 <= b.byteLength) {
                if (traces.size > 0) newTrace = traces.getAt(b, h.traceId);
                if (parents.size > 0) parent = parents.getAt(b, h.spanId);
              }
              // Rewritten in place: the record's bytes are the reader's copy of the file, and the
              // scanner never reads them again once it has moved past them.
              if (newTrace !== undefined) rec.set(newTrace, h.traceId);
              if (parent !== undefined) {
                rec.set(parent, h.parent);
                // REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT (bpf/shared/span.h): the parent is in another process.
                const flags = rec[h.flags]! | (rec[h.flags + 1]! << 8) | 0x1 | 0x10;
                rec[h.flags] = flags & 0xff;
                rec[h.flags + 1] = flags >> 8;
              }
              w.record(rec);
              break;
            }
            case "span": {
              const { type: _t, ...span } = it;
              w.span(rewriteSpan(span, shift, traces, parents));
              break;
            }
            case "clock":
              w.clock(shifted(it, shift));
              break;
            case "section":
              // A merged capture merged again: its sections stay sections.
              types = new RecordTypes(it.header.records);
              w.section(shiftedHeader(it.header, shift));
              break;
            case "stats":
              fileLosses = it.losses;
              break;
            case "end":
              fileLosses = it.totals.losses;
              break;
          }
        }
        if (fileLosses) addLosses(losses, fileLosses);
        if (damaged === undefined) damaged = damageError(input.file, scanner) ?? undefined;
      } finally {
        src.close();
      }
    }
    w.close("merged", BigInt(Date.now()) * 1_000_000n, losses);
  } catch (e) {
    w.abandon();
    throw e;
  }
  return damaged;
}

function rewriteSpan(span: Span, shift: bigint, traces: IdMap, parents: IdMap): Span {
  const t = traces.get(span.traceId);
  const p = parents.get(span.spanId);
  const s: Span = { ...span, startTimeUnixNano: span.startTimeUnixNano + shift, endTimeUnixNano: span.endTimeUnixNano + shift };
  if (t !== undefined) s.traceId = hexOf(t, 0, 16);
  if (p !== undefined) s.parentSpanId = hexOf(p, 0, 8);
  if (span.events) s.events = span.events.map((e) => ({ ...e, timeUnixNano: e.timeUnixNano + shift }));
  return s;
}

function ms(ns: number): string {
  return `${(ns / 1e6).toFixed(3)} ms`;
}

export function formatReport(r: MergeReport): string {
  const lines: string[] = [];
  lines.push(`merged ${r.files.length} captures, ${r.spans} spans → ${r.out}`);
  for (const f of r.files) {
    let clock: string;
    if (f.against === undefined) clock = r.files.some((g) => g.against === f.file) ? "reference clock" : "no pairs with the others: clock left as is";
    else {
      const sign = f.clockOffsetNs >= 0 ? "+" : "-";
      clock = `clock ${sign}${ms(Math.abs(f.clockOffsetNs))}${f.uncertaintyNs !== undefined ? ` ± ${ms(f.uncertaintyNs)}` : ""} vs ${f.against} (${f.pairs} pairs${f.conflicting ? ", drifting: pairs outside were left unjoined" : ""})`;
    }
    lines.push(`  ${f.file}: ${f.service} on ${f.host}, ${f.spans} spans, ${clock}`);
  }
  lines.push(`joined ${r.joined} server spans to their client spans (${r.tracesJoined} traces moved)`);
  const u = r.unjoined;
  const of: string[] = [];
  if (u.ambiguous > 0) of.push(`${u.ambiguous} ambiguous`);
  if (u.clockConflicts > 0) of.push(`${u.clockConflicts} outside their client span after clock correction`);
  lines.push(
    `unjoined: ${u.servers} server spans with a peer address${of.length > 0 ? ` (${of.join(", ")})` : ""}, ${u.clients} client spans with a local address` +
      (u.traceConflicts > 0 ? `, ${u.traceConflicts} matches whose trace was already joined elsewhere` : "") +
      (u.servers + u.clients > 0 ? " (NAT, proxies, or a process that was not traced)" : ""),
  );
  return lines.join("\n") + "\n";
}
