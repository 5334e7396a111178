"""docker-py exec: Container.exec_run (exit code, output, demux, env/user/workdir, stream,
tty) and the low-level exec_create/exec_start/exec_inspect. docker-py's exec body carries a
"Container" key (as every docker-py since 1.x does), which dockerd ignores.

The commands sleep 0.2 s before writing: docker-py reads the 101 answer through a buffered
reader and then reads the raw socket, so output that arrives together with the headers is
lost (see exec_fast.py); dockerd's slow exec start hides that race, skiff's fast one does
not."""

import time

from common import api, check, client, eq, missing_keys

c = client()
a = api()
ct = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="pyexec")

r = ct.exec_run(["sh", "-c", "sleep 0.2; echo out; echo err >&2; exit 7"])
eq(r.exit_code, 7, "exec_run exit code")
check(b"out\n" in r.output and b"err\n" in r.output, f"exec_run output {r.output!r}")
r = ct.exec_run(["sh", "-c", "sleep 0.2; echo out; echo err >&2"], demux=True)
eq(r.exit_code, 0, "exec_run demux exit code")
eq(r.output, (b"out\n", b"err\n"), "exec_run demux output")
r = ct.exec_run("sh -c 'sleep 0.2; echo $X $(id -u) $(pwd)'", environment={"X": "y"}, user="1000",
                workdir="/tmp")
eq(r.output, b"y 1000 /tmp\n", "exec_run env/user/workdir")
chunks = list(ct.exec_run(["sh", "-c", "sleep 0.2; echo 1; echo 2"], stream=True).output)
eq(b"".join(chunks), b"1\n2\n", "exec_run stream")
r = ct.exec_run("sh -c 'sleep 0.2; tty'", tty=True)
check(r.output.startswith(b"/dev/pts/"), f"exec_run tty: {r.output!r}")
# dockerd answers 101, writes the start error into the stream and records exit code 127.
r = ct.exec_run(["/no/such/binary"])
eq(r.exit_code, 127, "exec of a missing binary")
check(b"no such file or directory" in r.output, f"exec of a missing binary: {r.output!r}")

e = a.exec_create(ct.id, ["sh", "-c", "sleep 0.2; echo low; exit 2"])
missing_keys(e, ["Id"], "exec_create")
eq(a.exec_start(e["Id"]), b"low\n", "exec_start output")
ei = a.exec_inspect(e["Id"])
missing_keys(ei, ["CanRemove", "DetachKeys", "ID", "Running", "ExitCode", "ProcessConfig",
                  "OpenStdin", "OpenStderr", "OpenStdout", "ContainerID", "Pid"],
             "exec_inspect")
eq(ei["ExitCode"], 2, "exec exit code")
eq(ei["Running"], False, "exec running")
eq(ei["ContainerID"], ct.id, "exec ContainerID")
eq(ei["ProcessConfig"]["entrypoint"], "sh", "ProcessConfig.entrypoint")
# Detached exec: returns at once, the process runs on.
e = a.exec_create(ct.id, ["sh", "-c", "sleep 1; touch /tmp/detached"])
out = a.exec_start(e["Id"], detach=True)
check(not out, f"detached exec_start: {out!r}")
r = None
deadline = time.time() + 20
while time.time() < deadline:
    r = ct.exec_run(["test", "-f", "/tmp/detached"])
    if r.exit_code == 0:
        break
    time.sleep(0.1)
eq(r.exit_code, 0, "detached exec ran")
ct.remove(force=True)
print("ok")
