"""Sidecar and init-container factories: rendered pods stay schema-valid, restricted and sized, and the
helper scripts the factories ship really work (run on the Docker engine with the rendered settings)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from containerkit.errors import SpecError
from containerkit.kubernetes.init_containers import (
    migration_runner,
    volume_permissions,
    wait_for_http,
    wait_for_tcp,
)
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import render_pod
from containerkit.kubernetes.sidecars import git_sync, local_proxy, log_shipper, secrets_to_file
from containerkit.policy.engine import evaluate_pod
from containerkit.spec import (
    ContainerSpec,
    PersistentVolumeClaimVolume,
    PodExtension,
    SecretRef,
    SecurityProfile,
)

BASE = ContainerSpec("registry.example.com/etl/job:2.1", command=["python", "-m", "etl"])
TEST_LABEL = {"containerkit.test": "spec"}

EXTENSIONS: dict[str, PodExtension] = {
    "git-sync": git_sync("https://github.com/org/dags.git", credentials_secret="git-creds"),
    "git-sync-once-ssh": git_sync("git@github.com:org/dags.git", one_time=True, ssh_key_secret="git-ssh"),
    "log-shipper": log_shipper("fluent-bit-config"),
    "local-proxy": local_proxy(
        "db-proxy", "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0", port=5432, args=["proj:region:db"]
    ),
    "secrets-to-file": secrets_to_file(
        "/run/ck/.pgpass", "db:5432:etl:etl:${PGPASSWORD}\n", [SecretRef("db", "password", env="PGPASSWORD")]
    ),
    "wait-tcp": wait_for_tcp("postgres.db.svc", 5432, timeout_seconds=60),
    "wait-http": wait_for_http("http://api.svc:8080/healthz"),
    "migration": migration_runner("registry.example.com/etl/job:2.1", ["alembic", "upgrade", "head"]),
    "volume-fsgroup": volume_permissions("data", "/data", uid=50000, gid=0),
}


def _pod(spec: ContainerSpec) -> dict[str, Any]:
    return to_dict(render_pod(spec, name="task-1", namespace="airflow-tasks"))


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_factory_pods_are_valid_restricted_and_sized(name: str) -> None:
    spec = BASE.extend(EXTENSIONS[name])
    pod = _pod(spec)
    for version in ("1.29.0", "1.37.0"):
        kubernetes_validate.validate(pod, version, strict=True)
    findings = evaluate_pod(pod, rule_sets=["pss-baseline", "pss-restricted"])
    assert findings == [], [(f.rule_id, f.path) for f in findings]
    errors = [f for f in evaluate_pod(pod, rule_sets=["hardened"]) if f.severity.value == "error"]
    assert errors == [], [(f.rule_id, f.path, f.message) for f in errors]
    for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        limits = container["resources"]["limits"]
        assert limits["memory"] == container["resources"]["requests"]["memory"]
        assert {"cpu", "memory", "ephemeral-storage"} <= set(limits)


def test_all_factories_compose_into_one_pod() -> None:
    spec = BASE.extend(
        *(EXTENSIONS[n] for n in ("git-sync", "log-shipper", "local-proxy", "secrets-to-file"))
    )
    spec = spec.extend(EXTENSIONS["wait-tcp"], EXTENSIONS["migration"])
    pod = _pod(spec)
    init = [(c["name"], c.get("restartPolicy")) for c in pod["spec"]["initContainers"]]
    assert init == [
        ("render-secret-file", None),
        ("wait-for-postgres-5432", None),
        ("migrate", None),
        ("git-sync", "Always"),
        ("log-shipper", "Always"),
        ("db-proxy", "Always"),
    ]
    assert evaluate_pod(pod, rule_sets=["pss-restricted"]) == []


def test_git_sync_shares_a_read_only_checkout_with_base() -> None:
    pod = _pod(BASE.extend(EXTENSIONS["git-sync"]))
    base_mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert base_mounts["/git"] == {"mountPath": "/git", "name": "git-sync", "readOnly": True}
    sidecar = pod["spec"]["initContainers"][0]
    assert "--repo=https://github.com/org/dags.git" in sidecar["args"]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["GITSYNC_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "git-creds", "key": "password"}
    assert sidecar["livenessProbe"]["httpGet"]["port"] == 2020


def test_local_proxy_gates_the_task_on_a_startup_probe() -> None:
    proxy = _pod(BASE.extend(EXTENSIONS["local-proxy"]))["spec"]["initContainers"][0]
    assert proxy["startupProbe"]["tcpSocket"] == {"port": 5432} and proxy["restartPolicy"] == "Always"


def test_volume_permissions_prefers_fs_group_and_needs_a_reason_otherwise() -> None:
    fs_group_pod = _pod(BASE.extend(EXTENSIONS["volume-fsgroup"]))
    assert (
        "initContainers" not in fs_group_pod["spec"]
        and fs_group_pod["spec"]["securityContext"]["fsGroup"] == 0
    )
    with pytest.raises(SpecError, match="needs fsGroup"):
        BASE.replace(security=SecurityProfile.restricted(fs_group=None)).extend(EXTENSIONS["volume-fsgroup"])
    with pytest.raises(SpecError, match=r"volume_permissions.reason=None: a root chown"):
        volume_permissions("data", "/data", uid=50000, gid=0, fs_group_works=False)
    spec = BASE.replace(volumes=[PersistentVolumeClaimVolume("data", "nfs-data")]).extend(
        volume_permissions(
            "data", "/data", uid=50000, gid=0, fs_group_works=False, reason="NFS without fsGroup"
        )
    )
    pod = _pod(spec)
    chown = pod["spec"]["initContainers"][0]["securityContext"]
    assert chown["runAsUser"] == 0 and chown["runAsNonRoot"] is False
    assert chown["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]}
    assert {f.rule_id for f in evaluate_pod(pod, rule_sets=["pss-restricted"])}, (
        "the weakening must be visible"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: wait_for_tcp("db", 0), "wait_for_tcp.port=0: a port must be 1..65535"),
        (lambda: wait_for_tcp("db", 5432, timeout_seconds=0), "timeout_seconds=0: must be 1..3600"),
        (lambda: wait_for_http("ftp://x"), "not an http(s) URL"),
        (
            lambda: wait_for_http("http://u:pw@x/h"),
            "wait_for_http.url='<redacted>': the URL holds a password",
        ),
        (lambda: git_sync("https://x/r.git", period_seconds=1), "git_sync.period_seconds=1: must be >= 5"),
        (
            lambda: secrets_to_file("/x", "t", [SecretRef("s", "k", env="K")]),
            "needs a directory and a file name",
        ),
        (lambda: secrets_to_file("/run/x", "t", [SecretRef("s", "k", path="/k")]), "delivered as env"),
    ],
)
def test_factory_input_errors(build: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def _run(
    docker_client: Any, image: str, container: dict[str, Any], env: dict[str, str], shell: str | None
) -> Any:
    """Run a rendered init container's command under the restricted Docker settings (no network)."""
    api = docker_client.api
    command = container["command"]
    entry = ["sh", "-c", shell, "sh", *command] if shell else command
    created = api.create_container(
        image,
        entrypoint=entry,
        user="50000:0",
        environment=env,
        labels=TEST_LABEL,
        host_config=api.create_host_config(
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode="none",
            tmpfs={"/out": "rw,size=1m,mode=1777", "/tmp": "rw,size=16m,mode=1777"},
            mem_limit="128m",
        ),
    )
    try:
        api.start(created)
        status = api.wait(created, timeout=60)["StatusCode"]
        return status, api.logs(created).decode()
    finally:
        api.remove_container(created, force=True, v=True)


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_wait_script_succeeds_on_a_listener_and_times_out_clearly(
    docker_client: Any, python_image: str
) -> None:
    ready = _pod(BASE.extend(wait_for_http("http://127.0.0.1:8765/", timeout_seconds=20)))["spec"][
        "initContainers"
    ][0]
    # A listener in the same network namespace, started just before the wait script.
    status, out = _run(
        docker_client,
        python_image,
        ready,
        _literal_env(ready),
        'python -m http.server 8765 -d /tmp & exec "$@"',
    )
    assert status == 0 and "http://127.0.0.1:8765/ is ready" in out, out
    down = _pod(BASE.extend(wait_for_tcp("127.0.0.1", 9, timeout_seconds=2)))["spec"]["initContainers"][0]
    status, out = _run(docker_client, python_image, down, _literal_env(down), None)
    assert status == 1 and "127.0.0.1:9 not ready after 2s (last error: ConnectionRefusedError" in out, out


def test_secrets_to_file_script_renders_a_private_file(docker_client: Any, python_image: str) -> None:
    pod = _pod(BASE.extend(EXTENSIONS["secrets-to-file"]))
    init = pod["spec"]["initContainers"][0]
    env = _literal_env(init) | {"PGPASSWORD": "pw$1"}  # what the kubelet injects from the Secret
    status, out = _run(
        docker_client, python_image, init, env, '"$@" && stat -c %a /out/.pgpass && cat /out/.pgpass'
    )
    assert status == 0, out
    assert out.splitlines()[-2:] == ["440", "db:5432:etl:etl:pw$1"], out
    base_mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert base_mounts["/run/ck"]["readOnly"] is True
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "rendered-secrets")
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
