#!/usr/bin/env python3
"""Independent judge: a real cluster client (redis-py RedisCluster) writes and reads keys.

usage: judge.py HOST PORT COUNT [PASSWORD]
Writes COUNT keys spread over all slots, reads every one back, prints a JSON summary, exits
non-zero when any acknowledged write is not readable.
"""
import json
import sys

from redis.cluster import RedisCluster

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
password = sys.argv[4] if len(sys.argv) > 4 else None
rc = RedisCluster(host=host, port=port, password=password, socket_timeout=5)
pipe = rc.pipeline()
for i in range(count):
    pipe.set(f"judge:{i}", f"v{i}")
acked = sum(1 for r in pipe.execute() if r)
pipe = rc.pipeline()
for i in range(count):
    pipe.get(f"judge:{i}")
values = pipe.execute()
lost = sum(1 for i, v in enumerate(values) if v != f"v{i}".encode())
nodes = {n.name for n in rc.get_nodes()}
print(json.dumps({"written": count, "acknowledged": acked, "lost": lost, "nodes": len(nodes)}))
sys.exit(0 if acked == count and lost == 0 else 1)
