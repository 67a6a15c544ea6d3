"""Integration-test harness: start/stop redis-server and the sidecar on loopback ports, and a raw
RESP client that reads exactly one complete RESP2/RESP3 reply as bytes. For near-cache tests: a
redis-server upstream (make_upstream, upstream_restart), a sidecar configured in front of it
(make_nearcache, nearcache_wait_ready) and the upstream's INFO commandstats (commandstats).

Owns: every process it starts (tracked in _LIVE, killed at exit and on SIGTERM/SIGINT, and sent
SIGTERM by the kernel if this Python process dies: PR_SET_PDEATHSIG), the temp directories holding
each server's config and stderr, and the sockets of RespClient objects.
Invariants: the only address ever connected to is 127.0.0.1; every wait loop is bounded by a
deadline; a sidecar's stderr is kept in a file and scanned for sanitizer reports when it stops.

Run with Debian's /usr/bin/python3 (python3-redis is installed there only); this module itself
needs only the standard library.
"""

import atexit
import ctypes
import os
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
READY_TIMEOUT = 10.0     # seconds to wait for PING to answer after start
STOP_TIMEOUT = 10.0      # seconds to wait for exit after SIGTERM before SIGKILL
REPLY_TIMEOUT = 5.0      # default bound on reading one reply
MAX_REPLY_BYTES = 512 * 1024 * 1024
MAX_NESTING = 64

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")

# ---------------------------------------------------------------------------------------------
# ports and process lifetime


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


_LIVE = set()


def _cleanup_all():
    for srv in list(_LIVE):
        try:
            srv.stop(check=False)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    # Turn SIGTERM (e.g. from `timeout`) into a normal exit so context managers and atexit run.
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    try:
        signal.signal(signal.SIGTERM, _on_signal)
    except ValueError:
        pass

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    # Runs in the child between fork and exec: die with the test runner.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


class ServerError(Exception):
    pass


def _process_id(client):
    """process_id from INFO server on an open RespClient, or None when not given."""
    info = client.call("INFO", "server")
    if isinstance(info, Error):
        return None
    pid = parse_info(info).get("process_id")
    return int(pid) if pid and pid.isdigit() else None


class Server:
    """One server process on 127.0.0.1:port. Use as a context manager, or call start()/stop().

    stop() sends SIGTERM, waits up to STOP_TIMEOUT, then SIGKILLs. With check=True it raises
    ServerError when the process did not exit 0 after SIGTERM or its stderr holds a sanitizer
    report. The stderr file is kept in self.stderr_path until cleanup.
    """

    kind = "server"

    def __init__(self, port=None, config=None, name=None):
        self.port = port or free_port()
        self.config = dict(config or {})
        self.name = name or self.kind
        self.proc = None
        self.tmpdir = tempfile.mkdtemp(prefix="sidecar-it-%s-" % self.kind)
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.returncode = None
        self.killed = False
        self.problems = []

    # subclasses: return argv (may write files into self.tmpdir)
    def argv(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def start(self, ready_timeout=READY_TIMEOUT, attempts=3):
        last = None
        for _ in range(attempts):
            try:
                self._start_once(ready_timeout)
                return self
            except ServerError as e:
                last = e
                # The port may have been taken between free_port() and bind: retry on a new one.
                if "exited" in str(e) and ("Address already in use" in str(e) or "bind" in str(e).lower()):
                    self.port = free_port()
                    continue
                raise
        raise last

    def _start_once(self, ready_timeout):
        argv = self.argv()
        self.returncode = None
        self.killed = False
        self.problems = []
        # stdout goes to the same file: redis-server logs there, the sidecar to stderr.
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=self.env(), preexec_fn=_child_setup, close_fds=True)
        _LIVE.add(self)
        deadline = time.monotonic() + ready_timeout
        last_err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                _LIVE.discard(self)
                self.returncode = rc
                raise ServerError("%s exited with %d during start: %s\n--- stderr ---\n%s"
                                  % (self.name, rc, " ".join(argv), _tail(self.stderr_path)))
            try:
                with RespClient(self.port, timeout=1.0) as c:
                    c.send(encode_command("PING"))
                    # +PONG, or -NOAUTH when a password is set: both mean ready
                    pong = c.read_reply()
                    owner = None if isinstance(pong, Error) else _process_id(c)
            except (OSError, ProtocolError) as e:
                last_err = e
                time.sleep(0.02)
                continue
            if owner is not None and owner != self.proc.pid:
                # Another suite's server got this port between free_port() and our bind: ours
                # will fail to bind. Stop it and let start() retry on a new port.
                self.stop(check=False)
                raise ServerError("%s exited: port %d answered by pid %d, not ours (bind race)"
                                  % (self.name, self.port, owner))
            return
        self.stop(check=False)
        raise ServerError("%s not ready on port %d after %.1fs (%r)\n--- stderr ---\n%s"
                          % (self.name, self.port, ready_timeout, last_err, _tail(self.stderr_path)))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Wait up to timeout for exit; the return code or None."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        _LIVE.discard(self)
        return self.returncode

    def stop(self, check=True, timeout=STOP_TIMEOUT):
        """SIGTERM, bounded wait, SIGKILL. Returns the list of problems found (also raised when
        check is true): non-zero exit, needed SIGKILL, sanitizer reports in stderr."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.returncode = self.proc.returncode
        _LIVE.discard(self)
        problems = []
        if self.killed:
            problems.append("%s did not exit within %.0fs of SIGTERM (SIGKILLed)" % (self.name, timeout))
        elif self.returncode != 0:
            problems.append("%s exited with status %s" % (self.name, self.returncode))
        problems += self.sanitizer_reports()
        self.problems = problems
        if problems and check:
            raise ServerError("; ".join(problems) + "\n--- stderr ---\n" + _tail(self.stderr_path))
        return problems

    def sanitizer_reports(self):
        text = _tail(self.stderr_path, limit=MAX_REPLY_BYTES)
        found = []
        for marker in SANITIZER_MARKERS:
            if marker in text:
                i = text.index(marker)
                found.append("sanitizer report in %s stderr: %s" % (self.name, text[max(0, i - 200):i + 2000]))
        return found

    def stderr_text(self):
        return _tail(self.stderr_path, limit=MAX_REPLY_BYTES)

    def cleanup(self):
        # run.sh sets SIDECAR_IT_STDERR_DIR to scan every sidecar's stderr after the tests.
        keep = os.environ.get("SIDECAR_IT_STDERR_DIR")
        if keep and self.kind == "sidecar" and os.path.isdir(keep) and os.path.exists(self.stderr_path):
            dest = os.path.join(keep, "%s-%s-%d.log" % (self.name, self.pid or 0, self.port))
            try:
                shutil.copyfile(self.stderr_path, dest)
            except OSError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def client(self, timeout=REPLY_TIMEOUT):
        return RespClient(self.port, timeout=timeout)

    def __enter__(self):
        if not self.alive():
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            problems = self.stop(check=False)
            if problems:
                msg = "; ".join(problems) + "\n--- stderr ---\n" + _tail(self.stderr_path)
                if exc_type is None:
                    raise ServerError(msg)
                print("harness: while handling another error: " + msg, file=sys.stderr)
        finally:
            self.cleanup()
        return False


class RedisServer(Server):
    """redis-server on 127.0.0.1. config keys use the sidecar's names (see CONFIG_TO_REDIS)."""

    kind = "redis"

    def __init__(self, binary="redis-server", **kw):
        super().__init__(**kw)
        self.binary = binary

    def argv(self):
        a = [self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.tmpdir,
             "--logfile", ""]
        for key, value in self.config.items():
            a += ["--" + CONFIG_TO_REDIS.get(key, key), str(value)]
        return a


# sidecar ini key -> (section, redis-server option)
CONFIG_SECTIONS = {
    "maxclients": "server", "timeout": "server", "requirepass": "server",
    "databases": "server", "hz": "server", "tcp_keepalive": "server",
    "proto_max_bulk_len": "server", "client_query_buffer_limit": "server",
    "client_output_buffer_limit": "server", "pubsub_output_buffer_limit": "server",
    "max_memory": "cache", "maxmemory_policy": "cache", "maxmemory_samples": "cache",
    "level": "log",
}
CONFIG_TO_REDIS = {
    "max_memory": "maxmemory", "maxmemory_policy": "maxmemory-policy",
    "maxmemory_samples": "maxmemory-samples", "tcp_keepalive": "tcp-keepalive",
    "proto_max_bulk_len": "proto-max-bulk-len",
    "client_query_buffer_limit": "client-query-buffer-limit",
}


def sidecar_ini(port, config):
    """The text of a sidecar ini listening on 127.0.0.1:port with config's keys in their sections
    (a key may also be given as "section.key")."""
    sections = {"server": ["listen = %s:%d" % (HOST, port)]}
    for key, value in config.items():
        if "." in key:
            section, key = key.split(".", 1)
        else:
            section = CONFIG_SECTIONS.get(key, "server")
        sections.setdefault(section, []).append("%s = %s" % (key, value))
    out = []
    for section, lines in sections.items():
        out.append("[%s]" % section)
        out += lines
        out.append("")
    return "\n".join(out)


class SidecarServer(Server):
    """The sidecar binary, started as `BIN -c TMP.ini` with a temp ini (listen on our port).
    wrapper: argv put before it (e.g. ["valgrind", "-q"]; the process keeps its pid); by default
    the words of $SIDECAR_WRAPPER, e.g. SIDECAR_WRAPPER="valgrind -q --error-exitcode=99
    --leak-check=full --errors-for-leak-kinds=definite" to run every sidecar of a test file
    under memcheck (an error or a definite leak then fails its stop() by the exit status)."""

    kind = "sidecar"

    def __init__(self, binary, extra_args=(), extra_env=None, wrapper=None, **kw):
        super().__init__(**kw)
        self.binary = os.path.abspath(binary) if os.sep in binary else binary
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        if wrapper is None:
            wrapper = shlex.split(os.environ.get("SIDECAR_WRAPPER", ""))
        self.wrapper = list(wrapper)
        self.ini_path = os.path.join(self.tmpdir, "sidecar.ini")

    def argv(self):
        with open(self.ini_path, "w") as f:
            f.write(sidecar_ini(self.port, self.config))
        return self.wrapper + [self.binary, "-c", self.ini_path] + self.extra_args

    def env(self):
        e = dict(os.environ)
        # Overrides from the caller's environment would defeat the test's own config.
        for k in list(e):
            if k.startswith("SIDECAR_") and k not in ("SIDECAR_BIN", "SIDECAR_ASAN"):
                del e[k]
        e.update(self.extra_env)
        return e


def redis_client(server, **kw):
    """A redis-py client (Debian's python3-redis) for server, with bounded socket timeouts.
    Imported here, not at the top, so the harness itself needs only the standard library."""
    import redis
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("socket_connect_timeout", 5)
    return redis.Redis(host=HOST, port=server.port, **kw)


def is_redis_binary(path):
    return os.path.basename(path).startswith("redis-server")


def make_server(binary, config=None, name=None):
    """A RedisServer when binary is redis-server (tests proving themselves against Redis),
    otherwise a SidecarServer."""
    if is_redis_binary(binary):
        return RedisServer(binary=binary, config=config, name=name)
    return SidecarServer(binary, config=config, name=name)


# ---------------------------------------------------------------------------------------------
# RESP


class ProtocolError(Exception):
    pass


class ConnectionClosed(OSError):
    pass


def _arg_bytes(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (bytearray, memoryview)):
        return bytes(a)
    if isinstance(a, str):
        return a.encode("utf-8")
    if isinstance(a, (int, float)):
        return repr(a).encode() if isinstance(a, float) else str(a).encode()
    raise TypeError("bad argument type %r" % type(a))


def encode_command(*args):
    """RESP multibulk for args (str/bytes/int)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg_bytes(a)
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class Incomplete(Exception):
    pass


_LINE_TYPES = b"+-:_#,("
_BULK_TYPES = b"$!="
_AGG_TYPES = b"*~>"


def _read_line(buf, pos):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    return buf[pos:end], end + 2


def _parse_int(b, what):
    try:
        return int(b)
    except ValueError:
        raise ProtocolError("bad %s %r" % (what, bytes(b)))


def parse_reply(buf, pos=0, depth=0):
    """Parse one complete reply starting at buf[pos]. Returns (value, end). Raises Incomplete when
    more bytes are needed, ProtocolError on malformed input.

    Values: + -> Status(str), - and ! -> Error(str), : and ( -> int, $ = -> bytes (None for -1),
    * ~ > -> list / Set / Push (None for *-1), % -> dict-like list of pairs (Map), _ -> None,
    # -> bool, , -> float (inf/nan included). A | attribute is parsed and attached to the reply that
    follows it (Attributed)."""
    if depth > MAX_NESTING:
        raise ProtocolError("reply nested too deep")
    if pos >= len(buf):
        raise Incomplete()
    t = buf[pos]
    line, nxt = _read_line(buf, pos + 1)
    if t in _LINE_TYPES:
        s = bytes(line)
        if t == 0x2B:  # +
            return Status(s.decode("utf-8", "replace")), nxt
        if t == 0x2D:  # -
            return Error(s.decode("utf-8", "replace")), nxt
        if t in (0x3A, 0x28):  # : (
            return _parse_int(s, "integer"), nxt
        if t == 0x5F:  # _
            if s:
                raise ProtocolError("bad null %r" % s)
            return None, nxt
        if t == 0x23:  # #
            if s not in (b"t", b"f"):
                raise ProtocolError("bad boolean %r" % s)
            return s == b"t", nxt
        if t == 0x2C:  # ,
            try:
                return float(s), nxt
            except ValueError:
                raise ProtocolError("bad double %r" % s)
    if t in _BULK_TYPES:
        n = _parse_int(line, "bulk length")
        if n == -1 and t == 0x24:
            return None, nxt
        if n < 0 or n > MAX_REPLY_BYTES:
            raise ProtocolError("bad bulk length %d" % n)
        if len(buf) < nxt + n + 2:
            raise Incomplete()
        data = bytes(buf[nxt:nxt + n])
        if buf[nxt + n:nxt + n + 2] != b"\r\n":
            raise ProtocolError("bulk not terminated by CRLF")
        if t == 0x21:  # !
            return Error(data.decode("utf-8", "replace")), nxt + n + 2
        if t == 0x3D:  # = verbatim: "txt:..."
            return Verbatim(data), nxt + n + 2
        return data, nxt + n + 2
    if t in _AGG_TYPES or t == 0x25 or t == 0x7C:  # * ~ > % |
        n = _parse_int(line, "aggregate length")
        if n == -1 and t == 0x2A:
            return None, nxt
        if n < 0 or n > 100_000_000:
            raise ProtocolError("bad aggregate length %d" % n)
        count = n * 2 if t in (0x25, 0x7C) else n
        items = []
        p = nxt
        for _ in range(count):
            v, p = parse_reply(buf, p, depth + 1)
            items.append(v)
        if t == 0x25:
            return Map(zip(items[0::2], items[1::2])), p
        if t == 0x7C:
            attrs = Map(zip(items[0::2], items[1::2]))
            v, p = parse_reply(buf, p, depth + 1)
            return Attributed(v, attrs), p
        if t == 0x7E:
            return RSet(items), p
        if t == 0x3E:
            return Push(items), p
        return items, p
    raise ProtocolError("unknown reply type byte %r at offset %d" % (chr(t), pos))


def reply_end(buf, pos=0):
    """Offset just past the one complete reply at buf[pos]; raises Incomplete/ProtocolError."""
    return parse_reply(buf, pos)[1]


class Status(str):
    pass


class Error(str):
    pass


class Verbatim(bytes):
    pass


class Map(list):
    """A RESP3 map as an ordered list of (key, value) pairs (keys may be unhashable)."""

    def get(self, key, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def as_dict(self):
        return {k: v for k, v in self}


class RSet(list):
    pass


class Push(list):
    pass


class Attributed:
    def __init__(self, value, attrs):
        self.value, self.attrs = value, attrs

    def __repr__(self):
        return "Attributed(%r, %r)" % (self.value, self.attrs)


class RespClient:
    """A raw client on one TCP connection to 127.0.0.1:port. Reads exactly one reply per
    read_reply(); bytes after it stay buffered for the next call."""

    def __init__(self, port, timeout=REPLY_TIMEOUT, connect_timeout=2.0, rcvbuf=None):
        """rcvbuf: a small SO_RCVBUF (set before connecting) keeps replies queued in the server."""
        self.port = port
        self.timeout = timeout
        self.buf = bytearray()
        self.closed_by_peer = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(connect_timeout)
            self.sock.connect((HOST, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.sock.setblocking(False)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def reset(self):
        """Close with an RST (SO_LINGER 0): the client is gone at once. A plain close() is a
        half-close, whose requests a server still answers (Redis and the sidecar both do)."""
        if self.sock is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def send(self, data, timeout=None):
        """Write all of data within timeout (reading nothing)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("send timed out with %d bytes left" % len(view))
            _, w, _ = select.select([], [self.sock], [], left)
            if not w:
                continue
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                continue
            view = view[n:]

    def _fill(self, deadline):
        """Read what is available into buf (waiting until deadline). False on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out waiting for a reply (have %d bytes: %r)"
                               % (len(self.buf), bytes(self.buf[:200])))
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return True
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            return False
        self.buf += chunk
        return True

    def read_reply_bytes(self, timeout=None):
        """The raw bytes of exactly one complete reply. Raises ConnectionClosed if the peer
        closes first, TimeoutError after timeout, ProtocolError on malformed bytes."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            if self.buf:
                try:
                    end = reply_end(self.buf)
                    out = bytes(self.buf[:end])
                    del self.buf[:end]
                    return out
                except Incomplete:
                    pass
            if self.closed_by_peer or not self._fill(deadline):
                raise ConnectionClosed("connection closed by server (pending %r)" % bytes(self.buf[:200]))

    def read_reply(self, timeout=None):
        """One reply, decoded (see parse_reply)."""
        raw = self.read_reply_bytes(timeout)
        return parse_reply(raw)[0]

    def call_raw(self, *args, timeout=None):
        self.send(encode_command(*args), timeout)
        return self.read_reply_bytes(timeout)

    def call(self, *args, timeout=None):
        self.send(encode_command(*args), timeout)
        return self.read_reply(timeout)

    def read_until_close(self, wait, max_bytes=16 << 20):
        """Everything received within `wait` seconds (or until the peer closes).
        Returns (bytes, closed)."""
        deadline = time.monotonic() + wait
        while not self.closed_by_peer and len(self.buf) < max_bytes:
            try:
                if not self._fill(deadline):
                    break
            except TimeoutError:
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out, self.closed_by_peer

    def wait_closed(self, timeout):
        """True if the peer closes the connection within timeout (data received is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._fill(deadline):
                    return True
            except TimeoutError:
                return False
        return False

    def pipeline(self, payload, nreplies, timeout=30.0):
        """Send payload while reading nreplies raw replies concurrently (so neither side's
        buffers deadlock). Returns the list of raw replies."""
        deadline = time.monotonic() + timeout
        view = memoryview(payload)
        replies = []
        while len(replies) < nreplies:
            # drain complete replies already buffered
            while len(replies) < nreplies and self.buf:
                try:
                    end = reply_end(self.buf)
                except Incomplete:
                    break
                replies.append(bytes(self.buf[:end]))
                del self.buf[:end]
            if len(replies) >= nreplies:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("pipeline: %d of %d replies, %d bytes unsent"
                                   % (len(replies), nreplies, len(view)))
            r, w, _ = select.select([self.sock], [self.sock] if view else [], [], left)
            if w and view:
                try:
                    n = self.sock.send(view[:1 << 18])
                    view = view[n:]
                except BlockingIOError:
                    pass
            if r:
                try:
                    chunk = self.sock.recv(1 << 18)
                except BlockingIOError:
                    chunk = None
                except ConnectionResetError:
                    chunk = b""
                if chunk == b"":
                    self.closed_by_peer = True
                    raise ConnectionClosed("closed after %d of %d replies" % (len(replies), nreplies))
                if chunk:
                    self.buf += chunk
        return replies


def wait_until(predicate, timeout, interval=0.01):
    """Poll predicate until truthy or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def parse_info(text):
    """INFO text (str or bytes) -> dict of field -> str."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# near-cache: a redis-server as the upstream and a sidecar configured in front of it
#
# Additive helpers (issue 4); nothing above depends on them. Keys are written section-qualified
# ("upstream.port", "cache.max_ttl_ms") so that names shared by two sections ([server] unixsocket
# and [upstream] unixsocket) are never ambiguous.

# near-cache option -> its ini section. make_nearcache() accepts these as keyword arguments.
NEARCACHE_SECTIONS = {
    "host": "upstream", "port": "upstream", "unixsocket": "upstream", "username": "upstream",
    "password": "upstream", "db": "upstream", "connect_timeout_ms": "upstream",
    "op_timeout_ms": "upstream", "connections": "upstream", "reconnect_min_ms": "upstream",
    "reconnect_max_ms": "upstream", "health_check_interval_ms": "upstream",
    "invalidation": "cache", "bcast_prefixes": "cache", "max_ttl_ms": "cache",
    "negative_ttl_ms": "cache", "write_through": "cache", "serve_stale_ms": "cache",
}

# What tests run with unless they say otherwise: no health-check PINGs (they would show in the
# upstream's commandstats; a killed upstream is noticed by its closed socket anyway), and a short
# reconnect backoff so a restarted upstream is used again quickly.
NEARCACHE_TEST_DEFAULTS = {
    "health_check_interval_ms": 0,
    "connect_timeout_ms": 500,
    "reconnect_min_ms": 20,
    "reconnect_max_ms": 200,
}

NEARCACHE_READY_TIMEOUT = 10.0   # seconds for INFO to show the upstream (and subscriber) up


def make_upstream(port=None, config=None, name="upstream"):
    """A RedisServer (not started) to be a near-cache's upstream, on port (a free one if None).
    DEBUG is allowed from loopback connections (tests use DEBUG SLEEP to slow it down). Start it
    with .start(); start it again after a kill with upstream_restart() to keep its port."""
    cfg = {"enable-debug-command": "local"}
    cfg.update(config or {})
    return RedisServer(port=port, config=cfg, name=name)


def upstream_restart(server, ready_timeout=READY_TIMEOUT):
    """Start a stopped or killed upstream again on the same port (no retry on another port: a
    sidecar is configured with this one). Returns server."""
    if server.alive():
        raise ServerError("%s is still running (pid %d)" % (server.name, server.pid))
    server.start(ready_timeout=ready_timeout, attempts=1)
    return server


def nearcache_config(upstream_port, **opts):
    """The config dict of a sidecar whose upstream is 127.0.0.1:upstream_port: the test defaults
    above, then opts. A key of NEARCACHE_SECTIONS goes to its section; any other key is passed
    through as sidecar_ini() takes it ("section.key" or a CONFIG_SECTIONS name). A value of None
    leaves the key out (the sidecar's default then applies); True/False become yes/no."""
    merged = {"host": HOST, "port": upstream_port}
    merged.update(NEARCACHE_TEST_DEFAULTS)
    merged.update(opts)
    cfg = {}
    for key, value in merged.items():
        if value is None:
            continue
        if value is True or value is False:
            value = "yes" if value else "no"
        section = NEARCACHE_SECTIONS.get(key)
        cfg["%s.%s" % (section, key) if section else key] = value
    return cfg


def make_nearcache(binary, upstream_port, name="nearcache", extra_env=None, **opts):
    """A SidecarServer (not started) in front of the upstream on upstream_port; opts as in
    nearcache_config(). After start(), nearcache_wait_ready() says when it may be measured."""
    return SidecarServer(binary, config=nearcache_config(upstream_port, **opts), name=name,
                         extra_env=extra_env)


def info_dict(server, section=None, timeout=REPLY_TIMEOUT):
    """INFO [section] of server (one short-lived connection) as a dict of field -> str."""
    with RespClient(server.port, timeout=timeout) as c:
        raw = c.call("INFO", section) if section else c.call("INFO")
    if isinstance(raw, Error):
        raise ProtocolError("INFO failed on %s: %s" % (getattr(server, "name", server), raw))
    return parse_info(raw)


def nearcache_wait_ready(sidecar, timeout=NEARCACHE_READY_TIMEOUT, subscriber=True):
    """Wait until the sidecar's INFO shows upstream_state:up and, with subscriber (tracking or
    bcast mode), upstream_subscriber:up. Returns the last INFO dict; raises ServerError naming the
    fields seen when the deadline passes (or the sidecar exits)."""
    start = time.monotonic()
    deadline = start + timeout
    info = {}
    while True:
        if not sidecar.alive():
            raise ServerError("%s exited while waiting for its upstream\n--- stderr ---\n%s"
                              % (sidecar.name, _tail(sidecar.stderr_path)))
        try:
            info = info_dict(sidecar, timeout=1.0)
        except (OSError, ProtocolError):
            info = {}
        ok = info.get("upstream_state") == "up"
        if ok and subscriber:
            ok = info.get("upstream_subscriber") == "up"
        if ok:
            return info
        # An INFO without the field at all means a sidecar without near-cache support: waiting
        # the whole timeout in every test would only make the failure slow.
        no_field = info and "upstream_state" not in info and time.monotonic() - start > 1.0
        if no_field or time.monotonic() >= deadline:
            seen = {k: info.get(k) for k in ("upstream_state", "upstream_subscriber",
                                              "upstream_connections_up", "upstream_last_error")}
            raise ServerError("%s: upstream not ready after %.1fs (INFO shows %r)\n--- stderr ---\n%s"
                              % (sidecar.name, time.monotonic() - start, seen,
                                 _tail(sidecar.stderr_path)))
        time.sleep(0.02)


def commandstats(server, timeout=REPLY_TIMEOUT):
    """INFO commandstats of a redis-server as {command: calls}, e.g. {"get": 3,
    "client|setname": 1}. Commands never called since the last CONFIG RESETSTAT are absent."""
    out = {}
    for key, value in info_dict(server, "commandstats", timeout=timeout).items():
        if not key.startswith("cmdstat_"):
            continue
        for item in value.split(","):
            name, _, num = item.partition("=")
            if name == "calls":
                out[key[len("cmdstat_"):]] = int(num)
    return out


def reset_commandstats(server, timeout=REPLY_TIMEOUT):
    """CONFIG RESETSTAT on a redis-server (zeroes commandstats)."""
    with RespClient(server.port, timeout=timeout) as c:
        reply = c.call("CONFIG", "RESETSTAT")
    if reply != "OK":
        raise ProtocolError("CONFIG RESETSTAT on %s: %r" % (server.name, reply))
