#!/usr/bin/env bash
# Builds {{name}}.wasm, a component of the wasmcached:store world
# (wit/store.wit), from store.py with componentize-py (installed from PyPI
# into .venv on the first build). The last line printed is its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v python3 >/dev/null; then
    echo "build.sh: python3 not found: install Python 3.10 or newer with venv, e.g. on Debian or Ubuntu: sudo apt-get install -y python3 python3-venv" >&2
    exit 1
fi
if [ ! -x .venv/bin/componentize-py ]; then
    python3 -m venv .venv >&2
    .venv/bin/pip install --quiet --disable-pip-version-check "componentize-py==0.25.1" >&2
fi

.venv/bin/componentize-py -d wit/store.wit -w store componentize store \
    -o {{name}}.wasm >&2
echo "$PWD/{{name}}.wasm"
