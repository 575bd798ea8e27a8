#!/usr/bin/env python3
"""Independent judge for replication groups: a real Sentinel-aware client (redis-py Sentinel).

usage: sentinel_writer.py PASSWORD SECONDS SENTINEL_PORT... [--user USER CONTROL_FILE]
       [--password-control CONTROL_FILE] [--tls-ca F --tls-cert F --tls-key F]
       [--stop-on-eof] [--progress FILE]
Writes w:0, w:1, ... to the master that the Sentinels name, for SECONDS (bounded), counting
acknowledged writes and client errors (retrying through Sentinel after each error), then
reads every acknowledged key back from the current master and prints a JSON summary.
With --stop-on-eof it also stops writing when its standard input closes (the caller is done;
SECONDS stays the bound). With --progress it keeps FILE holding the number of acknowledged
writes so far (replaced atomically every 50).

With --user, the client authenticates to the group's members as USER with the password in the
file that CONTROL_FILE names on its first line (re-read before every write; the test switches
it from the old password file to the new one), never in argv; the Sentinels still take
PASSWORD. It then makes a fresh client (fresh AUTH) every 50 writes and whenever the file
changes, and counts authentication errors apart ("auth_errors", "switches").

With --password-control (PASSWORD is then ignored, pass "-"), the password for the Sentinels
and for the members (the default user, no --user) is in the file that CONTROL_FILE names: the
client is rebuilt, Sentinel connections included (fresh AUTH to the Sentinels and to the
master), every 50 writes and whenever the file changes.
"""
import json
import os
import sys
import threading
import time

import redis
from redis.sentinel import Sentinel


def stop_on_eof(stop):
    """Set `stop` once stdin closes. os.read, not sys.stdin: a daemon thread blocked in a
    buffered read makes the interpreter abort at exit (_enter_buffered_busy)."""
    while os.read(0, 4096):
        pass
    stop.set()


args, tls = [], {}
user = control = pcontrol = progress = None
stop = threading.Event()
argv = iter(sys.argv[1:])
for a in argv:
    if a in ("--tls-ca", "--tls-cert", "--tls-key"):
        tls[a] = next(argv)
    elif a == "--stop-on-eof":
        threading.Thread(target=stop_on_eof, args=(stop,), daemon=True).start()
    elif a == "--progress":
        progress = next(argv)
    elif a == "--user":
        user, control = next(argv), next(argv)
    elif a == "--password-control":
        pcontrol = next(argv)
    else:
        args.append(a)
password, seconds = args[0], float(args[1])
ports = [int(p) for p in args[2:]]
# With --tls-ca: TLS to the Sentinels and to the master they name.
ssl = {}
if "--tls-ca" in tls:
    ssl = {"ssl": True, "ssl_ca_certs": tls["--tls-ca"],
           "ssl_certfile": tls.get("--tls-cert"), "ssl_keyfile": tls.get("--tls-key")}
def make_sentinel(pw):
    return Sentinel(
        [("127.0.0.1", p) for p in ports],
        socket_timeout=0.5,
        sentinel_kwargs={"password": pw, "socket_timeout": 0.5, **ssl},
        password=pw,
        **ssl,
    )


def member_password():
    """(path, password) the members are authenticated with now."""
    if control is None and pcontrol is None:
        return None, password
    if control is None:
        control_file = pcontrol
    else:
        control_file = control
    with open(control_file) as f:
        path = f.readline().strip()
    if not path:  # caught while the test rewrites it: keep the current one
        return current, pw
    with open(path) as f:
        return path, f.readline().rstrip("\n")


def is_auth(e):
    text = str(e)
    return isinstance(e, redis.exceptions.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text


current, pw = None, password
current, pw = member_password()
sentinel = make_sentinel(pw if pcontrol else password)


def connect(timeout):
    return sentinel.master_for("mymaster", socket_timeout=timeout, username=user, password=pw)


def report(n):
    if progress is not None:
        with open(progress + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(progress + ".tmp", progress)


acked, errors, auth_errors, switches, i = [], 0, 0, 0, 0
messages = []
deadline = time.monotonic() + seconds
master = connect(0.5)
report(0)
while time.monotonic() < deadline and i < 1_000_000 and not stop.is_set():
    if control is not None or pcontrol is not None:
        path, now_pw = member_password()
        if path != current or i % 50 == 0:
            if path != current:
                switches += 1
            current, pw = path, now_pw
            master.close()
            master.connection_pool.disconnect()
            if pcontrol is not None:
                for s in sentinel.sentinels:
                    s.close()
                    s.connection_pool.disconnect()
                sentinel = make_sentinel(pw)
            try:
                master = connect(0.5)
            except Exception as e:
                errors += 1
                if is_auth(e):
                    auth_errors += 1
                messages.append(repr(e)[:200])
    try:
        master.set(f"w:{i}", i)
        acked.append(i)
        if len(acked) % 50 == 0:
            report(len(acked))
    except Exception as e:  # connection refused, READONLY, NOREPLICAS, timeouts: all count
        errors += 1
        if is_auth(e):
            auth_errors += 1
        messages.append(repr(e)[:200])
        time.sleep(0.02)
        master = connect(0.5)
    i += 1
time.sleep(0.5)
# Read back from the master the Sentinels name once they name one again (the writes may have
# ended in the middle of a failover).
values = None
for attempt in range(120):
    try:
        _, pw = member_password()
        if pcontrol is not None:
            sentinel = make_sentinel(pw)
        master = connect(2)
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
print(json.dumps({"writes": i, "acknowledged": len(acked), "lost": lost, "errors": errors,
                  "auth_errors": auth_errors, "switches": switches, "master_port": port,
                  "messages": messages[:5]}))
