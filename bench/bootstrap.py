#!/usr/bin/env python3
"""Bootstrap benchmark: nothing -> 3 masters + 3 replicas, every node serving all 16384 slots
and every replica's master link up.

Compares, in one run and alternating rounds:
  redisctl  `redisctl apply --yes` (release build) on a fresh state directory
  manual    the seeds' way: six redis-server processes (daemonize, AOF everysec) and
            `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`
Both are timed until the same independent condition holds (polled every 10 ms). Also times a
no-op `redisctl apply` and `redisctl plan` on the running cluster.

usage: bench/bootstrap.py [ROUNDS]   (from the repository root; loopback only)
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "redisctl")


def free(port):
    for p in (port, port + 10000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def ports6():
    for base in range(23100, 26000, 10):
        if all(free(base + i) for i in range(6)):
            return [base + i for i in range(6)]
    raise SystemExit("no free ports")


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=5)
    return r.stdout


def converged(ports):
    for p in ports:
        info = cli(p, "CLUSTER", "INFO")
        if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
            return False
        repl = cli(p, "INFO", "replication")
        if "role:slave" in repl and "master_link_status:up" not in repl:
            return False
    return True


def wait_converged(ports, limit=60):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if converged(ports):
            return
        time.sleep(0.01)
    raise SystemExit("did not converge")


def topology(dir, ports):
    path = os.path.join(dir, "t.yaml")
    with open(path, "w") as f:
        f.write(
            "version: 1\nname: bench\nhosts: [{name: local, address: 127.0.0.1}]\n"
            "defaults: {persistence: {appendonly: true, appendfsync: everysec}}\n"
            f"cluster:\n  shards: 3\n  replicas: 1\n  ports: [{', '.join(map(str, ports))}]\n"
            "  node_timeout: 5000\n"
        )
    return path


def run_redisctl(ports):
    d = tempfile.mkdtemp(prefix="rcbench-")
    topo = topology(d, ports)
    t = time.monotonic()
    subprocess.run([BIN, "apply", topo, "--state-dir", os.path.join(d, "st"), "--yes"],
                   check=True, capture_output=True)
    wait_converged(ports)
    elapsed = time.monotonic() - t
    return elapsed, d, topo


def destroy_redisctl(d, topo):
    subprocess.run([BIN, "destroy", topo, "--state-dir", os.path.join(d, "st"), "--yes"],
                   check=True, capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def run_manual(ports):
    d = tempfile.mkdtemp(prefix="manualbench-")
    t = time.monotonic()
    for p in ports:
        nd = os.path.join(d, str(p))
        os.makedirs(nd)
        with open(os.path.join(nd, "redis.conf"), "w") as f:
            f.write(f"port {p}\nbind 127.0.0.1\ncluster-enabled yes\ncluster-config-file nodes.conf\n"
                    f"cluster-node-timeout 5000\nappendonly yes\ndaemonize yes\ndir {nd}\n"
                    f"pidfile {nd}/redis.pid\nlogfile {nd}/redis.log\n")
        subprocess.run(["redis-server", os.path.join(nd, "redis.conf")], check=True)
    for p in ports:  # the seeds wait until each answers
        while cli(p, "PING").strip() != "PONG":
            time.sleep(0.01)
    subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True)
    wait_converged(ports)
    return time.monotonic() - t, d


def destroy_manual(ports, d):
    for p in ports:
        cli(p, "SHUTDOWN", "NOSAVE")
    time.sleep(0.3)
    shutil.rmtree(d, ignore_errors=True)


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ports = ports6()
    ours, theirs, noop, plan = [], [], [], []
    for _ in range(ROUNDS):
        e, d, topo = run_redisctl(ports)
        ours.append(e)
        for _ in range(5):
            t = time.monotonic()
            subprocess.run([BIN, "apply", topo, "--state-dir", os.path.join(d, "st"), "--yes"],
                           check=True, capture_output=True)
            noop.append(time.monotonic() - t)
            t = time.monotonic()
            subprocess.run([BIN, "plan", topo, "--state-dir", os.path.join(d, "st")],
                           check=True, capture_output=True)
            plan.append(time.monotonic() - t)
        destroy_redisctl(d, topo)
        e, d = run_manual(ports)
        theirs.append(e)
        destroy_manual(ports, d)
    med = statistics.median
    print(f"| method | rounds | median s | min s | max s |")
    print(f"|---|---|---|---|---|")
    print(f"| redisctl apply | {ROUNDS} | {med(ours):.2f} | {min(ours):.2f} | {max(ours):.2f} |")
    print(f"| manual (redis-server x6 + redis-cli --cluster create) | {ROUNDS} | {med(theirs):.2f} | {min(theirs):.2f} | {max(theirs):.2f} |")
    print()
    print(f"speed-up (manual median / redisctl median): {med(theirs) / med(ours):.1f}x")
    print(f"no-op apply: median {med(noop) * 1000:.0f} ms over {len(noop)} runs")
    print(f"plan on a converged cluster: median {med(plan) * 1000:.0f} ms over {len(plan)} runs")


if __name__ == "__main__":
    main()
