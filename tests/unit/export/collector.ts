/**
 * @module tests/unit/export/collector — a scriptable OTLP/HTTP endpoint on 127.0.0.1 for exporter tests.
 *
 * Records every request (arrival time, headers, body with gzip undone) and answers with
 * whatever the test's `respond` returns (default: 200 with an empty body). Also a spans
 * generator with unique ids and a condition waiter (tests wait on conditions, not on sleeps).
 */
import { gunzipSync } from "node:zlib";
import type { Span } from "../../../src/spans/model.ts";

export interface Received {
  at: number;
  headers: Headers;
  /** Body after undoing Content-Encoding: gzip */
  body: Uint8Array;
  /** Raw body as sent */
  raw: Uint8Array;
}

export type Responder = (req: Received, index: number) => Response | Promise<Response>;

export interface TestCollector {
  url: string;
  port: number;
  requests: Received[];
  respond: Responder;
  stop(): void;
}

export function startCollector(respond: Responder = () => new Response(null, { status: 200 }), port = 0): TestCollector {
  const c: TestCollector = {
    url: "",
    port: 0,
    requests: [],
    respond,
    stop: () => {},
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      const raw = new Uint8Array(await req.arrayBuffer());
      const body = req.headers.get("content-encoding") === "gzip" ? new Uint8Array(gunzipSync(raw)) : raw;
      const r: Received = { at: Date.now(), headers: req.headers, body, raw };
      c.requests.push(r);
      return c.respond(r, c.requests.length - 1);
    },
  });
  c.port = server.port ?? 0;
  c.url = `http://127.0.0.1:${c.port}/v1/traces`;
  c.stop = () => void server.stop(true);
  return c;
}

/** Span ids in OTLP/JSON request bodies. */
export function jsonSpanIds(r: Received): string[] {
  const req = JSON.parse(new TextDecoder().decode(r.body)) as {
    resourceSpans: { scopeSpans: { spans: { spanId: string }[] }[] }[];
  };
  return req.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.spanId)));
}

/** `n` distinct spans (span ids 1..n as 16 hex digits, offset by `from`). */
export function makeSpans(n: number, from = 0): Span[] {
  const t0 = 1_700_000_000_000_000_000n;
  return Array.from({ length: n }, (_, i) => {
    const k = from + i + 1;
    return {
      traceId: (0xabc00000 + k).toString(16).padStart(32, "0"),
      spanId: k.toString(16).padStart(16, "0"),
      name: `GET /item/${k}`,
      kind: "server" as const,
      startTimeUnixNano: t0 + BigInt(k) * 1000n,
      endTimeUnixNano: t0 + BigInt(k) * 1000n + 500n,
      attributes: { "http.request.method": "GET", "http.response.status_code": 200, k },
      status: { code: "unset" as const },
      scope: { name: "beetrace/net/http", version: "0.1.0" },
    };
  });
}

/** Resolve once `cond()` holds; reject with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
