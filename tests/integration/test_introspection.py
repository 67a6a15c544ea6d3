#!/usr/bin/python3
"""Introspection through RESP (issue 5): SLOWLOG, MONITOR, INFO errorstats, CLIENT LIST / INFO
fields and CLIENT KILL, each against what redis-server 7.0 does.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_introspection.py -v
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_introspection.py -v

The deterministic replies (errors, lengths, CONFIG GET/SET of the two slowlog options, CLIENT
KILL's errors) are in diff/ops.txt; this file checks what cannot be compared byte for byte:
SLOWLOG GET's entries (shape, ids, the argument forms "... (N more arguments)" and "... (N more
bytes)", "(redacted)"), MONITOR's lines (normalized: timestamp and client port replaced, then
compared with redis-server's lines for the same commands), INFO errorstats after the same
errors, CLIENT LIST's field names and order for the same kinds of client, CLIENT KILL's effect
on connections. Near-cache mode (a redis-server upstream, harness.make_upstream/make_nearcache):
a forwarded command is timed to its reply and logged with its arguments, MONITOR shows what
clients send through the sidecar (hits, forwards, commands unknown to the sidecar) and nothing
of the sidecar's own upstream traffic, upstream error replies count in errorstats.

With SIDECAR_BIN=redis-server the tests that compare with redis-server compare it with itself
and the sidecar-only ones are skipped.

Owns: the test cases below and every server they start (stopped by pid at the end of each test).
Invariants: traffic only to 127.0.0.1; every wait is bounded (socket timeouts, poll deadlines).
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Error, RespClient  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)
sidecar_only = unittest.skipIf(REDIS_MODE, "sidecar-only (SIDECAR_BIN is redis-server)")

WAIT = 10.0          # seconds: bound on any reply or condition
QUIET = 0.3          # seconds: how long "nothing more arrives" is watched
MONITOR_LINE = re.compile(r"^(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$")
OK = b"+OK\r\n"


class Base(unittest.TestCase):
    """Servers and clients that are stopped / closed when the test ends."""

    def _stop_checked(self, server):
        try:
            server.stop(check=True)
        finally:
            server.cleanup()

    def _stop_quietly(self, server):
        try:
            server.stop(check=False)
        finally:
            server.cleanup()

    def start_target(self, config=None):
        """The server under test (SIDECAR_BIN), started."""
        srv = harness.make_server(SIDECAR_BIN, config=config, name="target")
        self.addCleanup(self._stop_quietly if REDIS_MODE else self._stop_checked, srv)
        srv.start()
        return srv

    def start_redis(self):
        """A reference redis-server, started."""
        srv = harness.RedisServer(name="redis-ref")
        self.addCleanup(self._stop_quietly, srv)
        srv.start()
        return srv

    def start_nearcache(self, **opts):
        """(upstream, sidecar): a redis-server upstream and the sidecar in front of it, ready."""
        up = harness.make_upstream(port=harness.free_port())
        self.addCleanup(self._stop_quietly, up)
        up.start(attempts=1)
        sc = harness.make_nearcache(SIDECAR_BIN, up.port, **opts)
        self.addCleanup(self._stop_checked, sc)
        sc.start()
        harness.nearcache_wait_ready(sc)
        return up, sc

    def client(self, server, **kw):
        c = RespClient(server.port, timeout=WAIT, **kw)
        self.addCleanup(c.close)
        return c


def client_fields(line):
    """A CLIENT LIST / CLIENT INFO line as an ordered list of (field, value)."""
    out = []
    for item in line.strip().split(" "):
        k, _, v = item.partition("=")
        out.append((k, v))
    return out


def own_addr(c):
    """c's address as the server sees it ("127.0.0.1:port")."""
    return "127.0.0.1:%d" % c.sock.getsockname()[1]


def client_id(c):
    return c.call("CLIENT", "ID")


def slowlog(c, count=-1):
    return c.call("SLOWLOG", "GET", count)


# ---------------------------------------------------------------------------------------------
# SLOWLOG


class SlowlogTest(Base):
    def setUp(self):
        self.srv = self.start_target()
        self.c = self.client(self.srv)
        self.assertEqual(self.c.call("CONFIG", "SET", "slowlog-log-slower-than", "0"), "OK")
        self.assertEqual(self.c.call("SLOWLOG", "RESET"), "OK")

    def test_entry_shape_and_argument_forms(self):
        c = self.c
        self.assertEqual(c.call("CLIENT", "SETNAME", "tester"), "OK")
        long_value = b"v" * 200
        self.assertEqual(c.call("SET", "k", long_value), "OK")
        self.assertEqual(c.call("ECHO", b"e" * 128), b"e" * 128)
        self.assertEqual(c.call("ECHO", b"f" * 129), b"f" * 129)
        many = ["RPUSH", "list"] + ["a%d" % i for i in range(39)]          # 41 arguments
        self.assertEqual(c.call(*many), 39)
        exactly = ["RPUSH", "list2"] + ["b%d" % i for i in range(30)]      # 32 arguments
        self.assertEqual(c.call(*exactly), 30)
        wide = ["RPUSH", "list3", b"x" * 300] + ["c%d" % i for i in range(40)]
        self.assertEqual(c.call(*wide), 41)
        before = time.time()
        entries = slowlog(c, 10)
        # newest first: RPUSH list3, RPUSH list2, RPUSH list, ECHO f, ECHO e, SET, CLIENT SETNAME,
        # SLOWLOG RESET (the CONFIG SET before it was cleared by the reset)
        self.assertEqual(len(entries), 8, entries)
        ids = [e[0] for e in entries]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(ids, list(range(ids[0], ids[0] - 8, -1)))
        for e in entries:
            self.assertEqual(len(e), 6, e)
            eid, when, duration, args, peer, name = e
            self.assertIsInstance(eid, int)
            self.assertLessEqual(abs(when - before), 5)
            self.assertGreaterEqual(duration, 0)
            self.assertLess(duration, 5_000_000)
            self.assertIsInstance(args, list)
            self.assertEqual(peer, own_addr(c).encode())
        self.assertEqual(entries[-1][3], [b"SLOWLOG", b"RESET"])
        self.assertEqual(entries[-1][5], b"")           # no name yet when it was logged
        self.assertEqual(entries[-2][3], [b"CLIENT", b"SETNAME", b"tester"])
        self.assertEqual(entries[-2][5], b"tester")
        self.assertEqual(entries[-3][3], [b"SET", b"k", b"v" * 128 + b"... (72 more bytes)"])
        self.assertEqual(entries[-4][3], [b"ECHO", b"e" * 128])
        self.assertEqual(entries[-5][3], [b"ECHO", b"f" * 128 + b"... (1 more bytes)"])
        want = [a.encode() for a in many[:31]] + [b"... (10 more arguments)"]
        self.assertEqual(entries[-6][3], want)
        self.assertEqual(entries[-7][3], [a.encode() for a in exactly])
        want = [b"RPUSH", b"list3", b"x" * 128 + b"... (172 more bytes)"] + \
            [("c%d" % i).encode() for i in range(28)] + [b"... (12 more arguments)"]
        self.assertEqual(entries[-8][3], want)

    def test_redacted_arguments(self):
        c = self.c
        self.assertIsInstance(c.call("AUTH", "secret"), Error)
        self.assertEqual(c.call("AUTH", "default", "secret"), "OK")     # no password: any
        self.assertIsInstance(c.call("AUTH", "a", "b", "c"), Error)      # syntax error: as sent
        self.assertIsInstance(c.call("HELLO", "2", "AUTH", "default", "x"), list)
        self.assertIsInstance(c.call("HELLO", "2", "AUTH", "default"), Error)  # as sent
        self.assertEqual(c.call("CONFIG", "SET", "requirepass", ""), "OK")
        args = [e[3] for e in slowlog(c, 6)]
        self.assertEqual(args, [
            [b"CONFIG", b"SET", b"requirepass", b"(redacted)"],
            [b"HELLO", b"2", b"AUTH", b"default"],
            [b"HELLO", b"2", b"AUTH", b"(redacted)", b"(redacted)"],
            [b"AUTH", b"a", b"b", b"c"],
            [b"AUTH", b"(redacted)", b"(redacted)"],
            [b"AUTH", b"(redacted)"],
        ])

    def test_count_and_max_len(self):
        c = self.c
        for _ in range(15):
            self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(len(c.call("SLOWLOG", "GET")), 10)             # the default count
        self.assertEqual(len(c.call("SLOWLOG", "GET", "2")), 2)
        self.assertEqual(c.call("SLOWLOG", "GET", "0"), [])
        self.assertEqual(len(slowlog(c, -1)), 19)  # RESET, 15 PING, 3 GET
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-max-len", "3"), "OK")
        self.assertEqual(c.call("SLOWLOG", "LEN"), 3)                    # trimmed at the SET
        for _ in range(5):
            c.call("PING")
        entries = slowlog(c, -1)
        self.assertEqual(len(entries), 3)
        self.assertEqual([e[0] for e in entries], [entries[0][0] - i for i in range(3)])

    def test_exec_refused_and_off(self):
        c = self.c
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "k", "v"), "QUEUED")
        self.assertEqual(c.call("EXEC"), ["OK"])
        self.assertIsInstance(c.call("GET"), Error)                      # refused: not logged
        self.assertIsInstance(c.call("NOSUCHCOMMAND"), Error)
        args = [e[3] for e in slowlog(c, -1)]
        self.assertEqual(args, [[b"SET", b"k", b"v"], [b"MULTI"], [b"SLOWLOG", b"RESET"]])
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "1000000"), "OK")
        n = c.call("SLOWLOG", "LEN")
        for _ in range(5):
            c.call("PING")
        self.assertEqual(c.call("SLOWLOG", "LEN"), n)
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "-1"), "OK")
        c.call("PING")
        self.assertEqual(c.call("SLOWLOG", "LEN"), n)
        # CONFIG RESETSTAT does not clear it; SLOWLOG RESET does, ids go on
        last_id = slowlog(c, 1)[0][0]
        self.assertEqual(c.call("CONFIG", "RESETSTAT"), "OK")
        self.assertEqual(c.call("SLOWLOG", "LEN"), n)
        self.assertEqual(c.call("SLOWLOG", "RESET"), "OK")
        self.assertEqual(c.call("SLOWLOG", "LEN"), 0)
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "0"), "OK")
        c.call("PING")
        self.assertGreater(slowlog(c, 1)[0][0], last_id)

    def test_other_clients_are_logged_with_their_address_and_name(self):
        other = self.client(self.srv)
        self.assertEqual(other.call("CLIENT", "SETNAME", "worker"), "OK")
        self.assertEqual(other.call("SET", "x", "1"), "OK")
        e = slowlog(self.c, 1)[0]
        self.assertEqual(e[3], [b"SET", b"x", b"1"])
        self.assertEqual(e[4], own_addr(other).encode())
        self.assertEqual(e[5], b"worker")


@sidecar_only
class SlowlogNearcacheTest(Base):
    def test_forwarded_command_timed_to_its_reply(self):
        up, sc = self.start_nearcache()
        c = self.client(sc)
        self.assertEqual(c.call("SLOWLOG", "RESET"), "OK")             # default: 10000 us
        self.assertEqual(c.call("SET", "k", "v"), "OK")
        self.assertEqual(c.call("GET", "k"), b"v")
        # fast forwards: their captures are recycled, and the slow one below reuses one
        self.assertEqual(c.call("RPUSH", "l", "a" * 100, "b", "c", "d", "e", "f"), 6)
        self.assertEqual(c.call("DEBUG", "SLEEP", "0.05"), "OK")         # forwarded, 50 ms
        entries = slowlog(c, -1)
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0][3], [b"DEBUG", b"SLEEP", b"0.05"])
        self.assertGreaterEqual(entries[0][2], 50_000)
        self.assertLess(entries[0][2], 5_000_000)
        self.assertEqual(entries[0][4], own_addr(c).encode())
        # off: nothing is kept
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "-1"), "OK")
        self.assertEqual(c.call("DEBUG", "SLEEP", "0.02"), "OK")
        self.assertEqual(c.call("SLOWLOG", "LEN"), 1)

    def test_forwarded_arguments_and_hits(self):
        up, sc = self.start_nearcache()
        c = self.client(sc)
        self.assertEqual(c.call("CLIENT", "SETNAME", "nc"), "OK")
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "0"), "OK")
        self.assertEqual(c.call("SLOWLOG", "RESET"), "OK")
        many = ["RPUSH", "l"] + [b"y" * 200] + ["a%d" % i for i in range(40)]
        self.assertEqual(c.call(*many), 41)                               # a forwarded write
        self.assertEqual(c.call("SET", "k", "v"), "OK")
        self.assertEqual(c.call("GET", "k"), b"v")                        # a hit (write-through)
        self.assertEqual(c.call("XADD", "s", "1-1", "f", "v"), b"1-1")     # unknown: forwarded
        args = [e[3] for e in slowlog(c, 5)]
        self.assertEqual(args[0], [b"XADD", b"s", b"1-1", b"f", b"v"])
        self.assertEqual(args[1], [b"GET", b"k"])
        self.assertEqual(args[2], [b"SET", b"k", b"v"])
        want = [b"RPUSH", b"l", b"y" * 128 + b"... (72 more bytes)"] + \
            [("a%d" % i).encode() for i in range(28)] + [b"... (12 more arguments)"]
        self.assertEqual(args[3], want)
        self.assertEqual(args[4], [b"SLOWLOG", b"RESET"])
        for e in slowlog(c, 5):
            self.assertEqual(e[5], b"nc")

    def test_client_gone_before_the_reply(self):
        up, sc = self.start_nearcache()
        c = self.client(sc)
        self.assertEqual(c.call("CONFIG", "SET", "slowlog-log-slower-than", "0"), "OK")
        self.assertEqual(c.call("SLOWLOG", "RESET"), "OK")
        with RespClient(sc.port, timeout=WAIT) as gone:
            gone.send(harness.encode_command("DEBUG", "SLEEP", "0.2"))
            time.sleep(0.05)
            gone.reset()  # gone at once (a close() is a half-close, still answered)
        time.sleep(0.3)
        # the forward of a client that left is never logged (its capture is freed)
        args = [e[3] for e in slowlog(c, -1)]
        self.assertEqual(args, [[b"SLOWLOG", b"RESET"]])


# ---------------------------------------------------------------------------------------------
# MONITOR


def read_monitor_lines(m, want=None, quiet=QUIET):
    """Status lines the monitor m receives: until `want` lines came (then a short quiet check),
    or until nothing comes for `quiet` seconds. Bounded by WAIT."""
    lines = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            r = m.read_reply(timeout=quiet)
        except TimeoutError:
            break
        lines.append(r)
        if want is not None and len(lines) > want:
            break
    return lines


def normalize(line, addr):
    """A monitor line with its timestamp and the client's address replaced."""
    mo = MONITOR_LINE.match(line)
    if not mo:
        return "<bad line %r>" % line
    where = "C" if mo.group(4) == addr else mo.group(4)
    return "[%s %s] %s" % (mo.group(3), where, mo.group(5))


MONITOR_SCRIPT = [
    ("SET", "k", b'a b"c\\\x00\x01\xff\n\r\t\x07\x08\x7f\x80'),
    ("GET", "k"),
    ("AUTH", "secret"),
    ("AUTH", "default", "secret"),
    ("AUTH", "a", "b", "c"),
    ("HELLO", "2", "AUTH", "default", "pw"),
    ("HELLO", "2", "SETNAME", "n1"),
    ("CONFIG", "GET", "maxmemory"),        # admin: not shown
    ("CLIENT", "LIST"),                    # admin: not shown
    ("CLIENT", "ID"),
    ("SLOWLOG", "LEN"),                    # admin: not shown
    ("SLOWLOG", "HELP"),
    ("NOSUCHCOMMAND", "x"),                # refused: not shown
    ("GET",),                              # refused: not shown
    ("MULTI",),
    ("SET", "a", "1"),                     # shown when EXEC runs it
    ("INCR", "a"),
    ("EXEC",),
    ("EXEC",),                             # an error from the handler: shown
    ("SELECT", "3"),
    ("SET", "in3", "x"),
    ("SELECT", "0"),
    ("ECHO", ""),
    ("PING",),
]


class MonitorTest(Base):
    def run_script(self, server):
        """MONITOR on one connection, MONITOR_SCRIPT on another: the normalized lines."""
        m = self.client(server)
        self.assertEqual(m.call_raw("MONITOR"), OK)
        c = self.client(server)
        for cmd in MONITOR_SCRIPT:
            c.call_raw(*cmd)
        lines = read_monitor_lines(m)
        return [normalize(line, own_addr(c)) for line in lines]

    def test_lines_as_redis(self):
        want = self.run_script(self.start_redis())
        got = self.run_script(self.start_target())
        self.assertEqual(got, want)
        # what the script shows, spelled out (so that a change in both would be seen too)
        self.assertEqual(got[0], r'[0 C] "SET" "k" "a b\"c\\\x00\x01\xff\n\r\t\a\b\x7f\x80"')
        self.assertIn('[0 C] "AUTH" "(redacted)"', got)
        self.assertIn('[0 C] "AUTH" "(redacted)" "(redacted)"', got)
        self.assertIn('[0 C] "HELLO" "2" "AUTH" "(redacted)" "(redacted)"', got)
        self.assertIn('[3 C] "SELECT" "3"', got)
        self.assertIn('[3 C] "SET" "in3" "x"', got)
        i = got.index('[0 C] "SET" "a" "1"')
        self.assertEqual(got[i - 1:i + 3], ['[0 C] "MULTI"', '[0 C] "SET" "a" "1"',
                                            '[0 C] "INCR" "a"', '[0 C] "EXEC"'])
        for hidden in ('"CONFIG"', '"CLIENT" "LIST"', '"SLOWLOG" "LEN"', '"NOSUCHCOMMAND"'):
            self.assertFalse([line for line in got if hidden in line], hidden)

    def test_line_format_and_monitor_rules(self):
        srv = self.start_target()
        m = self.client(srv)
        mid = client_id(m)
        self.assertEqual(m.call_raw("MONITOR"), OK)
        c = self.client(srv)
        before = time.time()
        self.assertEqual(c.call("SET", "k", "v"), "OK")
        line = read_monitor_lines(m, want=1)[0]
        mo = MONITOR_LINE.match(line)
        self.assertTrue(mo, line)
        self.assertLessEqual(abs(int(mo.group(1)) + int(mo.group(2)) / 1e6 - before), 5)
        self.assertEqual(mo.group(4), own_addr(c))
        self.assertEqual(mo.group(5), '"SET" "k" "v"')
        # CLIENT LIST: flags=O, cmd=monitor
        listing = c.call("CLIENT", "LIST", "ID", str(mid)).decode()
        fields = dict(client_fields(listing))
        self.assertEqual((fields["flags"], fields["cmd"]), ("O", "monitor"))
        # keys are not for a monitor (a replica-like client); refused commands are not shown
        self.assertEqual(m.call("GET", "k"), "ERR Replica can't interact with the keyspace")
        self.assertEqual(m.call("SET", "k", "v"), "ERR Replica can't interact with the keyspace")
        # a refused command is still the last one CLIENT LIST names, as Redis's lastcmd
        listing = c.call("CLIENT", "LIST", "ID", str(mid)).decode()
        self.assertEqual(dict(client_fields(listing))["cmd"], "set")
        # a second MONITOR gets no reply; PING gets +PONG and then its own line
        m.send(harness.encode_command("MONITOR"))
        m.send(harness.encode_command("PING"))
        self.assertEqual(m.read_reply(), "PONG")
        self.assertEqual(normalize(m.read_reply(), own_addr(m)), '[0 C] "PING"')
        # RESET ends it: the commands of others are no longer shown
        self.assertEqual(m.call("RESET"), "RESET")
        self.assertEqual(c.call("SET", "k2", "v"), "OK")
        self.assertEqual(m.call("GET", "k2"), b"v")
        self.assertEqual(read_monitor_lines(m), [])

    @sidecar_only
    def test_monitor_that_does_not_read_is_disconnected(self):
        srv = self.start_target()
        c = self.client(srv)
        self.assertEqual(c.call("CONFIG", "SET", "server.client_output_buffer_limit", "1mb"), "OK")
        m = self.client(srv, rcvbuf=4096)
        mid = client_id(m)
        self.assertEqual(m.call_raw("MONITOR"), OK)
        value = b"x" * (100 * 1024)
        gone = False
        for _ in range(200):                       # at most ~20 MB of lines
            self.assertEqual(c.call("SET", "big", value), "OK")
            if not c.call("CLIENT", "LIST", "ID", str(mid)):
                gone = True
                break
        self.assertTrue(gone, "the monitor was never disconnected")
        self.assertTrue(harness.wait_until(
            lambda: "closed for overcoming of output buffer limits" in srv.stderr_text(), WAIT))
        self.assertEqual(c.call("PING"), "PONG")

    @sidecar_only
    def test_nearcache_shows_what_clients_send(self):
        up, sc = self.start_nearcache()
        m = self.client(sc)
        self.assertEqual(m.call_raw("MONITOR"), OK)
        c = self.client(sc)
        script = [
            (("PING",), '"PING"'),                                  # local
            (("GET", "k"), '"GET" "k"'),                            # a miss: forwarded
            (("SET", "k", "v"), '"SET" "k" "v"'),                   # a write: forwarded
            (("GET", "k"), '"GET" "k"'),                            # a hit
            (("MGET", "k", "k2"), '"MGET" "k" "k2"'),               # split
            (("XADD", "s", "1-1", "f", "v"), '"XADD" "s" "1-1" "f" "v"'),  # unknown: forwarded
            (("DEBUG", "SLEEP", "0"), '"DEBUG" "SLEEP" "0"'),
            (("CONFIG", "GET", "maxmemory"), None),                 # admin: not shown
            (("AUTH", "x"), '"AUTH" "(redacted)"'),                 # local, redacted
        ]
        for cmd, _ in script:
            c.call(*cmd)
        want = ["[0 C] " + line for _, line in script if line]
        got = [normalize(line, own_addr(c)) for line in read_monitor_lines(m, quiet=0.5)]
        # nothing of the sidecar's own upstream traffic (tracking, subscriber, fills) shows
        self.assertEqual(got, want)
        # the upstream did get them (its own MONITOR is not relayed to the sidecar's monitors)
        self.assertEqual(harness.commandstats(up).get("xadd"), 1)


# ---------------------------------------------------------------------------------------------
# INFO errorstats


ERROR_SCRIPT = [
    ("NOSUCHCOMMAND",),
    ("GET",),
    ("SET", "s", "v"),
    ("LPUSH", "s", "x"),
    ("LPUSH", "s", "y"),
    ("INCR", "s"),
    ("MULTI",),
    ("NOSUCHCOMMAND",),
    ("EXEC",),
    ("EXEC",),
    ("AUTH", "x", "y"),
    ("AUTH", "x"),
    ("HELLO", "4"),
    ("SLOWLOG", "GET", "x"),
    ("CONFIG", "SET", "maxmemory", "lots"),
    ("CLIENT", "KILL", "1.2.3.4:5"),
    ("SUBSCRIBE", "ch"),
    ("GET", "k"),                          # in the subscriber context: refused
]


def errorstats(server):
    info = harness.info_dict(server, "errorstats")
    return {k: v for k, v in info.items() if k.startswith("errorstat_")}


class ErrorstatsTest(Base):
    def run_errors(self, server):
        with RespClient(server.port, timeout=WAIT) as c:
            self.assertEqual(c.call("CONFIG", "RESETSTAT"), "OK")
            for cmd in ERROR_SCRIPT:
                c.call(*cmd)
        total = harness.info_dict(server, "stats")["total_error_replies"]
        return errorstats(server), total

    def test_counts_as_redis(self):
        want = self.run_errors(self.start_redis())
        srv = self.start_target()
        got = self.run_errors(srv)
        self.assertEqual(got, want)
        self.assertEqual(got[0]["errorstat_WRONGTYPE"], "count=2")
        self.assertIn("errorstat_EXECABORT", got[0])
        self.assertIn("errorstat_WRONGPASS", got[0])
        self.assertIn("errorstat_NOPROTO", got[0])
        # in the default INFO, in all / everything, cleared by CONFIG RESETSTAT
        with RespClient(srv.port, timeout=WAIT) as c:
            for args in ((), ("default",), ("all",), ("everything",)):
                self.assertIn(b"# Errorstats\r\nerrorstat_ERR:count=", c.call("INFO", *args))
            self.assertNotIn(b"Errorstats", c.call("INFO", "commandstats"))
            self.assertEqual(c.call("CONFIG", "RESETSTAT"), "OK")
        self.assertEqual(errorstats(srv), {})

    @sidecar_only
    def test_nearcache_counts_upstream_errors(self):
        up, sc = self.start_nearcache()
        with RespClient(sc.port, timeout=WAIT) as c:
            self.assertEqual(c.call("CONFIG", "RESETSTAT"), "OK")
            self.assertEqual(c.call("SET", "s", "v"), "OK")
            self.assertIsInstance(c.call("LPUSH", "s", "x"), Error)            # upstream's
            self.assertIsInstance(c.call("XADD", "s", "*", "f", "v"), Error)   # unknown here
            self.assertIsInstance(c.call("EVAL", "return redis.error_reply('MYERR boom')", "0"),
                                  Error)
            self.assertIsInstance(c.call("GET"), Error)                         # ours
        self.assertEqual(errorstats(sc), {"errorstat_ERR": "count=1",
                                          "errorstat_MYERR": "count=1",
                                          "errorstat_WRONGTYPE": "count=2"})
        self.assertEqual(harness.info_dict(sc, "stats")["total_error_replies"], "4")
        # an upstream that is gone: "-ERR upstream unavailable: ..." counts as ERR
        up.stop(check=False)
        with RespClient(sc.port, timeout=WAIT) as c:
            self.assertTrue(str(c.call("GET", "nope")).startswith("ERR upstream"))
        self.assertEqual(errorstats(sc)["errorstat_ERR"], "count=2")


# ---------------------------------------------------------------------------------------------
# CLIENT LIST / CLIENT INFO


class ClientListTest(Base):
    COMPARED = ("name", "flags", "db", "sub", "psub", "ssub", "multi", "cmd", "user", "redir",
                "resp", "events", "obl", "oll", "omem")

    def kinds(self, server):
        """One client of each kind, left in its state: {kind: its CLIENT LIST line (fields)}."""
        named, in_multi, sub, mon = (self.client(server) for _ in range(4))
        ids = {"named": client_id(named), "multi": client_id(in_multi), "sub": client_id(sub),
               "monitor": client_id(mon)}
        named.call("CLIENT", "SETNAME", "app")
        named.call("SELECT", "2")
        named.call("PING")
        in_multi.call("MULTI")
        in_multi.call("SET", "a", "1")
        in_multi.call("GET", "a")
        sub.call("SUBSCRIBE", "c1", "c2")
        sub.read_reply()
        sub.call("PSUBSCRIBE", "p*")
        self.assertEqual(mon.call_raw("MONITOR"), OK)
        observer = self.client(server)
        out = {}
        for kind, cid in ids.items():
            line = observer.call("CLIENT", "LIST", "ID", str(cid)).decode()
            out[kind] = client_fields(line)
        out["self"] = client_fields(observer.call("CLIENT", "INFO").decode())
        return out

    def test_fields_as_redis(self):
        want = self.kinds(self.start_redis())
        got = self.kinds(self.start_target())
        for kind in want:
            want_names = [k for k, _ in want[kind]]
            got_names = [k for k, _ in got[kind]]
            # Redis 7.0's fields in its order, then (sidecar) Redis 7.2's lib-name, lib-ver
            extra = [] if REDIS_MODE else ["lib-name", "lib-ver"]
            self.assertEqual(got_names, want_names + extra, kind)
            w, g = dict(want[kind]), dict(got[kind])
            for field in self.COMPARED:
                self.assertEqual(g[field], w[field], (kind, field, got[kind]))
            for field in ("id", "fd", "age", "idle", "qbuf", "qbuf-free", "argv-mem",
                          "multi-mem", "rbs", "rbp", "tot-mem"):
                self.assertRegex(g[field], r"^\d+$", (kind, field))
            self.assertRegex(g["addr"], r"^127\.0\.0\.1:\d+$")
            self.assertRegex(g["laddr"], r"^127\.0\.0\.1:\d+$")
        flags = {k: dict(v)["flags"] for k, v in got.items()}
        self.assertEqual(flags, {"named": "N", "multi": "x", "sub": "P", "monitor": "O",
                                 "self": "N"})
        self.assertEqual(dict(got["multi"])["multi"], "2")
        self.assertEqual((dict(got["sub"])["sub"], dict(got["sub"])["psub"]), ("2", "1"))
        self.assertEqual(dict(got["self"])["cmd"], "client|info")

    def test_list_filters(self):
        srv = self.start_target()
        c = self.client(srv)
        sub = self.client(srv)
        sub.call("SUBSCRIBE", "ch")
        lines = c.call("CLIENT", "LIST").decode().strip().split("\n")
        self.assertEqual(len(lines), 2)
        ids = [int(dict(client_fields(line))["id"]) for line in lines]
        self.assertEqual(ids, sorted(ids))                                # oldest first
        pubsub = c.call("CLIENT", "LIST", "TYPE", "pubsub").decode().strip().split("\n")
        self.assertEqual([dict(client_fields(x))["id"] for x in pubsub], [str(client_id_of(sub, c))])
        normal = c.call("CLIENT", "LIST", "TYPE", "normal").decode().strip().split("\n")
        self.assertEqual(len(normal), 1)
        self.assertEqual(c.call("CLIENT", "LIST", "TYPE", "replica"), b"")


def client_id_of(target, observer):
    """The id of target (which may be subscribed) as observer sees it in CLIENT LIST."""
    addr = own_addr(target)
    for line in observer.call("CLIENT", "LIST").decode().strip().split("\n"):
        f = dict(client_fields(line))
        if f["addr"] == addr:
            return int(f["id"])
    raise AssertionError("no client with addr %s" % addr)


# ---------------------------------------------------------------------------------------------
# CLIENT KILL


class ClientKillTest(Base):
    def setUp(self):
        self.srv = self.start_target()
        self.c = self.client(self.srv)

    def assert_closed(self, victim):
        self.assertTrue(victim.wait_closed(WAIT), "the killed client was not disconnected")

    def test_old_form(self):
        victim = self.client(self.srv)
        self.assertEqual(victim.call("PING"), "PONG")
        addr = own_addr(victim)
        self.assertEqual(self.c.call_raw("CLIENT", "KILL", addr), OK)
        self.assert_closed(victim)
        self.assertEqual(self.c.call("CLIENT", "KILL", addr), "ERR No such client")
        # the old form may kill the caller itself: +OK, then closed
        me = self.client(self.srv)
        self.assertEqual(me.call_raw("CLIENT", "KILL", own_addr(me)), OK)
        self.assert_closed(me)
        self.assertEqual(self.c.call("PING"), "PONG")

    def test_filters(self):
        c = self.c
        a = self.client(self.srv)
        b = self.client(self.srv)
        sub = self.client(self.srv)
        sub.call("SUBSCRIBE", "ch")
        a_id = client_id(a)
        self.assertEqual(c.call("CLIENT", "KILL", "ID", str(a_id)), 1)
        self.assert_closed(a)
        self.assertEqual(c.call("CLIENT", "KILL", "ID", str(a_id)), 0)
        self.assertEqual(c.call("CLIENT", "KILL", "ADDR", own_addr(c)), 0)   # SKIPME yes
        self.assertEqual(c.call("CLIENT", "KILL", "LADDR", "127.0.0.1:1"), 0)
        self.assertEqual(c.call("CLIENT", "KILL", "TYPE", "pubsub"), 1)
        self.assert_closed(sub)
        self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(b.call("PING"), "PONG")
        laddr = "127.0.0.1:%d" % self.srv.port
        self.assertEqual(c.call("CLIENT", "KILL", "ADDR", own_addr(b), "LADDR", laddr), 1)
        self.assert_closed(b)
        d = self.client(self.srv)
        e = self.client(self.srv)
        self.assertEqual(d.call("PING"), "PONG")
        self.assertEqual(e.call("PING"), "PONG")
        self.assertEqual(c.call("CLIENT", "KILL", "USER", "default"), 2)    # all but me
        self.assert_closed(d)
        self.assert_closed(e)
        # SKIPME no: the caller too, after its reply
        self.assertEqual(c.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"), 1)
        self.assert_closed(c)

    @sidecar_only
    def test_maxage(self):
        c = self.c
        old = self.client(self.srv)
        self.assertEqual(old.call("PING"), "PONG")
        time.sleep(2.1)
        young = self.client(self.srv)
        self.assertEqual(young.call("PING"), "PONG")
        self.assertEqual(c.call("CLIENT", "KILL", "MAXAGE", "abc"),
                         "ERR maxage is not an integer or out of range")
        self.assertEqual(c.call("CLIENT", "KILL", "MAXAGE", "0"),
                         "ERR maxage should be greater than 0")
        self.assertEqual(c.call("CLIENT", "KILL", "MAXAGE", "1"), 1)          # old only (SKIPME)
        self.assert_closed(old)
        self.assertEqual(young.call("PING"), "PONG")


if __name__ == "__main__":
    unittest.main()
