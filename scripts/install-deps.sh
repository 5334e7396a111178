#!/usr/bin/env bash
# Install what building and testing skiff needs on a fresh Debian machine (as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
# tini: `--init`; util-linux: `script` (tty tests); python3-yaml: spec shape checks.
# nftables, iptables: networking (nft first, iptables-restore as the fallback backend);
# docker-compose (v1): a two-service application is brought up and down in the tests.
pkgs=(pkg-config libseccomp-dev busybox-static runc iproute2 procps docker.io docker-registry skopeo umoci tini util-linux python3-yaml nftables iptables docker-compose)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# docker-py drives the API in the tests: Debian's package unless a pip one is there.
python3 -c 'import docker' 2>/dev/null || missing+=(python3-docker)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
