"""Shared pieces of the benchmark harness (tests/bench/): the registry of processes it starts, free
loopback ports, readiness checks, a minimal RESP2 client on raw sockets (fast pipelined loads and
reads, INFO), and RSS readings from /proc.

Invariants: every process the harness starts goes through Procs.start or Procs.run and is stopped
by its own pid (SIGTERM, then SIGKILL after a bounded wait) by Procs.stop_all, whatever happened;
every wait and every loop here is bounded by a count or a deadline; traffic goes to 127.0.0.1
only. Standard library only (runs under /usr/bin/python3)."""
import os
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"


class BenchError(Exception):
    """A step of the harness failed; the message says which and why."""


class Procs:
    """Owns every child process of one harness run, long-lived (servers) and short (clients)."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.live = []  # [name, Popen, stop_timeout_s], in start order
        self.used_ports = set()

    def port(self):
        """A loopback TCP port that was free a moment ago and was not handed out before."""
        for _ in range(100):
            s = socket.socket()
            s.bind((HOST, 0))
            p = s.getsockname()[1]
            s.close()
            if p not in self.used_ports:
                self.used_ports.add(p)
                return p
        raise BenchError("no free loopback port")

    def log_path(self, name):
        return os.path.join(self.logdir, name + ".log")

    def start(self, name, argv, stop_timeout=10.0):
        """Starts a server; stdout and stderr go to <logdir>/<name>.log. Returns the Popen."""
        log = open(self.log_path(name), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:
            raise BenchError(f"cannot start {name} ({argv[0]}): {e}") from e
        finally:
            log.close()
        self.live.append([name, p, stop_timeout])
        return p

    def stop(self, proc, sig=signal.SIGTERM):
        """Stops one started process by its pid and waits (bounded); returns its exit status."""
        entry = next((e for e in self.live if e[1] is proc), None)
        timeout = entry[2] if entry else 10.0
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if entry:
            self.live.remove(entry)
        return proc.returncode

    def stop_all(self):
        for entry in reversed(list(self.live)):
            try:
                self.stop(entry[1])
            except Exception:  # keep stopping the others
                pass

    def run(self, name, argv, timeout, check=True):
        """Runs a client to completion (bounded by timeout seconds); returns (rc, stdout, stderr)."""
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        except OSError as e:
            raise BenchError(f"{name}: cannot run {argv[0]}: {e}") from e
        entry = [name, p, 5.0]
        self.live.append(entry)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{name}: no result after {timeout:.0f} s: {' '.join(argv)}")
        finally:
            if p.poll() is None:
                self.stop(p, signal.SIGKILL)
            elif entry in self.live:
                self.live.remove(entry)
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        if check and p.returncode != 0:
            raise BenchError(f"{name}: exit status {p.returncode}: {' '.join(argv)}\n{err.strip()[-600:]}")
        return p.returncode, out, err

    def tail(self, name, lines=15):
        try:
            with open(self.log_path(name), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"


def ping_once(port, timeout=0.5):
    """True when the server on port answers PING with +PONG."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while not data.endswith(b"\r\n") and len(data) < 64:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data == b"+PONG\r\n"
    except OSError:
        return False


def wait_ready(procs, name, proc, port, timeout):
    """Waits until the server answers PING (bounded), failing early if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with status {proc.returncode} before answering PING:\n"
                             + procs.tail(name))
        if ping_once(port):
            return
        time.sleep(0.02)
    raise BenchError(f"{name} did not answer PING on port {port} within {timeout:.0f} s:\n"
                     + procs.tail(name))


def rss_kb(pid):
    """VmRSS of a live process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError as e:
        raise BenchError(f"cannot read RSS of pid {pid}: {e}") from e
    raise BenchError(f"no VmRSS for pid {pid}")


def encode(*args):
    """One RESP2 multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespError(Exception):
    pass


class Conn:
    """A blocking RESP2 connection with a read buffer. Replies: bytes (simple and bulk strings),
    int, None (null), list, or RespError instances (error replies are returned, not raised)."""

    def __init__(self, port, timeout=60.0):
        try:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
        except OSError as e:
            raise BenchError(f"cannot connect to 127.0.0.1:{port}: {e}") from e
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except OSError as e:
            raise BenchError(f"port {self.port}: read failed: {e}") from e
        if not chunk:
            raise BenchError(f"port {self.port}: connection closed by the server")
        if self.pos:
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise BenchError(f"port {self.port}: unexpected reply line {line[:40]!r}")

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self.read()

    def pipeline(self, payload, count):
        """Sends pre-encoded requests and returns their count replies."""
        self.sock.sendall(payload)
        return [self.read() for _ in range(count)]

    def expect_ok(self, payload, count):
        """Sends count pre-encoded requests whose replies must all be +OK (fast path)."""
        self.sock.sendall(payload)
        want = 5 * count
        while len(self.buf) - self.pos < want:
            self._fill()
        got = self.buf[self.pos:self.pos + want]
        self.pos += want
        if got != b"+OK\r\n" * count:
            i = got.find(b"-")
            detail = got[i:got.find(b"\r\n", i)] if i >= 0 else got[:40]
            raise BenchError(f"port {self.port}: a pipelined write failed: {detail!r}")


def info(port, section=None):
    """INFO [section] parsed into a dict of strings."""
    with Conn(port, timeout=10) as c:
        r = c.call("INFO", section) if section else c.call("INFO")
    if not isinstance(r, bytes):
        raise BenchError(f"port {port}: INFO failed: {r}")
    out = {}
    for line in r.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def load_strings(port, keyfmt, count, value_of, batch=10000, extra=(), first=0):
    """SET keyfmt % i -> value_of(i) for i in range(first, first + count), pipelined in batches;
    every reply must be +OK. extra: more arguments after the value (e.g. ("EX", "3600"))."""
    with Conn(port, timeout=120) as c:
        for start in range(first, first + count, batch):
            end = min(first + count, start + batch)
            payload = b"".join(encode("SET", keyfmt % i, value_of(i), *extra) for i in range(start, end))
            c.expect_ok(payload, end - start)


def read_all(port, keyfmt, count, batch=1000):
    """GET every key once, pipelined; returns how many replies were not null."""
    found = 0
    with Conn(port, timeout=120) as c:
        for start in range(0, count, batch):
            end = min(count, start + batch)
            payload = b"".join(encode("GET", keyfmt % i) for i in range(start, end))
            for r in c.pipeline(payload, end - start):
                if isinstance(r, RespError):
                    raise BenchError(f"port {port}: GET failed: {r}")
                found += r is not None
    return found


def median(values):
    v = sorted(values)
    if not v:
        return float("nan")
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2
