#!/bin/sh
# Layering check (DESIGN.md section 2): dependencies point one way, proxy -> upstream, cache, conf;
# upstream -> conf; cache -> conf. Only upstream/ includes hiredis; only proxy/ and upstream/ include
# libev; only conf/ includes inih. Fails (exit 1) naming every violating line.
cd "$(dirname "$0")/.." || exit 2
fail=0
bad() { echo "check-deps: $1"; fail=1; }
check() { # dir, forbidden-regex, reason
  out=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($2)" "$1"/*.[ch] 2>/dev/null)
  [ -n "$out" ] && bad "$1/ must not include $3:
$out"
}
check conf  'cache/|upstream/|proxy/|hiredis|ev\.h' 'cache/, upstream/, proxy/, hiredis or libev'
check cache 'upstream/|proxy/|hiredis|ev\.h|ini\.h|sys/socket' 'upstream/, proxy/, hiredis, libev, inih or sockets'
check upstream 'proxy/|cache/|ini\.h' 'proxy/, cache/ or inih'
check proxy 'hiredis|ini\.h' 'hiredis or inih (only upstream/ and conf/ may)'
# Our headers must not shadow hiredis's (its include dir is on the path).
for f in $(ls conf cache upstream proxy 2>/dev/null | grep -E '^(read|async|sds|alloc|hiredis|net|dict|fmacros|sdsalloc|win32)\.h$'); do
  bad "header named like a hiredis header: $f"
done
[ "$fail" = 0 ] && echo "check-deps: ok"
exit $fail
