#!/usr/bin/python3
"""A bounded soak of the sidecar (issue 7): SOAK_SECONDS (default 120) of mixed load on two
sidecars at once, one in near-cache mode in front of a redis-server and one standalone, with
random abrupt client kills (RST in the middle of a pipeline, or half a command) and, for the
near-cache, upstream restarts (redis-server SIGKILLed and started again on the same port, no
persistence: a restart is a FLUSHALL). Meant for the ASan build (ASAN_OPTIONS detect_leaks=1
by default, below) or valgrind (--valgrind).

    tests/soak/run.sh build/asan/sidecar                       # what CI runs
    SOAK_SECONDS=600 /usr/bin/python3 tests/soak/soak.py --sidecar build/asan/sidecar -v

Checks, each a failure when broken (exit status 1, the reasons printed):
  - every reply matches the model of what was written. Each worker thread owns its keys, so the
    model is exact: per key, the set of values it may hold (one value, except after a write
    whose outcome is unknown: a killed pipeline's unread replies, an upstream error on a write,
    a write that straddled a restart). A value read must be in that set (it then becomes the
    only one); never another key's value (values name their key), never a value from before
    an upstream restart once the restart is over (after a restart every key is nil unless a
    write straddling it may have landed on the new server). Upstream errors are allowed only as
    `-ERR upstream ...` (near-cache) and are counted, not judged as values; the standalone
    sidecar gets none at all;
  - no reply is missing, extra or late: each is read within REPLY_TIMEOUT, and the server never
    closes a client connection (only the worker's own kills close one);
  - the sidecars exit 0 on SIGTERM within the harness's bound, with no sanitizer or leak report
    in their stderr (and, with --valgrind, no memcheck error or definite leak);
  - RSS reaches a plateau: sampled every RSS_EVERY seconds; with the samples split in three by
    time, max(last third) <= max(middle third) * (1 + RSS_GROWTH) + RSS_SLACK_MB. The key space
    is bounded (KEYS_* per worker), so a leak or an unbounded buffer shows as growth.

Owns: the processes it starts (through tests/integration/harness.py: started on free loopback
ports, stopped by pid), its worker and sampler threads. Invariants: traffic only to 127.0.0.1;
every loop is bounded by the deadline (and each wait by its own timeout); the run ends on its
own after SOAK_SECONDS + bounded shutdown.
"""

import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import ConnectionClosed, Error, ProtocolError, RespClient, Status, encode_command  # noqa: E402

DEFAULT_SECONDS = 120
NEAR_WORKERS = 4
STANDALONE_WORKERS = 3
KEYS_STR = 40            # string keys per worker
KEYS_CNT = 6             # counters per worker
KEYS_HASH = 6            # hashes per worker ...
FIELDS = 6               # ... of this many fields
VALUE_MAX = 2048         # value padding, bytes (one write in 50 is 10x bigger)
PIPELINE_MAX = 30
KILL_P = 0.03            # a group ends with an abrupt close
RESTART_EVERY = (8.0, 16.0)   # seconds between upstream restarts (uniform)
DOWN_FOR = (0.1, 0.8)         # seconds the upstream stays dead
REPLY_TIMEOUT = 10.0     # seconds for one reply (op_timeout_ms is 1000 below)
KILL_SETTLE = 10.0       # seconds for a killed connection to leave CLIENT LIST
PIN_SETTLE = 0.1         # seconds more when it had sent a transaction (see Worker.connect)
GEN_WAIT = 30.0          # seconds a worker waits for a restart to finish
RSS_EVERY = 1.0
RSS_GROWTH = 0.10
RSS_SLACK_MB = 4.0
MAX_FAILURES = 20        # failures kept per worker (the first ones matter)
ASAN_DEFAULT = "detect_leaks=1:quarantine_size_mb=16:abort_on_error=0"

NIL = None


def log(verbose, msg):
    if verbose:
        sys.stderr.write("soak: %s\n" % msg)
        sys.stderr.flush()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Generation:
    """The upstream's restart counter: odd while a restart is in progress."""

    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            return self.value

    def bump(self):
        with self.lock:
            self.value += 1


class Worker(threading.Thread):
    """One client of one sidecar, owning keys w<id>:*. See the module comment for the model."""

    def __init__(self, wid, server, gen, deadline, seed, near, verbose):
        super().__init__(name="worker-%d" % wid, daemon=True)
        self.wid = wid
        self.server = server
        self.gen = gen
        self.deadline = deadline
        self.rnd = random.Random(seed)
        self.near = near
        self.verbose = verbose
        self.model = {}          # model key -> set of possible values (None = nil / absent)
        self.carry = {}          # model key -> values a write straddling a restart may have left
        self.last_gen = gen.get() if gen else 0
        self.failures = []
        self.stats = {"groups": 0, "replies": 0, "upstream_errors": 0, "kills": 0,
                      "uncertain": 0, "straddled": 0, "nil_reads": 0, "value_reads": 0}
        self.conn = None
        self.conn_id = None
        self.killed_id = None
        self.killed_pinned = False
        self.seq = 0
        p = "w%d:" % wid
        self.str_keys = [p + "s%d" % i for i in range(KEYS_STR)]
        self.cnt_keys = [p + "c%d" % i for i in range(KEYS_CNT)]
        self.hash_keys = [p + "h%d" % i for i in range(KEYS_HASH)]

    # ---- the model -------------------------------------------------------------------------

    def possible(self, mk):
        return self.model.get(mk, {NIL})

    def fail(self, msg):
        if len(self.failures) < MAX_FAILURES:
            self.failures.append("worker %d (%s): %s" % (self.wid, self.server.name, msg))

    def new_value(self, key):
        self.seq += 1
        pad = self.rnd.randrange(VALUE_MAX * (10 if self.rnd.random() < 0.02 else 1))
        return ("%s:%d:" % (key, self.seq)).encode() + b"x" * pad

    # ---- ops: (args, kind, model keys, value written) ---------------------------------------

    def random_op(self):
        r = self.rnd.random()
        if r < 0.03:
            # a transaction (near-cache: on the client's private connection)
            k, c = self.rnd.choice(self.str_keys), self.rnd.choice(self.cnt_keys)
            cmds = (("MULTI",), ("SET", k, self.new_value(k)), ("INCR", c), ("EXEC",))
            return (cmds, "txn", [("s", k), ("c", c)])
        if r < 0.22:
            k = self.rnd.choice(self.str_keys)
            return (("SET", k, self.new_value(k)), "set", [("s", k)])
        if r < 0.45:
            k = self.rnd.choice(self.str_keys)
            return (("GET", k), "get", [("s", k)])
        if r < 0.52:
            k = self.rnd.choice(self.str_keys)
            return (("DEL", k), "del", [("s", k)])
        if r < 0.62:
            ks = self.rnd.sample(self.str_keys, self.rnd.randint(2, 6))
            return (("MGET",) + tuple(ks), "mget", [("s", k) for k in ks])
        if r < 0.72:
            k = self.rnd.choice(self.cnt_keys)
            return (("INCR", k), "incr", [("c", k)])
        if r < 0.77:
            k = self.rnd.choice(self.cnt_keys)
            return (("GET", k), "getc", [("c", k)])
        h = self.rnd.choice(self.hash_keys)
        f = "f%d" % self.rnd.randrange(FIELDS)
        if r < 0.87:
            return (("HSET", h, f, self.new_value(h + "/" + f)), "hset", [("h", h, f)])
        if r < 0.98:
            return (("HGET", h, f), "hget", [("h", h, f)])
        return (("DEL", h), "delh", [("h", h, "f%d" % i) for i in range(FIELDS)])

    def written(self, op):
        """(model key, value) pairs an op may write (values: as the model stores them)."""
        args, kind, mks = op
        if kind == "txn":
            mk = mks[1]
            return [(mks[0], args[1][2])] + \
                [(mk, (0 if v is NIL else v) + 1) for v in self.possible(mk)]
        if kind in ("set", "hset"):
            return [(mks[0], args[-1])]
        if kind in ("del", "delh"):
            return [(mk, NIL) for mk in mks]
        if kind == "incr":
            mk = mks[0]
            return [(mk, (0 if v is NIL else v) + 1) for v in self.possible(mk)]
        return []

    def uncertain(self, op, straddled):
        """The op's outcome is unknown: each key may hold what it held or what it wrote."""
        self.stats["uncertain"] += 1
        for mk, v in self.written(op):
            s = set(self.possible(mk))
            if straddled:
                s.add(NIL)
            s.add(v)
            self.model[mk] = s
            if straddled:
                self.carry.setdefault(mk, set()).add(v)

    def check(self, op, reply, straddled):
        """Judges one reply and updates the model."""
        args, kind, mks = op
        if straddled:
            # the data may have vanished at any point of a group that straddled a restart
            for mk in mks:
                self.model[mk] = set(self.possible(mk)) | {NIL}
        if kind == "txn":
            self.check_txn(op, reply, straddled)
            return
        if isinstance(reply, Error):
            if self.near and reply.startswith("ERR upstream"):
                self.stats["upstream_errors"] += 1
                if kind in ("set", "del", "incr", "hset", "delh"):
                    self.uncertain(op, straddled)
                return
            self.fail("%s -> error %r" % (show(args), reply))
            return
        if kind in ("set", "hset", "del", "delh", "incr") and straddled:
            for mk, v in self.written(op):
                self.carry.setdefault(mk, set()).add(v)
        if kind == "set":
            if reply != Status("OK"):
                self.fail("%s -> %r" % (show(args), reply))
            self.model[mks[0]] = {args[2]}
        elif kind in ("get", "hget"):
            self.judge_read(args, mks[0], reply)
        elif kind == "getc":
            if reply is not NIL:
                try:
                    reply = int(reply)
                except (TypeError, ValueError):
                    self.fail("%s -> %r (not a counter)" % (show(args), reply))
                    return
            self.judge_read(args, mks[0], reply)
        elif kind == "mget":
            if not isinstance(reply, list) or len(reply) != len(mks):
                self.fail("%s -> %r" % (show(args), reply))
                return
            for mk, v in zip(mks, reply):
                self.judge_read(args, mk, v)
        elif kind == "del":
            mk = mks[0]
            if reply not in (0, 1) or (reply == 1 and self.possible(mk) == {NIL}) or \
                    (reply == 0 and NIL not in self.possible(mk)):
                self.fail("%s -> %r, model %s" % (show(args), reply, brief(self.possible(mk))))
            self.model[mk] = {NIL}
        elif kind == "delh":
            exists = any(self.possible(mk) != {NIL} for mk in mks)
            absent = all(NIL in self.possible(mk) for mk in mks)
            if reply not in (0, 1) or (reply == 1 and not exists) or (reply == 0 and not absent):
                self.fail("%s -> %r" % (show(args), reply))
            for mk in mks:
                self.model[mk] = {NIL}
        elif kind == "incr":
            mk = mks[0]
            before = {0 if v is NIL else v for v in self.possible(mk)}
            if not isinstance(reply, int) or isinstance(reply, bool) or reply - 1 not in before:
                self.fail("%s -> %r, model %s" % (show(args), reply, brief(self.possible(mk))))
            self.model[mk] = {reply}
        elif kind == "hset":
            mk = mks[0]
            p = self.possible(mk)
            if reply not in (0, 1) or (reply == 1 and NIL not in p) or (reply == 0 and p == {NIL}):
                self.fail("%s -> %r, model %s" % (show(args[:3]), reply, brief(p)))
            self.model[mk] = {args[3]}

    def check_txn(self, op, replies, straddled):
        """MULTI, SET k v, INCR c, EXEC: applied as a whole ([OK, n]) or, after an upstream
        failure, of unknown outcome (only upstream errors, -EXECABORT and the EXEC without MULTI
        that follows a failed MULTI are allowed then)."""
        args, _, mks = op
        if straddled:
            for mk, v in self.written(op):
                self.carry.setdefault(mk, set()).add(v)
        ok, queued = Status("OK"), Status("QUEUED")
        r0, r1, r2, r3 = replies
        if r0 == ok and r1 == queued and r2 == queued and isinstance(r3, list):
            before = {0 if v is NIL else v for v in self.possible(mks[1])}
            if len(r3) != 2 or r3[0] != ok or not isinstance(r3[1], int) or \
                    r3[1] - 1 not in before:
                self.fail("MULTI SET %s INCR %s EXEC -> %r, model %s" % (
                    mks[0][1], mks[1][1], r3, brief(self.possible(mks[1]))))
                return
            self.model[mks[0]] = {args[1][2]}
            self.model[mks[1]] = {r3[1]}
            return
        upstream = [r for r in replies if isinstance(r, Error) and r.startswith("ERR upstream")]
        allowed = ("ERR upstream", "EXECABORT", "ERR EXEC without MULTI")
        bad = [r for r in replies if isinstance(r, Error) and not r.startswith(allowed)]
        if not self.near or not upstream or bad:
            self.fail("MULTI SET %s INCR %s EXEC -> %r" % (mks[0][1], mks[1][1], replies))
            return
        self.stats["upstream_errors"] += 1
        self.uncertain(op, straddled)

    def judge_read(self, args, mk, value):
        p = self.possible(mk)
        if value is NIL:
            self.stats["nil_reads"] += 1
        else:
            self.stats["value_reads"] += 1
        if value not in p:
            self.fail("%s: %s read %s, the model allows %s"
                      % (show(args), "/".join(mk[1:]), brief({value}), brief(p)))
        self.model[mk] = {value}

    def restart_happened(self):
        """A restart finished since the last group: everything is gone but what a write that
        straddled it may have left."""
        for mk in list(self.model):
            self.model[mk] = {NIL} | self.carry.get(mk, set())
        for mk, vals in self.carry.items():
            self.model[mk] = {NIL} | vals
        self.carry = {}

    # ---- the connection -------------------------------------------------------------------

    def connect(self):
        if self.conn is None:
            self.conn = RespClient(self.server.port, timeout=REPLY_TIMEOUT)
            self.conn_id = self.conn.call("CLIENT", "ID")
            if self.killed_id is not None:
                self.wait_gone(self.killed_id)
                self.killed_id = None
                if self.killed_pinned:
                    # What it had already written on its private upstream connection may still
                    # run after it is gone (Redis reads a closing connection in its own order
                    # with the others): give that time to land before the model relies on it.
                    time.sleep(PIN_SETTLE)
                    self.killed_pinned = False

    def wait_gone(self, cid):
        """Until the killed connection is gone from CLIENT LIST: the sidecar may still read and
        run what the kernel had received from it before the RST (Linux keeps a reset socket's
        queued bytes readable), so its writes settle only then."""
        end = time.monotonic() + KILL_SETTLE
        while time.monotonic() < end:
            if self.conn.call("CLIENT", "LIST", "ID", cid) in (b"", ""):
                return
            time.sleep(0.005)
        self.fail("the killed client %d is still listed %.0fs later" % (cid, KILL_SETTLE))

    def kill(self):
        """Abrupt close with an RST (SO_LINGER 0), in the middle of whatever was sent."""
        self.stats["kills"] += 1
        sock = self.conn.sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.conn.close()
        self.conn = None
        self.killed_id = self.conn_id

    # ---- the loop --------------------------------------------------------------------------

    def wait_even(self):
        if not self.gen:
            return 0
        end = time.monotonic() + GEN_WAIT
        while time.monotonic() < end:
            g = self.gen.get()
            if g % 2 == 0:
                return g
            time.sleep(0.005)
        raise RuntimeError("upstream restart not finished within %.0fs" % GEN_WAIT)

    def run(self):
        try:
            while time.monotonic() < self.deadline and len(self.failures) < MAX_FAILURES:
                self.group()
            self.connect()
            self.final_check()
        except Exception as e:  # noqa: BLE001 - a failure of the run, reported
            self.fail("%s: %r" % (type(e).__name__, e))
        finally:
            if self.conn is not None:
                self.conn.close()

    def group(self):
        g0 = self.wait_even()
        if self.gen and g0 != self.last_gen:
            self.restart_happened()
            self.last_gen = g0
        self.connect()
        n = 1 if self.rnd.random() < 0.4 else self.rnd.randint(2, PIPELINE_MAX)
        ops = [self.random_op() for _ in range(n)]
        cmds = [c for op in ops for c in (op[0] if op[1] == "txn" else (op[0],))]
        payload = b"".join(encode_command(*c) for c in cmds)
        killing = self.rnd.random() < KILL_P
        read_n = self.rnd.randrange(len(cmds) + 1) if killing else len(cmds)
        if killing and self.rnd.random() < 0.3:
            # half of one more command: the sidecar holds a partial request when it dies
            tail = encode_command("SET", self.str_keys[0], self.new_value(self.str_keys[0]))
            payload += tail[:max(1, len(tail) // 2)]
        self.conn.send(payload)
        replies = []
        try:
            for _ in range(read_n):
                replies.append(self.conn.read_reply(timeout=REPLY_TIMEOUT))
        except (ConnectionClosed, ConnectionResetError) as e:
            self.fail("the sidecar closed the connection after %d of %d replies: %r"
                      % (len(replies), n, e))
            self.conn.close()
            self.conn = None
            return
        except (socket.timeout, TimeoutError, ProtocolError) as e:
            self.fail("no reply %d of %d within %.0fs (%s): %r"
                      % (len(replies) + 1, len(cmds), REPLY_TIMEOUT,
                         show(cmds[len(replies)]), e))
            self.conn.close()
            self.conn = None
            return
        if killing:
            self.killed_pinned = self.near and any(op[1] == "txn" for op in ops)
            self.kill()
        g1 = self.gen.get() if self.gen else 0
        straddled = g1 != g0
        if straddled:
            self.stats["straddled"] += 1
        at = 0
        for op in ops:
            k = 4 if op[1] == "txn" else 1
            if at + k <= len(replies):
                self.check(op, replies[at:at + k] if k > 1 else replies[at], straddled)
            else:
                self.uncertain(op, straddled)  # its replies (some or all) were never read
            at += k
        self.stats["groups"] += 1
        self.stats["replies"] += len(replies)

    def final_check(self):
        """Every key read once more (after the load; restarts are over)."""
        g = self.wait_even()
        if self.gen and g != self.last_gen:
            self.restart_happened()
            self.last_gen = g
        mks = [("s", k) for k in self.str_keys] + [("c", k) for k in self.cnt_keys] + \
              [("h", h, "f%d" % i) for h in self.hash_keys for i in range(FIELDS)]
        end = time.monotonic() + 30.0
        for mk in mks:
            args = ("HGET", mk[1], mk[2]) if mk[0] == "h" else ("GET", mk[1])
            while True:
                reply = self.conn.call(*args, timeout=REPLY_TIMEOUT)
                if not (isinstance(reply, Error) and reply.startswith("ERR upstream")) or \
                        time.monotonic() > end:
                    break
                time.sleep(0.05)  # the upstream is reconnecting: reads are side-effect free
            if mk[0] == "c" and isinstance(reply, bytes):
                reply = int(reply)
            if isinstance(reply, Error):
                self.fail("final %s -> %r" % (show(args), reply))
            else:
                self.judge_read(args, mk, reply)


def show(args):
    out = []
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b[:40].decode("utf-8", "replace") + ("..." if len(b) > 40 else ""))
    return " ".join(out)


def brief(values):
    out = []
    for v in values:
        if isinstance(v, bytes):
            out.append(repr(v[:30]) + ("...(%d)" % len(v) if len(v) > 30 else ""))
        else:
            out.append(repr(v))
    return "{" + ", ".join(sorted(out)) + "}"


def plateau(samples):
    """(ok, text) for a list of (seconds, kB) samples, by the rule in the module comment."""
    if len(samples) < 6:
        return False, "too few RSS samples (%d)" % len(samples)
    t0, t1 = samples[0][0], samples[-1][0]
    third = (t1 - t0) / 3.0
    mid = [kb for t, kb in samples if t0 + third <= t < t0 + 2 * third]
    last = [kb for t, kb in samples if t >= t0 + 2 * third]
    if not mid or not last:
        return False, "RSS samples do not cover the run"
    limit = max(mid) * (1 + RSS_GROWTH) + RSS_SLACK_MB * 1024
    text = "RSS kB first/middle/last third max %d/%d/%d (limit for the last %d)" % (
        max(kb for t, kb in samples if t < t0 + third), max(mid), max(last), limit)
    return max(last) <= limit, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sidecar", default=os.environ.get("SIDECAR_BIN", "build/asan/sidecar"))
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_SECONDS", DEFAULT_SECONDS)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or None)
    ap.add_argument("--valgrind", action="store_true",
                    help="run the sidecars under valgrind memcheck (slow: use a plain build)")
    ap.add_argument("--invalidation", default="tracking",
                    help="the near-cache's [cache] invalidation; ttl keeps serving what it "
                         "cached across an upstream restart, which the model must catch (a "
                         "check of the checker: that run is expected to fail)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    print("soak: %s for %.0fs, seed %d%s" % (args.sidecar, args.seconds, seed,
                                            " under valgrind" if args.valgrind else ""))
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", ASAN_DEFAULT)}
    wrapper = []
    if args.valgrind:
        wrapper = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "-q"]

    up = harness.make_upstream(name="soak-upstream")
    up.start()
    near = harness.make_nearcache(args.sidecar, up.port, name="soak-nearcache", extra_env=env,
                                  op_timeout_ms=1000, health_check_interval_ms=500,
                                  reconnect_min_ms=20, reconnect_max_ms=200, max_ttl_ms=60000,
                                  invalidation=args.invalidation)
    alone = harness.SidecarServer(args.sidecar, name="soak-standalone", extra_env=env,
                                  config={"max_memory": 64 << 20})
    for srv in (near, alone):
        srv.wrapper = wrapper
    failures = []
    servers = [near, alone, up]
    try:
        ready = 120.0 if args.valgrind else harness.READY_TIMEOUT
        near.start(ready_timeout=ready)
        alone.start(ready_timeout=ready)
        harness.nearcache_wait_ready(near, timeout=ready,
                                     subscriber=args.invalidation != "ttl")
        gen = Generation()
        t_start = time.monotonic()
        deadline = t_start + args.seconds
        workers = [Worker(i, near, gen, deadline, rnd.randrange(1 << 30), True, args.verbose)
                   for i in range(NEAR_WORKERS)]
        workers += [Worker(100 + i, alone, None, deadline, rnd.randrange(1 << 30), False,
                           args.verbose) for i in range(STANDALONE_WORKERS)]
        samples = {near.name: [], alone.name: []}
        stop = threading.Event()

        def sampler():
            while not stop.is_set() and time.monotonic() < deadline + 5.0:
                for srv in (near, alone):
                    kb = rss_kb(srv.pid)
                    if kb is not None:
                        samples[srv.name].append((time.monotonic() - t_start, kb))
                stop.wait(RSS_EVERY)

        sam = threading.Thread(target=sampler, name="rss", daemon=True)
        sam.start()
        for w in workers:
            w.start()
        restarts = 0
        # a short run gets its restarts too
        first = min(rnd.uniform(*RESTART_EVERY), args.seconds / 3.0)
        next_restart = time.monotonic() + first
        while time.monotonic() < deadline - 2.0:
            if any(w.failures for w in workers):
                break
            if time.monotonic() >= next_restart:
                gen.bump()
                up.signal(9)
                up.wait(10.0)
                time.sleep(rnd.uniform(*DOWN_FOR))
                harness.upstream_restart(up)
                gen.bump()
                restarts += 1
                log(args.verbose, "upstream restarted (%d)" % restarts)
                next_restart = time.monotonic() + rnd.uniform(*RESTART_EVERY)
            time.sleep(0.05)
        for w in workers:
            w.join(args.seconds + 120.0)
            if w.is_alive():
                failures.append("worker %d did not finish" % w.wid)
        stop.set()
        sam.join(10.0)
        for w in workers:
            failures += w.failures
        total = {}
        for w in workers:
            for k, v in w.stats.items():
                total[k] = total.get(k, 0) + v
        print("soak: %.0fs, %d upstream restarts; %s" % (time.monotonic() - t_start, restarts,
              ", ".join("%s %d" % kv for kv in sorted(total.items()))))
        if total.get("replies", 0) == 0:
            failures.append("no reply at all was checked")
        for name, s in samples.items():
            ok, text = plateau(s)
            print("soak: %s %s" % (name, text))
            if not ok:
                failures.append("%s: RSS did not plateau: %s" % (name, text))
    finally:
        for srv in servers:
            problems = srv.stop(check=False, timeout=60.0 if args.valgrind else harness.STOP_TIMEOUT)
            if srv is not up:
                failures += problems
                if args.valgrind:
                    failures += valgrind_reports(srv)
            srv.cleanup()
    if failures:
        print("soak: FAILED (seed %d)" % seed)
        for f in failures:
            print("  - " + f)
        return 1
    print("soak: ok")
    return 0


def valgrind_reports(srv):
    text = srv.stderr_text()
    found = []
    for marker in ("Invalid read", "Invalid write", "uninitialised", "definitely lost in",
                   "Invalid free", "Mismatched free"):
        if marker in text:
            i = text.index(marker)
            found.append("valgrind report in %s stderr: %s" % (srv.name, text[max(0, i - 200):i + 1500]))
    return found


if __name__ == "__main__":
    sys.exit(main())
