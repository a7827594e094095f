"""Build once, tag semver + git SHA + environment, push, promote dev to prod by digest, refuse latest.

**Problem.** ``latest`` and rebuilt-per-environment images make it impossible to say what runs where:
two "identical" builds differ (new base, new packages), and a moving tag cannot be rolled back to.

**Practice.** One build per commit. Its immutable tags name it (the semantic version and
``sha-<12 hex>`` of the commit); moving environment tags (``dev``, then ``prod``) point at it for
now. Deployments pin the digest. Promotion re-points a tag at the *same manifest bytes* (a registry
API call, no rebuild, no pull), so prod runs exactly what dev tested. ``latest`` is refused.

**Where each sub-point is covered.**

- semantic versioning: ``build`` (``version_tags(version=...)``; the version is also the OCI label);
- git SHA tags: ``build`` (``sha-<12>`` from the ``git_sha`` param, ``$GIT_COMMIT``/``$GITHUB_SHA``
  or ``git rev-parse HEAD`` of the DAG folder);
- environment tags: ``build`` tags ``dev``; ``promote`` moves ``prod`` to dev's digest;
- latest management: ``refuse_latest`` proves ``latest`` is refused before any registry call and is
  absent from the repository;
- every tag resolving to one digest: ``verify_tags``; no rebuild on promotion: ``promote`` compares
  the manifest digest and the config digest (the image id) before and after.

**Copying.** Set ``repository`` to your path on the registry of the ``containerkit_registry_default``
connection, feed ``version``/``git_sha`` from your CI, and replace ``DOCKERFILE`` with your build
context. **Needs** a Docker engine (``needs:docker``) and a registry connection with push rights
(``needs:registry``). Local tags made here are removed by ``cleanup`` whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task, teardown

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_04_02_image_versioning"
LABELS = {"containerkit.reference": DAG_ID}

DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
ARG APP_VERSION=0.0.0
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.version="${APP_VERSION}" \\
      org.opencontainers.image.revision="${GIT_SHA}" \\
      org.opencontainers.image.title="containerkit versioning example"
USER 65532:65532
CMD ["/bin/sh", "-c", "echo hello from version ${APP_VERSION}"]
"""


def _commit(explicit: str | None) -> str:
    """The commit being built: the param, a CI variable, or the DAG folder's git HEAD."""
    for value in (explicit, os.environ.get("GIT_COMMIT"), os.environ.get("GITHUB_SHA")):
        if value:
            return value
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        # Not in a git checkout (e.g. a mounted DAG folder): name the build by its content instead.
        return hashlib.sha256(DOCKERFILE.encode()).hexdigest()[:40]


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string"),
        "base_image": Param(DEBIAN_IMAGE, type="string", description="FROM image (build arg BASE_IMAGE)."),
        "repository": Param("containerkit-examples/versioned", type="string"),
        "version": Param("1.4.2", type="string", description="Semantic version of this build."),
        "git_sha": Param(None, type=["null", "string"], description="Commit (default: CI env / git HEAD)."),
        "build_environment": Param("dev", type="string", description="Environment tag set at build."),
        "promote_to": Param("prod", type="string", description="Environment promoted to, by digest."),
    },
    doc_md=__doc__,
)
def image_versioning() -> None:
    @task
    def build() -> dict[str, Any]:
        """Build once; tag version, sha-<12> and the build environment."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_tags import version_tags

        params = get_current_context()["params"]
        sha = _commit(params["git_sha"])
        tags = version_tags(
            version=params["version"], git_sha=sha, environments=[params["build_environment"]]
        )
        hook = ImageHook(params["registry_conn_id"])
        with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
            (Path(context) / "Dockerfile").write_text(DOCKERFILE)
            built = hook.build(
                context,
                repository=params["repository"],
                tags=tags,
                build_args={
                    "BASE_IMAGE": params["base_image"],
                    "APP_VERSION": params["version"],
                    "GIT_SHA": sha,
                },
                labels=LABELS,
            )
        print(f"built {built.id} as {', '.join(built.references)}")
        return {
            "image_id": built.id,
            "references": list(built.references),
            "immutable": list(tags.immutable),
            "moving": list(tags.moving),
            "git_sha": sha,
        }

    @task
    def push(built: dict[str, Any]) -> str:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        return ImageHook(params["registry_conn_id"]).push(
            params["repository"], built["immutable"] + built["moving"]
        )

    @task
    def verify_tags(built: dict[str, Any], digest: str) -> dict[str, Any]:
        """Every tag of the build resolves to the pushed digest; the labels carry version and commit."""
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        resolved = {
            tag: hook.resolve_digest(f"{params['repository']}:{tag}")
            for tag in built["immutable"] + built["moving"]
        }
        wrong = {tag: d for tag, d in resolved.items() if d != digest}
        if wrong:
            raise AssertionError(f"tags not on the pushed digest {digest}: {wrong}")
        config = hook.get_config(f"{params['repository']}@{digest}")
        labels = config.labels
        if labels.get("org.opencontainers.image.version") != params["version"]:
            raise AssertionError(f"version label is {labels.get('org.opencontainers.image.version')!r}")
        if labels.get("org.opencontainers.image.revision") != built["git_sha"]:
            raise AssertionError(f"revision label is {labels.get('org.opencontainers.image.revision')!r}")
        if config.runs_as_root:
            raise AssertionError(f"the image runs as root (user {config.user!r})")
        deploy = hook.parse_image(f"{params['repository']}:{built['immutable'][0]}").pinned(digest)
        print(f"deploy {deploy}; tags {sorted(resolved)}")
        return {"deploy": deploy, "tags": sorted(resolved), "config_digest": config.digest}

    @task
    def refuse_latest(built: dict[str, Any]) -> list[str]:
        """``latest`` is refused where tags are made and where they are pushed, and is not in the registry."""
        from containerkit.errors import SpecError
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_tags import version_tags
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        refused = []
        for attempt, call in (
            (
                "version_tags(environments=['latest'])",
                lambda: version_tags(version="1.0.0", environments=["latest"]),
            ),
            (
                "ImageHook.push(..., ['latest'])",
                lambda: ImageHook(params["registry_conn_id"]).push(params["repository"], ["latest"]),
            ),
        ):
            try:
                call()
            except SpecError as exc:
                refused.append(f"{attempt}: {exc.problem}")
                continue
            raise AssertionError(f"{attempt} was accepted")
        tags = RegistryHook(params["registry_conn_id"]).list_tags(params["repository"])
        if "latest" in tags:
            raise AssertionError(f"{params['repository']} has a latest tag: {tags}")
        print("\n".join(refused))
        return refused

    @task
    def promote(verified: dict[str, Any]) -> dict[str, Any]:
        """Point the target environment tag at the build environment's manifest: same bytes, no rebuild."""
        from containerkit.hooks.image_tags import check_tag
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        repository = params["repository"]
        source = f"{repository}:{params['build_environment']}"
        digest = hook.resolve_digest(source)
        manifest = hook.get_manifest(f"{repository}@{digest}")
        target_tag = check_tag(params["promote_to"], field="promote_to")
        stored = hook.put_manifest(f"{repository}:{target_tag}", manifest.raw, manifest.media_type)
        promoted = hook.resolve_digest(f"{repository}:{target_tag}")
        config = hook.get_config(f"{repository}:{target_tag}")
        if not (stored == promoted == digest) or config.digest != verified["config_digest"]:
            raise AssertionError(f"promotion changed the image: {digest} -> {promoted}")
        print(f"{target_tag} -> {digest} (the {params['build_environment']} image, not rebuilt)")
        return {
            "environment": target_tag,
            "digest": promoted,
            "deploy": hook.parse_image(f"{repository}:{target_tag}").pinned(promoted),
        }

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook(get_current_context()["params"]["registry_conn_id"]).remove_labeled(LABELS)

    built = build()
    digest = push(built)
    verified = verify_tags(built, digest)
    promoted = promote(verified)
    latest = refuse_latest(built)
    digest >> latest  # the registry check reads the pushed repository
    [built, promoted, latest] >> cleanup()


image_versioning()
