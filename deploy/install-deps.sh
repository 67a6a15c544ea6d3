#!/bin/sh
# Installs the Debian packages the sidecar needs, and nothing that is already there.
#   install-deps.sh run    build and run: compiler, pkg-config, libev, hiredis, inih
#   install-deps.sh test   the above plus test tools: check, redis-server, redis-tools, python3-redis,
#                          python3-yaml (tests/deploy), python3-prometheus-client (/metrics),
#                          clang and libclang-rt-dev (libFuzzer: libclang_rt.fuzzer-x86_64.a comes
#                          from libclang-rt-14-dev on bookworm, which libclang-rt-dev pulls in),
#                          valgrind (memcheck of the integration tests; callgrind in the bench),
#                          and Node + npm when no node/npm is on PATH (the ioredis tests)
#   install-deps.sh bench  the above plus the benchmark's tools: nutcracker (twemproxy, the
#                          forwarding baseline)
# Idempotent and quiet when everything is present. Package installs never start a Debian service
# (a policy-rc.d is in place for the duration), so no distro redis-server ends up on port 6379.
set -eu

want=${1:-run}
run_pkgs="gcc libc6-dev make pkg-config libev-dev libhiredis-dev libinih-dev"
test_pkgs="check redis-server redis-tools python3-redis python3-yaml python3-prometheus-client clang libclang-rt-dev valgrind"
case "$want" in
  run)  pkgs=$run_pkgs ;;
  test) pkgs="$run_pkgs $test_pkgs" ;;
  bench) pkgs="$run_pkgs $test_pkgs nutcracker" ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing="$missing $p"
done
# The ioredis tests need Node and npm; any installation will do (Debian's, or NodeSource's).
if [ "$want" != run ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages:$missing (run as root, or install them)" >&2; exit 1
  fi
else
  SUDO=""
fi

echo "install-deps: installing$missing" >&2
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
# A systemd host may still have enabled the units: keep them off port 6379 (and 22121).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
  $SUDO systemctl disable --now nutcracker >/dev/null 2>&1 || true
fi
exit 0
