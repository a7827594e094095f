"""Anti-pattern: fat images; one app built fat and slim, sizes and pull times measured, a size budget applied.

**Problem.** An image that carries a full distribution, the build context's test data and ``.git``, and
a build cache "deleted" in a later layer (the bytes stay in the earlier one) is pulled by every worker
for every task that lands on a fresh node: slow starts, registry storage and egress paid per node,
and more packages to patch.

**Practice.** Build in stages and ship only the artifact; keep the build context small with
``.dockerignore``; never delete in a later layer what an earlier one added; measure the image and fail
the build when it grows past a budget.

**Where each sub-point is covered.**

- bloated images: ``build_images`` builds the same app twice with ``ImageHook``: ``fat`` (the whole
  Debian base, ``ADD . /app`` of a context with 8 MiB of test data and ``.git``, a 4 MiB build cache
  removed one layer later) and ``slim`` (multi-stage: only the program, its libraries and the app file,
  ``.dockerignore`` for the rest); it records size and layer count of each (``ImageHook.inspect``).
- long pull times: ``measure_pulls`` pushes both to the registry, removes the local copies and pulls
  each back, timing the pull and reading the compressed bytes from the registry (``RegistryHook``).
- storage costs / optimization: ``size_budget`` raises a finding for every image over
  ``size_budget_mib`` and asserts it names exactly the fat image; the saving is in its return value.
  ``lint_dockerfiles`` runs the Dockerfile rules on both (the fat one trips ``DF-005``).
- the corrected image runs: ``run_slim`` runs the slim image as a hardened task and ``check_same_app``
  asserts it prints what the fat one holds.
- ``remove_images`` deletes every local image the run built or pulled.

**When copying.** Put your own Dockerfiles in, keep the budget in a param and run ``size_budget`` in the
image's CI. ``CONTAINERKIT_DEBIAN_IMAGE`` (default ``debian:12.8-slim``) is the base.
Outcome tag ``failure``: the budget finding is the demonstrated failure; the run succeeds when it
names the fat image and only it.

**Needs.** A Docker engine and a registry it can pull from (``needs:docker``, ``needs:registry``,
connection ``containerkit_registry_default``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REPOSITORY = "containerkit-examples/size"
LABELS = {"containerkit.example": "88_06_03"}
MESSAGE = "report: 42 rows\n"
FAT = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
LABEL containerkit.example="88_06_03"
ADD . /app
RUN mkdir -p /var/cache/build && head -c 4194304 /dev/urandom > /var/cache/build/objects.bin
RUN rm -rf /var/cache/build
USER 65532:65532
CMD ["/bin/cat", "/app/message"]
"""
SLIM = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE} AS build
LABEL containerkit.example="88_06_03"
COPY message /out/app/message
RUN cp --parents /bin/cat $(ldd /bin/cat | grep -o '/[^ ]*') /out/
FROM scratch
COPY --from=build /out/ /
USER 65532:65532
CMD ["/bin/cat", "/app/message"]
"""


def _context(root: Path, dockerfile: str, *, dockerignore: bool) -> Path:
    """The app's build context: the app file, plus test data and VCS history a careless COPY takes."""
    root.mkdir()
    (root / "Dockerfile").write_text(dockerfile)
    (root / "message").write_text(MESSAGE)
    (root / "testdata").mkdir()
    (root / "testdata" / "fixtures.bin").write_bytes(os.urandom(6 << 20))
    (root / ".git").mkdir()
    (root / ".git" / "pack.bin").write_bytes(os.urandom(2 << 20))
    if dockerignore:
        (root / ".dockerignore").write_text("*\n!message\n")
    return root


@dag(
    dag_id="88_06_03_fat_images",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "anti-pattern", "intermediate", "failure", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param("containerkit_registry_default", type="string"),
        "repository": Param(REPOSITORY, type="string", description="Path on the registry."),
        "base_image": Param(DEBIAN_IMAGE, type="string", description="FROM image of both builds."),
        "size_budget_mib": Param(40, type="integer", minimum=1, description="Largest acceptable image."),
    },
    doc_md=__doc__,
)
def fat_images() -> None:
    @task
    def build_images() -> dict[str, dict[str, Any]]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook(params["registry_conn_id"])
        out: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="ck-size-") as tmp:
            for variant, dockerfile in (("fat", FAT), ("slim", SLIM)):
                context = _context(Path(tmp) / variant, dockerfile, dockerignore=variant == "slim")
                built = hook.build(
                    context,
                    repository=params["repository"],
                    tags=[f"1.0.0-{variant}"],
                    build_args={"BASE_IMAGE": params["base_image"]},
                    labels=LABELS,
                )
                info = hook.inspect(built.references[0])
                out[variant] = {"reference": built.references[0], "bytes": info.size, "layers": info.layers}
                print(
                    f"{variant}: {info.size / 2**20:.1f} MiB in {info.layers} layers ({built.references[0]})"
                )
        return out

    @task
    def lint_dockerfiles() -> dict[str, list[str]]:
        from containerkit.policy.lint import lint_paths

        found: dict[str, list[str]] = {}
        with tempfile.TemporaryDirectory(prefix="ck-lint-") as tmp:
            for variant, text in (("fat", FAT), ("slim", SLIM)):
                folder = Path(tmp) / variant
                folder.mkdir()
                (folder / "Dockerfile").write_text(text)
                found[variant] = sorted({f.rule_id for f in lint_paths([folder]).findings})
        if "DF-005" not in found["fat"] or "DF-005" in found["slim"]:
            raise AssertionError(f"ADD of the whole context not flagged on the fat image only: {found}")
        return found

    @task
    def measure_pulls(images: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Push, drop the local copy, pull back: what a node that has only the base image downloads."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = ImageHook(params["registry_conn_id"])
        registry = RegistryHook(params["registry_conn_id"])
        out: dict[str, dict[str, Any]] = {}
        for variant, image in images.items():
            reference = image["reference"]
            hook.push(params["repository"], [reference.rsplit(":", 1)[1]])
            compressed = registry.compressed_size(reference)
            hook.remove(reference, force=True)
            start = time.monotonic()
            hook.pull(reference)
            seconds = time.monotonic() - start
            out[variant] = {**image, "compressed_bytes": compressed, "pull_seconds": round(seconds, 2)}
            print(f"{variant}: {compressed / 2**20:.1f} MiB compressed, pulled in {seconds:.2f} s")
        if out["fat"]["compressed_bytes"] < 5 * out["slim"]["compressed_bytes"]:
            raise AssertionError(f"the fat image is not much larger on the registry: {out}")
        return out

    @task
    def size_budget(images: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The budget check an image's CI runs: one finding per image over budget."""
        budget = get_current_context()["params"]["size_budget_mib"] << 20
        findings = [
            {
                "check": "image-size-budget",
                "severity": "error",
                "image": image["reference"],
                "message": f"{image['bytes'] / 2**20:.1f} MiB exceeds the {budget >> 20} MiB budget",
                "fix": "build in stages and copy only the artifact; add a .dockerignore; "
                "delete build caches in the layer that creates them",
            }
            for image in images.values()
            if image["bytes"] > budget
        ]
        for finding in findings:
            print(f"[{finding['check']}] {finding['image']}: {finding['message']}. Fix: {finding['fix']}")
        flagged = [f["image"] for f in findings]
        if flagged != [images["fat"]["reference"]]:
            raise AssertionError(f"budget flagged {flagged}, expected exactly the fat image")
        saving = images["fat"]["bytes"] - images["slim"]["bytes"]
        return {"findings": findings, "saving_mib": round(saving / 2**20, 1)}

    run_slim = SecureDockerOperator(
        task_id="run_slim",
        image="{{ ti.xcom_pull(task_ids='build_images')['slim']['reference'] }}",
        resources="xs",
        labels=LABELS,
    )

    @task
    def check_same_app(slim_output: str) -> str:
        if slim_output.strip() != MESSAGE.strip():
            raise AssertionError(f"the slim image printed {slim_output!r}, expected {MESSAGE.strip()!r}")
        return slim_output

    @task(trigger_rule="all_done")
    def remove_images() -> int:
        import docker

        client = docker.from_env()
        labels = [f"{k}={v}" for k, v in LABELS.items()]
        removed = 0
        for image in client.images.list(all=True, filters={"label": labels}):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
                removed += 1
        client.images.prune(filters={"dangling": True, "label": labels})
        return removed

    images = build_images()
    pulls = measure_pulls(images)
    budget = size_budget(images)
    pulls >> run_slim

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this DAG failed: read its log")

    checked = check_same_app(run_slim.output)
    linted = lint_dockerfiles()
    [budget, checked, linted] >> remove_images()
    [images, pulls, budget, run_slim, checked, linted] >> fail_run_if_a_task_failed()


fat_images()
