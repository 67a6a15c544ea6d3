#!/usr/bin/python3
"""Hostile requests against the sidecar (issue 7, "Bad input"): absurd lengths, endless lines,
trickled requests, bytes of every kind; the connections that misbehave (never read, ten thousand
at once, half-closed and reset, over the query buffer limit) are test_hostile_clients.py's. The
memory tolerances and the checks after every case: hostile_fixture.py.

    SIDECAR_BIN=./build/sidecar /usr/bin/python3 tests/integration/test_hostile.py -v
    SIDECAR_ASAN=1 ASAN_OPTIONS=detect_leaks=1 SIDECAR_BIN=build/asan/sidecar \
        /usr/bin/python3 tests/integration/test_hostile.py -v

With SIDECAR_BIN=redis-server the whole suite is skipped: it compares the sidecar with
redis-server itself.

Every reply a Redis client can see is compared with a real redis-server 7 fed the same bytes
where both have the same limit. After every case the sidecar must still answer PING on a new
connection, INFO clients must be back to its baseline and its memory (INFO used_memory, and the
process's VmRSS) must not have grown beyond the tolerances of hostile_fixture.py. The cases that
depend on the near-cache path (forwarded replies, pinned blocking commands, verbatim forwarding)
run in both modes: standalone and in front of a redis-server upstream.
"""

import os
import select
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RespClient, encode_command, wait_until  # noqa: E402
from hostile_fixture import (  # noqa: E402
    big_value, ASAN, VALGRIND, SLOW, RSS_SLACK, MB, CLOSE_WAIT, proto_err, ref_server, vmrss, call,
    exchange, exchange_expect_close, config_set, Snapshot, HostileCase, setUpModule,
    tearDownModule,
)


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
                ref = exchange_expect_close(ref_server().port, payload)
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
        for port in (ref_server().port, self.sidecar.port):
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
        for port in (ref_server().port, self.sidecar.port):
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
                for port in (ref_server().port, self.sidecar.port):
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
            config_set(ref_server(), "requirepass", "")
            ref_server().password = None
        finally:
            super().tearDownClass()

    def test_unauthenticated_lengths(self):
        cases = [(b"*11\r\n", proto_err(b"unauthenticated multibulk length")),
                 (b"*1\r\n$16385\r\n", proto_err(b"unauthenticated bulk length")),
                 (b"*2\r\n$4\r\nAUTH\r\n$9223372036854775808\r\n", proto_err(b"invalid bulk length")),
                 (b"AUTH " + b"x" * (70 * 1024), proto_err(b"too big inline request"))]
        for payload, expected in cases:
            with self.subTest(payload=payload[:40]):
                ref = exchange_expect_close(ref_server().port, payload)
                self.assertEqual(ref, (expected, True), "redis-server itself (test premise)")
                self.assertEqual(exchange_expect_close(self.sidecar.port, payload), ref)
        # the same lengths are fine once authenticated
        for srv in (ref_server(), self.sidecar):
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


if __name__ == "__main__":
    unittest.main()
