"""Testing images at build time: structure checks, layer caching, size budget, lint and audit as a gate.

**Problem.** An image is a build artifact like any other, but it usually ships untested: the user flips
back to root, a label the deploy tooling reads disappears, the entrypoint changes, a dependency layer
stops being cached and every build downloads the world, or the image doubles in size, and nobody notices
until production.

**Practice.** Every build runs the same checks before anything is pushed: the files, owner and modes the
app needs, the runtime user, entrypoint and labels, a size budget over the base, cache-friendly layer
order, the Dockerfile lint and containerkit's image audit; any failure fails the run. The checks are one
pure function, so the gate itself is tested against a known-bad build.

**Where each sub-point is covered.**

- build validation: ``build_image`` builds the app with ``ImageHook``; ``structure_checks`` reads the
  image config and the files (from a created, never started container) and ``smoke_test`` runs the
  entrypoint as a hardened task; ``check_smoke`` asserts its output.
- layer caching: ``build_image`` rebuilds with only the source changed and asserts every layer but the
  last is reused (dependencies are installed before the source is copied).
- size verification: ``structure_checks`` fails when the image adds more than ``size_budget_mib`` to
  its base.
- security scanning: ``lint_and_audit`` runs the Dockerfile rules (no error or warning allowed) and
  ``containerkit.hooks.image_audit`` (root user, secrets in ENV/labels/history, package inventory, base
  age); an error finding fails the run.
- failing on a regression: ``regression_is_caught`` builds a variant that runs as root and lost a label,
  and asserts the same checks report exactly those two problems.
- ``remove_images`` deletes everything the run built.

**When copying.** Replace ``DOCKERFILE`` / ``APP`` with your image and set ``EXPECTED`` to what your deploy
relies on; run it in the image's CI before the push. ``CONTAINERKIT_PYTHON_IMAGE`` (default
``python:3.11-slim-bookworm``) is the base.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
REPOSITORY = "containerkit-examples/report-app"
VERSION = "2.3.0"
LABELS = {"containerkit.example": "88_07_01"}
DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG APP_VERSION
# Build steps as root whatever the base's USER is; the last USER line is what runs.
USER 0:0
LABEL org.opencontainers.image.title="report-app" \\
      org.opencontainers.image.version="${APP_VERSION}" \\
      org.opencontainers.image.source="https://example.com/report-app"
WORKDIR /app
# Dependencies first (changes rarely: cached), the source last (changes every commit).
COPY requirements.txt /app/requirements.txt
RUN python -c "import shutil; shutil.copy('/app/requirements.txt', '/app/deps.lock')"
COPY report_app/ /app/report_app/
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1
USER 50000:0
ENTRYPOINT ["python", "-m", "report_app"]
"""
APP = {
    "requirements.txt": "# no third-party dependencies\n",
    "report_app/__init__.py": "",
    "report_app/__main__.py": (
        "import json, os, sys\n"
        "print(json.dumps({'app': 'report-app', 'uid': os.getuid(), 'args': sys.argv[1:]}))\n"
    ),
}
EXPECTED: dict[str, Any] = {
    "user": "50000:0",
    "entrypoint": ["python", "-m", "report_app"],
    "labels": {
        "org.opencontainers.image.title": "report-app",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.source": "https://example.com/report-app",
    },
    # path -> (uid, mode): code owned by root and not writable by the runtime user
    "files": {"app/report_app/__main__.py": (0, 0o644), "app/deps.lock": (0, 0o644)},
}


def _build(hook: Any, base: str, tag: str, dockerfile: str, source: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
        for name, text in {**APP, "report_app/__main__.py": source, "Dockerfile": dockerfile}.items():
            (Path(context) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(context) / name).write_text(text)
        return hook.build(
            context,
            repository=REPOSITORY,
            tags=[tag],
            build_args={"BASE_IMAGE": base, "APP_VERSION": VERSION},
            labels=LABELS,
        )


def _files(api: Any, image: str, paths: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Owner and mode of ``paths`` in the image, read from a created (never started) container."""
    container = api.create_container(image, entrypoint=["/nonexistent"], labels=LABELS)
    found: dict[str, tuple[int, int]] = {}
    try:
        for path in paths:
            with contextlib.suppress(Exception):  # a missing file is reported by the check
                stream, _ = api.get_archive(container["Id"], "/" + path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.getmembers()[0]
                    found[path] = (member.uid, member.mode & 0o777)
    finally:
        api.remove_container(container["Id"], force=True)
    return found


def structure_problems(
    config: Mapping[str, Any], files: Mapping[str, tuple[int, int]], added_bytes: int, budget_mib: int
) -> list[str]:
    """Everything about the image that differs from EXPECTED (empty: the image passes)."""
    problems = []
    if config.get("User") != EXPECTED["user"]:
        problems.append(f"user is {config.get('User')!r}, expected {EXPECTED['user']!r}")
    if list(config.get("Entrypoint") or ()) != EXPECTED["entrypoint"]:
        problems.append(f"entrypoint is {config.get('Entrypoint')}, expected {EXPECTED['entrypoint']}")
    labels = config.get("Labels") or {}
    for key, value in EXPECTED["labels"].items():
        if labels.get(key) != value:
            problems.append(f"label {key} is {labels.get(key)!r}, expected {value!r}")
    for path, (uid, mode) in EXPECTED["files"].items():
        if path not in files:
            problems.append(f"/{path} is missing")
        elif files[path] != (uid, mode):
            seen = f"uid {files[path][0]} mode {oct(files[path][1])}"
            problems.append(f"/{path} is {seen}, expected uid {uid} mode {oct(mode)}")
    if added_bytes > budget_mib << 20:
        problems.append(f"adds {added_bytes / 2**20:.1f} MiB to its base, budget {budget_mib} MiB")
    return problems


def _check(image: str, base: str, budget_mib: int) -> tuple[list[str], dict[str, Any]]:
    from containerkit.hooks.image import ImageHook

    hook = ImageHook()
    config = hook.api.inspect_image(image)["Config"]
    added = hook.inspect(image).size - hook.inspect(base).size
    files = _files(hook.api, image, EXPECTED["files"])
    facts = {"user": config.get("User"), "added_mib": round(added / 2**20, 2), "files": files}
    return structure_problems(config, files, added, budget_mib), facts


@dag(
    dag_id="88_07_01_build_testing",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "testing", "intermediate", "success", "needs:docker"],
    params={
        "base_image": Param(PYTHON_IMAGE, type="string", description="FROM image of the build."),
        "size_budget_mib": Param(5, type="integer", minimum=1, description="Most the app may add."),
    },
    doc_md=__doc__,
)
def build_testing() -> None:
    @task
    def build_image() -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        base = get_current_context()["params"]["base_image"]
        first = _build(hook, base, VERSION, DOCKERFILE, APP["report_app/__main__.py"])
        changed = _build(
            hook, base, f"{VERSION}-next", DOCKERFILE, APP["report_app/__main__.py"] + "# edit\n"
        )
        layers = [hook.api.inspect_image(b.id)["RootFS"]["Layers"] for b in (first, changed)]
        shared = sum(1 for a, b in zip(*layers, strict=False) if a == b)
        if len(layers[0]) != len(layers[1]) or shared != len(layers[0]) - 1:
            raise AssertionError(f"a source-only change rebuilt {len(layers[1]) - shared} layers, expected 1")
        print(f"source change: {shared}/{len(layers[1])} layers reused from the cache")
        return {"image": first.references[0], "next": changed.references[0], "layers_reused": shared}

    @task
    def structure_checks(built: dict[str, Any]) -> dict[str, Any]:
        params = get_current_context()["params"]
        problems, facts = _check(built["image"], params["base_image"], params["size_budget_mib"])
        if problems:
            raise AssertionError(f"{built['image']} fails its structure checks: " + "; ".join(problems))
        return facts

    @task
    def lint_and_audit(built: dict[str, Any]) -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_audit import audit_image
        from containerkit.policy.lint import lint_paths

        with tempfile.TemporaryDirectory(prefix="ck-lint-") as folder:
            (Path(folder) / "Dockerfile").write_text(DOCKERFILE)
            lint = [
                f"{f.rule_id} {f.message}"
                for f in lint_paths([folder]).findings
                if f.severity.value != "info"
            ]
        if lint:
            raise AssertionError(f"Dockerfile lint: {lint}")
        hook = ImageHook()
        report = audit_image(
            hook.api, built["image"], base_image=get_current_context()["params"]["base_image"]
        )
        print(report.remediation())
        errors = report.at_or_above("error")
        if errors:
            raise AssertionError(f"image audit errors: {[f.message for f in errors]}")
        return {
            "audit": [f"{f.check}:{f.severity}" for f in report.findings],
            "packages": len(report.packages),
        }

    smoke_test = SecureDockerOperator(
        task_id="smoke_test",
        image="{{ ti.xcom_pull(task_ids='build_image')['image'] }}",
        command=["--self-test"],
        resources="xs",
        labels=LABELS,
    )

    @task
    def check_smoke(output: Any) -> dict[str, Any]:
        result = output if isinstance(output, dict) else json.loads(output)
        if result != {"app": "report-app", "uid": 50000, "args": ["--self-test"]}:
            raise AssertionError(f"smoke test printed {result}")
        return result

    @task
    def regression_is_caught() -> list[str]:
        """The gate must fail on a bad build: root user and a lost label, and nothing else."""
        from containerkit.hooks.image import ImageHook

        base = get_current_context()["params"]["base_image"]
        broken = DOCKERFILE.replace("USER 50000:0", "USER 0:0").replace(
            ' \\\n      org.opencontainers.image.source="https://example.com/report-app"', ""
        )
        built = _build(ImageHook(), base, f"{VERSION}-broken", broken, APP["report_app/__main__.py"])
        problems, _ = _check(built.references[0], base, 5)
        expected = [
            "user is '0:0', expected '50000:0'",
            "label org.opencontainers.image.source is None, expected 'https://example.com/report-app'",
        ]
        if problems != expected:
            raise AssertionError(f"the gate reported {problems} for the broken build, expected {expected}")
        return problems

    @task(trigger_rule="all_done")
    def remove_images() -> int:
        import docker

        client = docker.from_env()
        labels = [f"{k}={v}" for k, v in LABELS.items()]
        removed = 0
        for container in client.containers.list(all=True, filters={"label": labels}):
            container.remove(force=True)
        for image in client.images.list(all=True, filters={"label": labels}):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
                removed += 1
        return removed

    @task(trigger_rule="one_failed")
    def fail_run_on_regression() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any failed check fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a build check failed: read the failed task's log for the regression")

    built = build_image()
    checks = [structure_checks(built), lint_and_audit(built), regression_is_caught()]
    checks >> smoke_test
    smoked = check_smoke(smoke_test.output)
    smoked >> remove_images()
    [built, *checks, smoke_test, smoked] >> fail_run_on_regression()


build_testing()
