"""The Kubernetes API of the test double: kmock's emulator plus what the real API server does for pods.

kmock 0.8 speaks real HTTP to the real ``kubernetes`` / ``kubernetes_asyncio`` clients and stores any
kind generically (create, get, list, watch, patch, delete of Deployments, Services, Secrets, RBAC ...),
but ignores selectors, stores pods without ``status`` and knows no logs or exec. :class:`ApiServer` adds:

* label and field selectors on list and watch, and ``timeoutSeconds`` on watch;
* server-side defaults on create (uid, creationTimestamp, resourceVersion, ``generateName``) and
  ``status.phase: Pending`` for pods, which go to the :class:`~containerkit.testing.kubelet.Kubelet`;
* graceful pod deletion (``deletionTimestamp`` until the containers are stopped, then the object goes,
  and with it every object whose ``ownerReferences`` name the pod), namespace deletion;
* ``pods/log`` and ``pods/exec`` (:mod:`containerkit.testing.streams`), events, one Node;
* ``metrics.k8s.io/v1beta1`` PodMetrics and ``authorization.k8s.io/v1`` (Self)SubjectAccessReviews.

It runs on one event loop; everything that touches its objects runs on that loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp.web
import kmock
from kmock._internal import rendering  # the request type the emulator hands to its handlers

from containerkit.testing.selectors import field_selector_matches, label_selector_matches
from containerkit.testing.streams import serve_exec, serve_logs, status_response

if TYPE_CHECKING:
    from containerkit.testing.kubelet import Kubelet

__all__ = ["KINDS", "ApiServer", "resource_of"]

KINDS: dict[str, tuple[str, str, str, bool]] = {
    # kind: (group, version, plural, namespaced)
    "Pod": ("", "v1", "pods", True),
    "Event": ("", "v1", "events", True),
    "Secret": ("", "v1", "secrets", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Service": ("", "v1", "services", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims", True),
    "Namespace": ("", "v1", "namespaces", False),
    "Node": ("", "v1", "nodes", False),
    "Deployment": ("apps", "v1", "deployments", True),
    "StatefulSet": ("apps", "v1", "statefulsets", True),
    "Job": ("batch", "v1", "jobs", True),
    "Ingress": ("networking.k8s.io", "v1", "ingresses", True),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies", True),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
}


def resource_of(kind: str) -> Any:
    group, version, plural, _ = KINDS[kind]
    return kmock.resource(group, version, plural)


_SHORT_NAMES = {
    "pods": {"po"}, "namespaces": {"ns"}, "configmaps": {"cm"}, "services": {"svc"}, "nodes": {"no"},
    "serviceaccounts": {"sa"}, "persistentvolumeclaims": {"pvc"}, "deployments": {"deploy"}, "events": {"ev"},
    "ingresses": {"ing"}, "networkpolicies": {"netpol"}, "statefulsets": {"sts"},
}  # fmt: skip
PODS = resource_of("Pod")
EVENTS = resource_of("Event")
NAMESPACES = resource_of("Namespace")
_METRICS = re.compile(
    r"^/apis/metrics\.k8s\.io/v1beta1/(?:namespaces/(?P<ns>[^/]+)/)?pods(?:/(?P<name>[^/]+))?/?$"
)
_ACCESS = re.compile(
    r"^/apis/authorization\.k8s\.io/v1/(?:namespaces/[^/]+/)?(?P<kind>self|local)?subjectaccessreviews/?$"
)


_TRACE = os.environ.get("CONTAINERKIT_TESTING_TRACE")  # a file: every request, timed (debugging)


def trace(message: str) -> None:
    if _TRACE:
        with open(_TRACE, "a") as out:
            out.write(f"{datetime.datetime.now():%H:%M:%S.%f} {message}\n")


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with selectors, pod lifecycle, logs, exec, metrics and access reviews."""

    kubelet: Kubelet
    _version = 0
    submitted: collections.deque[dict[str, Any]] = collections.deque(maxlen=5000)
    """Every object as a client submitted it (with server defaults), newest last, for assertions."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.submitted = collections.deque(maxlen=5000)
        verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
        for kind, (_, _, plural, namespaced) in KINDS.items():  # API discovery, for kubectl
            self._resources[resource_of(kind)] = kmock.ResourceInfo(
                namespaced=namespaced,
                kind=kind,
                singular=kind.lower(),
                verbs=verbs,
                shortnames=_SHORT_NAMES.get(plural, set()),
                subresources={"log", "exec", "status"} if kind == "Pod" else set(),
            )

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    # --- entry points ---------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = raw_request.path
        if _TRACE:
            trace(f"{raw_request.method} {raw_request.path_qs}")
        if path.endswith("/exec") and raw_request.headers.get("Upgrade", "").lower() == "websocket":
            return await serve_exec(self.kubelet, raw_request)
        if raw_request.method == "GET" and (m := _METRICS.match(path)):
            from containerkit.testing.metrics import pod_metrics

            return await pod_metrics(self.kubelet, m["ns"], m["name"], raw_request.query.get("labelSelector"))
        if raw_request.method == "POST" and (m := _ACCESS.match(path)):
            from containerkit.testing.access import review

            body = await raw_request.json()
            return aiohttp.web.json_response(review(self, body, m["kind"], raw_request.headers), status=201)
        if len(self._requests) > 1000:
            del self._requests[:]  # kmock keeps every request for assertions: bound it
        return await super().__call__(raw_request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is not None and request.method == kmock.method.GET and _flag(request.params.get("watch")):
            object.__setattr__(request, "action", kmock.action.WATCH)  # kmock knows only "true"
        if resource == PODS and request.subresource == "log":
            return await serve_logs(self.kubelet, request)
        if request.action == kmock.action.WATCH and resource is not None:
            return await self._stream_watch(request)
        if request.action == kmock.action.DELETE and request.name is not None:
            if resource == PODS:
                return await self._delete_pod(request)
            if resource == NAMESPACES:
                await self.delete_namespace(request.name)
        created_pod = False
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            meta["resourceVersion"] = self._next_version()
            if request.namespace and resource != NAMESPACES:
                meta.setdefault("namespace", request.namespace)
            if resource == PODS:
                created_pod = True
                request.data["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
                request.data.setdefault("spec", {}).setdefault("restartPolicy", "Always")
        response = await super()._handle(request)
        if request.action == kmock.action.CREATE and response.status in (200, 201):
            self.submitted.append(json.loads(json.dumps(request.data)))
        if created_pod and response.status in (200, 201):
            self.kubelet.start(json.loads(json.dumps(request.data)))
        return response

    # --- lookups for the kubelet ----------------------------------------------------------

    def _live(self, key: tuple[Any, str | None, str]) -> Any:
        obj = self.objects[key] if key in self.objects else None  # noqa: SIM401 (no .get)
        return None if obj is None or obj.deleted else obj

    def lookup(self, kind: str, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        """A stored object of ``kind`` by name (called on the loop)."""
        namespaced = KINDS[kind][3]
        obj = self._live((resource_of(kind), namespace if namespaced else None, name))
        return None if obj is None else obj.raw

    def items(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        res = resource_of(kind)
        return [
            obj.raw
            for (r, ns, _), obj in self.objects.items()
            if r == res and not obj.deleted and (namespace is None or ns == namespace)
        ]

    async def patch_pod(self, key: tuple[str, str], patch: dict[str, Any]) -> None:
        async with self._lock:
            obj = self._live((PODS, key[0], key[1]))
            if obj is None:
                return
            patch.setdefault("metadata", {})["resourceVersion"] = self._next_version()
            obj.patch(patch)
            await self._buses[PODS].put({"type": "MODIFIED", "object": obj.raw})

    async def record_event(
        self, pod: Mapping[str, Any], etype: str, reason: str, message: str, component: str, node: str
    ) -> None:
        """An event as the kubelet/scheduler writes it; a repeat bumps ``count`` and ``lastTimestamp``."""
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        stamp = now()
        async with self._lock:
            for (res, ns, _), obj in self.objects.items():
                if res != EVENTS or ns != namespace or obj.deleted:
                    continue
                raw = obj.raw
                if (
                    raw.get("reason") == reason
                    and raw.get("message") == message
                    and raw["involvedObject"].get("uid") == meta.get("uid")
                ):
                    obj.patch(
                        {
                            "count": raw.get("count", 1) + 1,
                            "lastTimestamp": stamp,
                            "metadata": {"resourceVersion": self._next_version()},
                        }
                    )
                    await self._buses[EVENTS].put({"type": "MODIFIED", "object": obj.raw})
                    return
            event_name = f"{name}.{uuid.uuid4().hex[:16]}"
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": event_name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": self._next_version(),
                    "creationTimestamp": stamp,
                },
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": name,
                    "apiVersion": "v1",
                    "uid": meta.get("uid"),
                },
                "reason": reason,
                "message": message,
                "type": etype,
                "source": {"component": component, **({"host": node} if component == "kubelet" else {})},
                "reportingComponent": component,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
            self.objects[EVENTS, namespace, event_name] = event
            await self._buses[EVENTS].put(
                {"type": "ADDED", "object": self.objects[EVENTS, namespace, event_name].raw}
            )

    # --- deletion -------------------------------------------------------------------------

    async def _delete_pod(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        key = (request.namespace or "default", request.name or "")
        body = request.data if isinstance(request.data, dict) else {}
        grace_param = request.params.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        async with self._lock:
            obj = self._live((PODS, *key))
            if obj is None:
                return status_response(404, "NotFound", f'pods "{key[1]}" not found')
            if obj.raw.get("metadata", {}).get("deletionTimestamp"):
                return aiohttp.web.json_response(obj.raw)
            spec_grace = obj.raw.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            grace = int(grace_param) if grace_param is not None else int(spec_grace)
            obj.patch(
                {
                    "metadata": {
                        "deletionTimestamp": now(),
                        "deletionGracePeriodSeconds": grace,
                        "resourceVersion": self._next_version(),
                    }
                }
            )
            raw = obj.raw
            await self._buses[PODS].put({"type": "MODIFIED", "object": raw})
        self.kubelet.spawn(self.kubelet.delete(key, grace, lambda: self._remove_pod(key)))
        return aiohttp.web.json_response(raw)

    async def _remove_pod(self, key: tuple[str, str]) -> None:
        async with self._lock:
            obj = self._live((PODS, *key))
            if obj is None:
                return
            uid = obj.raw.get("metadata", {}).get("uid")
            obj.delete()
            await self._buses[PODS].put({"type": "DELETED", "object": obj.last.raw})
        await self.collect_garbage(uid)

    async def collect_garbage(self, owner_uid: str | None) -> None:
        """Delete what the gone object owned (``ownerReferences``), as the garbage collector does."""
        if not owner_uid:
            return
        async with self._lock:
            for (res, _, _), obj in list(self.objects.items()):
                if obj.deleted or res == PODS:
                    continue
                refs = obj.raw.get("metadata", {}).get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    obj.delete()
                    await self._buses[res].put({"type": "DELETED", "object": obj.last.raw})

    async def delete_namespace(self, namespace: str) -> None:
        """Everything in ``namespace`` goes; pods without a grace period."""
        pods = [o["metadata"]["name"] for o in self.items("Pod", namespace)]
        async with self._lock:
            for (res, ns, _), obj in list(self.objects.items()):
                if ns == namespace and not obj.deleted and res != PODS:
                    obj.delete()
        await asyncio.gather(
            *(
                self.kubelet.delete((namespace, name), 0, lambda n=name: self._remove_pod((namespace, n)))  # type: ignore[misc]
                for name in pods
            )
        )

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_version(request)
        if isinstance(payload, dict) and payload.get("groupVersion", "").startswith("/"):
            payload["groupVersion"] = payload["groupVersion"][1:]  # the core group is "v1", not "/v1"
        return payload

    # --- list and watch with selectors ----------------------------------------------------

    def _matching(self, request: rendering.Request) -> list[dict[str, Any]]:
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        out = []
        for (resource, namespace, name), obj in self.objects.items():
            if resource != request.resource or obj.deleted:
                continue
            if request.namespace is not None and namespace != request.namespace:
                continue
            if request.name is not None and name != request.name:
                continue
            raw = obj.raw
            if label_selector_matches(labels, raw.get("metadata", {}).get("labels") or {}) and (
                field_selector_matches(fields, raw)
            ):
                out.append(raw)
        return out

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        async with self._lock:
            items = self._matching(request)
        version = str(self._version)
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": version}, "items": items}

    async def _stream_watch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Watch events as JSON lines (kmock streams ``application/octet-stream``, which kubectl refuses)."""
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        with contextlib.suppress(ConnectionError):
            async for event in self._serve_watch(request):
                if isinstance(event, dict):
                    await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
        return response

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        assert request.resource is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self._lock:
                    existing = self._matching(request)
                for raw in existing:
                    yield {"type": "ADDED", "object": raw}
                async for event in self._buses[request.resource]:
                    raw = event.get("object", {})
                    meta = raw.get("metadata", {})
                    if request.namespace is not None and meta.get("namespace") != request.namespace:
                        continue
                    if request.name is not None and meta.get("name") != request.name:
                        continue
                    if label_selector_matches(labels, meta.get("labels") or {}) and field_selector_matches(
                        fields, raw
                    ):
                        yield event
