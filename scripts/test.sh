#!/usr/bin/env bash
# The whole test suite: set up (idempotent), type-check, unit tests, e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node_modules/.bin/tsc --noEmit -p tsconfig.json
node_modules/.bin/bun test "$@"
