#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and end-to-end tests against real
# redis-server processes (judged by redis-cli --cluster check and redis-py).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --tests
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
