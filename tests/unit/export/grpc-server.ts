/**
 * @module tests/unit/export/grpc-server — a scriptable gRPC-over-HTTP/2 endpoint (node:http2 server
 * on 127.0.0.1) for OTLP/gRPC transport tests.
 *
 * Records every call (arrival time, headers, the length-prefixed messages with gzip undone) and
 * answers with whatever the test's `respond` returns: a status in trailers (default OK with an
 * empty ExportTraceServiceResponse), a trailers-only status, a plain HTTP status, GOAWAY, or no
 * answer at all. Bun's node:http2 *server* does not send RST_STREAM codes faithfully (checked
 * against Deno's client and server), so resets are tested through classifyGrpcResponse only.
 */
import * as http2 from "node:http2";
import { gunzipSync } from "node:zlib";
import { readGrpcFrames } from "../../../src/export/otlp-grpc.ts";

export interface GrpcCall {
  at: number;
  headers: http2.IncomingHttpHeaders;
  /** Messages of the request body, decompressed when flagged */
  messages: Uint8Array[];
  compressedFlags: boolean[];
}

export type GrpcReply =
  | { kind?: "status"; code?: number; message?: string; details?: string; body?: Uint8Array; trailersOnly?: boolean }
  | { kind: "http"; status: number }
  | { kind: "never" }
  /** Send GOAWAY on this connection, then answer OK */
  | { kind: "goaway" };

export interface TestGrpcServer {
  endpoint: string;
  port: number;
  calls: GrpcCall[];
  /** Distinct client connections seen */
  sessions: number;
  respond: (call: GrpcCall, index: number) => GrpcReply;
  stop(): Promise<void>;
}

export async function startGrpcServer(respond: TestGrpcServer["respond"] = () => ({}), port = 0): Promise<TestGrpcServer> {
  const server = http2.createServer();
  const open = new Set<http2.ServerHttp2Session>();
  const t: TestGrpcServer = { endpoint: "", port: 0, calls: [], sessions: 0, respond, stop: async () => {} };
  server.on("session", (s) => {
    t.sessions++;
    open.add(s);
    s.on("close", () => open.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (raw, headers: http2.IncomingHttpHeaders) => {
    const stream = raw as http2.ServerHttp2Stream;
    stream.on("error", () => {});
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const frames = readGrpcFrames(new Uint8Array(Buffer.concat(chunks)));
      if (!frames.ok) {
        // A malformed request must fail the test visibly: answer INTERNAL with the reason.
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "13", "grpc-message": encodeURIComponent(frames.reason) }, { endStream: true });
        return;
      }
      const call: GrpcCall = {
        at: Date.now(),
        headers,
        messages: frames.messages.map((m) => (m.compressed ? new Uint8Array(gunzipSync(m.message)) : m.message)),
        compressedFlags: frames.messages.map((m) => m.compressed),
      };
      t.calls.push(call);
      const r = t.respond(call, t.calls.length - 1);
      if (r.kind === "never") return;
      if (r.kind === "http") {
        stream.respond({ ":status": r.status, "content-type": "text/plain" });
        stream.end("not grpc");
        return;
      }
      if (r.kind === "goaway") stream.session?.goaway(0);
      const st = r.kind === "goaway" ? {} : r;
      const status: http2.OutgoingHttpHeaders = { "grpc-status": String(st.code ?? 0) };
      if (st.message !== undefined) status["grpc-message"] = encodeURIComponent(st.message);
      if (st.details !== undefined) status["grpc-status-details-bin"] = st.details;
      if (st.trailersOnly) {
        stream.respond({ ":status": 200, "content-type": "application/grpc", ...status }, { endStream: true });
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(status));
      const body = st.body ?? new Uint8Array(0);
      const frame = new Uint8Array(5 + body.byteLength);
      new DataView(frame.buffer).setUint32(1, body.byteLength);
      frame.set(body, 5);
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  const addr = server.address();
  t.port = typeof addr === "object" && addr ? addr.port : 0;
  t.endpoint = `http://127.0.0.1:${t.port}`;
  t.stop = async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return t;
}

// A little protobuf writer for building google.rpc.Status / RetryInfo in tests (independent of
// the reader under test).
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
export function pbVarint(field: number, v: bigint | number): number[] {
  return [...varint(BigInt((field << 3) | 0)), ...varint(BigInt(v))];
}
export function pbBytes(field: number, b: number[] | Uint8Array | string): number[] {
  const bytes = typeof b === "string" ? [...new TextEncoder().encode(b)] : [...b];
  return [...varint(BigInt((field << 3) | 2)), ...varint(BigInt(bytes.length)), ...bytes];
}
/** grpc-status-details-bin for Status{code, message, details: [RetryInfo{retry_delay}]}, unpadded base64 as grpc-go sends. */
export function retryInfoDetails(code: number, delay: { seconds?: number; nanos?: number } | undefined): string {
  const duration = delay === undefined ? [] : pbBytes(1, [...(delay.seconds ? pbVarint(1, delay.seconds) : []), ...(delay.nanos ? pbVarint(2, delay.nanos) : [])]);
  const any = [...pbBytes(1, "type.googleapis.com/google.rpc.RetryInfo"), ...pbBytes(2, duration)];
  const status = [...pbVarint(1, code), ...pbBytes(2, "try later"), ...pbBytes(3, any)];
  return Buffer.from(status).toString("base64").replace(/=+$/, "");
}
