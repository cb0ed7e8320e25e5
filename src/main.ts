#!/usr/bin/env bun
/**
 * @module main — argv → command → exit code.
 *
 * The only place that prints errors and exits. Commands live in src/cli/<name>.ts and either
 * return normally (exit 0), return an exit code, or throw; a TracerError becomes
 * "error: <message>" + "hint: <hint>" and its documented exit code (src/errors.ts); anything
 * else is a bug and exits 70 with a one-line message (stack trace only with -v).
 */
import { cac } from "cac";
import { EXIT_CODES, TracerError, isTracerError } from "./errors.ts";
import { log, setLogLevel } from "./log.ts";
import { BEETRACE_VERSION } from "./version.ts";
import { registerCommands } from "./cli/commands.ts";

export async function main(argv: string[]): Promise<number> {
  const cli = cac("beetrace");
  cli.option("-v, --verbose", "Show debug output (libbpf messages, verifier logs)");
  registerCommands(cli);
  cli.help((sections) => {
    sections.push({
      title: "EXAMPLES",
      body: [
        // Each line runs as written (tests/unit/cli/help-examples.test.ts, tests/e2e/help-examples.test.ts).
        "  beetrace inspect ./server                 # what beetrace would probe, offline",
        "  beetrace run --out cap.cbor -- ./server   # start a Go program and trace it",
        "  beetrace attach --pid 1234 --duration 60s # trace a running service for 60 s (to ./beetrace-*.cbor)",
        "  beetrace view cap.cbor                    # print captured traces as trees",
      ].join("\n"),
    });
    return sections;
  });
  cli.version(BEETRACE_VERSION, "-V, --version");

  let verbose = argv.includes("-v") || argv.includes("--verbose");
  if (verbose) setLogLevel("debug");
  try {
    const parsed = cli.parse(["node", "beetrace", ...argv], { run: false });
    verbose = Boolean(parsed.options.verbose);
    if (!cli.matchedCommand) {
      if (parsed.options.help || parsed.options.version) return 0;
      if (parsed.args.length > 0) {
        throw new TracerError("usage", `unknown command '${parsed.args[0]}'`, { hint: "run 'beetrace --help' to list the commands" });
      }
      cli.outputHelp();
      return 0;
    }
    const result = await cli.runMatchedCommand();
    return typeof result === "number" ? result : 0;
  } catch (e) {
    return reportError(e, verbose);
  }
}

function reportError(e: unknown, verbose: boolean): number {
  if (isTracerError(e)) {
    log.error(e.message);
    if (e.hint) log.hint(e.hint);
    if (e.detail && e.detail.length > 0) {
      if (verbose) for (const line of e.detail) log.info(line);
      else log.info("(run with -v for details)");
    }
    return EXIT_CODES[e.code];
  }
  // cac reports unknown options and missing arguments by throwing CACError.
  if (e instanceof Error && e.name === "CACError") {
    log.error(e.message);
    log.hint("run 'beetrace --help' for usage");
    return EXIT_CODES.usage;
  }
  const msg = e instanceof Error ? e.message : String(e);
  log.error(`BUG: unexpected failure: ${msg}`);
  log.hint("please report this with the output of 'beetrace -v ...'");
  if (verbose && e instanceof Error && e.stack) log.info(e.stack);
  return EXIT_CODES.internal;
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // Let stdout/stderr drain before exiting (pipes may be slow readers).
  process.exitCode = code;
  process.exit(code);
}
