/**
 * BEETRACE_REQUIRE_E2E=1 (set by .ci/run and by scripts/test.sh when CI=true) turns every skip
 * into a failure, so CI cannot pass on tests that never ran (tests/harness/require-e2e.ts).
 */
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const dir = mkdtempSync(join(tmpdir(), "beetrace-require-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every way the suite skips: skipIf on tests and groups (with .each), literal skip, it.*.
writeFileSync(
  join(dir, "skips.test.ts"),
  `import { describe, expect, it, test } from "bun:test";
test.skipIf(true)("needs clang", () => {});
test.skipIf(false)("runs", () => expect(1).toBe(1));
describe.skipIf(true)("e2e — skipped: needs root", () => { test("x", () => {}); });
describe.skipIf(false)("group", () => { test("y", () => expect(2).toBe(2)); });
describe.skipIf(true).each(["a", "b"])("mode %s", () => { test("z", () => {}); });
test.skip("toolchain could not be fetched", () => {});
it.skipIf(true)("needs bpftool", () => {});
`,
);

function run(env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(BUN, ["test", "--preload", join(ROOT, "tests", "harness", "require-e2e.ts"), "./skips.test.ts"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, BEETRACE_REQUIRE_E2E: "", BEETRACE_ALLOW_SKIP: "", ...env },
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("without BEETRACE_REQUIRE_E2E skips stay skips", () => {
  const r = run({});
  expect(r.status).toBe(0);
  expect(r.out).toMatch(/ 2 pass\n/);
  expect(r.out).toMatch(/ 0 fail\n/);
});

test("with BEETRACE_REQUIRE_E2E=1 every skip fails, naming what would have been skipped; the rest runs", () => {
  const r = run({ BEETRACE_REQUIRE_E2E: "1" });
  expect(r.status).not.toBe(0);
  expect(r.out).toMatch(/ 2 pass\n/);
  expect(r.out).toMatch(/ 5 fail\n/);
  for (const name of ["needs clang", "e2e — skipped: needs root", "mode %s", "toolchain could not be fetched", "needs bpftool"]) {
    expect(r.out).toContain(`(fail) ${name}`);
  }
});

test("BEETRACE_ALLOW_SKIP exempts matching names only", () => {
  const r = run({ BEETRACE_REQUIRE_E2E: "1", BEETRACE_ALLOW_SKIP: "toolchain could not be fetched" });
  expect(r.out).toMatch(/ 1 skip\n/);
  expect(r.out).toMatch(/ 4 fail\n/);
});

test("CI sets it: .ci/run always, scripts/test.sh when CI=true, and the suite preloads the policy", () => {
  expect(readFileSync(join(ROOT, ".ci", "run"), "utf8")).toContain('export BEETRACE_REQUIRE_E2E="${BEETRACE_REQUIRE_E2E:-1}"');
  const sh = readFileSync(join(ROOT, "scripts", "test.sh"), "utf8");
  expect(sh).toContain('if [ "${CI:-}" = "true" ]; then export BEETRACE_REQUIRE_E2E');
  expect(sh).toContain("--preload ./tests/harness/require-e2e.ts");
});
