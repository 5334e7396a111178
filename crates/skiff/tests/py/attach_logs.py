"""docker-py Container.attach(logs=True): the output written before the attach is replayed
first (POST /containers/{id}/attach?logs=1), as dockerd does."""

import http.client
import time

from common import client, eq

# A slow client: the answer's headers are read only after the daemon has had time to send
# the replay too. docker-py reads the headers through a buffered reader and then reads the
# raw socket beneath it, so bytes that arrived with the headers would be lost: the daemon
# must hold output back until the client has read the headers.
_begin = http.client.HTTPResponse.begin


def slow_begin(self):
    time.sleep(0.2)
    return _begin(self)


http.client.HTTPResponse.begin = slow_begin

c = client()
ct = c.containers.run("busybox", ["sh", "-c", "echo one; sleep 1; echo two"], detach=True)
time.sleep(0.5)
out = b"".join(ct.attach(stream=True, logs=True, stdout=True, stderr=True))
eq(out, b"one\ntwo\n", "attach(stream, logs)")
ct.wait(timeout=20)
# logs=1 without stream on an exited container: the whole log, then the end.
eq(ct.attach(logs=True, stream=False, stdout=True, stderr=True), b"one\ntwo\n",
   "attach(logs) of an exited container")
ct.remove(force=True)
print("ok")
