#!/usr/bin/env bash
# The main job: build skiff, make a small busybox image locally (from Debian's busybox-static,
# nothing downloaded), start the daemon, and run containers from it — with skiff's CLI and with
# the real docker CLI. Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p skiff
skiff=target/release/skiff
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
data="$work/data"
sock="$work/skiff.sock"
daemon_pid=
# The daemon gets a network namespace of its own: its bridge, veths and nftables rules live
# there, and the host's network and firewall stay as they are.
netns="skiff-demo-$$"
ip netns add "$netns"
ip -n "$netns" link set lo up
cleanup() {
  if [ -n "$daemon_pid" ]; then
    "$skiff" -H "unix://$sock" rm -f demo-web demo-srv >/dev/null 2>&1 || true
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  umount -l "$work/exec/netns" 2>/dev/null || true
  umount -l "$work/exec/netns-pool" 2>/dev/null || true
  ip netns del "$netns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/make-busybox-bundle.sh "$work/bundle" >/dev/null
# An image: the busybox rootfs imported as a single-layer image.
tar -C "$work/bundle/rootfs" -c . | "$skiff" --data-root "$data" import --change 'CMD ["sh"]' - demo/busybox:latest
"$skiff" --data-root "$data" images
# The daemon on its own socket (the Docker Engine API; containers outlive it).
nsenter --net="/run/netns/$netns" "$skiff" --data-root "$data" daemon -H "unix://$sock" --exec-root "$work/exec" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
# A container from it: Docker's defaults (capabilities, seccomp profile, namespaces, cgroups).
"$skiff" -H "unix://$sock" run --rm --hostname skiff-demo demo/busybox sh -c \
  'echo "hello from a skiff container: pid $$, hostname $(hostname), user $(id -un)"; grep -E "^(CapEff|Seccomp):" /proc/self/status'
# A detached one, driven by the real docker CLI: logs, exec, ps, stop.
DOCKER_HOST="unix://$sock" docker run -d --name demo-web demo/busybox sh -c 'while true; do echo tick; sleep 1; done' >/dev/null
sleep 1.2
DOCKER_HOST="unix://$sock" docker exec demo-web sh -c 'echo "exec into $(hostname)"'
DOCKER_HOST="unix://$sock" docker logs demo-web
DOCKER_HOST="unix://$sock" docker ps
DOCKER_HOST="unix://$sock" docker rm -f demo-web >/dev/null
# Two containers on a user-defined network: one serves, the other reaches it by name; the
# server's port is published on 127.0.0.1 (of the daemon's namespace).
DOCKER_HOST="unix://$sock" docker network create demo-net >/dev/null
DOCKER_HOST="unix://$sock" docker run -d --name demo-srv --network demo-net -p 127.0.0.1:8080:80 demo/busybox \
  sh -c 'mkdir /w && echo "served by demo-srv" > /w/index.html && exec httpd -f -p 80 -h /w' >/dev/null
sleep 0.5
"$skiff" -H "unix://$sock" run --rm --network demo-net demo/busybox wget -qO- http://demo-srv/
nsenter --net="/run/netns/$netns" busybox wget -qO- http://127.0.0.1:8080/
"$skiff" -H "unix://$sock" rm -f demo-srv >/dev/null
DOCKER_HOST="unix://$sock" docker network rm demo-net >/dev/null
# The same bundle through the runc-compatible runtime CLI.
sed -i 's/"terminal": true/"terminal": false/' "$work/bundle/config.json"
"$skiff" runtime --root /run/skiff/demo run --bundle "$work/bundle" "demo-$$" <<< 'echo "and from skiff runtime run: pid $$"'
