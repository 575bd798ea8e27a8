#!/usr/bin/env python3
"""Independent judge for replication groups: a real Sentinel-aware client (redis-py Sentinel).

usage: sentinel_writer.py PASSWORD SECONDS SENTINEL_PORT... [--tls-ca F --tls-cert F --tls-key F]
Writes w:0, w:1, ... to the master that the Sentinels name, for SECONDS (bounded), counting
acknowledged writes and client errors (retrying through Sentinel after each error), then
reads every acknowledged key back from the current master and prints a JSON summary.
"""
import json
import sys
import time

from redis.sentinel import Sentinel

args, tls = [], {}
argv = iter(sys.argv[1:])
for a in argv:
    if a in ("--tls-ca", "--tls-cert", "--tls-key"):
        tls[a] = next(argv)
    else:
        args.append(a)
password, seconds = args[0], float(args[1])
ports = [int(p) for p in args[2:]]
# With --tls-ca: TLS to the Sentinels and to the master they name.
ssl = {}
if "--tls-ca" in tls:
    ssl = {"ssl": True, "ssl_ca_certs": tls["--tls-ca"],
           "ssl_certfile": tls.get("--tls-cert"), "ssl_keyfile": tls.get("--tls-key")}
sentinel = Sentinel(
    [("127.0.0.1", p) for p in ports],
    socket_timeout=0.5,
    sentinel_kwargs={"password": password, "socket_timeout": 0.5, **ssl},
    password=password,
    **ssl,
)
acked, errors, i = [], 0, 0
deadline = time.monotonic() + seconds
master = sentinel.master_for("mymaster", socket_timeout=0.5, password=password)
while time.monotonic() < deadline and i < 1_000_000:
    try:
        master.set(f"w:{i}", i)
        acked.append(i)
    except Exception:  # connection refused, READONLY, NOREPLICAS, timeouts: all count
        errors += 1
        time.sleep(0.02)
        master = sentinel.master_for("mymaster", socket_timeout=0.5, password=password)
    i += 1
time.sleep(0.5)
# Read back from the master the Sentinels name once they name one again (the writes may have
# ended in the middle of a failover).
values = None
for attempt in range(120):
    try:
        master = sentinel.master_for("mymaster", socket_timeout=2, password=password)
        pipe = master.pipeline(transaction=False)
        for n in acked:
            pipe.get(f"w:{n}")
        values = pipe.execute()
        host, port = sentinel.discover_master("mymaster")
        break
    except Exception:  # MasterNotFoundError, READONLY while roles change: try again
        time.sleep(0.5)
if values is None:
    raise SystemExit("no master to read back from within 60 s")
lost = 0
for n, v in zip(acked, values):
    if v is None or int(v) != n:
        lost += 1
print(json.dumps({"writes": i, "acknowledged": len(acked), "lost": lost, "errors": errors, "master_port": port}))
