#!/usr/bin/python3
"""Operations (issue 5): the admin HTTP port ([admin] listen) and INFO commandstats /
latencystats.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_admin.py -v
    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_admin.py -v -k test_slow_client
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_admin.py -v

/metrics is parsed with a real Prometheus text parser (Debian's python3-prometheus-client,
prometheus_client.parser.text_string_to_metric_families): every family must come out typed (a
sample whose name does not belong to the family before it would come out "untyped"), counters
end in _total, histogram buckets are cumulative and end with +Inf == _count. The values that
must move are checked after traffic: the get counter and histogram, errors and rejections, cache
hits and misses in near-cache mode (a redis-server upstream), the latency of a forwarded request
measured at its reply (the upstream held in DEBUG SLEEP).

The port must not be a way to stall or crash the sidecar: 404/405/400/505, an oversized request
(431), a client that sends nothing (closed after the timeout while the sidecar keeps answering
PING), 200 connections at once (capped, the rest get 503, nothing crashes).

INFO commandstats / latencystats are compared with a redis-server 7.0 given the same commands:
the same rows, field names and shapes (and the same calls / rejected_calls / failed_calls for
these deterministic commands); CONFIG RESETSTAT clears them on both. With SIDECAR_BIN=redis-server
the admin tests are skipped and the INFO tests compare redis-server with itself.

Owns: the test cases below; every server it starts (stopped by pid at the end of its test).
Invariants: traffic only to 127.0.0.1; every wait is bounded (socket timeouts, poll deadlines).
"""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - a setup problem, said plainly
    sys.stderr.write("test_admin.py needs Debian's python3-prometheus-client for /usr/bin/python3 "
                     "(apt-get install python3-prometheus-client)\n")
    raise

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
REDIS_MODE = harness.is_redis_binary(SIDECAR_BIN)
sidecar_only = unittest.skipIf(REDIS_MODE, "sidecar-only (SIDECAR_BIN is redis-server)")

WAIT = 10.0                 # seconds: bound on any reply or condition
HTTP_TIMEOUT = 5.0          # seconds: bound on one HTTP exchange
ADMIN_TIMEOUT = 5.0         # the sidecar's per-connection deadline (ADMIN_HTTP_TIMEOUT_S)
ADMIN_CONNS_MAX = 64        # ADMIN_HTTP_CONNS_MAX
METRICS_CTYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKET_LES = ["1e-06", "2e-06", "5e-06", "1e-05", "2e-05", "5e-05", "0.0001", "0.0002", "0.0005",
              "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2",
              "5", "10", "+Inf"]


# ---------------------------------------------------------------------------------------------
# HTTP over raw sockets (so malformed requests can be sent too)


class HttpReply:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value
        self.body = body

    def text(self):
        return self.body.decode("utf-8")


def read_until_close(sock, timeout, limit=16 << 20):
    """Everything sock receives until EOF (or a reset), within timeout."""
    deadline = time.monotonic() + timeout
    chunks = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no EOF within %.1fs (got %d bytes)" % (timeout, size))
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if size > limit:
            raise AssertionError("response over %d bytes" % limit)
    return b"".join(chunks)


def parse_http(raw, head=False):
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        raise AssertionError("no end of the response head in %r" % raw[:200])
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.1 (\d{3}) (.*)$", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = raw[head_end + 4:]
    if not head:
        length = int(headers["content-length"])
        if length != len(body):
            raise AssertionError("Content-Length %d, body of %d bytes" % (length, len(body)))
    return HttpReply(int(m.group(1)), m.group(2), headers, body)


def http_raw(port, payload, timeout=HTTP_TIMEOUT, head=False):
    """Sends payload (bytes) on a new connection, reads the response until the server closes."""
    with socket.create_connection((harness.HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        raw = read_until_close(s, timeout)
    return parse_http(raw, head=head)


def http_get(port, path, method="GET", timeout=HTTP_TIMEOUT):
    req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: test_admin\r\n"
           "Accept: */*\r\n\r\n" % (method, path, port)).encode()
    return http_raw(port, req, timeout=timeout, head=(method == "HEAD"))


# ---------------------------------------------------------------------------------------------
# Prometheus exposition helpers


def scrape(port):
    """GET /metrics: (reply, {family name: Metric}) parsed by prometheus_client."""
    r = http_get(port, "/metrics")
    if r.status != 200:
        raise AssertionError("/metrics answered %d: %r" % (r.status, r.body[:200]))
    families = {}
    for fam in text_string_to_metric_families(r.text()):
        if fam.name in families:
            raise AssertionError("family %s appears twice (samples not contiguous?)" % fam.name)
        families[fam.name] = fam
    return r, families


def sample_value(families, family, sample_name=None, **labels):
    """The value of the sample of family whose name is sample_name (default: the family's own
    sample name) and whose labels include labels; None when absent."""
    fam = families.get(family)
    if fam is None:
        return None
    for s in fam.samples:
        if sample_name is not None and s.name != sample_name:
            continue
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def histogram(families, family, **labels):
    """{le: cumulative count}, sum, count of one histogram series."""
    fam = families[family]
    buckets, total, count = {}, None, None
    for s in fam.samples:
        if any(s.labels.get(k) != v for k, v in labels.items()):
            continue
        if s.name == family + "_bucket":
            buckets[s.labels["le"]] = s.value
        elif s.name == family + "_sum":
            total = s.value
        elif s.name == family + "_count":
            count = s.value
    return buckets, total, count


# ---------------------------------------------------------------------------------------------
# base


def poll(fn, timeout, interval=0.02):
    """Call fn until truthy or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class AdminCase(unittest.TestCase):

    def setUp(self):
        if not REDIS_MODE and not os.path.exists(SIDECAR_BIN):
            self.skipTest("sidecar binary not found: %s" % SIDECAR_BIN)

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

    def start_sidecar(self, upstream_port=None, **config):
        """A sidecar with the admin port on a free port (self.admin_port); in near-cache mode
        (upstream_port) it does not wait for the upstream. Retried on another admin port when
        that one was taken meanwhile."""
        last = None
        for _ in range(3):
            admin_port = harness.free_port()
            cfg = {"admin.listen": "%s:%d" % (harness.HOST, admin_port)}
            cfg.update(config)
            if upstream_port is not None:
                sc = harness.make_nearcache(SIDECAR_BIN, upstream_port, name="admin-nc", **cfg)
            else:
                sc = harness.SidecarServer(SIDECAR_BIN, config=cfg, name="admin")
            try:
                sc.start()
            except harness.ServerError as e:
                sc.cleanup()
                last = e
                if "admin port" in str(e):
                    continue
                raise
            self.addCleanup(self._stop_checked, sc)
            self.admin_port = admin_port
            return sc
        raise last

    def start_upstream(self, start=True):
        up = harness.make_upstream(port=harness.free_port())
        self.addCleanup(self._stop_quietly, up)
        if start:
            up.start(attempts=1)
        return up

    def conn(self, server, timeout=WAIT):
        c = RespClient(server.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def assert_pong(self, server):
        t0 = time.monotonic()
        with RespClient(server.port, timeout=2.0) as c:
            self.assertEqual(c.call_raw("PING"), b"+PONG\r\n")
        return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# /metrics


@sidecar_only
class MetricsTest(AdminCase):

    def test_metrics_exposition(self):
        sc = self.start_sidecar()
        c = self.conn(sc)
        c.call_raw("SET", "k", "v")
        c.call_raw("GET", "k")
        r, fams = scrape(self.admin_port)
        self.assertEqual(r.headers.get("content-type"), METRICS_CTYPE)
        self.assertEqual(r.headers.get("connection"), "close")
        text = r.text()
        # Every family has HELP and TYPE; counters end in _total; all ours are sidecar_*.
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                self.assertIn(typ, ("counter", "gauge", "histogram"), line)
                if typ == "counter":
                    self.assertTrue(name.endswith("_total"), line)
                self.assertIn("# HELP %s " % name, text)
        for name, fam in fams.items():
            self.assertTrue(name.startswith("sidecar_"), name)
            self.assertNotEqual(fam.type, "untyped", "family %s came out untyped" % name)
        expected = {
            "sidecar_build_info": "gauge",
            "sidecar_uptime_seconds": "gauge",
            "sidecar_connected_clients": "gauge",
            "sidecar_connections_received": "counter",
            "sidecar_rejected_connections": "counter",
            "sidecar_commands": "counter",
            "sidecar_command_errors": "counter",
            "sidecar_command_rejected": "counter",
            "sidecar_command_duration_seconds": "histogram",
            "sidecar_cache_keys": "gauge",
            "sidecar_cache_hits": "counter",
            "sidecar_cache_misses": "counter",
            "sidecar_cache_evictions": "counter",
            "sidecar_cache_expirations": "counter",
            "sidecar_memory_used_bytes": "gauge",
            "sidecar_memory_max_bytes": "gauge",
            "sidecar_memory_heap_trims": "counter",
            "sidecar_memory_heap_trimmed_bytes": "counter",
        }
        for name, typ in expected.items():
            self.assertIn(name, fams, "no family %s" % name)
            self.assertEqual(fams[name].type, typ, name)
        build = fams["sidecar_build_info"].samples
        self.assertEqual(len(build), 1)
        self.assertEqual(build[0].labels.get("redis_version"), "7.0.15")
        self.assertTrue(build[0].labels.get("version"))
        self.assertEqual(build[0].value, 1)
        self.assertEqual(sample_value(fams, "sidecar_connected_clients"), 1)
        self.assertEqual(sample_value(fams, "sidecar_cache_keys"), 1)
        # Standalone: no upstream families.
        self.assertNotIn("sidecar_upstream_state", fams)
        # HEAD: the same head, no body.
        h = http_get(self.admin_port, "/metrics", method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertGreater(int(h.headers["content-length"]), 1000)

    def test_metrics_move_with_traffic(self):
        sc = self.start_sidecar(max_memory="10mb")
        c = self.conn(sc)
        c.call_raw("SET", "k", "v")
        _, before = scrape(self.admin_port)
        gets0 = sample_value(before, "sidecar_commands", "sidecar_commands_total", cmd="get") or 0
        _, _, count0 = histogram(before, "sidecar_command_duration_seconds", cmd="get")
        n = 50
        for _ in range(n):
            self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")
        c.call_raw("GET", "missing")
        self.assertTrue(c.call_raw("LPUSH", "k", "x").startswith(b"-WRONGTYPE"))
        self.assertTrue(c.call_raw("GET").startswith(b"-ERR wrong number"))
        _, after = scrape(self.admin_port)
        gets = sample_value(after, "sidecar_commands", "sidecar_commands_total", cmd="get")
        self.assertEqual(gets - gets0, n + 1)
        buckets, total, count = histogram(after, "sidecar_command_duration_seconds", cmd="get")
        self.assertEqual(count - (count0 or 0), n + 1)
        self.assertEqual(list(buckets), BUCKET_LES)
        values = [buckets[le] for le in BUCKET_LES]
        self.assertEqual(values, sorted(values), "buckets are cumulative")
        self.assertEqual(buckets["+Inf"], count)
        self.assertGreater(total, 0)
        self.assertLess(total, 5.0)
        self.assertEqual(sample_value(after, "sidecar_command_errors", "sidecar_command_errors_total",
                                      cmd="lpush"), 1)
        self.assertEqual(sample_value(after, "sidecar_command_rejected",
                                      "sidecar_command_rejected_total", cmd="get"), 1)
        self.assertEqual(sample_value(after, "sidecar_cache_hits", "sidecar_cache_hits_total"), n)
        self.assertEqual(sample_value(after, "sidecar_cache_misses", "sidecar_cache_misses_total"), 1)
        self.assertEqual(sample_value(after, "sidecar_memory_max_bytes"), 10 * 1024 * 1024)
        self.assertGreater(sample_value(after, "sidecar_memory_used_bytes"), 0)
        # CONFIG RESETSTAT zeroes the per-command series (Prometheus sees a counter reset).
        self.assertEqual(c.call_raw("CONFIG", "RESETSTAT"), b"+OK\r\n")
        _, reset = scrape(self.admin_port)
        self.assertIsNone(sample_value(reset, "sidecar_commands", "sidecar_commands_total", cmd="get"))
        self.assertEqual(sample_value(reset, "sidecar_commands", "sidecar_commands_total",
                                      cmd="config|resetstat"), 1)


# ---------------------------------------------------------------------------------------------
# probes, errors, abuse


@sidecar_only
class ProbeTest(AdminCase):

    def test_healthz_readyz_standalone(self):
        self.start_sidecar()
        r = http_get(self.admin_port, "/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertEqual(r.headers["content-type"], "text/plain; charset=utf-8")
        r = http_get(self.admin_port, "/readyz")
        self.assertEqual((r.status, r.body), (200, b"ready\n"))
        r = http_get(self.admin_port, "/healthz?probe=1")
        self.assertEqual(r.status, 200)
        r = http_raw(self.admin_port, b"GET http://localhost/healthz HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 200)

    def test_not_found_method_bad_request(self):
        sc = self.start_sidecar()
        port = self.admin_port
        self.assertEqual(http_get(port, "/").status, 404)
        self.assertEqual(http_get(port, "/metricsx").status, 404)
        self.assertEqual(http_get(port, "/" + "a" * 2000).status, 404)
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = http_get(port, "/metrics", method=method)
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.headers.get("allow"), "GET, HEAD")
        for bad in (b"GARBAGE\r\n\r\n", b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",
                    b"*1\r\n$4\r\nPING\r\n", b"GET metrics HTTP/1.1\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                    b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"):
            r = http_raw(port, bad)
            self.assertEqual(r.status, 400, bad)
        self.assertEqual(http_raw(port, b"GET / HTTP/2.0\r\n\r\n").status, 505)
        self.assertEqual(http_raw(port, b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").status, 413)
        self.assert_pong(sc)

    def test_oversized_request(self):
        sc = self.start_sidecar()
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 16384 + b"\r\n\r\n"
        with socket.create_connection((harness.HOST, self.admin_port), timeout=HTTP_TIMEOUT) as s:
            try:
                s.sendall(big)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sidecar answered and stopped reading: fine
            raw = read_until_close(s, HTTP_TIMEOUT)
        r = parse_http(raw)
        self.assertEqual(r.status, 431)
        # A request line that never ends.
        r = http_raw(self.admin_port, b"GET /" + b"x" * 9000)
        self.assertEqual(r.status, 431)
        self.assert_pong(sc)
        self.assertEqual(http_get(self.admin_port, "/healthz").status, 200)

    def test_slow_client(self):
        """A client that connects and sends nothing (and one that sends half a request) is
        closed after the timeout; meanwhile the sidecar answers PING and other probes."""
        sc = self.start_sidecar()
        silent = socket.create_connection((harness.HOST, self.admin_port), timeout=HTTP_TIMEOUT)
        partial = socket.create_connection((harness.HOST, self.admin_port), timeout=HTTP_TIMEOUT)
        self.addCleanup(silent.close)
        self.addCleanup(partial.close)
        partial.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        worst = 0.0
        while time.monotonic() - t0 < 2.0:
            worst = max(worst, self.assert_pong(sc))
            self.assertEqual(http_get(self.admin_port, "/healthz").status, 200)
            time.sleep(0.1)
        self.assertLess(worst, 0.5, "PING took %.3fs while an admin client stalled" % worst)
        for s in (silent, partial):
            raw = read_until_close(s, ADMIN_TIMEOUT + 3.0)
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, ADMIN_TIMEOUT - 0.5)
            self.assertLess(elapsed, ADMIN_TIMEOUT + 3.0)
            if raw:
                self.assertTrue(raw.startswith(b"HTTP/1.1 408 "), raw[:100])
        self.assert_pong(sc)

    def test_many_connections(self):
        """200 connections at once: at most ADMIN_CONNS_MAX are kept, the others get a 503 and
        are closed; the sidecar keeps answering; once they are gone the port serves again."""
        sc = self.start_sidecar()
        socks = []
        try:
            for _ in range(200):
                s = socket.create_connection((harness.HOST, self.admin_port), timeout=HTTP_TIMEOUT)
                socks.append(s)
            self.assert_pong(sc)
            busy = 0
            for s in socks:
                s.settimeout(0.05)
                try:
                    data = s.recv(4096)
                except socket.timeout:
                    continue  # kept: waiting for a request
                except ConnectionResetError:
                    busy += 1
                    continue
                if data.startswith(b"HTTP/1.1 503 "):
                    busy += 1
            self.assertGreaterEqual(busy, 200 - ADMIN_CONNS_MAX)
            # The kept ones can still be served.
            s = socks[0]
            s.settimeout(HTTP_TIMEOUT)
            self.assert_pong(sc)
        finally:
            for s in socks:
                s.close()
        ok = poll(lambda: http_get(self.admin_port, "/healthz").status == 200, WAIT, 0.05)
        self.assertTrue(ok, "the admin port did not serve again after the connections closed")
        self.assert_pong(sc)
        _, fams = scrape(self.admin_port)
        self.assertIn("sidecar_build_info", fams)


# ---------------------------------------------------------------------------------------------
# near-cache: readiness, cache and upstream metrics


@sidecar_only
class NearCacheAdminTest(AdminCase):

    def test_readyz_follows_upstream(self):
        up = self.start_upstream(start=False)
        sc = self.start_sidecar(upstream_port=up.port)
        r = http_get(self.admin_port, "/readyz")
        self.assertEqual(r.status, 503)
        self.assertTrue(r.text().startswith("not ready: upstream"), r.text())
        self.assertEqual(r.text().count("\n"), 1, "one line")
        self.assertEqual(http_get(self.admin_port, "/healthz").status, 200)
        up.start(attempts=1)
        ok = poll(lambda: http_get(self.admin_port, "/readyz").status == 200, WAIT, 0.05)
        self.assertTrue(ok, "/readyz not 200 within %.0fs of the upstream starting" % WAIT)
        _, fams = scrape(self.admin_port)
        self.assertEqual(sample_value(fams, "sidecar_upstream_state", state="up"), 1)
        self.assertEqual(sample_value(fams, "sidecar_upstream_state", state="down"), 0)
        self.assertEqual(sample_value(fams, "sidecar_upstream_tracking_armed"), 1)
        up.stop(check=False)
        ok = poll(lambda: http_get(self.admin_port, "/readyz").status == 503, WAIT, 0.05)
        self.assertTrue(ok, "/readyz still 200 after the upstream stopped")
        _, fams = scrape(self.admin_port)
        self.assertEqual(sample_value(fams, "sidecar_upstream_state", state="up"), 0)
        self.assertGreaterEqual(sample_value(fams, "sidecar_upstream_disconnects",
                                             "sidecar_upstream_disconnects_total"), 1)
        self.assert_pong(sc)

    def test_nearcache_metrics_move(self):
        up = self.start_upstream()
        sc = self.start_sidecar(upstream_port=up.port)
        harness.nearcache_wait_ready(sc)
        upc = self.conn(up)
        c = self.conn(sc)
        upc.call_raw("SET", "k", "v")
        _, f0 = scrape(self.admin_port)
        for fam in ("sidecar_cache_invalidations", "sidecar_cache_singleflight_joins",
                    "sidecar_cache_stale_serves", "sidecar_upstream_reconnects",
                    "sidecar_upstream_requests", "sidecar_upstream_backpressure_waits"):
            self.assertIn(fam, f0)
            self.assertEqual(f0[fam].type, "counter", fam)
        self.assertEqual(f0["sidecar_upstream_output_bytes"].type, "gauge")
        self.assertEqual(sample_value(f0, "sidecar_upstream_output_bytes"), 0)
        self.assertEqual(f0["sidecar_upstream_request_duration_seconds"].type, "histogram")
        hits0 = sample_value(f0, "sidecar_cache_hits", "sidecar_cache_hits_total")
        misses0 = sample_value(f0, "sidecar_cache_misses", "sidecar_cache_misses_total")
        self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")  # a miss, then filled

        def hit():
            self.assertEqual(c.call_raw("GET", "k"), b"$1\r\nv\r\n")
            _, f = scrape(self.admin_port)
            return f if sample_value(f, "sidecar_cache_hits", "sidecar_cache_hits_total") > hits0 else None
        f1 = poll(hit, WAIT, 0.01)
        self.assertTrue(f1, "no cache hit within %.0fs" % WAIT)
        self.assertGreaterEqual(sample_value(f1, "sidecar_cache_misses", "sidecar_cache_misses_total")
                                - misses0, 1)
        _, _, n = histogram(f1, "sidecar_command_duration_seconds", cmd="get")
        self.assertGreaterEqual(n, 2)
        _, _, nup = histogram(f1, "sidecar_upstream_request_duration_seconds")
        self.assertGreaterEqual(nup, 1)
        # A command the sidecar does not know is forwarded and counted under "upstream".
        self.assertEqual(c.call_raw("XLEN", "nostream"), b":0\r\n")
        # Invalidation: a write on the upstream drops the cached key.
        upc.call_raw("SET", "k", "v2")
        ok = poll(lambda: c.call_raw("GET", "k") == b"$2\r\nv2\r\n", WAIT, 0.005)
        self.assertTrue(ok)
        _, f2 = scrape(self.admin_port)
        self.assertGreaterEqual(sample_value(f2, "sidecar_commands", "sidecar_commands_total",
                                             cmd="upstream"), 1)
        self.assertGreaterEqual(sample_value(f2, "sidecar_cache_invalidations",
                                             "sidecar_cache_invalidations_total"), 1)
        with RespClient(sc.port, timeout=WAIT) as ic:
            info = harness.parse_info(ic.call("INFO", "commandstats"))
        self.assertIn("cmdstat_upstream", info)
        self.assertIn("cmdstat_get", info)

    def test_forwards_timed_in_pipelines_and_departed_clients(self):
        """Hundreds of forwards in flight at once are each timed at their reply; the forwards
        of clients that left before their reply are counted as calls, never timed, and do not
        pile up."""
        up = self.start_upstream()
        sc = self.start_sidecar(upstream_port=up.port, op_timeout_ms=5000)
        harness.nearcache_wait_ready(sc)
        sleeper = self.conn(up)
        sleeper.send(harness.encode_command("DEBUG", "SLEEP", "0.3"))
        time.sleep(0.05)
        departed = 0
        for i in range(20):  # 20 clients x 10 misses, gone before the upstream answers
            with RespClient(sc.port, timeout=WAIT) as d:
                d.send(b"".join(harness.encode_command("GET", "gone:%d:%d" % (i, j))
                                for j in range(10)))
                departed += 10
                time.sleep(0.002)
                d.reset()  # gone at once (a close() is a half-close, still answered)
        self.assertEqual(sleeper.read_reply_bytes(timeout=WAIT), b"+OK\r\n")
        for rnd in range(3):
            c = self.conn(sc)
            n = 300
            payload = b"".join(harness.encode_command("GET", "p:%d:%d" % (rnd, j)) for j in range(n))
            replies = c.pipeline(payload, n, timeout=WAIT)
            self.assertEqual(len(replies), n)
        _, fams = scrape(self.admin_port)
        calls = sample_value(fams, "sidecar_commands", "sidecar_commands_total", cmd="get")
        _, _, count = histogram(fams, "sidecar_command_duration_seconds", cmd="get")
        self.assertGreaterEqual(calls, 3 * 300)
        self.assertLessEqual(calls, departed + 3 * 300)  # the departed ones read before EOF
        self.assertEqual(count, 3 * 300, "every answered GET timed once, departed ones never")
        self.assert_pong(sc)

    def test_forwarded_latency_measured_at_reply(self):
        """A miss forwarded while the upstream sleeps is timed until its reply arrives."""
        up = self.start_upstream()
        sc = self.start_sidecar(upstream_port=up.port, op_timeout_ms=5000)
        harness.nearcache_wait_ready(sc)
        c = self.conn(sc)
        sleeper = self.conn(up)
        sleeper.send(harness.encode_command("DEBUG", "SLEEP", "0.3"))
        time.sleep(0.05)  # the upstream is asleep now
        t0 = time.monotonic()
        self.assertEqual(c.call_raw("GET", "slow"), b"$-1\r\n")
        self.assertGreater(time.monotonic() - t0, 0.15)
        self.assertEqual(sleeper.read_reply_bytes(timeout=WAIT), b"+OK\r\n")
        _, fams = scrape(self.admin_port)
        buckets, total, count = histogram(fams, "sidecar_command_duration_seconds", cmd="get")
        self.assertEqual(count, 1)
        self.assertEqual(buckets["0.1"], 0, "the GET's latency includes the upstream's sleep")
        self.assertGreater(total, 0.15)
        ub, utotal, ucount = histogram(fams, "sidecar_upstream_request_duration_seconds")
        self.assertGreaterEqual(ucount, 1)
        self.assertGreater(utotal, 0.15)
        with RespClient(sc.port, timeout=WAIT) as ic:
            info = harness.parse_info(ic.call("INFO", "latencystats"))
        p50 = float(re.match(r"p50=([\d.]+),", info["latency_percentiles_usec_get"]).group(1))
        self.assertGreater(p50, 150000.0)


# ---------------------------------------------------------------------------------------------
# INFO commandstats / latencystats against redis-server

CMDSTAT_RE = re.compile(r"^calls=(\d+),usec=(\d+),usec_per_call=(\d+\.\d\d),"
                        r"rejected_calls=(\d+),failed_calls=(\d+)$")
LATENCY_RE = re.compile(r"^p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}$")

# The same commands on both servers (raw client, RESP2). Every reply is compared too.
SCRIPT = (
    ("SET", "a", "1"),
    ("GET", "a"),
    ("GET", "a"),
    ("GET",),                        # arity: rejected_calls of get
    ("LPUSH", "a", "x"),             # WRONGTYPE: failed_calls of lpush
    ("CLIENT", "ID"),
    ("CLIENT",),                     # arity: rejected_calls of client
    ("CLIENT", "NOSUCH"),            # unknown subcommand: counted nowhere
    ("CLIENT", "GETNAME", "extra"),  # arity: rejected_calls of client|getname
    ("CONFIG", "GET", "no-such-parameter"),
    ("NOSUCHCOMMAND",),              # counted nowhere
    ("MULTI",),
    ("INCR", "a"),
    ("LPUSH", "a", "y"),             # fails inside EXEC: lpush failed, exec not
    ("EXEC",),
    ("MULTI",),
    ("INCR",),                       # arity inside MULTI: rejected, EXECABORT
    ("EXEC",),                       # EXECABORT: a failed exec call
    ("DEL", "a"),
)


def stat_sections(server):
    """(commandstats {name: (calls, rejected, failed)}, latencystats {name: value}) of server,
    checking every line's shape."""
    with RespClient(server.port, timeout=WAIT) as c:
        cs = harness.parse_info(c.call("INFO", "commandstats"))
        ls = harness.parse_info(c.call("INFO", "latencystats"))
    out_cs, out_ls = {}, {}
    for key, value in cs.items():
        assert key.startswith("cmdstat_"), key
        m = CMDSTAT_RE.match(value)
        assert m, "bad commandstats line %s:%s" % (key, value)
        calls, usec, per_call = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if calls:
            assert abs(per_call - usec / calls) < 0.01, "usec_per_call of %s: %s" % (key, value)
        out_cs[key[len("cmdstat_"):]] = (calls, int(m.group(4)), int(m.group(5)))
    for key, value in ls.items():
        assert key.startswith("latency_percentiles_usec_"), key
        assert LATENCY_RE.match(value), "bad latencystats line %s:%s" % (key, value)
        out_ls[key[len("latency_percentiles_usec_"):]] = value
    return out_cs, out_ls


def section_titles(server, *args):
    with RespClient(server.port, timeout=WAIT) as c:
        text = c.call("INFO", *args)
    text = text.decode() if isinstance(text, bytes) else str(text)
    return [line[2:] for line in text.splitlines() if line.startswith("# ")]


class InfoStatsTest(AdminCase):

    def start_pair(self):
        redis = harness.RedisServer(name="redis-ref")
        self.addCleanup(self._stop_quietly, redis)
        redis.start()
        if REDIS_MODE:
            sc = harness.RedisServer(name="redis-as-sidecar")
            self.addCleanup(self._stop_quietly, sc)
            sc.start()
        else:
            sc = harness.SidecarServer(SIDECAR_BIN, name="sidecar")
            self.addCleanup(self._stop_checked, sc)
            sc.start()
        return redis, sc

    def run_script(self, server):
        replies = []
        with RespClient(server.port, timeout=WAIT) as c:
            self.assertEqual(c.call_raw("CONFIG", "RESETSTAT"), b"+OK\r\n")
            for cmd in SCRIPT:
                r = c.call_raw(*cmd)
                if cmd == ("CLIENT", "ID"):
                    r = b":ID\r\n"
                replies.append(r)
        return replies

    def test_commandstats_latencystats_like_redis(self):
        redis, sc = self.start_pair()
        self.assertEqual(self.run_script(sc), self.run_script(redis), "replies")
        want_cs, want_ls = stat_sections(redis)
        got_cs, got_ls = stat_sections(sc)
        # The first INFO is counted after it ran; both servers ran one.
        self.assertEqual(got_cs, want_cs)
        # Latencystats: the same rows (every command that ran at least once).
        self.assertEqual(sorted(got_ls), sorted(want_ls))
        self.assertIn("client|id", got_cs)
        self.assertEqual(got_cs["client"], (0, 1, 0))
        self.assertEqual(got_cs["get"], (2, 1, 0))
        self.assertEqual(got_cs["exec"], (2, 0, 1))

    def test_sections_in_all_not_default(self):
        redis, sc = self.start_pair()
        for args in ((), ("default",)):
            for server in (redis, sc):
                titles = section_titles(server, *args)
                self.assertNotIn("Commandstats", titles, (server.name, args))
                self.assertNotIn("Latencystats", titles, (server.name, args))
        for args in (("all",), ("everything",), ("commandstats", "latencystats")):
            want = section_titles(redis, *args)
            got = [t for t in section_titles(sc, *args) if t not in ("Upstream", "Cache")]
            self.assertEqual(got, want, args)

    def test_resetstat_clears(self):
        redis, sc = self.start_pair()
        for server in (redis, sc):
            self.run_script(server)
            with RespClient(server.port, timeout=WAIT) as c:
                self.assertEqual(c.call_raw("CONFIG", "RESETSTAT"), b"+OK\r\n")
            cs, ls = stat_sections(server)
            self.assertEqual(cs, {"config|resetstat": (1, 0, 0)}, server.name)
            # The first INFO (commandstats) is in latencystats by the time the second runs.
            self.assertEqual(sorted(ls), ["config|resetstat", "info"], server.name)


if __name__ == "__main__":
    unittest.main()
