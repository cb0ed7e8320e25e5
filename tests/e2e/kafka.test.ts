/**
 * @module tests/e2e/kafka — the kafka-go probes against a real Apache Kafka broker (KRaft, started
 * by scripts/services/kafka.sh): the fixture (tests/fixtures/go/kafka) produces from an HTTP
 * handler and consumes with two readers on the same topic, one without a group (FetchMessage)
 * and one in a group (ReadMessage). Every message has its `send` span (a child of the HTTP
 * server span that produced it) and one `receive` span per reader; a message whose traceparent
 * header the application set continues that trace on the consumer side. Unstripped (offsets from
 * DWARF) and stripped (offsets.json alone).
 *
 * Bounded: 4 produce requests (5 messages + 1 failing call), 10 receives awaited with deadlines;
 * the broker start is waited on (the script polls its port), never slept on.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, newestToolchain, type BuildMode } from "../harness/go.ts";
import { ROOT, e2eSkipReason, httpGet, killAll, listeningAddress, readSpans, runTracer, waitFor } from "./harness.ts";

// Java and Maven are not required up front: scripts/services/kafka.sh installs them (Debian packages).
const reason = e2eSkipReason();
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-kafka-"));
const fixtures = new Set<ChildProcess>();
afterAll(() => {
  for (const p of fixtures) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  killAll();
  rmSync(work, { recursive: true, force: true });
});

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const BROKER_PORT = Number(process.env.BEETRACE_KAFKA_PORT ?? 39092);

/** Starts the broker (idempotent: quick when it already answers) and creates `topic`. */
function startBroker(topic: string): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn("bash", [join(ROOT, "scripts", "services", "kafka.sh"), "start", topic], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    // The script bounds its own waits (BEETRACE_KAFKA_WAIT); this only catches a hung JVM.
    const timer = setTimeout(() => p.kill("SIGKILL"), 280_000);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) res();
      else rej(new Error(`scripts/services/kafka.sh start failed (${code ?? signal}):\n${err}`));
    });
  });
}

/** The status of one GET with extra header lines (harness httpGet). */
const get = (port: number, path: string, headers: [string, string][] = []): Promise<number> => httpGet(port, path, headers).then((e) => e.status);

interface Fixture {
  pid: number;
  port: number;
  out(): string;
  err(): string;
}

async function startFixture(bin: string, topic: string, group: string): Promise<Fixture> {
  const p = spawn(bin, ["-broker", `127.0.0.1:${BROKER_PORT}`, "-topic", topic, "-group", group], { stdio: ["ignore", "pipe", "pipe"] });
  fixtures.add(p);
  let out = "";
  let err = "";
  p.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const addr = await waitFor(() => listeningAddress(out) ?? (p.exitCode !== null ? Promise.reject(new Error(`fixture exited: ${err}`)) : undefined), 15_000, "the fixture's 'listening on' line");
  return { pid: p.pid!, port: addr.port, out: () => out, err: () => err };
}

const byStart = (a: SpanRecord, b: SpanRecord): number => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0);
const BASE = (op: "send" | "receive", topic: string) => ({ "messaging.system": "kafka", "messaging.operation.type": op, "messaging.operation.name": op, "messaging.destination.name": topic });

// slots "1": BEETRACE_SERVER_SLOTS=1, so one of the two readers' concurrent fetches goes through
// the LRU map behind the consumer's slot table (bpf/include/slots.bpf.h).
const MODES: { mode: BuildMode; source: string; slots?: string }[] = [
  { mode: "default", source: "dwarf" },
  { mode: "strip", source: "snapshot" },
  { mode: "default", source: "dwarf", slots: "1" },
];

describe.skipIf(reason !== undefined)(`kafka-go producer and consumer${reason ? ` (skipped: ${reason})` : ""}`, () => {
  for (const { mode, source, slots } of MODES) {
    test(`${mode} build (offsets from ${source})${slots ? `, one slot per table (BEETRACE_SERVER_SLOTS=${slots})` : ""}: send spans under the HTTP request, receive spans per reader, linked through traceparent`, async () => {
      const run = `${process.pid}-${Date.now()}-${mode}${slots ? `-slots${slots}` : ""}`;
      const topic = `beetrace-e2e-${run}`;
      const group = `beetrace-e2e-group-${run}`;
      const [bin] = await Promise.all([buildFixture({ dir: "tests/fixtures/go/kafka", toolchain: newestToolchain(), mode }), startBroker(topic)]);
      const fx = await startFixture(bin, topic, group);
      const out = join(work, `kafka-${mode}${slots ? `-slots${slots}` : ""}.cbor`);
      const tr = runTracer(["attach", "--pid", String(fx.pid), "--out", out], slots ? { BEETRACE_SERVER_SLOTS: slots } : undefined);
      await tr.started(60_000);
      expect(tr.stderr()).toContain("kafka.producer");
      expect(tr.stderr()).toContain("kafka.consumer");

      expect(await get(fx.port, "/consume")).toBe(200);
      await waitFor(() => /ready plain/.test(fx.out()) && /ready group/.test(fx.out()), 10_000, "both consumer loops");
      // offsets: k1 → 0, k2 → 1, k3 → 2, 3, 4; k4 fails before reaching the broker.
      expect(await get(fx.port, "/produce?key=k1")).toBe(200);
      expect(await get(fx.port, "/produce?key=k2&tp=1", [["traceparent", `00-${TRACE}-${PARENT}-01`]])).toBe(200);
      expect(await get(fx.port, "/produce?key=k3&n=3")).toBe(200);
      expect(await get(fx.port, "/produce?key=k4&bad=1")).toBe(500);
      // The group reader joins its group first (a rebalance): allow for it on a loaded machine.
      await waitFor(() => (fx.out().match(/^consumed /gm)?.length ?? 0) >= 10 || undefined, 120_000, `10 'consumed' lines (have:\n${fx.out()}\n${fx.err()})`);

      tr.signal("SIGINT");
      expect(await tr.exit(60_000)).toMatchObject({ code: 0, signal: null });
      const cap = readSpans(out);
      for (const p of cap.contents.header.probes.filter((p) => p.id.startsWith("kafka."))) {
        expect({ id: p.id, attached: p.attached }).toEqual({ id: p.id, attached: true });
        for (const o of p.offsets) expect(`${o.field}:${o.source}`).toBe(`${o.field}:${source}`);
        // The traceparent walk needs protocol.Header's offsets: present in both ways.
        if (!p.offsets.some((o) => o.field === "github.com/segmentio/kafka-go/protocol.Header.Value")) {
          throw new Error(
            `${p.id}: no offset for github.com/segmentio/kafka-go/protocol.Header.Value (${source}); for offsets.json run ` +
              "'bun scripts/offsets-tracker.ts --only github.com/segmentio/kafka-go' and commit it",
          );
        }
      }
      const spans = cap.spans;
      const servers = spans.filter((s) => s.kind === "server" && s.attributes["url.path"] === "/produce").sort(byStart);
      const sends = spans.filter((s) => s.kind === "producer").sort(byStart);
      expect(servers.length).toBe(4);
      expect(sends.length).toBe(4);

      // Each send span is the child of the request that produced it, in its trace.
      sends.forEach((s, i) => expect({ i, trace: s.traceId, parent: s.parentSpanId }).toEqual({ i, trace: servers[i]!.traceId, parent: servers[i]!.spanId }));
      expect(servers[1]!.traceId).toBe(TRACE);
      expect(sends.map((s) => s.name)).toEqual(Array(4).fill(`send ${topic}`));
      expect(sends[0]!.attributes).toEqual({ ...BASE("send", topic), "messaging.kafka.message.key": "k1" });
      expect(sends[1]!.attributes).toEqual({ ...BASE("send", topic), "messaging.kafka.message.key": "k2", "beetrace.messaging.creation_context": `00-${TRACE}-${PARENT}-01` });
      expect(sends[2]!.attributes).toEqual({ ...BASE("send", topic), "messaging.batch.message_count": 3 });
      expect(sends[3]!.attributes).toEqual({ ...BASE("send", topic), "messaging.kafka.message.key": "k4", "error.type": "_OTHER" });
      expect(sends.map((s) => s.status.code)).toEqual(["unset", "unset", "unset", "error"]);
      for (const s of sends) expect(s.startTimeUnixNano >= servers[sends.indexOf(s)]!.startTimeUnixNano && s.endTimeUnixNano <= servers[sends.indexOf(s)]!.endTimeUnixNano).toBe(true);

      // One receive span per message per reader (errors, e.g. during a rebalance, are not messages).
      const receives = spans.filter((s) => s.kind === "consumer" && s.status.code !== "error");
      expect(receives.length).toBe(10);
      const keys = ["k1", "k2", "k3", "k3", "k3"];
      for (const grouped of [false, true]) {
        const mine = receives.filter((s) => ("messaging.consumer.group.name" in s.attributes) === grouped).sort((a, b) => Number(a.attributes["messaging.kafka.offset"]) - Number(b.attributes["messaging.kafka.offset"]));
        expect(mine.length).toBe(5);
        mine.forEach((s, offset) => {
          expect({ grouped, offset, name: s.name, attrs: s.attributes }).toEqual({
            grouped,
            offset,
            name: `receive ${topic}`,
            attrs: {
              ...BASE("receive", topic),
              "messaging.destination.partition.id": "0",
              "messaging.kafka.offset": offset,
              "messaging.kafka.message.key": keys[offset]!,
              ...(grouped ? { "messaging.consumer.group.name": group } : {}),
            },
          });
          if (offset === 1) {
            // The application's traceparent: the receive span continues the producer's trace.
            expect({ grouped, trace: s.traceId, parent: s.parentSpanId }).toEqual({ grouped, trace: sends[1]!.traceId, parent: PARENT });
          } else {
            // No header: a root span of its own trace (the consumer loop serves no request).
            expect({ grouped, offset, parent: s.parentSpanId, sameTrace: sends.some((x) => x.traceId === s.traceId) }).toEqual({ grouped, offset, parent: undefined, sameTrace: false });
          }
        });
      }
    }, 600_000);
  }
});
