#!/usr/bin/env bash
# Installs everything beetrace needs to build and test, then builds dist/beetrace.
# Idempotent: each step checks first and is quick when its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg_cmd in clang:clang llvm:llvm-strip bpftool:bpftool binutils:objdump wrk:wrk make:make gcc:gcc m4:m4 gawk:gawk bzip2:bzip2 pkg-config:pkg-config; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# Debian's chromium: the HTML viewer's tests and bench open `view --html` pages in it headless
# (tests/e2e/viewer-browser.ts drives it with playwright-core, executablePath /usr/bin/chromium).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)  # readable screenshots
# zlib's static archive is linked into the embedded libbpf bundle.
[ -f "$(gcc -print-file-name=libz.a 2>/dev/null || echo /nonexistent)" ] || need_apt+=(zlib1g-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/ptrace.h ] || need_apt+=(linux-libc-dev)
# libbpf headers build the BPF test fixtures; its libbpf.so.1 is the loader's fallback without a bundle.
[ -f /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
# build.ts fetches the libbpf/elfutils Debian source packages (dpkg-source unpacks them; the
# Debian tarballs are .tar.xz); the e2e smoke test chroots with util-linux's unshare.
# elfutils' configure needs flex/bison/gawk only in maintainer mode, which we do not use.
# The live-join e2e test puts services in network namespaces joined by veth pairs (iproute2's ip).
for pkg_cmd in dpkg-dev:dpkg-source xz-utils:xz util-linux:unshare iproute2:ip; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Go >= 1.21 on PATH: the e2e tests build their Go fixtures with pinned toolchains the go command
# fetches itself (GOTOOLCHAIN; tests/harness/go.ts). Debian 12 packages only Go 1.19, which cannot
# switch toolchains, so it is used once to download the newest pinned toolchain as a module.
# Module zips drop the executable bit (the go command restores it when it switches by itself).
BOOTSTRAP_GO=go1.27.4 # = newestToolchain() in tests/harness/go.ts
if ! { command -v go >/dev/null 2>&1 && [ -n "$(go env GOTOOLCHAIN 2>/dev/null)" ]; }; then
  echo "setup: installing Go $BOOTSTRAP_GO"
  if [ ! -x /usr/lib/go-1.19/bin/go ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends golang-1.19-go >/dev/null
  fi
  go_dir=$(cd / && GOFLAGS=-modcacherw /usr/lib/go-1.19/bin/go mod download -json \
    "golang.org/toolchain@v0.0.1-$BOOTSTRAP_GO.linux-$(dpkg --print-architecture)" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$go_dir" ] || { echo "setup: downloading Go $BOOTSTRAP_GO failed" >&2; exit 1; }
  chmod -R u+w "$go_dir" && chmod +x "$go_dir"/bin/* "$go_dir"/pkg/tool/*/*
  ln -sf "$go_dir/bin/go" /usr/local/bin/go
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The iced-x86 glue wrapped for `bun build --compile` (gitignored; rewritten only when stale).
node_modules/.bin/bun scripts/vendor-iced.ts

# The real OpenTelemetry Collector (otlp receiver + file exporter, pinned versions from the Go
# module proxy) for tests/e2e/collector.test.ts and bench/soak.bench.ts; cached in .cache/collector/.
# A failed build (say, the proxy unreachable) does not stop the setup: that test runs the script
# again and fails with its output, and everything else still gets tested.
bash scripts/collector/build.sh || echo "setup: building the Collector failed (tests/e2e/collector.test.ts retries it)" >&2

bash scripts/services/postgres.sh install && bash scripts/services/mariadb.sh install  # database/sql e2e (Debian packages)

# The Apache Kafka broker's jars (Maven, cached in .cache/kafka/) for tests/e2e/kafka.test.ts, which
# starts the broker itself through the same script; a failed fetch leaves that test to report it.
bash scripts/services/kafka.sh install || echo "setup: fetching the Kafka broker's jars failed (tests/e2e/kafka.test.ts retries it)" >&2

echo "setup: building dist/beetrace"
node_modules/.bin/bun build.ts
