#!/usr/bin/python3
"""Hostile connections against the sidecar (issue 7, "Bad input"): clients that never read, a
pipeline flood, ten thousand connections at once, half-closed and reset sockets, a query buffer
over its limit. The bad requests are test_hostile.py's; the memory tolerances and the checks after
every case: hostile_fixture.py.

    SIDECAR_BIN=./build/sidecar /usr/bin/python3 tests/integration/test_hostile_clients.py -v
    SIDECAR_ASAN=1 ASAN_OPTIONS=detect_leaks=1 SIDECAR_BIN=build/asan/sidecar \\
        /usr/bin/python3 tests/integration/test_hostile_clients.py -v

The test of a known gap (the pub/sub relay confirms SUBSCRIBE before the upstream has subscribed)
is skipped unless HOSTILE_KNOWN_GAPS=1 (the skip reason says what). With SIDECAR_BIN=redis-server
the whole suite is skipped: it compares the sidecar with redis-server itself.
"""

import errno
import os
import resource
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RespClient, encode_command, parse_info, wait_until  # noqa: E402
from hostile_fixture import (  # noqa: E402
    big_value, ASAN, VALGRIND, SLOW, MAXCLIENTS_ERR, MB, CLOSE_WAIT, ref_server, vm_field, vmrss,
    conn, info, call, exchange, config_set, Snapshot, HostileCase, setUpModule, tearDownModule,
)


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
            with RespClient(ref_server().port) as c:
                c.send(payload)
                c.sock.shutdown(socket.SHUT_WR)
                self.assertEqual(c.read_until_close(CLOSE_WAIT), (want, True), "redis-server")
            call(ref_server(), "DEL", "hk")
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
