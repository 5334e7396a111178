"""docker-py sends the Healthcheck fields it was not given as JSON null (and other SDKs send
nulls for unset fields); dockerd's Go decoder takes null as the zero value."""

from common import client, eq

c = client()
ct = c.containers.run("busybox", ["sleep", "1000"], detach=True,
                      healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000})
h = ct.attrs if ct.attrs.get("Config") else c.api.inspect_container(ct.id)
hc = c.api.inspect_container(ct.id)["Config"]["Healthcheck"]
eq(hc["Test"], ["CMD", "true"], "Healthcheck.Test")
eq(hc["Interval"], 1_000_000_000, "Healthcheck.Interval")
ct.remove(force=True)
print("ok")
