"""Attach through the raw socket API (docker-py's attach_socket), and the streaming attach."""

import socket
import time

from common import api, check, client, eq, fail
from docker.utils.socket import next_frame_header, read_exactly

c = client()
a = api()

# stdin → cat → stdout over a hijacked connection, multiplexed (no tty).
ct = c.containers.create("busybox", ["cat"], stdin_open=True, name="att")
sock = a.attach_socket(ct.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
ct.start()
raw = sock._sock if hasattr(sock, "_sock") else sock
raw.settimeout(20)
raw.sendall(b"hello through attach\n")
stream, size = next_frame_header(sock)
eq(stream, 1, "frame stream (stdout)")
data = read_exactly(sock, size)
eq(data, b"hello through attach\n", "echoed data")
# Closing our write side ends cat's stdin: the container exits 0.
raw.shutdown(socket.SHUT_WR)
eq(ct.wait(timeout=20)["StatusCode"], 0, "cat exit after stdin closed")
sock.close()
ct.remove()

# With a tty: raw bytes, no frame headers.
ct = c.containers.create("busybox", ["sh", "-c", "read x; echo got-$x"], stdin_open=True,
                         tty=True, name="atty")
sock = a.attach_socket(ct.id, params={"stdin": 1, "stdout": 1, "stream": 1})
ct.start()
raw = sock._sock if hasattr(sock, "_sock") else sock
raw.settimeout(20)
raw.sendall(b"abc\n")
buf = b""
deadline = time.time() + 20
while b"got-abc" not in buf and time.time() < deadline:
    try:
        chunk = raw.recv(4096)
    except socket.timeout:
        break
    if not chunk:
        break
    buf += chunk
check(b"got-abc" in buf, f"tty attach output: {buf!r}")
check(not buf.startswith(b"\x01\x00\x00\x00"), f"tty output is framed: {buf!r}")
eq(ct.wait(timeout=20)["StatusCode"], 0, "tty container exit")
sock.close()
ct.remove()

# Attach to a missing container is a 404.
try:
    a.attach_socket("nope-nope", params={"stdout": 1, "stream": 1})
    fail("attach to a missing container did not raise")
except Exception as e:  # docker.errors.NotFound
    check("404" in str(e) or "No such container" in str(e), f"attach error: {e}")
print("ok")
