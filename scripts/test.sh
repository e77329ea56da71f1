#!/usr/bin/env bash
# scripts/test.sh - run wasmcached's whole test suite (the README's test command).
#
# Installs what is missing first:
#   - Debian packages `memcached` (the reference server of the differential
#     and memccapable tests), `libmemcached-tools` (memccapable, and the
#     memccp/memccat/... binary-protocol clients of tests/clients.rs),
#     `nutcracker` (twemproxy, tests/scaleout.rs), `prometheus` (its server
#     and promtool, tests/metrics.rs) and, when the machine's
#     python3 cannot make a venv, `python3-venv` (`python3` too if there is
#     none), with apt-get as root or through `sudo -n` otherwise;
#     `apt-get update` runs only when the package lists do not know them (or
#     an install fails); the packaged services are kept from starting
#     (policy-rc.d);
#   - pymemcache from PyPI (tests/clients.rs), pinned, into a venv made with
#     the machine's python3 at target/clients-venv (skipped when that venv
#     already imports it);
#   - the wasm32-unknown-unknown rustup target (the default plugin is built
#     for it by the host's build script).
# Then runs the native suite, `cargo test --workspace --profile suite
# --no-fail-fast` (every test binary runs even when an earlier one fails;
# extra arguments are passed to cargo test, e.g. `./scripts/test.sh --
# --nocapture`), the Windows build's suite under Wine
# (scripts/test-windows.sh, which installs wine64 and mingw-w64) and the
# macOS/FreeBSD type-checks (scripts/check-platforms.sh), and exits nonzero
# when any of them failed.
#
# The tests talk to 127.0.0.1 only, start every server they use on a free
# port and kill it when done. Useful knobs (see tests/common/mod.rs and
# tests/differential.rs): WASMCACHED_TEST_BIN (server under test),
# MEMCACHED_BIN (reference), DIFF_SEED, DIFF_COMMANDS, DIFF_KEEP_GOING.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'test.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/install.sh
. scripts/lib/install.sh

# ---------------------------------------------------------------- Debian packages
need=()
[ -x "${MEMCACHED_BIN:-/usr/bin/memcached}" ] || need+=(memcached)
command -v memccapable >/dev/null 2>&1 && command -v memccp >/dev/null 2>&1 \
  || need+=(libmemcached-tools)
[ -x "${NUTCRACKER_BIN:-/usr/sbin/nutcracker}" ] || command -v nutcracker >/dev/null 2>&1 \
  || need+=(nutcracker)
# tests/auth.rs compares SASL PLAIN with memcached's libsasl: the PLAIN plugin
# and saslpasswd2 for its user database.
compgen -G '/usr/lib/*/sasl2/libplain.so.2' >/dev/null || need+=(libsasl2-modules)
command -v saslpasswd2 >/dev/null 2>&1 || need+=(sasl2-bin)
# tests/metrics.rs scrapes /metrics with Debian's Prometheus and checks it
# with its promtool.
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } \
  || need+=(prometheus)
# tests/startup.rs reads the listen backlog (-b) of both servers with ss.
command -v ss >/dev/null 2>&1 || need+=(iproute2)

# pymemcache's venv (tests/clients.rs looks for target/clients-venv/bin/python3)
PYMEMCACHE_VERSION=4.0.0
venv=target/clients-venv
venv_ok=0
"$venv/bin/python3" -c 'import pymemcache' >/dev/null 2>&1 && venv_ok=1
if [ "$venv_ok" = 0 ]; then
  # the machine's python3 (Debian's), not a per-user one earlier in PATH
  if [ -x /usr/bin/python3 ]; then
    py=/usr/bin/python3
  elif command -v python3 >/dev/null 2>&1; then
    py=$(command -v python3)
  else
    py=/usr/bin/python3
    need+=(python3)
  fi
  # Debian's python3 makes venvs only with python3-venv (ensurepip)
  if [ ! -x "$py" ] || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=(python3-venv)
  fi
fi

install_debs test.sh "${need[@]}" || exit 1

# ---------------------------------------------------------------- pymemcache
if [ "$venv_ok" = 0 ]; then
  say "python3 -m venv $venv && pip install pymemcache==$PYMEMCACHE_VERSION ($py)"
  mkdir -p target
  "$py" -m venv --clear "$venv"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check \
    "pymemcache==$PYMEMCACHE_VERSION" </dev/null
  "$venv/bin/python3" -c 'import pymemcache' \
    || { say "pymemcache is not importable from $venv"; exit 1; }
fi

# ---------------------------------------------------------------- Rust
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { say "no cargo: install rustup's stable toolchain (Rust >= 1.95)"; exit 1; }
install_rust_targets test.sh wasm32-unknown-unknown

# ---------------------------------------------------------------- tests
# The parts, all run even when one fails:
#   linux    the native suite: cargo test --workspace --profile suite
#            (release at opt-level 1, see Cargo.toml), except the soak tests
#            (module soak:: of the e2e test binary, with its 5-minute churn),
#            which then run in the background (part soak) while the next
#            parts build
#   poll     the end-to-end suite again, every server on the polling
#            reactor (WASMCACHED_IO=poll): on Linux the servers default to
#            io_uring (-o io), and both backends must pass all of it
#   windows  the Windows build's tests under Wine (scripts/test-windows.sh)
#   check    macOS and FreeBSD type-checks (scripts/check-platforms.sh)
#   fuzz     every cargo-fuzz target for 10 s (scripts/fuzz.sh)
# WASMCACHED_TEST_PARTS (default "linux poll windows check fuzz") picks some.
#
# Each part reports how busy both cores were while it ran: the run is
# bound by CPU (compiling wasmtime for Linux and Windows, the type-checks,
# the examples' toolchains), so what shortens it is less work, not more
# overlap. (Tried: the Windows build, the type-check and the fuzz build in
# the background at nice 19, each in a target dir of its own: the cores
# were 99 % busy in every part, the foreground got slower, the duplicated
# proc-macros and build scripts added work, and the run took 40 minutes
# against 37.)
parts=${WASMCACHED_TEST_PARTS:-linux poll windows check fuzz}
# The Linux end-to-end runs take four tests at a time: they spend much of
# their time waiting on servers and clocks (measured on an idle machine:
# 168 s at two, 129 s at four, both cores 58 % against 84 % busy). Under
# Wine, where the CPU is the limit, cargo's default (one per core) stays.
e2e_threads=${RUST_TEST_THREADS:-4}
soak_filter=soak::
status=0
log=$(mktemp)
results=()
run_part() {
  local name=$1; shift
  local rc=0 start=$SECONDS cpu0
  cpu0=$(cpu_ticks)
  say "[$name] $*"
  "$@" 2>&1 | tee -a "$log" || rc=$?
  results+=("$name: $([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)") in $((SECONDS - start)) s, $(cpu_busy "$cpu0"), $(disk_use)")
  [ "$rc" = 0 ] || status=$rc
}
# How busy the machine's CPUs were since `cpu_ticks` printed $1: the share
# of all cores' time not idle (/proc/stat; "?" elsewhere). Shows whether a
# part was waiting or computing.
cpu_ticks() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat 2>/dev/null
}
cpu_busy() {
  local now; now=$(cpu_ticks)
  if [ -z "$1" ] || [ -z "$now" ]; then echo "CPU ?"; return; fi
  awk -v a="$1" -v b="$now" 'BEGIN { split(a, x, " "); split(b, y, " ");
    t = y[2] - x[2]; printf "CPU %d %% busy", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}
# After each part: the size of target/ and the space left on its disk, so a
# run that fills the disk shows which part grew it.
disk_use() {
  local used free
  used=$(du -sh target 2>/dev/null | cut -f1)
  free=$(df -h --output=avail target 2>/dev/null | tail -n1 | tr -d ' ')
  echo "target ${used:-?}, ${free:-?} free"
}
# cargo test's own arguments, then the test binaries' (after `--`), with
# the soak left out of the linux part. The soak part runs `--test e2e --
# soak::`; a test name filter given after `--` would widen that (libtest ORs
# its filters), so the soak part keeps only the filters naming soak tests
# (`soak::...`) and, when there are filters but none of those, does not run.
cargo_args=() bin_args=() seen_dashes=0
for a in "$@"; do
  if [ "$seen_dashes" = 0 ] && [ "$a" = -- ]; then seen_dashes=1; continue; fi
  if [ "$seen_dashes" = 0 ]; then cargo_args+=("$a"); else bin_args+=("$a"); fi
done
soak_args=() soak_filters=() other_filters=0 takes_value=0
for a in ${bin_args[@]+"${bin_args[@]}"}; do
  if [ "$takes_value" = 1 ]; then soak_args+=("$a"); takes_value=0; continue; fi
  case "$a" in
    --skip|--test-threads|--format|--logfile|--color|--shuffle-seed|-Z) soak_args+=("$a"); takes_value=1 ;;
    -*) soak_args+=("$a") ;;
    soak::*) soak_filters+=("$a") ;;
    *) other_filters=1 ;;
  esac
done
run_soak=1
if [ "${#soak_filters[@]}" = 0 ]; then
  if [ "$other_filters" = 1 ]; then run_soak=0; else soak_filters=("$soak_filter"); fi
fi
soak_pid=
soak_log=$(mktemp)
trap 'rm -f "$log" "$soak_log"' EXIT
for part in $parts; do
  case "$part" in
    linux)
      run_part linux env RUST_TEST_THREADS="$e2e_threads" cargo test --workspace --profile suite --no-fail-fast "${cargo_args[@]}" \
        -- --skip "$soak_filter" "${bin_args[@]}"
      # --workspace, as above: with `-p wasmcached` cargo unifies features
      # differently and compiles wasmtime a third time, beside the Windows
      # build (measured: 12 minutes of both cores).
      if [ "$run_soak" = 1 ]; then
        say "[soak] cargo test --workspace --profile suite --test e2e -- ${soak_filters[*]} (in the background)"
        soak_start=$SECONDS
        cargo test --workspace --profile suite --test e2e "${cargo_args[@]}" \
          -- "${soak_filters[@]}" "${soak_args[@]}" >"$soak_log" 2>&1 &
        soak_pid=$!
      else
        say "[soak] not run: the test filters name no soak:: test"
      fi
      ;;
    poll)
      run_part poll env WASMCACHED_IO=poll RUST_TEST_THREADS="$e2e_threads" cargo test --workspace --profile suite --no-fail-fast \
        "${cargo_args[@]}" --test e2e -- --skip "$soak_filter" "${bin_args[@]}"
      ;;
    windows) run_part windows ./scripts/test-windows.sh "$@" ;;
    check) run_part check ./scripts/check-platforms.sh ;;
    fuzz) run_part fuzz ./scripts/fuzz.sh 10 ;;
    *) say "unknown part $part (linux, poll, windows, check, fuzz)"; exit 2 ;;
  esac
done
if [ -n "$soak_pid" ]; then
  rc=0
  wait "$soak_pid" || rc=$?
  cat "$soak_log" | tee -a "$log"
  results+=("soak: $([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)") in $((SECONDS - soak_start)) s, $(disk_use)")
  [ "$rc" = 0 ] || status=$rc
fi
for r in "${results[@]}"; do say "$r"; done
# One closing line for the whole suite: cargo prints a summary per test
# binary (the last ones are empty doc-test runs), so add them up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
if [ "$status" = 0 ]; then
  say "all tests passed"
else
  say "tests FAILED (status $status)"
fi
exit "$status"
