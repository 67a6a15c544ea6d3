#!/bin/sh
# Integration tests: the differential test (every diff/*.txt script, sidecar vs redis-server),
# the Python client tests (every test_*.py, Debian's /usr/bin/python3 with python3-redis) and the
# ioredis tests (node/, Node's built-in test runner).
#
#   sh tests/integration/run.sh ./sidecar                  the normal run (make integration)
#   SIDECAR_ASAN=1 sh tests/integration/run.sh build/asan/sidecar
#                                                          sanitizer build: leak checking on, and
#                                                          any sanitizer report fails the run
#   sh tests/integration/run.sh redis-server               proves the tests against redis-server
#   SIDECAR_VALGRIND=1 sh tests/integration/run.sh ./sidecar
#                                                          the sidecar under valgrind memcheck:
#                                                          the differential scripts (standalone and
#                                                          near-cache) and $VALGRIND_SUITES; any
#                                                          memcheck error or leak fails the run
#
# Each Python step is bounded (timeout 300 s, so at most ~10 min in all); exit status is non-zero
# if anything failed.
set -u

if [ $# -ne 1 ]; then
    echo "usage: sh tests/integration/run.sh PATH_TO_SIDECAR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
BIN=$1

if ! command -v redis-server >/dev/null 2>&1; then
    echo "run.sh: redis-server not found (make deps)" >&2
    exit 2
fi
if ! $PY -c 'import redis' 2>/dev/null; then
    echo "run.sh: $PY cannot import redis (apt-get install python3-redis)" >&2
    exit 2
fi

case "$BIN" in
    redis-server|*/redis-server)
        DIFF_ARGS="--target redis" ;;
    *)
        if [ ! -x "$BIN" ]; then
            echo "run.sh: not an executable: $BIN" >&2
            exit 2
        fi
        BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
        DIFF_ARGS="--sidecar $BIN" ;;
esac

STDERR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sidecar-it-stderr.XXXXXX")
trap 'rm -rf "$STDERR_DIR"' EXIT

# Memcheck: every sidecar the tests start runs as `valgrind ... sidecar` through a wrapper script
# (exec keeps the pid, so the harness's INFO process_id check and its SIGTERM still reach it).
# A memcheck error or a definite/indirect/possible leak makes valgrind exit 99, which the harness
# reports as a failed stop; the logs are also checked below. "still reachable" is not a leak.
VALGRIND=${SIDECAR_VALGRIND:-0}
PY_SUITES="$HERE"/test_*.py
MEMCHECK_ARG=""
if [ "$VALGRIND" = 1 ]; then
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "run.sh: valgrind not found (make deps)" >&2
        exit 2
    fi
    REAL_BIN=$BIN
    BIN=$STDERR_DIR/sidecar-memcheck
    cat >"$BIN" <<EOF
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full \\
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \\
    --log-file="$STDERR_DIR/valgrind.%p.log" "$REAL_BIN" "\$@"
EOF
    chmod +x "$BIN"
    DIFF_ARGS="--sidecar $BIN"
    MEMCHECK_ARG="--memcheck"
    PY_SUITES=""
    for t in ${VALGRIND_SUITES:-test_nearcache.py}; do
        PY_SUITES="$PY_SUITES $HERE/$t"
    done
fi
export SIDECAR_IT_STDERR_DIR="$STDERR_DIR"
export SIDECAR_BIN="$BIN"
if [ "${SIDECAR_ASAN:-0}" = 1 ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1
fi

status=0
echo "== differential test ($BIN vs redis-server)"
# shellcheck disable=SC2086
timeout --foreground -k 10 300 $PY "$HERE/diff_test.py" $DIFF_ARGS $MEMCHECK_ARG || status=1

# The same scripts through the sidecar in front of a redis-server (near-cache mode), up to
# their RESP3 part. Left out on purpose: pubsub.txt (PUBSUB CHANNELS on the upstream lists the
# sidecar's own invalidation channel) and server.txt (HELLO 3 is refused in this mode, and
# INFO/CONFIG describe the sidecar).
case "$DIFF_ARGS" in
    --sidecar*)
        echo "== differential test, near-cache mode ($BIN in front of redis-server vs redis-server)"
        NC_SCRIPTS=""
        for s in "$HERE"/diff/*.txt; do
            case "$(basename "$s")" in
                pubsub.txt|server.txt|server_resp3_types.txt) ;;
                *) NC_SCRIPTS="$NC_SCRIPTS $s" ;;
            esac
        done
        # shellcheck disable=SC2086
        timeout --foreground -k 10 300 $PY "$HERE/diff_test.py" --target nearcache \
            --sidecar "$BIN" $MEMCHECK_ARG $NC_SCRIPTS || status=1 ;;
esac

for t in $PY_SUITES; do
    echo "== $(basename "$t") (SIDECAR_BIN=$BIN)"
    timeout --foreground -k 10 300 $PY "$t" -v || status=1
done

# ioredis (Node): its packages come from the npm registry, pinned by package-lock.json. The Node
# harness starts the sidecar binary only (no redis-server mode).
if [ -z "${DIFF_ARGS##--sidecar*}" ] && [ "$VALGRIND" != 1 ]; then
    NODE_DIR=$HERE/node
    echo "== ioredis tests (SIDECAR_BIN=$BIN)"
    if [ ! -d "$NODE_DIR/node_modules/ioredis" ]; then
        (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || status=1
    fi
    (cd "$NODE_DIR" && timeout --foreground -k 10 300 node --test) || status=1
fi

if [ "${SIDECAR_ASAN:-0}" = 1 ]; then
    if grep -l -e "ERROR: AddressSanitizer" -e "runtime error:" -e "ERROR: LeakSanitizer" \
            "$STDERR_DIR"/*.log >/dev/null 2>&1; then
        echo "== sanitizer reports in sidecar stderr:"
        for f in $(grep -l -e "ERROR: AddressSanitizer" -e "runtime error:" -e "ERROR: LeakSanitizer" "$STDERR_DIR"/*.log); do
            echo "--- $(basename "$f")"
            grep -n -A 30 -e "ERROR: AddressSanitizer" -e "runtime error:" -e "ERROR: LeakSanitizer" "$f" | head -60
        done
        status=1
    else
        echo "== no sanitizer reports in $(ls "$STDERR_DIR" | wc -l) sidecar stderr logs"
    fi
fi

if [ "$VALGRIND" = 1 ]; then
    nlogs=$(ls "$STDERR_DIR"/valgrind.*.log 2>/dev/null | wc -l)
    bad=0
    for f in "$STDERR_DIR"/valgrind.*.log; do
        [ -s "$f" ] || continue
        echo "--- memcheck report $(basename "$f"):"
        head -80 "$f"
        bad=1
    done
    if [ "$nlogs" -eq 0 ]; then
        echo "== no valgrind logs: the sidecar never ran under valgrind"
        status=1
    elif [ $bad = 1 ]; then
        status=1
    else
        echo "== memcheck: 0 errors, 0 leaks in $nlogs sidecar processes"
    fi
fi

if [ $status -eq 0 ]; then
    echo "integration: all passed"
else
    echo "integration: FAILED"
fi
exit $status
