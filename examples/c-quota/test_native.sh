#!/usr/bin/env bash
# Builds c-quota's native tests (test_native.c, through the C SDK's harness
# guest-sdk/c/harness/wmc_harness.h) for this machine and runs them. Needs a C
# compiler: $CC, default cc (gcc or clang). Extra arguments go to the
# compiler (tests/sdk_harness.rs adds -DBREAK_EXPECTATION); $TEST_BIN is
# where the binary goes (default target/examples/c-quota-test-native).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${TEST_BIN:-$root/target/examples/c-quota-test-native}"
mkdir -p "$(dirname "$bin")"
sdk="$root/guest-sdk/c"
"${CC:-cc}" -std=c11 -O1 -g -Wall -Wextra -Werror "$@" -I "$sdk" -I "$sdk/harness" -o "$bin" \
    "$here/test_native.c" "$here/c_quota.c" "$sdk/wasmcached.c" "$sdk/harness/wmc_harness.c" \
    "$sdk/harness/wmc_host.c"
exec "$bin"
