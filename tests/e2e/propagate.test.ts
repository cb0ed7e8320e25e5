/**
 * @module tests/e2e/propagate — trace context out (`--propagate`): a traceparent inserted at the
 * socket layer (bpf/propagate.bpf.c: sock_ops + sk_msg with bpf_msg_push_data) into the plain
 * HTTP/1 requests of a traced Go client, so a downstream traced by a SEPARATE beetrace (its own
 * process, its own capture, no shared maps) joins the trace.
 *
 * Two Go services on loopback (tests/fixtures/go/propagate): A calls B through
 * http.DefaultClient (one keep-alive connection, opened after tracing began), B echoes the
 * traceparent values it received. beetrace #1 traces A with --propagate, beetrace #2 traces B.
 * Checked, per request, with the real net/http client probe writing bee_conn_spans:
 *   - plain GETs (three on the same connection): B receives exactly one traceparent naming
 *     A's client span, and B's server span is that span's child in A's trace;
 *   - requests whose application set its own traceparent (Go's canonical "Traceparent", and
 *     "traceparent" put into Request.Header directly): it arrives unchanged and alone, and B's
 *     span continues the application's trace;
 *   - a POST whose 16 KiB body is made of HTTP/1 request lines (several writes): one header,
 *     the body byte-for-byte as sent;
 *   - a header block longer than the first 4 KiB write: left alone (it could hold a
 *     traceparent further on), counted;
 * then, after beetrace #1 detached and a new one traces A without --propagate, the same
 * connection carries no header (the socket is back to plain TCP) and nothing of ours is left
 * in the kernel; a third one with --propagate takes that connection, opened before it
 * started, over from A's open sockets: its request joins again; and under a sampler that
 * keeps nothing the header says so (flags 00), which B's parent-based sampler follows.
 * Then 64 concurrent requests over connections the transport opens and closes: each header
 * names its own client span. A further case has a downstream instrumented with the OpenTelemetry Go SDK instead
 * (tests/fixtures/go/propagate/sdk: propagation.TraceContext + the SDK's TracerProvider). HTTP/2 (h2c, gRPC) and TLS requests are never rewritten (not tested here: the
 * first message of such a request is no HTTP/1 request line, which the program requires).
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, FIXTURES_GO, newestToolchain } from "../harness/go.ts";
import { bpfState, e2eSkipReason, httpGet, readSpans, runTracer, startSample, tracerCommand, waitFor, type RunningSample, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("propagate");

/** The fixture's OWN traceparent (W3C Trace Context's example). */
const OWN = { trace: "0af7651916cd43dd8448eb211c80319c", parent: "b7ad6b7169203331" };
const OWN_HEADER = `00-${OWN.trace}-${OWN.parent}-01`;
/** The fixture's LOWER traceparent, sent under the name "traceparent" (not Go's canonical form). */
const LOWER = { trace: "1bf7651916cd43dd8448eb211c80319c", parent: "c7ad6b7169203331" };
const LOWER_HEADER = `00-${LOWER.trace}-${LOWER.parent}-01`;
/** The fixture's POST body: 600 HTTP/1 request heads. */
const POST_BODY = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(600);

interface Echo {
  traceparent: string[];
  bodyLen: number;
  bodySha256: string;
}

async function call(a: RunningSample, path: string): Promise<Echo> {
  const r = await httpGet(a.port, path);
  expect({ path, status: r.status }).toEqual({ path, status: 200 });
  return JSON.parse(r.body) as Echo;
}

const CALLS = ["/call?n=0", "/call?n=1", "/call?n=2", "/call-own", "/call-lower", "/call-post", "/call-big"] as const;

describe.skipIf(reason !== undefined)(`trace context out${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test("--propagate: B, traced by a second beetrace, joins A's traces; the application's own traceparent, a body of request lines and a long header block are left alone; without it nothing is sent", async () => {
    const bin = await buildFixture({ dir: join(FIXTURES_GO, "propagate"), toolchain: newestToolchain(), mode: "default" });
    const started: RunningSample[] = [];
    try {
      const b = await startSample(bin);
      started.push(b);
      const a = await startSample(bin, ["-next", b.base]);
      started.push(a);
      const aOut = join(work, "a.cbor");
      const bOut = join(work, "b.cbor");
      const tracerB = runTracer(["attach", "--pid", String(b.pid), "--out", bOut]);
      const tracerA = runTracer(["-v", "attach", "--pid", String(a.pid), "--propagate", "--out", aOut]);
      await Promise.all([tracerA.started(), tracerB.started()]);

      // One at a time, in order: B's server spans then come in the same order.
      const echoes: Echo[] = [];
      for (const path of CALLS) echoes.push(await call(a, path));
      tracerA.signal("SIGINT");
      expect((await tracerA.exit()).code).toBe(0);
      // What the sk_msg program counted (trace/propagate.ts describePropagation, at -v).
      expect(tracerA.stderr()).toContain("propagation: 4 traceparent headers inserted, 2 requests kept the application's own, 1 with a header block too long to search (left alone); 1 connection watched");

      // Without --propagate (a new beetrace on A): the same keep-alive connection, no header.
      const aOut2 = join(work, "a2.cbor");
      const tracerA2 = runTracer(["attach", "--pid", String(a.pid), "--out", aOut2]);
      await tracerA2.started();
      const plain = await call(a, "/call?n=9");
      tracerA2.signal("SIGINT");
      expect((await tracerA2.exit()).code).toBe(0);
      expect(plain.traceparent).toEqual([]);

      // --propagate again, on a connection opened before this tracer started (A's keep-alive
      // pool): it is taken over from the process's open sockets.
      const aOut3 = join(work, "a3.cbor");
      const tracerA3 = runTracer(["-v", "attach", "--pid", String(a.pid), "--propagate", "--out", aOut3]);
      await tracerA3.started();
      const adopted = await call(a, "/call?n=10");
      tracerA3.signal("SIGINT");
      expect((await tracerA3.exit()).code).toBe(0);

      // A sampler that keeps nothing: the header still goes out, with the sampled flag off, and
      // B (default parentbased_always_on) follows it: no span of B's for that request.
      const tracerA4 = runTracer(["attach", "--pid", String(a.pid), "--propagate", "--out", join(work, "a4.cbor")], { OTEL_TRACES_SAMPLER: "always_off" });
      await tracerA4.started();
      const unsampled = await call(a, "/call?n=11");
      tracerA4.signal("SIGINT");
      tracerB.signal("SIGINT");
      expect((await tracerA4.exit()).code).toBe(0);
      expect((await tracerB.exit()).code).toBe(0);
      expect(unsampled.traceparent).toHaveLength(1);
      expect(unsampled.traceparent[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(tracerA3.stderr()).toContain(`propagation: 1 of the 1 client connections pid ${a.pid} already had are watched too`);
      const a3Client = readSpans(aOut3).spans.find((s) => s.kind === "client");
      expect(a3Client).toBeDefined();
      expect(adopted.traceparent).toEqual([`00-${a3Client!.traceId}-${a3Client!.spanId}-01`]);

      // Every program of ours is gone: the cgroup link, the sockhash and its sk_msg program.
      await waitFor(() => !bpfState().progs.some((p) => p.name.startsWith("propagate_")), 10_000, "the propagate programs to be released");

      const aSpans = readSpans(aOut).spans;
      const bSpans = readSpans(bOut).spans;
      const byParent = new Map<string, SpanRecord>(aSpans.filter((s) => s.kind === "client").map((s) => [s.parentSpanId ?? "", s]));
      const aServers = aSpans.filter((s) => s.kind === "server").sort((x, y) => Number(x.startTimeUnixNano - y.startTimeUnixNano));
      const bServers = bSpans.filter((s) => s.kind === "server").sort((x, y) => Number(x.startTimeUnixNano - y.startTimeUnixNano));
      expect({ a: aServers.map((s) => s.attributes["url.path"]), b: bServers.length }).toEqual({ a: CALLS.map((c) => c.split("?")[0]), b: CALLS.length + 2 });

      for (const [i, path] of CALLS.entries()) {
        const client = byParent.get(aServers[i]!.spanId);
        expect(client).toBeDefined();
        const c = client!;
        const e = echoes[i]!;
        const bs = bServers[i]!;
        const got = { path, traceparent: e.traceparent, trace: bs.traceId, parent: bs.parentSpanId };
        if (path === "/call-own") {
          // The application's header arrived as it set it; B continues the application's trace.
          expect(got).toEqual({ path, traceparent: [OWN_HEADER], trace: OWN.trace, parent: OWN.parent });
        } else if (path === "/call-lower") {
          // The name is matched case-insensitively (RFC 9110 §5.1): no second header.
          expect(got).toEqual({ path, traceparent: [LOWER_HEADER], trace: LOWER.trace, parent: LOWER.parent });
        } else if (path === "/call-big") {
          // The header block ran past the first write: nothing inserted, B starts its own trace.
          expect(got.traceparent).toEqual([]);
          expect(bs.parentSpanId).toBeUndefined();
          expect(bs.traceId).not.toBe(c.traceId);
        } else {
          // Exactly one header, naming A's client span; B's span is its child, in A's trace.
          expect(got).toEqual({ path, traceparent: [`00-${c.traceId}-${c.spanId}-01`], trace: c.traceId, parent: c.spanId });
          expect(c.traceId).toBe(aServers[i]!.traceId);
        }
        if (path === "/call-post") {
          // Only the first write of the request was looked at: the body is as sent.
          expect({ len: e.bodyLen, sha: e.bodySha256 }).toEqual({ len: POST_BODY.length, sha: createHash("sha256").update(POST_BODY).digest("hex") });
        }
      }
      // Keep-alive: every request went out on the one connection (the sockhash saw it once).
      const ports = new Set(aSpans.filter((s) => s.kind === "client").map((s) => s.attributes["network.local.port"]));
      expect(ports.size).toBe(1);
      // The request sent without --propagate started a trace of B's own; the one on the
      // taken-over connection continued A's.
      expect(bServers[CALLS.length]!.parentSpanId).toBeUndefined();
      expect({ trace: bServers[CALLS.length + 1]!.traceId, parent: bServers[CALLS.length + 1]!.parentSpanId }).toEqual({ trace: a3Client!.traceId, parent: a3Client!.spanId });
    } finally {
      for (const p of started) await p.stop();
    }
  }, 300_000);

  test("--propagate under concurrency (several connections, opened and closed): every request's header names its own client span", async () => {
    const bin = await buildFixture({ dir: join(FIXTURES_GO, "propagate"), toolchain: newestToolchain(), mode: "default" });
    const started: RunningSample[] = [];
    try {
      const b = await startSample(bin);
      started.push(b);
      const a = await startSample(bin, ["-next", b.base]);
      started.push(a);
      const out = join(work, "a-concurrent.cbor");
      const tracer = runTracer(["-v", "attach", "--pid", String(a.pid), "--propagate", "--out", out]);
      await tracer.started();
      const TOTAL = 64;
      const AT_ONCE = 8;
      const echoes: Echo[] = [];
      // Eight at a time: the transport keeps two idle connections per host (DefaultMaxIdleConnsPerHost),
      // so connections are opened and closed as it goes.
      for (let i = 0; i < TOTAL; i += AT_ONCE) echoes.push(...(await Promise.all(Array.from({ length: AT_ONCE }, (_, k) => call(a, `/call?n=${i + k}`)))));
      tracer.signal("SIGINT");
      expect((await tracer.exit()).code).toBe(0);
      const clients = readSpans(out).spans.filter((x) => x.kind === "client");
      expect(clients.length).toBe(TOTAL);
      const want = clients.map((c) => `00-${c.traceId}-${c.spanId}-01`).sort();
      expect(echoes.map((e) => e.traceparent.join(",")).sort()).toEqual(want);
      expect(new Set(clients.map((c) => c.attributes["network.local.port"])).size).toBeGreaterThan(1);
      expect(tracer.stderr()).toContain(`propagation: ${TOTAL} traceparent headers inserted, 0 requests kept the application's own;`);
    } finally {
      for (const p of started) await p.stop();
    }
  }, 300_000);

  test("--propagate: a downstream instrumented with the OpenTelemetry Go SDK (propagation.TraceContext) continues A's trace", async () => {
    const bin = await buildFixture({ dir: join(FIXTURES_GO, "propagate"), toolchain: newestToolchain(), mode: "default" });
    const sdkBin = await buildFixture({ dir: join(FIXTURES_GO, "propagate", "sdk"), toolchain: newestToolchain(), mode: "default" });
    const started: RunningSample[] = [];
    try {
      const c = await startSample(sdkBin);
      started.push(c);
      const a = await startSample(bin, ["-next", c.base]);
      started.push(a);
      const out = join(work, "a-sdk.cbor");
      const tracer = runTracer(["attach", "--pid", String(a.pid), "--propagate", "--out", out]);
      await tracer.started();
      interface SdkEcho {
        traceparent: string[];
        traceId: string;
        parentSpanId: string;
        remote: boolean;
        sampled: boolean;
      }
      const plain = (await call(a, "/call")) as unknown as SdkEcho;
      const own = (await call(a, "/call-own")) as unknown as SdkEcho;
      tracer.signal("SIGINT");
      expect((await tracer.exit()).code).toBe(0);
      const spans = readSpans(out).spans;
      const server = spans.find((s) => s.kind === "server" && s.attributes["url.path"] === "/call");
      const client = spans.find((s) => s.kind === "client" && s.parentSpanId === server?.spanId);
      expect(client).toBeDefined();
      // What the SDK recorded for its own span: A's trace, A's client span as the remote parent.
      expect(plain).toEqual({ traceparent: [`00-${client!.traceId}-${client!.spanId}-01`], traceId: client!.traceId, parentSpanId: client!.spanId, remote: true, sampled: true });
      expect(own).toEqual({ traceparent: [OWN_HEADER], traceId: OWN.trace, parentSpanId: OWN.parent, remote: true, sampled: true });
    } finally {
      for (const p of started) await p.stop();
    }
  }, 300_000);

  test("a host without a cgroup v2 hierarchy: --propagate fails at once with exit 22 and the reason, and run never starts the program", async () => {
    const bin = await buildFixture({ dir: join(FIXTURES_GO, "propagate"), toolchain: newestToolchain(), mode: "default" });
    // Such a host, made for this one command: a private mount namespace without the cgroup2 mounts.
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => / - cgroup2 /.test(l))
      .map((l) => l.split(" ")[4]!);
    expect(mounts.length).toBeGreaterThan(0);
    const [cmd, pre] = tracerCommand();
    const r = spawnSync(
      "unshare",
      ["--mount", "--propagation", "private", "sh", "-c", 'for m in $BEE_CGROUP2; do umount -l "$m" || exit 99; done; exec "$@"', "sh", cmd, ...pre, "run", "--propagate", "--out", join(work, "never.cbor"), "--", bin, "-next", "http://127.0.0.1:9"],
      { encoding: "utf8", timeout: 60_000, env: { ...process.env, BEE_CGROUP2: mounts.join(" ") } },
    );
    expect({ code: r.status, stdout: r.stdout }).toEqual({ code: 22, stdout: "" });
    expect(r.stderr).toContain("--propagate: this host supports no way to send trace context: socket-layer HTTP/1 (sock_ops+sk_msg): no cgroup v2 hierarchy is mounted");
    expect(r.stderr).toContain("hint: ");
  }, 120_000);
});

/**
 * The sk_msg program itself, on bytes this test writes: the propagate object loaded in this
 * process for this process (tgid = ours), a loopback server that records what arrives, and the
 * bee_conn_spans entry written from user space as the net/http client probe would write it.
 * Each message is one write(2) on one connection; a new span id stands for a new request.
 */
describe.skipIf(reason !== undefined)(`propagate.bpf.c on crafted messages${reason ? ` (skipped: ${reason})` : ""}`, () => {
  test("inserts after the request line only at a request's first write with a complete header block and no traceparent", async () => {
    const { compileBpfObject, bpfIncludeDirs } = await import("../../build.ts");
    const { Propagator, PROPAGATE_OBJECT } = await import("../../src/trace/propagate.ts");
    const net = await import("node:net");
    const objPath = join(work, "propagate.bpf.o");
    compileBpfObject(join(import.meta.dir, "..", "..", "bpf", "propagate.bpf.c"), objPath, bpfIncludeDirs());

    let received = "";
    const server = net.createServer((c) => c.setEncoding("latin1").on("data", (d: string) => (received += d)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    using prop = Propagator.start({ tgid: process.pid, objectBytes: new Uint8Array(readFileSync(objPath)) });
    const sock = net.connect({ host: "127.0.0.1", port });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.setNoDelay(true);
    try {
      const connSpans = prop.object.map(PROPAGATE_OBJECT.connSpans);
      // struct bee_conn_key {u8 addr[16]; u16 port; u16 pad; u32 stream_id} (IPv4-mapped, host-order port)
      const key = new Uint8Array(24);
      key.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
      new DataView(key.buffer).setUint16(16, sock.localPort!, true);
      const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
      let span = 0x00f067aa0ba90200n;
      /** struct bee_conn_span {span_ctx {trace_id[16], span_id[8], u16 trace_flags, pad[6]}, u64 start_ns, u32 tgid, pad} */
      const newSpan = (flags = 0): string => {
        span++;
        const v = new Uint8Array(48);
        const dv = new DataView(v.buffer);
        v.set(Buffer.from(TRACE, "hex"), 0);
        v.set(Buffer.from(span.toString(16).padStart(16, "0"), "hex"), 16);
        dv.setUint16(24, flags, true);
        dv.setUint32(40, process.pid, true);
        connSpans.update(key, v);
        return `traceparent: 00-${TRACE}-${span.toString(16).padStart(16, "0")}-${flags === 0x20 ? "00" : "01"}\r\n`;
      };
      /** Writes `msg`; resolves with what the server got for it (waits for `expectLen` bytes). */
      const send = async (msg: string, expectLen: number): Promise<string> => {
        const start = received.length;
        sock.write(Buffer.from(msg, "latin1"));
        await waitFor(() => received.length - start >= expectLen || undefined, 5_000, `${expectLen} bytes at the server`);
        return received.slice(start);
      };
      const expectInserted = async (msg: string, header: string) => {
        const at = msg.indexOf("\r\n") + 2;
        expect(await send(msg, msg.length + header.length)).toBe(msg.slice(0, at) + header + msg.slice(at));
      };
      const expectUntouched = async (msg: string) => {
        expect(await send(msg, msg.length)).toBe(msg);
      };

      // The smallest request: inserted.
      await expectInserted("GET / HTTP/1.1\r\n\r\n", newSpan());
      // The same span again (a later write of that request, even one that looks like a request): untouched.
      await expectUntouched("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
      // A traceparent already there, any letter case: untouched.
      newSpan();
      await expectUntouched("POST /p HTTP/1.1\r\nHost: x\r\nTRACEPARENT: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\nbody");
      // A header whose name only ends in traceparent, and "traceparent:" in the body: inserted.
      await expectInserted("PUT /q HTTP/1.1\r\nX-Traceparent: no\r\nHost: x\r\n\r\ntraceparent: in the body", newSpan());
      // Unsampled trace (flags known, sampled off): flags 00.
      await expectInserted("GET /u HTTP/1.1\r\nHost: x\r\n\r\n", newSpan(0x20));
      // Not an HTTP/1 request line: HTTP/2, a lower-case method, no method at all.
      newSpan();
      await expectUntouched("GET / HTTP/2.0\r\nHost: x\r\n\r\n");
      newSpan();
      await expectUntouched("get / HTTP/1.1\r\nHost: x\r\n\r\n");
      newSpan();
      await expectUntouched("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a TLS ClientHello, say");
      // The header block does not end in this write: untouched, and so is the rest of it.
      newSpan();
      await expectUntouched("GET /long HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n");
      await expectUntouched("X-B: 2\r\n\r\n");
      // A next request on the same connection: inserted again, with its own span.
      await expectInserted("DELETE /d?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", newSpan());
      const c = prop.counts();
      expect(c).toEqual({ inserted: 4, existing: 1, noSpan: 0, unscanned: 1, notHttp1: 3, failed: 0, sockets: 1 });
    } finally {
      sock.destroy();
      server.close();
    }
  }, 120_000);
});
