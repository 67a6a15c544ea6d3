#!/usr/bin/python3
"""Everyday application patterns through the near-cache (issue 4), with Debian's python3-redis
(4.3.4): the application talks to the sidecar, the data must end up in the upstream redis-server.

    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache_patterns.py -v
    SIDECAR_BIN=./sidecar      /usr/bin/python3 tests/integration/test_nearcache_patterns.py -v -k test_lock
    SIDECAR_BIN=redis-server   /usr/bin/python3 tests/integration/test_nearcache_patterns.py -v

With SIDECAR_BIN=redis-server the application talks to the upstream directly (proves the tests).

Owns: the test cases below; processes through NearCacheCase of test_nearcache.py (each test its
own upstream and sidecar, stopped by pid).
Invariants: traffic only to 127.0.0.1; redis-py sockets have timeouts; every retry loop is
bounded in count and time; each pattern checks its results through the sidecar and the data
directly on the upstream.

Covers: cache-aside with SETEX (load once, hit after, delete to refresh, a refresh written by
another service on the upstream seen); hash user profiles (HSET mapping, HGETALL, HINCRBY,
HMGET, HDEL); a fixed-window rate limiter with INCR + EXPIRE (plain and in a MULTI pipeline);
a SCAN loop over 500 keys; a SET NX EX lock released by a compare-and-delete EVAL script,
including a lock that expires and a lock shared by threads guarding a read-modify-write.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_nearcache import WAIT, NearCacheCase, poll  # noqa: E402

RELEASE_SCRIPT = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                  "return redis.call('DEL', KEYS[1]) else return 0 end")
LOCK_WAIT = 5.0          # seconds a thread may spend acquiring the lock once
LOCK_THREADS = 4
LOCK_ROUNDS = 25         # critical sections per thread
LOCK_JOIN = 30.0         # seconds for all lock threads to finish


class PatternCase(NearCacheCase):

    def setUp(self):
        super().setUp()
        self.start_pair()
        self.r = harness.redis_client(self.sc, socket_timeout=WAIT)   # the application
        self.u = harness.redis_client(self.up, socket_timeout=WAIT)   # the shared Redis itself
        self.addCleanup(self.r.close)
        self.addCleanup(self.u.close)


class CacheAsideTest(PatternCase):

    def test_cache_aside_setex(self):
        db = {"user:%d" % i: "name-%d" % i for i in range(50)}
        loads = []

        def get_user(uid):
            key = "cache:" + uid
            v = self.r.get(key)
            if v is None:
                loads.append(uid)
                v = db[uid]
                self.assertTrue(self.r.setex(key, 60, v))
                return v
            return v.decode()

        self.assertEqual(get_user("user:1"), "name-1")
        self.assertEqual(get_user("user:1"), "name-1")
        self.assertEqual(loads, ["user:1"], "the second read is served by the cache")
        self.assertEqual(self.u.get("cache:user:1"), b"name-1")
        ttl = self.u.ttl("cache:user:1")
        self.assertTrue(0 < ttl <= 60, ttl)

        for uid in sorted(db):
            self.assertEqual(get_user(uid), db[uid])
        for uid in sorted(db):
            self.assertEqual(get_user(uid), db[uid])
        self.assertEqual(sorted(loads), sorted(db), "each user loaded once")

        # The application updates the record and drops the cached copy.
        db["user:1"] = "renamed"
        self.assertEqual(self.r.delete("cache:user:1"), 1)
        self.assertEqual(get_user("user:1"), "renamed")
        self.assertEqual(loads.count("user:1"), 2)
        self.assertEqual(self.u.get("cache:user:1"), b"renamed")

        # Another service refreshes the cache entry on the shared Redis: seen here.
        self.u.setex("cache:user:2", 60, "from-elsewhere")
        ok, _ = poll(lambda: get_user("user:2") == "from-elsewhere", 1.0, 0.005)
        self.assertTrue(ok, "refresh made on the upstream not seen: %r" % get_user("user:2"))

        # An expired entry is loaded again.
        self.assertTrue(self.r.setex("cache:user:3", 1, db["user:3"]))
        self.assertEqual(get_user("user:3"), "name-3")
        ok, _ = poll(lambda: self.r.get("cache:user:3") is None, 3.0, 0.02)
        self.assertTrue(ok, "SETEX 1 entry still served")
        before = loads.count("user:3")
        self.assertEqual(get_user("user:3"), "name-3")
        self.assertEqual(loads.count("user:3"), before + 1)


class HashProfileTest(PatternCase):

    def test_hash_profiles(self):
        key = "profile:1"
        self.assertEqual(self.r.hset(key, mapping={"name": "Ada", "email": "ada@example.com",
                                                   "visits": 0}), 3)
        self.assertEqual(self.r.hgetall(key), {b"name": b"Ada", b"email": b"ada@example.com",
                                               b"visits": b"0"})
        for i in range(1, 6):
            self.assertEqual(self.r.hincrby(key, "visits", 1), i)
            self.assertEqual(self.r.hget(key, "visits"), str(i).encode())
        self.assertEqual(self.r.hgetall(key)[b"visits"], b"5")
        self.assertEqual(self.r.hmget(key, "name", "missing", "visits"), [b"Ada", None, b"5"])
        self.assertEqual(self.r.hset(key, "email", "ada@new.example"), 0)
        self.assertEqual(self.r.hget(key, "email"), b"ada@new.example")
        self.assertEqual(self.r.hdel(key, "email"), 1)
        self.assertFalse(self.r.hexists(key, "email"))
        self.assertEqual(self.r.hlen(key), 2)
        self.assertEqual(self.r.hgetall(key), {b"name": b"Ada", b"visits": b"5"})
        self.assertEqual(self.u.hgetall(key), {b"name": b"Ada", b"visits": b"5"})

        # Many profiles, written in one pipeline, read back one by one.
        with self.r.pipeline(transaction=False) as p:
            for i in range(2, 102):
                p.hset("profile:%d" % i, mapping={"name": "user%d" % i, "visits": i})
            self.assertEqual(p.execute(), [2] * 100)
        for i in range(2, 102):
            self.assertEqual(self.r.hgetall("profile:%d" % i),
                             {b"name": b"user%d" % i, b"visits": str(i).encode()})
        self.assertEqual(self.u.hget("profile:77", "name"), b"user77")

        # Another pod bumps a counter on the shared Redis.
        self.assertEqual(self.u.hincrby("profile:50", "visits", 100), 150)
        ok, _ = poll(lambda: self.r.hget("profile:50", "visits") == b"150", 1.0, 0.005)
        self.assertTrue(ok, "HINCRBY on the upstream not seen: %r" % self.r.hget("profile:50", "visits"))


class RateLimiterTest(PatternCase):

    def allow(self, client_id, limit=5, window=1):
        key = "rl:" + client_id
        count = self.r.incr(key)
        if count == 1:
            self.r.expire(key, window)
        self.assertEqual(self.r.get(key), str(count).encode(), "the counter read back")
        return count <= limit

    def test_rate_limiter_incr_expire(self):
        results = [self.allow("a") for _ in range(7)]
        self.assertEqual(results, [True] * 5 + [False] * 2)
        self.assertEqual(self.u.get("rl:a"), b"7")
        ttl = self.u.pttl("rl:a")
        self.assertTrue(0 < ttl <= 1000, ttl)
        self.assertEqual([self.allow("b") for _ in range(3)], [True] * 3, "other clients unaffected")
        ok, _ = poll(lambda: self.r.exists("rl:a") == 0, 3.0, 0.02)
        self.assertTrue(ok, "the window never ended")
        self.assertTrue(self.allow("a"), "a new window")
        self.assertEqual(self.u.get("rl:a"), b"1")

    def test_rate_limiter_in_transaction(self):
        def allow(client_id, limit=3, window=1):
            key = "rlt:" + client_id
            with self.r.pipeline(transaction=True) as p:
                p.incr(key)
                p.expire(key, window, nx=True)
                count, _ = p.execute()
            return count <= limit

        self.assertEqual([allow("x") for _ in range(5)], [True] * 3 + [False] * 2)
        self.assertEqual(self.r.get("rlt:x"), b"5")
        self.assertEqual(self.u.get("rlt:x"), b"5")
        ttl = self.u.pttl("rlt:x")
        self.assertTrue(0 < ttl <= 1000, ttl)
        ok, _ = poll(lambda: self.r.get("rlt:x") is None, 3.0, 0.02)
        self.assertTrue(ok, "the window never ended")
        self.assertTrue(allow("x"))


class ScanLoopTest(PatternCase):

    def test_scan_loop_finds_all_keys(self):
        with self.r.pipeline(transaction=False) as p:
            for i in range(500):
                p.set("scan:%d" % i, i)
            for i in range(50):
                p.set("other:%d" % i, i)
            self.assertEqual(p.execute(), [True] * 550)
        self.assertEqual(self.u.dbsize(), 550)
        self.assertEqual(self.r.dbsize(), 550)
        found = []
        for key in self.r.scan_iter(match="scan:*", count=50):
            found.append(key)
            self.assertLess(len(found), 5000, "SCAN loop does not end")
        self.assertEqual(set(found), {b"scan:%d" % i for i in range(500)})
        # The loop's keys read back through the sidecar.
        self.assertEqual(self.r.mget(["scan:0", "scan:499", "scan:500"]), [b"0", b"499", None])
        # A hand-written cursor loop, bounded.
        cursor, seen, calls = 0, set(), 0
        while True:
            cursor, keys = self.r.scan(cursor=cursor, match="other:*", count=100)
            seen.update(keys)
            calls += 1
            self.assertLess(calls, 1000)
            if cursor == 0:
                break
        self.assertEqual(seen, {b"other:%d" % i for i in range(50)})


class LockTest(PatternCase):

    def test_lock_set_nx_ex_released_by_script(self):
        key = "lock:res"
        self.assertTrue(self.r.set(key, "token-a", nx=True, ex=10))
        self.assertIsNone(self.r.set(key, "token-b", nx=True, ex=10), "held: second acquire fails")
        self.assertEqual(self.r.get(key), b"token-a", "the holder, read through the sidecar")
        self.assertEqual(self.u.get(key), b"token-a")
        ttl = self.u.ttl(key)
        self.assertTrue(0 < ttl <= 10, ttl)
        self.assertEqual(self.r.eval(RELEASE_SCRIPT, 1, key, "token-b"), 0, "not the owner")
        self.assertEqual(self.r.get(key), b"token-a")
        self.assertEqual(self.r.eval(RELEASE_SCRIPT, 1, key, "token-a"), 1)
        self.assertEqual(self.u.exists(key), 0)
        self.assertIsNone(self.r.get(key), "released: the next read through the sidecar sees it")
        self.assertTrue(self.r.set(key, "token-b", nx=True, ex=10))
        self.assertEqual(self.r.get(key), b"token-b")
        # The same release through redis-py's Script (EVALSHA, SCRIPT LOAD on NOSCRIPT).
        release = self.r.register_script(RELEASE_SCRIPT)
        self.assertEqual(release(keys=[key], args=["token-b"]), 1)
        self.assertIsNone(self.r.get(key))
        self.assertEqual(self.u.exists(key), 0)

    def test_lock_expires(self):
        key = "lock:exp"
        t0 = time.monotonic()
        self.assertTrue(self.r.set(key, "t1", nx=True, px=300))
        ok, elapsed = poll(lambda: self.r.set(key, "t2", nx=True, px=5000), 3.0, 0.01)
        self.assertTrue(ok, "the expired lock was never free again")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25, "acquired before the first expired")
        self.assertEqual(self.r.get(key), b"t2")
        self.assertEqual(self.u.get(key), b"t2")

    def test_lock_guards_read_modify_write_across_threads(self):
        key, counter = "lock:ctr", "ctr"
        self.assertTrue(self.r.set(counter, 0))
        problems = []

        def worker(n):
            r = harness.redis_client(self.sc, socket_timeout=WAIT)
            try:
                for i in range(LOCK_ROUNDS):
                    token = "w%d-%d" % (n, i)
                    deadline = time.monotonic() + LOCK_WAIT
                    while not r.set(key, token, nx=True, ex=5):
                        if time.monotonic() > deadline:
                            problems.append("worker %d: lock not acquired in %.0fs" % (n, LOCK_WAIT))
                            return
                        time.sleep(0.001)
                    value = int(r.get(counter))          # read-modify-write under the lock
                    r.set(counter, value + 1)
                    if r.eval(RELEASE_SCRIPT, 1, key, token) != 1:
                        problems.append("worker %d: lost the lock in round %d" % (n, i))
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                problems.append("worker %d: %r" % (n, e))
            finally:
                r.close()

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(LOCK_THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + LOCK_JOIN
        for t in threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        self.assertEqual([t.name for t in threads if t.is_alive()], [])
        self.assertEqual(problems, [])
        total = LOCK_THREADS * LOCK_ROUNDS
        self.assertEqual(self.r.get(counter), str(total).encode())
        self.assertEqual(self.u.get(counter), str(total).encode())
        self.assertEqual(self.u.exists(key), 0)


if __name__ == "__main__":
    unittest.main()
