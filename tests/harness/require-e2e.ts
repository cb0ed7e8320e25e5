/**
 * @module tests/harness/require-e2e — with BEETRACE_REQUIRE_E2E=1, a skipped test is a failed test.
 *
 * Tests that need root, clang, bpftool, Go, a built dist/beetrace, … skip with a reason on a
 * machine without them, so a run there is green while proving nothing. CI machines have
 * everything (scripts/setup.sh installs it), so .ci/run (and scripts/test.sh when CI=true) set
 * BEETRACE_REQUIRE_E2E=1 and preload this file: every `test.skip`, `test.skipIf(true)`,
 * `describe.skip`, `describe.skipIf(true)` (and their `it` aliases and `.each` forms) then
 * registers a failing test named after what would have been skipped (the skip reasons are in
 * those names and in the files' console.warn lines).
 *
 * BEETRACE_ALLOW_SKIP=REGEX exempts skips whose name matches (an escape hatch for a known gap,
 * to be named in the CI configuration, not a default). Without BEETRACE_REQUIRE_E2E=1 this file
 * changes nothing.
 */
import { describe, it, test } from "bun:test";

type Fn = (...args: unknown[]) => unknown;

const required = process.env.BEETRACE_REQUIRE_E2E === "1";
const allowed = process.env.BEETRACE_ALLOW_SKIP ? new RegExp(process.env.BEETRACE_ALLOW_SKIP) : undefined;

/** A registrar that turns "skip NAME" into a failing test NAME (or a real skip when allowed). */
function failing(realSkip: Fn, self: unknown): Fn {
  const f = (name: unknown, ...rest: unknown[]) => {
    const label = String(name);
    if (allowed?.test(label)) return realSkip.call(self, name, ...rest);
    return test(`${label} [skipped, but BEETRACE_REQUIRE_E2E=1]`, () => {
      throw new Error(`"${label}" would be skipped; BEETRACE_REQUIRE_E2E=1 requires it to run (install what it needs, run as root, or set BEETRACE_ALLOW_SKIP)`);
    });
  };
  // describe.skipIf(c).each(rows)(name, fn): one failure stands for all rows.
  (f as Fn & { each: Fn }).each = (rows: unknown) => (name: unknown, ...rest: unknown[]) => f(`${String(name)} (each of ${Array.isArray(rows) ? rows.length : "?"})`, ...rest);
  return f;
}

function patch(obj: { skip: Fn; skipIf: Fn }): void {
  const skip = obj.skip;
  const skipIf = obj.skipIf;
  // Bun keeps these on a prototype as read-only accessors: shadow them on the object itself.
  Object.defineProperty(obj, "skip", { value: failing(skip, obj), configurable: true });
  // skipIf(false) must stay the original (it runs the test); bun checks `this`.
  Object.defineProperty(obj, "skipIf", { value: (cond: unknown) => (cond ? failing(skip, obj) : skipIf.call(obj, cond)), configurable: true });
}

if (required) {
  patch(test as unknown as { skip: Fn; skipIf: Fn });
  patch(describe as unknown as { skip: Fn; skipIf: Fn });
  if ((it as unknown) !== (test as unknown)) patch(it as unknown as { skip: Fn; skipIf: Fn });
}
