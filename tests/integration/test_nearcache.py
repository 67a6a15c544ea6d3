#!/usr/bin/python3
"""Near-cache mode (issue 4): the sidecar in front of a real redis-server upstream on a loopback
port, driven with the raw RESP client of harness.py; replies are compared byte for byte.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache.py -v
    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache.py -v -k test_mget_split
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_nearcache.py -v

With SIDECAR_BIN=redis-server the "sidecar" of every test is the upstream itself: each expected
reply is then proven against Redis 7, the assertions about caching (upstream commandstats, INFO
# Cache) are not made, and the tests that only make sense with a sidecar are skipped.

Owns: the test cases below and NearCacheCase, the base the other near-cache test files import
(each test starts its own redis-server upstream and sidecar and stops both by pid, so one test
can run alone with -k and tests never share cache state).
Invariants: traffic only to 127.0.0.1; every wait is bounded (poll helpers with deadlines, reply
reads with timeouts); upstream calls are counted with INFO commandstats on the upstream after
CONFIG RESETSTAT there; the sidecar runs with health checks off (harness NEARCACHE_TEST_DEFAULTS)
so its PINGs never show in those counts.

Covers: every cacheable read is forwarded once then answered locally; writes of each type reach
the upstream and are visible to the next read (also inside one pipeline, and for EVAL);
pass-through and local commands; MGET split into hits plus one upstream MGET; a 100-command
pipeline of hits, misses and writes; single flight for a burst of clients; max_ttl_ms capping and
the upstream's PTTL; negative caching; invalidation by tracking (latency of an upstream write and
of a write through a second sidecar), FLUSHALL, bcast prefixes; write-through (and its corner
cases: SETNX/SET NX not applied, SETEX expiry, tracking of write-through entries); INFO # Upstream
and # Cache; HELLO; MULTI/EXEC, WATCH, BLPOP, SELECT and SUBSCRIBE through the sidecar.
"""

import os
import statistics
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, encode_command  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)
sidecar_only = unittest.skipIf(REDIS_MODE, "sidecar-only (SIDECAR_BIN is redis-server)")

WAIT = 10.0                  # seconds: bound on any reply or condition
INVALIDATION_MEDIAN = 0.010  # seconds: the bound, on the median of several runs
INVALIDATION_WORST = 0.100   # seconds: looser bound on the worst run (CI noise)
INVALIDATION_RUNS = 7
BURST_CLIENTS = 1000         # connections of the single-flight burst

OK = b"+OK\r\n"
QUEUED = b"+QUEUED\r\n"
NIL = b"$-1\r\n"
NULL_ARRAY = b"*-1\r\n"
# The lead's decision for HELLO 3 while an upstream is configured (Redis 7.0.15's own text for an
# unknown version is "-NOPROTO unsupported protocol version").
HELLO3_REFUSED = b"-NOPROTO unsupported protocol version\r\n"  # Redis 7.0 text (HELLO 4 there)


def bulk(v):
    """The RESP2 bulk string of v (None -> the null bulk)."""
    if v is None:
        return NIL
    if isinstance(v, str):
        v = v.encode()
    return b"$%d\r\n%s\r\n" % (len(v), v)


def num(n):
    return b":%d\r\n" % n


def arr(*items):
    """A RESP2 array of items (raw replies, or str/bytes/None taken as bulks)."""
    out = [b"*%d\r\n" % len(items)]
    for it in items:
        out.append(it if isinstance(it, bytes) and it[:1] in b"+-:$*" and it.endswith(b"\r\n")
                   else bulk(it))
    return b"".join(out)


def bulks(*values):
    return b"*%d\r\n" % len(values) + b"".join(bulk(v) for v in values)


def poll(fn, timeout, interval=0.001):
    """Call fn until it returns a truthy value or timeout passes. Returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        elapsed = time.monotonic() - t0
        if v or elapsed >= timeout:
            return v, elapsed
        time.sleep(interval)


class NearCacheCase(unittest.TestCase):
    """Base of the near-cache tests: start_pair() starts an upstream and a sidecar in front of it
    and registers their stop (sidecar stopped with check=True: a non-zero exit or a sanitizer
    report fails the test); conn() opens raw clients closed at the end."""

    def setUp(self):
        if not REDIS_MODE and not os.path.exists(SIDECAR_BIN):
            self.skipTest("sidecar binary not found: %s" % SIDECAR_BIN)
        self.up = None
        self.sc = None

    # -- processes -----------------------------------------------------------------------

    def start_upstream(self, port=None, config=None, name="upstream"):
        up = harness.make_upstream(port=port, config=config, name=name)
        self.addCleanup(self._stop_quietly, up)
        up.start()
        return up

    def _stop_quietly(self, server):
        try:
            if server.alive():
                server.signal(harness.signal.SIGCONT)  # a SIGSTOPped server cannot exit
            server.stop(check=False)
        finally:
            server.cleanup()

    def _stop_checked(self, server):
        try:
            server.stop(check=True)
        finally:
            server.cleanup()

    def start_sidecar(self, up, name="nearcache", wait_ready=True, extra_env=None, **opts):
        """A sidecar in front of up (opts: harness.nearcache_config keys); waits until INFO shows
        its upstream (and subscriber, unless invalidation=ttl) up, then zeroes the upstream's
        commandstats. In REDIS_MODE, up itself."""
        if REDIS_MODE:
            return up
        sc = harness.make_nearcache(SIDECAR_BIN, up.port, name=name, extra_env=extra_env, **opts)
        self.addCleanup(self._stop_checked, sc)
        sc.start()
        if wait_ready:
            harness.nearcache_wait_ready(sc, subscriber=opts.get("invalidation", "tracking") != "ttl")
            if up.alive():
                harness.reset_commandstats(up)
        return sc

    def start_pair(self, upstream_config=None, **opts):
        """Start self.up and self.sc (opts for the sidecar), open self.upc (direct to the
        upstream) and self.c (through the sidecar). Returns (up, sc)."""
        self.up = self.start_upstream(config=upstream_config)
        self.sc = self.start_sidecar(self.up, **opts)
        self.upc = self.conn(self.up)
        self.c = self.conn(self.sc)
        return self.up, self.sc

    def conn(self, server, timeout=WAIT):
        c = RespClient(server.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    # -- counting ------------------------------------------------------------------------

    def reset_calls(self):
        harness.reset_commandstats(self.up)

    def calls(self, command):
        """Calls of command (lowercase, "client|setname" for subcommands) on the upstream since
        the last reset."""
        return harness.commandstats(self.up).get(command.lower(), 0)

    def assertCalls(self, command, expected, msg=None):
        """The upstream saw command exactly expected times (not checked in REDIS_MODE, where the
        client talks to the upstream itself)."""
        if REDIS_MODE:
            return
        got = self.calls(command)
        self.assertEqual(got, expected, "upstream %s calls: %d, expected %d%s"
                         % (command, got, expected, (" (" + msg + ")") if msg else ""))

    def cache_info(self, sc=None):
        return harness.info_dict(sc or self.sc)

    def cache_int(self, field, sc=None):
        return self.info_int(self.cache_info(sc), field)

    def info_int(self, info, field):
        """info[field] as an int, failing (not raising KeyError) when INFO lacks the field."""
        self.assertIn(field, info, "INFO of the sidecar has no %s" % field)
        return int(info[field])

    # -- replies -------------------------------------------------------------------------

    def load(self, *commands):
        """Run commands directly on the upstream; each must not reply with an error."""
        for cmd in commands:
            r = self.upc.call_raw(*cmd)
            self.assertFalse(r.startswith(b"-"), "setup %r failed on the upstream: %r" % (cmd, r))

    def assertReply(self, c, cmd, expected, msg=None):
        got = c.call_raw(*cmd)
        self.assertEqual(got, expected, "%r: %s" % (cmd, msg or "reply"))
        return got

    def wait_reply(self, c, cmd, expected, timeout=1.0, interval=0.001):
        """Poll c with cmd until the reply is expected; returns the seconds it took, or fails
        with the last reply."""
        last = [None]

        def seen():
            last[0] = c.call_raw(*cmd)
            return last[0] == expected
        ok, elapsed = poll(seen, timeout, interval)
        self.assertTrue(ok, "%r did not reply %r within %.3fs (last reply %r)"
                        % (cmd, expected, timeout, last[0]))
        return elapsed

    def wait_upstream_blocked(self, command, timeout=WAIT):
        """Wait until the upstream's CLIENT LIST shows a client whose last command is command."""
        def blocked():
            text = self.upc.call("CLIENT", "LIST")
            text = text.decode() if isinstance(text, bytes) else str(text)
            return any(("cmd=%s " % command) in line + " " for line in text.splitlines())
        ok, _ = poll(blocked, timeout, 0.005)
        self.assertTrue(ok, "no upstream client blocked in %s within %.1fs" % (command, timeout))


# ---------------------------------------------------------------------------------------------
# routing: cacheable reads

READ_FIXTURE = (
    ("SET", "s", "hello world"),
    ("HSET", "h", "f1", "v1", "f2", "v2"),
    ("RPUSH", "l", "a", "b", "c"),
    ("SADD", "st", "m1"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
)

# (test name suffix, command, exact reply with READ_FIXTURE loaded)
READ_CASES = (
    ("get", ("GET", "s"), bulk("hello world")),
    ("hget", ("HGET", "h", "f1"), bulk("v1")),
    ("hgetall", ("HGETALL", "h"), bulks("f1", "v1", "f2", "v2")),
    ("lrange", ("LRANGE", "l", "0", "-1"), bulks("a", "b", "c")),
    ("smembers", ("SMEMBERS", "st"), bulks("m1")),
    ("zrange_withscores", ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
     bulks("a", "1", "b", "2", "c", "3")),
    ("exists", ("EXISTS", "s"), num(1)),
    ("type", ("TYPE", "h"), b"+hash\r\n"),
    ("strlen", ("STRLEN", "s"), num(11)),
    ("getrange", ("GETRANGE", "s", "0", "4"), bulk("hello")),
    ("llen", ("LLEN", "l"), num(3)),
    ("scard", ("SCARD", "st"), num(1)),
    ("zscore", ("ZSCORE", "z", "b"), bulk("2")),
    ("zcard", ("ZCARD", "z"), num(3)),
    ("hmget", ("HMGET", "h", "f1", "nope", "f2"), bulks("v1", None, "v2")),
    ("hexists", ("HEXISTS", "h", "f2"), num(1)),
    ("hlen", ("HLEN", "h"), num(2)),
    ("lindex", ("LINDEX", "l", "1"), bulk("b")),
    ("sismember", ("SISMEMBER", "st", "m1"), num(1)),
    ("zrank", ("ZRANK", "z", "c"), num(2)),
    ("zrevrank", ("ZREVRANK", "z", "c"), num(0)),
    ("zrevrange", ("ZREVRANGE", "z", "0", "1"), bulks("c", "b")),
    ("zrangebyscore", ("ZRANGEBYSCORE", "z", "2", "+inf"), bulks("b", "c")),
)


class ReadRoutingTest(NearCacheCase):
    """One test per cacheable read (test_read_cached_<command>): forwarded once, then hits."""

    def check_read_cached(self, cmd, expected):
        self.start_pair()
        self.load(*READ_FIXTURE)
        # The table itself, proven against the upstream.
        self.assertEqual(self.upc.call_raw(*cmd), expected, "upstream reply to %r" % (cmd,))
        self.reset_calls()
        hits0 = None if REDIS_MODE else self.cache_int("cache_hits")
        for i in range(3):
            self.assertReply(self.c, cmd, expected, "read %d through the sidecar" % (i + 1))
        self.assertCalls(cmd[0], 1, "a cacheable read is forwarded once, then answered locally")
        if not REDIS_MODE:
            self.assertGreaterEqual(self.cache_int("cache_hits") - hits0, 2,
                                    "INFO cache_hits after two repeated reads of %r" % (cmd,))


def _add_read_case(name, cmd, expected):
    def test(self):
        self.check_read_cached(cmd, expected)
    test.__name__ = "test_read_cached_" + name
    test.__doc__ = "%s is forwarded once, then answered from the near-cache" % " ".join(cmd)
    setattr(ReadRoutingTest, test.__name__, test)


for _name, _cmd, _expected in READ_CASES:
    _add_read_case(_name, _cmd, _expected)


# ---------------------------------------------------------------------------------------------
# routing: writes, read-your-writes


class WriteRoutingTest(NearCacheCase):
    """Each write (test_write_<command>) reaches the upstream once, and the reads cached before
    it (primes) reply the new state afterwards (reads_after); the upstream holds it."""

    def check_write(self, setup, primes, write, write_reply, reads_after, upstream_after=()):
        self.start_pair()
        self.load(*setup)
        for cmd, expected in primes:
            self.assertReply(self.c, cmd, expected, "prime read")
            self.assertReply(self.c, cmd, expected, "prime read again (a hit)")
        self.reset_calls()
        self.assertReply(self.c, write, write_reply, "the write through the sidecar")
        self.assertCalls(write[0], 1, "the write reaches the upstream")
        for cmd, expected in reads_after:
            if expected is None:  # order not fixed by Redis: whatever the upstream replies
                expected = self.upc.call_raw(*cmd)
            self.assertReply(self.c, cmd, expected, "read after the write through the sidecar")
        for cmd, expected in upstream_after:
            self.assertReply(self.upc, cmd, expected, "directly on the upstream")

    def test_write_set(self):
        self.check_write(
            setup=[("SET", "k", "v1")],
            primes=[(("GET", "k"), bulk("v1")), (("STRLEN", "k"), num(2))],
            write=("SET", "k", "value2"), write_reply=OK,
            reads_after=[(("GET", "k"), bulk("value2")), (("STRLEN", "k"), num(6))],
            upstream_after=[(("GET", "k"), bulk("value2"))])

    def test_write_del(self):
        self.check_write(
            setup=[("SET", "k", "v1"), ("HSET", "h", "f", "v")],
            primes=[(("GET", "k"), bulk("v1")), (("EXISTS", "k"), num(1)),
                    (("HGET", "h", "f"), bulk("v"))],
            write=("DEL", "k", "h"), write_reply=num(2),
            reads_after=[(("GET", "k"), NIL), (("EXISTS", "k"), num(0)),
                         (("HGET", "h", "f"), NIL)],
            upstream_after=[(("EXISTS", "k", "h"), num(0))])

    def test_write_hset(self):
        self.check_write(
            setup=[("HSET", "h", "f1", "a")],
            primes=[(("HGET", "h", "f1"), bulk("a")), (("HGETALL", "h"), bulks("f1", "a")),
                    (("HLEN", "h"), num(1)), (("HEXISTS", "h", "f2"), num(0))],
            write=("HSET", "h", "f1", "b", "f2", "c"), write_reply=num(1),
            reads_after=[(("HGET", "h", "f1"), bulk("b")),
                         (("HGETALL", "h"), bulks("f1", "b", "f2", "c")),
                         (("HLEN", "h"), num(2)), (("HEXISTS", "h", "f2"), num(1))],
            upstream_after=[(("HGETALL", "h"), bulks("f1", "b", "f2", "c"))])

    def test_write_lpush(self):
        self.check_write(
            setup=[("RPUSH", "l", "a")],
            primes=[(("LRANGE", "l", "0", "-1"), bulks("a")), (("LLEN", "l"), num(1)),
                    (("LINDEX", "l", "0"), bulk("a"))],
            write=("LPUSH", "l", "z"), write_reply=num(2),
            reads_after=[(("LRANGE", "l", "0", "-1"), bulks("z", "a")), (("LLEN", "l"), num(2)),
                         (("LINDEX", "l", "0"), bulk("z"))],
            upstream_after=[(("LRANGE", "l", "0", "-1"), bulks("z", "a"))])

    def test_write_sadd(self):
        self.check_write(
            setup=[("SADD", "s", "a")],
            primes=[(("SISMEMBER", "s", "b"), num(0)), (("SCARD", "s"), num(1)),
                    (("SMEMBERS", "s"), bulks("a"))],
            write=("SADD", "s", "b"), write_reply=num(1),
            reads_after=[(("SISMEMBER", "s", "b"), num(1)), (("SCARD", "s"), num(2)),
                         (("SMEMBERS", "s"), None)],
            upstream_after=[(("SCARD", "s"), num(2))])

    def test_write_zadd(self):
        self.check_write(
            setup=[("ZADD", "z", "1", "a")],
            primes=[(("ZRANGE", "z", "0", "-1", "WITHSCORES"), bulks("a", "1")),
                    (("ZCARD", "z"), num(1)), (("ZSCORE", "z", "b"), NIL),
                    (("ZRANK", "z", "a"), num(0))],
            write=("ZADD", "z", "0", "b"), write_reply=num(1),
            reads_after=[(("ZRANGE", "z", "0", "-1", "WITHSCORES"), bulks("b", "0", "a", "1")),
                         (("ZCARD", "z"), num(2)), (("ZSCORE", "z", "b"), bulk("0")),
                         (("ZRANK", "z", "a"), num(1))],
            upstream_after=[(("ZCARD", "z"), num(2))])

    def test_write_incr(self):
        self.check_write(
            setup=[("SET", "n", "10")],
            primes=[(("GET", "n"), bulk("10")), (("STRLEN", "n"), num(2))],
            write=("INCR", "n"), write_reply=num(11),
            reads_after=[(("GET", "n"), bulk("11"))],
            upstream_after=[(("GET", "n"), bulk("11"))])
        for i in range(12, 20):  # each increment visible to the very next read
            self.assertReply(self.c, ("INCR", "n"), num(i))
            self.assertReply(self.c, ("GET", "n"), bulk(str(i)))
            self.assertReply(self.c, ("STRLEN", "n"), num(2))

    def test_write_expire(self):
        self.check_write(
            setup=[("SET", "k", "v"), ("SET", "gone", "v")],
            primes=[(("GET", "k"), bulk("v")), (("EXISTS", "k"), num(1)),
                    (("GET", "gone"), bulk("v"))],
            write=("EXPIRE", "k", "1"), write_reply=num(1),
            reads_after=[(("GET", "k"), bulk("v"))])
        t0 = time.monotonic()
        # EXPIRE with a non-positive time deletes the key at once.
        self.assertReply(self.c, ("EXPIRE", "gone", "0"), num(1))
        self.assertReply(self.c, ("GET", "gone"), NIL, "EXPIRE 0 deleted the key")
        # k expires upstream 1 s after EXPIRE; the cached copy must not outlive it.
        elapsed = self.wait_reply(self.c, ("GET", "k"), NIL, timeout=3.0, interval=0.02)
        self.assertGreater(time.monotonic() - t0, 0.5, "k disappeared long before its TTL")
        self.assertLess(elapsed, 2.5)
        self.assertReply(self.c, ("EXISTS", "k"), num(0))

    def test_write_rename(self):
        self.check_write(
            setup=[("SET", "a", "va"), ("SET", "b", "vb")],
            primes=[(("GET", "a"), bulk("va")), (("GET", "b"), bulk("vb"))],
            write=("RENAME", "a", "b"), write_reply=OK,
            reads_after=[(("GET", "a"), NIL), (("GET", "b"), bulk("va"))],
            upstream_after=[(("GET", "a"), NIL), (("GET", "b"), bulk("va"))])

    def test_read_your_writes_in_one_pipeline(self):
        self.start_pair()
        self.load(("SET", "k", "v1"), ("HSET", "h", "f", "x"))
        self.assertReply(self.c, ("GET", "k"), bulk("v1"))
        self.assertReply(self.c, ("HGET", "h", "f"), bulk("x"))
        cmds = [("SET", "k", "v2"), ("GET", "k"),
                ("HSET", "h", "f", "y"), ("HGET", "h", "f"),
                ("DEL", "k"), ("GET", "k"),
                ("SET", "k", "v3"), ("GET", "k"), ("STRLEN", "k")]
        expected = [OK, bulk("v2"), num(0), bulk("y"), num(1), NIL, OK, bulk("v3"), num(2)]
        payload = b"".join(encode_command(*c) for c in cmds)
        self.assertEqual(self.c.pipeline(payload, len(cmds), timeout=WAIT), expected)


# ---------------------------------------------------------------------------------------------
# routing: pass-through and local commands


class PassThroughTest(NearCacheCase):
    """Commands that are neither cacheable nor local reply what the upstream replies."""

    def load_keys(self, n=20):
        self.load(*[("SET", "pt:%02d" % i, str(i)) for i in range(n)])

    def test_passthrough_scan(self):
        self.start_pair()
        self.load_keys()
        direct = self.upc.call_raw("SCAN", "0", "COUNT", "1000")
        self.reset_calls()
        got = self.c.call_raw("SCAN", "0", "COUNT", "1000")
        # The same keys as the upstream's own reply; their order is the upstream dict's, which
        # an incremental rehash finishing between the two SCANs changes (seen under valgrind).
        cursor, keys = harness.parse_reply(got)[0]
        dcursor, dkeys = harness.parse_reply(direct)[0]
        self.assertEqual(got[:4], direct[:4])
        self.assertEqual((cursor, sorted(keys)), (dcursor, sorted(dkeys)))
        self.assertEqual(cursor, b"0")
        self.assertEqual(sorted(keys), [b"pt:%02d" % i for i in range(20)])
        self.assertCalls("scan", 1)

    def test_passthrough_keys(self):
        self.start_pair()
        self.load_keys()
        direct = self.upc.call_raw("KEYS", "pt:*")
        self.reset_calls()
        got = self.assertReply(self.c, ("KEYS", "pt:*"), direct)
        self.assertEqual(sorted(harness.parse_reply(got)[0]), [b"pt:%02d" % i for i in range(20)])
        self.assertCalls("keys", 1)

    def test_passthrough_dbsize(self):
        self.start_pair()
        self.load_keys()
        self.assertReply(self.c, ("GET", "pt:00"), bulk("0"))  # something cached locally
        self.reset_calls()
        self.assertReply(self.c, ("DBSIZE",), num(20))
        self.assertReply(self.c, ("DBSIZE",), num(20))
        self.assertCalls("dbsize", 2, "DBSIZE is the upstream's, never cached")

    def test_passthrough_xadd_xlen(self):
        self.start_pair()
        self.assertReply(self.c, ("XADD", "st", "1-1", "f", "v"), bulk("1-1"))
        self.assertReply(self.c, ("XLEN", "st"), num(1))
        self.assertReply(self.c, ("XADD", "st", "2-1", "f", "w"), bulk("2-1"))
        self.assertReply(self.c, ("XLEN", "st"), num(2))
        self.assertReply(self.c, ("XADD", "st", "1-5", "f", "v"),
                         b"-ERR The ID specified in XADD is equal or smaller than the target "
                         b"stream top item\r\n")
        self.assertCalls("xadd", 3)
        self.assertCalls("xlen", 2)
        self.assertReply(self.upc, ("XLEN", "st"), num(2))

    def test_passthrough_eval(self):
        self.start_pair()
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("EVAL", "return redis.call('GET', KEYS[1])", "1", "k"), bulk("v"))
        self.assertReply(self.c, ("EVAL", "return {1, 'two', ARGV[1]}", "0", "three"),
                         arr(num(1), bulk("two"), bulk("three")))
        self.assertReply(self.c, ("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "k", "w"),
                         OK)
        self.assertCalls("eval", 3)
        self.assertReply(self.upc, ("GET", "k"), bulk("w"))

    def test_eval_write_visible_to_next_read(self):
        # The key is cached, then changed by a script run through the sidecar: the next read
        # through the sidecar must see the script's write. (With CLIENT TRACKING ... NOLOOP on
        # the data connection, Redis sends no invalidation for a write made by that same
        # connection, so the sidecar has to drop the script's declared keys itself.)
        self.start_pair()
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "k",
                                  "from-script"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("from-script"))

    def test_passthrough_publish(self):
        self.start_pair()
        sub = self.conn(self.up)
        self.assertEqual(sub.call_raw("SUBSCRIBE", "news"), arr(bulk("subscribe"), bulk("news"), num(1)))
        self.assertReply(self.c, ("PUBLISH", "news", "hello"), num(1))
        self.assertEqual(sub.read_reply_bytes(timeout=WAIT),
                         arr(bulk("message"), bulk("news"), bulk("hello")))
        self.assertCalls("publish", 1)

    def test_passthrough_object_encoding(self):
        self.start_pair()
        self.load(("SET", "i", "12345"), ("SET", "s", "hello"), ("RPUSH", "l", "a"))
        list_encoding = self.upc.call_raw("OBJECT", "ENCODING", "l")  # quicklist in 7.0, listpack in 7.2
        self.reset_calls()
        self.assertReply(self.c, ("OBJECT", "ENCODING", "i"), bulk("int"))
        self.assertReply(self.c, ("OBJECT", "ENCODING", "s"), bulk("embstr"))
        self.assertReply(self.c, ("OBJECT", "ENCODING", "l"), list_encoding)
        self.assertReply(self.c, ("OBJECT", "ENCODING", "nokey"), NIL)
        self.assertCalls("object|encoding", 4)


class LocalCommandTest(NearCacheCase):

    @sidecar_only
    def test_local_commands_do_not_reach_upstream(self):
        self.start_pair()
        self.reset_calls()
        self.assertReply(self.c, ("PING",), b"+PONG\r\n")
        self.assertReply(self.c, ("PING", "hi"), bulk("hi"))
        self.assertReply(self.c, ("ECHO", "hello"), bulk("hello"))
        self.assertReply(self.c, ("CLIENT", "SETNAME", "app1"), OK)
        self.assertReply(self.c, ("CLIENT", "GETNAME"), bulk("app1"))
        count = self.c.call("COMMAND", "COUNT")
        self.assertIsInstance(count, int)
        self.assertGreater(count, 100)
        hello = self.c.call("HELLO", "2")
        self.assertIsInstance(hello, list)
        info = self.c.call("INFO")
        self.assertIsInstance(info, bytes)
        self.assertIn(b"# Upstream\r\n", info)
        self.assertIn(b"# Cache\r\n", info)
        stats = harness.commandstats(self.up)
        for name in ("ping", "echo", "client|setname", "client|getname", "command|count", "hello",
                     "info"):
            self.assertNotIn(name, stats, "%s reached the upstream (commandstats %r)" % (name, stats))


# ---------------------------------------------------------------------------------------------
# MGET split, pipelines


class MgetPipelineTest(NearCacheCase):

    def test_mget_split(self):
        self.start_pair()
        self.load(("MSET", "k1", "v1", "k2", "v2", "k3", "v3", "k4", "v4"))
        self.assertReply(self.c, ("GET", "k1"), bulk("v1"))
        self.assertReply(self.c, ("GET", "k3"), bulk("v3"))
        self.reset_calls()
        monitor = None
        if not REDIS_MODE:
            monitor = self.conn(self.up)
            self.assertEqual(monitor.call_raw("MONITOR"), OK)
        self.assertReply(self.c, ("MGET", "k1", "k2", "k3", "k4"), bulks("v1", "v2", "v3", "v4"))
        self.assertCalls("mget", 1, "one upstream MGET for the missing keys")
        self.assertCalls("get", 0)
        if monitor is not None:
            lines = []

            def mget_seen():
                try:
                    lines.append(str(monitor.read_reply(timeout=0.2)))
                except TimeoutError:
                    pass
                return [ln for ln in lines if '"mget"' in ln.lower()]
            seen, _ = poll(mget_seen, 3.0, 0)
            self.assertTrue(seen, "MONITOR showed no MGET (lines %r)" % lines)
            self.assertTrue(seen[0].lower().endswith('"mget" "k2" "k4"'),
                            "the upstream MGET asks only for the missing keys: %r" % seen[0])
        # Now all four are cached: the same MGET does not reach the upstream again.
        self.assertReply(self.c, ("MGET", "k1", "k2", "k3", "k4"), bulks("v1", "v2", "v3", "v4"))
        self.assertCalls("mget", 1, "MGET of four cached keys")

    def test_mget_of_many_cached_keys(self):
        # More keys than MGET's stack arrays (32), every one a hit: answered from the near-cache
        # alone; then with a hash among them (GET's error, never cached, is MGET's nil).
        self.start_pair()
        keys = ["m%d" % i for i in range(40)]
        self.load(("MSET",) + tuple(x for k in keys for x in (k, "v" + k)), ("HSET", "h", "f", "x"))
        for k in keys:
            self.c.call_raw("GET", k)
        self.reset_calls()
        want = ["v" + k for k in keys]
        self.assertReply(self.c, ("MGET",) + tuple(keys), bulks(*want))
        self.assertCalls("mget", 0, "MGET of cached keys only")
        self.assertCalls("get", 0)
        want.insert(7, None)
        self.assertReply(self.c, ("MGET",) + tuple(keys[:7]) + ("h",) + tuple(keys[7:]),
                         bulks(*want))
        self.assertCalls("mget", 1, "only the hash went to the upstream")

    def test_mget_all_cached_and_missing_keys(self):
        self.start_pair()
        self.load(("SET", "k1", "v1"), ("SET", "k3", "v3"))
        self.assertReply(self.c, ("MGET", "k1", "nokey", "k3"), bulks("v1", None, "v3"))
        self.assertReply(self.c, ("GET", "k1"), bulk("v1"))
        self.reset_calls()
        self.assertReply(self.c, ("MGET", "k3", "k1", "k3"), bulks("v3", "v1", "v3"))
        self.assertCalls("mget", 0, "MGET of cached keys only")
        self.assertCalls("get", 0)

    def test_pipeline_of_hits_misses_and_writes_in_order(self):
        self.start_pair()
        model = {}
        for i in range(5):
            self.load(("SET", "hot%d" % i, "h%d" % i))
            model["hot%d" % i] = "h%d" % i
        for i in range(100):
            self.load(("SET", "cold%d" % i, "c%d" % i))
            model["cold%d" % i] = "c%d" % i
        for i in range(5):  # the hot keys are cached
            self.assertReply(self.c, ("GET", "hot%d" % i), bulk("h%d" % i))
        cmds, expected = [], []
        for i in range(100):
            hot = "hot%d" % ((i // 6) % 5)
            kind = i % 6
            if kind == 0:
                cmd = ("GET", hot)
                exp = bulk(model.get(hot))
            elif kind == 1:
                cmd = ("GET", "cold%d" % i)
                exp = bulk(model.get("cold%d" % i))
            elif kind == 2:
                cmd = ("SET", hot, "p%d" % i)
                model[hot] = "p%d" % i
                exp = OK
            elif kind == 3:
                cmd = ("GET", hot)
                exp = bulk(model[hot])
            elif kind == 4:
                cmd = ("INCR", "ctr")
                model["ctr"] = str(int(model.get("ctr", "0")) + 1)
                exp = num(int(model["ctr"]))
            else:
                keys = (hot, "cold%d" % (i - 4), "missing%d" % i, "ctr")
                cmd = ("MGET",) + keys
                exp = bulks(*[model.get(k) for k in keys])
            cmds.append(cmd)
            expected.append(exp)
        payload = b"".join(encode_command(*c) for c in cmds)
        got = self.c.pipeline(payload, len(cmds), timeout=WAIT)
        for i, (cmd, g, e) in enumerate(zip(cmds, got, expected)):
            self.assertEqual(g, e, "reply %d to %r" % (i, cmd))
        for key, value in model.items():
            self.assertReply(self.upc, ("GET", key), bulk(value), "upstream after the pipeline")


# ---------------------------------------------------------------------------------------------
# single flight


def burst_read(port, cmd, n, timeout=WAIT, connected=None):
    """Connect n clients, call connected() (when given) once they all are, then send cmd on all
    of them, then read one reply from each. Returns the list of raw replies (clients closed)."""
    clients = []
    try:
        for _ in range(n):
            clients.append(RespClient(port, timeout=timeout))
        if connected:
            connected()
        payload = encode_command(*cmd)
        for c in clients:
            c.send(payload)
        deadline = time.monotonic() + timeout
        return [c.read_reply_bytes(timeout=max(0.1, deadline - time.monotonic())) for c in clients]
    finally:
        for c in clients:
            c.close()


class SingleFlightTest(NearCacheCase):

    def test_singleflight_burst_sends_one_get(self):
        self.start_pair()
        self.load(("SET", "cold", "value"), ("EXPIRE", "cold", "1000"))
        self.reset_calls()
        replies = burst_read(self.sc.port, ("GET", "cold"), BURST_CLIENTS)
        self.assertEqual(len(replies), BURST_CLIENTS)
        bad = [r for r in replies if r != bulk("value")]
        self.assertEqual(bad, [], "%d of %d replies wrong" % (len(bad), BURST_CLIENTS))
        self.assertCalls("get", 1, "%d clients reading one cold key" % BURST_CLIENTS)
        if not REDIS_MODE:
            self.assertLessEqual(self.calls("pttl"), 1, "PTTL asked alongside the one miss")

    def test_singleflight_joins_while_upstream_slow(self):
        # The upstream sleeps in DEBUG SLEEP while the burst arrives: the first GET waits there
        # and every other client must join it.
        self.start_pair()
        self.load(("SET", "cold", "value"))
        self.reset_calls()
        joins0 = None if REDIS_MODE else self.cache_int("cache_singleflight_joins")
        slow = self.conn(self.up)
        t0 = []

        def sleep_upstream():
            # only once the clients are connected: 1,000 connects to a sidecar under valgrind
            # outlast the sleep, and the GETs then came after it (a hit each, not a join)
            slow.send(encode_command("DEBUG", "SLEEP", "0.5"))
            time.sleep(0.05)
            t0.append(time.monotonic())
        replies = burst_read(self.sc.port, ("GET", "cold"), BURST_CLIENTS, connected=sleep_upstream)
        self.assertEqual(slow.read_reply_bytes(timeout=WAIT), OK)
        self.assertEqual([r for r in replies if r != bulk("value")], [])
        self.assertCalls("get", 1)
        if not REDIS_MODE:
            joins = self.cache_int("cache_singleflight_joins") - joins0
            self.assertGreaterEqual(joins, BURST_CLIENTS // 2,
                                    "INFO cache_singleflight_joins after a burst of %d "
                                    "(burst sent in %.3fs)" % (BURST_CLIENTS, time.monotonic() - t0[0]))
            self.assertLessEqual(joins, BURST_CLIENTS - 1)


# ---------------------------------------------------------------------------------------------
# TTL capping and negative caching


class TtlTest(NearCacheCase):

    @sidecar_only
    def test_max_ttl_caps_entry_without_upstream_ttl(self):
        # invalidation=ttl: a change made on the upstream is seen only when the local entry
        # expires, max_ttl_ms after it was filled.
        self.start_pair(invalidation="ttl", max_ttl_ms=300)
        self.load(("SET", "k", "old"))
        t_send = time.monotonic()
        self.assertReply(self.c, ("GET", "k"), bulk("old"))
        t_recv = time.monotonic()
        self.load(("SET", "k", "new"))
        samples = []  # (send time, receive time, reply)
        while time.monotonic() < t_recv + 2.0:
            s = time.monotonic()
            r = self.c.call_raw("GET", "k")
            samples.append((s, time.monotonic(), r))
            if r == bulk("new"):
                break
            self.assertEqual(r, bulk("old"), "unexpected reply %r" % r)
            time.sleep(0.01)
        early = [x for x in samples if x[1] < t_send + 0.25 and x[2] != bulk("old")]
        self.assertEqual(early, [], "the new value was served before max_ttl_ms passed")
        switched = [x for x in samples if x[2] == bulk("new")]
        self.assertTrue(switched, "still the old value %.2fs after the fill" % (time.monotonic() - t_recv))
        self.assertGreaterEqual(switched[0][1] - t_send, 0.25)
        self.assertLessEqual(switched[0][1] - t_recv, 1.0, "switch came too late")
        self.assertCalls("get", 2, "one fill, one refill after max_ttl_ms")

    def test_upstream_pttl_caps_entry(self):
        # max_ttl_ms is long; the key's own TTL upstream (200 ms) bounds the local copy.
        self.start_pair(invalidation="ttl", max_ttl_ms=60000)
        self.load(("SET", "k", "v"))
        t_send = time.monotonic()
        self.assertReply(self.upc, ("PEXPIRE", "k", "200"), num(1))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        samples = []
        while time.monotonic() < t_send + 2.0:
            s = time.monotonic()
            r = self.c.call_raw("GET", "k")
            samples.append((s, r))
            if r == NIL:
                break
            self.assertEqual(r, bulk("v"))
            time.sleep(0.005)
        self.assertEqual([x for x in samples if x[0] < t_send + 0.15 and x[1] != bulk("v")], [],
                         "the key disappeared before its upstream TTL")
        self.assertEqual(samples[-1][1], NIL, "still served %.2fs after PEXPIRE 200"
                         % (time.monotonic() - t_send))
        self.assertLessEqual(samples[-1][0] - t_send, 1.0)
        for _ in range(3):
            self.assertReply(self.c, ("GET", "k"), NIL, "stays gone")

    @sidecar_only
    def test_negative_cache_off_by_default(self):
        self.start_pair()
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertCalls("get", 2, "negative_ttl_ms=0: a missing key is asked every time")

    @sidecar_only
    def test_negative_cache_ttl(self):
        self.start_pair(negative_ttl_ms=500)
        t0 = time.monotonic()
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertCalls("get", 1, "negative_ttl_ms=500: the nil is cached")
        time.sleep(max(0.0, t0 + 0.7 - time.monotonic()))
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertCalls("get", 2, "the cached nil expired after negative_ttl_ms")

    def test_negative_cache_invalidated_by_upstream_write(self):
        # Redis tracks keys read while missing, so a SET on the upstream invalidates the nil.
        self.start_pair(negative_ttl_ms=60000)
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.assertReply(self.c, ("GET", "nokey"), NIL)
        self.load(("SET", "nokey", "now"))
        self.wait_reply(self.c, ("GET", "nokey"), bulk("now"), timeout=1.0)


# ---------------------------------------------------------------------------------------------
# coherence


class InvalidationTest(NearCacheCase):

    def measure_invalidation(self, writer, reader, runs=INVALIDATION_RUNS):
        """Seconds from the reply of a SET through writer to the first GET through reader that
        sees it (reader had the old value cached), for each of runs rounds."""
        times = []
        for i in range(runs):
            key, old, new = "k%d" % i, "old%d" % i, "new%d" % i
            self.assertReply(writer, ("SET", key, old), OK)
            self.wait_reply(reader, ("GET", key), bulk(old), timeout=1.0)
            self.assertReply(reader, ("GET", key), bulk(old))  # cached now
            self.assertReply(writer, ("SET", key, new), OK)
            t0 = time.monotonic()
            while True:
                r = reader.call_raw("GET", key)
                if r == bulk(new):
                    times.append(time.monotonic() - t0)
                    break
                self.assertEqual(r, bulk(old), "unexpected reply %r" % r)
                self.assertLess(time.monotonic() - t0, 1.0, "run %d: %s never seen through the "
                                "reader within 1 s" % (i, new))
                time.sleep(0.0002)
        return times

    def assertLatencies(self, times, what):
        med, worst = statistics.median(times), max(times)
        msg = "%s: median %.2f ms, worst %.2f ms (runs: %s)" % (
            what, med * 1e3, worst * 1e3, " ".join("%.2f" % (t * 1e3) for t in times))
        self.assertLess(med, INVALIDATION_MEDIAN, msg)
        self.assertLess(worst, INVALIDATION_WORST, msg)

    def test_invalidation_upstream_set_seen_within_10ms(self):
        self.start_pair()
        self.assertLatencies(self.measure_invalidation(self.upc, self.c),
                             "SET on the upstream seen through the sidecar")

    @sidecar_only
    def test_invalidation_two_sidecars(self):
        self.start_pair()
        sc_b = self.start_sidecar(self.up, name="nearcache-b")
        cb = self.conn(sc_b)
        self.assertLatencies(self.measure_invalidation(self.c, cb),
                             "SET through sidecar A seen through sidecar B")

    def test_invalidation_flushall_on_upstream(self):
        self.start_pair()
        keys = ["f%d" % i for i in range(10)]
        self.load(*[("SET", k, "v" + k) for k in keys])
        for k in keys:
            self.assertReply(self.c, ("GET", k), bulk("v" + k))
        if not REDIS_MODE:
            self.assertGreaterEqual(self.cache_int("cache_keys"), len(keys))
            flushes0 = self.cache_int("cache_flushes")
        self.assertReply(self.upc, ("FLUSHALL",), OK)
        if not REDIS_MODE:
            ok, _ = poll(lambda: self.cache_int("cache_keys") == 0, 1.0, 0.005)
            self.assertTrue(ok, "INFO cache_keys still %d after FLUSHALL upstream"
                            % self.cache_int("cache_keys"))
            self.assertGreaterEqual(self.cache_int("cache_flushes"), flushes0 + 1)
        for k in keys:
            self.wait_reply(self.c, ("GET", k), NIL, timeout=1.0)

    def test_invalidation_bcast_prefix(self):
        self.start_pair(invalidation="bcast", bcast_prefixes="user:")
        if not REDIS_MODE:
            self.assertEqual(self.cache_info().get("upstream_invalidation"), "bcast")
        self.load(("SET", "user:1", "alice"), ("SET", "other:1", "x"))
        if not REDIS_MODE:
            # BCAST announces every write under the prefix, also the load's own SET made before
            # any read: wait for that message, or it may arrive after the first fill and drop it
            # (a correct value dropped, one more miss: not what this test measures).
            ok = harness.wait_until(
                lambda: self.cache_int("cache_invalidation_messages") >= 1, 5.0)
            self.assertTrue(ok, "the BCAST invalidation of the load's SET never arrived")
        self.reset_calls()
        for _ in range(3):
            self.assertReply(self.c, ("GET", "user:1"), bulk("alice"))
        self.assertCalls("get", 1, "user:* is cached in bcast mode")
        for _ in range(3):
            self.assertReply(self.c, ("GET", "other:1"), bulk("x"))
        self.assertCalls("get", 4, "keys outside bcast_prefixes are not cached: each read forwarded")
        self.load(("SET", "user:1", "bob"))
        self.wait_reply(self.c, ("GET", "user:1"), bulk("bob"), timeout=1.0)
        self.load(("SET", "other:1", "y"))
        self.assertReply(self.c, ("GET", "other:1"), bulk("y"))


# ---------------------------------------------------------------------------------------------
# write-through


class WriteThroughTest(NearCacheCase):

    def test_write_through_set_then_get_is_local(self):
        self.start_pair()
        self.assertReply(self.c, ("SET", "k", "v"), OK)
        self.reset_calls()
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertCalls("get", 0, "write_through=yes: the SET's value is stored locally")
        self.assertReply(self.upc, ("GET", "k"), bulk("v"))

    @sidecar_only
    def test_write_through_off_invalidates_only(self):
        self.start_pair(write_through=False)
        self.assertReply(self.c, ("SET", "k", "v"), OK)
        self.reset_calls()
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertCalls("get", 1, "write_through=no: the first GET after SET is a miss")

    def test_write_through_mset(self):
        self.start_pair()
        self.assertReply(self.c, ("MSET", "a", "1", "b", "2"), OK)
        self.reset_calls()
        self.assertReply(self.c, ("MGET", "a", "b"), bulks("1", "2"))
        self.assertReply(self.c, ("GET", "b"), bulk("2"))
        self.assertCalls("mget", 0)
        self.assertCalls("get", 0)

    @sidecar_only
    def test_write_through_mset_bcast_outside_prefixes(self):
        # bcast: keys outside every prefix are never held, so a write neither drops nor guards
        # them; the keys under the prefix are still read back and kept, each with its value
        self.start_pair(invalidation="bcast", bcast_prefixes="user:")
        self.assertReply(self.c, ("MSET", "other:1", "a", "user:1", "b", "other:2", "c",
                                  "user:2", "d"), OK)
        self.reset_calls()
        self.assertReply(self.c, ("GET", "user:1"), bulk("b"))
        self.assertReply(self.c, ("GET", "user:2"), bulk("d"))
        self.assertReply(self.c, ("GET", "other:2"), bulk("c"))
        self.assertCalls("get", 1, "user:1 and user:2 kept by the write-through, other:2 read")

    def test_write_through_conditional_sets_not_applied(self):
        # SETNX / SET NX / SET XX that the upstream does not apply must not store their value.
        self.start_pair()
        self.load(("SET", "k", "orig"))
        self.assertReply(self.c, ("GET", "k"), bulk("orig"))
        self.assertReply(self.c, ("SETNX", "k", "nx"), num(0))
        self.assertReply(self.c, ("GET", "k"), bulk("orig"))
        self.assertReply(self.c, ("SET", "k", "nx2", "NX"), NIL)
        self.assertReply(self.c, ("GET", "k"), bulk("orig"))
        self.assertReply(self.c, ("SET", "absent", "xx", "XX"), NIL)
        self.assertReply(self.c, ("GET", "absent"), NIL)
        self.assertReply(self.c, ("SET", "k", "newer", "GET"), bulk("orig"))
        self.assertReply(self.c, ("GET", "k"), bulk("newer"))
        self.assertReply(self.upc, ("GET", "k"), bulk("newer"))

    def test_write_through_setex_expires_locally(self):
        self.start_pair()
        t0 = time.monotonic()
        self.assertReply(self.c, ("SETEX", "k", "1", "v"), OK)
        self.assertReply(self.c, ("SET", "k2", "v2", "PX", "1000"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("GET", "k2"), bulk("v2"))
        self.wait_reply(self.c, ("GET", "k"), NIL, timeout=3.0, interval=0.02)
        self.assertGreater(time.monotonic() - t0, 0.8, "SETEX 1 key gone too early")
        self.wait_reply(self.c, ("GET", "k2"), NIL, timeout=1.0, interval=0.02)

    @sidecar_only
    def test_write_through_over_a_cached_key(self):
        # A write-through keeps the key's entry for the value read back after the write
        # (withheld while the write is in flight): never the old value meanwhile, no
        # placeholder left when nothing is stored, and the new value's TTL replaces the old
        # one. (Redis also sends the sidecar an invalidation for its own write of a key it
        # tracks, which may drop the new value when it arrives late: only the first write of k
        # is free of that, so the refused-write checks come first and later checks are about
        # values, not hits.)
        self.start_pair()
        self.assertReply(self.c, ("SET", "k", "v1"), OK)
        self.reset_calls()
        self.assertReply(self.c, ("GET", "k"), bulk("v1"))
        self.assertCalls("get", 0, "the write-through's value is kept")
        self.assertEqual(self.cache_int("cache_keys"), 1)
        # a write the upstream refuses on a missing key: its read-back finds nothing, and the
        # entry it withheld is gone (negative_ttl_ms = 0: nothing stored)
        self.assertReply(self.c, ("SET", "x", "xx", "XX"), NIL)
        ok, _ = poll(lambda: self.cache_int("cache_keys") == 1, 1.0, 0.005)
        self.assertTrue(ok, "cache_keys %d after a refused SET XX: a withheld entry stayed"
                        % self.cache_int("cache_keys"))
        self.reset_calls()
        self.assertReply(self.c, ("GET", "x"), NIL)
        self.assertCalls("get", 1, "after a refused write of a missing key it is read upstream")
        # a write the upstream refuses on an existing key: what it holds is read back and kept
        self.assertReply(self.c, ("SET", "k", "nx", "NX"), NIL)
        self.reset_calls()
        self.assertReply(self.c, ("GET", "k"), bulk("v1"))
        self.assertReply(self.c, ("GET", "k"), bulk("v1"))
        # writes over the cached key, each read back in the same pipeline
        cmds = [("SET", "k", "v2"), ("GET", "k"), ("MSET", "k", "v3", "j", "w"), ("MGET", "k", "j"),
                ("SET", "k", "v4"), ("STRLEN", "k"), ("GET", "k")]
        expected = [OK, bulk("v2"), OK, bulks("v3", "w"), OK, num(2), bulk("v4")]
        payload = b"".join(encode_command(*c) for c in cmds)
        self.assertEqual(self.c.pipeline(payload, len(cmds), timeout=WAIT), expected)
        self.assertReply(self.c, ("GET", "k"), bulk("v4"))
        # a short TTL over a key without one expires locally too
        self.assertReply(self.c, ("SET", "k", "short", "PX", "300"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("short"))
        self.wait_reply(self.c, ("GET", "k"), NIL, timeout=2.0, interval=0.02)
        self.assertReply(self.c, ("SET", "t", "a", "PX", "300"), OK)
        self.assertReply(self.c, ("SET", "t", "forever"), OK)
        time.sleep(0.5)
        self.assertReply(self.c, ("GET", "t"), bulk("forever"))

    def test_write_through_entry_invalidated_by_upstream_write(self):
        # A value stored by write-through was never read on the upstream: Redis tracks only
        # keys a connection reads, so the sidecar must make sure it is told of later changes.
        self.start_pair()
        self.assertReply(self.c, ("SET", "k", "mine"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("mine"))
        self.load(("SET", "k", "theirs"))
        self.wait_reply(self.c, ("GET", "k"), bulk("theirs"), timeout=1.0)


# ---------------------------------------------------------------------------------------------
# INFO


CACHE_FIELDS = ("cache_hits", "cache_misses", "cache_hit_ratio", "cache_keys", "cache_evictions",
                "cache_invalidations", "cache_invalidation_messages", "cache_flushes",
                "cache_singleflight_joins", "cache_stale_serves", "cache_fills",
                "cache_fills_discarded")
UPSTREAM_FIELDS = ("upstream_address", "upstream_state", "upstream_connections",
                   "upstream_connections_up", "upstream_subscriber", "upstream_invalidation",
                   "upstream_requests", "upstream_replies", "upstream_reply_errors",
                   "upstream_timeouts", "upstream_reconnects", "upstream_in_flight",
                   "upstream_pinned_clients", "upstream_last_error")


@sidecar_only
class InfoTest(NearCacheCase):

    def test_info_fields(self):
        self.start_pair()
        info = self.cache_info()
        missing = [f for f in CACHE_FIELDS + UPSTREAM_FIELDS if f not in info]
        self.assertEqual(missing, [], "INFO lacks these fields")
        self.assertEqual(info["upstream_address"], "127.0.0.1:%d" % self.up.port)
        self.assertEqual(info["upstream_state"], "up")
        self.assertEqual(info["upstream_subscriber"], "up")
        self.assertEqual(info["upstream_invalidation"], "tracking")
        self.assertEqual(info["upstream_connections"], "1")
        self.assertEqual(info["upstream_connections_up"], "1")
        self.assertEqual(info["upstream_pinned_clients"], "0")
        raw = self.c.call("INFO")
        self.assertLess(raw.index(b"# Upstream\r\n"), len(raw))
        self.assertLess(raw.index(b"# Cache\r\n"), len(raw))

    def test_info_ttl_mode(self):
        self.start_pair(invalidation="ttl")
        info = self.cache_info()
        self.assertEqual(info.get("upstream_invalidation"), "ttl")
        self.assertEqual(info.get("upstream_subscriber"), "off")

    def test_info_hits_misses_ratio(self):
        self.start_pair()
        self.load(("SET", "a", "1"))
        before = self.cache_info()
        for _ in range(4):
            self.assertReply(self.c, ("GET", "a"), bulk("1"))
        after = self.cache_info()
        self.assertEqual(self.info_int(after, "cache_misses") - self.info_int(before, "cache_misses"), 1)
        self.assertEqual(self.info_int(after, "cache_hits") - self.info_int(before, "cache_hits"), 3)
        self.assertEqual(self.info_int(after, "cache_fills") - self.info_int(before, "cache_fills"), 1)
        self.assertEqual(self.info_int(before, "cache_hits"), 0, "a fresh sidecar has no hits")
        self.assertAlmostEqual(float(after.get("cache_hit_ratio", "nan")), 0.75, places=2)
        self.assertGreaterEqual(self.info_int(after, "cache_keys"), 1)

    def test_info_invalidations_after_upstream_write(self):
        self.start_pair()
        self.load(("SET", "a", "1"), ("SET", "b", "2"))
        self.assertReply(self.c, ("GET", "a"), bulk("1"))
        self.assertReply(self.c, ("GET", "b"), bulk("2"))
        before = self.cache_info()
        self.load(("SET", "a", "10"), ("DEL", "b"))

        def counted():
            info = self.cache_info()
            return (self.info_int(info, "cache_invalidations") - self.info_int(before, "cache_invalidations") >= 2
                    and self.info_int(info, "cache_invalidation_messages")
                    > self.info_int(before, "cache_invalidation_messages"))
        ok, _ = poll(counted, 1.0, 0.005)
        self.assertTrue(ok, "INFO after two upstream writes: %r"
                        % {k: v for k, v in self.cache_info().items() if "invalidation" in k})
        self.assertReply(self.c, ("GET", "a"), bulk("10"))
        self.assertReply(self.c, ("GET", "b"), NIL)

    def test_info_upstream_counters_move(self):
        self.start_pair()
        before = self.cache_info()
        self.assertReply(self.c, ("SET", "a", "1"), OK)
        self.assertReply(self.c, ("INCR", "counter"), num(1))
        self.assertReply(self.c, ("HSET", "a", "f", "v"),
                         b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
        after = self.cache_info()
        self.assertGreaterEqual(self.info_int(after, "upstream_requests") - self.info_int(before, "upstream_requests"), 3)
        self.assertGreaterEqual(self.info_int(after, "upstream_replies") - self.info_int(before, "upstream_replies"), 3)
        self.assertGreaterEqual(self.info_int(after, "upstream_reply_errors")
                                - self.info_int(before, "upstream_reply_errors"), 1)
        self.assertEqual(after.get("upstream_in_flight"), "0")


# ---------------------------------------------------------------------------------------------
# HELLO


class HelloTest(NearCacheCase):

    @sidecar_only
    def test_hello3_refused_with_upstream(self):
        self.start_pair()
        self.assertReply(self.c, ("HELLO", "3"), HELLO3_REFUSED)
        # The connection stays open and in RESP2.
        self.assertReply(self.c, ("PING",), b"+PONG\r\n")
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))
        self.assertReply(self.c, ("HGETALL", "nokey"), b"*0\r\n")

    def test_hello2_and_hello(self):
        self.start_pair()
        for cmd in (("HELLO", "2"), ("HELLO",)):
            r = self.c.call(*cmd)
            self.assertIsInstance(r, list, "%r replies a RESP2 array: %r" % (cmd, r))
            fields = dict(zip(r[0::2], r[1::2]))
            self.assertEqual(fields.get(b"proto"), 2, "%r: %r" % (cmd, r))
            self.assertIn(b"server", fields)
            self.assertIn(b"version", fields)
        self.load(("SET", "k", "v"))
        self.assertReply(self.c, ("GET", "k"), bulk("v"))


# ---------------------------------------------------------------------------------------------
# stateful commands (pinned connections)


class StatefulTest(NearCacheCase):

    def test_multi_exec(self):
        self.start_pair()
        self.load(("SET", "k", "old"))
        self.assertReply(self.c, ("GET", "k"), bulk("old"))  # cached before the transaction
        self.assertReply(self.c, ("MULTI",), OK)
        self.assertReply(self.c, ("SET", "k", "1"), QUEUED)
        self.assertReply(self.c, ("INCR", "k"), QUEUED)
        self.assertReply(self.c, ("GET", "k"), QUEUED)
        self.assertReply(self.c, ("EXEC",), arr(OK, num(2), bulk("2")))
        self.assertReply(self.c, ("GET", "k"), bulk("2"))
        self.assertReply(self.upc, ("GET", "k"), bulk("2"))
        # DISCARD drops the queue; the client is usable afterwards.
        self.assertReply(self.c, ("MULTI",), OK)
        self.assertReply(self.c, ("SET", "k", "discarded"), QUEUED)
        self.assertReply(self.c, ("DISCARD",), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("2"))
        self.assertReply(self.upc, ("GET", "k"), bulk("2"))

    def test_transaction_opened_behind_another_in_one_read(self):
        """MULTI..EXEC MULTI in one read, the rest of the second transaction after all four
        replies: the first EXEC's reply must not end the second MULTI (the commands after it
        ran outside the transaction on the shared links, and EXEC executed an empty one)."""
        self.start_pair()
        self.c.send(b"".join(encode_command(*a) for a in
                             (("MULTI",), ("SET", "k", "1"), ("EXEC",), ("MULTI",))))
        for expected in (OK, QUEUED, arr(OK), OK):
            self.assertEqual(self.c.read_reply_bytes(timeout=WAIT), expected)
        self.assertReply(self.c, ("SET", "k", "2"), QUEUED)
        self.assertReply(self.c, ("INCR", "n"), QUEUED)
        self.assertReply(self.c, ("ECHO", "hi"), QUEUED)  # served here outside MULTI
        self.assertReply(self.c, ("EXEC",), arr(OK, num(1), bulk("hi")))
        self.assertReply(self.c, ("GET", "k"), bulk("2"))
        self.assertReply(self.upc, ("GET", "n"), bulk("1"))

    def test_watch_conflict_gives_null_array(self):
        self.start_pair()
        self.load(("SET", "k", "0"))
        self.assertReply(self.c, ("GET", "k"), bulk("0"))
        self.assertReply(self.c, ("WATCH", "k"), OK)
        self.load(("SET", "k", "changed"))
        self.assertReply(self.c, ("MULTI",), OK)
        self.assertReply(self.c, ("SET", "k", "mine"), QUEUED)
        self.assertReply(self.c, ("EXEC",), NULL_ARRAY)
        self.assertReply(self.upc, ("GET", "k"), bulk("changed"))
        self.wait_reply(self.c, ("GET", "k"), bulk("changed"), timeout=1.0)
        # Without a conflict the same transaction commits.
        self.assertReply(self.c, ("WATCH", "k"), OK)
        self.assertReply(self.c, ("MULTI",), OK)
        self.assertReply(self.c, ("SET", "k", "mine"), QUEUED)
        self.assertReply(self.c, ("EXEC",), arr(OK))
        self.assertReply(self.c, ("GET", "k"), bulk("mine"))

    def test_blpop_served_by_upstream_push(self):
        self.start_pair()
        self.c.send(encode_command("BLPOP", "q", "5"))
        self.wait_upstream_blocked("blpop")
        self.assertReply(self.upc, ("LPUSH", "q", "x"), num(1))
        self.assertEqual(self.c.read_reply_bytes(timeout=WAIT), bulks("q", "x"))
        self.assertReply(self.upc, ("LLEN", "q"), num(0))
        self.assertReply(self.c, ("PING",), b"+PONG\r\n")

    def test_blpop_served_by_push_through_sidecar(self):
        self.start_pair()
        other = self.conn(self.sc)
        self.c.send(encode_command("BLPOP", "q", "5"))
        self.wait_upstream_blocked("blpop")
        self.assertReply(other, ("RPUSH", "q", "a", "b"), num(2))
        self.assertEqual(self.c.read_reply_bytes(timeout=WAIT), bulks("q", "a"))
        self.assertReply(other, ("LRANGE", "q", "0", "-1"), bulks("b"))

    def test_blpop_timeout_longer_than_op_timeout(self):
        self.start_pair(op_timeout_ms=300)
        t0 = time.monotonic()
        self.assertReply(self.c, ("BLPOP", "empty", "1"), NULL_ARRAY)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)
        self.assertReply(self.c, ("PING",), b"+PONG\r\n")

    def test_select_db1(self):
        self.start_pair()
        self.load(("SET", "k", "db0"))
        self.assertReply(self.c, ("GET", "k"), bulk("db0"))  # cached for db 0
        self.assertReply(self.c, ("SELECT", "1"), OK)
        self.assertReply(self.c, ("GET", "k"), NIL)
        self.assertReply(self.c, ("SET", "k", "db1"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("db1"))
        direct = self.conn(self.up)
        self.assertReply(direct, ("SELECT", "1"), OK)
        self.assertReply(direct, ("GET", "k"), bulk("db1"))
        self.assertReply(self.upc, ("GET", "k"), bulk("db0"))
        self.assertReply(self.c, ("SELECT", "0"), OK)
        self.assertReply(self.c, ("GET", "k"), bulk("db0"))
        # Another client of the sidecar was never in db 1.
        self.assertReply(self.conn(self.sc), ("GET", "k"), bulk("db0"))

    def test_subscribe_relay(self):
        self.start_pair()
        self.assertReply(self.c, ("SUBSCRIBE", "ch"), arr(bulk("subscribe"), bulk("ch"), num(1)))
        # The relay subscribes upstream a moment later: publish until the upstream counts a
        # receiver (messages published before that reached nobody).
        got, _ = poll(lambda: self.upc.call("PUBLISH", "ch", "hello") >= 1, 3.0, 0.02)
        self.assertTrue(got, "no subscriber to ch on the upstream within 3 s")
        self.assertEqual(self.c.read_reply_bytes(timeout=WAIT),
                         arr(bulk("message"), bulk("ch"), bulk("hello")))
        self.assertReply(self.upc, ("PUBLISH", "ch", "again"), num(1))
        self.assertEqual(self.c.read_reply_bytes(timeout=WAIT),
                         arr(bulk("message"), bulk("ch"), bulk("again")))
        self.assertReply(self.c, ("UNSUBSCRIBE", "ch"), arr(bulk("unsubscribe"), bulk("ch"), num(0)))
        self.assertReply(self.c, ("PING",), b"+PONG\r\n")


if __name__ == "__main__":
    unittest.main()
