"""A scratch image with one static binary: run hardened, measured against a full base, debugged shell-less.

**Problem.** A full distribution base ships a shell, a package manager, setuid binaries and hundreds of
programs the task never runs: each is attack surface, each is pulled on every node. A ``FROM scratch``
(or distroless) image holds only the program, but then ``docker exec ... sh`` and ``kubectl exec`` have
nothing to run when something goes wrong.

**Practice.**

* *Scratch images* (``build_images``): a multi-stage build. The ``build`` stage installs a static binary
  (Debian's ``busybox-static``) on the build base; the final stage is ``FROM scratch`` with only that binary,
  installed under the name of the one program it serves (``httpd``: busybox picks its applet from
  ``argv[0]``, so no ``sh``, ``ls`` or ``cat`` exists in the image), one HTML file and a numeric ``USER``.
  The same binary on the full base (target ``full``) is the comparison. Built with ``ImageHook`` (labelled,
  removed at the end).
* *Distroless base / security benefits* (``compare_images``): image size from the engine and the files of
  each image's exported filesystem: file count, executables, setuid/setgid files, shells, package manager.
  The run fails if the minimal image is not smaller or still has a shell.
* *Hardened run* (``run_minimal_hardened``): ``SecureDockerOperator`` runs the scratch image with the
  restricted defaults (uid 50000:0, read-only root, tmpfs ``/tmp``, ``cap_drop=ALL``, no-new-privileges,
  xs limits); ``check_hardened_output`` asserts the binary did its work (URL-decodes a string).
* *Debugging challenges* (``debug_without_shell``): the scratch service runs detached with the same
  rendered, policy-checked settings; ``docker exec <c> sh`` fails (asserted: there is no shell); a debug
  container from a full image joins the service's PID and network namespaces (what ``kubectl debug
  --target`` and ``shareProcessNamespace`` give on Kubernetes) and, as the same non-root uid with no
  capabilities, reads the process list, the service's uid and capabilities from ``/proc/<pid>/status``, its
  root filesystem through ``/proc/<pid>/root`` and fetches its page over ``localhost``.
* *Kubernetes* (``ephemeral_debug_container``, needs a real cluster): ``kubectl debug``'s API: an ephemeral
  container added to a running shell-less pod (``registry.k8s.io/pause``) with ``targetContainerName``;
  it reads the target's ``/proc/1/cmdline``. The local Docker-backed test cluster has no ephemeral
  containers API: the task skips with ``needs:cluster``.

**Copying.** Set ``CONTAINERKIT_DEBIAN_IMAGE`` (build base), ``CONTAINERKIT_PYTHON_IMAGE`` (debug tools
image), ``CONTAINERKIT_NAMESPACE``. Replace the busybox stage by your own static build (``CGO_ENABLED=0 go
build``, ``cargo build --target x86_64-unknown-linux-musl``) and keep the final ``FROM scratch`` + numeric
``USER``; use ``gcr.io/distroless/static`` instead of scratch when you need CA certificates and
``/etc/passwd``.

**Needs.** A Docker engine whose builds reach the Debian mirror (``apt-get install busybox-static``);
``ephemeral_debug_container`` needs a real Kubernetes cluster (``CONTAINERKIT_REAL_CLUSTER=1`` and the
``kubernetes_default`` connection).
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
REPOSITORY = "containerkit-reference/minimal-images"
RUN_LABEL = "containerkit.reference"
# Files the engine adds to every container (not part of the image).
ENGINE_FILES = frozenset(
    {"/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/dev/console"}
)
DAG_ID = "88_09_03_minimal_images"

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BUILD_IMAGE=debian:12.8-slim
FROM ${BUILD_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \\
 && apt-get install -y --no-install-recommends busybox-static \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /out/www \\
 && cp /bin/busybox /out/httpd \\
 && echo "served from scratch" > /out/www/index.html

# The comparison: the same program on the full distribution base.
FROM ${BUILD_IMAGE} AS full
COPY --from=build /out/ /
USER 50000:0
ENTRYPOINT ["/httpd"]
CMD ["-f", "-p", "8080", "-h", "/www"]

# The minimal image: one static binary, one file, a numeric user. No shell, no libc, no package manager.
FROM scratch AS minimal
COPY --from=build /out/ /
USER 50000:0
EXPOSE 8080
ENTRYPOINT ["/httpd"]
CMD ["-f", "-p", "8080", "-h", "/www"]
"""

# Runs in the debug container, which shares the service's PID and network namespaces.
DEBUG_SCRIPT = """
import json, os, urllib.request
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        procs[int(pid)] = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0].decode()
    except OSError:
        pass
target = next(pid for pid, cmd in sorted(procs.items()) if cmd.endswith("httpd"))
status = dict(l.split(":\\t", 1) for l in open(f"/proc/{target}/status") if ":\\t" in l)
root = f"/proc/{target}/root"
print(json.dumps({
    "processes": sorted(set(procs.values())),
    "target_pid": target,
    "target_uid": status["Uid"].split()[0],
    "target_cap_eff": status["CapEff"].strip(),
    "target_no_new_privs": status["NoNewPrivs"].strip(),
    "target_root_entries": sorted(os.listdir(root)),
    "target_has_shell": os.path.exists(root + "/bin/sh"),
    "target_index": open(root + "/www/index.html").read().strip(),
    "http_body": urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5).read().decode().strip(),
}))
"""


def _docker() -> Any:
    import docker

    return docker.from_env(timeout=300)


def _run_labels(context: dict[str, Any]) -> dict[str, str]:
    return {RUN_LABEL: f"{DAG_ID}:{context['run_id']}"[:250]}


def _surface(client: Any, image: str) -> dict[str, Any]:
    """Walk the image's exported filesystem (``docker create`` + ``export``, nothing runs)."""
    container = client.api.create_container(image, labels={RUN_LABEL: DAG_ID})
    try:
        stream = client.api.export(container["Id"])
        with tempfile.TemporaryFile() as buffer:
            for chunk in stream:
                buffer.write(chunk)
            buffer.seek(0)
            files = executables = setid = 0
            shells: list[str] = []
            package_managers: list[str] = []
            with tarfile.open(fileobj=buffer, mode="r|") as tar:
                for member in tar:
                    name = "/" + member.name.removeprefix("./").lstrip("/")
                    if not (member.isfile() or member.issym()) or name in ENGINE_FILES:
                        continue
                    files += 1
                    if member.isfile() and member.mode & 0o111:
                        executables += 1
                    if member.isfile() and member.mode & 0o6000:
                        setid += 1
                    if name in ("/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh", "/usr/bin/bash"):
                        shells.append(name)
                    if name in ("/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/dpkg", "/sbin/apk"):
                        package_managers.append(name)
    finally:
        client.api.remove_container(container["Id"], force=True)
    info = client.api.inspect_image(image)
    return {
        "image": image,
        "size_bytes": int(info["Size"]),
        "layers": len(info["RootFS"]["Layers"]),
        "files": files,
        "executables": executables,
        "setuid_setgid": setid,
        "shells": sorted(shells),
        "package_managers": sorted(package_managers),
    }


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "patterns", "advanced", "success", "needs:docker"],
    doc_md=__doc__,
)
def minimal_images() -> None:
    @task
    def build_images(**context: Any) -> dict[str, str]:
        """Build the ``full`` and the ``minimal`` (scratch) targets of one Dockerfile with ImageHook."""
        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        labels = _run_labels(context)
        tag = f"run-{zlib.crc32(context['run_id'].encode()):08x}"
        built: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="ck-minimal-") as ctx:
            Path(ctx, "Dockerfile").write_text(DOCKERFILE)
            try:
                for target in ("full", "minimal"):
                    started = time.monotonic()
                    image = hook.build(
                        ctx,
                        repository=f"{REPOSITORY}-{target}",
                        tags=[tag],
                        build_args={"BUILD_IMAGE": DEBIAN_IMAGE},
                        labels=labels,
                        target=target,
                    )
                    built[target] = image.references[0]
                    seconds = time.monotonic() - started
                    print(f"built {target}: {image.references[0]} ({image.id[:19]}) in {seconds:.1f}s")
            except Exception:
                hook.remove_labeled(labels)  # a half-finished build leaves nothing behind
                raise
        return built

    @task
    def compare_images(images: dict[str, str]) -> dict[str, Any]:
        """Size and attack surface of both images; fail if the minimal one is not smaller and shell-free."""
        client = _docker()
        try:
            full, minimal = _surface(client, images["full"]), _surface(client, images["minimal"])
        finally:
            client.close()
        print(f"{'':24}{'full base':>14}{'scratch':>14}")
        for key in ("size_bytes", "layers", "files", "executables", "setuid_setgid"):
            print(f"{key:24}{full[key]:>14}{minimal[key]:>14}")
        print(f"{'shells':24}{len(full['shells']):>14}{len(minimal['shells']):>14}  {full['shells']}")
        print(
            f"{'package managers':24}{len(full['package_managers']):>14}"
            f"{len(minimal['package_managers']):>14}"
        )
        print(f"size ratio full/scratch: {full['size_bytes'] / minimal['size_bytes']:.0f}x")
        problems = []
        if minimal["size_bytes"] >= full["size_bytes"]:
            problems.append("the scratch image is not smaller than the full one")
        if minimal["shells"] or minimal["package_managers"] or minimal["setuid_setgid"]:
            problems.append(f"the scratch image still has {minimal}")
        if minimal["files"] != 2:
            problems.append(f"expected 2 files (the binary and index.html), found {minimal['files']}")
        if not full["shells"]:
            problems.append("the full base has no shell: the comparison is meaningless")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"full": full, "minimal": minimal}

    built = build_images()

    run_minimal = SecureDockerOperator(
        task_id="run_minimal_hardened",
        image="{{ ti.xcom_pull(task_ids='build_images')['minimal'] }}",
        # busybox httpd -d: URL-decode and print a string, then exit (the service mode runs below).
        command=["-d", "scratch%20image%20ran%20hardened"],
        resources="xs",
    )

    @task
    def check_hardened_output(line: str) -> str:
        if line.strip() != "scratch image ran hardened":
            raise AssertionError(f"the scratch binary printed {line!r}")
        return line

    @task
    def debug_without_shell(images: dict[str, str], **context: Any) -> dict[str, Any]:
        """Run the scratch service hardened; exec finds no shell; a namespace-sharing container debugs it."""
        from docker.errors import APIError

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run
        from containerkit.spec import ContainerSpec

        client = _docker()
        labels = _run_labels(context)
        created: list[str] = []

        def start(spec: ContainerSpec, **host_extra: Any) -> str:
            settings = render_docker(spec)
            policy = {**settings.as_policy_data(), **host_extra}
            check_docker_run(policy, mode="enforce", where=f"{DAG_ID} {spec.image}")
            host = client.api.create_host_config(**settings.host_config_kwargs(), **host_extra)
            container = client.api.create_container(
                settings.image,
                command=list(settings.command) if settings.command else None,
                entrypoint=list(settings.entrypoint) if settings.entrypoint else None,
                user=settings.user,
                labels={**settings.labels, **labels},
                host_config=host,
            )
            created.append(container["Id"])
            client.api.start(container["Id"])
            return str(container["Id"])

        try:
            service = start(ContainerSpec(images["minimal"], resources="xs"))
            # No shell to exec into: the engine cannot even start the process.
            exec_id = client.api.exec_create(service, ["sh", "-c", "ps"])["Id"]
            try:
                output = client.api.exec_start(exec_id).decode(errors="replace").strip()
            except APIError as exc:
                output = str(exc)
            exec_code = client.api.exec_inspect(exec_id).get("ExitCode")
            print(f"docker exec {service[:12]} sh -> exit {exec_code}: {output}")
            if exec_code in (0, None) and "not found" not in output:
                raise AssertionError(f"exec of sh in the scratch container did not fail: {output!r}")

            debug = start(
                ContainerSpec(PYTHON_IMAGE, command=["python", "-c", DEBUG_SCRIPT], resources="xs"),
                pid_mode=f"container:{service}",
                network_mode=f"container:{service}",
            )
            result = client.api.wait(debug, timeout=60)
            logs = client.api.logs(debug, stdout=True, stderr=True).decode(errors="replace").strip()
            print(f"debug container exit {result['StatusCode']}:\n{logs}")
            if result["StatusCode"] != 0:
                raise AssertionError(f"the debug container failed: {logs[-500:]}")
            report = json.loads(logs.splitlines()[-1])
        finally:
            for container_id in reversed(created):
                client.api.remove_container(container_id, force=True, v=True)
            client.close()
        expected_root = {"httpd", "www"}
        problems = []
        if not expected_root <= set(report["target_root_entries"]):
            problems.append(f"service root holds {report['target_root_entries']}")
        if report["target_has_shell"] or report["target_uid"] != "50000":
            problems.append(f"service has a shell or runs as uid {report['target_uid']}")
        if int(report["target_cap_eff"], 16) != 0 or report["target_no_new_privs"] != "1":
            problems.append(f"service kept capabilities {report['target_cap_eff']} or privileges")
        if report["http_body"] != "served from scratch" or report["target_index"] != "served from scratch":
            problems.append(f"page over localhost: {report['http_body']!r}")
        if problems:
            raise AssertionError("; ".join(problems))
        print(
            "equivalents: docker run --rm -it --pid container:<c> --network container:<c> <tools-image>; "
            "kubectl debug -it <pod> --image=<tools-image> --target=<container>"
        )
        return report

    @task
    def ephemeral_debug_container(**context: Any) -> dict[str, Any]:
        """``kubectl debug --target``: an ephemeral container in a running shell-less pod (real cluster)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster: the ephemeral containers API (pods/ephemeralcontainers) exists only on a "
                "real Kubernetes cluster (>= 1.25); set CONTAINERKIT_REAL_CLUSTER=1 and the "
                "kubernetes_default connection to run it"
            )
        return _ephemeral_debug(context)

    @teardown
    def remove_images(**context: Any) -> list[str]:
        from containerkit.hooks.image import ImageHook

        removed = ImageHook().remove_labeled(_run_labels(context))
        print(f"removed {len(removed)} images")
        return removed

    checked = check_hardened_output(run_minimal.output)
    compared = compare_images(built)
    debugged = debug_without_shell(built)
    built >> run_minimal
    [compared, checked, debugged, ephemeral_debug_container()] >> remove_images().as_teardown(setups=built)


def _ephemeral_debug(context: dict[str, Any]) -> dict[str, Any]:
    """Create a pause pod, add an ephemeral debug container targeting it, read what it saw, delete the pod."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod
    from containerkit.policy.enforce import check_pod
    from containerkit.spec import ContainerSpec, SecurityProfile

    name = f"ck-shellless-{zlib.crc32(context['run_id'].encode()):08x}"
    api = CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)
    target = ContainerSpec(
        "registry.k8s.io/pause:3.10",
        security=SecurityProfile.restricted(uid=65535, gid=65535),
        resources="xs",
    )
    pod = render_pod(target, name=name, namespace=NAMESPACE)
    check_pod(pod, mode="enforce", where=f"{DAG_ID} target pod")
    api.create_namespaced_pod(NAMESPACE, pod)
    try:
        deadline = time.monotonic() + 120
        while api.read_namespaced_pod(name, NAMESPACE).status.phase != "Running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {name} did not start in 120s")
            time.sleep(2)
        debug = render_pod(
            ContainerSpec(
                PYTHON_IMAGE,
                command=["python", "-c", "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))"],
                security=SecurityProfile.restricted(uid=65535, gid=65535),
            ),
            name=None,
        ).spec.containers[0]
        ephemeral = {**to_dict(debug), "name": "debugger", "targetContainerName": "base"}
        for key in ("resources", "livenessProbe", "readinessProbe", "startupProbe", "ports"):
            ephemeral.pop(key, None)  # ephemeral containers may not set these
        api.patch_namespaced_pod_ephemeralcontainers(
            name, NAMESPACE, {"spec": {"ephemeralContainers": [ephemeral]}}
        )
        deadline = time.monotonic() + 120
        while True:
            statuses = api.read_namespaced_pod(name, NAMESPACE).status.ephemeral_container_statuses or []
            if statuses and statuses[0].state and statuses[0].state.terminated:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the ephemeral container did not finish in 120s")
            time.sleep(2)
        seen = api.read_namespaced_pod_log(name, NAMESPACE, container="debugger").strip()
        print(f"ephemeral container saw the target's PID 1: {seen!r}")
        if "pause" not in seen:
            raise AssertionError(f"the debugger did not see the target process: {seen!r}")
        return {"pod": name, "target_cmdline": seen}
    finally:
        api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


minimal_images()
