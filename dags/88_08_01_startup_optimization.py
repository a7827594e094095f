"""Startup optimization: init process, lazy imports, pre-pulled images and parallel native sidecars, measured.

**Problem.** A container task pays its start-up on every run: pulling the image, starting the
interpreter, importing everything the entrypoint imports, running init steps one after another. And a
process that is PID 1 without an init ignores SIGTERM, so every stop waits for the kill timeout.

**Practice, each sub-point measured here** (all containers hardened by containerkit's renderers:
non-root, read-only root, no capabilities, sized; policy checked before each run):

* *minimal init process* (``measure_init_process``, Docker): the same Python process run as PID 1,
  under Docker's ``--init`` (``ContainerSpec(init_process=True)``, what ``SecureDockerOperator`` does by
  default) and under the image's own ``tini`` entrypoint. Start-to-first-log-line for each, and the time
  ``docker stop`` takes: PID 1 without an init ignores SIGTERM and is killed only after the stop timeout.
* *lazy loading* (``measure_lazy_loading``, Docker): an entrypoint that imports 35 standard-library
  modules at the top versus one that logs first and imports on use; time to the first log line.
* *pre-warming* (``measure_prepull``, Docker + registry): a freshly built image pushed to the registry,
  removed locally, then started cold (pull + start) versus pre-pulled (start only);
  ``render_prepull_daemonset`` renders the Kubernetes form (a DaemonSet whose init containers pull the
  task images onto every node, then a paused main container), validates it strictly against several
  Kubernetes versions and policy, applies it through the API and removes it.
* *parallel startup* (``init_sequential`` / ``init_parallel``, Kubernetes): two independent 2 s
  preparation steps as ordinary init containers (one after the other) and as native sidecars
  (``restartPolicy: Always``, started without waiting for each other); each pod reports how long after
  its first step began the task could start.
* ``report`` prints the timings and asserts the relations that must hold.

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` / ``CONTAINERKIT_DEBIAN_IMAGE`` / ``CONTAINERKIT_NAMESPACE``,
the ``containerkit_registry_default`` (push access to a scratch repository, ``PREPULL_REPOSITORY``) and
``kubernetes_default`` connections. Native sidecars need Kubernetes >= 1.29.

**Needs.** A Docker engine (``needs:docker``), a registry (``needs:registry``) and a Kubernetes API
(``needs:kubernetes``; the tests use the local Docker-backed one from ``containerkit.testing``).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task

from containerkit.spec import Container, ContainerSpec, EmptyDir, VolumeMount

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
REGISTRY_CONN_ID = "containerkit_registry_default"
KUBERNETES_CONN_ID = "kubernetes_default"
PREPULL_REPOSITORY = "containerkit-examples/startup-payload"
LABEL = {"containerkit.example": "88_08_01"}
RUNS = 2
STOP_TIMEOUT = 3
STEP_SECONDS = 2

HEAVY_IMPORTS = (
    "asyncio, email.mime.multipart, http.server, xml.etree.ElementTree, sqlite3, decimal, logging.handlers, "
    "unittest, multiprocessing, concurrent.futures, argparse, csv, json, urllib.request, ssl, zipfile, "
    "tarfile, statistics, fractions, inspect, dataclasses, typing, pydoc, difflib, smtplib, imaplib, "
    "ftplib, xmlrpc.client, wsgiref.simple_server, html.parser, configparser, tomllib, uuid, shelve, "
    "calendar"
)
FIRST_LINE = "import time; print('first-line', time.time(), flush=True)"
EAGER = f"import {HEAVY_IMPORTS}\n{FIRST_LINE}\n"
LAZY = f"{FIRST_LINE}\nimport {HEAVY_IMPORTS}\n"
SLEEPER = "import time; print('first-line', time.time(), flush=True); time.sleep(120)"


def _spec(command: list[str], *, image: str = PYTHON_IMAGE, init: bool = True) -> ContainerSpec:
    return ContainerSpec(image, command=command, resources="xs", init_process=init, labels=LABEL)


def _start(client: Any, spec: ContainerSpec, *, entrypoint_override: bool = True) -> str:
    """Create and start a container from ``spec``'s hardened Docker rendering (policy checked first)."""
    from containerkit.docker.run_settings import render_docker
    from containerkit.policy.enforce import check_docker_run

    settings = render_docker(spec)
    check_docker_run(settings.as_policy_data(), mode="enforce", where="88_08_01 measurement container")
    host = client.api.create_host_config(**settings.host_config_kwargs())
    command = list(settings.entrypoint or ()) + list(settings.command or ())
    container = client.api.create_container(
        settings.image,
        # entrypoint_override=False keeps the image's entrypoint (its tini) and passes the argv as CMD
        entrypoint=settings.entrypoint if entrypoint_override else None,
        command=settings.command if entrypoint_override else command,
        user=settings.user,
        environment=settings.runtime_environment(),
        labels=dict(settings.labels),
        host_config=host,
        name=f"ck-88-08-01-{uuid.uuid4().hex[:8]}",
    )
    client.api.start(container["Id"])
    return str(container["Id"])


def _first_line_time(client: Any, cid: str, timeout: float = 30.0) -> float:
    """The epoch time the container printed on its first log line (same kernel clock as the host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = client.api.logs(cid, stdout=True, stderr=False).decode()
        for line in logs.splitlines():
            if line.startswith("first-line "):
                return float(line.split()[1])
        time.sleep(0.02)
    raise TimeoutError(f"container {cid[:12]} printed no first line within {timeout}s")


def _remove_labeled(client: Any) -> None:
    for c in client.api.containers(all=True, filters={"label": [f"{k}={v}" for k, v in LABEL.items()]}):
        client.api.remove_container(c["Id"], force=True)


def _steps_pod(parallel: bool) -> ContainerSpec:
    """A task preceded by two independent STEP_SECONDS preparation steps (init containers or sidecars)."""
    mount = [VolumeMount("work", "/work")]
    main = (
        "import json, pathlib, time\n"
        "work = pathlib.Path('/work')\n"
        "deadline = time.time() + 60\n"
        "while not all((work / f'{s}.done').exists() for s in 'ab'):\n"
        "    if time.time() > deadline: raise SystemExit('steps did not finish in 60 s')\n"
        "    time.sleep(0.05)\n"
        "ready = time.time()\n"
        "starts = [float((work / f'{s}.start').read_text()) for s in 'ab']\n"
        "result = {'ready_after_s': round(ready - min(starts), 2), 'step_start_gap_s': "
        "round(max(starts) - min(starts), 2)}\n"
        "print(json.dumps(result))\n"
        "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps(result))\n"
    )

    def step(name: str) -> Container:
        work = (
            f"import pathlib, time; w = pathlib.Path('/work'); "
            f"(w / '{name}.start').write_text(str(time.time())); time.sleep({STEP_SECONDS}); "
            f"(w / '{name}.done').write_text('ok')"
        )
        # A native sidecar must keep running (it is restarted if it exits); an init container must exit.
        code = work + ("; time.sleep(3600)" if parallel else "")
        return Container(f"step-{name}", PYTHON_IMAGE, command=["python", "-c", code], mounts=mount)

    steps = [step("a"), step("b")]
    return ContainerSpec(
        PYTHON_IMAGE,
        command=["python", "-c", main],
        volumes=[EmptyDir("work", size_limit="16Mi")],
        mounts=mount,
        resources="xs",
        labels={"containerkit.example": "88-08-01"},
        sidecars=steps if parallel else (),
        init_containers=() if parallel else steps,
    )


@dag(
    dag_id="88_08_01_startup_optimization",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=[
        "reference",
        "performance",
        "intermediate",
        "success",
        "needs:docker",
        "needs:registry",
        "needs:kubernetes",
    ],
    doc_md=__doc__,
)
def startup_optimization() -> None:
    @task
    def measure_init_process() -> dict[str, Any]:
        """First-line latency and ``docker stop`` time for: PID 1 python, ``--init``, the image's tini."""
        import docker

        client = docker.from_env(timeout=60)
        variants = {
            "python as PID 1": (False, True),
            "docker --init": (True, True),
            "image entrypoint (tini)": (False, False),
        }
        out: dict[str, Any] = {}
        try:
            for label, (init, override) in variants.items():
                starts, stops = [], []
                for _ in range(RUNS):
                    spec = _spec(["python", "-c", SLEEPER], init=init).replace(
                        termination_grace_seconds=STOP_TIMEOUT
                    )
                    t0 = time.time()
                    cid = _start(client, spec, entrypoint_override=override)
                    try:
                        starts.append(_first_line_time(client, cid) - t0)
                        t1 = time.monotonic()
                        client.api.stop(cid, timeout=STOP_TIMEOUT)
                        stops.append(time.monotonic() - t1)
                        exit_code = client.api.inspect_container(cid)["State"]["ExitCode"]
                    finally:
                        client.api.remove_container(cid, force=True)
                out[label] = {
                    "first_line_s": round(statistics.median(starts), 3),
                    "stop_s": round(statistics.median(stops), 3),
                    "exit_code": exit_code,
                }
                print(f"{label}: {out[label]}")
        finally:
            _remove_labeled(client)
            client.close()
        return out

    @task
    def measure_lazy_loading() -> dict[str, float]:
        """Time to the first log line with 35 modules imported at the top versus on use."""
        import docker

        client = docker.from_env(timeout=60)
        out: dict[str, float] = {}
        try:
            for label, script in (("eager imports", EAGER), ("lazy imports", LAZY)):
                samples = []
                for _ in range(RUNS):
                    t0 = time.time()
                    cid = _start(client, _spec(["python", "-c", script]))
                    try:
                        samples.append(_first_line_time(client, cid) - t0)
                        client.api.wait(cid, timeout=60)
                    finally:
                        client.api.remove_container(cid, force=True)
                out[label] = round(statistics.median(samples), 3)
                print(f"{label}: first log line after {out[label]} s (median of {RUNS})")
        finally:
            _remove_labeled(client)
            client.close()
        return out

    @task
    def measure_prepull() -> dict[str, Any]:
        """Cold start (pull from the registry, then start) versus a pre-pulled image."""
        import tempfile
        from pathlib import Path

        import docker

        from containerkit.hooks.image import ImageHook

        hook = ImageHook(registry_conn_id=REGISTRY_CONN_ID)
        client = docker.from_env(timeout=120)
        tag = f"run-{uuid.uuid4().hex[:10]}"
        with tempfile.TemporaryDirectory(prefix="ck-88-08-01-") as context:
            # 40 MB of fresh random bytes: a layer no node has yet, like a new release of a task image.
            Path(context, "payload.bin").write_bytes(os.urandom(40_000_000))
            Path(context, "Dockerfile").write_text(
                # The small Debian base: a first push uploads the base layers too, so keep them small.
                f"FROM {DEBIAN_IMAGE}\nCOPY --chown=50000:0 payload.bin /opt/payload.bin\n"
            )
            built = hook.build(context, repository=PREPULL_REPOSITORY, tags=[tag], labels=LABEL)
        reference = built.references[0]
        try:
            digest = hook.push(PREPULL_REPOSITORY, [tag])
            hook.remove(reference, force=True)
            first_line = ["sh", "-c", "echo first-line $(date +%s.%N)"]
            t0 = time.time()
            hook.pull(reference)
            pulled = time.time() - t0
            cid = _start(client, _spec(first_line, image=reference))
            cold = _first_line_time(client, cid) - t0
            client.api.remove_container(cid, force=True)
            warm_samples = []
            for _ in range(RUNS):
                t0 = time.time()
                cid = _start(client, _spec(first_line, image=reference))
                warm_samples.append(_first_line_time(client, cid) - t0)
                client.api.remove_container(cid, force=True)
        finally:
            _remove_labeled(client)
            for image in client.api.images(filters={"label": [f"{k}={v}" for k, v in LABEL.items()]}):
                client.api.remove_image(image["Id"], force=True)
            client.close()
        out = {
            "image": f"{reference.rsplit(':', 1)[0]}@{digest}",
            "pull_s": round(pulled, 3),
            "cold_first_line_s": round(cold, 3),
            "prepulled_first_line_s": round(statistics.median(warm_samples), 3),
        }
        print(json.dumps(out, indent=2))
        return out

    @task
    def render_prepull_daemonset() -> dict[str, Any]:
        """The node pre-puller as a DaemonSet, rendered, validated, applied and removed."""
        import kubernetes_validate
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import V1DaemonSet, V1DaemonSetSpec, V1LabelSelector, V1ObjectMeta
        from kubernetes.client import V1PodTemplateSpec as Template

        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate
        from containerkit.policy.model import Severity
        from containerkit.policy.sources.kubernetes import targets_from_document

        images = [PYTHON_IMAGE, DEBIAN_IMAGE]
        pullers = [
            # Each init container only has to exist for its image to be pulled; "true"-like exit.
            Container(f"pull-{i}", image, command=["sh", "-c", "exit 0"], resources="xs")
            for i, image in enumerate(images)
        ]
        labels = {"app.kubernetes.io/name": "image-prepull", "app.kubernetes.io/managed-by": "containerkit"}
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", "import signal; signal.pause()"],
            resources="xs",
            init_containers=pullers,
            labels=labels,
        )
        pod = render_pod(spec, name=None)
        pod.spec.restart_policy = "Always"  # a DaemonSet's pods run until the DaemonSet goes
        daemon_set = V1DaemonSet(
            api_version="apps/v1",
            kind="DaemonSet",
            metadata=V1ObjectMeta(name="ck-image-prepull", namespace=NAMESPACE, labels=labels),
            spec=V1DaemonSetSpec(
                selector=V1LabelSelector(match_labels=labels),
                template=Template(metadata=pod.metadata, spec=pod.spec),
            ),
        )
        document = to_dict(daemon_set)
        versions = ["1.29", "1.33", "1.37"]
        for version in versions:
            kubernetes_validate.validate(document, version, strict=True)
        findings = [
            f
            for target in targets_from_document(document, {}, None)
            for f in evaluate(target, rule_sets=["pss-restricted", "hardened"])
        ]
        blocking = [f"{f.rule_id} {f.path}: {f.message}" for f in findings if f.severity is Severity.ERROR]
        if blocking:
            raise ValueError(f"the pre-pull DaemonSet breaks policy: {blocking}")
        apps = KubernetesHook(conn_id=KUBERNETES_CONN_ID).apps_v1_client
        apps.create_namespaced_daemon_set(NAMESPACE, document)
        try:
            stored = apps.read_namespaced_daemon_set("ck-image-prepull", NAMESPACE)
            pulled = [c.image for c in stored.spec.template.spec.init_containers]
        finally:
            apps.delete_namespaced_daemon_set("ck-image-prepull", NAMESPACE)
        if pulled != images:
            raise ValueError(f"the stored DaemonSet pulls {pulled}, expected {images}")
        print(f"pre-pull DaemonSet valid on Kubernetes {', '.join(versions)}, applied and removed: {pulled}")
        return {"validated_on": versions, "images": pulled, "findings": [f.rule_id for f in findings]}

    common: dict[str, Any] = {
        "namespace": NAMESPACE,
        "kubernetes_conn_id": KUBERNETES_CONN_ID,
        "do_xcom_push": True,
        "get_logs": True,
    }
    init_sequential = SecureKubernetesPodOperator(
        task_id="init_sequential", name="startup-sequential", spec=_steps_pod(parallel=False), **common
    )
    init_parallel = SecureKubernetesPodOperator(
        task_id="init_parallel", name="startup-parallel", spec=_steps_pod(parallel=True), **common
    )

    @task
    def report(
        init_process: dict[str, Any],
        lazy: dict[str, float],
        prepull: dict[str, Any],
        sequential: dict[str, float],
        parallel: dict[str, float],
    ) -> dict[str, Any]:
        rows = [
            *(
                f"{k:<28} first line {v['first_line_s']:.3f} s, stop {v['stop_s']:.2f} s"
                for k, v in init_process.items()
            ),
            *(f"{k:<28} first line {v:.3f} s" for k, v in lazy.items()),
            f"{'cold (pull + start)':<28} first line {prepull['cold_first_line_s']:.3f} s "
            f"(pull {prepull['pull_s']:.3f} s)",
            f"{'pre-pulled':<28} first line {prepull['prepulled_first_line_s']:.3f} s",
            f"{'init containers (serial)':<28} task ready {sequential['ready_after_s']:.2f} s after step 1",
            f"{'native sidecars (parallel)':<28} task ready {parallel['ready_after_s']:.2f} s after step 1",
        ]
        print(f"startup timings (median of {RUNS} where repeated):\n  " + "\n  ".join(rows))
        problems = []
        if init_process["python as PID 1"]["stop_s"] < STOP_TIMEOUT * 0.8:
            problems.append("PID 1 python stopped before the kill timeout: SIGTERM was not ignored?")
        for variant in ("docker --init", "image entrypoint (tini)"):
            if init_process[variant]["stop_s"] > STOP_TIMEOUT * 0.5:
                problems.append(f"{variant}: SIGTERM was not forwarded (stop took the kill timeout)")
        if lazy["lazy imports"] >= lazy["eager imports"]:
            problems.append(f"lazy imports did not log earlier: {lazy}")
        if prepull["cold_first_line_s"] <= prepull["prepulled_first_line_s"]:
            problems.append(f"the cold start was not slower than the pre-pulled one: {prepull}")
        if parallel["ready_after_s"] >= sequential["ready_after_s"]:
            problems.append(
                f"native sidecars did not start the steps in parallel: {parallel} vs {sequential}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return {"init": init_process, "lazy": lazy, "prepull": prepull, "seq": sequential, "par": parallel}

    report(
        measure_init_process(),
        measure_lazy_loading(),
        measure_prepull(),
        init_sequential.output,
        init_parallel.output,
    )
    render_prepull_daemonset()


startup_optimization()
