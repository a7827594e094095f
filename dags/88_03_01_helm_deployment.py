"""Helm deployment: render the chart values from the factory, check them, diff, then upgrade --atomic.

**Problem.** A hand-edited ``values.yaml`` for the official ``apache-airflow/airflow`` chart drifts: keys
misspelt or dropped by a chart upgrade are refused by the chart's schema at install time (or silently
ignored), the worker pod template falls behind the task pods' hardening, and ``helm upgrade`` without a
pinned chart version and ``--atomic`` can leave a half-upgraded release.

**Practice, per sub-point:**

* *values.yaml customization* (``render_values``): the values containerkit owns (worker
  ``podTemplate``, every component's ``securityContexts`` and ``resources``) are rendered by
  ``containerkit.kubernetes.helm.render_values`` from the same profile and presets as task pods, with the
  DAG param ``worker_resources`` as the deliberate customization, and layered under the hand-written
  overlay (``helm-values/values.yaml.in``); an overlay that sets a rendered path is refused (one
  source per setting: the task proves the refusal).
* *chart installation* (``check_chart_keys``): every key path is checked against the chart's own default
  values (``helm show values`` of the pinned version, or a saved copy), and the worker pod template,
  resolved, validates strictly against several Kubernetes versions and passes policy.
* *upgrade procedures* (``diff_against_release``, ``publish_values``, ``helm_upgrade``,
  ``upgrade_failed``, ``rollback_on_failure``, ``verify_release``): the rendered values are diffed
  against the deployed release's values, read from Helm's own release record (the
  ``sh.helm.release.v1.<release>.v<N>`` Secret, no helm binary needed; with no release yet, against the
  committed ``values.yaml``); then a hardened pod (restricted profile, service-account token mounted
  only because helm calls the API) runs ``helm upgrade --install --atomic --wait`` with the values from
  a ConfigMap. ``--atomic`` rolls a failed upgrade back; ``rollback_on_failure`` runs ``helm rollback``
  when the upgrade pod itself died (release left ``pending-upgrade``); ``verify_release`` reads the
  release record again.
* *chart versioning* (``diff_against_release``): the chart version is pinned (``CHART_VERSION``); a
  downgrade against the deployed release is refused, a major-version change is reported.

**Copying.** Set ``CONTAINERKIT_HELM_VALUES_DIR`` (your values folder), ``CONTAINERKIT_HELM_CHART_VALUES``
(the output of ``helm show values apache-airflow/airflow --version <CHART_VERSION>``; or have helm on
PATH), ``CONTAINERKIT_HELM_RELEASE`` / ``CONTAINERKIT_HELM_NAMESPACE``, ``CONTAINERKIT_HELM_IMAGE`` (a
pinned helm image in your registry) and ``CONTAINERKIT_NAMESPACE`` (where the helm pod runs, with a
ServiceAccount ``helm-deployer`` bound to the ``admin`` ClusterRole in the release namespace).

**Needs.** A Kubernetes API (``needs:kubernetes``; the tests use the local Docker-backed one from
``containerkit.testing``). ``publish_values``, ``helm_upgrade``, ``rollback_on_failure`` and
``verify_release`` need a real cluster that can pull the helm image and reach the chart repository
(``needs:cluster``: ``CONTAINERKIT_REAL_CLUSTER=1``) and helm (``needs:helm``, in the pod's image);
without them ``helm_gate`` skips them with the reason.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import gzip
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import Param, dag, get_current_context, task

from containerkit.spec import ConfigMapRef, ContainerSpec, SecurityProfile

NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
HELM_VALUES_DIR = Path(
    os.environ.get("CONTAINERKIT_HELM_VALUES_DIR", Path(__file__).resolve().parent.parent / "helm-values")
)
CHART_VALUES = os.environ.get("CONTAINERKIT_HELM_CHART_VALUES", "")
# The repository's saved copy of the chart's default values, used when neither of the above is set.
SAVED_CHART_VALUES = Path(__file__).resolve().parent.parent / "tests/fixtures/helm/airflow-chart-values.yaml"
CHART = "airflow"
CHART_REPO = "https://airflow.apache.org"
CHART_VERSION = os.environ.get("CONTAINERKIT_HELM_CHART_VERSION", "1.18.0")
RELEASE = os.environ.get("CONTAINERKIT_HELM_RELEASE", "airflow")
HELM_NAMESPACE = os.environ.get("CONTAINERKIT_HELM_NAMESPACE", "airflow")
HELM_IMAGE = os.environ.get("CONTAINERKIT_HELM_IMAGE", "alpine/helm:3.16.4")
VALUES_CONFIG_MAP = f"{RELEASE}-helm-values"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
# Paths the chart accepts although its default values do not spell them out, and free-form subtrees.
ALLOWED_EXTRA_PATHS = {"dags.gitSync.credentialsSecret": "commented out in the defaults, in the chart schema"}
FREE_FORM_PATHS = {"config": "airflow.cfg sections: any Airflow option"}

# The helm pod: restricted, sized, its token mounted because helm talks to the API server.
HELM_PROFILE = dataclasses.replace(SecurityProfile(), automount_service_account_token=True)
HELM_ENV = {
    # Read-only root filesystem: helm keeps its cache and config under the writable /tmp.
    "HELM_CACHE_HOME": "/tmp/helm/cache",
    "HELM_CONFIG_HOME": "/tmp/helm/config",
    "HELM_DATA_HOME": "/tmp/helm/data",
}
HELM_EXEMPTIONS = {"HRD-008": "helm creates and updates the release's objects through the Kubernetes API"}


def _chart_defaults() -> tuple[dict[str, Any], str]:
    """The chart's default values and where they came from."""
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
    """Key paths of ``values`` the chart does not define (descending while the default is a mapping)."""
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


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, Mapping) and values:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): values}


def _deployed_release(core: Any) -> dict[str, Any] | None:
    """The deployed release from Helm's release Secret: ``{revision, chart_version, values}``."""
    secrets = core.list_namespaced_secret(
        HELM_NAMESPACE, label_selector=f"owner=helm,name={RELEASE},status=deployed"
    ).items
    if not secrets:
        return None
    latest = max(secrets, key=lambda s: int((s.metadata.labels or {}).get("version", "0")))
    # Secret data is base64 (the API), of Helm's base64, of gzip, of the release JSON.
    raw = base64.b64decode(base64.b64decode(latest.data["release"]))
    release = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return {
        "revision": int(release["version"]),
        "chart_version": release["chart"]["metadata"]["version"],
        "values": release.get("config") or {},
    }


def _real_cluster_or_skip() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
        raise AirflowSkipException(
            "needs:cluster and needs:helm: `helm upgrade --install --atomic` runs in a pod from "
            f"{HELM_IMAGE} "
            f"that pulls chart {CHART} {CHART_VERSION} from {CHART_REPO} and waits for Deployments to become "
            "Ready; the local Docker-backed API has no registry access, no controllers and no chart "
            "repository. Set CONTAINERKIT_REAL_CLUSTER=1 with kubernetes_default pointing at a real cluster."
        )


def _helm_pod(args: list[str]) -> ContainerSpec:
    return ContainerSpec(
        HELM_IMAGE,
        command=["helm", *args],
        env=HELM_ENV,
        config_maps=[ConfigMapRef(VALUES_CONFIG_MAP, "values.yaml", path="/values/values.yaml")],
        resources="s",
        security=HELM_PROFILE,
        service_account="helm-deployer",
        labels={"app.kubernetes.io/name": "helm-deployer", "app.kubernetes.io/part-of": "airflow"},
        active_deadline_seconds=1200,
    )


@dag(
    dag_id="88_03_01_helm_deployment",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:kubernetes", "needs:cluster", "needs:helm"],
    params={
        "worker_resources": Param(
            "l", enum=["s", "m", "l", "xl"], description="Resource preset of KubernetesExecutor worker pods."
        ),
    },
    doc_md=__doc__,
)
def helm_deployment() -> None:
    @task
    def render_values() -> str:
        """Factory-rendered values under the hand-written overlay; the overlay may not set rendered paths."""
        import yaml

        from containerkit.errors import SpecError
        from containerkit.kubernetes import helm

        overlay = yaml.safe_load((HELM_VALUES_DIR / "values.yaml.in").read_text())
        preset = get_current_context()["params"]["worker_resources"]
        snippet = helm.render_values(
            worker_resources=preset, image_pull_secrets=helm.overlay_pull_secrets(overlay)
        )
        try:
            helm.merge_overlay(
                snippet, {**overlay, "scheduler": {"resources": {"limits": {"memory": "64Gi"}}}}
            )
        except SpecError as exc:
            print(f"an overlay that sets a rendered path is refused, as it must be: {exc}")
        else:
            raise ValueError("merge_overlay accepted an overlay that sets scheduler.resources")
        values = helm.merge_overlay(snippet, overlay)
        text = helm.dump_values(values, header=f"Rendered by 88_03_01 (worker preset {preset!r})")
        worker = yaml.safe_load(helm.resolve_pod_template(values["podTemplate"]))
        limits = worker["spec"]["containers"][0]["resources"]["limits"]
        print(f"rendered {len(text.splitlines())} lines; worker pod limits {limits}")
        return text

    @task
    def check_chart_keys(values_text: str) -> dict[str, Any]:
        """Every key path exists in the chart; the worker pod template is valid and policy-clean."""
        import kubernetes_validate
        import yaml

        from containerkit.kubernetes import helm
        from containerkit.policy.engine import evaluate_pod
        from containerkit.policy.model import Severity

        values = yaml.safe_load(values_text)
        chart, source = _chart_defaults()
        if list(_unknown_paths({"scheduler": {"replica": 2}}, chart)) != ["scheduler.replica"]:
            raise ValueError("the key check no longer catches a misspelt key: fix _unknown_paths")
        unknown = list(_unknown_paths(values, chart))
        if unknown:
            raise ValueError(f"keys the chart ({source}) does not define: {unknown}")
        pod = yaml.safe_load(helm.resolve_pod_template(values["podTemplate"]))
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
        findings = evaluate_pod(pod, rule_sets=["pss-restricted", "hardened"])
        blocking = [
            f"{f.rule_id} {f.path}: {f.message}" for f in findings if f.severity.rank >= Severity.WARNING.rank
        ]
        if blocking:
            raise ValueError(f"worker pod template policy findings: {blocking}")
        print(
            f"{len(_flatten(values))} value paths known to the chart ({source}); worker pod template valid "
            f"on Kubernetes {', '.join(KUBERNETES_VERSIONS)}, policy: {[f.rule_id for f in findings]}"
        )
        return {"chart_values": source, "paths": len(_flatten(values))}

    @task
    def diff_against_release(values_text: str) -> dict[str, Any]:
        """What this upgrade changes, against the deployed release (or the committed values.yaml)."""
        import yaml
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from packaging.version import Version

        values = yaml.safe_load(values_text)
        deployed = _deployed_release(KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client)
        if deployed is None:
            baseline_name = f"committed {HELM_VALUES_DIR.name}/values.yaml (no release {RELEASE!r} deployed)"
            baseline = yaml.safe_load((HELM_VALUES_DIR / "values.yaml").read_text())
            action = "install"
        else:
            baseline_name = f"release {RELEASE!r} revision {deployed['revision']}"
            baseline = deployed["values"]
            action = "upgrade"
            old, new = Version(deployed["chart_version"]), Version(CHART_VERSION)
            if new < old:
                raise ValueError(
                    f"chart {CHART_VERSION} is older than the deployed {old}: a downgrade is not an upgrade; "
                    "roll back with `helm rollback` instead"
                )
            if new.major != old.major:
                print(f"MAJOR chart upgrade {old} -> {new}: read the chart's UPGRADING notes first")
        before, after = _flatten(baseline), _flatten(values)
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        diff = difflib.unified_diff(
            yaml.safe_dump(baseline, sort_keys=True).splitlines(),
            yaml.safe_dump(values, sort_keys=True).splitlines(),
            baseline_name,
            "rendered",
            lineterm="",
            n=1,
        )
        print("\n".join(list(diff)[:200]))
        print(f"{action} against {baseline_name}: {len(changed)} changed path(s): {changed[:30]}")
        return {"action": action, "baseline": baseline_name, "changed_paths": changed}

    @task
    def helm_gate(diff: dict[str, Any]) -> dict[str, Any]:
        _real_cluster_or_skip()
        return diff

    @task
    def publish_values(values_text: str) -> str:
        """The values as a ConfigMap beside the helm pod (it names Secrets, it holds none)."""
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import V1ConfigMap, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        core = KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client
        body = V1ConfigMap(metadata=V1ObjectMeta(name=VALUES_CONFIG_MAP), data={"values.yaml": values_text})
        try:
            core.replace_namespaced_config_map(VALUES_CONFIG_MAP, NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_config_map(NAMESPACE, body)
        return VALUES_CONFIG_MAP

    common: dict[str, Any] = {
        "namespace": NAMESPACE,
        "kubernetes_conn_id": KUBERNETES_CONN_ID,
        "policy_exemptions": HELM_EXEMPTIONS,
        "get_logs": True,
    }
    helm_upgrade = SecureKubernetesPodOperator(
        task_id="helm_upgrade",
        name="helm-upgrade",
        spec=_helm_pod(
            [
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
                "15m",
                "--history-max",
                "10",
                "-f",
                "/values/values.yaml",
            ]
        ),
        **common,
    )
    rollback_on_failure = SecureKubernetesPodOperator(
        task_id="rollback_on_failure",
        name="helm-rollback",
        # Revision 0 is "the previous one"; --atomic already rolled back unless the pod itself died.
        spec=_helm_pod(
            ["rollback", RELEASE, "0", "--namespace", HELM_NAMESPACE, "--wait", "--timeout", "10m"]
        ),
        **common,
    )

    @task(trigger_rule="one_failed")
    def upgrade_failed() -> None:
        """Let the rollback run only when the upgrade pod itself failed (not when it never ran)."""
        from airflow.sdk.exceptions import AirflowSkipException

        state = get_current_context()["dag_run"].get_task_instance("helm_upgrade").state
        if str(state) != "failed":
            raise AirflowSkipException(f"helm_upgrade is {state}, not failed: nothing to roll back")

    @task
    def verify_release() -> dict[str, Any]:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        deployed = _deployed_release(KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client)
        if deployed is None or deployed["chart_version"] != CHART_VERSION:
            raise ValueError(f"release {RELEASE!r} is not deployed at chart {CHART_VERSION}: {deployed}")
        return {k: v for k, v in deployed.items() if k != "values"}

    values = render_values()
    checked = check_chart_keys(values)
    gate = helm_gate(diff_against_release(values))
    checked >> gate
    published = publish_values(values)
    gate >> published >> helm_upgrade >> verify_release()
    helm_upgrade >> upgrade_failed() >> rollback_on_failure


helm_deployment()
