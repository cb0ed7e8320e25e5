#!/usr/bin/env bash
# Builds a minimal real OpenTelemetry Collector for checking beetrace's OTLP output:
#   receivers: otlp (core)          — takes our OTLP/HTTP protobuf and JSON
#   exporters: file (contrib)       — writes what it received as OTLP JSON lines or proto
# with the official builder (go.opentelemetry.io/collector/cmd/builder) from the Go module
# proxy. Output: .cache/collector/otelcol-beetrace (gitignored). Idempotent: an existing
# binary for the same versions is reused. Bounded to `go build -p 2` (small shared machines).
#
# The contrib otlpjsonfile receiver (reads JSON Lines files) is not on every module proxy
# mirror; scripts/collector/check.ts instead POSTs each `beetrace convert --to otlp-json` line
# to the otlp receiver as OTLP/JSON, which goes through the same pdata JSON unmarshaler.
# Add it here (OTLPJSONFILE=1) where the proxy has it.
set -euo pipefail
cd "$(dirname "$0")/../.."

OTELCOL_VERSION=${OTELCOL_VERSION:-0.165.0}
CONTRIB_VERSION=${CONTRIB_VERSION:-0.165.1}
GO_TOOLCHAIN=${GO_TOOLCHAIN:-go1.26.11}
dir=.cache/collector
exe=$dir/otelcol-beetrace
stamp="$OTELCOL_VERSION/$CONTRIB_VERSION/${OTLPJSONFILE:-0}"

if [ -x "$exe" ] && [ "$(cat "$dir/versions" 2>/dev/null)" = "$stamp" ]; then
  echo "collector: $exe is up to date ($stamp)"
  exit 0
fi
mkdir -p "$dir"
{
  echo "dist:"
  echo "  name: otelcol-beetrace"
  echo "  description: beetrace test collector"
  echo "  output_path: ./src"
  echo "receivers:"
  echo "  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$OTELCOL_VERSION"
  if [ "${OTLPJSONFILE:-0}" = 1 ]; then
    echo "  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/receiver/otlpjsonfilereceiver v$CONTRIB_VERSION"
  fi
  echo "exporters:"
  echo "  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter v$CONTRIB_VERSION"
} > "$dir/builder-config.yaml"

export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=$GO_TOOLCHAIN CGO_ENABLED=0
start=$(date +%s)
echo "collector: generating sources with builder v$OTELCOL_VERSION"
# --skip-get-modules: the builder's own `go mod tidy` also resolves the *tests* of every
# component, and some of those test-only modules are missing from some proxy mirrors; `tidy -e`
# records what the build needs and tolerates the rest.
(cd "$dir" && go run "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" --config builder-config.yaml --skip-compilation --skip-get-modules)
echo "collector: go mod tidy -e; go build (downloads the collector's modules on first run)"
(cd "$dir/src" && go mod tidy -e >/dev/null 2>&1 || true; go build -p 2 -trimpath -o ../otelcol-beetrace .)
echo "$stamp" > "$dir/versions"
echo "collector: built $exe in $(( $(date +%s) - start )) s"
