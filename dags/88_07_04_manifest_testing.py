"""Testing Kubernetes manifests: strict schemas on several versions, a conftest-style policy gate, dry run.

**Problem.** A manifest that ``kubectl apply`` accepted on one cluster fails on the next: a field the
older API server does not know (native sidecars before 1.28), a typo that a lenient parser drops
(``restartPolicyy``), a string where an integer belongs, a pod that Pod Security admission refuses in a
``restricted`` namespace. Found at deploy time, each is an outage.

**Practice.** Every manifest the project ships or renders is checked in CI, before any cluster sees it:
strict OpenAPI schema validation (``kubernetes-validate``, kubeval's successor) against every Kubernetes
version in support, the policy rules as a gate with conftest's output and exit semantics, and a
server-side dry run (``dryRun=All``: admission and defaulting, nothing stored) against a real API.

**Where each sub-point is covered.**

- kubeval / schema validation: ``schema_validation`` validates ``helm-values/manifests/*.yaml`` and the
  rendered task pod (``SecureKubernetesPodOperator``'s renderer, with a native sidecar) strictly against
  each version in ``kubernetes_versions``, reports the oldest version all of them pass, and asserts a
  typo, a wrong type and a sidecar on 1.27 are each refused.
- conftest policies: ``policy_gate`` runs containerkit's rules over the same files and prints
  ``FAIL``/``WARN`` lines per file as conftest does; an error fails the task; ``policy_gate_catches``
  asserts a privileged pod fails it with ``PSS-B-002``.
- dry-run testing: ``server_side_dry_run`` creates each namespaced object with ``dryRun=All`` through
  ``kubernetes_default`` and asserts the server answered with defaults filled in and stored nothing. An
  API that stores the object anyway does not implement dry run (the local Docker-backed test double,
  ``containerkit.testing``): the task then removes it and skips with that reason (``needs:cluster``).

**When copying.** Point ``CONTAINERKIT_MANIFESTS_DIR`` at your manifests and set the versions you run;
keep the gate in CI before ``kubectl apply`` / ``helm upgrade``.

**Needs.** ``kubernetes_default`` (``needs:kubernetes``); the dry run needs a real API server
(``needs:cluster``, ``CONTAINERKIT_REAL_CLUSTER=1``). The other checks need no cluster.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
MANIFESTS_DIR = Path(
    os.environ.get(
        "CONTAINERKIT_MANIFESTS_DIR", Path(__file__).resolve().parent.parent / "helm-values/manifests"
    )
)
KUBERNETES_CONN_ID = "kubernetes_default"
ALL_VERSIONS = ("1.25", "1.26", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35")


def _task_pod() -> dict[str, Any]:
    """The pod a SecureKubernetesPodOperator task renders, with a native sidecar (a >= 1.28 field)."""
    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod
    from containerkit.spec import Container, ContainerSpec, Probe, Probes

    spec = ContainerSpec(
        image=PYTHON_IMAGE,
        command=["python", "-c", "print('report')"],
        resources="xs",
        sidecars=[
            Container(
                name="proxy",
                image=PYTHON_IMAGE,
                command=["python", "-m", "http.server", "8081"],
                probes=Probes(startup=Probe.tcp(8081)),
            )
        ],
    )
    pod = to_dict(render_pod(spec, name="manifest-test", namespace=NAMESPACE))
    return {"apiVersion": "v1", "kind": "Pod", **pod}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    import yaml

    docs = [("rendered/task-pod.yaml", _task_pod())]
    for path in sorted(MANIFESTS_DIR.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _write(folder: Path, docs: list[tuple[str, dict[str, Any]]]) -> None:
    import yaml

    by_file: dict[str, list[dict[str, Any]]] = {}
    for name, doc in docs:
        by_file.setdefault(Path(name).name, []).append(doc)
    for name, items in by_file.items():
        (folder / name).write_text(yaml.safe_dump_all(items, sort_keys=False))


def _gate(folder: Path) -> tuple[list[str], list[str]]:
    """conftest-style: (FAIL lines, WARN lines) for every file under ``folder``."""
    from containerkit.policy.lint import lint_paths

    result = lint_paths([folder])
    if result.errors:
        raise AssertionError(f"cannot load manifests: {result.errors}")
    fail, warn = [], []
    for f in result.findings:
        line = f"{Path(f.obj.file or '?').name} - {f.obj.label()} - [{f.rule_id}] {f.message}"
        if f.severity.value == "error":
            fail.append(f"FAIL - {line}")
        elif f.severity.value == "warning":
            warn.append(f"WARN - {line}")
    return fail, warn


@dag(
    dag_id="88_07_04_manifest_testing",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "testing", "intermediate", "success", "needs:kubernetes", "needs:cluster"],
    params={
        "kubernetes_versions": Param(
            ["1.29", "1.33", "1.37"], type="array", description="Versions every manifest must validate on."
        ),
    },
    doc_md=__doc__,
)
def manifest_testing() -> None:
    @task
    def schema_validation() -> dict[str, Any]:
        import kubernetes_validate as kv

        versions = get_current_context()["params"]["kubernetes_versions"]
        docs = _documents()
        failures = []
        for name, doc in docs:
            for version in versions:
                try:
                    kv.validate(doc, version, strict=True)
                except kv.ValidationError as exc:
                    failures.append(f"{name} {doc['kind']} on {version}: {str(exc).splitlines()[0]}")
        if failures:
            raise AssertionError("strict schema validation failed:\n" + "\n".join(failures))

        def passes(doc: dict[str, Any], version: str) -> bool:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError:
                return False
            return True

        oldest = next(v for v in ALL_VERSIONS if all(passes(d, v) for _, d in docs))
        pod = _task_pod()
        typo = {**pod, "spec": {**pod["spec"], "restartPolicyy": "Never"}}
        wrong_type = {**pod, "spec": {**pod["spec"], "activeDeadlineSeconds": "600"}}
        refused = {
            "typo": not passes(typo, versions[-1]),
            "wrong_type": not passes(wrong_type, versions[-1]),
            "sidecar_on_1.27": not passes(pod, "1.27"),
        }
        if not all(refused.values()):
            raise AssertionError(f"strict validation let a bad manifest through: {refused}")
        print(f"{len(docs)} manifests valid on {versions}; oldest version all pass: {oldest}")
        return {
            "manifests": [f"{n}:{d['kind']}" for n, d in docs],
            "oldest_version": oldest,
            "refused": refused,
        }

    @task
    def policy_gate() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="ck-manifests-") as tmp:
            _write(Path(tmp), _documents())
            fail, warn = _gate(Path(tmp))
        for line in fail + warn:
            print(line)
        print(f"{len(fail)} failures, {len(warn)} warnings")
        if fail:
            raise AssertionError(f"policy gate: {len(fail)} failure(s)")
        return {"failures": 0, "warnings": len(warn)}

    @task
    def policy_gate_catches() -> list[str]:
        pod = _task_pod()
        base = dict(pod["spec"]["containers"][0])
        base["securityContext"] = {**base["securityContext"], "privileged": True}
        bad = {**pod, "spec": {**pod["spec"], "containers": [base]}}
        with tempfile.TemporaryDirectory(prefix="ck-manifests-") as tmp:
            _write(Path(tmp), [("privileged.yaml", bad)])
            fail, _ = _gate(Path(tmp))
        if not any("[PSS-B-002]" in line for line in fail):
            raise AssertionError(f"a privileged pod passed the gate: {fail}")
        return fail

    @task
    def server_side_dry_run() -> dict[str, Any]:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from airflow.sdk.exceptions import AirflowSkipException
        from kubernetes.client.exceptions import ApiException

        dynamic = KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client
        results: dict[str, Any] = {}
        for name, doc in _documents():
            if doc["kind"] != "Pod":  # namespaced objects of kinds this API serves; RBAC/quotas need rights
                continue
            body = {**doc, "metadata": {**doc["metadata"], "namespace": NAMESPACE}}
            answer = dynamic.create_namespaced_pod(NAMESPACE, body, dry_run="All")
            pod_name = answer.metadata.name
            try:
                dynamic.read_namespaced_pod(pod_name, NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            else:
                dynamic.delete_namespaced_pod(pod_name, NAMESPACE, grace_period_seconds=0)
                raise AirflowSkipException(
                    "needs:cluster: the API behind kubernetes_default stored the object sent with "
                    "dryRun=All, so it does not implement server-side dry run (the local Docker-backed "
                    "containerkit.testing API is such a test double); the object was deleted. Run with a "
                    "real cluster (CONTAINERKIT_REAL_CLUSTER=1) for admission and defaulting checks."
                )
            defaulted = {
                "dnsPolicy": answer.spec.dns_policy,
                "schedulerName": answer.spec.scheduler_name,
                "terminationMessagePath": answer.spec.containers[0].termination_message_path,
            }
            if not all(defaulted.values()):
                raise AssertionError(f"the dry run of {name} came back without server defaults: {defaulted}")
            results[name] = defaulted
        return results

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """A skipped dry run is fine (needs:cluster); a failed check fails the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a manifest check failed: read the failed task's log")

    checks = [schema_validation(), policy_gate(), policy_gate_catches()]
    dry_run = server_side_dry_run()
    checks >> dry_run
    [*checks, dry_run] >> fail_run_if_a_task_failed()


manifest_testing()
