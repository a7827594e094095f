"""Lint throughput: a folder of 200 Kubernetes manifests and a folder of 50 DAGs.

Prints start-up time (imports + rule registry) and the per-object cost after start-up, measured in
process with the same code path as ``containerkit lint`` (target: under 5 ms per manifest).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}, namespace: team-{ns}}}
spec:
  replicas: {replicas}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec:
      securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
      initContainers:
      - name: init
        image: busybox:1.36
        securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
      containers:
      - name: app
        image: registry.local/app:{i}.0
        ports: [{{containerPort: 8080}}]
        env:
        - {{name: LOG_LEVEL, value: info}}
        - {{name: API_TOKEN, valueFrom: {{secretKeyRef: {{name: app, key: token}}}}}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{memory: 256Mi}}
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {{drop: [ALL]}}
        livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
      volumes:
      - {{name: tmp, emptyDir: {{}}}}
"""

DAG = """\
import pendulum
from airflow.sdk import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator

with DAG("bench_{i}", start_date=pendulum.datetime(2025, 1, 1), schedule=None):
    KubernetesPodOperator(task_id="k8s", image="python:3.11", cmds=["python", "-c", "print(1)"])
    DockerOperator(task_id="docker", image="python:3.11", command="echo hi")
"""


def main() -> None:
    t0 = time.perf_counter()
    from containerkit.policy.engine import load_rules
    from containerkit.policy.lint import lint_paths
    from containerkit.policy.model import REGISTRY

    load_rules()
    startup = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp, "manifests")
        manifests.mkdir()
        for i in range(200):
            (manifests / f"app-{i}.yaml").write_text(MANIFEST.format(i=i, ns=i % 7, replicas=1 + i % 3))
        t1 = time.perf_counter()
        result = lint_paths([manifests])
        manifests_s = time.perf_counter() - t1
        assert len(result.targets) == 200 and not result.errors, result.errors

        dags = Path(tmp, "dags")
        dags.mkdir()
        for i in range(50):
            (dags / f"bench_{i}.py").write_text(DAG.format(i=i))
        t2 = time.perf_counter()
        import airflow.providers.cncf.kubernetes.operators.pod
        import airflow.providers.docker.operators.docker  # noqa: F401

        airflow_import = time.perf_counter() - t2
        t3 = time.perf_counter()
        dag_result = lint_paths([dags])
        dags_s = time.perf_counter() - t3
        assert len(dag_result.targets) == 100 and not dag_result.errors, dag_result.errors

    rules = len(list(REGISTRY))
    print(f"start-up (imports + {rules} rules): {startup * 1000:.0f} ms")
    print(
        f"200 manifests: {manifests_s * 1000:.0f} ms total, {manifests_s * 1000 / 200:.2f} ms per manifest, "
        f"{len(result.findings)} findings"
    )
    print(f"airflow + operator imports (one-time): {airflow_import * 1000:.0f} ms")
    print(
        f"50 DAGs / 100 container tasks: {dags_s * 1000:.0f} ms total, {dags_s * 1000 / 50:.1f} ms per DAG, "
        f"{dags_s * 1000 / 100:.1f} ms per task, {len(dag_result.findings)} findings"
    )
    target = 5.0
    per_manifest = manifests_s * 1000 / 200
    print(f"manifest target < {target} ms: {'met' if per_manifest < target else 'NOT met'}")


if __name__ == "__main__":
    main()
