#!/usr/bin/env bash
# README command 1: set everything up, build dist/beetrace, trace the bundled sample Go service
# with it, and show the traces. Tracing needs root (BPF); without root only `inspect` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node_modules/.bin/bun scripts/demo.ts "$@"
