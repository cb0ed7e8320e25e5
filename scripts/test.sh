#!/usr/bin/env bash
# The whole test suite: set up (idempotent), type-check, unit tests, e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node_modules/.bin/tsc --noEmit -p tsconfig.json
# Per-test default timeout: e2e tests build Go programs on a cold cache (they still wait on
# conditions, never fixed sleeps). bunfig.toml cannot set it for this Bun version.
node_modules/.bin/bun test --timeout 300000 "$@"
