"""Container shells: exec diagnostics in running task containers (secrets masked), debug shell-less ones.

**Problem.** "Exec into it and look" is the first debugging move, but a hardened task container is
non-root with a read-only root filesystem (``apt-get install`` of a tool fails there, by design), a
minimal image has no shell at all, and the output of ``env`` is full of secrets that then sit in a
ticket or a task log.

**Practice.**

* *docker exec* (``exec_in_docker_task``): a running hardened task container (rendered from a
  ``ContainerSpec``, policy-checked, its password delivered from a secrets directory as a read-only file,
  as DKR-014 requires on Docker) is inspected through the Docker provider's ``DockerHook``: processes,
  mounts (the secret file among them), disk usage and the environment, each collected by a small script
  run with exec. Secret-looking names are masked before anything is printed; the run fails if the secret
  value shows up anywhere in what was collected, or in the environment at all.
* *Debugging tools installation* (same task): ``apt-get install procps`` inside the task container fails
  (non-root, read-only root filesystem): asserted. Tools belong in a separate debug image built ahead of
  time (``build_debug_images``: ``procps`` on the Debian base), not in the task image.
* *Ephemeral-style debug container* (``debug_shellless_container``): a ``FROM scratch`` service (one static
  binary, no shell: ``docker exec <c> sh`` fails, asserted) gets a debug container from the tools image
  that joins its PID and network namespaces and runs ``ps`` and reads ``/proc`` of the target, as
  ``kubectl debug --target`` does.
* *kubectl exec* (``start_pod`` + ``exec_in_pod``): the same diagnostics in a running, restricted pod
  through the Kubernetes exec API (``kubernetes.stream``), with the ``kubectl exec`` command printed and
  the Secret's value masked.
* *Ephemeral containers* (``ephemeral_container``): ``pods/ephemeralcontainers`` adds a debug container
  targeting ``base`` in the running pod and reads what it saw; the local Docker-backed test cluster has no
  such API, so the task skips with ``needs:cluster`` there.

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` (task image, needs ``python``), ``CONTAINERKIT_DEBIAN_IMAGE``
(base of the debug images) and ``CONTAINERKIT_NAMESPACE``. Keep the debug tools image in your registry
and pin it like any other image.

**Needs.** A Docker engine whose builds reach the Debian mirror, and a Kubernetes cluster (the local test
double in CI; ``ephemeral_container`` needs a real one: ``CONTAINERKIT_REAL_CLUSTER=1``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_05_02_container_shell"
RUN_LABEL = "containerkit.reference"
REPOSITORY = "containerkit-reference/debug"
SECRET = "shell-demo-db"
MASK = "***"

DOCKERFILE = """\
ARG BUILD_IMAGE=debian:12.8-slim
FROM ${BUILD_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \\
 && apt-get install -y --no-install-recommends busybox-static \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /out/www \\
 && cp /bin/busybox /out/httpd \\
 && echo "served from scratch" > /out/www/index.html

# The debug tools image: tools installed at build time, run as a non-root user.
FROM ${BUILD_IMAGE} AS tools
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends procps && rm -rf /var/lib/apt/lists/*
USER 50000:0

# A shell-less service: one static binary.
FROM scratch AS shellless
COPY --from=build /out/ /
USER 50000:0
ENTRYPOINT ["/httpd"]
CMD ["-f", "-p", "8080", "-h", "/www"]
"""

WORKER = "import time\nwhile True:\n    time.sleep(1)\n"
# Run inside the target with exec: one JSON document per question.
DIAGNOSE = """
import json, os, sys
what = sys.argv[1]
if what == "processes":
    out = []
    for pid in sorted(filter(str.isdigit, os.listdir("/proc")), key=int):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip()
            uid = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("Uid:"))
            out.append({"pid": int(pid), "uid": int(uid), "cmd": cmd[:80]})
        except OSError:
            pass
elif what == "mounts":
    rows = [l.split()[:4] for l in open("/proc/self/mounts")]
    keep = [r for r in rows if r[1] in ("/", "/tmp") or r[1].startswith("/run")]
    out = [dict(zip(("source", "target", "type", "options"), r)) for r in keep]
elif what == "disk":
    out = {}
    for path in ("/", "/tmp"):
        st = os.statvfs(path)
        out[path] = {"size_mib": st.f_blocks * st.f_frsize >> 20, "free_mib": st.f_bavail * st.f_frsize >> 20}
else:
    out = dict(os.environ)
print(json.dumps(out))
"""


def _labels() -> dict[str, str]:
    return {RUN_LABEL: f"{DAG_ID}:{get_current_context()['run_id']}"[:250]}


def _suffix() -> str:
    return f"{zlib.crc32(get_current_context()['run_id'].encode()):08x}"


def _masked(env: dict[str, str], secret_names: set[str]) -> dict[str, str]:
    """Mask the task's Secret-backed variables and anything whose name or value looks like a secret."""
    from containerkit.facts.secrets import secret_literal

    return {k: MASK if k in secret_names or secret_literal(k, v) else v for k, v in sorted(env.items())}


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


def _report(answers: dict[str, Any], secret_names: set[str], secret_value: str) -> dict[str, Any]:
    answers["env"] = _masked(answers["env"], secret_names)
    text = json.dumps(answers, indent=1)
    if secret_value in text:
        raise AssertionError("the secret value would have been printed")
    print(f"processes: {[p['cmd'] for p in answers['processes']]}")
    print(f"mounts: {[(m['target'], m['type'], m['options'].split(',')[0]) for m in answers['mounts']]}")
    print(f"disk: {answers['disk']}")
    print(f"env: {answers['env']}")
    return answers


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "beginner", "success", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def container_shell() -> None:
    @task
    def build_debug_images() -> dict[str, str]:
        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        built: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="ck-debug-") as ctx:
            Path(ctx, "Dockerfile").write_text(DOCKERFILE)
            try:
                for target in ("tools", "shellless"):
                    image = hook.build(
                        ctx,
                        repository=f"{REPOSITORY}-{target}",
                        tags=[f"run-{_suffix()}"],
                        build_args={"BUILD_IMAGE": DEBIAN_IMAGE},
                        labels=_labels(),
                        target=target,
                    )
                    built[target] = image.references[0]
            except Exception:
                hook.remove_labeled(_labels())
                raise
        return built

    @task
    def exec_in_docker_task() -> dict[str, Any]:
        """Exec diagnostics in a running hardened task container through DockerHook; mask secrets."""
        from airflow.providers.docker.hooks.docker import DockerHook

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run
        from containerkit.spec import ContainerSpec, SecretRef

        # docker_conn_id=None: the engine's own socket, no registry login (nothing is pulled here).
        engine = os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock")
        api = DockerHook(docker_conn_id=None, base_url=engine).api_client
        password = secrets.token_urlsafe(16)
        with tempfile.TemporaryDirectory(prefix="ck-secrets-") as secrets_dir:
            Path(secrets_dir, "etl-db").mkdir()
            Path(secrets_dir, "etl-db", "password").write_text(password)
            spec = ContainerSpec(
                PYTHON_IMAGE,
                command=["python", "-c", WORKER],
                env={"STAGE": "diagnostics"},
                # A file, not env: on Docker an env value is readable by anyone who can `docker inspect`.
                # The bind-mounted file must outlive the container, so all of it runs in this block.
                secrets=[SecretRef("etl-db", "password", path="/run/secrets/db-password")],
                resources="xs",
            )
            settings = render_docker(spec, secrets_dir=secrets_dir)
            check_docker_run(settings.as_policy_data(), mode="enforce", where=f"{DAG_ID} task container")
            container = api.create_container(
                settings.image,
                entrypoint=list(settings.entrypoint or ()) or None,
                command=list(settings.command) if settings.command else None,
                user=settings.user,
                environment=settings.runtime_environment(),
                labels={**settings.labels, **_labels()},
                host_config=api.create_host_config(**settings.host_config_kwargs()),
            )
            cid = container["Id"]

            def run(cmd: list[str]) -> tuple[int, str]:
                exec_id = api.exec_create(cid, cmd)["Id"]
                output = api.exec_start(exec_id).decode("utf-8", "replace").strip()
                return int(api.exec_inspect(exec_id)["ExitCode"]), output

            try:
                api.start(cid)
                answers = {}
                for what in ("processes", "mounts", "disk", "env"):
                    code, output = run(["python", "-c", DIAGNOSE, what])
                    if code != 0:
                        raise AssertionError(f"exec {what} failed ({code}): {output[-300:]}")
                    answers[what] = json.loads(output)
                print(f"docker exec {cid[:12]} python -c <diagnose> processes|mounts|disk|env")
                code, output = run(["apt-get", "install", "-y", "procps"])
                last = output.splitlines()[-1:]
                print(f"docker exec {cid[:12]} apt-get install -y procps -> exit {code}: {last}")
            finally:
                api.remove_container(cid, force=True)
        if code == 0:
            raise AssertionError("apt-get install worked inside the hardened task container")
        report = _report(answers, set(), password)  # raises if the value is anywhere in the answers
        if "DB_PASSWORD" in report["env"] or report["env"]["STAGE"] != "diagnostics":
            raise AssertionError(f"the environment is not what the spec says: {report['env']}")
        secret = next((m for m in report["mounts"] if m["target"] == "/run/secrets/db-password"), None)
        if secret is None or not secret["options"].startswith("ro"):
            raise AssertionError(f"the secret is not a read-only file mount: {report['mounts']}")
        root = next(m for m in report["mounts"] if m["target"] == "/")
        if not root["options"].startswith("ro"):
            raise AssertionError(f"the root filesystem is not read-only: {root}")
        return {"processes": len(report["processes"]), "apt_get_exit": code}

    @task
    def debug_shellless_container(images: dict[str, str]) -> dict[str, Any]:
        """No shell in the target: a tools container joins its PID and network namespaces instead."""
        import docker
        from docker.errors import APIError

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run
        from containerkit.spec import ContainerSpec

        client = docker.from_env(timeout=120)
        created: list[str] = []

        def start(spec: ContainerSpec, **namespaces: str) -> str:
            settings = render_docker(spec)
            check_docker_run({**settings.as_policy_data(), **namespaces}, mode="enforce", where=DAG_ID)
            container = client.api.create_container(
                settings.image,
                entrypoint=list(settings.entrypoint or ()) or None,
                command=list(settings.command) if settings.command else None,
                user=settings.user,
                labels={**settings.labels, **_labels()},
                host_config=client.api.create_host_config(**settings.host_config_kwargs(), **namespaces),
            )
            created.append(container["Id"])
            client.api.start(container["Id"])
            return str(container["Id"])

        try:
            target = start(ContainerSpec(images["shellless"], resources="xs"))
            exec_id = client.api.exec_create(target, ["sh"])["Id"]
            try:
                shell = client.api.exec_start(exec_id).decode(errors="replace").strip()
            except APIError as exc:
                shell = str(exc)
            if "not found" not in shell:
                raise AssertionError(f"exec of sh in the shell-less container did not fail: {shell!r}")
            print(f"docker exec {target[:12]} sh -> {shell}")
            script = (
                "ps -eo pid,user,args; echo; cat /proc/$(pgrep -x httpd)/status | grep -E '^(Uid|CapEff)'"
            )
            debug = start(
                ContainerSpec(images["tools"], command=["sh", "-c", script], resources="xs"),
                pid_mode=f"container:{target}",
                network_mode=f"container:{target}",
            )
            code = client.api.wait(debug, timeout=60)["StatusCode"]
            output = client.api.logs(debug).decode(errors="replace")
        finally:
            for cid in reversed(created):
                client.api.remove_container(cid, force=True)
            client.close()
        print(f"debug container (ps from the tools image) exit {code}:\n{output}")
        if code != 0 or "/httpd" not in output or "CapEff:\t0000000000000000" not in output:
            raise AssertionError(f"the debug container did not see the target: {output}")
        print("equivalent: docker run --pid container:<c> --network container:<c> <tools-image> ps -ef")
        return {"target_seen": True}

    @task
    def start_pod() -> dict[str, str]:
        """A running restricted pod with a Secret in its env (the Secret is created here)."""
        from kubernetes.client import V1ObjectMeta, V1Secret

        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod
        from containerkit.spec import ContainerSpec, SecretRef

        api = _core_api()
        value = base64.b64encode(secrets.token_urlsafe(16).encode()).decode()
        api.create_namespaced_secret(
            NAMESPACE, V1Secret(metadata=V1ObjectMeta(name=f"{SECRET}-{_suffix()}"), data={"password": value})
        )
        name = f"shell-demo-{_suffix()}"
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", WORKER],
            env={"STAGE": "diagnostics"},
            secrets=[SecretRef(f"{SECRET}-{_suffix()}", "password", env="DB_PASSWORD")],
            resources="xs",
            labels={"app": "shell-demo"},
        )
        pod = render_pod(spec, name=name, namespace=NAMESPACE)
        check_pod(pod, mode="enforce", where=f"{DAG_ID} pod")
        api.create_namespaced_pod(NAMESPACE, pod)
        deadline = time.monotonic() + 120
        while api.read_namespaced_pod(name, NAMESPACE).status.phase != "Running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {name} not Running after 120s")
            time.sleep(1)
        return {"pod": name, "secret": f"{SECRET}-{_suffix()}"}

    @task
    def exec_in_pod(target: dict[str, str]) -> dict[str, Any]:
        """``kubectl exec``: the same diagnostics through the pods/exec API."""
        from kubernetes.stream import stream

        api = _core_api()
        secret = api.read_namespaced_secret(target["secret"], NAMESPACE)
        value = base64.b64decode(secret.data["password"]).decode()
        answers = {}
        for what in ("processes", "mounts", "disk", "env"):
            # _preload_content=False: the preloading client turns JSON output into a Python repr.
            ws = stream(
                api.connect_get_namespaced_pod_exec,
                target["pod"],
                NAMESPACE,
                container="base",
                command=["python", "-c", DIAGNOSE, what],
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                _preload_content=False,
            )
            ws.run_forever(timeout=60)
            output = ws.read_stdout()
            ws.close()
            answers[what] = json.loads(output.strip().splitlines()[-1])
        print(f"kubectl exec -n {NAMESPACE} {target['pod']} -c base -- python -c <diagnose> processes|...")
        report = _report(answers, {"DB_PASSWORD"}, value)
        if report["env"].get("DB_PASSWORD") != MASK:
            raise AssertionError(f"DB_PASSWORD not delivered or not masked: {sorted(report['env'])}")
        if not any(p["uid"] == 50000 for p in report["processes"]):
            raise AssertionError(f"no process runs as uid 50000: {report['processes']}")
        return {"processes": len(report["processes"])}

    @task
    def ephemeral_container(target: dict[str, str]) -> str:
        """``kubectl debug --target=base``: an ephemeral container in the running pod (real clusters)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster: the ephemeral containers API (pods/ephemeralcontainers, Kubernetes >= 1.25) "
                "exists only on a real cluster; set CONTAINERKIT_REAL_CLUSTER=1 and kubernetes_default"
            )
        api = _core_api()
        debugger = {
            "name": "debugger",
            "image": PYTHON_IMAGE,
            "targetContainerName": "base",
            "command": ["python", "-c", "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))"],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 50000,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        api.patch_namespaced_pod_ephemeralcontainers(
            target["pod"], NAMESPACE, {"spec": {"ephemeralContainers": [debugger]}}
        )
        deadline = time.monotonic() + 120
        while True:
            statuses = api.read_namespaced_pod(target["pod"], NAMESPACE).status.ephemeral_container_statuses
            if statuses and statuses[0].state and statuses[0].state.terminated:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the ephemeral container did not finish in 120s")
            time.sleep(2)
        seen = api.read_namespaced_pod_log(
            target["pod"], NAMESPACE, container="debugger", _preload_content=False
        ).data.decode()
        print(f"the ephemeral container saw the target's PID 1: {seen.strip()}")
        if "python" not in seen:
            raise AssertionError(f"unexpected target process: {seen!r}")
        return seen.strip()

    @teardown
    def delete_pod(target: dict[str, str]) -> None:
        from kubernetes.client.exceptions import ApiException

        api = _core_api()
        for delete, name in (
            (api.delete_namespaced_pod, target["pod"]),
            (api.delete_namespaced_secret, target["secret"]),
        ):
            try:
                delete(name, NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    @teardown
    def remove_images() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(_labels())

    images = build_debug_images()
    debugged = debug_shellless_container(images)
    debugged >> remove_images().as_teardown(setups=images)
    exec_in_docker_task()
    target = start_pod()
    [exec_in_pod(target), ephemeral_container(target)] >> delete_pod(target).as_teardown(setups=target)


container_shell()
