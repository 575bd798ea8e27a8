#!/usr/bin/env python3
"""Agent benchmark: how long a broken replica stays broken, and what the agent costs at rest.

1. Time to healthy after a replica's `kill -9`, and after its data directory is wiped and it
   is killed (a disk swap), on a 3 masters + 3 replicas cluster (AOF everysec, node timeout
   5 s, 20,000 keys), process supervisor:
     agent             `redisctl agent` running (agent.interval 5 s, the default)
     apply at once     `redisctl apply --yes` started the moment the replica died: the lower
                       bound of a person running apply (who first has to notice)
     nothing           no agent, nobody (the process supervisor restarts nothing; a systemd
                       unit would restart a killed replica, but a wiped one comes back empty,
                       with a new identity, alone: it never rejoins). Checked for 30 s.
   "Healthy": the replica answers, is a replica of its shard's master with the link up, and
   holds as many keys as its master (the checker polls every 50 ms with redis-cli).
2. The agent at rest (converged, nothing to do) at a 5 s interval on 6 and 60 nodes: CPU
   (utime + stime from /proc over 60 s) and RSS (VmRSS, VmHWM).

Loopback only. Uses target/release/redisctl (cargo build --release first).
usage: [AT_REST_ONLY=1] bench/agent.py [ROUNDS]   (default 3)
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("REDISCTL", os.path.join(ROOT, "target", "release", "redisctl"))
TICK = os.sysconf("SC_CLK_TCK")


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
    return subprocess.run(["redis-cli", "-p", str(port), *args],
                          capture_output=True, text=True, timeout=5).stdout


def info(port, field):
    for line in cli(port, "INFO", "replication").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def dbsize(port):
    try:
        return int(cli(port, "DBSIZE").strip() or -1)
    except ValueError:
        return -1


class Cluster:
    def __init__(self, shards, start, http):
        self.ports = ports(shards * 2, start)
        self.dir = tempfile.mkdtemp(prefix="agentbench-")
        self.state = os.path.join(self.dir, "state")
        self.file = os.path.join(self.dir, "t.yaml")
        with open(self.file, "w") as f:
            f.write("version: 1\nname: ab\nstate_dir: state\n"
                    "hosts: [{name: local, address: 127.0.0.1}]\n"
                    "defaults: {persistence: {appendonly: true, appendfsync: everysec}}\n"
                    f"cluster:\n  shards: {shards}\n  replicas: 1\n"
                    f"  ports: [{', '.join(map(str, self.ports))}]\n  node_timeout: 5000\n"
                    f"agent: {{interval: 5s, listen: '127.0.0.1:{http}'}}\n")
        self.agent = None

    def run(self, *args):
        return subprocess.run([BIN, "--supervisor", "process", *args, self.file],
                              capture_output=True, text=True)

    def apply(self):
        r = self.run("apply", "--yes")
        if r.returncode != 0:
            raise SystemExit(f"apply failed: {r.stderr}")

    def pid(self, port):
        try:
            with open(os.path.join(self.state, "local", str(port), "redis.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def kill9(self, port):
        pid = self.pid(port)
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return
            except (OSError, IndexError):
                return
            time.sleep(0.01)

    def start_agent(self):
        self.agent = subprocess.Popen([BIN, "--supervisor", "process", "agent", self.file],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.state, "agent.json")) as f:
                    if '"converged": true' in f.read():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the agent did not report converged")

    def stop_agent(self):
        if self.agent:
            self.agent.terminate()
            self.agent.wait(timeout=30)
            self.agent = None

    def destroy(self):
        self.stop_agent()
        self.run("destroy", "--yes")
        shutil.rmtree(self.dir, ignore_errors=True)


def fill(port, n):
    from redis.cluster import RedisCluster
    rc = RedisCluster(host="127.0.0.1", port=port)
    pipe = rc.pipeline()
    for i in range(n):
        pipe.set(f"k{i}", "x" * 100)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    rc.close()


def healthy(replica, master):
    return (info(replica, "role") == "slave"
            and info(replica, "master_port") == str(master)
            and info(replica, "master_link_status") == "up"
            and dbsize(replica) == dbsize(master) > 0)


def wait_healthy(replica, master, t0, limit):
    while time.monotonic() - t0 < limit:
        if healthy(replica, master):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def break_replica(c, replica, wipe):
    c.kill9(replica)
    if wipe:
        shutil.rmtree(os.path.join(c.state, "local", str(replica), "data"))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def heal_times():
    http = ports(1, 27500)[0]
    c = Cluster(3, 21000, http)
    results = {}
    try:
        c.apply()
        fill(c.ports[0], 20000)
        for wipe in (False, True):
            what = "wiped + kill -9" if wipe else "kill -9"
            for rnd in range(ROUNDS):
                shard = rnd % 3
                master, replica = c.ports[2 * shard], c.ports[2 * shard + 1]
                assert healthy(replica, master), f"{replica} not healthy before the round"
                # agent
                c.start_agent()
                t0 = time.monotonic()
                break_replica(c, replica, wipe)
                t = wait_healthy(replica, master, t0, 120)
                results.setdefault((what, "agent (interval 5 s)"), []).append(t)
                c.stop_agent()
                print(f"{what} round {rnd + 1}: agent {t}", file=sys.stderr)
                # apply at once
                c.apply()  # converged (forget ghosts of the wiped node)
                t0 = time.monotonic()
                break_replica(c, replica, wipe)
                c.apply()
                t = wait_healthy(replica, master, t0, 120)
                results.setdefault((what, "apply --yes at once"), []).append(t)
                print(f"{what} round {rnd + 1}: apply {t}", file=sys.stderr)
                c.apply()
            # nothing: once, bounded
            master, replica = c.ports[0], c.ports[1]
            t0 = time.monotonic()
            break_replica(c, replica, wipe)
            t = wait_healthy(replica, master, t0, 30)
            results[(what, "nobody (process supervisor)")] = [t]
            c.apply()
            c.apply()
    finally:
        c.destroy()
    return results


def at_rest(shards, seconds=60):
    http = ports(1, 27600)[0]
    c = Cluster(shards, 22000, http)
    try:
        c.apply()
        c.start_agent()
        pid = c.agent.pid
        time.sleep(10)  # past the first rounds

        def cpu():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICK

        def mem(field):
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024
            return 0

        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu(), time.monotonic()
        return {
            "nodes": shards * 2,
            "cpu_percent": 100 * (c1 - c0) / (t1 - t0),
            "rss_mib": mem("VmRSS"),
            "hwm_mib": mem("VmHWM"),
        }
    finally:
        c.destroy()


def main():
    if not os.access(BIN, os.X_OK):
        raise SystemExit(f"{BIN} missing: cargo build --release")
    print(f"redis: {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.strip()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}, nproc {os.cpu_count()}\n")
    res = {} if os.environ.get("AT_REST_ONLY") else heal_times()
    print("| broken replica | who heals | rounds | median s | min s | max s |")
    print("|---|---|---|---|---|---|")
    for (what, who), ts in res.items():
        done = [t for t in ts if t is not None]
        if not done:
            print(f"| {what} | {who} | {len(ts)} | never (checked 30 s) | | |")
            continue
        print(f"| {what} | {who} | {len(ts)} | {median(done):.2f} | {min(done):.2f} | {max(done):.2f} |")
    print()
    print("| nodes | agent CPU (% of one core, 60 s at rest) | RSS MiB | peak RSS MiB |")
    print("|---|---|---|---|")
    for shards in (3, 30):
        r = at_rest(shards)
        print(f"| {r['nodes']} | {r['cpu_percent']:.2f} | {r['rss_mib']:.1f} | {r['hwm_mib']:.1f} |")


if __name__ == "__main__":
    main()
