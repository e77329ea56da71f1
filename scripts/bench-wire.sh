#!/usr/bin/env bash
# scripts/bench-wire.sh - wasmcached against memcached on the loads memaslap
# (scripts/bench.sh) cannot make: deep pipelines and TLS. The load comes from
# the project's own generator, loadgen/ (wasmcached-loadgen).
#
# Usage:
#   scripts/bench-wire.sh WORKLOAD
#
# Workloads (32 B keys, KEYS of them set before each timed run):
#   pipelined    50 conns x 16 requests in flight, gets of 100 B values, all
#                hits (the server reads and answers batches)
#   tls-getset   50 conns, 1 in flight, 90 % get / 10 % set, 100 B, TLS
#   tls-large    same with 16 KiB values, TLS
#   plain-large  same as tls-large without TLS: tls-large / plain-large is
#                what TLS costs on large values
#   getset       50 conns, 1 in flight, 90/10, 100 B, plain (with
#                SYSCALLS=1: syscalls per request)
#   all          all of the above, then a summary
#
# Both servers get the same flags:
#   -p PORT -l 127.0.0.1 -t $THREADS -m 1024 -c 1024 -U 0
#   [TLS: -Z -o ssl_chain_cert=CERT,ssl_key=KEY]
# (plus '-u root' for memcached when run as root, plus TARGET_FLAGS for
# wasmcached only, e.g. TARGET_FLAGS='-o io=poll'). The certificate is a
# throwaway self-signed one for "localhost" made with openssl in a temporary
# directory; the load generator verifies the server against it.
# Rounds are interleaved (memcached first in odd rounds, wasmcached first in
# even ones), each on a freshly started pair of servers; the verdict uses
# medians. Server on cpu 0, load generator on cpu 1 (PIN=1).
#
# Per run: ops/s and latencies from the load generator (log2 histogram cut
# in 8: read them as +-6 %), the server's CPU time per op (utime+stime of
# /proc/PID/stat over the timed run, after the preload), and with SYSCALLS=1
# the server's syscalls per request over the timed run (perf stat -e
# raw_syscalls:sys_enter, else strace -c -f; both slow the server down a
# little, strace a lot, so ops/s of a SYSCALLS=1 run are not comparable).
#
# Environment:
#   TARGET_SERVER   server command (default: target/release/wasmcached)
#   MEMCACHED_BIN   reference server (default /usr/bin/memcached)
#   LOADGEN         load generator (default target/release/wasmcached-loadgen)
#   ROUNDS          rounds per server (default 3)
#   SECS            seconds per timed run (default 5)
#   THREADS         -t for both servers (default 1)
#   CONNS, DEPTH    override the workload's connections / requests in flight
#   KEYS            keys preloaded (default 10000)
#   LG_THREADS      load generator threads (default 1)
#   PIN             1 (default): server on cpu 0, load generator on cpu 1
#   BOOST           autogroup nice of the benchmark's own session (default
#                   -15, root only; 0 = off)
#   SYSCALLS        1: also measure syscalls per request
#   MEMCACHED_FLAGS / TARGET_FLAGS   extra flags for one side only
#   LOG_DIR         keep the raw outputs and server logs there
#   SKIP_BUILD      1: do not run cargo build
#
# Last lines (per workload): the medians of each server, then
#   ratio target/memcached ops/s = X.XX (...)
# Exit status: 0 if every run completed without a wrong answer; 1 if the
# target failed (did not start, died, wrong answers); 2 on setup error.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
set -u
cd "$ROOT"

WORKLOAD=${1:-}
case "$WORKLOAD" in
  pipelined|tls-getset|tls-large|plain-large|getset|all) ;;
  -h|--help|help|"") sed -n '2,/^ROOT=/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "bench-wire: unknown workload '$WORKLOAD' (pipelined|tls-getset|tls-large|plain-large|getset|all)" >&2; exit 2 ;;
esac

BOOST=${BOOST:--15}
# ------------------------------------------------------------ own session
# shellcheck source=scripts/lib/bench-common.sh
. "$ROOT/scripts/lib/bench-common.sh"
bench_own_session "$0" "$@"

die() { echo "bench-wire: $*" >&2; exit 2; }

# ------------------------------------------------------------ tools, build
# (once, also for 'all': the workloads below run with SKIP_BUILD=1)
if [ -z "${_BW_READY:-}" ]; then
  # shellcheck source=scripts/lib/install.sh
  . scripts/lib/install.sh
  need=()
  [ -x "${MEMCACHED_BIN:-/usr/bin/memcached}" ] || need+=(memcached)
  command -v openssl >/dev/null || need+=(openssl)
  command -v taskset >/dev/null || need+=(util-linux)
  if [ "${SYSCALLS:-0}" = 1 ] && ! command -v perf >/dev/null && ! command -v strace >/dev/null; then
    need+=(strace)
  fi
  install_debs bench-wire "${need[@]}" || exit 2
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p wasmcached -p wasmcached-loadgen || exit 2
  fi
  export _BW_READY=1
fi

if [ "$WORKLOAD" = all ]; then
  fail=0
  SUM=$(mktemp /tmp/bench-wire-sum.XXXXXX)
  for w in pipelined tls-getset tls-large plain-large getset; do
    echo "== $w"
    bash "$0" "$w" | tee "$SUM.$w"
    [ "${PIPESTATUS[0]}" = 0 ] || fail=1
    { echo "== $w"; grep -E '^(median|ratio) ' "$SUM.$w"; } >> "$SUM"
  done
  echo "== summary"
  cat "$SUM"
  # TLS on large values against plaintext, per server
  awk '/^== / { w = $2 } /^median / { v[w, $2] = substr($3, 7) }
       END { for (s = 1; s <= 2; s++) { n = (s == 1) ? "memcached" : "target"; p = v["plain-large", n]
               printf "tls-large/plain-large ops/s %-9s = %.2f\n", n, (p > 0 ? v["tls-large", n] / p : 0) } }' "$SUM"
  rm -f "$SUM" "$SUM".*
  exit "$fail"
fi

# ------------------------------------------------------------ one workload
TLS=0; DEF_DEPTH=1; MIX=getset; VSIZE=100
case "$WORKLOAD" in
  pipelined)   DEF_DEPTH=16; MIX=get ;;
  tls-getset)  TLS=1 ;;
  tls-large)   TLS=1; VSIZE=16384 ;;
  plain-large) VSIZE=16384 ;;
  getset)      ;;
esac
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
THREADS=${THREADS:-1}
CONNS=${CONNS:-50}
DEPTH=${DEPTH:-$DEF_DEPTH}
KEYS=${KEYS:-10000}
LG_THREADS=${LG_THREADS:-1}
PIN=${PIN:-1}
SYSCALLS=${SYSCALLS:-0}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
MEMCACHED_FLAGS=${MEMCACHED_FLAGS:-}
TARGET_FLAGS=${TARGET_FLAGS:-}
TARGET_SERVER=${TARGET_SERVER:-$ROOT/target/release/wasmcached}
LOADGEN=${LOADGEN:-$ROOT/target/release/wasmcached-loadgen}
LOG_DIR=${LOG_DIR:-}

[ -x "$MEMCACHED_BIN" ] || die "no $MEMCACHED_BIN (apt-get install -y memcached)"
[ -x "$LOADGEN" ] || die "no $LOADGEN (cargo build --release -p wasmcached-loadgen)"
read -r -a TARGET_CMD <<< "$TARGET_SERVER"
[ -x "${TARGET_CMD[0]}" ] || command -v "${TARGET_CMD[0]}" >/dev/null \
  || die "TARGET_SERVER '${TARGET_CMD[0]}' is not executable"
TRACER=none
if [ "$SYSCALLS" = 1 ]; then
  if command -v perf >/dev/null; then TRACER=perf
  elif command -v strace >/dev/null; then TRACER=strace
  else die "SYSCALLS=1 needs perf or strace"; fi
fi

bench_pins
bench_workdir bench-wire

COMMON=(-t "$THREADS" -m 1024 -c 1024 -U 0)
LG_TLS=()
if [ "$TLS" = 1 ]; then
  # basicConstraints CA:FALSE: openssl's default for -x509 is CA:TRUE, and
  # rustls (webpki) refuses a CA certificate as the server's own
  # (CaUsedAsEndEntity); the same file still serves as the trust anchor.
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" > "$WORK/openssl.log" 2>&1 \
    || { cat "$WORK/openssl.log" >&2; die "openssl could not make a certificate"; }
  COMMON+=(-Z -o "ssl_chain_cert=$WORK/cert.pem,ssl_key=$WORK/key.pem")
  LG_TLS=(--tls --ca "$WORK/cert.pem")
fi
LG_ARGS=(--conns "$CONNS" --depth "$DEPTH" --secs "$SECS" --threads "$LG_THREADS"
         --workload "$MIX" --value-size "$VSIZE" --keys "$KEYS" "${LG_TLS[@]}")

# ------------------------------------------------------------ helpers
# (free_port, stop_server, cpu_ticks, median: scripts/lib/bench-common.sh)

# start_server NAME PORT -> sets SRV_PID. A plain server must answer
# 'version'; a TLS one only listen (the load generator verifies it).
start_server() {
  local ready=version
  [ "$TLS" = 1 ] && ready=listen
  bench_start_server "$1" "$2" "$ready" "${COMMON[@]}"
}


# run_load NAME PORT PID OUT -> prints "ops_per_s p50 p99 p999 cpu_us_per_op
# syscalls_per_op status". The server's CPU time (and syscalls) are counted
# from the load generator's "running" line (preload done) to its exit.
run_load() {
  local name=$1 port=$2 pid=$3 out=$4 hz t0 t1 lg rc tr=
  hz=$(getconf CLK_TCK)
  "${NICE_CMD[@]}" "${CLI_PIN[@]}" timeout -k 2 $((SECS + 120)) "$LOADGEN" \
    --addr "127.0.0.1:$port" "${LG_ARGS[@]}" > "$out" 2> "$out.err" &
  lg=$!
  while kill -0 "$lg" 2>/dev/null && ! grep -q '; running$' "$out.err"; do sleep 0.02; done
  t0=$(cpu_ticks "$pid")
  case "$TRACER" in
    perf)   perf stat -e raw_syscalls:sys_enter -x, -p "$pid" -o "$out.sys" > /dev/null 2>&1 & tr=$! ;;
    strace) strace -c -f -p "$pid" -o "$out.sys" > /dev/null 2>&1 & tr=$! ;;
  esac
  wait "$lg"; rc=$?
  t1=$(cpu_ticks "$pid")
  if [ -n "$tr" ]; then kill -INT "$tr" 2>/dev/null; wait "$tr"; fi
  kill -0 "$pid" 2>/dev/null || { echo "0 0 0 0 0 0 died"; return; }
  awk -v rc="$rc" -v dt="$((t1 - t0))" -v hz="$hz" -v tracer="$TRACER" -v sys="$out.sys" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END {
      if (v["ops_per_sec"] == "") { printf "0 0 0 0 0 0 rc=%s\n", rc; exit }
      st = (rc == 0) ? "ok" : (v["errors"] > 0 ? "errors=" v["errors"] : "rc=" rc)
      ops = v["ops"]; sc = "-"
      if (tracer == "perf") { while ((getline l < sys) > 0) if (l ~ /raw_syscalls:sys_enter/) { split(l, f, ","); n = f[1] } }
      if (tracer == "strace") { while ((getline l < sys) > 0) if (l ~ / total$/) { split(l, f, " "); n = f[4] } }
      if (tracer != "none") sc = (n ~ /^[0-9]+$/ && ops > 0) ? sprintf("%.2f", n / ops) : "n/a"
      printf "%d %s %s %s %.2f %s %s\n", v["ops_per_sec"], v["p50_us"], v["p99_us"], v["p999_us"],
        (ops > 0 ? dt / hz * 1e6 / ops : 0), sc, st
    }' "$out"
}


# ------------------------------------------------------------ rounds
echo "workload $WORKLOAD: loadgen ${LG_ARGS[*]/#$WORK\//}; ${ROUNDS} rounds x ${SECS}s per server, fresh servers each round;" \
     "flags -p PORT -l 127.0.0.1 ${COMMON[*]/#ssl_chain_cert=*/ssl_chain_cert=CERT,ssl_key=KEY};" \
     "server pin '${SRV_PIN[*]:-none}', client pin '${CLI_PIN[*]:-none}', boost $BOOST, syscalls $TRACER"

: > "$WORK/res"
TG_FAIL=
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="memcached target"; else order="target memcached"; fi
  MC_PORT=$(free_port) || die "no free port"
  TG_PORT=$(free_port) || die "no free port"
  TG_PID=
  for name in $order; do
    if [ "$name" = memcached ]; then
      start_server memcached "$MC_PORT" || die "memcached did not start"; MC_PID=$SRV_PID
    elif start_server target "$TG_PORT"; then TG_PID=$SRV_PID
    else TG_FAIL="target did not start in round $r"; fi
  done
  if [ -n "$TG_FAIL" ]; then stop_server "$MC_PID"; break; fi
  for name in $order; do
    if [ "$name" = memcached ]; then port=$MC_PORT; pid=$MC_PID; else port=$TG_PORT; pid=$TG_PID; fi
    read -r ops p50 p99 p999 cpu sc st < <(run_load "$name" "$port" "$pid" "$WORK/r$r.$name.out")
    printf 'round %d %-9s ops/s=%-8s p50=%sus p99=%sus p999=%sus server_cpu=%sus/op%s%s\n' \
      "$r" "$name" "$ops" "$p50" "$p99" "$p999" "$cpu" "$( [ "$TRACER" = none ] || echo " syscalls/op=$sc")" \
      "$( [ "$st" = ok ] || echo " FAILED($st)")"
    echo "$r $name $ops $p50 $p99 $p999 $cpu $sc $st" >> "$WORK/res"
    if [ "$st" != ok ] && [ "$name" = memcached ]; then
      cat "$WORK/r$r.$name.out.err" >&2; die "memcached run failed ($st)"
    fi
    if [ "$st" != ok ]; then
      sed 's/^/target loadgen: /' "$WORK/r$r.$name.out.err" | tail -5
      TG_FAIL="target run failed in round $r: $st"; break
    fi
  done
  stop_server "$MC_PID"; stop_server "$TG_PID"
  [ -n "$TG_FAIL" ] && break
done
if [ -n "$TG_FAIL" ]; then
  tail -5 "$WORK/target.log" 2>/dev/null | sed 's/^/target log: /'
  echo "ratio target/memcached ops/s = 0.00 ($WORKLOAD: $TG_FAIL)"
  exit 1
fi

col() { awk -v n="$1" -v c="$2" '$2 == n && $c != "-" && $c != "n/a" { print $c }' "$WORK/res" | median; }
for name in memcached target; do
  printf 'median  %-9s ops/s=%.0f p50=%.1fus p99=%.1fus p999=%.1fus server_cpu=%.2fus/op%s\n' "$name" \
    "$(col $name 3)" "$(col $name 4)" "$(col $name 5)" "$(col $name 6)" "$(col $name 7)" \
    "$( [ "$TRACER" = none ] || printf ' syscalls/op=%.2f' "$(col $name 8)")"
done
RATIOS=$(awk '{ v[$1, $2] = $3 } END { for (r = 1; r <= '"$ROUNDS"'; r++) { m = v[r, "memcached"]; t = v[r, "target"]; printf "%.3f\n", (m > 0 ? t / m : 0) } }' "$WORK/res")
echo "per-round ratios: $(echo $RATIOS);" \
     "cpu/op target/memcached: $(awk -v t="$(col target 7)" -v m="$(col memcached 7)" 'BEGIN { printf "%.2f", (m > 0 ? t / m : 0) }')"
printf 'ratio target/memcached ops/s = %.2f (%s; p99 target %.0fus vs memcached %.0fus)\n' \
  "$(echo "$RATIOS" | median)" "$WORKLOAD" "$(col target 5)" "$(col memcached 5)"
