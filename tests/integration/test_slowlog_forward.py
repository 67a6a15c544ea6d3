#!/usr/bin/python3
"""SLOWLOG of forwarded commands (near-cache mode): what is logged for a command the upstream
answers slowly, whatever path its arguments took to the log.

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_slowlog_forward.py -v

A forwarded command's capture is made at dispatch and becomes an entry only when its reply turns
out slow (proxy/slowlog.c): a multibulk request of at most 4 KB is kept as its own bytes and
parsed again at the reply, anything else (inline, larger, a big bulk read outside the query
buffer) in the logged form at once. Both must log the same thing as a command run here: the
arguments cut to 32 ("... (N more arguments)") and each to 128 bytes ("... (N more bytes)"),
the client's address and name, the time from dispatch to reply. The upstream is slowed by a
relay in front of it (faultrelay.py): delayed as a whole, or held after one command of a
pipeline so that only the commands after it are slow. Compared with the forms Redis 7 writes
(logged_form below, as in test_introspection.py's hard-coded expectations).

Owns: the test cases below and every server and relay they start (stopped at the end of each
test). Invariants: traffic only to 127.0.0.1; every wait is bounded (socket timeouts,
wait_until deadlines).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, RespClient, encode_command  # noqa: E402
from test_faults import FaultCase  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))

WAIT = 10.0            # seconds: bound on any reply or condition
DELAY_MS = 30          # the relay's delay per chunk and direction: a round trip >= 60 ms
SLOW_US = 10000        # slowlog-log-slower-than for "slow" (Redis's default)
HOLD_S = 0.3           # how long the relay holds the rest of a pipeline
HOLD_SLOW_US = 100000  # threshold for the held pipeline: far above the commands not held
MAX_ARGC = 32
MAX_STRING = 128
RAW_MAX = 4096         # slowlog.c's SLOWLOG_RAW_MAX: requests up to it are kept as bytes


def b(a):
    return a if isinstance(a, bytes) else str(a).encode()


def logged_form(args):
    """The arguments as SLOWLOG GET shows them (Redis 7's slowlogCreateEntry)."""
    args = [b(a) for a in args]
    argc = len(args)
    kept = min(argc, MAX_ARGC)
    out = []
    for i in range(kept):
        if kept != argc and i == kept - 1:
            out.append(b"... (%d more arguments)" % (argc - kept + 1))
        elif len(args[i]) > MAX_STRING:
            out.append(args[i][:MAX_STRING] + b"... (%d more bytes)" % (len(args[i]) - MAX_STRING))
        else:
            out.append(args[i])
    return out


def padded_to(total, *head):
    """head + one last argument sized so that the request's multibulk is total bytes long."""
    for n in range(total, 0, -1):
        args = list(head) + [b"p" * n]
        if len(encode_command(*args)) == total:
            return args
    raise AssertionError("no padding gives %d bytes" % total)


# Forwarded commands of every shape the capture must keep: short and long arguments (at and
# around the 128-byte cut), argument counts at and around the 32 cut, empty and binary
# arguments (CRLF and RESP headers inside one), commands the sidecar does not know (forwarded
# as they came), and requests at, just above and far above the raw capture's size limit.
def varied_commands():
    cmds = [
        ["RPUSH", "fl", "a"],
        ["RPUSH", "fl", b"x" * 128],
        ["RPUSH", "fl", b"x" * 129],
        ["RPUSH", "fl", b"y" * 200] + ["a%d" % i for i in range(40)],
        ["RPUSH", "fl"] + ["e%d" % i for i in range(30)],    # 32 arguments: no cut
        ["RPUSH", "fl"] + ["f%d" % i for i in range(31)],    # 33: "... (2 more arguments)"
        ["RPUSH", "fl", b"", b"\r\n", b"*3\r\n$1\r\n", b"\x00\xff" * 70],
        ["HSET", "fh", "f1", "v1", "f2", b"z" * 300],
        ["SADD", "fs"] + [b"m%d" % i + b"q" * (i * 7) for i in range(50)],
        ["INCRBY", "fn", "7"],
        ["XADD", "fx", "*", "f", b"w" * 140],               # unknown here: forwarded as it came
        padded_to(RAW_MAX - 1, "RPUSH", "fb"),
        padded_to(RAW_MAX, "RPUSH", "fb"),
        padded_to(RAW_MAX + 1, "RPUSH", "fb"),
        ["RPUSH", "fb", b"L" * 100000],
        ["RPUSH", "fl"] + [b"r" * 120 for _ in range(40)],  # > RAW_MAX and > 32 arguments
        ["MSET"] + [x for i in range(10) for x in ("fk%d" % i, b"v" * 64)],
        ["SET", "fset", b"s" * 64],
    ]
    return cmds


def inline_ok(cmd):
    """True when cmd can be sent as an inline line (no empty, blank or special argument)."""
    return all(b(a) and all(33 <= ch < 127 and ch not in b"'\"\\" for ch in b(a)) for a in cmd)


class SlowlogForwardTest(FaultCase):
    """An upstream, a relay in front of it, the sidecar (near-cache) in front of the relay
    (test_faults.FaultCase), with deadlines far above the relay's delays and holds."""

    sidecar_opts = dict(op_timeout_ms=int(WAIT * 1000), health_check_interval_ms=0)

    def setUp(self):
        super().setUp()
        self.assertEqual(self.c.call("CLIENT", "SETNAME", "fw"), "OK")

    def client(self):
        c = RespClient(self.sc.port, timeout=WAIT)
        self.addCleanup(c.close)
        return c

    def own_addr(self, c):
        return ("127.0.0.1:%d" % c.sock.getsockname()[1]).encode()

    def set_threshold(self, us):
        self.assertEqual(self.c.call("CONFIG", "SET", "slowlog-log-slower-than", str(us)), "OK")

    def reset(self):
        self.assertEqual(self.c.call("SLOWLOG", "RESET"), "OK")

    def entries(self):
        """SLOWLOG GET -1, oldest first."""
        return list(reversed(self.c.call("SLOWLOG", "GET", "-1")))

    def pipeline(self, cmds, inline=()):
        """Sends cmds in one write (those whose index is in inline as inline lines) and reads
        their replies; none may be a connection-level failure."""
        data = b"".join((b" ".join(b(a) for a in cmd) + b"\r\n") if i in inline
                        else encode_command(*cmd) for i, cmd in enumerate(cmds))
        self.c.send(data)
        replies = [self.c.read_reply(timeout=WAIT) for _ in cmds]
        for cmd, r in zip(cmds, replies):
            self.assertNotIsInstance(r, Error, cmd[:3])
        return replies

    def assert_logged(self, entries, cmds, client, min_us=0):
        self.assertEqual([e[3] for e in entries], [logged_form(cmd) for cmd in cmds])
        ids = [e[0] for e in entries]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), len(ids))
        for e in entries:
            self.assertGreaterEqual(e[2], min_us, e[3][:2])
            self.assertLess(e[2], 30_000_000)
            self.assertEqual(e[4], self.own_addr(client))
            self.assertEqual(e[5], b"fw")

    def test_slow_upstream_logs_exact_arguments(self):
        # every forward takes >= 60 ms: each one is logged as it came, cut as Redis cuts it
        self.set_threshold(SLOW_US)
        cmds = varied_commands()
        self.relay.set_mode("delay", delay_ms=DELAY_MS, role="data")
        self.reset()
        for cmd in cmds:  # one at a time: each the only one in flight
            self.assertNotIsInstance(self.c.call(*cmd, timeout=WAIT), Error, cmd[:3])
        entries = [e for e in self.entries() if e[3][:1] != [b"SLOWLOG"]]
        self.assert_logged(entries, cmds, self.c, min_us=2 * DELAY_MS * 1000 - 5000)
        self.assertEqual(entries[3][3][2], b"y" * 128 + b"... (72 more bytes)")
        self.assertEqual(entries[3][3][-1], b"... (12 more arguments)")
        self.assertEqual(entries[5][3][-1], b"... (2 more arguments)")

    def test_slow_upstream_pipelined_and_inline(self):
        # the same commands in one pipeline, some of them inline (captured in the logged form
        # at once), all slow: one entry each, in order
        self.set_threshold(SLOW_US)
        cmds = [c for c in varied_commands() if len(encode_command(*c)) < 60000]
        inline = {i for i, c in enumerate(cmds) if inline_ok(c)}
        self.relay.set_mode("delay", delay_ms=DELAY_MS, role="data")
        self.reset()
        self.pipeline(cmds, inline)
        entries = [e for e in self.entries() if e[3][:1] != [b"SLOWLOG"]]
        self.assert_logged(entries, cmds, self.c, min_us=2 * DELAY_MS * 1000 - 5000)

    def test_pipeline_logs_only_the_slow_ones(self):
        # the upstream reads the pipeline up to the marker at once and the rest HOLD_S later:
        # exactly the commands after the marker are slow
        self.set_threshold(HOLD_SLOW_US)
        fast = [["RPUSH", "pl", b"x" * 200], ["INCR", "pn"], ["HSET", "ph", "f", "v"],
                ["RPUSH", "pl"] + ["a%d" % i for i in range(40)], ["INCR", "pmark"]]
        slow = [["RPUSH", "pl", b"y" * 300], ["RPUSH", "pl"] + ["b%d" % i for i in range(35)],
                ["INCR", "pn"], ["XADD", "px", "*", b"\r\n$3\r\n", "v"],
                padded_to(RAW_MAX + 10, "RPUSH", "pl"), ["HSET", "ph", "g", b"w" * 1000]]
        other = self.client()  # a second client's fast forward afterwards is not logged
        self.reset()
        self.relay.hold_after(encode_command(*fast[-1]))
        data = b"".join(encode_command(*cmd) for cmd in fast + slow)
        self.c.send(data)
        replies = [self.c.read_reply(timeout=WAIT) for _ in fast]
        self.assertEqual(replies[1], 1)
        self.assertTrue(harness.wait_until(self.relay.held, 5), "the relay never split the stream")
        time.sleep(HOLD_S)
        self.relay.release()
        for _ in slow:
            self.c.read_reply(timeout=WAIT)
        self.assertEqual(other.call("RPUSH", "other", "v"), 1)
        entries = [e for e in self.entries() if e[3][:1] != [b"SLOWLOG"]]
        self.assert_logged(entries, slow, self.c, min_us=HOLD_SLOW_US)

    def test_threshold_fast_none_zero_all(self):
        # fast forwards (each alone, twice): nothing with 10000 us
        cmds = [c for c in varied_commands() if len(encode_command(*c)) < 60000]
        self.set_threshold(SLOW_US)
        self.reset()
        for cmd in cmds + cmds:
            self.assertNotIsInstance(self.c.call(*cmd, timeout=WAIT), Error, cmd[:3])
        self.assertEqual(self.entries(), [])
        # every one with 0 (in order, exactly): many rounds of mixed sizes in one pipeline, so
        # that recycled captures are reused across sizes (a small capture in a large spare, a
        # large one replacing a small spare) and more are in flight at once than are kept
        rounds = cmds * 20
        inline = {i for i, c in enumerate(rounds) if i % 7 == 0 and inline_ok(c)}
        self.set_threshold(0)
        self.pipeline(rounds, inline)
        self.assertEqual(self.c.call("CONFIG", "SET", "slowlog-max-len", "1000"), "OK")
        self.reset()
        self.pipeline(rounds, inline)
        entries = self.entries()
        self.assertEqual(entries[0][3], [b"SLOWLOG", b"RESET"])
        self.assert_logged(entries[1:], rounds, self.c)
        # slowlog-max-len still trims as forwards are logged
        self.assertEqual(self.c.call("CONFIG", "SET", "slowlog-max-len", "5"), "OK")
        self.pipeline(cmds[:8])
        self.assertEqual(self.c.call("SLOWLOG", "LEN"), 5)
        entries = self.entries()
        self.assertEqual(entries[-1][3], [b"SLOWLOG", b"LEN"])
        self.assertEqual([e[3] for e in entries[:4]], [logged_form(c) for c in cmds[4:8]])

    def test_big_argument_read_outside_the_buffer(self):
        # a bulk of 32 KB or more may be read straight into its own buffer: no request bytes,
        # the logged form is made at once
        self.set_threshold(0)
        self.reset()
        big = b"B" * (300 * 1024)
        self.assertEqual(self.c.call("SET", "bigk", big, timeout=WAIT), "OK")
        self.assertEqual(self.c.call("RPUSH", "bigl", big, "tail", timeout=WAIT), 2)
        entries = [e for e in self.entries() if e[3][:1] != [b"SLOWLOG"]]
        self.assertEqual([e[3] for e in entries][:2],
                         [logged_form(["SET", "bigk", big]),
                          logged_form(["RPUSH", "bigl", big, "tail"])])


if __name__ == "__main__":
    unittest.main()
