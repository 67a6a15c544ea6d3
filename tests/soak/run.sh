#!/bin/sh
# The bounded soak (tests/soak/soak.py): SOAK_SECONDS (default 120) of mixed load, client kills
# and upstream restarts against the given sidecar binary, then the leak, RSS-plateau and model
# checks. Meant for the ASan build:
#     tests/soak/run.sh build/asan/sidecar
#     SOAK_SECONDS=600 tests/soak/run.sh build/asan/sidecar
#     SOAK_VALGRIND=1 tests/soak/run.sh ./sidecar          # memcheck instead of ASan
# Exit status: 0 when every check passed. Bounded: the whole run is killed after
# SOAK_SECONDS + 300 s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-build/asan/sidecar}
SECONDS_=${SOAK_SECONDS:-120}
PY=${PYTHON:-/usr/bin/python3}
case "$SECONDS_" in ''|*[!0-9]*) echo "run.sh: SOAK_SECONDS must be a whole number" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "run.sh: $BIN is not an executable (build it: make asan)" >&2; exit 2; }
: "${ASAN_OPTIONS:=detect_leaks=1:quarantine_size_mb=16:abort_on_error=0}"
export ASAN_OPTIONS
set -- --sidecar "$BIN" --seconds "$SECONDS_"
[ "${SOAK_VALGRIND:-0}" = 1 ] && set -- "$@" --valgrind
exec timeout --foreground -k 10 $((SECONDS_ + 300)) "$PY" "$HERE/soak.py" "$@"
