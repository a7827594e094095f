"""What DAG parsing loads: operator modules import only what their classes need, the policy engine
loads only the rule modules of the kind it evaluates, and the fast serializer matches the client's.

Not timing tests: they check which modules get imported and that results stay identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from kubernetes.client import ApiClient

from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import render_pod, worker_pod_template
from containerkit.kubernetes.rbac import render_rbac
from containerkit.kubernetes.sidecars import git_sync
from containerkit.spec import ContainerSpec, SecretRef

# Modules a DAG file never needs at import of an operator module: they load when a task is built
# (spec, renderer, policy) or runs (diagnostics, pre-flight, triggers).
LAZY = (
    "containerkit.spec",
    "containerkit.kubernetes.pod",
    "containerkit.docker.run_settings",
    "containerkit.policy.engine",
    "containerkit.policy.rules",
    "containerkit.diagnostics.kubernetes",
    "containerkit.diagnostics.docker",
    "containerkit.hooks.preflight",
    "containerkit.triggers.kubernetes",
    "packaging.specifiers",
)


def _run(code: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_operator_modules_defer_spec_policy_and_diagnostics() -> None:
    found = _run(
        f"""
        import json, sys
        import airflow.providers.cncf.kubernetes.operators.pod, airflow.providers.docker.operators.docker
        before = set(sys.modules)
        import containerkit.operators.kubernetes, containerkit.operators.docker
        loaded = [m for m in {LAZY!r} if m in sys.modules and m not in before]
        from containerkit.operators.kubernetes import SecureKubernetesPodOperator
        SecureKubernetesPodOperator(task_id="t", name="t", image="registry.example.com/a/b:1.0")
        print(json.dumps({{"loaded": loaded, "engine": "containerkit.policy.engine" in sys.modules}}))
        """
    )
    assert found["loaded"] == []
    assert found["engine"], "building a task runs the policy (at DAG parse)"


def test_a_kind_loads_every_rule_of_that_kind() -> None:
    """``rules.KIND_MODULES`` lists every module with rules for a kind: partial and full load agree."""
    found = _run(
        """
        import json, sys
        from containerkit.policy.engine import load_rules, select
        from containerkit.policy.rules import KIND_MODULES
        out = {}
        for kind in KIND_MODULES:
            load_rules(kind)
            out[kind] = [r.id for r in select(kind)]
        out["file_rules_loaded"] = "containerkit.policy.rules.dockerfile" in sys.modules
        load_rules()
        out["full"] = {kind: [r.id for r in select(kind)] for kind in KIND_MODULES}
        print(json.dumps(out))
        """
    )
    assert found["file_rules_loaded"] is False
    for kind, ids in found["full"].items():
        assert ids and found[kind] == ids, kind


def test_exemption_and_suppression_of_a_rule_not_yet_loaded_are_known() -> None:
    found = _run(
        """
        import json
        from containerkit.policy.engine import evaluate_pod
        from containerkit.policy.enforce import validate_exemptions
        ex = validate_exemptions({"DF-001": "a Dockerfile rule id is still a rule id"})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {
            "containerkit.io/ignore": "DF-001: fine; NOPE-1: typo"}}, "spec": {"containers": []}}
        ids = sorted(f.rule_id for f in evaluate_pod(pod) if f.rule_id.startswith("CK"))
        print(json.dumps({"ex": ex, "ids": ids}))
        """
    )
    assert found["ex"] == {"DF-001": "a Dockerfile rule id is still a rule id"}
    assert found["ids"] == ["CK002"]  # only NOPE-1 is unknown


@pytest.mark.parametrize(
    "model",
    [
        render_pod(ContainerSpec(image="registry.example.com/a/b:1.0"), name="plain"),
        render_pod(
            ContainerSpec(
                image="registry.example.com/a/b@sha256:" + "a" * 64,
                env={"MODE": "fast"},
                secrets=(SecretRef(secret="db", key="password", path="/run/secrets/db"),),
                resources={"preset": "m", "memory": "3Gi"},
                labels={"team": "data"},
            ),
            name="rich",
            namespace="jobs",
        ),
        render_pod(
            git_sync("https://example.com/repo.git").apply(
                ContainerSpec(image="registry.example.com/a/b:1.0")
            ),
            name="with-sidecar",
        ),
        render_rbac("airflow-tasks", for_triggerer=True),
    ],
    ids=["plain-pod", "rich-pod", "git-sync-sidecar", "rbac-list"],
)
def test_to_dict_equals_the_client_serialisation(model: Any) -> None:
    expected = ApiClient().sanitize_for_serialization(model)
    got = to_dict(model)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # same key order, so the same YAML


def test_worker_pod_template_yaml_is_unchanged_by_the_serialiser() -> None:
    import yaml

    text = worker_pod_template(image="registry.example.com/airflow:3.3.2")
    assert yaml.safe_load(text)["spec"]["containers"][0]["name"] == "base"
