/**
 * @module cli/commands — the command table: names, options and the handler each calls.
 * Handlers live in src/cli/<name>.ts, take parsed options and return an exit code (or throw).
 * Every .example() line must run as written: tests/unit/cli/help-examples.test.ts runs the
 * offline ones, tests/e2e/help-examples.test.ts the ones that trace (only host names, the pid
 * and long durations are substituted).
 */
import type { CAC } from "cac";
import { FILTER_OPTIONS } from "./filters.ts";

/*
 * Each command's module is imported when the command runs, not at start-up: a tracer that only
 * attaches never evaluates the OTLP encoder, the viewer or the doctor's calibration code, which
 * keeps its resident memory and start-up time down (bench/RESULTS.md, start-up and memory).
 */
const inspectCommand: typeof import("./inspect.ts").inspectCommand = async (...a) => (await import("./inspect.ts")).inspectCommand(...a);
const viewCommand: typeof import("./view.ts").viewCommand = async (...a) => (await import("./view.ts")).viewCommand(...a);
const convertCommand: typeof import("./convert.ts").convertCommand = async (...a) => (await import("./convert.ts")).convertCommand(...a);
const exportCommand: typeof import("./export.ts").exportCommand = async (...a) => (await import("./export.ts")).exportCommand(...a);
const attachCommand: typeof import("./trace.ts").attachCommand = async (...a) => (await import("./trace.ts")).attachCommand(...a);
const runCommand: typeof import("./trace.ts").runCommand = async (...a) => (await import("./trace.ts")).runCommand(...a);
const offsetsCommand: typeof import("./offsets.ts").offsetsCommand = async (...a) => (await import("./offsets.ts")).offsetsCommand(...a);
const doctorCommand: typeof import("./doctor.ts").doctorCommand = async (...a) => (await import("./doctor.ts")).doctorCommand(...a);

/** The span filters of view, summary and convert (src/cli/filters.ts). */
function withFilters(c: ReturnType<CAC["command"]>): ReturnType<CAC["command"]> {
  for (const [flag, help] of FILTER_OPTIONS) c.option(flag, help);
  return c;
}

export function registerCommands(cli: CAC): void {
  cli
    .command("inspect [binary]", "Show what beetrace would probe in a Go executable (offline, no root)")
    .option("--pid <pid>", "Inspect the executable of a running process")
    .option("--symbol <name>", "Resolve this function (repeatable; default: the functions beetrace probes)")
    .option("--field <pkg.Type.field>", "Resolve this struct field offset (repeatable)")
    .option("--offsets <file>", "Use this offsets file before the embedded snapshot")
    .option("--unknown-versions <policy>", "refuse (default) or nearest: use the nearest covered version, recorded as a guess")
    .option("--json", "Print one JSON object")
    .example("beetrace inspect ./server --json")
    .example("beetrace inspect --pid 1234 --field net/http.Request.Method")
    .action((binary: string | undefined, options) => inspectCommand(binary, options));

  cli
    .command("offsets <action> [binary]", "extract: write the struct-field offsets of an UNSTRIPPED build (its DWARF) to a file for --offsets")
    .option("-o, --out <file>", "Offsets file to write")
    .example("beetrace offsets extract ./server-unstripped -o server-offsets.json")
    .action((action: string, binary: string | undefined, options) => offsetsCommand(String(action), binary, options));

  withFilters(
    cli
      .command("view <...files>", "Print capture files as trace trees with a summary, or write them as one HTML page (--html)")
      .option("--width <columns>", "Cut lines to this width (default 80)")
      .option("--html <out.html>", "Write one self-contained HTML page (trace list, waterfalls, summary) instead"),
  )
    .example("beetrace view cap.cbor")
    .example("beetrace view cap.cbor --html cap.html")
    .action(async (files: string[], options) => {
      if (options.html !== undefined) {
        (await import("../viewer/html.ts")).writeHtmlView(files.map(String), String(options.html), options);
        return;
      }
      for (const file of files) await viewCommand(String(file), options);
    });

  withFilters(cli.command("summary <...files>", "Per service and endpoint: request rate, error ratio, p50/p90/p99/max duration, slowest traces"))
    .option("--json", "Print one JSON object")
    .example("beetrace summary cap.cbor")
    .example("beetrace summary cap.cbor --errors --json")
    .action(async (files: string[], options) => {
      await (await import("./summary.ts")).summaryCommand(files.map(String), options);
    });

  withFilters(cli.command("convert <file>", "Convert a capture file to OTLP JSON Lines (Collector otlpjsonfile format)"))
    .option("--to <format>", "Output format: otlp-json (JSON Lines) or otlp-proto (length-prefixed protobuf, Collector file exporter format)", { default: "otlp-json" })
    .option("-o, --out <path>", "Output file (default: stdout)")
    .option("--batch <spans>", "Spans per line (default 512)")
    .example("beetrace convert cap.cbor --to otlp-json -o traces.jsonl")
    .example("beetrace convert cap.cbor --min-duration 100ms --errors -o slow-errors.jsonl")
    .action(async (file: string, options) => {
      await convertCommand(String(file), options);
    });

  cli
    .command("merge <...files>", "Join the captures of several processes/hosts into one: server spans become children of the client spans that caused them (matched by connection), clocks reconciled")
    .option("-o, --out <file>", "Merged capture file to write")
    .option("--json", "Print the summary as one JSON object")
    .option("--skew <n=duration>", "Testing: shift file n's times (from 0, e.g. 1=2.5s or 1=-300ms) before joining, as if its clock were off (repeatable)")
    .example("beetrace merge edge.cbor orders.cbor -o joined.cbor")
    .action(async (files: string[], options) => {
      await (await import("./merge.ts")).mergeCommand(files.map(String), { out: options.out === undefined ? undefined : String(options.out), skew: options.skew, json: Boolean(options.json) });
    });

  cli
    .command("doctor", "Check that this machine can trace: privileges, kernel features, a live uprobe")
    .option("--json", "Print one JSON object")
    .example("beetrace doctor")
    .action(async (options) => {
      await doctorCommand({ json: Boolean(options.json) });
    });

  cli
    .command("export [...files]", "Send capture files (or kept spill files) to an OTLP collector (HTTP or gRPC), original timestamps kept")
    .option("--otlp <url>", "Collector URL: base (http://host:4318) or full traces URL; for grpc http(s)://host:4317 (default: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT)")
    .option("--protocol <protocol>", "http/protobuf (default), http/json or grpc")
    .option("--header <key=value>", "Extra HTTP header (gRPC metadata with grpc), repeatable (added to OTEL_EXPORTER_OTLP_HEADERS)")
    .option("--compression <gzip|none>", "Request body compression (default none)")
    .option("--timeout <ms>", "Per-request timeout in milliseconds (default 10000)")
    .option("--batch <spans>", "Spans per request (default 512)")
    .example("beetrace export cap.cbor --otlp http://collector:4318")
    .example("beetrace export cap.cbor --otlp http://collector:4317 --protocol grpc")
    .example("beetrace export spill.cbor --otlp http://collector:4318/v1/traces --header 'api-key=...'")
    .action(async (files: string[], options) => {
      await exportCommand(files.map(String), options);
    });

  const traceOptions = (c: ReturnType<CAC["command"]>) =>
    c
      .option("-o, --out <file>", "Capture file to write (CBOR, mode 0600); a template with {host} {pid} {exe} {start} {seq} (default without --otlp: ./beetrace-{exe}-{pid}-{start}.cbor)")
      .option("--duration <time>", "Stop after this long (60s, 5m, 1h); default: until Ctrl-C or the target exits")
      .option("--service-name <name>", "service.name for the spans (default: the target's OTEL_SERVICE_NAME, else its executable name)")
      .option("--offsets <file>", "Use this offsets file before the embedded snapshot")
      .option("--unknown-versions <policy>", "refuse (default) or nearest: use the nearest covered version, recorded as a guess")
      .option("--otlp <url>", "Stream spans to this OTLP collector (default from OTEL_EXPORTER_OTLP_ENDPOINT)")
      .option("--protocol <p>", "OTLP protocol: http/protobuf (default), http/json or grpc (then --otlp http(s)://host:4317)")
      .option("--header <k=v>", "OTLP request header (repeatable)")
      .option("--compression <c>", "OTLP compression: gzip or none")
      .option("--spill-dir <dir>", "Where spans wait while the collector is unreachable (default: next to --out, else .)")
      .option("--max-spans <n>", "Stop after writing this many spans")
      .option("--max-bytes <size>", "Stop once the capture files reach this size (e.g. 100M)")
      .option("--rotate-size <size>", "Start a new capture file when the current one reaches this size")
      .option("--ringbuf-size <bytes>", "Ring buffer size, a power of two (default 4M)")
      .option("--capture-format <n>", "3 (default): each tick's records compressed; 2: uncompressed, for beetrace versions before 3 (~3x larger)")
      .option("--db-statement <mode>", "db.query.text of database/sql spans: sanitized (default: literals replaced by ?), raw or off")
      .option("--propagate", "Insert a W3C traceparent into the plain HTTP/1 requests the target sends (socket layer: sock_ops+sk_msg, cgroup v2; exit 22 where unsupported); the application's own is kept, HTTP/2 and TLS are not rewritten")
      .option("--dry-run", "Load and attach every probe, then detach and exit")
      .option("-q, --quiet", "Print only warnings and errors (for cron)");

  traceOptions(
    cli
      .command("attach", "Trace a running Go process (root)")
      .option("--pid <pid>", "Process id of the Go service; repeat (or 12,34) to trace several at once, each into its own file, joined live by connection")
      .option("--exe <path>", "Trace every process executing this file, following restarts (exit 25 if none could be traced)"),
  )
    .example("beetrace attach --pid 1234 --out cap.cbor --duration 60s")
    .example("beetrace attach --exe ./server --duration 60s -q --out '{exe}-{host}-{start}.cbor'")
    .action((options) => attachCommand(options));

  traceOptions(cli.command("run", "Start a Go program and trace it from its first request; exits with the program's status (root)"))
    .example("beetrace run --out cap.cbor -- ./server --port 8080")
    .action((options) => runCommand((options["--"] ?? []).map(String), options));
}
