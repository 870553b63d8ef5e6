#!/usr/bin/env bash
# The embedding path end to end, natively and cross-compiled for aarch64 (run under qemu):
# builds and installs the C library (shared + static), the headers, hbn_benchmark_model and the
# CMake package into a prefix; builds the consumer project and the C example against that
# prefix; runs them on the committed test model (csrc/tests/data/tiny.hbn); checks that only the
# C API is exported and that the aarch64 tool's output equals the x86 one within tolerance.
#   .ci/embed.sh            (build trees and prefixes under $HBN_EMBED_BUILD_DIR, default build/embed)
# Needs g++-aarch64-linux-gnu and qemu-user (installed when missing, like neon.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "embed.sh: installing the aarch64 cross compiler and qemu-user" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends g++-aarch64-linux-gnu qemu-user
fi

work=${HBN_EMBED_BUILD_DIR:-build/embed}
mkdir -p "$work"
work=$(cd "$work" && pwd)
jobs=${HBN_EMBED_JOBS:-$(nproc)}
data=$root/csrc/tests/data
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# build_and_install ARCH [cmake args...]: library into $work/ARCH/prefix, consumer against it.
build_and_install() {
  local arch=$1
  shift
  local prefix=$work/$arch/prefix
  echo "== [$arch] build + install the library into $prefix"
  rm -rf "$prefix"
  cmake -S . -B "$work/$arch/lib" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DHBN_BUILD_PYTHON=OFF \
    -DHBN_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" "$@" >/dev/null
  cmake --build "$work/$arch/lib" -j "$jobs"
  cmake --install "$work/$arch/lib" >/dev/null
  echo "== [$arch] build the consumer project and the C example against the installed package"
  rm -rf "$work/$arch/consumer"
  cmake -S csrc/examples/consumer -B "$work/$arch/consumer" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "$@" >/dev/null
  cmake --build "$work/$arch/consumer" -j "$jobs"
}

# check_exports LIB NM: the shared library exports hbn_* functions and nothing else.
check_exports() {
  local extra
  extra=$("$2" -D --defined-only "$1" | awk '$3 !~ /^hbn_/ {print $3}')
  if [ -n "$extra" ]; then
    echo "embed.sh: $1 exports more than the C API:" >&2
    echo "$extra" >&2
    exit 1
  fi
  echo "$1 exports $("$2" -D --defined-only "$1" | grep -c ' hbn_') hbn_* symbols and nothing else"
}

# run_all ARCH RUNNER...: the four programs and the tool on the test model.
run_all() {
  local arch=$1
  shift
  local c=$work/$arch/consumer
  local prefix=$work/$arch/prefix
  echo "== [$arch] run"
  for exe in consumer consumer_static; do "$@" "$c/$exe" "$data/tiny.hbn" 3; done
  for exe in classify classify_static; do "$@" "$c/$exe" "$data/tiny.hbn" "$data/tiny.ppm"; done
  "$@" "$prefix/bin/hbn_benchmark_model" --model "$data/tiny.hbn" --input "$data/tiny_input.raw" --batch 2 \
    --runs 3 --warmup 1 --profile --compare "$data/tiny_ref.raw" --output "$work/$arch/out.raw"
}

sizes() {
  local arch=$1 strip=$2
  local prefix=$work/$arch/prefix c=$work/$arch/consumer so
  so=$(readlink -f "$prefix/lib/libhbn.so")
  cp "$so" "$work/$arch/libhbn.stripped.so" && "$strip" "$work/$arch/libhbn.stripped.so"
  cp "$c/classify_static" "$work/$arch/classify_static.stripped" && "$strip" "$work/$arch/classify_static.stripped"
  cp "$c/classify" "$work/$arch/classify.stripped" && "$strip" "$work/$arch/classify.stripped"
  printf '[%s] sizes (bytes): libhbn.so %s (stripped %s), libhbn.a %s, classify static stripped %s, classify shared stripped %s\n' \
    "$arch" "$(stat -c %s "$so")" "$(stat -c %s "$work/$arch/libhbn.stripped.so")" \
    "$(stat -c %s "$prefix/lib/libhbn.a")" "$(stat -c %s "$work/$arch/classify_static.stripped")" \
    "$(stat -c %s "$work/$arch/classify.stripped")"
}

build_and_install x86_64
check_exports "$work/x86_64/prefix/lib/libhbn.so" nm
run_all x86_64 env

build_and_install aarch64 -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake"
check_exports "$work/aarch64/prefix/lib/libhbn.so" aarch64-linux-gnu-nm
run_all aarch64 qemu-aarch64 -L /usr/aarch64-linux-gnu

echo "== aarch64 output vs x86_64 output"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/aarch64/prefix/bin/hbn_benchmark_model" --model "$data/tiny.hbn" \
  --input "$data/tiny_input.raw" --batch 2 --runs 1 --warmup 0 --compare "$work/x86_64/out.raw" --tolerance 1e-5

sizes x86_64 strip
sizes aarch64 aarch64-linux-gnu-strip
echo "embed.sh: OK"
