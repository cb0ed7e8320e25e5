#!/usr/bin/env bash
# Where the traced service's time in the kernel goes, per request, down to the BPF programs'
# instructions: the sample (bench/latency.sh builds it) under a fixed-rate load, traced by
# BEETRACE, sampled with `perf record -a -g`; then the JIT images of the programs whose names
# start with PREFIX (bench/jit-dump.c) and bench/bpf-profile.ts, which prints the shares of the
# uprobe path by function, the BPF call sites of the costly helpers, and the hottest
# instructions of each program. How it was used: bench/RESULTS.md §0000000000.
#
#   bench/bpf-profile.sh [--route /hello] [--rate 2000] [--seconds 5] [--prefix nethttp_server]
#       [--beetrace dist/beetrace] [--out DIR]
# Root; needs perf and a C compiler. Hold the bench lock around it (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
route=/hello; rate=2000; seconds=5; prefix=nethttp_server; bt=dist/beetrace; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --route) route=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --beetrace) bt=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "bpf-profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bpf-profile.sh: needs root (perf -a, BPF program info)" >&2; exit 1; }
command -v perf >/dev/null || { echo "bpf-profile.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
mkdir -p .cache/bench
# The service and the load, built as bench/latency.sh builds them.
(cd tests/fixtures/go/sample && go build -trimpath -o ../../../../.cache/bench/sample .)
(cd bench/loadgen && go build -trimpath -o ../../.cache/bench/loadgen .)
[ -n "$out" ] || out=$(mktemp -d)
mkdir -p "$out/jit"
cc -O2 -o .cache/bench/jit-dump bench/jit-dump.c
pids=()
# The tracer and the load stop on SIGINT (the tracer closes its capture); the sample on SIGTERM.
cleanup() {
  for p in "${pids[@]:1}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
  kill "${pids[0]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
.cache/bench/sample >"$out/sample.log" 2>&1 & pids+=($!); sample=$!
for _ in $(seq 100); do grep -q "listening on" "$out/sample.log" && break; sleep 0.1; done
addr=$(grep -o 'listening on [^ ]*' "$out/sample.log" | awk '{print $3}')
.cache/bench/loadgen -url "http://$addr$route" -rate "$rate" -duration 24h -warmup 1s -conns 8 >"$out/load.log" 2>&1 & pids+=($!)
"$bt" attach --pid "$sample" --out "$out/capture.cbor" 2>"$out/tracer.log" & pids+=($!)
for _ in $(seq 100); do grep -q "tracing pid" "$out/tracer.log" && break; sleep 0.1; done
grep -q "tracing pid" "$out/tracer.log" || { echo "bpf-profile.sh: the tracer did not start:" >&2; cat "$out/tracer.log" >&2; exit 1; }
sleep 2 # the load's warm-up and the tracer's first drains
perf record -F 15000 -a -g -o "$out/perf.data" -- sleep "$seconds" >/dev/null 2>&1
.cache/bench/jit-dump "$prefix" "$out/jit" >"$out/jit/verified.txt"
cleanup; trap - EXIT
perf script -i "$out/perf.data" --comm sample -F ip,sym >"$out/stacks.txt" 2>/dev/null
node_modules/.bin/bun bench/bpf-profile.ts "$out" "$(( rate * seconds ))"
echo "bpf-profile: data in $out"
