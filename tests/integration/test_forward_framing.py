#!/usr/bin/python3
"""Forwarded requests and their framing (proxy/forward.c: fwd_request_exact).

A multibulk request is forwarded as the client's own bytes without being parsed a second time
only when its layout is exactly "*N\\r\\n" then "$len\\r\\narg\\r\\n" per argument. Redis (and the
sidecar's parser, which reads like Redis) does not check the byte after a header's '\\r' nor
the two bytes after an argument: such a lenient request must still be forwarded as the same
command (re-formatted), never as its raw bytes, which the upstream would read differently.
Each case also runs through a pipeline so the requests after it stay in step.

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_forward_framing.py -v
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


if __name__ == "__main__":
    unittest.main()
