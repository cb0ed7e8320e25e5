/**
 * @module cli/commands — the command table: names, options and the handler each calls.
 * Handlers live in src/cli/<name>.ts, take parsed options and return an exit code (or throw).
 */
import type { CAC } from "cac";
import { inspectCommand } from "./inspect.ts";
import { viewCommand } from "./view.ts";
import { convertCommand } from "./convert.ts";

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
    .command("view <file>", "Print a capture file as trace trees with a summary")
    .option("--width <columns>", "Cut lines to this width (default 80)")
    .example("beetrace view cap.cbor")
    .action(async (file: string, options) => {
      await viewCommand(String(file), options);
    });

  cli
    .command("convert <file>", "Convert a capture file to OTLP JSON Lines (Collector otlpjsonfile format)")
    .option("--to <format>", "Output format: otlp-json", { default: "otlp-json" })
    .option("-o, --out <path>", "Output file (default: stdout)")
    .option("--batch <spans>", "Spans per line (default 512)")
    .example("beetrace convert cap.cbor --to otlp-json -o traces.jsonl")
    .action(async (file: string, options) => {
      await convertCommand(String(file), options);
    });
}
