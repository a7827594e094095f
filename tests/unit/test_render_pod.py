"""Kubernetes rendering: the pod is built from the spec alone, `base` first, hardened, schema-valid."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes.client import V1Pod, V1Volume

from containerkit.errors import SpecError
from containerkit.kubernetes.manifests import dump_yaml, to_dict
from containerkit.kubernetes.pod import full_pod_spec, pod_override, render_pod, worker_pod_template
from containerkit.policy.engine import evaluate_pod
from containerkit.spec import (
    ConfigMapRef,
    ConfigMapVolume,
    Container,
    ContainerSpec,
    EmptyDir,
    NodeRequirement,
    PersistentVolumeClaimVolume,
    PodAntiAffinity,
    Probe,
    Probes,
    ProjectedVolume,
    Scheduling,
    SecretRef,
    SecretVolume,
    SecurityProfile,
    ServiceAccountToken,
    Toleration,
    TopologySpread,
    VolumeMount,
)

VERSIONS = ("1.29.0", "1.37.0")


def _rich_spec() -> ContainerSpec:
    return ContainerSpec(
        "registry.example.com/etl/job:2.1",
        command=["python", "-m", "etl"],
        args=["--date", "{{ ds }}"],
        working_dir="/work",
        env={"MODE": "daily"},
        secrets=[
            SecretRef("db", "password", env="DB_PASSWORD"),
            SecretRef("db", "ca.crt", path="/etc/db/ca.crt"),
        ],
        config_maps=[ConfigMapRef("etl-settings", "region", env="REGION")],
        volumes=[
            EmptyDir("scratch", size_limit="1Gi"),
            EmptyDir("shm", memory=True, size_limit="64Mi"),
            PersistentVolumeClaimVolume("data", "etl-data"),
            ConfigMapVolume("conf", "etl-conf", items={"etl.yaml": "etl.yaml"}),
            SecretVolume("keys", "etl-keys"),
            ProjectedVolume("bundle", (SecretVolume("x", "tls"), ServiceAccountToken(audience="vault"))),
        ],
        mounts=[
            VolumeMount("scratch", "/scratch"),
            VolumeMount("shm", "/dev/shm"),
            VolumeMount("data", "/data"),
            VolumeMount("conf", "/etc/etl"),
            VolumeMount("keys", "/etc/keys"),
            VolumeMount("bundle", "/var/run/bundle"),
        ],
        resources="m",
        sidecars=[
            Container(
                "proxy",
                "envoyproxy/envoy:v1.29.1",
                ports=[15000],
                probes=Probes(readiness=Probe.http("/ready", 15000)),
            )
        ],
        init_containers=[Container("wait", "busybox:1.36", command=["true"])],
        scheduling=Scheduling(
            node_selector={"pool": "batch"},
            node_affinity=(
                NodeRequirement("zone", "In", ("a", "b")),
                NodeRequirement("ssd", "Exists", weight=10),
            ),
            anti_affinity=(PodAntiAffinity({"app": "etl"}),),
            tolerations=(Toleration("batch", "Equal", "yes", "NoSchedule"),),
            topology_spread=(TopologySpread({"app": "etl"}),),
            priority_class="batch-low",
            runtime_class="gvisor",
        ),
        service_account="etl-runner",
        labels={"app": "etl"},
        annotations={"owner": "data team"},
        termination_grace_seconds=30,
        active_deadline_seconds=3600,
        image_pull_secrets=["regcred"],
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_rich_spec_renders_a_strictly_valid_pod(version: str) -> None:
    pod = render_pod(_rich_spec(), name="etl-1", namespace="airflow-tasks")
    kubernetes_validate.validate(to_dict(pod), version, strict=True)


def test_base_first_hardened_and_sized() -> None:
    pod = render_pod(_rich_spec(), name="etl-1")
    assert isinstance(pod, V1Pod)
    base = pod.spec.containers[0]
    assert base.name == "base" and len(pod.spec.containers) == 1
    sc = base.security_context
    assert sc.allow_privilege_escalation is False and sc.read_only_root_filesystem is True
    assert sc.capabilities.drop == ["ALL"] and sc.run_as_non_root is True and sc.run_as_user == 50000
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert pod.spec.security_context.fs_group == 0
    assert pod.spec.automount_service_account_token is False
    assert base.resources.limits == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"}
    assert {m.mount_path for m in base.volume_mounts} >= {"/tmp", "/etc/db/ca.crt", "/data"}


def test_sidecars_are_native_sidecars_after_init_containers() -> None:
    pod = render_pod(_rich_spec(), name="etl-1")
    assert [(c.name, c.restart_policy) for c in pod.spec.init_containers] == [
        ("wait", None),
        ("proxy", "Always"),
    ]
    proxy = pod.spec.init_containers[1]
    assert proxy.security_context.run_as_non_root and proxy.resources.limits["memory"] == "128Mi"
    assert proxy.readiness_probe.http_get.port == 15000


def test_secrets_render_as_references_never_values() -> None:
    data = to_dict(render_pod(_rich_spec(), name="etl-1"))
    env = {e["name"]: e for e in data["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}
    assert env["REGION"]["valueFrom"]["configMapKeyRef"] == {"name": "etl-settings", "key": "region"}
    files = next(v for v in data["spec"]["volumes"] if v["name"] == "secret-db")
    assert files["secret"] == {
        "secretName": "db",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
        "defaultMode": 0o440,
    }


def test_renderer_adds_nothing_the_spec_does_not_say() -> None:
    spec = ContainerSpec("python:3.11-slim", security=SecurityProfile.restricted(tmp_size_limit=None))
    data = to_dict(render_pod(spec, name="p"))
    assert "volumes" not in data["spec"] and "volumeMounts" not in data["spec"]["containers"][0]
    assert "affinity" not in data["spec"] and "nodeSelector" not in data["spec"]
    assert "command" not in data["spec"]["containers"][0]


def test_full_pod_spec_is_unnamed_and_pod_override_refuses_commands() -> None:
    spec = ContainerSpec("apache/airflow:3.0.2", resources="l")
    assert full_pod_spec(spec).metadata.name is None
    override = pod_override(spec)
    assert override.spec.containers[0].name == "base"
    assert override.spec.containers[0].resources.limits["memory"] == "4Gi"
    with pytest.raises(SpecError, match="executor supplies the base container's command"):
        pod_override(spec.replace(command=["python"]))


def test_render_pod_refuses_an_invalid_pod_name() -> None:
    with pytest.raises(SpecError, match=r"name='Bad_Name'.*DNS-1123"):
        render_pod(ContainerSpec("python:3.11-slim"), name="Bad_Name")
    with pytest.raises(SpecError, match=r"namespace='Team A': not a valid Kubernetes namespace name"):
        render_pod(ContainerSpec("python:3.11-slim"), name="ok", namespace="Team A")


def test_worker_pod_template_matches_the_chart_shape() -> None:
    text = worker_pod_template(
        image="apache/airflow:3.0.2", namespace="airflow", config_map="rel-config", release="rel"
    )
    assert text == worker_pod_template(
        image="apache/airflow:3.0.2", namespace="airflow", config_map="rel-config", release="rel"
    )
    (pod,) = list(yaml.safe_load_all(text))
    for version in VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    assert pod["metadata"]["labels"] == {"tier": "airflow", "component": "worker", "release": "rel"}
    base = pod["spec"]["containers"][0]
    assert base["name"] == "base" and base["env"][0] == {
        "name": "AIRFLOW__CORE__EXECUTOR",
        "value": "LocalExecutor",
    }
    mounts = {m["name"]: m for m in base["volumeMounts"]}
    assert mounts["logs"]["mountPath"] == "/opt/airflow/logs"
    assert mounts["config"] == {
        "mountPath": "/opt/airflow/airflow.cfg",
        "name": "config",
        "readOnly": True,
        "subPath": "airflow.cfg",
    }
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "rel-config" and volumes["logs"] == {
        "emptyDir": {},
        "name": "logs",
    }
    assert pod["spec"]["restartPolicy"] == "Never"


def test_worker_pod_template_logs_from_a_claim_or_a_volume() -> None:
    pod = yaml.safe_load(worker_pod_template(image="apache/airflow:3.0.2", logs_volume="airflow-logs"))
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "airflow-logs"}
    with pytest.raises(SpecError, match="must be named 'logs'"):
        worker_pod_template(image="apache/airflow:3.0.2", logs_volume=V1Volume(name="x"))
    with pytest.raises(SpecError, match="exactly one of spec= or image="):
        worker_pod_template()


def test_dump_yaml_is_multi_document_and_deterministic() -> None:
    pods = [render_pod(ContainerSpec("a:1"), name="a"), render_pod(ContainerSpec("b:1"), name="b")]
    text = dump_yaml(pods)
    assert text == dump_yaml(pods) and text.count("---") == 2
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(text)] == ["a", "b"]


def test_executor_builds_a_hardened_worker_from_template_and_override(tmp_path: Path) -> None:
    """Airflow's own KubernetesExecutor code path: template file + pod_override -> the worker pod."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    template = tmp_path / "worker.yaml"
    template.write_text(worker_pod_template(image="apache/airflow:3.0.2", namespace="airflow"))
    base_pod = PodGenerator.deserialize_model_file(str(template))
    override = pod_override(ContainerSpec("apache/airflow:3.0.2", resources="l", labels={"size": "l"}))
    pod = PodGenerator.construct_pod(
        dag_id="d",
        task_id="t",
        pod_id="d-t-abc",
        try_number=1,
        kube_image="apache/airflow:3.0.2",
        date=None,
        args=["airflow", "tasks", "run", "d", "t", "manual"],
        pod_override_object=override,
        base_worker_pod=base_pod,
        namespace="airflow",
        scheduler_job_id="1",
        run_id="manual",
    )
    data = to_dict(pod)
    base = data["spec"]["containers"][0]
    assert base["name"] == "base" and base["args"][:3] == ["airflow", "tasks", "run"]
    assert base["resources"]["limits"]["memory"] == "4Gi"
    assert {m["name"] for m in base["volumeMounts"]} >= {"logs", "config", "tmp"}
    assert base["securityContext"]["readOnlyRootFilesystem"] is True
    assert data["metadata"]["labels"]["size"] == "l"
    for version in VERSIONS:
        kubernetes_validate.validate(data, version, strict=True)
    assert evaluate_pod(data, rule_sets=["pss-baseline", "pss-restricted"]) == []


def test_derived_file_volume_names_never_collide() -> None:
    spec = ContainerSpec(
        "python:3.11-slim",
        secrets=[
            SecretRef("db.x", "k", path="/a"),
            SecretRef("db-x", "k", path="/b"),
            SecretRef("x" * 70, "k", path="/c"),
        ],
    )
    names = [v for v, _ in spec.file_volumes()]
    assert len(set(names)) == 3 and all(len(n) <= 63 for n in names)
    render_pod(spec, name="p")  # and the pod renders with them
