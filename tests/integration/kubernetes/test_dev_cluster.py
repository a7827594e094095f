"""``containerkit dev-cluster``: a detached local cluster a user (or ``make run-dags``) can point at."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def containerkit(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from containerkit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180)


def test_start_detached_use_and_stop(docker_client: Any, python_image: str, tmp_path: Path) -> None:
    from kubernetes import client, config

    name = "ck-devcluster-test"
    state = ["--name", name, "--state-dir", str(tmp_path)]
    started = containerkit("dev-cluster", "start", "--detach", *state)
    try:
        assert started.returncode == 0, started.stderr
        kubeconfig = tmp_path / "kubeconfig.yaml"
        assert f"kubeconfig: {kubeconfig}" in started.stdout
        assert "test double" in started.stdout
        located = containerkit("dev-cluster", "kubeconfig", *state)
        assert located.returncode == 0 and located.stdout.strip() == str(kubeconfig)
        connection = json.loads(
            containerkit("dev-cluster", "kubeconfig", "--airflow-connection", *state).stdout
        )
        assert connection["extra"]["kube_config_path"] == str(kubeconfig)

        core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "hello"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "base",
                        "image": python_image,
                        "command": ["python", "-c", "print('hi')"],
                        "securityContext": {"runAsUser": 50000, "readOnlyRootFilesystem": True},
                    }
                ],
            },
        }
        core.create_namespaced_pod("default", pod)
        deadline = time.monotonic() + 60
        while core.read_namespaced_pod("hello", "default").status.phase != "Succeeded":
            assert time.monotonic() < deadline, "the pod did not finish"
            time.sleep(0.2)
        log = core.read_namespaced_pod_log("hello", "default", _preload_content=False).data.decode()
        assert log.strip() == "hi"
    finally:
        stopped = containerkit("dev-cluster", "stop", *state)
    assert stopped.returncode == 0, stopped.stderr
    assert (
        docker_client.containers.list(all=True, filters={"label": f"containerkit.testing/cluster={name}"})
        == []
    )
    assert containerkit("dev-cluster", "kubeconfig", *state).returncode != 0  # nothing runs any more
