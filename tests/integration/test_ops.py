#!/usr/bin/python3
"""Operations without a restart: SIDECAR STATS / FLUSH / KEYS / RELOAD, SIGHUP re-reading the
ini file (run-time keys applied, the others logged as needing a restart, an invalid file
changing nothing and saying FILE:LINE), JSON log lines, folded repeats and SIGUSR1 reopening a
rotated log file. Sidecar only (SIDECAR_BIN=redis-server skips everything).

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_ops.py -v
"""

import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
IS_REDIS = harness.is_redis_binary(SIDECAR_BIN)
WAIT = 5.0


@unittest.skipIf(IS_REDIS, "sidecar-only operations")
class OpsTest(unittest.TestCase):
    config = {"max_memory": "64mb", "maxmemory_policy": "allkeys-lru"}

    def setUp(self):
        self.srv = harness.SidecarServer(SIDECAR_BIN, config=dict(self.config), name="ops")
        self.srv.start()
        self.c = harness.RespClient(self.srv.port)

    def tearDown(self):
        self.c.close()
        try:
            self.srv.stop(check=True)
        finally:
            self.srv.cleanup()

    def rewrite_ini(self, text=None, **changes):
        self.srv.config.update(changes)
        with open(self.srv.ini_path, "w") as f:
            f.write(text if text is not None else harness.sidecar_ini(self.srv.port, self.srv.config))

    def config_get(self, name):
        reply = self.c.call("CONFIG", "GET", name)
        return dict(zip(reply[::2], reply[1::2])).get(name.encode())

    def wait_log(self, needle):
        ok = harness.wait_until(lambda: needle in self.srv.stderr_text(), WAIT)
        self.assertTrue(ok, "log never showed %r:\n%s" % (needle, self.srv.stderr_text()[-2000:]))

    def test_sidecar_stats_keys_flush(self):
        for i in range(5):
            self.assertEqual(self.c.call("SET", "k%d" % i, "v"), "OK")
        stats = self.c.call("SIDECAR", "STATS")
        fields = dict(zip(stats[::2], stats[1::2]))
        self.assertEqual(fields[b"keys"], 5)
        self.assertEqual(fields[b"upstream_state"], b"standalone")
        self.assertGreater(fields[b"used_memory"], 0)
        self.assertEqual(sorted(self.c.call("SIDECAR", "KEYS", "k[0-2]")), [b"k0", b"k1", b"k2"])
        self.assertEqual(self.c.call("SIDECAR", "FLUSH"), "OK")
        self.assertEqual(self.c.call("DBSIZE"), 0)
        self.assertEqual(self.c.call("SIDECAR", "KEYS", "*"), [])
        err = self.c.call("SIDECAR", "NOPE")
        self.assertIsInstance(err, harness.Error)
        self.assertEqual(err, "ERR unknown subcommand 'NOPE'. Try SIDECAR HELP.")
        self.assertIsInstance(self.c.call("SIDECAR", "HELP"), list)

    def test_reload_applies_runtime_keys_and_logs_the_rest(self):
        self.rewrite_ini(max_memory="32mb", maxmemory_policy="volatile-lru", tcp_backlog="128",
                         **{"log.level": "notice"})
        self.assertEqual(self.c.call("SIDECAR", "RELOAD"), "OK")
        self.assertEqual(self.config_get("maxmemory"), b"33554432")
        self.assertEqual(self.config_get("maxmemory-policy"), b"volatile-lru")
        self.assertEqual(self.config_get("tcp-backlog"), b"511")  # needs a restart: unchanged
        self.wait_log("reload: server.tcp_backlog changed (511 -> 128) but needs a restart")
        self.wait_log("reload: cache.max_memory = 33554432 (was 67108864)")

    def test_sighup_reload(self):
        self.rewrite_ini(max_memory="16mb")
        os.kill(self.srv.proc.pid, signal.SIGHUP)
        ok = harness.wait_until(lambda: self.config_get("maxmemory") == b"16777216", WAIT)
        self.assertTrue(ok, "SIGHUP did not apply max_memory")
        self.wait_log("configuration reloaded from")

    def test_invalid_file_keeps_running_config(self):
        self.rewrite_ini(text="[server]\nlisten = 127.0.0.1:%d\n[cache]\nmax_memory = lots\n"
                         % self.srv.port)
        err = self.c.call("SIDECAR", "RELOAD")
        self.assertIsInstance(err, harness.Error)
        self.assertTrue(err.startswith("ERR reload failed: %s:4: bad value 'lots' for max_memory"
                                       % self.srv.ini_path), err)
        self.assertEqual(self.config_get("maxmemory"), b"67108864")
        os.kill(self.srv.proc.pid, signal.SIGHUP)
        self.wait_log("the running configuration is kept")
        self.assertEqual(self.c.call("PING"), "PONG")

    def test_lower_maxmemory_evicts_at_once(self):
        value = "x" * 1000
        for start in range(0, 4000, 500):
            self.c.send(b"".join(harness.encode_command("SET", "k%d" % i, value)
                                     for i in range(start, start + 500)))
            for _ in range(500):
                self.assertEqual(self.c.read_reply(), "OK")
        self.assertEqual(self.c.call("DBSIZE"), 4000)
        self.assertEqual(self.c.call("CONFIG", "SET", "maxmemory", "1mb"), "OK")
        # no write in between: the very next command already sees the store within budget
        keys = self.c.call("DBSIZE")
        self.assertLess(keys, 1100)
        self.assertGreater(keys, 0)
        stats = self.c.call("SIDECAR", "STATS")
        fields = dict(zip(stats[::2], stats[1::2]))  # the store's own bytes, client buffers aside
        self.assertLessEqual(fields[b"used_memory"], 1024 * 1024)

    def test_config_rewrite_keeps_comments(self):
        text = ("; written by the test\n[server]\nlisten = 127.0.0.1:%d ; ours\n"
                "# keep me\n[cache]\nmax_memory = 64mb\n" % self.srv.port)
        self.rewrite_ini(text=text)
        self.assertEqual(self.c.call("CONFIG", "SET", "maxmemory", "10mb"), "OK")
        self.assertEqual(self.c.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random"), "OK")
        self.assertEqual(self.c.call("CONFIG", "REWRITE"), "OK")
        with open(self.srv.ini_path) as f:
            got = f.read()
        self.assertEqual(got, "; written by the test\n[server]\nlisten = 127.0.0.1:%d\n"
                         "# keep me\n[cache]\nmax_memory = 10485760\n"
                         "maxmemory_policy = allkeys-random\n" % self.srv.port)
        # the rewritten file is what a reload reads: nothing changes
        self.assertEqual(self.c.call("SIDECAR", "RELOAD"), "OK")
        self.assertEqual(self.config_get("maxmemory"), b"10485760")

    def test_secrets_not_logged_on_reload(self):
        self.rewrite_ini(requirepass="s3cret-value")
        self.assertEqual(self.c.call("SIDECAR", "RELOAD"), "OK")
        self.wait_log("reload: server.requirepass = (hidden)")
        self.assertNotIn("s3cret-value", self.srv.stderr_text())


def read_text(path):
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def cpu_seconds(pid):
    """utime + stime of pid from /proc, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@unittest.skipIf(IS_REDIS, "sidecar-only file descriptor limit")
class FdLimitTest(unittest.TestCase):
    def test_out_of_descriptors_pauses_accepting(self):
        """With its descriptors exhausted the sidecar neither spins on accept nor dies: it pauses
        accepting, keeps serving the clients it has, and accepts again once some leave."""
        srv = harness.SidecarServer(SIDECAR_BIN, name="fdlimit", config={"maxclients": "1000"})
        wrapper = os.path.join(srv.tmpdir, "limited.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nulimit -n 32\nexec %s \"$@\"\n" % SIDECAR_BIN)
        os.chmod(wrapper, 0o755)
        srv.binary = wrapper
        srv.start()
        socks = []
        try:
            first = harness.RespClient(srv.port)
            self.assertEqual(first.call("PING"), "PONG")
            for _ in range(60):  # more than the 32 descriptors the process may hold
                socks.append(harness.RespClient(srv.port))
            before = cpu_seconds(srv.proc.pid)
            time.sleep(1.0)
            used = cpu_seconds(srv.proc.pid) - before
            self.assertLess(used, 0.5, "the sidecar spun on accept: %.2f s CPU in 1 s" % used)
            self.assertEqual(first.call("PING"), "PONG")  # existing clients are served
            for s in socks:
                s.close()
            socks = []
            ok = harness.wait_until(lambda: self._ping(srv.port), WAIT)
            self.assertTrue(ok, "no new connection accepted after descriptors were freed")
            self.assertIn("pausing", srv.stderr_text())
            first.close()
        finally:
            for s in socks:
                s.close()
            srv.stop(check=True)
            srv.cleanup()

    @staticmethod
    def _ping(port):
        try:
            with harness.RespClient(port, timeout=1.0) as c:
                return c.call("PING") == "PONG"
        except OSError:
            return False


@unittest.skipIf(IS_REDIS, "sidecar-only documentation")
class DocsTest(unittest.TestCase):
    def test_readme_config_reference_is_generated(self):
        """README.md's configuration reference is exactly what the option table generates."""
        import subprocess
        out = subprocess.run([SIDECAR_BIN, "--config-reference"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
        self.assertIn(begin, readme)
        got = readme[readme.index(begin) + len(begin):readme.index(end)]
        self.assertEqual(got, out, "README.md's configuration reference is stale: replace the "
                         "block with the output of `./sidecar --config-reference`")


@unittest.skipIf(IS_REDIS, "sidecar-only logging")
class LogFileTest(unittest.TestCase):
    def test_json_lines_and_sigusr1_reopen(self):
        srv = harness.SidecarServer(SIDECAR_BIN, name="logs", config={})
        log_path = os.path.join(srv.tmpdir, "sidecar.log")
        srv.config.update({"log.file": log_path, "log.format": "json", "log.level": "verbose"})
        srv.start()
        try:
            with harness.RespClient(srv.port) as c:
                self.assertEqual(c.call("PING"), "PONG")
            with open(log_path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            self.assertTrue(lines, "no log lines")
            for obj in lines:
                self.assertEqual(sorted(obj), ["level", "msg", "pid", "time"])
                self.assertEqual(obj["pid"], srv.proc.pid)
                self.assertIn(obj["level"], ("debug", "verbose", "notice", "warning"))
            self.assertTrue(any("started" in o["msg"] for o in lines))
            rotated = log_path + ".1"
            os.rename(log_path, rotated)
            os.kill(srv.proc.pid, signal.SIGUSR1)
            ok = harness.wait_until(lambda: "log file reopened" in read_text(log_path), WAIT)
            self.assertTrue(ok, "SIGUSR1 did not reopen %s" % log_path)
            self.assertNotIn("log file reopened", read_text(rotated))
        finally:
            srv.stop(check=True)
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
