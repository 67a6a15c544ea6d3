"""Resident memory of a full store whose values change size (memtrim.c).

A sidecar at max_memory evicts to make room; when the values that replace each other come in
very different sizes, glibc's heap is left with free chunks in its middle that malloc keeps
resident. Without trimming, the phases below (32 MB of each size, one after another, in a
store bounded at 16 MB) left VmRSS about 2x max_memory for good, as
deploy/measure_rss.py's mixed runs did at 64 MB. The cron now gives those pages back when no
client has sent anything for 200 ms and the resident size exceeds used_memory by more than the
slack (an eighth of max_memory, at least 8 MB): the test requires that a trim happened (INFO mem_heap_trims), that it gave memory back,
and that VmRSS settles within used_memory + slack + RSS_MARGIN, and that no trim happens
while a client sends a PING every 50 ms. RSS_MARGIN (6 MB) covers what
a trim cannot give back: the partly used pages at the edges of free chunks and the allocator's
own structures.

Skipped under ASan and valgrind (SIDECAR_ASAN=1, SIDECAR_WRAPPER): their allocators, not
glibc's, hold the memory there. Standalone only; redis-server (SIDECAR_BIN=redis-server) has no
such field and skips.

    SIDECAR_BIN=./sidecar /usr/bin/python3 tests/integration/test_memory.py -v
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import parse_info, wait_until  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIDECAR_BIN = os.environ.get("SIDECAR_BIN", os.path.join(REPO, "sidecar"))
IS_REDIS = harness.is_redis_binary(SIDECAR_BIN)
ASAN = os.environ.get("SIDECAR_ASAN", "0") == "1"
WRAPPED = bool(os.environ.get("SIDECAR_WRAPPER", "").strip())

MAX_MEMORY = 16 * 1024 * 1024
SLACK = 8 * 1024 * 1024          # memtrim.h: max(max_memory / 8, MEMTRIM_SLACK_MIN)
RSS_MARGIN = 6 * 1024 * 1024
# (value size, key space, requests): each phase writes about twice max_memory of its size.
PHASES = [(1024, 100_000, 32_000), (16384, 10_000, 2_000), (256, 400_000, 128_000),
          (65536, 2_000, 500), (16, 1_000_000, 400_000), (4096, 40_000, 8_000)]
SETTLE_S = 10.0
BUSY_S = 2.5


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


@unittest.skipIf(IS_REDIS, "sidecar only: INFO mem_heap_trims")
@unittest.skipIf(ASAN or WRAPPED, "ASan's or valgrind's allocator holds the memory, not glibc's")
class HeapTrimTest(unittest.TestCase):
    def setUp(self):
        self.srv = harness.SidecarServer(SIDECAR_BIN, name="memory",
                                         config={"cache.max_memory": str(MAX_MEMORY)})
        self.srv.start()
        self.addCleanup(self.srv.cleanup)
        self.addCleanup(self.srv.stop)

    def info(self, section="memory"):
        with self.srv.client() as c:
            return parse_info(c.call("INFO", section))

    def fill(self, size, keyspace, requests):
        subprocess.run(["redis-benchmark", "-h", harness.HOST, "-p", str(self.srv.port),
                        "-t", "set", "-d", str(size), "-r", str(keyspace), "-n", str(requests),
                        "-c", "20", "-P", "16", "-q"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, check=True)

    def test_mixed_sizes_give_memory_back(self):
        for size, keyspace, requests in PHASES:
            self.fill(size, keyspace, requests)
        self.assertGreater(int(self.info("stats")["evicted_keys"]), 0)  # it was full
        # Served without a pause of 200 ms: never trimmed (a trim stalls the loop), however
        # far the resident size is above the bound.
        with self.srv.client() as c:
            deadline = time.monotonic() + BUSY_S
            while time.monotonic() < deadline:
                self.assertEqual(c.call("PING"), "PONG")
                time.sleep(0.05)
            busy = parse_info(c.call("INFO", "memory"))
        self.assertEqual(busy["mem_heap_trims"], "0")

        def settled():
            i = self.info()
            bound = int(i["used_memory"]) + SLACK + RSS_MARGIN
            return int(i["mem_heap_trims"]) > 0 and vmrss(self.srv.pid) <= bound and i

        # Polled twice a second: a trim waits for 200 ms without client input (memtrim.c), and
        # these INFO calls are client input.
        i = wait_until(settled, SETTLE_S, interval=0.5)
        now = self.info()
        self.assertTrue(i, "VmRSS %d > used_memory %s + %d after %.0f s; mem_heap_trims %s, "
                        "trimmed %s bytes" % (vmrss(self.srv.pid), now["used_memory"],
                                              SLACK + RSS_MARGIN, SETTLE_S,
                                              now["mem_heap_trims"],
                                              now["mem_heap_trimmed_bytes"]))
        self.assertGreater(int(now["mem_heap_trimmed_bytes"]), 0)
        with self.srv.client() as c:  # still serving
            self.assertEqual(c.call("SET", "after", "x"), "OK")
            self.assertEqual(c.call("GET", "after"), b"x")


if __name__ == "__main__":
    unittest.main()
