"""docker-py images.list/get and the events generator with until."""

import time

from common import check, client, eq, fail, missing_keys

import docker

c = client()
imgs = c.images.list()
check(len(imgs) == 1, f"images.list: {imgs}")
img = imgs[0]
check("busybox:latest" in img.tags, f"tags: {img.tags}")
check(img.id.startswith("sha256:"), f"id: {img.id}")
got = c.images.get("busybox")
eq(got.id, img.id, "images.get id")
missing_keys(got.attrs, ["Id", "RepoTags", "Created", "Size", "Config", "RootFS", "Os",
                         "Architecture"], "image inspect")
eq(got.attrs["Config"]["Cmd"], ["sh"], "image Cmd")
eq(c.images.list(name="busybox")[0].id, img.id, "images.list(name=)")
eq(c.images.list(name="nosuch"), [], "images.list(name=nosuch)")
hist = got.history()
check(len(hist) >= 1 and "Created" in hist[0], f"history: {hist}")
got.tag("py/tagged", "v1")
check("py/tagged:v1" in c.images.get(img.id).tags, "tag")
c.images.remove("py/tagged:v1")
try:
    c.images.get("nosuch:latest")
    fail("images.get of a missing image did not raise")
except docker.errors.ImageNotFound:
    pass

# Events: a container's life between since and until; the generator ends at until.
since = time.time()
ct = c.containers.run("busybox", ["true"], detach=True, name="evpy")
ct.wait(timeout=20)
ct.remove()
until_ = time.time() + 1
t = time.time()
evs = list(c.events(since=since, until=until_, decode=True))
check(time.time() - t < 10, "events(until=) did not end")
acts = [e["Action"] for e in evs if e.get("Type") == "container"
        and e.get("Actor", {}).get("Attributes", {}).get("name") == "evpy"]
for a in ["create", "start", "die", "destroy"]:
    check(a in acts, f"event {a} missing: {acts}")
check(acts.index("create") < acts.index("start") < acts.index("die") < acts.index("destroy"),
      f"order: {acts}")
for e in evs:
    missing_keys(e, ["Type", "Action", "Actor", "scope", "time", "timeNano"], "event")
# Filters.
evs = list(c.events(since=since, until=until_, decode=True,
                    filters={"event": "die", "container": "evpy"}))
eq([e["Action"] for e in evs], ["die"], "filtered events")
eq(evs[0]["Actor"]["Attributes"].get("exitCode"), "0", "die exitCode")
print("ok")
