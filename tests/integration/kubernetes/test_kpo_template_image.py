"""``pod_template_file`` without ``image=``: the template's image wins, containerkit's sizing and
hardening still apply (the placeholder image used at parse never reaches the pod)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from containerkit.testing.cluster import LocalCluster

NS = "airflow-tasks"
TEMPLATE_IMAGE = os.environ.get("CONTAINERKIT_TEST_PYTHON_IMAGE", "containerkit/base-python:3.11")


@pytest.fixture
def template_file(tmp_path: Path) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "from-template", "labels": {"origin": "template"}},
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "image": TEMPLATE_IMAGE,
                    "command": ["python", "-c", "print('from the template image')"],
                }
            ],
        },
    }
    path = tmp_path / "pod_template.yaml"
    path.write_text(yaml.safe_dump(pod))
    return str(path)


def _operator(template_file: str, namespace: str = NS, **kwargs: Any) -> Any:
    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    return SecureKubernetesPodOperator(
        task_id="run",
        namespace=namespace,
        pod_template_file=template_file,
        resources="m",
        startup_check_interval_seconds=1,
        base_container_status_polling_interval=0.2,
        **kwargs,
    )


def _base(pod: Any) -> Any:
    containers = pod["spec"]["containers"] if isinstance(pod, dict) else pod.spec.containers
    return next(c for c in containers if (c["name"] if isinstance(c, dict) else c.name) == "base")


def test_built_pod_keeps_the_template_image_and_gets_the_spec(template_file: str) -> None:
    from containerkit.spec import RESOURCE_PRESETS

    pod = _operator(template_file).build_pod_request_obj(None, dry_run=True)
    base = _base(pod)
    assert base.image == TEMPLATE_IMAGE
    assert base.command == [
        "python",
        "-c",
        "print('from the template image')",
    ]  # the rest of the template stays too
    assert pod.metadata.labels["origin"] == "template"
    medium = RESOURCE_PRESETS["m"]
    assert base.resources.limits["memory"] == str(medium.memory_limit)
    assert base.resources.requests["cpu"] == str(medium.cpu_request)
    context = base.security_context
    assert context.run_as_non_root is True and context.read_only_root_filesystem is True
    assert context.capabilities.drop == ["ALL"] and context.allow_privilege_escalation is False
    assert "containerkit.invalid" not in str(pod.to_dict())


def test_pod_created_from_the_template_runs_its_image(
    cluster: LocalCluster, k8s_namespace: str, run_dag: Any, template_file: str
) -> None:
    from airflow.sdk import DAG

    with DAG(
        "kpo_template_image", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
    ) as dag:
        _operator(template_file, k8s_namespace, poll_interval=0.5)
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    assert ti.state == "success"
    created = cluster.submitted("Pod", k8s_namespace)
    assert len(created) == 1
    base = _base(created[0])
    assert base["image"] == TEMPLATE_IMAGE
    assert base["securityContext"]["runAsNonRoot"] is True
    assert base["resources"]["limits"]["memory"]


@pytest.mark.parametrize("deferrable", [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")])
def test_a_templated_image_is_checked_after_rendering_and_before_the_pod_exists(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    """``{{ params.tag }}`` renders to ``latest``: refused on the final pod, before any pod (or pull)."""
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator
    from containerkit.policy.enforce import PolicyViolation

    failures: list[BaseException] = []
    repository = python_image.rsplit(":", 1)[0]
    with DAG(
        f"kpo_templated_latest_{deferrable}",
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1),
        catchup=False,
        params={"tag": "latest"},
    ) as dag:
        # Loads at parse: the image is only known once rendered.
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=k8s_namespace,
            image=repository + ":{{ params.tag }}",
            cmds=["python", "-c", "print('never runs')"],
            deferrable=deferrable,
            on_failure_callback=lambda context: failures.append(context["exception"]),
        )
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    assert ti.state == "failed"
    (error,) = failures
    assert isinstance(error, PolicyViolation), repr(error)
    assert "HRD-005" in str(error) and f"image '{repository}:latest' is untagged or :latest" in str(error)
    assert "final pod" in str(error)
    assert cluster.submitted("Pod", k8s_namespace) == []
