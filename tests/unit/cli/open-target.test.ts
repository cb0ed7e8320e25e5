/**
 * @module tests/unit/cli/open-target.test — openTarget (async read overlapped with the decoder's
 * start-up) gives what the synchronous path gives, for a real Go build and for bad paths.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGoBinary, resolveSymbol } from "../../../src/binary/analyze.ts";
import { openTarget, readTargetBytes } from "../../../src/target/executable.ts";
import { TracerError } from "../../../src/errors.ts";
import { buildGoProgram, FIXTURE, haveGo } from "../binary/go-build.ts";

const SYMBOLS = ["main.main", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip", "no/such.Function"];

async function rejection(p: Promise<unknown>): Promise<TracerError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${String(e)}`);
  }
  throw new Error("expected a rejection");
}

function thrown(f: () => unknown): TracerError {
  try {
    f();
  } catch (e) {
    if (e instanceof TracerError) return e;
    throw new Error(`expected a TracerError, got ${String(e)}`);
  }
  throw new Error("expected a throw");
}

describe.skipIf(!haveGo())("openTarget on Go builds", () => {
  for (const mode of ["stripped-ldflags", "pie"] as const) {
    test(`${mode}: same analysis and return sites as readTargetBytes + openGoBinary`, async () => {
      const bin = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode });
      const a = await openTarget(bin, "target");
      const b = openGoBinary(readTargetBytes(bin), "target");
      expect([a.goVersion, a.arch, a.pie, a.stripped, a.pcln.textStart]).toEqual([b.goVersion, b.arch, b.pie, b.stripped, b.pcln.textStart]);
      const ra = SYMBOLS.map((s) => resolveSymbol(a, s));
      expect(ra).toEqual(SYMBOLS.map((s) => resolveSymbol(b, s)));
      expect(ra.filter((r) => r.resolved).length).toBe(3);
    });
  }
});

describe("openTarget on bad paths: the errors of the synchronous path", () => {
  const dir = mkdtempSync(join(tmpdir(), "beetrace-open-target-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const notElf = join(dir, "script.sh");
  writeFileSync(notElf, "#!/bin/sh\necho hi\n");
  const cases: [string, string][] = [
    ["missing file", join(dir, "nope")],
    ["directory", dir],
    ["not an ELF file", notElf],
  ];
  for (const [what, path] of cases) {
    test(what, async () => {
      const sync = thrown(() => openGoBinary(readTargetBytes(path), path));
      const async_ = await rejection(openTarget(path, path));
      expect({ code: async_.code, message: async_.message }).toEqual({ code: sync.code, message: sync.message });
    });
  }
});
