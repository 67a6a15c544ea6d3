#!/bin/sh
# Throughput side by side: redis-server and the sidecar (standalone) on loopback, redis-benchmark
# GET/SET, pipelined (-P 16) and not, in alternating rounds; prints the median of each and the
# ratio sidecar/redis. Then the memory-per-key comparison. Stops everything it started.
# Usage: sh tests/bench/run.sh [./sidecar]   (ROUNDS=3 N=200000 to change the effort)
set -eu
SIDECAR=${1:-./sidecar}
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
dir=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { i=0; until redis-cli -p "$1" PING >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { echo "port $1 not ready" >&2; exit 1; }; sleep 0.05; done; }

rport=$(free_port); sport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --maxmemory 1gb >"$dir/redis.log" 2>&1 &
pids="$pids $!"
printf '[server]\nlisten = 127.0.0.1:%s\n[cache]\nmax_memory = 1gb\n' "$sport" >"$dir/sidecar.ini"
"$SIDECAR" -c "$dir/sidecar.ini" >"$dir/sidecar.log" 2>&1 &
pids="$pids $!"
wait_ready "$rport"; wait_ready "$sport"

# rps <port> <test> <pipeline> <clients> <datasize>
rps() {
  redis-benchmark -p "$1" -t "$2" -P "$3" -c "$4" -d "$5" -n "$N" -r 100000 --csv -q 2>/dev/null |
    awk -F'","' 'NR==2 {gsub(/"/,"",$2); print $2}'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-28s %14s %14s %8s\n' scenario redis-server sidecar ratio
for scen in "get 16 50 64" "set 16 50 64" "get 1 50 64" "set 1 50 64" "get 1 1 64" "get 16 50 1024" "set 16 50 1024"; do
  set -- $scen
  r=""; s=""
  i=0
  while [ $i -lt "$ROUNDS" ]; do
    r="$r $(rps "$rport" "$1" "$2" "$3" "$4")"
    s="$s $(rps "$sport" "$1" "$2" "$3" "$4")"
    i=$((i+1))
  done
  rm=$(echo "$r" | median); sm=$(echo "$s" | median)
  ratio=$(awk -v a="$sm" -v b="$rm" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  printf '%-28s %14s %14s %8s\n' "$1 -P $2 -c $3 -d $4" "$rm" "$sm" "$ratio"
done
echo
/usr/bin/python3 "$(dirname "$0")/memory_per_key.py" "$rport" "$sport"
