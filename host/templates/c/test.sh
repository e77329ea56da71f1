#!/usr/bin/env bash
# Builds {{name}}'s native tests (test_native.c) with this machine's C
# compiler ($CC, default cc: gcc or clang, not wasm) and runs them: store.c,
# the C SDK (wasmcached.c) and its test harness (harness/wmc_harness.c and
# harness/wmc_host.c) compiled together into ./test_native. Extra arguments
# go to the compiler; WMC_H_ONLY=name runs only the tests whose names
# contain name. The last line is "N passed, M failed"; the exit status is 0
# only if none failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null; then
    echo "test.sh: $cc not found: install a C compiler (gcc or clang), e.g. on Debian or Ubuntu: sudo apt-get install -y gcc" >&2
    exit 1
fi

"$cc" -std=c11 -O1 -g -Wall -Wextra -Werror "$@" -I . -I harness -o test_native \
    test_native.c store.c wasmcached.c harness/wmc_harness.c harness/wmc_host.c
exec ./test_native
