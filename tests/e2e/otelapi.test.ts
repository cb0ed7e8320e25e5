/**
 * @module tests/e2e/otelapi — spans an application makes with the OpenTelemetry Go API while no
 * SDK is registered, captured read-only (nothing written into the target) and compared field by
 * field with what the same program exports when it registers the real OTel SDK.
 *
 * tests/fixtures/go/otelapi (its doc comment lists the workload) is built with the newest otel
 * release (go.mod) and the oldest the offsets cover (v1.0.1/go.mod, the same sources), stripped;
 * and each with the `otelsdk` tag: the SDK with an in-memory exporter, its spans served as JSON.
 * Ids differ between the runs; names, kinds, attributes, events, status, links, scope and the
 * parent structure must not. RecordError's exception.type is the Go type's name, read from the
 * binary's type data, which a bpf_probe_read_user cannot fault in: where that page is not
 * resident in the process the attribute is left out, so it is compared where it was captured.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, FIXTURES_GO } from "../harness/go.ts";
import { e2eSkipReason, goVersionOf, httpGet, readSpans, runTracer, startSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("otelapi");

const SCOPE = "example.com/beetrace/otelapi";
/** Workloads per run: a prime, and each one's spans are told apart by order.id. */
const RUNS = 3;

interface SdkSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: string;
  start: number;
  end: number;
  attributes: Record<string, unknown>;
  events: { name: string; time: number; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: string;
  statusMessage: string;
  scope: { name: string; version: string; schemaUrl: string };
}

/** What must be equal, without ids and times: the parent by name, events in order. */
interface Shape {
  name: string;
  parent: string | undefined;
  kind: string;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code: string; message?: string };
  scope: { name: string; version: string; schemaUrl?: string };
}

/** exception.type is compared on its own (see the module comment). */
function withoutType(attrs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).filter(([k]) => k !== "exception.type"));
}

function sdkShapes(spans: SdkSpan[]): Shape[] {
  const byId = new Map(spans.map((s) => [s.spanId, s.name]));
  return spans.map((s) => ({
    name: s.name,
    parent: s.parentSpanId ? byId.get(s.parentSpanId) : undefined,
    kind: s.kind,
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, attributes: withoutType(e.attributes) })),
    links: s.links,
    status: s.status === "Error" ? { code: "error", message: s.statusMessage } : { code: s.status.toLowerCase() },
    scope: { name: s.scope.name, version: s.scope.version, ...(s.scope.schemaUrl ? { schemaUrl: s.scope.schemaUrl } : {}) },
  }));
}

function ourShapes(spans: SpanRecord[]): Shape[] {
  const byId = new Map(spans.map((s) => [s.spanId, s.name]));
  return spans.map((s) => ({
    name: s.name,
    parent: s.parentSpanId ? byId.get(s.parentSpanId) : undefined,
    kind: s.kind,
    attributes: s.attributes,
    events: (s.events ?? []).map((e) => ({ name: e.name, attributes: withoutType(e.attributes) })),
    links: s.links ?? [],
    status: s.status.message !== undefined ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
    scope: s.scope,
  }));
}

const byOrder = (a: Shape, b: Shape): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The spans of one workload (one process-order tree), in a stable order. */
function workload<T extends { name: string }>(all: T[], rootOf: (s: T) => T | undefined, n: number, orderId: (s: T) => unknown): T[] {
  return all.filter((s) => {
    const root = rootOf(s);
    return root !== undefined && orderId(root) === `o-${n}`;
  });
}

/** otel_legacy: the release has no Span.AddLink (the fixture's addlink_legacy.go). */
const VERSIONS = [
  { otel: "v1.47.0", dir: join(FIXTURES_GO, "otelapi"), tags: [] as string[] },
  { otel: "v1.0.1", dir: join(FIXTURES_GO, "otelapi", "v1.0.1"), tags: ["otel_legacy"] },
];

describe.skipIf(reason !== undefined)(`OTel API spans without an SDK${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const v of VERSIONS) {
    test(`otel ${v.otel}, stripped: the spans equal the SDK's (names, kinds, attributes, events, status, links, scope, parents)`, async () => {
      const toolchain = await goVersionOf();
      const [stripped, withSdk] = await Promise.all([
        buildFixture({ dir: v.dir, toolchain, mode: "strip", tags: v.tags }),
        buildFixture({ dir: v.dir, toolchain, mode: "default", tags: [...v.tags, "otelsdk"] }),
      ]);

      // The reference: the real SDK, in-memory exporter.
      const ref = await startSample(withSdk);
      let sdk: SdkSpan[];
      try {
        for (let n = 1; n <= RUNS; n++) expect((await httpGet(ref.port, `/work?n=${n}`)).status).toBe(200);
        sdk = (await (await fetch(`${ref.base}/spans`)).json()) as SdkSpan[];
      } finally {
        await ref.stop();
      }
      expect(sdk.length).toBe(4 * RUNS);

      // beetrace on the SDK-less build.
      const app = await startSample(stripped);
      const out = join(work, `otelapi-${v.otel}.cbor`);
      try {
        const tr = runTracer(["attach", "--pid", String(app.pid), "--out", out]);
        await tr.started();
        // A stripped build needs the otel offsets in offsets.json (the tracker, --only go.opentelemetry.io/otel).
        expect(/probe otelapi[^\n]*disabled[^\n]*/.exec(tr.stderr())?.[0]).toBeUndefined();
        expect(tr.stderr()).toContain("otelapi");
        for (let n = 1; n <= RUNS; n++) expect((await httpGet(app.port, `/work?n=${n}`)).status).toBe(200);
        tr.signal("SIGINT");
        expect(await tr.exit()).toMatchObject({ code: 0, signal: null });
      } finally {
        await app.stop();
      }
      const cap = readSpans(out);
      const ours = cap.spans.filter((s) => s.scope.name === SCOPE);
      expect(ours.length).toBe(4 * RUNS);

      const sdkById = new Map(sdk.map((s) => [s.spanId, s]));
      const sdkRoot = (s: SdkSpan): SdkSpan | undefined => {
        let cur: SdkSpan | undefined = s;
        while (cur?.parentSpanId && sdkById.has(cur.parentSpanId)) cur = sdkById.get(cur.parentSpanId);
        return cur;
      };
      const ourById = new Map(ours.map((s) => [s.spanId, s]));
      const ourRoot = (s: SpanRecord): SpanRecord | undefined => {
        let cur: SpanRecord | undefined = s;
        while (cur?.parentSpanId && ourById.has(cur.parentSpanId)) cur = ourById.get(cur.parentSpanId);
        return cur;
      };
      for (let n = 1; n <= RUNS; n++) {
        const theirs = workload(sdk, sdkRoot, n, (r) => r.attributes["order.id"]);
        const mine = workload(ours, ourRoot, n, (r) => r.attributes["order.id"]);
        expect(ourShapes(mine).sort(byOrder)).toEqual(sdkShapes(theirs).sort(byOrder));
        const types = (spans: { events?: { name: string; attributes: Record<string, unknown> }[] }[]) =>
          spans.flatMap((x) => (x.events ?? []).filter((e) => e.name === "exception").map((e) => e.attributes["exception.type"]));
        const sdkTypes = types(theirs);
        expect(sdkTypes).toEqual(["*errors.errorString"]);
        for (const t of types(mine)) if (t !== undefined) expect(t).toBe(sdkTypes[0] as string);

        // Joined with the automatic spans both ways: the root is the server span's child, the
        // HTTP client call made under call-upstream's context is call-upstream's child.
        const root = mine.find((s) => s.name === "process-order")!;
        const server = cap.spans.find((s) => s.spanId === root.parentSpanId);
        expect({ kind: server?.kind, name: server?.name, trace: server?.traceId }).toEqual({ kind: "server", name: "GET /work", trace: root.traceId });
        const upstream = mine.find((s) => s.name === "call-upstream")!;
        const client = cap.spans.filter((s) => s.kind === "client" && s.parentSpanId === upstream.spanId);
        expect(client.map((c) => ({ name: c.name, trace: c.traceId }))).toEqual([{ name: "GET", trace: root.traceId }]);
        for (const s of mine) {
          expect(s.traceId).toBe(root.traceId);
          expect(s.startTimeUnixNano <= s.endTimeUnixNano).toBe(true);
          for (const e of s.events ?? []) expect(e.timeUnixNano >= s.startTimeUnixNano && e.timeUnixNano <= s.endTimeUnixNano).toBe(true);
        }
      }
    }, 600_000);
  }
});
