#!/usr/bin/env bash
# Builds the large stripped Go binary bench/inspect.bench.ts reads: gopls at a fixed version,
# -ldflags="-s -w" (no symbol table, no DWARF: the pclntab path), ~29 MB with Go 1.26.
# Idempotent: skips the build when the binary exists. Needs Go and the Go module proxy (or a
# module cache that already holds gopls and its dependencies).
#
#   bench/build-inputs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GOPLS_VERSION=v0.20.0
dir=.cache/bench/gopls
if [ -x "$dir/gopls" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$GOPLS_VERSION $(go env GOVERSION)" ]; then
  echo "build-inputs: $dir/gopls is up to date"
  exit 0
fi
mkdir -p "$dir"
# -p 2: these machines are shared; keep the build to two compile jobs.
GOBIN="$PWD/$dir" go install -p 2 -trimpath -ldflags="-s -w" "golang.org/x/tools/gopls@$GOPLS_VERSION"
echo "$GOPLS_VERSION $(go env GOVERSION)" > "$dir/version"
ls -l "$dir/gopls"
