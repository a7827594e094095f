"""Both containerkit operators speak one vocabulary: a task moves between Docker and Kubernetes by class name.

The containerkit parameters (everything a stock operator does not take) must have the same names,
types and defaults on ``SecureDockerOperator`` and ``SecureKubernetesPodOperator``, and mean the same
thing; only what one runtime lacks may differ, and that list is spelled out here.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator

from containerkit.operators.docker import SecureDockerOperator
from containerkit.operators.kubernetes import SecureKubernetesPodOperator
from containerkit.spec import ContainerSpec, SecretRef, SecurityProfile

DOCKER_ONLY = {"secrets_dir", "config_dir", "stop_timeout"}  # host files, docker stop's grace period
KUBERNETES_ONLY = {"fail_fast"}  # Docker fails at create/start; there is no pending state to cut short
IMAGE = "registry.example.com/team/etl:1.4.2"


def _added(operator: type, stock: type) -> dict[str, inspect.Parameter]:
    ours = inspect.signature(operator.__init__).parameters  # type: ignore[misc]
    theirs = inspect.signature(stock.__init__).parameters  # type: ignore[misc]
    return {name: p for name, p in ours.items() if name not in theirs and p.kind is p.KEYWORD_ONLY}


def test_same_containerkit_parameters_with_same_types_and_defaults() -> None:
    docker = _added(SecureDockerOperator, DockerOperator)
    kube = _added(SecureKubernetesPodOperator, KubernetesPodOperator)
    assert set(docker) - DOCKER_ONLY == set(kube) - KUBERNETES_ONLY
    for name in set(docker) - DOCKER_ONLY:
        assert (docker[name].annotation, docker[name].default) == (
            kube[name].annotation,
            kube[name].default,
        ), name


def _specs(**kwargs: Any) -> tuple[ContainerSpec, ContainerSpec]:
    common = {"task_id": "t", "policy_mode": "off", **kwargs}
    docker = SecureDockerOperator(image=IMAGE, secrets_dir="/srv/airflow/secrets", **common)
    kube = SecureKubernetesPodOperator(image=IMAGE, **common)
    assert kube.container_spec is not None
    return docker.container_spec, kube.container_spec


@pytest.mark.parametrize("with_spec", [False, True], ids=["arguments", "spec-plus-overrides"])
def test_same_meaning_alone_or_over_a_spec(with_spec: bool) -> None:
    """The same arguments give the same ContainerSpec; over a ``spec=`` they replace its fields on both."""
    base = {"spec": ContainerSpec(IMAGE, resources="l", security="baseline")} if with_spec else {}
    refs = [SecretRef("db", "password", path="/run/secrets/db/password")]
    docker, kube = _specs(resources="xs", security="restricted", secret_refs=refs, **base)
    for spec in (docker, kube):
        assert spec.resources == ContainerSpec(IMAGE, resources="xs").resources
        assert spec.security == SecurityProfile.coerce("restricted")
        assert spec.secrets == tuple(refs)
    assert (docker.resources, docker.security, docker.secrets) == (
        kube.resources,
        kube.security,
        kube.secrets,
    )


def test_exemptions_and_pre_flight_settings_land_on_the_same_attributes() -> None:
    common = {
        "task_id": "t",
        "image": IMAGE,
        "policy_mode": "off",
        "policy_exemptions": {"HRD-006": "pinned by the pre-flight at run time"},
        "pin_image_digest": True,
        "registry_conn_id": "registry_prod",
    }
    for op in (SecureDockerOperator(**common), SecureKubernetesPodOperator(**common)):
        assert op.policy_exemptions == {"HRD-006": "pinned by the pre-flight at run time"}
        assert (op.pin_image_digest, op.registry_conn_id) == (True, "registry_prod")
