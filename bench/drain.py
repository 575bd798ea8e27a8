#!/usr/bin/env python3
"""Drain benchmark on three hosts as network namespaces: `redisctl drain HOST` versus the hand
procedure, side by side in one run.

Hosts h1, h2, h3 are network namespaces on a private bridge, each with its own address; the
same names and pid-derived /29 subnet as tests/multihost.rs (rh<pid>n<k>-<i>, bridge
rhb<pid>n<k>), and the same sweep of leftovers from runs that died. redisctl (release build)
runs inside each namespace with its own state directory, as on separate machines; this
script, the writer and the hand procedure run in the root namespace and reach every host
through the bridge. Two layouts, each a password-protected 3-shard x 1-replica cluster
(AOF everysec, node_timeout 2000ms) with every master's replica on another host:

  one master    generated placement: h2 holds the master of shard 2 and a replica of shard 1
  two masters   explicit nodes: h2 holds the masters of shards 1 and 2, h3 the third

Each round measures both methods, in alternating order, while a writer thread SETs keys
through redis-py's RedisCluster (default retries, socket_timeout 2 s) and records the time
and outcome of every write:

  redisctl   `ip netns exec <h2> redisctl --host h2 drain FILE h2`: pre-checks, mark,
             CLUSTER FAILOVER of each master on h2 to its replica on another host (shards side
             by side), wait until every node agrees, stop h2's instances. Timed: the command's
             wall time. Then (untimed) `undrain` restores the roles.
  by hand    for each master on h2 in turn: CLUSTER FAILOVER on its replica, then poll
             CLUSTER NODES on every node every 20 ms until all agree that the replica is the
             master with the slots and the old master its replica. Timed: first FAILOVER to
             last agreement. Then (untimed) fail back the same way.

Before every measurement the layout is checked to be the declared one (masters where the
topology puts them, every node agreeing, replicas linked). Columns: drain seconds (median,
min, max), the client error window (from the first failed write to the first successful
write after the last failure, 0 when nothing failed; median), failed writes (total over all
rounds), and the longest single write (median over rounds; a manual failover pauses writes
instead of failing them). The hand procedure stops nothing and does its shards one after
the other, as a person following the seeds' advice would; redisctl also stops h2's instances.
"failovers s" is the part of the drain spent failing over: for redisctl the longest entry
of the drain's JSON `moved[].ms` (its failovers run side by side), by hand the whole time.

usage: bench/drain.py [ROUNDS]      (default 3; root; needs `cargo build --release`)
Prints progress on stderr and a Markdown table on stdout. Everything it starts (namespaces,
bridge, processes in them, temp dir) is removed on exit, also on failure or Ctrl-C.
"""
import atexit
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "redisctl")
PW = "b3nch-dr41n"
HOSTS = ["h1", "h2", "h3"]
NODE_TIMEOUT_MS = 2000
VOTE_GAP = 2 * NODE_TIMEOUT_MS / 1000 + 1


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


# ---------------------------------------------------------------- namespaces

NAME = re.compile(r"^rh(?:b(\d+)n\d+|v(\d+)n\d+h\d+|(\d+)n\d+-\d+)$")


def owner_pid(name):
    m = NAME.match(name)
    return int(next(g for g in m.groups() if g)) if m else None


def ns_pids(ns):
    return [int(p) for p in ip("netns", "pids", ns, check=False).split()]


def kill_ns_processes(ns):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = ns_pids(ns)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def remove_ns(ns):
    kill_ns_processes(ns)
    ip("netns", "del", ns, check=False)


def sweep_stale():
    def dead(name):
        pid = owner_pid(name)
        return pid is not None and not os.path.exists(f"/proc/{pid}")

    for line in ip("netns", "list", check=False).splitlines():
        ns = line.split()[0] if line.split() else ""
        if dead(ns):
            log(f"sweeping stale namespace {ns}")
            remove_ns(ns)
    for line in ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(": ")
        if len(parts) > 1:
            name = parts[1].split("@")[0]
            if dead(name):
                log(f"sweeping stale link {name}")
                ip("link", "del", name, check=False)


class Net:
    """A bridge and three namespaces h1..h3 with one address each."""

    def __init__(self, k=0):
        pid = os.getpid()
        prefix = f"10.{200 + pid % 50}.{pid // 50 % 250}"
        base = k * 8
        self.bridge = f"rhb{pid}n{k}"
        self.ns, self.addrs = [], []
        if f" {prefix}.{base + 6}/" in ip("-o", "addr", "show"):
            raise RuntimeError(f"{prefix}.{base}/29 is already in use")
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{prefix}.{base + 6}/29", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i in (1, 2, 3):
            ns, veth, addr = f"rh{pid}n{k}-{i}", f"rhv{pid}n{k}h{i}", f"{prefix}.{base + i}"
            ip("netns", "add", ns)
            self.ns.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", veth, "master", self.bridge, "up")
            ip("-n", ns, "addr", "add", f"{addr}/29", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            self.addrs.append(addr)

    def kill_all(self):
        for ns in self.ns:
            kill_ns_processes(ns)

    def close(self):
        for ns in self.ns:
            remove_ns(ns)
        ip("link", "del", self.bridge, check=False)


# ---------------------------------------------------------------- deployment

class Deployment:
    def __init__(self, net, tmp, name, cluster_yaml, ports):
        self.net, self.ports = net, ports
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        secret = os.path.join(self.dir, "secret")
        with open(secret, "w") as f:
            f.write(PW + "\n")
        os.chmod(secret, 0o600)
        hosts = "".join(f"  - {{name: {h}, address: {a}}}\n" for h, a in zip(HOSTS, net.addrs))
        self.file = os.path.join(self.dir, "topology.yaml")
        with open(self.file, "w") as f:
            f.write(f"version: 1\nname: {name}\nstate_dir: state\nhosts:\n{hosts}"
                    "auth:\n  password_file: secret\n"
                    "defaults:\n  persistence: {appendonly: true, appendfsync: everysec}\n"
                    f"cluster:\n  node_timeout: {NODE_TIMEOUT_MS}ms\n{cluster_yaml}")
        self.addr_host = dict(zip(net.addrs, HOSTS))

    def redisctl(self, host, *args, tail=()):
        ns = self.net.ns[HOSTS.index(host)]
        cmd = ["ip", "netns", "exec", ns, BIN, "--host", host,
               "--state-dir", os.path.join(self.dir, host), *args, self.file, *tail]
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDISCTL_STATE_DIR", "REDISCTL_HOST")}
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env=env)

    def ok(self, host, *args, tail=()):
        p = self.redisctl(host, *args, tail=tail)
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"on {host}: redisctl {' '.join(args)} {' '.join(tail)} "
                               f"exited {p.returncode}:\n{out}{err}")
        return out

    def apply_everywhere(self):
        procs = [(h, self.redisctl(h, "apply", "--yes")) for h in HOSTS]
        for h, p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"apply on {h} exited {p.returncode}:\n{out}{err}")

    def nodes(self):
        return [(a, p) for a in self.net.addrs for p in self.ports]

    def conn(self, addr, port):
        return redis.Redis(host=addr, port=port, password=PW, socket_timeout=1,
                           socket_connect_timeout=1)

    def cluster_view(self, addr, port):
        """{node address: (is_master, master_address or None, has_slots)} as addr:port sees it."""
        # Two words: redis-py has a parsing callback for "CLUSTER NODES", none for "CLUSTER".
        text = self.conn(addr, port).execute_command("CLUSTER", "NODES").decode()
        ids, rows = {}, []
        for line in text.splitlines():
            f = line.split()
            a = f[1].split("@")[0]
            ids[f[0]] = a
            rows.append((a, "master" in f[2], f[3], len(f) > 8))
        return {a: (m, ids.get(mid), slots) for a, m, mid, slots in rows}

    def view_everywhere(self, nodes):
        views = []
        for a, p in nodes:
            try:
                views.append(self.cluster_view(a, p))
            except (RedisError, OSError):
                return None
        return views

    def masters_of(self, view):
        return sorted(a for a, (m, _, slots) in view.items() if m and slots)

    def wait_stable(self, masters, timeout=60):
        """Every node agrees that exactly `masters` serve slots, each other node replicates
        one of them, and every replica's link is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = self.view_everywhere(self.nodes())
            if views and all(self.masters_of(v) == sorted(masters) for v in views):
                try:
                    links = all(
                        self.conn(a, p).info("replication").get("master_link_status") == "up"
                        for a, p in self.nodes() if f"{a}:{p}" not in masters)
                except (RedisError, OSError):
                    links = False
                if links:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"cluster did not settle with masters {masters}")


# ---------------------------------------------------------------- writer

class Writer:
    """SET through RedisCluster in a loop; every write's (start, end, ok)."""

    def __init__(self, addr, port):
        self.rc = RedisCluster(host=addr, port=port, password=PW, socket_timeout=2)
        self.events, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            t0 = time.monotonic()
            try:
                self.rc.set(f"bench:{i % 10000}", i)
                ok = True
            except (RedisError, AttributeError, KeyError, IndexError, TypeError):
                ok = False
                time.sleep(0.01)
            self.events.append((t0, time.monotonic(), ok))

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        self.rc.close()
        return self.summary()

    def summary(self):
        ev = self.events
        fails = [i for i, e in enumerate(ev) if not e[2]]
        window = 0.0
        if fails:
            after = next((e[0] for e in ev[fails[-1] + 1:] if e[2]), ev[-1][1])
            window = (after - ev[fails[0]][0]) * 1000
        stall = max((e[1] - e[0]) * 1000 for e in ev) if ev else 0.0
        return {"writes": len(ev), "errors": len(fails), "window_ms": window,
                "stall_ms": stall}


# ---------------------------------------------------------------- the two methods

def drain_redisctl(d):
    t0 = time.monotonic()
    out = d.ok("h2", "--output", "json", "drain", tail=("h2",))
    secs = time.monotonic() - t0
    report = json.loads(out)
    assert all(m["from"]["host"] == "h2" for m in report["moved"]), report
    return secs, report


UNDRAIN = {"runs": 0, "failed": []}


def restore_redisctl(d):
    """`undrain` (untimed). Its failback sometimes times out (a CLUSTER FAILOVER sent right
    after the restarted node came back, before the masters' bus links to it were up: the
    masters grant the vote but cannot deliver it, and Redis aborts the manual failover after
    5 s). Count that, and run `undrain` again as an operator would."""
    for attempt in range(3):
        UNDRAIN["runs"] += 1
        p = d.redisctl("h2", "--timeout", "20", "undrain", tail=("h2",))
        out, err = p.communicate()
        if p.returncode == 0:
            return
        last = [l for l in err.splitlines() if l.startswith("error:")]
        UNDRAIN["failed"].append(last[0] if last else f"exit {p.returncode}")
        log(f"undrain failed (exit {p.returncode}): {last}; running it again")
    raise RuntimeError("undrain failed three times")


def failover_by_hand(d, master, others):
    """CLUSTER FAILOVER on master's replica; poll every node until all agree."""
    view = d.cluster_view(*split(master))
    replica = next(a for a, (m, of, _) in view.items() if not m and of == master)
    d.conn(*split(replica)).execute_command("CLUSTER", "FAILOVER")
    while True:
        views = d.view_everywhere(others)
        if views and all(v.get(replica, (False,))[0] and v[replica][2]
                         and v.get(master, (True, None))[1] == replica for v in views):
            return replica
        time.sleep(0.02)


def drain_by_hand(d, h2_masters):
    t0 = time.monotonic()
    moved = [(m, failover_by_hand(d, m, d.nodes())) for m in h2_masters]
    return time.monotonic() - t0, moved


def restore_by_hand(d, moved):
    for master, replica in moved:
        failover_by_hand(d, replica, d.nodes())


def split(addr):
    a, p = addr.rsplit(":", 1)
    return a, int(p)


# ---------------------------------------------------------------- main

def measure(d, label, rounds, results):
    writer_target = (d.net.addrs[0], d.ports[0])
    view = d.cluster_view(*writer_target)
    declared = d.masters_of(view)
    h2 = d.net.addrs[1]
    h2_masters = [m for m in declared if m.startswith(h2 + ":")]
    log(f"{label}: masters {declared}; on h2: {h2_masters}")
    for r in range(rounds):
        order = ["redisctl", "by hand"] if r % 2 == 0 else ["by hand", "redisctl"]
        for method in order:
            d.wait_stable(declared)
            # A master votes about a failover of the same shard at most once per
            # 2 x node_timeout: the previous measurement's restore must not slow this one.
            time.sleep(VOTE_GAP)
            w = Writer(*writer_target)
            time.sleep(1.0)
            if method == "redisctl":
                secs, report = drain_redisctl(d)
                s_fo = max(m["ms"] for m in report["moved"]) / 1000
                extra = f"moved {[(m['from']['port'], m['to']['host'], m['ms']) for m in report['moved']]}"
            else:
                secs, moved = drain_by_hand(d, h2_masters)
                s_fo = secs
                extra = f"moved {moved}"
            time.sleep(1.0)
            s = w.finish()
            # Sanity: no master left on h2 as the others see it.
            for a, p in d.nodes():
                if a == h2 and method == "redisctl":
                    continue
                left = [m for m in d.masters_of(d.cluster_view(a, p)) if m.startswith(h2 + ":")]
                assert not left, f"{method}: {a}:{p} still sees masters on h2: {left}"
            log(f"{label} round {r + 1} {method}: {secs:.3f} s, {s['errors']} errors, "
                f"window {s['window_ms']:.0f} ms, longest write {s['stall_ms']:.0f} ms, "
                f"{s['writes']} writes; {extra}")
            s["failover_s"] = s_fo
            results.setdefault((label, method), []).append((secs, s))
            if method == "redisctl":
                restore_redisctl(d)
            else:
                restore_by_hand(d, moved)
    d.wait_stable(declared)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if os.geteuid() != 0:
        sys.exit("bench/drain.py needs root (network namespaces)")
    for tool in ("ip", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"`{tool}` is not installed")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first")

    state = {"net": None, "tmp": None}

    def cleanup():
        if state["net"]:
            state["net"].close()
            state["net"] = None
        if state["tmp"] and state.get("failed"):
            # Processes are gone; keep the logs and nodes.conf files for diagnosis.
            log(f"failed: logs kept in {state['tmp']}")
        elif state["tmp"]:
            shutil.rmtree(state["tmp"], ignore_errors=True)
            state["tmp"] = None

    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))

    sweep_stale()
    state["tmp"] = tempfile.mkdtemp(prefix="drain-bench-")
    net = state["net"] = Net(0)
    log(f"hosts {dict(zip(HOSTS, net.addrs))} (namespaces {net.ns})")
    results = {}
    layouts = [
        ("one master", "  shards: 3\n  replicas: 1\n  ports: [7000, 7001]\n", [7000, 7001]),
        ("two masters",
         "  nodes:\n"
         "    - {host: h2, port: 7100, shard: 1, role: master}\n"
         "    - {host: h1, port: 7100, shard: 1, role: replica}\n"
         "    - {host: h2, port: 7101, shard: 2, role: master}\n"
         "    - {host: h3, port: 7100, shard: 2, role: replica}\n"
         "    - {host: h3, port: 7101, shard: 3, role: master}\n"
         "    - {host: h1, port: 7101, shard: 3, role: replica}\n", [7100, 7101]),
    ]
    try:
        for i, (label, cluster, ports) in enumerate(layouts):
            d = Deployment(net, state["tmp"], f"drainbench{i}", cluster, ports)
            t0 = time.monotonic()
            d.apply_everywhere()
            log(f"{label}: 3 concurrent applies converged in {time.monotonic() - t0:.1f} s")
            measure(d, label, rounds, results)
            net.kill_all()
    except Exception:
        state["failed"] = True
        raise

    if UNDRAIN["failed"]:
        print(f"\nundrain (untimed restore) failed {len(UNDRAIN['failed'])} of "
              f"{UNDRAIN['runs']} runs; each was finished by running it again:")
        for e in UNDRAIN["failed"]:
            print(f"  {e}")
    load = os.getloadavg()[0]
    print(f"\nrounds: {rounds} per method and layout; load average at the end {load:.2f}\n")
    print("| layout | method | drain s (median) | min | max | failovers s (median) "
          "| error window ms (median) | failed writes (total) | longest write ms (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (label, method), rs in results.items():
        secs = [s for s, _ in rs]
        print(f"| {label} | {method} | {statistics.median(secs):.2f} | {min(secs):.2f} | "
              f"{max(secs):.2f} | {statistics.median(s['failover_s'] for _, s in rs):.2f} | "
              f"{statistics.median(s['window_ms'] for _, s in rs):.0f} | "
              f"{sum(s['errors'] for _, s in rs)} | "
              f"{statistics.median(s['stall_ms'] for _, s in rs):.0f} |")


if __name__ == "__main__":
    main()
