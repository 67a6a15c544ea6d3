#!/bin/sh
# Entry point of the benchmark (make bench / make bench-quick): runs tests/bench/bench.py under
# Debian's python3 (standard library only). Everything it starts is stopped by pid on exit, error or
# signal; a failed step prints "bench: FAILED: ..." and the exit status is non-zero.
# Usage: sh tests/bench/run.sh [./sidecar]
#   ROUNDS=3     rounds of every scenario (targets alternate within each round)
#   QUICK=1      about a tenth of the requests, 100k keys for the memory load (checks the harness)
#   PROFILE=0    skip the perf / callgrind hot-spot listings
#   BENCH_OUT=d  where report.txt and the profiles go (default build/bench; build/bench-quick if QUICK=1)
#   KEEP_LOGS=1  keep the servers' logs and configs (always kept after a failure)
set -eu
here=$(dirname "$0")
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/bench.py" "${1:-./sidecar}"
