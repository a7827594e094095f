"""Pattern 88_03_06: generate the KubernetesExecutor ``pod_template_file`` from the worker spec.

The executor builds every worker pod from ``[kubernetes_executor] pod_template_file``. Instead of a
hand-kept YAML, the template is rendered by :func:`~containerkit.kubernetes.pod.worker_pod_template` from a
:class:`~containerkit.spec.ContainerSpec`: the chart's shape (container ``base`` with
``AIRFLOW__CORE__EXECUTOR=LocalExecutor``, the ``logs`` volume, ``airflow.cfg`` from the config ConfigMap)
plus the restricted profile and the worker resource preset. The Helm values' ``podTemplate`` comes from
the same function, so both stay identical.

``render_template`` writes the template under ``$AIRFLOW_HOME/pod_templates/`` at run time (never at
parse time); ``check_template`` reads it back and fails if anything the executor needs, or any hardening,
is missing. Point the executor (or a task's ``executor_config={"pod_template_file": path}``) at the file.
Runs anywhere: no pod is launched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from containerkit.spec import ContainerSpec, SecretRef
from containerkit_examples import AIRFLOW_IMAGE

WORKER = ContainerSpec(
    AIRFLOW_IMAGE,
    resources="m",
    # Airflow 3 workers authenticate to the API server with a JWT; the secret key comes from a Secret.
    secrets=[SecretRef("airflow-api-secret-key", "api-secret-key", env="AIRFLOW__API__SECRET_KEY")],
    labels={"app.kubernetes.io/part-of": "airflow"},
)


@dag(
    dag_id="88_03_06_pod_template_file",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:pod-template-file"],
    doc_md=__doc__,
)
def pod_template_file() -> None:
    @task
    def render_template() -> str:
        from containerkit.kubernetes.pod import worker_pod_template

        text = worker_pod_template(
            WORKER, namespace="airflow", config_map="airflow-config", release="airflow"
        )
        target = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / "pod_templates" / "worker.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return str(target)

    @task
    def check_template(path: str) -> dict[str, Any]:
        import yaml

        pod = yaml.safe_load(Path(path).read_text())
        base = pod["spec"]["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in base["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        env = {e["name"]: e for e in base["env"]}
        problems = []
        if base["name"] != "base":
            problems.append(f"first container is {base['name']!r}, the executor needs 'base'")
        if env.get("AIRFLOW__CORE__EXECUTOR", {}).get("value") != "LocalExecutor":
            problems.append("AIRFLOW__CORE__EXECUTOR is not LocalExecutor")
        if "value" in env.get("AIRFLOW__API__SECRET_KEY", {}):
            problems.append("the API secret key is a literal, not a Secret reference")
        if mounts.get("logs") != "/opt/airflow/logs" or "logs" not in volumes:
            problems.append("logs volume missing")
        if mounts.get("config") != "/opt/airflow/airflow.cfg" or "configMap" not in volumes.get("config", {}):
            problems.append("airflow.cfg mount from the config ConfigMap missing")
        sc = base["securityContext"]
        if not (
            sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
        ):
            problems.append(f"base container is not hardened: {sc}")
        if pod["spec"].get("automountServiceAccountToken") is not False:
            problems.append("service-account token is mounted")
        if problems:
            raise ValueError("; ".join(problems))
        return {"path": path, "image": base["image"], "limits": base["resources"]["limits"]}

    check_template(render_template())


pod_template_file()
