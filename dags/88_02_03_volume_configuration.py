"""Give container tasks exactly the storage they need: read-only config, tmpfs scratch, a shared volume.

**Problem.** A task that writes into its image's filesystem cannot run read-only; a config file baked
into the image needs a rebuild per change; two tasks that hand data over through a host directory
break when they land on different hosts, and a fresh named volume is owned by root, so a non-root task
gets ``Permission denied``. The Airflow components themselves need the DAG folder, logs and plugins
mounted the same way in every one of them.

**Practice.** Config files are mounted read-only (a ConfigMap on Kubernetes, a host directory on
Docker); scratch space is a size-limited tmpfs/emptyDir; data handed between tasks goes through a named
volume (a PVC on Kubernetes) whose ownership is fixed once (fsGroup on Kubernetes, a one-shot ``chown``
step with only ``CAP_CHOWN`` on Docker, which has no fsGroup); the Airflow DAG folder is mounted
read-only and logs persist outside the containers.

**Where each sub-point is covered.**

- config file mounts: ``write_config`` fills the config directory (``<config_dir>/<configmap>/<key>``),
  ``producer`` mounts ``app.yaml`` read-only through ``ConfigMapRef(path=...)`` and proves it cannot
  write it;
- scratch and shared data: ``producer`` writes scratch files to a 64Mi tmpfs (``EmptyDir``) and its
  result to the named volume ``ck-88-02-03-shared`` (``PersistentVolumeClaimVolume``), which
  ``prepare_volume`` created and handed to uid 50000; ``consumer`` mounts it read-only as the same
  non-root user and reads the result; ``remove_volume`` deletes it (teardown);
- Kubernetes: ``k8s_rendering`` renders the same spec as a pod (ConfigMap volume 0444, memory
  emptyDir with its sizeLimit, PVC, fsGroup 0) plus the ConfigMap and the PVC, and validates them
  (Kubernetes schema, strict; policy);
- DAG folder mounts, log persistence, plugin volumes: ``airflow_volumes`` reads ``docker-compose.yaml``
  and the Helm values and asserts the DAG folder is mounted read-only in every Airflow service, logs
  and plugins persist on the host (compose) and on a PVC / git-sync (Helm).

**When copying.** Rename the volume and config directory; on Docker, point ``CONTAINERKIT_CONFIG_DIR``
at the engine-host directory your deployment tool fills.

**Needs.** A Docker engine (``needs:docker``). Inside the compose stack the host-directory config
mount cannot work (the worker's files are not on the engine's host): those tasks skip with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

from containerkit.spec import (
    ConfigMapRef,
    ContainerSpec,
    EmptyDir,
    PersistentVolumeClaimVolume,
    SecurityProfile,
    VolumeMount,
)

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
CONFIG_DIR = os.environ.get(
    "CONTAINERKIT_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "containerkit-config-88_02_03")
)
PROJECT_DIR = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parents[1])
VOLUME = "ck-88-02-03-shared"
CONFIG_MAP = "ck-app-config"
APP_CONFIG = "batch_size: 500\nregion: eu-west-1\n"

PRODUCER = r"""
import json, os
cfg = dict(line.split(": ", 1) for line in open("/etc/app/app.yaml").read().splitlines())
try:
    open("/etc/app/app.yaml", "a").close()
    config_writable = True
except OSError:
    config_writable = False
with open("/scratch/part-0", "w") as f:
    f.write("x" * 1024)
mounts = {line.split()[1]: line.split()[2] for line in open("/proc/mounts")}
result = {"rows": int(cfg["batch_size"]), "region": cfg["region"].strip(), "by_uid": os.getuid()}
with open("/data/result.json", "w") as f:
    json.dump(result, f)
print(json.dumps({"uid": os.getuid(), "config_writable": config_writable,
                  "scratch_fs": mounts.get("/scratch"), "result": result}))
"""
CONSUMER = r"""
import json, os
result = json.load(open("/data/result.json"))
try:
    open("/data/other", "w").close()
    data_writable = True
except OSError:
    data_writable = False
print(json.dumps({"uid": os.getuid(), "result": result, "data_writable": data_writable}))
"""


def _host_paths_or_skip() -> None:
    if os.environ.get("CONTAINERKIT_IN_COMPOSE") == "1" and "CONTAINERKIT_CONFIG_DIR" not in os.environ:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            "inside the compose stack the worker's files are not on the engine's host: set "
            "CONTAINERKIT_CONFIG_DIR to a directory mounted at the same path in the worker"
        )


# One spec for Docker and Kubernetes: config read-only, tmpfs scratch, the shared claim.
PRODUCER_SPEC = ContainerSpec(
    image=PYTHON_IMAGE,
    command=["python", "-c", PRODUCER],
    config_maps=[ConfigMapRef(config_map=CONFIG_MAP, key="app.yaml", path="/etc/app/app.yaml")],
    volumes=[
        EmptyDir("scratch", memory=True, size_limit="64Mi"),
        PersistentVolumeClaimVolume("shared", claim=VOLUME),
    ],
    mounts=[VolumeMount("scratch", "/scratch"), VolumeMount("shared", "/data")],
    resources="xs",
)
CONSUMER_SPEC = PRODUCER_SPEC.replace(
    command=["python", "-c", CONSUMER],
    config_maps=(),
    volumes=[PersistentVolumeClaimVolume("shared", claim=VOLUME, read_only=True)],
    mounts=[VolumeMount("shared", "/data", read_only=True)],
)


@dag(
    dag_id="88_02_03_volume_configuration",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker"],
    doc_md=__doc__,
)
def volume_configuration() -> None:
    @task
    def write_config() -> str:
        """What a deployment tool does: one file per ConfigMap key, world-readable, not writable."""
        _host_paths_or_skip()
        path = Path(CONFIG_DIR) / CONFIG_MAP / "app.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(APP_CONFIG)
        path.chmod(0o444)
        return str(path)

    @task
    def create_volume() -> str:
        import docker

        client = docker.from_env()
        with contextlib.suppress(docker.errors.NotFound):  # a leftover of an interrupted run
            client.volumes.get(VOLUME).remove(force=True)
        client.volumes.create(VOLUME, labels={"containerkit.example": "88_02_03"})
        return VOLUME

    # Docker has no fsGroup: a fresh named volume is root-owned. One root step with only CAP_CHOWN
    # hands it to the task user; everything else about it stays restricted.
    prepare_volume = SecureDockerOperator(
        task_id="prepare_volume",
        image=PYTHON_IMAGE,
        command=["chown", "50000:0", "/data"],
        user="0:0",
        security=SecurityProfile.baseline(add_capabilities=("CHOWN",), read_only_root_filesystem=True),
        spec=ContainerSpec(
            image=PYTHON_IMAGE,
            volumes=[PersistentVolumeClaimVolume("shared", claim=VOLUME)],
            mounts=[VolumeMount("shared", "/data")],
        ),
        policy_exemptions={
            "DKR-001": "one-shot chown of a fresh named volume to uid 50000: Docker has no fsGroup",
            "DKR-003": "CAP_CHOWN only, for that chown; every other capability stays dropped",
        },
        resources="xs",
    )
    producer = SecureDockerOperator(
        task_id="producer", spec=PRODUCER_SPEC, config_dir=CONFIG_DIR, auto_remove="force"
    )
    consumer = SecureDockerOperator(task_id="consumer", spec=CONSUMER_SPEC)

    @task
    def check(produced: str, consumed: str) -> dict[str, Any]:
        made, read = json.loads(produced), json.loads(consumed)
        problems = []
        if made["uid"] != 50000 or read["uid"] != 50000:
            problems.append(f"not uid 50000: {made['uid']}, {read['uid']}")
        if made["config_writable"]:
            problems.append("the config mount is writable")
        if made["scratch_fs"] != "tmpfs":
            problems.append(f"/scratch is {made['scratch_fs']}, not tmpfs")
        if read["result"] != made["result"] or made["result"]["rows"] != 500:
            problems.append(f"consumer read {read['result']}, producer wrote {made['result']}")
        if read["data_writable"]:
            problems.append("the consumer's read-only mount is writable")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"producer": made, "consumer": read}

    @task
    def remove_volume() -> None:
        """Teardown: the volume, and the config directory when this DAG made it."""
        import shutil

        import docker

        if "CONTAINERKIT_CONFIG_DIR" not in os.environ:
            shutil.rmtree(CONFIG_DIR, ignore_errors=True)
        with contextlib.suppress(docker.errors.NotFound):
            docker.from_env().volumes.get(VOLUME).remove(force=True)

    @task
    def k8s_rendering() -> dict[str, Any]:
        """The same spec as a pod, plus its ConfigMap and PVC: strict schema and policy."""
        from kubernetes.client import (
            V1ConfigMap,
            V1ObjectMeta,
            V1PersistentVolumeClaim,
            V1PersistentVolumeClaimSpec,
            V1VolumeResourceRequirements,
        )

        from containerkit.kubernetes.manifests import dump_yaml, model, to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod

        pod = render_pod(PRODUCER_SPEC, name="ck-volume-demo", namespace=NAMESPACE)
        config_map = model(
            V1ConfigMap,
            api_version="v1",
            kind="ConfigMap",
            metadata=model(V1ObjectMeta, name=CONFIG_MAP, namespace=NAMESPACE),
            data={"app.yaml": APP_CONFIG},
        )
        claim = model(
            V1PersistentVolumeClaim,
            api_version="v1",
            kind="PersistentVolumeClaim",
            metadata=model(V1ObjectMeta, name=VOLUME, namespace=NAMESPACE),
            spec=model(
                V1PersistentVolumeClaimSpec,
                access_modes=["ReadWriteOnce"],
                resources=model(V1VolumeResourceRequirements, requests={"storage": "1Gi"}),
            ),
        )
        doc = to_dict(pod)
        volumes = {v["name"]: v for v in doc["spec"]["volumes"]}
        problems = []
        if volumes["scratch"]["emptyDir"] != {"medium": "Memory", "sizeLimit": "64Mi"}:
            problems.append(f"scratch: {volumes['scratch']}")
        if volumes["shared"]["persistentVolumeClaim"]["claimName"] != VOLUME:
            problems.append(f"shared: {volumes['shared']}")
        config_volume = next(v for v in volumes.values() if "configMap" in v)
        if (
            config_volume["configMap"]["name"] != CONFIG_MAP
            or config_volume["configMap"].get("defaultMode") != 0o444
        ):
            problems.append(f"config: {config_volume}")
        if doc["spec"]["securityContext"].get("fsGroup") != 0:
            problems.append("no fsGroup: the PVC would stay root-owned")
        errors = [(f.rule_id, f.message) for f in evaluate_pod(pod) if f.severity.value == "error"]
        if errors:
            problems.append(f"policy: {errors}")
        if problems:
            raise AssertionError("; ".join(problems))
        try:
            import kubernetes_validate
        except ImportError:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("schema validation needs kubernetes-validate") from None
        for obj in (pod, config_map, claim):
            kubernetes_validate.validate(to_dict(obj), "1.30", strict=True)
        print(dump_yaml([config_map, claim, pod]))
        return {"volumes": volumes, "fs_group": doc["spec"]["securityContext"]["fsGroup"]}

    @task
    def airflow_volumes() -> dict[str, Any]:
        """DAG folder read-only in every Airflow service; logs and plugins persist (compose and Helm)."""
        import yaml

        from containerkit.policy.rules.compose import interpolate
        from containerkit.policy.sources.compose import load

        compose_file = PROJECT_DIR / "docker-compose.yaml"
        services = {t.data.name: t.data.config for t in load(compose_file)}
        airflow = {n: s for n, s in services.items() if n.startswith("airflow-") and n != "airflow-init"}
        problems, layout = [], {}
        for name, service in airflow.items():
            mounts = {}
            for volume in service.get("volumes") or []:
                parts = (interpolate(str(volume)) or str(volume)).split(":")  # ${VAR:-default} resolved
                mounts[parts[1]] = {"source": parts[0], "read_only": parts[-1] == "ro"}
            layout[name] = sorted(mounts)
            dags = mounts.get("/opt/airflow/dags")
            if not dags or not dags["read_only"]:
                problems.append(f"{name}: DAG folder not mounted read-only ({dags})")
            for path in ("/opt/airflow/logs", "/opt/airflow/plugins"):
                if path not in mounts:
                    problems.append(f"{name}: {path} not mounted")
        values = yaml.safe_load((PROJECT_DIR / "helm-values/values.yaml").read_text())
        if not values["logs"]["persistence"]["enabled"]:
            problems.append("helm: logs.persistence.enabled is false (task logs die with the pod)")
        if not values["dags"]["gitSync"]["enabled"] and not values["dags"].get("persistence", {}).get(
            "enabled"
        ):
            problems.append("helm: DAGs neither git-synced nor on a volume")
        if problems:
            raise AssertionError("; ".join(problems))
        helm = {
            "logs": values["logs"]["persistence"],
            "dags.gitSync.enabled": values["dags"]["gitSync"]["enabled"],
        }
        print(json.dumps({"compose": layout, "helm": helm}, indent=2))
        return {"compose": layout, "helm": helm}

    config = write_config()
    volume = create_volume()
    [config, volume] >> prepare_volume >> producer >> consumer
    checked = check(producer.output, consumer.output)
    checked >> remove_volume().as_teardown(setups=[config, volume])
    k8s_rendering()
    airflow_volumes()


volume_configuration()
