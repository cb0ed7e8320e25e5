#!/usr/bin/env bash
# Builds libbpf-bundle.so: libbpf + libelf + zlib linked into ONE shared object that needs only
# glibc (libc.so.6 and ld-linux) with symbol versions no newer than GLIBC_2.17, the same floor
# as the Bun runtime. beetrace embeds it and dlopens it, so the target machine needs nothing
# installed. Run by build.ts, which decides whether the cached bundle is stale; run it by hand
# only to debug the recipe.
#
# usage: build-libbpf.sh SRC_DIR WORK_DIR OUT_DIR
#   SRC_DIR   Debian source packages (libbpf_*.dsc, elfutils_*.dsc and their tarballs), as
#             downloaded by `apt-get source --download-only libbpf elfutils`
#   WORK_DIR  scratch directory, emptied first
#   OUT_DIR   receives libbpf-bundle.so and include/bpf/*.h (the headers BPF programs use)
# env: JOBS (make -j, default 2)
#
# Why each step (measured in the Bun/libbpf feasibility spike):
# - Debian's libelf.a uses local-exec TLS (R_X86_64_TPOFF32) and cannot go into a shared
#   object, so elfutils' libelf is rebuilt with -fPIC; libbpf is rebuilt the same way so the
#   whole recipe is uniform. Debian's libz.a links fine as it is.
# - bpf/compat/glibc-compat.c pins fstat, fcntl64 and fmemopen to their GLIBC_2.2.5 versions
#   (see the comment there); objcopy --redefine-sym points the archives at the shim.
# - --exclude-libs hides libelf's and zlib's symbols only. Excluding ALL would hide libbpf's
#   own exports too, and --gc-sections would then leave an empty library.
# - libbpf.map (libbpf's own version script) gives the exports their LIBBPF_x.y versions.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 SRC_DIR WORK_DIR OUT_DIR" >&2
  exit 2
fi
SRC=$(realpath "$1")
W=$(realpath -m "$2")
OUT=$(realpath -m "$3")
JOBS=${JOBS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
COMPAT="$HERE/../bpf/compat/glibc-compat.c"

for tool in gcc make objcopy strip dpkg-source m4; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build-libbpf: '$tool' is missing; run scripts/setup.sh (Debian: apt-get install dpkg-dev gcc make binutils m4)" >&2
    exit 1
  }
done
LIBZ=$(gcc -print-file-name=libz.a)
[ -f "$LIBZ" ] || { echo "build-libbpf: libz.a not found; apt-get install zlib1g-dev" >&2; exit 1; }

one_dsc() {
  local found=("$SRC"/"$1"_*.dsc)
  if [ ${#found[@]} -ne 1 ] || [ ! -f "${found[0]}" ]; then
    echo "build-libbpf: expected exactly one $1_*.dsc in $SRC, found ${#found[@]}" >&2
    exit 1
  fi
  echo "${found[0]}"
}
LIBBPF_DSC=$(one_dsc libbpf)
ELFUTILS_DSC=$(one_dsc elfutils)

rm -rf "$W"
mkdir -p "$W" "$OUT"
cd "$W"
# dpkg-source unpacks the upstream tarball and applies Debian's patches (security fixes land
# there). apt-get already verified the files against the signed Sources index.
dpkg-source --no-check -x "$LIBBPF_DSC" libbpf >/dev/null
dpkg-source --no-check -x "$ELFUTILS_DSC" elfutils >/dev/null

# -ffile-prefix-map keeps build paths out of assert() strings: reproducible, no local paths.
CFLAGS_PIC="-O2 -fPIC -g0 -ffile-prefix-map=$W=."

echo "build-libbpf: elfutils (libelf)"
(
  cd elfutils
  CFLAGS="$CFLAGS_PIC" ./configure --quiet --disable-debuginfod --disable-libdebuginfod \
    --without-bzlib --without-lzma --without-zstd --disable-nls >configure.log 2>&1 \
    || { tail -n 30 configure.log >&2; exit 1; }
  make -s -j"$JOBS" -C lib >/dev/null
  make -s -j"$JOBS" -C libelf libelf_pic.a >/dev/null
)

echo "build-libbpf: libbpf"
make -s -j"$JOBS" -C libbpf/src BUILD_STATIC_ONLY=1 OBJDIR="$W/bpfobj" \
  CFLAGS="$CFLAGS_PIC" EXTRA_CFLAGS="-I$W/elfutils/libelf" "$W/bpfobj/libbpf.a" >/dev/null
make -s -C libbpf/src install_headers DESTDIR="$W/headers" PREFIX=/ INCLUDEDIR=/include >/dev/null

echo "build-libbpf: link"
gcc -O2 -fPIC -Wall -Wextra -Werror -c "$COMPAT" -o compat.o
objcopy --redefine-sym fcntl64=compat_fcntl64 --redefine-sym fmemopen=compat_fmemopen \
  bpfobj/libbpf.a libbpf-compat.a
objcopy --redefine-sym fstat=compat_fstat elfutils/libelf/libelf_pic.a libelf-compat.a
gcc -shared -o libbpf-bundle.so \
  -Wl,--whole-archive libbpf-compat.a -Wl,--no-whole-archive libelf-compat.a "$LIBZ" compat.o \
  -Wl,--version-script=libbpf/src/libbpf.map \
  -Wl,--exclude-libs,libelf-compat.a:libz.a \
  -static-libgcc -Wl,-z,relro,-z,now -Wl,--gc-sections -Wl,-soname,libbpf-bundle.so \
  -Wl,--build-id=sha1
strip --strip-unneeded libbpf-bundle.so

rm -rf "$OUT/include"
mkdir -p "$OUT/include"
cp -r "$W/headers/include/bpf" "$OUT/include/bpf"
cp libbpf-bundle.so "$OUT/libbpf-bundle.so.tmp"
mv "$OUT/libbpf-bundle.so.tmp" "$OUT/libbpf-bundle.so"
echo "build-libbpf: wrote $OUT/libbpf-bundle.so ($(stat -c %s "$OUT/libbpf-bundle.so") bytes)"
