#!/usr/bin/python3
"""Measures the sidecar's resident memory (VmRSS, VmHWM) with a given max_memory, to size the
container's memory request and limit (deploy/kubernetes/deployment.yaml, deploy/README.md).

Each scenario starts the binary on a free 127.0.0.1 port with a temporary ini ([cache] max_memory,
nothing else changed) and fills it until the store evicts (INFO evicted_keys > 0) and beyond:
standalone with redis-benchmark SETs; near-cache with an upstream redis-server (also on a free
loopback port) loaded with redis-benchmark SETs, then read through the sidecar with GETs, so the
near-cache fills from misses. It prints idle and final VmRSS (right after the load, and QUIET_S
later: the heap is trimmed once no client has sent anything for 200 ms, proxy/memtrim.c), VmHWM,
used_memory, evictions.
Invariants: traffic goes to 127.0.0.1 only; every loop is bounded; the processes it starts are
stopped by their pids on exit, error or SIGTERM.

Usage: /usr/bin/python3 deploy/measure_rss.py [./sidecar] [max_memory, default 64mb]
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Each scenario runs in a fresh process: (name, near-cache?, [(value size in bytes, key space,
# requests, connections), ...]). Key spaces are large enough that every phase overflows
# max_memory (64mb).
MIXED = [(1024, 400_000, 400_000, 50), (4096, 100_000, 200_000, 50), (16384, 40_000, 40_000, 50),
         (65536, 10_000, 10_000, 50), (256, 1_000_000, 1_000_000, 50),
         (16384, 40_000, 40_000, 50), (16, 4_000_000, 2_000_000, 50),
         (1024, 400_000, 300_000, 500)]
NEAR_MIXED = [(1024, 150_000, 600_000, 50), (16384, 20_000, 100_000, 50),
              (100, 1_000_000, 1_500_000, 50), (4096, 60_000, 240_000, 50),
              (65536, 5_000, 20_000, 50), (1024, 150_000, 600_000, 500)]
QUIET_S = 2.0
SCENARIOS = [
    ("16 B values", False, [(16, 4_000_000, 3_000_000, 50)]),
    ("1 KiB values", False, [(1024, 400_000, 400_000, 50)]),
    ("16 KiB values", False, [(16384, 40_000, 40_000, 50)]),
    ("mixed sizes, one after another", False, MIXED),
    ("near-cache, 1 KiB values", True, [(1024, 150_000, 600_000, 50)]),
    ("near-cache, mixed sizes", True, NEAR_MIXED),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def info(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    fields = {}
    for line in out.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            fields[k] = v.strip()
    return fields


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def wait_listening(port, proc, tmp):
    for _ in range(100):
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"measure_rss: the sidecar did not start (see {tmp})")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def benchmark(port, command, size, keyspace, requests, conns):
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", command, "-d", str(size),
                    "-r", str(keyspace), "-n", str(requests), "-c", str(conns), "-P", "16", "-q"],
                   stdout=subprocess.DEVNULL, timeout=600, check=True)


def run_scenario(binary, max_memory, name, near, phases):
    """One fresh sidecar; returns (idle VmRSS, final VmRSS, VmHWM, used_memory, evicted)."""
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="sidecar-rss-")
    ini = os.path.join(tmp, "sidecar.ini")
    procs = []
    signal.signal(signal.SIGTERM, lambda *a: ([stop(p) for p in procs], sys.exit(1)))
    try:
        text = f"[server]\nlisten = 127.0.0.1:{port}\n[cache]\nmax_memory = {max_memory}\n"
        if near:
            up = free_port()
            with open(os.path.join(tmp, "redis.log"), "w") as log:
                procs.append(subprocess.Popen(
                    ["redis-server", "--port", str(up), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"], stdout=log, stderr=log))
            wait_listening(up, procs[-1], tmp)
            text += f"[upstream]\nhost = 127.0.0.1\nport = {up}\n"
        with open(ini, "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
        with open(os.path.join(tmp, "sidecar.log"), "w") as log:
            proc = subprocess.Popen([binary, "-c", ini], stdout=log, stderr=log, env=env)
        procs.append(proc)
        wait_listening(port, proc, tmp)
        idle = proc_status(proc.pid)["VmRSS"]
        for size, keyspace, requests, conns in phases:
            if near:
                benchmark(up, "set", size, keyspace, 2 * keyspace, 50)
                benchmark(port, "get", size, keyspace, requests, conns)
            else:
                benchmark(port, "set", size, keyspace, requests, conns)
        i = info(port)
        st = proc_status(proc.pid)
        time.sleep(QUIET_S)  # the heap is trimmed once no client has sent anything for 200 ms
        quiet = proc_status(proc.pid)["VmRSS"]
    finally:
        for p in reversed(procs):
            stop(p)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if int(i["evicted_keys"]) == 0:
        raise SystemExit(f"measure_rss: {name}: the store never evicted; raise the request counts")
    shutil.rmtree(tmp, ignore_errors=True)     # kept (with the logs) when a step failed
    return idle, st["VmRSS"], quiet, st["VmHWM"], int(i["used_memory"]), int(i["evicted_keys"])


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "./sidecar"
    max_memory = sys.argv[2] if len(sys.argv) > 2 else "64mb"
    print(f"{binary}, max_memory {max_memory}, filled by redis-benchmark (-P 16) until evicting")
    print(f"{'scenario':34s} {'idle RSS':>10s} {'VmRSS':>10s} {'quiet':>10s} {'VmHWM':>10s} "
          f"{'used_memory':>12s} {'evicted':>9s}")
    for name, near, phases in SCENARIOS:
        idle, rss, quiet, hwm, used, evicted = run_scenario(binary, max_memory, name, near, phases)
        print(f"{name:34s} {mib(idle):>10s} {mib(rss):>10s} {mib(quiet):>10s} {mib(hwm):>10s} "
              f"{mib(used):>12s} {evicted:>9d}")


if __name__ == "__main__":
    main()
