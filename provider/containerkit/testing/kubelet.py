"""The kubelet of the test double: it runs each pod's containers on the local Docker engine.

One :class:`PodWorker` per pod walks the path a real node does: admission (refuse what would expose
the host), scheduling against a configurable node capacity, image presence (never a pull), volume
set-up, a sandbox container that holds the pod's network namespace, init containers in order (native
sidecars stay up), then the main containers. Container states, exit codes, ``OOMKilled``, restart
counts and times in the pod's ``status`` come from ``docker inspect`` of the real containers; events
carry the kubelet's reasons and wording, so ``containerkit.diagnostics`` reads realistic evidence.

Everything the kubelet creates on the engine carries :data:`LABEL_CLUSTER`; :meth:`Kubelet.close`
removes it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from containerkit.testing import podspec
from containerkit.testing.volumes import MountError, PodVolume, archive, plan_volumes

if TYPE_CHECKING:
    import docker

    from containerkit.testing.api import ApiServer

__all__ = ["LABEL_CLUSTER", "Kubelet", "NodeConfig"]

LABEL_CLUSTER = "containerkit.testing/cluster"
LABEL_POD_UID = "containerkit.testing/pod-uid"
LABEL_ROLE = "containerkit.testing/role"
LABEL_OWNER = "containerkit.testing/owner"
OWNER = f"{socket.gethostname()}:{os.getpid()}"
"""The process that created an engine object: a later cluster sweeps what a killed process left behind."""
LOG = logging.getLogger(__name__)


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _k8s_time(docker_time: str | None) -> str | None:
    if not docker_time or docker_time.startswith("0001-"):
        return None
    return docker_time[:19] + "Z"


@dataclass(frozen=True)
class NodeConfig:
    """The one node of the test double: its name, allocatable capacity, and what it may run."""

    name: str = "containerkit-testing-node"
    cpu: Decimal = Decimal(2)
    memory: Decimal = Decimal(4 * 1024**3)
    labels: Mapping[str, str] = field(default_factory=dict)
    host_path_allow: tuple[str, ...] = ()
    pause_image: str | None = None
    poll_interval: float = 0.1
    restart_backoff: tuple[float, float] = (1.0, 10.0)  # first and largest CrashLoopBackOff delay


class PodDeleted(Exception):
    """The pod's worker stops: the pod is being deleted."""


class PodWorker:
    """Runs one pod to its end and keeps its ``status`` in the API."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.key: tuple[str, str] = (meta["namespace"], meta["name"])
        self.uid: str = meta["uid"]
        spec = pod["spec"]
        self.init_specs: list[dict[str, Any]] = list(spec.get("initContainers") or [])
        self.main_specs: list[dict[str, Any]] = list(spec.get("containers") or [])
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.conditions: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}  # container name -> containerStatus
        self.ids: dict[str, str] = {}  # container name -> engine id
        self.volumes: list[PodVolume] = []
        self.mountpoints: dict[str, str] = {}
        self.sandbox: str | None = None
        self.pod_ip = ""
        self.start_time: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.deleting = False
        self.reserved: dict[str, Decimal] = {}
        self._published: Any = None

    # --- status ---------------------------------------------------------------------------

    def _condition(self, kind: str, ok: bool, reason: str | None = None, message: str | None = None) -> None:
        old = self.conditions.get(kind)
        value = "True" if ok else "False"
        if old and old["status"] == value and old.get("reason") == reason:
            return
        cond: dict[str, Any] = {
            "type": kind,
            "status": value,
            "lastTransitionTime": now(),
            "lastProbeTime": None,
        }
        if reason:
            cond.update(reason=reason, message=message or "")
        self.conditions[kind] = cond

    def _status_of(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        name = spec["name"]
        if name not in self.statuses:
            self.statuses[name] = {
                "name": name,
                "image": spec.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {
                    "waiting": {"reason": "PodInitializing" if self.init_specs else "ContainerCreating"}
                },
                "lastState": {},
            }
        return self.statuses[name]

    def set_waiting(self, spec: Mapping[str, Any], reason: str, message: str | None = None) -> None:
        waiting: dict[str, Any] = {"reason": reason}
        if message:
            waiting["message"] = message
        status = self._status_of(spec)
        status.update(state={"waiting": waiting}, ready=False, started=False)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": self.phase,
            "conditions": list(self.conditions.values()),
            "qosClass": self._qos(),
            "hostIP": "127.0.0.1",
        }
        if self.start_time:
            out["startTime"] = self.start_time
        if self.pod_ip:
            out.update(podIP=self.pod_ip, podIPs=[{"ip": self.pod_ip}])
        if self.reason:
            out.update(reason=self.reason, message=self.message or "")
        inits = [self.statuses[c["name"]] for c in self.init_specs if c["name"] in self.statuses]
        mains = [self.statuses[c["name"]] for c in self.main_specs if c["name"] in self.statuses]
        if inits:
            out["initContainerStatuses"] = inits
        if mains:
            out["containerStatuses"] = mains
        return out

    def _qos(self) -> str:
        containers = [*self.init_specs, *self.main_specs]
        res = [c.get("resources") or {} for c in containers]
        if not any(r.get("limits") or r.get("requests") for r in res):
            return "BestEffort"
        guaranteed = all(
            (r.get("limits") or {}).get(k)
            and (r.get("requests") or r.get("limits") or {}).get(k) == (r.get("limits") or {}).get(k)
            for r in res
            for k in ("cpu", "memory")
        )
        return "Guaranteed" if guaranteed else "Burstable"

    async def publish(self) -> None:
        from containerkit.testing.api import trace

        status = self.status()
        if status == self._published:
            return
        trace(
            f"publish {self.key[1]} {self.phase} "
            + " ".join(f"{n}={next(iter(s['state']))}" for n, s in self.statuses.items())
        )
        self._published = status
        patch: dict[str, Any] = {"status": status}
        if self.conditions.get("PodScheduled", {}).get("status") == "True":
            patch["spec"] = {"nodeName": self.kubelet.node.name}
        await self.kubelet.api.patch_pod(self.key, patch)

    async def event(self, etype: str, reason: str, message: str, component: str = "kubelet") -> None:
        from containerkit.testing.api import trace

        trace(f"event {self.key[1]} {reason}: {message[:100]}")
        await self.kubelet.api.record_event(
            self.pod, etype, reason, message, component, self.kubelet.node.name
        )

    # --- the pod's life -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._refused():
                return
            await self._schedule()
            deadline = self.pod["spec"].get("activeDeadlineSeconds")
            body = self._start_and_run()
            if deadline:
                try:
                    await asyncio.wait_for(body, timeout=float(deadline))
                except TimeoutError:
                    await self._deadline_exceeded()
            else:
                await body
        except (PodDeleted, asyncio.CancelledError):
            pass
        except Exception as exc:  # the kubelet must not die silently: say it on the pod
            LOG.exception("containerkit.testing kubelet failed on pod %s/%s", *self.key)
            self.phase, self.reason, self.message = "Failed", "KubeletError", f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                await self.event("Warning", "Failed", f"containerkit.testing kubelet error: {exc}")
                await self.publish()
        finally:
            self.kubelet.release(self)

    def _check_deleted(self) -> None:
        if self.deleting:
            raise PodDeleted

    async def _refused(self) -> bool:
        refused = podspec.refusals(self.pod, self.kubelet.node.host_path_allow)
        if not refused:
            return False
        self.phase, self.reason = "Failed", "Forbidden"
        self.message = (
            "containerkit.testing (a test double that runs pods on the local Docker engine) refuses a pod "
            "that would expose the host: " + "; ".join(refused)
        )
        await self.event("Warning", "Forbidden", self.message)
        await self.publish()
        return True

    async def _schedule(self) -> None:
        node = self.kubelet.node
        requests = podspec.effective_requests(self.pod)
        selector = self.pod["spec"].get("nodeSelector") or {}
        last = ""
        while True:
            self._check_deleted()
            reasons = []
            if any(
                node.labels.get(k) != v and not (k == "kubernetes.io/hostname" and v == node.name)
                for k, v in selector.items()
            ):
                reasons.append("1 node(s) didn't match Pod's node affinity/selector")
            free = self.kubelet.free_capacity()
            for resource in ("cpu", "memory"):
                if requests.get(resource, Decimal(0)) > free[resource]:
                    reasons.append(f"1 Insufficient {resource}")
            missing_claims = [
                claim
                for claim in self._claims()
                if self.kubelet.api.lookup("PersistentVolumeClaim", self.key[0], claim) is None
            ]
            if missing_claims:
                reasons.append(f'persistentvolumeclaim "{missing_claims[0]}" not found')
            if not reasons:
                break
            preemption = (
                "1 Preemption is not helpful for scheduling"
                if missing_claims and len(reasons) == 1
                else "1 No preemption victims found for incoming pod"
            )
            message = (
                f"0/1 nodes are available: {', '.join(reasons)}. "
                f"preemption: 0/1 nodes are available: {preemption}."
            )
            self._condition("PodScheduled", False, "Unschedulable", message)
            if message != last:
                await self.publish()
            await self.event("Warning", "FailedScheduling", message, "default-scheduler")
            last = message
            await asyncio.sleep(1.0)
        self.reserved = requests
        self.kubelet.reserve(self)
        self._condition("PodScheduled", True)
        self.start_time = now()
        ns, name = self.key
        await self.event(
            "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node.name}", "default-scheduler"
        )
        for c in [*self.init_specs, *self.main_specs]:
            self._status_of(c)
        self._condition(
            "Initialized", not self.init_specs, "ContainersNotInitialized" if self.init_specs else None
        )
        self._condition("Ready", False, "ContainersNotReady")
        self._condition("ContainersReady", False, "ContainersNotReady")
        await self.publish()

    def _claims(self) -> list[str]:
        return [
            v["persistentVolumeClaim"].get("claimName", "")
            for v in self.pod["spec"].get("volumes") or []
            if "persistentVolumeClaim" in v
        ]

    async def _start_and_run(self) -> None:
        await self._images_present()
        await self._set_up_volumes()
        await self._create_sandbox()
        # The first containers are created while the sandbox starts (they only need its id).
        early = [c for c in (self.init_specs[:1] or self.main_specs) if "status.podIP" not in json.dumps(c)]
        await asyncio.gather(self._start_sandbox(), *(self._create(c) for c in early))
        if not await self._run_init_containers():
            return
        self._condition("Initialized", True)
        await self._run_main_containers()

    # --- images ---------------------------------------------------------------------------

    async def _images_present(self) -> None:
        """The kubelet never pulls: a missing image is ``ErrImagePull`` then ``ImagePullBackOff``."""
        specs = [*self.init_specs, *self.main_specs]
        reported: set[str] = set()
        while True:
            self._check_deleted()
            missing: dict[str, str] = {}
            for c in specs:
                image = c.get("image", "")
                try:
                    info = await self.kubelet.docker(self.kubelet.client.api.inspect_image, image)
                except Exception as exc:
                    missing[c["name"]] = str(getattr(exc, "explanation", None) or exc)
                    continue
                self.kubelet.images[image] = info
                if image not in reported:
                    reported.add(image)
                    await self.event(
                        "Normal", "Pulled", f'Container image "{image}" already present on machine'
                    )
            if not missing:
                return
            first = True
            for c in specs:
                if c["name"] not in missing:
                    continue
                image = c.get("image", "")
                engine = missing[c["name"]]
                pull = (
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                    f'unpack image "{image}": not found on the local engine ({engine}); containerkit.testing '
                    "(a test double) never pulls: build, tag or load the image on the engine first"
                )
                if first:
                    self.set_waiting(c, "ErrImagePull", pull)
                    await self.event("Normal", "Pulling", f'Pulling image "{image}"')
                    await self.event("Warning", "Failed", pull)
                    await self.event("Warning", "Failed", "Error: ErrImagePull")
                    await self.publish()
                    await asyncio.sleep(0.5)
                    self.set_waiting(c, "ImagePullBackOff", f'Back-off pulling image "{image}"')
                    await self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                    await self.event("Warning", "Failed", "Error: ImagePullBackOff")
                first = False
            await self.publish()
            await asyncio.sleep(2.0)

    # --- volumes and the sandbox ----------------------------------------------------------

    async def _set_up_volumes(self) -> None:
        while True:
            self._check_deleted()
            try:
                self.volumes = plan_volumes(self.pod, self.kubelet.api.lookup, self.kubelet.name)
                break
            except MountError as exc:
                await self.event("Warning", "FailedMount", str(exc))
                for c in [*self.init_specs, *self.main_specs]:
                    self.set_waiting(c, "ContainerCreating")
                await self.publish()
                await asyncio.sleep(2.0)
        await asyncio.gather(*(self._engine_volume(v) for v in self.volumes if v.engine_name is not None))

    async def _engine_volume(self, v: PodVolume) -> None:
        assert v.engine_name is not None
        labels = self.kubelet.labels(self, role="volume")
        if v.keep:
            labels = {LABEL_CLUSTER: self.kubelet.name, LABEL_ROLE: "pvc"}
        volume = await self.kubelet.docker(self.kubelet.ensure_volume, v.engine_name, labels, v.driver_opts)
        self.mountpoints[v.name] = volume.attrs.get("Mountpoint", "")

    def _sub_dirs(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        kinds = {v.name: v for v in self.volumes}
        for c in [*self.init_specs, *self.main_specs]:
            for m in c.get("volumeMounts") or []:
                v = kinds.get(m.get("name", ""))
                if m.get("subPath") and v is not None and v.kind in ("emptyDir", "persistentVolumeClaim"):
                    out.setdefault(v.name, []).append(m["subPath"])
        return out

    async def _create_sandbox(self) -> None:
        """The pause container: the pod's network namespace and hostname; writes the volumes' files."""
        from containerkit.testing.api import trace

        k = self.kubelet
        image = k.node.pause_image or self.main_specs[0].get("image", "")
        mounts = [
            k.mount_type(target=f"/ck/volumes/{v.name}", source=v.engine_name, type="volume")
            for v in self.volumes
            if v.engine_name is not None
        ]
        host_config = k.client.api.create_host_config(
            network_mode=k.network_name,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            mem_limit=32 * 1024**2,
            init=True,
            mounts=mounts,
        )
        created = await k.docker(
            k.client.api.create_container,
            image,
            entrypoint=["sleep"],
            command=["2147483647"],
            name=k.engine_name(self, "sandbox"),
            hostname=self.key[1][:63],
            labels=k.labels(self, role="sandbox"),
            user="65534:65534",
            host_config=host_config,
        )
        self.sandbox = str(created["Id"])
        self._check_deleted()
        trace(f"sandbox created {self.key[1]}")
        data = archive(self.volumes, self._sub_dirs())
        if data is not None:
            await k.docker(k.client.api.put_archive, self.sandbox, "/ck/volumes", data)
        trace(f"volumes written {self.key[1]}")

    async def _start_sandbox(self) -> None:
        from containerkit.testing.api import trace

        k = self.kubelet
        assert self.sandbox is not None
        image = k.node.pause_image or self.main_specs[0].get("image", "")
        try:
            await k.docker(k.client.api.start, self.sandbox)
            trace(f"sandbox started {self.key[1]}")
        except Exception as exc:
            message = (
                f"Failed to create pod sandbox: {getattr(exc, 'explanation', None) or exc}; "
                f"containerkit.testing runs `sleep` from {image} as the pod sandbox: set "
                "LocalCluster(pause_image=...) to an image that has it"
            )
            await self.event("Warning", "FailedCreatePodSandBox", message)
            raise
        info = await k.docker(k.client.api.inspect_container, self.sandbox)
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        self.pod_ip = (networks.get(k.network_name) or {}).get("IPAddress", "")

    # --- containers -----------------------------------------------------------------------

    def _mounts(self, spec: Mapping[str, Any]) -> list[Any]:
        k = self.kubelet
        by_name = {v.name: v for v in self.volumes}
        mounts = []
        for m in spec.get("volumeMounts") or []:
            v = by_name.get(m.get("name", ""))
            if v is None:
                raise podspec.ConfigError(f'volumeMount "{m.get("name")}" refers to no volume of the pod')
            read_only = bool(m.get("readOnly")) or v.read_only
            sub = (m.get("subPath") or "").strip("/")
            if v.engine_name is None:
                source = v.host_path or ""
                mounts.append(
                    k.mount_type(
                        target=m["mountPath"],
                        source=f"{source}/{sub}" if sub else source,
                        type="bind",
                        read_only=read_only,
                    )
                )
            elif sub:
                mounts.append(
                    k.mount_type(
                        target=m["mountPath"],
                        source=f"{self.mountpoints[v.name]}/{sub}",
                        type="bind",
                        read_only=read_only,
                    )
                )
            else:
                mounts.append(
                    k.mount_type(
                        target=m["mountPath"], source=v.engine_name, type="volume", read_only=read_only
                    )
                )
        return mounts

    async def _create(self, spec: Mapping[str, Any]) -> str | None:
        """Create one container; a config problem is ``CreateContainerConfigError`` and a retry later."""
        k = self.kubelet
        name = spec["name"]
        ns, pod_name = self.key
        where = f'pod: "{pod_name}_{ns}({self.uid})", container: {name}'
        image_info = k.images.get(spec.get("image", "")) or {}
        try:
            env = podspec.resolve_env(spec, self.pod, k.api.lookup, self.pod_ip)
            user = podspec.run_user(spec, self.pod, (image_info.get("Config") or {}).get("User") or "", where)
            options = {"host": podspec.security_options(spec, self.pod)}
            mounts = self._mounts(spec)
        except podspec.ConfigError as exc:
            self.set_waiting(spec, "CreateContainerConfigError", str(exc))
            await self.event("Warning", "Failed", f"Error: {exc}")
            await self.publish()
            return None
        host_config = k.client.api.create_host_config(
            network_mode=f"container:{self.sandbox}",
            mounts=mounts,
            init=True,
            **options.pop("host"),
            **podspec.engine_limits(spec),
        )
        created = await k.docker(
            k.client.api.create_container,
            spec.get("image", ""),
            entrypoint=podspec.expand_args(spec.get("command"), env),
            command=podspec.expand_args(spec.get("args"), env),
            environment=env,
            working_dir=spec.get("workingDir"),
            user=user,
            name=k.engine_name(self, name),
            labels={**k.labels(self, role="container"), "containerkit.testing/container": name},
            stdin_open=bool(spec.get("stdin")),
            tty=bool(spec.get("tty")),
            host_config=host_config,
        )
        cid = str(created["Id"])
        self.ids[name] = cid
        status = self._status_of(spec)
        repo_digests = image_info.get("RepoDigests") or []
        status["imageID"] = (
            f"docker-pullable://{repo_digests[0]}" if repo_digests else f"docker://{image_info.get('Id', '')}"
        )
        status["containerID"] = f"docker://{cid}"
        await self.event("Normal", "Created", f"Created container {name}")
        return cid

    async def _create_retrying(self, spec: Mapping[str, Any]) -> str:
        if spec["name"] in self.ids:
            return self.ids[spec["name"]]
        while True:
            self._check_deleted()
            cid = await self._create(spec)
            if cid is not None:
                return cid
            await asyncio.sleep(1.0)

    async def _start(self, spec: Mapping[str, Any]) -> None:
        k = self.kubelet
        name = spec["name"]
        try:
            await k.docker(k.client.api.start, self.ids[name])
        except Exception as exc:
            message = str(getattr(exc, "explanation", None) or exc)
            await self.event("Warning", "Failed", f"Error: failed to start container {name!r}: {message}")
            self.statuses[name]["state"] = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": message,
                    "startedAt": now(),
                    "finishedAt": now(),
                    "containerID": f"docker://{self.ids[name]}",
                }
            }
            return
        await self.event("Normal", "Started", f"Started container {name}")
        await self._refresh(spec)

    async def _refresh(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The container's state from ``docker inspect``."""
        k = self.kubelet
        name = spec["name"]
        info = await k.docker(k.client.api.inspect_container, self.ids[name])
        st = info["State"]
        status = self._status_of(spec)
        cid = f"docker://{self.ids[name]}"
        if st.get("Running"):
            state: dict[str, Any] = {"running": {"startedAt": _k8s_time(st.get("StartedAt"))}}
            status.update(ready=True, started=True)
        elif st.get("Status") in ("exited", "dead"):
            code = int(st.get("ExitCode") or 0)
            reason = "OOMKilled" if st.get("OOMKilled") else ("Completed" if code == 0 else "Error")
            term = {
                "exitCode": code,
                "reason": reason,
                "startedAt": _k8s_time(st.get("StartedAt")),
                "finishedAt": _k8s_time(st.get("FinishedAt")),
                "containerID": cid,
            }
            if st.get("Error"):
                term["message"] = st["Error"]
            state = {"terminated": term}
            status.update(ready=False, started=False)
        else:
            return status
        status["state"] = state
        return status

    def _restarts(self, spec: Mapping[str, Any], code: int, *, sidecar: bool = False) -> bool:
        if sidecar or spec.get("restartPolicy") == "Always":
            return True
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)

    async def _back_off(self, spec: Mapping[str, Any]) -> None:
        """CrashLoopBackOff, then the same container started again (its log continues)."""
        status = self.statuses[spec["name"]]
        last = status["state"]
        first, cap = self.kubelet.node.restart_backoff
        delay = min(cap, first * (2 ** status["restartCount"]))
        ns, name = self.key
        status.update(lastState=last, ready=False, started=False)
        status["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": (
                    f"back-off {delay:g}s restarting failed container={spec['name']} "
                    f"pod={name}_{ns}({self.uid})"
                ),
            }
        }
        await self.event(
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {spec['name']} in pod {name}_{ns}({self.uid})",
        )
        await self.publish()
        await asyncio.sleep(delay)
        self._check_deleted()
        status["restartCount"] += 1
        await self._start(spec)

    async def _wait_running(self, spec: Mapping[str, Any]) -> None:
        while "waiting" in self._status_of(spec)["state"]:
            self._check_deleted()
            await asyncio.sleep(self.kubelet.node.poll_interval)
            await self._refresh(spec)

    async def _run_init_containers(self) -> bool:
        for spec in self.init_specs:
            sidecar = spec.get("restartPolicy") == "Always"
            await self._create_retrying(spec)
            await self._start(spec)
            await self.publish()
            if sidecar:
                await self._wait_running(spec)
                continue
            while True:
                self._check_deleted()
                status = await self._refresh(spec)
                term = status["state"].get("terminated")
                if term is None:
                    await self.publish()
                    await asyncio.sleep(self.kubelet.node.poll_interval)
                    continue
                if term["exitCode"] == 0:
                    break
                if self.restart_policy == "Never":
                    self.phase = "Failed"
                    self._condition(
                        "Initialized",
                        False,
                        "ContainersNotInitialized",
                        f"containers with incomplete status: [{spec['name']}]",
                    )
                    await self.publish()
                    await self._stop_all(grace=self._grace())
                    await self.publish()
                    return False
                await self._back_off(spec)
            await self.publish()
        return True

    def _grace(self) -> int:
        return int(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    async def _run_main_containers(self) -> None:
        await asyncio.gather(*(self._create_retrying(spec) for spec in self.main_specs))
        await asyncio.gather(*(self._start(spec) for spec in self.main_specs))
        sidecars = [s for s in self.init_specs if s.get("restartPolicy") == "Always"]
        self.phase = "Running"
        poll = self.kubelet.node.poll_interval
        while True:
            self._check_deleted()
            done = True
            for spec in [*sidecars, *self.main_specs]:
                status = await self._refresh(spec)
                term = status["state"].get("terminated")
                if term is None:
                    done = done and spec in sidecars
                    continue
                if self._restarts(spec, term["exitCode"], sidecar=spec in sidecars):
                    await self._back_off(spec)
                    done = done and spec in sidecars
            all_ready = all(self.statuses[s["name"]].get("ready") for s in [*sidecars, *self.main_specs])
            self._condition("ContainersReady", all_ready, None if all_ready else "ContainersNotReady")
            self._condition("Ready", all_ready, None if all_ready else "ContainersNotReady")
            if done:
                break
            await self.publish()
            await asyncio.sleep(poll)
        for spec in reversed(sidecars):  # sidecars stop after the main containers, in reverse order
            await self._stop(spec["name"], self._grace())
            await self._refresh(spec)
        failed = any(
            self.statuses[s["name"]]["state"].get("terminated", {}).get("exitCode") for s in self.main_specs
        )
        self.phase = "Failed" if failed else "Succeeded"
        self._condition("Ready", False, "PodCompleted")
        self._condition("ContainersReady", False, "PodCompleted")
        await self.publish()
        self.kubelet.release(self)

    async def _deadline_exceeded(self) -> None:
        message = "Pod was active on the node longer than the specified deadline"
        await self.event("Warning", "DeadlineExceeded", message)
        await self._stop_all(grace=self._grace())
        for spec in [*self.init_specs, *self.main_specs]:
            if spec["name"] in self.ids:
                await self._refresh(spec)
        self.phase, self.reason, self.message = "Failed", "DeadlineExceeded", message
        await self.publish()

    async def _stop(self, name: str, grace: int) -> None:
        k = self.kubelet
        cid = self.ids.get(name)
        if cid is None:
            return
        info = await k.docker(k.client.api.inspect_container, cid)
        if info["State"].get("Running"):
            await self.event("Normal", "Killing", f"Stopping container {name}")
            await k.docker(k.client.api.stop, cid, timeout=grace)

    async def _stop_all(self, grace: int) -> None:
        await asyncio.gather(*(self._stop(name, grace) for name in list(self.ids)), return_exceptions=True)

    async def tear_down(self, grace: int) -> None:
        """Stop (honouring ``grace``) and remove the pod's containers, sandbox and per-pod volumes."""
        self.deleting = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        with contextlib.suppress(Exception):
            await self._stop_all(grace)
        k = self.kubelet
        containers = [*self.ids.values(), *([self.sandbox] if self.sandbox else [])]
        await asyncio.gather(
            *(k.docker(k.client.api.remove_container, cid, force=True, v=False) for cid in containers),
            return_exceptions=True,
        )
        volumes = [v.engine_name for v in self.volumes if v.engine_name and not v.keep]
        await asyncio.gather(
            *(k.docker(k.client.api.remove_volume, name, force=True) for name in volumes),
            return_exceptions=True,
        )
        k.release(self)


class Kubelet:
    """All pods of the cluster, the engine client, and the node's bookkeeping."""

    def __init__(self, api: ApiServer, client: docker.DockerClient, name: str, node: NodeConfig) -> None:
        import docker.types

        self.api = api
        self.client = client
        self.name = name
        self.node = node
        self.network_name = f"ck-{name}"
        self.mount_type = docker.types.Mount
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self._reserved: dict[str, PodWorker] = {}
        self._executor = ThreadPoolExecutor(max_workers=48, thread_name_prefix="ck-kubelet")
        self._tasks: set[asyncio.Task[Any]] = set()

    async def docker(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One engine call, off the API's event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def labels(self, worker: PodWorker, role: str) -> dict[str, str]:
        ns, name = worker.key
        return {
            LABEL_CLUSTER: self.name,
            LABEL_OWNER: OWNER,
            LABEL_POD_UID: worker.uid,
            LABEL_ROLE: role,
            "containerkit.testing/namespace": ns,
            "containerkit.testing/pod": name,
        }

    def engine_name(self, worker: PodWorker, container: str) -> str:
        ns, name = worker.key
        return f"ck-{self.name}-{ns}-{name}-{container}-{worker.uid[:6]}"[:250]

    def ensure_volume(self, name: str, labels: dict[str, str], driver_opts: dict[str, str] | None) -> Any:
        import docker.errors

        try:
            return self.client.volumes.get(name)
        except docker.errors.NotFound:
            return self.client.volumes.create(name=name, labels=labels, driver_opts=driver_opts or None)

    def start_network(self) -> None:
        import docker.errors

        try:
            self.client.networks.get(self.network_name)
        except docker.errors.NotFound:
            labels = {LABEL_CLUSTER: self.name, LABEL_OWNER: OWNER}
            self.client.networks.create(self.network_name, driver="bridge", labels=labels)

    # --- capacity -------------------------------------------------------------------------

    def free_capacity(self) -> dict[str, Decimal]:
        free = {"cpu": self.node.cpu, "memory": self.node.memory}
        for worker in self._reserved.values():
            for k, v in worker.reserved.items():
                free[k] -= v
        return free

    def reserve(self, worker: PodWorker) -> None:
        self._reserved[worker.uid] = worker

    def release(self, worker: PodWorker) -> None:
        self._reserved.pop(worker.uid, None)

    # --- pods -----------------------------------------------------------------------------

    def start(self, pod: dict[str, Any]) -> None:
        worker = PodWorker(self, pod)
        self.workers[worker.key] = worker
        worker.task = asyncio.get_running_loop().create_task(worker.run(), name=f"pod {worker.key}")

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def delete(self, key: tuple[str, str], grace: int, finish: Callable[[], Any]) -> None:
        """Graceful deletion: stop and remove the containers, then let the API drop the object."""
        worker = self.workers.pop(key, None)
        if worker is not None:
            await worker.tear_down(grace)
        await finish()

    async def close(self) -> None:
        """Remove every engine object labelled with this cluster (also those of earlier crashes)."""
        for worker in list(self.workers.values()):
            worker.deleting = True
            if worker.task is not None:
                worker.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.docker(remove_labelled, self.client, self.name)
        self._executor.shutdown(wait=False, cancel_futures=True)


def remove_labelled(client: docker.DockerClient, cluster: str, owner: str | None = None) -> dict[str, int]:
    """Force-remove every container, volume and network labelled with ``cluster``; counts removed."""
    selector = {"label": [f"{LABEL_CLUSTER}={cluster}", *([f"{LABEL_OWNER}={owner}"] if owner else [])]}
    counts = {"containers": 0, "volumes": 0, "networks": 0}
    for c in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(Exception):
            c.remove(force=True)
            counts["containers"] += 1
    for v in client.volumes.list(filters=selector):
        with contextlib.suppress(Exception):
            v.remove(force=True)
            counts["volumes"] += 1
    for n in client.networks.list(filters=selector):
        with contextlib.suppress(Exception):
            n.remove()
            counts["networks"] += 1
    return counts


def sweep_orphans(client: docker.DockerClient) -> list[str]:
    """Remove the engine objects of clusters whose owning process on this host is gone (killed runs)."""
    host = socket.gethostname()
    dead: set[tuple[str, str]] = set()
    listings = (
        client.containers.list(all=True, filters={"label": LABEL_OWNER}),
        client.volumes.list(filters={"label": LABEL_OWNER}),
        client.networks.list(filters={"label": LABEL_OWNER}),
    )
    for listing in listings:
        for obj in listing:
            labels = obj.attrs.get("Labels") or (obj.attrs.get("Config") or {}).get("Labels") or {}
            owner_host, _, pid = str(labels.get(LABEL_OWNER, "")).rpartition(":")
            if owner_host != host or not pid.isdigit() or LABEL_CLUSTER not in labels:
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                dead.add((labels[LABEL_CLUSTER], labels[LABEL_OWNER]))
            except PermissionError:
                pass  # alive, another user's
    for cluster, owner in sorted(dead):
        remove_labelled(client, cluster, owner)
    return sorted(cluster for cluster, _ in dead)
