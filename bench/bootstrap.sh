#!/usr/bin/env bash
# Bootstrap benchmark: nothing -> Redis Cluster of 3 masters + 3 replicas, serving.
#
# Measures in one run, ROUNDS rounds each (default 3), alternating which method goes first:
#   redisctl  `redisctl apply FILE --yes` on a fresh state directory (release build), topology
#             3 shards x 1 replica on 6 free loopback ports, AOF on (everysec), node_timeout 5000
#   manual    the seeds' way: six minimal redis.conf files (port, cluster-enabled, nodes.conf,
#             cluster-node-timeout 5000, appendonly yes, own dir, daemonize yes + pidfile +
#             logfile), six `redis-server`s, `redis-cli --cluster create ... --cluster-replicas 1
#             --cluster-yes`
# Each is timed with CLOCK_MONOTONIC from the first action until the condition "every node:
# cluster_state:ok, cluster_slots_ok:16384, knows all 6 nodes; 3 replicas, each with
# master_link_status:up" holds, as seen by the independent checker bench/converged.py (redis-py,
# polls every 20 ms): time = (command start -> command returned) + the checker's wait when the
# condition did not yet hold when the command returned.
# Also times a no-op `redisctl apply --yes` (second apply on the running cluster) and
# `redisctl plan`, NOOP_RUNS times each (default 5), and prints medians.
#
# usage: bench/bootstrap.sh            (any directory; loopback 127.0.0.1 only)
#   env: ROUNDS=3  NOOP_RUNS=5  BUILD=1 (0: do not run `cargo build --release`)
#        REDISCTL=path/to/redisctl (default: target/release/redisctl of this repository)
#        KEEP=1 keeps the scratch directory (logs) instead of deleting it
#        MANUAL_EXTRA_CONF='repl-diskless-sync-delay 0' appends lines to the manual redis.conf
#        files (default: nothing; the comparison in docs/benchmarks.md uses the minimal files)
# Every process it starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
NOOP_RUNS=${NOOP_RUNS:-5}
HOST=127.0.0.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${REDISCTL:-$ROOT/target/release/redisctl}
CHECK=$ROOT/bench/converged.py
NODE_TIMEOUT=5000

log() { printf '%s\n' "$*" >&2; }
die() {
    log "bootstrap.sh: $*"
    exit 1
}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $NOOP_RUNS =~ ^[1-9][0-9]*$ ]] || die "NOOP_RUNS must be a positive integer"
for cmd in redis-server redis-cli python3 ss jq; do
    command -v "$cmd" >/dev/null || die "$cmd not found"
done
python3 -c 'import redis' 2>/dev/null || die "python3 module redis (redis-py) not found"

if [[ ${BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
[[ -x $BIN ]] || die "$BIN not found (cargo build --release)"

# ---------------------------------------------------------------------------------------------
# state for cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/redisctl-bench.XXXXXX")
RC_TOPO="" RC_STATE=""    # redisctl deployment that may be up
MANUAL_PORTS=()           # manual deployment that may be up
STARTED_PIDS=()           # every redis-server pid seen as started by this script
CLOCK_PID=""

is_redis_pid() { # pid -> true when it is alive and a redis-server
    local c
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    c=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $c == *redis-server* ]]
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $RC_TOPO ]]; then
        "$BIN" destroy "$RC_TOPO" --yes --state-dir "$RC_STATE" >/dev/null 2>&1 ||
            log "cleanup: redisctl destroy failed"
    fi
    for p in "${MANUAL_PORTS[@]}"; do
        redis-cli -h "$HOST" -p "$p" SHUTDOWN NOSAVE >/dev/null 2>&1
    done
    # last resort: pids recorded at start and pid files under our scratch directory all
    # belong to processes this script started (checked against /proc before signalling)
    local pids=("${STARTED_PIDS[@]}") f pid
    while IFS= read -r -d '' f; do
        pids+=("$(cat "$f" 2>/dev/null)")
    done < <(find "$WORK" -name '*.pid' -print0 2>/dev/null)
    sleep 0.2
    for pid in "${pids[@]}"; do
        if is_redis_pid "$pid"; then
            log "cleanup: killing leftover redis-server pid $pid"
            kill -9 "$pid" 2>/dev/null
        fi
    done
    if [[ -n $CLOCK_PID ]]; then
        kill "$CLOCK_PID" 2>/dev/null
        wait "$CLOCK_PID" 2>/dev/null
    fi
    if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# monotonic clock without a fork per reading: a python coprocess answers each line with
# time.monotonic() (CLOCK_MONOTONIC, the same clock converged.py reports)
coproc CLOCK { exec python3 -u -c '
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the script stops it on exit
for _ in sys.stdin:
    print(f"{time.monotonic():.6f}", flush=True)
'; }
NOW=""
now() { # sets NOW; call in the main shell only
    printf '\n' >&"${CLOCK[1]}"
    IFS= read -r NOW <&"${CLOCK[0]}"
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }

# ---------------------------------------------------------------------------------------------
# ports: 6 client ports in 51000-55499 whose bus ports (+10000, i.e. 61000-65499, above the
# usual ephemeral range) are free too; no socket in any state may use them. Never 7000-7005.
PORTS=()
pick_ports() {
    local used start base i ok p
    used=" $(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un | tr '\n' ' ') "
    start=$((51000 + (RANDOM % 450) * 10))
    for ((i = 0; i < 450; i++)); do
        base=$((51000 + ((start - 51000) / 10 + i) % 450 * 10))
        ok=1
        for ((p = base; p < base + 6; p++)); do
            if [[ $used == *" $p "* || $used == *" $((p + 10000)) "* ]] || ((p >= 7000 && p <= 7005)); then
                ok=0
                break
            fi
        done
        if ((ok)); then
            PORTS=($base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4)) $((base + 5)))
            return 0
        fi
    done
    die "no 6 free ports (with free bus ports) in 51000-55499"
}

wait_ports_closed() { # ports... -> wait until nothing listens on them (or their bus ports)
    local deadline=$((SECONDS + 15)) p busy
    while :; do
        busy=""
        for p in "$@"; do
            if ss -Hltn "( sport = :$p or sport = :$((p + 10000)) )" | grep -q .; then busy=$p; fi
        done
        [[ -z $busy ]] && return 0
        ((SECONDS < deadline)) || die "port $busy still listening after teardown"
        sleep 0.05
    done
}

wait_pids_gone() {
    local deadline=$((SECONDS + 15)) pid
    for pid in "$@"; do
        while is_redis_pid "$pid"; do
            ((SECONDS < deadline)) || die "redis-server pid $pid did not exit"
            sleep 0.05
        done
    done
}

# every node runs with the settings both methods are supposed to have (checked untimed)
verify_settings() {
    local p v
    for p in "$@"; do
        v=$(redis-cli -h "$HOST" -p "$p" CONFIG GET cluster-node-timeout | sed -n 2p)
        [[ $v == "$NODE_TIMEOUT" ]] || die "$HOST:$p: cluster-node-timeout is $v, expected $NODE_TIMEOUT"
        v=$(redis-cli -h "$HOST" -p "$p" CONFIG GET appendonly | sed -n 2p)
        [[ $v == yes ]] || die "$HOST:$p: appendonly is $v"
        v=$(redis-cli -h "$HOST" -p "$p" CONFIG GET appendfsync | sed -n 2p)
        [[ $v == everysec ]] || die "$HOST:$p: appendfsync is $v"
    done
}

# runs the checker; sets WAITED (seconds) and POLLS; fails the benchmark on timeout
WAITED="" POLLS=""
check_converged() { # since_monotonic ports...
    local since=$1 out
    shift
    if ! out=$(python3 "$CHECK" --since "$since" --timeout 60 --interval 0.02 \
        --replicas 3 --known-nodes "$@"); then
        die "not converged: $out"
    fi
    WAITED=$(jq -r .waited_s <<<"$out")
    POLLS=$(jq -r .polls <<<"$out")
}

# ---------------------------------------------------------------------------------------------
RC_TIMES=() RC_APPLY=() RC_WAIT=()
MAN_TIMES=() MAN_START=() MAN_CREATE=() MAN_WAIT=()
NOOP_TIMES=() PLAN_TIMES=()

run_redisctl() { # round
    local round=$1 dir t0 t1 total
    pick_ports
    dir=$WORK/redisctl-$round
    mkdir -p "$dir"
    cat >"$dir/topology.yaml" <<EOF
version: 1
name: bench-$round
hosts:
  - name: local
    address: $HOST
defaults:
  persistence:
    appendonly: true
    appendfsync: everysec
cluster:
  shards: 3
  replicas: 1
  ports: [${PORTS[0]}, ${PORTS[1]}, ${PORTS[2]}, ${PORTS[3]}, ${PORTS[4]}, ${PORTS[5]}]
  node_timeout: ${NODE_TIMEOUT}ms
EOF
    RC_TOPO=$dir/topology.yaml RC_STATE=$dir/state

    now
    t0=$NOW
    if ! "$BIN" apply "$RC_TOPO" --yes --state-dir "$RC_STATE" --output json >"$dir/apply.json" 2>"$dir/apply.err"; then
        cat "$dir/apply.json" "$dir/apply.err" >&2
        die "round $round: redisctl apply failed"
    fi
    now
    t1=$NOW
    local f
    while IFS= read -r -d '' f; do STARTED_PIDS+=("$(cat "$f")"); done < <(find "$RC_STATE" -name '*.pid' -print0)
    check_converged "$t1" "${PORTS[@]}"
    total=$(add "$(sub "$t0" "$t1")" "$WAITED")
    RC_TIMES+=("$total") RC_APPLY+=("$(sub "$t0" "$t1")") RC_WAIT+=("$WAITED")
    log "round $round redisctl: ${total}s (apply $(sub "$t0" "$t1")s, checker waited ${WAITED}s, ${POLLS} poll(s)), ports ${PORTS[0]}-${PORTS[5]}"
    verify_settings "${PORTS[@]}"

    if ((round == 1)); then
        local i out
        for ((i = 1; i <= NOOP_RUNS; i++)); do
            now
            t0=$NOW
            "$BIN" apply "$RC_TOPO" --yes --state-dir "$RC_STATE" --output json >"$dir/noop-$i.json"
            now
            NOOP_TIMES+=("$(sub "$t0" "$NOW")")
            [[ $(jq '.executed | length' "$dir/noop-$i.json") == 0 ]] ||
                die "second apply was not a no-op: $(cat "$dir/noop-$i.json")"
            now
            t0=$NOW
            "$BIN" plan "$RC_TOPO" --state-dir "$RC_STATE" >"$dir/plan-$i.txt"
            now
            PLAN_TIMES+=("$(sub "$t0" "$NOW")")
            grep -q 'Nothing to do' "$dir/plan-$i.txt" || die "plan is not empty: $(cat "$dir/plan-$i.txt")"
        done
        log "no-op apply: ${NOOP_TIMES[*]} s; plan: ${PLAN_TIMES[*]} s"
    fi

    "$BIN" destroy "$RC_TOPO" --yes --state-dir "$RC_STATE" --output json >"$dir/destroy.json"
    RC_TOPO="" RC_STATE=""
    wait_pids_gone "${STARTED_PIDS[@]}"
    wait_ports_closed "${PORTS[@]}"
    rm -rf "$dir"
}

run_manual() { # round
    local round=$1 dir t0 t1 t2 p nd pids=() total
    pick_ports
    dir=$WORK/manual-$round
    mkdir -p "$dir"
    MANUAL_PORTS=("${PORTS[@]}")

    now
    t0=$NOW
    for p in "${PORTS[@]}"; do
        nd=$dir/$p
        mkdir -p "$nd"
        cat >"$nd/redis.conf" <<EOF
bind $HOST
port $p
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $NODE_TIMEOUT
appendonly yes
dir $nd
daemonize yes
pidfile $nd/redis.pid
logfile $nd/redis.log
EOF
        if [[ -n ${MANUAL_EXTRA_CONF:-} ]]; then printf '%s\n' "$MANUAL_EXTRA_CONF" >>"$nd/redis.conf"; fi
        redis-server "$nd/redis.conf"
    done
    # daemonize returns before the server listens: wait until each answers, as one would
    # before `--cluster create` (which otherwise fails with "Could not connect")
    for p in "${PORTS[@]}"; do
        until [[ $(redis-cli -h "$HOST" -p "$p" PING 2>/dev/null) == PONG ]]; do sleep 0.01; done
    done
    now
    t1=$NOW
    local addrs=()
    for p in "${PORTS[@]}"; do addrs+=("$HOST:$p"); done
    if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1; then
        cat "$dir/create.log" >&2
        die "round $round: redis-cli --cluster create failed"
    fi
    now
    t2=$NOW
    for p in "${PORTS[@]}"; do pids+=("$(cat "$dir/$p/redis.pid")"); done
    STARTED_PIDS+=("${pids[@]}")
    check_converged "$t2" "${PORTS[@]}"
    total=$(add "$(sub "$t0" "$t2")" "$WAITED")
    MAN_TIMES+=("$total") MAN_START+=("$(sub "$t0" "$t1")") MAN_CREATE+=("$(sub "$t1" "$t2")") MAN_WAIT+=("$WAITED")
    log "round $round manual:   ${total}s (servers up $(sub "$t0" "$t1")s, --cluster create $(sub "$t1" "$t2")s, checker waited ${WAITED}s, ${POLLS} poll(s)), ports ${PORTS[0]}-${PORTS[5]}"
    verify_settings "${PORTS[@]}"

    for p in "${PORTS[@]}"; do
        redis-cli -h "$HOST" -p "$p" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    done
    wait_pids_gone "${pids[@]}"
    MANUAL_PORTS=()
    wait_ports_closed "${PORTS[@]}"
    rm -rf "$dir"
}

log "redisctl: $BIN ($("$BIN" --version 2>/dev/null || echo '?'))"
log "$(redis-server --version)"
log "nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS round(s)"
if [[ -n ${MANUAL_EXTRA_CONF:-} ]]; then log "manual redis.conf extra lines: $MANUAL_EXTRA_CONF"; fi
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        run_redisctl "$r"
        run_manual "$r"
    else
        run_manual "$r"
        run_redisctl "$r"
    fi
done

python3 - "$ROUNDS" \
    "${RC_TIMES[*]}" "${RC_APPLY[*]}" "${RC_WAIT[*]}" \
    "${MAN_TIMES[*]}" "${MAN_START[*]}" "${MAN_CREATE[*]}" "${MAN_WAIT[*]}" \
    "${NOOP_TIMES[*]}" "${PLAN_TIMES[*]}" <<'EOF'
import statistics as st, sys
rounds = int(sys.argv[1])
rc, rc_apply, rc_wait, man, man_start, man_create, man_wait, noop, plan = (
    [float(x) for x in a.split()] for a in sys.argv[2:])
med = st.median
def row(name, xs):
    return f"| {name} | {len(xs)} | {med(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |"
ratio = med(man) / med(rc)
print()
print("| method | rounds | median s | min s | max s |")
print("|---|---|---|---|---|")
print(row("`redisctl apply --yes`", rc))
print(row("manual: 6 × `redis-server` + `redis-cli --cluster create --cluster-replicas 1 --cluster-yes`", man))
print()
print(f"Speed-up (manual median / redisctl median): **{ratio:.2f}×** (goal ≥ 3×: {'met' if ratio >= 3 else 'NOT met'})")
print(f"No-op `redisctl apply --yes` on the running cluster: median **{med(noop):.3f} s** over {len(noop)} runs "
      f"(min {min(noop):.3f}, max {max(noop):.3f}; goal < 0.2 s: {'met' if med(noop) < 0.2 else 'NOT met'})")
print(f"`redisctl plan` on the running cluster: median **{med(plan):.3f} s** over {len(plan)} runs "
      f"(min {min(plan):.3f}, max {max(plan):.3f})")
print()
print("Breakdown (medians): redisctl: apply %.2f s + checker wait %.2f s; manual: servers up %.2f s, "
      "`--cluster create` %.2f s, then waiting for the condition %.2f s" % (
          med(rc_apply), med(rc_wait), med(man_start), med(man_create), med(man_wait)))
print("Per round (s): redisctl " + ", ".join(f"{x:.2f}" for x in rc) +
      "; manual " + ", ".join(f"{x:.2f}" for x in man))
EOF
