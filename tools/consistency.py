#!/usr/bin/env python3
"""Consistency checker: proves that an operation (scale out/in, failover, drain) loses no
acknowledged write.

usage: consistency.py HOST PORT SECONDS [KEYS] [PASSWORD]
                      [--tls-ca FILE --tls-cert FILE --tls-key FILE]
                      [--stop-on-eof] [--progress FILE]

With --tls-ca the client speaks TLS (verifying the nodes against that CA), presenting
--tls-cert/--tls-key when given. With --stop-on-eof it also stops writing when its standard
input closes (the caller is done; SECONDS stays the bound). With --progress it keeps FILE
holding the number of acknowledged writes so far (replaced atomically every 50).

Through a real cluster client (redis-py RedisCluster, which follows MOVED/ASK), it INCRs
counters spread over KEYS keys (default 10000, all slots) for SECONDS (bounded), remembering
how many increments of each key were acknowledged. Then it reads every counter back: a counter
below its acknowledged count is a lost write. Unacknowledged increments (errors, timeouts) may
or may not have applied, so a counter above its count is fine. Prints one JSON line:
{"writes", "acknowledged", "lost", "errors", "keys"} and exits 1 when anything was lost.
"""
import json
import os
import random
import sys
import threading
import time

from redis.cluster import RedisCluster
from redis.exceptions import RedisError


def stop_on_eof(stop):
    """Set `stop` once stdin closes. os.read, not sys.stdin: a daemon thread blocked in a
    buffered read makes the interpreter abort at exit (_enter_buffered_busy)."""
    while os.read(0, 4096):
        pass
    stop.set()


args, tls = [], {}
stop, progress = threading.Event(), None
argv = iter(sys.argv[1:])
for a in argv:
    if a in ("--tls-ca", "--tls-cert", "--tls-key"):
        tls[a] = next(argv)
    elif a == "--stop-on-eof":
        threading.Thread(target=stop_on_eof, args=(stop,), daemon=True).start()
    elif a == "--progress":
        progress = next(argv)
    else:
        args.append(a)
host, port, seconds = args[0], int(args[1]), float(args[2])
nkeys = int(args[3]) if len(args) > 3 else 10000
password = args[4] if len(args) > 4 else None
ssl = {}
if "--tls-ca" in tls:
    ssl = {"ssl": True, "ssl_ca_certs": tls["--tls-ca"],
           "ssl_certfile": tls.get("--tls-cert"), "ssl_keyfile": tls.get("--tls-key")}

rc = RedisCluster(host=host, port=port, password=password, socket_timeout=2,
                  cluster_error_retry_attempts=5, **ssl)
run = f"{random.randrange(1 << 30):x}"
acked = [0] * nkeys
writes = errors = client_bugs = total = 0
deadline = time.monotonic() + seconds
rng = random.Random(7)


def report(n):
    if progress is not None:
        with open(progress + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(progress + ".tmp", progress)


report(0)
while time.monotonic() < deadline and writes < 5_000_000 and not stop.is_set():
    i = rng.randrange(nkeys)
    writes += 1
    try:
        rc.incr(f"cc:{run}:{i}")
        acked[i] += 1
        total += 1
        if total % 50 == 0:
            report(total)
    except RedisError:
        errors += 1
        time.sleep(0.01)
    except (AttributeError, KeyError, IndexError, TypeError) as e:
        # redis-py's cluster client occasionally trips over its own topology refresh while
        # nodes come and go (seen: 'NoneType' object has no attribute 'redis_connection').
        # The write was not acknowledged; count it as a client error and go on.
        errors += 1
        client_bugs += 1
        time.sleep(0.01)

lost = 0
for start in range(0, nkeys, 500):
    idx = list(range(start, min(start + 500, nkeys)))
    for attempt in range(5):
        try:
            values = rc.mget_nonatomic([f"cc:{run}:{i}" for i in idx])
            break
        except (RedisError, AttributeError, KeyError, IndexError, TypeError):
            time.sleep(0.2)
    else:
        raise SystemExit("cannot read counters back")
    for i, v in zip(idx, values):
        if int(v or 0) < acked[i]:
            lost += acked[i] - int(v or 0)

print(json.dumps({"writes": writes, "acknowledged": sum(acked), "lost": lost,
                  "errors": errors, "client_library_errors": client_bugs, "keys": nkeys}))
sys.exit(1 if lost else 0)
