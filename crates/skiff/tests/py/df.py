"""docker-py client.df() (GET /system/df)."""

from common import check, client, fail, missing_keys

import docker

c = client()
c.containers.run("busybox", ["sh", "-c", "echo x > /f"], name="dfc")
try:
    df = c.df()
except docker.errors.APIError as e:
    fail(f"client.df(): GET /system/df failed: {e}")
missing_keys(df, ["LayersSize", "Images", "Containers", "Volumes", "BuildCache"], "df")
check(len(df["Images"]) == 1, f"df images: {df['Images']}")
missing_keys(df["Images"][0], ["Id", "RepoTags", "Size", "SharedSize", "Containers"],
             "df image")
check(df["Images"][0]["Containers"] == 1, f"df image containers: {df['Images'][0]}")
check(len(df["Containers"]) == 1, f"df containers: {df['Containers']}")
missing_keys(df["Containers"][0], ["Id", "Names", "SizeRw", "SizeRootFs"], "df container")
check(df["Containers"][0]["SizeRw"] > 0, f"SizeRw: {df['Containers'][0]}")
check(df["LayersSize"] > 0, f"LayersSize: {df['LayersSize']}")
print("ok")
