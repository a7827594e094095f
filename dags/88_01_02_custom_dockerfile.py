"""Extend the official Airflow image: pinned Python packages, a system package, configuration; prove each.

**Problem.** Teams need extra Python packages, a system tool and their own settings in the Airflow
image. ``pip install`` without constraints silently upgrades Airflow's dependencies; apt layers keep
their caches; an extra CA copied into the image (for a proxy or a private index) ships to everyone
who pulls it; and nobody checks that what was added actually works in the image.

**Practice.** ``FROM apache/airflow:<pinned>`` (a build arg), system packages as root in one layer
(``--no-install-recommends``, lists removed), then back to the ``airflow`` user for ``pip install``
pinned by a constraints file. Packages come from a wheelhouse built on the host (a given wheel
directory, the worker's own installed copy packed as a wheel, or ``pip download`` on the worker,
which already trusts the network path), so the build needs no index and no CA. When a CA *is*
needed it is a BuildKit secret: mounted for the one ``RUN``, never in a layer. Configuration is a
file copied into ``AIRFLOW_HOME`` plus ``AIRFLOW__`` env vars. The Dockerfile is linted before it
is built, and each addition is proven inside the image.

**Where each sub-point is covered.**

- extending the official image: ``lint_dockerfile`` (containerkit's Dockerfile rules, no errors) and
  ``build`` (``FROM ${AIRFLOW_IMAGE}``, BuildKit);
- adding Python packages: ``wheelhouse`` (the pinned wheel and a constraints file), then
  ``prove_additions`` imports it in the image and checks the pinned version;
- system dependencies: ``prove_additions`` runs ``jq`` in the image;
- custom configurations: ``prove_additions`` reads the copied ``airflow.cfg`` value and the
  ``AIRFLOW__`` env value through Airflow's own config loader;
- the optional extra CA: ``build`` passes the host CA bundle as secret ``ca``; ``audit`` checks the
  image has no ``/run/secrets/ca``, no secrets in ENV/labels/history and a non-root user.

**Why a wheelhouse and not PyPI with the CA as a secret.** Both work; the wheelhouse also works where
the build host has no route to an index (CI runners, air-gapped builders), makes the build
reproducible byte for byte, and keeps the CA out of the build entirely. Set ``use_index`` to install
from the index instead (the CA secret is then what lets pip through a TLS-intercepting proxy).

**Copying.** Set ``airflow_image`` to your pinned tag (better digest), list your packages in
``package``/``package_version`` (or your own requirements and constraints), and edit ``AIRFLOW_CFG``.
**Needs** a Docker engine with BuildKit (``needs:docker``) and the Debian mirror for ``apt-get``;
``pip download`` (the last resort for the wheel) needs the package index from the worker.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

AIRFLOW_IMAGE = os.environ.get("CONTAINERKIT_AIRFLOW_IMAGE", "apache/airflow:3.3.2-python3.11")
DAG_ID = "88_01_02_custom_dockerfile"
LABELS = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-examples/airflow-custom"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

DOCKERFILE = """\
# containerkit: ignore=DF-002 a build arg; pin a digest with --build-arg AIRFLOW_IMAGE=...@sha256:...
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# System dependencies: as root, one layer, no recommends, no apt lists left behind.
USER root
RUN apt-get update \\
 && apt-get install -y --no-install-recommends jq \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/*
USER airflow

# Python packages, pinned by the constraints file. The wheelhouse and an optional CA are mounted for
# this step only: neither lands in a layer.
ARG PIP_INDEX_ARGS="--no-index --find-links /tmp/wheelhouse"
RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \\
    --mount=type=secret,id=ca,required=false,mode=0444 \\
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \\
 && pip install --no-cache-dir --disable-pip-version-check ${PIP_INDEX_ARGS} \\
      -r /tmp/requirements.txt -c /tmp/constraints.txt

# Custom configuration: a file in AIRFLOW_HOME and AIRFLOW__ env vars (non-secret values only).
COPY --chown=airflow:0 airflow.cfg /opt/airflow/airflow.cfg
ENV AIRFLOW__CORE__PARALLELISM=48
"""

AIRFLOW_CFG = "[core]\ndefault_timezone = Europe/Amsterdam\nload_examples = False\n"

PROVE = """
import importlib.metadata as md, json, os, subprocess, sys
from airflow.configuration import conf
import {module}
print(json.dumps({{
    "uid": os.getuid(),
    "gid": os.getgid(),
    "package": md.version("{package}"),
    "jq": subprocess.run(["jq", "--version"], capture_output=True, text=True, check=True).stdout.strip(),
    "default_timezone": conf.get("core", "default_timezone"),
    "parallelism": conf.getint("core", "parallelism"),
    "ca_secret_in_image": os.path.exists("/run/secrets/ca"),
}}))
"""


def prove_script(package: str) -> str:
    """The in-image proof for ``package`` (its import name is the distribution name with underscores)."""
    return PROVE.format(module=package.replace("-", "_"), package=package)


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack_installed(package: str, version: str, directory: Path) -> Path:
    """Pack the worker's installed copy of a pure-Python distribution into a wheel (the offline route)."""
    dist = metadata.distribution(package)
    if dist.version != version:
        raise RuntimeError(f"the worker has {package} {dist.version}, not {version}")
    if "Root-Is-Purelib: true" not in (dist.read_text("WHEEL") or ""):
        raise RuntimeError(f"{package} is not a pure-Python wheel: download it with pip instead")
    name = dist.metadata["Name"].replace("-", "_")
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    record_path = next(str(f) for f in dist.files or () if str(f).endswith(".dist-info/RECORD"))
    rows = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files or ():
            path = str(file)
            if path == record_path or path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
                continue
            data = Path(file.locate()).read_bytes()
            if path.endswith(".dist-info/INSTALLER") or path.endswith(".dist-info/direct_url.json"):
                continue
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
            rows.append(f"{path},{_record_digest(data)},{len(data)}")
        rows.append(f"{record_path},,")
        archive.writestr(
            zipfile.ZipInfo(record_path, date_time=(1980, 1, 1, 0, 0, 0)), "\n".join(rows) + "\n"
        )
    return wheel


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker"],
    user_defined_macros={"prove_script": prove_script},
    params={
        "airflow_image": Param(AIRFLOW_IMAGE, type="string", description="The official image to extend."),
        "package": Param("dockerfile-parse", type="string", description="A pure-Python package to add."),
        "package_version": Param("2.0.1", type="string", description="Its pinned version (constraints)."),
        "wheelhouse_dir": Param(
            os.environ.get("CONTAINERKIT_WHEELHOUSE"), type=["null", "string"], description="Existing wheels."
        ),
        "use_index": Param(False, type="boolean", description="Install from the package index instead."),
        "ca_bundle": Param(CA_BUNDLE, type=["null", "string"], description="Extra CA, as a build secret."),
    },
    doc_md=__doc__,
)
def custom_dockerfile() -> None:
    @task
    def lint_dockerfile() -> list[str]:
        """containerkit's Dockerfile rules on the Dockerfile before anything is built: no errors."""
        from containerkit.policy.lint import lint_paths
        from containerkit.policy.model import Severity

        with tempfile.TemporaryDirectory(prefix="ck-lint-") as tmp:
            path = Path(tmp) / "Dockerfile"
            path.write_text(DOCKERFILE)
            result = lint_paths([path])
        errors = result.at_or_above(Severity.ERROR)
        if result.errors or errors:
            raise AssertionError(f"lint: {result.errors} {[f'{f.rule_id} {f.message}' for f in errors]}")
        findings = [f"{f.rule_id} {f.severity.value}: {f.message}" for f in result.findings]
        print("Dockerfile lint: no errors; below error:", findings or "none")
        return findings

    @task
    def wheelhouse() -> dict[str, Any]:
        """The pinned wheel: from wheelhouse_dir, else the worker's installed copy, else pip download."""
        params = get_current_context()["params"]
        package, version = params["package"], params["package_version"]
        target = Path(tempfile.mkdtemp(prefix="ck-wheelhouse-"))
        normalized = package.replace("-", "_").lower()
        source = None
        if params["wheelhouse_dir"]:
            for wheel in Path(params["wheelhouse_dir"]).glob("*.whl"):
                if wheel.name.lower().startswith(f"{normalized}-{version}-"):
                    shutil.copy2(wheel, target)
                    source = f"wheelhouse_dir {params['wheelhouse_dir']}"
        if source is None and not params["use_index"]:
            try:  # the worker's own copy: offline, and the version the worker already runs and trusts
                repack_installed(package, version, target)
                source = "the worker's installed copy, packed as a wheel"
            except (metadata.PackageNotFoundError, RuntimeError) as exc:
                print(f"no usable installed copy ({exc}); trying pip download")
        if source is None and not params["use_index"]:
            pip = [shutil.which("pip") or "pip"] if shutil.which("pip") else [sys.executable, "-m", "pip"]
            done = subprocess.run(
                [
                    *pip,
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(target),
                    f"{package}=={version}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0 or not any(target.glob("*.whl")):
                raise RuntimeError(
                    f"no wheel for {package}=={version}: pip download failed ({done.stderr.strip()[-300:]}). "
                    "Fix: put the wheel in wheelhouse_dir (pip download -d on a connected host), or use_index"
                )
            source = "pip download (the package index, from the worker)"
        wheels = sorted(p.name for p in target.glob("*.whl"))
        print(f"wheelhouse {target}: {wheels} from {source or 'none (use_index)'}")
        return {"dir": str(target), "wheels": wheels, "source": source}

    @task
    def build(house: dict[str, Any]) -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        ca = params["ca_bundle"] if params["ca_bundle"] and Path(params["ca_bundle"]).is_file() else None
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            context = Path(tmp)
            shutil.copytree(house["dir"], context / "wheelhouse")
            # The pip step runs as the image's airflow user: the mounted wheels must be readable by it.
            (context / "wheelhouse").chmod(0o755)
            for wheel in (context / "wheelhouse").iterdir():
                wheel.chmod(0o644)
            (context / "Dockerfile").write_text(DOCKERFILE)
            (context / "requirements.txt").write_text(f"{params['package']}\n")
            (context / "constraints.txt").write_text(f"{params['package']}=={params['package_version']}\n")
            (context / "airflow.cfg").write_text(AIRFLOW_CFG)
            args = {"AIRFLOW_IMAGE": params["airflow_image"]}
            if params["use_index"]:
                args["PIP_INDEX_ARGS"] = ""
            built = ImageHook().build(
                context,
                repository=REPOSITORY,
                tags=["1.0.0"],
                build_args=args,
                labels=LABELS,
                ca_secret=ca,
                buildkit=True,
            )
        shutil.rmtree(house["dir"], ignore_errors=True)
        return {"reference": built.references[0], "image_id": built.id, "ca_secret": bool(ca)}

    prove_additions = SecureDockerOperator(
        task_id="prove_additions",
        image="{{ ti.xcom_pull(task_ids='build')['reference'] }}",
        command=[
            "python",
            "-c",
            "{{ prove_script(params.package) }}",
        ],
        environment={"AIRFLOW_HOME": "/opt/airflow"},
        network_mode="none",
        resources="s",
    )

    @task
    def check(report: Any, built: dict[str, Any]) -> dict[str, Any]:
        import json

        params = get_current_context()["params"]
        facts = report if isinstance(report, dict) else json.loads(report)
        expected = {
            "package": params["package_version"],
            "default_timezone": "Europe/Amsterdam",
            "parallelism": 48,
            "ca_secret_in_image": False,
            "gid": 0,
        }
        wrong = {k: facts.get(k) for k, v in expected.items() if facts.get(k) != v}
        if wrong or not facts["jq"].startswith("jq-") or facts["uid"] == 0:
            raise AssertionError(f"additions not as built: {wrong}; jq {facts['jq']!r}; uid {facts['uid']}")
        print(f"proven in {built['reference']}: {facts}")
        return facts

    @task
    def audit(built: dict[str, Any]) -> dict[str, Any]:
        """No secret (the CA included) in ENV, labels or history; the image user is not root."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_audit import audit_image

        result = audit_image(ImageHook().api, built["reference"], inventory=False)
        print(result.remediation())
        bad = [f for f in result.findings if f.check in ("user", "secrets")]
        if bad:
            raise AssertionError(result.remediation())
        return {"findings": [f.check for f in result.findings], "user": result.user}

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(LABELS)

    linted = lint_dockerfile()
    house = wheelhouse()
    built = build(house)
    linted >> built
    built >> prove_additions
    checked = check(prove_additions.output, built)
    audited = audit(built)
    [built, checked, audited] >> cleanup()


custom_dockerfile()
