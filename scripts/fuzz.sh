#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] - fuzz every parser that reads network or plugin
# bytes (fuzz/fuzz_targets/*.rs, see docs/fuzzing.md) for SECONDS each
# (default 10).
#
# Installs cargo-fuzz if missing (`cargo install cargo-fuzz --locked`, into
# ~/.cargo/bin), builds every target once with stable Rust
# (RUSTC_BOOTSTRAP=1, which cargo-fuzz's `-Z` flags need) into
# target/fuzz, then runs each one seeded from its committed corpus
# fuzz/corpus/<target>/ (never written to: new inputs go to
# target/fuzz/corpus/<target>/). Prints the executions per target and exits
# nonzero when any target crashed (the input is saved under
# target/fuzz/artifacts/<target>/; replay it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer none
#  --target-dir target/fuzz <target> <file>`).
#
# Knobs: FUZZ_SANITIZER (default none; `address` for ASAN, slower),
# FUZZ_TARGETS (space-separated subset, default all), FUZZ_JOBS (targets
# fuzzed at once, default 2: one per core here; each run is one process).
set -uo pipefail

duration=${1:-10}
case $duration in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
tdir="$root/target/fuzz"
[ "$sanitizer" = none ] || tdir="$root/target/fuzz/$sanitizer"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz.sh: installing cargo-fuzz"
	cargo install cargo-fuzz --locked || exit 1
fi

opts=(--fuzz-dir fuzz --sanitizer "$sanitizer" --target-dir "$tdir")
echo "fuzz.sh: building the fuzz targets (sanitizer $sanitizer)"
cargo fuzz build "${opts[@]}" || exit 1

targets=${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}
jobs=${FUZZ_JOBS:-2}
# One target's run; its report line goes to $tdir/logs/<target>.result.
fuzz_one() {
	local t=$1 work="$tdir/corpus/$1" art="$tdir/artifacts/$1" log="$tdir/logs/$1.log"
	local rc execs
	mkdir -p "$work" "$art" "$(dirname "$log")"
	cargo fuzz run "${opts[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
		-max_total_time="$duration" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$art/" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	if [ $rc -eq 0 ]; then
		printf '%-14s %4ss %12s execs  ok\n' "$t" "$duration" "${execs:-?}"
	else
		printf '%-14s %4ss %12s execs  CRASH (exit %d)\n' "$t" "$duration" "${execs:-?}" "$rc"
		grep -E 'panicked at|assertion|Test unit written|SUMMARY' "$log" | head -n 8 | sed 's/^/    /'
		echo "    full log: $log"
	fi >"$tdir/logs/$t.result"
	return $rc
}
# `cargo fuzz run` builds first (a no-op after the build above): one build
# at a time is cargo's rule, the runs then overlap.
running=0
for t in $targets; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	fuzz_one "$t" &
	running=$((running + 1))
done
wait
failed=()
for t in $targets; do
	cat "$tdir/logs/$t.result"
	grep -q ' ok$' "$tdir/logs/$t.result" || failed+=("$t")
done

# cargo fuzz run makes empty fuzz/artifacts/<target> dirs even when told to write elsewhere.
rmdir fuzz/artifacts/* fuzz/artifacts 2>/dev/null
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz.sh: crashes in: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz.sh: no crashes"
