#!/usr/bin/env bash
# Build the .deb and .rpm into target/packages (cargo-deb and cargo-generate-rpm; scripts/deps.sh
# --tests installs them). Both carry the same payload; tests/systemd_e2e.rs checks that.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p target/packages
# rpm does not compress man pages (cargo-deb does): the .rpm takes these (Cargo.toml).
man_gz="${CARGO_TARGET_DIR:-target}/release/man"
mkdir -p "$man_gz"
for page in man/*.1 man/*.5; do
  gzip -9n -c "$page" > "$man_gz/$(basename "$page").gz"
done
cargo deb --no-build -o target/packages
cargo generate-rpm -o target/packages
ls -l target/packages
