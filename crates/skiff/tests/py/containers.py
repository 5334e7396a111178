"""docker-py high-level containers API: run (attached and detached), logs, stop,
start, restart, wait, remove, list, reload, rename, kill, top, stats, put/get_archive."""

import io
import tarfile

from common import check, client, eq, fail, until

import docker

c = client()
eq(c.ping(), True, "ping")
v = c.version()
check(v.get("ApiVersion") == "1.44", f"version: {v}")

# Attached run: the output as bytes; stderr too with stderr=True.
out = c.containers.run("busybox", ["echo", "hello"], remove=True)
eq(out, b"hello\n", "containers.run output")
out = c.containers.run("busybox", ["sh", "-c", "echo o; echo e >&2"], remove=True,
                       stdout=True, stderr=True)
check(b"o\n" in out and b"e\n" in out, f"stdout+stderr: {out!r}")
# A failing command raises ContainerError with the exit status and stderr.
try:
    c.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    fail("exit 3 did not raise ContainerError")
except docker.errors.ContainerError as e:
    eq(e.exit_status, 3, "ContainerError.exit_status")
    check(b"bad" in (e.stderr or b""), f"ContainerError.stderr: {e.stderr!r}")
# A missing image is ImageNotFound (docker-py would pull; 'nosuch' is not local).
try:
    c.containers.create("nosuch-image-xyz:latest")
    fail("create of a missing image did not raise")
except docker.errors.ImageNotFound:
    pass

# Detached.
ct = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 1000"], detach=True,
                      name="pyc", labels={"k": "v"}, environment={"A": "1"})
check(isinstance(ct, docker.models.containers.Container), f"detach returns {ct!r}")
eq(ct.name, "pyc", "name")
until("running", lambda: (ct.reload(), ct.status)[1] == "running")
eq(ct.labels, {"k": "v"}, "labels")
check("A=1" in ct.attrs["Config"]["Env"], f"env: {ct.attrs['Config']['Env']}")
until("log line", lambda: ct.logs() == b"started\n")
eq(ct.logs(stdout=False), b"", "logs(stdout=False)")
logs = ct.logs(timestamps=True).decode()
check(logs.startswith("20") and logs.endswith(" started\n"), f"timestamps: {logs!r}")

# list / get / filters.
eq([x.name for x in c.containers.list()], ["pyc"], "containers.list()")
eq([x.id for x in c.containers.list(filters={"label": "k=v"})], [ct.id], "label filter")
eq(c.containers.list(filters={"label": "k=w"}), [], "label filter, no match")
eq(c.containers.get("pyc").id, ct.id, "containers.get by name")
eq(c.containers.get(ct.id[:12]).id, ct.id, "containers.get by short id")
try:
    c.containers.get("no-such-container")
    fail("get of a missing container did not raise NotFound")
except docker.errors.NotFound:
    pass

# top and stats.
top = ct.top()
check("Titles" in top and "Processes" in top, f"top: {top}")
check(any("sleep 1000" in " ".join(p) for p in top["Processes"]), f"top: {top}")
st = ct.stats(stream=False)
check(st.get("memory_stats", {}).get("usage", 0) > 0, f"stats: {st.get('memory_stats')}")

# Archives: put then get.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"via put_archive\n"
    info = tarfile.TarInfo("put.txt")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
eq(ct.put_archive("/tmp", buf.getvalue()), True, "put_archive")
bits, stat = ct.get_archive("/tmp/put.txt")
eq(stat["name"], "put.txt", "get_archive stat name")
eq(stat["size"], 16, "get_archive stat size")
raw = b"".join(bits)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    eq(t.extractfile("put.txt").read(), b"via put_archive\n", "get_archive content")

# stop / wait / start / restart / rename / kill / remove.
ct.stop(timeout=1)
ct.reload()
eq(ct.status, "exited", "status after stop")
eq(ct.attrs["State"]["ExitCode"], 137, "exit code after stop (sleep ignores TERM)")
eq(ct.wait(timeout=10)["StatusCode"], 137, "wait of a stopped container")
ct.start()
ct.reload()
eq(ct.status, "running", "status after start")
ct.restart(timeout=0)
ct.reload()
eq(ct.status, "running", "status after restart")
ct.rename("pyc2")
ct.reload()
eq(ct.name, "pyc2", "rename")
ct.kill(signal="SIGKILL")
w = ct.wait(timeout=10)
eq(w["StatusCode"], 137, "wait after kill")
try:
    ct.wait(timeout=10, condition="bogus")
    fail("wait with a bad condition did not raise")
except docker.errors.APIError as e:
    eq(e.status_code, 400, "bad wait condition status")
ct.remove()
eq(c.containers.list(all=True), [], "after remove")

# wait on a running container returns when it exits.
ct = c.containers.run("busybox", ["sh", "-c", "sleep 1; exit 5"], detach=True)
eq(ct.wait(timeout=20)["StatusCode"], 5, "wait for exit 5")
ct.remove(force=True)
# auto_remove + wait(condition="removed").
ct = c.containers.run("busybox", ["true"], detach=True, auto_remove=True)
ct.wait(condition="removed", timeout=20)
eq(c.containers.list(all=True), [], "auto_remove")
# Prune.
for i in range(2):
    c.containers.run("busybox", ["true"], name=f"prune{i}")
p = c.containers.prune()
eq(len(p.get("ContainersDeleted") or []), 2, f"prune: {p}")
print("ok")
