"""Fuzzing ``containerkit lint`` with random YAML/JSON structures and random YAML-like text.

Whatever the input: no exception escapes, no traceback is printed, the exit code is 0, 1 or 2, and one
file takes well under a few seconds. Structures are built from the field names rules read, so the
random values land where a wrong type would hurt (``containers``, ``securityContext``, ``services`` ...).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from containerkit.cli import main

KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "annotations", "spec", "template",
    "jobTemplate", "containers", "initContainers", "ephemeralContainers", "securityContext",
    "privileged", "capabilities", "add", "drop", "env", "value", "valueFrom", "ports", "containerPort",
    "volumes", "hostPath", "path", "resources", "limits", "requests", "memory", "cpu", "image",
    "imagePullPolicy", "runAsUser", "runAsNonRoot", "sysctls", "seccompProfile", "type", "livenessProbe",
    "hostNetwork", "restartPolicy", "replicas", "items", "data", "binaryData", "templates", "container",
    "sidecars", "script", "services", "environment", "volumes_from", "cap_add", "user", "read_only",
    "build", "healthcheck", "depends_on", "executor", "images", "workers", "podTemplate", "config",
    "webserver", "extraEnv", "secret", "<<",
]  # fmt: skip
KINDS = [
    "Pod",
    "Deployment",
    "CronJob",
    "Job",
    "List",
    "ConfigMap",
    "Workflow",
    "DeploymentConfig",
    "Service",
]
API_VERSIONS = ["v1", "apps/v1", "batch/v1", "argoproj.io/v1alpha1", "serving.knative.dev/v1", "x.io/v1"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(KINDS + API_VERSIONS + ["busybox:latest", "ALL", "SYS_ADMIN", "RuntimeDefault"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    body = draw(values)
    if draw(st.booleans()) and isinstance(body, dict):
        body = {
            "apiVersion": draw(st.sampled_from(API_VERSIONS)),
            "kind": draw(st.sampled_from(KINDS)),
            **body,
        }
    return body


def dump(docs: list[Any], style: str) -> str:
    if style == "json":
        return "\n".join(json.dumps(d, default=str) for d in docs)
    return yaml.safe_dump_all(docs, default_flow_style=style == "flow", allow_unicode=True)


def lint_one(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        started = time.perf_counter()
        result = CliRunner().invoke(main, ["lint", "--no-color", str(path)])
        elapsed = time.perf_counter() - started
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    assert elapsed < 3, f"{elapsed:.1f} s"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(documents(), min_size=1, max_size=3),
    style=st.sampled_from(["block", "flow", "json"]),
    name=st.sampled_from(["m.yaml", "m.json", "docker-compose.yaml", "values.yaml"]),
)
def test_random_structures_never_crash(docs: list[Any], style: str, name: str) -> None:
    lint_one(name, dump(docs, style))


TOKENS = [*"{}[],:-&*!|>'\"#%@?<= \n\tabkindspecPod0123", "apiVersion: v1\nkind: Pod\n", "<<: *a", "&a "]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=YAMLISH, name=st.sampled_from(["m.yaml", "m.json", "docker-compose.yaml", "values.yaml"]))
def test_random_text_never_crashes(text: str, name: str) -> None:
    lint_one(name, text)
