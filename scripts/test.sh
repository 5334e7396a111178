#!/usr/bin/env bash
# Every test: formatting, lints, unit tests and the root integration tests (real containers,
# real cgroups, real seccomp, real networks). Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The tests run every skiff daemon in a network namespace of their own; the host's firewall
# and links must be as they were. What skiff would make in the host's namespace, if a test
# ever did: its nftables table and its default bridge.
had_table=$(nft list table ip skiff >/dev/null 2>&1 && echo yes || echo no)
had_bridge=$(ip link show skiff0 >/dev/null 2>&1 && echo yes || echo no)
leftovers() {
  if [ "$had_table" = no ] && nft list table ip skiff >/dev/null 2>&1; then
    echo "WARNING: a test left nftables table 'ip skiff' in the host namespace; removing it:" >&2
    nft list table ip skiff >&2 || true
    nft delete table ip skiff || true
  fi
  if [ "$had_bridge" = no ] && ip link show skiff0 >/dev/null 2>&1; then
    echo "WARNING: a test left the bridge skiff0 in the host namespace; removing it" >&2
    ip link del skiff0 || true
  fi
}
trap leftovers EXIT
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace 2>&1 | tee /tmp/skiff-test.log
