"""Fake-phase mode: kmock's API emulator plus a *scripted* kubelet that invents pod phases.

The operator tests run on ``containerkit.testing`` (pods really run on the Docker engine); this
scripted mode stays only for what that engine cannot produce: registry-side image pull failures
(``unauthorized``, ``toomanyrequests`` rate limits: the local kubelet never pulls) and multi-node
scheduling messages, which ``benchmarks/bench_fail_fast.py`` replays against the stock operator.

kmock 0.8 speaks real HTTP to the real ``kubernetes`` / ``kubernetes_asyncio`` clients but, out of
the box, ignores label and field selectors, stores pods without ``status``, answers log reads with
the pod JSON and knows no ``exec``. :class:`FakeApiServer` adds what KubernetesPodOperator needs:

* label selectors (``a=b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x)``) and field
  selectors (``involvedObject.name=x``, ``metadata.name=x``) on list and watch, and watch timeouts;
* server-side pod defaults on create (uid, creationTimestamp, ``status.phase: Pending``);
* ``pods/log`` (plain text, ``timestamps``, ``tailLines``, ``follow`` until the container stops,
  400 while the container is waiting, like the real API);
* ``pods/exec`` over the ``v4.channel.k8s.io`` WebSocket protocol, for the xcom sidecar: ``cat`` of
  the return value and the ``kill`` that stops the sidecar.

:class:`FakeKubelet` plays a :class:`Scenario` for each new pod (chosen by the base container's image):
a list of timed steps that patch the pod status and record events, as a real kubelet / scheduler would.
The server runs on its own event loop in a background thread so that synchronous operator code
and ``dag.test()`` can call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml
from kmock._internal import rendering  # the request type the emulator hands to its handlers

PODS = kmock.resource("", "v1", "pods")
EVENTS = kmock.resource("", "v1", "events")
SECRETS = kmock.resource("", "v1", "secrets")
SIDECAR = "airflow-xcom-sidecar"
EMPTY_XCOM = "__airflow_xcom_result_empty__"


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- selectors ----------------------------------------------------------------------------------

# The selector matchers are the shipped ones (containerkit.testing.selectors), not a copy.
from containerkit.testing.selectors import field_selector_matches, label_selector_matches  # noqa: E402


def _flag(value: str | None) -> bool:
    """A boolean query parameter: the Python client sends ``True``, Go clients ``true``."""
    return (value or "").lower() in ("true", "1")


# --- pod status building blocks -----------------------------------------------------------------


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def running() -> dict[str, Any]:
    return {"running": {"startedAt": now()}}


def terminated(exit_code: int, reason: str | None = None) -> dict[str, Any]:
    reason = reason or ("Completed" if exit_code == 0 else "Error")
    return {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now(), "finishedAt": now()}}


def _condition(
    kind: str, status: bool, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "status": "True" if status else "False", "lastTransitionTime": now()}
    if reason:
        out.update(reason=reason, message=message or "")
    return out


@dataclass
class Step:
    """After ``delay`` seconds: set the pod phase/containers, add events, append log lines."""

    delay: float = 0.0
    phase: str | None = None
    scheduled: bool | None = None
    unschedulable_message: str | None = None
    base: dict[str, Any] | None = None
    sidecar: dict[str, Any] | None = None
    pod_reason: tuple[str, str] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    logs: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    """What the kubelet does with a pod; ``xcom`` is what the sidecar's return.json holds."""

    steps: list[Step]
    xcom: Any = None
    forever: bool = False  # keep running after the last step until the pod is deleted


def _scheduled_event(pod: dict[str, Any]) -> tuple[str, str, str]:
    meta = pod["metadata"]
    return ("Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to fake-node-1")


def _created() -> Step:
    return Step(0.05, scheduled=True, base=waiting("ContainerCreating"), sidecar=waiting("ContainerCreating"))


def succeed(logs: list[str], xcom: Any = None, run_seconds: float = 0.3) -> Scenario:
    return Scenario(
        [
            _created(),
            Step(0.1, phase="Running", base=running(), sidecar=running(), logs=logs[:1],
                 events=[("Normal", "Started", "Started container base")]),
            Step(run_seconds, base=terminated(0), logs=logs[1:]),
        ],
        xcom=xcom,
    )  # fmt: skip


def fail(exit_code: int, logs: list[str], reason: str | None = None) -> Scenario:
    return Scenario(
        [
            Step(
                0.05, scheduled=True, base=waiting("ContainerCreating"), sidecar=waiting("ContainerCreating")
            ),
            Step(0.1, phase="Running", base=running(), sidecar=running(), logs=logs[:1]),
            Step(0.3, phase="Running", base=terminated(exit_code, reason), logs=logs[1:]),
        ]
    )


def oom_killed(logs: list[str]) -> Scenario:
    return fail(137, logs, reason="OOMKilled")


def run_forever(logs: list[str]) -> Scenario:
    return Scenario(
        [
            Step(
                0.05, scheduled=True, base=waiting("ContainerCreating"), sidecar=waiting("ContainerCreating")
            ),
            Step(0.1, phase="Running", base=running(), sidecar=running(), logs=logs),
        ],
        forever=True,
    )


def stuck_waiting(
    reason: str, message: str, events: list[tuple[str, str, str]], repeat: float = 1.0
) -> Scenario:
    """A container that never starts (pull / config errors); the kubelet re-records events."""
    first = Step(
        0.05, scheduled=True, base=waiting("ContainerCreating"), sidecar=waiting("ContainerCreating")
    )
    stuck = Step(0.2, base=waiting(reason, message), sidecar=running(), events=events)
    again = Step(repeat, events=events)
    return Scenario([first, stuck, again], forever=True)


def image_pull_error(image: str, registry_error: str) -> Scenario:
    failed = f'Failed to pull image "{image}": {registry_error}'
    return stuck_waiting(
        "ImagePullBackOff",
        f'Back-off pulling image "{image}"',
        [("Normal", "Pulling", f'Pulling image "{image}"'), ("Warning", "Failed", failed),
         ("Warning", "Failed", "Error: ErrImagePull"),
         ("Normal", "BackOff", f'Back-off pulling image "{image}"')],
    )  # fmt: skip


def config_error(message: str) -> Scenario:
    return stuck_waiting("CreateContainerConfigError", message, [("Warning", "Failed", f"Error: {message}")])


def unschedulable(message: str) -> Scenario:
    step = Step(0.05, scheduled=False, unschedulable_message=message,
                events=[("Warning", "FailedScheduling", message)])  # fmt: skip
    return Scenario([step, Step(1.0, events=[("Warning", "FailedScheduling", message)])], forever=True)


# --- the API server -----------------------------------------------------------------------------


class FakeApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with selectors, pod defaults, logs, exec and a kubelet hook."""

    kubelet: FakeKubelet

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if (
            raw_request.path.endswith("/exec")
            and raw_request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            return await self.kubelet.serve_exec(raw_request)
        return await super().__call__(raw_request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is not None and request.method == kmock.method.GET and _flag(request.params.get("watch")):
            object.__setattr__(request, "action", kmock.action.WATCH)  # kmock knows only "true"
        if resource == PODS and request.subresource == "log":
            return await self.kubelet.serve_logs(request)
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            self.kubelet.created_objects.append(json.loads(json.dumps(request.data)))
        created_pod = resource == PODS and request.action == kmock.action.CREATE
        if created_pod:
            meta = request.data.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            meta.setdefault("resourceVersion", "1")
            meta.setdefault("namespace", request.namespace)
            request.data["status"] = {"phase": "Pending", "qosClass": "Burstable"}
        response = await super()._handle(request)
        if (created_pod and response.status == 201) or (created_pod and response.status == 200):
            self.kubelet.start(request.data)
        return response

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
            labels_ok = label_selector_matches(labels, raw.get("metadata", {}).get("labels") or {})
            if labels_ok and field_selector_matches(fields, raw):
                out.append(raw)
        return out

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        async with self._lock:
            items = self._matching(request)
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        async with self._lock:
            existing = self._matching(request)
        for raw in existing:
            yield {"type": "ADDED", "object": raw}
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        assert request.resource is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for event in self._buses[request.resource]:
                    raw = event.get("object", {})
                    meta = raw.get("metadata", {})
                    if request.namespace is not None and meta.get("namespace") != request.namespace:
                        continue
                    if label_selector_matches(labels, meta.get("labels") or {}) and field_selector_matches(
                        fields, raw
                    ):
                        yield event


class FakeKubelet:
    """Plays one :class:`Scenario` per pod: status transitions, events, logs, xcom and exec."""

    def __init__(self, api: FakeApiServer) -> None:
        self.api = api
        self.scenarios: dict[str, Scenario] = {}
        self.default = succeed(["hello from the fake kubelet"])
        self.logs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.xcom: dict[tuple[str, str], Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.created: list[dict[str, Any]] = []  # every pod as submitted, for assertions
        self.created_objects: list[dict[str, Any]] = []  # every object of any kind as submitted
        self.broken_at: dict[str, float] = {}  # pod name -> time.time() it entered a failure state

    def start(self, pod: dict[str, Any]) -> None:
        self.created.append(json.loads(json.dumps(pod)))
        base = pod["spec"]["containers"][0]
        scenario = self.scenarios.get(base.get("image", ""), self.default)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.logs[key] = []
        self.xcom[key] = scenario.xcom
        task = asyncio.get_running_loop().create_task(self._play(key, pod, scenario))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _obj(self, key: tuple[str, str]) -> Any:
        okey = (PODS, key[0], key[1])
        if okey not in self.api.objects or self.api.objects[okey].deleted:
            return None
        return self.api.objects[okey]

    async def _play(self, key: tuple[str, str], pod: dict[str, Any], scenario: Scenario) -> None:
        names = [c["name"] for c in pod["spec"]["containers"]]
        containers: dict[str, dict[str, Any]] = {}
        steps = list(scenario.steps)
        index = 0
        while True:
            if index < len(steps):
                step = steps[index]
                index += 1
            elif scenario.forever:
                step = steps[-1] if steps[-1].events else Step(0.5)
            else:
                return
            await asyncio.sleep(step.delay)
            events = list(step.events)  # scenarios are shared between pods: never mutate them
            async with self.api._lock:
                obj = self._obj(key)
                if obj is None:
                    return  # deleted: the kubelet stops the pod
                patch: dict[str, Any] = {"status": {}}
                status = patch["status"]
                if step.phase:
                    status["phase"] = step.phase
                if step.scheduled is True:
                    pod["spec"]["nodeName"] = "fake-node-1"
                    patch["spec"] = {"nodeName": "fake-node-1"}
                    status["conditions"] = [_condition("PodScheduled", True)]
                    events.insert(0, _scheduled_event(pod))
                elif step.scheduled is False:
                    status["conditions"] = [
                        _condition("PodScheduled", False, "Unschedulable", step.unschedulable_message)
                    ]
                if step.pod_reason:
                    status["reason"], status["message"] = step.pod_reason
                for name, state in (("base", step.base), (SIDECAR, step.sidecar)):
                    real = names[0] if name == "base" else name
                    if state is not None and real in names:
                        containers[real] = state
                if containers:
                    status["containerStatuses"] = [
                        self._container_status(pod, name, containers[name])
                        for name in names
                        if name in containers
                    ]
                    if self._all_done(containers, names):
                        failed = any(s.get("terminated", {}).get("exitCode") for s in containers.values())
                        status["phase"] = "Failed" if failed else "Succeeded"
                waiting_reason = (step.base or {}).get("waiting", {}).get("reason")
                if step.scheduled is False or waiting_reason not in (None, "ContainerCreating"):
                    self.broken_at.setdefault(key[1], time.time())
                obj.patch(patch)
                await self.api._buses[PODS].put({"type": "MODIFIED", "object": obj.raw})
                stamp = now()
                self.logs[key].extend((stamp, line) for line in step.logs)
            for etype, reason, message in events:
                await self._event(key, etype, reason, message)

    @staticmethod
    def _all_done(containers: dict[str, dict[str, Any]], names: list[str]) -> bool:
        return all("terminated" in containers.get(n, {}) for n in names)

    @staticmethod
    def _container_status(pod: dict[str, Any], name: str, state: dict[str, Any]) -> dict[str, Any]:
        image = next(c.get("image", "") for c in pod["spec"]["containers"] if c["name"] == name)
        return {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": "running" in state,
            "started": "running" in state,
            "restartCount": 0,
            "state": state,
            "lastState": {},
        }

    async def _event(self, key: tuple[str, str], etype: str, reason: str, message: str) -> None:
        namespace, name = key
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace,
                         "uid": str(uuid.uuid4()), "resourceVersion": "1", "creationTimestamp": stamp},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name, "apiVersion": "v1"},
            "reason": reason,
            "message": message,
            "type": etype,
            "source": {"component": "default-scheduler" if reason == "FailedScheduling" else "kubelet"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }  # fmt: skip
        async with self.api._lock:
            self.api.objects[EVENTS, namespace, event["metadata"]["name"]] = event
            await self.api._buses[EVENTS].put({"type": "ADDED", "object": event})

    def _container_state(self, key: tuple[str, str], container: str) -> dict[str, Any] | None:
        obj = self._obj(key)
        if obj is None:
            return None
        for cs in obj.raw.get("status", {}).get("containerStatuses") or []:
            if cs["name"] == container:
                return dict(cs["state"])
        return {}

    async def serve_logs(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        key = (request.namespace or "default", request.name or "")
        pod = self._obj(key)
        if pod is None:
            return self._status(404, "NotFound", f'pods "{key[1]}" not found')
        container = request.params.get("container") or pod.raw["spec"]["containers"][0]["name"]
        state = self._container_state(key, container) or {}
        if "waiting" in state or not state:
            reason = state.get("waiting", {}).get("reason", "ContainerCreating")
            return self._status(
                400, "BadRequest", f'container "{container}" in pod "{key[1]}" is waiting to start: {reason}'
            )
        follow = _flag(request.params.get("follow"))
        stamps = _flag(request.params.get("timestamps"))
        tail = int(request.params["tailLines"]) if "tailLines" in request.params else None
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request._raw_request)
        sent = 0
        lines = self.logs.get(key, []) if container == pod.raw["spec"]["containers"][0]["name"] else []
        if tail is not None:
            sent = max(0, len(lines) - tail)
        while True:
            for stamp, line in lines[sent:]:
                await response.write(((f"{stamp} " if stamps else "") + line + "\n").encode())
            sent = len(lines)
            state = self._container_state(key, container)
            if not follow or state is None or "running" not in state:
                break
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    @staticmethod
    def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
        }
        return aiohttp.web.json_response({**body, "code": code}, status=code)

    async def serve_exec(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """``pods/exec`` in the xcom sidecar: read return.json, or stop the sidecar."""
        parts = raw_request.path.strip("/").split("/")
        key = (parts[parts.index("namespaces") + 1], parts[parts.index("pods") + 1])
        command = " ".join(raw_request.query.getall("command", []))
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw_request)  # type: ignore[arg-type]
        if "return.json" in command:
            value = self.xcom.get(key)
            out = EMPTY_XCOM if value is None else json.dumps(value)
            await ws.send_bytes(b"\x01" + out.encode())
        elif _flag(raw_request.query.get("stdin")):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.receive(), timeout=5)  # the kill command on stdin
            await self._stop_sidecar(key)
        await ws.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()
        return ws

    async def _stop_sidecar(self, key: tuple[str, str]) -> None:
        async with self.api._lock:
            obj = self._obj(key)
            if obj is None:
                return
            statuses = [dict(cs) for cs in obj.raw.get("status", {}).get("containerStatuses") or []]
            for cs in statuses:
                if cs["name"] == SIDECAR:
                    cs["state"] = terminated(0)
            done = all("terminated" in cs["state"] for cs in statuses)
            failed = any(cs["state"].get("terminated", {}).get("exitCode") for cs in statuses)
            patch: dict[str, Any] = {"status": {"containerStatuses": statuses}}
            if done:
                patch["status"]["phase"] = "Failed" if failed else "Succeeded"
            obj.patch(patch)


# --- the cluster as seen from synchronous test code ---------------------------------------------


class FakeCluster:
    """The fake API server on a background event loop, with a kubeconfig file pointing at it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-kube-api", daemon=True)
        self.api: FakeApiServer
        self.url = ""

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake Kubernetes API did not start")
        self.kubeconfig = self.workdir / "kubeconfig.yaml"
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_dict()))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.api = FakeApiServer()
        self.api.kubelet = FakeKubelet(self.api)
        async with self.api, kmock.Server(self.api) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for task in list(self.api.kubelet.tasks):
                task.cancel()

    def kubeconfig_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}
            ],
            "current-context": "fake",
        }

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server loop (the emulator's state belongs to that thread)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def script(self, image: str, scenario: Scenario) -> None:
        self.call(lambda: self.api.kubelet.scenarios.__setitem__(image, scenario))

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        def live() -> list[dict[str, Any]]:
            return [
                obj.raw
                for (res, ns, _), obj in self.api.objects.items()
                if res == PODS and not obj.deleted and (namespace is None or ns == namespace)
            ]

        return list(self.call(live))

    def objects(self, resource: Any) -> Iterator[dict[str, Any]]:
        def live() -> list[dict[str, Any]]:
            return [
                obj.raw
                for (res, _, _), obj in self.api.objects.items()
                if res == resource and not obj.deleted
            ]

        return iter(self.call(live))

    def created_objects(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.call(lambda: list(self.api.kubelet.created_objects)) if o.get("kind") == kind]

    def live(self, resource: Any) -> list[dict[str, Any]]:
        return list(self.objects(resource))

    def broken_at(self) -> dict[str, float]:
        """When each pod entered its failure state (wall clock), for fail-fast measurements."""
        return dict(self.call(lambda: dict(self.api.kubelet.broken_at)))

    def created_pods(self) -> list[dict[str, Any]]:
        return list(self.call(lambda: list(self.api.kubelet.created)))

    def reset(self) -> None:
        """Forget every object and scenario between tests."""

        def clear() -> None:
            for key in list(self.api.objects):
                del self.api.objects[key]
            self.api.kubelet.scenarios.clear()
            self.api.kubelet.created.clear()
            self.api.kubelet.created_objects.clear()
            self.api.kubelet.broken_at.clear()

        self.call(clear)
