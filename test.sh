#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and end-to-end tests against real
# redis-server processes (judged by redis-cli --cluster check and redis-py).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --tests
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# cargo-nextest (installed by scripts/deps.sh --tests) runs the tests of all binaries side by
# side (.config/nextest.toml); plain cargo test, one binary after the other, is the fallback.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-targets
else
  cargo test --all-targets
fi
