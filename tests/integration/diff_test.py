#!/usr/bin/python3
"""Differential test: run each script in tests/integration/diff/*.txt against a fresh redis-server
(the reference, side "redis") and a fresh sidecar (side "sidecar"), and compare every raw reply
byte for byte.

    /usr/bin/python3 tests/integration/diff_test.py --sidecar ./sidecar [SCRIPT...]
    /usr/bin/python3 tests/integration/diff_test.py --target redis      # redis vs redis: proves
                                                                        # the scripts themselves

Script format (one per line; blank lines and lines starting with '#' are skipped):

    SET k "a value with spaces"      a command: split with shlex (POSIX shell quoting), then each
                                     argument goes through backslash-escape decoding, so
                                     "\\x00\\r\\n" inside quotes is three bytes (write "\\\\" for one
                                     backslash). Sent as a RESP multibulk on the current connection.
    !ignore CMD ARGS...              send to both, read one reply each, do not compare
    !sorted CMD ARGS...              the reply is an array/set/map in unspecified order: compare
                                     the sorted elements (map: pairs) and the header. "!sorted"
                                     alone applies to the next command.
    !resp3                           send HELLO 3 on the current connection (reply not compared);
                                     every later reply on it is compared as RESP3
    !sleep MS                        sleep MS milliseconds (at most 5000)
    !scanall ARGS...                 SCAN 0 ARGS..., follow the cursor to 0 on each side (bounded),
                                     compare the sorted set of keys seen; "!scanall HSCAN key
                                     ARGS..." (or SSCAN, ZSCAN) walks that key's elements (HSCAN
                                     and ZSCAN items compared as pairs)
    !conn NAME                       switch to connection NAME (opened on first use on each side;
                                     the initial one is "main")
    !raw b'...'                      a Python bytes literal sent on a NEW connection to each side;
                                     compares everything read until the server closes or 300 ms
                                     pass, and whether it closed
    !rawwait MS b'...'               the same with a wait of MS milliseconds (at most 5000)
    !longdouble on|off               replies between "on" and "off" depend on long double (80-bit
                                     x87) arithmetic: compared as usual, except with --memcheck,
                                     where valgrind computes long double in 64 bits (a documented
                                     valgrind limitation), so they are sent but not compared

Each script runs on its own pair of freshly started servers (same config on both sides:
max_memory 64mb, allkeys-lru, 16 databases). On a mismatch the script, line number, command and
both replies (repr) are printed; the exit status is 1 if anything mismatched.
"""

import argparse
import ast
import codecs
import glob
import os
import select
import shlex
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ConnectionClosed, ProtocolError, RespClient,  # noqa: E402
                     encode_command, parse_reply)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCRIPTS = os.path.join(HERE, "diff")
SERVER_CONFIG = {"max_memory": "64mb", "maxmemory_policy": "allkeys-lru", "databases": 16}
REPLY_TIMEOUT = 5.0
RAW_WAIT = 0.3
MAX_SLEEP_MS = 5000
MAX_SCAN_STEPS = 100000
MAX_MISMATCHES_SHOWN = 30

CLOSED = "<connection closed>"
TIMEOUT = "<no reply within %.0fs>" % REPLY_TIMEOUT


class ScriptError(Exception):
    """A malformed script line (a bug in the script, not in a server)."""


def split_args(text):
    """shlex split, then backslash-escape decoding of each argument (\\xHH \\r \\n \\t \\\\ ...)."""
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError as e:
        raise ScriptError("cannot split %r: %s" % (text, e))
    out = []
    for w in words:
        b = w.encode("utf-8")
        if b"\\" in b:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "\*" and the like stay as they are
                    b = codecs.escape_decode(b)[0]
            except ValueError as e:
                raise ScriptError("bad escape in %r: %s" % (w, e))
        out.append(b)
    return out


def aggregate_elements(raw):
    """For a raw array/set/push reply: (header bytes, [raw element bytes]); for a RESP3 map:
    (header, [raw key+value bytes per pair]); else None."""
    if not raw or raw[:1] not in (b"*", b"~", b">", b"%"):
        return None
    nl = raw.find(b"\r\n")
    n = int(raw[1:nl])
    if n < 0:
        return None
    per = 2 if raw[:1] == b"%" else 1
    pos = nl + 2
    elems = []
    for _ in range(n):
        start = pos
        for _ in range(per):
            _, pos = parse_reply(raw, pos)
        elems.append(raw[start:pos])
    return raw[:nl + 2], elems


class Side:
    """One server under test and its named connections."""

    def __init__(self, label, server):
        self.label = label
        self.server = server
        self.conns = {}
        self.current = "main"

    def conn(self):
        c = self.conns.get(self.current)
        if c is None:
            c = RespClient(self.server.port, timeout=REPLY_TIMEOUT)
            self.conns[self.current] = c
        return c

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def exchange(side, payload):
    """Send payload on the side's current connection and read one raw reply (or a marker)."""
    try:
        c = side.conn()
    except OSError as e:
        return "<cannot connect: %s>" % e
    if c.closed_by_peer:
        return CLOSED
    try:
        c.send(payload, timeout=REPLY_TIMEOUT)
        return c.read_reply_bytes(timeout=REPLY_TIMEOUT)
    except ConnectionClosed:
        return CLOSED
    except (BrokenPipeError, ConnectionResetError):
        c.closed_by_peer = True
        return CLOSED
    except TimeoutError:
        return TIMEOUT
    except ProtocolError as e:
        return "<malformed reply: %s; buffered %r>" % (e, bytes(c.buf[:300]))


def raw_exchange(sides, payload, wait):
    """Send payload on a fresh connection to every side and read until each closes or `wait`
    seconds pass. Returns [(bytes, closed)] per side."""
    clients = []
    try:
        for s in sides:
            try:
                clients.append(RespClient(s.server.port, timeout=REPLY_TIMEOUT))
            except OSError as e:
                # a server that no longer accepts connections: a mismatch on its side only
                return [("<cannot connect: %s>" % e if x is s else "<not run>", None) for x in sides]
        for c in clients:
            try:
                c.send(payload, timeout=REPLY_TIMEOUT)
            except (BrokenPipeError, ConnectionResetError):
                c.closed_by_peer = True
        deadline = time.monotonic() + wait
        while True:
            open_ = [c for c in clients if not c.closed_by_peer]
            left = deadline - time.monotonic()
            if not open_ or left <= 0:
                break
            r, _, _ = select.select([c.sock for c in open_], [], [], left)
            for c in open_:
                if c.sock in r:
                    try:
                        chunk = c.sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        c.buf += chunk
                    else:
                        c.closed_by_peer = True
        return [(bytes(c.buf), c.closed_by_peer) for c in clients]
    finally:
        for c in clients:
            c.close()


SCAN_PAIRED = (b"HSCAN", b"ZSCAN")  # items come as field/member, value/score pairs


def scan_all(side, args):
    """Iterate SCAN (or HSCAN/SSCAN/ZSCAN key, when args start with one of them) to cursor 0;
    returns ("keys", sorted items) or ("reply", raw) for an error or malformed reply."""
    prefix = [b"SCAN"]
    if args and args[0].upper() in (b"HSCAN", b"SSCAN", b"ZSCAN") and len(args) >= 2:
        prefix, args = [args[0].upper(), args[1]], args[2:]
    paired = prefix[0] in SCAN_PAIRED
    cursor = b"0"
    keys = []
    for _ in range(MAX_SCAN_STEPS):
        raw = exchange(side, encode_command(*prefix, cursor, *args))
        if isinstance(raw, str) or not raw.startswith(b"*2\r\n"):
            return ("reply", raw)
        value, _ = parse_reply(raw)
        cursor = value[0]
        items = list(value[1])
        if paired:
            items = list(zip(items[0::2], items[1::2]))
        keys += items
        if cursor == b"0":
            return ("keys", sorted(keys))
    return ("reply", "<SCAN did not return to cursor 0 in %d steps>" % MAX_SCAN_STEPS)


class Runner:
    def __init__(self, make_servers, fail_fast=False, verbose=False, stop_at_resp3=False,
                 memcheck=False):
        self.make_servers = make_servers
        self.memcheck = memcheck
        self.fail_fast = fail_fast
        self.verbose = verbose
        self.stop_at_resp3 = stop_at_resp3

    def run_script(self, path):
        """Returns the number of mismatches (server problems at stop count as one each)."""
        name = os.path.relpath(path)
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        servers = self.make_servers()
        mismatches = []
        ncmds = 0
        sides = []
        try:
            for s in servers:
                s.start()
            sides = [Side(s.name, s) for s in servers]
            a, b = sides
            pending_sorted = False
            longdouble = False
            for lineno, line in enumerate(lines, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                mode = "compare"
                if text.startswith("!"):
                    word, _, rest = text.partition(" ")
                    rest = rest.strip()
                    word = word.lower()
                    if word == "!sleep":
                        ms = int(rest)
                        if not 0 <= ms <= MAX_SLEEP_MS:
                            raise ScriptError("%s:%d: !sleep %d out of range" % (name, lineno, ms))
                        time.sleep(ms / 1000.0)
                        continue
                    if word == "!longdouble":
                        if rest not in ("on", "off"):
                            raise ScriptError("%s:%d: !longdouble on|off" % (name, lineno))
                        longdouble = rest == "on"
                        continue
                    if word == "!conn":
                        if not rest:
                            raise ScriptError("%s:%d: !conn needs a name" % (name, lineno))
                        for s in sides:
                            s.current = rest
                        continue
                    if word == "!resp3":
                        if self.stop_at_resp3:
                            break  # near-cache mode serves RESP2 only (HELLO 3 is refused)
                        for s in sides:
                            exchange(s, encode_command(b"HELLO", b"3"))
                        continue
                    if word in ("!raw", "!rawwait"):
                        wait = RAW_WAIT
                        if word == "!rawwait":
                            ms, _, rest = rest.partition(" ")
                            wait = min(int(ms), MAX_SLEEP_MS) / 1000.0
                        try:
                            payload = ast.literal_eval(rest)
                        except (ValueError, SyntaxError) as e:
                            raise ScriptError("%s:%d: bad bytes literal: %s" % (name, lineno, e))
                        if not isinstance(payload, bytes):
                            raise ScriptError("%s:%d: !raw needs a bytes literal" % (name, lineno))
                        ncmds += 1
                        ra, rb = raw_exchange(sides, payload, wait)
                        if self.verbose:
                            print("  %s:%d raw %r -> %r" % (name, lineno, payload, ra))
                        if ra != rb:
                            mismatches.append((lineno, text, ra, rb))
                            if self.fail_fast:
                                break
                        continue
                    if word == "!scanall":
                        args = split_args(rest)
                        ncmds += 1
                        ra, rb = scan_all(a, args), scan_all(b, args)
                        if self.verbose:
                            print("  %s:%d %s -> %r" % (name, lineno, text, ra))
                        if ra != rb:
                            mismatches.append((lineno, text, ra, rb))
                            if self.fail_fast:
                                break
                        continue
                    if word == "!sorted":
                        if not rest:
                            pending_sorted = True
                            continue
                        mode, text = "sorted", rest
                    elif word == "!ignore":
                        if not rest:
                            raise ScriptError("%s:%d: !ignore needs a command" % (name, lineno))
                        mode, text = "ignore", rest
                    else:
                        raise ScriptError("%s:%d: unknown directive %s" % (name, lineno, word))
                if pending_sorted and mode == "compare":
                    mode = "sorted"
                pending_sorted = False
                args = split_args(text)
                if not args:
                    raise ScriptError("%s:%d: empty command" % (name, lineno))
                payload = encode_command(*args)
                ncmds += 1
                ra, rb = exchange(a, payload), exchange(b, payload)
                if self.verbose:
                    print("  %s:%d %s -> %r" % (name, lineno, text, ra))
                if mode == "ignore" or (longdouble and self.memcheck):
                    same = True
                elif mode == "sorted" and isinstance(ra, bytes) and isinstance(rb, bytes):
                    ea, eb = aggregate_elements(ra), aggregate_elements(rb)
                    if ea is not None and eb is not None:
                        same = ea[0] == eb[0] and sorted(ea[1]) == sorted(eb[1])
                    else:
                        same = ra == rb
                else:
                    same = ra == rb
                if not same:
                    mismatches.append((lineno, text, ra, rb))
                    if self.fail_fast:
                        break
                if ra != rb and (TIMEOUT in (ra, rb) or CLOSED in (ra, rb)
                                 or any(isinstance(x, str) and x.startswith("<cannot") for x in (ra, rb))):
                    print("%s:%d: one side stopped answering or closed; rest of the script skipped"
                          % (name, lineno))
                    break
        finally:
            for s in sides:
                s.close()
            problems = []
            for s in servers:
                problems += s.stop(check=False)
                s.cleanup()
        labels = [s.name for s in servers]
        for lineno, text, ra, rb in mismatches[:MAX_MISMATCHES_SHOWN]:
            print("MISMATCH %s:%d: %s" % (name, lineno, text))
            print("    %-8s %r" % (labels[0] + ":", ra))
            print("    %-8s %r" % (labels[1] + ":", rb))
        if len(mismatches) > MAX_MISMATCHES_SHOWN:
            print("    ... and %d more mismatches in %s" % (len(mismatches) - MAX_MISMATCHES_SHOWN, name))
        for p in problems:
            print("SERVER PROBLEM %s: %s" % (name, p))
        status = "ok" if not mismatches and not problems else "FAIL"
        print("%-4s %s (%d commands, %d mismatches)" % (status, name, ncmds, len(mismatches)))
        sys.stdout.flush()
        return len(mismatches) + len(problems)


class NearcachePair:
    """--target nearcache: a redis-server upstream and a sidecar in front of it, started and
    stopped together; the script talks to the sidecar. Every reply must still be the bytes
    Redis itself gives, whether it came from the upstream or from the near-cache."""

    def __init__(self, sidecar_bin, redis_bin):
        self.name = "nearcache"
        self.upstream = harness.make_upstream(config={"databases": 16})
        self.upstream.binary = redis_bin
        self.sidecar_bin = sidecar_bin
        self.sidecar = None

    @property
    def port(self):
        return self.sidecar.port

    def start(self):
        self.upstream.start()
        opts = dict(SERVER_CONFIG, health_check_interval_ms=0)
        self.sidecar = harness.make_nearcache(self.sidecar_bin, self.upstream.port,
                                              name="nearcache", **opts)
        self.sidecar.start()
        harness.nearcache_wait_ready(self.sidecar)

    def stop(self, check=True):
        problems = self.sidecar.stop(check=check) if self.sidecar else []
        return problems + self.upstream.stop(check=check)

    def cleanup(self):
        if self.sidecar:
            self.sidecar.cleanup()
        self.upstream.cleanup()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scripts", nargs="*", help="script files (default: diff/*.txt)")
    ap.add_argument("--target", choices=("sidecar", "redis", "nearcache"), default="sidecar",
                    help="what to compare against redis-server (redis: redis vs redis; "
                    "nearcache: the sidecar in front of a second redis-server)")
    ap.add_argument("--sidecar", default=os.environ.get("SIDECAR_BIN", "./sidecar"),
                    help="path of the sidecar binary (default $SIDECAR_BIN or ./sidecar)")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--fail-fast", action="store_true", help="stop a script at its first mismatch")
    ap.add_argument("--memcheck", action="store_true",
                    help="the sidecar runs under valgrind: skip comparing !longdouble sections")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args(argv)

    scripts = opts.scripts or sorted(glob.glob(os.path.join(DEFAULT_SCRIPTS, "*.txt")))
    if not scripts:
        print("no scripts found", file=sys.stderr)
        return 2
    if opts.target != "redis" and not os.path.exists(opts.sidecar):
        print("sidecar binary not found: %s" % opts.sidecar, file=sys.stderr)
        return 2

    def make_servers():
        ref = harness.RedisServer(binary=opts.redis_server, config=SERVER_CONFIG, name="redis")
        if opts.target == "redis":
            other = harness.RedisServer(binary=opts.redis_server, config=SERVER_CONFIG, name="redis2")
        elif opts.target == "nearcache":
            other = NearcachePair(opts.sidecar, opts.redis_server)
        else:
            other = harness.SidecarServer(opts.sidecar, config=SERVER_CONFIG, name="sidecar")
        return [ref, other]

    runner = Runner(make_servers, fail_fast=opts.fail_fast, verbose=opts.verbose,
                    stop_at_resp3=opts.target == "nearcache", memcheck=opts.memcheck)
    failed = 0
    t0 = time.monotonic()
    for path in scripts:
        try:
            if runner.run_script(path):
                failed += 1
        except ScriptError as e:
            print("SCRIPT ERROR %s" % e)
            failed += 1
        except harness.ServerError as e:
            print("SERVER ERROR %s: %s" % (path, e))
            failed += 1
    print("diff_test: %d of %d scripts failed (%.1fs, target %s)"
          % (failed, len(scripts), time.monotonic() - t0, opts.target))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
