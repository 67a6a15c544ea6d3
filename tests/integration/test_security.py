#!/usr/bin/python3
"""Security (issue 7): requirepass and [users] (AUTH, HELLO AUTH, -NOAUTH, -WRONGPASS, -NOPERM,
disabled users, rule order), [rename_commands], protected mode at start, secrets never shown
(CONFIG GET, INFO, SLOWLOG, MONITOR, the log), password files, the unix socket's permissions
and, in near-cache mode, the check made before anything is forwarded and the upstream password
read from a file.

Where Redis has the same behaviour the replies are compared byte for byte with a real
redis-server 7 configured the same way (requirepass, ACL SETUSER, rename-command).

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_security.py -v
"""

import hashlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
IS_REDIS = harness.is_redis_binary(SIDECAR_BIN)
WAIT = 10.0

TOPPW = "top-secret-7Q"
ALICEPW = "alice-pw-3x"
BOBPW = "bob-pw-9z"
DAVEPW = "dave-pw-1k"


def sha(pw):
    return hashlib.sha256(pw.encode()).hexdigest()


# The same users on both sides: the sidecar's [users] lines, and Redis's ACL SETUSER rules.
USERS = {
    "alice": ("on #%s +@read" % sha(ALICEPW), ["on", ">" + ALICEPW, "+@read", "~*"]),
    "bob": ("off >%s +@all" % BOBPW, ["off", ">" + BOBPW, "+@all", "~*"]),
    "carol": ("on nopass +@all -@admin", ["on", "nopass", "+@all", "-@admin", "~*", "&*"]),
    "eve": ("on >eve-pw +@all -@dangerous", ["on", ">eve-pw", "+@all", "-@dangerous", "~*", "&*"]),
    "mute": ("on >mute-pw nocommands", ["on", ">mute-pw", "nocommands", "~*"]),
    "noexec": ("on >noexec-pw +@all -exec", ["on", ">noexec-pw", "+@all", "-exec", "~*", "&*"]),
    "dave": ("on #%s +@read +@write +@transaction -flushall +config|get" % sha(DAVEPW),
             ["on", ">" + DAVEPW, "+@read", "+@write", "+@transaction", "-flushall",
              "+config|get", "~*"]),
}


def sidecar_config(extra=None):
    cfg = {"requirepass": TOPPW}
    for name, (line, _) in USERS.items():
        cfg["users." + name] = line
    cfg.update(extra or {})
    return cfg


def start_reference_redis():
    """redis-server with the same requirepass and users (ACL SETUSER)."""
    r = harness.RedisServer(config={"requirepass": TOPPW}, name="redis-ref")
    r.start()
    with r.client() as c:
        assert c.call("AUTH", TOPPW) == "OK"
        for name, (_, rules) in USERS.items():
            assert c.call("ACL", "SETUSER", name, *rules) == "OK", name
    return r


# Each case: a fresh connection runs these commands in order; every raw reply is compared.
# HELLO replies differ in "id" only: those cases compare the reply's type and proto field.
CASES = [
    ("no auth", [["PING"], ["GET", "k"], ["SET", "k", "v"], ["CONFIG", "GET", "maxmemory"],
                 ["HELLO", "2"], ["AUTH", "a", "b", "c"]]),
    ("auth default", [["AUTH", "wrong"], ["AUTH", TOPPW], ["PING"], ["AUTH", "default", "x"],
                      ["PING"], ["AUTH", "default", TOPPW]]),
    ("alice read only", [["AUTH", "alice", "wrong"], ["GET", "k"], ["AUTH", "alice", ALICEPW],
                         ["GET", "k"], ["SET", "k", "v"], ["PING"], ["CONFIG", "GET", "maxmemory"],
                         ["CLIENT", "KILL", "ID", "1"], ["ACL", "WHOAMI"], ["FLUSHALL"],
                         ["HGETALL", "h"], ["DEL", "k"]]),
    ("bob disabled", [["AUTH", "bob", BOBPW], ["AUTH", "bob", "wrong"], ["PING"]]),
    ("no such user", [["AUTH", "mallory", "x"], ["AUTH", "mallory", ""], ["PING"]]),
    ("carol nopass minus admin", [["AUTH", "carol", "anything"], ["SET", "k", "v"], ["GET", "k"],
                                  ["CLIENT", "KILL", "ID", "999999"],
                                  ["CONFIG", "SET", "maxmemory", "1"], ["ACL", "WHOAMI"],
                                  ["DEL", "k"], ["PING"], ["MONITOR"]]),
    ("dave rules in order", [["AUTH", "dave", DAVEPW], ["SET", "k", "v"], ["FLUSHALL"],
                             ["CONFIG", "GET", "timeout"], ["CONFIG", "SET", "maxmemory", "1"],
                             ["MULTI"], ["SET", "k", "w"], ["CONFIG", "SET", "maxmemory", "1"],
                             ["EXEC"], ["GET", "k"], ["DEL", "k"]]),
    ("eve without dangerous", [["AUTH", "eve", "eve-pw"], ["SET", "k", "v"], ["FLUSHALL"],
                               ["FLUSHDB"], ["KEYS", "*"], ["INFO"], ["CONFIG", "GET", "timeout"],
                               ["CLIENT", "KILL", "ID", "1"], ["MONITOR"], ["SLOWLOG", "LEN"],
                               ["ECHO", "x"], ["DEL", "k"]]),
    ("no commands but the no-auth ones", [["AUTH", "mute", "mute-pw"], ["PING"], ["ECHO", "x"],
                                          ["GET", "k"], ["AUTH", "mute", "mute-pw"], ["RESET"],
                                          ["PING"]]),
    ("EXEC refused: the transaction is discarded", [["AUTH", "noexec", "noexec-pw"], ["MULTI"],
                                                    ["SET", "k", "w"], ["EXEC"], ["GET", "k"],
                                                    ["DISCARD"], ["SET", "k", "v"], ["DEL", "k"]]),
    ("auth after user keeps user", [["AUTH", "alice", ALICEPW], ["AUTH", "carol", "x"],
                                    ["SET", "k", "v"], ["AUTH", "alice", "wrong"],
                                    ["SET", "k", "v"], ["DEL", "k"]]),
]




@unittest.skipIf(IS_REDIS, "compares the sidecar with redis-server")
class AuthAgainstRedisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = start_reference_redis()
        cls.srv = harness.SidecarServer(SIDECAR_BIN, config=sidecar_config(), name="security")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop(check=True)
        finally:
            cls.srv.cleanup()
            cls.redis.stop(check=False)
            cls.redis.cleanup()

    def replies(self, port, cmds):
        with harness.RespClient(port) as c:
            return [c.call_raw(*cmd) for cmd in cmds]

    def test_cases_match_redis(self):
        for name, cmds in CASES:
            with self.subTest(case=name):
                want = self.replies(self.redis.port, cmds)
                got = self.replies(self.srv.port, cmds)
                for cmd, w, g in zip(cmds, want, got):
                    self.assertEqual(g, w, "%s: %r" % (name, cmd))

    def test_noperm_text_is_redis_70(self):
        got = self.replies(self.srv.port, [["AUTH", "alice", ALICEPW], ["SET", "k", "v"],
                                           ["CONFIG", "GET", "maxmemory"]])
        self.assertEqual(got[1], b"-NOPERM this user has no permissions to run the 'set' command\r\n")
        self.assertEqual(got[2], b"-NOPERM this user has no permissions to run the 'config|get' command\r\n")

    def test_hello_auth(self):
        for port in (self.redis.port, self.srv.port):
            with harness.RespClient(port) as c:
                self.assertEqual(c.call_raw("HELLO", "3", "AUTH", "alice", "wrong"),
                                 b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
                self.assertTrue(c.call_raw("PING").startswith(b"-NOAUTH"))
                hello = c.call("HELLO", "3", "AUTH", "alice", ALICEPW)
                self.assertIsInstance(hello, harness.Map)
                self.assertEqual(hello.get(b"proto"), 3)
                self.assertEqual(c.call_raw("GET", "nokey"), b"_\r\n")  # RESP3 null
                self.assertEqual(c.call_raw("SET", "k", "v"),
                                 b"-NOPERM this user has no permissions to run the 'set' command\r\n")
                # HELLO without AUTH on an authenticated connection: allowed (no_auth command)
                self.assertIsInstance(c.call("HELLO", "2"), list)

    def test_every_command_in_redis_categories(self):
        """The ACL categories of every command and subcommand the sidecar has (COMMAND INFO's
        seventh field, the same table the permission check reads) are Redis's. One known
        difference: PUBSUB HELP is @pubsub here (its row's group), @slow only in Redis."""
        def entries(port, *cmd):
            with harness.RespClient(port) as c:
                c.call("AUTH", TOPPW)
                return c.call(*cmd)

        def flat(e, out):
            out[e[0]] = sorted(e[6])
            for sub in e[9] or []:
                flat(sub, out)
        ours, theirs = {}, {}
        for e in entries(self.srv.port, "COMMAND"):
            flat(e, ours)
        for e in entries(self.redis.port, "COMMAND", "INFO", *ours):
            if e:
                flat(e, theirs)
        self.assertGreater(len(set(ours) & set(theirs)), 150)
        for name in sorted(set(ours) & set(theirs)):
            if name == b"pubsub|help":
                continue
            with self.subTest(command=name):
                self.assertEqual(ours[name], theirs[name])

    def test_acl_users_and_whoami(self):
        cmds = [["AUTH", TOPPW], ["ACL", "USERS"], ["ACL", "WHOAMI"], ["ACL", "CAT"],
                ["ACL", "CAT", "nosuch"], ["ACL", "CAT", "all"], ["ACL", "CAT", "a", "b"],
                ["ACL", "WHOAMI", "x"], ["ACL"]]
        self.assertEqual(self.replies(self.srv.port, cmds), self.replies(self.redis.port, cmds))
        # a category's commands: every one of ours is in Redis's list too
        for cat in ("dangerous", "read", "write", "connection", "admin"):
            with self.subTest(cat=cat):
                got = set(self.replies(self.srv.port, [["AUTH", TOPPW], ["ACL", "CAT", cat]])[1]
                          .split(b"\r\n")[2::2])
                want = set(self.replies(self.redis.port, [["AUTH", TOPPW], ["ACL", "CAT", cat]])[1]
                           .split(b"\r\n")[2::2])
                self.assertTrue(got, cat)
                # not in Redis 7.0: SIDECAR (ours), CLIENT SETINFO / NO-TOUCH (7.2); COMMAND is
                # in our server group, in Redis's @connection
                ours = (b"sidecar|", b"command", b"client|setinfo", b"client|no-touch")
                self.assertEqual({x for x in got - want if not x.startswith(ours)}, set(), cat)

    def test_redis_py_clients(self):
        r = harness.redis_client(self.srv, username="alice", password=ALICEPW)
        try:
            self.assertIsNone(r.get("nokey"))
            import redis
            with self.assertRaises(redis.exceptions.NoPermissionError):
                r.set("k", "v")
        finally:
            r.close()
        r = harness.redis_client(self.srv, username="bob", password=BOBPW)
        try:
            import redis
            with self.assertRaises(redis.exceptions.RedisError) as e:
                r.ping()
            self.assertIn("WRONGPASS", str(e.exception))
        finally:
            r.close()
        r = harness.redis_client(self.srv, password=TOPPW)
        try:
            self.assertTrue(r.ping())
        finally:
            r.close()

    def test_client_list_shows_user(self):
        with harness.RespClient(self.srv.port) as a, harness.RespClient(self.srv.port) as admin:
            self.assertEqual(a.call("AUTH", "carol", "x"), "OK")
            self.assertIn(b"user=carol ", a.call_raw("CLIENT", "INFO"))
            self.assertEqual(admin.call("AUTH", TOPPW), "OK")
            listing = admin.call_raw("CLIENT", "LIST")
            self.assertIn(b"user=carol ", listing)
            self.assertIn(b"user=default ", listing)
            # CLIENT KILL USER carol disconnects carol only
            self.assertEqual(admin.call("CLIENT", "KILL", "USER", "carol"), 1)
            self.assertTrue(a.wait_closed(WAIT))
            self.assertEqual(admin.call_raw("CLIENT", "KILL", "USER", "nobody"),
                             b"-ERR No such user 'nobody'\r\n")

    def test_acl_list_hides_digests(self):
        with harness.RespClient(self.srv.port) as c:
            c.call("AUTH", TOPPW)
            lines = c.call("ACL", "LIST")
            text = b"\n".join(lines)
            self.assertIn(b"user alice on #(redacted) ~* &* +@read", text)
            self.assertIn(b"user carol on nopass ~* &* +@all -@admin", text)
            for pw in (TOPPW, ALICEPW, BOBPW, DAVEPW):
                self.assertNotIn(pw.encode(), text)
                self.assertNotIn(sha(pw).encode(), text)


@unittest.skipIf(IS_REDIS, "sidecar-only configuration")
class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.srv = harness.SidecarServer(SIDECAR_BIN, config=sidecar_config(
            {"slowlog_log_slower_than": "0", "upstream.password": "up-secret-55"}), name="secrets")
        self.srv.start()

    def tearDown(self):
        try:
            self.srv.stop(check=True)
        finally:
            self.srv.cleanup()

    def secrets(self):
        return [TOPPW, ALICEPW, "up-secret-55", "new-top-pw-8", sha(TOPPW), sha(ALICEPW)]

    def test_config_get_info_slowlog_monitor_log(self):
        with harness.RespClient(self.srv.port) as c, harness.RespClient(self.srv.port) as mon:
            self.assertEqual(c.call("AUTH", TOPPW), "OK")
            self.assertEqual(mon.call("AUTH", TOPPW), "OK")
            self.assertEqual(mon.call("MONITOR"), "OK")
            got = c.call("CONFIG", "GET", "*pass*")
            pairs = dict(zip(got[::2], got[1::2]))
            self.assertEqual(pairs[b"requirepass"], b"(redacted)")
            self.assertEqual(pairs[b"upstream.password"], b"(redacted)")
            self.assertEqual(pairs[b"server.requirepass_file"], b"")
            self.assertEqual(pairs[b"upstream.password_file"], b"")
            self.assertEqual(c.call("CONFIG", "GET", "requirepass"), [b"requirepass", b"(redacted)"])
            with harness.RespClient(self.srv.port) as other:
                self.assertEqual(other.call("AUTH", "alice", ALICEPW), "OK")
                self.assertEqual(other.call("HELLO", "2", "AUTH", "alice", ALICEPW)[0], b"server")
                self.assertTrue(other.call_raw("AUTH", "alice", "wrong-" + ALICEPW).startswith(b"-WRONGPASS"))
            info = c.call_raw("INFO", "everything")
            self.assertEqual(c.call("CONFIG", "SET", "requirepass", "new-top-pw-8"), "OK")
            slowlog = c.call_raw("SLOWLOG", "GET", "100")
            self.assertIn(b"(redacted)", slowlog)
            seen = bytearray()

            def monitor_saw_all():  # the monitor's lines arrive asynchronously: read until there
                data, _ = mon.read_until_close(0.05)
                seen.extend(data)
                return b'"HELLO" "2" "AUTH"' in seen and b'"AUTH" "(redacted)" "(redacted)"' in seen
            harness.wait_until(monitor_saw_all, WAIT)
            monitor = bytes(seen)
            self.assertIn(b'"AUTH" "(redacted)" "(redacted)"', monitor)
            self.assertIn(b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"', monitor)
            self.srv.signal(signal.SIGHUP)  # a reload logs the changed requirepass: hidden
            harness.wait_until(lambda: "reload" in self.srv.stderr_text(), WAIT)
            log = self.srv.stderr_text()
            for s in self.secrets():
                self.assertNotIn(s.encode(), info, s)
                self.assertNotIn(s.encode(), slowlog, s)
                self.assertNotIn(s.encode(), monitor, s)
                self.assertNotIn(s, log, s)

    def test_config_set_requirepass_keeps_clients(self):
        with harness.RespClient(self.srv.port) as old, harness.RespClient(self.srv.port) as alice:
            self.assertEqual(old.call("AUTH", TOPPW), "OK")
            self.assertEqual(alice.call("AUTH", "alice", ALICEPW), "OK")
            self.assertEqual(old.call("CONFIG", "SET", "requirepass", "new-top-pw-8"), "OK")
            self.assertEqual(old.call("PING"), "PONG")  # still authenticated, as Redis
            self.assertEqual(alice.call("GET", "nokey"), None)
            with harness.RespClient(self.srv.port) as new:
                self.assertTrue(new.call_raw("PING").startswith(b"-NOAUTH"))
                self.assertTrue(new.call_raw("AUTH", TOPPW).startswith(b"-WRONGPASS"))
                self.assertEqual(new.call("AUTH", "new-top-pw-8"), "OK")
                self.assertEqual(new.call("AUTH", "alice", ALICEPW), "OK")  # users unchanged
            self.assertEqual(old.call("CONFIG", "SET", "requirepass", ""), "OK")
            with harness.RespClient(self.srv.port) as new:
                self.assertEqual(new.call("PING"), "PONG")  # the default user is open again
                self.assertEqual(new.call_raw("AUTH", "x"),
                                 b"-ERR AUTH <password> called without any password configured "
                                 b"for the default user. Are you sure your configuration is "
                                 b"correct?\r\n")
                self.assertEqual(new.call("RESET"), "RESET")
                self.assertEqual(new.call("PING"), "PONG")


@unittest.skipIf(IS_REDIS, "sidecar-only configuration")
class DefaultUserEntryTest(unittest.TestCase):
    def test_users_default_entry(self):
        """A [users] default entry with a password and no requirepass: a new connection must
        AUTH; RESET returns to the unauthenticated default user."""
        cfg = {"users.default": "on #%s +@all -@admin" % sha("dflt-pw"),
               "users.ops": "on #%s +@all" % sha("ops-pw")}
        with harness.SidecarServer(SIDECAR_BIN, config=cfg, name="default-entry") as srv:
            with harness.RespClient(srv.port) as c:
                self.assertEqual(c.call_raw("PING"), b"-NOAUTH Authentication required.\r\n")
                self.assertEqual(c.call_raw("AUTH", "x"),
                                 b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
                self.assertEqual(c.call("AUTH", "dflt-pw"), "OK")
                self.assertEqual(c.call("SET", "k", "v"), "OK")
                self.assertEqual(c.call_raw("CONFIG", "GET", "maxmemory"),
                                 b"-NOPERM this user has no permissions to run the 'config|get' command\r\n")
                self.assertEqual(c.call("RESET"), "RESET")
                self.assertEqual(c.call_raw("GET", "k"), b"-NOAUTH Authentication required.\r\n")
                self.assertEqual(c.call("AUTH", "ops", "ops-pw"), "OK")
                self.assertEqual(c.call("CONFIG", "GET", "maxmemory")[0], b"maxmemory")
            # the first request of a new connection is already held to Redis's unauthenticated
            # limits (client.c starts every client as the default user)
            with harness.RespClient(srv.port) as c:
                c.send(b"*11\r\n")
                self.assertEqual(c.read_until_close(2.0),
                                 (b"-ERR Protocol error: unauthenticated multibulk length\r\n", True))

    def test_default_off(self):
        cfg = {"users.default": "off nopass +@all", "users.app": "on >app-pw +@all"}
        with harness.SidecarServer(SIDECAR_BIN, config=cfg, name="default-off") as srv:
            with harness.RespClient(srv.port) as c:
                self.assertTrue(c.call_raw("PING").startswith(b"-NOAUTH"))
                self.assertTrue(c.call_raw("AUTH", "default", "x").startswith(b"-WRONGPASS"))
                self.assertEqual(c.call("AUTH", "app", "app-pw"), "OK")
                self.assertEqual(c.call("PING"), "PONG")


@unittest.skipIf(IS_REDIS, "compares the sidecar with redis-server")
class RenameTest(unittest.TestCase):
    def test_renamed_and_disabled_as_redis(self):
        cfg = {"rename_commands.flushall": '""', "rename_commands.config": "cfg_x9",
               "rename_commands.monitor": '""'}
        redis = harness.RedisServer(name="redis-rename")
        redis.config = {}
        argv = redis.argv

        def argv_renamed():
            return argv() + ["--rename-command", "flushall", "", "--rename-command", "config",
                             "cfg_x9", "--rename-command", "monitor", ""]
        redis.argv = argv_renamed
        redis.start()
        try:
            with harness.SidecarServer(SIDECAR_BIN, config=cfg, name="rename") as srv:
                cmds = [["FLUSHALL"], ["flushall", "async"], ["CONFIG", "GET", "timeout"],
                        ["cfg_x9", "GET", "timeout"], ["MONITOR"], ["FLUSHDB"]]
                for cmd in cmds:
                    with self.subTest(cmd=cmd):
                        with harness.RespClient(redis.port) as r, harness.RespClient(srv.port) as s:
                            self.assertEqual(s.call_raw(*cmd), r.call_raw(*cmd))
        finally:
            redis.stop(check=False)
            redis.cleanup()

    def test_bad_rename_refused_at_start(self):
        for cfg, needle in (({"rename_commands.nosuchcmd": '""'}, "nosuchcmd"),
                            ({"rename_commands.get": "set"}, "a command has that name")):
            srv = harness.SidecarServer(SIDECAR_BIN, config=cfg, name="bad-rename")
            try:
                with self.assertRaises(harness.ServerError) as e:
                    srv.start(ready_timeout=WAIT, attempts=1)
                self.assertIn(needle, str(e.exception))
                self.assertNotEqual(srv.returncode, 0)
            finally:
                srv.stop(check=False)
                srv.cleanup()


def run_sidecar_once(ini_text, extra_args=(), env=None, timeout=WAIT):
    """Runs the sidecar on ini_text expecting it to exit by itself: (status, stderr)."""
    with tempfile.TemporaryDirectory(prefix="sidecar-sec-") as d:
        path = os.path.join(d, "sidecar.ini")
        with open(path, "w") as f:
            f.write(ini_text)
        e = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_") or k == "SIDECAR_BIN"}
        e.update(env or {})
        p = subprocess.run([SIDECAR_BIN, "-c", path] + list(extra_args), capture_output=True,
                           text=True, timeout=timeout, env=e)
        return p.returncode, p.stdout + p.stderr


@unittest.skipIf(IS_REDIS, "sidecar-only start-up checks")
class ProtectedModeTest(unittest.TestCase):
    def test_non_loopback_without_password_refused(self):
        port = harness.free_port()
        for listen in ("0.0.0.0:%d" % port, "[::]:%d" % port, "127.0.0.1:%d 0.0.0.0:%d" % (port, port + 1)):
            with self.subTest(listen=listen):
                rc, out = run_sidecar_once("[server]\nlisten = %s\n" % listen)
                self.assertEqual(rc, 1, out)
                self.assertIn("protected mode: [server] listen '", out)
                self.assertIn("protected_mode = no", out)
        # an open [users] default entry is no password either
        rc, out = run_sidecar_once("[server]\nlisten = 0.0.0.0:%d\n[users]\ndefault = on nopass +@all\n"
                                   "alice = on >x +@all\n" % port)
        self.assertEqual(rc, 1, out)
        self.assertIn("protected mode", out)

    def test_allowed_cases(self):
        """Checked with --check-config: nothing is ever bound on a non-loopback address."""
        port = harness.free_port()
        for ini in ("[server]\nlisten = 0.0.0.0:%d\nprotected_mode = no\n" % port,
                    "[server]\nlisten = 0.0.0.0:%d\nrequirepass = x\n" % port,
                    "[server]\nlisten = 0.0.0.0:%d\n[users]\ndefault = off\n" % port,
                    "[server]\nlisten = 0.0.0.0:%d\n[users]\ndefault = on #%s +@all\n" % (port, sha("p")),
                    "[server]\nlisten = 127.0.0.1:%d [::1]:%d localhost:%d\n" % (port, port, port + 1)):
            with self.subTest(ini=ini):
                rc, out = run_sidecar_once(ini, ["--check-config"])
                self.assertEqual(rc, 0, out)
                self.assertIn("configuration OK", out)

    def test_users_errors_at_start(self):
        for users, needle in (("alice = on +@nosuchcat", "unknown command category 'nosuchcat'"),
                              ("alice = on +nosuchcmd", "unknown command 'nosuchcmd'"),
                              ("alice = on ~app:*", "key and channel patterns are not supported"),
                              ("alice = on #abc", "64 hex digits"),
                              ("alice = on frobnicate", "unknown rule 'frobnicate'"),
                              ("alice = on\nalice = off", "defined twice")):
            with self.subTest(users=users):
                rc, out = run_sidecar_once("[server]\nlisten = 127.0.0.1:%d\n[users]\n%s\n"
                                           % (harness.free_port(), users), ["--check-config"])
                self.assertEqual(rc, 1, out)
                self.assertIn(needle, out)
        # a plaintext password in a bad line is never echoed
        rc, out = run_sidecar_once("[server]\nlisten = 127.0.0.1:1\n[users]\n"
                                   "alice = on >PlainSecret99 +@nosuchcat\n", ["--check-config"])
        self.assertEqual(rc, 1, out)
        self.assertNotIn("PlainSecret99", out)


@unittest.skipIf(IS_REDIS, "sidecar-only files and sockets")
class FilesAndSocketTest(unittest.TestCase):
    def test_requirepass_file(self):
        d = tempfile.mkdtemp(prefix="sidecar-sec-")
        path = os.path.join(d, "pw")
        with open(path, "w") as f:
            f.write("file-pw-42\n")
        try:
            with harness.SidecarServer(SIDECAR_BIN, config={"requirepass_file": path},
                                       name="pwfile") as srv:
                with harness.RespClient(srv.port) as c:
                    self.assertTrue(c.call_raw("PING").startswith(b"-NOAUTH"))
                    self.assertTrue(c.call_raw("AUTH", "file-pw-42\n").startswith(b"-WRONGPASS"))
                    self.assertEqual(c.call("AUTH", "file-pw-42"), "OK")
                    self.assertEqual(c.call("CONFIG", "GET", "requirepass"),
                                     [b"requirepass", b"(redacted)"])
                self.assertNotIn("file-pw-42", srv.stderr_text())
            os.unlink(path)
            rc, out = run_sidecar_once("[server]\nlisten = 127.0.0.1:%d\nrequirepass_file = %s\n"
                                       % (harness.free_port(), path))
            self.assertEqual(rc, 1, out)
            self.assertIn("requirepass_file %s: cannot open" % path, out)
        finally:
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(d)

    def test_unixsocket_permissions(self):
        for perm in ("700", "660"):
            with self.subTest(perm=perm):
                srv = harness.SidecarServer(SIDECAR_BIN, name="unixperm", config={})
                sock = os.path.join(srv.tmpdir, "s.sock")
                srv.config.update({"unixsocket": sock, "unixsocketperm": perm})
                with srv:
                    st = os.stat(sock)
                    self.assertTrue(stat.S_ISSOCK(st.st_mode))
                    self.assertEqual(stat.S_IMODE(st.st_mode), int(perm, 8))


@unittest.skipIf(IS_REDIS, "near-cache mode")
class NearCacheTest(unittest.TestCase):
    """The sidecar in front of a redis-server that requires a password: the upstream password
    comes from a file, the clients' users are checked by the sidecar before forwarding."""

    def setUp(self):
        self.upstream = harness.RedisServer(config={"requirepass": "upstream-pw-77"}, name="upstream")
        self.upstream.start()
        self.d = tempfile.mkdtemp(prefix="sidecar-sec-")
        self.pwfile = os.path.join(self.d, "upstream-password")
        with open(self.pwfile, "w") as f:
            f.write("upstream-pw-77\n")
        cfg = sidecar_config({"upstream.host": harness.HOST, "upstream.port": self.upstream.port,
                              "upstream.password_file": self.pwfile,
                              "rename_commands.flushall": '""', "rename_commands.debug": '""'})
        self.srv = harness.SidecarServer(SIDECAR_BIN, config=cfg, name="nc-security")
        self.srv.start()

    def tearDown(self):
        try:
            self.srv.stop(check=True)
        finally:
            self.srv.cleanup()
            self.upstream.stop(check=False)
            self.upstream.cleanup()
            os.unlink(self.pwfile)
            os.rmdir(self.d)

    def upstream_call(self, *args):
        with self.upstream.client() as u:
            u.call("AUTH", "upstream-pw-77")
            return u.call(*args)

    def test_checked_before_forwarding(self):
        self.upstream_call("SET", "shared", "v0")
        with harness.RespClient(self.srv.port) as c:
            self.assertEqual(c.call_raw("GET", "shared"), b"-NOAUTH Authentication required.\r\n")
            self.assertEqual(c.call("AUTH", "alice", ALICEPW), "OK")
            self.assertEqual(c.call("GET", "shared"), b"v0")  # forwarded with the sidecar's password
            self.assertEqual(c.call_raw("SET", "shared", "x"),
                             b"-NOPERM this user has no permissions to run the 'set' command\r\n")
            # a command the sidecar does not know (forwarded) needs +@all
            self.assertEqual(c.call_raw("OBJECT", "ENCODING", "shared"),
                             b"-NOPERM this user has no permissions to run the 'object' command\r\n")
            self.assertEqual(c.call("AUTH", "dave", DAVEPW), "OK")
            self.assertEqual(c.call("SET", "shared", "v1"), "OK")
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "shared", "v2"), "QUEUED")
            self.assertEqual(c.call_raw("OBJECT", "ENCODING", "shared"),
                             b"-NOPERM this user has no permissions to run the 'object' command\r\n")
            # renamed away / disabled inside the transaction: unknown, never forwarded
            self.assertEqual(c.call_raw("FLUSHALL"),
                             b"-ERR unknown command 'FLUSHALL', with args beginning with: \r\n")
            self.assertEqual(c.call_raw("DEBUG", "SLEEP", "0"),
                             b"-ERR unknown command 'DEBUG', with args beginning with: 'SLEEP' '0' \r\n")
            # a refused command flags the transaction, as Redis: EXEC aborts, SET v2 never runs
            self.assertEqual(c.call_raw("EXEC"),
                             b"-EXECABORT Transaction discarded because of previous errors.\r\n")
            self.assertEqual(c.call("GET", "shared"), b"v1")
            self.assertEqual(c.call("MULTI"), "OK")  # the private connection is usable again
            self.assertEqual(c.call("SET", "shared", "v1"), "QUEUED")
            self.assertEqual(c.call_raw("OBJECT", "ENCODING", "shared"),
                             b"-NOPERM this user has no permissions to run the 'object' command\r\n")
            self.assertEqual(c.call("DISCARD"), "OK")
            # EXEC itself refused: the transaction is discarded, upstream too (Redis's
            # execCommandAbort), so the next commands run at once instead of being queued
            self.assertEqual(c.call("AUTH", "noexec", "noexec-pw"), "OK")
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "shared", "v3"), "QUEUED")
            self.assertEqual(c.call_raw("EXEC"),
                             b"-EXECABORT Transaction discarded because of: NOPERM this user has no "
                             b"permissions to run the 'exec' command\r\n")
            self.assertEqual(c.call("GET", "shared"), b"v1")
            self.assertEqual(c.call_raw("DISCARD"), b"-ERR DISCARD without MULTI\r\n")
            self.assertEqual(c.call("AUTH", TOPPW), "OK")
            self.assertEqual(c.call("OBJECT", "ENCODING", "shared"), b"embstr")
            # disabled: unknown here and never forwarded to the upstream
            self.assertEqual(c.call_raw("FLUSHALL"),
                             b"-ERR unknown command 'FLUSHALL', with args beginning with: \r\n")
            self.assertEqual(c.call_raw("DEBUG", "SLEEP", "0"),
                             b"-ERR unknown command 'DEBUG', with args beginning with: 'SLEEP' '0' \r\n")
            # the same inside a transaction of a +@all user (its private upstream connection)
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call_raw("FLUSHALL"),
                             b"-ERR unknown command 'FLUSHALL', with args beginning with: \r\n")
            self.assertEqual(c.call_raw("DEBUG", "SLEEP", "0"),
                             b"-ERR unknown command 'DEBUG', with args beginning with: 'SLEEP' '0' \r\n")
            self.assertEqual(c.call("DISCARD"), "OK")
        self.assertEqual(self.upstream_call("GET", "shared"), b"v1")
        stats = harness.parse_info(self.upstream_call("INFO", "commandstats"))
        self.assertNotIn("cmdstat_flushall", stats)
        self.assertNotIn("cmdstat_debug", stats)
        self.assertNotIn("upstream-pw-77", self.srv.stderr_text())

    def test_upstream_password_file_missing(self):
        rc, out = run_sidecar_once("[server]\nlisten = 127.0.0.1:%d\n[upstream]\nhost = 127.0.0.1\n"
                                   "port = %d\npassword_file = /nonexistent/pw\n"
                                   % (harness.free_port(), self.upstream.port))
        self.assertEqual(rc, 1, out)
        self.assertIn("[upstream] password_file /nonexistent/pw: cannot open", out)
        rc, out = run_sidecar_once("[server]\nlisten = 127.0.0.1:%d\n[upstream]\nhost = 127.0.0.1\n"
                                   "port = %d\npassword_file = %s\n"
                                   % (harness.free_port(), self.upstream.port, self.pwfile),
                                   env={"SIDECAR_UPSTREAM_PASSWORD": "x"})
        self.assertEqual(rc, 1, out)
        self.assertIn("not both", out)


@unittest.skipIf(IS_REDIS, "sidecar-only reload")
class ReloadTest(unittest.TestCase):
    def test_reload_users_and_password_file(self):
        d = tempfile.mkdtemp(prefix="sidecar-sec-")
        pw = os.path.join(d, "pw")
        with open(pw, "w") as f:
            f.write("first-pw\n")
        cfg = {"requirepass_file": pw, "users.alice": "on >alice-1 +@read",
               "users.gone": "on >gone-1 +@all"}
        srv = harness.SidecarServer(SIDECAR_BIN, config=cfg, name="reload-users")
        try:
            srv.start()
            with harness.RespClient(srv.port) as a, harness.RespClient(srv.port) as g, \
                    harness.RespClient(srv.port) as adm:
                self.assertEqual(a.call("AUTH", "alice", "alice-1"), "OK")
                self.assertEqual(g.call("AUTH", "gone", "gone-1"), "OK")
                self.assertEqual(adm.call("AUTH", "first-pw"), "OK")
                self.assertTrue(a.call_raw("SET", "k", "v").startswith(b"-NOPERM"))
                # new rules for alice, user "gone" removed, the password file rotated
                with open(pw, "w") as f:
                    f.write("second-pw\n")
                cfg2 = {"requirepass_file": pw, "users.alice": "on >alice-2 +@all"}
                with open(srv.ini_path, "w") as f:
                    f.write(harness.sidecar_ini(srv.port, cfg2))
                srv.signal(signal.SIGHUP)
                self.assertTrue(harness.wait_until(
                    lambda: "configuration reloaded" in srv.stderr_text(), WAIT))
                self.assertEqual(a.call("SET", "k", "v"), "OK")  # same user, new rules
                self.assertEqual(adm.call("PING"), "PONG")       # still authenticated
                self.assertTrue(g.wait_closed(WAIT))              # its user is gone
                with harness.RespClient(srv.port) as n:
                    self.assertTrue(n.call_raw("AUTH", "alice", "alice-1").startswith(b"-WRONGPASS"))
                    self.assertTrue(n.call_raw("AUTH", "first-pw").startswith(b"-WRONGPASS"))
                    self.assertTrue(n.call_raw("AUTH", "gone", "gone-1").startswith(b"-WRONGPASS"))
                    self.assertEqual(n.call("AUTH", "second-pw"), "OK")
                    self.assertEqual(n.call("AUTH", "alice", "alice-2"), "OK")
                # an invalid [users] change is refused whole: the running users stay
                with open(srv.ini_path, "w") as f:
                    f.write(harness.sidecar_ini(srv.port, dict(cfg2, **{"users.bad": "on +@nosuch"})))
                srv.signal(signal.SIGHUP)
                self.assertTrue(harness.wait_until(
                    lambda: "reload of" in srv.stderr_text(), WAIT))
                self.assertIn("unknown command category 'nosuch'", srv.stderr_text())
                with harness.RespClient(srv.port) as n:
                    self.assertEqual(n.call("AUTH", "alice", "alice-2"), "OK")
            log = srv.stderr_text()
            for secret in ("first-pw", "second-pw", "alice-1", "alice-2", "gone-1"):
                self.assertNotIn(secret, log)
            srv.stop(check=True)
        finally:
            srv.stop(check=False)
            srv.cleanup()
            os.unlink(pw)
            os.rmdir(d)


if __name__ == "__main__":
    unittest.main()
