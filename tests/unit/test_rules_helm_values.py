"""The ``helm-values`` rule set: each rule on passing and failing values, overlays, lines, suppressions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from containerkit.policy.engine import evaluate
from containerkit.policy.model import REGISTRY, Finding
from containerkit.policy.sources.helm_values import load, merge
from containerkit.policy.sources.located import SourceError

RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 50000, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
SIZED = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
SIDECARS = {
    "scheduler": ("waitForMigrations", "logGroomerSidecar"),
    "apiServer": ("waitForMigrations",),
    "triggerer": ("waitForMigrations", "logGroomerSidecar"),
    "dagProcessor": ("waitForMigrations", "logGroomerSidecar"),
}
COMPONENTS = ("scheduler", "apiServer", "triggerer", "dagProcessor", "migrateDatabaseJob", "createUserJob")

WORKER_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "worker"},
    "spec": {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": RESTRICTED_POD,
        "containers": [
            {
                "name": "base",
                "image": "containerkit/airflow:3.3.2@sha256:" + "a" * 64,
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "100Mi"},
                    "limits": {"memory": "512Mi", "ephemeral-storage": "1Gi"},
                },
            }
        ],
    },
}


def good_values() -> dict[str, Any]:
    """KubernetesExecutor values that pass every rule."""
    values: dict[str, Any] = {
        "executor": "KubernetesExecutor",
        "images": {"airflow": {"repository": "containerkit/airflow", "tag": "3.3.2"}},
        "securityContexts": {"pod": RESTRICTED_POD, "containers": RESTRICTED_CONTAINER},
        "networkPolicies": {"enabled": True},
        "logs": {"persistence": {"enabled": True}},
        "fernetKeySecretName": "airflow-fernet",
        "statsd": {"enabled": False},
        "podTemplate": yaml.safe_dump(WORKER_POD),
    }
    for c in COMPONENTS:
        values[c] = {"resources": SIZED}
    return values


def lint(
    tmp_path: Path, values: dict[str, Any] | str, name: str = "values.yaml"
) -> list[tuple[Finding, int | None]]:
    path = tmp_path / name
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values, sort_keys=False))
    [target] = load(path)
    return [(f, target.data.line_of(f.path)) for f in evaluate(target)]


def fired(results: list[tuple[Finding, int | None]], rule_id: str) -> list[str]:
    return [f.path for f, _ in results if f.rule_id == rule_id]


def with_(**changes: Any) -> dict[str, Any]:
    return merge(good_values(), changes)


NO_CONTEXT_PATHS = [
    p for c in COMPONENTS for p in [f"{c}.securityContexts.pod"] * 2 + [f"{c}.securityContexts.container"] * 2
] + [f"{c}.{side}.securityContexts.container" for c, sides in SIDECARS.items() for side in sides] * 2
BAD_POD = merge(WORKER_POD, {"spec": {"securityContext": {"runAsNonRoot": False}}})

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("HLM-001", good_values(), []),
    ("HLM-001", with_(executor=None), ["executor"]),
    ("HLM-001", with_(executor="CeleryExecutor,KubernetesExecutor"), []),
    ("HLM-001", with_(executor="SequentialExecutr"), ["executor"]),
    ("HLM-002", good_values(), []),
    # No security contexts anywhere: every enabled Airflow component and sidecar fails every check.
    ("HLM-002", with_(securityContexts=None), NO_CONTEXT_PATHS),
    (
        "HLM-002",
        with_(statsd={"enabled": True, "resources": SIZED}),
        ["statsd.securityContexts.pod"] * 2 + ["statsd.securityContexts.container"] * 2,
    ),
    (
        "HLM-002",
        with_(scheduler={"securityContexts": {"container": {"allowPrivilegeEscalation": True}}}),
        ["scheduler.securityContexts.container"] * 2,
    ),
    (
        "HLM-002",
        with_(
            dags={
                "gitSync": {
                    "enabled": True,
                    "resources": SIZED,
                    "securityContexts": {"container": RESTRICTED_CONTAINER},
                }
            }
        ),
        [],
    ),
    (
        "HLM-002",
        with_(dags={"gitSync": {"enabled": True, "resources": SIZED}}),
        ["dags.gitSync.securityContexts.container"] * 2,
    ),
    ("HLM-003", good_values(), []),
    (
        "HLM-003",
        with_(podTemplate=yaml.safe_dump(BAD_POD)),
        [
            "podTemplate.spec.securityContext.runAsNonRoot",
            "podTemplate.spec.containers[0].securityContext.runAsNonRoot",
        ],
    ),
    ("HLM-003", with_(podTemplate="spec: [unclosed"), ["podTemplate"]),
    ("HLM-004", good_values(), []),
    ("HLM-004", with_(scheduler={"resources": {"limits": None}}), ["scheduler.resources"]),
    ("HLM-004", with_(executor="CeleryExecutor"), ["workers.resources", "redis.resources"]),
    ("HLM-005", good_values(), []),
    ("HLM-005", with_(fernetKey="c2VjcmV0", jwtSecret="abc"), ["fernetKey", "jwtSecret"]),
    (
        "HLM-005",
        with_(data={"metadataConnection": {"user": "airflow", "pass": "pw"}}),
        ["data.metadataConnection.pass"],
    ),
    (
        "HLM-005",
        with_(data={"brokerUrl": "redis://:pw@redis:6379/0"}),
        ["data.brokerUrl"],
    ),  # empty user, password
    ("HLM-005", with_(data={"brokerUrl": "redis://user:pw@redis:6379/0"}), ["data.brokerUrl"]),
    ("HLM-005", with_(config={"core": {"fernet_key": "c2VjcmV0"}}), ["config.core.fernet_key"]),
    ("HLM-005", with_(env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}]), ["env[0].value"]),
    ("HLM-005", with_(extraSecrets={"conn": {"stringData": "x: y"}}), ["extraSecrets.conn"]),
    ("HLM-007", good_values(), []),
    ("HLM-007", with_(logs={"persistence": {"enabled": False}}), ["logs.persistence.enabled"]),
    (
        "HLM-007",
        with_(
            logs={"persistence": {"enabled": False}},
            config={"logging": {"remote_logging": "True", "remote_base_log_folder": "s3://logs"}},
        ),
        [],
    ),
    ("HLM-007", with_(executor="CeleryExecutor", logs={"persistence": {"enabled": False}}), []),
    ("HLM-008", good_values(), []),
    ("HLM-008", with_(registry={"secretName": "regcred"}), ["registry.secretName"]),
    ("HLM-009", good_values(), []),
    ("HLM-009", with_(networkPolicies={"enabled": False}), ["networkPolicies.enabled"]),
    ("HLM-010", good_values(), []),
    ("HLM-010", with_(images={"airflow": {"tag": None}}), ["images.airflow"]),
    ("HLM-010", with_(images={"airflow": {"tag": None, "digest": "sha256:" + "b" * 64}}), []),
    ("HLM-010", with_(images={"gitSync": {"tag": "latest"}}), ["images.gitSync.tag"]),
]


@pytest.mark.parametrize(
    ("rule_id", "values", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(tmp_path: Path, rule_id: str, values: dict[str, Any], expected: list[str]) -> None:
    assert sorted(fired(lint(tmp_path, values), rule_id)) == sorted(expected)


def test_production_values_need_an_external_database(tmp_path: Path) -> None:
    assert fired(lint(tmp_path, good_values(), "values-production.yaml"), "HLM-006") == [
        "postgresql.enabled",
        "data",
    ]
    external = with_(postgresql={"enabled": False}, data={"metadataSecretName": "airflow-db"})
    assert fired(lint(tmp_path, external, "values-production.yaml"), "HLM-006") == []
    assert fired(lint(tmp_path, good_values(), "values.yaml"), "HLM-006") == []


def test_every_helm_rule_has_a_failing_and_a_passing_case() -> None:
    ids = {r.id for r in REGISTRY.in_set("helm-values")}
    assert ids == {f"HLM-{n:03d}" for n in range(1, 11)}
    covered = {c[0] for c in CASES} | {"HLM-006"}
    assert covered == ids
    assert {c[0] for c in CASES if c[2]} | {"HLM-006"} == ids


def test_overlay_is_merged_onto_base_and_located_in_the_overlay(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(good_values()))
    overlay = textwrap.dedent(
        """\
        postgresql:
          enabled: false
        data:
          metadataSecretName: airflow-db
        networkPolicies:
          enabled: false
        """
    )
    results = lint(tmp_path, overlay, "values-production.yaml")
    # The base supplies executor, contexts, resources: only the overlay's own weakening is reported.
    assert [(f.rule_id, line) for f, line in results] == [("HLM-009", 6)]


def test_null_in_overlay_removes_a_base_key() -> None:
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}


def test_key_scoped_and_file_wide_suppressions(tmp_path: Path) -> None:
    text = yaml.safe_dump(with_(fernetKey="c2VjcmV0", networkPolicies={"enabled": False}), sort_keys=False)
    text = text.replace(
        "fernetKey: c2VjcmV0",
        "# containerkit: ignore=HLM-005 throwaway key for the kind demo\nfernetKey: c2VjcmV0",
    )
    text = "# containerkit: ignore=HLM-009 the demo cluster has no NetworkPolicy CNI\n" + text
    results = lint(tmp_path, text)
    assert fired(results, "HLM-005") == [] and fired(results, "HLM-009") == []
    # The scoped one covers fernetKey only.
    text2 = text.replace("fernetKeySecretName: airflow-fernet", "jwtSecret: abc")
    assert fired(lint(tmp_path, text2), "HLM-005") == ["jwtSecret"]


def test_suppression_without_reason_is_reported(tmp_path: Path) -> None:
    text = yaml.safe_dump(with_(fernetKey="c2VjcmV0"), sort_keys=False).replace(
        "fernetKey: c2VjcmV0", "fernetKey: c2VjcmV0  # containerkit: ignore=HLM-005"
    )
    results = lint(tmp_path, text)
    assert fired(results, "HLM-005") == ["fernetKey"] and fired(results, "CK001")


def test_findings_point_at_the_offending_key_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(with_(jwtSecret="abc"), sort_keys=False)
    expected = text.splitlines().index("jwtSecret: abc") + 1
    assert [line for f, line in lint(tmp_path, text) if f.rule_id == "HLM-005"] == [expected]


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("executor: KubernetesExecutor\nworkers:\n  resources: {requests: \n")
    with pytest.raises(SourceError) as err:
        load(path)
    assert err.value.file == str(path) and err.value.line == 4


def test_pod_template_image_helper_is_rendered_from_the_values(tmp_path: Path) -> None:
    templated = yaml.safe_dump(WORKER_POD).replace(
        WORKER_POD["spec"]["containers"][0]["image"], '{{ include "airflow_image" . }}'
    )
    digest = "sha256:" + "c" * 64
    pinned = with_(podTemplate=templated, images={"airflow": {"tag": "3.3.2", "digest": digest}})
    assert fired(lint(tmp_path, pinned), "HLM-003") == []
    floating = with_(podTemplate=templated, images={"airflow": {"tag": "latest"}})
    assert fired(lint(tmp_path, floating), "HLM-003") == ["podTemplate.spec.containers[0].image"]
