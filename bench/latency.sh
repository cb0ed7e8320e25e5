#!/usr/bin/env bash
# Added latency per request on the sample service under a fixed-rate load: untraced, traced by
# dist/beetrace (attach --pid), and no-op BPF programs at the same uprobe sites.
# Builds its inputs into .cache/bench/ (gitignored), then runs bench/latency.ts (root, loopback
# only, bounded: each configuration runs --warmup + --duration seconds on a fresh sample).
#
#   sudo bench/latency.sh [--rate 500] [--duration 10] [--warmup 2] [--conns 8] [--rounds 1]
#                         [--routes /hello,/proxy] [--configs untraced,noop,beetrace]
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/bench
mkdir -p "$out"

[ "$(id -u)" = 0 ] || { echo "latency.sh: needs root (uprobes); run with sudo" >&2; exit 1; }
for tool in go clang gcc; do
  command -v "$tool" >/dev/null || { echo "latency.sh: needs $tool (run scripts/setup.sh)" >&2; exit 1; }
done
[ -x dist/beetrace ] || { echo "latency.sh: dist/beetrace is missing: node_modules/.bin/bun build.ts" >&2; exit 1; }

# The service under test and the load generator: plain go build, same toolchain for both.
(cd tests/fixtures/go/sample && go build -trimpath -o "../../../../$out/sample" .)
(cd bench/loadgen && go build -trimpath -o "../../$out/loadgen" .)
# The no-op programs (bpf_helpers.h from libbpf-dev; asm/ headers from the target triplet dir).
clang -O2 -g -target bpf -I"/usr/include/$(gcc -dumpmachine)" -c bench/noop.bpf.c -o "$out/noop.bpf.o"
# A private copy, so a rebuild of dist/ during the run cannot mix two tracer versions.
cp dist/beetrace "$out/beetrace"
echo "beetrace under test: sha256 $(sha256sum "$out/beetrace" | cut -c1-16), built $(date -r dist/beetrace -u +%FT%TZ)"

exec node_modules/.bin/bun bench/latency.ts --beetrace "$out/beetrace" "$@"
