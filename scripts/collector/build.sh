#!/usr/bin/env bash
# Builds the real OpenTelemetry Collector that beetrace's OTLP output is checked against
# (tests/e2e/collector.test.ts, bench/soak.bench.ts): scripts/collector/otelcol/main.go, a
# distribution wired like the Collector Builder's, with
#   receivers: otlp (core: OTLP/HTTP protobuf + JSON, OTLP/gRPC)
#   exporters: file (contrib: what it received, as OTLP JSON lines or length-prefixed protobuf)
# Every module version is pinned by scripts/collector/otelcol/go.mod + go.sum (collector v0.165.0
# / v1.71.0, contrib fileexporter v0.165.1), fetched from the Go module proxy; the Go toolchain
# is pinned too (GOTOOLCHAIN, fetched by the go command like the e2e tests' toolchains).
#
# Output: .cache/collector/otelcol-beetrace (gitignored), keyed by a hash of go.mod, go.sum,
# main.go, the toolchain and the build flags (.cache/collector/key). Idempotent: when the key
# matches, nothing is built (well under a second). A fresh build takes a few minutes on 2 cores
# (docs/otlp.md, "The real OpenTelemetry Collector", has the measured time and disk use).
#
# Why not the builder itself (go.opentelemetry.io/collector/cmd/builder): it runs `go mod tidy`
# over the components, which also resolves their *tests'* imports, and some of those test-only
# modules (e.g. contrib's otlpencodingextension) are not served by the module proxy, so tidy
# fails; with --skip-get-modules it writes no go.mod at all. Our go.sum was made once with
# `go mod tidy -e` (tolerates the missing test-only modules) and the build runs -mod=readonly.
#
# The contrib otlpjsonfile receiver is not included: the module proxy does not serve it
# (`go list -m -versions github.com/open-telemetry/opentelemetry-collector-contrib/receiver/otlpjsonfilereceiver`
# finds no version; v0.165.0 is refused with "This module version is not available").
#
# To move to newer versions: edit the requires in otelcol/go.mod, run
# `GOTOOLCHAIN=$GO_TOOLCHAIN go mod tidy -e` there, and rebuild (the key changes by itself).
set -euo pipefail
cd "$(dirname "$0")/../.."

GO_TOOLCHAIN=${GO_TOOLCHAIN:-go1.26.11} # the collector v0.165 modules need go >= 1.26.0
src=scripts/collector/otelcol
dir=.cache/collector
exe=$dir/otelcol-beetrace
# -p 2: the machines have 2 cores; -s -w and -trimpath: smaller binary, no local paths in it.
build_flags=(-p 2 -trimpath "-ldflags=-s -w")

key=$( { cat "$src/go.mod" "$src/go.sum" "$src/main.go"; echo "$GO_TOOLCHAIN ${build_flags[*]} $(uname -m)"; } | sha256sum | cut -c1-16)
if [ -x "$exe" ] && [ "$(cat "$dir/key" 2>/dev/null)" = "$key" ]; then
  echo "collector: $exe is up to date (key $key)"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "collector: needs go on PATH (scripts/setup.sh installs it)" >&2
  exit 1
fi

mkdir -p "$dir"
export GOWORK=off GOTOOLCHAIN=$GO_TOOLCHAIN GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
start=$(date +%s)
echo "collector: building $exe with $GO_TOOLCHAIN (first run downloads the modules; a few minutes)"
tmp="$PWD/$exe.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$src" && nice -n 10 go build "${build_flags[@]}" -o "$tmp" .)
"$tmp" --version >/dev/null # it runs, here
mv -f "$tmp" "$exe"
echo "$key" > "$dir/key"
echo "collector: built $exe ($(( $(stat -c %s "$exe") / 1048576 )) MiB) in $(( $(date +%s) - start )) s"
