"""docker-py's images.build against skiff: a build from a directory, the image runs, a
rebuild is cached, a failing RUN and a bad Dockerfile raise BuildError with Docker's text.

argv: daemon address, a scratch directory for the contexts."""

import os
import sys

from common import check, client, eq, fail

import docker

c = client()
ctx = sys.argv[2]
os.makedirs(ctx, exist_ok=True)
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nARG WHO=nobody\nCOPY msg.txt /msg.txt\nRUN echo \"$WHO\" > /who\nCMD [\"cat\", \"/msg.txt\", \"/who\"]\n")
with open(os.path.join(ctx, "msg.txt"), "w") as f:
    f.write("from docker-py\n")

img, logs = c.images.build(path=ctx, tag="pyimg:1", buildargs={"WHO": "py"}, rm=True)
logs = list(logs)
text = "".join(l.get("stream", "") for l in logs)
check("Step 1/5 : FROM busybox" in text, f"step lines missing: {text!r}")
check(any("aux" in l for l in logs), f"no aux ID message: {logs!r}")
eq(img.tags, ["pyimg:1"], "tags")
out = c.containers.run("pyimg:1", remove=True)
eq(out, b"from docker-py\npy\n", "run output")

img2, logs = c.images.build(path=ctx, tag="pyimg:1", buildargs={"WHO": "py"})
text = "".join(l.get("stream", "") for l in logs)
eq(text.count("Using cache"), 4, "cached steps")
eq(img2.id, img.id, "same image on a cached rebuild")

with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nRUN exit 7\n")
try:
    c.images.build(path=ctx, tag="pyimg:bad")
    fail("a failing RUN must raise BuildError")
except docker.errors.BuildError as e:
    eq(str(e.msg), "The command '/bin/sh -c exit 7' returned a non-zero code: 7", "failing RUN")

with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nFOO bar\n")
try:
    c.images.build(path=ctx)
    fail("a bad Dockerfile must raise BuildError")
except docker.errors.BuildError as e:
    check("Dockerfile:2:" in str(e.msg), f"bad Dockerfile message: {e.msg!r}")
print("ok")
