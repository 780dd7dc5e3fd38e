# Drives a keelson-server with the official Kubernetes Python client:
# list, create, patch, watch, selectors, errors. Prints OK on success.
import sys

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()

names = [n.metadata.name for n in v1.list_namespace().items]
assert "default" in names and "kube-system" in names, names

v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
cm = v1.create_namespaced_config_map(
    "py",
    client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c1", labels={"app": "x"}), data={"k": "v"}
    ),
)
assert cm.metadata.uid and cm.metadata.creation_timestamp, cm.metadata
rv = cm.metadata.resource_version

patched = v1.patch_namespaced_config_map("c1", "py", {"data": {"k": "v2"}})
assert patched.data["k"] == "v2", patched.data
assert int(patched.metadata.resource_version) > int(rv)

# A watch from the create's revision sees the patch.
events = []
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=10):
    events.append((ev["type"], ev["object"].metadata.name, ev["object"].data.get("k")))
    w.stop()
assert events == [("MODIFIED", "c1", "v2")], events

# A watch from now sees a create made after it started.
import threading

def create_later():
    import time
    time.sleep(0.5)
    v1.create_namespaced_config_map(
        "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c2"), data={"k": "z"})
    )

lst = v1.list_namespaced_config_map("py")
threading.Thread(target=create_later).start()
seen = []
w = watch.Watch()
for ev in w.stream(
    v1.list_namespaced_config_map,
    "py",
    resource_version=lst.metadata.resource_version,
    timeout_seconds=10,
):
    seen.append((ev["type"], ev["object"].metadata.name))
    if ev["object"].metadata.name == "c2":
        w.stop()
assert ("ADDED", "c2") in seen, seen

items = v1.list_namespaced_config_map("py", label_selector="app=x").items
assert [i.metadata.name for i in items] == ["c1"], items
items = v1.list_namespaced_config_map("py", field_selector="metadata.name=c2").items
assert [i.metadata.name for i in items] == ["c2"], items

# Paging.
page = v1.list_namespaced_config_map("py", limit=1)
assert len(page.items) == 1 and page.metadata._continue, page.metadata
rest = v1.list_namespaced_config_map("py", limit=1, _continue=page.metadata._continue)
assert len(rest.items) == 1 and rest.items[0].metadata.name != page.items[0].metadata.name

try:
    v1.read_namespaced_config_map("nope", "py")
    raise AssertionError("read of a missing configmap succeeded")
except client.ApiException as e:
    assert e.status == 404, e

try:
    v1.create_namespaced_config_map(
        "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"))
    )
    raise AssertionError("duplicate create succeeded")
except client.ApiException as e:
    assert e.status == 409, e

# Stale resourceVersion → 409 Conflict.
stale = v1.read_namespaced_config_map("c1", "py")
v1.patch_namespaced_config_map("c1", "py", {"data": {"k": "v3"}})
stale.data = {"k": "lost"}
try:
    v1.replace_namespaced_config_map("c1", "py", stale)
    raise AssertionError("stale update succeeded")
except client.ApiException as e:
    assert e.status == 409, e

dep = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "keelson.local/web:1"}]},
        },
    },
}
d = apps.create_namespaced_deployment("py", dep)
assert d.spec.replicas == 1 and d.metadata.generation == 1, d.spec
apps.patch_namespaced_deployment_scale("web", "py", {"spec": {"replicas": 3}})
d = apps.read_namespaced_deployment("web", "py")
assert d.spec.replicas == 3 and d.metadata.generation == 2, (d.spec.replicas, d.metadata.generation)

v1.delete_namespaced_config_map("c1", "py")
print("OK")
