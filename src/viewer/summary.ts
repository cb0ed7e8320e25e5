/**
 * @module viewer/summary — RED figures per service and endpoint: request rate, error ratio,
 * duration percentiles, the slowest traces and a latency histogram. Shared by
 * `beetrace summary` and the HTML viewer's summary tab.
 *
 * Endpoint of a span: gRPC `rpc.service/rpc.method`; SQL `db.operation.name db.collection.name`;
 * HTTP server `METHOD route` (else the span name); HTTP client `METHOD server.address[:port]`
 * (the name alone, "GET", would put every outgoing call in one row); anything else its name.
 * Spans are grouped by (service, kind, endpoint), so a service's incoming requests and its
 * outgoing calls are separate rows.
 *
 * Percentiles are nearest-rank (the ⌈p·n⌉-th smallest duration: always a duration that was
 * measured). The rate is count / window, where the window runs from the earliest span start to
 * the latest span end of everything summarized (all files together).
 */
import type { Span, SpanKind } from "../spans/model.ts";

/** Slowest traces listed per endpoint. */
export const SLOWEST = 5;
/**
 * Histogram buckets: 4 per decade (edges 10^(k/4) ns, ×1.78 each) from 1 µs to 1000 s;
 * bucket 0 is below 1 µs, the last is 1000 s and more.
 */
export const HIST_FIRST_EXP = 3;
export const HIST_PER_DECADE = 4;
export const HIST_BUCKETS = (12 - HIST_FIRST_EXP) * HIST_PER_DECADE + 2;

/** Lower edge of bucket `b` in ns (bucket 0: 0). */
export function bucketLowNs(b: number): number {
  return b <= 0 ? 0 : Math.round(10 ** (HIST_FIRST_EXP + (b - 1) / HIST_PER_DECADE));
}

export function bucketOf(ns: number): number {
  if (ns < 10 ** HIST_FIRST_EXP) return 0;
  let b = Math.min(Math.floor((Math.log10(ns) - HIST_FIRST_EXP) * HIST_PER_DECADE) + 1, HIST_BUCKETS - 1);
  // The edges are rounded to whole ns: settle on the bucket whose rounded edges hold ns.
  while (b + 1 < HIST_BUCKETS && ns >= bucketLowNs(b + 1)) b++;
  while (b > 1 && ns < bucketLowNs(b)) b--;
  return b;
}

export interface SlowTrace {
  traceId: string;
  spanId: string;
  durationNs: number;
}

export interface EndpointSummary {
  service: string;
  kind: SpanKind;
  endpoint: string;
  count: number;
  errors: number;
  errorRatio: number;
  /** count / window seconds; null when the window is empty */
  ratePerSecond: number | null;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  maxNs: number;
  slowest: SlowTrace[];
  /** Span counts per bucket (see bucketLowNs), HIST_BUCKETS entries */
  histogram: number[];
}

export interface Summary {
  spans: number;
  /** Earliest span start and latest span end (epoch ns), undefined without spans */
  windowStartNs: bigint | undefined;
  windowEndNs: bigint | undefined;
  windowSeconds: number;
  endpoints: EndpointSummary[];
}

/** The endpoint a span belongs to (see the module comment). */
export function endpointOf(span: Pick<Span, "name" | "kind" | "attributes">): string {
  const a = span.attributes;
  const rpcMethod = a["rpc.method"];
  if (rpcMethod !== undefined) {
    const svc = a["rpc.service"];
    return svc !== undefined ? `${String(svc)}/${String(rpcMethod)}` : String(rpcMethod);
  }
  const op = a["db.operation.name"];
  if (op !== undefined) {
    const table = a["db.collection.name"];
    return table !== undefined ? `${String(op)} ${String(table)}` : String(op);
  }
  const method = a["http.request.method"];
  if (method !== undefined) {
    if (span.kind === "client") {
      const host = a["server.address"];
      if (host !== undefined) {
        const port = a["server.port"];
        return `${String(method)} ${String(host)}${port !== undefined ? `:${String(port)}` : ""}`;
      }
      return span.name;
    }
    const route = a["http.route"];
    if (route !== undefined) return `${String(method)} ${String(route)}`;
  }
  return span.name;
}

interface Group {
  service: string;
  kind: SpanKind;
  endpoint: string;
  durations: Float64Array;
  count: number;
  errors: number;
  slowest: SlowTrace[];
}

/** Feeds spans one at a time (a million spans cost 8 bytes each here), then summarize(). */
export class SummaryBuilder {
  readonly #groups = new Map<string, Group>();
  #spans = 0;
  #start: bigint | undefined;
  #end: bigint | undefined;

  add(span: Span, service: string): void {
    this.#spans++;
    if (this.#start === undefined || span.startTimeUnixNano < this.#start) this.#start = span.startTimeUnixNano;
    if (this.#end === undefined || span.endTimeUnixNano > this.#end) this.#end = span.endTimeUnixNano;
    const endpoint = endpointOf(span);
    const key = `${service}\u0000${span.kind}\u0000${endpoint}`;
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = { service, kind: span.kind, endpoint, durations: new Float64Array(16), count: 0, errors: 0, slowest: [] };
      this.#groups.set(key, g);
    }
    // A negative duration (clock step inside a span) counts as 0 rather than skewing the low end.
    const d = Math.max(0, Number(span.endTimeUnixNano - span.startTimeUnixNano));
    if (g.count === g.durations.length) {
      const grown = new Float64Array(g.durations.length * 2);
      grown.set(g.durations);
      g.durations = grown;
    }
    g.durations[g.count++] = d;
    if (span.status.code === "error") g.errors++;
    const last = g.slowest[g.slowest.length - 1];
    if (g.slowest.length < SLOWEST || (last !== undefined && d > last.durationNs)) {
      g.slowest.push({ traceId: span.traceId, spanId: span.spanId, durationNs: d });
      g.slowest.sort((x, y) => y.durationNs - x.durationNs);
      if (g.slowest.length > SLOWEST) g.slowest.pop();
    }
  }

  summarize(): Summary {
    const windowNs = this.#start !== undefined && this.#end !== undefined ? Number(this.#end - this.#start) : 0;
    const windowSeconds = windowNs / 1e9;
    const endpoints: EndpointSummary[] = [];
    for (const g of this.#groups.values()) {
      const d = g.durations.subarray(0, g.count).sort();
      const rank = (p: number) => d[Math.max(0, Math.ceil((p / 100) * g.count) - 1)]!;
      const histogram = new Array<number>(HIST_BUCKETS).fill(0);
      for (const x of d) histogram[bucketOf(x)]!++;
      endpoints.push({
        service: g.service,
        kind: g.kind,
        endpoint: g.endpoint,
        count: g.count,
        errors: g.errors,
        errorRatio: g.errors / g.count,
        ratePerSecond: windowSeconds > 0 ? g.count / windowSeconds : null,
        p50Ns: rank(50),
        p90Ns: rank(90),
        p99Ns: rank(99),
        maxNs: d[g.count - 1]!,
        slowest: g.slowest,
        histogram,
      });
    }
    const kindOrder: Record<SpanKind, number> = { server: 0, consumer: 1, internal: 2, client: 3, producer: 4 };
    endpoints.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : kindOrder[a.kind] - kindOrder[b.kind] || b.count - a.count || (a.endpoint < b.endpoint ? -1 : 1)));
    return { spans: this.#spans, windowStartNs: this.#start, windowEndNs: this.#end, windowSeconds, endpoints };
  }
}
