#!/usr/bin/env bash
# Builds every example plugin in examples/ (each with its own build.sh, which
# installs the tools it needs when they are missing) and prints where each
# .wasm is. Exits non-zero when any example fails to build.
#
#   scripts/build-examples.sh            # all examples
#   scripts/build-examples.sh c-quota    # only these
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for d in "$root"/examples/*/; do
        [ -x "$d/build.sh" ] && names+=("$(basename "$d")")
    done
fi

failed=()
built=()
for name in "${names[@]}"; do
    script="$root/examples/$name/build.sh"
    if [ ! -x "$script" ]; then
        echo "build-examples: no executable $script" >&2
        failed+=("$name")
        continue
    fi
    echo "==> $name" >&2
    if wasm="$("$script" | tail -n 1)" && [ -f "$wasm" ]; then
        built+=("$name: $wasm")
    else
        echo "build-examples: $name FAILED" >&2
        failed+=("$name")
    fi
done

for line in "${built[@]}"; do echo "$line"; done
if [ ${#failed[@]} -gt 0 ]; then
    echo "build-examples: failed: ${failed[*]}" >&2
    exit 1
fi
