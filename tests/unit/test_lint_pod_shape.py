"""The pod field-type table the manifest loader checks agrees with the ``kubernetes`` client's models."""

from __future__ import annotations

import re
from typing import Any

import kubernetes.client
import pytest

from containerkit.policy.sources import pod_shape
from containerkit.policy.sources.pod_shape import mismatches

LEAF_TYPES = {
    pod_shape.STR: {"str"},
    pod_shape.INT: {"int"},
    pod_shape.BOOL: {"bool"},
    pod_shape.QUANTITY: {"str", "object"},
    pod_shape.INT_OR_STR: {"object"},
}


def _check(shape: Any, openapi: str, where: str, problems: list[str]) -> None:
    if isinstance(shape, list):
        m = re.fullmatch(r"list\[(.+)\]", openapi)
        if not m:
            problems.append(f"{where}: table says list, client says {openapi}")
            return
        _check(shape[0], m.group(1), f"{where}[]", problems)
    elif isinstance(shape, dict) and "*" in shape:
        m = re.fullmatch(r"dict\[str, (.+)\]|dict\(str, (.+)\)", openapi)
        if not m:
            problems.append(f"{where}: table says map, client says {openapi}")
            return
        _check(shape["*"], m.group(1) or m.group(2), f"{where}.*", problems)
    elif isinstance(shape, dict):
        model = getattr(kubernetes.client, openapi, None)
        if model is None:
            problems.append(f"{where}: table says mapping, client says {openapi}")
            return
        by_json = {model.attribute_map[k]: v for k, v in model.openapi_types.items()}
        for key, sub in shape.items():
            if key.startswith("*"):
                continue
            if key not in by_json:
                problems.append(f"{where}.{key}: not a field of {openapi}")
                continue
            _check(sub, by_json[key], f"{where}.{key}", problems)
    elif shape == pod_shape.OBJECT:
        if not (openapi.startswith(("V1", "Core")) or openapi == "object" or openapi.startswith("dict")):
            problems.append(f"{where}: table says mapping, client says {openapi}")
    elif openapi not in LEAF_TYPES[shape]:
        problems.append(f"{where}: table says {shape}, client says {openapi}")


def test_table_matches_the_client_models() -> None:
    problems: list[str] = []
    _check(pod_shape.POD_TEMPLATE, "V1PodTemplateSpec", "template", problems)
    assert problems == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"containers": "x"}, [("spec.containers", "a list of mappings", "a string ('x')")]),
        (
            {"containers": [{"ports": [{"containerPort": "80"}]}]},
            [("spec.containers[0].ports[0].containerPort", "an integer", "a string ('80')")],
        ),
        ({"containers": [{"resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}, []),
        (
            {"containers": [{"securityContext": {"runAsUser": True}}]},
            [("spec.containers[0].securityContext.runAsUser", "an integer", "a boolean (true)")],
        ),
        (
            {"volumes": [{"name": "v", "nfs": "server:/x"}]},
            [("spec.volumes[0].nfs", "a mapping (a volume source)", "a string ('server:/x')")],
        ),
        ({"securityContext": None, "containers": [None]}, []),
    ],
)
def test_mismatches(value: Any, expected: list[tuple[str, str, str]]) -> None:
    assert list(mismatches(value, pod_shape.POD_SPEC, "spec")) == expected
