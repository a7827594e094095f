"""Anti-pattern: running containers as root; caught by policy at parse, volume permissions fixed without it.

**Problem.** A container that runs as root turns every bug in the task (or its dependencies) into root
on a shared kernel: it can chown host-mounted files, write anywhere in a writable image and, with one
extra capability, escape. Teams keep root "because the volume is not writable otherwise", so the real
cause, a volume owned by root, is never fixed.

(This DAG also carries what ``88_04_01_policy_enforced_task`` showed: enforcement at parse, and a
per-task exemption that must name a rule and give its reason.)

**Practice.** Every task runs as a fixed non-root uid (containerkit's ``restricted`` profile: 50000:0,
no capabilities, read-only root filesystem). Policy refuses a root task when the DAG is parsed
(``policy_mode="enforce"``), and ``containerkit lint`` reports it in CI. A volume a non-root task must
write is made writable for its group: ``fsGroup`` on Kubernetes, or a one-shot permissions init step
on Docker that is root *with only ``CAP_CHOWN``* and carries a policy exemption naming its reason (the
only way past enforcement, and visible in lint output).

**Where each sub-point is covered.**

- security risks / refused at parse: ``root_refused_by_policy`` builds the root task under ``enforce``
  and asserts ``PolicyViolation`` names exactly ``DKR-001``; it runs the lint API
  (``containerkit.policy.lint.lint_paths``) on a DAG file holding that task and asserts exactly
  that error finding for that task; it shows an exemption without a reason is refused too.
- volume permission issues: ``nonroot_write_denied`` runs a non-root task against a fresh root-owned
  volume and asserts ``ContainerTaskFailed`` with diagnosis ``PermissionDenied:volume`` (uid 50000, the
  mount, the fsGroup/chown fix).
- non-root user setup: ``fix_volume_permissions`` (chown to 50000:0, group-writable, root with only
  ``CHOWN``/``FOWNER`` and a reasoned ``policy_exemptions``), then ``write_report`` runs the same
  non-root task successfully and ``check_report`` asserts what it wrote and as whom.
- security contexts: ``render_kubernetes_fix`` renders the Kubernetes pod of the fixed task (runAsNonRoot,
  runAsUser 50000, fsGroup 0, fsGroupChangePolicy OnRootMismatch) and asserts it is clean under the
  ``pss-restricted`` and ``hardened`` rules, while a root pod breaks ``PSS-R-004``.
- ``remove_volume`` deletes the volume whatever happened.

**When copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` (default ``python:3.11-slim-bookworm``) and the
volume name param; on Kubernetes prefer ``fsGroup`` (the profile's ``fs_group``) to the chown step.
Outcome tag ``failure``: the run succeeds when the failures are caught as designed.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task
from docker.types import Mount

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
VOLUME = "ck-88-06-01-reports"
LABELS = {"containerkit.example": "88_06_01"}
DATA = Mount(target="/data", source=VOLUME, type="volume")
WRITE_REPORT = [
    "python",
    "-c",
    "import os, pathlib; p = pathlib.Path('/data/report.txt'); p.write_text('rows=42\\n'); "
    "print(f'{os.getuid()}:{os.getgid()} wrote {p} mode={oct(p.stat().st_mode & 0o777)}')",
]
# The one root step, and why: it is the Docker stand-in for Kubernetes fsGroup.
CHOWN_EXEMPTIONS = {
    "DKR-001": "one-shot permissions init step: chowns a fresh volume to 50000:0, runs no task code",
    "DKR-003": "keeps only CAP_CHOWN and CAP_FOWNER, needed to chown/chmod files root does not own",
}
ROOT_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.containerkit.operators.docker import SecureDockerOperator

with DAG("root_example", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    SecureDockerOperator(
        task_id="as_root",
        image="{image}",
        command=["id"],
        user="0:0",
        resources="xs",
    )
"""


@dag(
    dag_id="88_06_01_running_as_root",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "anti-pattern", "intermediate", "failure", "needs:docker"],
    params={"image": Param(PYTHON_IMAGE, type="string", description="Image of the non-root task.")},
    doc_md=__doc__,
)
def running_as_root() -> None:
    @task
    def root_refused_by_policy() -> dict[str, Any]:
        """Root is refused at construction (enforce) and reported by the lint API, with rule and line."""
        from containerkit.errors import SpecError
        from containerkit.policy.enforce import PolicyViolation
        from containerkit.policy.lint import lint_paths

        image = get_current_context()["params"]["image"]
        try:
            SecureDockerOperator(
                task_id="as_root",
                image=image,
                command=["id"],
                user="0:0",
                resources="xs",
                policy_mode="enforce",
            )
        except PolicyViolation as exc:
            refused = sorted({f.rule_id for f in exc.findings})
        else:
            raise AssertionError("a root task was accepted under policy_mode='enforce'")
        if refused != ["DKR-001"]:
            raise AssertionError(f"root task refused for {refused}, expected exactly ['DKR-001']")
        try:  # an exemption must say why; an empty reason is not an exemption
            SecureDockerOperator(
                task_id="as_root", image=image, command=["id"], user="0", policy_exemptions={"DKR-001": " "}
            )
        except SpecError as exc:
            if "reason" not in str(exc):
                raise AssertionError(f"refused for the wrong reason: {exc}") from exc
        else:
            raise AssertionError("an exemption without a reason was accepted")

        with tempfile.TemporaryDirectory(prefix="ck-lint-") as folder:
            dag_file = Path(folder) / "root_example.py"
            dag_file.write_text(ROOT_DAG.format(image=image))
            result = lint_paths([folder])
        if result.errors:
            raise AssertionError(f"lint could not load the example DAG: {result.errors}")
        errors = sorted((f.rule_id, f.obj.task_id) for f in result.findings if f.severity.value == "error")
        if errors != [("DKR-001", "as_root")]:
            raise AssertionError(f"lint error findings {errors}, expected [('DKR-001', 'as_root')]")
        finding = next(f for f in result.findings if f.rule_id == "DKR-001")
        print(f"lint: {finding.obj.label()} line {finding.obj.line}: [{finding.rule_id}] {finding.message}")
        return {"refused_by": refused, "lint": f"{finding.rule_id} {finding.message}", "fix": finding.fix}

    @task
    def create_volume() -> str:
        """A fresh named volume: the engine creates it root-owned, mode 0755, like most host mounts."""
        import docker

        client = docker.from_env()
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(VOLUME).remove(force=True)
        client.volumes.create(VOLUME, labels=LABELS)
        return VOLUME

    @task
    def nonroot_write_denied(volume: str) -> dict[str, Any]:
        """The non-root task fails on the root-owned volume; the diagnosis names the cause and the fix."""
        from containerkit.diagnostics.model import ContainerTaskFailed

        context = get_current_context()
        attempt = SecureDockerOperator(
            task_id="write_report_before_fix",
            image=context["params"]["image"],
            command=WRITE_REPORT,
            mounts=[Mount(target="/data", source=volume, type="volume")],
            resources="xs",
            labels=LABELS,
        )
        try:
            attempt.execute(context)
        except ContainerTaskFailed as exc:
            diagnosis = exc.diagnosis
        else:
            raise AssertionError("a uid-50000 task wrote to a root-owned volume")
        print(diagnosis.render())
        if diagnosis.cause != "PermissionDenied:volume":
            raise AssertionError(f"diagnosis {diagnosis.cause!r}, expected 'PermissionDenied:volume'")
        if diagnosis.details.get("uid") != "50000" or diagnosis.details.get("path") != "/data/report.txt":
            raise AssertionError(f"diagnosis details {diagnosis.details} do not name uid 50000 and the file")
        if "fsGroup" not in diagnosis.fix or "chown" not in diagnosis.fix:
            raise AssertionError(f"fix does not point at fsGroup/chown: {diagnosis.fix}")
        return {"cause": diagnosis.cause, "summary": diagnosis.summary, "fix": diagnosis.fix}

    fix_volume_permissions = SecureDockerOperator(
        task_id="fix_volume_permissions",
        image=PYTHON_IMAGE,
        command=["sh", "-c", "chown -R 50000:0 /data && chmod -R g+rwX /data && stat -c '%u:%g %a' /data"],
        user="0:0",
        cap_add=["CHOWN", "FOWNER"],
        mounts=[DATA],
        resources="xs",
        labels=LABELS,
        policy_exemptions=CHOWN_EXEMPTIONS,
    )

    write_report = SecureDockerOperator(
        task_id="write_report",
        image=PYTHON_IMAGE,
        command=WRITE_REPORT,
        mounts=[DATA],
        resources="xs",
        labels=LABELS,
    )

    @task
    def check_report(owner: str, line: str) -> str:
        if owner.strip() != "50000:0 775":
            raise AssertionError(f"volume root after the fix is {owner!r}, expected '50000:0 775'")
        if not line.startswith("50000:0 wrote /data/report.txt"):
            raise AssertionError(f"the fixed task did not write as 50000:0: {line!r}")
        return line

    @task
    def render_kubernetes_fix() -> dict[str, Any]:
        """On Kubernetes the fix is the pod securityContext: non-root uid and fsGroup, no init step."""
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod
        from containerkit.spec import ContainerSpec, SecurityProfile

        spec = ContainerSpec(image=PYTHON_IMAGE, command=WRITE_REPORT, resources="xs")
        pod = render_pod(spec, name="write-report")
        context = pod.spec.security_context
        wanted = {"run_as_non_root": True, "run_as_user": 50000, "fs_group": 0}
        seen = {k: getattr(context, k) for k in wanted}
        if seen != wanted or context.fs_group_change_policy != "OnRootMismatch":
            raise AssertionError(f"pod securityContext {seen}, expected {wanted} with OnRootMismatch")
        clean = [f.rule_id for f in evaluate_pod(pod, rule_sets=["pss-restricted", "hardened"])]
        if any(r.startswith(("PSS-", "HRD-001", "HRD-003")) for r in clean):
            raise AssertionError(f"the restricted pod has findings {clean}")
        root = render_pod(spec.replace(security=SecurityProfile.baseline(run_as_user=0)), name="as-root")
        root_rules = {f.rule_id for f in evaluate_pod(root, rule_sets=["pss-restricted"])}
        if "PSS-R-004" not in root_rules:
            raise AssertionError(f"a runAsUser 0 pod was not flagged PSS-R-004: {sorted(root_rules)}")
        return {"securityContext": {k: str(v) for k, v in seen.items()}, "root_pod": sorted(root_rules)}

    @task(trigger_rule="all_done")
    def remove_volume(volume: str) -> None:
        import docker

        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(volume).remove(force=True)

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this DAG failed: read its log")

    volume = create_volume()
    denied = nonroot_write_denied(volume)
    denied >> fix_volume_permissions >> write_report
    checked = check_report(fix_volume_permissions.output, write_report.output)
    checked >> remove_volume(volume)
    steps = [volume, denied, fix_volume_permissions, write_report, checked]
    steps >> fail_run_if_a_task_failed()
    root_refused_by_policy()
    render_kubernetes_fix()


running_as_root()
