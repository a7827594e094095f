"""Testing Helm values: keys vs the chart, types and lint rules, pod-template policy, helm lint and template.

**Problem.** A values file for ``apache-airflow/airflow`` fails late: a misspelt key is silently ignored by
``helm template`` (the chart's schema only guards some sections), a quantity like ``1 GB`` is refused by
the API server at install time, a literal password lands in a ConfigMap, and the worker pod template the
KubernetesExecutor uses is never looked at until a task pod is refused by Pod Security admission.

**Practice.** Test the values like code, in CI, before ``helm upgrade``: every key path must exist in the
chart's defaults, every quantity must parse, containerkit's ``helm-values`` rules must pass, the worker
pod template must validate strictly and meet ``pss-restricted``; then ``helm lint --strict`` and
``helm template`` with the pinned chart, and the rendered manifests validated strictly. Each check is
proven to fail on a known-bad values file.

**Where each sub-point is covered.**

- values validation: ``validate_values`` walks both values layers against the chart defaults (unknown
  keys), parses every ``resources`` quantity with the Kubernetes parser, and runs the ``helm-values``
  lint rules; ``bad_values_are_caught`` asserts a misspelt key, a bad quantity and a plaintext password
  are each reported.
- pod-template policy: ``pod_template_policy`` resolves ``podTemplate`` to the pod it stands for,
  validates it strictly against Kubernetes 1.29 / 1.33 / 1.37 and runs ``pss-restricted`` + ``hardened``.
- helm lint / helm template: ``helm_available`` (task-level ``needs:helm``) checks for the helm image and a
  local copy of the chart; ``helm_lint_template`` runs ``helm lint --strict`` and ``helm template`` in a
  hardened container (read-only mounts, uid 50000, no capabilities); ``validate_rendered`` validates every
  rendered manifest strictly (the chart-testing step ``ct lint`` / ``helm unittest`` would add more).
- ``remove_output`` deletes the rendered manifests.

**When copying.** Set ``CONTAINERKIT_HELM_VALUES_DIR`` (``values.yaml`` and ``values-production.yaml``),
``CONTAINERKIT_HELM_CHART_VALUES`` (the output of ``helm show values apache-airflow/airflow --version
1.18.0``), ``CONTAINERKIT_HELM_CHART`` (the chart unpacked by ``helm pull ... --untar``) and
``CONTAINERKIT_HELM_IMAGE`` (default ``alpine/helm:3.16.4``).

**Needs.** The values checks run anywhere. The helm part needs the helm image on the Docker engine and
the chart (``needs:helm``): without them ``helm_available`` skips it with the reason; ``needs:docker``
for that container.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task
from docker.types import Mount

# The repository (the compose stack mounts the parts these tasks read under CONTAINERKIT_PROJECT_DIR).
REPO = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
VALUES_DIR = Path(os.environ.get("CONTAINERKIT_HELM_VALUES_DIR", REPO / "helm-values"))
CHART_VALUES = Path(
    os.environ.get("CONTAINERKIT_HELM_CHART_VALUES", REPO / "tests/fixtures/helm/airflow-chart-values.yaml")
)
CHART_DIR = os.environ.get("CONTAINERKIT_HELM_CHART", "/opt/charts/airflow")
HELM_IMAGE = os.environ.get("CONTAINERKIT_HELM_IMAGE", "alpine/helm:3.16.4")
OUTPUT_DIR = "/tmp/containerkit-88-07-05"
LAYERS = ("values.yaml", "values-production.yaml")
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
FREE_FORM = {"config"}  # airflow.cfg sections: any Airflow option is a valid key
COMMENTED_IN_CHART = {"dags.gitSync.credentialsSecret"}  # in the chart's schema, commented out in defaults
LABELS = {"containerkit.example": "88_07_05"}


def _load(path: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping of values")
    return data


def unknown_keys(values: Mapping[str, Any], chart: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Key paths of ``values`` the chart's defaults do not have (free-form maps are not descended)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in FREE_FORM or path in COMMENTED_IN_CHART:
            continue
        if key not in chart:
            yield path
        elif isinstance(chart[key], Mapping) and chart[key] and isinstance(value, Mapping):
            yield from unknown_keys(value, chart[key], f"{path}.")


def bad_quantities(values: Any, path: str = "") -> Iterator[str]:
    """``resources`` requests/limits that the Kubernetes quantity parser refuses."""
    from kubernetes.utils import parse_quantity

    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if key in ("requests", "limits") and isinstance(value, Mapping) and path.endswith("resources"):
                for name, quantity in value.items():
                    try:
                        parse_quantity(quantity)
                    except (ValueError, TypeError):
                        yield f"{here}.{name}={quantity!r}"
            else:
                yield from bad_quantities(value, here)


def lint_values(values: Mapping[str, Any], folder: Path) -> list[str]:
    """containerkit's helm-values rules on one merged values file: error findings as 'ID path'."""
    import yaml

    from containerkit.policy.lint import lint_paths

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "values.yaml").write_text(yaml.safe_dump(dict(values)))
    result = lint_paths([folder])
    return sorted(f"{f.rule_id} {f.path}" for f in result.findings if f.severity.value == "error")


def problems(layers: Mapping[str, Mapping[str, Any]], chart: Mapping[str, Any], scratch: Path) -> list[str]:
    from containerkit.policy.sources.helm_values import merge

    found = [f"unknown key {p} ({name})" for name, v in layers.items() for p in unknown_keys(v, chart)]
    found += [f"bad quantity {q} ({name})" for name, v in layers.items() for q in bad_quantities(v)]
    merged: dict[str, Any] = {}
    for values in layers.values():
        merged = merge(merged, values)
    found += [f"lint {finding}" for finding in lint_values(merged, scratch)]
    return found


@dag(
    dag_id="88_07_05_helm_testing",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "testing", "intermediate", "success", "needs:docker", "needs:helm"],
    doc_md=__doc__,
)
def helm_testing() -> None:
    @task
    def validate_values() -> dict[str, Any]:
        import tempfile

        chart = _load(CHART_VALUES)
        layers = {name: _load(VALUES_DIR / name) for name in LAYERS}
        with tempfile.TemporaryDirectory(prefix="ck-helm-") as scratch:
            found = problems(layers, chart, Path(scratch))
        if found:
            raise AssertionError(f"values in {VALUES_DIR} fail validation: {found}")
        return {"layers": list(LAYERS), "chart_values": str(CHART_VALUES), "problems": []}

    @task
    def bad_values_are_caught() -> list[str]:
        """Each check must fail on the mistake it exists for; a check that cannot fail tests nothing."""
        import tempfile

        chart = _load(CHART_VALUES)
        bad = {
            "executor": "KubernetesExecutor",
            "scheduler": {"replica": 2, "resources": {"limits": {"memory": "1 GB"}}},
            "data": {"metadataConnection": {"user": "airflow", "pass": "hunter2", "host": "db"}},
        }
        with tempfile.TemporaryDirectory(prefix="ck-helm-") as scratch:
            found = problems({"bad.yaml": bad}, chart, Path(scratch))
        for expected in (
            "unknown key scheduler.replica (bad.yaml)",
            "bad quantity scheduler.resources.limits.memory='1 GB' (bad.yaml)",
        ):
            if expected not in found:
                raise AssertionError(f"{expected!r} not reported; got {found}")
        if not any(p.startswith("lint HLM-005") for p in found):
            raise AssertionError(f"a plaintext metadata password was not flagged HLM-005: {found}")
        return found

    @task
    def pod_template_policy() -> dict[str, Any]:
        import kubernetes_validate
        import yaml

        from containerkit.kubernetes.helm import resolve_pod_template
        from containerkit.policy.engine import evaluate_pod

        template = _load(VALUES_DIR / "values.yaml")["podTemplate"]
        pod = yaml.safe_load(resolve_pod_template(template))
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
        errors = sorted(
            f"{f.rule_id} {f.path}"
            for f in evaluate_pod(pod, rule_sets=["pss-restricted", "hardened"])
            if f.severity.value == "error"
        )
        if errors:
            raise AssertionError(f"the worker pod template breaks policy: {errors}")
        return {"validated_against": list(KUBERNETES_VERSIONS), "containers": len(pod["spec"]["containers"])}

    @task
    def helm_available() -> str:
        import docker
        from airflow.sdk.exceptions import AirflowSkipException

        try:
            docker.from_env().images.get(HELM_IMAGE)
        except docker.errors.ImageNotFound:
            raise AirflowSkipException(
                f"needs:helm: image {HELM_IMAGE} is not on the Docker engine: pull it (or set "
                "CONTAINERKIT_HELM_IMAGE to a local helm image) to run helm lint / helm template"
            ) from None
        if not (Path(CHART_DIR) / "Chart.yaml").is_file():
            raise AirflowSkipException(
                f"needs:helm: no chart at {CHART_DIR}: `helm pull apache-airflow/airflow --version 1.18.0 "
                "--untar --untardir <dir>` and set CONTAINERKIT_HELM_CHART=<dir>/airflow"
            )
        out = Path(OUTPUT_DIR)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        out.chmod(0o777)  # written by the helm container's uid 50000
        return HELM_IMAGE

    helm_lint_template = SecureDockerOperator(
        task_id="helm_lint_template",
        image=HELM_IMAGE,
        entrypoint=["/bin/sh", "-c"],
        command=[
            "set -e; export HELM_CACHE_HOME=/tmp/helm HELM_CONFIG_HOME=/tmp/helm HELM_DATA_HOME=/tmp/helm; "
            "helm lint --strict /chart -f /values/values.yaml -f /values/values-production.yaml; "
            "helm template airflow /chart --namespace airflow "
            "-f /values/values.yaml -f /values/values-production.yaml > /out/rendered.yaml; "
            "grep -c '^kind:' /out/rendered.yaml"
        ],
        mounts=[
            Mount(target="/chart", source=CHART_DIR, type="bind", read_only=True),
            Mount(target="/values", source=str(VALUES_DIR), type="bind", read_only=True),
            Mount(target="/out", source=OUTPUT_DIR, type="bind"),
        ],
        resources="s",
        labels=LABELS,
    )

    @task
    def validate_rendered(count: str) -> dict[str, Any]:
        import kubernetes_validate
        import yaml

        documents = [d for d in yaml.safe_load_all((Path(OUTPUT_DIR) / "rendered.yaml").read_text()) if d]
        if len(documents) != int(count.strip()) or not documents:
            raise AssertionError(
                f"helm template rendered {count.strip()} kinds but {len(documents)} documents"
            )
        for document in documents:
            kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)
        return {"manifests": len(documents), "kinds": sorted({d["kind"] for d in documents})}

    @task(trigger_rule="all_done")
    def remove_output() -> None:
        shutil.rmtree(OUTPUT_DIR, ignore_errors=True)

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """Skips are fine (needs:helm); a failed check anywhere fails the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a Helm check failed: read the failed task's log")

    checks = [validate_values(), bad_values_are_caught(), pod_template_policy()]
    available = helm_available()
    available >> helm_lint_template
    rendered = validate_rendered(helm_lint_template.output)
    rendered >> remove_output()
    [*checks, available, helm_lint_template, rendered] >> fail_run_if_a_task_failed()


helm_testing()
