/**
 * The join and clock-offset logic of `beetrace merge` (src/merge/join.ts) on synthetic spans:
 * keep-alive connections, skewed clocks, chains of three files, NAT, ambiguity and drift.
 */
import { describe, expect, test } from "bun:test";
import { type Endpoint, endpointKey, join, maxCoverage } from "../../../src/merge/join.ts";
import { hostPortKey } from "../../../src/merge/endpoints.ts";
import { rewrites } from "../../../src/cli/merge.ts";

const MS = 1_000_000;
let ids = 0;
const id = (len: number) => (++ids).toString(16).padStart(len, "0");
/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG, Numerical Recipes constants): irregular, not periodic. */
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);

function client(file: number, key: string, start: number, dur: number, traceId = id(32)): Endpoint {
  return { file, key, start, end: start + dur, traceId, spanId: id(16) };
}

/**
 * One HTTP/1 keep-alive connection: `n` requests one after another at irregular gaps, each client span lasting
 * 10 ms, the server span starting 1 ms in and lasting 7 ms (true time); the server file's clock
 * reads `skew` ahead.
 */
function connection(key: string, n: number, t0: number, skew: number, cf = 0, sf = 1, gap = 3 * MS): { clients: Endpoint[]; servers: Endpoint[] } {
  const clients: Endpoint[] = [];
  const servers: Endpoint[] = [];
  let at = t0;
  for (let i = 0; i < n; i++) {
    // Irregular gaps between requests, as real traffic has (deterministic).
    if (i > 0) at += 10 * MS + gap + rnd() * 20 * MS;
    const c = client(cf, key, at, 10 * MS);
    clients.push(c);
    servers.push({ file: sf, key, start: at + 1 * MS + skew, end: at + 8 * MS + skew, traceId: id(32), spanId: id(16) });
  }
  return { clients, servers };
}

/** Every match pairs the i-th request's spans, and no child starts before its parent once corrected. */
function expectRightPairs(r: ReturnType<typeof join>, clients: Endpoint[], servers: Endpoint[]): void {
  const want = new Map(servers.map((s, i) => [s, clients[i]!]));
  for (const m of r.matches) {
    expect(m.client).toBe(want.get(m.server)!);
    const cs = m.client.start + r.offsets[m.client.file]!.offsetNs;
    const ce = m.client.end + r.offsets[m.client.file]!.offsetNs;
    const ss = m.server.start + r.offsets[m.server.file]!.offsetNs;
    expect(ss).toBeGreaterThanOrEqual(cs);
    expect(ss).toBeLessThanOrEqual(ce);
  }
}

describe("endpoint keys", () => {
  test("IPv4-mapped IPv6 and brackets are normalised; RemoteAddr strings parse", () => {
    expect(endpointKey("::ffff:10.0.0.2", 5000)).toBe("10.0.0.2|5000");
    expect(endpointKey("[::1]", 80)).toBe("::1|80");
    expect(hostPortKey("10.0.0.2:51234")).toBe("10.0.0.2|51234");
    expect(hostPortKey("[::1]:51234")).toBe("::1|51234");
    expect(hostPortKey("[::ffff:127.0.0.1]:9")).toBe("127.0.0.1|9");
    expect(hostPortKey("::1:80")).toBeUndefined();
    expect(hostPortKey("host")).toBeUndefined();
    expect(hostPortKey("h:99999")).toBeUndefined();
    expect(hostPortKey("")).toBeUndefined();
  });
});

describe("maxCoverage", () => {
  test("the middle of the range most intervals share", () => {
    const m = maxCoverage([0, 5, 6, 20], [10, 8, 12, 30])!;
    expect(m.count).toBe(3);
    expect(m.from).toBe(6);
    expect(m.to).toBe(8);
    expect(m.at).toBe(7);
    expect(maxCoverage([], [])).toBeUndefined();
  });
});

describe("join", () => {
  test("keep-alive: each request of one connection finds its own server span; the offset is estimated from the pairs", () => {
    const skew = 2_000 * MS; // the server host's clock is 2 s ahead
    const { clients, servers } = connection("10.0.0.1|40000", 50, 1_000 * MS, skew);
    const r = join(2, clients, servers);
    expect(r.matches.length).toBe(50);
    expectRightPairs(r, clients, servers);
    expect(r.offsets[0]!.offsetNs).toBe(0);
    // True correction -2 s; the pairs allow [-2 s - 1 ms, -2 s + 9 ms - ...]: within 10 ms.
    expect(Math.abs(r.offsets[1]!.offsetNs + skew)).toBeLessThan(10 * MS);
    expect(r.offsets[1]!.against).toBe(0);
    expect(r.offsets[1]!.pairs).toBe(50);
    expect(r.unmatchedServers + r.unmatchedClients + r.ambiguous + r.clockConflicts).toBe(0);
  });

  test("a skew larger than the whole connection, negative too", () => {
    for (const skew of [-3_600_000 * MS, 90_000 * MS]) {
      const { clients, servers } = connection("10.0.0.1|40001", 20, 5_000 * MS, skew);
      const r = join(2, clients, servers);
      expect(r.matches.length).toBe(20);
      expectRightPairs(r, clients, servers);
      expect(Math.abs(r.offsets[1]!.offsetNs + skew)).toBeLessThan(10 * MS);
    }
  });

  test("captures that start at different points of a connection still pair up right", () => {
    const { clients, servers } = connection("10.0.0.1|40002", 30, 0, 500 * MS, 0, 1, 40 * MS);
    // The server was traced from request 10 on, the client until request 25.
    const c = clients.slice(0, 25);
    const s = servers.slice(10);
    const r = join(2, c, s);
    expect(r.matches.length).toBe(15);
    const want = new Map(servers.map((x, i) => [x, clients[i]!]));
    for (const m of r.matches) expect(m.client).toBe(want.get(m.server)!);
    expect(r.unmatchedClients).toBe(10);
    expect(r.unmatchedServers).toBe(5);
    // Outside the other capture's window: not a clock conflict.
    expect(r.clockConflicts).toBe(0);
  });

  test("many connections: the correction is the one most pairs agree on", () => {
    const all = { clients: [] as Endpoint[], servers: [] as Endpoint[] };
    for (let k = 0; k < 40; k++) {
      const c = connection(`10.0.0.1|${41000 + k}`, 1 + (k % 4), k * 7 * MS, -750 * MS);
      all.clients.push(...c.clients);
      all.servers.push(...c.servers);
    }
    const r = join(2, all.clients, all.servers);
    expect(r.matches.length).toBe(all.servers.length);
    expectRightPairs(r, all.clients, all.servers);
    // The pairs allow [749 ms, 759 ms]: network time cannot be told from clock offset.
    expect(Math.abs(r.offsets[1]!.offsetNs - 750 * MS)).toBeLessThan(10 * MS);
    expect(r.offsets[1]!.uncertaintyNs!).toBeLessThanOrEqual(5 * MS);
  });

  test("a chain of three files: offsets compose (edge → orders → stock)", () => {
    // edge (file 0) calls orders (file 2, clock +1 s); orders calls stock (file 1, clock -4 s vs true).
    const a = connection("10.0.0.1|42000", 10, 0, 1_000 * MS, 0, 2);
    const clientsB: Endpoint[] = [];
    const serversC: Endpoint[] = [];
    for (const [i, s] of a.servers.entries()) {
      // orders' client call inside its server span (its own clock), stock 4 s behind true time.
      const trueStart = s.start - 1_000 * MS + 2 * MS;
      const c = client(2, "10.0.0.2|43000", trueStart + 1_000 * MS, 3 * MS, s.traceId);
      clientsB.push(c);
      serversC.push({ file: 1, key: "10.0.0.2|43000", start: trueStart + 1 * MS - 4_000 * MS, end: trueStart + 2 * MS - 4_000 * MS, traceId: id(32), spanId: id(16) });
      void i;
    }
    const r = join(3, [...a.clients, ...clientsB], [...a.servers, ...serversC]);
    expect(r.matches.length).toBe(20);
    expect(Math.abs(r.offsets[2]!.offsetNs + 1_000 * MS)).toBeLessThan(10 * MS);
    expect(Math.abs(r.offsets[1]!.offsetNs - 4_000 * MS)).toBeLessThan(10 * MS);
    expect(r.offsets[1]!.against).toBe(2);
    // The trace rewrite follows the chain to edge's trace.
    const rw = rewrites(r, 3);
    expect(rw.joined).toBe(20);
    for (const [i, s] of serversC.entries()) {
      const moved = rw.traces.get(s.traceId)!;
      expect(Buffer.from(moved).toString("hex")).toBe(a.clients[i]!.traceId);
    }
  });

  test("NAT: a server span whose peer matches no client span stays unjoined and is counted", () => {
    const { clients, servers } = connection("10.0.0.1|40010", 5, 0, 0);
    const natted: Endpoint = { file: 1, key: "192.0.2.7|5555", start: 1 * MS, end: 2 * MS, traceId: id(32), spanId: id(16) };
    const r = join(2, clients, [...servers, natted]);
    expect(r.matches.length).toBe(5);
    expect(r.unmatchedServers).toBe(1);
    expect(r.matches.some((m) => m.server === natted)).toBe(false);
  });

  test("two client hosts behind NAT sharing one address at the same time: ambiguous, not guessed", () => {
    const key = "10.9.9.9|40000";
    const c1 = client(0, key, 0, 10 * MS);
    const c2 = client(2, key, 0, 10 * MS);
    const s: Endpoint = { file: 1, key, start: 2 * MS, end: 5 * MS, traceId: id(32), spanId: id(16) };
    const r = join(3, [c1, c2], [s], { fixedOffsets: new Map([[0, 0], [1, 0], [2, 0]]) });
    expect(r.matches.length).toBe(0);
    expect(r.ambiguous).toBe(1);
    expect(r.unmatchedServers).toBe(1);
  });

  test("drifting clocks: no single offset fits; pairs outside the chosen one stay unjoined, no child before its parent", () => {
    const clients: Endpoint[] = [];
    const servers: Endpoint[] = [];
    // 40 requests at irregular times; the server clock drifts by 0.1 ms per request (4 ms over
    // the capture) while a server span has 2 ms of slack inside its client span.
    for (let i = 0; i < 40; i++) {
      const at = i * 100 * MS + rnd() * 60 * MS;
      const c = client(0, "10.0.0.1|44000", at, 3 * MS);
      clients.push(c);
      const drift = i * 0.1 * MS;
      servers.push({ file: 1, key: c.key, start: at + 1 * MS + drift, end: at + 2 * MS + drift, traceId: id(32), spanId: id(16) });
    }
    const r = join(2, clients, servers);
    expect(r.offsets[1]!.conflicting).toBe(true);
    expect(r.matches.length).toBeGreaterThan(0);
    expect(r.matches.length).toBeLessThan(40);
    expectRightPairs(r, clients, servers);
    expect(r.clockConflicts).toBeGreaterThan(0);
  });

  test("TLS keep-alive as measured: a long first request (handshake), and server spans that end after their client span", () => {
    // [server start delay, client duration, client end − server end] in µs, from a TLS run of
    // tests/e2e/merge.test.ts; on a loaded host a server's end marker runs after the client already
    // has the response headers (negative margin). Only starts bound the offset; the handshake's
    // long client span holds several shifted server spans and must not win the estimate.
    const US = 1000;
    const measured = [[5783, 8209, 70], [117, 548, 130], [181, 429, -40], [89, 382, 100], [126, 436, 74], [78, 393, 65]];
    for (let round = 0; round < 200; round++) {
      const rows = round === 0 ? measured : measured.map(([d, c], i) => [d!, c!, i === 0 ? 70 : Math.round(-150 + rnd() * 400)]);
      const skew = 2_500 * MS;
      const clients: Endpoint[] = [];
      const servers: Endpoint[] = [];
      let at = 1_000 * MS;
      for (const [d, cd, m] of rows) {
        clients.push(client(0, "127.0.0.1|33820", at, cd! * US));
        servers.push({ file: 1, key: "127.0.0.1|33820", start: at + d! * US + skew, end: at + (cd! - m!) * US + skew, traceId: id(32), spanId: id(16) });
        at += cd! * US + (200 + rnd() * 400) * US;
      }
      const r = join(2, clients, servers);
      expect({ round, matches: r.matches.length, conflicts: r.clockConflicts }).toEqual({ round, matches: 6, conflicts: 0 });
      expectRightPairs(r, clients, servers);
      expect(Math.abs(r.offsets[1]!.offsetNs + skew)).toBeLessThan(1 * MS);
    }
  });

  test("spans of one file match without any offset (a process calling itself)", () => {
    const { clients, servers } = connection("127.0.0.1|45000", 3, 0, 0, 0, 0);
    const r = join(1, clients, servers);
    expect(r.matches.length).toBe(3);
    expect(r.offsets[0]!.offsetNs).toBe(0);
  });
});

describe("rewrites", () => {
  test("a trace claimed by two callers stays with the first; the parent of each joined server span is its client span", () => {
    const key = "10.0.0.1|46000";
    const c1 = client(0, key, 0, 10 * MS);
    const c2 = client(0, "10.0.0.1|46001", 20 * MS, 10 * MS);
    const shared = id(32);
    const s1: Endpoint = { file: 1, key, start: 1 * MS, end: 2 * MS, traceId: shared, spanId: id(16) };
    const s2: Endpoint = { file: 1, key: c2.key, start: 21 * MS, end: 22 * MS, traceId: shared, spanId: id(16) };
    const r = join(2, [c1, c2], [s1, s2], { fixedOffsets: new Map([[0, 0], [1, 0]]) });
    expect(r.matches.length).toBe(2);
    const rw = rewrites(r, 2);
    expect(rw.joined).toBe(1);
    expect(rw.conflicts).toBe(1);
    expect(Buffer.from(rw.traces.get(shared)!).toString("hex")).toBe(c1.traceId);
    expect(Buffer.from(rw.parents[1]!.get(s1.spanId)!).toString("hex")).toBe(c1.spanId);
    expect(rw.parents[1]!.has(s2.spanId)).toBe(false);
  });

  test("a server span already in its caller's trace (traceparent came in) keeps it and gets the client as parent", () => {
    const c = client(0, "10.0.0.1|47000", 0, 10 * MS);
    const s: Endpoint = { file: 1, key: c.key, start: 1 * MS, end: 2 * MS, traceId: c.traceId, spanId: id(16) };
    const rw = rewrites(join(2, [c], [s]), 2);
    expect(rw.joined).toBe(1);
    expect(rw.traces.size).toBe(0);
    expect(rw.parents[1]!.size).toBe(1);
  });
});
