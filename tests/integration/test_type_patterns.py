#!/usr/bin/python3
"""Everyday patterns on hashes, lists, sets and sorted sets with Debian's python3-redis (4.3.4):
a hash user profile, an LPUSH + LTRIM recent-activity list, tags in sets, a ZADD / ZINCRBY /
ZREVRANGE leaderboard and a sliding-window rate limiter (ZREMRANGEBYSCORE + ZADD + ZCARD +
EXPIRE in one pipeline). The queue with BRPOP, WATCH/MULTI and pub/sub live in their own files.

    SIDECAR_BIN=./sidecar     /usr/bin/python3 tests/integration/test_type_patterns.py -v
    SIDECAR_BIN=redis-server  /usr/bin/python3 tests/integration/test_type_patterns.py -v
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import redis  # noqa: E402  (Debian's python3-redis: run with /usr/bin/python3)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
SERVER = None


def setUpModule():
    global SERVER
    SERVER = harness.make_server(SIDECAR_BIN, name="types")
    SERVER.start()


def tearDownModule():
    if SERVER is not None:
        try:
            SERVER.stop(check=True)
        finally:
            SERVER.cleanup()


class TestTypePatterns(unittest.TestCase):
    def setUp(self):
        self.r = redis.Redis(host=harness.HOST, port=SERVER.port, socket_timeout=10,
                             decode_responses=True)
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def test_hash_user_profile(self):
        r = self.r
        self.assertEqual(r.hset("user:42", mapping={"name": "Ada", "email": "ada@example.org",
                                                    "visits": 0}), 3)
        self.assertEqual(r.hgetall("user:42"),
                         {"name": "Ada", "email": "ada@example.org", "visits": "0"})
        self.assertEqual(r.hincrby("user:42", "visits", 1), 1)
        self.assertEqual(r.hincrbyfloat("user:42", "balance", 2.5), 2.5)
        self.assertEqual(r.hmget("user:42", "name", "missing", "visits"), ["Ada", None, "1"])
        self.assertTrue(r.hexists("user:42", "email"))
        self.assertEqual(r.hdel("user:42", "email", "nope"), 1)
        self.assertEqual(r.hlen("user:42"), 3)
        self.assertTrue(r.expire("user:42", 3600))
        self.assertEqual(r.type("user:42"), "hash")
        self.assertEqual(sorted(r.hkeys("user:42")), ["balance", "name", "visits"])
        with self.assertRaises(redis.exceptions.ResponseError) as cm:
            r.hincrby("user:42", "name", 1)
        self.assertEqual(str(cm.exception), "hash value is not an integer")

    def test_recent_activity_list(self):
        r = self.r
        for i in range(25):
            p = r.pipeline(transaction=False)
            p.lpush("recent:ada", "event-%d" % i)
            p.ltrim("recent:ada", 0, 9)
            self.assertEqual(p.execute(), [min(i + 1, 11), True])
        self.assertEqual(r.llen("recent:ada"), 10)
        self.assertEqual(r.lrange("recent:ada", 0, -1), ["event-%d" % i for i in range(24, 14, -1)])
        self.assertEqual(r.lindex("recent:ada", -1), "event-15")
        self.assertEqual(r.rpop("recent:ada"), "event-15")

    def test_tags_in_sets(self):
        r = self.r
        self.assertEqual(r.sadd("tag:python", "post:1", "post:2", "post:3"), 3)
        self.assertEqual(r.sadd("tag:redis", "post:2", "post:3", "post:4"), 3)
        self.assertEqual(r.sinter("tag:python", "tag:redis"), {"post:2", "post:3"})
        self.assertEqual(r.sunion("tag:python", "tag:redis"),
                         {"post:1", "post:2", "post:3", "post:4"})
        self.assertEqual(r.sdiff("tag:python", "tag:redis"), {"post:1"})
        self.assertTrue(r.sismember("tag:redis", "post:4"))
        self.assertEqual(r.scard("tag:python"), 3)
        self.assertEqual(r.srem("tag:python", "post:1", "post:9"), 1)
        self.assertEqual(r.sinterstore("both", ["tag:python", "tag:redis"]), 2)

    def test_leaderboard(self):
        r = self.r
        self.assertEqual(r.zadd("board", {"ada": 120, "bob": 95, "cy": 130}), 3)
        self.assertEqual(r.zincrby("board", 15, "bob"), 110.0)
        self.assertEqual(r.zrevrange("board", 0, 2, withscores=True),
                         [("cy", 130.0), ("ada", 120.0), ("bob", 110.0)])
        self.assertEqual(r.zrevrank("board", "ada"), 1)
        self.assertEqual(r.zrank("board", "ada"), 1)
        self.assertEqual(r.zscore("board", "cy"), 130.0)
        self.assertEqual(r.zcount("board", 100, "+inf"), 3)
        self.assertEqual(r.zrangebyscore("board", 111, 200), ["ada", "cy"])
        # a larger board keeps ranks right
        p = r.pipeline(transaction=False)
        for i in range(5000):
            p.zadd("big", {"player:%d" % i: i})
        p.execute()
        self.assertEqual(r.zrevrank("big", "player:4000"), 999)
        self.assertEqual(r.zrevrange("big", 0, 1), ["player:4999", "player:4998"])

    def test_sliding_window_rate_limiter(self):
        r = self.r
        window_ms, limit, now = 1000, 5, 1_000_000

        def attempt(t, member):
            p = r.pipeline(transaction=False)
            p.zremrangebyscore("rl:ada", 0, t - window_ms)
            p.zadd("rl:ada", {member: t})
            p.zcard("rl:ada")
            p.pexpire("rl:ada", window_ms)
            return p.execute()[2] <= limit

        results = [attempt(now + i * 10, "req-%d" % i) for i in range(8)]
        self.assertEqual(results, [True] * 5 + [False] * 3)
        # once the window has moved on, requests are allowed again
        self.assertTrue(attempt(now + 2000, "req-later"))
        self.assertEqual(r.zcard("rl:ada"), 1)
        ttl = r.pttl("rl:ada")
        self.assertTrue(0 < ttl <= window_ms, ttl)


if __name__ == "__main__":
    unittest.main()
