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
 * Speed (≥ 500k spans/s, bench/merge.bench.ts): records are read and written in runs
 * (CaptureScanner.runs, CaptureWriter.records) and patched in place; ids stay 32-bit words
 * (src/merge/ids.ts), never hex strings. The records behind the matches' endpoints are found in
 * pass 2 by their record number from pass 1; other records (children of a moved trace,
 * unmatched endpoints, decoded spans) by id, through maps built only when a file has such.
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
import { CaptureScanner, FileSource, type RawRecord, damageError } from "../capture/reader.ts";
import { CaptureWriter } from "../capture/writer.ts";
import { CAPTURE_FORMAT, type CaptureHeader, type ClockFields } from "../capture/format.ts";
import { builtinRecordSchema } from "../probes/decode.ts";
import { hexOf } from "../probes/record.ts";
import { type LossCounters, type Span, zeroLosses } from "../spans/model.ts";
import { type Endpoint, type JoinResult, join } from "../merge/join.ts";
import { RecordTypes, type TypeInfo, recordEndpoint, spanEndpoint } from "../merge/endpoints.ts";
import { IdMap, IdTable, hexBytes, putWord, wordAt, wordsHex } from "../merge/ids.ts";
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
  /** The record number (raw records counted in file order from 0) of each endpoint read from a record, by RecordEndpoint.eid */
  endpointOrds: Int32Array;
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
  const c0 = cpuMs();
  let origin: bigint | undefined;
  const inputs: Input[] = [];
  const clients: Endpoint[] = [];
  const servers: Endpoint[] = [];
  // IPv4 endpoint keys by address and port (recordEndpoint): one string per connection.
  const keys = new Map<number, string>();
  const rows = new EndpointRows();
  for (const [i, file] of files.entries()) {
    const skewNs = skews.get(i) ?? 0n;
    const got = scanEndpoints(file, i, skewNs, () => origin, (o) => (origin ??= o), clients, servers, keys, rows);
    inputs.push({ file, header: got.header, spans: got.spans, skewNs, endpointOrds: got.endpointOrds });
  }
  const t1 = performance.now();
  const c1 = cpuMs();
  const result = join(files.length, clients, servers);
  const t2 = performance.now();
  const c2 = cpuMs();

  // Trace and parent rewrites.
  const rw = rewrites(result, files.length, {
    endpoints: inputs.map((x) => x.endpointOrds.length),
    spans: inputs.map((x) => x.spans),
  });

  // Pass 2: write.
  const corrections = result.offsets.map((o, i) => BigInt(Math.round(o.offsetNs)) + inputs[i]!.skewNs);
  const t3 = performance.now();
  const c3 = cpuMs();
  const damaged = writeMerged(out, inputs, corrections, rw);
  const t4 = performance.now();
  const c4 = cpuMs();
  const phase = (t: number, c: number) => `${t.toFixed(0)} ms (${c.toFixed(0)} ms CPU)`;
  log.verbose(
    `merge: read ${phase(t1 - t0, c1 - c0)} (${clients.length} client, ${servers.length} server endpoints), join ${phase(t2 - t1, c2 - c1)}, rewrites ${phase(t3 - t2, c3 - c2)}, write ${phase(t4 - t3, c4 - c3)}`,
  );

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
    tracesJoined: rw.tracesMoved,
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

/** CPU time of this process so far (ms): the machine is often shared, wall time alone misleads. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
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

/**
 * Pass 1's endpoints' ids and record numbers, ROW words each, side by side in one typed array
 * (a small object per endpoint, and the ids read only where needed): trace id (4 words, as
 * little-endian 32-bit words of the record's bytes), span id (2), the record's number in its
 * file (raw records counted from 0; -1 for a decoded span), the endpoint's number among its
 * file's record endpoints (-1 for a decoded span).
 */
export class EndpointRows {
  words = new Int32Array(ROW * 1024);
  size = 0;

  /** A new row (its words to be filled in by the caller). */
  add(): number {
    if ((this.size + 1) * ROW > this.words.length) {
      const grown = new Int32Array(2 * this.words.length);
      grown.set(this.words);
      this.words = grown;
    }
    return this.size++;
  }
}

const ROW = 8;

/** An endpoint of pass 1 (a hex string is made only if something asks for traceId/spanId; the join never does). */
export class RecordEndpoint implements Endpoint {
  constructor(
    readonly file: number,
    readonly key: string,
    readonly start: number,
    readonly end: number,
    readonly rows: EndpointRows,
    readonly row: number,
  ) {}

  get traceId(): string {
    return wordsHex(this.rows.words, ROW * this.row, 4);
  }

  get spanId(): string {
    return wordsHex(this.rows.words, ROW * this.row + 4, 2);
  }

  /** Its number among its file's record endpoints, -1 for a decoded span. */
  get eid(): number {
    return this.rows.words[ROW * this.row + 7]!;
  }
}

function idWords(hex: string, n: number): Int32Array {
  const b = new Uint8Array(4 * n);
  b.set(hexBytes(hex).subarray(0, 4 * n));
  const w = new Int32Array(n);
  for (let k = 0; k < n; k++) w[k] = wordAt(b, 4 * k);
  return w;
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
  keys: Map<number, string>,
  rows: EndpointRows,
): { header: CaptureHeader; spans: number; endpointOrds: Int32Array } {
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
    // The type of the last record and its info (a file's records are mostly of a few types).
    let lastType = -1;
    let info: TypeInfo | undefined;
    // Record numbers: pass 2 counts the same records in the same order.
    let ord = 0;
    let ords = new Int32Array(1024);
    let eids = 0;
    /** The record at b[q, q + size). */
    const one = (b: Uint8Array, q: number, size: number, toEpoch: (b: bigint) => bigint): void => {
      const o = ord++;
      const type = b[q]! | (b[q + 1]! << 8);
      if (type !== lastType || info === undefined) {
        info = types.get(type);
        lastType = type;
      }
      if (info.endpoint === undefined) return;
      const key = recordEndpoint(info, b, q, size, keys);
      if (key === undefined) return;
      const h = info.header;
      if (h.end + 8 > size || h.spanId + 8 > size || h.traceId + 16 > size) return;
      if (toEpoch !== lastToEpoch) {
        lastToEpoch = toEpoch;
        zero = Number(toEpoch(0n) + skewNs - origin);
      }
      const t = q + h.traceId;
      const s = q + h.spanId;
      const row = rows.add();
      const w = rows.words;
      const r = ROW * row;
      w[r] = wordAt(b, t);
      w[r + 1] = wordAt(b, t + 4);
      w[r + 2] = wordAt(b, t + 8);
      w[r + 3] = wordAt(b, t + 12);
      w[r + 4] = wordAt(b, s);
      w[r + 5] = wordAt(b, s + 4);
      w[r + 6] = o;
      w[r + 7] = eids;
      // Boot-time stamps as doubles: exact below 2^53 ns (104 days of uptime), within a few ns after.
      const ep = new RecordEndpoint(index, key, zero + u64(b, q + h.start), zero + u64(b, q + h.end), rows, row);
      if (eids === ords.length) {
        const grown = new Int32Array(2 * ords.length);
        grown.set(ords);
        ords = grown;
      }
      ords[eids++] = o;
      (info.endpoint.role === "client" ? clients : servers).push(ep);
    };
    for (const it of scanner.runs()) {
      if (it.type === "raws") {
        const b = it.bytes;
        const at = it.at;
        spans += it.count;
        for (let k = 0; k < it.count; k++) {
          const q = at[k]!;
          one(b, q, k + 1 < it.count ? at[k + 1]! - q : it.end - q, it.toEpoch);
        }
      } else if (it.type === "raw") {
        spans++;
        one(it.bytes, 0, it.bytes.byteLength, it.toEpoch);
      } else if (it.type === "span") {
        spans++;
        const e = spanEndpoint(it);
        if (e === undefined) continue;
        const row = rows.add();
        rows.words.set(idWords(it.traceId, 4), ROW * row);
        rows.words.set(idWords(it.spanId, 2), ROW * row + 4);
        rows.words[ROW * row + 6] = -1;
        rows.words[ROW * row + 7] = -1;
        const ep = new RecordEndpoint(index, e.key, Number(it.startTimeUnixNano + skewNs - origin), Number(it.endTimeUnixNano + skewNs - origin), rows, row);
        (e.role === "client" ? clients : servers).push(ep);
      } else if (it.type === "section") {
        types = new RecordTypes(it.header.records);
        lastType = -1;
      }
    }
    if (scanner.truncated) log.warn(`${file} is truncated (last ${scanner.trailingBytes} bytes incomplete); its complete spans are merged`);
    return { header, spans, endpointOrds: ords.slice(0, eids) };
  } finally {
    src.close();
  }
}

interface Rewrites {
  /** old trace id → new trace id (resolved to the root of its chain); with a plan, empty when no record needs it */
  traces: IdMap;
  /** per file: server span id → the client span id that becomes its parent; with a plan, empty when no record needs it */
  parents: IdMap[];
  /** With a plan: per file, the rewrites of the records behind the matches' endpoints, by RecordEndpoint.eid */
  byEndpoint?: EndpointRewrites[];
  joined: number;
  conflicts: number;
  /** traces moved into another trace */
  tracesMoved: number;
}

/**
 * What happens to the records of one file that are endpoints of a match (RecordEndpoint.eid
 * indexes these arrays): their new trace id and parent are known from the match, so pass 2
 * needs no lookup for them.
 */
interface EndpointRewrites {
  /** 1: the endpoint is in a match (the rest below is all there is to do for its record) */
  covered: Uint8Array;
  /** where its new trace id's 4 words are in `words`, or -1 (the trace stays) */
  trace: Int32Array;
  /** where its new parent's 2 words are in `words`, or -1 */
  parent: Int32Array;
  words: Int32Array;
  /** whether other records of the file need the maps (traces, parents) */
  others: boolean;
}

/** Pass 1's counts, for rewrites by endpoint: per file, endpoints read from records and spans in all. */
interface RewritePlan {
  endpoints: number[];
  spans: number[];
}

export { IdMap } from "../merge/ids.ts";

/** A little-endian u64 as a double. */
function u64(b: Uint8Array, at: number): number {
  const lo = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
  const hi = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16)) + b[at + 7]! * 0x1000000;
  return hi * 4294967296 + lo;
}

/** An endpoint's trace id words into out[at, at + 4) (RecordEndpoint's own, else from its hex). */
function traceWords(e: Endpoint, out: Int32Array, at: number): void {
  if (e instanceof RecordEndpoint) {
    const w = e.rows.words;
    const r = ROW * e.row;
    out[at] = w[r]!;
    out[at + 1] = w[r + 1]!;
    out[at + 2] = w[r + 2]!;
    out[at + 3] = w[r + 3]!;
  } else out.set(idWords(e.traceId, 4), at);
}

function spanWords(e: Endpoint, out: Int32Array, at: number): void {
  if (e instanceof RecordEndpoint) {
    const w = e.rows.words;
    out[at] = w[ROW * e.row + 4]!;
    out[at + 1] = w[ROW * e.row + 5]!;
  } else out.set(idWords(e.spanId, 2), at);
}

/** Trace and parent rewrites from the matches; a trace joins at most one other trace (see the module comment). */
export function rewrites(result: JoinResult, files: number, plan?: RewritePlan): Rewrites {
  const matches = result.matches;
  const m2 = 2 * matches.length;
  // One pass over the match objects; the rest works on typed arrays. tw: the trace ids of the
  // matches (server's, then client's, per match), as words; from spanAt, their span ids (the
  // same order). fileOf, eidOf: each side's file and record endpoint number (-1: none).
  const tw = new Int32Array(4 * m2 + 4 * matches.length);
  const spanAt = 4 * m2;
  const fileOf = new Int32Array(m2);
  const eidOf = new Int32Array(m2);
  const perFile = new Array<number>(files).fill(0);
  const byRecord = plan !== undefined;
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i]!;
    traceWords(m.server, tw, 8 * i);
    traceWords(m.client, tw, 8 * i + 4);
    spanWords(m.server, tw, spanAt + 4 * i);
    spanWords(m.client, tw, spanAt + 4 * i + 2);
    fileOf[2 * i] = m.server.file;
    fileOf[2 * i + 1] = m.client.file;
    eidOf[2 * i] = byRecord && m.server instanceof RecordEndpoint ? m.server.eid : -1;
    eidOf[2 * i + 1] = byRecord && m.client instanceof RecordEndpoint ? m.client.eid : -1;
    perFile[m.server.file]!++;
  }
  // Trace ids → indices. Only ids that may occur twice go through a hash table: a first sweep
  // marks the hashes seen twice in a bitset small enough for the caches; an id whose hash was
  // seen once occurs once and gets an index of its own (most ids of a merge are such).
  // Two bits per hash value, side by side (one memory access per id): seen, seen twice.
  let slots = 1024;
  while (slots < 16 * m2) slots *= 2;
  const shift = 32 - Math.log2(slots);
  const marks = new Int32Array(slots >>> 4);
  const bitOf = new Int32Array(m2);
  let repeats = 0;
  for (let k = 0; k < m2; k++) {
    const b = (bitOf[k] = Math.imul(IdTable.hash(tw[4 * k]!, tw[4 * k + 1]!, tw[4 * k + 2]!, tw[4 * k + 3]!), 0x9e3779b1) >>> shift);
    const at = b >>> 4;
    const once = 1 << (2 * (b & 15));
    const m = marks[at]!;
    if ((m & once) === 0) marks[at] = m | once;
    else if ((m & (once << 1)) === 0) {
      marks[at] = m | (once << 1);
      repeats++;
    }
  }
  const table = new IdTable(16, 2 * repeats + 16);
  let tableIndex = new Int32Array(64);
  /** index → the position (in tw) of its first occurrence */
  const firstAt = new Int32Array(m2);
  const idx = new Int32Array(m2);
  let count = 0;
  for (let k = 0; k < m2; k++) {
    const b = bitOf[k]!;
    if ((marks[b >>> 4]! & (2 << (2 * (b & 15)))) === 0) {
      firstAt[count] = k;
      idx[k] = count++;
      continue;
    }
    const before = table.size;
    const t = table.internWords(tw, 4 * k);
    if (table.size > before) {
      if (t >= tableIndex.length) {
        const grown = new Int32Array(2 * tableIndex.length);
        grown.set(tableIndex);
        tableIndex = grown;
      }
      tableIndex[t] = count;
      firstAt[count] = k;
      idx[k] = count++;
    } else idx[k] = tableIndex[t]!;
  }
  const next = new Int32Array(count).fill(-1);
  const root = (t: number): number => {
    let x = t;
    for (let i = 0; i < 10_000; i++) {
      const n = next[x]!;
      if (n === -1) return x;
      x = n;
    }
    return x;
  };
  // Records behind the matches' endpoints, by file (a plan's endpoints: read from records).
  const byEndpoint: EndpointRewrites[] | undefined = plan?.endpoints.map((n) => ({
    covered: new Uint8Array(n),
    trace: new Int32Array(n).fill(-1),
    parent: new Int32Array(n).fill(-1),
    words: tw,
    others: false,
  }));
  /** The record endpoint number of side j (2 * match + 0 server / 1 client), or -1. */
  const ofRecord = (j: number): number => {
    const k = eidOf[j]!;
    return byEndpoint !== undefined && k >= 0 && k < byEndpoint[fileOf[j]!]!.covered.length ? k : -1;
  };
  if (byEndpoint !== undefined) {
    const covered = new Array<number>(files).fill(0);
    for (let j = 0; j < m2; j++) {
      const k = ofRecord(j);
      const f = fileOf[j]!;
      if (k >= 0 && byEndpoint[f]!.covered[k] === 0) {
        byEndpoint[f]!.covered[k] = 1;
        covered[f]!++;
      }
    }
    for (let f = 0; f < files; f++) byEndpoint[f]!.others = plan!.spans[f]! > covered[f]!;
  }
  const needMaps = (f: number) => byEndpoint === undefined || byEndpoint[f]!.others;
  const parents: IdMap[] = Array.from({ length: files }, (_, f) => new IdMap(8, 8, needMaps(f) ? perFile[f] : 0));
  const moved: number[] = [];
  let joined = 0;
  let conflicts = 0;
  // With several claims on one trace, the first match found (by connection, then time) keeps it.
  for (let i = 0; i < matches.length; i++) {
    const f = idx[2 * i]!;
    const r = root(idx[2 * i + 1]!);
    if (root(f) !== r) {
      // `r` is a root and differs from `f`'s: no cycle. A trace already joined elsewhere stays there.
      if (next[f] !== -1) {
        conflicts++;
        continue;
      }
      next[f] = r;
      moved.push(f);
    }
    const sf = fileOf[2 * i]!;
    if (needMaps(sf)) parents[sf]!.setWordsWords(tw, spanAt + 4 * i, tw, spanAt + 4 * i + 2);
    const k = ofRecord(2 * i);
    if (k >= 0) byEndpoint![sf]!.parent[k] = spanAt + 4 * i + 2;
    joined++;
  }
  let anyOthers = byEndpoint === undefined;
  for (let f = 0; f < files; f++) if (needMaps(f)) anyOthers = true;
  const traces = new IdMap(16, 16, anyOthers ? moved.length : 0);
  if (anyOthers) for (const t of moved) traces.setWordsWords(tw, 4 * firstAt[t]!, tw, 4 * firstAt[root(t)]!);
  if (byEndpoint !== undefined) {
    // Every endpoint of a match whose trace moved (also in a match dropped as a conflict).
    for (let j = 0; j < m2; j++) {
      const k = ofRecord(j);
      const t = idx[j]!;
      if (k >= 0 && next[t] !== -1) byEndpoint[fileOf[j]!]!.trace[k] = 4 * firstAt[root(t)]!;
    }
  }
  return { traces, parents, ...(byEndpoint !== undefined ? { byEndpoint } : {}), joined, conflicts, tracesMoved: moved.length };
}

/** REC_SPAN_F_HAS_PARENT | REC_SPAN_F_REMOTE_PARENT (bpf/shared/span.h) into the u16 flags at b[f]: the parent is in another process. */
function setRemoteParent(b: Uint8Array, f: number): void {
  const flags = b[f]! | (b[f + 1]! << 8) | 0x1 | 0x10;
  b[f] = flags & 0xff;
  b[f + 1] = flags >> 8;
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
  // Raw records of later sections need a format-2 file (the section headers carry their layouts);
  // compressed chunks, as the tracer writes them, a format-3 one.
  const header: CaptureHeader = { ...h0, format: CAPTURE_FORMAT, records: h0.records ?? builtinRecordSchema() };
  const w = CaptureWriter.open(out, header, { flushIntervalMs: 0, flushBytes: 4 * 1024 * 1024, compress: true });
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
        const mine = rw.byEndpoint?.[i];
        const rewrite = traces.size > 0 || parents.size > 0 || mine !== undefined;
        let lastType = -1;
        let info: TypeInfo | undefined;
        // The records pass 1 numbered, and the next endpoint among them.
        let ord = 0;
        let next = 0;
        const ords = input.endpointOrds;
        /** Rewrites the record at b[q, q + size) in place (see below). */
        const patch = (b: Uint8Array, q: number, size: number): void => {
          const o = ord++;
          let eid = -1;
          if (next < ords.length && ords[next] === o) eid = next++;
          const type = b[q]! | (b[q + 1]! << 8);
          if (type !== lastType || info === undefined) {
            info = types.get(type);
            lastType = type;
          }
          const h = info.header;
          if (h.traceId + 16 > size || h.spanId + 8 > size || h.parent + 8 > size || h.flags + 2 > size) return;
          if (mine !== undefined && eid >= 0 && mine.covered[eid] === 1) {
            // An endpoint of a match: its rewrites are known (no lookup).
            const t = mine.trace[eid]!;
            const p = mine.parent[eid]!;
            const words = mine.words;
            if (t >= 0) for (let k = 0; k < 4; k++) putWord(b, q + h.traceId + 4 * k, words[t + k]!);
            if (p >= 0) {
              putWord(b, q + h.parent, words[p]!);
              putWord(b, q + h.parent + 4, words[p + 1]!);
              setRemoteParent(b, q + h.flags);
            }
            return;
          }
          // Both looked up before either is written: untrusted layouts may overlap the fields.
          const t = traces.size > 0 ? traces.indexAt(b, q + h.traceId) : -1;
          const p = parents.size > 0 ? parents.indexAt(b, q + h.spanId) : -1;
          if (t >= 0) traces.writeValue(t, b, q + h.traceId);
          if (p >= 0) {
            parents.writeValue(p, b, q + h.parent);
            setRemoteParent(b, q + h.flags);
          }
        };
        for (const it of scanner.runs()) {
          switch (it.type) {
            case "raws": {
              // Rewritten in place: the records' bytes are the reader's copy of the file, and the
              // scanner never reads them again once it has moved past them.
              const b = it.bytes;
              const at = it.at;
              if (rewrite) for (let k = 0; k < it.count; k++) patch(b, at[k]!, (k + 1 < it.count ? at[k + 1]! : it.end) - at[k]!);
              w.records(b, at, it.count, it.end);
              break;
            }
            case "raw": {
              const rec = (it as RawRecord).bytes;
              if (rewrite) patch(rec, 0, rec.byteLength);
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
              lastType = -1;
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
