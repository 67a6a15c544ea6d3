"""The benchmark harness of issue 6 (`make bench`, `make bench-quick`): starts redis-server,
nutcracker (twemproxy) in front of it, the sidecar standalone, the sidecar as near-cache in front
of the same redis-server (tracking, for hits) and a second near-cache instance in bcast mode whose
prefix no benchmark key has (every GET forwarded), all on free 127.0.0.1 ports; runs every scenario
against every target in alternation for ROUNDS rounds and prints one table of medians and ratios;
then memory per key, instructions per request (callgrind), idle footprint, hot spots.

Usage: bench.py [SIDECAR]    environment: ROUNDS (3), QUICK=1 (small N, for checking the harness),
       PROFILE=0 (skip perf/callgrind hot-spot listings), BENCH_OUT (directory for the report and
       profiles; default build/bench, or build/bench-quick with QUICK=1), KEEP_LOGS=1 (keep the
       servers' logs and configs even on success), ONLY (a regular expression: run only the
       scenarios whose label matches it, and the sections idle, memory, conns, cpu, profiles only
       when their name matches it; e.g. ONLY='^SET 64B -c 50|cpu'; for A/B checks while working)

Invariants: every process started here is stopped by pid on exit, on error and on SIGINT/SIGTERM
(benchlib.Procs); any failed step ends the run with "bench: FAILED (step: ...): ..." and exit
status 1;
every wait is bounded; the machine has 2 cores shared by client and servers, so only ratios
measured in the same run mean anything. Not a test: the targets of issue 6 are reported, never
asserted."""
import csv
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conns  # noqa: E402
import memory_per_key  # noqa: E402
from benchlib import (BenchError, Conn, Procs, info, load_strings, median, ping_once,  # noqa: E402
                      read_all, rss_kb, wait_ready)

TARGETS = ["redis", "twem", "sidecar", "nchit", "ncfwd"]
TITLES = {
    "redis": "redis-server",
    "twem": "twemproxy",
    "sidecar": "sidecar",
    "nchit": "near-cache",
    "ncfwd": "nc forwarded",
}
SHAPES = [(50, 16), (50, 1), (1, 1)]  # (clients, pipeline)
# value size -> keyspace (-r), and requests per run for each shape (full run; QUICK divides by 10)
SIZES = [
    (64, 100_000, {(50, 16): 500_000, (50, 1): 100_000, (1, 1): 20_000}),
    (1024, 100_000, {(50, 16): 400_000, (50, 1): 100_000, (1, 1): 20_000}),
    (102400, 1000, {(50, 16): 12_000, (50, 1): 8_000, (1, 1): 4_000}),
]
KEY_FMT = "key:%012d"  # redis-benchmark's key:__rand_int__
MIX_FMT = "mix:%012d"
MIX_KEYS, MIX_PRESENT = 100_000, 95_000
MGET_KEYS = 10
CPU_KEYS = 10_000


def size_label(d):
    return f"{d // 1024}KB" if d >= 1024 else f"{d}B"


class Bench:
    def __init__(self, sidecar, rounds, quick, profile, logdir):
        self.sidecar = os.path.abspath(sidecar)
        self.rounds = rounds
        self.quick = quick
        self.profile = profile
        self.logdir = logdir
        self.procs = Procs(logdir)
        self.port = {}
        self.proc = {}
        self.results = {}  # scenario label -> target -> [ {rps, p50, p99} ]
        self.hits = {}  # scenario label -> target -> [hits, misses]
        self.order = []  # scenario labels in run order
        self.commands = []  # (label, command template)
        self.t0 = time.monotonic()
        self.step = "setting up"
        self.only = os.environ.get("ONLY") or None
        self.conns = self.memory = self.cpu = self.idle = None  # sections not run (ONLY)

    # ---- small helpers ----

    def wanted(self, name):
        """ONLY unset, or name matches it."""
        return self.only is None or re.search(self.only, name) is not None

    def n(self, full):
        return max(200, full // 10) if self.quick else full

    def say(self, msg):
        self.step = msg
        print(f"bench [{time.monotonic() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def write_file(self, name, text):
        path = os.path.join(self.logdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def sidecar_ini(self, name, port, max_memory="1gb", upstream=None, extra_cache=""):
        text = f"[server]\nlisten = 127.0.0.1:{port}\n[cache]\nmax_memory = {max_memory}\n{extra_cache}"
        if upstream:
            text += (f"max_ttl_ms = 3600000\n[upstream]\nhost = 127.0.0.1\nport = {upstream}\n"
                     "health_check_interval_ms = 0\n")
        return self.write_file(name + ".ini", text)

    def redis_argv(self, port):
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", ""]

    def nutcracker_argv(self, name, port, upstream):
        yml = self.write_file(name + ".yml", (
            "bench:\n"
            f"  listen: 127.0.0.1:{port}\n"
            "  redis: true\n"
            "  hash: fnv1a_64\n"
            "  distribution: ketama\n"
            "  preconnect: true\n"
            "  auto_eject_hosts: false\n"
            "  timeout: 10000\n"
            "  servers:\n"
            f"   - 127.0.0.1:{upstream}:1\n"))
        return ["nutcracker", "-c", yml, "-o", self.procs.log_path(name + "-own"),
                "-s", str(self.procs.port()), "-a", "127.0.0.1",
                "-p", os.path.join(self.logdir, name + ".pid")]

    def start(self, name, argv, port, timeout=10.0, stop_timeout=10.0):
        p = self.procs.start(name, argv, stop_timeout=stop_timeout)
        wait_ready(self.procs, name, p, port, timeout)
        return p

    # ---- the five targets ----

    def start_targets(self):
        self.say("starting redis-server, twemproxy, sidecar, near-cache (tracking), near-cache (bcast)")
        for t in TARGETS:
            self.port[t] = self.procs.port()
        self.proc["redis"] = self.start("redis", self.redis_argv(self.port["redis"]), self.port["redis"])
        self.proc["twem"] = self.start("twem", self.nutcracker_argv("twem", self.port["twem"],
                                                                     self.port["redis"]), self.port["twem"])
        ini = self.sidecar_ini("sidecar", self.port["sidecar"])
        self.proc["sidecar"] = self.start("sidecar", [self.sidecar, "-c", ini], self.port["sidecar"])
        ini = self.sidecar_ini("nchit", self.port["nchit"], upstream=self.port["redis"])
        self.proc["nchit"] = self.start("nchit", [self.sidecar, "-c", ini], self.port["nchit"])
        ini = self.sidecar_ini("ncfwd", self.port["ncfwd"], upstream=self.port["redis"],
                               extra_cache='invalidation = bcast\nbcast_prefixes = "cached:"\n')
        self.proc["ncfwd"] = self.start("ncfwd", [self.sidecar, "-c", ini], self.port["ncfwd"])
        for t in ("nchit", "ncfwd"):
            self.wait_upstream(t)

    def wait_upstream(self, t, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = info(self.port[t], "upstream")
            if up.get("upstream_state") == "up" and up.get("upstream_subscriber") == "up":
                return
            time.sleep(0.05)
        raise BenchError(f"{t}: upstream link not up within {timeout:.0f} s: {up}")

    def cache_counts(self, t):
        c = info(self.port[t], "cache")
        return int(c.get("cache_hits", 0)), int(c.get("cache_misses", 0))

    # ---- loading and warming ----

    def load(self, keyfmt, count, size, targets=("redis", "sidecar")):
        value = b"x" * size
        batch = max(10, min(10000, (4 << 20) // (size + 64)))
        for t in targets:
            load_strings(self.port[t], keyfmt, count, lambda i: value, batch=batch)

    def warm(self, keyfmt, count, size, expect):
        """Reads every key through the tracking near-cache twice (the second pass catches fills an
        invalidation of the preceding load overtook) and checks how many it holds."""
        batch = max(10, min(1000, (4 << 20) // (size + 64)))
        for _ in range(2):
            found = read_all(self.port["nchit"], keyfmt, count, batch=batch)
            time.sleep(0.2)
        if found != expect:
            raise BenchError(f"near-cache warm-up: {found} of {expect} keys found upstream")

    def untrack_after_nchit(self, keyfmt, count, size):
        """A before-hook for write scenarios. The tracking near-cache's write-through reads every
        key it writes back, so after its run redis-server tracks them all for it, and the next
        target's writes would pay for the invalidations (redis-server sends one per key, the
        near-cache takes it in, both on the cores the measured run shares): up to 0.2x of a
        forwarded SET's or MSET's throughput, always charged to the target after it. The keys
        are rewritten once directly, outside the measurement, before that target runs, as
        run_get_set does before the first SET run."""
        nxt = TARGETS[(TARGETS.index("nchit") + 1) % len(TARGETS)]

        def before(t):
            if t == nxt:
                self.load(keyfmt, count, size, targets=("redis",))
                time.sleep(0.2)
        return before

    # ---- one redis-benchmark run ----

    def bench_argv(self, t, n, clients, pipeline, keyspace, size=None, test=None, custom=None):
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port[t]), "-n", str(n),
                "-c", str(clients), "-P", str(pipeline), "-r", str(keyspace), "--csv"]
        if size is not None:
            argv += ["-d", str(size)]
        if test:
            argv += ["-t", test]
        if custom:
            argv += custom
        return argv

    @staticmethod
    def parse_csv(out, argv):
        rows = list(csv.reader(io.StringIO(out)))
        head = next((r for r in rows if r and r[0] == "test"), None)
        data = [r for r in rows if r and r[0] != "test"]
        if not head or len(data) != 1:
            raise BenchError(f"unexpected redis-benchmark output of {' '.join(argv)}:\n{out[:500]}")
        row = dict(zip(head, data[0]))
        try:
            rps = float(row["rps"])
            res = {"rps": rps, "p50": float(row["p50_latency_ms"]), "p99": float(row["p99_latency_ms"])}
        except (KeyError, ValueError) as e:
            raise BenchError(f"redis-benchmark CSV without rps/p50/p99 ({e}): {out[:300]}") from e
        if not (0 < rps < float("inf")):
            raise BenchError(f"redis-benchmark measured rps={row['rps']} (too few requests?): {' '.join(argv)}")
        return res

    def run_benchmark(self, argv, timeout=300):
        _, out, _ = self.procs.run("redis-benchmark", argv, timeout)
        return self.parse_csv(out, argv)

    def template(self, argv):
        """The command with the port replaced by the target's name, for the report."""
        a = list(argv)
        a[a.index("-p") + 1] = "PORT"
        return " ".join(x if x else "''" for x in a)

    # ---- scenario loop: rounds x targets, in alternation ----

    def scenario(self, label, run_one, targets=TARGETS, before=None):
        if not self.wanted(label):
            return
        self.order.append(label)
        res = self.results.setdefault(label, {t: [] for t in targets})
        hits = self.hits.setdefault(label, {})
        for r in range(self.rounds):
            self.say(f"{label}: round {r + 1}/{self.rounds}")
            for t in targets:
                if before:
                    before(t)
                counted = t in ("nchit", "ncfwd")
                if counted:
                    h0, m0 = self.cache_counts(t)
                res[t].append(run_one(t))
                if counted:
                    h1, m1 = self.cache_counts(t)
                    acc = hits.setdefault(t, [0, 0])
                    acc[0] += h1 - h0
                    acc[1] += m1 - m0

    def simple(self, label, n, clients, pipeline, keyspace, size=None, test=None, custom=None,
               before=None):
        if not self.wanted(label):
            return
        first = self.bench_argv("redis", n, clients, pipeline, keyspace, size, test, custom)
        self.commands.append((label, self.template(first)))

        def one(t):
            return self.run_benchmark(self.bench_argv(t, n, clients, pipeline, keyspace, size, test, custom))
        self.scenario(label, one, before=before)

    # ---- the scenarios ----

    def run_get_set(self):
        for size, keyspace, ns in SIZES:
            sl = size_label(size)
            if not any(self.wanted(f"{op} {sl} -c {c} -P {p}") for op in ("GET", "SET") for c, p in SHAPES):
                continue
            self.say(f"loading {keyspace} keys of {sl} into redis-server and the sidecar; warming the near-cache")
            self.load(KEY_FMT, keyspace, size)
            self.warm(KEY_FMT, keyspace, size, keyspace)
            for c, p in SHAPES:
                self.simple(f"GET {sl} -c {c} -P {p}", self.n(ns[(c, p)]), c, p, keyspace, size, "get")
            # Rewrite the keys once directly, outside the measurements: redis-server then sends the
            # near-cache its invalidations for every tracked key now, not during the first SET run.
            self.load(KEY_FMT, keyspace, size, targets=("redis",))
            time.sleep(0.2)
            untrack = self.untrack_after_nchit(KEY_FMT, keyspace, size)
            for c, p in SHAPES:
                self.simple(f"SET {sl} -c {c} -P {p}", self.n(ns[(c, p)]), c, p, keyspace, size, "set",
                            before=untrack)

    def run_multi(self):
        keyspace = SIZES[0][1]
        if not any(self.wanted(f"{op} 10x64B -c 50 -P {p}") for op in ("MGET", "MSET") for p in (16, 1)):
            return
        self.say(f"loading {keyspace} keys of 64B for MGET/MSET; warming the near-cache")
        self.load(KEY_FMT, keyspace, 64)
        self.warm(KEY_FMT, keyspace, 64, keyspace)
        mget = ["MGET"] + ["key:__rand_int__"] * MGET_KEYS
        for c, p, n in ((50, 16, 100_000), (50, 1, 50_000)):
            self.simple(f"MGET 10x64B -c {c} -P {p}", self.n(n), c, p, keyspace, custom=mget)
        self.load(KEY_FMT, keyspace, 64, targets=("redis",))
        time.sleep(0.2)
        untrack = self.untrack_after_nchit(KEY_FMT, keyspace, 64)
        for c, p, n in ((50, 16, 50_000), (50, 1, 25_000)):
            self.simple(f"MSET 10x64B -c {c} -P {p}", self.n(n), c, p, keyspace, 64, "mset",
                        before=untrack)

    def run_mix(self):
        """90% GET / 10% SET over 64-byte values, two redis-benchmark processes at once: 45 clients
        GET mix:0..99999 (keys 95000..99999 do not exist, so with negative_ttl_ms = 0 the near-cache
        forwards every GET of them: ~5% misses) and 5 clients SET mix:0..94999 (forwarded, then
        kept by write-through). Throughput = all requests / wall time until both finish; p50/p99
        are the GET process's; the hit ratio is INFO cache_hits/cache_misses before and after."""
        if not self.wanted("mix 90% GET/10% SET -c 45+5"):
            return
        n = self.n(150_000)
        ng, ns = n * 9 // 10, n // 10
        self.say(f"loading {MIX_PRESENT} keys for the 90/10 mix")
        self.load(MIX_FMT, MIX_PRESENT, 64)
        value = "x" * 64
        label = "mix 90% GET/10% SET -c 45+5"

        def argvs(t):
            g = self.bench_argv(t, ng, 45, 1, MIX_KEYS, custom=["GET", "mix:__rand_int__"])
            s = self.bench_argv(t, ns, 5, 1, MIX_PRESENT, custom=["SET", "mix:__rand_int__", value])
            return g, s
        g, s = argvs("redis")
        self.commands.append((label, self.template(g) + "  &  " + self.template(s)))

        def before(t):
            if t == "nchit":  # the other targets' SETs went to redis-server directly: re-warm
                found = read_all(self.port["nchit"], MIX_FMT, MIX_KEYS)
                if found != MIX_PRESENT:
                    raise BenchError(f"mix warm-up: {found} keys found, {MIX_PRESENT} expected")
                time.sleep(0.2)

        def one(t):
            g, s = argvs(t)
            t0 = time.monotonic()
            pg = subprocess.Popen(g, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.procs.live.append(["mix-get", pg, 5.0])
            ps = subprocess.Popen(s, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.procs.live.append(["mix-set", ps, 5.0])
            outs = []
            for p, argv in ((pg, g), (ps, s)):
                try:
                    out, err = p.communicate(timeout=300)
                except subprocess.TimeoutExpired:
                    raise BenchError(f"mix: no result after 300 s: {' '.join(argv)}")
                self.procs.live = [e for e in self.procs.live if e[1] is not p]
                if p.returncode != 0:
                    raise BenchError(f"mix: exit status {p.returncode}: {' '.join(argv)}\n{err.decode()[-400:]}")
                outs.append(self.parse_csv(out.decode(), argv))
            wall = time.monotonic() - t0
            return {"rps": n / wall, "p50": outs[0]["p50"], "p99": outs[0]["p99"]}
        self.scenario(label, one, before=before)

    def run_conns(self):
        label = "1000 idle-then-active conns"
        key = KEY_FMT % 1
        res = {t: [] for t in TARGETS}
        self.load(KEY_FMT, 2, 64)
        self.warm(KEY_FMT, 2, 64, 2)
        for r in range(self.rounds):
            self.say(f"{label}: round {r + 1}/{self.rounds}")
            for t in TARGETS:
                res[t].append(conns.run(self.port[t], self.proc[t].pid, 1000, 2.0, key))
                if res[t][-1]["errors"]:
                    raise BenchError(f"{label}: {res[t][-1]['errors']} error replies from {t}")
        self.conns = res
        self.commands.append((label, "tests/bench/conns.py PORT PID --conns 1000 --idle 2 "
                              f"--key {key}  (GET of a 64-byte value)"))

    # ---- memory, idle footprint, CPU ----

    def run_idle(self):
        self.say("idle footprint: 5 starts each of the sidecar and redis-server")
        rows = {}
        for name in ("sidecar", "redis-server"):
            ms, rss = [], []
            for i in range(5):
                port = self.procs.port()
                if name == "sidecar":
                    argv = [self.sidecar, "-c", self.sidecar_ini(f"idle{i}", port, max_memory="256mb")]
                else:
                    argv = self.redis_argv(port)
                t0 = time.monotonic()
                p = self.procs.start(f"idle-{name}-{i}", argv)
                deadline = t0 + 5
                while not ping_once(port, timeout=0.2):
                    if p.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f"{name} did not answer PING within 5 s of its start:\n"
                                         + self.procs.tail(f"idle-{name}-{i}"))
                    time.sleep(0.0005)
                ms.append((time.monotonic() - t0) * 1000)
                time.sleep(0.1)
                rss.append(rss_kb(p.pid))
                self.procs.stop(p)
            rows[name] = (median(ms), median(rss))
        self.idle = rows

    def run_memory(self):
        keys = 100_000 if self.quick else 1_000_000
        self.say(f"memory: {keys} keys (32-byte keys, 128-byte values) into fresh redis-server and sidecar")
        rp, sp = self.procs.port(), self.procs.port()
        r = self.start("mem-redis", self.redis_argv(rp), rp)
        s = self.start("mem-sidecar", [self.sidecar, "-c", self.sidecar_ini("mem-sidecar", sp, "0")], sp)
        out = {}
        for name, port, p in (("redis", rp, r), ("sidecar", sp, s)):
            out[name] = memory_per_key.measure(port, p.pid, keys)
        for name, port in (("redis", rp), ("sidecar", sp)):
            memory_per_key.flush(port)
            out[name + "-ttl"] = memory_per_key.measure(port, None, keys, ttl=True)
        self.procs.stop(r)
        self.procs.stop(s)
        self.say(f"memory: {keys} keys into a sidecar with max_memory = 64mb (evicting)")
        fp = self.procs.port()
        f = self.start("mem-full", [self.sidecar, "-c", self.sidecar_ini("mem-full", fp, "64mb")], fp)
        # Load until it evicts, then as many keys again (bounded): the store has been full a while.
        loaded, chunk, stop_at = 0, 100_000, None
        while loaded < 5_000_000 and (stop_at is None or loaded < stop_at):
            load_strings(fp, memory_per_key.KEY_FMT, chunk, memory_per_key.value_of, first=loaded)
            loaded += chunk
            if stop_at is None and int(info(fp, "stats").get("evicted_keys", 0)) > 0:
                stop_at = max(2 * loaded, keys)
        if stop_at is None:
            raise BenchError(f"sidecar with max_memory = 64mb did not evict after {loaded} keys")
        st, mem = info(fp, "stats"), info(fp, "memory")
        with Conn(fp) as c:
            held = c.call("DBSIZE")
        out["full"] = {"rss_kb": rss_kb(f.pid), "used": int(mem["used_memory"]),
                       "evicted": int(st.get("evicted_keys", 0)), "keys": held, "loaded": loaded}
        self.procs.stop(f)
        self.memory = (keys, out)

    def callgrind_total(self, path):
        total = None
        with open(path) as fh:
            for line in fh:
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
        if total is None:
            raise BenchError(f"no instruction total in {path}")
        return total

    def run_cpu(self):
        """Instructions per request under callgrind: for each subject, a run with W pipelined
        requests (redis-benchmark -P 16 -c 1) and a run with none, both including start-up, the
        same preload or warm-up, and shut-down; (Ir(W) - Ir(0)) / W. GETs (W = 200,000) for every
        subject, then SETs of the same keys (W = 50,000): standalone, written through the
        near-cache, and forwarded."""
        w = 20_000 if self.quick else 200_000
        ws = w // 4
        self.say(f"CPU: loading {CPU_KEYS} keys into redis-server for the near-cache runs")
        load_strings(self.port["redis"], KEY_FMT, CPU_KEYS, lambda i: b"x" * 64)
        subjects = [  # (name, kind, redis-benchmark test, requests)
            ("redis-server", "hit", "get", w), ("sidecar", "hit", "get", w),
            ("near-cache", "hit", "get", w), ("nc forwarded", "forwarded", "get", w),
            ("twemproxy", "forwarded", "get", w),
            ("redis-server", "set", "set", ws), ("sidecar", "set", "set", ws),
            ("near-cache", "write-through", "set", ws), ("nc forwarded", "forwarded", "set", ws),
            ("twemproxy", "forwarded", "set", ws),
        ]
        self.cpu = []
        self.cg_files = {}
        for name, kind, test, n in subjects:
            if not self.wanted(f"cpu {test}"):
                continue
            irs = []
            for reqs in (0, n):
                tag = name.replace(" ", "-") + f"-{test}-{reqs}"
                port = self.procs.port()
                outf = os.path.join(self.logdir, f"callgrind.{tag}.out")
                vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outf}",
                      "--compress-strings=no", "--compress-pos=no"]  # each dumped part readable alone
                if name == "redis-server":
                    argv = vg + self.redis_argv(port)
                elif name == "twemproxy":
                    argv = vg + self.nutcracker_argv(f"cg-{tag}", port, self.port["redis"])
                else:
                    up = self.port["redis"] if name != "sidecar" else None
                    extra = 'invalidation = bcast\nbcast_prefixes = "cached:"\n' if kind == "forwarded" else ""
                    argv = vg + [self.sidecar, "-c", self.sidecar_ini(f"cg-{tag}", port, upstream=up,
                                                                      extra_cache=extra)]
                self.say(f"CPU: {name} under callgrind, {reqs} {test.upper()}s")
                p = self.start(f"cg-{tag}", argv, port, timeout=60, stop_timeout=120)
                if name in ("redis-server", "sidecar"):
                    load_strings(port, KEY_FMT, CPU_KEYS, lambda i: b"x" * 64, batch=1000)
                elif name != "twemproxy":
                    deadline = time.monotonic() + 30
                    while not (info(port, "upstream").get("upstream_state") == "up" and
                               info(port, "upstream").get("upstream_subscriber") == "up"):
                        if time.monotonic() > deadline:
                            raise BenchError(f"{name} under callgrind: upstream not up within 30 s")
                        time.sleep(0.1)
                    if name == "near-cache":
                        for _ in range(2):
                            read_all(port, KEY_FMT, CPU_KEYS)
                # Dump (and zero) the counters here, in both runs: the last part then holds only
                # the GETs and the shut-down, which is the profile shown under "hot spots".
                self.procs.run("callgrind_control", ["callgrind_control", "-d", str(p.pid)], 60)
                if reqs:
                    argv_b = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(reqs),
                              "-c", "1", "-P", "16", "-r", str(CPU_KEYS), "-d", "64", "-t", test, "--csv"]
                    self.run_benchmark(argv_b, timeout=900)
                    if name == "near-cache" and test == "get":
                        c = info(port, "cache")
                        self.cpu_hits = (int(c["cache_hits"]), int(c["cache_misses"]))
                rc = self.procs.stop(p)
                if not os.path.exists(outf) or not os.path.exists(outf + ".1"):
                    raise BenchError(f"{name} under callgrind exited ({rc}) without writing {outf}[.1]")
                parts = [outf] + [f"{outf}.{i}" for i in range(1, 10) if os.path.exists(f"{outf}.{i}")]
                irs.append(sum(self.callgrind_total(f) for f in parts))
                if reqs and test == "get":
                    self.cg_files[name] = outf
            self.cpu.append((name, kind, test, irs[0], irs[1], (irs[1] - irs[0]) / n))
        self.cpu_w, self.cpu_ws = w, ws
        self.commands.append(("CPU", "valgrind --tool=callgrind <server> ; preload/warm "
                              f"{CPU_KEYS} keys; callgrind_control -d; "
                              f"redis-benchmark -p PORT -n {w} -c 1 -P 16 -r {CPU_KEYS} -d 64 -t get "
                              f"(-n {ws} -t set for the SET lines); "
                              "SIGTERM; minus the same without redis-benchmark"))

    # ---- hot spots ----

    def callgrind_top(self, name, lines=15):
        """Self instructions by function in the last dumped part (the GETs and the shut-down),
        read from the callgrind file itself (callgrind_annotate would also count the inclusive
        cost of the frames that were on the stack at the dump as their own)."""
        path = self.cg_files.get(name)
        if not path:
            return []
        self_ir, total, fn, obj, skip = {}, 0, "?", "?", False
        with open(path) as fh:
            for line in fh:
                c = line[:1]
                if c.isdigit() or c in "+-*":
                    if skip:
                        skip = False
                        continue
                    parts = line.split()
                    if len(parts) >= 2:
                        ir = int(parts[-1])
                        self_ir[(fn, obj)] = self_ir.get((fn, obj), 0) + ir
                        total += ir
                elif line.startswith("fn="):
                    fn = line[3:].strip()
                elif line.startswith("ob="):
                    obj = os.path.basename(line[3:].strip())
                elif line.startswith("calls="):
                    skip = True  # the next cost line is the call's inclusive cost
        top = sorted(self_ir.items(), key=lambda kv: -kv[1])[:lines]
        return [f"{ir:>12,} ({100 * ir / total:5.2f}%)  {fn}  [{obj}]" for (fn, obj), ir in top]

    def perf_top(self, t, argv, seconds, tag, lines=18):
        if not shutil.which("perf"):
            return ["(perf not installed)"]
        data = os.path.join(self.logdir, f"perf-{tag}.data")
        rec = self.procs.start(f"perf-{tag}", ["perf", "record", "-e", "cpu-clock", "-F", "2999", "-o", data,
                                             "-p", str(self.proc[t].pid), "--", "sleep", str(seconds)],
                               stop_timeout=30)
        time.sleep(0.3)
        self.run_benchmark(argv)
        try:
            rec.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            raise BenchError("perf record did not finish")
        self.procs.stop(rec)
        rc, out, err = self.procs.run("perf report", ["perf", "report", "-i", data, "--stdio", "--no-children",
                                                      "--sort", "sym,dso", "-q", "--percent-limit", "0.8"],
                                      120, check=False)
        if rc != 0:
            return [f"(perf report failed: {err.strip()[:200]})"]
        return [line.rstrip() for line in out.splitlines() if line.strip()][:lines]

    def run_profiles(self):
        secs = 2 if self.quick else 4
        self.say("hot spots: perf record (cpu-clock) of the sidecar on the GET-hit and forwarded paths")
        self.load(KEY_FMT, 100_000, 64)
        self.warm(KEY_FMT, 100_000, 64, 100_000)
        prof = []
        for t, test, what in (("sidecar", "get", "standalone GET hits"), ("nchit", "get", "near-cache GET hits"),
                              ("ncfwd", "get", "near-cache forwarded GETs"),
                              ("ncfwd", "set", "near-cache forwarded SETs"),
                              ("nchit", "set", "near-cache SETs (forwarded + write-through)"),
                              ("redis", "get", "redis-server GETs, for reference"),
                              ("twem", "get", "twemproxy forwarded GETs, for reference")):
            label = f"{test.upper()} 64B -c 50 -P 16"
            if label not in self.results:  # not run (ONLY)
                continue
            rps = median([x["rps"] for x in self.results[label][t]])
            argv = self.bench_argv(t, int(rps * (secs + 1.5)), 50, 16, 100_000, 64, test)
            prof.append((f"perf, {what}, {label}, {secs} s, self time by symbol",
                         self.perf_top(t, argv, secs, f"{t}-{test}")))
        for name in ("sidecar", "near-cache", "nc forwarded"):
            prof.append((f"callgrind, {name}: {self.cpu_w} GETs -P 16 -c 1 (and shut-down), self Ir by function",
                         self.callgrind_top(name)))
        self.profiles = prof

    # ---- report ----

    def report(self):
        L = []
        L.append("== throughput: median of %d round(s); each cell: rps  p50  p99 (ms) ==" % self.rounds)
        cw = 23
        head = f"{'scenario':30}" + "".join(f"{TITLES[t]:>{cw}}" for t in TARGETS)
        head += f"{'sc/redis':>9}{'nc/redis':>9}{'fwd/twem':>9}{'nc/twem':>8}{'nc hit%':>8}{'fwd hit%':>9}"
        L.append(head)
        med = {}

        def lat(ms):
            return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"
        for label in self.order:
            res = self.results[label]
            m = {t: {k: median([x[k] for x in res[t]]) for k in ("rps", "p50", "p99")} for t in res}
            med[label] = m
            row = f"{label:30}"
            for t in TARGETS:
                v = m[t]
                rps = f"{v['rps'] / 1000:.1f}k"
                row += f"{rps:>9}{lat(v['p50']):>7}{lat(v['p99']):>7}"
            ratio = lambda a, b: f"{m[a]['rps'] / m[b]['rps']:.2f}"  # noqa: E731
            row += f"{ratio('sidecar', 'redis'):>9}{ratio('nchit', 'redis'):>9}{ratio('ncfwd', 'twem'):>9}"
            row += f"{ratio('nchit', 'twem'):>8}"
            for t in ("nchit", "ncfwd"):
                h = self.hits.get(label, {}).get(t)
                pct = f"{100 * h[0] / (h[0] + h[1]):.1f}" if h and h[0] + h[1] else "-"
                row += f"{pct:>8}" if t == "nchit" else f"{pct:>9}"
            L.append(row)
        L.append("near-cache = sidecar with [upstream] in front of the same redis-server (tracking); "
                 "its GET rows are hits, its SET/MSET rows are forwarded + write-through.")
        L.append("nc forwarded = a second near-cache instance with invalidation = bcast, "
                 "bcast_prefixes = \"cached:\": no benchmark key is under it, so every request is "
                 "forwarded (0% hits).")
        L.append("nc hit% / fwd hit% = INFO cache_hits / (cache_hits + cache_misses), deltas over the runs.")
        self.med = med

        if self.conns:
            L.append("")
            L.append("== 1000 idle-then-active connections (open, idle 2 s, all send GET): median ms to "
                     "all replies; RSS growth per connection (max over rounds), idle / after the burst ==")
            for t in TARGETS:
                rs = self.conns[t]
                L.append(f"{TITLES[t]:16}{median([x['ms'] for x in rs]):9.1f} ms"
                         f"{max(x['idle_b'] for x in rs):9.0f} B idle{max(x['active_b'] for x in rs):9.0f} B active")

        if self.memory:
            keys, mem = self.memory
            L.append("")
            L.append(f"== memory: {keys} keys, 32-byte keys, 128-byte values (fresh processes) ==")
            L.append(f"{'bytes per key':34}{'redis-server':>14}{'sidecar':>10}{'ratio':>8}")
            for lab, a, b in (("used_memory growth / keys", mem["redis"]["used"], mem["sidecar"]["used"]),
                              ("VmRSS growth / keys", mem["redis"]["rss"], mem["sidecar"]["rss"]),
                              ("used_memory growth / keys, EX 3600", mem["redis-ttl"]["used"], mem["sidecar-ttl"]["used"])):
                L.append(f"{lab:34}{a:14.1f}{b:10.1f}{b / a:8.2f}")
            full = mem["full"]
            limit = 64 * 1024 * 1024
            bound = limit * 1.1 + 8 * 1024 * 1024
            L.append(f"sidecar, max_memory = 64mb after {full['loaded']} SETs of the same shape: RSS {full['rss_kb'] / 1024:.1f} MiB, used_memory "
                     f"{full['used'] / 1048576:.1f} MiB, {full['keys']} keys held, {full['evicted']} evicted; "
                     f"RSS/max_memory {full['rss_kb'] * 1024 / limit:.2f} (bound 10% + 8 MB = {bound / 1048576:.1f} MiB)")

        if self.cpu:
            L.append("")
            L.append(f"== CPU: instructions per request under callgrind ({self.cpu_w} GETs, {self.cpu_ws} SETs, "
                     "-P 16 -c 1, 64-byte values), minus start-up/shut-down ==")
            for name, kind, test, i0, i1, per in self.cpu:
                ref = "twemproxy" if kind in ("forwarded", "write-through") else "redis-server"
                rv = next((v for (n, _, t, _, _, v) in self.cpu if n == ref and t == test), None)
                vs = f"; {per / rv:.2f}x {ref}" if rv else ""
                L.append(f"{name:14}{test.upper():4}{kind:14}{per:10.0f} instr/request   (runs: {i0:,} and {i1:,} Ir{vs})")
            if getattr(self, "cpu_hits", None):
                h, m = self.cpu_hits
                L.append(f"near-cache under callgrind: cache_hits {h}, cache_misses {m} "
                         f"(warm-up misses included)")

        if self.idle:
            L.append("")
            L.append("== idle footprint: median of 5 starts ==")
            for name, (ms, rss) in self.idle.items():
                L.append(f"{name:14} start-up to first PONG {ms:6.1f} ms   RSS with no keys {rss / 1024:6.2f} MiB")

        L.append("")
        L.append("== issue 6 targets (reported, not asserted) ==")
        L.extend(self.targets_check(med))

        if self.profile and getattr(self, "profiles", None):
            L.append("")
            L.append("== hot spots ==")
            for title, lines in self.profiles:
                L.append(f"-- {title}")
                L.extend("   " + x for x in (lines or ["(none)"]))

        L.append("")
        L.append("== commands (PORT = each target's port in turn) ==")
        for label, cmd in self.commands:
            L.append(f"{label}: {cmd}")
        return "\n".join(L)

    def targets_check(self, med):
        out = []

        def mark(ok):
            return "ok   " if ok else "BELOW"
        for label, m in med.items():
            if label.startswith(("GET", "SET", "MGET", "MSET")):
                for t in ("sidecar", "nchit"):
                    if t == "nchit" and not label.startswith(("GET", "MGET")):
                        continue
                    r = m[t]["rps"] / m["redis"]["rps"]
                    out.append(f"{mark(r >= 1.0)} {TITLES[t]:11} {label:26} throughput {r:.2f}x redis-server (>= 1.0)")
            if label.endswith("-c 1 -P 1") and label.startswith(("GET", "SET")):
                for t in ("sidecar", "nchit") if label.startswith("GET") else ("sidecar",):
                    ok = m[t]["p50"] <= m["redis"]["p50"]
                    out.append(f"{mark(ok)} {TITLES[t]:11} {label:26} p50 {m[t]['p50']:.3f} ms vs redis-server "
                               f"{m['redis']['p50']:.3f} ms (no higher)")
                added_nc = m["ncfwd"]["p50"] - m["redis"]["p50"]
                added_tw = m["twem"]["p50"] - m["redis"]["p50"]
                out.append(f"{mark(added_nc <= added_tw)} {'forwarded':11} {label:26} added p50 "
                           f"{added_nc:+.3f} ms vs twemproxy's {added_tw:+.3f} ms (no higher)")
            if label.endswith("-c 50 -P 16") and label.startswith(("GET", "SET", "MGET", "MSET")):
                r = m["ncfwd"]["rps"] / m["twem"]["rps"]
                out.append(f"{mark(r >= 1.2)} {'forwarded':11} {label:26} throughput {r:.2f}x twemproxy (>= 1.2)")
        out.extend(self.targets_check_sections())
        return out

    def targets_check_sections(self):
        """The targets of the sections that ran (all of them unless ONLY)."""
        out = []

        def mark(ok):
            return "ok   " if ok else "BELOW"
        if not (self.memory and self.cpu and self.idle) or "redis-server" not in {n for (n, *_) in self.cpu}:
            return ["(memory, cpu and idle targets: not run, ONLY)"] if self.only else []
        keys, mem = self.memory
        r = mem["sidecar"]["used"] / mem["redis"]["used"]
        out.append(f"{mark(r <= 1.0)} memory per key (used_memory) {r:.2f}x redis-server (<= 1.0)")
        r = mem["sidecar"]["rss"] / mem["redis"]["rss"]
        out.append(f"{mark(r <= 1.0)} memory per key (RSS) {r:.2f}x redis-server (<= 1.0)")
        full = mem["full"]["rss_kb"] * 1024
        bound = 64 * 1048576 * 1.1 + 8 * 1048576
        out.append(f"{mark(full <= bound)} RSS at max_memory 64mb: {full / 1048576:.1f} MiB (<= {bound / 1048576:.1f})")
        per = {n: v for (n, _, t, _, _, v) in self.cpu if t == "get"}
        r = per["sidecar"] / per["redis-server"]
        out.append(f"{mark(r < 1.0)} instructions per GET hit, standalone: {r:.2f}x redis-server (< 1.0)")
        r = per["near-cache"] / per["redis-server"]
        out.append(f"{mark(r < 1.0)} instructions per GET hit, near-cache: {r:.2f}x redis-server (< 1.0)")
        ms, rss = self.idle["sidecar"]
        out.append(f"{mark(rss < 5 * 1024)} idle RSS {rss / 1024:.2f} MiB (< 5)")
        out.append(f"{mark(ms < 50)} start-up to first PONG {ms:.1f} ms (< 50)")
        return out

    # ---- the whole run ----

    def run(self):
        if self.wanted("idle"):
            self.run_idle()
        if self.wanted("memory"):
            self.run_memory()
        self.start_targets()
        if self.wanted("conns"):
            self.run_conns()  # first, while the servers are fresh: RSS growth is then visible
        if self.wanted("cpu get") or self.wanted("cpu set"):
            self.run_cpu()
        self.run_get_set()
        self.run_multi()
        self.run_mix()
        if self.profile and self.wanted("profiles"):
            self.run_profiles()
        return self.report()


def versions(sidecar, binary):
    out = []
    for argv in (["redis-server", "--version"], ["nutcracker", "--version"], ["redis-benchmark", "--version"]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            out.append((r.stdout + r.stderr).splitlines()[0].strip())
        except (OSError, subprocess.TimeoutExpired, IndexError):
            out.append(f"{argv[0]}: ?")
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             timeout=10, cwd=os.path.dirname(os.path.abspath(sidecar))).stdout.strip()
        rev = rev or "(not in a git tree)"
    except (OSError, subprocess.TimeoutExpired):
        rev = "?"
    try:
        with open(binary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
    except OSError:
        digest = "?"
    out.append(f"sidecar {rev} (binary sha256 {digest})")
    return out


class Interrupted(Exception):
    pass


def main():
    sidecar = sys.argv[1] if len(sys.argv) > 1 else "./sidecar"
    rounds = int(os.environ.get("ROUNDS", "3"))
    quick = os.environ.get("QUICK", "0") == "1"
    profile = os.environ.get("PROFILE", "1") != "0"
    outdir = os.environ.get("BENCH_OUT", "build/bench-quick" if quick else "build/bench")
    missing = [t for t in ("redis-server", "redis-benchmark", "nutcracker", "valgrind") if not shutil.which(t)]
    if missing:
        print(f"bench: FAILED: not installed: {' '.join(missing)} (sh deploy/install-deps.sh bench)", file=sys.stderr)
        return 1
    if not os.access(sidecar, os.X_OK):
        print(f"bench: FAILED: {sidecar} is not an executable (make first)", file=sys.stderr)
        return 1
    if rounds < 1:
        print("bench: FAILED: ROUNDS must be >= 1", file=sys.stderr)
        return 1
    os.makedirs(outdir, exist_ok=True)
    logdir = tempfile.mkdtemp(prefix="sidecar-bench.")

    def on_signal(signum, frame):
        raise Interrupted(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    # The binary under test is copied first: a rebuild of ./sidecar during the run (someone else's
    # make) then changes nothing here, and perf still finds its symbols.
    under_test = os.path.join(logdir, "sidecar")
    shutil.copy2(sidecar, under_test)
    b = Bench(under_test, rounds, quick, profile, logdir)
    vers = "; ".join(versions(sidecar, under_test))
    rc = 0
    try:
        with open("/proc/loadavg") as f:
            load0 = f.read().split()[:3]
        text = b.run()
        with open("/proc/loadavg") as f:
            load1 = f.read().split()[:3]
        head = [f"sidecar benchmark ({'quick, ' if quick else ''}{rounds} round(s), {os.cpu_count()} CPUs; "
                f"load average before {' '.join(load0)}, after {' '.join(load1)}; "
                f"{time.monotonic() - b.t0:.0f} s)", vers, ""]
        text = "\n".join(head) + text + "\n"
        shutil.copy2(under_test, os.path.join(outdir, "sidecar"))  # the profiles' symbols
        print(text)
        with open(os.path.join(outdir, "report.txt"), "w") as f:
            f.write(text)
        for name in os.listdir(outdir):  # the previous run's profiles
            if name.startswith(("callgrind.", "perf-")) and name.endswith((".out", ".data")):
                os.remove(os.path.join(outdir, name))
        for name in os.listdir(logdir):
            if name.startswith(("callgrind.", "perf-")) and name.endswith((".out", ".data")):
                shutil.copy(os.path.join(logdir, name), outdir)
        print(f"bench: report and profiles in {outdir}/", file=sys.stderr)
    except BenchError as e:
        print(f"bench: FAILED (step: {b.step}): {e}", file=sys.stderr)
        rc = 1
    except Interrupted as e:
        print(f"bench: interrupted by signal {e.args[0]} (step: {b.step}); stopping everything", file=sys.stderr)
        rc = 128 + e.args[0]
    except Exception as e:  # a bug in the harness: still stop everything
        import traceback
        traceback.print_exc()
        print(f"bench: FAILED (step: {b.step}): harness error: {e!r}", file=sys.stderr)
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        b.procs.stop_all()
        if rc == 0 and os.environ.get("KEEP_LOGS") != "1":
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"bench: logs kept in {logdir}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
