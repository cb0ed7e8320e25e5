/**
 * @module tests/e2e/otlp-receiver — runs tests/fixtures/go/otlp-receiver or otlp-grpc-receiver (the
 * official OTLP Go protobuf types decode every request) and collects the spans it prints, one JSON
 * line each.
 */
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

