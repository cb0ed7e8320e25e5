/** @module tests/smoke/iced-compiled — the iced-x86 wrapper works inside a `bun build --compile` executable. */
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findReturnSites } from "../../src/binary/returns.ts";
import { buildFixture, missingTools, REPO_ROOT } from "../unit/binary/returns-fixture.ts";

// Proof that the vendored iced-x86 wrapper works inside the single executable: compile a tiny
// entry that imports src/binary/returns.ts, run it on real Go functions, compare with the
// source run. The executable is ~110 MB, so it lives in a temp dir removed afterwards.
const skip = missingTools();
if (skip) console.warn(`skipping compiled iced-x86 check: ${skip}`);

const workDir = mkdtempSync(join(tmpdir(), "beetrace-iced-compiled-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe.skipIf(skip !== undefined)("iced-x86 inside `bun build --compile`", () => {
  test("the compiled executable finds the same return sites as the source, from the embedded wasm", () => {
    const fx = buildFixture("default");
    // The probed functions plus every 25th function of .text (~270), big and small.
    const named = ["main.main", "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip", "net/http.(*conn).serve"];
    const funcs = [...named.map((n) => fx.byName(n)), ...fx.funcs.filter((_, i) => i % 25 === 0)].filter(
      (f) => !f.name.startsWith("crypto/internal/boring/sig."), // embeds data; rejected by design
    );
    const fromSource = funcs.map((f) => findReturnSites("x86_64", fx.code(f), f.addr));

    const bin = join(workDir, "iced-entry");
    const bun = join(REPO_ROOT, "node_modules", ".bin", "bun");
    execFileSync(bun, ["build", "--compile", join(REPO_ROOT, "tests", "smoke", "iced-compiled-entry.ts"), "--outfile", bin], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "ignore", "inherit"],
    });
    // Run from the temp dir so nothing is found relative to the source tree by accident.
    const out = execFileSync(
      bin,
      [fx.path, fx.textVma.toString(16), fx.textOff.toString(16), ...funcs.map((f) => `${f.addr.toString(16)}:${f.size}`)],
      { cwd: workDir, encoding: "utf8" },
    );
    const result = JSON.parse(out) as { loadedBefore: boolean; loadedAfter: boolean; wasmPath: string; sites: number[][] };

    expect(result.wasmPath).toStartWith("/$bunfs/"); // embedded, not the build machine's node_modules
    expect(result.loadedBefore).toBe(false); // lazy: importing the module does not instantiate WASM
    expect(result.loadedAfter).toBe(true);
    expect(result.sites).toEqual(fromSource);
    expect(fromSource.flat().length).toBeGreaterThan(300);
  });
});
