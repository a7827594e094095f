"""Literal-secret detection: a table of true and false positives, and every place a secret can be left.

By name and by value (private keys, token shapes, JWTs, URLs with a password, high entropy), in pod
env, Docker env, ConfigMap data/binaryData, compose environment, Dockerfile ENV/ARG/LABEL and Helm values.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from containerkit.facts.secrets import (
    ENTROPY_THRESHOLD,
    high_entropy_run,
    secret_literal,
    secrets_in_text,
    shannon_entropy,
)
from containerkit.policy.lint import lint_paths

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
RANDOM_B64 = "q8Xv2LmZ9rT4kP0wN7sY1bHc6JfD3eGaUo5iVtRx"  # 40 characters, ~5.1 bits/char

TRUE_POSITIVES = [
    ("DB_PASSWORD", "hunter2", "secret-like name"),
    ("api_key", "abc123", "secret-like name"),
    ("BASIC_AUTH", "user:pw", "secret-like name"),
    ("ANYTHING", "AKIAIOSFODNN7EXAMPLE", "shape of a credential"),
    ("ANYTHING", "ASIAIOSFODNN7EXAMPLE", "shape of a credential"),
    ("ANYTHING", "ghp_" + "a1B2c3D4" * 5, "shape of a credential"),
    ("ANYTHING", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "shape of a credential"),
    ("ANYTHING", "glpat-abcdefghij0123456789", "shape of a credential"),
    ("ANYTHING", "xoxb-123456789012-abcdefghij", "shape of a credential"),
    ("ANYTHING", "AIza" + "S" * 35, "shape of a credential"),
    ("ANYTHING", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "shape of a credential"),
    ("ANYTHING", JWT, "a JSON Web Token"),
    ("ANYTHING", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", "a private key"),
    ("ANYTHING", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "a private key"),
    ("CONN", "postgresql://airflow:s3cret@db:5432/airflow", "a URL with a password"),
    ("CONN", "redis://:p4ss@redis:6379/0", "a URL with a password"),
    ("ANYTHING", RANDOM_B64, "high-entropy string"),
]
FALSE_POSITIVES = [
    ("DB_PASSWORD_FILE", "/run/secrets/db"),  # points at a secret
    ("AIRFLOW__SECRETS__BACKEND", "airflow.secrets.local_filesystem.LocalFilesystemBackend"),
    ("DB_PASSWORD", "${DB_PASSWORD}"),  # placeholders
    ("DB_PASSWORD", "{{ var.value.db_password }}"),
    ("DB_PASSWORD", "$(DB_PASSWORD)"),
    ("DB_PASSWORD", ""),
    ("AUTHOR", "Jane Doe"),
    ("IMAGE", "python:3.11@sha256:" + "0123456789abcdef" * 4),  # hex digests are not judged by entropy
    ("GIT_SHA", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
    ("RUN_ID", "550e8400-e29b-41d4-a716-446655440000"),
    ("PATH", "/usr/local/bin:/usr/bin:/opt/airflow/.local/bin"),
    ("PYTHONPATH", "/opt/airflow/dags/repo/src/package_name/modules"),
    ("CLASS", "ThisIsAVeryLongCamelCaseIdentifierName"),
    ("URL", "https://example.com/api/v1/items?page=2"),
    ("URL", "https://user@example.com/repo.git"),  # a user, no password
    ("VERSION", "1.2.3-rc.1+build.20240101"),
    ("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor"),
    ("SHORT_RANDOM", "q8Xv2LmZ9rT4kP0wN7sY"),  # 20 random characters cannot reach the threshold
]


@pytest.mark.parametrize(
    ("name", "value", "why"), TRUE_POSITIVES, ids=[f"{n}={v[:16]}" for n, v, _ in TRUE_POSITIVES]
)
def test_true_positives(name: str, value: str, why: str) -> None:
    found = secret_literal(name, value)
    assert found is not None and why in found


@pytest.mark.parametrize(
    ("name", "value"), FALSE_POSITIVES, ids=[f"{n}={v[:16]}" for n, v in FALSE_POSITIVES]
)
def test_false_positives(name: str, value: str) -> None:
    assert secret_literal(name, value) is None


def test_entropy_threshold_is_the_documented_one() -> None:
    assert ENTROPY_THRESHOLD == 4.5
    assert shannon_entropy("aaaa") == 0 and shannon_entropy("ab") == 1
    assert (
        shannon_entropy(RANDOM_B64) >= ENTROPY_THRESHOLD and high_entropy_run(f"x={RANDOM_B64}") == RANDOM_B64
    )


def test_config_file_values_are_read_line_by_line() -> None:
    text = "db.url=jdbc:postgresql://db/app\ndb.user=app\ndb.password=s3cr3t\nlog.level=INFO\n"
    assert list(secrets_in_text("app.properties", text)) == [(2, "secret-like name with a literal value")]
    assert list(secrets_in_text("app.properties", "log.level=INFO\ntimeout=30\n")) == []


def test_every_place_a_secret_can_be_left(tmp_path: Path) -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----"
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  LOG_LEVEL: info\n"
        f"  tls.key: |\n    {key}\n    MIIE\n  token: {JWT}\n"
        f"binaryData:\n  creds: {base64.b64encode(b'aws=AKIAIOSFODNN7EXAMPLE').decode()}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n"
        "    image: busybox:1.36\n    env:\n    - {name: CONN, value: 'postgresql://u:pw@db/x'}\n"
    )
    (tmp_path / "Dockerfile").write_text(
        f"FROM debian:12\nARG TOKEN=abc\nENV KEY={RANDOM_B64}\n"
        f"LABEL auth.token=ghp_{'a1B2c3D4' * 5}\nUSER 1000\n"
    )
    (tmp_path / "docker-compose.yaml").write_text(
        "services:\n  web:\n    image: x:1\n    environment:\n      API_KEY: s3cr3t\n"
    )
    (tmp_path / "values.yaml").write_text(
        "executor: KubernetesExecutor\nimages: {}\n"
        "env:\n- {name: SLACK, value: xoxb-123456789012-abcdefghij}\n"
    )
    result = lint_paths([tmp_path])
    assert result.errors == []
    found = {
        (f.rule_id, f.obj.kind, f.path)
        for f in result.findings
        if f.rule_id in {"HRD-009", "HRD-014", "DF-004", "CMP-008", "HLM-005"}
    }
    secrets = {(r, k, p) for r, k, p in found if r in {"HRD-009", "HRD-014", "DF-004"}}
    assert secrets == {
        ("HRD-014", "ConfigMap", "data.tls.key"),
        ("HRD-014", "ConfigMap", "data.token"),
        ("HRD-014", "ConfigMap", "binaryData.creds"),
        ("HRD-009", "Pod", "spec.containers[0].env[0].value"),
        ("DF-004", "Dockerfile", "stages[0].instructions[0]"),  # ARG
        ("DF-004", "Dockerfile", "stages[0].instructions[1]"),  # ENV
        ("DF-004", "Dockerfile", "stages[0].instructions[2]"),  # LABEL
    }
    assert any(k == "Compose" and "API_KEY" in p for _, k, p in found), found
    assert any(k == "HelmValues" and p.startswith("env[0]") for _, k, p in found), found


def test_helm_values_token_anywhere_by_shape(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(
        "executor: KubernetesExecutor\nimages: {}\n"
        f"workers:\n  extraContainers:\n  - name: s\n    args: ['--token', 'ghp_{'a1B2c3D4' * 5}']\n"
    )
    result = lint_paths([tmp_path / "values.yaml"])
    assert [(f.rule_id, f.path) for f in result.findings if f.rule_id == "HLM-005"] == [
        ("HLM-005", "workers.extraContainers[0].args[1]")
    ]
