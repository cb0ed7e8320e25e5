#!/usr/bin/env bash
# The tracer's resident memory, idle after start-up and under a fixed load (bench/memory.bench.ts):
# start-up peak, idle RSS with its breakdown (executable pages / anonymous / BPF ring / other),
# max and median RSS under load, VmHWM. Root (attach); builds its inputs into .cache/bench/.
#
#   bench/memory.sh [--before PATH] [--configs beetrace,notrim[,before]] [--rate 20000]
#                   [--duration 10] [--idle 5] [--conns 16] [--rounds 1] [--ringbuf SIZE] [--output file|otlp]
#                   [--steady-after SECONDS]
# `notrim` is the same executable with BEETRACE_NO_TRIM=1 (no start-up trim: src/trace/footprint.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/bench
mkdir -p "$out"
[ "$(id -u)" = 0 ] || { echo "memory.sh: needs root (uprobes)" >&2; exit 1; }
[ -x dist/beetrace ] || { echo "memory.sh: dist/beetrace is missing: node_modules/.bin/bun build.ts" >&2; exit 1; }
(cd tests/fixtures/go/sample && go build -trimpath -o "../../../../$out/sample" .)
(cd bench/loadgen && go build -trimpath -o "../../$out/loadgen" .)
# A private copy, so a rebuild of dist/ during the run cannot switch tracers; synced so its pages
# are clean page cache, as for an installed binary (dirty pages cannot be reclaimed by the trim).
cp dist/beetrace "$out/beetrace-memory"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --before ]; then cp "${args[$((i + 1))]}" "$out/beetrace-memory-before"; args[$((i + 1))]="$out/beetrace-memory-before"; fi
done
sync
echo "beetrace under test: sha256 $(sha256sum "$out/beetrace-memory" | cut -c1-16), built $(date -r dist/beetrace -u +%FT%TZ)"
exec node_modules/.bin/bun bench/memory.bench.ts --beetrace "$out/beetrace-memory" "${args[@]}"
