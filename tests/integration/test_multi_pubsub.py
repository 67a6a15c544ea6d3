#!/usr/bin/python3
"""Transactions and pub/sub as applications use them, with Debian's python3-redis (4.3.4) and the
raw RESP client of harness.py.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_multi_pubsub.py -v
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_multi_pubsub.py -v

With SIDECAR_BIN=redis-server the same tests run against a real redis-server to prove them.

Covers: a WATCH/MULTI balance transfer retried until it succeeds (a forced conflict, then
threads racing a concurrent writer), WATCH invalidated by expiry and by eviction, transaction
pipelines (queue-time errors abort, run-time errors stay in the results), transaction state
dropped on disconnect; pub/sub with redis-py's PubSub (channels, patterns, unsubscribe),
RESP2 subscriber restrictions and RESP3 push messages on the raw client, many subscribers,
subscriptions dropped on disconnect, and a subscriber that never reads being disconnected by the
output buffer limit while the server stays healthy.

Every wait is bounded: helpers poll a condition until a deadline; the only sleeps are the ones
that let a TTL pass.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Push, RespClient, wait_until  # noqa: E402

import redis  # noqa: E402  (Debian's python3-redis: run with /usr/bin/python3)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)

WAIT = 10.0              # seconds: bound on any wait for a condition
MSG_TIMEOUT = 5.0        # seconds: bound on waiting for one pub/sub message
MAX_ATTEMPTS = 1000      # WATCH retries before a transfer gives up
SUBSCRIBE_CONTEXT_ERR = ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                         "PING / QUIT / RESET are allowed in this context")


def new_server(config=None, name=None):
    return harness.make_server(SIDECAR_BIN, config=config, name=name)


client = harness.redis_client


SHARED = None


def setUpModule():
    global SHARED
    if not REDIS_MODE and not os.path.exists(SIDECAR_BIN):
        raise unittest.SkipTest("sidecar binary not found: %s" % SIDECAR_BIN)
    SHARED = new_server(name="shared")
    SHARED.start()


def tearDownModule():
    if SHARED is not None:
        try:
            SHARED.stop(check=True)
        finally:
            SHARED.cleanup()


def transfer(r, src, dst, amount, before_exec=None):
    """Moves amount from src to dst with WATCH/MULTI/EXEC, retrying while a watched key changed.
    Returns the number of attempts. before_exec(attempt) runs between the reads and EXEC."""
    with r.pipeline() as p:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                p.watch(src, dst)
                balance = int(p.get(src) or 0)
                if balance < amount:
                    p.unwatch()
                    raise ValueError("insufficient funds")
                if before_exec:
                    before_exec(attempt)
                p.multi()
                p.decrby(src, amount)
                p.incrby(dst, amount)
                p.execute()
                return attempt
            except redis.WatchError:
                continue
    raise AssertionError("transfer did not succeed in %d attempts" % MAX_ATTEMPTS)


def next_message(p, timeout=MSG_TIMEOUT):
    """The next message/pmessage of a redis-py PubSub (confirmations skipped), or None."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        m = p.get_message(timeout=left)
        if m and m["type"] in ("message", "pmessage"):
            return m


def next_confirmations(p, n, timeout=MSG_TIMEOUT):
    """The next n subscribe/unsubscribe confirmations of a redis-py PubSub."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = p.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if m and m["type"] not in ("message", "pmessage"):
            out.append(m)
    return out


class SharedServerTest(unittest.TestCase):
    def setUp(self):
        self.r = client(SHARED)
        self.r.flushall()

    def tearDown(self):
        self.r.close()


# ---------------------------------------------------------------------------------------------
# transactions


class TestTransactions(SharedServerTest):
    def test_balance_transfer_retried_after_conflict(self):
        self.r.mset({"acct:alice": 100, "acct:bob": 0})
        writer = client(SHARED)

        def deposit_on_first_attempt(attempt):
            if attempt == 1:
                writer.incrby("acct:alice", 50)  # a concurrent deposit: EXEC must fail once

        attempts = transfer(self.r, "acct:alice", "acct:bob", 30, deposit_on_first_attempt)
        self.assertEqual(attempts, 2)
        self.assertEqual(int(self.r.get("acct:alice")), 120)
        self.assertEqual(int(self.r.get("acct:bob")), 30)
        writer.close()

    def test_balance_transfers_race_a_concurrent_writer(self):
        accounts = ["acct:%d" % i for i in range(4)]
        self.r.mset({a: 1000 for a in accounts})
        deposits = 3000
        errors = []
        retries = [0]
        stop = threading.Event()

        def writer():
            w = client(SHARED)
            try:
                for i in range(deposits):
                    w.incrby(accounts[i % len(accounts)], 1)
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(e)
            finally:
                w.close()

        def mover(seed):
            m = client(SHARED)
            try:
                for i in range(150):
                    if stop.is_set():
                        break
                    src = accounts[(seed + i) % len(accounts)]
                    dst = accounts[(seed + i + 1) % len(accounts)]
                    retries[0] += transfer(m, src, dst, 7) - 1
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            finally:
                m.close()

        threads = [threading.Thread(target=writer)] + [
            threading.Thread(target=mover, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stop.set()
        self.assertFalse(any(t.is_alive() for t in threads), "threads did not finish")
        self.assertEqual(errors, [])
        total = sum(int(v) for v in self.r.mget(accounts))
        self.assertEqual(total, 1000 * len(accounts) + deposits)  # nothing lost, nothing made

    def test_transaction_helper_with_watch(self):
        self.r.set("counter", 10)

        def double(pipe):
            v = int(pipe.get("counter"))
            pipe.multi()
            pipe.set("counter", v * 2)
            pipe.get("counter")

        self.assertEqual(self.r.transaction(double, "counter"), [True, b"20"])

    def test_watch_invalidated_by_expiry_with_no_access(self):
        self.r.set("session", "x", px=50)
        deadline = time.monotonic() + 0.1
        with self.r.pipeline() as p:
            p.watch("session")
            # The key expires by time alone; nobody reads it (waiting for the TTL is the wait).
            time.sleep(max(0.0, deadline - time.monotonic()))
            p.multi()
            p.set("result", "ran")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertIsNone(self.r.get("result"))

    def test_watch_invalidated_by_expiry_seen_by_another_client(self):
        other = client(SHARED)
        self.r.set("session", "x", px=50)
        with self.r.pipeline() as p:
            p.watch("session")
            self.assertTrue(wait_until(lambda: other.exists("session") == 0, WAIT))
            p.multi()
            p.set("result", "ran")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertIsNone(self.r.get("result"))
        other.close()

    def test_watch_untouched_key_with_ttl_runs(self):
        self.r.set("session", "x", ex=1000)
        with self.r.pipeline() as p:
            p.watch("session", "absent")
            p.multi()
            p.set("result", "ran")
            self.assertEqual(p.execute(), [True])

    def test_transaction_pipeline_results(self):
        self.r.set("s", "text")
        with self.r.pipeline(transaction=True) as p:
            p.set("a", 1).incr("a").incrby("a", 10).get("a").lpush("list", "x", "y")
            p.incr("s")  # fails at EXEC time: the others still run
            p.rpop("list").exists("a", "list", "nope")
            res = p.execute(raise_on_error=False)
        self.assertEqual(res[:5], [True, 2, 12, b"12", 2])
        self.assertIsInstance(res[5], redis.ResponseError)
        self.assertEqual(res[6:], [b"x", 2])

    def test_queue_time_error_aborts(self):
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "k", "v"), "QUEUED")
            self.assertEqual(c.call_raw("SET", "k"),
                             b"-ERR wrong number of arguments for 'set' command\r\n")
            self.assertEqual(c.call_raw("NOSUCH"),
                             b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n")
            self.assertEqual(c.call_raw("EXEC"),
                             b"-EXECABORT Transaction discarded because of previous errors.\r\n")
            self.assertIsNone(c.call("GET", "k"))
            self.assertEqual(c.call_raw("EXEC"), b"-ERR EXEC without MULTI\r\n")

    def test_watch_many_clients_one_writer(self):
        self.r.set("hot", 0)
        clients = [RespClient(SHARED.port) for _ in range(50)]
        try:
            for c in clients:
                self.assertEqual(c.call("WATCH", "hot", "cold:%d" % id(c)), "OK")
            self.r.incr("hot")
            for c in clients:
                self.assertEqual(c.call("MULTI"), "OK")
                self.assertEqual(c.call("INCR", "hot"), "QUEUED")
                self.assertEqual(c.call_raw("EXEC"), b"*-1\r\n")
            self.assertEqual(int(self.r.get("hot")), 1)
        finally:
            for c in clients:
                c.close()

    def test_watch_thousands_of_keys_then_unwatch(self):
        keys = ["wk:%d" % i for i in range(5000)]
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("WATCH", *keys), "OK")
            self.r.set("wk:4999", 1)
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call_raw("EXEC"), b"*-1\r\n")
            self.assertEqual(c.call("WATCH", *keys), "OK")
            self.assertEqual(c.call("UNWATCH"), "OK")
            self.r.set("wk:0", 1)
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("PING"), "QUEUED")
            self.assertEqual(c.call("EXEC"), ["PONG"])

    def test_disconnect_in_multi_and_watch(self):
        self.r.set("k", 1)
        c = RespClient(SHARED.port)
        self.assertEqual(c.call("WATCH", "k", "k2"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        for i in range(100):
            self.assertEqual(c.call("SET", "k", "queued-%d" % i), "QUEUED")
        before = len(self.r.client_list())
        c.close()
        # Touching the watched key after the watcher left must be harmless (and nothing ran).
        self.assertTrue(wait_until(lambda: len(self.r.client_list()) < before, WAIT))
        self.r.set("k", 2)
        self.r.delete("k2")
        self.r.flushall()
        self.assertTrue(self.r.ping())

    def test_reset_and_quit(self):
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("WATCH", "k"), "OK")
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "k", 1), "QUEUED")
            self.assertEqual(c.call("RESET"), "RESET")
            self.assertEqual(c.call_raw("EXEC"), b"-ERR EXEC without MULTI\r\n")
            self.r.set("k", 2)  # no longer watched
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("GET", "k"), "QUEUED")
            self.assertEqual(c.call("EXEC"), [b"2"])
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "k", 3), "QUEUED")
            self.assertEqual(c.call("QUIT"), "OK")
            self.assertTrue(c.wait_closed(WAIT))
        self.assertEqual(self.r.get("k"), b"2")


class TestWatchEviction(unittest.TestCase):
    def test_watch_invalidated_by_eviction(self):
        with new_server({"max_memory": "2mb", "maxmemory_policy": "allkeys-lru"}) as srv:
            r = client(srv)
            w = client(srv)
            r.set("watched", "v")
            value = b"e" * 1024
            with w.pipeline() as p:
                p.watch("watched")
                evicted = False
                for batch in range(200):  # at most 200k keys of 1 KB against a 2 MB budget
                    pipe = r.pipeline(transaction=False)
                    for i in range(1000):
                        pipe.set("fill:%d:%d" % (batch, i), value)
                    pipe.execute()
                    if r.exists("watched") == 0:  # EXISTS leaves the LRU alone
                        evicted = True
                        break
                self.assertTrue(evicted, "the watched key was never evicted")
                p.multi()
                p.set("result", "ran")
                with self.assertRaises(redis.WatchError):
                    p.execute()
            self.assertIsNone(r.get("result"))
            r.close()
            w.close()


# ---------------------------------------------------------------------------------------------
# pub/sub


class TestPubSub(SharedServerTest):
    def test_round_trip_channels_and_patterns(self):
        p = self.r.pubsub()
        p.subscribe("news")
        p.psubscribe("events.*")
        conf = next_confirmations(p, 2)
        self.assertEqual([(m["type"], m["channel"], m["data"]) for m in conf],
                         [("subscribe", b"news", 1), ("psubscribe", b"events.*", 2)])
        pub = client(SHARED)
        self.assertEqual(pub.publish("news", "hello"), 1)
        self.assertEqual(pub.publish("events.login", "user:1"), 1)
        self.assertEqual(pub.publish("other", "nobody"), 0)
        m = next_message(p)
        self.assertEqual((m["type"], m["channel"], m["data"]), ("message", b"news", b"hello"))
        m = next_message(p)
        self.assertEqual((m["type"], m["pattern"], m["channel"], m["data"]),
                         ("pmessage", b"events.*", b"events.login", b"user:1"))
        self.assertEqual(pub.pubsub_numsub("news", "other"), [(b"news", 1), (b"other", 0)])
        self.assertEqual(pub.pubsub_numpat(), 1)
        self.assertEqual(pub.pubsub_channels(), [b"news"])
        p.unsubscribe("news")
        p.punsubscribe()
        conf = next_confirmations(p, 2)
        self.assertEqual([(m["type"], m["data"]) for m in conf],
                         [("unsubscribe", 1), ("punsubscribe", 0)])
        self.assertEqual(pub.publish("news", "gone"), 0)
        self.assertIsNone(next_message(p, timeout=0.2))
        p.close()
        pub.close()

    def test_handler_thread(self):
        got = []
        done = threading.Event()

        def handler(m):
            got.append(m["data"])
            if len(got) == 100:
                done.set()

        p = self.r.pubsub(ignore_subscribe_messages=True)
        p.subscribe(**{"jobs": handler})
        t = p.run_in_thread(sleep_time=0.01, daemon=True)
        try:
            pub = client(SHARED)
            self.assertTrue(wait_until(lambda: pub.pubsub_numsub("jobs")[0][1] == 1, WAIT))
            for i in range(100):
                pub.publish("jobs", "job-%d" % i)
            self.assertTrue(done.wait(WAIT))
            self.assertEqual(got, [b"job-%d" % i for i in range(100)])
            pub.close()
        finally:
            t.stop()
            t.join(WAIT)
            p.close()

    def test_several_patterns_match(self):
        p = self.r.pubsub()
        p.psubscribe("a.*", "*.b", "a.b")
        p.subscribe("a.b")
        self.assertEqual(len(next_confirmations(p, 4)), 4)
        self.assertEqual(self.r.publish("a.b", "m"), 4)
        got = {(m["type"], m["pattern"]) for m in (next_message(p) for _ in range(4))}
        self.assertEqual(got, {("message", None), ("pmessage", b"a.*"), ("pmessage", b"*.b"),
                               ("pmessage", b"a.b")})
        p.close()

    def test_unsubscribe_all_confirms_each(self):
        with RespClient(SHARED.port) as c:
            c.send(harness.encode_command("SUBSCRIBE", "c1", "c2", "c3"))
            counts = [c.read_reply()[2] for _ in range(3)]
            self.assertEqual(counts, [1, 2, 3])
            c.send(harness.encode_command("UNSUBSCRIBE"))
            replies = [c.read_reply() for _ in range(3)]
            self.assertEqual(sorted(r[1] for r in replies), [b"c1", b"c2", b"c3"])
            self.assertEqual([r[2] for r in replies], [2, 1, 0])
            self.assertIsNone(c.call("GET", "x"))  # out of the subscriber context

    def test_resp2_subscriber_context(self):
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("SUBSCRIBE", "ch"), [b"subscribe", b"ch", 1])
            self.assertEqual(c.call("GET", "x"), SUBSCRIBE_CONTEXT_ERR)
            self.assertEqual(c.call("PING"), [b"pong", b""])
            self.assertEqual(c.call("PING", "hi"), [b"pong", b"hi"])
            self.assertEqual(c.call("RESET"), "RESET")
            self.assertIsNone(c.call("GET", "x"))
            self.assertEqual(self.r.pubsub_numsub("ch"), [(b"ch", 0)])

    def test_resp3_push_messages(self):
        with RespClient(SHARED.port) as s, RespClient(SHARED.port) as pub:
            s.call("HELLO", 3)
            self.assertEqual(s.call_raw("SUBSCRIBE", "ch"),
                             b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
            self.assertEqual(pub.call("PUBLISH", "ch", "hi"), 1)
            m = s.read_reply()
            self.assertIsInstance(m, Push)
            self.assertEqual(list(m), [b"message", b"ch", b"hi"])
            # any command works; a message published meanwhile arrives as a push before it
            self.assertEqual(pub.call("PUBLISH", "ch", "before-get"), 1)
            s.send(harness.encode_command("GET", "x"))
            self.assertEqual(s.read_reply_bytes(),
                             b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\nbefore-get\r\n")
            self.assertEqual(s.read_reply_bytes(), b"_\r\n")
            self.assertEqual(s.call("PING"), "PONG")
            self.assertEqual(s.call_raw("PSUBSCRIBE", "c?"),
                             b">3\r\n$10\r\npsubscribe\r\n$2\r\nc?\r\n:2\r\n")
            self.assertEqual(pub.call("PUBLISH", "ch", "both"), 2)
            got = [s.read_reply() for _ in range(2)]
            self.assertTrue(all(isinstance(x, Push) for x in got))
            self.assertEqual(sorted(x[0] for x in got), [b"message", b"pmessage"])
            self.assertEqual(s.call_raw("UNSUBSCRIBE"),
                             b">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:1\r\n")

    def test_many_subscribers(self):
        subs = [RespClient(SHARED.port) for _ in range(100)]
        try:
            for i, s in enumerate(subs):
                if i % 2:
                    self.assertEqual(s.call("SUBSCRIBE", "fan"), [b"subscribe", b"fan", 1])
                else:
                    self.assertEqual(s.call("PSUBSCRIBE", "f*"), [b"psubscribe", b"f*", 1])
            self.assertEqual(self.r.publish("fan", "x" * 1000), 100)
            for i, s in enumerate(subs):
                m = s.read_reply()
                self.assertEqual(m[0], b"message" if i % 2 else b"pmessage")
                self.assertEqual(m[-1], b"x" * 1000)
        finally:
            for s in subs:
                s.close()
        # the subscriptions go with the connections
        self.assertTrue(wait_until(
            lambda: self.r.pubsub_numsub("fan") == [(b"fan", 0)] and self.r.pubsub_numpat() == 0,
            WAIT))
        self.assertEqual(self.r.pubsub_channels(), [])

    def test_subscribe_inside_transaction(self):
        with RespClient(SHARED.port) as c:
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SUBSCRIBE", "tx"), "QUEUED")
            self.assertEqual(c.call("PUBLISH", "tx", "self"), "QUEUED")
            # (as Redis 7.0: the message to ourselves sits inside the array, uncounted)
            self.assertEqual(c.call_raw("EXEC"),
                             b"*2\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\ntx\r\n:1\r\n"
                             b"*3\r\n$7\r\nmessage\r\n$2\r\ntx\r\n$4\r\nself\r\n")
            self.assertEqual(c.read_reply_bytes(), b":1\r\n")  # PUBLISH's count ends it
            self.assertEqual(c.call("GET", "x"), SUBSCRIBE_CONTEXT_ERR)


class TestSlowSubscriber(unittest.TestCase):
    def test_subscriber_that_never_reads_is_disconnected(self):
        config = {} if REDIS_MODE else {"pubsub_output_buffer_limit": "1mb"}
        with new_server(config) as srv:
            r = client(srv)
            if REDIS_MODE:
                r.config_set("client-output-buffer-limit", "pubsub 1mb 0 0")
            slow = RespClient(srv.port, rcvbuf=4096)  # never reads after subscribing
            self.assertEqual(slow.call("SUBSCRIBE", "firehose"), [b"subscribe", b"firehose", 1])
            fast = r.pubsub()
            fast.subscribe("control")
            self.assertEqual(len(next_confirmations(fast, 1)), 1)
            payload = b"p" * (64 * 1024)
            sent = 0
            for _ in range(20):  # at most 20 x 16 x 64 KB = 20 MB
                pipe = r.pipeline(transaction=False)
                for _ in range(16):
                    pipe.publish("firehose", payload)
                pipe.execute()
                sent += 16
                if r.pubsub_numsub("firehose") == [(b"firehose", 0)]:
                    break
            self.assertTrue(wait_until(
                lambda: r.pubsub_numsub("firehose") == [(b"firehose", 0)], WAIT),
                "the slow subscriber is still subscribed after %d MB" % (sent // 16))
            self.assertTrue(slow.wait_closed(WAIT))
            slow.close()
            # the server and the other subscribers are fine
            self.assertEqual(r.publish("control", "still here"), 1)
            m = next_message(fast)
            self.assertEqual(m["data"], b"still here")
            self.assertTrue(r.ping())
            fast.close()
            r.close()


if __name__ == "__main__":
    unittest.main()
