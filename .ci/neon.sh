#!/usr/bin/env bash
# Cross-compiles the core and the C++ tests for aarch64 and runs them under qemu user-mode
# emulation, so the NEON kernels are checked against the scalar references on an x86 host.
#   .ci/neon.sh [extra ctest args, e.g. -R test_bconv]
# Needs the Debian packages g++-aarch64-linux-gnu and qemu-user (installed when missing).
# Build tree: $HBN_NEON_BUILD_DIR (default build/neon). Exits non-zero on any failure.
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
# The toolchain file lives in the build tree: CMake re-reads it whenever the tree reconfigures.
mkdir -p "$build_dir"
toolchain=$(cd "$build_dir" && pwd)/aarch64-toolchain.cmake
cat >"$toolchain" <<'TOOLCHAIN'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# ctest runs every test binary through qemu with the target's sysroot.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
TOOLCHAIN

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DHBN_BUILD_TESTS=ON -DHBN_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build_dir"
# The tests iterate over every supported path; under qemu that is scalar and neon.
ctest --test-dir "$build_dir" --output-on-failure "$@"
