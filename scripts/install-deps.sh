#!/usr/bin/env bash
# Install what building and testing skiff needs on a fresh Debian machine (as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
pkgs=(pkg-config libseccomp-dev busybox-static runc iproute2 procps docker.io docker-registry skopeo umoci)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
