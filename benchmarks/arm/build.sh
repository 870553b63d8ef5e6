#!/usr/bin/env bash
# Cross-compiles the hbn core for aarch64 and links benchmarks/arm/arm_bench.cc against it as a
# static, non-PIE binary (fixed addresses, so qemu's per-block counts map to symbols).
#   benchmarks/arm/build.sh [BUILD_DIR]      (default build/arm-bench; prints the binary's path)
# Needs g++-aarch64-linux-gnu (Debian). Extra compiler flags for the core: $HBN_ARM_CXXFLAGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${1:-build/arm-bench}

for tool in aarch64-linux-gnu-g++ cmake; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 1; }
done

# The toolchain file shared with .ci/neon.sh and .ci/embed.sh.
toolchain=$PWD/cmake/aarch64-toolchain.cmake

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DHBN_BUILD_TESTS=OFF -DHBN_BUILD_PYTHON=OFF \
  -DCMAKE_CXX_FLAGS="${HBN_ARM_CXXFLAGS:-}" >/dev/null
cmake --build "$build_dir" --target hbn_core -j 2 >/dev/null
aarch64-linux-gnu-g++ -std=c++17 -O2 -static -no-pie -DHBN_ARM64=1 -Icsrc \
  benchmarks/arm/arm_bench.cc "$build_dir/libhbn_core.a" -lpthread -o "$build_dir/arm_bench"
echo "$build_dir/arm_bench"
