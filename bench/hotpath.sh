#!/usr/bin/env bash
# The hot-path benchmarks in one run, each holding the machine-wide bench lock (flock), with an
# optional "before" build measured side by side (bench/RESULTS.md §0 has the last results):
#   1. service CPU per request: untraced / no-op BPF at first instruction + RETs (the bare floor) /
#      beetrace / before, on /hello and /items/17 at a fixed rate (bench/latency.sh; 1b: the same
#      read on one process per route with paired windows, bench/service-overhead.ts)
#   2. tracer CPU per span, bytes per span and RSS near the service's saturation (beetrace, before)
#   3. the offline pipeline per stage: capture file path and OTLP path (bench/pipeline.bench.ts)
#   4. span duration minus the handler's own time (bench/span-overhead.ts)
#   5. launch → probes live on a ~29 MB stripped binary (bench/startup.bench.ts)
#   6. OTLP near saturation: the tracer's CPU per span and RSS streaming OTLP/HTTP (bench/memory.sh)
#
#   bench/hotpath.sh [--before PATH-TO-OTHER-BEETRACE] [--rate 2000] [--high-rate 15000]
# Root. Builds its inputs first (bench/latency.sh, bench/build-inputs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
before=""; rate=2000; high=15000
while [ $# -gt 0 ]; do
  case "$1" in
    --before) before=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --high-rate) high=$2; shift 2 ;;
    *) echo "hotpath.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
LOCK=${BEETRACE_BENCH_LOCK:-/tmp/beetrace-bench.lock}
bash bench/build-inputs.sh >/dev/null
configs=untraced,noop,beetrace; [ -n "$before" ] && configs="$configs,before"
b=(); [ -n "$before" ] && b=(--before "$before")

echo "## 1. service CPU per request at $rate req/s"
flock "$LOCK" bash bench/latency.sh --rate "$rate" --duration 10 --warmup 2 --rounds 2 --routes /hello,/items/17 --configs "$configs" "${b[@]}"
echo; echo "## 1b. the same, readable: one process per route, paired windows (bench/service-overhead.ts)"
flock -o "$LOCK" node_modules/.bin/bun bench/service-overhead.ts --rate "$rate" --routes /hello,/items/17 --rounds 8 --window 2 --bpf-stats yes --configs "$configs" "${b[@]}"
echo; echo "## 2. near saturation ($high req/s offered, 16 connections)"
flock "$LOCK" bash bench/latency.sh --rate "$high" --conns 16 --duration 10 --warmup 2 --routes /hello --configs "untraced,beetrace${before:+,before}" "${b[@]}"
echo; echo "## 3. pipeline"
flock "$LOCK" node_modules/.bin/bun bench/pipeline.bench.ts --spans 300000 --repeat 3
echo; echo "## 4. span duration minus handler time"
flock "$LOCK" node_modules/.bin/bun bench/span-overhead.ts --requests 3000
[ -n "$before" ] && flock "$LOCK" node_modules/.bin/bun bench/span-overhead.ts --requests 3000 --beetrace "$before"
echo; echo "## 5. start-up"
flock "$LOCK" node_modules/.bin/bun bench/startup.bench.ts --runs 15
[ -n "$before" ] && flock "$LOCK" node_modules/.bin/bun bench/startup.bench.ts --runs 15 --beetrace "$before"
echo; echo "## 6. OTLP near saturation ($high req/s offered, 16 connections)"
flock "$LOCK" bash bench/memory.sh --output otlp --rate "$high" --rounds 2 --configs "beetrace${before:+,before}" "${b[@]}"
exit 0
