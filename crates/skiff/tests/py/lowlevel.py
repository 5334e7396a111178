"""docker-py low-level APIClient: create_container with create_host_config(...), start,
inspect_container (shape), logs, wait, exec, remove."""

import os
import sys
import tempfile

from common import api, check, eq, fail, missing_keys

a = api()
hostdir = tempfile.mkdtemp(prefix="skiff-py-", dir="/tmp")
try:
    with open(os.path.join(hostdir, "in"), "w") as f:
        f.write("bound\n")
    hc = a.create_host_config(
        binds={hostdir: {"bind": "/data", "mode": "rw"}},
        mem_limit="64m",
        pids_limit=50,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
        cap_drop=["NET_RAW"],
        ulimits=[{"Name": "nofile", "Soft": 111, "Hard": 222}],
        extra_hosts={"pyhost": "10.1.2.3"},
        dns=["9.9.9.9"],
        tmpfs={"/run": "size=1m"},
        init=True,
        read_only=False,
        shm_size="8m",
        log_config={"Type": "json-file", "Config": {"max-size": "10m"}},
    )
    ct = a.create_container(
        "busybox",
        ["sh", "-c", "cat /data/in; ulimit -n; grep pyhost /etc/hosts; echo w > /data/out; "
                     "sleep 1000"],
        name="low", hostname="lowbox", environment={"E": "1"}, labels={"l": "1"},
        working_dir="/tmp", host_config=hc, stop_signal="SIGKILL",
        healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000,
                     "timeout": 2_000_000_000, "retries": 2, "start_period": 0},
    )
    missing_keys(ct, ["Id", "Warnings"], "create_container response")
    cid = ct["Id"]
    a.start(cid)
    i = a.inspect_container(cid)
    missing_keys(i, ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                     "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount",
                     "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile",
                     "ExecIDs", "HostConfig", "GraphDriver", "Mounts", "Config",
                     "NetworkSettings"], "inspect_container")
    missing_keys(i["State"], ["Status", "Running", "Paused", "Restarting", "OOMKilled",
                              "Dead", "Pid", "ExitCode", "Error", "StartedAt",
                              "FinishedAt"], "State")
    missing_keys(i["Config"], ["Hostname", "Domainname", "User", "AttachStdin",
                               "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                               "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir",
                               "Entrypoint", "OnBuild", "Labels"], "Config")
    missing_keys(i["NetworkSettings"], ["Networks", "Ports", "SandboxKey"],
                 "NetworkSettings")
    h = i["HostConfig"]
    eq(h["Memory"], 64 * 1024 * 1024, "HostConfig.Memory")
    eq(h["PidsLimit"], 50, "HostConfig.PidsLimit")
    eq(h["RestartPolicy"], {"Name": "on-failure", "MaximumRetryCount": 2}, "RestartPolicy")
    eq(h["CapDrop"], ["NET_RAW"], "CapDrop")
    eq(h["Ulimits"], [{"Name": "nofile", "Soft": 111, "Hard": 222}], "Ulimits")
    eq(h["ExtraHosts"], ["pyhost:10.1.2.3"], "ExtraHosts")
    eq(h["Dns"], ["9.9.9.9"], "Dns")
    eq(h["Tmpfs"], {"/run": "size=1m"}, "Tmpfs")
    eq(h["Init"], True, "Init")
    eq(h["ShmSize"], 8 * 1024 * 1024, "ShmSize")
    eq(h["LogConfig"], {"Type": "json-file", "Config": {"max-size": "10m"}}, "LogConfig")
    eq(h["Binds"], [f"{hostdir}:/data:rw"], "Binds")
    eq(i["Config"]["Hostname"], "lowbox", "Hostname")
    eq(i["Config"]["StopSignal"], "SIGKILL", "StopSignal")
    eq(i["Config"]["Labels"], {"l": "1"}, "Labels")
    eq(i["Config"]["Healthcheck"]["Test"], ["CMD", "true"], "Healthcheck")
    eq(i["Name"], "/low", "Name")
    check(i["State"]["Running"], f"not running: {i['State']}")
    m = [x for x in i["Mounts"] if x["Destination"] == "/data"]
    check(len(m) == 1 and m[0]["Source"] == hostdir and m[0]["RW"] is True,
          f"Mounts: {i['Mounts']}")

    def logs():
        return a.logs(cid).decode()
    import time
    deadline = time.time() + 20
    while "pyhost" not in logs() and time.time() < deadline:
        time.sleep(0.05)
    out = logs().splitlines()
    eq(out[0], "bound", "bind read")
    eq(out[1], "111", "ulimit nofile")
    check(out[2].split() == ["10.1.2.3", "pyhost"], f"extra host: {out}")
    with open(os.path.join(hostdir, "out")) as f:
        eq(f.read(), "w\n", "bind write")
    eq(a.top(cid)["Processes"][0][-1].split()[0], "/sbin/docker-init", "--init is PID 1")
    a.stop(cid, timeout=5)
    w = a.wait(cid, timeout=10)
    missing_keys(w, ["StatusCode"], "wait response")
    eq(w["StatusCode"], 137, "wait after stop with SIGKILL stop signal")
    lst = a.containers(all=True)
    eq(len(lst), 1, "containers(all)")
    missing_keys(lst[0], ["Id", "Names", "Image", "ImageID", "Command", "Created", "Ports",
                          "Labels", "State", "Status", "HostConfig", "NetworkSettings",
                          "Mounts"], "containers() summary")
    eq(lst[0]["Names"], ["/low"], "Names")
    eq(lst[0]["State"], "exited", "summary State")
    a.remove_container(cid, v=True, force=True)
    eq(a.containers(all=True), [], "after remove")
    # Errors come back as docker-py exceptions with the daemon's message.
    try:
        a.create_container("busybox", ["true"], host_config=a.create_host_config(
            restart_policy={"Name": "sometimes"}))
        fail("a bad restart policy was accepted")
    except Exception as ex:
        check("400" in str(ex) or "restart" in str(ex).lower(), f"error: {ex}")
finally:
    for f in os.listdir(hostdir):
        os.remove(os.path.join(hostdir, f))
    os.rmdir(hostdir)
print("ok")
sys.exit(0)
