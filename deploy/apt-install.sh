#!/usr/bin/env bash
# Installs the named Debian packages that are missing, in one apt call, and waits for the
# apt/dpkg lock instead of failing at once when another apt run holds it (a fresh machine
# often runs unattended-upgrades at boot).
#
#   deploy/apt-install.sh PACKAGE...     # installs those not installed yet
#   deploy/apt-install.sh --wait-lock    # only waits until the apt lock is free
#
# Settings (environment): APT_LOCK_TIMEOUT (600 s), APT_LOCK_FILES (the locks apt and dpkg
# take; space-separated).
set -euo pipefail

timeout=${APT_LOCK_TIMEOUT:-600}
locks=${APT_LOCK_FILES:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}

say() { printf '==> %s\n' "$*"; }

lock_holder() {  # file: prints the PID holding a lock on it (apt takes fcntl locks), if any
  local file=$1 dev ino key
  [ -e "$file" ] || return 0
  read -r dev ino < <(stat -L -c '%d %i' "$file")
  # /proc/locks names a file MAJOR:MINOR:INODE, major and minor in hex.
  key=$(printf '%02x:%02x:%s' $(( (dev >> 8) & 0xfff )) $(( (dev & 0xff) | ((dev >> 12) & 0xfff00) )) "$ino")
  # Lines with "->" are processes waiting for the lock, not holding it.
  awk -v key="$key" '$2 != "->" && $6 == key { print $5; exit }' /proc/locks
}

wait_for_apt_lock() {
  local start=$SECONDS holder="" pid file name
  while :; do
    pid=""
    for file in $locks; do
      pid=$(lock_holder "$file")
      [ -n "$pid" ] && break
    done
    if [ -z "$pid" ]; then
      [ -n "$holder" ] && say "the apt lock is free (waited $(( SECONDS - start ))s)"
      return 0
    fi
    if [ "$pid" != "$holder" ]; then
      name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
      say "waiting for the apt lock held by PID $pid ($name) on $file (up to ${timeout}s)"
      holder=$pid
    fi
    if (( SECONDS - start >= timeout )); then
      echo "the apt lock ($file) is still held by PID $pid after ${timeout}s; run this again when that apt run is done" >&2
      return 1
    fi
    sleep 1
  done
}

if [ "${1:-}" = "--wait-lock" ]; then wait_for_apt_lock; exit; fi

missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

say "apt-get install ${missing[*]}"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
wait_for_apt_lock
# apt's own wait covers a run that takes the lock between our check and apt's.
apt=(apt-get -q -o DPkg::Lock::Timeout="$timeout")
$sudo "${apt[@]}" update
wait_for_apt_lock
DEBIAN_FRONTEND=noninteractive $sudo "${apt[@]}" install -y "${missing[@]}"
