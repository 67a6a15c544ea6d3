"""Memory per key: loads the same string keys (32-byte keys, 128-byte values by default) into
redis-server and the sidecar and reports bytes per key from each one's own accounting (INFO memory
used_memory growth / keys) and, when the pids are given, from RSS (/proc/<pid>/status VmRSS
growth / keys); then the same with a TTL on every key (used_memory only: RSS after FLUSHALL says
nothing). Run by tests/bench/bench.py on fresh processes; standalone:
    memory_per_key.py RPORT SPORT [--rpid PID --spid PID] [--keys N]
Both servers must be empty and on 127.0.0.1. Not a test: no assertions, only numbers.
Invariants: the key and value bytes are the same for both servers; every load is pipelined in
bounded batches and every reply is checked (+OK)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, Conn, info, load_strings, rss_kb  # noqa: E402

KEY_FMT = "mem:%028d"  # 4 + 28 = 32 bytes
KEY_LEN = 32
VALUE_LEN = 128


def value_of(i):
    """128 bytes, distinct per key (a shared value would flatter an interning store)."""
    return b"%016d" % i + b"v" * (VALUE_LEN - 16)


def used_memory(port):
    return int(info(port, "memory")["used_memory"])


def dbsize(port):
    with Conn(port, timeout=10) as c:
        return c.call("DBSIZE")


def measure(port, pid, keys, ttl=False):
    """Loads keys into an empty server; returns {'used': bytes/key, 'rss': bytes/key or None,
    'used_total', 'rss_kb_after'}. The keys stay loaded."""
    if dbsize(port) != 0:
        raise BenchError(f"port {port}: not empty before the memory load")
    u0 = used_memory(port)
    r0 = rss_kb(pid) if pid else None
    load_strings(port, KEY_FMT, keys, value_of, extra=("EX", "3600") if ttl else ())
    n = dbsize(port)
    if n != keys:
        raise BenchError(f"port {port}: DBSIZE {n} after loading {keys} keys")
    u1 = used_memory(port)
    r1 = rss_kb(pid) if pid else None
    return {
        "used": (u1 - u0) / keys,
        "rss": (r1 - r0) * 1024 / keys if pid else None,
        "used_total": u1,
        "rss_kb_after": r1,
    }


def flush(port):
    with Conn(port, timeout=60) as c:
        r = c.call("FLUSHALL")
    if r != b"OK":
        raise BenchError(f"port {port}: FLUSHALL: {r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rport", type=int)
    ap.add_argument("sport", type=int)
    ap.add_argument("--rpid", type=int)
    ap.add_argument("--spid", type=int)
    ap.add_argument("--keys", type=int, default=1_000_000)
    a = ap.parse_args()
    print(f"memory per key ({a.keys} keys of {KEY_LEN} B, values of {VALUE_LEN} B)")
    print(f"{'':24}{'redis-server':>14}{'sidecar':>10}{'ratio':>8}")
    for ttl in (False, True):
        r = measure(a.rport, a.rpid, a.keys, ttl)
        s = measure(a.sport, a.spid, a.keys, ttl)
        label = "with TTL" if ttl else "no TTL"
        print(f"{label + ', used_memory':24}{r['used']:14.1f}{s['used']:10.1f}{s['used'] / r['used']:8.2f}")
        if not ttl and r["rss"] is not None and s["rss"] is not None:
            print(f"{label + ', RSS':24}{r['rss']:14.1f}{s['rss']:10.1f}{s['rss'] / r['rss']:8.2f}")
        flush(a.rport)
        flush(a.sport)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"memory_per_key: {e}", file=sys.stderr)
        sys.exit(1)
