"""Persistent volumes: a PVC shared by two pods as non-root (fsGroup), and the chart's storage options.

**Problem.** Task pods are gone when the task ends, and with them anything they wrote. Volumes fix that,
but a non-root task cannot write to a freshly provisioned volume owned by root, the storage class decides
whether two pods on different nodes can mount it at all, and the Helm chart's log and DAG storage options
are easy to set inconsistently with the executor.

**Practice, per sub-point:**

* *storage class selection* (``choose_storage_class``): the class comes from the DAG param
  ``storage_class`` (empty: the cluster's default class); it is checked against the StorageClasses the
  API lists, and the access mode follows the pattern (``ReadWriteOnce`` for tasks that run one after
  another, ``ReadWriteMany`` for pods that run at the same time on different nodes).
* *shared storage patterns* (``create_pvc``, ``producer``, ``consumer``, ``delete_pvc``): the PVC is
  rendered from the ``kubernetes`` models, validated strictly against Kubernetes 1.29, 1.33 and 1.37 and
  created; a producer pod writes a result file to it and a consumer pod reads it back, both as uid
  50000 with the restricted profile, where the pod's ``fsGroup`` makes the kubelet give the volume to
  the pod's group (no root ``chown`` init container); the consumer checks owner, group and content. The
  PVC is deleted by a teardown, also after a failure.
* *PVC for logs* and *DAG storage options* (``helm_storage_options``): the committed
  ``helm-values/values.yaml`` is read and checked against what KubernetesExecutor needs: task logs on
  the chart's logs PVC (``logs.persistence``, a ``ReadWriteMany`` class: worker pods on many nodes write
  at once) mounted by the worker pod template, and DAGs from git-sync into an ``emptyDir`` mounted
  read-only (``dags.gitSync``), not a DAGs PVC (``dags.persistence``); each option and its trade-off is
  printed from the files.

**Copying.** Set ``CONTAINERKIT_NAMESPACE`` / ``CONTAINERKIT_PYTHON_IMAGE`` / ``kubernetes_default`` and
the ``storage_class`` param (e.g. ``gp3``, ``standard-rwo``, ``managed-csi``; RWX: EFS, Filestore,
Azure Files).

**Needs.** A Kubernetes API (``needs:kubernetes``; the tests use the local Docker-backed one from
``containerkit.testing``, where a PVC is a named Docker volume).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

from containerkit.spec import ContainerSpec, PersistentVolumeClaimVolume, VolumeMount

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
HELM_VALUES_DIR = Path(
    os.environ.get("CONTAINERKIT_HELM_VALUES_DIR", Path(__file__).resolve().parent.parent / "helm-values")
)
CLAIM = "ck-88-03-05-shared"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")

PRODUCER = """
import json, os, pathlib
data = pathlib.Path("/data")
st = data.stat()
print(f"/data owner {st.st_uid}:{st.st_gid} mode {oct(st.st_mode & 0o7777)}; "
      f"I am {os.getuid()}:{os.getgid()} groups {os.getgroups()}")
target = data / "result.json"
target.write_text(json.dumps({"rows": 1234, "run": os.environ["RUN_ID"]}))
target.chmod(0o640)
print(f"wrote {target}")
"""
CONSUMER = """
import json, os, pathlib
target = pathlib.Path("/data/result.json")
st = target.stat()
result = {"content": json.loads(target.read_text()), "owner": st.st_uid, "group": st.st_gid,
          "mode": oct(st.st_mode & 0o777), "reader": f"{os.getuid()}:{os.getgid()}"}
print(json.dumps(result))
pathlib.Path("/airflow/xcom/return.json").write_text(json.dumps(result))
"""


def _pod(script: str, *, read_only: bool) -> ContainerSpec:
    return ContainerSpec(
        PYTHON_IMAGE,
        command=["python", "-c", script],
        volumes=[PersistentVolumeClaimVolume("data", claim=CLAIM, read_only=read_only)],
        mounts=[VolumeMount("data", "/data", read_only=read_only)],
        resources="xs",
    )


def _core() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client


@dag(
    dag_id="88_03_05_persistent_volumes",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:kubernetes"],
    params={
        "storage_class": Param("", type="string", description="StorageClass of the PVC; empty: the default."),
        "size": Param("64Mi", type="string", description="Requested size of the PVC."),
    },
    doc_md=__doc__,
)
def persistent_volumes() -> None:
    @task
    def choose_storage_class() -> dict[str, Any]:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import StorageV1Api
        from kubernetes.client.exceptions import ApiException

        wanted = get_current_context()["params"]["storage_class"] or None
        try:
            classes = (
                StorageV1Api(KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client).list_storage_class().items
            )
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            classes = []
        names = {c.metadata.name: c for c in classes}
        default = next(
            (
                n
                for n, c in names.items()
                if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
            ),
            None,
        )
        if wanted and names and wanted not in names:
            raise ValueError(f"storage class {wanted!r} does not exist here; the cluster has {sorted(names)}")
        chosen = wanted or default
        print(
            f"StorageClasses: {sorted(names) or 'none listed'}; default {default!r}; this PVC: "
            f"{chosen or 'the cluster default (storageClassName unset)'}, "
            "ReadWriteOnce (producer, then consumer)"
        )
        return {"storage_class": chosen, "available": sorted(names)}

    @task
    def create_pvc(choice: dict[str, Any]) -> str:
        import kubernetes_validate
        from kubernetes.client import (
            V1ObjectMeta,
            V1PersistentVolumeClaim,
            V1PersistentVolumeClaimSpec,
            V1VolumeResourceRequirements,
        )

        from containerkit.kubernetes.manifests import to_dict

        claim = V1PersistentVolumeClaim(
            api_version="v1",
            kind="PersistentVolumeClaim",
            metadata=V1ObjectMeta(
                name=CLAIM,
                namespace=NAMESPACE,
                labels={"app.kubernetes.io/managed-by": "containerkit", "run": uuid.uuid4().hex[:8]},
            ),
            spec=V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name=choice["storage_class"],
                resources=V1VolumeResourceRequirements(
                    requests={"storage": get_current_context()["params"]["size"]}
                ),
            ),
        )
        document = to_dict(claim)
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
        _core().create_namespaced_persistent_volume_claim(NAMESPACE, document)
        return CLAIM

    producer = SecureKubernetesPodOperator(
        task_id="producer",
        name="pvc-producer",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        spec=_pod(PRODUCER, read_only=False),
        env_vars={"RUN_ID": "{{ run_id }}"},  # stock parameter: templated
        get_logs=True,
    )
    consumer = SecureKubernetesPodOperator(
        task_id="consumer",
        name="pvc-consumer",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        spec=_pod(CONSUMER, read_only=True),
        do_xcom_push=True,
        get_logs=True,
    )

    @task
    def check_shared(result: dict[str, Any]) -> dict[str, Any]:
        run_id = get_current_context()["run_id"]
        expected = {
            "content": {"rows": 1234, "run": run_id},
            "owner": 50000,
            "mode": "0o640",
            "reader": "50000:0",
        }
        got = {k: result[k] for k in expected}
        if got != expected:
            raise ValueError(f"shared file {got}, expected {expected}")
        print(f"consumer read the producer's file as non-root through the PVC: {result}")
        return result

    @task
    def helm_storage_options() -> dict[str, Any]:
        import yaml

        values = yaml.safe_load((HELM_VALUES_DIR / "values.yaml").read_text())
        logs, dags = values["logs"]["persistence"], values["dags"]
        template = yaml.safe_load(values["podTemplate"])
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        mounts = {m["name"]: m for m in template["spec"]["containers"][0]["volumeMounts"]}
        problems = []
        if not logs.get("enabled"):
            problems.append("logs.persistence.enabled is off: worker pod logs vanish with the pod")
        if "persistentVolumeClaim" not in volumes.get("logs", {}):
            problems.append("the worker pod template does not mount the logs PVC")
        if (dags.get("persistence") or {}).get("enabled") and dags.get("gitSync", {}).get("enabled"):
            problems.append("dags.persistence and dags.gitSync are both on: pick one DAG source")
        git_sync = dags.get("gitSync", {}).get("enabled")
        if git_sync and (
            "emptyDir" not in volumes.get("dags", {}) or not mounts.get("dags", {}).get("readOnly")
        ):
            problems.append("git-sync DAGs should land in an emptyDir mounted read-only in base")
        if problems:
            raise ValueError("; ".join(problems))
        rows = {
            "task logs": f"logs PVC {logs.get('size')} (class {logs.get('storageClassName') or 'default'}; "
            "needs ReadWriteMany: many worker pods write at once) or remote logging",
            "DAG files": "git-sync init container into an emptyDir, read-only in base (per-pod, pinned ref)"
            if dags.get("gitSync", {}).get("enabled")
            else f"DAGs PVC {dags.get('persistence')}",
            "alternative": "dags.persistence (a RWX PVC filled by CI) or DAGs baked into the image",
        }
        for key, text in rows.items():
            print(f"{key:<12} {text}")
        return rows

    @teardown
    def delete_pvc(claim: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            _core().delete_namespaced_persistent_volume_claim(claim, NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise

    claim = create_pvc(choose_storage_class())
    checked = check_shared(consumer.output)
    claim >> producer >> consumer
    checked >> delete_pvc(claim)
    helm_storage_options()


persistent_volumes()
