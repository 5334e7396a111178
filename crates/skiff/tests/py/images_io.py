"""docker-py images.push (to the registry at argv[2]), image.save, images.load and their
errors, against the skiff daemon at argv[1]."""

import sys

from common import check, client, eq, fail

import docker

c = client()
reg = sys.argv[2]
img = c.images.get("busybox")

# save: a tarball stream of the named image.
data = b"".join(img.save(named=True))
check(len(data) > 100_000, f"save gave {len(data)} bytes")
check(b"manifest.json" in data, "save: no manifest.json in the tarball")

# load back into the same daemon after dropping a name: the name returns.
img.tag("pyio/x", "v1")
c.images.remove("busybox:latest")
check("busybox:latest" not in c.images.get(img.id).tags, "busybox:latest still tagged")
loaded = c.images.load(data)
check(any("busybox:latest" in i.tags for i in loaded), f"load returned {loaded}")
eq(c.images.get("busybox").id, img.id, "loaded image id")

# push: Docker's progress stream, with the aux result last.
repo = f"{reg}/pyio/bb"
img.tag(repo, "v3")
lines = list(c.images.push(repo, tag="v3", stream=True, decode=True))
statuses = [m.get("status", "") for m in lines]
eq(statuses[0], f"The push refers to repository [{repo}]", "first push line")
check("Preparing" in statuses and "Pushed" in statuses, f"push statuses: {statuses}")
errs = [m for m in lines if "error" in m or "errorDetail" in m]
eq(errs, [], "push errors")
aux = [m["aux"] for m in lines if "aux" in m]
eq(len(aux), 1, "aux lines")
eq(aux[0]["Tag"], "v3", "aux Tag")
check(aux[0]["Digest"].startswith("sha256:") and aux[0]["Size"] > 0, f"aux: {aux}")
check(any(s.startswith(f"v3: digest: {aux[0]['Digest']} size: ") for s in statuses),
      f"digest line: {statuses}")

# Errors: a missing image to save or push, garbage to load.
try:
    b"".join(c.api.get_image("nosuch:img"))
    fail("save of a missing image did not raise")
except docker.errors.NotFound:
    pass
try:
    c.images.push(f"{reg}/pyio/nosuch", tag="latest")
    fail("push of a missing image did not raise")
except docker.errors.NotFound:
    pass
try:
    c.images.load(b"not a tarball")
    fail("load of garbage did not raise")
except docker.errors.APIError as e:
    eq(e.status_code, 400, "load of garbage: status")
print("ok")
