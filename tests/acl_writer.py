#!/usr/bin/env python3
"""A redis-py cluster client writing through a password rotation, the judge of tests/security.rs.

    acl_writer.py HOST PORT SECONDS USER CONTROL_FILE

Passwords never travel in argv or the environment: CONTROL_FILE names, on its first line, the
password file the client must use now (the test switches it from the old file to the new
one). A fresh client (hence fresh AUTHs on every node) is made every 50 writes and whenever the
control file changes. Every INCR on app:{n} that was acknowledged must be in the final value:
prints JSON {ops, auth_errors, other_errors, lost, uncertain, switches}.
"""
import json
import sys
import time

import redis
from redis.cluster import RedisCluster

host, port, seconds, user, control = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]


def password():
    with open(control) as f:
        path = f.readline().strip()
    if not path:  # caught while the test rewrites it: keep the current one
        return current, pw
    with open(path) as f:
        return path, f.readline().rstrip("\n")


def is_auth(e):
    text = str(e)
    return isinstance(e, redis.exceptions.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text


KEYS = 64
acked = [0] * KEYS
uncertain = [0] * KEYS
ops = auth_errors = other_errors = switches = 0
errors = []
current, pw = None, None
current, pw = password()
client = None
deadline = time.time() + seconds
i = 0
while time.time() < deadline:
    path, now_pw = password()
    if client is None or path != current or i % 50 == 0:
        if path != current:
            switches += 1
        current, pw = path, now_pw
        if client is not None:
            client.close()
        try:
            client = RedisCluster(host=host, port=port, username=user, password=pw,
                                  socket_timeout=2, require_full_coverage=False)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            if is_auth(e):
                auth_errors += 1
            else:
                other_errors += 1
            errors.append(repr(e)[:200])
            client = None
            time.sleep(0.05)
            continue
    k = i % KEYS
    i += 1
    try:
        client.incr("app:{%d}" % k)
        acked[k] += 1
        ops += 1
    except Exception as e:  # noqa: BLE001
        uncertain[k] += 1
        if is_auth(e):
            auth_errors += 1
        else:
            other_errors += 1
        errors.append(repr(e)[:200])
        client = None

if client is not None:
    client.close()
_, pw = password()
final = RedisCluster(host=host, port=port, username=user, password=pw, socket_timeout=5)
lost = 0
for k in range(KEYS):
    v = int(final.get("app:{%d}" % k) or 0)
    if v < acked[k]:
        lost += acked[k] - v
print(json.dumps({"ops": ops, "auth_errors": auth_errors, "other_errors": other_errors,
                  "lost": lost, "uncertain": sum(uncertain), "switches": switches,
                  "errors": errors[:5]}))
