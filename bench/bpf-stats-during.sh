#!/usr/bin/env bash
# The BPF programs' own time per run while a benchmark runs: kernel.bpf_stats_enabled on for the
# duration (restored after), the programs whose names start with PREFIX read with bpftool every
# 250 ms, and the last reading that had them printed (a tracer detaches, and its programs go, when
# its traced round ends). For the probe benches that have no --bpf-stats of their own:
#
#   bench/bpf-stats-during.sh http3 node_modules/.bin/bun bench/http3-overhead.ts --rounds 1
#   bench/bpf-stats-during.sh databasesql node_modules/.bin/bun bench/databasesql-overhead.ts --rounds 1
#
# Root; needs bpftool. Prints the command's last line that reports the added cost, then
# "name runs ns-per-run" for each program. Hold the bench lock around it (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/bpf-stats-during.sh PREFIX COMMAND [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bpf-stats-during.sh: needs root (kernel.bpf_stats_enabled, bpftool)" >&2; exit 1; }
command -v bpftool >/dev/null || { echo "bpf-stats-during.sh: bpftool is missing (apt-get install bpftool)" >&2; exit 1; }
prefix=$1
shift
work=$(mktemp -d)
was=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [ -n "${poller:-}" ] && kill "$poller" 2>/dev/null || true
  sysctl -q kernel.bpf_stats_enabled="$was"
  rm -rf "$work"
}
trap cleanup EXIT
sysctl -q kernel.bpf_stats_enabled=1
(
  while :; do
    bpftool prog show -j >"$work/now.json" 2>/dev/null || true
    if grep -q "\"name\":\"$prefix" "$work/now.json"; then cp "$work/now.json" "$work/last.json"; fi
    sleep 0.25
  done
) &
poller=$!
"$@" 2>&1 | grep -iE "added|per (request|query|call|message|span)" | tail -1 || true
kill "$poller" 2>/dev/null || true
wait "$poller" 2>/dev/null || true
poller=
[ -s "$work/last.json" ] || { echo "no program named $prefix* was seen running" >&2; exit 1; }
PREFIX=$prefix node_modules/.bin/bun -e '
const progs = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
for (const p of progs) if (p.name?.startsWith(process.env.PREFIX) && p.run_cnt)
  console.log(`${p.name} ${p.run_cnt} ${(p.run_time_ns / p.run_cnt).toFixed(0)} ns/run`);
' "$work/last.json"
