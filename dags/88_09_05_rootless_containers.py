"""Rootless containers: user-namespaced pods, arbitrary uids with gid 0, and rootless/userns-remapped engines.

**Problem.** "Non-root" has three meanings that behave differently: a non-root uid inside the container
(what ``runAsNonRoot`` checks), a user namespace where even container root is an unprivileged host user
(Kubernetes ``hostUsers: false``, Docker ``userns-remap``, rootless Docker/Podman), and platforms that
assign a random uid at run time (OpenShift's restricted SCC). Images and volumes that only work for one
fixed uid break under the other two.

**Practice.**

* *User namespaces* (``user_namespace_pod``): the same pod rendered from a ``ContainerSpec``, then made
  to run as root inside the container, evaluated against the Pod Security Standards ``restricted``
  rules with and without ``spec.hostUsers: false``: without it PSS-R-003/PSS-R-004 refuse it, with it
  they do not apply (KEP-127: root in the pod is an unprivileged uid on the node), while the rest of
  restricted (capabilities, seccomp, privilege escalation) still holds. Both pods are validated strictly
  against the Kubernetes schemas. ``user_namespace_on_cluster`` runs the user-namespaced pod and reads
  ``/proc/self/uid_map`` (needs a real cluster with user-namespace support: Kubernetes >= 1.33, a
  runtime and kernel that support idmapped mounts; the local Docker-backed test cluster cannot, so it
  skips with ``needs:cluster``).
* *Arbitrary uid, gid 0* (``build_app_image`` + ``arbitrary_uid``): an image built the OpenShift way
  (app files group 0, ``chmod g=u``) plus one file left owner-only, as many images ship it. The app runs
  under ``SecureDockerOperator`` as uid 1000680000 gid 0 (restricted profile): it has no passwd entry,
  reads its group-0 config, and the owner-only file fails with ``PermissionError``: the compatibility issue,
  asserted by ``check_arbitrary_uid``.
* *Rootless / userns-remapped engines* (``detect_engine_mode``): reads the engine's security options
  (``name=rootless``, ``name=userns``) and measures what a volume sees: a hardened container writes a file
  as uid 50000 into a named volume (seeded from the image's 50000:0 ``/app/data``) and the file's owner
  on the engine host is read back (same as the
  container uid on a rootful engine; shifted by the subordinate-id base under userns-remap or rootless,
  which is why bind-mounted host directories must be chowned to the mapped range there).

**Copying.** ``CONTAINERKIT_PYTHON_IMAGE`` is the base of the app image; ``CONTAINERKIT_NAMESPACE`` the
namespace. In your own Dockerfiles: ``chgrp -R 0 /app && chmod -R g=u /app``, numeric ``USER``, no files
readable only by their owner.

**Needs.** A Docker engine. ``user_namespace_on_cluster`` needs a real cluster
(``CONTAINERKIT_REAL_CLUSTER=1`` and ``kubernetes_default``). The schema check uses
``kubernetes-validate`` when installed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task, teardown

from containerkit.spec import SecurityProfile

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_09_05_rootless_containers"
RUN_LABEL = "containerkit.reference"
REPOSITORY = "containerkit-reference/rootless-app"
ARBITRARY_UID = 1000680000  # what an OpenShift namespace range hands out: no passwd entry in the image
K8S_VERSIONS = ("1.33", "1.35", "1.37")

APP_DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
USER 0
RUN mkdir -p /app/conf /app/data \\
 && echo '{"greeting": "hello from gid 0"}' > /app/conf/settings.json \\
 && echo 'token-file-of-the-build-user' > /app/conf/owner-only.txt \\
 && chown -R 50000:0 /app \\
 && chmod -R g=u /app \\
 && chmod 0600 /app/conf/owner-only.txt
USER 50000:0
"""

APP_SCRIPT = """
import json, os, pwd
report = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups())}
try:
    report["passwd_entry"] = pwd.getpwuid(os.getuid()).pw_name
except KeyError:
    report["passwd_entry"] = None
report["home"] = os.environ.get("HOME")
report["settings"] = json.load(open("/app/conf/settings.json"))["greeting"]
try:
    open("/app/conf/owner-only.txt").read()
    report["owner_only"] = "readable"
except PermissionError as exc:
    report["owner_only"] = f"PermissionError: {exc.strerror}"
open("/tmp/scratch", "w").write("tmp is writable for any uid")
report["tmp_writable"] = True
print(json.dumps(report))
"""

VOLUME_SCRIPT = """
import json, os
path = "/app/data/written-by-container"
open(path, "w").write("x")
st = os.stat(path)
print(json.dumps({"uid_in_container": os.getuid(), "owner_in_container": st.st_uid}))
"""


def _labels(context: dict[str, Any]) -> dict[str, str]:
    return {RUN_LABEL: f"{DAG_ID}:{context['run_id']}"[:250]}


def _root_in_pod(pod: dict[str, Any], *, user_namespace: bool) -> dict[str, Any]:
    """The rendered pod, changed to run as root in the container (what a userns pod may do)."""
    changed = json.loads(json.dumps(pod))
    spec = changed["spec"]
    spec["securityContext"].update(runAsUser=0, runAsGroup=0, runAsNonRoot=False)
    for container in spec["containers"]:
        container.get("securityContext", {}).pop("runAsUser", None)
        container.get("securityContext", {}).pop("runAsNonRoot", None)
    if user_namespace:
        spec["hostUsers"] = False
    return changed


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "patterns", "advanced", "success", "needs:docker"],
    doc_md=__doc__,
)
def rootless_containers() -> None:
    @task
    def user_namespace_pod() -> dict[str, Any]:
        """PSS restricted with and without hostUsers: false, for a pod that runs as root inside."""
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod
        from containerkit.spec import ContainerSpec

        base = to_dict(
            render_pod(
                ContainerSpec(PYTHON_IMAGE, command=["cat", "/proc/self/uid_map"], resources="xs"),
                name="userns-demo",
                namespace=NAMESPACE,
            )
        )
        results: dict[str, Any] = {}
        for label, pod in (
            ("rendered (uid 50000)", base),
            ("root in pod, host users", _root_in_pod(base, user_namespace=False)),
            ("root in pod, hostUsers: false", _root_in_pod(base, user_namespace=True)),
        ):
            findings = sorted(
                {f.rule_id for f in evaluate_pod(pod, rule_sets=["pss-baseline", "pss-restricted"])}
            )
            results[label] = findings
            print(f"{label:34} PSS findings: {findings or 'none'}")
        try:
            import kubernetes_validate
        except ImportError:
            print(
                "kubernetes-validate is not installed: schema check skipped (pip install kubernetes-validate)"
            )
        else:
            userns = _root_in_pod(base, user_namespace=True)
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(userns, version, strict=True)
            print(f"hostUsers: false pod is schema-valid for Kubernetes {', '.join(K8S_VERSIONS)}")
        expected = {
            "rendered (uid 50000)": [],
            "root in pod, host users": ["PSS-R-003", "PSS-R-004"],
            "root in pod, hostUsers: false": [],
        }
        if results != expected:
            raise AssertionError(f"PSS relaxations for user namespaces: expected {expected}, got {results}")
        return results

    @task
    def user_namespace_on_cluster() -> str:
        """Run the hostUsers: false pod and read its uid map (container root -> unprivileged host ids)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster: hostUsers: false needs a real cluster (Kubernetes >= 1.33 with a runtime and "
                "kernel that support user namespaces and idmapped mounts); the local Docker-backed test "
                "cluster runs pods as plain containers. Set CONTAINERKIT_REAL_CLUSTER=1 and "
                "kubernetes_default"
            )
        return _userns_on_cluster()

    @task
    def build_app_image(**context: Any) -> str:
        """An image whose app files follow the gid-0 convention, plus one owner-only file."""
        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        with tempfile.TemporaryDirectory(prefix="ck-rootless-") as ctx:
            Path(ctx, "Dockerfile").write_text(APP_DOCKERFILE)
            built = hook.build(
                ctx,
                repository=REPOSITORY,
                tags=[f"run-{zlib.crc32(context['run_id'].encode()):08x}"],
                build_args={"BASE_IMAGE": PYTHON_IMAGE},
                labels=_labels(context),
            )
        return built.references[0]

    arbitrary_uid = SecureDockerOperator(
        task_id="arbitrary_uid",
        image="{{ ti.xcom_pull(task_ids='build_app_image') }}",
        command=["python", "-c", APP_SCRIPT],
        security=SecurityProfile.restricted(uid=ARBITRARY_UID, gid=0),
        environment={"HOME": "/tmp"},  # no passwd entry: tell tools where home is
        resources="xs",
    )

    @task
    def check_arbitrary_uid(line: str) -> dict[str, Any]:
        report = json.loads(line)
        print(json.dumps(report, indent=2))
        problems = []
        if report["uid"] != ARBITRARY_UID or report["gid"] != 0:
            problems.append(f"ran as {report['uid']}:{report['gid']}")
        if report["passwd_entry"] is not None:
            problems.append("the uid has a passwd entry: the test is not arbitrary")
        if report["settings"] != "hello from gid 0" or not report["tmp_writable"]:
            problems.append("the group-0 config or /tmp did not work for an arbitrary uid")
        if not report["owner_only"].startswith("PermissionError"):
            problems.append("the owner-only file was readable: the compatibility issue was not shown")
        if problems:
            raise AssertionError("; ".join(problems))
        print(
            "group-0 files work under any uid; owner-only files (mode 0600 for the build user) do not: "
            "fix with chmod g=u in the Dockerfile"
        )
        return report

    @task
    def detect_engine_mode(image: str, **context: Any) -> dict[str, Any]:
        """Rootless / userns-remap detection, and the owner a container's volume write gets on the host."""
        import docker

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run
        from containerkit.spec import ContainerSpec

        client = docker.from_env(timeout=120)
        info = client.info()
        options = [str(o) for o in info.get("SecurityOptions") or []]
        rootless = any("name=rootless" in o for o in options)
        userns = any("name=userns" in o for o in options)
        mode = "rootless" if rootless else "userns-remap" if userns else "rootful"
        print(f"engine {info.get('ServerVersion')}: {mode}; security options {options}")
        volume = client.volumes.create(
            name=f"ck-rootless-{zlib.crc32(context['run_id'].encode()):08x}", labels=_labels(context)
        )
        try:
            # The volume is empty, so the engine copies the image's /app/data (owned 50000:0) into it first.
            spec = ContainerSpec(image, command=["python", "-c", VOLUME_SCRIPT], resources="xs")
            settings = render_docker(spec)
            host = settings.host_config_kwargs()
            host["mounts"] = [*host["mounts"], docker.types.Mount("/app/data", volume.name, type="volume")]
            policy = {**settings.as_policy_data(), "mounts": [dict(m) for m in host["mounts"]]}
            check_docker_run(policy, mode="enforce", where=f"{DAG_ID} volume probe")
            container = client.api.create_container(
                settings.image,
                entrypoint=list(settings.entrypoint) if settings.entrypoint else None,
                command=list(settings.command) if settings.command else None,
                user=settings.user,
                labels={**settings.labels, **_labels(context)},
                host_config=client.api.create_host_config(**host),
            )
            try:
                client.api.start(container["Id"])
                code = client.api.wait(container["Id"], timeout=60)["StatusCode"]
                logs = client.api.logs(container["Id"]).decode().strip()
            finally:
                client.api.remove_container(container["Id"], force=True)
            if code != 0:
                raise AssertionError(f"volume probe failed: {logs}")
            seen = json.loads(logs.splitlines()[-1])
            mountpoint = Path(client.api.inspect_volume(volume.name)["Mountpoint"], "written-by-container")
            host_owner = mountpoint.stat().st_uid if mountpoint.exists() else None
        finally:
            volume.remove(force=True)
            client.close()
        seen.update(mode=mode, host_owner=host_owner)
        if host_owner is None:
            print("the engine's volume directory is not visible from this worker: host owner not measured")
        elif host_owner == seen["uid_in_container"]:
            print(f"uid {host_owner} in the container is uid {host_owner} on the host: no remapping")
        else:
            print(
                f"uid {seen['uid_in_container']} in the container is uid {host_owner} on the host "
                f"(subordinate-id offset {host_owner - seen['uid_in_container']}): chown bind-mounted host "
                "directories to the mapped range, or use named volumes"
            )
        if mode == "rootful" and host_owner not in (None, seen["uid_in_container"]):
            raise AssertionError(f"a rootful engine without userns-remap shifted the owner: {seen}")
        if mode != "rootful" and host_owner == seen["uid_in_container"]:
            raise AssertionError(f"{mode} engine, but the volume owner was not shifted: {seen}")
        return seen

    @teardown
    def remove_app_image(**context: Any) -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(_labels(context))

    image = build_app_image()
    checked = check_arbitrary_uid(arbitrary_uid.output)
    image >> arbitrary_uid
    [checked, detect_engine_mode(image), user_namespace_pod(), user_namespace_on_cluster()] >> (
        remove_app_image().as_teardown(setups=image)
    )


def _userns_on_cluster() -> str:
    """Create the hostUsers: false pod, wait for it, read its log (the uid map), delete it."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    from containerkit.kubernetes.pod import render_pod
    from containerkit.spec import ContainerSpec

    pod = render_pod(
        ContainerSpec(PYTHON_IMAGE, command=["cat", "/proc/self/uid_map"], resources="xs"),
        name=f"ck-userns-{int(time.time())}",
        namespace=NAMESPACE,
    )
    pod.spec.host_users = False
    api = CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)
    api.create_namespaced_pod(NAMESPACE, pod)
    name = pod.metadata.name
    try:
        deadline = time.monotonic() + 180
        while api.read_namespaced_pod(name, NAMESPACE).status.phase not in ("Succeeded", "Failed"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {name} did not finish in 180s")
            time.sleep(2)
        uid_map = api.read_namespaced_pod_log(name, NAMESPACE).strip()
    finally:
        api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    print(f"uid_map: {uid_map}")
    if uid_map.split()[:3] == ["0", "0", "4294967295"]:
        raise AssertionError("the pod ran in the host user namespace: hostUsers: false was not honoured")
    return uid_map


rootless_containers()
