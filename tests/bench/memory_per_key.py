"""Memory per key: loads the same small-string keys into redis-server and the sidecar and compares
used_memory growth per key (INFO memory), with and without a TTL. Usage: memory_per_key.py RPORT SPORT
Both servers must be empty and on 127.0.0.1. Run by tests/bench/run.sh; not a test (no assertions)."""
import sys
import redis

KEYS = 200_000


def used(r):
    return int(r.info("memory")["used_memory"])


def load(r, prefix, ttl):
    pipe = r.pipeline(transaction=False)
    for i in range(KEYS):
        if ttl:
            pipe.set(f"{prefix}:{i:08d}", "value-xyz", ex=3600)
        else:
            pipe.set(f"{prefix}:{i:08d}", "value-xyz")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def per_key(port, ttl):
    r = redis.Redis(host="127.0.0.1", port=port)
    r.flushall()
    before = used(r)
    load(r, "key", ttl)
    after = used(r)
    r.flushall()
    return (after - before) / KEYS


def main():
    rport, sport = int(sys.argv[1]), int(sys.argv[2])
    print(f"memory per key ({KEYS} keys 'key:NNNNNNNN' -> 'value-xyz'; used_memory growth / keys)")
    print(f"{'':16}{'redis-server':>14}{'sidecar':>10}{'ratio':>8}")
    for ttl in (False, True):
        rv, sv = per_key(rport, ttl), per_key(sport, ttl)
        label = "with TTL" if ttl else "no TTL"
        print(f"{label:16}{rv:14.1f}{sv:10.1f}{sv / rv:8.2f}")


if __name__ == "__main__":
    main()
