"""``LocalCluster``: the test double's API and kubelet on a background event loop, for synchronous code.

It is a test double, not a Kubernetes: one node, no controllers (a Deployment is stored, not rolled
out), no image pulls, no Services' networking. What it does for real: every pod's containers run on
the local Docker engine with the pod's security context, limits, env, Secrets, ConfigMaps and volumes,
and the API speaks real HTTP to the real ``kubernetes`` clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import platform
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from containerkit.testing.kubelet import LABEL_CLUSTER, Kubelet, NodeConfig, remove_labelled, sweep_orphans

if TYPE_CHECKING:
    import docker

    from containerkit.testing.api import ApiServer

__all__ = ["LocalCluster"]

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}
"""``uname -m`` names to the ``GOARCH`` names nodes and image indexes use."""

DEFAULT_SIDECAR_IMAGE = "containerkit/base-debian:12"
"""The XCom sidecar image the Airflow connection names (the stock default, ``alpine``, is never pulled)."""


def _quantity(value: str | int | float | Decimal | None, default: Decimal) -> Decimal:
    if value is None:
        return default
    from kubernetes.utils import parse_quantity

    return Decimal(parse_quantity(str(value)))


class LocalCluster:
    """A local Kubernetes API (a test double) whose pods run as containers on the Docker engine.

    ``with LocalCluster() as cluster:`` starts the API on 127.0.0.1 and writes :attr:`kubeconfig`;
    leaving the block deletes every pod and removes every container, volume and network labelled
    ``containerkit.testing/cluster=<name>``.

    :param name: the cluster's name (engine labels and object names); default ``ck-<random>``.
    :param node_cpu: allocatable cpu of the node (scheduling; a pod requesting more stays Pending with
        ``FailedScheduling``); default the engine's CPU count.
    :param node_memory: allocatable memory, e.g. ``"8Gi"``; default the engine's memory.
    :param host_path_allow: host paths a pod may mount as ``hostPath`` (anything else is refused).
    :param pause_image: image whose ``sleep`` holds each pod's network namespace; default each pod's
        first container image.
    :param sidecar_image: the XCom sidecar image :meth:`airflow_connection` names.
    :param port: the API's port on 127.0.0.1 (0: any free port).
    :param workdir: where the kubeconfig goes (default a temporary directory).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        node_cpu: str | int | float | None = None,
        node_memory: str | int | None = None,
        host_path_allow: Iterable[str] = (),
        pause_image: str | None = None,
        sidecar_image: str | None = None,
        port: int = 0,
        workdir: str | Path | None = None,
        poll_interval: float = 0.1,
        docker_client: docker.DockerClient | None = None,
    ) -> None:
        self.name = name or f"ck{secrets.token_hex(3)}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", self.name):
            raise ValueError(
                f"LocalCluster name {self.name!r} must be 1-31 lowercase letters, digits or '-' "
                "(it prefixes engine object names): e.g. 'ck-tests'"
            )
        self._node_args = (node_cpu, node_memory, tuple(host_path_allow), pause_image, poll_interval)
        self.sidecar_image = sidecar_image or os.environ.get(
            "CONTAINERKIT_TESTING_SIDECAR_IMAGE", DEFAULT_SIDECAR_IMAGE
        )
        self._port = port
        self._workdir = Path(workdir) if workdir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._client = docker_client
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"ck-cluster-{self.name}", daemon=True)
        self.api: ApiServer
        self.kubelet: Kubelet
        self.url = ""
        self.kubeconfig = Path()

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=120, max_pool_size=64)
        self._client.ping()
        sweep_orphans(self._client)
        info = self._client.info()
        cpu, memory, allow, pause, poll = self._node_args
        engine_arch = str(info.get("Architecture") or platform.machine())
        self.node = NodeConfig(
            cpu=_quantity(cpu, Decimal(info.get("NCPU") or 2)),
            memory=_quantity(memory, Decimal(info.get("MemTotal") or 4 * 1024**3)),
            labels={
                "kubernetes.io/hostname": "containerkit-testing-node",
                "kubernetes.io/os": "linux",
                # The engine's architecture in Go's names, as real nodes label themselves.
                "kubernetes.io/arch": _GOARCH.get(engine_arch, engine_arch),
            },
            host_path_allow=allow,
            pause_image=pause,
            poll_interval=poll,
        )
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"ck-{self.name}-")
            self._workdir = Path(self._tmp.name)
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"containerkit.testing API did not start: {self._error}")
        self.kubeconfig = self._workdir / "kubeconfig.yaml"
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_dict()))
        return self

    def stop(self) -> None:
        """Delete every pod, remove every labelled engine object, stop the API."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._stopped.wait(120)
            self._thread.join(10)
        if self._client is not None:
            remove_labelled(self._client, self.name)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _run(self) -> None:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._stopped.set()

    async def _serve(self) -> None:
        import kmock

        from containerkit.testing.api import ApiServer, resource_of

        self._stop = asyncio.Event()
        assert self._client is not None
        self.api = ApiServer()
        self.kubelet = Kubelet(self.api, self._client, self.name, self.node)
        self.api.kubelet = self.kubelet
        await self.kubelet.docker(self.kubelet.start_network)
        self.api.objects[resource_of("Node"), None, self.node.name] = self._node_object()
        async with self.api, kmock.Server(self.api, port=self._port or None) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for ns in {k[0] for k in list(self.kubelet.workers)}:
                await self.api.delete_namespace(ns)
            await self.kubelet.close()

    def _node_object(self) -> dict[str, Any]:
        capacity = {"cpu": str(self.node.cpu), "memory": f"{int(self.node.memory) // 1024}Ki", "pods": "110"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node.name,
                "labels": dict(self.node.labels),
                "annotations": {"containerkit.testing/test-double": "true"},
            },
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "nodeInfo": {
                    "architecture": self.node.labels.get("kubernetes.io/arch", platform.machine()),
                    "bootID": "",
                    "machineID": "",
                    "systemUUID": "",
                    "kernelVersion": platform.release(),
                    "operatingSystem": "linux",
                    "osImage": "containerkit.testing (a test double)",
                    "containerRuntimeVersion": "docker://engine",
                    "kubeletVersion": "v1.31.0-containerkit-testing",
                    "kubeProxyVersion": "",
                },
            },
        }

    # --- connection -----------------------------------------------------------------------

    def kubeconfig_dict(self, namespace: str = "default") -> dict[str, Any]:
        from containerkit.testing.access import ADMIN_USER

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {"server": self.url}}],
            "users": [{"name": ADMIN_USER, "user": {"token": "containerkit-testing"}}],
            "contexts": [
                {
                    "name": self.name,
                    "context": {"cluster": self.name, "user": ADMIN_USER, "namespace": namespace},
                }
            ],
            "current-context": self.name,
        }

    def airflow_connection(self) -> str:
        """The JSON for ``AIRFLOW_CONN_KUBERNETES_DEFAULT`` (kubeconfig path, local XCom sidecar image)."""
        extra = {
            "in_cluster": False,
            "kube_config_path": str(self.kubeconfig),
            "xcom_sidecar_container_image": self.sidecar_image,
        }
        return json.dumps({"conn_type": "kubernetes", "extra": extra})

    # --- calls onto the loop --------------------------------------------------------------

    def call(self, fn: Callable[[], Any], timeout: float = 30) -> Any:
        """Run ``fn`` (sync or async) on the API's loop, where its state lives."""

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # --- objects --------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``obj`` (any kind listed in :data:`containerkit.testing.api.KINDS`) as a create would."""
        from containerkit.testing.api import KINDS, resource_of

        data = json.loads(json.dumps(obj))
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {sorted(KINDS)}")
        if kind == "Pod":
            raise ValueError(
                "create pods through the Kubernetes API (kubernetes.client), so the kubelet sees them"
            )
        meta = data.setdefault("metadata", {})
        namespace = meta.setdefault("namespace", "default") if KINDS[kind][3] else None
        meta.setdefault("uid", secrets.token_hex(16))
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

        def store() -> dict[str, Any]:
            self.api.objects[resource_of(kind), namespace, meta["name"]] = data
            return dict(self.api.objects[resource_of(kind), namespace, meta["name"]].raw)

        return dict(self.call(store))

    def create_secret(self, namespace: str, name: str, data: Mapping[str, str | bytes]) -> dict[str, Any]:
        """A Secret with ``data`` (values given plain, stored base64 as the API does)."""
        encoded = {
            k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()
        }
        return self.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace},
                "data": encoded,
            }
        )

    def create_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
        return self.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace},
                "data": dict(data),
            }
        )

    def create_namespace(self, namespace: str) -> dict[str, Any]:
        return self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    def delete_namespace(self, namespace: str) -> None:
        """Delete everything in ``namespace``: its pods are stopped and their containers removed."""
        self.call(lambda: self.api.delete_namespace(namespace), timeout=120)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = self.call(lambda: self.api.lookup(kind, namespace, name))
        return None if found is None else dict(found)

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self.call(lambda: self.api.items(kind, namespace)))

    def submitted(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every ``kind`` object clients created (also those since deleted), oldest first."""
        return [
            o
            for o in self.call(lambda: list(self.api.submitted))
            if o.get("kind") == kind
            and (namespace is None or o.get("metadata", {}).get("namespace") == namespace)
        ]

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list_objects("Pod", namespace)

    def events(self, namespace: str | None = None, pod: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.list_objects("Event", namespace)
            if pod is None or e["involvedObject"]["name"] == pod
        ]

    def wait_for_no_pods(self, namespace: str | None = None, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until graceful deletions finished; returns what is left (empty on success)."""
        deadline = time.monotonic() + timeout
        while (left := self.pods(namespace)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def engine_objects(self) -> dict[str, list[str]]:
        """Names of the engine's containers, volumes and networks labelled with this cluster."""
        assert self._client is not None
        selector = {"label": f"{LABEL_CLUSTER}={self.name}"}
        return {
            "containers": sorted(c.name for c in self._client.containers.list(all=True, filters=selector)),
            "volumes": sorted(str(v.name) for v in self._client.volumes.list(filters=selector)),
            "networks": sorted(str(n.name) for n in self._client.networks.list(filters=selector)),
        }
