#!/usr/bin/env bash
# scripts/bench.sh - wasmcached against memcached, same flags, same load, same
# run; writes target/bench/results.{json,csv} and renders docs/bench.svg.
#
# Usage:
#   scripts/bench.sh              all workloads below, then the chart
#   scripts/bench.sh WORKLOAD     one comparison (getset|mget|large|set|mem),
#                                 printed as text (the building block)
#
# The full run: getset, mget, large (THREADS=1), getset and mget with
# THREADS=2, mem, and start-up time (exec -> first 'version' answered, median
# of STARTUP_RUNS). It installs memcached + libmemcached-tools (memaslap)
# with apt-get when they are missing, builds the release binary (SKIP_BUILD=1
# to skip), and needs python3 (standard library only) for the chart.
#
# One comparison (the WORKLOAD form) -- the logic of the shared
# perf-vs-memcached.sh, kept here so that the repository stands alone:
#   getset  90% get / 10% set, 32 B keys, 100 B values, 50 connections.
#           Key space as memaslap makes it: each connection keeps a window of
#           1024 keys (51,200 live keys); sets add new keys, gets read keys
#           already set (no misses); nothing to preload.
#   mget    same, gets sent as 10-key multi-gets ("get k1 .. k10")
#   large   90/10, 32 B keys, 16 KiB values, 50 connections
#   set     100% set, 32 B keys, 100 B values, 50 connections
#   mem     RSS after storing 1,000,000 items (32 B keys, 100 B values) in a
#           fresh server; prints bytes of RSS per item
#
# Both servers are started with exactly the same flags:
#   -p PORT -l 127.0.0.1 -t $THREADS -m $MEM_MB -c 1024 -U 0
# (plus '-u root' for a memcached binary when run as root, plus
# MEMCACHED_FLAGS / TARGET_FLAGS), on free loopback ports, and pinned the same
# way (server on cpu 0, load generator on cpu 1).  Load generator: memaslap
# (Debian: memcached + libmemcached-tools, binary memcaslap).  Rounds are
# interleaved A B / B A / A B ... on freshly started pairs of servers, so
# that drift from other work on the machine hits both sides; the verdict
# uses medians.
#
# Environment:
#   TARGET_SERVER   server command (default: target/release/wasmcached)
#   MEMCACHED_BIN   reference server (default /usr/bin/memcached)
#   ROUNDS          rounds per server (default 3)
#   SECS            seconds per measured run (default 5)
#   WARM_SECS       discarded warm-up run per server and round, s (default 0)
#   CONNS           connections (default 50)
#   THREADS         -t for both servers (default 1)
#   MEM_MB          -m for both servers (default 1024)
#   MEM_ITEMS       items stored by the 'mem' workload (default 1000000)
#   PIN             1 (default): server on cpu 0, load generator on cpu 1
#   BOOST           autogroup nice of the benchmark's own session (default
#                   -15, root only; 0 = off)
#   MIN_RATIO       pass threshold of one comparison (default 1.0)
#   MEMCACHED_FLAGS / TARGET_FLAGS   extra flags for one side only
#   LOG_DIR         keep raw memaslap outputs and server logs there
#   STARTUP_RUNS    start-up samples per server (default 20)
#   SKIP_BUILD      1: do not run cargo build --release
#   BENCH_OUT       output dir of the full run (default target/bench)
#   BENCH_SVG       chart path (default docs/bench.svg)
#
# One comparison prints one line per run, medians, then as LAST line
#   ratio target/memcached ops/s = X.XX (p99 target Yus vs memcached Zus)
# or for 'mem'
#   bytes/item target X vs memcached Y
# Latencies come from memaslap's log2 histogram, interpolated inside the
# bucket: read them as +-20 %.  server_cpu is the CPU time of the server
# process per op.  Exit status: 0 if ratio >= MIN_RATIO ('mem': memcached
# bytes/item / target bytes/item >= MIN_RATIO); 1 if not or the target
# fails; 2 on setup error.
#
# Noise: on a shared 2-core VM, memcached against itself gives final ratios
# 0.96-1.14; a ratio within +-0.15 of a threshold says little.

ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -eq 0 ] || [ "$1" = all ]; then
  set -u
  cd "$ROOT"
  say() { echo "bench: $*" >&2; }
  # shellcheck source=scripts/lib/install.sh
  . scripts/lib/install.sh
  MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
  need=()
  [ -x "$MEMCACHED_BIN" ] || need+=(memcached)
  command -v memcaslap >/dev/null || command -v memaslap >/dev/null || need+=(libmemcached-tools)
  command -v python3 >/dev/null || need+=(python3)
  install_debs bench "${need[@]}" || exit 2
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release || exit 2
  fi
  export TARGET_SERVER=${TARGET_SERVER:-$ROOT/target/release/wasmcached}
  export MEMCACHED_BIN
  OUT=${BENCH_OUT:-$ROOT/target/bench}
  SVG=${BENCH_SVG:-$ROOT/docs/bench.svg}
  mkdir -p "$OUT"
  CSV="$OUT/results.csv"
  echo "workload,threads,server,ops_per_s,p50_us,p99_us,p999_us,cpu_us_per_op,ratio_ops,ratio_cpu" > "$CSV"
  # medians of one comparison log -> CSV rows
  rows() {  # rows WORKLOAD THREADS LOG
    awk -v w="$1" -v t="$2" '
      /^median / { n = $2; for (i = 3; i <= NF; i++) { split($i, kv, "="); gsub(/[a-z\/]+$/, "", kv[2]); v[n, kv[1]] = kv[2] } }
      /cpu\/op target\/memcached:/ { rc = $NF }
      /^ratio target\/memcached ops\/s =/ { r = $5 }
      END {
        if (r == "") exit 1
        for (k = 1; k <= 2; k++) { n = (k == 1) ? "memcached" : "wasmcached"; s = (k == 1) ? "memcached" : "target"
          printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", w, t, n, v[s, "ops/s"], v[s, "p50"], v[s, "p99"], v[s, "p999"], v[s, "server_cpu"], (k == 1 ? 1 : r), (k == 1 ? 1 : rc) }
      }' "$3"
  }
  fail=0
  for spec in getset:1 mget:1 large:1 getset:2 mget:2; do
    w=${spec%%:*}; t=${spec##*:}
    say "== $w THREADS=$t"
    THREADS=$t MIN_RATIO=0 bash "$0" "$w" 2>&1 | tee "$OUT/$w-t$t.log"
    rows "$w" "$t" "$OUT/$w-t$t.log" >> "$CSV" || { say "$w THREADS=$t failed"; fail=1; }
  done
  say "== mem"
  MIN_RATIO=0 bash "$0" mem 2>&1 | tee "$OUT/mem.log"
  MEM=$(awk '/^bytes\/item target/ { print $3, $6 }' "$OUT/mem.log")
  read -r mem_t mem_m <<< "${MEM:-0 0}"
  [ "$mem_t" != 0 ] && [ "$mem_t" != FAILED ] || fail=1

  say "== start-up (exec -> first 'version' answered)"
  CACHE_DIR=$(mktemp -d /tmp/wasmcached-bench-cache.XXXXXX)
  STARTUP=$(WASMCACHED_CACHE_DIR=$CACHE_DIR python3 - "${STARTUP_RUNS:-20}" "$TARGET_SERVER" "$MEMCACHED_BIN" <<'PY'
import os, random, socket, statistics, subprocess, sys, time

def once(cmd):
    port = random.randint(30000, 60000)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd + ["-p", str(port), "-l", "127.0.0.1", "-U", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if p.poll() is not None:
                return None
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"version\r\n")
                    if s.recv(64).startswith(b"VERSION"):
                        return (time.perf_counter() - t0) * 1000
            except OSError:
                time.sleep(0.0005)
    finally:
        p.terminate()
        p.wait()

def median(cmd, n):
    ts = [t for t in (once(cmd) for _ in range(n)) if t is not None]
    return statistics.median(ts) if ts else 0.0

n, target, mc = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3]
root = ["-u", "root"] if os.getuid() == 0 else []
once(target)  # fills the code cache
print("%.1f %.1f %.1f" % (median(target, n), median(target + ["-o", "plugin_cache=off"], max(3, n // 4)),
                          median([mc] + root, n)))
PY
)
  rm -rf "$CACHE_DIR"
  read -r st_cached st_nocache st_mc <<< "${STARTUP:-0 0 0}"
  say "start-up median: wasmcached ${st_cached} ms (cached code), ${st_nocache} ms (plugin_cache=off), memcached ${st_mc} ms"

  cpu=$(awk -F: '/^model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo 2>/dev/null)
  mcv=$("$MEMCACHED_BIN" -V 2>/dev/null | awk '{print $2}')
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  python3 - "$CSV" "$OUT/results.json" "$(nproc)" "${cpu:-unknown}" "$(date -u +%Y-%m-%dT%H:%MZ)" \
      "${mcv:-?}" "$rev" "$mem_t" "$mem_m" "$st_cached" "$st_nocache" "$st_mc" <<'PY'
import csv, json, sys
(csv_path, out, ncpu, cpu, date, mcv, rev, mem_t, mem_m, st_c, st_n, st_m) = sys.argv[1:]
num = lambda s: float(s) if s not in ("", "FAILED", "?") else 0.0
loads = {}
for r in csv.DictReader(open(csv_path)):
    key = "%s -t %s" % (r["workload"], r["threads"])
    loads.setdefault(key, {"workload": r["workload"], "threads": int(r["threads"])})
    loads[key][r["server"]] = {k: num(r[k]) for k in ("ops_per_s", "p50_us", "p99_us", "p999_us", "cpu_us_per_op")}
    if r["server"] == "wasmcached":
        loads[key]["ratio_ops"] = num(r["ratio_ops"])
        loads[key]["ratio_cpu"] = num(r["ratio_cpu"])
json.dump({
    "date": date, "machine": {"nproc": int(ncpu), "cpu": cpu}, "memcached_version": mcv, "git": rev,
    "load": list(loads.values()),
    "mem": {"items": 1000000, "wasmcached_bytes_per_item": num(mem_t), "memcached_bytes_per_item": num(mem_m)},
    "startup_ms": {"wasmcached_cached": num(st_c), "wasmcached_no_cache": num(st_n), "memcached": num(st_m)},
}, open(out, "w"), indent=2)
PY
  echo "mem,1,memcached,,,,,,$mem_m," >> "$CSV"
  echo "mem,1,wasmcached,,,,,,$mem_t," >> "$CSV"
  python3 "$ROOT/scripts/bench-chart.py" "$OUT/results.json" "$SVG" || exit 2
  say "wrote $CSV, $OUT/results.json and $SVG"
  exit "$fail"
fi

[ -n "${TARGET_SERVER:-}" ] || export TARGET_SERVER="$ROOT/target/release/wasmcached"

set -u

WORKLOAD=${1:-getset}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
WARM_SECS=${WARM_SECS:-0}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
MEM_MB=${MEM_MB:-1024}
MEM_ITEMS=${MEM_ITEMS:-1000000}
PIN=${PIN:-1}
BOOST=${BOOST:--15}
MIN_RATIO=${MIN_RATIO:-1.0}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
MEMCACHED_FLAGS=${MEMCACHED_FLAGS:-}
TARGET_FLAGS=${TARGET_FLAGS:-}
LOG_DIR=${LOG_DIR:-}

die() { echo "perf-vs-memcached: $*" >&2; exit 2; }

case "$WORKLOAD" in
  getset|mget|large|set|mem) ;;
  -h|--help|help) sed -n '2,/^ROOT=/p' "$0" | sed '$d'; exit 0 ;;
  *) die "unknown workload '$WORKLOAD' (getset|mget|large|set|mem)" ;;
esac
[ -n "${TARGET_SERVER:-}" ] || die "TARGET_SERVER is not set"

# ------------------------------------------------------------ own session
# shellcheck source=scripts/lib/bench-common.sh
. "$ROOT/scripts/lib/bench-common.sh"
bench_own_session "$0" "$@"

# ------------------------------------------------------------ tools
MEMASLAP=$(command -v memcaslap || command -v memaslap || true)
[ -x "$MEMCACHED_BIN" ] || die "no $MEMCACHED_BIN (apt-get install -y memcached libmemcached-tools)"
if [ "$WORKLOAD" != mem ]; then
  [ -n "$MEMASLAP" ] || die "no memcaslap/memaslap (apt-get install -y memcached libmemcached-tools)"
fi
read -r -a TARGET_CMD <<< "$TARGET_SERVER"
[ -x "${TARGET_CMD[0]}" ] || command -v "${TARGET_CMD[0]}" >/dev/null \
  || die "TARGET_SERVER '${TARGET_CMD[0]}' is not executable"

bench_pins
bench_workdir perf-vs-mc

# ------------------------------------------------------------ helpers

# start_server NAME PORT -> sets SRV_PID (scripts/lib/bench-common.sh)
start_server() {
  bench_start_server "$1" "$2" version -t "$THREADS" -m "$MEM_MB" -c 1024 -U 0
}


memaslap_args() {   # workload -> config file + extra args
  local cfg="$WORK/$WORKLOAD.cnf" vsz=100 setp=0.1 getp=0.9
  case "$WORKLOAD" in large) vsz=16384 ;; set) setp=1; getp=0 ;; esac
  printf 'key\n32 32 1\nvalue\n%s %s 1\ncmd\n0 %s\n1 %s\n' "$vsz" "$vsz" "$setp" "$getp" > "$cfg"
  MS_ARGS=(-T 1 -c "$CONNS" -w 1k -F "$cfg")
  [ "$WORKLOAD" = mget ] && MS_ARGS+=(-d 10)
}

# run_load NAME PORT PID SECS OUTFILE -> prints "ops p50 p99 p999 cpu_us_per_op"
run_load() {
  local name=$1 port=$2 pid=$3 secs=$4 out=$5 t0 t1 hz
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  "${NICE_CMD[@]}" "${CLI_PIN[@]}" timeout -k 2 $((secs + 20)) "$MEMASLAP" \
    -s "127.0.0.1:$port" "${MS_ARGS[@]}" -t "${secs}s" -S "${secs}s" > "$out" 2>&1
  local rc=$?
  t1=$(cpu_ticks "$pid")
  kill -0 "$pid" 2>/dev/null || { echo "0 0 0 0 0 died"; return; }
  awk -v rc="$rc" -v dt="$((t1 - t0))" -v hz="$hz" '
    /^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "Ops:") ops = $(i+1); else if ($i == "TPS:") tps = $(i+1) }
    /^Total Statistics \(/ { inb = 1; next }
    inb && /Log2 Dist:/ { ind = 1; next }
    inb && ind && /^ *[0-9]+:/ { b = $1 + 0; for (i = 2; i <= NF; i++) { c[b + i - 2] += $i; n += $i } next }
    inb && ind && !/^ *[0-9]+:/ { inb = 0; ind = 0 }
    function pct(q,   cum, b, t, lo, f) {
      if (n == 0) return 0
      t = q * n; cum = 0
      for (b = 0; b < 64; b++) {
        if (cum + c[b] >= t && c[b] > 0) {
          lo = (b == 0) ? 0.5 : 2 ^ (b - 1); f = (t - cum) / c[b]
          return int(lo * 2 ^ f + 0.5)
        }
        cum += c[b]
      }
      return 2 ^ 63
    }
    END {
      if (tps == "" || rc != 0) { printf "0 0 0 0 0 rc=%s\n", rc; exit }
      cpu = (ops > 0) ? dt / hz * 1e6 / ops : 0
      printf "%d %d %d %d %.2f ok\n", tps, pct(0.50), pct(0.99), pct(0.999), cpu
    }' "$out"
}


# ------------------------------------------------------------ mem workload
# load_items PORT N: N sets of 100 B values, streamed on one connection
# while the replies are read back; prints the number of STORED replies
load_items() {
  local port=$1 n=$2
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    timeout 300 awk -v n="$n" 'BEGIN {
        v = "0123456789"; v = v v v v v v v v v v
        for (i = 0; i < n; i++) printf "set key:%028d 0 0 100\r\n%s\r\n", i, v
      }' >&3 &
    timeout 300 head -n "$n" <&3 | grep -c '^STORED'
  )
}

stat_of() {   # stat_of PORT NAME -> value of 'STAT NAME v' or '?'
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'stats\r\n' >&3
    v="?"
    while IFS=$' \r' read -r -t 5 a b c _ <&3; do
      case "$a" in END|ERROR|CLIENT_ERROR|SERVER_ERROR) break ;; esac
      [ "$a" = STAT ] && [ "$b" = "$2" ] && v=$c
    done
    echo "$v"
  ) 2>/dev/null || echo "?"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

if [ "$WORKLOAD" = mem ]; then
  echo "workload mem: $MEM_ITEMS items, 32 B keys, 100 B values; flags -t $THREADS -m $MEM_MB -c 1024 -U 0"
  declare -A BPI
  for name in memcached target; do
    port=$(free_port) || die "no free port"
    start_server "$name" "$port" || { [ "$name" = memcached ] && die "memcached did not start"; echo "bytes/item target FAILED vs memcached ${BPI[memcached]}"; exit 1; }
    pid=$SRV_PID
    rss0=$(rss_kb "$pid")
    t0=$(date +%s.%N)
    stored=$(load_items "$port" "$MEM_ITEMS")
    t1=$(date +%s.%N)
    sleep 1
    rss1=$(rss_kb "$pid")
    items=$(stat_of "$port" curr_items); ev=$(stat_of "$port" evictions)
    bpi=$(awk -v r="$rss1" -v n="$MEM_ITEMS" 'BEGIN { printf "%.1f", r * 1024 / n }')
    dbpi=$(awk -v r="$rss1" -v r0="$rss0" -v n="$MEM_ITEMS" 'BEGIN { printf "%.1f", (r - r0) * 1024 / n }')
    printf '%-9s stored=%s curr_items=%s evictions=%s load=%.1fs rss_before=%dKiB rss_after=%dKiB bytes/item=%s (growth only %s)\n' \
      "$name" "${stored:-0}" "$items" "$ev" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss0" "$rss1" "$bpi" "$dbpi"
    if [ "${stored:-0}" -ne "$MEM_ITEMS" ]; then
      [ "$name" = memcached ] && die "memcached stored only ${stored:-0} of $MEM_ITEMS"
      bpi=FAILED
    fi
    BPI[$name]=$bpi
    stop_server "$pid"
  done
  echo "bytes/item target ${BPI[target]} vs memcached ${BPI[memcached]}"
  [ "${BPI[target]}" = FAILED ] && exit 1
  awk -v t="${BPI[target]}" -v m="${BPI[memcached]}" -v min="$MIN_RATIO" 'BEGIN { exit !(t > 0 && sprintf("%.2f", m / t) + 0 >= min + 0) }'
  exit $?
fi

# ------------------------------------------------------------ load workloads
# Both servers are started afresh for every round (on new ports, the one
# started first alternating): on this kind of VM one server *process* can be
# 20-30 % cheaper per request than another process of the same binary for its
# whole life (memory placement), so keeping one instance of each for all
# rounds turns that luck into a bias.  Fresh pairs turn it into noise that the
# median over rounds absorbs.
memaslap_args
echo "workload $WORKLOAD: memaslap ${MS_ARGS[*]} ; ${ROUNDS} rounds x ${SECS}s per server, fresh servers each round;" \
     "flags -t $THREADS -m $MEM_MB -c 1024 -U 0; server pin '${SRV_PIN[*]:-none}', client pin '${CLI_PIN[*]:-none}', boost $BOOST"

: > "$WORK/res"
TG_FAIL=
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="memcached target"; else order="target memcached"; fi
  MC_PORT=$(free_port) || die "no free port"
  TG_PORT=$(free_port) || die "no free port"
  TG_OK=1
  for name in $order; do
    if [ "$name" = memcached ]; then
      start_server memcached "$MC_PORT" || die "memcached did not start"; MC_PID=$SRV_PID
    elif start_server target "$TG_PORT"; then TG_PID=$SRV_PID
    else TG_OK=0; fi
  done
  if [ "$TG_OK" = 0 ]; then
    echo "round $r target    FAILED(did not start)"
    echo "$r target 0 0 0 0 0 nostart" >> "$WORK/res"
    stop_server "$MC_PID"; break
  fi
  if [ "$WARM_SECS" -gt 0 ]; then
    for name in $order; do
      if [ "$name" = memcached ]; then run_load memcached "$MC_PORT" "$MC_PID" "$WARM_SECS" "$WORK/w$r.memcached.out" > /dev/null
      else run_load target "$TG_PORT" "$TG_PID" "$WARM_SECS" "$WORK/w$r.target.out" > /dev/null; fi
    done
  fi
  for name in $order; do
    if [ "$name" = memcached ]; then port=$MC_PORT; pid=$MC_PID; else port=$TG_PORT; pid=$TG_PID; fi
    read -r ops p50 p99 p999 cpu st < <(run_load "$name" "$port" "$pid" "$SECS" "$WORK/r$r.$name.out")
    printf 'round %d %-9s ops/s=%-8s p50=%sus p99=%sus p999=%sus server_cpu=%sus/op %s\n' \
      "$r" "$name" "$ops" "$p50" "$p99" "$p999" "$cpu" "$( [ "$st" = ok ] || echo "FAILED($st)")"
    echo "$r $name $ops $p50 $p99 $p999 $cpu $st" >> "$WORK/res"
    if [ "$st" != ok ] && [ "$name" = memcached ]; then
      tail -5 "$WORK/r$r.$name.out" >&2; die "memcached run failed ($st)"
    fi
    if [ "$st" != ok ]; then TG_FAIL="target run failed in round $r: $st"; break; fi
  done
  stop_server "$MC_PID"; stop_server "$TG_PID"
  [ -n "$TG_FAIL" ] && break
done
if [ "$TG_OK" = 0 ] || [ -n "$TG_FAIL" ]; then
  [ -n "$TG_FAIL" ] || TG_FAIL="target did not start in round $r"
  tail -5 "$WORK/target.log" 2>/dev/null | sed 's/^/target log: /'
  echo "ratio target/memcached ops/s = 0.00 ($TG_FAIL)"
  exit 1
fi

col() { awk -v n="$1" -v c="$2" '$2 == n { print $c }' "$WORK/res" | median; }
for name in memcached target; do
  printf 'median  %-9s ops/s=%.0f p50=%.0fus p99=%.0fus p999=%.0fus server_cpu=%.2fus/op\n' "$name" \
    "$(col $name 3)" "$(col $name 4)" "$(col $name 5)" "$(col $name 6)" "$(col $name 7)"
done
RATIOS=$(awk '{ v[$1, $2] = $3 } END { for (r = 1; r <= '"$ROUNDS"'; r++) { m = v[r, "memcached"]; t = v[r, "target"]; printf "%.3f\n", (m > 0 ? t / m : 0) } }' "$WORK/res")
echo "per-round ratios: $(echo $RATIOS); ratio of medians: $(awk -v t="$(col target 3)" -v m="$(col memcached 3)" 'BEGIN { printf "%.3f", (m > 0 ? t / m : 0) }');" \
     "cpu/op target/memcached: $(awk -v t="$(col target 7)" -v m="$(col memcached 7)" 'BEGIN { printf "%.2f", (m > 0 ? t / m : 0) }')"
RATIO=$(printf '%.2f' "$(echo "$RATIOS" | median)")
printf 'ratio target/memcached ops/s = %s (p99 target %.0fus vs memcached %.0fus)\n' "$RATIO" "$(col target 5)" "$(col memcached 5)"
awk -v r="$RATIO" -v min="$MIN_RATIO" 'BEGIN { exit !(r + 0 >= min + 0) }'
