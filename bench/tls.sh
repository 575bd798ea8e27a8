#!/usr/bin/env bash
# TLS throughput cost: redis-benchmark against one redis-server that serves a plain port and
# a TLS port at once (same process, same data, same run), alternating plain and TLS rounds.
#
# Workloads (redis-benchmark, 50 clients):
#   SET/GET    -t set,get -n N, keep-alive connections (the steady state of a pooled client)
#   SET/GET P16 the same with 16 pipelined requests per round trip
#   PING new connection per request: -t ping -n M -k 0 (TCP connect, plus the TLS handshake
#              on the TLS port; what a client that does not pool pays)
# TLS: TLS 1.3 (OpenSSL in redis-server and redis-benchmark), RSA-2048 certificates made here
# by openssl, tls-auth-clients yes (the client presents a certificate), as redisctl renders.
#
# usage: bench/tls.sh        env: ROUNDS=3  N=100000  M=5000  KEEP=1 (keep the scratch dir)
# Prints progress on stderr and a Markdown table of medians (requests/s) on stdout. The
# server it starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
N=${N:-100000}
M=${M:-5000}
log() { printf '%s\n' "$*" >&2; }
for c in redis-server redis-benchmark redis-cli openssl python3; do
    command -v "$c" >/dev/null || { log "tls.sh: $c is required"; exit 1; }
done

DIR=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && log "kept $DIR" || rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cd "$DIR"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=bench-ca 2>/dev/null
for n in server client; do
    openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' > $n.ext
    openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 2 \
        -extfile $n.ext 2>/dev/null
    chmod 600 $n.key
done
PLAIN=$(free_port)
TLSP=$(free_port)
redis-server --port "$PLAIN" --tls-port "$TLSP" --bind 127.0.0.1 --save '' --appendonly no \
    --tls-cert-file server.crt --tls-key-file server.key --tls-ca-cert-file ca.crt \
    --tls-auth-clients yes --dir "$DIR" --logfile "$DIR/redis.log" &
PID=$!
for _ in $(seq 100); do redis-cli -p "$PLAIN" ping >/dev/null 2>&1 && break; sleep 0.1; done
TLSARGS=(--tls --cacert ca.crt --cert client.crt --key client.key)
redis-cli "${TLSARGS[@]}" -p "$TLSP" ping >/dev/null || { log "TLS port does not answer"; exit 1; }

# One redis-benchmark run; prints "TEST rps" lines from its CSV.
bench() { # port tlsflag args...
    local port=$1 tls=$2
    shift 2
    local extra=()
    [ "$tls" = 1 ] && extra=("${TLSARGS[@]}")
    redis-benchmark -h 127.0.0.1 -p "$port" "${extra[@]}" -c 50 -q --csv "$@" 2>/dev/null |
        tr -d '"' | awk -F, 'NR>1 {print $1, $2}'
}

RES=$DIR/results.txt
: > "$RES"
for r in $(seq "$ROUNDS"); do
    order="0 1"
    [ $((r % 2)) = 0 ] && order="1 0"
    for tls in $order; do
        port=$PLAIN
        name=plain
        [ "$tls" = 1 ] && port=$TLSP && name=tls
        log "round $r: $name"
        bench "$port" "$tls" -t set,get -n "$N" | sed "s/^/$name P1 /" >> "$RES"
        bench "$port" "$tls" -t set,get -n "$N" -P 16 | sed "s/^/$name P16 /" >> "$RES"
        bench "$port" "$tls" -t ping -n "$M" -k 0 | sed "s/^/$name NEWCONN /" >> "$RES"
    done
done

log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RES" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, wl, test, rps = line.split()
    rows.setdefault((wl, test), {}).setdefault(mode, []).append(float(rps))
print(f"| workload | plain req/s | TLS req/s | TLS / plain | rounds |")
print("|---|---|---|---|---|")
names = {"P1": "keep-alive", "P16": "keep-alive, pipeline 16", "NEWCONN": "new connection per request"}
for (wl, test), v in sorted(rows.items(), key=lambda kv: (list(names).index(kv[0][0]), kv[0][1])):
    p, t = statistics.median(v.get("plain", [0])), statistics.median(v.get("tls", [0]))
    print(f"| {test} {names[wl]} | {p:,.0f} | {t:,.0f} | {t / p:.2f} | {len(v.get('tls', []))} |")
PY
