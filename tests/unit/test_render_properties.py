"""Property: every valid spec renders to a pod that the Kubernetes 1.29 and 1.37 OpenAPI schemas accept
(strict: no unknown fields) and that breaks no Pod Security Standards baseline/restricted rule, and to
Docker settings that keep the hardening. Specs are drawn from the whole spec surface."""

from __future__ import annotations

import string
from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from containerkit.docker.run_settings import render_docker
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import render_pod
from containerkit.policy.engine import evaluate_pod
from containerkit.spec import (
    RESOURCE_PRESETS,
    ConfigMapRef,
    ConfigMapVolume,
    Container,
    ContainerSpec,
    EmptyDir,
    EnvVar,
    NodeRequirement,
    PersistentVolumeClaimVolume,
    PodAntiAffinity,
    Probe,
    Probes,
    ProjectedVolume,
    Resources,
    Scheduling,
    SecretRef,
    SecretVolume,
    SecurityProfile,
    ServiceAccountToken,
    Toleration,
    TopologySpread,
    VolumeMount,
)

DNS = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")
ENV_NAME = st.from_regex(r"\AV_[A-Z0-9_]{1,12}\Z")  # V_ prefix: never a secret-looking name
LABEL_VALUE = st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z")
PATH = st.lists(DNS, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
TEXT = st.text(string.ascii_letters + string.digits + " -_./{}", max_size=20)


@st.composite
def images(draw: st.DrawFn) -> str:
    registry = draw(st.sampled_from(["", "ghcr.io/", "localhost:5000/", "registry.example.com:443/"]))
    repo = "/".join(draw(st.lists(st.from_regex(r"\A[a-z0-9]+([._-][a-z0-9]+)?\Z"), min_size=1, max_size=3)))
    tag = draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,12}\Z").filter(lambda t: t != "latest"))
    digest = draw(st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)))
    if digest is None:
        return f"{registry}{repo}:{tag}"
    return f"{registry}{repo}" + draw(st.sampled_from(["", f":{tag}"])) + f"@sha256:{digest}"


@st.composite
def resources(draw: st.DrawFn) -> Resources:
    base = RESOURCE_PRESETS[draw(st.sampled_from(sorted(RESOURCE_PRESETS)))]
    memory = draw(st.integers(64, 16384))
    cpu = draw(st.integers(10, 8000))
    return (
        Resources.preset(
            draw(st.sampled_from(sorted(RESOURCE_PRESETS))),
            requests={"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
            limits={"cpu": f"{cpu + draw(st.integers(0, 4000))}m", "memory": f"{memory}Mi"},
            gpu=draw(st.integers(0, 2)),
        )
        if draw(st.booleans())
        else base
    )


@st.composite
def profiles(draw: st.DrawFn) -> SecurityProfile:
    uid = draw(st.integers(1, 2**31 - 1))
    gid = draw(st.integers(0, 2**31 - 1))
    return SecurityProfile.restricted(
        uid=uid,
        gid=gid,
        add_capabilities=draw(st.sampled_from([(), ("NET_BIND_SERVICE",)])),
        tmp_size_limit=draw(st.sampled_from([None, "64Mi", "1Gi"])),
        read_only_root_filesystem=draw(st.booleans()),
    )


probes = st.one_of(
    st.none(),
    st.builds(Probe.http, st.just("/healthz"), st.integers(1, 65535)),
    st.builds(Probe.tcp, st.integers(1, 65535)),
    st.builds(Probe.grpc_check, st.integers(1, 65535)),
    st.builds(lambda c: Probe.exec(*c), st.lists(TEXT.filter(bool), min_size=1, max_size=3)),
)


@st.composite
def containers(draw: st.DrawFn, name: str) -> Container:
    return Container(
        name,
        draw(images()),
        command=draw(st.one_of(st.none(), st.lists(TEXT, min_size=1, max_size=3))),
        args=draw(st.lists(TEXT, max_size=3)),
        env={n: draw(TEXT) for n in draw(st.lists(ENV_NAME, max_size=3, unique=True))},
        resources=draw(st.sampled_from(sorted(RESOURCE_PRESETS))),
        probes=Probes(readiness=draw(probes)),
        ports=draw(st.lists(st.integers(1, 65535), max_size=2, unique=True)),
    )


def volume(name: str, kind: str) -> st.SearchStrategy[Any]:
    return {
        "empty": st.builds(EmptyDir, st.just(name), size_limit=st.sampled_from([None, "1Gi"])),
        "mem": st.just(EmptyDir(name, memory=True, size_limit="32Mi")),
        "pvc": st.builds(PersistentVolumeClaimVolume, st.just(name), DNS, read_only=st.booleans()),
        "cm": st.builds(ConfigMapVolume, st.just(name), DNS, items=st.just({"k": "k.yaml"})),
        "secret": st.builds(SecretVolume, st.just(name), DNS),
        "projected": st.builds(
            lambda s, c: ProjectedVolume(
                name, (SecretVolume("s", s), ConfigMapVolume("c", c), ServiceAccountToken())
            ),
            DNS,
            DNS,
        ),
    }[kind]


@st.composite
def specs(draw: st.DrawFn) -> ContainerSpec:
    env_names = draw(st.lists(ENV_NAME, max_size=6, unique=True))
    n_literal = draw(st.integers(0, len(env_names)))
    literal = [EnvVar(n, draw(TEXT)) for n in env_names[:n_literal]]
    rest = env_names[n_literal:]
    refs = [
        SecretRef(
            draw(DNS), draw(st.from_regex(r"\A[a-z0-9._-]{1,12}\Z")), env=n, optional=draw(st.booleans())
        )
        if draw(st.booleans())
        else ConfigMapRef(draw(DNS), draw(st.from_regex(r"\A[a-z0-9_-]{1,12}\Z")), env=n)
        for n in rest
    ]
    file_paths = draw(st.lists(PATH.map(lambda p: "/run/files" + p), max_size=3, unique=True))
    file_refs = [
        SecretRef(draw(DNS), draw(st.from_regex(r"\A[a-z0-9_-]{1,12}\Z")), path=p) for p in file_paths
    ]
    kinds = st.sampled_from(["empty", "mem", "pvc", "cm", "secret", "projected"])
    volumes = [draw(volume(f"v{i}", kind)) for i, kind in enumerate(draw(st.lists(kinds, max_size=5)))]
    mounts = [
        VolumeMount(v.name, f"/mnt/{v.name}", sub_path=draw(st.sampled_from([None, "sub"]))) for v in volumes
    ]
    sidecar_names = draw(st.lists(DNS.filter(lambda n: n != "base"), max_size=2, unique=True))
    init_names = draw(
        st.lists(DNS.filter(lambda n: n not in ("base", *sidecar_names)), max_size=2, unique=True)
    )
    labels = draw(
        st.dictionaries(
            st.from_regex(r"\A([a-z]{1,5}\.io/)?[a-z]([a-z0-9-]{0,7}[a-z0-9])?\Z"), LABEL_VALUE, max_size=3
        )
    )
    scheduling = Scheduling(
        node_selector=draw(
            st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z"), LABEL_VALUE, max_size=2)
        ),
        node_affinity=draw(
            st.lists(
                st.builds(
                    NodeRequirement,
                    st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z"),
                    st.just("In"),
                    st.lists(LABEL_VALUE.filter(bool), min_size=1, max_size=2).map(tuple),
                    st.sampled_from([0, 10]),
                ),
                max_size=2,
            )
        ),
        anti_affinity=draw(
            st.lists(st.builds(PodAntiAffinity, st.just({"app": "x"}), required=st.booleans()), max_size=1)
        ),
        tolerations=draw(
            st.lists(st.builds(Toleration, st.from_regex(r"\A[a-z]{1,8}\Z"), st.just("Exists")), max_size=2)
        ),
        topology_spread=draw(st.lists(st.builds(TopologySpread, st.just({"app": "x"})), max_size=1)),
        priority_class=draw(st.one_of(st.none(), DNS)),
        runtime_class=draw(st.one_of(st.none(), DNS)),
    )
    return ContainerSpec(
        draw(images()),
        command=draw(st.one_of(st.none(), st.lists(TEXT, min_size=1, max_size=4))),
        args=draw(st.lists(TEXT, max_size=4)),
        working_dir=draw(st.one_of(st.none(), PATH)),
        env=literal,
        secrets=[r for r in refs if isinstance(r, SecretRef)] + file_refs,
        config_maps=[r for r in refs if isinstance(r, ConfigMapRef)],
        volumes=volumes,
        mounts=mounts,
        resources=draw(resources()),
        security=draw(profiles()),
        probes=Probes(liveness=draw(probes), startup=draw(probes)),
        ports=draw(st.lists(st.integers(1, 65535), max_size=2, unique=True)),
        sidecars=[draw(containers(n)) for n in sidecar_names],
        init_containers=[draw(containers(n)) for n in init_names],
        scheduling=scheduling,
        service_account=draw(st.one_of(st.none(), DNS)),
        labels=labels,
        annotations=draw(st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9.-]{0,10}[a-z]\Z"), TEXT, max_size=2)),
        termination_grace_seconds=draw(st.one_of(st.none(), st.integers(0, 3600))),
        active_deadline_seconds=draw(st.one_of(st.none(), st.integers(1, 86400))),
        image_pull_secrets=draw(st.lists(DNS, max_size=1)),
    )


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTY_SETTINGS
@given(specs())
def test_any_valid_spec_renders_a_schema_valid_pss_restricted_pod(spec: ContainerSpec) -> None:
    pod = to_dict(render_pod(spec, name="task-1", namespace="airflow-tasks"))
    for version in ("1.29.0", "1.37.0"):
        kubernetes_validate.validate(pod, version, strict=True)
    findings = evaluate_pod(pod, rule_sets=["pss-baseline", "pss-restricted"])
    assert findings == [], [(f.rule_id, f.path, f.message) for f in findings]
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    assert pod["spec"]["containers"][0]["name"] == "base"
    for c in containers:
        assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(specs())
def test_any_single_container_spec_renders_hardened_docker_settings(spec: ContainerSpec) -> None:
    spec = spec.replace(
        sidecars=(),
        init_containers=(),
        volumes=[v for v in spec.volumes if not isinstance(v, ProjectedVolume)],
        mounts=[m for m in spec.mounts if not isinstance(spec.volume(m.volume), ProjectedVolume)],
        probes=Probes(),
    )
    data = render_docker(spec, secrets_dir="/srv/secrets", config_dir="/srv/config").as_policy_data()
    assert data["cap_drop"] == ["ALL"] and "no-new-privileges" in data["security_opt"]
    assert data["user"] == f"{spec.security.run_as_user}:{spec.security.run_as_group}"
    assert data["mem_limit"] == data["memswap_limit"] == spec.resources.memory_limit_bytes
    assert data["nano_cpus"] == spec.resources.cpu_limit_nano
    assert all(m["ReadOnly"] for m in data["mounts"] if m["Type"] == "bind")
    secret_names = {r.env for r in (*spec.secrets, *spec.config_maps) if r.env}
    assert {k for k, v in data["environment"].items() if v == "<redacted>"} >= secret_names
