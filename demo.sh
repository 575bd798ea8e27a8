#!/usr/bin/env bash
# Bring up the local demo cluster (3 masters + 3 replicas on 127.0.0.1:7000-7005) with the
# built-in process supervisor, then print its status. State lives in ./.redisctl-demo.
# Tear it down with:  target/release/redisctl destroy topologies/local-cluster.yaml --state-dir .redisctl-demo --yes
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
cargo build --release --quiet
bin=target/release/redisctl
"$bin" apply topologies/local-cluster.yaml --state-dir .redisctl-demo --yes
"$bin" status topologies/local-cluster.yaml --state-dir .redisctl-demo
