"""Build dev and prod targets of one multi-stage Dockerfile: prod smaller, tool-free, rebuilt from cache.

**Problem.** One-stage images carry everything the build needed (pip, setuptools, test code) into
production, and a Dockerfile that copies the source before installing dependencies reinstalls
them on every code change.

**Practice.** One Dockerfile, several targets. ``build`` installs the pinned dependencies into a
venv (from a wheelhouse here, so no index is needed); ``dev`` is ``build`` plus tests and keeps pip;
``prod`` starts again from the base and copies only the venv (pip and setuptools removed) and the
source. The dependency manifest is copied before the source, so a code change rebuilds only the
last layer.

**Where each sub-point is covered.**

- build stage / runtime stage: ``build_targets`` builds ``--target dev`` and ``--target prod``;
- dev/prod images: ``run_dev_tests`` runs the test suite in the dev image; ``inspect_prod`` proves
  prod has no pip, setuptools or tests, runs non-root with a read-only root; ``compare`` asserts prod
  is smaller than dev;
- cache layers: ``code_only_rebuild`` changes one source file, rebuilds prod, and checks that every
  layer but the source layer is reused (same layer digests) and the rebuild is faster.

**Copying.** Replace the generated context (``write_context``) with your repository, keep the order
(dependency manifests, install, then source). **Needs** a Docker engine with BuildKit
(``needs:docker``). The built tags are removed by ``cleanup``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DAG_ID = "88_01_03_multi_stage_builds"
LABELS = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-examples/multi-stage"
DEPENDENCY, DEPENDENCY_VERSION = "ck_greeting", "2.0.1"

DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /app

FROM base AS build
USER 0:0
# Dependency manifests first: this layer and the install below are reused until they change.
COPY requirements.txt constraints.txt ./
ARG DEPS_EPOCH=1
RUN --mount=type=bind,source=wheelhouse,target=/wheelhouse \\
    echo "dependency epoch ${DEPS_EPOCH}" \\
 && python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /wheelhouse --no-cache-dir \\
      --disable-pip-version-check -r requirements.txt -c constraints.txt

FROM build AS dev
COPY tests/ ./tests/
COPY src/ ./src/
USER 50000:0
CMD ["python", "-m", "unittest", "discover", "-s", "tests", "-t", "."]

FROM build AS runtime-deps
RUN /opt/venv/bin/pip uninstall --yes --disable-pip-version-check pip setuptools

FROM base AS prod
COPY --from=runtime-deps /opt/venv /opt/venv
COPY src/ ./src/
USER 50000:0
CMD ["python", "-m", "src.app"]
"""

APP = (
    'import ck_greeting\n\nVERSION = "{version}"\n\n\n'
    'def main() -> str:\n    return ck_greeting.greet("prod") + " " + VERSION\n\n\n'
    'if __name__ == "__main__":\n    print(main())\n'
)
TEST = (
    "import unittest\n\nfrom src import app\n\n\n"
    "class AppTest(unittest.TestCase):\n"
    "    def test_greets(self):\n"
    '        self.assertTrue(app.main().startswith("hello prod"))\n'
)

PROD_REPORT = """
import importlib.util, json, os, shutil
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(),
    "pip": importlib.util.find_spec("pip") is not None or shutil.which("pip") is not None,
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "tests": os.path.exists("/app/tests"),
    "root_writable": writable("/app/probe"),
    "app": __import__("src.app").app.main(),
}))
"""


def _wheel(directory: Path) -> None:
    """The pinned dependency as a wheel in the wheelhouse (a stand-in for ``pip download -d``)."""
    dist = f"{DEPENDENCY}-{DEPENDENCY_VERSION}"
    files = {
        f"{DEPENDENCY}/__init__.py": b'def greet(name):\n    return f"hello {name}"\n',
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: ck-greeting\nVersion: {DEPENDENCY_VERSION}\n".encode()
        ),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: containerkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }

    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    files[f"{dist}.dist-info/RECORD"] = (
        "".join(f"{n},{digest(d)},{len(d)}\n" for n, d in files.items()) + f"{dist}.dist-info/RECORD,,\n"
    ).encode()
    # Fixed timestamps: the same wheel bytes every time, so the build cache can recognise it.
    with zipfile.ZipFile(directory / f"{dist}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def write_context(root: Path, version: str) -> Path:
    """The build context: Dockerfile, dependency manifests, wheelhouse, source and tests."""
    (root / "wheelhouse").mkdir()
    _wheel(root / "wheelhouse")
    (root / "src").mkdir()
    (root / "tests").mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "requirements.txt").write_text("ck-greeting\n")
    (root / "constraints.txt").write_text(f"ck-greeting=={DEPENDENCY_VERSION}\n")
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "app.py").write_text(APP.format(version=version))
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "test_app.py").write_text(TEST)
    return root


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success", "needs:docker"],
    params={"base_image": Param(PYTHON_IMAGE, type="string", description="Build arg BASE_IMAGE.")},
    doc_md=__doc__,
)
def multi_stage_builds() -> None:
    def _build(context: Path, target: str, tag: str, epoch: str) -> tuple[str, str, float]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        start = time.monotonic()
        built = ImageHook().build(
            context,
            repository=REPOSITORY,
            tags=[tag],
            build_args={"BASE_IMAGE": params["base_image"], "DEPS_EPOCH": epoch},
            labels=LABELS,
            target=target,
            buildkit=True,
        )
        return built.references[0], built.id, round(time.monotonic() - start, 2)

    @task
    def build_targets() -> dict[str, Any]:
        """``--target dev`` and ``--target prod`` of the same Dockerfile (a fresh dependency epoch)."""
        epoch = get_current_context()["run_id"]
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            context = write_context(Path(tmp), "1.0.0")
            prod, _, prod_seconds = _build(context, "prod", "prod-1.0.0", epoch)
            dev, _, dev_seconds = _build(context, "dev", "dev-1.0.0", epoch)
        return {
            "prod": prod,
            "dev": dev,
            "epoch": epoch,
            "prod_seconds": prod_seconds,
            "dev_seconds": dev_seconds,
        }

    run_dev_tests = SecureDockerOperator(
        task_id="run_dev_tests",
        image="{{ ti.xcom_pull(task_ids='build_targets')['dev'] }}",
        command=["sh", "-c", "python -m unittest discover -s tests -t . -v 2>&1 && python -m pip --version"],
        network_mode="none",
        resources="xs",
    )

    inspect_prod = SecureDockerOperator(
        task_id="inspect_prod",
        image="{{ ti.xcom_pull(task_ids='build_targets')['prod'] }}",
        command=["python", "-c", PROD_REPORT],
        network_mode="none",
        resources="xs",
    )

    @task
    def compare(built: dict[str, Any], dev_output: Any, prod_output: Any) -> dict[str, Any]:
        """prod is smaller than dev and has no build tools; dev has them and its tests passed."""
        import json

        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        dev, prod = hook.inspect(built["dev"]), hook.inspect(built["prod"])
        facts = json.loads(prod_output) if not isinstance(prod_output, dict) else prod_output
        problems = []
        if prod.size >= dev.size:
            problems.append(f"prod ({prod.size} B) is not smaller than dev ({dev.size} B)")
        if facts["pip"] or facts["setuptools"] or facts["tests"]:
            problems.append(f"prod carries build tools or tests: {facts}")
        if facts["uid"] == 0 or facts["root_writable"]:
            problems.append(f"prod runs as root or writable: {facts}")
        if not str(dev_output).startswith("pip "):
            problems.append(f"dev has no pip: {dev_output!r}")
        if problems:
            raise AssertionError("; ".join(problems))
        result = {
            "dev_mb": round(dev.size / 1e6, 1),
            "prod_mb": round(prod.size / 1e6, 1),
            "saved_mb": round((dev.size - prod.size) / 1e6, 1),
            "prod_says": facts["app"],
        }
        print(result)
        return result

    @task
    def code_only_rebuild(built: dict[str, Any]) -> dict[str, Any]:
        """Change one source file and rebuild prod: only the source layer is new."""
        from containerkit.hooks.image import ImageHook

        hook = ImageHook()
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            context = write_context(Path(tmp), "1.0.1")
            rebuilt, _, seconds = _build(context, "prod", "prod-1.0.1", built["epoch"])
        before = hook.api.inspect_image(built["prod"])["RootFS"]["Layers"]
        after = hook.api.inspect_image(rebuilt)["RootFS"]["Layers"]
        reused = sum(1 for a, b in zip(before, after, strict=False) if a == b)
        if len(after) != len(before) or reused != len(before) - 1:
            raise AssertionError(
                f"{reused} of {len(before)} layers reused; expected all but the source layer"
            )
        result = {
            "first_build_seconds": built["prod_seconds"],
            "code_only_rebuild_seconds": seconds,
            "layers_reused": reused,
            "layers": len(after),
        }
        if seconds >= built["prod_seconds"]:
            raise AssertionError(f"the cached rebuild was not faster: {result}")
        print(result)
        return result

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(LABELS)

    built = build_targets()
    built >> [run_dev_tests, inspect_prod]
    compared = compare(built, run_dev_tests.output, inspect_prod.output)
    rebuilt = code_only_rebuild(built)
    compared >> rebuilt
    [built, rebuilt] >> cleanup()


multi_stage_builds()
