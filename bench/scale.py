#!/usr/bin/env python3
"""Scale benchmark: 1,000,000 keys of 100 bytes, 3 -> 4 shards and back, side by side.

For each method a fresh identical 3-master cluster (no replicas) is built with redisctl and
loaded through a real cluster client (redis-py RedisCluster), then:
  redisctl            edit `shards: 4` and `redisctl apply` (starts the node, joins it, moves
                      slots); then `shards: 3` and `apply` again (moves back, retires the node)
  redis-cli default   start the 4th redis-server, `redis-cli --cluster add-node`,
                      `rebalance --cluster-use-empty-masters`; back: `rebalance
                      --cluster-weight <new>=0`, `del-node`
  redis-cli pipe 100  the same with `--cluster-pipeline 100`
plus the raw ceiling: MIGRATE of one slot's keys in batches of 1000, driven directly.
Every run ends with `redis-cli --cluster check` and a key count. Loopback only.

With BENCH_SERVER=/path/to/valkey-server (Valkey 9+) every cluster runs on Valkey, and
redisctl is measured twice: its default (atomic slot migration, CLUSTER MIGRATESLOTS) and
`--slot-migration legacy` (the classic protocol, like redis-cli's).

usage: [BENCH_SERVER=valkey-server] bench/scale.py [KEYS]   (default 1000000)
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from redis.cluster import RedisCluster

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "redisctl")
VALUE = "x" * 100
SERVER = os.environ.get("BENCH_SERVER", "redis-server")
ENV = dict(os.environ, REDISCTL_REDIS_SERVER=SERVER)


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


def ports(n, start):
    for base in range(start, 29000, 10):
        if all(free(base + i) for i in range(n)):
            return [base + i for i in range(n)]
    raise SystemExit("no free ports")


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


class Cluster:
    def __init__(self, ps):
        self.ports = ps
        self.dir = tempfile.mkdtemp(prefix="scalebench-")
        self.state = os.path.join(self.dir, "st")
        self.file = os.path.join(self.dir, "t.yaml")
        self.write(3)

    def write(self, shards):
        with open(self.file, "w") as f:
            f.write("version: 1\nname: sb\nhosts: [{name: local, address: 127.0.0.1}]\n"
                    "defaults: {persistence: {save: [], appendonly: false}}\n"
                    f"cluster:\n  shards: {shards}\n  replicas: 0\n"
                    f"  ports: [{', '.join(map(str, self.ports))}]\n  node_timeout: 5000\n")

    def apply(self, *extra):
        t = time.monotonic()
        r = subprocess.run([BIN, "apply", self.file, "--state-dir", self.state, "--yes", *extra],
                           capture_output=True, text=True, env=ENV)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        moves = [l for l in r.stderr.splitlines() if "done: move" in l]
        return time.monotonic() - t, moves

    def destroy(self):
        subprocess.run([BIN, "destroy", self.file, "--state-dir", self.state, "--yes"], capture_output=True, env=ENV)
        shutil.rmtree(self.dir, ignore_errors=True)


def load(port):
    rc = RedisCluster(host="127.0.0.1", port=port)
    batch = 20000
    for start in range(0, KEYS, batch):
        rc.mset_nonatomic({f"k:{i}": VALUE for i in range(start, min(start + batch, KEYS))})


def check(port, masters):
    out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
    ok = "[ERR]" not in out and "All 16384 slots covered" in out
    total = sum(int(cli(p, "DBSIZE").strip() or 0) for p in masters)
    return ok, total


def node_id(port):
    return cli(port, "CLUSTER", "MYID").strip()


def start_plain(port, d):
    nd = os.path.join(d, str(port))
    os.makedirs(nd, exist_ok=True)
    subprocess.run([SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000", "--save", "",
                    "--appendonly", "no", "--daemonize", "yes", "--dir", nd, "--logfile", os.path.join(nd, "log")],
                   check=True)
    while cli(port, "PING").strip() != "PONG":
        time.sleep(0.01)


def run(*args):
    """Run a command with output to a file (redis-cli can print without end) and a bound."""
    with tempfile.TemporaryFile() as out:
        try:
            r = subprocess.run(list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=900)
            code = r.returncode
        except subprocess.TimeoutExpired:
            code = -1
        out.seek(0)
        tail = out.read()[-1500:].decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed: {tail.strip()}")
    return tail


def redis_cli_method(ps, pipeline):
    c = Cluster(ps[:3] + [ps[3]])  # the 4th port is started by hand
    c.write(3)
    c.apply()
    load(ps[0])
    extra = tempfile.mkdtemp(prefix="scalebench-extra-")
    start_plain(ps[3], extra)
    pipe = [] if pipeline is None else ["--cluster-pipeline", str(pipeline)]
    t = time.monotonic()
    run("redis-cli", "--cluster", "add-node", f"127.0.0.1:{ps[3]}", f"127.0.0.1:{ps[0]}")
    # The hand procedure waits until every node knows the new one (rebalance right after
    # add-node otherwise sees 3 masters and does nothing, or fails with "I don't know about
    # node").
    while not all(cli(p, "CLUSTER", "NODES").count("master") == 4 and "cluster_state:ok" in cli(p, "CLUSTER", "INFO")
                  for p in ps[:4]):
        time.sleep(0.05)
    run("redis-cli", "--cluster", "rebalance", f"127.0.0.1:{ps[0]}", "--cluster-use-empty-masters", *pipe)
    out_s = time.monotonic() - t
    ok_out, n_out = check(ps[0], ps[:4])
    ok_out = ok_out and int(cli(ps[3], "DBSIZE").strip() or 0) > 0
    new = node_id(ps[3])
    t = time.monotonic()
    # Back to 3: drain the new node with a weight of 0, then remove it.
    try:
        run("redis-cli", "--cluster", "rebalance", f"127.0.0.1:{ps[0]}", "--cluster-weight", f"{new}=0", *pipe)
        run("redis-cli", "--cluster", "del-node", f"127.0.0.1:{ps[0]}", new)
        in_err = None
    except RuntimeError as e:
        in_err = str(e).splitlines()[-1][:120]
    in_s = None if in_err else time.monotonic() - t
    ok_in, n_in = check(ps[0], ps[:3]) if not in_err else (True, KEYS)
    c.destroy()
    for p in ps:
        cli(p, "SHUTDOWN", "NOSAVE")
    shutil.rmtree(extra, ignore_errors=True)
    return out_s, in_s, ok_out and ok_in and n_out == KEYS and n_in == KEYS, in_err


def redisctl_method(ps, *extra):
    c = Cluster(ps[:4])
    c.apply()
    load(ps[0])
    c.write(4)
    out_s, moves_out = c.apply(*extra)
    ok_out, n_out = check(ps[0], ps[:4])
    c.write(3)
    in_s, moves_in = c.apply(*extra)
    ok_in, n_in = check(ps[0], ps[:3])
    c.destroy()
    return out_s, in_s, ok_out and ok_in and n_out == KEYS and n_in == KEYS, moves_out, moves_in


def raw_ceiling(ps):
    """One slot holding N keys (hash tag), moved with GETKEYSINSLOT 1000 + MIGRATE KEYS."""
    c = Cluster(ps[:3])
    c.apply()
    n = min(KEYS, 200_000)
    rc = RedisCluster(host="127.0.0.1", port=ps[0])
    for start in range(0, n, 20000):
        rc.mset_nonatomic({f"{{ceil}}:{i}": VALUE for i in range(start, min(start + 20000, n))})
    slot = int(cli(ps[0], "CLUSTER", "KEYSLOT", "{ceil}").strip())
    src = next(p for p in ps[:3] if int(cli(p, "CLUSTER", "COUNTKEYSINSLOT", str(slot)).strip() or 0) > 0)
    dst = next(p for p in ps[:3] if p != src)
    import redis
    s, d = redis.Redis(port=src), redis.Redis(port=dst)
    d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(src))
    s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(dst))
    t = time.monotonic()
    while True:
        keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if not keys:
            break
        s.execute_command("MIGRATE", "127.0.0.1", dst, "", 0, 10000, "KEYS", *keys)
    elapsed = time.monotonic() - t
    for p in ps[:3]:
        cli(p, "CLUSTER", "SETSLOT", str(slot), "NODE", node_id(dst))
    c.destroy()
    return n / elapsed


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ps = ports(4, 24100)
    valkey = "valkey" in os.path.basename(SERVER)
    r = redisctl_method(ps)
    legacy = redisctl_method(ps, "--slot-migration", "legacy") if valkey else None
    d = redis_cli_method(ps, None)
    p100 = redis_cli_method(ps, 100)
    ceiling = raw_ceiling(ps)
    version = subprocess.run([SERVER, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{version}\n{KEYS} keys of 100 bytes; 3 -> 4 shards moves ~{KEYS // 4} keys, 4 -> 3 the same back\n")
    print("| method | 3 -> 4 s | keys/s | 4 -> 3 s | keys/s | checks |")
    print("|---|---|---|---|---|---|")
    moved = KEYS / 4
    rows = [("redisctl apply" + (" (atomic slot migration)" if valkey else ""), (*r[:3], None))]
    if legacy:
        rows.append(("redisctl apply --slot-migration legacy", (*legacy[:3], None)))
    rows += [("redis-cli default pipeline", d), ("redis-cli --cluster-pipeline 100", p100)]
    for name, (o, i, ok, err) in rows:
        back = f"{i:.2f} | {moved / i:,.0f}" if i else f"n/a | {err}"
        print(f"| {name} | {o:.2f} | {moved / o:,.0f} | {back} | {'ok' if ok else 'FAILED'} |")
    print(f"\nraw ceiling (one slot, MIGRATE batches of 1000): {ceiling:,.0f} keys/s")
    print(f"redisctl vs default: {d[0] / r[0]:.1f}x (3 -> 4), {d[1] / r[1]:.1f}x (4 -> 3); "
          f"vs pipeline 100: {p100[0] / r[0]:.1f}x (3 -> 4), {p100[1] / r[1]:.1f}x (4 -> 3)")
    print(f"redisctl keys/s vs raw ceiling: {moved / r[0] / ceiling:.0%} (3 -> 4, whole apply incl. node start)")
    print("redisctl move steps (3 -> 4):", *r[3], sep="\n  ")
    print("redisctl move steps (4 -> 3):", *r[4], sep="\n  ")
    print(f"peak RSS of this script's children (redisctl, redis-cli): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
