#!/usr/bin/env bash
# The whole test suite: set up (idempotent), type-check, unit tests, e2e tests.
# In CI (CI=true, or via .ci/run) BEETRACE_REQUIRE_E2E=1: a test that would skip for want of root,
# a tool or a build fails instead (tests/harness/require-e2e.ts), so a green run means it all ran.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then export BEETRACE_REQUIRE_E2E="${BEETRACE_REQUIRE_E2E:-1}"; fi
bash scripts/setup.sh
node_modules/.bin/tsc --noEmit -p tsconfig.json
# Per-test default timeout: e2e tests build Go programs on a cold cache (they still wait on
# conditions, never fixed sleeps). bunfig.toml cannot set it for this Bun version.
node_modules/.bin/bun test --timeout 300000 --preload ./tests/harness/require-e2e.ts "$@"
