#!/usr/bin/env bash
# The main job: build skiff, make a small busybox image locally (from Debian's busybox-static,
# nothing downloaded), and run a container from it. Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p skiff
skiff=target/release/skiff
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
data="$work/data"
trap 'rm -rf "$work"' EXIT
scripts/make-busybox-bundle.sh "$work/bundle" >/dev/null
# An image: the busybox rootfs imported as a single-layer image.
tar -C "$work/bundle/rootfs" -c . | "$skiff" --data-root "$data" import --change 'CMD ["sh"]' - demo/busybox:latest
"$skiff" --data-root "$data" images
# A container from it: Docker's defaults (capabilities, seccomp profile, namespaces, cgroups).
"$skiff" --data-root "$data" run --rm --hostname skiff-demo demo/busybox sh -c \
  'echo "hello from a skiff container: pid $$, hostname $(hostname), user $(id -un)"; grep -E "^(CapEff|Seccomp):" /proc/self/status'
# The same bundle through the runc-compatible runtime CLI.
sed -i 's/"terminal": true/"terminal": false/' "$work/bundle/config.json"
"$skiff" runtime --root /run/skiff/demo run --bundle "$work/bundle" "demo-$$" <<< 'echo "and from skiff runtime run: pid $$"'
