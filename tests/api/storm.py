# Write storm for the crash test: creates configmaps from several threads and
# prints "<name> <resourceVersion>" the moment each create is acknowledged.
import sys
import threading

from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
prefix = sys.argv[2]
lock = threading.Lock()


def worker(t):
    v1 = client.CoreV1Api()
    i = 0
    while True:
        name = f"{prefix}-{t}-{i}"
        try:
            cm = v1.create_namespaced_config_map(
                "default",
                client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"i": str(i)}),
                _request_timeout=5,
            )
        except Exception:
            return
        with lock:
            print(name, cm.metadata.resource_version, flush=True)
        i += 1


threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
