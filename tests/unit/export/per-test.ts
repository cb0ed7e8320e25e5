/**
 * @module tests/unit/export/per-test — collectors and log capture scoped to each test of a file
 * (bun:test hooks; collector.ts itself stays free of them: the Deno e2e test imports it).
 */
import { afterEach } from "bun:test";
import { setLogSink } from "../../../src/log.ts";
import { startCollector, type TestCollector } from "./collector.ts";

/**
 * Per-test collectors and log capture for a test file: `collector()` starts one that is stopped
 * after the test; `captureLogs()` collects log lines into `logs` until the test ends (then logs
 * go to stderr again).
 */
export function collectorsPerTest(): { collector: typeof startCollector; captureLogs: () => void; logs: string[] } {
  let started: TestCollector[] = [];
  const logs: string[] = [];
  afterEach(() => {
    for (const c of started) c.stop();
    started = [];
    logs.length = 0;
    setLogSink((l) => process.stderr.write(l + "\n"));
  });
  return {
    collector: (...args) => {
      const c = startCollector(...args);
      started.push(c);
      return c;
    },
    captureLogs: () => setLogSink((l) => logs.push(l)),
    logs,
  };
}
