#!/usr/bin/python3
"""Hostile clients against the sidecar (issue 7, "Bad input"): absurd lengths, endless lines,
trickled requests, clients that never read, ten thousand connections at once, half-closed and
reset sockets, a query buffer over its limit.

    SIDECAR_BIN=./build/sidecar /usr/bin/python3 tests/integration/test_hostile.py -v
    SIDECAR_ASAN=1 ASAN_OPTIONS=detect_leaks=1 SIDECAR_BIN=build/asan/sidecar \
        /usr/bin/python3 tests/integration/test_hostile.py -v

The test of a known gap (the pub/sub relay confirms SUBSCRIBE before the upstream has subscribed)
is skipped unless HOSTILE_KNOWN_GAPS=1 (the skip reason says what). With SIDECAR_BIN=redis-server
the whole suite is skipped: it compares the sidecar with redis-server itself.

Every reply a Redis client can see is compared with a real redis-server 7 fed the same bytes
where both have the same limit. After every case the sidecar must still answer PING on a new
connection, INFO clients must be back to its baseline and its memory (INFO used_memory, and the
process's VmRSS) must not have grown beyond the tolerances below. The cases that depend on the
near-cache path (forwarded replies, pinned blocking commands, verbatim forwarding) run in both
modes: standalone and in front of a redis-server upstream.

Memory tolerances, and why:
- USED_MEMORY_SLACK (64 KB): used_memory is the store's bytes plus every connected client's
  buffer capacities. After a case the same single INFO connection is connected as for the
  baseline and the test keys are deleted (in near-cache mode the near-cache is emptied, once
  every forwarded request has been answered), so the only legitimate difference is that
  connection's own buffers (a query buffer of one 16 KB read, an output buffer kept up to 16 KB).
- RSS: malloc (glibc) keeps freed memory of a burst in its arenas and raises its mmap threshold
  after freeing a big block, so RSS after one round of a case says little: the first round's
  256 KB buffers are mmapped and given back, the next ones come from the heap, which keeps them
  for reuse (a plateau of about what one round used). Each memory case therefore runs
  WARMUP_ROUNDS (2) rounds first, takes the baseline after them, runs ROUNDS more rounds
  and requires RSS <= baseline + RSS_SLACK (4 MB). A leak of what a round holds (at least one
  1 MB output buffer, or a query buffer of 1 MB) would add ROUNDS MB at least and fail it. Under
  ASan (SIDECAR_ASAN=1) freed memory sits in ASan's quarantine (256 MB by default) by design,
  and under valgrind (SIDECAR_VALGRIND=1) VmRSS is valgrind's own with its freed-block queue:
  RSS says nothing there and is not checked; leaks are LeakSanitizer's and memcheck's job, and
  used_memory is still checked.
"""

import errno
import os
import resource
import select
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, encode_command, parse_info, wait_until  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
ASAN = os.environ.get("SIDECAR_ASAN", "0") == "1"
# SIDECAR_VALGRIND=1: SIDECAR_BIN is a script that execs valgrind on the sidecar (same pid),
# e.g. `exec valgrind --leak-check=full --error-exitcode=99 build/sidecar "$@"`; a valgrind
# error makes the sidecar exit 99 at SIGTERM, which fails the class that started it.
VALGRIND = os.environ.get("SIDECAR_VALGRIND", "0") == "1"
SLOW = 4.0 if (ASAN or VALGRIND) else 1.0   # timing bounds stretch for instrumented builds

MAXCLIENTS_ERR = b"-ERR max number of clients reached\r\n"
USED_MEMORY_SLACK = 64 * 1024
RSS_SLACK = 4 * 1024 * 1024
ROUNDS = 3
WARMUP_ROUNDS = 2
MB = 1024 * 1024
CLOSE_WAIT = 5.0 * SLOW      # seconds for the server to close a connection it should close
SETTLE = 10.0 * SLOW         # seconds for INFO clients to come back to its baseline


def proto_err(text):
    return b"-ERR Protocol error: " + text + b"\r\n"


# ---------------------------------------------------------------------------------------------
# servers shared by the module: a redis-server to compare against, started on first use


REF = None


def ref_server():
    global REF
    if REF is None:
        REF = harness.RedisServer(name="reference")
        REF.start()
    return REF


def setUpModule():
    if not os.path.exists(SIDECAR_BIN):
        raise unittest.SkipTest("sidecar binary not found: %s" % SIDECAR_BIN)
    if harness.is_redis_binary(SIDECAR_BIN):
        raise unittest.SkipTest("sidecar-only suite: it compares the sidecar with redis-server")


def tearDownModule():
    if REF is not None:
        try:
            REF.stop(check=False)
        finally:
            REF.cleanup()


# ---------------------------------------------------------------------------------------------
# helpers


def vm_field(pid, name):
    """A /proc/<pid>/status memory field (VmRSS, VmHWM) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s for pid %d" % (name, pid))


def vmrss(pid):
    return vm_field(pid, "VmRSS")


def conn(server, timeout=None):
    """A RespClient to server, authenticated when the test gave the server a `password`."""
    c = RespClient(server.port, timeout=timeout or 5.0 * SLOW)
    password = getattr(server, "password", None)
    if password:
        try:
            reply = c.call("AUTH", password)
        except Exception:
            c.close()
            raise
        if reply != "OK":
            c.close()
            raise AssertionError("AUTH on %s: %r" % (server.name, reply))
    return c


def info(server, section=None):
    with conn(server) as c:
        raw = c.call("INFO", section) if section else c.call("INFO")
    if isinstance(raw, harness.Error):
        raise AssertionError("INFO on %s: %s" % (server.name, raw))
    return parse_info(raw)


def call(server, *args, timeout=None):
    with conn(server, timeout) as c:
        return c.call(*args)


def exchange(port, data, wait=CLOSE_WAIT, chunk=None):
    """Sends data on a new connection, then reads until the server closes or `wait` passes.
    Returns (bytes received, closed by the server)."""
    with RespClient(port, timeout=wait) as c:
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    c.send(data[i:i + chunk])
            else:
                c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server before everything was sent: what it sent still counts
        return c.read_until_close(wait)


def exchange_expect_close(port, data, chunk=None):
    return exchange(port, data, CLOSE_WAIT, chunk)


def config_set(server, name, value):
    reply = call(server, "CONFIG", "SET", name, value)
    if reply != "OK":
        raise AssertionError("CONFIG SET %s %s on %s: %r" % (name, value, server.name, reply))


class Snapshot:
    def __init__(self, server):
        i = info(server)
        self.clients = int(i["connected_clients"])
        self.used = int(i["used_memory"])
        self.blocked = int(i.get("blocked_clients", "0"))
        self.rss = vmrss(server.pid)


class HostileCase(unittest.TestCase):
    """One sidecar per class (standalone unless NEARCACHE); every test ends with check_back()."""

    NEARCACHE = False
    CONFIG = {}

    @classmethod
    def setUpClass(cls):
        cls.upstream = None
        if cls.NEARCACHE:
            cls.upstream = harness.make_upstream()
            cls.upstream.start()
            cls.sidecar = harness.make_nearcache(SIDECAR_BIN, cls.upstream.port, name="hostile-nc",
                                                 **cls.CONFIG)
            cls.sidecar.start(ready_timeout=10.0 * SLOW)
            harness.nearcache_wait_ready(cls.sidecar, timeout=10.0 * SLOW)
        else:
            cls.sidecar = harness.SidecarServer(SIDECAR_BIN, config=dict(cls.CONFIG),
                                                name="hostile")
            cls.sidecar.start(ready_timeout=10.0 * SLOW)

    @classmethod
    def tearDownClass(cls):
        try:
            problems = cls.sidecar.stop(check=False)
        finally:
            cls.sidecar.cleanup()
            if cls.upstream is not None:
                cls.upstream.stop(check=False)
                cls.upstream.cleanup()
        if problems:
            raise harness.ServerError("; ".join(problems) + "\n--- stderr ---\n"
                                      + harness._tail(cls.sidecar.stderr_path))

    def setUp(self):
        self.assertTrue(self.sidecar.alive(), "the sidecar died in an earlier test")
        # Between tests nobody is connected: the baseline is the measuring connection alone.
        self.wait_clients(1)
        self.base = self.snapshot()
        self.base.clients = 1

    def snapshot(self):
        """A Snapshot of the sidecar at rest. In near-cache mode the store holds whatever
        replies happened to be cached, so it is emptied first: a GET of a missing key is
        answered after every request forwarded before it (one ordered data connection), then
        SIDECAR FLUSH drops the near-cache."""
        if self.upstream is not None:
            self.assertIsNone(call(self.sidecar, "GET", "settle:%f" % time.monotonic(),
                                   timeout=20.0 * SLOW))
            self.assertEqual(call(self.sidecar, "SIDECAR", "FLUSH"), "OK")
        return Snapshot(self.sidecar)

    def tearDown(self):
        # Keys written by a test are not part of the memory that must come back.
        if self.sidecar.alive():
            call(self.sidecar, "FLUSHALL")
            if self.upstream is not None:
                call(self.upstream, "FLUSHALL")

    # -- the checks every case ends with

    def wait_clients(self, expected, timeout=SETTLE):
        """Waits until INFO clients shows `expected` connections (the asking one included). A
        connection the test closed a moment ago may still be counted until the sidecar reads
        its EOF, so only the wait is asserted, never one reading."""
        seen = []

        def check():
            seen.append(int(info(self.sidecar, "clients")["connected_clients"]))
            return seen[-1] == expected
        self.assertTrue(wait_until(check, timeout, interval=0.05),
                        "connected_clients did not come back to %d (last seen %s)"
                        % (expected, seen[-3:]))

    def check_back(self, base=None, keys_deleted=()):
        """PING on a new connection, INFO clients back to the baseline, no blocked client left,
        used_memory within USED_MEMORY_SLACK and RSS within RSS_SLACK of base (default: the
        setUp baseline); keys_deleted are deleted before measuring."""
        base = base or self.base
        self.assertTrue(self.sidecar.alive(), "sidecar exited:\n" + harness._tail(self.sidecar.stderr_path))
        self.assertEqual(call(self.sidecar, "PING"), "PONG")
        self.wait_clients(base.clients)
        for k in keys_deleted:
            call(self.sidecar, "DEL", k)
        now = self.snapshot()
        self.assertEqual(now.blocked, base.blocked, "blocked_clients")
        self.assertLessEqual(now.used, base.used + USED_MEMORY_SLACK,
                             "used_memory grew from %d to %d" % (base.used, now.used))
        if not (ASAN or VALGRIND):   # see the module docstring
            self.assertLessEqual(now.rss, base.rss + RSS_SLACK, "VmRSS grew from %d to %d "
                                 "(tolerance %d)" % (base.rss, now.rss, RSS_SLACK))
        return now

    def rounds(self, one_round):
        """A memory case: WARMUP_ROUNDS rounds, the baseline, ROUNDS rounds, then check_back with
        the baseline taken after the warm-up (see the module docstring). The keys a round
        reads stay in place throughout, so they are part of both measurements."""
        for _ in range(WARMUP_ROUNDS):
            one_round()
        self.wait_clients(self.base.clients)
        warm = self.snapshot()
        warm.clients = self.base.clients
        for _ in range(ROUNDS):
            one_round()
        self.check_back(base=warm)


# ---------------------------------------------------------------------------------------------
# protocol errors: exact Redis replies, the connection closed, nothing allocated for the claim


class TestProtocolErrors(HostileCase):
    CONFIG = {"proto_max_bulk_len": "1mb"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        config_set(ref_server(), "proto-max-bulk-len", "1mb")

    @classmethod
    def tearDownClass(cls):
        try:
            config_set(ref_server(), "proto-max-bulk-len", "512mb")
        finally:
            super().tearDownClass()

    def compare(self, cases):
        """Each payload gets the reply redis-server gives (expected names it), then the close."""
        for payload, expected in cases:
            with self.subTest(payload=payload[:60]):
                ref = exchange_expect_close(REF.port, payload)
                self.assertEqual(ref, (expected, True), "redis-server itself (test premise)")
                got = exchange_expect_close(self.sidecar.port, payload)
                self.assertEqual(got, ref)
        self.check_back()

    def test_bulk_length_2_63(self):
        self.compare([(b"*1\r\n$9223372036854775808\r\n", proto_err(b"invalid bulk length")),
                      (b"*2\r\n$3\r\nGET\r\n$9223372036854775808\r\nxx", proto_err(b"invalid bulk length"))])

    def test_bulk_length_2_63_minus_1(self):
        self.compare([(b"*1\r\n$9223372036854775807\r\n", proto_err(b"invalid bulk length"))])

    def test_bulk_length_2_64(self):
        self.compare([(b"*1\r\n$18446744073709551616\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$18446744073709551615\r\n", proto_err(b"invalid bulk length"))])

    def test_bulk_length_above_proto_max_bulk_len(self):
        self.compare([(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n", proto_err(b"invalid bulk length")),
                      (b"*2\r\n$4\r\nECHO\r\n$536870912\r\n", proto_err(b"invalid bulk length"))])

    def test_negative_bulk_lengths(self):
        self.compare([(b"*1\r\n$-1\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$-2\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$-0\r\n", proto_err(b"invalid bulk length")),
                      (b"*2\r\n$4\r\nECHO\r\n$-9223372036854775808\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$-9223372036854775809\r\n", proto_err(b"invalid bulk length"))])

    def test_multibulk_count_over_the_limit(self):
        self.compare([(b"*2147483648\r\n", proto_err(b"invalid multibulk length")),
                      (b"*9223372036854775808\r\n", proto_err(b"invalid multibulk length")),
                      (b"*18446744073709551616\r\n", proto_err(b"invalid multibulk length"))])

    def test_negative_multibulk_counts_are_skipped(self):
        # Redis skips a count <= 0 without a reply (processMultibulkBuffer): the next request on
        # the same connection is served and the connection stays open.
        for payload in (b"*-1\r\nPING\r\n", b"*-2\r\nPING\r\n", b"*0\r\nPING\r\n",
                        b"*-9223372036854775808\r\n*1\r\n$4\r\nPING\r\n"):
            with self.subTest(payload=payload):
                ref = self.ask_both(payload)
                self.assertEqual(ref, b"+PONG\r\n")
        self.check_back()

    def ask_both(self, payload):
        out = []
        for port in (REF.port, self.sidecar.port):
            with RespClient(port, timeout=5.0 * SLOW) as c:
                c.send(payload)
                out.append(c.read_reply_bytes())
                self.assertEqual(c.call("PING"), "PONG", "connection still open")
        self.assertEqual(out[1], out[0])
        return out[0]

    def test_non_numeric_lengths(self):
        self.compare([(b"*abc\r\n", proto_err(b"invalid multibulk length")),
                      (b"*\r\n", proto_err(b"invalid multibulk length")),
                      (b"*+1\r\n$4\r\nPING\r\n", proto_err(b"invalid multibulk length")),
                      (b"*01\r\n$4\r\nPING\r\n", proto_err(b"invalid multibulk length")),
                      (b"*1 \r\n$4\r\nPING\r\n", proto_err(b"invalid multibulk length")),
                      (b"*0x10\r\n", proto_err(b"invalid multibulk length")),
                      (b"*1\r\n$abc\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$+4\r\nPING\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$04\r\nPING\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$ 4\r\nPING\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n$4.0\r\nPING\r\n", proto_err(b"invalid bulk length")),
                      (b"*1\r\n:4\r\nPING\r\n", proto_err(b"expected '$', got ':'")),
                      (b"*1\r\nPING\r\n", proto_err(b"expected '$', got 'P'"))])

    def test_error_after_good_requests_keeps_their_replies(self):
        # Replies to the requests before the bad one are delivered, then the error, then close.
        payload = (encode_command("SET", "k", "v") + encode_command("GET", "k")
                   + b"*1\r\n$9223372036854775808\r\n" + encode_command("PING"))
        self.compare([(payload, b"+OK\r\n$1\r\nv\r\n" + proto_err(b"invalid bulk length"))])

    def test_claimed_sizes_allocate_nothing(self):
        # The largest claims the limits let through (proto_max_bulk_len at its maximum, a count
        # of INT_MAX) with only a few bytes behind them: memory grows by at most one read
        # buffer while the server waits, and all of it comes back when the client leaves.
        # Sidecar only: redis-server reserves a big bulk's claimed size at once
        # (sdsMakeRoomForNonGreedy), which fails for a claim this size.
        config_set(self.sidecar, "proto-max-bulk-len", str(2 ** 63 - 1))
        try:
            claims = [b"*2147483647\r\n",
                      b"*2147483647\r\n$1\r\na\r\n$1\r\nb\r\n",
                      b"*2\r\n$3\r\nGET\r\n$9223372036854775807\r\n" + b"x" * 4096,
                      b"*2\r\n$3\r\nGET\r\n$9223372036854775805\r\n" + b"x" * 4096]
            for payload in claims:
                with self.subTest(payload=payload[:40]):
                    with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as c:
                        c.send(payload)
                        # the request is read (CLIENT LIST shows its query buffer) ...
                        self.assertTrue(wait_until(lambda: self.qbuf_of_others() >= len(payload),
                                                   3.0 * SLOW), "the request was never read")
                        # ... and more bytes arrive (for a claimed bulk, the sidecar reads a big
                        # argument at most CLIENT_READ_BIG_MAX, 1 MB, at a time, whatever the claim)
                        c.send(b"y" * 4096)
                        self.assertTrue(wait_until(lambda: self.qbuf_of_others() >= len(payload) + 4096,
                                                   3.0 * SLOW), "the rest was never read")
                        during = Snapshot(self.sidecar)
                        self.assertLessEqual(during.used, self.base.used + MB + 256 * 1024,
                                             "memory allocated for a claimed size")
                        out, closed = c.read_until_close(0.2)
                        self.assertEqual((out, closed), (b"", False), "still waiting for the rest")
                    self.wait_clients(self.base.clients)
        finally:
            config_set(self.sidecar, "proto-max-bulk-len", "1mb")
        self.check_back()

    def qbuf_of_others(self):
        with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as c:
            raw = c.call("CLIENT", "LIST")
        best = 0
        for line in raw.decode().splitlines():
            if " cmd=client|list" in line:
                continue
            for f in line.split():
                if f.startswith("qbuf="):
                    best = max(best, int(f[5:]))
        return best

    def test_endless_inline_line(self):
        # No newline, beyond the 64 KB inline limit: the error, then close (also for an endless
        # multibulk count line and bulk length line).
        self.compare([(b"a" * (70 * 1024), proto_err(b"too big inline request")),
                      (b"GET " + b"k" * (80 * 1024), proto_err(b"too big inline request")),
                      (b"*" + b"1" * (70 * 1024), proto_err(b"too big mbulk count string")),
                      (b"*1\r\n$" + b"1" * (70 * 1024), proto_err(b"too big bulk count string"))])

    def test_endless_inline_line_trickled_in_chunks(self):
        payload = b"x" * (130 * 1024)
        for port in (REF.port, self.sidecar.port):
            got = exchange(port, payload, chunk=4096)
            self.assertEqual(got, (proto_err(b"too big inline request"), True))
        self.check_back()

    def test_unbalanced_quotes_inline(self):
        self.compare([(b'SET k "abc\r\n', proto_err(b"unbalanced quotes in request")),
                      (b"SET k 'abc\r\n", proto_err(b"unbalanced quotes in request")),
                      (b'SET k "abc"x\r\n', proto_err(b"unbalanced quotes in request"))])

    def test_huge_inline_argument_counts(self):
        # Many arguments on one inline line under the 64 KB limit: the same replies as Redis.
        members = b" ".join(b"m%d" % i for i in range(9000))
        lines = [b"SADD s " + members + b"\r\nSCARD s\r\nDEL s\r\n",
                 b"ECHO " + b" ".join([b"a"] * 30000) + b"\r\n",
                 b"NOSUCHCOMMAND " + b" ".join([b"x"] * 30000) + b"\r\n",
                 b" " * 60000 + b"PING\r\n",
                 b"\r\n" * 1000 + b"PING\r\n"]
        for line in lines:
            with self.subTest(line=line[:30]):
                want = []
                for port in (REF.port, self.sidecar.port):
                    with RespClient(port, timeout=5.0 * SLOW) as c:
                        c.send(line)
                        n = 3 if line.startswith(b"SADD") else 1
                        want.append([c.read_reply_bytes() for _ in range(n)])
                        self.assertEqual(c.call("PING"), "PONG")
                self.assertEqual(want[1], want[0])
        self.assertEqual(want[0], [b"+PONG\r\n"])
        self.check_back()


class TestIdleFootprint(HostileCase):
    """What a connection keeps once a huge request is answered and it goes idle."""

    # CLIENT LIST tot-mem of an idle client: the client struct (a few KB), an emptied output
    # buffer kept up to 16 KB, argument slots kept up to 1024 (16 KB), no query buffer.
    IDLE_TOT_MEM = 48 * 1024
    NARGS = 200000

    def huge_requests(self, c):
        keys = [b"k%d" % j for j in range(self.NARGS)]
        c.send(encode_command("DEL", *keys) + b"ECHO " + b"x" * 60000 + b"\r\n"
               + encode_command("ECHO", b"y" * 200000))
        self.assertEqual(c.read_reply_bytes(timeout=20.0 * SLOW), b":0\r\n")
        self.assertEqual(len(c.read_reply_bytes()), len(b"$60000\r\n") + 60000 + 2)
        self.assertEqual(len(c.read_reply_bytes()), len(b"$200000\r\n") + 200000 + 2)

    def test_idle_client_after_huge_requests(self):
        with RespClient(self.sidecar.port, timeout=10.0 * SLOW) as c:
            cid = c.call("CLIENT", "ID")
            self.huge_requests(c)
            with RespClient(self.sidecar.port) as other:
                lines = other.call("CLIENT", "LIST", "ID", str(cid)).decode().split()
            f = dict(kv.split("=", 1) for kv in lines if "=" in kv)
            self.assertEqual(f["qbuf"], "0")
            self.assertLessEqual(int(f["tot-mem"]), self.IDLE_TOT_MEM, f)
        self.check_back()

    def test_idle_clients_after_huge_requests_rss(self):
        # Five connections each sent a 200k-argument request and stay idle: the process holds
        # at most RSS_SLACK more than before (without the parser's array: 3.2 MB per client).
        if ASAN or VALGRIND:
            self.skipTest("RSS is not measured under ASan or valgrind (see the module docstring)")
        rss0 = vmrss(self.sidecar.pid)
        clients = [RespClient(self.sidecar.port, timeout=20.0 * SLOW) for _ in range(5)]
        try:
            for c in clients:
                self.huge_requests(c)
            time.sleep(0.2)
            self.assertLessEqual(vmrss(self.sidecar.pid), rss0 + RSS_SLACK)
        finally:
            for c in clients:
                c.close()
        self.check_back()


class TestUnauthenticatedLimits(HostileCase):
    """With a password set and not given, Redis's tighter limits apply before anything is read:
    at most 10 arguments and 16 KB per bulk."""

    PASSWORD = "hostile-pw"
    CONFIG = {"requirepass": PASSWORD}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sidecar.password = cls.PASSWORD
        ref = ref_server()
        config_set(ref, "requirepass", cls.PASSWORD)
        ref.password = cls.PASSWORD

    @classmethod
    def tearDownClass(cls):
        try:
            config_set(REF, "requirepass", "")
            REF.password = None
        finally:
            super().tearDownClass()

    def test_unauthenticated_lengths(self):
        cases = [(b"*11\r\n", proto_err(b"unauthenticated multibulk length")),
                 (b"*1\r\n$16385\r\n", proto_err(b"unauthenticated bulk length")),
                 (b"*2\r\n$4\r\nAUTH\r\n$9223372036854775808\r\n", proto_err(b"invalid bulk length")),
                 (b"AUTH " + b"x" * (70 * 1024), proto_err(b"too big inline request"))]
        for payload, expected in cases:
            with self.subTest(payload=payload[:40]):
                ref = exchange_expect_close(REF.port, payload)
                self.assertEqual(ref, (expected, True), "redis-server itself (test premise)")
                self.assertEqual(exchange_expect_close(self.sidecar.port, payload), ref)
        # the same lengths are fine once authenticated
        for srv in (REF, self.sidecar):
            with RespClient(srv.port, timeout=5.0 * SLOW) as c:
                c.send(encode_command("AUTH", self.PASSWORD) + encode_command("ECHO", "e" * 20000)
                       + encode_command("DEL", *["k%d" % i for i in range(11)]))
                self.assertEqual([c.read_reply_bytes() for _ in range(3)],
                                 [b"+OK\r\n", b"$20000\r\n" + b"e" * 20000 + b"\r\n", b":0\r\n"])
        self.check_back()


# ---------------------------------------------------------------------------------------------
# NUL bytes and CRLF inside bulk strings, trickled requests: in both modes


class RoundTripMixin:
    def test_nul_and_crlf_inside_bulk_strings(self):
        values = [b"a\x00b", b"\x00", b"\r\n", b"x\r\ny", b"\r\n*1\r\n$4\r\nPING\r\n",
                  b"$5\r\nhello\r\n", b"\x00\r\n\x00" * 1000, bytes(range(256)) * 64]
        with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as c:
            for i, v in enumerate(values):
                key = b"k\x00\r\n%d" % i
                self.assertEqual(c.call("SET", key, v), "OK")
                self.assertEqual(c.call_raw("GET", key), b"$%d\r\n%s\r\n" % (len(v), v))
                # again: a hit in near-cache mode
                self.assertEqual(c.call_raw("GET", key), b"$%d\r\n%s\r\n" % (len(v), v))
                self.assertEqual(c.call("HSET", b"h\x00", b"f\r\n%d" % i, v), 1)
                self.assertEqual(c.call_raw("HGET", b"h\x00", b"f\r\n%d" % i),
                                 b"$%d\r\n%s\r\n" % (len(v), v))
                self.assertEqual(c.call_raw("ECHO", v), b"$%d\r\n%s\r\n" % (len(v), v))
            keys = [b"k\x00\r\n%d" % i for i in range(len(values))]
            got = c.call("MGET", *keys)
            self.assertEqual(got, values)
        self.check_back()

    def test_big_replies_keep_order_and_reply_off(self):
        # Large values are written straight from the stored bytes when nothing is queued before
        # them (client_reply_direct): a pipeline mixing small and large replies, a reader too
        # slow for the socket to take them (the rest is queued), and the states in which a reply
        # must not reach the socket (CLIENT REPLY OFF / SKIP, MULTI) keep Redis's bytes.
        big1, big2 = big_value(100 * 1024), b"y" * (300 * 1024)
        with RespClient(self.sidecar.port, timeout=10.0 * SLOW) as c:
            self.assertEqual(c.call("SET", "dbig1", big1), "OK")
            self.assertEqual(c.call("SET", "dbig2", big2), "OK")
            self.assertEqual(c.call("SET", "dsmall", "s"), "OK")
            for k in ("dbig1", "dbig2"):   # near-cache mode: the second GET is a hit
                c.call("GET", k)
                c.call("GET", k)
        bulk = lambda v: b"$%d\r\n%s\r\n" % (len(v), v)
        payload = b"".join(encode_command(*a) for a in (
            ("GET", "dbig1"), ("GET", "dsmall"), ("GET", "dbig2"), ("GET", "dbig1"),
            ("CLIENT", "REPLY", "SKIP"), ("GET", "dbig2"), ("PING",),
            ("CLIENT", "REPLY", "OFF"), ("GET", "dbig1"), ("GET", "dbig2"),
            ("CLIENT", "REPLY", "ON"),
            ("MULTI",), ("GET", "dbig2"), ("GET", "dsmall"), ("EXEC",), ("GET", "dbig2")))
        want = (bulk(big1) + bulk(b"s") + bulk(big2) + bulk(big1) + b"+PONG\r\n" + b"+OK\r\n"
                + b"+OK\r\n" + b"+QUEUED\r\n" + b"+QUEUED\r\n" + b"*2\r\n" + bulk(big2)
                + bulk(b"s") + bulk(big2))
        for rcvbuf in (None, 4096):
            with RespClient(self.sidecar.port, timeout=10.0 * SLOW, rcvbuf=rcvbuf) as c:
                c.send(payload)
                if rcvbuf:
                    time.sleep(0.2 * SLOW)   # the socket fills: the rest waits in the server
                got = bytearray()
                deadline = time.monotonic() + 10.0 * SLOW
                while len(got) < len(want) and c._fill(deadline):
                    got += c.buf
                    c.buf.clear()
                self.assertEqual(len(got), len(want))
                if bytes(got) != want:
                    first = next(i for i in range(len(want)) if got[i] != want[i])
                    self.fail("replies differ from byte %d: %r" % (first, bytes(got[first:first + 40])))
        # One request per read, so that nothing is queued before the large reply when it runs.
        with RespClient(self.sidecar.port, timeout=10.0 * SLOW) as c:
            def alone(*args):
                c.send(encode_command(*args))
                time.sleep(0.05 * SLOW)
            alone("CLIENT", "REPLY", "OFF")
            alone("GET", "dbig1")
            self.assertEqual(c.call("CLIENT", "REPLY", "ON"), "OK")
            alone("CLIENT", "REPLY", "SKIP")
            alone("GET", "dbig2")
            self.assertEqual(c.call("PING"), "PONG")
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("GET", "dbig2"), "QUEUED")
            self.assertEqual(c.call_raw("EXEC"), b"*1\r\n" + bulk(big2))
        self.check_back(keys_deleted=["dbig1", "dbig2", "dsmall"])

    def test_big_arguments_arriving_in_pieces(self):
        # A large bulk that has not all arrived is read straight into a string entry keyed by
        # the argument before it (client_bigarg_start), which SET-like commands install without
        # a copy: every command taking large arguments, whether the large one is last or not,
        # whether the key matches or not, sent in pieces so that each bulk arrives incomplete.
        v1, v2, v3 = big_value(100 * 1024), b"b" * (64 * 1024), b"c" * (1024 * 1024 - 100)
        steps = [
            (("SET", "bk1", v1), b"+OK\r\n"), (("GET", "bk1"), v1),
            (("SET", "bk2", v2, "EX", "100"), b"+OK\r\n"), (("TTL", "bk2"), b":100\r\n"),
            (("SET", "bk2", v1, "KEEPTTL"), b"+OK\r\n"), (("TTL", "bk2"), b":100\r\n"),
            (("GET", "bk2"), v1),
            (("SET", "bk1", v2, "NX"), b"$-1\r\n"), (("GET", "bk1"), v1),
            (("SET", "bk1", v2, "GET"), v1), (("GET", "bk1"), v2),
            (("GETSET", "bk1", v1), v2), (("GET", "bk1"), v1),
            (("SETNX", "bk3", v2), b":1\r\n"), (("GET", "bk3"), v2),
            (("SETEX", "bk4", "100", v2), b"+OK\r\n"), (("GET", "bk4"), v2),
            (("MSET", "bk5", v1, "bk6", v2), b"+OK\r\n"),
            (("MGET", "bk5", "bk6"), b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(v1), v1, len(v2), v2)),
            (("ECHO", v2), v2), (("APPEND", "bk3", v1), b":%d\r\n" % (len(v1) + len(v2))),
            (("GET", "bk3"), v2 + v1),
            (("HSET", "bh", "f", v1), b":1\r\n"), (("HGET", "bh", "f"), v1),
            (("SET", v2, "keyed by a large name"), b"+OK\r\n"), (("GET", v2), b"keyed by a large name"),
            (("SET", "bk7", v3), b"+OK\r\n"), (("STRLEN", "bk7"), b":%d\r\n" % len(v3)),
        ]
        bulk = lambda v: b"$%d\r\n%s\r\n" % (len(v), v)
        with RespClient(self.sidecar.port, timeout=10.0 * SLOW) as c:
            for args, want in steps:
                req = encode_command(*args)
                for i in range(0, len(req), 40000):
                    c.send(req[i:i + 40000])
                    time.sleep(0.002)
                got = c.read_reply_bytes()
                if want[:1] not in b"+-:$*":
                    want = bulk(want)
                self.assertEqual(got, want, args[:2])
            # a transaction queues copies of the arguments
            self.assertEqual(c.call("MULTI"), "OK")
            c.send(encode_command("SET", "bk8", v1))
            self.assertEqual(c.read_reply(), "QUEUED")
            self.assertEqual(c.call_raw("EXEC"), b"*1\r\n+OK\r\n")
            self.assertEqual(c.call_raw("GET", "bk8"), bulk(v1))
        self.check_back(keys_deleted=["bk%d" % i for i in range(1, 9)] + ["bh", v2])

    def test_big_argument_cut_off(self):
        # The client leaves (or half-closes) in the middle of a large argument: nothing is
        # stored, the connection goes, nothing stays allocated (ASan: no leak).
        v = big_value(200 * 1024)
        req = encode_command("SET", "cut", v)
        for half in (False, True):
            c = RespClient(self.sidecar.port, timeout=5.0 * SLOW)
            c.send(req[:len(req) // 2])
            time.sleep(0.05 * SLOW)
            if half:
                c.sock.shutdown(socket.SHUT_WR)
                out, closed = c.read_until_close(CLOSE_WAIT)
                self.assertEqual((out, closed), (b"", True))
            c.close()
            self.wait_clients(self.base.clients)
            self.assertEqual(call(self.sidecar, "EXISTS", "cut"), 0)
        self.check_back()

    def trickle(self, payload, nreplies, other):
        """Sends payload one byte every 10 ms; between bytes another client is served (each
        PING answered within a bound). Returns the raw replies of the trickled requests."""
        with RespClient(self.sidecar.port, timeout=10.0 * SLOW) as slow:
            for i, b in enumerate(payload):
                slow.send(bytes([b]))
                time.sleep(0.01)
                if i % 8 == 0:
                    t0 = time.monotonic()
                    self.assertEqual(other.call("PING", timeout=2.0 * SLOW), "PONG")
                    self.assertLess(time.monotonic() - t0, 2.0 * SLOW)
                if i < len(payload) - 1 and nreplies == 1:
                    # nothing is answered before the request is complete
                    r, _, _ = select.select([slow.sock], [], [], 0)
                    self.assertEqual(r, [], "a reply before the request was complete")
            return [slow.read_reply_bytes() for _ in range(nreplies)]

    def test_trickled_short_command(self):
        with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as other:
            other.call("SET", "t", "hello")
            got = self.trickle(encode_command("GET", "t"), 1, other)
            self.assertEqual(got, [b"$5\r\nhello\r\n"])
            got = self.trickle(b"GET t\r\n", 1, other)
            self.assertEqual(got, [b"$5\r\nhello\r\n"])
        self.check_back(keys_deleted=["t"])

    def test_trickled_pipeline(self):
        payload = (encode_command("SET", "p", "v1") + encode_command("GET", "p")
                   + encode_command("INCR", "n") + b"PING\r\n" + encode_command("GET", "p"))
        with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as other:
            got = self.trickle(payload, 5, other)
        self.assertEqual(got, [b"+OK\r\n", b"$2\r\nv1\r\n", b":1\r\n", b"+PONG\r\n", b"$2\r\nv1\r\n"])
        self.check_back(keys_deleted=["p", "n"])


class TestRoundTripStandalone(RoundTripMixin, HostileCase):
    pass


class TestRoundTripNearCache(RoundTripMixin, HostileCase):
    NEARCACHE = True


# ---------------------------------------------------------------------------------------------
# clients that never read


def big_value(n):
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


def flood_without_reading(port, payload, rcvbuf=4096):
    """Connects with a tiny receive buffer, sends payload and never reads. Returns the socket
    client (the caller closes it)."""
    c = RespClient(port, timeout=10.0 * SLOW, rcvbuf=rcvbuf)
    try:
        c.send(payload, timeout=10.0 * SLOW)
    except (OSError, TimeoutError):
        pass  # the server may already have closed it
    return c


class NeverReadsMixin:
    """GET of a 256 KB value 64 times in one pipeline, never read; client_output_buffer_limit at
    its minimum (1mb). The client is disconnected and memory comes back."""

    def wait_closed_by_server(self, c):
        # Read (discarding) until EOF: the server must close it while we drain.
        deadline = time.monotonic() + CLOSE_WAIT * 2
        total = 0
        while time.monotonic() < deadline:
            try:
                if not c._fill(deadline):
                    return total
            except TimeoutError:
                break
            total += len(c.buf)
            c.buf.clear()
        self.fail("the server did not close a client over its output limit (read %d bytes)" % total)

    def test_client_that_never_reads(self):
        config_set(self.sidecar, "client_output_buffer_limit", "1mb")
        try:
            val = big_value(256 * 1024)
            call(self.sidecar, "SET", "bigkey", val)
            if self.upstream is not None:
                call(self.upstream, "SET", "bigkey", val)
            payload = encode_command("GET", "bigkey") * 64

            def one_round():
                c = flood_without_reading(self.sidecar.port, payload)
                try:
                    # connected_clients comes back down while we still do not read
                    self.wait_clients(self.base.clients)
                    self.wait_closed_by_server(c)
                finally:
                    c.close()
            self.rounds(one_round)
        finally:
            config_set(self.sidecar, "client_output_buffer_limit", "256mb")

    def test_monitor_that_never_reads(self):
        # MONITOR lines are output like any reply: a monitor that does not read is closed at
        # the output limit (Redis's replica-class limit; here client_output_buffer_limit).
        config_set(self.sidecar, "client_output_buffer_limit", "1mb")
        try:
            val = big_value(64 * 1024)

            def one_round():
                mon = RespClient(self.sidecar.port, timeout=5.0 * SLOW, rcvbuf=4096)
                try:
                    self.assertEqual(mon.call("MONITOR"), "OK")
                    with conn(self.sidecar) as c:
                        # 256 lines of 64 KB: 16 MB, more than the kernel's socket buffers
                        # take; the limit is 1 MB
                        for _ in range(16):
                            c.pipeline(encode_command("SET", "m", val) * 16, 16)
                    self.wait_clients(self.base.clients)
                    self.wait_closed_by_server(mon)
                finally:
                    mon.close()
            self.rounds(one_round)
        finally:
            config_set(self.sidecar, "client_output_buffer_limit", "256mb")

    def test_subscriber_that_never_reads(self):
        config_set(self.sidecar, "pubsub_output_buffer_limit", "1mb")
        try:
            msg = big_value(64 * 1024)

            def one_round():
                sub = RespClient(self.sidecar.port, timeout=5.0 * SLOW, rcvbuf=4096)
                try:
                    self.assertEqual(sub.call("SUBSCRIBE", "ch")[0], b"subscribe")
                    with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as pub:
                        if self.upstream is not None:
                            # Near-cache mode confirms SUBSCRIBE before the upstream has the
                            # relay's subscription (a known gap, see
                            # test_publish_right_after_subscribe): wait until it has.
                            self.assertTrue(wait_until(lambda: pub.call("PUBSUB", "NUMSUB", "ch")[1] == 1,
                                                       5.0 * SLOW, interval=0.01))
                        counts = []
                        for _ in range(400):   # 25 MB at most; the limit is 1 MB
                            counts.append(pub.call("PUBLISH", "ch", msg))
                            if counts[-1] == 0:
                                break
                        # received by the subscriber (as Redis: its confirmation came first) ...
                        self.assertEqual(counts[0], 1, counts[:5])
                        # ... until it was disconnected
                        self.assertEqual(counts[-1], 0, "subscriber still subscribed after 25 MB unread")
                    self.wait_clients(self.base.clients)
                    self.wait_closed_by_server(sub)
                finally:
                    sub.close()
            self.rounds(one_round)
        finally:
            config_set(self.sidecar, "pubsub_output_buffer_limit", "32mb")


class PipelineFloodMixin:
    def test_pipeline_flood_that_never_reads(self):
        # Requests sent as fast as the socket takes them, replies never read: the sidecar stops
        # reading this client once its output passes the soft limit or it awaits too many
        # replies (backpressure), so what it holds stays bounded however much the client
        # pushes; all of it goes when it leaves. In near-cache mode half the GETs are misses
        # (forwarded: pending reply slots), half hits.
        payload = (encode_command("GET", "fk") + encode_command("GET", "nokey")) * 10000
        call(self.sidecar, "SET", "fk", big_value(1024))

        def one_round():
            c = RespClient(self.sidecar.port, rcvbuf=4096)
            try:
                deadline = time.monotonic() + 3.0 * SLOW
                sent = 0
                stalled_since = None
                while time.monotonic() < deadline and sent < 64 * MB:
                    try:
                        n = c.sock.send(payload)
                    except BlockingIOError:
                        n = 0
                    sent += n
                    if n:
                        stalled_since = None
                    elif stalled_since is None:
                        stalled_since = time.monotonic()
                    elif time.monotonic() - stalled_since > 0.5:
                        break   # the sidecar stopped reading us
                    else:
                        time.sleep(0.01)
                self.assertLess(sent, 64 * MB, "the sidecar read 64 MB of requests whose "
                                "replies were never read")
                held = Snapshot(self.sidecar)
                self.assertLess(held.used - self.base.used, 4 * MB,
                                "memory held for a client that does not read")
            finally:
                c.close()
            self.wait_clients(self.base.clients)
        self.rounds(one_round)


class TestPipelineFloodStandalone(PipelineFloodMixin, HostileCase):
    pass


class TestPipelineFloodNearCache(PipelineFloodMixin, HostileCase):
    NEARCACHE = True


class TestNeverReadsStandalone(NeverReadsMixin, HostileCase):
    def test_redis_disconnects_them_too(self):
        # The premise, on redis-server with the equivalent limits.
        ref = ref_server()
        config_set(ref, "client-output-buffer-limit", "normal 1mb 0 0 pubsub 1mb 0 0")
        try:
            call(ref, "SET", "bigkey", big_value(256 * 1024))
            c = flood_without_reading(ref.port, encode_command("GET", "bigkey") * 64)
            try:
                self.wait_closed_by_server(c)
            finally:
                c.close()
            sub = RespClient(ref.port, rcvbuf=4096)
            try:
                sub.call("SUBSCRIBE", "ch")
                n = 1
                for _ in range(400):
                    n = call(ref, "PUBLISH", "ch", big_value(64 * 1024))
                    if n == 0:
                        break
                self.assertEqual(n, 0)
            finally:
                sub.close()
        finally:
            config_set(ref, "client-output-buffer-limit", "normal 0 0 0 pubsub 32mb 8mb 60")
            call(ref, "DEL", "bigkey")


class TestNeverReadsNearCache(NeverReadsMixin, HostileCase):
    NEARCACHE = True
    # The replies of a disconnected client's forwards still stream in (16 MB a round): under
    # valgrind that takes longer than the default 1 s op timeout, and timed-out requests get
    # short error replies that never reach the output limit.
    CONFIG = {"op_timeout_ms": int(10000 * SLOW)}

    @unittest.skipUnless(os.environ.get("HOSTILE_KNOWN_GAPS") == "1",
                         "known gap (reported): in near-cache mode SUBSCRIBE is confirmed before "
                         "the relay's upstream subscription is active, so a PUBLISH sent right "
                         "after the confirmation may reach nobody; HOSTILE_KNOWN_GAPS=1 runs it")
    def test_publish_right_after_subscribe(self):
        # Redis guarantees it: once the subscribe confirmation is read, a message published by
        # another client is delivered. Each round re-subscribes a channel the relay just left.
        lost = 0
        for i in range(30):
            with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as sub, \
                    RespClient(self.sidecar.port, timeout=5.0 * SLOW) as pub:
                sub.call("SUBSCRIBE", "again")
                n = pub.call("PUBLISH", "again", "m%d" % i)
                if n != 1:
                    lost += 1
                else:
                    self.assertEqual(sub.read_reply(), [b"message", b"again", b"m%d" % i])
        self.assertEqual(lost, 0, "%d of 30 messages published after a confirmed SUBSCRIBE lost" % lost)
        self.check_back()

    def test_pipelined_misses_of_a_big_value(self):
        # 200 GETs of a 1 MB value missing from the near-cache, pipelined (6 KB of requests),
        # never read, output limit 1mb: the one upstream reply completes all 200 at once. The
        # client is closed at the limit, and the replies of a closing client are dropped, not
        # copied: the process's peak RSS grows by a few values, not by 200 MB (it did).
        config_set(self.sidecar, "client_output_buffer_limit", "1mb")
        try:
            call(self.upstream, "SET", "big1m", big_value(MB))
            call(self.sidecar, "SIDECAR", "FLUSH")
            measure = not (ASAN or VALGRIND)   # freed memory stays resident there by design
            if measure:
                try:
                    with open("/proc/%d/clear_refs" % self.sidecar.pid, "w") as f:
                        f.write("5")   # resets VmHWM to the current RSS
                except OSError as e:
                    measure = False
                    print("cannot reset VmHWM (%s): peak not measured" % e, file=sys.stderr)
            rss0 = vmrss(self.sidecar.pid)
            c = flood_without_reading(self.sidecar.port, encode_command("GET", "big1m") * 200)
            try:
                self.wait_clients(self.base.clients)
                self.wait_closed_by_server(c)
            finally:
                c.close()
            if measure:
                # the 1 MB output limit, the value in the slot being filled, the cached copy and
                # the upstream reader's buffer: 4 MB; 16 MB is the bound
                self.assertLess(vm_field(self.sidecar.pid, "VmHWM") - rss0, 16 * MB)
        finally:
            config_set(self.sidecar, "client_output_buffer_limit", "256mb")
        self.check_back()

    def test_forwarded_replies_never_read(self):
        # Misses forwarded upstream fill reply slots behind each other: the limit counts them.
        config_set(self.sidecar, "client_output_buffer_limit", "1mb")
        try:
            val = big_value(256 * 1024)
            keys = ["fk%d" % i for i in range(64)]
            for k in keys:
                call(self.upstream, "SET", k, val)
            payload = b"".join(encode_command("GET", k) for k in keys)

            def one_round():
                call(self.sidecar, "SIDECAR", "FLUSH")  # every GET is a miss again
                c = flood_without_reading(self.sidecar.port, payload)
                try:
                    self.wait_clients(self.base.clients)
                    self.wait_closed_by_server(c)
                finally:
                    c.close()
            self.rounds(one_round)
        finally:
            config_set(self.sidecar, "client_output_buffer_limit", "256mb")


# ---------------------------------------------------------------------------------------------
# query buffer over client_query_buffer_limit


class TestQueryBufferLimit(HostileCase):
    def test_query_buffer_over_the_limit(self):
        # A bulk argument of 3 MB (proto_max_bulk_len allows it) with the query buffer limit at
        # its minimum (1mb): Redis closes the connection without a reply; so must we.
        ref = ref_server()
        config_set(ref, "client-query-buffer-limit", "1mb")
        config_set(self.sidecar, "client-query-buffer-limit", "1mb")
        try:
            payloads = [b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$3145728\r\n" + b"v" * (3 * MB),
                        # an endless pipeline of unterminated inline arguments would hit the
                        # inline limit first; an endless bulk never completes
                        b"*2\r\n$4\r\nECHO\r\n$400000000\r\n" + b"w" * (2 * MB)]
            for payload in payloads:
                with self.subTest(payload=payload[:40]):
                    for srv in (ref, self.sidecar):
                        out, closed = exchange(srv.port, payload, wait=CLOSE_WAIT, chunk=64 * 1024)
                        self.assertEqual((out, closed), (b"", True), srv.name)
                        self.assertEqual(call(srv, "EXISTS", "q"), 0)

            def one_round():
                out, closed = exchange(self.sidecar.port, payloads[0], chunk=64 * 1024)
                self.assertTrue(closed)
            self.rounds(one_round)
        finally:
            config_set(ref, "client-query-buffer-limit", "1gb")
            config_set(self.sidecar, "client-query-buffer-limit", "1gb")

    def test_limit_counts_a_big_argument_read_outside_the_buffer(self):
        # A large argument read straight into its entry (client_bigarg_start) counts towards
        # client_query_buffer_limit with the rest of the request, as it did in the query
        # buffer: just under the limit is stored, a request whose bytes pass it closes.
        bulk_max = call(self.sidecar, "CONFIG", "GET", "proto-max-bulk-len")[1]
        config_set(self.sidecar, "client-query-buffer-limit", "1mb")
        config_set(self.sidecar, "proto-max-bulk-len", "2mb")
        try:
            head = len(encode_command("SET", "qk", ""))
            for size, stored in ((MB - head - 200, True), (MB - 10, False)):
                with self.subTest(size=size):
                    req = encode_command("SET", "qk", b"v" * size)
                    out, closed = exchange(self.sidecar.port, req, wait=CLOSE_WAIT, chunk=64 * 1024)
                    self.assertEqual((out, closed), (b"", True) if not stored else (b"+OK\r\n", False))
                    self.assertEqual(call(self.sidecar, "STRLEN", "qk"), size if stored else 0)
                    call(self.sidecar, "DEL", "qk")
        finally:
            config_set(self.sidecar, "client-query-buffer-limit", "1gb")
            config_set(self.sidecar, "proto-max-bulk-len", bulk_max)
        self.check_back()

    def test_client_list_shows_a_big_argument_still_arriving(self):
        # Half of a 200 KB value sent: the part read outside the query buffer (into its entry)
        # shows in CLIENT LIST qbuf= and tot-mem, as Redis shows it in its query buffer.
        half = 100 * 1024
        head = b"*3\r\n$3\r\nSET\r\n$2\r\nbk\r\n$%d\r\n" % (2 * half)
        with socket.create_connection(("127.0.0.1", self.sidecar.port), timeout=5) as s:
            s.sendall(head + b"v" * half)
            me = s.getsockname()[1]

            def line():
                for ln in call(self.sidecar, "CLIENT", "LIST").decode().splitlines():
                    if ln.split(" ")[1].endswith(":%d" % me):
                        return dict(f.split("=", 1) for f in ln.split(" ") if "=" in f)
                return None
            wait_until(lambda: int((line() or {}).get("qbuf", "0")) >= half, timeout=5)
            fields = line()
            self.assertGreaterEqual(int(fields["qbuf"]), half, fields)
            self.assertGreaterEqual(int(fields["tot-mem"]), 2 * half, fields)
            s.sendall(b"v" * half + b"\r\n")
            self.assertEqual(s.recv(16), b"+OK\r\n")
        self.assertEqual(call(self.sidecar, "STRLEN", "bk"), 2 * half)
        call(self.sidecar, "DEL", "bk")
        self.check_back()



# ---------------------------------------------------------------------------------------------
# ten thousand connections at once, maxclients 1000


class TestManyConnections(HostileCase):
    MAXCLIENTS = 1000
    NCONN = 10000
    CONFIG = {"maxclients": MAXCLIENTS, "tcp_backlog": 4096}
    IDLE_CLIENT_BYTES = 4096

    def raise_nofile(self, want):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < want:
            self.skipTest("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        if soft == resource.RLIM_INFINITY or soft >= want:
            return
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def test_redis_refusal_text(self):
        # The premise: redis-server's own reply to a connection over maxclients.
        ref = ref_server()
        with RespClient(ref.port) as keep:
            n = int(parse_info(keep.call("INFO", "clients"))["connected_clients"])
            config_set(ref, "maxclients", str(n))
            try:
                out, closed = exchange(ref.port, b"", wait=CLOSE_WAIT)
                self.assertEqual((out, closed), (MAXCLIENTS_ERR, True))
            finally:
                keep.call("CONFIG", "SET", "maxclients", "10000")

    def test_ten_thousand_connections_at_once(self):
        self.raise_nofile(self.NCONN + 256)
        control = RespClient(self.sidecar.port, timeout=5.0 * SLOW)   # one accepted slot
        rejected0 = int(parse_info(control.call("INFO", "stats"))["rejected_connections"])
        socks, sel = [], selectors.DefaultSelector()
        state = {}   # fd -> [socket, bytes received, closed]
        deadline = time.monotonic() + 60.0 * SLOW
        try:
            for _ in range(self.NCONN):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                rc = s.connect_ex((harness.HOST, self.sidecar.port))
                self.assertIn(rc, (0, errno.EINPROGRESS))
                socks.append(s)
                state[s.fileno()] = [s, bytearray(), False]
                sel.register(s, selectors.EVENT_READ)
            accepted = self.MAXCLIENTS - 1
            refused = lambda: sum(1 for v in state.values() if v[2])  # noqa: E731
            nrefused = 0
            # Every connection over maxclients gets the error and is closed.
            while nrefused < self.NCONN - accepted and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1.0):
                    v = state[key.fd]
                    try:
                        chunk = v[0].recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionError:
                        chunk = b""
                    if chunk:
                        v[1] += chunk
                    else:
                        v[2] = True
                        nrefused += 1
                        sel.unregister(v[0])
            self.assertEqual(refused(), self.NCONN - accepted,
                             "connections closed by the server (the rest should be accepted)")
            bad = [bytes(v[1]) for v in state.values() if v[2] and bytes(v[1]) != MAXCLIENTS_ERR]
            self.assertEqual(bad[:3], [], "%d refused connections got something else" % len(bad))
            self.assertEqual(sum(1 for v in state.values() if not v[2] and v[1]), 0)
            i = parse_info(control.call("INFO"))
            self.assertEqual(int(i["connected_clients"]), self.MAXCLIENTS)
            self.assertEqual(int(i["rejected_connections"]) - rejected0, self.NCONN - accepted)
            # The accepted ones work: PING on each.
            live = [v for v in state.values() if not v[2]]
            for v in live:
                v[0].send(b"PING\r\n")
            pending = {v[0].fileno(): v for v in live}
            for v in live:
                v[1].clear()
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1.0):
                    v = pending.get(key.fd)
                    if v is None:
                        continue
                    try:
                        chunk = v[0].recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    v[1] += chunk
                    if len(v[1]) >= 7 or not chunk:
                        del pending[key.fd]
            self.assertEqual(len(pending), 0, "accepted connections without a PING reply")
            self.assertEqual([bytes(v[1]) for v in live], [b"+PONG\r\n"] * len(live))
            # An idle connection holds no read buffer: used_memory (which counts every client's
            # buffers) grows by less than IDLE_CLIENT_BYTES per connection. With a 16 KB query
            # buffer kept per idle client, maxclients (10000 by default) idle connections would
            # pin 160 MB, and malloc keeps that resident after they leave.
            used = int(parse_info(control.call("INFO", "memory"))["used_memory"])
            self.assertLess((used - self.base.used) / len(live), self.IDLE_CLIENT_BYTES)
        finally:
            sel.close()
            for s in socks:
                s.close()
        self.assertEqual(control.call("PING"), "PONG")
        control.close()
        self.check_back()


# ---------------------------------------------------------------------------------------------
# half-closed and reset sockets


class HalfCloseMixin:
    def test_shutdown_write_after_commands_gets_replies(self):
        call(self.sidecar, "SET", "hk", "hv")
        payload = (encode_command("GET", "hk") + encode_command("PING") + b"ECHO x\r\n")
        want = b"$2\r\nhv\r\n+PONG\r\n$1\r\nx\r\n"
        if not self.NEARCACHE:
            call(ref_server(), "SET", "hk", "hv")
            with RespClient(REF.port) as c:
                c.send(payload)
                c.sock.shutdown(socket.SHUT_WR)
                self.assertEqual(c.read_until_close(CLOSE_WAIT), (want, True), "redis-server")
            call(REF, "DEL", "hk")
        with RespClient(self.sidecar.port) as c:
            c.send(payload)
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(c.read_until_close(CLOSE_WAIT), (want, True))
        self.check_back(keys_deleted=["hk"])

    def test_shutdown_write_after_a_pipeline_bigger_than_the_socket(self):
        # 64 replies of 256 KB (16 MB) cannot all be written before the EOF is read: the sidecar
        # still delivers every one, then closes. (redis-server drops what it has not written
        # when it reads the EOF; the sidecar answers what was asked, as for a forwarded reply.)
        val = big_value(256 * 1024)
        call(self.sidecar, "SET", "hbig", val)
        with RespClient(self.sidecar.port, timeout=20.0 * SLOW) as c:
            c.send(encode_command("GET", "hbig") * 64 + encode_command("PING"))
            c.sock.shutdown(socket.SHUT_WR)
            got = [c.read_reply_bytes() for _ in range(65)]
            self.assertTrue(c.wait_closed(CLOSE_WAIT))
        self.assertEqual(got, [b"$262144\r\n" + val + b"\r\n"] * 64 + [b"+PONG\r\n"])
        self.check_back(keys_deleted=["hbig"])

    def test_half_close_mid_request(self):
        for payload in (b"*2\r\n$3\r\nGET\r\n$1\r\n", b"*2\r\n$3\r\nGET\r\n$5\r\nab", b"GET k",
                        encode_command("PING") + b"*3\r\n$3\r\nSET"):
            with self.subTest(payload=payload):
                want = b"+PONG\r\n" if payload.startswith(b"*1") else b""
                with RespClient(self.sidecar.port) as c:
                    c.send(payload)
                    c.sock.shutdown(socket.SHUT_WR)
                    self.assertEqual(c.read_until_close(CLOSE_WAIT), (want, True))
                if not self.NEARCACHE:
                    with RespClient(ref_server().port) as c:
                        c.send(payload)
                        c.sock.shutdown(socket.SHUT_WR)
                        self.assertEqual(c.read_until_close(CLOSE_WAIT), (want, True), "redis")
        self.check_back()

    def test_reset_with_replies_pending(self):
        val = big_value(256 * 1024)
        call(self.sidecar, "SET", "rk", val)

        def one_round():
            c = RespClient(self.sidecar.port, rcvbuf=4096)
            try:
                # 16 MB of replies: more than the kernel's socket buffers take
                c.send(encode_command("GET", "rk") * 64)
                self.assertTrue(wait_until(lambda: self.max_omem() > 0, 5.0 * SLOW, interval=0.02),
                                "the server never held output for the client (test premise)")
                c.reset()  # RST
            finally:
                c.close()
            self.wait_clients(self.base.clients)
        self.rounds(one_round)

    def max_omem(self):
        """The most output any client has waiting (CLIENT LIST obl + omem)."""
        with RespClient(self.sidecar.port) as c:
            raw = c.call("CLIENT", "LIST")
        best = 0
        for line in raw.decode().splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            best = max(best, int(f["obl"]) + int(f["omem"]))
        return best

    def blpop_then_close(self, reset, timeout="0"):
        c = RespClient(self.sidecar.port)
        try:
            c.send(encode_command("BLPOP", "bq", timeout))
            self.wait_blocked(1)
            if reset:
                c.reset()  # RST
        finally:
            c.close()
        self.wait_blocked(0)
        self.wait_clients(self.base.clients)
        if timeout != "0":
            time.sleep(float(timeout) + 0.2)   # past the dead client's deadline: nothing fires
        # The element pushed next is not taken by the client that left.
        self.assertEqual(call(self.sidecar, "LPUSH", "bq", "x"), 1)
        time.sleep(0.1)
        self.assertEqual(call(self.sidecar, "LRANGE", "bq", "0", "-1"), [b"x"])
        self.assertEqual(call(self.sidecar, "DEL", "bq"), 1)

    def wait_blocked(self, n):
        # standalone: INFO blocked_clients; near-cache: the upstream's (BLPOP runs there)
        target = self.upstream if self.upstream is not None else self.sidecar
        base = self.upstream_blocked0 if self.upstream is not None else self.base.blocked
        ok = wait_until(lambda: int(info(target, "clients")["blocked_clients"]) == base + n,
                        5.0 * SLOW, interval=0.02)
        self.assertTrue(ok, "blocked_clients never became %d" % (base + n))

    def test_close_with_blpop_pending(self):
        self.upstream_blocked0 = 0
        self.blpop_then_close(reset=False)
        self.blpop_then_close(reset=True)
        self.blpop_then_close(reset=True, timeout="0.3")
        self.check_back()


class TestHalfCloseStandalone(HalfCloseMixin, HostileCase):
    pass


class TestHalfCloseNearCache(HalfCloseMixin, HostileCase):
    NEARCACHE = True
    CONFIG = {"op_timeout_ms": 3000}

    def slow_upstream(self, seconds):
        """Runs DEBUG SLEEP on the upstream in a thread: requests sent meanwhile wait."""
        t = threading.Thread(target=call, args=(self.upstream, "DEBUG", "SLEEP", str(seconds)),
                             kwargs={"timeout": seconds + 5}, daemon=True)
        t.start()
        time.sleep(0.05)
        return t

    def test_shutdown_write_with_forwarded_reply_pending(self):
        # A miss is forwarded upstream; the client half-closes before the upstream answers.
        # redis-server answers a request read before the EOF; so must the sidecar.
        call(self.upstream, "SET", "fwd", "val")
        call(self.sidecar, "SIDECAR", "FLUSH")
        t = self.slow_upstream(0.5)
        with RespClient(self.sidecar.port, timeout=5.0 * SLOW) as c:
            c.send(encode_command("GET", "fwd") + encode_command("PING"))
            c.sock.shutdown(socket.SHUT_WR)
            out, closed = c.read_until_close(CLOSE_WAIT)
        t.join(10)
        self.assertEqual((out, closed), (b"$3\r\nval\r\n+PONG\r\n", True))
        self.check_back()

    def test_reset_with_forwarded_replies_pending(self):
        call(self.upstream, "SET", "fwd", "val")

        def one_round():
            call(self.sidecar, "SIDECAR", "FLUSH")
            t = self.slow_upstream(0.3)
            c = RespClient(self.sidecar.port)
            try:
                c.send(b"".join(encode_command("GET", "fwd%d" % i) for i in range(50))
                       + encode_command("GET", "fwd"))
                time.sleep(0.05)
                c.reset()  # RST
            finally:
                c.close()
            t.join(10)
            self.wait_clients(self.base.clients)
            self.assertEqual(call(self.sidecar, "GET", "fwd"), b"val")
        self.rounds(one_round)

    def test_close_with_blpop_pending(self):
        self.upstream_blocked0 = int(info(self.upstream, "clients")["blocked_clients"])
        self.blpop_then_close(reset=False)
        self.blpop_then_close(reset=True)
        self.blpop_then_close(reset=True, timeout="0.3")
        self.check_back()


if __name__ == "__main__":
    unittest.main()
