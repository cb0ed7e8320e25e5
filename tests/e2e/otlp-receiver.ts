/**
 * @module tests/e2e/otlp-receiver — runs tests/fixtures/go/otlp-receiver or otlp-grpc-receiver (the
 * official OTLP Go protobuf types decode every request) and collects the spans it prints, one JSON
 * line each.
 */
import type { Span } from "../../src/spans/model.ts";
export interface Received {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  scope: { name: string; version: string };
  resource: Record<string, unknown>;
  request: number;
}

/** A running otlp-receiver: spans are appended to `spans` as its stdout lines arrive. */
export class Receiver {
  spans: Received[] = [];
  base = "";
  private constructor(private readonly proc: ReturnType<typeof Bun.spawn>) {}
  /** `args`: extra flags (tests/fixtures/go/otlp-grpc-receiver takes failure-scripting flags). */
  static async start(exe: string, addr = "127.0.0.1:0", args: string[] = []): Promise<Receiver> {
    const proc = Bun.spawn([exe, "-addr", addr, ...args], { stdout: "pipe", stderr: "inherit" });
    const r = new Receiver(proc);
    const listening = Promise.withResolvers<void>();
    void (async () => {
      let buf = "";
      const dec = new TextDecoder();
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith("listening ")) {
            r.base = `http://${line.slice("listening ".length)}`;
            listening.resolve();
          } else if (line !== "") r.spans.push(JSON.parse(line) as Received);
        }
      }
      listening.reject(new Error("otlp-receiver exited before listening"));
    })();
    await listening.promise;
    return r;
  }
  /** Wait until `n` spans have arrived (the receiver prints them before it answers). */
  async waitFor(n: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.spans.length < n) {
      if (Date.now() > end) throw new Error(`receiver got ${this.spans.length} of ${n} spans`);
      await Bun.sleep(5);
    }
  }
  reset(): void {
    this.spans = [];
  }
  stop(): void {
    this.proc.kill();
  }
  /** Stop and wait until the process is gone (its port is free again). */
  async stopAndWait(): Promise<void> {
    this.proc.kill();
    await this.proc.exited;
  }
}

const KIND: Record<Span["kind"], number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
const STATUS: Record<Span["status"]["code"], number> = { unset: 0, ok: 1, error: 2 };

/** What a receiver must print for `s`: the OTLP data model, as the official protobuf types decode it. */
export function expectedReceived(s: Span) {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    name: s.name,
    kind: KIND[s.kind],
    startTimeUnixNano: s.startTimeUnixNano.toString(),
    endTimeUnixNano: s.endTimeUnixNano.toString(),
    attributes: s.attributes,
    status: { code: STATUS[s.status.code], message: s.status.message ?? "" },
    scope: s.scope,
    // W3C sampled (0x01) | CONTEXT_HAS_IS_REMOTE (0x100) | CONTEXT_IS_REMOTE (0x200) for a
    // server/consumer span's parent (OTLP trace.proto SpanFlags).
    flags: 0x101 | (s.parentSpanId && (s.kind === "server" || s.kind === "consumer") ? 0x200 : 0),
  };
}
