#!/usr/bin/env bash
# Every test: formatting, lints, unit tests and the root integration tests (real containers,
# real cgroups, real seccomp). Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace 2>&1 | tee /tmp/skiff-test.log
