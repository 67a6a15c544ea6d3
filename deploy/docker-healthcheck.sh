#!/bin/bash
# deploy/docker-healthcheck.sh: the HEALTHCHECK of the image (/usr/local/bin/sidecar-healthcheck).
# Sends PING to the sidecar's RESP port over bash's /dev/tcp and exits 0 when it answers +PONG, or
# -NOAUTH (requirepass is set: the event loop answered, which is what liveness means); 1 otherwise.
# Needs only bash and mawk, both in debian:bookworm-slim: no redis-cli in the image.
# The address is the first of SIDECAR_SERVER_LISTEN when set (it overrides the file, as in the
# sidecar), else the first [server] listen of $HEALTHCHECK_INI (default /etc/sidecar/sidecar.ini),
# else 127.0.0.1:6379; a wildcard host (0.0.0.0, [::]) is probed on loopback.
# Usage: sidecar-healthcheck [host:port]    Exit: 0 healthy, 1 not.
set -u
conf=${HEALTHCHECK_INI:-/etc/sidecar/sidecar.ini}
addr=${1:-${SIDECAR_SERVER_LISTEN:-}}
if [ -z "$addr" ] && [ -r "$conf" ]; then
  # [server] listen, with the sidecar's ini rules: ';'/'#' comment lines, " ;" trailing comments,
  # optional double quotes around the value.
  addr=$(awk '
    /^[ \t]*[;#]/ { next }
    /^[ \t]*\[/ { s = $0; sub(/^[ \t]*\[/, "", s); sub(/\].*$/, "", s); next }
    s == "server" && $0 ~ /^[ \t]*listen[ \t]*=/ {
      v = $0; sub(/^[^=]*=/, "", v); sub(/[ \t]+;.*$/, "", v)
      gsub(/^[ \t]+|[ \t]+$/, "", v); gsub(/^"|"$/, "", v); print v; exit
    }' "$conf")
fi
addr=${addr:-127.0.0.1:6379}
addr=${addr%%[ ,]*}                 # the first of several addresses
port=${addr##*:}
host=${addr%:*}
host=${host#\[}
host=${host%\]}
case $host in
  ''|0.0.0.0|'*') host=127.0.0.1 ;;
  ::) host=::1 ;;
esac
case $port in
  ''|*[!0-9]*) echo "sidecar-healthcheck: no TCP port in '$addr'" >&2; exit 1 ;;
esac
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "sidecar-healthcheck: cannot connect to $host:$port" >&2
  exit 1
fi
printf 'PING\r\n' >&3
reply=""
IFS= read -r -t 2 reply <&3
exec 3>&-
case $reply in
  +PONG*|-NOAUTH*) exit 0 ;;
esac
echo "sidecar-healthcheck: $host:$port answered '${reply%$'\r'}'" >&2
exit 1
