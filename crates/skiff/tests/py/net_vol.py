"""docker-py drives networks and volumes: create/list/get/remove/prune, a container on a
user network reached by name from another, connect/disconnect, a named volume's data seen
by a second container, in-use refusals, and the JSON shapes docker-py reads."""

import docker

from common import check, client, eq, fail, missing_keys

c = client()

# Volumes.
v = c.volumes.create(name="pyvol", labels={"k": "v"})
eq(v.name, "pyvol", "volume name")
missing_keys(v.attrs, ["Name", "Driver", "Mountpoint", "Labels", "Scope", "CreatedAt"], "volume")
eq(v.attrs["Labels"], {"k": "v"}, "volume labels")
check(any(x.name == "pyvol" for x in c.volumes.list(filters={"label": "k=v"})), "volume list filter")
out = c.containers.run("busybox", ["sh", "-c", "echo kept > /v/f"], volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
out = c.containers.run("busybox", ["cat", "/v/f"], volumes=["pyvol:/v:ro"], remove=True)
eq(out, b"kept\n", "volume data in a second container")
holder = c.containers.create("busybox", ["true"], volumes=["pyvol:/v"])
try:
    v.remove()
    fail("removing a volume in use succeeded")
except docker.errors.APIError as e:
    eq(e.status_code, 409, "in-use volume remove status")
holder.remove()
v.remove()
try:
    c.volumes.get("pyvol")
    fail("removed volume still there")
except docker.errors.NotFound:
    pass

# Networks.
n = c.networks.create("pynet", driver="bridge", labels={"app": "py"},
                      ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.66.0.0/24")]))
missing_keys(n.attrs, ["Name", "Id", "Driver", "IPAM", "Containers", "Options", "Labels", "Scope"], "network")
eq(n.attrs["IPAM"]["Config"][0]["Subnet"], "10.66.0.0/24", "network subnet")
srv = c.containers.run("busybox", ["sh", "-c", "mkdir /w && echo py-srv > /w/index.html && httpd -f -p 80 -h /w"],
                       name="pysrv", network="pynet", detach=True)
srv.reload()
ip = srv.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
check(ip.startswith("10.66.0."), f"container address {ip}")
n.reload()
check(srv.id in n.attrs["Containers"], "network lists its container")
got = c.containers.run("busybox", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://pysrv/ && exit 0; sleep 0.3; done; exit 1"],
                       network="pynet", remove=True)
eq(got, b"py-srv\n", "by name over the user network")
other = c.containers.run("busybox", ["sleep", "100"], detach=True)
n.connect(other, aliases=["second"])
other.reload()
check("pynet" in other.attrs["NetworkSettings"]["Networks"], "connected")
n.disconnect(other)
other.reload()
check("pynet" not in other.attrs["NetworkSettings"]["Networks"], "disconnected")
other.remove(force=True)
try:
    n.remove()
    fail("removing a network in use succeeded")
except docker.errors.APIError as e:
    eq(e.status_code, 409, "in-use network remove status")
srv.remove(force=True)
n.remove()
check(all(x.name != "pynet" for x in c.networks.list()), "network gone")
print("ok")
