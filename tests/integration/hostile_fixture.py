#!/usr/bin/python3
"""What the hostile-client suites share (test_hostile.py: bad requests; test_hostile_clients.py:
bad connections): the reference redis-server, the sidecar per test class, the helpers that talk
raw RESP, and the checks every case ends with (HostileCase.check_back: PING on a new connection,
INFO clients back to its baseline, used_memory and VmRSS within the tolerances below).

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

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, parse_info, wait_until  # noqa: E402


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


def big_value(n):
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]
