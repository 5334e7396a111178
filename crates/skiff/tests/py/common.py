"""Shared helpers for the docker-py scripts run by crates/skiff/tests/docker_py.rs.

Each script takes the daemon's address (unix:///path) as argv[1] and exits non-zero with a
clear message on the first mismatch."""

import sys
import time

try:
    import docker  # noqa: F401
except ImportError as e:  # pragma: no cover - the Rust test reports this
    print(f"import docker failed ({e}): install python3-docker (docker-py >= 7)", file=sys.stderr)
    sys.exit(3)


def client():
    if len(sys.argv) < 2:
        fail("usage: script.py unix:///path/to/socket")
    return docker.DockerClient(base_url=sys.argv[1], timeout=60)


def api():
    return docker.APIClient(base_url=sys.argv[1], timeout=60)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def eq(got, want, what):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def until(what, pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def missing_keys(obj, keys, what):
    miss = [k for k in keys if k not in obj]
    if miss:
        fail(f"{what}: missing keys {miss} in {sorted(obj)}")
