"""docker-py commits a container: Container.commit with repository/tag/message/author/changes
(docker-py sends an empty config body), the image runs the new CMD on the file written, and
inspect shows the message and author; a bad change and a missing container are API errors."""

import docker

from common import check, client, eq, fail

c = client()

src = c.containers.run("busybox", ["sh", "-c", "echo py-commit > /p && rm /etc/group"], detach=True)
src.wait()
img = src.commit(repository="pycommit", tag="v1", message="from py", author="py author",
                 changes=['CMD ["cat", "/p"]', "ENV PYC=1"])
check(img.id.startswith("sha256:"), f"image id {img.id}")
eq(c.containers.run("pycommit:v1", remove=True), b"py-commit\n", "committed CMD output")
eq(c.containers.run("pycommit:v1", ["sh", "-c", "echo $PYC; test -e /etc/group || echo gone"], remove=True),
   b"1\ngone\n", "ENV change and whiteout")
img.reload()
eq(img.attrs["Comment"], "from py", "comment")
eq(img.attrs["Author"], "py author", "author")
check("pycommit:v1" in img.tags, f"tags {img.tags}")

try:
    src.commit(changes=["RUN true"])
    fail("a RUN change was accepted")
except docker.errors.APIError as e:
    eq(e.status_code, 400, "bad change status")
    check("run is not a valid change command" in str(e), str(e))
try:
    c.api.commit("no-such-container")
    fail("commit of a missing container succeeded")
except docker.errors.NotFound:
    pass
src.remove()
print("ok")
