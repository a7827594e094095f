"""Build the project's minimal task image and check its size budget, non-root user, contents and policy.

**Problem.** Task images grow: a full OS, pip caches, compilers, the package manager, docs. Each
megabyte is pulled by every node that runs the task; each binary is attack surface, and a package
manager in a running container is a way to install more.

**Practice.** ``docker/task-images/minimal/Dockerfile`` (inlined below as the fallback, so the DAG
copies alone): a multi-stage build whose dependency step is cached (requirements copied first, pip's
cache a BuildKit cache mount, an optional CA as a build secret), a runtime filesystem without apt,
dpkg, pip/ensurepip, docs and setuid bits, flattened ``FROM scratch`` so removed files are gone,
running as uid 50000 / gid 0 with a read-only root filesystem.

**Where each sub-point is covered.**

- multi-stage: ``lint_dockerfile`` (stage count) and ``build`` (BuildKit, three stages);
- dependency caching: ``rebuild_cached`` builds again and checks it is the same image, fast;
- hardening: ``check_image`` (non-root user in the config), ``inspect_inside`` (a hardened, policy-
  checked container: uid, no apt/dpkg/pip/compilers, no pip module, read-only root, no setuid files);
- minimal size: ``check_image`` (size against ``size_budget_mb`` and against the base it came from);
- passing policy check: ``lint_dockerfile`` (containerkit's Dockerfile rules: no errors) and
  ``inspect_inside`` itself (policy ``enforce`` at parse time).

**Copying.** Point ``context_dir`` (or ``CONTAINERKIT_TASK_IMAGE_DIR``) at your copy of the directory,
list your hash-pinned requirements, set ``size_budget_mb``. **Needs** a Docker engine (``needs:docker``).
The image and its tags are removed by ``cleanup``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DAG_ID = "88_10_02_minimal_dockerfile"
LABELS = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-examples/task-minimal"
_REPO_COPY = Path(__file__).resolve().parents[1] / "docker" / "task-images" / "minimal"
CONTEXT_DIR = os.environ.get("CONTAINERKIT_TASK_IMAGE_DIR") or (
    str(_REPO_COPY) if _REPO_COPY.is_dir() else None
)

# The same files as docker/task-images/minimal (a test keeps them equal), used when no copy is found.
DOCKERFILE = """\
# Minimal, hardened Python task image: multi-stage, dependency cache, no package manager or compilers.
#
#   DOCKER_BUILDKIT=1 docker build -t my-org/task-minimal:1.0.0 docker/task-images/minimal
#   # air-gapped: --build-arg PYTHON_IMAGE=containerkit/base-python:3.11
#   # behind a TLS-intercepting proxy / private index: --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
#
# 1. build:  requirements.txt (hash-pinned) into a venv; pip's cache is a BuildKit cache mount, so a
#            rebuild after a requirements change downloads only what changed, and no cache lands in a layer.
# 2. rootfs: the runtime base plus the venv, minus what a task never needs and an attacker would: apt,
#            dpkg and their state, pip/ensurepip, docs, and the setuid/setgid bits.
# 3. final:  that filesystem flattened FROM scratch (the removed files are really gone, not hidden by a
#            whiteout in a later layer), run as uid 50000 / gid 0, read-only-root friendly.
# containerkit: ignore=DF-002 no digest is known offline: pass PYTHON_IMAGE=...@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# hadolint ignore=DL3002
USER 0:0
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \\
    --mount=type=secret,id=ca,required=false \\
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \\
 && python -m venv /opt/task-venv \\
 && if grep -qv '^\\s*\\(#\\|$\\)' /tmp/requirements.txt; then \\
      /opt/task-venv/bin/pip install --disable-pip-version-check --require-hashes -r /tmp/requirements.txt; \\
    fi \\
 && /opt/task-venv/bin/pip uninstall --yes --disable-pip-version-check pip setuptools \\
 && find /opt/task-venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS rootfs
# hadolint ignore=DL3002
USER 0:0
COPY --from=build /opt/task-venv /opt/task-venv
RUN rm -rf /usr/bin/apt /usr/bin/apt-* /usr/bin/dpkg /usr/bin/dpkg-* /usr/sbin/dpkg-* /usr/lib/apt \\
      /var/lib/apt /var/cache/apt /etc/apt /var/lib/dpkg /var/log/* \\
      /usr/local/bin/pip* /usr/lib/python3*/ensurepip /usr/local/lib/python3*/ensurepip \\
      /usr/share/python-wheels /usr/share/doc /usr/share/man /usr/share/info \\
 && find / -xdev -type f -perm /6000 -exec chmod a-s {} +

FROM scratch
LABEL org.opencontainers.image.title="containerkit-task-minimal" \\
      org.opencontainers.image.description="Minimal non-root Python task image without package manager"
# Flattening on purpose: one layer without the files deleted above (a plain multi-stage copy keeps them).
# hadolint ignore=DL3067
COPY --from=rootfs / /
ENV PATH=/opt/task-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 \\
    HOME=/tmp \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 50000:0
CMD ["python", "--version"]
"""
REQUIREMENTS = """\
# The task's own Python dependencies, pinned with hashes (`pip-compile --generate-hashes`, `uv pip compile
# --generate-hashes`). The reference tasks need only the standard library, so none are listed; add yours.
"""

# Runs inside the built image: one JSON line of facts.
INSPECT = """
import importlib.util, json, os, shutil, stat
def setuid_files():
    found = []
    for top in ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/lib"):
        for root, _, files in os.walk(top):
            for name in files:
                try:
                    mode = os.lstat(os.path.join(root, name)).st_mode
                except OSError:
                    continue
                if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                    found.append(os.path.join(root, name))
    return found
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
tools = ["apt", "apt-get", "dpkg", "apk", "pip", "pip3", "gcc", "cc", "g++", "make", "ld"]
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "tools_found": [t for t in tools if shutil.which(t)],
    "pip_module": importlib.util.find_spec("pip") is not None,
    "ensurepip_module": importlib.util.find_spec("ensurepip") is not None,
    "dpkg_state": os.path.exists("/var/lib/dpkg"),
    "setuid_files": setuid_files(),
    "root_writable": writable("/probe"),
}))
"""


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "example", "intermediate", "success", "needs:docker"],
    params={
        "python_image": Param(
            PYTHON_IMAGE, type="string", description="Runtime base (build arg PYTHON_IMAGE)."
        ),
        "context_dir": Param(
            CONTEXT_DIR, type=["null", "string"], description="Build context (null: inline)."
        ),
        "size_budget_mb": Param(200, type="integer", description="Largest acceptable image size in MB."),
        "version": Param("1.0.0", type="string"),
    },
    doc_md=__doc__,
)
def minimal_dockerfile() -> None:
    def _context(tmp: str) -> Path:
        params = get_current_context()["params"]
        if params["context_dir"]:
            return Path(params["context_dir"])
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE)
        (Path(tmp) / "requirements.txt").write_text(REQUIREMENTS)
        return Path(tmp)

    @task
    def lint_dockerfile() -> dict[str, Any]:
        """containerkit's Dockerfile rules: no error findings; three stages, the last FROM scratch."""
        from containerkit.policy.lint import lint_paths
        from containerkit.policy.model import Severity

        with tempfile.TemporaryDirectory(prefix="ck-lint-") as tmp:
            dockerfile = _context(tmp) / "Dockerfile"
            result = lint_paths([dockerfile])
            text = dockerfile.read_text()
        if result.errors:
            raise AssertionError(f"lint could not read the Dockerfile: {result.errors}")
        errors = result.at_or_above(Severity.ERROR)
        if errors:
            raise AssertionError(
                "Dockerfile findings: " + "; ".join(f"{f.rule_id} {f.message}" for f in errors)
            )
        stages = [line.split()[1] for line in text.splitlines() if line.upper().startswith("FROM ")]
        if len(stages) < 2 or stages[-1] != "scratch":
            raise AssertionError(f"expected a multi-stage build ending FROM scratch, got {stages}")
        findings = [f"{f.rule_id} {f.severity.value}: {f.message}" for f in result.findings]
        print(f"stages {stages}; findings below error: {findings or 'none'}")
        return {"stages": stages, "findings": findings}

    @task
    def build() -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        hook = ImageHook()
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            built = hook.build(
                _context(tmp),
                repository=REPOSITORY,
                tags=[params["version"]],
                build_args={"PYTHON_IMAGE": params["python_image"]},
                labels=LABELS,
                ca_secret=ca if ca.is_file() else None,
                buildkit=True,
            )
        return {
            "reference": built.references[0],
            "image_id": built.id,
            "seconds": round(time.monotonic() - start, 1),
        }

    @task
    def rebuild_cached(first: dict[str, Any]) -> dict[str, Any]:
        """Nothing changed, so every step is a cache hit: the same image id, in a fraction of the time."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            again = ImageHook().build(
                _context(tmp),
                repository=REPOSITORY,
                tags=[params["version"]],
                build_args={"PYTHON_IMAGE": params["python_image"]},
                labels=LABELS,
                buildkit=True,
            )
        seconds = round(time.monotonic() - start, 1)
        if again.id != first["image_id"]:
            raise AssertionError(f"an unchanged rebuild produced {again.id}, not {first['image_id']}")
        print(f"first build {first['seconds']} s, cached rebuild {seconds} s, same image {again.id}")
        return {"seconds": seconds, "first_seconds": first["seconds"]}

    @task
    def check_image(built: dict[str, Any]) -> dict[str, Any]:
        """Size budget, size against the base, non-root user, one flattened layer."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook()
        info = hook.inspect(built["reference"])
        base = hook.inspect(params["python_image"])
        mb, base_mb = info.size / 1e6, base.size / 1e6
        problems = []
        if mb > params["size_budget_mb"]:
            problems.append(f"{mb:.0f} MB is over the budget of {params['size_budget_mb']} MB")
        if info.size >= base.size:
            problems.append(f"{mb:.0f} MB is not smaller than its base ({base_mb:.0f} MB)")
        if info.runs_as_root:
            problems.append(f"runs as root (USER {info.user!r})")
        if problems:
            raise AssertionError("; ".join(problems))
        facts = {"mb": round(mb, 1), "base_mb": round(base_mb, 1), "user": info.user, "layers": info.layers}
        print(facts)
        return facts

    inspect_inside = SecureDockerOperator(
        task_id="inspect_inside",
        image="{{ ti.xcom_pull(task_ids='build')['reference'] }}",
        command=["python", "-c", INSPECT],
        network_mode="none",
        resources="xs",
    )

    @task
    def assert_inside(report: Any) -> dict[str, Any]:
        import json

        facts = report if isinstance(report, dict) else json.loads(report)
        problems = []
        if facts["uid"] == 0:
            problems.append("runs as uid 0")
        if facts["tools_found"]:
            problems.append(f"has {facts['tools_found']}")
        if facts["pip_module"] or facts["ensurepip_module"] or facts["dpkg_state"]:
            problems.append("pip, ensurepip or dpkg state is present")
        if facts["setuid_files"]:
            problems.append(f"setuid/setgid files: {facts['setuid_files']}")
        if facts["root_writable"]:
            problems.append("the root filesystem is writable")
        if problems:
            raise AssertionError("; ".join(problems))
        return facts

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(LABELS)

    linted = lint_dockerfile()
    built = build()
    linted >> built
    cached = rebuild_cached(built)
    checked = check_image(built)
    built >> inspect_inside
    inside = assert_inside(inspect_inside.output)
    [built, cached, checked, inside] >> cleanup()


minimal_dockerfile()
