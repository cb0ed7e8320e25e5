/**
 * @module merge/join — which server span each client span caused, across capture files, and
 * how far apart the files' clocks are. Pure (numbers and strings in, decisions out): the
 * command (src/cli/merge.ts) extracts the endpoints and rewrites the files.
 *
 * The key: a client span records the local end of its connection (network.local.address/port),
 * a server span the peer of its connection (network.peer.address/port). On one TCP connection
 * they are the same address:port. NAT and proxies change it: such spans match nothing and stay
 * unjoined (counted), never guessed.
 *
 * Time: each file has its own clock (its host's CLOCK_REALTIME). A server span `s` caused by a
 * client span `c` starts while `c` runs, so the correction `d` to add to the server file's times
 * (relative to the client file's) satisfies  c.start <= s.start + d <= c.end,  i.e. d lies in
 * the pair's feasible interval [c.start - s.start, c.end - s.start]. Only starts are compared:
 * a server span may end after the client got its response headers (net/http flushes the
 * response before the server's end marker runs).
 *
 * 1. Estimate: before the pairs are known, every client span of a connection key is paired with
 *    every server span of the key (on long connections: with anchor spans spread over it, as
 *    many as a fixed budget allows), each pair voting twice: for the corrections under which the
 *    server span starts inside the client span (always true of a true pair), and for those under
 *    which it lies wholly inside (tighter, and true unless the server ended after the client had
 *    its response). True pairs' intervals pile up around the true correction, wrong pairs' are
 *    scattered (requests on one HTTP/1 connection follow each other at irregular gaps). The
 *    most-covered ranges of both kinds are the candidates; the one under which most server spans
 *    start inside a client span of their connection (one each) is kept, then most wholly inside.
 *    Bounded by KEY_BUDGET per connection and TOTAL_BUDGET per estimate (connections sampled
 *    evenly beyond it). Perfectly periodic traffic with identical durations on a
 *    connection whose captures cover different stretches cannot be aligned by time alone; real
 *    traffic, and several connections, break that symmetry.
 * 2. Offsets: file pairs are edges weighted by their votes; a maximum spanning tree from the
 *    first file of each connected group gives every file its offset (the reference file: 0).
 * 3. Match: with the offsets applied, each server span is matched to the client span of its key
 *    whose corrected interval holds its corrected start. None: unjoined. Several (two hosts
 *    behind NAT sharing an address): ambiguous, unjoined. HTTP/1 keep-alive carries one request
 *    at a time, so each request of a connection finds its own span.
 * 4. Refine: the matched pairs of a file pair give a feasible interval (the intersection of
 *    theirs: each server span starts inside its client span); the offset is placed in it where
 *    the pairs whose server span also ends inside agree. If clocks drifted so that no single offset satisfies
 *    every pair, the midpoint of the range most pairs allow is used, and pairs outside it are
 *    dropped (counted as clock conflicts): a child never starts before its parent.
 */

/** A client or server span's connection endpoint, times in ns relative to a common base (the file's own clock). */
export interface Endpoint {
  /** Index of the capture file */
  file: number;
  /** "address|port", normalised (endpointKey) */
  key: string;
  start: number;
  end: number;
  traceId: string;
  spanId: string;
}

export interface JoinOptions {
  /** Known corrections (file → ns), e.g. from a test; a file given here is not estimated. */
  fixedOffsets?: ReadonlyMap<number, number>;
}

export interface FileOffset {
  file: number;
  /** ns to add to this file's times */
  offsetNs: number;
  /** the file it was measured against (undefined: a reference file, or no pairs) */
  against?: number;
  /** matched pairs behind the estimate (between this file and `against`) */
  pairs: number;
  /** half the width of the feasible interval (how precise the estimate is), when it was measured */
  uncertaintyNs?: number;
  /** true when no single offset satisfied every pair (drift, or wrong pairs) */
  conflicting?: boolean;
}

export interface Match {
  client: Endpoint;
  server: Endpoint;
}

export interface JoinResult {
  offsets: FileOffset[];
  matches: Match[];
  /** server spans with a peer address that no client span matched (ambiguous and clockConflicts included) */
  unmatchedServers: number;
  /** client spans with a local address that no server span matched */
  unmatchedClients: number;
  /** of unmatchedServers: those more than one client span could have caused */
  ambiguous: number;
  /** of unmatchedServers: those whose likely client span the reconciled clocks rule out */
  clockConflicts: number;
}

/** "address|port" with IPv4-mapped IPv6 addresses written as IPv4 and brackets removed. */
export function endpointKey(address: string, port: number): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  if (a.startsWith("::ffff:") && /^\d+\.\d+\.\d+\.\d+$/.test(a.slice(7))) a = a.slice(7);
  return `${a}|${port}`;
}

interface KeyGroup {
  clients: Endpoint[];
  servers: Endpoint[];
  /** matched[i]: servers[i] was matched by the last matchAll */
  matched: Uint8Array;
}

function byStart(a: Endpoint, b: Endpoint): number {
  return a.start - b.start;
}

function groupByKey(clients: readonly Endpoint[], servers: readonly Endpoint[]): Map<string, KeyGroup> {
  const groups = new Map<string, KeyGroup>();
  const at = (k: string): KeyGroup => {
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = { clients: [], servers: [], matched: EMPTY }));
    return g;
  };
  for (const c of clients) at(c.key).clients.push(c);
  for (const s of servers) at(s.key).servers.push(s);
  for (const [k, g] of groups) {
    if (g.clients.length === 0 || g.servers.length === 0) groups.delete(k);
    else {
      sortByStart(g.clients);
      sortByStart(g.servers);
      g.matched = new Uint8Array(g.servers.length);
    }
  }
  return groups;
}

const EMPTY = new Uint8Array(0);

/** Sorts by start (stable), unless already sorted: records mostly come in time order, and a stable sort leaves a sorted list as it is. */
function sortByStart(l: Endpoint[]): void {
  for (let i = 1; i < l.length; i++) {
    if (l[i]!.start < l[i - 1]!.start) {
      l.sort(byStart);
      return;
    }
  }
}

/** The middle of the first range covered by the most intervals, and that count. */
export function maxCoverage(lo: readonly number[], hi: readonly number[]): { at: number; count: number; from: number; to: number } | undefined {
  const n = lo.length;
  if (n === 0) return undefined;
  // Events: starts before ends at the same point (closed intervals).
  const ev = new Float64Array(2 * n);
  const kind = new Int8Array(2 * n);
  const order = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    ev[2 * i] = lo[i]!;
    kind[2 * i] = 1;
    ev[2 * i + 1] = hi[i]!;
    kind[2 * i + 1] = -1;
  }
  for (let i = 0; i < 2 * n; i++) order[i] = i;
  order.sort((a, b) => ev[a]! - ev[b]! || kind[b]! - kind[a]!);
  let cur = 0;
  let best = 0;
  let from = 0;
  let to = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    cur += kind[i]!;
    if (kind[i] === 1 && cur > best) {
      best = cur;
      from = ev[i]!;
      // The range ends at the next event (an end, or another start that raises the count).
      to = k + 1 < order.length ? ev[order[k + 1]!]! : from;
    }
  }
  return { at: from + (to - from) / 2, count: best, from, to };
}

/** Candidate corrections tried per file pair (the most-voted plateaus). */
const CANDIDATES = 8;

/** Up to `k` plateaus of the coverage of [lo, hi] intervals, most covered first: their middles. */
export function peaks(lo: readonly number[], hi: readonly number[], k: number): { at: number; count: number }[] {
  const n = lo.length;
  if (n === 0) return [];
  // Starts and ends sorted apart (native numeric sorts), then swept together; on a tie a start
  // comes first (closed intervals).
  const starts = Float64Array.from(lo).sort();
  const ends = Float64Array.from(hi).sort();
  // The k most covered local maxima, most first, the earlier first on a tie (what a stable sort
  // of all of them by count would begin with), kept as they are found.
  const top: { at: number; count: number }[] = [];
  if (k <= 0) return top;
  let cur = 0;
  let i = 0;
  let j = 0;
  while (i < n) {
    if (starts[i]! <= ends[j]!) {
      cur++;
      const x = starts[i++]!;
      // A local maximum: the next event is an end.
      if ((i >= n || starts[i]! > ends[j]!) && (top.length < k || cur > top[k - 1]!.count)) {
        let at = top.length;
        while (at > 0 && top[at - 1]!.count < cur) at--;
        top.splice(at, 0, { at: x + (ends[j]! - x) / 2, count: cur });
        if (top.length > k) top.pop();
      }
    } else {
      cur--;
      j++;
    }
  }
  return top;
}

/**
 * Under correction `d`: how many server spans of file `sf` start inside a client span of file
 * `cf` of their connection (`starts`), and how many of those also end inside it (`wholly`), each
 * client span holding at most one (a request causes one server span): a long client span (the
 * first request of a connection waits for the TLS handshake) must not make a wrong correction
 * look as good as the right one by holding several.
 */
function fitCount(groups: readonly KeyGroup[], cf: number, sf: number, d: number): { starts: number; wholly: number } {
  let starts = 0;
  let wholly = 0;
  for (const g of groups) {
    const cs = g.clients;
    let i = 0;
    for (const s of g.servers) {
      if (s.file !== sf) continue;
      const t = s.start + d;
      // Both lists are sorted by start, and HTTP/1 client spans of one connection do not overlap.
      while (i < cs.length && (cs[i]!.file !== cf || cs[i]!.end < t)) i++;
      if (i < cs.length && cs[i]!.start <= t) {
        starts++;
        if (cs[i]!.end >= s.end + d) wholly++;
        i++;
      }
    }
  }
  return { starts, wholly };
}

/** Votes for the correction of file `sf` relative to file `cf` (step 1), keyed cf * FILE_KEY + sf, and the connections that voted. */
function estimatePairs(groups: Map<string, KeyGroup>): { votes: Map<number, Votes>; sampled: KeyGroup[] } {
  const votes = new Map<number, Votes>();
  const vote = (c: Endpoint, s: Endpoint) => {
    if (c.file === s.file) return; // one clock: nothing to estimate
    // Two kinds of votes. The narrow interval (the server span wholly inside the client span):
    // true pairs' intervals pile up tightly, but a server span that ends after its client
    // returned (a streamed response, or a server descheduled before its end marker) votes off
    // the mark. The wide interval (its start inside): always holds the truth, but long client
    // spans make broad plateaus. Candidates come from both; the fit decides.
    const lo = c.start - s.start;
    const k = c.file * FILE_KEY + s.file;
    let v = votes.get(k);
    if (v === undefined) votes.set(k, (v = { lo: [], hi: [], nlo: [], nhi: [] }));
    v.lo.push(lo);
    v.hi.push(c.end - s.start);
    const narrow = c.end - s.end;
    if (narrow >= lo) {
      v.nlo.push(lo);
      v.nhi.push(narrow);
    }
  };
  // Anchors per side of each connection, and the votes that makes; connections are sampled
  // evenly when all of them would exceed the budget (the offset is one number per file pair).
  const all = [...groups.values()];
  const per = all.map((g) => Math.max(MIN_ANCHORS, Math.floor(KEY_BUDGET / (g.clients.length + g.servers.length))));
  let planned = 0;
  all.forEach((g, i) => (planned += Math.min(g.clients.length * g.servers.length, per[i]! * (g.clients.length + g.servers.length))));
  const stride = Math.max(1, Math.ceil(planned / TOTAL_BUDGET));
  const sampled: KeyGroup[] = [];
  for (let i = 0; i < all.length; i += stride) {
    const g = all[i]!;
    sampled.push(g);
    // Each anchor against every span of the other side (anchors against anchors once).
    const serverAnchors = anchors(g.servers, per[i]!);
    const clientAnchors = anchors(g.clients, per[i]!);
    for (const c of g.clients) for (const s of serverAnchors) vote(c, s);
    for (const s of g.servers) {
      if (serverAnchors.has(s)) continue;
      for (const c of clientAnchors) vote(c, s);
    }
  }
  return { votes, sampled };
}

interface Votes {
  /** wide intervals (start inside) */
  lo: number[];
  hi: number[];
  /** narrow intervals (wholly inside), of the pairs that allow one */
  nlo: number[];
  nhi: number[];
}

/** File pairs as numbers: client file * FILE_KEY + server file. */
const FILE_KEY = 1 << 20;
/** Votes per connection at most (beyond MIN_ANCHORS per side): all pairs of short connections. */
const KEY_BUDGET = 4096;
/** Votes per estimate at most: connections are sampled beyond it (bounds the cost on big inputs). */
const TOTAL_BUDGET = 200_000;
/** Anchors per connection and file at least: enough that some have their partner in the other capture. */
const MIN_ANCHORS = 8;

/** Up to `ANCHORS` spans of each file, evenly spread over the (start-sorted) list. */
function anchors(list: readonly Endpoint[], ANCHORS: number): Set<Endpoint> {
  const byFile = new Map<number, Endpoint[]>();
  for (const e of list) {
    let l = byFile.get(e.file);
    if (l === undefined) byFile.set(e.file, (l = []));
    l.push(e);
  }
  const out = new Set<Endpoint>();
  for (const l of byFile.values()) {
    if (l.length <= ANCHORS) for (const e of l) out.add(e);
    else for (let k = 0; k < ANCHORS; k++) out.add(l[Math.floor((k * (l.length - 1)) / (ANCHORS - 1))]!);
  }
  return out;
}

interface Edge {
  a: number;
  b: number;
  /** correction of b relative to a */
  d: number;
  weight: number;
  uncertainty?: number;
  conflicting?: boolean;
}

/** Offsets from edges: a maximum spanning tree grown from the lowest file of each group (step 2). */
function offsetsFrom(files: number, edges: readonly Edge[], fixed: ReadonlyMap<number, number> | undefined): FileOffset[] {
  const out: FileOffset[] = Array.from({ length: files }, (_, file) => ({ file, offsetNs: 0, pairs: 0 }));
  const known = new Array<boolean>(files).fill(false);
  if (fixed) {
    for (const [f, v] of fixed) {
      if (f >= 0 && f < files) {
        out[f]!.offsetNs = v;
        known[f] = true;
      }
    }
  }
  const sorted = [...edges].sort((x, y) => y.weight - x.weight);
  const grow = () => {
    let changed = true;
    while (changed) {
      changed = false;
      for (const e of sorted) {
        if (known[e.a] === known[e.b]) continue;
        const [from, to, d] = known[e.a] ? [e.a, e.b, e.d] : [e.b, e.a, -e.d];
        out[to] = {
          file: to,
          offsetNs: out[from]!.offsetNs + d,
          against: from,
          pairs: e.weight,
          ...(e.uncertainty !== undefined ? { uncertaintyNs: e.uncertainty } : {}),
          ...(e.conflicting ? { conflicting: true } : {}),
        };
        known[to] = true;
        changed = true;
        break; // heaviest edge first, again
      }
    }
  };
  grow();
  for (let f = 0; f < files; f++) {
    if (known[f]) continue;
    known[f] = true; // the reference of its group
    grow();
  }
  return out;
}

/**
 * Step 3: each server span → the one client span whose corrected interval holds its corrected
 * start. Sets each group's `matched` flags.
 */
function matchAll(groups: Map<string, KeyGroup>, off: readonly FileOffset[], onMatch?: (c: Endpoint, s: Endpoint) => void): { matches: Match[]; ambiguous: Set<Endpoint> } {
  const matches: Match[] = [];
  const ambiguous = new Set<Endpoint>();
  let cs: Float64Array = new Float64Array(0);
  let ce: Float64Array = new Float64Array(0);
  let taken = new Uint8Array(0);
  for (const g of groups.values()) {
    const n = g.clients.length;
    if (cs.length < n) {
      cs = new Float64Array(2 * n);
      ce = new Float64Array(2 * n);
      taken = new Uint8Array(2 * n);
    }
    // Corrected intervals in corrected start order (a stable sort, needed only when the files' offsets interleave them).
    let order: Endpoint[] = g.clients;
    let sorted = true;
    for (let i = 0; i < n; i++) {
      const c = order[i]!;
      const o = off[c.file]!.offsetNs;
      cs[i] = c.start + o;
      ce[i] = c.end + o;
      if (i > 0 && cs[i]! < cs[i - 1]!) sorted = false;
    }
    if (!sorted) {
      const idx = Array.from({ length: n }, (_, i) => i);
      const s0 = cs.slice(0, n);
      idx.sort((a, b) => s0[a]! - s0[b]! || a - b);
      order = idx.map((i) => g.clients[i]!);
      for (let i = 0; i < n; i++) {
        const c = order[i]!;
        const o = off[c.file]!.offsetNs;
        cs[i] = c.start + o;
        ce[i] = c.end + o;
      }
    }
    let maxDur = 0;
    for (let i = 0; i < n; i++) maxDur = Math.max(maxDur, ce[i]! - cs[i]!);
    taken.fill(0, 0, n);
    const matched = g.matched;
    matched.fill(0);
    const servers = g.servers;
    for (let j = 0; j < servers.length; j++) {
      const s = servers[j]!;
      const t = s.start + off[s.file]!.offsetNs;
      // Last client starting at or before t (binary search), then back while one could still hold t.
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cs[mid]! <= t) lo = mid + 1;
        else hi = mid;
      }
      let found = -1;
      let count = 0;
      for (let i = lo - 1; i >= 0 && cs[i]! >= t - maxDur; i--) {
        if (ce[i]! >= t) {
          count++;
          if (found < 0) found = i;
        }
      }
      if (count === 1 && found >= 0 && taken[found] === 0) {
        taken[found] = 1;
        matched[j] = 1;
        if (onMatch !== undefined) onMatch(order[found]!, s);
        else matches.push({ client: order[found]!, server: s });
      } else if (count > 1) ambiguous.add(s);
    }
  }
  return { matches, ambiguous };
}

/**
 * Step 4: per file pair, the offset the matched pairs allow. Only the start-only intervals are
 * hard constraints: a server span starts inside its client span, always, but it may end after
 * the client returned (the client span ends when the response headers arrive; the server's end
 * marker runs after the flush, later still on a loaded host). Within the range every pair's start
 * allows, the point is placed where the pairs whose server span fits wholly inside agree (the
 * narrow bounds), which centres it on the network's real latency; a pair whose server span
 * cannot fit there is simply not consulted.
 */
class Refiner {
  readonly per = new Map<number, { a: number; b: number; lo: number[]; hi: number[]; narrow: number[] }>();
  #lastKey = -1;
  #last: { a: number; b: number; lo: number[]; hi: number[]; narrow: number[] } | undefined;

  /** One matched pair (matchAll's order). */
  add(c: Endpoint, s: Endpoint): void {
    if (c.file === s.file) return;
    const k = c.file * FILE_KEY + s.file;
    let v = k === this.#lastKey ? this.#last : this.per.get(k);
    if (v === undefined) this.per.set(k, (v = { a: c.file, b: s.file, lo: [], hi: [], narrow: [] }));
    this.#lastKey = k;
    this.#last = v;
    v.lo.push(c.start - s.start);
    v.hi.push(c.end - s.start);
    v.narrow.push(c.end - s.end);
  }

  edges(): Edge[] {
    return refineEdges(this.per);
  }
}

function refineEdges(per: Map<number, { a: number; b: number; lo: number[]; hi: number[]; narrow: number[] }>): Edge[] {
  const edges: Edge[] = [];
  for (const v of per.values()) {
    let lo = -Infinity;
    let hi = Infinity;
    for (let i = 0; i < v.lo.length; i++) {
      lo = Math.max(lo, v.lo[i]!);
      hi = Math.min(hi, v.hi[i]!);
    }
    if (lo <= hi) {
      // Every narrow interval clipped to [lo, hi] starts at lo (lo is the largest of their
      // starts), so the most pairs fit wholly inside on [lo, the smallest narrow bound >= lo].
      let top = hi;
      for (const n of v.narrow) if (n >= lo && n < top) top = n;
      edges.push({ a: v.a, b: v.b, d: lo + (top - lo) / 2, weight: v.lo.length, uncertainty: (hi - lo) / 2 });
    } else {
      const m = maxCoverage(v.lo, v.hi)!;
      edges.push({ a: v.a, b: v.b, d: m.at, weight: m.count, uncertainty: (m.to - m.from) / 2, conflicting: true });
    }
  }
  return edges;
}

/** Joins the endpoints of `files` capture files (see the module comment). */
export function join(files: number, clients: readonly Endpoint[], servers: readonly Endpoint[], opts: JoinOptions = {}): JoinResult {
  const groups = groupByKey(clients, servers);
  // 1-2: first estimate: of the most-voted candidates, the one under which most server spans
  // start inside a client span of their connection (one each), then most end inside it too.
  const edges: Edge[] = [];
  const est = estimatePairs(groups);
  for (const [k, v] of est.votes) {
    const a = Math.floor(k / FILE_KEY);
    const b = k % FILE_KEY;
    let best: { d: number; starts: number; wholly: number } | undefined;
    for (const p of [...peaks(v.nlo, v.nhi, CANDIDATES), ...peaks(v.lo, v.hi, CANDIDATES)]) {
      const fit = fitCount(est.sampled, a, b, p.at);
      if (best === undefined || fit.starts > best.starts || (fit.starts === best.starts && fit.wholly > best.wholly)) best = { d: p.at, ...fit };
    }
    if (best !== undefined) edges.push({ a, b, d: best.d, weight: best.starts });
  }
  let offsets = offsetsFrom(files, edges, opts.fixedOffsets);
  // 3-4: match, refine the offsets from the matched pairs, match again with them.
  // (The first matches only feed the refinement: no Match objects for them.)
  const refiner = new Refiner();
  matchAll(groups, offsets, (c, s) => refiner.add(c, s));
  offsets = offsetsFrom(files, refiner.edges(), opts.fixedOffsets);
  const final = matchAll(groups, offsets);
  const matches = final.matches;

  // Pairs the refined offsets no longer allow were not matched again: count them. Each match
  // holds its own server span and its own client span (matchAll takes each once).
  const unmatchedServers = servers.length - matches.length;
  const unmatchedClients = clients.length - matches.length;
  const clockConflicts = countConflicts(groups, offsets, final.ambiguous);
  return { offsets, matches, unmatchedServers, unmatchedClients, ambiguous: final.ambiguous.size, clockConflicts };
}

/**
 * Unmatched server spans that start, once corrected, while their connection's client spans were
 * being captured (between the first one's start and the last one's end): their caller was
 * traced, yet no client span holds them, so the clocks could not be reconciled for them (drift,
 * or a step of one host's clock). Marks their file's offset as conflicting. Spans outside that
 * window are just outside the other capture.
 */
function countConflicts(groups: Map<string, KeyGroup>, offsets: FileOffset[], ambiguous: ReadonlySet<Endpoint>): number {
  let n = 0;
  for (const g of groups.values()) {
    const matched = g.matched;
    let first = Infinity;
    let last = -Infinity;
    for (const c of g.clients) {
      const o = offsets[c.file]!.offsetNs;
      first = Math.min(first, c.start + o);
      last = Math.max(last, c.end + o);
    }
    const servers = g.servers;
    for (let j = 0; j < servers.length; j++) {
      const s = servers[j]!;
      if (matched[j] === 1 || (ambiguous.size > 0 && ambiguous.has(s))) continue;
      const t = s.start + offsets[s.file]!.offsetNs;
      if (t < first || t > last) continue;
      n++;
      offsets[s.file]!.conflicting = true;
    }
  }
  return n;
}
