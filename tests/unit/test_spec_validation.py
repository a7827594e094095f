"""Bad input is refused with a message that names the field, the bad value and the fix.

Each row asserts the whole message shape: ``<field>=<value>: <problem>. Fix: <fix>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from containerkit.errors import SpecError
from containerkit.spec import (
    ConfigMapRef,
    Container,
    ContainerSpec,
    EmptyDir,
    EnvVar,
    ImageRef,
    NodeRequirement,
    Probe,
    Resources,
    Scheduling,
    SecretRef,
    SecurityProfile,
    Toleration,
    VolumeMount,
)

IMG = "python:3.11-slim"


def spec(**kwargs: Any) -> Callable[[], object]:
    return lambda: ContainerSpec(**({"image": IMG} | kwargs))


# (id, build, field, value repr, problem fragment, fix fragment)
CASES: list[tuple[str, Callable[[], object], str, str, str, str]] = [
    (
        "untagged image",
        spec(image="python"),
        "image",
        "'python'",
        "not pinned",
        "pin a tag or (better) a digest",
    ),
    (
        "latest tag",
        spec(image="python:latest"),
        "image",
        "'python:latest'",
        "moving tag",
        "pin a version tag",
    ),
    (
        "latest with registry",
        spec(image="ghcr.io/org/app:latest"),
        "image",
        "'ghcr.io/org/app:latest'",
        "moving tag",
        "'ghcr.io/org/app:1.2.3'",
    ),
    (
        "upper-case repository",
        spec(image="Python:3"),
        "image",
        "'Python:3'",
        "lower case",
        "image reference like",
    ),
    ("empty image", spec(image=""), "image", "''", "non-empty string", "image reference like"),
    (
        "short digest",
        spec(image="app@sha256:abc123"),
        "image",
        "'app@sha256:abc123'",
        "not a valid",
        "reference",
    ),
    (
        "digest wrong length",
        spec(image="app@sha256:" + "a" * 63 + "g"),
        "image",
        "'app@sha256:",
        "64 lower-case hex",
        "copy the full digest",
    ),
    (
        "bad tag",
        spec(image="app:-x"),
        "image",
        "'app:-x'",
        "not a valid image reference",
        "image reference like",
    ),
    (
        "memory Gb",
        spec(resources={"memory": "2Gb"}),
        "resources.requests.memory",
        "'2Gb'",
        "not a Kubernetes quantity",
        "'Gb' is not a Kubernetes suffix: use G or Gi",
    ),
    (
        "cpu garbage",
        spec(resources={"cpu": "two"}),
        "resources.requests.cpu",
        "'two'",
        "not a Kubernetes quantity",
        "'500m'",
    ),
    (
        "negative cpu",
        spec(resources={"cpu": "-1"}),
        "resources.requests.cpu",
        "'-1'",
        "cannot be negative",
        "positive",
    ),
    (
        "request above limit",
        spec(resources={"preset": "s", "requests": {"memory": "1Gi"}}),
        "resources.requests.memory",
        "'1Gi'",
        "above the limit '512Mi'",
        "raise resources.limits.memory",
    ),
    (
        "cpu request above limit",
        spec(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "resources.requests.cpu",
        "'2'",
        "above the limit '1'",
        "lower the request",
    ),
    (
        "zero memory",
        spec(resources={"memory": "0"}),
        "resources.requests.memory",
        "'0'",
        "greater than zero",
        "peak",
    ),
    (
        "tiny memory",
        spec(resources={"memory": "1Mi"}),
        "resources.limits.memory",
        "'1Mi'",
        "below 6Mi",
        ">= 64Mi",
    ),
    (
        "unknown preset",
        spec(resources="xxl"),
        "resources",
        "'xxl'",
        "unknown resource preset",
        "xs, s, m, l, xl",
    ),
    (
        "unknown resource key",
        spec(resources={"limits": {"gpu": "1"}}),
        "resources.limits.gpu",
        "'1'",
        "unknown resource name",
        "gpu=<count>",
    ),
    (
        "negative gpu",
        lambda: Resources.preset("s", gpu=-1),
        "resources.gpu",
        "-1",
        "whole number of GPUs",
        "gpu=1",
    ),
    (
        "root uid",
        lambda: SecurityProfile.restricted(uid=0),
        "security.run_as_user",
        "0",
        "non-root uid",
        "50000",
    ),
    (
        "privileged without reason",
        lambda: SecurityProfile(privileged=True),
        "security.privileged",
        "True",
        "privileged containers break the restricted profile",
        "SecurityProfile.unrestricted(reason=...)",
    ),
    (
        "unrestricted with blank reason",
        lambda: SecurityProfile.unrestricted(reason="  "),
        "security.reason",
        "'  '",
        "needs a reason",
        "reason=",
    ),
    (
        "privileged in baseline",
        lambda: SecurityProfile.baseline(privileged=True),
        "security.privileged",
        "True",
        "break the baseline profile",
        "grant single capabilities",
    ),
    (
        "SYS_ADMIN in baseline",
        lambda: SecurityProfile.baseline(add_capabilities=("SYS_ADMIN",)),
        "security.add_capabilities",
        "'SYS_ADMIN'",
        "outside the Pod Security baseline set",
        "NET_BIND_SERVICE",
    ),
    (
        "CHOWN in restricted",
        lambda: SecurityProfile.restricted(add_capabilities=("CHOWN",)),
        "security.add_capabilities",
        "'CHOWN'",
        "only NET_BIND_SERVICE",
        "baseline()",
    ),
    (
        "escalation in restricted",
        lambda: SecurityProfile(allow_privilege_escalation=True),
        "security.allow_privilege_escalation",
        "True",
        "forbids privilege escalation",
        "remove it",
    ),
    (
        "host network in baseline",
        lambda: SecurityProfile.baseline(host_network=True),
        "security.host_network",
        "True",
        "host namespaces",
        "remove it",
    ),
    (
        "named image user",
        lambda: SecurityProfile.for_image_user("airflow"),
        "security.run_as_user",
        "'airflow'",
        "not numeric",
        "numeric USER",
    ),
    (
        "unknown profile name",
        spec(security="hardened"),
        "security",
        "'hardened'",
        "unknown security profile",
        "'restricted'",
    ),
    (
        "secret literal env",
        spec(env={"DB_PASSWORD": "hunter2"}),
        "env['DB_PASSWORD']",
        "'<redacted>'",
        "secret-like name with a literal value",
        "SecretRef(secret='...', key='...', env='DB_PASSWORD')",
    ),
    (
        "credential-shaped value",
        spec(env={"NOTE": "AKIAABCDEFGHIJKLMNOP"}),
        "env['NOTE']",
        "'<redacted>'",
        "shape of a credential",
        "reference a Secret",
    ),
    (
        "bad env name",
        spec(env={"1BAD": "x"}),
        "env['1BAD']",
        "'1BAD'",
        "not a valid environment variable name",
        "'MY_SETTING'",
    ),
    (
        "non-string env value",
        lambda: EnvVar("PORT", 8080),
        "env['PORT']",
        "8080",
        "must be strings",
        "str(8080)",
    ),  # type: ignore[arg-type]
    (
        "duplicate env",
        spec(env={"A": "1"}, secrets=[SecretRef("s", "k", env="A")]),
        "secrets[0].env",
        "'A'",
        "duplicate environment variable: env[0].name and secrets[0].env both use it",
        "give each a different environment variable",
    ),
    (
        "command as string",
        spec(command="python -m job"),
        "command",
        "'python -m job'",
        "list of arguments",
        "['python', '-m', 'job']",
    ),
    ("relative working dir", spec(working_dir="work"), "working_dir", "'work'", "absolute path", "'/data'"),
    (
        "bad label value",
        spec(labels={"team": "data team"}),
        "labels['team']",
        "'data team'",
        "not a valid label value",
        "annotation",
    ),
    (
        "bad label key",
        spec(labels={"-team": "x"}),
        "labels['-team']",
        "'-team'",
        "not a qualified name",
        "example.com/team",
    ),
    (
        "long label value",
        spec(labels={"t": "x" * 64}),
        "labels['t']",
        "'xxxx",
        "at most 63 characters",
        "shorten",
    ),
    (
        "bad annotation key",
        spec(annotations={"a b": "x"}),
        "annotations['a b']",
        "'a b'",
        "not a qualified name",
        "keys like",
    ),
    (
        "bad container name",
        lambda: Container("Proxy_1", "envoy:1"),
        "containers[Proxy_1].name",
        "'Proxy_1'",
        "DNS-1123 label",
        "'proxy-1'",
    ),
    (
        "sidecar named base",
        lambda: Container("base", "envoy:1"),
        "containers[base].name",
        "'base'",
        "task container's name",
        "pick another",
    ),
    (
        "duplicate container",
        spec(sidecars=[Container("proxy", "envoy:1")], init_containers=[Container("proxy", "busybox:1")]),
        "init_containers[0].name",
        "'proxy'",
        "duplicate container name: sidecars[0].name and init_containers[0].name both use it",
        "give each a different container name",
    ),
    (
        "duplicate volume",
        spec(volumes=[EmptyDir("data"), EmptyDir("data")]),
        "volumes[1].name",
        "'data'",
        "duplicate volume name: volumes[0].name and volumes[1].name both use it",
        "give each a different volume name",
    ),
    (
        "reserved volume",
        spec(volumes=[EmptyDir("tmp")]),
        "volumes[tmp].name",
        "'tmp'",
        "reserved",
        "rename the volume",
    ),
    (
        "unknown mount volume",
        spec(mounts=[VolumeMount("nope", "/x")]),
        "mounts[/x].volume",
        "'nope'",
        "no volume with this name",
        "known: none",
    ),
    (
        "duplicate mount path",
        spec(volumes=[EmptyDir("a"), EmptyDir("b")], mounts=[VolumeMount("a", "/x"), VolumeMount("b", "/x")]),
        "mounts[1].path",
        "'/x'",
        "duplicate mount path: mounts[0].path and mounts[1].path both use it",
        "give each a different mount path",
    ),
    (
        "memory emptyDir unbounded",
        lambda: EmptyDir("shm", memory=True),
        "volumes[shm].size_limit",
        "None",
        "whole memory limit",
        "size_limit='64Mi'",
    ),
    (
        "secret ref both forms",
        lambda: SecretRef("db", "pw", env="PW", path="/pw"),
        "secrets[db/pw]",
        "'db/pw'",
        "exactly one of env=",
        "path=",
    ),
    (
        "secret bad name",
        lambda: SecretRef("DB", "pw", path="/pw"),
        "secrets[DB/pw].name",
        "'DB'",
        "DNS-1123 subdomain",
        "'db'",
    ),
    (
        "configmap bad key",
        lambda: ConfigMapRef("cm", "a/b", env="X"),
        "config_maps[cm/a/b].key",
        "'a/b'",
        "not a valid ConfigMap key",
        "letters, digits",
    ),
    ("probe port", lambda: Probe.tcp(0), "probe.port", "0", "1..65535", "container's port"),
    (
        "toleration exists with value",
        lambda: Toleration("k", "Exists", "v"),
        "scheduling.tolerations.value",
        "'v'",
        "Exists takes no value",
        "drop value",
    ),
    (
        "node affinity In without values",
        lambda: NodeRequirement("zone", "In"),
        "scheduling.node_affinity.values",
        "()",
        "In needs values",
        "fix the values",
    ),
    (
        "bad priority class",
        lambda: Scheduling(priority_class="High_Prio"),
        "scheduling.priority_class",
        "'High_Prio'",
        "DNS-1123 subdomain",
        "'high-prio'",
    ),
    (
        "negative grace",
        spec(termination_grace_seconds=-1),
        "termination_grace_seconds",
        "-1",
        "seconds >= 0",
        "e.g. 60",
    ),
    (
        "bad service account",
        spec(service_account="Etl Runner"),
        "service_account",
        "'Etl Runner'",
        "DNS-1123 subdomain",
        "'etl-runner'",
    ),
    (
        "bad pull policy",
        spec(image_pull_policy="Sometimes"),
        "image_pull_policy",
        "'Sometimes'",
        "unknown pull policy",
        "IfNotPresent",
    ),
    (
        "image ref object latest",
        lambda: ImageRef("app", tag="latest"),
        "image",
        "'app:latest'",
        "moving tag",
        "digest",
    ),
]


@pytest.mark.parametrize(
    ("build", "field", "value", "problem", "fix"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_message(
    build: Callable[[], object], field: str, value: str, problem: str, fix: str
) -> None:
    with pytest.raises(SpecError) as info:
        build()
    error = info.value
    message = str(error)
    assert error.field == field
    assert message.startswith(f"{field}={value}"), message
    assert problem in error.problem, message
    assert fix in error.fix, message
    assert re.fullmatch(r".+=.+: .+\. Fix: .+", message, re.S), message


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_no_library_exception_escapes() -> None:
    """Library errors (quantity parser, regexes) are wrapped: no ValueError/TypeError other than SpecError."""
    odd_inputs: list[dict[str, Any]] = [
        {"resources": {"memory": "Infinity"}},
        {"resources": {"cpu": [1]}},
        {"resources": {"memory": "1e"}},
        {"resources": {"memory": "NaN"}},
        {"image": 42},
        {"env": "A=1"},
        {"env": {"A": None}},
        {"labels": {"a": 1}},
        {"volumes": ["data"]},
        {"mounts": [("a", "/b")]},
        {"scheduling": {"node_selector": {}}},
        {"probes": "http"},
        {"secrets": "db"},
        {"sidecars": [{"name": "x"}]},
        {"active_deadline_seconds": True},
    ]
    for kwargs in odd_inputs:
        with pytest.raises(SpecError):
            ContainerSpec(**({"image": IMG} | kwargs))


def test_secret_value_never_appears_in_the_error() -> None:
    with pytest.raises(SpecError) as info:
        ContainerSpec(IMG, env={"API_TOKEN": "tok-very-secret"})
    assert "tok-very-secret" not in str(info.value) and "tok-very-secret" not in repr(info.value.value)
