"""A fault-injecting TCP relay for the tests: it listens on 127.0.0.1, and for every connection it
accepts opens one to 127.0.0.1:<target port> (the upstream redis-server) and copies bytes both
ways, unless told to misbehave. Put it between the sidecar and its upstream ([upstream] port =
relay.port) and switch faults at run time from the test:

    pass       copy bytes as they come
    delay      hold every chunk delay_ms before writing it on (each direction, order kept)
    stall      stop writing but keep reading into a buffer; the buffer is written on when the
               mode goes back to pass or delay (nothing is lost)
    blackhole  read and drop everything, silently; the sockets stay open (a link that looks
               alive to the kernel but never answers: a hung upstream, a dead middlebox)
    reset()    an action, not a mode: RST (SO_LINGER 0) every current connection, both sides;
               with refuse=True new connections are reset as soon as accepted until
               refuse_new(False)
    hold_after(marker)
               a one-shot split, not a mode: the first chunk the sidecar sends that contains
               marker is written on up to the marker's end, and what follows it on that
               connection is held (the rest of the chunk and every later chunk, in order)
               until release(); held() tells whether the split happened. It puts the upstream's
               read boundary (and anything the test does meanwhile) between two commands the
               sidecar wrote at once.

A mode applies to all connections (set_mode(mode)), or only to the connections of one role
(set_mode(mode, role=...)), which wins over the global mode, or to one connection
(set_conn_mode(id, mode), an id from connections()), which wins over both. The role of a connection is
learned from the first bytes the sidecar sends on it:

    "invalidate"  its handshake subscribes __redis__:invalidate (the near-cache's invalidation
                  subscriber)
    "pubsub"      another subscriber link (SUBSCRIBE/PSUBSCRIBE without that channel)
    "data"        anything else (data links start with PING, AUTH or SELECT; private links too)
    "unknown"     nothing decisive seen yet (a subscriber's CLIENT ID may come alone first)

Owns: one thread running a selectors loop, its listening socket, every accepted and outgoing
socket, and the bytes buffered between them. Invariants: only 127.0.0.1 is ever bound or
connected to; every buffer is bounded (MAX_BUFFERED per direction: reading from a side stops
while its buffer is full, blackhole excepted, which never buffers); every wait is bounded (each
select at most TICK seconds; the loop ends on stop() or after max_lifetime seconds; stop() joins
with a timeout); when either side of a pair closes or fails, both are closed.
"""

import collections
import selectors
import socket
import struct
import threading
import time

HOST = "127.0.0.1"
MODES = ("pass", "delay", "stall", "blackhole")
ROLES = ("invalidate", "pubsub", "data", "unknown")
TICK = 0.02                  # seconds: longest select wait (timers are checked this often)
CHUNK = 65536                # bytes read per recv
MAX_BUFFERED = 8 << 20       # bytes buffered per direction before reading from that side stops
CLASSIFY_BYTES = 4096        # bytes of the client's stream kept to learn its role
CONNECT_TIMEOUT = 1.0        # seconds for the connection to the target
MAX_LIFETIME = 1800.0        # seconds: the loop ends by itself after this, whatever happens
HELD = float("inf")          # release time of a part held by hold_after() until release()


def _rst_close(sock):
    """Close sock with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def classify(head):
    """The role of a connection from the first bytes the sidecar sent on it; "unknown" while
    nothing decisive was seen."""
    up = head.upper()
    if b"__REDIS__:INVALIDATE" in up:
        return "invalidate"
    if b"SUBSCRIBE" in up:
        return "pubsub"
    if b"CLIENT\r\n$2\r\nID\r\n" in up:
        return "unknown"  # a subscriber's handshake: which one is said by what follows
    # A data link's first command is PING, AUTH or SELECT; a complete first command is enough.
    if head.startswith(b"*") and head.count(b"\r\n") >= 3:
        return "data"
    return "unknown"


class _Direction:
    """Bytes read from src waiting to be written to dst: (release time, bytes) chunks."""

    def __init__(self, src, dst, name):
        self.src, self.dst, self.name = src, dst, name
        self.chunks = collections.deque()
        self.buffered = 0
        self.bytes_in = 0       # read from src
        self.bytes_out = 0      # written to dst
        self.dropped = 0        # read and dropped (blackhole)
        self.want_write = False  # a chunk is due and the mode lets it go


class _Conn:
    def __init__(self, cid, client, server):
        self.id = cid
        self.client = client
        self.server = server
        self.role = "unknown"
        self.head = b""
        self.up = _Direction(client, server, "to-upstream")
        self.down = _Direction(server, client, "to-client")
        self.opened = time.monotonic()
        self.closed = False


class FaultRelay:
    """See the module comment. Use as a context manager or call start()/stop()."""

    def __init__(self, target_port, port=0, max_lifetime=MAX_LIFETIME):
        self.target_port = target_port
        self._want_port = port
        self.port = None
        self.max_lifetime = max_lifetime
        self._lock = threading.Lock()
        self._mode = ("pass", 0)                 # (mode, delay_ms)
        self._role_modes = {}                    # role -> (mode, delay_ms)
        self._conn_modes = {}                    # connection id -> (mode, delay_ms)
        self._refuse = False
        self._actions = collections.deque()      # callables run on the loop thread
        self._conns = {}
        self._next_id = 1
        self._stop = threading.Event()
        self._thread = None
        self._sel = None
        self._listener = None
        self._wake_r = self._wake_w = None
        self.accepted = 0
        self.refused = 0
        self.resets = 0
        self.error = None                        # an exception that ended the loop, if any
        self._split = None                       # hold_after's marker, until it is seen
        self._held = None                        # (conn, chunk index) of the held part

    # ---- lifetime ----------------------------------------------------------------------------

    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((HOST, self._want_port))
        ls.listen(128)
        ls.setblocking(False)
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(ls, selectors.EVENT_READ, ("listen", None))
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(target=self._run, name="faultrelay:%d" % self.port,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        """Stops the loop and closes every socket (FIN, not RST). Idempotent."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("fault relay thread did not stop within %.1fs" % timeout)
            self._thread = None

    def __enter__(self):
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- control (any thread) ----------------------------------------------------------------

    def set_mode(self, mode, delay_ms=0, role=None):
        """mode for every connection (role None: the global mode) or for the connections of one
        role (overrides the global mode for them, now and for later ones)."""
        if mode not in MODES:
            raise ValueError("mode %r not in %r" % (mode, MODES))
        if role is not None and role not in ROLES:
            raise ValueError("role %r not in %r" % (role, ROLES))
        with self._lock:
            if role is None:
                self._mode = (mode, int(delay_ms))
            else:
                self._role_modes[role] = (mode, int(delay_ms))
        self._wake()

    def set_conn_mode(self, cid, mode, delay_ms=0):
        """mode for one connection (an id from connections()), over its role's and the global
        mode; forgotten by heal()."""
        if mode not in MODES:
            raise ValueError("mode %r not in %r" % (mode, MODES))
        with self._lock:
            self._conn_modes[cid] = (mode, int(delay_ms))
        self._wake()

    def clear_roles(self):
        """Forget every per-role mode: all connections follow the global mode again."""
        with self._lock:
            self._role_modes.clear()
        self._wake()

    def heal(self):
        """Everything back to pass: global mode, per-role modes, refusal."""
        with self._lock:
            self._mode = ("pass", 0)
            self._role_modes.clear()
            self._conn_modes.clear()
            self._refuse = False
        self._wake()

    def refuse_new(self, refuse=True):
        with self._lock:
            self._refuse = bool(refuse)
        self._wake()

    def reset(self, role=None, refuse=False, timeout=5.0):
        """RSTs every current connection (or those of one role) on both sides; with refuse, new
        connections are reset at accept until refuse_new(False). Returns how many were reset,
        once done (waits for the loop thread, bounded)."""
        if refuse:
            self.refuse_new(True)
        done = threading.Event()
        result = []

        def action():
            n = 0
            for conn in list(self._conns.values()):
                if role is None or conn.role == role:
                    self._close(conn, rst=True)
                    n += 1
            self.resets += n
            result.append(n)
            done.set()

        with self._lock:
            self._actions.append(action)
        self._wake()
        if not done.wait(timeout):
            raise RuntimeError("fault relay did not reset within %.1fs" % timeout)
        return result[0]

    def connections(self):
        """A snapshot: one dict per open connection (id, role, mode, byte counts)."""
        with self._lock:
            conns = list(self._conns.values())
        return [{"id": c.id, "role": c.role, "mode": self._effective(c)[0],
                 "to_upstream": c.up.bytes_out, "to_client": c.down.bytes_out,
                 "dropped": c.up.dropped + c.down.dropped,
                 "buffered": c.up.buffered + c.down.buffered} for c in conns]

    def roles(self):
        """role -> number of open connections with it."""
        out = collections.Counter(c["role"] for c in self.connections())
        return dict(out)

    # ---- the loop (its own thread) -----------------------------------------------------------

    def _wake(self):
        w = self._wake_w
        if w is None:
            return
        try:
            w.send(b"x")
        except OSError:
            pass  # full (already woken) or closed

    def hold_after(self, marker):
        with self._lock:
            self._split = marker
            self._held = None

    def held(self):
        with self._lock:
            return self._held is not None

    def release(self):
        """Lets the held part (and what queued behind it) go on."""
        def action():
            with self._lock:
                conn, self._held = self._held, None
            if conn is not None:
                for i, (rel, data) in enumerate(conn.up.chunks):  # one held part at most
                    if rel == HELD:
                        conn.up.chunks[i] = (0.0, data)
                        break
        with self._lock:
            self._actions.append(action)
        self._wake()

    def _split_held(self, conn, data, rel):
        """Appends data to conn.up, split after hold_after's marker (see the module comment)."""
        with self._lock:
            marker = self._split
        at = data.find(marker) if marker else -1
        if at < 0:
            conn.up.chunks.append((rel, data))
            return
        end = at + len(marker)
        conn.up.chunks.append((rel, data[:end]))
        conn.up.chunks.append((HELD, data[end:]))
        with self._lock:
            self._split = None
            self._held = conn

    def _effective(self, conn):
        with self._lock:
            if conn.id in self._conn_modes:
                return self._conn_modes[conn.id]
            return self._role_modes.get(conn.role, self._mode)

    def _run(self):
        end = time.monotonic() + self.max_lifetime
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                self._step()
        except Exception as e:  # noqa: BLE001 - kept for the test to see, then cleanup
            self.error = e
        finally:
            for conn in list(self._conns.values()):
                self._close(conn, rst=False)
            for s in (self._listener, self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass
            self._sel.close()

    def _step(self):
        with self._lock:
            actions = list(self._actions)
            self._actions.clear()
        for action in actions:
            action()
        now = time.monotonic()
        timeout = TICK
        for conn in list(self._conns.values()):
            t = self._update_interest(conn, now)
            if t is not None:
                timeout = min(timeout, max(0.0, t - now))
        for key, events in self._sel.select(timeout):
            kind, conn = key.data
            if kind == "listen":
                self._accept()
            elif kind == "wake":
                try:
                    self._wake_r.recv(4096)
                except OSError:
                    pass
            elif not conn.closed:
                self._io(conn, key.fileobj, events)
        now = time.monotonic()
        for conn in list(self._conns.values()):
            if not conn.closed:
                self._flush(conn, conn.up, now)
            if not conn.closed:
                self._flush(conn, conn.down, now)

    def _accept(self):
        for _ in range(64):  # bounded per tick
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.accepted += 1
            with self._lock:
                refuse = self._refuse
            if refuse:
                self.refused += 1
                _rst_close(client)
                continue
            try:
                server = socket.create_connection((HOST, self.target_port), CONNECT_TIMEOUT)
            except OSError:
                # The target is down: the client sees a reset, as for a refused connection.
                self.refused += 1
                _rst_close(client)
                continue
            for s in (client, server):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self._next_id, client, server)
            self._next_id += 1
            with self._lock:
                self._conns[conn.id] = conn
            self._sel.register(client, selectors.EVENT_READ, ("conn", conn))
            self._sel.register(server, selectors.EVENT_READ, ("conn", conn))

    def _update_interest(self, conn, now):
        """Sets what each socket waits for; returns the next chunk release time, if any."""
        mode, _ = self._effective(conn)
        nxt = None
        for d in (conn.up, conn.down):
            want_write = False
            if d.chunks and mode in ("pass", "delay"):
                rel = d.chunks[0][0]
                if rel <= now:
                    want_write = True
                else:
                    nxt = rel if nxt is None else min(nxt, rel)
            d.want_write = want_write
        for sock, rd, wr in ((conn.client, conn.up, conn.down), (conn.server, conn.down, conn.up)):
            # sock is rd.src (we read from it) and wr.dst (we write to it)
            ev = 0
            if mode == "blackhole" or rd.buffered < MAX_BUFFERED:
                ev |= selectors.EVENT_READ
            if wr.want_write:
                ev |= selectors.EVENT_WRITE
            try:
                if ev:
                    self._sel.modify(sock, ev, ("conn", conn))
                else:
                    self._sel.modify(sock, selectors.EVENT_READ, ("conn", conn))
            except (KeyError, ValueError, OSError):
                pass
        return nxt

    def _io(self, conn, sock, events):
        if events & selectors.EVENT_READ:
            d = conn.up if sock is conn.client else conn.down
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close(conn, rst=True)
                return
            if data == b"":
                self._close(conn, rst=False)
                return
            if data:
                d.bytes_in += len(data)
                if d is conn.up and conn.role == "unknown" and len(conn.head) < CLASSIFY_BYTES:
                    conn.head += data[:CLASSIFY_BYTES - len(conn.head)]
                    role = classify(conn.head)
                    if role != "unknown":
                        with self._lock:
                            conn.role = role
                mode, delay_ms = self._effective(conn)
                if mode == "blackhole":
                    d.dropped += len(data)
                else:
                    rel = time.monotonic() + (delay_ms / 1000.0 if mode == "delay" else 0.0)
                    if d is conn.up:
                        self._split_held(conn, data, rel)
                    else:
                        d.chunks.append((rel, data))
                    d.buffered += len(data)
        if events & selectors.EVENT_WRITE and not conn.closed:
            d = conn.down if sock is conn.client else conn.up
            self._flush(conn, d, time.monotonic())

    def _flush(self, conn, d, now):
        mode, _ = self._effective(conn)
        if mode not in ("pass", "delay"):
            return
        for _ in range(256):  # bounded per tick
            if not d.chunks or d.chunks[0][0] > now:
                return
            rel, data = d.chunks[0]
            try:
                n = d.dst.send(data)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn, rst=True)
                return
            d.bytes_out += n
            d.buffered -= n
            if n < len(data):
                d.chunks[0] = (rel, data[n:])
                return
            d.chunks.popleft()

    def _close(self, conn, rst):
        if conn.closed:
            return
        conn.closed = True
        with self._lock:
            self._conns.pop(conn.id, None)
        for s in (conn.client, conn.server):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError, OSError):
                pass
            if rst:
                _rst_close(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
