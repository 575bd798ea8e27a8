#!/usr/bin/env python3
"""Independent convergence checker for the bootstrap benchmark (bench/bootstrap.sh).

Polls the given Redis Cluster nodes every --interval seconds (default 0.02) until, in one
poll, every node

  * answers CLUSTER INFO with cluster_state:ok and cluster_slots_ok:16384 (and, with
    --known-nodes, with cluster_known_nodes equal to the number of ports given), and
  * if INFO replication says role:slave, shows master_link_status:up;

and, with --replicas N, exactly N nodes are replicas. Exits 0 when that holds, 1 when it does
not within --timeout seconds (default 60), 2 on bad usage.

Prints one JSON line on stdout:
  {"ok": true, "polls": 3, "waited_s": 0.047, "true_at": <time.monotonic()>}
waited_s is 0 when the first poll already saw the condition; otherwise it is the time from
--since (a time.monotonic() value taken by the caller, e.g. when `redisctl apply` returned;
default: the start of the first poll) to the end of the poll that saw it. On timeout the
JSON names the last thing that was missing.

Only redis-py (or nothing but the standard library if --use-cli is given, which shells out to
redis-cli) is used; nothing here comes from redisctl.

usage: converged.py [--host 127.0.0.1] [--timeout 60] [--interval 0.02] [--since T]
                    [--replicas N] [--known-nodes] PORT...
"""
import argparse
import json
import subprocess
import sys
import time


def parse_info(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


class Node:
    def __init__(self, host, port, use_cli):
        self.host, self.port, self.use_cli = host, port, use_cli
        self.conn = None
        if not use_cli:
            import redis  # redis-py
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # no client-side retries: a failed poll is just "not yet", the next comes in 20 ms
            self.conn = redis.Redis(
                host=host, port=port, socket_timeout=1.0, socket_connect_timeout=1.0,
                decode_responses=True, retry=Retry(NoBackoff(), 0),
            )

    def raw(self, *cmd):
        if self.use_cli:
            r = subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port), *cmd],
                               capture_output=True, text=True, timeout=5)
            if r.returncode != 0 or not r.stdout or r.stdout.startswith(("ERR", "Could not")):
                raise ConnectionError(r.stdout.strip() or r.stderr.strip())
            return r.stdout
        return self.conn.execute_command(*cmd)

    def cluster_info(self):
        v = self.raw("CLUSTER", "INFO")
        return v if isinstance(v, dict) else parse_info(v)

    def replication(self):
        if self.use_cli:
            return parse_info(self.raw("INFO", "replication"))
        return self.conn.info("replication")


def check(nodes, args):
    """None when the condition holds, else a short description of what is missing."""
    replicas = 0
    for n in nodes:
        where = f"{n.host}:{n.port}"
        try:
            ci = n.cluster_info()
            if str(ci.get("cluster_state")) != "ok":
                return f"{where}: cluster_state:{ci.get('cluster_state')}"
            if str(ci.get("cluster_slots_ok")) != "16384":
                return f"{where}: cluster_slots_ok:{ci.get('cluster_slots_ok')}"
            if args.known_nodes and str(ci.get("cluster_known_nodes")) != str(len(nodes)):
                return f"{where}: cluster_known_nodes:{ci.get('cluster_known_nodes')}"
            rep = n.replication()
            if rep.get("role") == "slave":
                replicas += 1
                if rep.get("master_link_status") != "up":
                    return f"{where}: master_link_status:{rep.get('master_link_status')}"
        except Exception as e:  # refused, timeout, LOADING, ... -> not yet
            return f"{where}: {type(e).__name__}: {e}"
    if args.replicas is not None and replicas != args.replicas:
        return f"{replicas} replica(s), expected {args.replicas}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ports", nargs="+", type=int, metavar="PORT")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--since", type=float, default=None)
    ap.add_argument("--replicas", type=int, default=None)
    ap.add_argument("--known-nodes", action="store_true")
    ap.add_argument("--use-cli", action="store_true", help="use redis-cli instead of redis-py")
    args = ap.parse_args()

    nodes = [Node(args.host, p, args.use_cli) for p in args.ports]
    first = time.monotonic()
    since = args.since if args.since is not None else first
    polls = 0
    missing = None
    while True:
        start = time.monotonic()
        polls += 1
        missing = check(nodes, args)
        end = time.monotonic()
        if missing is None:
            waited = 0.0 if polls == 1 else max(0.0, end - since)
            print(json.dumps({"ok": True, "polls": polls, "waited_s": round(waited, 6),
                              "true_at": end}))
            return 0
        if end - first >= args.timeout:
            print(json.dumps({"ok": False, "polls": polls, "timeout_s": args.timeout,
                              "missing": missing}))
            return 1
        time.sleep(max(0.0, args.interval - (end - start)))


if __name__ == "__main__":
    sys.exit(main())
