/**
 * @module bench/fuzz-readers — the long fuzz run over the binary readers (the test suite runs a
 * bounded number of cases; this runs as many as you ask for).
 *
 *   node_modules/.bin/bun bench/fuzz-readers.ts [CASES_PER_SEED=2000] [SEED=1]
 *
 * Mutates real Go binaries (default, stripped, PIE, cgo with the external linker) built by the
 * local toolchain and feeds every reader. Any exception other than TracerError, or a case slower
 * than 5 s, stops the run with the mutation that caused it.
 */
import { readFileSync } from "node:fs";
import { buildGoProgram, FIXTURE } from "../tests/unit/binary/go-build.ts";
import { fuzz } from "../tests/unit/binary/fuzz-harness.ts";

const cases = Number(process.argv[2] ?? 2000);
const seed = Number(process.argv[3] ?? 1);
let total = 0;
const t0 = performance.now();
for (const mode of ["default", "strip", "pie", "cgo-external"] as const) {
  const path = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode });
  const bytes = new Uint8Array(readFileSync(path));
  const r = fuzz(bytes, cases, seed * 1000 + mode.length);
  total += r.cases;
  const outcomes = [...r.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`${mode.padEnd(13)} ${r.cases} cases (${(bytes.length / 1e6).toFixed(1)} MB seed); slowest ${r.slowest.ms.toFixed(0)} ms (${r.slowest.what}); ${outcomes}`);
}
console.log(`total: ${total} cases, no non-TracerError exception, in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
