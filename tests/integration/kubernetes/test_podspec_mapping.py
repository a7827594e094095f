"""The pure mappings of the local cluster's kubelet (no engine needed): pod spec to engine options, the
kubelet's error wording, refusals, scheduling requests, selectors and volume file modes."""

from __future__ import annotations

import base64
import io
import tarfile
from decimal import Decimal
from typing import Any

import pytest

from containerkit.testing import podspec
from containerkit.testing.selectors import field_selector_matches, label_selector_matches
from containerkit.testing.volumes import MountError, archive, plan_volumes

POD: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "etl"}}}
STORE = {
    ("Secret", "ns", "db"): {"data": {"password": base64.b64encode(b"pw").decode()}},
    ("ConfigMap", "ns", "cfg"): {"data": {"MODE": "batch"}},
}


def lookup(kind: str, namespace: str, name: str) -> Any:
    return STORE.get((kind, namespace, name))


def test_env_uses_the_kubelet_wording_and_kubernetes_expansion() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope", "optional": True}}},
            {"name": "URL", "value": "x://$(PW)@$(POD_NAME)/$$(PW)"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        ],
    }
    env = podspec.resolve_env(container, POD, lookup)
    # $(POD_NAME) is defined after URL, so it stays literal, as in Kubernetes.
    assert env == {
        "CFG_MODE": "batch",
        "PW": "pw",
        "URL": "x://pw@$(POD_NAME)/$(PW)",
        "POD_NAME": "p",
        "APP": "etl",
    }
    with pytest.raises(podspec.ConfigError, match=r"^couldn't find key passwrd in Secret ns/db$"):
        podspec.resolve_env(
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "passwrd"}}}]},
            POD,
            lookup,
        )
    with pytest.raises(podspec.ConfigError, match=r'^configmap "gone" not found$'):
        podspec.resolve_env({"envFrom": [{"configMapRef": {"name": "gone"}}]}, POD, lookup)


@pytest.mark.parametrize(
    ("context", "image_user", "expected"),
    [
        ({"runAsUser": 50000, "runAsGroup": 0}, "", "50000:0"),
        ({"runAsUser": 50000}, "", "50000"),
        ({"runAsNonRoot": True}, "10001:0", None),  # the image's numeric user stands
        ({}, "", None),
    ],
)
def test_run_user(context: dict[str, Any], image_user: str, expected: str | None) -> None:
    pod = {**POD, "spec": {"securityContext": {}}}
    assert podspec.run_user({"securityContext": context}, pod, image_user, "c") == expected


@pytest.mark.parametrize(
    ("image_user", "message"),
    [
        ("", "container has runAsNonRoot and image will run as root (c)"),
        (
            "airflow",
            "container has runAsNonRoot and image has non-numeric user (airflow), "
            "cannot verify user is non-root (c)",
        ),
    ],
)
def test_run_as_non_root_is_checked_like_the_kubelet(image_user: str, message: str) -> None:
    pod = {**POD, "spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(podspec.ConfigError) as err:
        podspec.run_user({}, pod, image_user, "c")
    assert str(err.value) == message


def test_security_context_and_limits_become_engine_options() -> None:
    container = {
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        },
        "resources": {"limits": {"memory": "32Mi", "cpu": "250m"}},
    }
    pod = {**POD, "spec": {"securityContext": {"fsGroup": 50000, "supplementalGroups": [7]}}}
    assert podspec.security_options(container, pod) == {
        "read_only": True,
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE"],
        "security_opt": ["no-new-privileges:true"],
        "group_add": ["50000", "7"],
    }
    memory = 32 * 1024 * 1024
    assert podspec.engine_limits(container) == {
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": 250_000_000,
    }


def test_refusals_name_the_field_and_respect_the_allow_list() -> None:
    spec = {
        "hostPID": True,
        "volumes": [
            {"name": "ok", "hostPath": {"path": "/srv/data/in"}},
            {"name": "escape", "hostPath": {"path": "/srv/data/../../etc"}},
        ],
        "containers": [
            {
                "name": "base",
                "securityContext": {"privileged": True},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }
    found = podspec.refusals({**POD, "spec": spec}, ["/srv/data"])
    assert len(found) == 4, found
    assert found[0].startswith("spec.hostPID=true")
    assert found[1].startswith(
        "spec.volumes[escape].hostPath.path='/srv/data/../../etc' is outside the allow-list"
    )
    assert found[2].startswith("spec.containers[base].securityContext.privileged=true")
    assert found[3].startswith("spec.containers[base].ports[80].hostPort")
    assert podspec.refusals({**POD, "spec": {"containers": [{"name": "base"}]}}, []) == []


def test_scheduler_requests_are_max_of_init_and_the_running_sum() -> None:
    def c(name: str, memory: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "resources": {"requests": {"memory": memory, "cpu": "100m"}}, **extra}

    spec = {
        "initContainers": [c("big-init", "1Gi"), c("sidecar", "100Mi", restartPolicy="Always")],
        "containers": [
            c("base", "512Mi"),
            {"name": "limits-only", "resources": {"limits": {"memory": "64Mi"}}},
        ],
    }
    requests = podspec.effective_requests({**POD, "spec": spec})
    assert requests == {"memory": Decimal(1024**3), "cpu": Decimal("0.2")}


def test_volume_files_get_the_kubelet_modes_and_fs_group() -> None:
    spec = {
        "securityContext": {"fsGroup": 50000},
        "volumes": [
            {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}},
            {"name": "work", "emptyDir": {}},
        ],
    }
    volumes = plan_volumes({**POD, "spec": spec}, lookup, "c1")
    assert [(v.name, v.kind, v.read_only) for v in volumes] == [
        ("creds", "Secret", True),
        ("work", "emptyDir", False),
    ]
    data = archive(volumes, {})
    assert data is not None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        modes = {m.name: (oct(m.mode), m.gid) for m in tar.getmembers()}
    assert modes == {
        "creds": ("0o755", 50000),
        "creds/password": ("0o440", 50000),  # defaultMode 0400, made group-readable for fsGroup
        "work": ("0o2777", 50000),
    }
    with pytest.raises(
        MountError, match=r'^MountVolume.SetUp failed for volume "x" : secret "nope" not found$'
    ):
        plan_volumes(
            {**POD, "spec": {"volumes": [{"name": "x", "secret": {"secretName": "nope"}}]}}, lookup, "c1"
        )


def test_selectors() -> None:
    labels = {"dag_id": "etl", "try_number": "1", "already_checked": "True"}
    assert label_selector_matches("dag_id=etl,try_number in (1,2),!missing", labels)
    assert not label_selector_matches("dag_id=etl,already_checked!=True", labels)
    assert not label_selector_matches("try_number notin (1)", labels)
    event = {"involvedObject": {"name": "p"}, "type": "Warning"}
    assert field_selector_matches("involvedObject.name=p,type!=Normal", event)
    assert not field_selector_matches("involvedObject.name==q", event)
