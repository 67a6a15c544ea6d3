#!/usr/bin/python3
"""Everyday client patterns against the sidecar, with Debian's python3-redis (4.3.4), raw sockets
and redis-cli.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_clients.py -v
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_clients.py -v

With SIDECAR_BIN=redis-server the same tests run against a real redis-server (started with the
equivalent options) to prove the tests themselves; the sidecar-only ones (config file errors,
--check-config, --version, delivery of queued replies on SIGTERM) are skipped then.

Every server is started on a free 127.0.0.1 port and stopped with SIGTERM at the end; a sidecar
that does not exit 0, or whose stderr holds a sanitizer report, fails the test that owned it.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, encode_command, parse_info, wait_until  # noqa: E402

import redis  # noqa: E402  (Debian's python3-redis: run with /usr/bin/python3)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)
sidecar_only = unittest.skipIf(REDIS_MODE, "sidecar-only (SIDECAR_BIN is redis-server)")

OOM_ERROR = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
NOAUTH_ERROR = b"-NOAUTH Authentication required.\r\n"
WRONGPASS_ERROR = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
MAXCLIENTS_ERROR = b"-ERR max number of clients reached\r\n"
CMD_TIMEOUT = 15  # seconds, any subprocess we run


def new_server(config=None, name=None):
    return harness.make_server(SIDECAR_BIN, config=config, name=name)


client = harness.redis_client


# One shared server (default config) for the pattern tests; FLUSHALL before each.
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


class SharedServerTest(unittest.TestCase):
    def setUp(self):
        self.r = client(SHARED)
        self.r.flushall()

    def tearDown(self):
        self.r.close()


class TestPatterns(SharedServerTest):
    def test_cache_aside_with_ttl(self):
        r = self.r
        self.assertIsNone(r.get("user:1"))  # miss
        self.assertTrue(r.set("user:1", '{"name": "ada"}', ex=60))
        self.assertEqual(r.get("user:1"), b'{"name": "ada"}')
        self.assertEqual(r.ttl("user:1"), 60)
        self.assertTrue(r.setex("page:/", 30, "<html>"))
        self.assertEqual(r.ttl("page:/"), 30)
        self.assertEqual(r.get("page:/"), b"<html>")
        self.assertTrue(r.set("px", "v", px=120000))
        self.assertEqual(r.ttl("px"), 120)
        self.assertEqual(r.mget("user:1", "nope", "page:/"), [b'{"name": "ada"}', None, b"<html>"])
        self.assertEqual(r.delete("user:1", "page:/", "nope"), 2)
        self.assertEqual(r.exists("user:1"), 0)
        # binary-safe values
        blob = bytes(range(256)) * 4
        r.set("blob", blob)
        self.assertEqual(r.get("blob"), blob)
        self.assertEqual(r.strlen("blob"), 1024)

    def test_lock_acquire_release(self):
        r = self.r
        self.assertTrue(r.set("lock:job", "owner-a", nx=True, ex=10))
        self.assertIsNone(r.set("lock:job", "owner-b", nx=True, ex=10))
        self.assertEqual(r.ttl("lock:job"), 10)
        # release only if we own it (check-and-delete)
        self.assertNotEqual(r.get("lock:job"), b"owner-b")
        self.assertEqual(r.get("lock:job"), b"owner-a")
        self.assertEqual(r.delete("lock:job"), 1)
        self.assertTrue(r.set("lock:job", "owner-b", nx=True, ex=10))
        self.assertEqual(r.get("lock:job"), b"owner-b")

    def test_counters(self):
        r = self.r
        self.assertEqual(r.incr("hits"), 1)
        self.assertEqual(r.incr("hits"), 2)
        self.assertEqual(r.incrby("hits", 10), 12)
        self.assertEqual(r.decr("hits"), 11)
        self.assertEqual(r.decrby("hits", 20), -9)
        self.assertEqual(r.get("hits"), b"-9")
        self.assertEqual(r.incrbyfloat("f", 10.5), 10.5)
        self.assertAlmostEqual(r.incrbyfloat("f", 0.1), 10.6)
        r.set("notnum", "abc")
        with self.assertRaises(redis.ResponseError) as cm:
            r.incr("notnum")
        self.assertEqual(str(cm.exception), "value is not an integer or out of range")

    def test_rate_limiter_pipeline(self):
        r = self.r
        limit, allowed = 10, 0
        for _ in range(25):
            p = r.pipeline(transaction=False)
            p.incr("rl:client42")
            p.expire("rl:client42", 60)
            count, expired = p.execute()
            self.assertTrue(expired)
            if count <= limit:
                allowed += 1
        self.assertEqual(allowed, limit)
        self.assertEqual(r.get("rl:client42"), b"25")
        self.assertEqual(r.ttl("rl:client42"), 60)

    def test_scan_match_count_exactly_once(self):
        r = self.r
        keys = ["s:once:%d" % i for i in range(3000)]
        p = r.pipeline(transaction=False)
        for k in keys:
            p.set(k, "v")
        p.set("other:1", "v")
        p.execute()
        seen = {}
        cursor, calls = 0, 0
        while True:
            cursor, batch = r.scan(cursor=cursor, match="s:once:*", count=100)
            calls += 1
            self.assertLess(calls, 10000, "SCAN did not terminate")
            for k in batch:
                seen[k] = seen.get(k, 0) + 1
            if cursor == 0:
                break
        self.assertEqual(sorted(seen), sorted(k.encode() for k in keys))
        self.assertEqual([k for k, n in seen.items() if n != 1], [], "keys returned twice")

    def test_scan_iter_while_growing(self):
        r = self.r
        originals = ["k:orig:%d" % i for i in range(5000)]
        p = r.pipeline(transaction=False)
        for k in originals:
            p.set(k, "v")
        p.execute()
        seen = {}
        inserted = 0
        yielded = 0
        for key in r.scan_iter(match="k:*", count=100):
            yielded += 1
            self.assertLess(yielded, 200000, "SCAN did not terminate")
            seen[key] = seen.get(key, 0) + 1
            if yielded % 50 == 0 and inserted < 20000:
                # grow the table between SCAN calls (forces rehashing on the server)
                p = r.pipeline(transaction=False)
                for _ in range(400):
                    p.set("k:new:%d" % inserted, "v")
                    inserted += 1
                p.execute()
        self.assertGreater(inserted, 5000)
        missing = [k for k in originals if k.encode() not in seen]
        self.assertEqual(missing[:10], [], "%d original keys never returned by SCAN" % len(missing))
        dups = sum(n - 1 for k, n in seen.items() if k.startswith(b"k:orig:") and n > 1)
        self.assertLessEqual(dups, 500, "too many duplicates of original keys")
        self.assertEqual(r.dbsize(), 5000 + inserted)

    def test_select_isolation(self):
        r0 = client(SHARED, db=0)
        r1 = client(SHARED, db=1)
        try:
            r0.set("k", "zero")
            self.assertIsNone(r1.get("k"))
            r1.set("k", "one")
            self.assertEqual(r0.get("k"), b"zero")
            self.assertEqual(r1.get("k"), b"one")
            self.assertEqual(r0.dbsize(), 1)
            self.assertEqual(r1.dbsize(), 1)
            r1.flushdb()
            self.assertIsNone(r1.get("k"))
            self.assertEqual(r0.get("k"), b"zero")
        finally:
            r0.close()
            r1.close()

    def test_ttl_expiry_observed(self):
        r = self.r
        self.assertTrue(r.set("short", "v", px=50))
        self.assertTrue(r.set("untouched", "v", px=50))
        self.assertTrue(r.set("long", "v", ex=100))
        pttl = r.pttl("short")
        self.assertTrue(pttl == -2 or 0 <= pttl <= 50, pttl)
        self.assertTrue(wait_until(lambda: r.get("short") is None, 3.0), "key did not expire")
        self.assertEqual(r.exists("short"), 0)
        self.assertEqual(r.ttl("short"), -2)
        # a key nobody reads again is removed by active expiry
        self.assertTrue(wait_until(lambda: r.dbsize() == 1, 5.0), "untouched key not actively expired")
        self.assertEqual(r.get("long"), b"v")

    def test_pipeline_10000_raw(self):
        with RespClient(SHARED.port) as c:
            replies = c.pipeline(encode_command("INCR", "pipe") * 10000, 10000, timeout=30)
            self.assertEqual(replies, [b":%d\r\n" % i for i in range(1, 10001)])
            payload = b"".join(encode_command("SET", "p:%d" % i, "v%d" % i) + encode_command("GET", "p:%d" % i)
                               for i in range(5000))
            replies = c.pipeline(payload, 10000, timeout=30)
            for i in range(5000):
                self.assertEqual(replies[2 * i], b"+OK\r\n")
                v = b"v%d" % i
                self.assertEqual(replies[2 * i + 1], b"$%d\r\n%s\r\n" % (len(v), v))
            # inline commands pipelined in one write
            replies = c.pipeline(b"PING\r\n" * 1000, 1000)
            self.assertEqual(set(replies), {b"+PONG\r\n"})

    def test_redis_cli(self):
        port = str(SHARED.port)
        env = dict(os.environ, REDISCLI_HISTFILE="/dev/null", HOME=tempfile.gettempdir())

        def cli(*args, stdin=None):
            p = subprocess.run(["redis-cli", "-h", harness.HOST, "-p", port] + list(args),
                               input=stdin, capture_output=True, timeout=CMD_TIMEOUT, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout

        self.assertEqual(cli("SET", "k", "v"), b"OK\n")
        self.assertEqual(cli("GET", "k"), b"v\n")
        for i in range(30):
            self.r.set("k%d" % i, i)
        self.r.set("other", 1)
        keys = cli("--scan", "--pattern", "k*").split()
        self.assertEqual(sorted(keys), sorted([b"k"] + [b"k%d" % i for i in range(30)]))
        info = cli("INFO", "keyspace").decode()
        self.assertIn("# Keyspace", info)
        self.assertRegex(info, r"db0:keys=32,expires=0")
        # interactive-style: commands on stdin, one reply per line
        out = cli(stdin=b"SET a 1\nINCR a\nGET a\nPING\nGET missing\nDEL a\n")
        self.assertEqual(out, b"OK\n2\n2\nPONG\n\n1\n")
        self.assertEqual(cli("DBSIZE"), b"32\n")
        self.assertEqual(cli("PING"), b"PONG\n")

    def test_resp3_raw(self):
        try:
            redis.Redis(protocol=3)
            self.skipTest("unexpected: this redis-py supports protocol=3")  # pragma: no cover
        except TypeError:
            pass  # redis-py 4.3.4: no RESP3; use the raw client
        with RespClient(SHARED.port) as c:
            raw = c.call_raw("HELLO", "3")
            self.assertTrue(raw.startswith(b"%"), raw)
            hello = harness.parse_reply(raw)[0]
            self.assertIsInstance(hello, harness.Map)
            self.assertEqual(hello.get(b"proto"), 3)
            self.assertIsInstance(hello.get(b"server"), bytes)
            self.assertIsInstance(hello.get(b"version"), bytes)
            self.assertEqual(c.call_raw("GET", "missing"), b"_\r\n")
            self.assertEqual(c.call_raw("SET", "k", "v"), b"+OK\r\n")
            self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")
            self.assertEqual(c.call_raw("MGET", "k", "missing"), b"*2\r\n$1\r\nv\r\n_\r\n")
            self.assertEqual(c.call_raw("SET", "k", "v", "NX"), b"_\r\n")
            info = c.call_raw("INFO", "server")
            self.assertTrue(info.startswith(b"="), info[:20])
            self.assertIn(b"txt:# Server\r\n", info)
            # Hashes, sets and sorted sets in RESP3 (maps, sets, doubles) come with issue 3.
            cfg = c.call("CONFIG", "GET", "maxmemory-policy")
            self.assertIsInstance(cfg, harness.Map)
            self.assertEqual(c.call_raw("PING"), b"+PONG\r\n")
            # back to RESP2
            hello2 = c.call("HELLO", "2")
            self.assertIsInstance(hello2, list)
            self.assertEqual(c.call_raw("GET", "missing"), b"$-1\r\n")
            self.assertEqual(c.call_raw("MGET", "k", "missing"), b"*2\r\n$1\r\nv\r\n$-1\r\n")


class TestConfiguredServers(unittest.TestCase):
    """Each test starts its own server with a specific config."""

    def test_eviction_under_max_memory(self):
        maxmemory = 2 * 1024 * 1024
        with new_server({"max_memory": "2mb", "maxmemory_policy": "allkeys-lru"}) as srv:
            r = client(srv)
            value = b"x" * 1024
            n = 20000
            for start in range(0, n, 1000):
                p = r.pipeline(transaction=False)
                for i in range(start, start + 1000):
                    p.set("key:%d" % i, value)
                self.assertTrue(all(p.execute()))
            mem = r.info("memory")
            stats = r.info("stats")
            used = int(mem["used_memory"])
            if "maxmemory" in mem:
                self.assertEqual(int(mem["maxmemory"]), maxmemory)
            slack = 256 * 1024
            self.assertLessEqual(used, maxmemory + slack, "used_memory %d over budget" % used)
            self.assertGreater(int(stats["evicted_keys"]), 0)
            dbsize = r.dbsize()
            self.assertGreater(dbsize, 100)
            self.assertLess(dbsize, n)
            recent = r.mget(["key:%d" % i for i in range(n - 100, n)])
            present = sum(1 for v in recent if v == value)
            # An exact LRU keeps all the newest keys; Redis's sampled LRU with its 1 s clock keeps
            # most (88..96 of 100 measured), so its bar is lower.
            self.assertGreaterEqual(present, 50 if REDIS_MODE else 80,
                                    "only %d of the 100 newest keys survived" % present)
            self.assertIsNone(r.get("key:0"))
            r.close()

    def test_noeviction_oom_error(self):
        with new_server({"max_memory": "2mb", "maxmemory_policy": "noeviction"}) as srv:
            with RespClient(srv.port) as c:
                value = b"y" * 1024
                err = None
                for i in range(20000):
                    reply = c.call_raw("SET", "key:%d" % i, value)
                    if reply != b"+OK\r\n":
                        err = reply
                        break
                self.assertEqual(err, OOM_ERROR)
                stored = i
                self.assertGreater(stored, 10)
                # reads and deletes still work; nothing was evicted
                self.assertEqual(c.call_raw("GET", "key:0"), b"$1024\r\n" + value + b"\r\n")
                self.assertEqual(c.call("DBSIZE"), stored)
                self.assertEqual(c.call_raw("SET", "another", value), OOM_ERROR)
                info = parse_info(c.call("INFO", "stats"))
                self.assertEqual(info.get("evicted_keys"), "0")
                self.assertEqual(c.call("DEL", *["key:%d" % j for j in range(stored)]), stored)
                self.assertEqual(c.call_raw("SET", "another", value), b"+OK\r\n")
            r = client(srv)
            r.flushall()
            r.set("a", "1")  # fits again
            with self.assertRaises(redis.exceptions.ResponseError) as cm:
                p = r.pipeline(transaction=False)
                for i in range(5000):
                    p.set("big:%d" % i, value)
                p.execute()
            self.assertIn("OOM command not allowed", str(cm.exception))
            r.close()

    def test_requirepass(self):
        with new_server({"requirepass": "s3cret"}) as srv:
            with RespClient(srv.port) as c:
                self.assertEqual(c.call_raw("GET", "k"), NOAUTH_ERROR)
                self.assertEqual(c.call_raw("SET", "k", "v"), NOAUTH_ERROR)
                self.assertEqual(c.call_raw("AUTH", "wrong"), WRONGPASS_ERROR)
                self.assertEqual(c.call_raw("GET", "k"), NOAUTH_ERROR)
                self.assertEqual(c.call_raw("AUTH", "default", "wrong"), WRONGPASS_ERROR)
                self.assertEqual(c.call_raw("AUTH", "s3cret"), b"+OK\r\n")
                self.assertEqual(c.call_raw("SET", "k", "v"), b"+OK\r\n")
                self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")
            with RespClient(srv.port) as c:
                self.assertEqual(c.call_raw("AUTH", "default", "s3cret"), b"+OK\r\n")
                self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")
            with RespClient(srv.port) as c:  # inline commands are checked too
                c.send(b"GET k\r\n")
                self.assertEqual(c.read_reply_bytes(), NOAUTH_ERROR)
            good = client(srv, password="s3cret")
            self.assertEqual(good.get("k"), b"v")
            good.close()
            bad = client(srv, password="nope")
            # redis-py 4.3.4 has no class for WRONGPASS: a plain ResponseError with the full text
            with self.assertRaises(redis.exceptions.ResponseError) as cm:
                bad.get("k")
            self.assertEqual(str(cm.exception), WRONGPASS_ERROR[1:-2].decode())
            bad.close()
            anon = client(srv)
            with self.assertRaises(redis.exceptions.AuthenticationError) as cm:
                anon.get("k")
            self.assertEqual(str(cm.exception), "Authentication required.")
            anon.close()

    def test_maxclients_refusal(self):
        with new_server({"maxclients": 2}) as srv:
            conns = []
            try:
                # The readiness probe's connection may not be reaped yet: retry within a deadline.
                deadline = time.monotonic() + 5
                while len(conns) < 2 and time.monotonic() < deadline:
                    c = RespClient(srv.port)
                    try:
                        reply = c.call_raw("PING", timeout=2)
                    except (harness.ConnectionClosed, OSError):
                        reply = None
                    if reply == b"+PONG\r\n":
                        conns.append(c)
                    else:
                        c.close()
                        time.sleep(0.05)
                self.assertEqual(len(conns), 2, "could not open 2 clients with maxclients=2")
                with RespClient(srv.port) as third:
                    data, closed = third.read_until_close(3.0)
                    if not data:  # a server may wait for the first command before refusing
                        try:
                            third.send(encode_command("PING"))
                        except OSError:
                            pass
                        more, closed = third.read_until_close(3.0)
                        data += more
                    self.assertEqual(data, MAXCLIENTS_ERROR)
                    self.assertTrue(closed, "refused connection was not closed")
                # the two admitted clients still work; closing one admits a new one
                for c in conns:
                    self.assertEqual(c.call_raw("PING"), b"+PONG\r\n")
                conns.pop().close()

                def admitted():
                    with RespClient(srv.port) as c:
                        try:
                            return c.call_raw("PING", timeout=2) == b"+PONG\r\n"
                        except (harness.ConnectionClosed, OSError):
                            return False
                self.assertTrue(wait_until(admitted, 5.0, interval=0.05))
            finally:
                for c in conns:
                    c.close()

    def test_idle_timeout(self):
        with new_server({"timeout": 1}) as srv:
            idle = RespClient(srv.port)
            busy = RespClient(srv.port)
            try:
                self.assertEqual(idle.call_raw("PING"), b"+PONG\r\n")
                t0 = time.monotonic()
                closed = False
                while time.monotonic() - t0 < 8:
                    self.assertEqual(busy.call_raw("PING"), b"+PONG\r\n")
                    if idle.wait_closed(0.25):
                        closed = True
                        break
                elapsed = time.monotonic() - t0
                self.assertTrue(closed, "idle connection not closed within 8 s (timeout = 1)")
                self.assertGreaterEqual(elapsed, 0.9, "idle connection closed too early")
                self.assertEqual(busy.call_raw("PING"), b"+PONG\r\n")
            finally:
                idle.close()
                busy.close()

    def test_sigterm_exits_zero_and_flushes(self):
        srv = new_server()
        srv.start()
        try:
            # A small receive buffer on our side keeps most of the 8 MB of replies queued inside
            # the server when SIGTERM arrives (the kernel holds at most a few MB in between).
            with RespClient(srv.port, rcvbuf=64 * 1024) as c:
                big = b"z" * (4 << 20)
                self.assertEqual(c.call_raw("SET", "big", big, timeout=20), b"+OK\r\n")
                n = 2
                c.send(encode_command("GET", "big") * n)
                time.sleep(0.3)  # let the server read both requests and start replying
                srv.signal(signal.SIGTERM)
                # A slow reader: the server must keep draining (redis-server exits meanwhile).
                time.sleep(1.0)
                if not REDIS_MODE:  # redis-server drops queued replies on shutdown
                    expected = b"$%d\r\n%s\r\n" % (len(big), big)
                    for i in range(n):
                        try:
                            reply = c.read_reply_bytes(timeout=20)
                        except (harness.ConnectionClosed, TimeoutError) as e:
                            reply = "<%s>" % str(e)[:100]
                        self.assertTrue(reply == expected,
                                        "queued reply %d not delivered after SIGTERM: %r" % (i, reply[:100]))
                    _, closed = c.read_until_close(10)
                    self.assertTrue(closed)
            rc = srv.wait(15)
            self.assertEqual(rc, 0, "exit status after SIGTERM")
        finally:
            problems = srv.stop(check=False)
            srv.cleanup()
        self.assertEqual(problems, [])


@sidecar_only
class TestCommandLine(unittest.TestCase):
    def run_bin(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_") or k == "SIDECAR_BIN"}
        return subprocess.run([SIDECAR_BIN] + list(args), capture_output=True, timeout=CMD_TIMEOUT,
                              env=env, stdin=subprocess.DEVNULL)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sidecar-it-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_no_sanitizer(self, p):
        err = p.stderr.decode("utf-8", "replace")
        for marker in harness.SANITIZER_MARKERS:
            self.assertNotIn(marker, err)

    def test_bad_config_unknown_key(self):
        path = self.write("bad.ini", "[server]\nlisten = 127.0.0.1:%d\nno_such_option = 1\n" % harness.free_port())
        p = self.run_bin("-c", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("%s:3: " % path, p.stderr.decode(), "expected FILE:LINE: reason on stderr")
        self.assert_no_sanitizer(p)

    def test_bad_config_bad_value(self):
        path = self.write("bad2.ini", "# comment\n[server]\nlisten = 127.0.0.1:%d\n\n[cache]\n"
                          "max_memory = lots\n" % harness.free_port())
        p = self.run_bin("-c", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr.decode(), re.escape(path) + r":6: \S")
        self.assert_no_sanitizer(p)

    def test_bad_config_unknown_section(self):
        path = self.write("bad3.ini", "[nosuchsection]\nkey = 1\n")
        p = self.run_bin("-c", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr.decode(), re.escape(path) + r":[12]: \S")

    def test_missing_config_file(self):
        path = os.path.join(self.tmp, "does-not-exist.ini")
        p = self.run_bin("-c", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(path, p.stderr.decode())

    def test_check_config(self):
        repo_ini = os.path.join(REPO, "sidecar.ini")
        self.assertTrue(os.path.exists(repo_ini), "sidecar.ini missing at the repository root")
        p = self.run_bin("-c", repo_ini, "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_no_sanitizer(p)
        bad = self.write("bad.ini", "[server]\nmaxclients = -5x\n")
        p = self.run_bin("-c", bad, "--check-config")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("%s:2: " % bad, p.stderr.decode())
        self.assert_no_sanitizer(p)

    def test_check_config_does_not_listen(self):
        port = harness.free_port()
        ok = self.write("ok.ini", "[server]\nlisten = 127.0.0.1:%d\n" % port)
        p = self.run_bin("-c", ok, "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_version(self):
        p = self.run_bin("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue((p.stdout + p.stderr).strip(), "--version printed nothing")
        self.assert_no_sanitizer(p)

    def test_env_override_port(self):
        port = harness.free_port()
        ini = self.write("env.ini", "[server]\nlisten = 127.0.0.1:%d\n" % harness.free_port())
        srv = harness.SidecarServer(SIDECAR_BIN, name="env")
        srv.port = port
        # listen from the environment wins over the file
        srv.argv = lambda: [srv.binary, "-c", ini]
        srv.extra_env = {"SIDECAR_SERVER_LISTEN": "127.0.0.1:%d" % port}
        with srv:
            with RespClient(port) as c:
                self.assertEqual(c.call_raw("PING"), b"+PONG\r\n")

    def test_port_flag(self):
        port = harness.free_port()
        ini = self.write("port.ini", "[server]\nlisten = 127.0.0.1:%d\n" % harness.free_port())
        srv = harness.SidecarServer(SIDECAR_BIN, name="portflag")
        srv.port = port
        srv.argv = lambda: [srv.binary, "-c", ini, "--port", str(port)]
        with srv:
            with RespClient(port) as c:
                self.assertEqual(c.call_raw("PING"), b"+PONG\r\n")

    @sidecar_only
    def test_several_listen_addresses_and_unix_socket(self):
        p1, p2 = harness.free_port(), harness.free_port()
        sock = os.path.join(self.tmp, "sidecar.sock")
        ini = self.write("multi.ini", "[server]\nlisten = 127.0.0.1:%d, 127.0.0.1:%d\n"
                         "unixsocket = %s\nunixsocketperm = 770\n" % (p1, p2, sock))
        srv = harness.SidecarServer(SIDECAR_BIN, name="multi")
        srv.port = p1
        srv.argv = lambda: [srv.binary, "-c", ini]
        with srv:
            with RespClient(p2) as c:
                self.assertEqual(c.call_raw("SET", "k", "via-second"), b"+OK\r\n")
            with RespClient(p1) as c:
                self.assertEqual(c.call_raw("GET", "k"), b"$10\r\nvia-second\r\n")
            self.assertEqual(os.stat(sock).st_mode & 0o777, 0o770)
            u = redis.Redis(unix_socket_path=sock, socket_timeout=10)
            self.assertEqual(u.get("k"), b"via-second")
            self.assertIn("/unixsocket:0", u.client_info()["addr"])
            u.close()
            out = subprocess.run(["redis-cli", "-s", sock, "PING"], capture_output=True,
                                 timeout=CMD_TIMEOUT, stdin=subprocess.DEVNULL)
            self.assertEqual(out.stdout, b"PONG\n")
        self.assertFalse(os.path.exists(sock), "unix socket file left behind after shutdown")


class TestHandshakeAndRuntimeConfig(unittest.TestCase):
    def test_hello_auth_setname(self):
        with new_server({"requirepass": "pw"}) as srv:
            with RespClient(srv.port) as c:
                self.assertTrue(c.call_raw("HELLO", "3").startswith(b"-NOAUTH HELLO must be called"))
                self.assertEqual(c.call_raw("HELLO", "3", "AUTH", "default", "bad"), WRONGPASS_ERROR)
                hello = harness.parse_reply(c.call_raw("HELLO", "3", "AUTH", "default", "pw",
                                                       "SETNAME", "app-1"))[0]
                self.assertIsInstance(hello, harness.Map)
                self.assertEqual(hello.get(b"proto"), 3)
                self.assertEqual(hello.get(b"role"), b"master")
                self.assertEqual(c.call_raw("CLIENT", "GETNAME"), b"$5\r\napp-1\r\n")
                self.assertEqual(c.call_raw("GET", "nothing"), b"_\r\n")
                self.assertEqual(c.call_raw("HELLO", "4"), b"-NOPROTO unsupported protocol version\r\n")

    def test_config_set_maxmemory_evicts_and_policy_switch(self):
        with new_server({"max_memory": "64mb", "maxmemory_policy": "allkeys-lru"}) as srv:
            r = client(srv)
            p = r.pipeline(transaction=False)
            for i in range(6000):
                p.set("k:%d" % i, b"x" * 1000)
            p.execute()
            self.assertEqual(r.dbsize(), 6000)
            self.assertTrue(r.config_set("maxmemory", "4mb"))
            self.assertEqual(r.config_get("maxmemory"), {"maxmemory": "4194304"})
            r.set("trigger", "1")  # a write evicts down to the new budget at once
            info = r.info("memory")
            self.assertLessEqual(int(info["used_memory"]), 4194304 + 64 * 1024)
            self.assertGreater(int(r.info("stats")["evicted_keys"]), 1000)
            self.assertTrue(r.config_set("maxmemory-policy", "noeviction"))
            self.assertEqual(r.config_get("maxmemory-policy"), {"maxmemory-policy": "noeviction"})
            with self.assertRaises(redis.exceptions.ResponseError) as cm:
                for i in range(2000):
                    r.set("more:%d" % i, b"y" * 1000)
            self.assertEqual(str(cm.exception), OOM_ERROR[1:-2].decode())
            self.assertEqual(r.get("trigger"), b"1")  # reads still work
            self.assertEqual(r.delete("trigger"), 1)  # and so do deletes
            with self.assertRaises(redis.exceptions.ResponseError) as cm:
                r.config_set("maxmemory", "lots")
            self.assertIn("argument must be a memory value", str(cm.exception))
            r.close()


if __name__ == "__main__":
    unittest.main()
