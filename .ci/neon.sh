#!/usr/bin/env bash
# Cross-compiles the core and the C++ tests for aarch64 and runs them under qemu user-mode
# emulation, so the NEON kernels are checked against the scalar references on an x86 host.
#   .ci/neon.sh [extra ctest args, e.g. -R test_bconv]
# Needs the Debian packages g++-aarch64-linux-gnu and qemu-user (installed when missing).
# Build tree: $HBN_NEON_BUILD_DIR (default build/neon); emulated CPUs: $HBN_NEON_QEMU_CPUS
# (default "max cortex-a53", one ctest pass each). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "neon.sh: installing the aarch64 cross compiler and qemu-user" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends g++-aarch64-linux-gnu qemu-user
fi

build_dir=${HBN_NEON_BUILD_DIR:-build/neon}
toolchain=$PWD/cmake/aarch64-toolchain.cmake  # shared with .ci/embed.sh

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DHBN_BUILD_TESTS=ON -DHBN_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build_dir" -j "${HBN_NEON_JOBS:-2}"
# The tests iterate over every supported path. qemu-aarch64 picks the emulated CPU from
# QEMU_CPU: `max` has ARMv8.2 dotprod (paths scalar, neon, dotprod), `cortex-a53` has not
# (scalar, neon: the detection must leave dotprod out and every family keep its neon row).
for cpu in ${HBN_NEON_QEMU_CPUS:-max cortex-a53}; do
  echo "neon.sh: ctest under qemu-aarch64 -cpu $cpu" >&2
  QEMU_CPU=$cpu ctest --test-dir "$build_dir" --output-on-failure "$@"
done
