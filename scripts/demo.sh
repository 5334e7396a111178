#!/usr/bin/env bash
# The main job: build skiff, make a small busybox image (an OCI bundle) locally, run a
# container from it. Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p skiff
bundle=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
scripts/make-busybox-bundle.sh "$bundle" >/dev/null
# Non-interactive: no terminal, a command that shows the container from inside.
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["hostname"] = "skiff-demo"
c["process"]["args"] = ["sh", "-c",
    "echo \"hello from a skiff container: pid $$, hostname $(hostname), user $(id -un)\"; "
    "grep CapEff /proc/self/status; cat /proc/self/cgroup | head -3"]
json.dump(c, open(p, "w"), indent=2)
PY
exec target/release/skiff runtime --root /run/skiff/demo run --bundle "$bundle" "demo-$$"
