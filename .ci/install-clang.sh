#!/usr/bin/env bash
# Installs clang and its sanitizer / libFuzzer runtimes from Debian's packages (the runtime
# package is named libclang-rt-<version>-dev on newer releases, part of libclang-common-<version>-dev
# on older ones). Called by .ci/sanitize.sh and .ci/fuzz.sh when their probe link fails.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends clang
ver=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "libclang-rt-$ver-dev" ||
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "libclang-common-$ver-dev"
