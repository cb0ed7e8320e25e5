/**
 * @module scripts/collector/collector — runs the real OpenTelemetry Collector built by
 * scripts/collector/build.sh (otlp receiver + contrib file exporter) and reads back what it
 * received. Used by tests/e2e/collector.test.ts and bench/soak.bench.ts.
 *
 * Each `start()` is one Collector process ("incarnation") with its own config and output file,
 * listening on 127.0.0.1 for OTLP/HTTP and OTLP/gRPC (fixed ports may be given, so a restarted
 * Collector comes back at the same address). The file exporter writes one OTLP JSON line per
 * request it accepted. Its output is configured with `rotation`, which makes the exporter write
 * straight to the file instead of through a bufio buffer flushed every `flush_interval`
 * (fileexporter v0.165.1, newFileWriter: buffered only without rotation): a request the
 * Collector acknowledged is then in the file even if the Collector is killed with SIGKILL.
 * Without a batch processor or a sending queue, the otlp receiver answers a request only after
 * the file exporter has written it, so "acknowledged" implies "in the file".
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createReadStream, existsSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
export const COLLECTOR_EXE = join(ROOT, ".cache", "collector", "otelcol-beetrace");
const BUILD_SCRIPT = join(ROOT, "scripts", "collector", "build.sh");

/**
 * Builds the Collector if it is missing or stale (scripts/collector/build.sh: quick when cached,
 * minutes on a fresh machine) and returns its path. Throws with the script's output on failure.
 */
export function ensureCollector(): string {
  const r = spawnSync("bash", [BUILD_SCRIPT], { encoding: "utf8", timeout: 15 * 60_000 });
  if (r.status !== 0) throw new Error(`scripts/collector/build.sh failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return COLLECTOR_EXE;
}

/** A free TCP port on 127.0.0.1 (released before returning: bind it soon). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      res(true);
    });
    s.on("error", () => res(false));
  });
}

export interface CollectorOptions {
  /** Directory for the config and output files of this incarnation. */
  dir: string;
  /** Names this incarnation's files: `${name}.yaml`, `${name}.jsonl`, `${name}.binpb`, `${name}.log`. */
  name: string;
  httpPort?: number;
  grpcPort?: number;
  /** Also write the length-prefixed protobuf output (`format: proto`). */
  proto?: boolean;
}

export class Collector {
  private stderr = "";
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly httpPort: number,
    readonly grpcPort: number,
    /** The file exporter's OTLP JSON lines. */
    readonly jsonPath: string,
    /** The file exporter's length-prefixed protobuf output, when asked for. */
    readonly protoPath: string | undefined,
  ) {
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
      // Keep the start and the end: the start has config errors, the end why it stopped.
      this.stderr = this.stderr.length > 64_000 ? this.stderr.slice(0, 16_000) + "\n…\n" + this.stderr.slice(-32_000) + d : this.stderr + d;
    });
    this.exited = new Promise((r) =>
      proc.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        r();
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }
  get httpBase(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  get grpcBase(): string {
    return `http://127.0.0.1:${this.grpcPort}`;
  }
  get log(): string {
    return this.stderr;
  }
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Starts an incarnation and waits until both receivers accept connections. */
  static async start(exe: string, o: CollectorOptions): Promise<Collector> {
    const httpPort = o.httpPort ?? (await freePort());
    const grpcPort = o.grpcPort ?? (await freePort());
    const jsonPath = join(o.dir, `${o.name}.jsonl`);
    const protoPath = o.proto ? join(o.dir, `${o.name}.binpb`) : undefined;
    const cfgPath = join(o.dir, `${o.name}.yaml`);
    // rotation: direct (unbuffered) file writes, see the module comment; max_megabytes far above
    // what a run writes, so it never actually rotates (a soak run writes well under 10 GB).
    const fileExporter = (path: string, format: "json" | "proto") => [
      `    path: ${JSON.stringify(path)}`,
      `    format: ${format}`,
      "    rotation:",
      "      max_megabytes: 10000",
      "      max_backups: 1",
    ];
    writeFileSync(
      cfgPath,
      [
        "receivers:",
        "  otlp:",
        "    protocols:",
        "      http:",
        `        endpoint: 127.0.0.1:${httpPort}`,
        "      grpc:",
        `        endpoint: 127.0.0.1:${grpcPort}`,
        "exporters:",
        "  file/json:",
        ...fileExporter(jsonPath, "json"),
        ...(protoPath ? ["  file/proto:", ...fileExporter(protoPath, "proto")] : []),
        // No service::telemetry section: this distribution's telemetry logs to stderr and has no
        // internal metrics endpoint (scripts/collector/otelcol/main.go), so Collectors never clash on one.
        "service:",
        "  pipelines:",
        "    traces:",
        "      receivers: [otlp]",
        `      exporters: [file/json${protoPath ? ", file/proto" : ""}]`,
        "",
      ].join("\n"),
    );
    const proc = spawn(exe, ["--config", cfgPath], { stdio: ["ignore", "ignore", "pipe"] });
    const c = new Collector(proc, httpPort, grpcPort, jsonPath, protoPath);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!c.running) throw new Error(`the Collector exited (${c.exitInfo!.code ?? c.exitInfo!.signal}) while starting:\n${c.stderr}`);
      if (/Everything is ready/.test(c.stderr) && (await canConnect(httpPort)) && (await canConnect(grpcPort))) return c;
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`the Collector did not get ready within 60 s:\n${c.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20)); // poll interval of a bounded wait
    }
  }

  /** SIGKILL (a crash: nothing flushed, no graceful shutdown) and wait for the exit. */
  async kill(): Promise<void> {
    if (this.running) this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (graceful shutdown), SIGKILL after `ms`; waits for the exit. */
  async stop(ms = 10_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), ms);
    await this.exited;
    clearTimeout(t);
  }
}

/** A span as the file exporter writes it (OTLP JSON: ids in hex, int64 as decimal strings). */
export interface CollectorSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
  flags?: number;
}

export interface CollectorLine {
  resourceSpans: {
    resource?: { attributes?: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { scope?: { name?: string; version?: string }; spans: CollectorSpan[] }[];
  }[];
}

export interface ReadResult {
  /** Complete lines, each one request the Collector acknowledged. */
  lines: number;
  /** A last line cut by a SIGKILL between the exporter's write of the JSON and of its "\n". */
  tornTail: boolean;
}

/**
 * Streams a file exporter JSON output, calling `onSpan` for every span with its line number and
 * resource. Bounded memory whatever the file size (one line at a time).
 * A last line without "\n" is parsed if it is complete JSON (the exporter writes the JSON and
 * the newline in two writes), else reported as torn.
 */
export async function readCollectorJson(
  path: string,
  onSpan: (s: CollectorSpan, line: number, resource: Record<string, unknown>, scope: { name?: string; version?: string }) => void,
): Promise<ReadResult> {
  if (!existsSync(path)) return { lines: 0, tornTail: false };
  let buf = "";
  let lines = 0;
  const handle = (text: string) => {
    const msg = JSON.parse(text) as CollectorLine;
    for (const rs of msg.resourceSpans ?? []) {
      const resource = attributesOf(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) onSpan(s, lines, resource, ss.scope ?? {});
    }
    lines++;
  };
  for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 })) {
    buf += chunk as string;
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf("\n", start)) >= 0) {
      if (nl > start) handle(buf.slice(start, nl));
      start = nl + 1;
    }
    buf = buf.slice(start);
  }
  if (buf.trim() === "") return { lines, tornTail: false };
  try {
    handle(buf);
    return { lines, tornTail: false };
  } catch {
    return { lines, tornTail: true };
  }
}

/** OTLP JSON attributes → { key: value } with AnyValue unwrapped (int64 stays a decimal string). */
export function attributesOf(attrs: { key: string; value: Record<string, unknown> }[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of attrs ?? []) out[a.key] = Object.values(a.value)[0];
  return out;
}
