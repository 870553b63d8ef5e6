#!/usr/bin/env bash
# Builds the libFuzzer target csrc/fuzz/fuzz_model.cc (loader + graph + executor, and one run of
# every model it accepts; clang, ASan + UBSan) and runs it from the repo's seed corpus for a
# bounded time:
#   .ci/fuzz.sh [seconds]        default 75 (CI); a longer campaign: .ci/fuzz.sh 1200
# Exits non-zero on any crash, sanitizer report, leak, timeout (one input > 10 s) or
# out-of-memory (RSS > 2 GB or one allocation > 1 GB). Inputs that found new coverage go to
# $HBN_FUZZ_WORK/corpus (default build/fuzz-work), a failing input to $HBN_FUZZ_WORK/artifacts/:
# reproduce with `build/fuzz/fuzz_model FILE`, shrink with `-minimize_crash=1 -runs=10000 FILE`,
# and commit the fixed case to csrc/fuzz/regressions/ (ctest's fuzz_replay replays it).
# Needs clang with its libFuzzer runtime (Debian: clang, libclang-rt-<version>-dev; installed
# when missing). Build tree: $HBN_FUZZ_BUILD_DIR (default build/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-75}

have_libfuzzer() {
  command -v clang++ >/dev/null || return 1
  local probe
  probe=$(mktemp -d)
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cc"
  clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" 2>/dev/null
  local ok=$?
  rm -rf "$probe"
  return $ok
}

if ! have_libfuzzer; then
  echo "fuzz.sh: installing clang and its libFuzzer runtime" >&2
  bash .ci/install-clang.sh  # (cwd is the repo root)
  have_libfuzzer || { echo "fuzz.sh: clang cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

build_dir=${HBN_FUZZ_BUILD_DIR:-build/fuzz}
work=${HBN_FUZZ_WORK:-build/fuzz-work}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DHBN_BUILD_FUZZ=ON -DHBN_BUILD_TESTS=OFF -DHBN_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build_dir" --target fuzz_model -j "${HBN_BUILD_JOBS:-2}"

mkdir -p "$work/corpus" "$work/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== fuzz_model for ${secs} s (seeds: csrc/fuzz/corpus, csrc/fuzz/regressions)"
"$build_dir/fuzz_model" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -dict=csrc/fuzz/hbn.dict -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" csrc/fuzz/corpus csrc/fuzz/regressions
