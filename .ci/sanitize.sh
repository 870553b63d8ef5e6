#!/usr/bin/env bash
# Sanitizer builds of the C++ tests (clang):
#   1. AddressSanitizer + UndefinedBehaviorSanitizer: every C++ unit test, which each iterate
#      over every kernel path this machine supports, plus fuzz_replay (the fuzz seed corpus and
#      crash regressions through loader, graph and executor). Leaks count as failures.
#   2. ThreadSanitizer: the thread pool and executor concurrency tests (test_threadpool,
#      test_stress), and the runtime and kernel tests, which run on 2-thread pools.
#   .ci/sanitize.sh [asan|tsan]     (default: both)
# Build trees: build/asan, build/tsan. Exits non-zero on any test failure or sanitizer report.
# Needs clang and its sanitizer runtimes (Debian: clang, libclang-rt-<version>-dev; installed
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}

have_sanitizers() {
  command -v clang++ >/dev/null || return 1
  local probe ok=0
  probe=$(mktemp -d)
  printf 'int main() { return 0; }\n' >"$probe/p.cc"
  clang++ -fsanitize=address,undefined "$probe/p.cc" -o "$probe/a" 2>/dev/null &&
    clang++ -fsanitize=thread "$probe/p.cc" -o "$probe/t" 2>/dev/null || ok=1
  rm -rf "$probe"
  return $ok
}

if ! have_sanitizers; then
  echo "sanitize.sh: installing clang and its sanitizer runtimes" >&2
  bash .ci/install-clang.sh  # (cwd is the repo root)
  have_sanitizers || { echo "sanitize.sh: clang cannot link -fsanitize=address/thread" >&2; exit 1; }
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
jobs=${HBN_BUILD_JOBS:-2}
configure() {  # build_dir sanitizer
  cmake -S . -B "$1" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DHBN_SANITIZE="$2" -DHBN_BUILD_TESTS=ON -DHBN_BUILD_PYTHON=OFF >/dev/null
}

if [ "$which" = all ] || [ "$which" = asan ]; then
  echo "== C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  configure build/asan address
  cmake --build build/asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  echo "== thread pool, executor stress, runtime and kernel tests under ThreadSanitizer"
  configure build/tsan thread
  tsan_tests=(test_threadpool test_stress test_runtime test_bconv test_conv_f32 test_wbconv)
  cmake --build build/tsan -j "$jobs" --target "${tsan_tests[@]}"
  TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir build/tsan --output-on-failure -R "^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
fi
