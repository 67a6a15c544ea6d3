#!/usr/bin/python3
"""Near-cache mode when the upstream fails (issue 4): down at start, killed and restarted under
load, stopped (SIGSTOP) past the op timeout, hits and stale entries served while it is down,
clients that leave with requests in flight, and upstream error replies.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache_failures.py -v
    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache_failures.py -v -k test_upstream_down_at_start
    SIDECAR_ASAN=1 SIDECAR_BIN=build/asan/sidecar /usr/bin/python3 tests/integration/test_nearcache_failures.py -v

With SIDECAR_BIN=redis-server only the error-reply test runs (against the upstream itself); the
rest need a sidecar and are skipped.

Owns: the test cases below (processes started through NearCacheCase of test_nearcache.py, each
test its own upstream and sidecar, stopped by pid; a SIGSTOPped upstream gets SIGCONT first).
Invariants: traffic only to 127.0.0.1; every wait, thread join and reply read is bounded; the
sidecar is stopped with check=True at the end of each test, so a crash, a non-zero exit or a
sanitizer report in its stderr fails the test.
"""

import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ConnectionClosed, RespClient, encode_command  # noqa: E402
from test_nearcache import (NIL, OK, REDIS_MODE, WAIT, NearCacheCase, bulk, bulks, num,  # noqa: E402
                            poll, sidecar_only)

UNAVAILABLE = b"-ERR upstream unavailable"
TIMEOUT_ERR = b"-ERR upstream timeout"
UPSTREAM_ERR = b"-ERR upstream "
OP_TIMEOUT_MS = 300
SLACK = 0.7              # seconds allowed on top of op_timeout_ms for an error reply
LOAD_THREADS = 8
KEYS_PER_THREAD = 4
LOAD_BEFORE_KILL = 1.0   # seconds of load before the upstream is killed
DOWN_FOR = 0.5           # seconds the upstream stays dead
LOAD_AFTER_RESTART = 1.5


def parse_bulk(raw):
    """bytes value of a raw bulk reply, None for the null bulk; raises ValueError otherwise."""
    if raw == NIL:
        return None
    if raw.startswith(b"$") and raw.endswith(b"\r\n"):
        n, _, rest = raw[1:].partition(b"\r\n")
        if len(rest) == int(n) + 2:
            return rest[:-2]
    raise ValueError("not a bulk reply: %r" % raw[:200])


class UpstreamDownTest(NearCacheCase):

    @sidecar_only
    def test_upstream_down_at_start(self):
        port = harness.free_port()
        up = harness.make_upstream(port=port)  # not started yet
        self.addCleanup(self._stop_quietly, up)
        self.up = up
        sc = self.start_sidecar(up, wait_ready=False, op_timeout_ms=OP_TIMEOUT_MS,
                                reconnect_max_ms=200)
        c = self.conn(sc)
        self.assertReply(c, ("PING",), b"+PONG\r\n")
        for cmd in (("GET", "k"), ("SET", "k", "v"), ("DBSIZE",), ("HGETALL", "h")):
            t0 = time.monotonic()
            r = c.call_raw(*cmd)
            elapsed = time.monotonic() - t0
            self.assertTrue(r.startswith(UNAVAILABLE), "%r with no upstream: %r" % (cmd, r))
            self.assertTrue(r.endswith(b"\r\n") and r.count(b"\r\n") == 1, r)
            self.assertLess(elapsed, OP_TIMEOUT_MS / 1000.0 + SLACK, "%r took %.3fs" % (cmd, elapsed))
        self.assertReply(c, ("PING",), b"+PONG\r\n", "the connection stays open")
        self.assertEqual(self.cache_info(sc).get("upstream_state"), "down")
        harness.upstream_restart(up)
        self.assertReply(self.conn(up), ("SET", "k", "v"), OK)
        replies = []

        def served():
            r = c.call_raw("GET", "k")
            replies.append(r)
            return r == bulk("v")
        ok, elapsed = poll(served, 5.0, 0.02)
        self.assertTrue(ok, "GET k after the upstream came back: %r" % replies[-5:])
        bad = [r for r in replies if r not in (bulk("v"), NIL) and not r.startswith(UNAVAILABLE)]
        self.assertEqual(bad, [], "replies while reconnecting")
        harness.nearcache_wait_ready(sc)
        self.assertReply(c, ("SET", "k", "w"), OK)
        self.assertReply(c, ("GET", "k"), bulk("w"))

    @sidecar_only
    def test_hits_served_while_upstream_down(self):
        # invalidation=ttl: losing the upstream does not flush (with tracking it must).
        up, sc = self.start_pair(invalidation="ttl", max_ttl_ms=60000, op_timeout_ms=OP_TIMEOUT_MS)
        self.load(("SET", "k", "v"), ("HSET", "h", "f", "x"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("HGET", "h", "f"), bulk("x"))
        up.signal(signal.SIGKILL)
        self.assertIsNotNone(up.wait(5.0))
        ok, _ = poll(lambda: self.cache_info().get("upstream_state") == "down", 3.0, 0.02)
        self.assertTrue(ok, "INFO upstream_state after the kill: %r"
                        % self.cache_info().get("upstream_state"))
        deadline = time.monotonic() + 0.5
        n = 0
        while time.monotonic() < deadline:
            self.assertReply(self.c, ("GET", "k"), bulk("v"), "a hit while the upstream is down")
            self.assertReply(self.c, ("HGET", "h", "f"), bulk("x"))
            n += 1
        t0 = time.monotonic()
        r = self.c.call_raw("GET", "uncached")
        self.assertTrue(r.startswith(UNAVAILABLE), r)
        self.assertLess(time.monotonic() - t0, OP_TIMEOUT_MS / 1000.0 + SLACK)
        self.assertGreaterEqual(self.cache_int("cache_hits"), 2 * n)

    @sidecar_only
    def test_serve_stale_while_upstream_down(self):
        up, sc = self.start_pair(invalidation="ttl", max_ttl_ms=200, serve_stale_ms=5000,
                                 op_timeout_ms=OP_TIMEOUT_MS)
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        stale0 = self.cache_int("cache_stale_serves")
        up.signal(signal.SIGKILL)
        self.assertIsNotNone(up.wait(5.0))
        time.sleep(0.4)  # the entry is 200 ms past its local TTL
        self.assertReply(self.c, ("GET", "k"), bulk("v"), "stale entry served while down")
        self.assertGreaterEqual(self.cache_int("cache_stale_serves"), stale0 + 1)

    @sidecar_only
    def test_no_stale_serves_by_default(self):
        up, sc = self.start_pair(invalidation="ttl", max_ttl_ms=200, op_timeout_ms=OP_TIMEOUT_MS)
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        up.signal(signal.SIGKILL)
        self.assertIsNotNone(up.wait(5.0))
        time.sleep(0.4)
        r = self.c.call_raw("GET", "k")
        self.assertTrue(r.startswith(UNAVAILABLE), "serve_stale_ms=0, entry expired: %r" % r)
        self.assertEqual(self.cache_int("cache_stale_serves"), 0)

    @sidecar_only
    def test_upstream_timeout_reply(self):
        up, sc = self.start_pair(op_timeout_ms=OP_TIMEOUT_MS)
        self.load(("SET", "cold", "v"))
        up.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = self.c.call_raw("GET", "cold")
            elapsed = time.monotonic() - t0
            self.assertTrue(r.startswith(TIMEOUT_ERR), "a request sent to a silent upstream: %r" % r)
            self.assertGreaterEqual(elapsed, OP_TIMEOUT_MS / 1000.0 - 0.05)
            self.assertLess(elapsed, OP_TIMEOUT_MS / 1000.0 + SLACK)
            self.assertReply(self.c, ("PING",), b"+PONG\r\n")
            self.assertGreaterEqual(self.cache_int("upstream_timeouts"), 1)
        finally:
            up.signal(signal.SIGCONT)
        replies = []

        def served():
            r = self.c.call_raw("GET", "cold")
            replies.append(r)
            return r == bulk("v")
        ok, _ = poll(served, 5.0, 0.02)
        self.assertTrue(ok, "GET after SIGCONT: %r" % replies[-5:])
        self.assertEqual([r for r in replies if r != bulk("v") and not r.startswith(UPSTREAM_ERR)], [])


# ---------------------------------------------------------------------------------------------
# kill and restart under load


class LoadWorker(threading.Thread):
    """One client of the sidecar that owns KEYS_PER_THREAD keys and alternates SET and GET on
    them until stop is set or deadline passes, checking every reply against what it may be.

    allowed[key] is the set of values a GET may return: {v} after a SET of v that succeeded with
    no upstream restart around it; a failed SET adds its value (it may or may not have been
    applied); an upstream kill or restart adds None to every key (the new upstream starts empty).
    """

    def __init__(self, index, port, epoch, stop, deadline):
        super().__init__(name="load-%d" % index, daemon=True)
        self.index = index
        self.port = port
        self.epoch = epoch          # callable: the current epoch (bumped at kill and restart)
        self.stop_event = stop
        self.deadline = deadline
        self.keys = ["t%d:k%d" % (index, j) for j in range(KEYS_PER_THREAD)]
        self.allowed = {k: {None} for k in self.keys}
        self.problems = []
        self.ok_by_epoch = {}
        self.errors = 0
        self.ops = 0

    def _sync(self, seen):
        e = self.epoch()
        if e != seen:
            for k in self.keys:
                self.allowed[k].add(None)
        return e

    def run(self):
        try:
            c = RespClient(self.port, timeout=WAIT)
        except OSError as e:
            self.problems.append("connect: %r" % e)
            return
        seen = self.epoch()
        seq = 0
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                key = self.keys[(seq // 2) % KEYS_PER_THREAD]
                seen = self._sync(seen)
                e0 = seen
                if seq % 2 == 0:
                    value = ("t%d-%d" % (self.index, seq)).encode()
                    r = c.call_raw("SET", key, value)
                    seen = self._sync(seen)
                    if r == OK:
                        self.allowed[key] = {value} if seen == e0 else {value, None}
                        self.ok_by_epoch[seen] = self.ok_by_epoch.get(seen, 0) + 1
                    elif r.startswith(UPSTREAM_ERR):
                        self.allowed[key].add(value)
                        self.errors += 1
                    else:
                        self.problems.append("SET %s: unexpected reply %r" % (key, r))
                else:
                    r = c.call_raw("GET", key)
                    seen = self._sync(seen)
                    if r.startswith(UPSTREAM_ERR):
                        self.errors += 1
                    else:
                        try:
                            v = parse_bulk(r)
                        except ValueError:
                            self.problems.append("GET %s: unexpected reply %r" % (key, r))
                        else:
                            if v not in self.allowed[key]:
                                self.problems.append("GET %s served %r, allowed %r (op %d)"
                                                     % (key, v, sorted(self.allowed[key], key=str), seq))
                            else:
                                self.ok_by_epoch[seen] = self.ok_by_epoch.get(seen, 0) + 1
                seq += 1
                self.ops = seq
                if len(self.problems) > 20:
                    break
        except ConnectionClosed as e:
            self.problems.append("connection closed by the sidecar after %d ops: %s" % (seq, e))
        except (OSError, TimeoutError) as e:
            self.problems.append("after %d ops: %r" % (seq, e))
        finally:
            c.close()


class KillRestartTest(NearCacheCase):

    @sidecar_only
    def test_upstream_killed_and_restarted_mid_load(self):
        up, sc = self.start_pair(op_timeout_ms=500, reconnect_max_ms=200)
        lock = threading.Lock()
        epoch = [0]

        def current():
            with lock:
                return epoch[0]

        def bump():
            with lock:
                epoch[0] += 1

        # A probe key cached before the kill: the restarted upstream is empty and knows nothing
        # of tracking, so only the flush on connection loss keeps the old value from being served.
        self.assertReply(self.c, ("SET", "probe", "old"), OK)
        self.assertReply(self.c, ("GET", "probe"), bulk("old"))
        self.assertReply(self.c, ("GET", "probe"), bulk("old"))

        stop = threading.Event()
        total = LOAD_BEFORE_KILL + DOWN_FOR + LOAD_AFTER_RESTART + 10.0
        workers = [LoadWorker(i, sc.port, current, stop, time.monotonic() + total)
                   for i in range(LOAD_THREADS)]
        for w in workers:
            w.start()
        try:
            time.sleep(LOAD_BEFORE_KILL)
            bump()
            up.signal(signal.SIGKILL)
            self.assertIsNotNone(up.wait(5.0), "upstream did not die")
            time.sleep(DOWN_FOR)
            harness.upstream_restart(up)
            bump()
            direct = self.conn(up)
            self.assertReply(direct, ("SET", "probe", "new"), OK)
            replies = []

            def probe_new():
                r = self.c.call_raw("GET", "probe")
                replies.append(r)
                return r == bulk("new")
            ok, _ = poll(probe_new, 5.0, 0.01)
            self.assertNotIn(bulk("old"), replies, "the value cached before the upstream was "
                             "lost was served after the restart")
            self.assertTrue(ok, "GET probe after the restart: %r" % replies[-5:])
            time.sleep(LOAD_AFTER_RESTART)
        finally:
            stop.set()
            join_deadline = time.monotonic() + WAIT + 5
            for w in workers:
                w.join(timeout=max(0.1, join_deadline - time.monotonic()))
        alive = [w.name for w in workers if w.is_alive()]
        self.assertEqual(alive, [], "load threads still running")
        problems = [p for w in workers for p in w.problems]
        self.assertEqual(problems, [], "\n".join(problems[:20]))
        final = current()
        resumed = [w.name for w in workers if w.ok_by_epoch.get(final, 0) == 0]
        self.assertEqual(resumed, [], "threads with no successful command after the restart")
        self.assertTrue(sc.alive())
        # Every key reads, through the sidecar, what the upstream holds.
        for w in workers:
            for k in w.keys:
                self.assertEqual(self.c.call_raw("GET", k), direct.call_raw("GET", k), "key %s" % k)


# ---------------------------------------------------------------------------------------------
# clients leaving with requests in flight


class DisconnectTest(NearCacheCase):

    @sidecar_only
    def test_client_disconnect_with_requests_in_flight(self):
        up, sc = self.start_pair()
        self.load(*[("SET", "cold:%d" % i, "v%d" % i) for i in range(0, 500, 2)])
        for rnd in range(3):
            slow = RespClient(sc.port, timeout=WAIT)
            slow.send(encode_command("DEBUG", "SLEEP", "0.2"))
            time.sleep(0.03)  # the upstream is asleep: everything below stays in flight
            clients = [RespClient(sc.port, timeout=WAIT) for _ in range(50)]
            for i, c in enumerate(clients):
                base = (rnd * 50 + i) * 3
                payload = b"".join(encode_command("GET", "cold:%d" % (base + j)) for j in range(3))
                payload += encode_command("HGETALL", "cold:h%d" % i)
                payload += encode_command("MGET", "cold:%d" % base, "cold:%d" % (base + 1), "x")
                payload += encode_command("SET", "w:%d:%d" % (rnd, i), "x")
                c.send(payload)
            for c in clients:
                c.close()
            slow.close()
            self.assertTrue(sc.alive(), "sidecar died in round %d" % rnd)
            self.assertReply(self.conn(sc), ("PING",), b"+PONG\r\n")
        ok, _ = poll(lambda: self.cache_info().get("upstream_in_flight") == "0", 5.0, 0.02)
        self.assertTrue(ok, "upstream_in_flight %r" % self.cache_info().get("upstream_in_flight"))
        c = self.conn(sc)
        self.assertReply(c, ("GET", "cold:0"), bulk("v0"))
        self.assertReply(c, ("SET", "after", "1"), OK)
        self.assertReply(c, ("GET", "after"), bulk("1"))
        self.assertEqual(sc.sanitizer_reports(), [])

    @sidecar_only
    def test_blpop_client_disconnect_keeps_element(self):
        # A client that leaves while its BLPOP waits upstream must not take a later element
        # with it: its private upstream connection has to go too.
        up, sc = self.start_pair()
        for i in range(5):
            b = RespClient(sc.port, timeout=WAIT)
            b.send(encode_command("BLPOP", "q", "5"))
            self.addCleanup(b.close)
            if i == 0:
                self.wait_upstream_blocked("blpop")
            b.close()

        def none_blocked():
            text = self.upc.call("CLIENT", "LIST").decode()
            return "cmd=blpop " not in text.replace("\n", " ") + " "
        ok, _ = poll(none_blocked, 3.0, 0.02)
        self.assertTrue(ok, "the upstream still has a client blocked in BLPOP")
        self.assertReply(self.upc, ("LPUSH", "q", "x"), num(1))
        time.sleep(0.1)
        self.assertReply(self.upc, ("LLEN", "q"), num(1))


# ---------------------------------------------------------------------------------------------
# upstream error replies


class ErrorReplyTest(NearCacheCase):

    def test_upstream_error_reply_passed_unchanged(self):
        self.start_pair()
        self.load(("SET", "s", "abc"))
        # Each expectation is first proven on the upstream itself.
        cases = [
            (("INCR", "s"), b"-ERR value is not an integer or out of range\r\n"),
            (("HGET", "s", "f"), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (("LRANGE", "s", "0", "-1"),
             b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (("FOO", "bar"), b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"),
            (("GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
        ]
        for cmd, expected in cases:
            self.assertReply(self.upc, cmd, expected, "on the upstream")
        self.reset_calls()
        for cmd, expected in cases:
            self.assertReply(self.c, cmd, expected, "through the sidecar")
        # Errors are not cached: the same reads are forwarded again.
        self.assertReply(self.c, ("HGET", "s", "f"), cases[1][1])
        self.assertReply(self.c, ("LRANGE", "s", "0", "-1"), cases[2][1])
        self.assertCalls("hget", 2, "an error reply is not cached")
        self.assertCalls("lrange", 2, "an error reply is not cached")
        self.assertCalls("incr", 1)
        self.assertReply(self.c, ("GET", "s"), bulk("abc"), "the failed INCR changed nothing")
        self.load(("DEL", "s"), ("HSET", "s", "f", "v"), ("RPUSH", "l", "a"))
        self.wait_reply(self.c, ("HGET", "s", "f"), bulk("v"), timeout=1.0)
        self.assertReply(self.c, ("LRANGE", "l", "0", "-1"), bulks("a"))
        if not REDIS_MODE:
            self.assertGreaterEqual(self.cache_int("upstream_reply_errors"), 5)


@sidecar_only
class BackpressureTest(NearCacheCase):
    """The upstream link's output buffer is bounded (proxy/upstream_wait.c): with the upstream
    stopped, a client pipelining 20 MB of SETs is paused once its link holds
    UPSTREAM_BACKLOG_HIGH (256 KB) bytes, and the rest waits in its own socket instead of the
    sidecar's memory. A client with nothing in flight upstream (a near-cache hit, a PING) is
    served meanwhile. Once the upstream runs again every SET lands, in order."""

    HIGH = 256 * 1024

    def test_stopped_upstream_bounds_the_output_buffer(self):
        self.start_pair(op_timeout_ms=60000)  # the stop must not time the link out
        self.load(("SET", "hot", "v"))
        self.assertReply(self.c, ("GET", "hot"), bulk("v"))  # cached from now on
        value = b"x" * (256 * 1024)
        n = 80
        one = encode_command("SET", "bp:0", value)
        payload = b"".join(encode_command("SET", "bp:%d" % i, value) for i in range(n))
        writer = self.conn(self.sc, timeout=60)
        waits0 = self.cache_int("upstream_backpressure_waits")
        self.up.signal(signal.SIGSTOP)
        try:
            sender = threading.Thread(target=writer.send, args=(payload,), daemon=True)
            sender.start()
            got, _ = poll(lambda: self.cache_int("upstream_backpressure_waits") > waits0, 10.0,
                          0.02)
            self.assertTrue(got, "the writer was never paused")
            time.sleep(0.3)  # had it gone on reading, its SETs would pile up by now
            held = self.cache_int("upstream_output_bytes")
            self.assertGreater(held, 0)
            self.assertLess(held, self.HIGH + len(one), "the link buffered %d bytes" % held)
            t0 = time.monotonic()
            self.assertReply(self.c, ("GET", "hot"), bulk("v"))
            self.assertReply(self.c, ("PING",), b"+PONG\r\n")
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            self.up.signal(signal.SIGCONT)
        sender.join(timeout=60)
        self.assertFalse(sender.is_alive(), "the writer's pipeline was never read whole")
        for i in range(n):
            self.assertEqual(writer.read_reply_bytes(timeout=60), OK, "SET bp:%d" % i)
        self.assertEqual(self.upc.call("STRLEN", "bp:%d" % (n - 1)), len(value))
        self.assertEqual(self.cache_int("upstream_output_bytes"), 0)


if __name__ == "__main__":
    unittest.main()
