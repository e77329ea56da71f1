# scripts/lib/bench-common.sh - what scripts/bench.sh (memaslap loads) and
# scripts/bench-wire.sh (the project's load generator) share: the boosted
# session of their own, the pinning, the work directory and its clean-up,
# free ports, stopping servers, CPU ticks and medians. Sourced, not run.
#
# The caller sets BOOST, PIN and THREADS first, and LOG_DIR (may be empty);
# before starting servers also MEMCACHED_BIN, MEMCACHED_FLAGS, TARGET_CMD
# (an array) and TARGET_FLAGS.

# bench_own_session SCRIPT ARGS...: re-runs the benchmark in a new session
# (=> a new scheduler autogroup) and raises that group's priority, so only
# this benchmark's processes are favoured over the other work on a shared
# machine; returns in the inner run, exits with its status in the outer
# one. Sets NICE_CMD (a nice prefix where autogroups are not available).
bench_own_session() {
  local script=$1; shift
  if [ "$BOOST" != 0 ] && [ -z "${_BENCH_INNER:-}" ] && [ "$(id -u)" = 0 ] \
     && [ -e /proc/self/autogroup ] && command -v setsid >/dev/null; then
    export _BENCH_INNER=1
    setsid -w bash "$script" "$@" &
    local inner=$! rc
    trap 'kill -TERM "$inner" 2>/dev/null' INT TERM HUP
    wait "$inner"; rc=$?
    while kill -0 "$inner" 2>/dev/null; do wait "$inner"; rc=$?; done
    exit "$rc"
  fi
  NICE_CMD=()
  if [ "$BOOST" != 0 ] && [ "$(id -u)" = 0 ]; then
    if [ -n "${_BENCH_INNER:-}" ] && [ -e /proc/self/autogroup ]; then
      echo "$BOOST" > /proc/self/autogroup 2>/dev/null || true
    else
      NICE_CMD=(nice -n "$BOOST")
    fi
  fi
}

# bench_pins: SRV_PIN (cpu 0, or all cpus for -t > 1) and CLI_PIN (cpu 1)
# when PIN=1 and there are two cpus and taskset.
bench_pins() {
  local ncpu
  ncpu=$(nproc 2>/dev/null || echo 1)
  SRV_PIN=(); CLI_PIN=()
  if [ "$PIN" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
    if [ "$THREADS" -gt 1 ]; then SRV_PIN=(taskset -c "0-$((ncpu-1))")
    else SRV_PIN=(taskset -c 0); fi
    CLI_PIN=(taskset -c 1)
  fi
}

# bench_workdir PREFIX: WORK (a temporary directory, copied to LOG_DIR and
# removed at exit) and PIDS (the servers started; killed at exit).
bench_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM HUP
}
bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  [ -n "$LOG_DIR" ] && { mkdir -p "$LOG_DIR" && cp -r "$WORK"/. "$LOG_DIR"/ 2>/dev/null; }
  rm -rf "$WORK"
}

# free_port: a TCP port on 127.0.0.1 not LISTENing per /proc/net/tcp{,6}
# and not handed out before.
USED_PORTS=" "
free_port() {
  local p hex
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    hex=$(printf '%04X' "$p")
    if ! awk -v h=":$hex" 'NR>1 && substr($2, length($2)-4)==h {f=1} END{exit !f}' \
         /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      USED_PORTS="$USED_PORTS$p "; echo "$p"; return 0
    fi
  done
  return 1
}

# listening PORT: a LISTEN socket on it per /proc/net/tcp{,6}.
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'NR>1 && substr($2, length($2)-4)==h && $4=="0A" {f=1} END{exit !f}' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# bench_start_server NAME PORT READY FLAGS... -> sets SRV_PID: memcached
# (NAME memcached, with MEMCACHED_FLAGS, and -u root as root) or the target
# (TARGET_CMD with TARGET_FLAGS) on 127.0.0.1:PORT with FLAGS, pinned and
# boosted, its output in $WORK/NAME.log. Ready when it listens and, with
# READY=version, answers 'version' (READY=listen: a TLS server, which the
# load generator checks itself).
bench_start_server() {
  local name=$1 port=$2 ready=$3 extra=() cmd=() line
  shift 3
  if [ "$name" = memcached ]; then cmd=("$MEMCACHED_BIN"); read -r -a extra <<< "$MEMCACHED_FLAGS"
  else cmd=("${TARGET_CMD[@]}"); read -r -a extra <<< "$TARGET_FLAGS"; fi
  case "$(basename "${cmd[0]}")" in
    memcached*) [ "$(id -u)" = 0 ] && extra+=(-u root) ;;
  esac
  "${NICE_CMD[@]}" "${SRV_PIN[@]}" "${cmd[@]}" -p "$port" -l 127.0.0.1 "$@" \
    "${extra[@]}" > "$WORK/$name.log" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  for _ in $(seq 1 100); do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      echo "$name exited at start:" >&2; tail -5 "$WORK/$name.log" >&2
      stop_server "$SRV_PID"; return 1
    fi
    if listening "$port"; then
      [ "$ready" = listen ] && return 0
      line=$(exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'version\r\n' >&3; read -r -t 3 l <&3; echo "$l")
      case "$line" in VERSION*) return 0 ;; esac
      echo "$name on port $port answered '$line' to 'version'" >&2
      stop_server "$SRV_PID"; return 1
    fi
    sleep 0.1
  done
  echo "$name did not listen on 127.0.0.1:$port within 10 s" >&2
  stop_server "$SRV_PID"; return 1
}

# stop_server PID: TERM, then KILL after 2 s; forget the pid (no later kill
# can hit a recycled pid).
stop_server() {
  local p=$1 q keep=()
  kill "$p" 2>/dev/null
  for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}

# cpu_ticks PID: user + system clock ticks so far.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# median: of the numbers on stdin, one per line (0 for none).
median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) { print 0; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
