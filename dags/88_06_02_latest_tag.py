"""Anti-pattern: `latest` and other moving tags; refused, and a moved tag shown not to touch a pinned task.

**Problem.** ``image: app:latest`` (or no tag at all) names whatever was pushed last: a retry, a backfill
or a second worker can run different code than the first try, nobody can say which build produced a
result, and a bad push reaches every task at once. Any tag that moves (``prod``, ``1.4``) has the same
problem for whoever runs it by tag.

**Practice.** Never deploy ``latest``: containerkit refuses it in the spec, in policy and in the one place
tags are made. Tag builds with immutable versions, let environment tags move, and run tasks by digest
(``repo@sha256:...``, ``pin_image`` / ``pin_image_digest=True``), so a moved tag changes nothing until
the DAG is changed on purpose.

**Where each sub-point is covered.**

- version pinning / ``latest`` refused: ``latest_refused`` asserts that a ``:latest`` and an untagged
  image fail at construction (``SpecError``), that the lint API reports ``DKR-013`` for docker run
  settings and ``DF-001`` for ``FROM ...:latest`` in a Dockerfile, and that ``check_tag`` refuses to make
  the tag.
- tag strategies: ``build_v1`` builds and pushes ``1.0.0`` + the moving ``prod`` tag; ``pin_prod`` pins
  ``prod`` to its digest.
- unexpected updates: ``move_prod_tag`` builds and pushes ``1.1.0`` as ``prod``; the tag now names
  another image.
- reproducibility: ``run_pinned`` (the digest) and ``run_by_tag`` (the tag, pulled now) both run;
  ``check_reproducible`` asserts the pinned task still ran 1.0.0 while the tag ran 1.1.0, and that the
  registry's ``prod`` digest changed.
- ``remove_images`` deletes the local images the run built or pulled.

**When copying.** Point ``registry_conn_id`` at your registry and ``repository`` at your image; pin in the
task (``pin_image_digest=True``) or in the DAG file (a digest from the release pipeline). Outcome tag
``failure``: the refusals are the demonstrated failures; the run succeeds when they are caught.

**Needs.** A Docker engine and a registry the engine can pull from (``needs:docker``, ``needs:registry``;
connection ``containerkit_registry_default``). ``CONTAINERKIT_DEBIAN_IMAGE`` is the build base
(default ``debian:12.8-slim``).
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

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
REPOSITORY = "containerkit-examples/moving-tag"
LABELS = {"containerkit.example": "88_06_02"}
DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE} AS build
# The label marks the build stage too, so the cleanup finds it (the classic builder keeps stages).
LABEL containerkit.example="88_06_02"
ARG APP_VERSION
RUN mkdir -p /out/app && echo "${APP_VERSION}" > /out/app/version \\
 && cp --parents /bin/cat $(ldd /bin/cat | grep -o '/[^ ]*') /out/
# Only cat, its libraries and the version file: a ~2 MB image that pushes in a second.
FROM scratch
COPY --from=build /out/ /
ARG APP_VERSION
LABEL org.opencontainers.image.version="${APP_VERSION}"
USER 65532:65532
CMD ["/bin/cat", "/app/version"]
"""


def _build_and_push(version: str) -> dict[str, str]:
    """Build ``version`` tagged ``<version>`` and the moving ``prod``, push both, return the digest."""
    from containerkit.hooks.image import ImageHook
    from containerkit.hooks.image_tags import version_tags

    params = get_current_context()["params"]
    hook = ImageHook(params["registry_conn_id"])
    tags = version_tags(version=version, environments=["prod"])
    with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
        (Path(context) / "Dockerfile").write_text(DOCKERFILE)
        built = hook.build(
            context,
            repository=params["repository"],
            tags=tags,
            build_args={"BASE_IMAGE": params["base_image"], "APP_VERSION": version},
            labels=LABELS,
        )
    digest = hook.push(params["repository"], tags)
    prod = next(r for r in built.references if r.endswith(":prod"))
    return {"image_id": built.id, "prod": prod, "digest": digest}


@dag(
    dag_id="88_06_02_latest_tag",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "anti-pattern", "beginner", "failure", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string"),
        "repository": Param(REPOSITORY, type="string", description="Path on the registry."),
        "base_image": Param(DEBIAN_IMAGE, type="string", description="FROM image of the builds."),
    },
    doc_md=__doc__,
)
def latest_tag() -> None:
    @task
    def latest_refused() -> dict[str, Any]:
        """Every door ``latest`` could come through is closed, each with its own rule and fix."""
        from containerkit.errors import SpecError
        from containerkit.hooks.image_tags import check_tag
        from containerkit.policy.engine import evaluate_docker_run
        from containerkit.policy.lint import lint_paths

        refused: dict[str, str] = {}
        for image in (f"{DEBIAN_IMAGE.rsplit(':', 1)[0]}:latest", DEBIAN_IMAGE.rsplit(":", 1)[0]):
            try:
                SecureDockerOperator(task_id="floating", image=image, command=["true"], resources="xs")
            except SpecError as exc:
                refused[image] = exc.problem
            else:
                raise AssertionError(f"{image!r} was accepted by SecureDockerOperator")
        run_rules = {f.rule_id for f in evaluate_docker_run({"image": "python:latest", "user": "50000:0"})}
        if "DKR-013" not in run_rules:
            raise AssertionError(f"docker run settings with python:latest gave {sorted(run_rules)}")
        with tempfile.TemporaryDirectory(prefix="ck-lint-") as folder:
            (Path(folder) / "Dockerfile").write_text('FROM python:latest\nUSER 65532\nCMD ["python"]\n')
            dockerfile_rules = sorted({f.rule_id for f in lint_paths([folder]).findings})
        if dockerfile_rules != ["DF-001"]:
            raise AssertionError(f"FROM python:latest gave {dockerfile_rules}, expected exactly ['DF-001']")
        try:
            check_tag("latest")
        except SpecError as exc:
            refused["tag latest"] = exc.problem
        else:
            raise AssertionError("check_tag made a 'latest' tag")
        for what, why in refused.items():
            print(f"refused {what}: {why}")
        return {"refused": refused, "dockerfile": dockerfile_rules, "run": sorted(run_rules)}

    @task
    def build_v1() -> dict[str, str]:
        return _build_and_push("1.0.0")

    @task
    def pin_prod(v1: dict[str, str]) -> str:
        from containerkit.hooks.preflight import pin_image

        pinned = pin_image(v1["prod"], get_current_context()["params"]["registry_conn_id"])
        if not pinned.endswith(v1["digest"]):
            raise AssertionError(f"prod pinned to {pinned}, but 1.0.0 was pushed as {v1['digest']}")
        return pinned

    @task
    def move_prod_tag(pinned: str) -> dict[str, str]:
        """A new build takes over ``prod``: what a push by another pipeline does to every tag user."""
        v2 = _build_and_push("1.1.0")
        if pinned.endswith(v2["digest"]):
            raise AssertionError("the second build has the first build's digest: nothing moved")
        return v2

    pinned = pin_prod(build_v1())
    moved = move_prod_tag(pinned)

    run_pinned = SecureDockerOperator(
        task_id="run_pinned",
        image="{{ ti.xcom_pull(task_ids='pin_prod') }}",
        resources="xs",
        labels=LABELS,
    )
    run_by_tag = SecureDockerOperator(
        task_id="run_by_tag",
        image="{{ ti.xcom_pull(task_ids='move_prod_tag')['prod'] }}",
        force_pull=True,  # what a fresh worker does with a tag: it gets whatever the registry has now
        resources="xs",
        labels=LABELS,
    )

    @task
    def check_reproducible(pinned: str, v2: dict[str, str], pinned_out: str, tag_out: str) -> dict[str, Any]:
        from containerkit.hooks.registry import RegistryHook

        now = RegistryHook(get_current_context()["params"]["registry_conn_id"]).resolve_digest(v2["prod"])
        if now != v2["digest"] or pinned.endswith(now):
            raise AssertionError(
                f"registry prod digest {now}; pinned {pinned}; 1.1.0 pushed as {v2['digest']}"
            )
        if pinned_out.strip() != "1.0.0":
            raise AssertionError(f"the pinned task ran {pinned_out!r}, not the pinned 1.0.0")
        if tag_out.strip() != "1.1.0":
            raise AssertionError(f"the task run by tag ran {tag_out!r}, expected the moved-to 1.1.0")
        return {"pinned": pinned, "pinned_ran": pinned_out, "tag_now": now, "tag_ran": tag_out}

    @task(trigger_rule="all_done")
    def remove_images() -> list[str]:
        import docker

        client = docker.from_env()
        labels = [f"{k}={v}" for k, v in LABELS.items()]
        removed = []
        for image in client.images.list(all=True, filters={"label": labels}):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
                removed.append(image.id)
        client.images.prune(filters={"dangling": True, "label": labels})
        return removed

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this DAG failed: read its log")

    moved >> run_pinned >> run_by_tag
    check = check_reproducible(pinned, moved, run_pinned.output, run_by_tag.output)
    check >> remove_images()
    [pinned, moved, run_pinned, run_by_tag, check] >> fail_run_if_a_task_failed()
    latest_refused()


latest_tag()
