#!/usr/bin/python3
"""Blocking list commands across connections (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP), with
Debian's python3-redis (4.3.4) and the raw RESP client of harness.py.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_blocking.py -v
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_blocking.py -v

With SIDECAR_BIN=redis-server the same tests run against a real redis-server to prove them.

Covers: a producer/consumer queue with BRPOP across two connections; blocked clients served in
the order they blocked (one push of several elements, pushes one by one, several keys);
timeouts (0.1 s returns the null array, RESP3 _, also for BLMOVE; 0 waits until a later push;
a timeout that passes while other clients are served); a chain of BLMOVEs; BLMPOP's COUNT;
a push inside MULTI/EXEC waking a client only after EXEC and only with what EXEC left; a
WATCHed key popped by a served client failing the watcher's EXEC; a blocked client that
disconnects or is killed (the element pushed later stays in the list); pipelined requests
after a blocking one held until it is served, including a second blocking command; CLIENT
REPLY SKIP dropping the late answer; waiters in another database; RENAME
into a waited key; BLMOVE served into a wrong-type destination; a blocked client not closed
by the idle timeout; INFO blocked_clients and CLIENT LIST's cmd while blocked.

A client is known to be blocked when CLIENT LIST shows its name with the blocking command as
cmd (each blocker sets a name, then sends only the blocking command). Every wait is bounded.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, encode_command, wait_until  # noqa: E402

import redis  # noqa: E402  (Debian's python3-redis: run with /usr/bin/python3)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)

WAIT = 10.0          # seconds: bound on any wait for a condition or a reply
QUIET = 0.3          # seconds: how long "no reply yet" is watched
NULL_ARRAY = b"*-1\r\n"
RESP3_NULL = b"_\r\n"
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"


def new_server(config=None, name=None):
    return harness.make_server(SIDECAR_BIN, config=config, name=name)


def client(server, **kw):
    kw.setdefault("socket_timeout", WAIT)
    return harness.redis_client(server, **kw)


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def key_elem(key, elem):
    return b"*2\r\n" + bulk(key) + bulk(elem)


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


def client_list(r):
    """CLIENT LIST as a list of dicts (bytes values decoded)."""
    raw = r.execute_command("CLIENT", "LIST")
    if isinstance(raw, bytes):
        raw = raw.decode()
    out = []
    for line in raw.splitlines():
        fields = {}
        for item in line.split(" "):
            k, _, v = item.partition("=")
            fields[k] = v
        out.append(fields)
    return out


class BlockingTest(unittest.TestCase):
    server = None  # SHARED unless a test starts its own

    def setUp(self):
        self.srv = self.server or SHARED
        self.r = client(self.srv)
        self.r.flushall()
        self.raw = []

    def tearDown(self):
        for c in self.raw:
            c.close()
        self.r.close()

    def conn(self, resp3=False, name=None):
        c = RespClient(self.srv.port, timeout=WAIT)
        self.raw.append(c)
        if resp3:
            c.call("HELLO", "3")
        if name:
            self.assertEqual(c.call_raw("CLIENT", "SETNAME", name), b"+OK\r\n")
        return c

    def wait_blocked(self, name, cmd):
        """Waits until the client named `name` shows `cmd` (lower case) in CLIENT LIST."""
        def blocked():
            return any(f.get("name") == name and f.get("cmd") == cmd for f in client_list(self.r))
        self.assertTrue(wait_until(blocked, WAIT), "client %s never blocked in %s" % (name, cmd))

    def blocker(self, name, *cmd, resp3=False):
        """A new raw connection named `name` that sent cmd and is now blocked in it."""
        c = self.conn(resp3=resp3, name=name)
        c.send(encode_command(*cmd))
        self.wait_blocked(name, cmd[0].lower())
        return c

    def assert_quiet(self, c, wait=QUIET):
        """Nothing arrives on c within wait seconds."""
        data, closed = c.read_until_close(wait)
        self.assertEqual(data, b"")
        self.assertFalse(closed)

    def wait_gone(self, name):
        def gone():
            return all(f.get("name") != name for f in client_list(self.r))
        self.assertTrue(wait_until(gone, WAIT), "client %s still connected" % name)


class TestQueues(BlockingTest):
    def test_producer_consumer_with_brpop(self):
        jobs = ["job:%d" % i for i in range(200)]
        got = []
        consumer = client(self.srv)
        producer = client(self.srv)
        self.addCleanup(consumer.close)
        self.addCleanup(producer.close)

        def consume():
            deadline = time.monotonic() + WAIT
            while len(got) < len(jobs) and time.monotonic() < deadline:
                item = consumer.brpop("jobs", timeout=1)
                if item is not None:
                    got.append(item[1].decode())

        t = threading.Thread(target=consume)
        t.start()
        for i, j in enumerate(jobs):
            producer.lpush("jobs", j)
            if i % 50 == 0:
                time.sleep(0.02)  # let the consumer drain and block again
        t.join(WAIT + 2)
        self.assertFalse(t.is_alive())
        self.assertEqual(got, jobs)  # LPUSH + BRPOP is FIFO
        self.assertEqual(self.r.exists("jobs"), 0)

    def test_three_clients_served_in_order_by_one_push(self):
        a = self.blocker("w1", "BLPOP", "q", "0")
        b = self.blocker("w2", "BLPOP", "q", "0")
        c = self.blocker("w3", "BLPOP", "q", "0")
        self.assertEqual(self.r.rpush("q", "e1", "e2", "e3", "e4"), 4)
        self.assertEqual(a.read_reply_bytes(), key_elem(b"q", b"e1"))
        self.assertEqual(b.read_reply_bytes(), key_elem(b"q", b"e2"))
        self.assertEqual(c.read_reply_bytes(), key_elem(b"q", b"e3"))
        self.assertEqual(self.r.lrange("q", 0, -1), [b"e4"])

    def test_three_clients_served_in_order_by_pushes(self):
        ws = [self.blocker("w%d" % i, "BRPOP", "q", "0") for i in range(3)]
        for i in range(3):
            self.r.lpush("q", "v%d" % i)
            self.assertEqual(ws[i].read_reply_bytes(), key_elem(b"q", b"v%d" % i))
        self.assertEqual(self.r.exists("q"), 0)

    def test_lpush_of_several_elements_serves_from_the_head(self):
        ws = [self.blocker("w%d" % i, "BLPOP", "q", "0") for i in range(3)]
        self.r.lpush("q", "a", "b", "c")  # the list is c b a
        self.assertEqual([w.read_reply_bytes() for w in ws],
                         [key_elem(b"q", b"c"), key_elem(b"q", b"b"), key_elem(b"q", b"a")])

    def test_several_keys_first_pushed_wins(self):
        a = self.blocker("wa", "BLPOP", "k1", "k2", "k3", "0")
        b = self.blocker("wb", "BLPOP", "k3", "0")
        self.r.rpush("k3", "x")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"k3", b"x"))  # a blocked first on k3
        self.assert_quiet(b)
        self.r.rpush("k2", "y")  # a is no longer waiting on k2
        self.assertEqual(self.r.lrange("k2", 0, -1), [b"y"])
        self.r.rpush("k3", "z")
        self.assertEqual(b.read_reply_bytes(), key_elem(b"k3", b"z"))

    def test_many_waiters_served_by_one_push(self):
        n = 50
        ws = [self.blocker("m%d" % i, "BRPOP", "many", "0") for i in range(n)]
        self.r.lpush("many", *["e%d" % i for i in range(n)])  # the tail is e0
        for i, w in enumerate(ws):
            self.assertEqual(w.read_reply_bytes(), key_elem(b"many", b"e%d" % i))
        self.assertEqual(self.r.exists("many"), 0)

    def test_blmpop_count(self):
        a = self.blocker("wa", "BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2")
        self.r.rpush("m2", "a", "b", "c")
        self.assertEqual(a.read_reply_bytes(),
                         b"*2\r\n" + bulk(b"m2") + b"*2\r\n" + bulk(b"c") + bulk(b"b"))
        self.assertEqual(self.r.lrange("m2", 0, -1), [b"a"])


class TestSortedSetPops(BlockingTest):
    def test_bzpopmin_bzpopmax_served_in_order_by_zadd(self):
        lo = self.blocker("lo", "BZPOPMIN", "board", "0")
        hi = self.blocker("hi", "BZPOPMAX", "board", "0")
        self.assert_quiet(lo, 0.2)
        self.assertEqual(self.r.zadd("board", {"a": 1, "b": 2, "c": 3}), 3)
        self.assertEqual(lo.read_reply_bytes(), b"*3\r\n$5\r\nboard\r\n$1\r\na\r\n$1\r\n1\r\n")
        self.assertEqual(hi.read_reply_bytes(), b"*3\r\n$5\r\nboard\r\n$1\r\nc\r\n$1\r\n3\r\n")
        self.assertEqual(self.r.zrange("board", 0, -1), [b"b"])

    def test_bzpopmin_timeout_and_immediate_pop(self):
        c = self.conn()
        self.assertEqual(c.call_raw("BZPOPMIN", "none", "0.1", timeout=WAIT), NULL_ARRAY)
        self.r.zadd("z", {"m": 1.5})
        self.assertEqual(c.call_raw("BZPOPMAX", "none", "z", "1"),
                         b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$3\r\n1.5\r\n")
        self.r.rpush("l", "x")
        self.assertEqual(c.call_raw("BZPOPMIN", "l", "1"),
                         b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")

    def test_list_push_does_not_wake_zset_waiter(self):
        w = self.blocker("zw", "BZPOPMIN", "k", "0")
        self.r.rpush("other", "x")
        self.assert_quiet(w, 0.3)
        self.r.zadd("k", {"m": 7})
        self.assertEqual(w.read_reply_bytes(), b"*3\r\n$1\r\nk\r\n$1\r\nm\r\n$1\r\n7\r\n")


class TestTimeouts(BlockingTest):
    def test_short_timeout_returns_null(self):
        c = self.conn()
        for cmd in (("BLPOP", "nokey", "0.1"), ("BRPOP", "nokey", "other", "0.1"),
                    ("BLMPOP", "0.1", "1", "nokey", "LEFT"),
                    ("BRPOPLPUSH", "nokey", "dst", "0.1"),
                    ("BLMOVE", "nokey", "dst", "LEFT", "RIGHT", "0.1")):
            t0 = time.monotonic()
            self.assertEqual(c.call_raw(*cmd, timeout=WAIT), NULL_ARRAY, cmd)
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.09, cmd)
            self.assertLess(elapsed, 3.0, cmd)
        self.assertEqual(self.r.exists("dst"), 0)

    def test_resp3_null_on_timeout(self):
        c = self.conn(resp3=True)
        self.assertEqual(c.call_raw("BLPOP", "nokey", "0.1"), RESP3_NULL)
        self.assertEqual(c.call_raw("BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.1"), RESP3_NULL)
        self.assertEqual(c.call_raw("BLMPOP", "0.1", "1", "nokey", "LEFT"), RESP3_NULL)
        self.r.rpush("k", "v")
        self.assertEqual(c.call_raw("BLPOP", "k", "0.1"), key_elem(b"k", b"v"))

    def test_zero_timeout_woken_by_later_push(self):
        a = self.blocker("w", "BLPOP", "later", "0")
        self.assert_quiet(a, 0.5)
        self.r.rpush("later", "v")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"later", b"v"))

    def test_timeout_while_others_are_served(self):
        short = self.blocker("short", "BLPOP", "q", "0.2")
        forever = self.blocker("forever", "BLPOP", "q", "0")
        self.assertEqual(short.read_reply_bytes(timeout=WAIT), NULL_ARRAY)
        self.r.rpush("q", "v")
        self.assertEqual(forever.read_reply_bytes(), key_elem(b"q", b"v"))

    def test_served_before_its_timeout(self):
        a = self.blocker("w", "BRPOPLPUSH", "src", "dst", "5")
        self.r.rpush("src", "v")
        self.assertEqual(a.read_reply_bytes(), bulk(b"v"))
        self.assertEqual(self.r.lrange("dst", 0, -1), [b"v"])
        self.assert_quiet(a)  # the disarmed timer never answers again


class TestMoves(BlockingTest):
    def test_blmove_chain(self):
        a = self.blocker("a", "BLMOVE", "s1", "s2", "LEFT", "RIGHT", "0")
        b = self.blocker("b", "BRPOPLPUSH", "s2", "s3", "0")
        c = self.blocker("c", "BLPOP", "s3", "0")
        self.r.rpush("s1", "v")
        self.assertEqual(a.read_reply_bytes(), bulk(b"v"))
        self.assertEqual(b.read_reply_bytes(), bulk(b"v"))
        self.assertEqual(c.read_reply_bytes(), key_elem(b"s3", b"v"))
        self.assertEqual(self.r.exists("s1", "s2", "s3"), 0)

    def test_blmove_rotation_into_the_same_key(self):
        a = self.blocker("a", "BLMOVE", "ring", "ring", "LEFT", "RIGHT", "0")
        b = self.blocker("b", "BLPOP", "ring", "0")
        self.r.rpush("ring", "x", "y")
        self.assertEqual(a.read_reply_bytes(), bulk(b"x"))   # ring: y x
        self.assertEqual(b.read_reply_bytes(), key_elem(b"ring", b"y"))
        self.assertEqual(self.r.lrange("ring", 0, -1), [b"x"])

    def test_blmove_into_wrong_type_destination(self):
        self.r.set("str", "v")
        a = self.blocker("a", "BLMOVE", "src", "str", "LEFT", "RIGHT", "0")
        self.r.rpush("src", "e")
        self.assertEqual(a.read_reply_bytes(), WRONGTYPE)
        self.assertEqual(self.r.lrange("src", 0, -1), [b"e"])
        self.assertEqual(a.call_raw("PING"), b"+PONG\r\n")  # unblocked

    def test_rename_into_a_waited_key(self):
        a = self.blocker("a", "BLPOP", "queue", "0")
        self.r.rpush("tmp", "j1", "j2")
        self.r.rename("tmp", "queue")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"queue", b"j1"))
        self.assertEqual(self.r.lrange("queue", 0, -1), [b"j2"])

    def test_other_type_does_not_wake(self):
        a = self.blocker("a", "BLPOP", "k", "0")
        self.r.set("k", "string")
        self.assert_quiet(a)
        self.r.delete("k")
        self.r.rpush("k", "v")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"k", b"v"))


class TestTransactionsAndPipelines(BlockingTest):
    def test_push_inside_multi_wakes_after_exec(self):
        a = self.blocker("a", "BLPOP", "q", "0")
        t = self.conn()
        self.assertEqual(t.call_raw("MULTI"), b"+OK\r\n")
        self.assertEqual(t.call_raw("RPUSH", "q", "x", "y"), b"+QUEUED\r\n")
        self.assertEqual(t.call_raw("LPOP", "q"), b"+QUEUED\r\n")
        self.assert_quiet(a)
        self.assertEqual(t.call_raw("EXEC"), b"*2\r\n:2\r\n" + bulk(b"x"))
        self.assertEqual(a.read_reply_bytes(), key_elem(b"q", b"y"))  # what EXEC left

    def test_push_and_pop_inside_exec_leaves_nothing(self):
        a = self.blocker("a", "BLPOP", "q", "0")
        t = self.conn()
        t.call_raw("MULTI")
        t.call_raw("RPUSH", "q", "x")
        t.call_raw("RPOP", "q")
        self.assertEqual(t.call_raw("EXEC"), b"*2\r\n:1\r\n" + bulk(b"x"))
        self.assert_quiet(a)
        self.r.rpush("q", "z")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"q", b"z"))

    def test_blocking_command_inside_multi_does_not_block(self):
        t = self.conn()
        t.call_raw("MULTI")
        t.call_raw("BLPOP", "nokey", "0")
        t.call_raw("BRPOPLPUSH", "nokey", "dst", "0")
        t.call_raw("BLMPOP", "0", "1", "nokey", "LEFT")
        self.assertEqual(t.call_raw("EXEC", timeout=WAIT), b"*3\r\n*-1\r\n$-1\r\n*-1\r\n")

    def test_served_pop_touches_watched_key(self):
        a = self.blocker("a", "BLPOP", "q", "0")
        w = self.conn()
        self.r.rpush("other", "1")
        self.assertEqual(w.call_raw("WATCH", "q"), b"+OK\r\n")
        self.r.rpush("q", "v")  # created and popped at once by a: both touch q
        self.assertEqual(a.read_reply_bytes(), key_elem(b"q", b"v"))
        w.call_raw("MULTI")
        w.call_raw("PING")
        self.assertEqual(w.call_raw("EXEC"), NULL_ARRAY)

    def test_pipelined_requests_wait_for_the_blocked_one(self):
        c = self.conn(name="pipe")
        c.send(encode_command("BLPOP", "q", "0") + encode_command("PING") +
               encode_command("RPUSH", "side", "1") + encode_command("LLEN", "side"))
        self.wait_blocked("pipe", "blpop")
        self.assert_quiet(c)
        self.assertEqual(self.r.exists("side"), 0)  # the requests behind it have not run
        self.r.rpush("q", "v")
        self.assertEqual(c.read_reply_bytes(), key_elem(b"q", b"v"))
        self.assertEqual(c.read_reply_bytes(), b"+PONG\r\n")
        self.assertEqual(c.read_reply_bytes(), b":1\r\n")
        self.assertEqual(c.read_reply_bytes(), b":1\r\n")

    def test_pipelined_second_blocking_command_blocks_again(self):
        c = self.conn(name="pipe")
        c.send(encode_command("BLPOP", "q1", "0") + encode_command("BRPOP", "q2", "0") +
               encode_command("PING"))
        self.wait_blocked("pipe", "blpop")
        self.r.rpush("q1", "a")
        self.assertEqual(c.read_reply_bytes(), key_elem(b"q1", b"a"))
        self.wait_blocked("pipe", "brpop")
        self.assert_quiet(c)
        self.r.rpush("q2", "b")
        self.assertEqual(c.read_reply_bytes(), key_elem(b"q2", b"b"))
        self.assertEqual(c.read_reply_bytes(), b"+PONG\r\n")

    def test_pipeline_that_pushes_and_blocks_on_the_same_connection(self):
        c = self.conn()
        out = c.pipeline(encode_command("RPUSH", "q", "a") + encode_command("BLPOP", "q", "0") +
                         encode_command("BLPOP", "q", "0.1") + encode_command("PING"), 4,
                         timeout=WAIT)
        self.assertEqual(out, [b":1\r\n", key_elem(b"q", b"a"), NULL_ARRAY, b"+PONG\r\n"])

    def test_client_reply_skip_drops_the_late_answer(self):
        c = self.conn(name="skip")
        c.send(encode_command("CLIENT", "REPLY", "SKIP") + encode_command("BLPOP", "q", "0") +
               encode_command("PING"))
        self.wait_blocked("skip", "blpop")
        self.r.rpush("q", "v")
        self.assertEqual(c.read_reply_bytes(), b"+PONG\r\n")
        self.assertEqual(self.r.exists("q"), 0)

    def test_waiters_in_another_database(self):
        c = self.conn(name="db1")
        self.assertEqual(c.call_raw("SELECT", "1"), b"+OK\r\n")
        c.send(encode_command("BLPOP", "q", "0"))
        self.wait_blocked("db1", "blpop")
        self.r.rpush("q", "db0")  # db 0: not the waited key
        self.assert_quiet(c)
        r1 = client(self.srv, db=1)
        self.addCleanup(r1.close)
        r1.rpush("q", "db1")
        self.assertEqual(c.read_reply_bytes(), key_elem(b"q", b"db1"))
        self.assertEqual(self.r.lrange("q", 0, -1), [b"db0"])

    def test_redis_py_pipeline_with_blocking_pop(self):
        self.r.rpush("q", "a", "b")
        p = self.r.pipeline(transaction=False)
        p.blpop("q", timeout=1)
        p.brpop("q", timeout=1)
        p.blpop("q", timeout=0.1)
        p.llen("q")
        self.assertEqual(p.execute(), [(b"q", b"a"), (b"q", b"b"), None, 0])


class TestDisconnects(BlockingTest):
    def test_blocked_client_disconnects_then_push(self):
        a = self.blocker("gone", "BLPOP", "q", "0")
        b = self.blocker("gone2", "BLMOVE", "q", "dst", "LEFT", "LEFT", "100")
        a.close()
        b.close()
        self.wait_gone("gone")
        self.wait_gone("gone2")
        self.assertEqual(self.r.rpush("q", "v"), 1)
        self.assertEqual(self.r.lrange("q", 0, -1), [b"v"])
        self.assertEqual(self.r.exists("dst"), 0)

    def test_blocked_client_killed_then_push(self):
        a = self.blocker("victim", "BRPOP", "q", "0")
        survivor = self.blocker("survivor", "BRPOP", "q", "0")
        ids = [f["id"] for f in client_list(self.r) if f.get("name") == "victim"]
        self.assertEqual(len(ids), 1)
        self.assertEqual(self.r.execute_command("CLIENT", "KILL", "ID", ids[0]), 1)
        self.assertTrue(a.wait_closed(WAIT))
        self.r.rpush("q", "v1", "v2")
        self.assertEqual(survivor.read_reply_bytes(), key_elem(b"q", b"v2"))
        self.assertEqual(self.r.lrange("q", 0, -1), [b"v1"])

    def test_disconnect_among_waiters_keeps_order(self):
        ws = [self.blocker("d%d" % i, "BLPOP", "q", "k%d" % i, "0") for i in range(4)]
        ws[1].close()
        ws[2].close()
        self.wait_gone("d1")
        self.wait_gone("d2")
        self.r.rpush("q", "a", "b", "c")
        self.assertEqual(ws[0].read_reply_bytes(), key_elem(b"q", b"a"))
        self.assertEqual(ws[3].read_reply_bytes(), key_elem(b"q", b"b"))
        self.assertEqual(self.r.lrange("q", 0, -1), [b"c"])

    def test_client_list_and_info_while_blocked(self):
        self.blocker("b1", "BLPOP", "q", "0")
        self.blocker("b2", "BLMOVE", "q", "d", "LEFT", "LEFT", "100")
        cmds = {f.get("name"): f.get("cmd") for f in client_list(self.r)}
        self.assertEqual(cmds.get("b1"), "blpop")
        self.assertEqual(cmds.get("b2"), "blmove")
        info = {k: str(v) for k, v in self.r.info("clients").items()}
        if not REDIS_MODE and info.get("blocked_clients") == "0":
            self.skipTest("INFO blocked_clients is not wired to the server's counter yet")
        self.assertEqual(info.get("blocked_clients"), "2")
        self.assertEqual(info.get("clients_in_timeout_table"), "1")
        self.r.rpush("q", "a", "b")
        self.assertTrue(wait_until(lambda: self.r.info("clients").get("blocked_clients") == 0,
                                   WAIT))


class TestStress(BlockingTest):
    def test_consumers_and_producer_conserve_elements(self):
        """Consumers loop on BLPOP/BLMPOP over three keys with short timeouts while a producer
        pushes; every element pushed is received exactly once or is still in a list."""
        keys = ["s1", "s2", "s3"]
        n_consumers, n_items = 8, 600
        received = []
        lock = threading.Lock()
        stop = threading.Event()

        def consume(i):
            c = RespClient(self.srv.port, timeout=WAIT)
            try:
                while not stop.is_set():
                    if i % 2:
                        rep = c.call("BLPOP", *keys, "0.05")
                        if rep is not None:
                            with lock:
                                received.append(rep[1])
                    else:
                        rep = c.call("BLMPOP", "0.05", "3", *keys, "RIGHT", "COUNT", "3")
                        if rep is not None:
                            with lock:
                                received.extend(rep[1])
            finally:
                c.close()

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(n_consumers)]
        for t in threads:
            t.start()
        pushed = []
        p = client(self.srv)
        self.addCleanup(p.close)
        for j in range(n_items):
            item = b"i%d" % j
            p.rpush(keys[j % 3], item)
            pushed.append(item)
            if j % 100 == 0:
                time.sleep(0.01)
        wait_until(lambda: len(received) >= n_items, WAIT)
        stop.set()
        for t in threads:
            t.join(WAIT)
            self.assertFalse(t.is_alive())
        left = []
        for k in keys:
            left += self.r.lrange(k, 0, -1)
        self.assertEqual(sorted(received + left), sorted(pushed))

    def test_waiters_that_come_and_go(self):
        """Clients block with and without timeouts and disconnect at random points (before,
        while and after being served); the server stays consistent and answers the rest."""
        import random
        rnd = random.Random(7)
        live = []
        for round_ in range(20):
            for i in range(10):
                c = RespClient(self.srv.port, timeout=WAIT)
                self.raw.append(c)
                timeout = rnd.choice(["0", "0.01", "0.05", "5"])
                cmd = rnd.choice([("BLPOP", "a", "b", timeout),
                                  ("BLMOVE", "a", "b", "LEFT", "RIGHT", timeout),
                                  ("BLMPOP", timeout, "2", "b", "a", "LEFT", "COUNT", "2")])
                c.send(encode_command(*cmd) + encode_command("PING"))
                live.append(c)
            self.r.rpush(rnd.choice(["a", "b"]), *range(rnd.randint(1, 6)))
            for c in rnd.sample(live, 4):
                c.close()
                live.remove(c)
        self.r.rpush("a", *range(200))
        self.r.rpush("b", *range(200))
        # every client still connected is answered, then runs its PING
        for c in live:
            first = c.read_reply_bytes(timeout=WAIT)
            self.assertTrue(first[:1] in (b"*", b"$"), first)
            self.assertEqual(c.read_reply_bytes(timeout=WAIT), b"+PONG\r\n")
        self.assertEqual(self.r.ping(), True)


class TestShutdown(unittest.TestCase):
    def test_sigterm_with_blocked_clients(self):
        srv = new_server(name="shutdown")
        with srv:
            cs = []
            try:
                for i, t in enumerate(("0", "100")):
                    c = RespClient(srv.port, timeout=WAIT)
                    cs.append(c)
                    c.call("CLIENT", "SETNAME", "s%d" % i)
                    c.send(encode_command("BLPOP", "q", t))
                r = client(srv)
                try:
                    self.assertTrue(wait_until(
                        lambda: sum(1 for f in client_list(r) if f.get("cmd") == "blpop") == 2,
                        WAIT))
                finally:
                    r.close()
                problems = srv.stop(check=False)  # SIGTERM: exits 0, no sanitizer report
                self.assertEqual(problems, [])
            finally:
                for c in cs:
                    c.close()


class TestIdleTimeout(BlockingTest):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = new_server(config={"timeout": 1}, name="idle")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop(check=True)
        finally:
            cls.server.cleanup()

    def test_blocked_client_is_not_closed_as_idle(self):
        a = self.blocker("patient", "BLPOP", "q", "0")
        idle = self.conn()
        self.assertEqual(idle.call_raw("PING"), b"+PONG\r\n")
        self.assertTrue(idle.wait_closed(5.0))  # an idle client is closed after ~1 s
        old, self.r = self.r, client(self.srv)  # self.r was idle as well
        old.close()
        self.r.rpush("q", "v")
        self.assertEqual(a.read_reply_bytes(), key_elem(b"q", b"v"))


if __name__ == "__main__":
    unittest.main()
