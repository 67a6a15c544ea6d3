#!/usr/bin/python3
"""Forwarded requests (proxy/forward.c, upstream/): their framing, and big replies.

Framing (fwd_request_exact):
A multibulk request is forwarded as the client's own bytes without being parsed a second time
only when its layout is exactly "*N\\r\\n" then "$len\\r\\narg\\r\\n" per argument. Redis (and the
sidecar's parser, which reads like Redis) does not check the byte after a header's '\\r' nor
the two bytes after an argument: such a lenient request must still be forwarded as the same
command (re-formatted), never as its raw bytes, which the upstream would read differently.
Each case also runs through a pipeline so the requests after it stay in step.

Big replies: a bulk too big for a pooled reply node is kept as its own RESP encoding, which
fwd_complete takes as the reply slot's buffer when the slot is empty (upstream_value_take_resp)
and encodes otherwise (in an MGET merge, in an array, behind other bytes): every shape must
reach the client byte for byte, in order, in pipelines mixing small and big replies.

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_forward.py -v
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_nearcache import NearCacheCase, sidecar_only  # noqa: E402


@sidecar_only
class ForwardFramingTest(NearCacheCase):
    # bcast with a prefix no key has: every GET and SET below is forwarded
    OPTS = dict(invalidation="bcast", bcast_prefixes="cached:")

    def setUp(self):
        super().setUp()
        self.start_pair(**self.OPTS)

    def roundtrip(self, raw, expect):
        """raw then a PING in one write: raw's reply is expect, and the PING still +PONG."""
        self.c.send(raw + b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(self.c.read_reply_bytes(), expect)
        self.assertEqual(self.c.read_reply_bytes(), b"+PONG\r\n")

    def test_exact_request_forwarded(self):
        self.roundtrip(b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n", b"+OK\r\n")
        self.roundtrip(b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n", b"$2\r\nv1\r\n")
        self.assertEqual(self.upc.call("GET", "k1"), b"v1")

    def test_argument_not_followed_by_crlf(self):
        # "v2" then "XY" where CRLF belongs: Redis skips the two bytes unread
        self.roundtrip(b"*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$2\r\nv2XY", b"+OK\r\n")
        self.assertEqual(self.upc.call("GET", "k2"), b"v2")
        self.roundtrip(b"*2\r\n$3\r\nGETab$2\r\nk2\r\n", b"$2\r\nv2\r\n")

    def test_header_cr_not_followed_by_lf(self):
        self.roundtrip(b"*3\r?$3\r\nSET\r\n$2\r\nk3\r\n$2\r\nv3\r\n", b"+OK\r\n")
        self.roundtrip(b"*2\r\n$3\r\nGET\r\n$2\r!k3\r\n", b"$2\r\nv3\r\n")
        self.assertEqual(self.upc.call("GET", "k3"), b"v3")

    def test_one_argument_and_empty_arguments(self):
        self.roundtrip(b"*1\r\n$6\r\nDBSIZE\r\n", b":0\r\n")
        self.roundtrip(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", b"+OK\r\n")
        self.roundtrip(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", b"$0\r\n\r\n")

    def test_long_argument_counts(self):
        # ten and more arguments, values whose length has several digits
        keys = [b"mk%d" % i for i in range(12)]
        args = [b"MSET"]
        for k in keys:
            args += [k, b"x" * 1234]
        raw = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        self.roundtrip(raw, b"+OK\r\n")
        self.assertEqual(self.upc.call("STRLEN", "mk11"), 1234)


@sidecar_only
class ForwardBigRepliesTest(NearCacheCase):
    OPTS = dict(invalidation="bcast", bcast_prefixes="cached:")

    def setUp(self):
        super().setUp()
        self.start_pair(**self.OPTS)

    @staticmethod
    def bulk(v):
        return b"$%d\r\n%s\r\n" % (len(v), v)

    def test_big_values_in_every_shape(self):
        sizes = [111, 112, 113, 200, 4096, 100 * 1024, 1 << 20]
        vals = {n: bytes((i * 7 + n) % 251 for i in range(n)) for n in sizes}
        for n, v in vals.items():
            self.assertEqual(self.upc.call("SET", "big%d" % n, v), "OK")
        self.upc.call("RPUSH", "lst", b"small", vals[200], vals[100 * 1024], b"")
        # one pipeline: single big GETs (the slot takes the upstream's buffer), each after a
        # small reply, an MGET mixing big, small and missing keys, an LRANGE of big elements
        cmds, want = [], []
        for n, v in vals.items():
            cmds.append(["GET", "big%d" % n])
            want.append(self.bulk(v))
            cmds.append(["PING"])
            want.append(b"+PONG\r\n")
        cmds.append(["MGET", "big4096", "nokey", "big111", "big102400"])
        want.append(b"*4\r\n" + self.bulk(vals[4096]) + b"$-1\r\n" + self.bulk(vals[111]) +
                    self.bulk(vals[100 * 1024]))
        cmds.append(["LRANGE", "lst", "0", "-1"])
        want.append(b"*4\r\n" + self.bulk(b"small") + self.bulk(vals[200]) +
                    self.bulk(vals[100 * 1024]) + self.bulk(b""))
        cmds.append(["GET", "big1048576"])
        want.append(self.bulk(vals[1 << 20]))
        raw = b"".join(b"*%d\r\n" % len(c) + b"".join(
            self.bulk(a if isinstance(a, bytes) else a.encode()) for a in c) for c in cmds)
        for _ in range(2):  # the second round runs on recycled slots and reply nodes
            self.c.send(raw)
            for w in want:
                self.assertEqual(self.c.read_reply_bytes(), w)

    def test_big_value_with_reply_off_and_skip(self):
        v = b"z" * 50000
        self.upc.call("SET", "bigz", v)
        self.c.send(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"
                    b"*2\r\n$3\r\nGET\r\n$4\r\nbigz\r\n*2\r\n$3\r\nGET\r\n$4\r\nbigz\r\n")
        self.assertEqual(self.c.read_reply_bytes(), self.bulk(v))


@sidecar_only
class ForwardBigRequestsTest(NearCacheCase):
    """A command of 16 KB or more is written to the upstream from the client's bytes
    (link_write_direct), after whatever the link's output buffer held, and what the socket does
    not take goes to that buffer. Values of 8 MB fill the socket: the first is written in part
    and its rest buffered, the small SET after it queues behind that rest, the second 8 MB one
    finds the buffer not empty and is buffered whole. Every value must land as sent, in
    order."""
    OPTS = dict(invalidation="bcast", bcast_prefixes="cached:")

    def setUp(self):
        super().setUp()
        self.start_pair(**self.OPTS)

    def test_big_requests_in_order(self):
        sizes = [16 * 1024 - 40, 16 * 1024, 100 * 1024, 8 << 20, 8 << 20]
        vals = [bytes((i * 13 + k) % 251 for i in range(n)) for k, n in enumerate(sizes)]
        cmds, want = [], []
        for k, v in enumerate(vals):
            cmds.append([b"SET", b"bigreq%d" % k, v])
            want.append(b"+OK\r\n")
            cmds.append([b"SET", b"small%d" % k, b"v%d" % k])
            want.append(b"+OK\r\n")
            cmds.append([b"APPEND", b"trail", b"%d," % k])  # order across the whole pipeline
            want.append(b":%d\r\n" % len(b"".join(b"%d," % j for j in range(k + 1))))
        for k in range(len(vals)):
            cmds.append([b"STRLEN", b"bigreq%d" % k])
            want.append(b":%d\r\n" % len(vals[k]))
        raw = b"".join(b"*%d\r\n" % len(c) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in cmds)
        self.c.send(raw)
        for w in want:
            self.assertEqual(self.c.read_reply_bytes(), w)
        for k, v in enumerate(vals):
            self.assertEqual(self.upc.call("GET", "bigreq%d" % k), v)
            self.assertEqual(self.upc.call("GET", "small%d" % k), b"v%d" % k)
        self.assertEqual(self.upc.call("GET", "trail"), b"0,1,2,3,4,")


if __name__ == "__main__":
    unittest.main()
