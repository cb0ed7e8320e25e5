/**
 * @module log — leveled messages to stderr. Data (spans, JSON) goes to stdout via the
 * command's own writer; everything a human should read about the run goes here.
 */

export type Level = "debug" | "verbose" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 0, verbose: 1, info: 2, warn: 3, error: 4 };

let threshold: Level = "info";
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogLevel(level: Level): void {
  threshold = level;
}
export function logLevel(): Level {
  return threshold;
}
/** Tests capture log output by swapping the sink. */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}
function emit(level: Level, prefix: string, msg: string): void {
  if (order[level] >= order[threshold]) sink(prefix + msg);
}
export const log = {
  debug: (m: string) => emit("debug", "debug: ", m),
  verbose: (m: string) => emit("verbose", "", m),
  info: (m: string) => emit("info", "", m),
  warn: (m: string) => emit("warn", "warning: ", m),
  error: (m: string) => emit("error", "error: ", m),
  hint: (m: string) => emit("error", "hint: ", m),
};

/**
 * A start-up stage, "start-up: <what> at <ms> ms" (ms since the process started: performance.now's
 * origin), where launch → probes live goes (bench/startup.bench.ts). At debug level (-v), or
 * always with BEETRACE_STARTUP_STAGES=1: -v also makes libbpf print its debug lines and load the
 * BPF objects on the JS thread, which changes the timeline being measured (trace/session.ts).
 */
export function startupStage(what: string): void {
  const line = `start-up: ${what} at ${performance.now().toFixed(1)} ms`;
  if (process.env.BEETRACE_STARTUP_STAGES === "1" && order[threshold] > order.debug) sink(line);
  else log.debug(line);
}
