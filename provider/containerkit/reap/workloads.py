"""The task containers (Docker) and pods (Kubernetes) a reaper may remove, read from their labels.

``SecureDockerOperator`` labels each container ``containerkit.managed=true`` plus
``containerkit.dag_id/task_id/run_id/try_number/map_index`` with the exact ids. Kubernetes pods carry
the stock ``KubernetesPodOperator`` labels (``kubernetes_pod_operator=True``, ``dag_id``, ``task_id``,
``run_id``, ``try_number``, ``map_index`` when mapped), whose values the stock operator makes label-safe
(a run id with ``:`` or ``+`` ends in a hash): those are matched in their label-safe form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from containerkit.docker.labels import DAG_ID, MANAGED_LABEL, MAP_INDEX, RUN_ID, TASK_ID, TRY_NUMBER
from containerkit.errors import ContainerkitError

KPO_MARKER = "kubernetes_pod_operator"
LOG_TAIL = 5


class WorkloadSourceError(ContainerkitError):
    """The Docker engine or the Kubernetes API could not be listed: the message names the fix."""


@dataclass(frozen=True)
class Workload:
    """One task container or pod, with the task instance its labels name.

    ``exact`` is False for pods: their label values are the label-safe forms of the ids.
    """

    kind: Literal["container", "pod"]
    id: str
    name: str
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int | None
    created: dt.datetime
    status: str
    exact: bool

    def describe(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        tried = f" try {self.try_number}" if self.try_number is not None else ""
        task = f"{self.dag_id}.{self.task_id}{mapped}"
        return f"{self.kind} {self.name} ({task} run {self.run_id}{tried}, {self.status})"


def _int(value: str | None, default: int | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _index(value: str | None) -> int:
    index = _int(value, -1)
    return -1 if index is None else index


def parse_labels(pairs: Sequence[str]) -> list[str]:
    """``key=value`` or ``key`` selectors as given on the command line, checked."""
    for pair in pairs:
        key = pair.split("=", 1)[0]
        if not key or " " in pair or "," in pair:
            raise WorkloadSourceError(
                f"--label {pair!r}: give one label as key=value (or key), e.g. containerkit.test=reap"
            )
    return list(pairs)


class DockerWorkloads:
    """Task containers on one Docker engine."""

    def __init__(self, client: Any | None = None, *, timeout: float = 30.0) -> None:
        if client is None:
            import docker
            from docker.errors import DockerException

            try:
                client = docker.APIClient(**_client_kwargs(docker, timeout))
                client.ping()
            except DockerException as exc:
                raise WorkloadSourceError(
                    f"cannot reach the Docker engine ({_short(exc)}): set DOCKER_HOST to the engine the "
                    "tasks run on, or pass --no-docker to reap only pods"
                ) from None
        self.client = client

    def list(self, labels: Sequence[str] = ()) -> Iterator[Workload]:
        from docker.errors import DockerException

        try:
            found = self.client.containers(all=True, filters={"label": [f"{MANAGED_LABEL}=true", *labels]})
        except DockerException as exc:
            raise WorkloadSourceError(
                f"cannot list containers on the Docker engine ({_short(exc)})"
            ) from None
        for summary in found:
            theirs: Mapping[str, str] = summary.get("Labels") or {}
            ids = [theirs.get(k, "") for k in (DAG_ID, TASK_ID, RUN_ID)]
            if not all(ids):
                continue  # a containerkit container outside a task run (e.g. dag.test of a lint job)
            yield Workload(
                kind="container",
                id=summary["Id"],
                name=summary["Id"][:12],
                dag_id=ids[0],
                task_id=ids[1],
                run_id=ids[2],
                map_index=_index(theirs.get(MAP_INDEX)),
                try_number=_int(theirs.get(TRY_NUMBER), None),
                created=dt.datetime.fromtimestamp(int(summary.get("Created", 0)), dt.UTC),
                status=str(summary.get("Status") or summary.get("State") or "unknown").lower(),
                exact=True,
            )

    def evidence(self, workload: Workload) -> str:
        """Exit code, OOM flag and the last log lines, read before the container is removed."""
        from docker.errors import DockerException

        try:
            state = self.client.inspect_container(workload.id)["State"]
            tail = self.client.logs(workload.id, stdout=True, stderr=True, tail=LOG_TAIL)
        except DockerException:
            return ""
        lines = tail.decode("utf-8", "replace").strip().splitlines()
        last = f"; last log line: {lines[-1][:200]!r}" if lines else ""
        return f"exit code {state.get('ExitCode')}, OOMKilled {state.get('OOMKilled')}{last}"

    def remove(self, workload: Workload) -> None:
        from docker.errors import DockerException, NotFound

        try:
            self.client.remove_container(workload.id, force=True, v=True)
        except NotFound:
            return  # removed meanwhile (e.g. by the next try): the goal is reached
        except DockerException as exc:
            raise WorkloadSourceError(f"could not remove container {workload.name}: {_short(exc)}") from None


class PodWorkloads:
    """KubernetesPodOperator pods in the given namespaces of one cluster."""

    def __init__(self, core_v1: Any, namespaces: Sequence[str], *, timeout: float = 30.0) -> None:
        self.api = core_v1
        self.namespaces = list(namespaces)
        self.timeout = timeout

    def list(self, labels: Sequence[str] = ()) -> Iterator[Workload]:
        from kubernetes.client.exceptions import ApiException

        selector = ",".join([f"{KPO_MARKER}=True", "dag_id", "task_id", "run_id", *labels])
        for namespace in self.namespaces:
            try:
                pods = self.api.list_namespaced_pod(
                    namespace, label_selector=selector, _request_timeout=self.timeout
                ).items
            except ApiException as exc:
                raise WorkloadSourceError(
                    f"cannot list pods in namespace {namespace!r} ({exc.status} {exc.reason}): check the "
                    "Kubernetes connection and that its user may list and delete pods there"
                ) from None
            except Exception as exc:  # urllib3 connection errors and timeouts
                raise WorkloadSourceError(
                    f"cannot reach the Kubernetes API to list pods in {namespace!r} ({_short(exc)}): check "
                    "the Kubernetes connection (--kubernetes-conn-id or --kubeconfig)"
                ) from None
            for pod in pods:
                meta = pod.metadata
                if meta.deletion_timestamp:
                    continue  # already being deleted (its grace period runs)
                theirs = meta.labels or {}
                yield Workload(
                    kind="pod",
                    id=f"{meta.namespace}/{meta.name}",
                    name=f"{meta.namespace}/{meta.name}",
                    dag_id=theirs.get("dag_id", ""),
                    task_id=theirs.get("task_id", ""),
                    run_id=theirs.get("run_id", ""),
                    map_index=_index(theirs.get("map_index")),
                    try_number=_int(theirs.get("try_number"), None),
                    created=meta.creation_timestamp or dt.datetime.now(dt.UTC),
                    status=str((pod.status.phase if pod.status else None) or "unknown").lower(),
                    exact=False,
                )

    def evidence(self, workload: Workload) -> str:
        return ""

    def remove(self, workload: Workload) -> None:
        from kubernetes.client.exceptions import ApiException

        namespace, name = workload.id.split("/", 1)
        try:
            self.api.delete_namespaced_pod(name, namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise WorkloadSourceError(
                f"could not delete pod {workload.name}: {exc.status} {exc.reason}"
            ) from None
        except Exception as exc:
            raise WorkloadSourceError(f"could not delete pod {workload.name}: {_short(exc)}") from None


def kubernetes_core_v1(
    *, conn_id: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> tuple[Any, str]:
    """A CoreV1Api and the namespace to default to, from an Airflow connection or a kubeconfig file."""
    try:
        if conn_id:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            hook = KubernetesHook(conn_id=conn_id)
            return hook.core_v1_client, hook.get_namespace() or "default"
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        if context:
            contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen: dict[str, Any] = next((c for c in contexts if c.get("name") == context), {})
            namespace = chosen.get("context", {}).get("namespace") or "default"
        return client.CoreV1Api(api_client), namespace
    except Exception as exc:
        where = f"connection {conn_id!r}" if conn_id else f"kubeconfig {kubeconfig or '~/.kube/config'}"
        raise WorkloadSourceError(
            f"cannot load the Kubernetes {where} ({type(exc).__name__}: {_short(exc)}): check "
            + (
                "--kubernetes-conn-id (an Airflow connection of type kubernetes)"
                if conn_id
                else "--kubeconfig"
            )
        ) from None


def _client_kwargs(docker: Any, timeout: float) -> dict[str, Any]:
    from docker.utils import kwargs_from_env

    kwargs: dict[str, Any] = kwargs_from_env()
    kwargs.setdefault("base_url", "unix://var/run/docker.sock")
    kwargs["timeout"] = timeout
    kwargs["version"] = "auto"
    return kwargs


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
