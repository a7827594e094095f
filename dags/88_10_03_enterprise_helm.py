"""Enterprise Helm: production values for the official chart, checked key by key, then installed atomically.

**Problem.** A production ``values.yaml`` for ``apache-airflow/airflow`` is hundreds of lines that nobody
reviews as a whole: a component left on the chart's default security context, a sidecar without
resources, a literal password, an unpinned image or a key the chart renamed are found in an incident.

**Practice, per sub-point** (the values are ``helm-values/values.yaml``, rendered by
``containerkit render helm-values`` from the task pods' profile and presets, plus the hand-written
production layer ``values-production.yaml``, merged as ``helm -f values.yaml -f values-production.yaml``
merges them):

* *complete values.yaml* (``render_production_values``, ``check_chart_keys``): the generated half is
  re-rendered and must equal the committed file; every key path of both layers exists in the chart's
  default values (``helm show values`` of the pinned chart, or a saved copy).
* *security configuration* (``check_security``): every component the values enable (scheduler, API
  server, DAG processor, triggerer, jobs, statsd, PgBouncer, git-sync, their sidecars) is put in a pod with
  its effective pod and container security context and must pass the Pod Security Standards
  ``restricted`` rules and a strict schema check; containerkit's ``helm-values`` lint rules (executor,
  contexts, pod template, resources, plaintext credentials, external DB, logs, pull secrets, network
  policies, pinned images) must report nothing on the production file.
* *resource allocation* (``check_resources``): every enabled component and sidecar has CPU and memory
  requests and limits, memory limit equal to the request (no overcommit of memory), and the production
  layer runs the control plane with replicas >= 2, PodDisruptionBudgets, a priority class and spread.
* *pod-template policy* (``check_pod_template``): the KubernetesExecutor worker pod template, resolved,
  validates strictly against Kubernetes 1.29, 1.33 and 1.37 and passes ``pss-restricted`` and ``hardened``.
* *integration settings* (``check_integrations``): external metadata DB through PgBouncer from a named
  Secret, Fernet / JWT / API keys from named Secrets, git-sync credentials from a Secret, persisted or
  remote task logs, StatsD metrics, pull secrets, network policies; it lists the Secrets to create first.
* With helm and a cluster (``helm_gate``, ``publish_values``, ``helm_upgrade``): ``helm upgrade --install
  --atomic --wait`` of the pinned chart from a hardened pod, both values files from a ConfigMap.

**Copying.** Set ``CONTAINERKIT_HELM_VALUES_DIR`` (your values folder with ``values.yaml.in``,
``values.yaml`` and ``values-production.yaml``), ``CONTAINERKIT_HELM_CHART_VALUES`` (output of ``helm show
values apache-airflow/airflow --version <CHART_VERSION>``; or have helm on PATH),
``CONTAINERKIT_HELM_RELEASE`` / ``CONTAINERKIT_HELM_NAMESPACE`` / ``CONTAINERKIT_HELM_IMAGE`` and
``CONTAINERKIT_NAMESPACE`` (the helm pod runs there as ServiceAccount ``helm-deployer``, bound to ``admin``
in the release namespace).

**Needs.** The checks run anywhere (``kubernetes-validate`` installed). ``publish_values`` and
``helm_upgrade`` need a real cluster behind ``kubernetes_default`` (``needs:cluster``:
``CONTAINERKIT_REAL_CLUSTER=1``) and the helm image (``needs:helm``); without them ``helm_gate`` skips
them with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task

from containerkit.spec import ConfigMapRef, ContainerSpec, SecurityProfile

NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
# The repository (the compose stack mounts the parts these tasks read under CONTAINERKIT_PROJECT_DIR).
REPO = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
HELM_VALUES_DIR = Path(os.environ.get("CONTAINERKIT_HELM_VALUES_DIR", REPO / "helm-values"))
CHART_VALUES = os.environ.get("CONTAINERKIT_HELM_CHART_VALUES", "")
SAVED_CHART_VALUES = REPO / "tests/fixtures/helm/airflow-chart-values.yaml"
CHART = "airflow"
CHART_REPO = "https://airflow.apache.org"
CHART_VERSION = os.environ.get("CONTAINERKIT_HELM_CHART_VERSION", "1.18.0")
RELEASE = os.environ.get("CONTAINERKIT_HELM_RELEASE", "airflow")
HELM_NAMESPACE = os.environ.get("CONTAINERKIT_HELM_NAMESPACE", "airflow")
HELM_IMAGE = os.environ.get("CONTAINERKIT_HELM_IMAGE", "alpine/helm:3.16.4")
VALUES_CONFIG_MAP = f"{RELEASE}-helm-values-production"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
ALLOWED_EXTRA_PATHS = {"dags.gitSync.credentialsSecret": "commented out in the defaults, in the chart schema"}
FREE_FORM_PATHS = {"config": "airflow.cfg sections: any Airflow option"}
CONTROL_PLANE = ("scheduler", "apiServer", "triggerer", "dagProcessor", "pgbouncer")
HELM_PROFILE = dataclasses.replace(SecurityProfile(), automount_service_account_token=True)


def _chart_defaults() -> tuple[dict[str, Any], str]:
    import yaml

    if CHART_VALUES:
        return yaml.safe_load(Path(CHART_VALUES).read_text()), CHART_VALUES
    helm = shutil.which("helm")
    if helm:
        out = subprocess.run(
            [helm, "show", "values", CHART, "--repo", CHART_REPO, "--version", CHART_VERSION],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return yaml.safe_load(out), f"helm show values {CHART} --version {CHART_VERSION}"
    if SAVED_CHART_VALUES.is_file():
        return yaml.safe_load(SAVED_CHART_VALUES.read_text()), str(SAVED_CHART_VALUES)
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(
        "needs:helm: no chart default values: install helm, or set CONTAINERKIT_HELM_CHART_VALUES to the "
        f"output of `helm show values apache-airflow/airflow --version {CHART_VERSION}`"
    )


def _unknown_paths(values: Mapping[str, Any], chart: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in ALLOWED_EXTRA_PATHS or path in FREE_FORM_PATHS:
            continue
        if key not in chart:
            yield path
            continue
        default = chart[key]
        if isinstance(default, Mapping) and default:
            if not isinstance(value, Mapping):
                yield f"{path} (the chart expects a mapping)"
                continue
            yield from _unknown_paths(value, default, f"{path}.")


def _load(name: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((HELM_VALUES_DIR / name).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{HELM_VALUES_DIR / name} is not a mapping of values")
    return data


def _production_values() -> dict[str, Any]:
    from containerkit.policy.sources.helm_values import merge

    return merge(_load("values.yaml"), _load("values-production.yaml"))


def _get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _sections(values: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(values path, section, is_airflow) of every enabled component and of its sidecars."""
    from containerkit.policy.rules.helm_values import enabled_components

    for component in enabled_components(values):
        section = values.get(component.key) or {}
        yield component.key, section, component.airflow
        for sidecar, on_by_default in component.sidecars:
            sub = section.get(sidecar) or {}
            if sub.get("enabled", on_by_default):
                yield f"{component.key}.{sidecar}", sub, component.airflow
    git = _get(values, "dags.gitSync") or {}
    if git.get("enabled"):
        yield "dags.gitSync", git, False


@dag(
    dag_id="88_10_03_enterprise_helm",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "example", "advanced", "success", "needs:cluster", "needs:helm"],
    doc_md=__doc__,
)
def enterprise_helm() -> None:
    @task
    def render_production_values() -> dict[str, Any]:
        """Re-render the generated half; it must be the committed values.yaml. Then layer production."""
        import yaml

        from containerkit.kubernetes import helm

        overlay = _load("values.yaml.in")
        snippet = helm.render_values(image_pull_secrets=helm.overlay_pull_secrets(overlay))
        rendered = helm.merge_overlay(snippet, overlay)
        if rendered != _load("values.yaml"):
            raise ValueError(
                f"{HELM_VALUES_DIR}/values.yaml is stale: run `containerkit render helm-values --overlay "
                "values.yaml.in -o values.yaml` and commit the result"
            )
        production = _production_values()
        print(
            f"values.yaml is the render output; production merges {len(_load('values-production.yaml'))} "
            f"top-level keys over it ({len(yaml.safe_dump(production).splitlines())} lines)"
        )
        return {"executor": production["executor"], "airflowVersion": production["airflowVersion"]}

    @task
    def check_chart_keys() -> dict[str, Any]:
        chart, source = _chart_defaults()
        if list(_unknown_paths({"scheduler": {"replica": 2}}, chart)) != ["scheduler.replica"]:
            raise ValueError("the key check no longer catches a misspelt key")
        unknown = {
            name: list(_unknown_paths(_load(name), chart))
            for name in ("values.yaml.in", "values.yaml", "values-production.yaml")
        }
        if any(unknown.values()):
            raise ValueError(f"keys the chart ({source}) does not define: {unknown}")
        print(f"every key of values.yaml.in, values.yaml and values-production.yaml is in {source}")
        return {"chart_values": source}

    @task
    def check_security() -> dict[str, Any]:
        """Each enabled component and sidecar, in a pod with its effective contexts, is PSS restricted."""
        import kubernetes_validate

        from containerkit.policy.engine import evaluate, evaluate_pod
        from containerkit.policy.sources import helm_values

        values = _production_values()
        top = values.get("securityContexts") or {}
        checked, problems = [], []
        for path, section, airflow in _sections(values):
            contexts = section.get("securityContexts") or {}
            container_ctx = contexts.get("container") or (top.get("containers") if airflow else None)
            parent = _get(values, path.split(".")[0]) or {}
            pod_ctx = (
                contexts.get("pod")
                or ((parent.get("securityContexts") or {}).get("pod"))
                or (top.get("pod") if airflow else None)
                or {}
            )
            if not container_ctx:
                problems.append(f"{path}: no container security context (the chart's default applies)")
                continue
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "component"},
                "spec": {
                    "securityContext": pod_ctx,
                    "containers": [
                        {
                            "name": "c",
                            "image": "example.com/c:1.0@sha256:" + "b" * 64,
                            "securityContext": container_ctx,
                        }
                    ],
                    "automountServiceAccountToken": False,
                },
            }
            kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[0], strict=True)
            for finding in evaluate_pod(pod, rule_sets=["pss-restricted"]):
                problems.append(f"{path}: {finding.rule_id} {finding.message}")
            if container_ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{path}: root filesystem is writable")
            checked.append(path)
        lint = [
            f"{f.rule_id} {f.path}: {f.message}"
            for target in helm_values.load(HELM_VALUES_DIR / "values-production.yaml")
            for f in evaluate(target, rule_sets=["helm-values"])
        ]
        if problems or lint:
            raise ValueError(f"security problems: {problems}; helm-values lint: {lint}")
        print(f"PSS restricted, read-only root: {', '.join(checked)}; helm-values lint clean")
        return {"components": checked}

    @task
    def check_resources() -> dict[str, Any]:
        from containerkit.spec.quantity import parse_quantity

        values = _production_values()
        problems, sized = [], {}
        for path, section, _ in _sections(values):
            if "waitForMigrations" in path:
                continue  # the chart gives this init container the component's resources
            resources = section.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            missing = [
                f"{k}.{r}"
                for k in ("requests", "limits")
                for r in ("cpu", "memory")
                if r not in (requests if k == "requests" else limits)
            ]
            if missing:
                problems.append(f"{path}: missing {missing}")
                continue
            request = parse_quantity(f"{path}.requests.memory", requests["memory"], kind="bytes")
            limit = parse_quantity(f"{path}.limits.memory", limits["memory"], kind="bytes")
            if request != limit:
                problems.append(f"{path}: memory request {requests['memory']} != limit {limits['memory']}")
            sized[path] = f"cpu {requests['cpu']}/{limits['cpu']}, memory {limits['memory']}"
        classes = {p["name"] for p in values.get("priorityClasses") or ()}
        for name in CONTROL_PLANE:
            section = values.get(name) or {}
            if int(section.get("replicas") or 1) < 2:
                problems.append(f"{name}: fewer than 2 replicas in production")
            if not section.get("topologySpreadConstraints"):
                problems.append(f"{name}: no topologySpreadConstraints")
            if section.get("priorityClassName") not in classes:
                problems.append(f"{name}: priorityClassName is not one of {sorted(classes)}")
        for name in ("scheduler", "apiServer", "pgbouncer"):
            if not _get(values, f"{name}.podDisruptionBudget.enabled"):
                problems.append(f"{name}: no PodDisruptionBudget")
        if problems:
            raise ValueError("; ".join(problems))
        for path, size in sized.items():
            print(f"{path:<36} {size}")
        return {"sized": sized}

    @task
    def check_pod_template() -> dict[str, Any]:
        import kubernetes_validate
        import yaml

        from containerkit.kubernetes import helm
        from containerkit.policy.engine import evaluate_pod
        from containerkit.policy.model import Severity

        pod = yaml.safe_load(helm.resolve_pod_template(_production_values()["podTemplate"]))
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
        findings = evaluate_pod(pod, rule_sets=["pss-restricted", "hardened"])
        blocking = [f"{f.rule_id}: {f.message}" for f in findings if f.severity.rank >= Severity.WARNING.rank]
        if blocking:
            raise ValueError(f"worker pod template: {blocking}")
        print(f"worker pod template valid on {KUBERNETES_VERSIONS}; advice: {[f.message for f in findings]}")
        return {"findings": [f.rule_id for f in findings]}

    @task
    def check_integrations() -> dict[str, Any]:
        values = _production_values()
        expect = {
            "postgresql.enabled": False,
            "pgbouncer.enabled": True,
            "executor": "KubernetesExecutor",
            "networkPolicies.enabled": True,
            "dags.gitSync.enabled": True,
        }
        problems = [
            f"{p} is {_get(values, p)!r}, expected {v!r}" for p, v in expect.items() if _get(values, p) != v
        ]
        if _get(values, "statsd.enabled") is False:  # on by default in the chart
            problems.append("statsd is disabled: no scheduler and executor metrics")
        secrets = {
            "metadata DB connection": _get(values, "data.metadataSecretName"),
            "Fernet key": values.get("fernetKeySecretName"),
            "JWT secret": values.get("jwtSecretName"),
            "API secret key": values.get("apiSecretKeySecretName"),
            "git-sync credentials": _get(values, "dags.gitSync.credentialsSecret"),
            "PgBouncer config": _get(values, "pgbouncer.configSecretName"),
        }
        problems += [f"{what}: no Secret name" for what, name in secrets.items() if not name]
        for literal in ("fernetKey", "jwtSecret", "apiSecretKey", "webserverSecretKey"):
            if values.get(literal):
                problems.append(f"{literal} is set as a literal: use its *SecretName form")
        if _get(values, "data.metadataConnection.pass"):
            problems.append("data.metadataConnection carries a password: use data.metadataSecretName")
        logs_kept = _get(values, "logs.persistence.enabled") or _get(values, "config.logging.remote_logging")
        if not logs_kept:
            problems.append("task logs are neither persisted nor shipped to remote logging")
        pulls = [
            p.get("name", p) if isinstance(p, Mapping) else p for p in values.get("imagePullSecrets") or ()
        ]
        if not pulls:
            problems.append("no imagePullSecrets")
        if problems:
            raise ValueError("; ".join(problems))
        print("create these Secrets in the release namespace before installing:")
        for what, name in {**secrets, "registry": ", ".join(pulls)}.items():
            print(f"  {name:<32} {what}")
        return {"secrets": secrets, "pull_secrets": pulls}

    @task
    def helm_gate(*_: Any) -> None:
        from airflow.sdk.exceptions import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster and needs:helm: `helm upgrade --install --atomic` runs in a pod from "
                f"{HELM_IMAGE} that pulls chart {CHART} {CHART_VERSION} from {CHART_REPO} and waits for the "
                "release to become Ready; the local Docker-backed API has no registry access, controllers "
                "or chart repository. Set CONTAINERKIT_REAL_CLUSTER=1 with kubernetes_default on a cluster."
            )

    @task
    def publish_values() -> str:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import V1ConfigMap, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        core = KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client
        data = {n: (HELM_VALUES_DIR / n).read_text() for n in ("values.yaml", "values-production.yaml")}
        body = V1ConfigMap(metadata=V1ObjectMeta(name=VALUES_CONFIG_MAP), data=data)
        try:
            core.replace_namespaced_config_map(VALUES_CONFIG_MAP, NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_config_map(NAMESPACE, body)
        return VALUES_CONFIG_MAP

    helm_upgrade = SecureKubernetesPodOperator(
        task_id="helm_upgrade",
        name="helm-upgrade-production",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        spec=ContainerSpec(
            HELM_IMAGE,
            command=[
                "helm",
                "upgrade",
                "--install",
                RELEASE,
                CHART,
                "--repo",
                CHART_REPO,
                "--version",
                CHART_VERSION,
                "--namespace",
                HELM_NAMESPACE,
                "--atomic",
                "--wait",
                "--timeout",
                "20m",
                "-f",
                "/values/values.yaml",
                "-f",
                "/values/values-production.yaml",
            ],
            env={"HELM_CACHE_HOME": "/tmp/helm/cache", "HELM_CONFIG_HOME": "/tmp/helm/config"},
            config_maps=[
                ConfigMapRef(VALUES_CONFIG_MAP, "values.yaml", path="/values/values.yaml"),
                ConfigMapRef(
                    VALUES_CONFIG_MAP, "values-production.yaml", path="/values/values-production.yaml"
                ),
            ],
            resources="s",
            security=HELM_PROFILE,
            service_account="helm-deployer",
            active_deadline_seconds=1800,
        ),
        policy_exemptions={"HRD-008": "helm creates and updates the release's objects through the API"},
        get_logs=True,
    )

    checks = [
        render_production_values(),
        check_chart_keys(),
        check_security(),
        check_resources(),
        check_pod_template(),
        check_integrations(),
    ]
    gate = helm_gate()
    checks >> gate >> publish_values() >> helm_upgrade


enterprise_helm()
