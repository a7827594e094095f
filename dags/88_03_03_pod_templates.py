"""Pod templates: the executor's pod_template_file and per-task pod_override, proven with Airflow's generator.

**Problem.** Under KubernetesExecutor every task runs in a worker pod built from
``[kubernetes_executor] pod_template_file`` and the task's ``executor_config={"pod_override": ...}``. A
hand-kept template YAML and hand-written ``V1Pod`` overrides drift from the hardening and sizing task
pods get, and nobody sees the *merged* pod until it fails on the cluster.

**Practice, per sub-point:**

* *worker pod templates* (``render_pod_template_file``): the template is rendered by
  ``containerkit.kubernetes.helm.standalone_pod_template`` (the same factory as the chart's
  ``podTemplate`` and the ``SecureKubernetesPodOperator`` pods: restricted profile, ``m`` preset, container
  ``base`` with ``AIRFLOW__CORE__EXECUTOR=LocalExecutor``, logs volume, ``airflow.cfg`` from a ConfigMap)
  and written under ``$AIRFLOW_HOME/pod_templates/`` at run time, never at parse time. ``extract`` and
  ``aggregate`` carry ``pod_override`` s rendered by ``containerkit.kubernetes.pod.pod_override`` from a
  ``ContainerSpec`` (``s`` preset; ``l`` preset on the batch node pool with a toleration).
* *init containers* (``aggregate``'s override): a factory init container (``wait_for_tcp``: hold the task
  until its database answers, bounded) rides in the override and must survive the merge, hardened.
* ``build_worker_pods`` runs **Airflow's own** ``PodGenerator.construct_pod`` (what the executor calls)
  for each task of this DAG over the template: the merged pods must keep the executor's command, the
  override's size, scheduling and init container, and the hardening; each validates strictly against
  Kubernetes 1.29, 1.33 and 1.37 and passes ``pss-restricted`` and ``hardened``.
* *scheduler pod template* and *webserver pod template* (``component_pod_settings``): the chart builds
  those pods from the values' ``scheduler`` and ``apiServer`` (the Airflow 3 webserver) sections; the
  committed ``helm-values/values.yaml`` settings are assembled into each pod as the chart would (contexts,
  resources, log-groomer sidecar, wait-for-migrations init container) and checked the same way.
* ``run_worker_template`` starts a real pod from the rendered ``pod_template_file`` through
  ``SecureKubernetesPodOperator(pod_template_file=...)``; it reads the Airflow configuration as
  uid 50000 on a read-only root filesystem, proving the template's env and ``airflow.cfg`` mount work.
  ``make_config`` / ``drop_config`` create and remove the ``airflow-config`` ConfigMap it mounts.

**Copying.** Set ``CONTAINERKIT_AIRFLOW_IMAGE`` (your Airflow image with the DAGs' dependencies),
``CONTAINERKIT_NAMESPACE``, the ``kubernetes_default`` connection and ``CONTAINERKIT_HELM_VALUES_DIR``;
point ``[kubernetes_executor] pod_template_file`` at the rendered file. Other executors ignore
``pod_override``, so ``extract`` / ``aggregate`` run anywhere.

**Needs.** A Kubernetes API for ``run_worker_template`` (``needs:kubernetes``; the tests use the local
Docker-backed one from ``containerkit.testing``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, get_current_context, task, teardown

from containerkit.kubernetes.init_containers import wait_for_tcp
from containerkit.kubernetes.pod import pod_override
from containerkit.spec import ContainerSpec, Scheduling, Toleration

AIRFLOW_IMAGE = os.environ.get("CONTAINERKIT_AIRFLOW_IMAGE", "apache/airflow:3.3.2-python3.11")
PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
HELM_VALUES_DIR = Path(
    os.environ.get("CONTAINERKIT_HELM_VALUES_DIR", Path(__file__).resolve().parent.parent / "helm-values")
)
CONFIG_MAP = "ck-88-03-03-airflow-config"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
TEMPLATE = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / "pod_templates" / "88_03_03_worker.yaml"

SMALL = ContainerSpec(AIRFLOW_IMAGE, resources="s", labels={"containerkit.io/size": "s"})
# A memory-heavy task: the "l" preset (4Gi, limit == request) on the batch node pool, and an init
# container that holds it until the warehouse accepts connections (at most 120 s, then a clear error).
LARGE = ContainerSpec(
    AIRFLOW_IMAGE,
    resources="l",
    labels={"containerkit.io/size": "l"},
    scheduling=Scheduling(
        node_selector={"pool": "batch"}, tolerations=(Toleration("pool", "Equal", "batch", "NoSchedule"),)
    ),
).extend(wait_for_tcp("warehouse.db.svc.cluster.local", 5432, timeout_seconds=120, image=PYTHON_IMAGE))


def _check_pod(
    pod: dict[str, Any], what: str, *, fail_at: str = "warning", exempt: dict[str, str] | None = None
) -> list[str]:
    """Strict schema on several versions plus policy; returns the findings below ``fail_at``.

    ``exempt`` maps rule ids to the reason they do not apply (printed, never silent).
    """
    import kubernetes_validate

    from containerkit.policy.engine import evaluate_pod
    from containerkit.policy.model import Severity

    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    findings = evaluate_pod(pod, rule_sets=["pss-restricted", "hardened"])
    for rule_id, reason in (exempt or {}).items():
        hits = [f.path for f in findings if f.rule_id == rule_id]
        if hits:
            print(f"{what}: {rule_id} exempted at {hits}: {reason}")
    findings = [f for f in findings if f.rule_id not in (exempt or {})]
    limit = Severity(fail_at).rank
    blocking = [f"{f.rule_id} {f.path}: {f.message}" for f in findings if f.severity.rank >= limit]
    if blocking:
        raise ValueError(f"{what}: {blocking}")
    return [f"{f.rule_id}: {f.message}" for f in findings]


def _chart_probes(component: str, section: dict[str, Any]) -> dict[str, Any]:
    """The probes the chart renders for the component, with the timings from its values."""
    if component == "scheduler":
        check = {
            "exec": {
                "command": ["sh", "-c", "airflow jobs check --job-type SchedulerJob --local"],
            }
        }
    else:
        check = {"httpGet": {"path": "/api/v2/monitor/health", "port": 8080, "scheme": "HTTP"}}
    return {
        name: {**check, **dict(section[name])}
        for name in ("livenessProbe", "readinessProbe", "startupProbe")
        if name in section
    }


@dag(
    dag_id="88_03_03_pod_templates",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:kubernetes"],
    doc_md=__doc__,
)
def pod_templates() -> None:
    @task
    def render_pod_template_file() -> str:
        from containerkit.kubernetes.helm import standalone_pod_template

        # api_access=False: these workers launch no pods of their own, so no token is mounted.
        text = standalone_pod_template(
            AIRFLOW_IMAGE, resources="m", api_access=False, namespace=NAMESPACE, config_map=CONFIG_MAP
        )
        TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
        TEMPLATE.write_text(text)
        print(f"wrote {TEMPLATE} ({len(text.splitlines())} lines)")
        return str(TEMPLATE)

    @task(executor_config={"pod_override": pod_override(SMALL)})
    def extract() -> dict[str, Any]:
        return {"rows": 1000}

    @task(executor_config={"pod_override": pod_override(LARGE)})
    def aggregate(extracted: dict[str, Any]) -> dict[str, Any]:
        return {"total": extracted["rows"] * 2}

    @task
    def build_worker_pods(template_path: str, _: dict[str, Any]) -> dict[str, Any]:
        """Merge template and overrides with the executor's own code, then check every merged pod."""
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

        from containerkit.kubernetes.manifests import to_dict

        context = get_current_context()
        base_pod = PodGenerator.deserialize_model_file(template_path)
        out: dict[str, Any] = {}
        for task_id in ("extract", "aggregate"):
            operator = context["dag"].get_task(task_id)
            args = ["airflow", "tasks", "run", operator.dag_id, task_id, context["run_id"], "--local"]
            pod = PodGenerator.construct_pod(
                dag_id=operator.dag_id,
                task_id=task_id,
                pod_id=f"worker-{task_id}",
                try_number=1,
                kube_image=AIRFLOW_IMAGE,
                date=None,
                args=args,
                pod_override_object=operator.executor_config["pod_override"],
                base_worker_pod=base_pod,
                namespace=NAMESPACE,
                scheduler_job_id="1",
                run_id=context["run_id"],
            )
            data = to_dict(pod)
            base = data["spec"]["containers"][0]
            problems = []
            if base["name"] != "base" or base.get("args") != args:
                problems.append(f"base container lost the executor's command: {base.get('args')}")
            env = {e["name"]: e.get("value") for e in base.get("env") or ()}
            if env.get("AIRFLOW__CORE__EXECUTOR") != "LocalExecutor":
                problems.append("AIRFLOW__CORE__EXECUTOR=LocalExecutor from the template is gone")
            mounts = {m["name"] for m in base.get("volumeMounts") or ()}
            if not {"logs", "config", "tmp"} <= mounts:
                problems.append(f"template mounts lost in the merge: {sorted(mounts)}")
            expected = (SMALL if task_id == "extract" else LARGE).resources
            if base["resources"]["limits"]["memory"] != expected.limits["memory"]:
                problems.append(f"memory limit {base['resources']['limits']['memory']}, not the override's")
            init = [c["name"] for c in data["spec"].get("initContainers") or ()]
            if task_id == "aggregate":
                if data["spec"].get("nodeSelector") != {"pool": "batch"}:
                    problems.append("the batch node selector did not reach the pod")
                if init != ["wait-for-warehouse-5432"]:
                    problems.append(f"init containers after the merge: {init}")
            if problems:
                raise ValueError(f"{task_id}: {'; '.join(problems)}")
            advice = _check_pod(data, f"merged worker pod of {task_id}")
            out[task_id] = {
                "limits": base["resources"]["limits"],
                "init_containers": init,
                "node_selector": data["spec"].get("nodeSelector"),
                "advice": advice,
            }
            print(f"{task_id}: merged worker pod valid and policy-clean: {out[task_id]}")
        return out

    @task
    def component_pod_settings() -> dict[str, Any]:
        """The scheduler and API server (webserver) pods as the chart assembles them from the values."""
        import yaml

        values = yaml.safe_load((HELM_VALUES_DIR / "values.yaml").read_text())
        image = "example.com/airflow:3.3.2@sha256:" + "c" * 64
        out: dict[str, Any] = {}
        for component, role in (("scheduler", "scheduler"), ("apiServer", "api-server")):
            section = values[component]
            contexts = section["securityContexts"]
            tmp = values.get("volumeMounts") or []
            probes = _chart_probes(component, section)
            containers = [
                {
                    "name": role,
                    "image": image,
                    "args": ["bash", "-c", f"exec airflow {role}"],
                    "securityContext": contexts["container"],
                    "resources": section["resources"],
                    "volumeMounts": tmp,
                    **probes,
                }
            ]
            init = [
                {
                    "name": "wait-for-airflow-migrations",
                    "image": image,
                    "args": ["airflow", "db", "check-migrations", "--migration-wait-timeout=60"],
                    "securityContext": section["waitForMigrations"]["securityContexts"]["container"],
                    "resources": section["resources"],
                    "volumeMounts": tmp,
                }
            ]
            if "logGroomerSidecar" in section:
                groomer = section["logGroomerSidecar"]
                containers.append(
                    {
                        "name": "scheduler-log-groomer",
                        "image": image,
                        "args": ["bash", "/clean-logs"],
                        "securityContext": groomer["securityContexts"]["container"],
                        "resources": groomer["resources"],
                        "volumeMounts": tmp,
                    }
                )
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"airflow-{role}", "labels": {"component": role}},
                "spec": {
                    "securityContext": contexts["pod"],
                    "initContainers": init,
                    "containers": containers,
                    "volumes": values.get("volumes") or [],
                    "automountServiceAccountToken": False,
                },
            }
            advice = _check_pod(
                pod,
                f"{component} pod from the Helm values",
                exempt={
                    "HRD-010": "the chart gives the scheduler liveness and startup probes only (no Service "
                    "routes to it, so readiness means nothing) and the log groomer none"
                },
            )
            out[component] = {
                "containers": [c["name"] for c in containers],
                "limits": section["resources"]["limits"],
                "advice": advice,
            }
            print(f"{component}: {out[component]}")
        return out

    @task
    def make_config() -> str:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import V1ConfigMap, V1ObjectMeta

        cfg = "[core]\nload_examples = False\n[logging]\nbase_log_folder = /opt/airflow/logs\n"
        body = V1ConfigMap(metadata=V1ObjectMeta(name=CONFIG_MAP), data={"airflow.cfg": cfg})
        KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client.create_namespaced_config_map(
            NAMESPACE, body
        )
        return CONFIG_MAP

    run_worker_template = SecureKubernetesPodOperator(
        task_id="run_worker_template",
        name="worker-template",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        pod_template_file=str(TEMPLATE),
        cmds=["python", "-c"],
        arguments=[
            "import os, pathlib; from airflow.configuration import conf\n"
            "assert conf.get('core', 'executor') == 'LocalExecutor', conf.get('core', 'executor')\n"
            "assert conf.getboolean('core', 'load_examples') is False, 'airflow.cfg not mounted'\n"
            "assert os.getuid() == 50000 and os.getgid() == 0, (os.getuid(), os.getgid())\n"
            "try:\n    pathlib.Path('/opt/airflow/probe').touch()\nexcept OSError:\n    pass\n"
            "else:\n    raise SystemExit('the root filesystem is writable')\n"
            "print('worker template OK: uid 50000:0, LocalExecutor, airflow.cfg from the ConfigMap')\n"
        ],
        get_logs=True,
    )

    @teardown
    def drop_config() -> None:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client.exceptions import ApiException

        try:
            KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client.delete_namespaced_config_map(
                CONFIG_MAP, NAMESPACE
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    template = render_pod_template_file()
    built = build_worker_pods(template, aggregate(extract()))
    component_pod_settings()
    config = make_config()
    [built, config] >> run_worker_template >> drop_config()


pod_templates()
