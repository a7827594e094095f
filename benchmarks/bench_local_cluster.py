#!/usr/bin/env python
"""Pod start-up on the local Kubernetes test double (containerkit.testing) against a plain ``docker run``.

Two numbers, each the median of ``--runs`` runs of the same image on the same engine:

* **to Running**: ``create pod`` (real HTTP, the ``kubernetes`` client) until the API reports
  ``phase: Running``, against ``docker create`` + ``start`` until ``State.Running`` of one container;
* **whole pod**: create until the pod is ``Succeeded`` and deleted (its containers, sandbox and volumes
  removed), against ``docker run --rm`` of the same short command.

The pod is a KubernetesPodOperator-shaped one: a hardened ``base`` container (uid 50000, read-only root,
no capabilities, memory/cpu limits) with an emptyDir, plus the XCom sidecar. The ratio is the
per-pod overhead of the test double (sandbox container, volume set-up, status polling) over the engine.
Prints a table; not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 50000,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def kpo_like_pod(name: str, image: str, script: str, sidecar_image: str) -> dict[str, Any]:
    xcom = {"name": "xcom", "mountPath": "/airflow/xcom"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "local-cluster"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "xcom", "emptyDir": {}}],
            "containers": [
                {
                    "name": "base",
                    "image": image,
                    "command": ["sh", "-c", script],
                    "securityContext": HARDENED,
                    "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                    "volumeMounts": [xcom],
                },
                {
                    "name": "airflow-xcom-sidecar",
                    "image": sidecar_image,
                    "command": ["sh", "-c", "echo done > /airflow/xcom/return.json; exit 0"],
                    "securityContext": HARDENED,
                    "volumeMounts": [xcom],
                },
            ],
        },
    }


def wait(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="containerkit/base-debian:12")
    args = parser.parse_args()

    import docker
    from kubernetes import client, config

    from containerkit.testing.cluster import LocalCluster

    engine = docker.from_env()
    labels = {"containerkit.bench": "local-cluster"}
    docker_running: list[float] = []
    docker_whole: list[float] = []
    for _ in range(args.runs):
        started = time.monotonic()
        container = engine.containers.create(
            args.image,
            ["sleep", "30"],
            labels=labels,
            user="50000",
            read_only=True,
            cap_drop=["ALL"],
            mem_limit="128m",
        )
        container.start()
        wait(lambda c=container: bool(engine.api.inspect_container(c.id)["State"]["Running"]))
        docker_running.append(time.monotonic() - started)
        container.remove(force=True)
        started = time.monotonic()
        engine.containers.run(
            args.image,
            ["sh", "-c", "true"],
            remove=True,
            labels=labels,
            user="50000",
            read_only=True,
            cap_drop=["ALL"],
            mem_limit="128m",
        )
        docker_whole.append(time.monotonic() - started)

    pod_running: list[float] = []
    pod_whole: list[float] = []
    with tempfile.TemporaryDirectory() as workdir, LocalCluster("ck-bench", workdir=workdir) as cluster:
        core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))

        def phase(name: str) -> str:
            return str(core.read_namespaced_pod(name, "bench").status.phase)

        for i in range(args.runs):
            name = f"running-{i}"
            started = time.monotonic()
            core.create_namespaced_pod("bench", kpo_like_pod(name, args.image, "sleep 30", args.image))
            wait(lambda n=name: phase(n) == "Running")
            pod_running.append(time.monotonic() - started)
            core.delete_namespaced_pod(name, "bench", grace_period_seconds=0)
            cluster.wait_for_no_pods("bench")
            name = f"whole-{i}"
            started = time.monotonic()
            core.create_namespaced_pod("bench", kpo_like_pod(name, args.image, "true", args.image))
            wait(lambda n=name: phase(n) == "Succeeded")
            core.delete_namespaced_pod(name, "bench")
            cluster.wait_for_no_pods("bench")
            pod_whole.append(time.monotonic() - started)
    for c in engine.containers.list(all=True, filters={"label": "containerkit.bench=local-cluster"}):
        c.remove(force=True)

    rows = [
        ("to Running", statistics.median(docker_running), statistics.median(pod_running)),
        ("whole pod (create .. removed)", statistics.median(docker_whole), statistics.median(pod_whole)),
    ]
    print(f"image {args.image}, {args.runs} runs each, medians in seconds")
    print(f"{'':32} {'docker run':>11} {'test double':>12} {'ratio':>7} {'overhead/pod':>13}")
    for label, plain, double in rows:
        print(f"{label:32} {plain:11.2f} {double:12.2f} {double / plain:7.2f} {double - plain:12.2f}s")


if __name__ == "__main__":
    main()
