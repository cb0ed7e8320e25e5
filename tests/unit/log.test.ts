/** Start-up stage lines (log.ts startupStage): with -v, or alone with BEETRACE_STARTUP_STAGES=1 (bench/startup.bench.ts). */
import { afterEach, expect, test } from "bun:test";
import { logLevel, setLogLevel, setLogSink, startupStage } from "../../src/log.ts";

const level = logLevel();
const env = process.env.BEETRACE_STARTUP_STAGES;
afterEach(() => {
  setLogLevel(level);
  setLogSink((line) => process.stderr.write(line + "\n"));
  if (env === undefined) delete process.env.BEETRACE_STARTUP_STAGES;
  else process.env.BEETRACE_STARTUP_STAGES = env;
});

function linesOf(fn: () => void): string[] {
  const lines: string[] = [];
  setLogSink((l) => lines.push(l));
  fn();
  return lines;
}

test("at the default level a stage says nothing, unless BEETRACE_STARTUP_STAGES=1", () => {
  setLogLevel("info");
  delete process.env.BEETRACE_STARTUP_STAGES;
  expect(linesOf(() => startupStage("planned"))).toEqual([]);
  process.env.BEETRACE_STARTUP_STAGES = "1";
  const [line, ...rest] = linesOf(() => startupStage("planned"));
  expect(rest).toEqual([]);
  expect(line).toMatch(/^start-up: planned at \d+\.\d ms$/);
});

test("with -v (debug) a stage is a debug line, once, with or without the variable", () => {
  setLogLevel("debug");
  for (const v of [undefined, "1"]) {
    if (v === undefined) delete process.env.BEETRACE_STARTUP_STAGES;
    else process.env.BEETRACE_STARTUP_STAGES = v;
    const lines = linesOf(() => startupStage("loaded"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^debug: start-up: loaded at \d+\.\d ms$/);
  }
});
