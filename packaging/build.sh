#!/usr/bin/env bash
# Build the .deb and .rpm into target/packages (cargo-deb and cargo-generate-rpm; scripts/deps.sh
# --tests installs them). Both carry the same payload; tests/systemd_e2e.rs checks that.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p target/packages
cargo deb --no-build -o target/packages
cargo generate-rpm -o target/packages
ls -l target/packages
