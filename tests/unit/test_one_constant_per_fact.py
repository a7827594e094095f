"""One constant per fact: rule-set names, the image rules by metadata, the templated-image stand-in, /tmp.

Each of these was spelled in two places before; a test per fact pins that every consumer reads the one.
"""

from __future__ import annotations

import pytest

from containerkit.docker.run_settings import render_docker
from containerkit.kubernetes.pod import render_pod
from containerkit.operators.docker import SecureDockerOperator
from containerkit.operators.templating import TEMPLATED_IMAGE, is_templated
from containerkit.policy import model
from containerkit.policy.engine import load_rules
from containerkit.policy.model import IMAGE, REGISTRY
from containerkit.spec import ContainerSpec
from containerkit.spec.security import TMP_DIR

RULE_SETS = {
    model.CORE,
    model.PSS_BASELINE,
    model.PSS_RESTRICTED,
    model.HARDENED,
    model.DOCKERFILE,
    model.COMPOSE,
    model.HELM_VALUES,
}


def _load_all() -> None:
    for kind in ("Pod", "DockerRun", "ConfigMap", "Dockerfile", "Compose", "HelmValues"):
        load_rules(kind)


def test_every_rule_names_one_of_the_rule_set_constants() -> None:
    _load_all()
    assert {r.rule_set for r in REGISTRY} == RULE_SETS


def test_image_rules_are_selected_by_metadata() -> None:
    _load_all()
    assert {r.id for r in REGISTRY.about(IMAGE, "Pod")} == {"HRD-005", "HRD-006", "HRD-007"}
    assert {r.id for r in REGISTRY.about(IMAGE, "DockerRun")} == {"DKR-013"}


@pytest.mark.parametrize(
    ("value", "templated"),
    [
        ("{{ ti.xcom_pull(task_ids='pin') }}", True),
        ("{% if x %}a:1{% endif %}", True),
        ("python:3.11", False),
        ("{ not jinja }", False),
        (None, False),
        (3, False),
    ],
)
def test_one_detector_of_a_templated_value(value: object, templated: bool) -> None:
    assert is_templated(value) is templated


def test_a_templated_image_stands_in_as_the_one_placeholder() -> None:
    op = SecureDockerOperator(task_id="t", image="{{ params.image }}", resources="xs")
    assert str(op.container_spec.image) == TEMPLATED_IMAGE
    assert op.run_view().policy["image"] == TEMPLATED_IMAGE


def test_both_renderers_give_the_same_scratch_dir() -> None:
    spec = ContainerSpec("python:3.11-slim")
    pod = render_pod(spec, name="t")
    mounts = {m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert TMP_DIR in mounts
    assert set(render_docker(spec).tmpfs) == {TMP_DIR}
