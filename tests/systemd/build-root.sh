#!/usr/bin/env bash
# Build the cached Debian bookworm root that tests/systemd_e2e.rs boots with systemd-nspawn:
# minbase + systemd + Debian's redis-server/redis-sentinel/redis-tools. Built in a temporary
# directory and renamed into place, so an interrupted build is never mistaken for a cache.
#
#   tests/systemd/build-root.sh target/nspawn-root
set -euo pipefail
root=${1:?usage: build-root.sh ROOT}
[ -x "$root/usr/bin/redis-server" ] && [ -x "$root/lib/systemd/systemd" ] && exit 0
tmp="$root.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$root" "$root".tmp.*
# The mirror the host's apt already uses (deb.debian.org unless configured otherwise).
mirror=$(grep -rhE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?(\s|$)' | tr -d ' ' | grep -v -- '-security' | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,iproute2,procps,redis-server,redis-sentinel,redis-tools \
  bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -30 "$tmp.log" >&2; rm -f "$tmp.log"; exit 1; }
rm -f "$tmp.log"
# A container has no console login to wait for; keep the boot quick and quiet.
chroot "$tmp" systemctl mask getty@tty1.service console-getty.service \
  systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
echo redisctl-e2e >"$tmp/etc/hostname"
rm -rf "$tmp"/var/cache/apt/archives/*.deb
mv "$tmp" "$root"
trap - EXIT
