"""redis-py's client-side cache (an L1 near cache) against a running Terrace server.

Usage: python3 l1_near_cache.py PORT
The server must have a cache `idle` with `tti: 1s` and a cache `strong` with
`consistency: strong`. Exits non-zero (with a message) when a check fails.
"""

import sys
import time

import redis
from redis.cache import CacheConfig

PORT = int(sys.argv[1])


def client(**kw):
    return redis.Redis(port=PORT, decode_responses=True, **kw)


def hits(admin):
    return admin.info("stats")["keyspace_hits"]


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


admin = client()
writer = client()
reader = client(protocol=3, cache_config=CacheConfig())

# A read is cached: repeated gets do not reach the server.
writer.set("k", "v1")
check(reader.get("k") == "v1", "first read")
before = hits(admin)
for _ in range(20):
    check(reader.get("k") == "v1", "cached read")
check(hits(admin) == before, "cached reads must not reach the server")
check(reader.get_cache().size >= 1, "the L1 holds the key")

# A write elsewhere invalidates it: the next get returns the new value.
writer.set("k", "v2")
deadline = time.time() + 2
while reader.get("k") != "v2" and time.time() < deadline:
    time.sleep(0.01)
check(reader.get("k") == "v2", "read after a write returns the new value")

# DEL and an idle (TTI) expiry invalidate too.
writer.delete("k")
deadline = time.time() + 2
while reader.get("k") is not None and time.time() < deadline:
    time.sleep(0.01)
check(reader.get("k") is None, "read after DEL returns nothing")

writer.set("idle:k", "here")
check(reader.get("idle:k") == "here", "TTI key read")
start = time.time()
while reader.get("idle:k") == "here" and time.time() - start < 5:
    time.sleep(0.05)  # served by the L1: the server sees the key idle
gone = time.time() - start
check(reader.get("idle:k") is None, "the L1 drops a key the server expired by TTI")
check(gone >= 0.9, f"expired only after its TTI (after {gone:.2f}s)")

# Strong cache: once the writer has its reply, no L1 serves the old value.
for i in range(300):
    writer.set("strong:k", str(i))
    got = reader.get("strong:k")
    check(got == str(i), f"strong read {i} returned {got!r}")

print("ok")
