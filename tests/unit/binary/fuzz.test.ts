/** Bounded fuzz run over real Go binaries; the long run is bench/fuzz-readers.ts. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { buildGoProgram, FIXTURE, haveGo } from "./go-build.ts";
import { fuzz, runAllReaders } from "./fuzz-harness.ts";

const CASES = Number(process.env.BEETRACE_FUZZ_CASES ?? 150);

describe.skipIf(!haveGo())("fuzzing the binary readers with mutated Go binaries", () => {
  for (const mode of ["default", "strip", "pie"] as const) {
    test(`${mode} build: ${CASES} mutations give only TracerError`, async () => {
      const path = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode });
      const seed = new Uint8Array(readFileSync(path));
      expect(runAllReaders(seed)).toBe("ok");
      const r = fuzz(seed, CASES, 0x5eed + mode.length);
      expect(r.cases).toBe(CASES);
      // Mutations must actually reach the readers: some cases fail, some still parse.
      expect([...r.outcomes.keys()].some((k) => k !== "ok")).toBe(true);
    }, 240_000);
  }
});
