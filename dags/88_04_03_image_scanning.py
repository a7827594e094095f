"""Scan images as a pipeline gate: Trivy as a hardened task above a threshold, and containerkit's audit.

**Problem.** Images ship with known-vulnerable packages, root users and credentials baked into ENV
or the build history, and nobody looks until an incident. A scan that only prints is ignored; a
scan that needs a privileged container or the Docker socket is itself a risk.

**Practice.** Scanning is a pipeline gate: build, scan, and refuse to publish above a threshold.
Trivy runs as an ordinary hardened container task (non-root, read-only root, no capabilities, no
Docker socket): the image is handed to it as a ``docker save`` tar on a read-only mount. Where no
scanner image is available, containerkit's own audit still runs (``containerkit.hooks.image_audit``):
root user, literal secrets in ENV/labels/history, an SBOM-style package inventory and the base
image's age; it names no CVEs, it catches the mistakes scanners' policies also flag.

**Where each sub-point is covered.**

- Trivy: ``trivy_available`` (skips with ``needs:trivy`` when the pinned image is absent),
  ``export_for_scan`` and ``trivy_scan`` (exit code 1 above ``severity_threshold`` fails the task);
- Snyk: the same gate with ``snyk container test <image> --severity-threshold=high`` in a hardened
  task, ``SNYK_TOKEN`` from a Secret (``secret_refs``), never in the command; swap the image and command;
- CI/CD scanning: ``audit`` and ``gate``: the app image passes; the deliberately insecure variant is
  *caught* (root user, a token in ENV, a password in a label and in the build history) and the gate
  refuses it (asserted);
- remediation: ``audit`` prints each finding with its fix, and the inventory (name, version, purl).

**Copying.** Point ``trivy_image`` at a pinned Trivy (mirror it for air-gapped sites, with its DB:
``--skip-db-update`` and a DB volume), set ``severity_threshold``, replace ``APP_DOCKERFILE``.
**Needs** a Docker engine (``needs:docker``); the Trivy part needs the Trivy image (``needs:trivy``)
and network for its vulnerability DB. Images and the scan tar are removed by ``cleanup``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown
from docker.types import Mount

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
TRIVY_IMAGE = os.environ.get("CONTAINERKIT_TRIVY_IMAGE", "aquasec/trivy:0.58.1")
DAG_ID = "88_04_03_image_scanning"
LABELS = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-examples/scanned"
SCAN_DIR = os.path.join(tempfile.gettempdir(), "containerkit-scan", DAG_ID)
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def at_or_above(threshold: str) -> str:
    """Trivy's --severity list for a threshold: that level and every worse one."""
    return ",".join(SEVERITIES[SEVERITIES.index(threshold) :])


APP_DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="containerkit scanned app"
USER 65532:65532
CMD ["/bin/true"]
"""
# What the audit must catch. The credential values are random per run and never printed.
INSECURE_DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${{BASE_IMAGE}}
LABEL deploy.password="{label_value}"
ENV API_TOKEN="{env_value}"
RUN DB_PASSWORD="{run_value}" /bin/sh -c true
CMD ["/bin/true"]
"""


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # The Trivy tasks need the Trivy image (task-level needs:trivy: they skip with the reason without it).
    tags=["reference", "patterns", "intermediate", "success", "needs:docker", "needs:trivy"],
    user_defined_macros={"at_or_above": at_or_above},
    params={
        "base_image": Param(DEBIAN_IMAGE, type="string"),
        "trivy_image": Param(TRIVY_IMAGE, type="string", description="Pinned Trivy image (needs:trivy)."),
        "severity_threshold": Param("CRITICAL", enum=list(SEVERITIES), description="Fail at this and above."),
        "max_base_age_days": Param(90, type="integer", description="Audit: oldest acceptable base."),
    },
    doc_md=__doc__,
)
def image_scanning() -> None:
    @task
    def build() -> dict[str, str]:
        """The app image and a deliberately insecure variant of it."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook()
        values = {k: "ck-" + secrets.token_hex(12) for k in ("label_value", "env_value", "run_value")}
        built = {}
        for name, text in (("app", APP_DOCKERFILE), ("insecure", INSECURE_DOCKERFILE.format(**values))):
            with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
                (Path(context) / "Dockerfile").write_text(text)
                image = hook.build(
                    context,
                    repository=REPOSITORY,
                    tags=[f"{name}-1.0.0"],
                    build_args={"BASE_IMAGE": params["base_image"]},
                    labels=LABELS,
                )
            built[name] = image.references[0]
        return built

    @task
    def audit(built: dict[str, str]) -> dict[str, Any]:
        """containerkit's audit of both images: findings with remediation, and the package inventory."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_audit import audit_image

        params = get_current_context()["params"]
        api = ImageHook().api
        reports = {}
        for name, reference in built.items():
            result = audit_image(
                api, reference, max_base_age_days=params["max_base_age_days"], base_image=params["base_image"]
            )
            print(result.remediation())
            sbom = result.sbom()
            print(f"{reference}: {len(sbom)} packages, e.g. " + ", ".join(p["purl"] for p in sbom[:3]))
            reports[name] = {
                "errors": sorted({f.check for f in result.at_or_above("error")}),
                # check, where, and what (the variable or label name; never its value)
                "findings": [f"{f.check} {f.where} {f.message.split(':')[0]}" for f in result.findings],
                "packages": len(sbom),
                "base_age_days": result.base_age_days,
            }
        return reports

    @task
    def gate(reports: dict[str, Any]) -> dict[str, Any]:
        """The CI gate: the app passes; the insecure variant is refused for exactly what it does wrong."""
        if reports["app"]["errors"]:
            raise AssertionError(f"the app image fails the audit: {reports['app']['findings']}")
        caught = reports["insecure"]["errors"]
        if caught != ["secrets", "user"]:
            raise AssertionError(f"the insecure image should fail on secrets and user, got {caught}")
        found = {f.split(" ", 1)[1] for f in reports["insecure"]["findings"]}
        expected = {"Config.Env.API_TOKEN API_TOKEN", "Config.Labels.deploy.password deploy.password"}
        in_history = {f.rsplit(" ", 1)[1] for f in found if f.startswith("history[")}
        if not expected <= found or "DB_PASSWORD" not in in_history:
            raise AssertionError(
                f"missing findings: {sorted(expected - found)}; in history: {sorted(in_history)}"
            )
        print(f"gate: app passes; insecure refused for {caught}")
        return {"passed": ["app"], "refused": {"insecure": caught}}

    @task
    def trivy_available() -> str:
        """needs:trivy: the pinned Trivy image must be on the engine (pull or mirror it first)."""
        from airflow.sdk.exceptions import AirflowSkipException
        from docker.errors import ImageNotFound

        from containerkit.hooks.image import ImageHook

        image = get_current_context()["params"]["trivy_image"]
        try:
            ImageHook().api.inspect_image(image)
        except ImageNotFound:
            raise AirflowSkipException(
                f"needs:trivy: image {image} is not on the Docker engine; pull or mirror it "
                "(docker pull / 88_10_05) or set CONTAINERKIT_TRIVY_IMAGE to a local copy"
            ) from None
        return image

    @task
    def export_for_scan(built: dict[str, str], trivy: str) -> str:
        """The app image as a docker save tar, for Trivy to read from a read-only mount."""
        from containerkit.hooks.image import ImageHook

        Path(SCAN_DIR).mkdir(parents=True, exist_ok=True)
        os.chmod(SCAN_DIR, 0o755)
        archive = ImageHook().save([built["app"]], Path(SCAN_DIR) / "image.tar")
        os.chmod(archive, 0o644)
        return str(archive)

    trivy_scan = SecureDockerOperator(
        task_id="trivy_scan",
        image="{{ params.trivy_image }}",
        command=[
            "image",
            "--input",
            "/scan/image.tar",
            "--cache-dir",
            "/tmp/trivy-cache",
            "--severity",
            "{{ at_or_above(params.severity_threshold) }}",
            "--ignore-unfixed",
            "--exit-code",
            "1",
            "--format",
            "table",
        ],
        mounts=[Mount(target="/scan", source=SCAN_DIR, type="bind", read_only=True)],
        environment={"HOME": "/tmp", "TRIVY_NO_PROGRESS": "true"},
        resources={"preset": "m"},
    )

    @task(trigger_rule="none_failed")
    def report(gated: dict[str, Any]) -> dict[str, Any]:
        """What ran: the audit gate always; Trivy when its image was there (else skipped with its reason)."""
        trivy = get_current_context()["ti"].xcom_pull(task_ids="trivy_scan")
        summary = {**gated, "trivy": trivy if trivy is not None else "skipped (needs:trivy)"}
        print(summary)
        return summary

    @teardown
    def cleanup() -> list[str]:
        import shutil

        from containerkit.hooks.image import ImageHook

        shutil.rmtree(SCAN_DIR, ignore_errors=True)
        return ImageHook().remove_labeled(LABELS)

    built = build()
    gated = gate(audit(built))
    trivy = trivy_available()
    exported = export_for_scan(built, trivy)
    exported >> trivy_scan
    summary = report(gated)
    trivy_scan >> summary
    [built, summary] >> cleanup()


image_scanning()
