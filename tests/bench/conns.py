"""Many idle-then-active connections: opens N connections to one server, leaves them idle, then has
every one send the same GET at once and measures the time until every reply is complete, and the
server's RSS growth per connection (idle, and after the burst). Run by tests/bench/bench.py;
standalone: conns.py PORT PID [--conns 1000] [--idle 2] [--key key:000000000001]
Invariants: connections are opened one at a time (a blocking connect, so the listen backlog never
overflows), all waits are bounded (--timeout), every socket is closed before returning; the
readiness loop uses epoll (selectors), so more than 1024 descriptors are fine."""
import argparse
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import HOST, BenchError, encode, rss_kb  # noqa: E402


def reply_complete(data):
    """True when data holds one complete RESP2 reply to GET (bulk, null or error)."""
    i = data.find(b"\r\n")
    if i < 0:
        return False
    if data[:1] == b"$":
        n = int(data[1:i])
        return n < 0 or len(data) >= i + 2 + n + 2
    return True  # -ERR ... or +...: one line


def run(port, pid, conns=1000, idle_s=2.0, key="key:000000000001", timeout=30.0):
    """Returns {'ms': time to all replies, 'idle_b': RSS growth per idle connection in bytes,
    'active_b': RSS growth per connection after the burst, 'errors': error replies}."""
    deadline = time.monotonic() + timeout
    rss0 = rss_kb(pid)
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(conns):
            if time.monotonic() > deadline:
                raise BenchError(f"port {port}: opening {conns} connections took over {timeout:.0f} s")
            try:
                s = socket.create_connection((HOST, port), timeout=5)
            except OSError as e:
                raise BenchError(f"port {port}: connection {len(socks) + 1} of {conns} failed: {e}") from e
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        time.sleep(idle_s)
        rss_idle = rss_kb(pid)
        req = encode("GET", key)
        data = {}
        t0 = time.monotonic()
        for s in socks:
            s.sendall(req)
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            data[s] = b""
        pending = len(socks)
        errors = 0
        while pending:
            left = deadline + timeout - time.monotonic()
            if left <= 0:
                raise BenchError(f"port {port}: {pending} of {conns} replies missing after the burst")
            for k, _ in sel.select(min(left, 1.0)):
                s = k.fileobj
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise BenchError(f"port {port}: a connection was closed during the burst")
                data[s] += chunk
                if reply_complete(data[s]):
                    errors += data[s][:1] == b"-"
                    sel.unregister(s)
                    pending -= 1
        t1 = time.monotonic()
        rss_active = rss_kb(pid)
    finally:
        sel.close()
        for s in socks:
            s.close()
    return {
        "ms": (t1 - t0) * 1000,
        "idle_b": (rss_idle - rss0) * 1024 / conns,
        "active_b": (rss_active - rss0) * 1024 / conns,
        "errors": errors,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=2.0)
    ap.add_argument("--key", default="key:000000000001")
    a = ap.parse_args()
    r = run(a.port, a.pid, a.conns, a.idle, a.key)
    print(f"{a.conns} connections: all replies in {r['ms']:.1f} ms; RSS per connection "
          f"{r['idle_b']:.0f} B idle, {r['active_b']:.0f} B after the burst; {r['errors']} errors")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"conns: {e}", file=sys.stderr)
        sys.exit(1)
