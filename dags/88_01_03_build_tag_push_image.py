"""Pattern 88_01_03: build an image, tag it by version and commit, push it, and read it back.

Tags come from one versioning scheme (``version_tags``): the semantic version and ``sha-<commit>``
are immutable and name the build; environment tags (``staging``) move. ``latest`` is refused.
The push goes through the ``containerkit_registry`` connection (the same credentials the pull
secrets and the pre-flight use); the registry is then asked what it stored: the digest to deploy,
the compressed size a pull downloads and the user the image runs as. Local tags are removed at the
end, whatever happened.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from containerkit_examples import DEBIAN_IMAGE, REGISTRY_EXAMPLE_REPOSITORY, REGISTRY_EXAMPLE_VERSION

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG APP_VERSION
LABEL org.opencontainers.image.version="${APP_VERSION}" org.opencontainers.image.title="containerkit hello"
ENV APP_VERSION="${APP_VERSION}"
USER 65532:65532
CMD ["/bin/sh", "-c", "echo hello from $APP_VERSION"]
"""


@dag(
    dag_id="88_01_03_build_tag_push_image",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:image-build", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param("containerkit_registry_default", type="string"),
        "base_image": Param(DEBIAN_IMAGE, type="string", description="FROM image of the build."),
        "repository": Param(REGISTRY_EXAMPLE_REPOSITORY, type="string", description="Path on the registry."),
        "version": Param(REGISTRY_EXAMPLE_VERSION, type="string", description="Semantic version."),
        "git_sha": Param(None, type=["null", "string"], description="Commit of the build (sha-<12> tag)."),
        "environments": Param(["dev"], type="array", description="Moving environment tags."),
    },
    doc_md=__doc__,
)
def build_tag_push_image() -> None:
    @task
    def build() -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_tags import version_tags

        params = get_current_context()["params"]
        tags = version_tags(
            version=params["version"], git_sha=params["git_sha"], environments=params["environments"]
        )
        hook = ImageHook(params["registry_conn_id"])
        with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
            (Path(context) / "Dockerfile").write_text(DOCKERFILE)
            built = hook.build(
                context,
                repository=params["repository"],
                tags=tags,
                build_args={"BASE_IMAGE": params["base_image"], "APP_VERSION": params["version"]},
                labels={"containerkit.example": "88_01_03"},
            )
        return {"image_id": built.id, "references": list(built.references), "tags": list(tags.all)}

    @task
    def push(built: dict[str, Any]) -> str:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        return ImageHook(params["registry_conn_id"]).push(params["repository"], built["tags"])

    @task
    def read_back(built: dict[str, Any], digest: str) -> dict[str, Any]:
        """What the registry stored, checked against what the engine pushed."""
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        reference = built["references"][0]
        if hook.resolve_digest(reference) != digest:
            raise AssertionError(f"{reference} does not resolve to the pushed digest {digest}")
        config = hook.get_config(reference)
        if config.runs_as_root:
            raise AssertionError(f"{reference} runs as root (user {config.user!r})")
        return {
            "deploy": hook.parse_image(reference).pinned(digest),
            "compressed_bytes": hook.compressed_size(reference),
            "user": config.user,
            "version_label": config.labels.get("org.opencontainers.image.version"),
        }

    @task(trigger_rule="all_done")
    def remove_local_tags(built: dict[str, Any]) -> None:
        from containerkit.hooks.image import ImageHook

        hook = ImageHook(get_current_context()["params"]["registry_conn_id"])
        for reference in built["references"]:
            hook.remove(reference)

    built = build()
    digest = push(built)
    read_back(built, digest) >> remove_local_tags(built)


build_tag_push_image()
