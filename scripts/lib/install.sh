# scripts/lib/install.sh - the one installer the project's scripts share
# (sourced, not run): Debian packages through apt-get, and rustup targets.
#
#   install_debs WHO PKG...      installs the packages given (none: nothing),
#                                as root or through `sudo -n`; `apt-get update`
#                                runs only when the package lists do not know
#                                one of them, or after an install that failed;
#                                packaged services (memcached, nutcracker) are
#                                kept from starting while it runs. Returns
#                                nonzero when it could not install them.
#   install_rust_targets WHO T...  `rustup target add` for the targets not
#                                installed yet (without rustup: a warning).
#
# WHO prefixes the messages (the calling script's name).

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    printf 'install: need root (or sudo) to run: %s\n' "$*" >&2
    return 1
  fi
}

install_debs() {
  local who=$1
  shift
  [ "$#" -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    printf '%s: missing %s and no apt-get: install them by hand\n' "$who" "$*" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local known=1 p
  for p in "$@"; do
    apt-cache show "$p" >/dev/null 2>&1 || known=0
  done
  if [ "$known" = 0 ]; then
    printf '%s: apt-get update (package lists do not know %s)\n' "$who" "$*" >&2
    as_root apt-get update -q || return 1
  fi
  # A package's service must not start: it would take the ports and CPU
  # the tests and benchmarks use.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ] &&
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"; then
    added_policy=1
  fi
  printf '%s: apt-get install %s\n' "$who" "$*" >&2
  local ok=1
  as_root apt-get install -y -q --no-install-recommends "$@" </dev/null || ok=0
  if [ "$ok" = 0 ] && [ "$known" = 1 ]; then
    printf '%s: install failed; apt-get update and retry\n' "$who" >&2
    ok=1
    as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "$@" </dev/null || ok=0
  fi
  [ "$added_policy" = 1 ] && as_root rm -f "$policy"
  if [ "$ok" = 0 ]; then
    printf '%s: could not install %s\n' "$who" "$*" >&2
    return 1
  fi
}

install_rust_targets() {
  local who=$1
  shift
  if ! command -v rustup >/dev/null 2>&1; then
    printf '%s: no rustup: make sure the targets %s are installed\n' "$who" "$*" >&2
    return 0
  fi
  local installed t
  installed=$(rustup target list --installed 2>/dev/null)
  for t in "$@"; do
    if ! grep -qx "$t" <<<"$installed"; then
      printf '%s: rustup target add %s\n' "$who" "$t" >&2
      rustup target add "$t" || return 1
    fi
  done
}
