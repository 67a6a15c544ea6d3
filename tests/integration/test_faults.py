#!/usr/bin/python3
"""Near-cache mode through a fault-injecting relay (faultrelay.py) between the sidecar and its
redis-server upstream (issue 7, "Faults"): the link is delayed, stalled, black-holed (all of it,
only the invalidation subscriber, only the data link) and reset, and the tests show for each:

  - no client connection is closed because the upstream failed (each test's clients stay open
    and answer PING at the end);
  - every miss is answered, with the value or an `-ERR upstream ...` error, within
    op_timeout_ms + MARGIN of being sent;
  - no stale value is served once the fault is detected or healed: a key is written directly
    on the upstream while the link is faulty, and afterwards the sidecar answers the new value
    (or an upstream error), never the old one;
  - no request is answered twice or with another request's reply: pipelines of GET k_i, each
    k_i holding a value that names it, are checked reply by reply while a thread toggles faults;
  - a client with state on its private upstream connection (SELECT, WATCH, MULTI, BLPOP) does
    not lose it silently when that connection is lost, and a pipeline moving onto it keeps its
    order; a client subscribed through the pub/sub relay gets messages again after each fault.

Bounds (stated, checked): detection of a dead link (black-holed or stalled) within
health_check_interval_ms + op_timeout_ms + MARGIN; an error or value for every miss within
op_timeout_ms + MARGIN; MARGIN is generous because the machine running the suite is shared.

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_faults.py -v
    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_faults.py -v -k subscriber
    SIDECAR_BIN=build/asan/sidecar /usr/bin/python3 tests/integration/test_faults.py -v
    SIDECAR_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full" FAULTS_MARGIN=3 \
        SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_faults.py -v

Owns: the test cases below; each test its own redis-server, relay and sidecar, stopped at the
end (the sidecar with check=True: a crash, a non-zero exit or a sanitizer report fails the test).
Invariants: traffic only to 127.0.0.1; every wait, read and thread join is bounded.
"""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultrelay  # noqa: E402
import harness  # noqa: E402
from harness import RespClient, encode_command  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)

OP_TIMEOUT_MS = 400
HEALTH_MS = 200
CONNECT_TIMEOUT_MS = 300
# seconds on top of every stated bound (shared CPU, ASan builds; raise it for slower runs)
MARGIN = float(os.environ.get("FAULTS_MARGIN", "1.0"))
DETECT = (HEALTH_MS + OP_TIMEOUT_MS) / 1000.0 + MARGIN   # a dead link noticed within this
ANSWER = OP_TIMEOUT_MS / 1000.0 + MARGIN                 # a miss answered within this
RECOVER = 10.0          # seconds for the sidecar to be usable again after a fault heals
TOGGLE_SECONDS = 6.0    # the pipeline test's length
PIPE_CLIENTS = 4
PIPE_KEYS = 40          # keys per client; each pipeline is a random sample of them
PIPE_DEPTH = 25

NIL = b"$-1\r\n"
UPSTREAM_ERR = b"-ERR upstream "


def bulk(v):
    if isinstance(v, str):
        v = v.encode()
    return b"$%d\r\n%s\r\n" % (len(v), v)


def is_upstream_error(raw):
    return raw.startswith(UPSTREAM_ERR) and raw.endswith(b"\r\n") and raw.count(b"\r\n") == 1


@unittest.skipIf(REDIS_MODE, "needs a sidecar (SIDECAR_BIN is redis-server)")
class FaultCase(unittest.TestCase):
    """Each test: an upstream, a relay in front of it, a sidecar in front of the relay, and a
    direct connection to the upstream (self.direct) for writes the sidecar does not see."""

    sidecar_opts = {}

    def setUp(self):
        self.up = harness.make_upstream()
        self.up.start()
        self.addCleanup(self._stop_server, self.up, False)
        self.relay = faultrelay.FaultRelay(self.up.port).start()
        self.addCleanup(self.relay.stop)
        opts = dict(op_timeout_ms=OP_TIMEOUT_MS, health_check_interval_ms=HEALTH_MS,
                    connect_timeout_ms=CONNECT_TIMEOUT_MS, reconnect_min_ms=20,
                    reconnect_max_ms=200, max_ttl_ms=60000)
        opts.update(self.sidecar_opts)
        self.sc = harness.make_nearcache(SIDECAR_BIN, self.relay.port, **opts)
        self.sc.start()
        self.addCleanup(self._stop_server, self.sc, True)
        harness.nearcache_wait_ready(self.sc)
        self.direct = self.up.client()
        self.addCleanup(self.direct.close)
        self.c = self.client()

    def _stop_server(self, srv, check):
        try:
            problems = srv.stop(check=False)
            if check and problems:
                self.fail("; ".join(problems) + "\n--- stderr ---\n" + srv.stderr_text()[-4000:])
        finally:
            srv.cleanup()

    def client(self):
        c = RespClient(self.sc.port, timeout=harness.REPLY_TIMEOUT)
        self.addCleanup(c.close)
        return c

    def info(self):
        return harness.info_dict(self.sc)

    def info_int(self, field):
        return int(self.info().get(field, "0"))

    def heal_and_wait(self):
        self.relay.heal()
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)

    def timed_get(self, c, key):
        """GET key on c: (raw reply, seconds)."""
        t0 = time.monotonic()
        raw = c.call_raw("GET", key)
        return raw, time.monotonic() - t0

    def assert_alive(self, c, what):
        self.assertEqual(c.call_raw("PING"), b"+PONG\r\n", "%s: the client connection" % what)

    def cache_key(self, key, value):
        """key = value on the upstream, then read through the sidecar until it is a hit."""
        self.assertEqual(self.direct.call_raw("SET", key, value), b"+OK\r\n")
        hits0 = self.info_int("cache_hits")
        deadline = time.monotonic() + RECOVER
        while time.monotonic() < deadline:
            self.assertEqual(self.c.call_raw("GET", key), bulk(value))
            if self.info_int("cache_hits") > hits0:
                return
            time.sleep(0.02)
        self.fail("%s was never served from the near-cache" % key)

    def assert_miss_answers(self, c, keys, expect, what):
        """GET each key: its expected value or an upstream error, each within ANSWER."""
        for key in keys:
            raw, took = self.timed_get(c, key)
            self.assertTrue(raw == bulk(expect[key]) or is_upstream_error(raw),
                            "%s: GET %s -> %r" % (what, key, raw))
            self.assertLess(took, ANSWER, "%s: GET %s took %.3fs (%r)" % (what, key, took, raw))

    def assert_new_value_only(self, key, old, new, seconds, what):
        """For `seconds`: GET key never answers old; it must answer new at least once (errors
        allowed while reconnecting). Returns the replies seen."""
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            raw, took = self.timed_get(self.c, key)
            seen.append(raw)
            self.assertNotEqual(raw, bulk(old), "%s: stale %s served (replies so far %r)"
                                % (what, key, seen[-10:]))
            self.assertTrue(raw == bulk(new) or is_upstream_error(raw),
                            "%s: GET %s -> %r" % (what, key, raw))
            self.assertLess(took, ANSWER, "%s: GET %s took %.3fs" % (what, key, took))
            time.sleep(0.02)
        self.assertIn(bulk(new), seen, "%s: the new value of %s was never served: %r"
                      % (what, key, seen[-10:]))
        return seen

    def wait_stale_gone(self, key, old, bound, what):
        """Poll GET key until it no longer answers old; fails past bound seconds. Returns the
        time it took."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < bound:
            last = self.c.call_raw("GET", key)
            if last != bulk(old):
                return time.monotonic() - t0
            time.sleep(0.02)
        self.fail("%s: the sidecar still served the old value of %s %.1fs after the upstream "
                  "changed it (bound %.1fs; last reply %r; INFO upstream_subscriber=%s)"
                  % (what, key, time.monotonic() - t0, bound, last,
                     self.info().get("upstream_subscriber")))

    # -- a whole-link fault: the common scenario ----------------------------------------------

    def whole_link_fault(self, what, apply, fault_for):
        """Cache k, apply the fault, write k directly upstream; while faulty, misses get an answer
        in time and k stops being served old within DETECT; heal; k is new from then on."""
        self.cache_key("k", "old")
        for i in range(5):
            self.direct.call_raw("SET", "m%d" % i, "mv%d" % i)
        expect = {"m%d" % i: "mv%d" % i for i in range(5)}
        apply()
        t_fault = time.monotonic()
        self.assertEqual(self.direct.call_raw("SET", "k", "new"), b"+OK\r\n")
        self.assert_miss_answers(self.c, sorted(expect), expect, what + " (during)")
        self.wait_stale_gone("k", "old", DETECT, what)
        remaining = fault_for - (time.monotonic() - t_fault)
        if remaining > 0:
            time.sleep(remaining)
        self.relay.heal()
        self.assert_new_value_only("k", "old", "new", 1.5, what + " (after heal)")
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        self.assert_miss_answers(self.c, sorted(expect), expect, what + " (recovered)")
        self.assertEqual(self.c.call_raw("GET", "k"), bulk("new"))
        self.assert_alive(self.c, what)


class TestWholeLink(FaultCase):

    def test_delay_below_op_timeout(self):
        # Slower but working: everything answered with its value, invalidations still arrive.
        self.cache_key("k", "old")
        self.relay.set_mode("delay", delay_ms=OP_TIMEOUT_MS // 8)
        for i in range(5):
            self.direct.call_raw("SET", "d%d" % i, "dv%d" % i)
        expect = {"d%d" % i: "dv%d" % i for i in range(5)}
        for key in sorted(expect):
            raw, took = self.timed_get(self.c, key)
            self.assertEqual(raw, bulk(expect[key]))
            self.assertLess(took, ANSWER)
        self.assertEqual(self.direct.call_raw("SET", "k", "new"), b"+OK\r\n")
        self.wait_stale_gone("k", "old", DETECT, "delay")
        self.assertEqual(self.c.call_raw("GET", "k"), bulk("new"))
        self.relay.heal()
        self.assert_new_value_only("k", "old", "new", 0.5, "delay healed")
        self.assert_alive(self.c, "delay")

    def test_delay_above_op_timeout(self):
        self.whole_link_fault("delay > op_timeout",
                              lambda: self.relay.set_mode("delay", delay_ms=OP_TIMEOUT_MS * 3),
                              DETECT)

    def test_stall(self):
        self.whole_link_fault("stall", lambda: self.relay.set_mode("stall"), DETECT)

    def test_blackhole(self):
        self.whole_link_fault("blackhole", lambda: self.relay.set_mode("blackhole"), DETECT)

    def test_reset_and_refuse(self):
        def apply():
            self.relay.reset(refuse=True)
        self.whole_link_fault("reset+refuse", apply, 1.0)

    def test_reset_repeatedly(self):
        # RST every connection several times in a row, letting it reconnect in between.
        self.cache_key("k", "old")
        for n in range(4):
            lost0 = self.info_int("upstream_disconnects")
            self.relay.reset()
            self.assertEqual(self.direct.call_raw("SET", "k", "v%d" % n), b"+OK\r\n")
            # Until the sidecar has read the RSTs it may still serve what it had (one loop
            # iteration, longer under valgrind); from then on never.
            ok = harness.wait_until(lambda: self.info_int("upstream_disconnects") > lost0, DETECT)
            self.assertTrue(ok, "the reset was not noticed within %.1fs" % DETECT)
            raw, took = self.timed_get(self.c, "k")
            self.assertTrue(raw == bulk("v%d" % n) or is_upstream_error(raw), raw)
            self.assertLess(took, ANSWER)
            harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
            self.assertEqual(self.c.call_raw("GET", "k"), bulk("v%d" % n))
        self.assert_alive(self.c, "resets")


class TestOneConnection(FaultCase):

    def test_blackholed_subscriber_is_noticed(self):
        # The invalidation subscriber alone goes silent (its socket stays open): the data link
        # works, so hits would be served forever while other writers' invalidations are lost.
        # Its health check must notice within health_check_interval_ms + op_timeout_ms.
        self.cache_key("k", "old")
        self.assertEqual(self.relay.roles().get("invalidate"), 1, self.relay.connections())
        self.relay.set_mode("blackhole", role="invalidate")
        self.assertEqual(self.direct.call_raw("SET", "k", "new"), b"+OK\r\n")
        took = self.wait_stale_gone("k", "old", DETECT, "black-holed subscriber")
        self.assertEqual(self.c.call_raw("GET", "k"), bulk("new"))
        self.assertEqual(self.info().get("upstream_subscriber"), "down")
        # While it stays dead nothing is cached: another direct write is seen at once.
        self.assertEqual(self.direct.call_raw("SET", "k", "newer"), b"+OK\r\n")
        self.assertEqual(self.c.call_raw("GET", "k"), bulk("newer"))
        self.relay.heal()
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        # Re-armed: caching again, and a direct write is invalidated again.
        self.cache_key("k2", "a")
        self.assertEqual(self.direct.call_raw("SET", "k2", "b"), b"+OK\r\n")
        self.wait_stale_gone("k2", "a", 1.0 + MARGIN, "re-armed subscriber")
        self.assertEqual(self.c.call_raw("GET", "k2"), bulk("b"))
        self.assert_alive(self.c, "subscriber black-hole")
        sys.stderr.write("(stale value gone %.0f ms after the write) " % (took * 1000))

    def test_blackholed_data_link_recycled(self):
        # Only the data link goes silent: a miss times out at op_timeout_ms, the link is
        # recycled, and once the relay passes again requests work on a new connection.
        self.direct.call_raw("SET", "a", "1")
        self.assertEqual(self.c.call_raw("GET", "a"), bulk("1"))
        connects0 = self.info_int("upstream_connects")
        disconnects0 = self.info_int("upstream_disconnects")
        self.relay.set_mode("blackhole", role="data")
        raw, took = self.timed_get(self.c, "miss1")
        # its own deadline, or (rarely) that of a health-check PING written just before it
        self.assertTrue(is_upstream_error(raw), raw)
        if raw.startswith(b"-ERR upstream timeout"):
            self.assertGreater(took, OP_TIMEOUT_MS / 1000.0 * 0.9, "before the deadline?")
        self.assertLess(took, ANSWER)
        # the next ones fail fast (down) or time out again; none hangs
        for i in range(3):
            raw, took = self.timed_get(self.c, "miss%d" % (i + 2))
            self.assertTrue(is_upstream_error(raw), raw)
            self.assertLess(took, ANSWER)
        self.assertGreater(self.info_int("upstream_disconnects"), disconnects0, "recycled")
        self.direct.call_raw("SET", "a", "2")
        self.relay.heal()
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        self.assertGreater(self.info_int("upstream_connects"), connects0, "a new connection")
        self.assertEqual(self.c.call_raw("GET", "a"), bulk("2"))
        self.assertEqual(self.c.call_raw("GET", "miss1"), NIL)
        self.assert_alive(self.c, "data black-hole")

    def test_stalled_subscriber_flushes_on_recovery(self):
        # A stalled subscriber (buffered, then released): noticed as dead, and after it comes
        # back nothing old is served.
        self.cache_key("k", "old")
        self.relay.set_mode("stall", role="invalidate")
        self.assertEqual(self.direct.call_raw("SET", "k", "new"), b"+OK\r\n")
        self.wait_stale_gone("k", "old", DETECT, "stalled subscriber")
        self.relay.heal()
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        self.assert_new_value_only("k", "old", "new", 0.5, "stalled subscriber healed")


class TestPrivateConnections(FaultCase):
    """A client with state on its private upstream connection (SELECT, WATCH, MULTI): when that
    connection is lost and the sidecar reconnects, the state must not silently vanish."""

    def setUp(self):
        super().setUp()
        self.direct.call("SELECT", "0")

    def lose_private_connections(self):
        n = self.relay.reset(role="data")
        self.assertGreaterEqual(n, 2, "the shared and the private data connections")
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)

    def test_selected_database_kept_across_reconnect(self):
        c = self.client()
        self.assertEqual(c.call_raw("SELECT", "5"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "a", "first"), b"+OK\r\n")
        self.lose_private_connections()
        replies = [c.call_raw("SET", "a", "second") for _ in range(3)]
        self.assertIn(b"+OK\r\n", replies, replies)
        self.assertTrue(all(r == b"+OK\r\n" or is_upstream_error(r) for r in replies), replies)
        self.assertEqual(c.call_raw("GET", "a"), bulk("second"))
        self.assertEqual(self.direct.call_raw("GET", "a"), NIL, "written to database 0")
        self.direct.call("SELECT", "5")
        self.assertEqual(self.direct.call_raw("GET", "a"), bulk("second"))

    def test_watch_lost_aborts_exec(self):
        c = self.client()
        self.direct.call_raw("SET", "w", "1")
        self.assertEqual(c.call_raw("WATCH", "w"), b"+OK\r\n")
        self.lose_private_connections()
        self.assertEqual(self.direct.call_raw("SET", "w", "changed"), b"+OK\r\n")
        self.assertEqual(c.call_raw("MULTI"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "w", "mine"), b"+QUEUED\r\n")
        # Redis: EXEC after a watched key changed is aborted (a null array); the sidecar cannot
        # know whether it changed while the WATCH was gone, so it must abort too.
        self.assertEqual(c.call_raw("EXEC"), b"*-1\r\n")
        self.assertEqual(self.direct.call_raw("GET", "w"), bulk("changed"))
        # and the connection is usable for the next transaction
        self.assertEqual(c.call_raw("WATCH", "w"), b"+OK\r\n")
        self.assertEqual(c.call_raw("MULTI"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "w", "mine"), b"+QUEUED\r\n")
        self.assertEqual(c.call_raw("EXEC"), b"*1\r\n+OK\r\n")
        self.assertEqual(c.call_raw("GET", "w"), bulk("mine"))

    def test_multi_lost_is_discarded(self):
        c = self.client()
        self.assertEqual(c.call_raw("MULTI"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "m", "1"), b"+QUEUED\r\n")
        self.lose_private_connections()
        r = c.call_raw("SET", "m", "2")
        self.assertTrue(r.startswith(b"-ERR"), "a command after the transaction was lost: %r" % r)
        self.assertEqual(c.call_raw("EXEC"),
                         b"-EXECABORT Transaction discarded because of previous errors.\r\n")
        self.assertEqual(self.direct.call_raw("GET", "m"), NIL, "nothing of it was applied")
        self.assertEqual(c.call_raw("GET", "m"), NIL)
        # DISCARD ends a lost transaction as well
        self.assertEqual(c.call_raw("MULTI"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "m", "3"), b"+QUEUED\r\n")
        self.lose_private_connections()
        self.assertEqual(c.call_raw("DISCARD"), b"+OK\r\n")
        self.assertEqual(c.call_raw("SET", "m", "4"), b"+OK\r\n")
        self.assertEqual(self.direct.call_raw("GET", "m"), bulk("4"))
        self.assert_alive(c, "lost MULTI")


    def test_pipeline_into_transaction_keeps_order(self):
        # A pipeline whose first write goes on the (slow) shared link and whose MULTI/EXEC goes
        # on the client's private connection: the transaction must not run first.
        c = self.client()
        self.assertEqual(c.call_raw("GET", "k"), NIL)
        shared = [x["id"] for x in self.relay.connections() if x["role"] == "data"]
        self.assertEqual(len(shared), 1, self.relay.connections())
        self.relay.set_conn_mode(shared[0], "delay", delay_ms=OP_TIMEOUT_MS // 3)
        cmds = [("SET", "k", "first"), ("INCR", "n"), ("MULTI",), ("SET", "k", "second"),
                ("INCR", "n"), ("EXEC",), ("GET", "k")]
        replies = c.pipeline(b"".join(encode_command(*a) for a in cmds), len(cmds))
        self.assertEqual(replies, [b"+OK\r\n", b":1\r\n", b"+OK\r\n", b"+QUEUED\r\n",
                                   b"+QUEUED\r\n", b"*2\r\n+OK\r\n:2\r\n", bulk("second")])
        self.assertEqual(self.direct.call_raw("GET", "k"), bulk("second"))

    def test_blocking_pop_blackholed(self):
        # BLPOP k 1 on a private connection that goes silent: answered by its own deadline
        # (1 s + op_timeout_ms), the client stays connected, and the next one works.
        c = self.client()
        self.assertEqual(c.call_raw("BLPOP", "q", "0.1"), b"*-1\r\n")  # creates the pin
        self.relay.set_mode("blackhole", role="data")
        t0 = time.monotonic()
        r = c.call_raw("BLPOP", "q", "1", timeout=10.0)
        took = time.monotonic() - t0
        self.assertTrue(is_upstream_error(r), r)
        self.assertLess(took, 1.0 + ANSWER, "BLPOP took %.3fs" % took)
        self.relay.heal()
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        self.direct.call_raw("RPUSH", "q", "x")
        deadline = time.monotonic() + RECOVER
        r = None
        while time.monotonic() < deadline:
            r = c.call_raw("BLPOP", "q", "1", timeout=10.0)
            if not is_upstream_error(r):
                break
            time.sleep(0.05)  # the private link reconnects with its own backoff
        self.assertEqual(r, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n")
        self.assert_alive(c, "blocking pop")


class TestWriteThroughRace(FaultCase):
    """A write-through stores what the upstream holds after the write, not what was written: a
    write by someone else that lands between our SET and the read that follows it (the
    upstream read them in two reads: the relay holds the rest of the stream after our SET) is
    never tracked for us (our own write untracked the key), so storing our value would serve
    it stale until max_ttl_ms."""

    def settled(self):
        return self.info_int("cache_write_throughs") + self.info_int("cache_fills_discarded")

    def race(self, ours, theirs, key):
        before = self.settled()
        self.relay.hold_after(encode_command(*ours))
        self.assertEqual(self.c.call_raw(*ours), b"+OK\r\n")
        self.assertTrue(harness.wait_until(self.relay.held, 5), "the relay never split the stream")
        self.assertEqual(self.direct.call("SET", key, theirs), "OK")
        self.relay.release()
        # the write-through settles (stored or discarded), then GETs are answered locally
        self.assertTrue(harness.wait_until(lambda: self.settled() > before, 5))
        for _ in range(3):
            self.assertEqual(self.c.call_raw("GET", key), bulk(theirs))
        self.assertEqual(self.direct.call("GET", key), theirs.encode())

    def test_set(self):
        self.race(("SET", "race:k", "ours"), "theirs", "race:k")

    def test_mset(self):
        self.race(("MSET", "race:a", "ours", "race:b", "b"), "theirs", "race:a")

    def test_nothing_left_when_the_key_is_gone(self):
        # A cached key, written through; someone deletes it before our read-back, which then
        # stores nothing: the entry the write withheld for it must not stay behind.
        self.assertEqual(self.c.call_raw("SET", "race:g", "v1"), b"+OK\r\n")
        self.assertEqual(self.c.call_raw("GET", "race:g"), bulk("v1"))
        self.assertEqual(self.info_int("cache_keys"), 1)
        self.relay.hold_after(encode_command("SET", "race:g", "v2"))
        self.assertEqual(self.c.call_raw("SET", "race:g", "v2"), b"+OK\r\n")
        self.assertTrue(harness.wait_until(self.relay.held, 5), "the relay never split the stream")
        self.assertEqual(self.direct.call("DEL", "race:g"), 1)
        self.relay.release()
        self.assertTrue(harness.wait_until(lambda: self.info_int("cache_keys") == 0, 5),
                        "cache_keys %d: a withheld entry stayed" % self.info_int("cache_keys"))
        self.assertEqual(self.c.call_raw("GET", "race:g"), NIL)


class TestBigRequestsStalled(FaultCase):
    """Commands of 16 KB or more are written to the upstream from the client's bytes
    (link_write_direct in upstream/link.c), only what the socket refuses going to the link's
    output buffer. With the upstream stalled (the relay stops passing bytes on), a 24 MB SET
    fills the socket and is written in part, the small SET after it queues behind its rest in
    the buffer, and the 100 KB SET after that finds the buffer not empty and is buffered whole
    (it must not overtake). Once the stall ends every command lands whole, in order."""

    sidecar_opts = dict(op_timeout_ms=20000)

    def test_partial_direct_write_keeps_order(self):
        big, mid = b"b" * (24 << 20), bytes(range(256)) * 400
        cmds = [("SET", "stall:big", big), ("APPEND", "stall:order", "1"),
                ("SET", "stall:mid", mid), ("APPEND", "stall:order", "2")]
        self.relay.set_mode("stall", role="data")
        self.c.send(b"".join(encode_command(*c) for c in cmds))
        time.sleep(0.5)
        self.relay.heal()
        for want in (b"+OK\r\n", b":1\r\n", b"+OK\r\n", b":2\r\n"):
            self.assertEqual(self.c.read_reply_bytes(), want)
        self.assertEqual(self.direct.call("STRLEN", "stall:big"), len(big))
        self.assertEqual(self.direct.call("GET", "stall:big") == big, True)
        self.assertEqual(self.direct.call("GET", "stall:mid"), mid)
        self.assertEqual(self.direct.call("GET", "stall:order"), b"12")


class TestPubSubRelay(FaultCase):

    def test_subscriber_gets_messages_after_faults(self):
        # A client subscribed through the sidecar (its relay link upstream): after each fault of
        # that link heals, messages reach the client again; none arrives twice or unpublished.
        sub = self.client()
        self.assertEqual(sub.call("SUBSCRIBE", "news"), [b"subscribe", b"news", 1])
        published, seen = set(), []

        def publish_until_seen(payload):
            deadline = time.monotonic() + RECOVER
            while time.monotonic() < deadline:
                if self.direct.call("PUBLISH", "news", payload) >= 1:
                    published.add(payload.encode())
                    end = time.monotonic() + ANSWER + 2.0
                    while time.monotonic() < end:
                        try:
                            m = sub.read_reply(timeout=0.5)
                        except OSError:
                            break
                        self.assertEqual(m[:2], [b"message", b"news"], m)
                        self.assertIn(m[2], published, "a message never published: %r" % m)
                        self.assertNotIn(m[2], seen, "a message delivered twice: %r" % m)
                        seen.append(m[2])
                        if m[2] == payload.encode():
                            return
                time.sleep(0.05)  # the relay's upstream subscription is (re)connecting
            self.fail("%s never reached the subscriber (seen %r)" % (payload, seen))

        publish_until_seen("before")
        for fault in ("blackhole", "stall", "reset"):
            if fault == "reset":
                self.relay.reset(role="pubsub")
            else:
                self.relay.set_mode(fault, role="pubsub")
                self.direct.call("PUBLISH", "news", "lost-" + fault)
                published.add(("lost-" + fault).encode())
                time.sleep(DETECT)  # noticed by its health check; reconnects into the fault
            self.relay.heal()
            publish_until_seen("after-" + fault)
        self.assert_alive(self.c, "pub/sub relay")


class TestPipelinesUnderFaults(FaultCase):

    def test_no_reply_twice_or_misrouted(self):
        """PIPE_CLIENTS threads, each with its own keys (value names the key), send pipelines of
        GETs and check every reply against its request while faults toggle."""
        values = {}
        for t in range(PIPE_CLIENTS):
            for i in range(PIPE_KEYS):
                key = "p%d:%d" % (t, i)
                values[key] = "val-of-%s-%d" % (key, random.randrange(1 << 30))
        self.direct.pipeline(b"".join(encode_command("SET", k, v) for k, v in values.items()),
                             len(values))
        stop = threading.Event()
        failures = []
        counts = {"ok": 0, "err": 0, "pipelines": 0}
        lock = threading.Lock()

        def worker(t):
            rnd = random.Random(t)
            try:
                c = RespClient(self.sc.port, timeout=ANSWER + 2.0)
            except OSError as e:
                failures.append("client %d: connect: %r" % (t, e))
                return
            try:
                mine = ["p%d:%d" % (t, i) for i in range(PIPE_KEYS)]
                deadline = time.monotonic() + TOGGLE_SECONDS + 5.0
                while not stop.is_set() and time.monotonic() < deadline:
                    keys = [rnd.choice(mine) for _ in range(PIPE_DEPTH)]
                    t0 = time.monotonic()
                    c.send(b"".join(encode_command("GET", k) for k in keys))
                    for k in keys:
                        raw = c.read_reply_bytes(timeout=ANSWER + 2.0)
                        if raw == bulk(values[k]):
                            with lock:
                                counts["ok"] += 1
                        elif is_upstream_error(raw):
                            with lock:
                                counts["err"] += 1
                        else:
                            failures.append("client %d: GET %s -> %r" % (t, k, raw[:200]))
                            return
                    took = time.monotonic() - t0
                    if took > ANSWER:
                        failures.append("client %d: a pipeline of %d took %.3fs"
                                        % (t, len(keys), took))
                        return
                    with lock:
                        counts["pipelines"] += 1
                # nothing more may come: every request was answered exactly once
                c.send(encode_command("PING"))
                last = c.read_reply_bytes(timeout=ANSWER + 2.0)
                if last != b"+PONG\r\n":
                    failures.append("client %d: an extra reply before PONG: %r" % (t, last[:200]))
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                failures.append("client %d: %r" % (t, e))
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(t,), daemon=True)
                   for t in range(PIPE_CLIENTS)]
        for th in threads:
            th.start()
        rnd = random.Random(7)
        faults = ["pass", "delay-short", "delay-long", "stall", "blackhole", "reset",
                  "sub-blackhole", "data-stall"]
        applied = []
        end = time.monotonic() + TOGGLE_SECONDS
        while time.monotonic() < end and not failures:
            f = rnd.choice(faults)
            applied.append(f)
            self.relay.heal()
            if f == "delay-short":
                self.relay.set_mode("delay", delay_ms=20)
            elif f == "delay-long":
                self.relay.set_mode("delay", delay_ms=OP_TIMEOUT_MS + 100)
            elif f in ("stall", "blackhole"):
                self.relay.set_mode(f)
            elif f == "reset":
                self.relay.reset()
            elif f == "sub-blackhole":
                self.relay.set_mode("blackhole", role="invalidate")
            elif f == "data-stall":
                self.relay.set_mode("stall", role="data")
            time.sleep(rnd.uniform(0.1, 0.6))
        self.relay.heal()
        stop.set()
        for th in threads:
            th.join(TOGGLE_SECONDS + 20.0)
            self.assertFalse(th.is_alive(), "a client thread did not finish")
        self.assertEqual(failures, [], "faults applied: %r" % applied)
        sys.stderr.write("(%d pipelines, %d values, %d upstream errors; faults %s) "
                         % (counts["pipelines"], counts["ok"], counts["err"], ",".join(applied)))
        self.assertGreater(counts["ok"], 0)
        harness.nearcache_wait_ready(self.sc, timeout=RECOVER)
        for k in list(values)[:10]:
            self.assertEqual(self.c.call_raw("GET", k), bulk(values[k]))
        self.assert_alive(self.c, "pipelines")


if __name__ == "__main__":
    unittest.main()
