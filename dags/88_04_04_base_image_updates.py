"""Rebuild when the base image moves: compare digests, rebuild, smoke-test, push a new tag, else stop early.

**Problem.** Security patches arrive as a new base image behind the same tag (``debian:12-slim``,
``python:3.11-slim``). An image built last month keeps last month's packages until someone rebuilds
it, and nobody knows which images are stale.

**Practice.** Every build records the base it was built on (name and digest) in its labels
(``org.opencontainers.image.base.name`` / ``.base.digest``, the OCI annotation keys). A scheduled
DAG resolves the base tag's *current* digest in the registry and compares it with the one the
published image recorded. Unchanged: short-circuit (nothing is pulled or built). Moved: rebuild on
exactly the new digest, list the package changes it brings, smoke-test the new image, and only then
push a new immutable tag and move ``current``.

**Where each sub-point is covered.**

- rebuild triggers: ``check_base`` (registry digest vs the recorded label) and ``base_moved`` (a
  short-circuit; the run ends green without rebuilding when nothing moved);
- dependency updates and security patches: ``rebuild`` builds ``FROM base@<new digest>``;
  ``package_changes`` diffs the package inventory (dpkg/apk/Python, read from the image filesystems)
  of the published image and the rebuild: upgraded, added and removed packages;
- testing updated images: ``smoke_test`` runs the rebuilt image hardened before anything is pushed;
  ``publish`` pushes ``<version>-base.<digest12>`` and ``current`` and checks the recorded base.

**Copying.** Set ``base_image`` to the base your Dockerfile uses (its registry's connection in
``base_conn_id``), replace ``DOCKERFILE``/``SMOKE_TEST`` with yours, and set ``seed_base_from`` to
null (it only bootstraps a fresh registry, as the tests and the main job have). Schedule it daily.
**Needs** a Docker engine and a registry (``needs:docker``, ``needs:registry``). The test pushes a
new base digest to the local registry between runs and checks the rebuild.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_04_04_base_image_updates"
LABELS = {"containerkit.reference": DAG_ID}
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
MOVING_TAG = "current"

DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
ARG APP_VERSION=0.0.0
# The base may default to a non-root user; the build step needs root, the image does not.
USER 0:0
RUN mkdir -p /app && echo "${APP_VERSION}" > /app/VERSION
USER 65532:65532
CMD ["/bin/cat", "/app/VERSION"]
"""
SMOKE_TEST = 'test "$(id -u)" != 0 && . /etc/os-release && echo "$ID $VERSION_ID app $(cat /app/VERSION)"'


@dag(
    dag_id=DAG_ID,
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["reference", "patterns", "intermediate", "success", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string", description="Where the app is published."),
        "base_conn_id": Param(REGISTRY_CONN_ID, type="string", description="The base image's registry."),
        "base_image": Param(
            "containerkit-examples/base/debian:12", type="string", description="Base tag watched."
        ),
        "seed_base_from": Param(
            DEBIAN_IMAGE,
            type=["null", "string"],
            description="Bootstrap only: a local image pushed as base_image when that tag does not exist.",
        ),
        "repository": Param("containerkit-examples/base-watch-app", type="string"),
        "app_version": Param("1.0.0", type="string"),
    },
    doc_md=__doc__,
)
def base_image_updates() -> None:
    @task
    def ensure_base() -> str:
        """The watched base tag (pushed from ``seed_base_from`` on a fresh registry only)."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        registry = RegistryHook(params["base_conn_id"])
        base = registry.parse_image(params["base_image"])
        if not registry.image_exists(base) and params["seed_base_from"]:
            hook = ImageHook(params["base_conn_id"])
            (reference,) = hook.tag(params["seed_base_from"], base.name, [base.tag or "missing-tag"])
            try:
                hook.push(base.name, [base.tag or "missing-tag"])
            finally:
                hook.remove(reference, only_built_by_hook=False)  # the tag only
        return str(base)

    @task
    def check_base(base: str) -> dict[str, Any]:
        """The base's current digest against the one the published image recorded."""
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        current = RegistryHook(params["base_conn_id"]).resolve_digest(base)
        app = RegistryHook(params["registry_conn_id"])
        published = f"{params['repository']}:{MOVING_TAG}"
        if not app.image_exists(published):
            recorded, digest = None, None
        else:
            digest = app.resolve_digest(published)
            recorded = app.get_config(f"{params['repository']}@{digest}").labels.get(BASE_DIGEST_LABEL)
        result = {
            "base": base,
            "base_digest": current,
            "recorded_base_digest": recorded,
            "published_digest": digest,
            "moved": recorded != current,
        }
        print(
            f"base {base} is {current}; {published} was built on {recorded or 'nothing yet'}: "
            + ("rebuild" if result["moved"] else "up to date")
        )
        return result

    @task.short_circuit
    def base_moved(check: dict[str, Any]) -> bool:
        return bool(check["moved"])

    @task
    def rebuild(check: dict[str, Any]) -> dict[str, Any]:
        """Build on exactly the new base digest and record it."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_tags import version_tags

        params = get_current_context()["params"]
        base_hook = ImageHook(params["base_conn_id"])
        name = base_hook.registry_hook.parse_image(check["base"])
        pinned = name.pinned(check["base_digest"])
        base_hook.pull(pinned)
        short = check["base_digest"].split(":", 1)[1][:12]
        tags = version_tags(version=f"{params['app_version']}-base.{short}", environments=[MOVING_TAG])
        hook = ImageHook(params["registry_conn_id"])
        with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
            (Path(context) / "Dockerfile").write_text(DOCKERFILE)
            built = hook.build(
                context,
                repository=params["repository"],
                tags=tags,
                build_args={"BASE_IMAGE": pinned, "APP_VERSION": params["app_version"]},
                labels={**LABELS, BASE_NAME_LABEL: str(name), BASE_DIGEST_LABEL: check["base_digest"]},
            )
        return {
            "reference": built.references[0],
            "image_id": built.id,
            "immutable": list(tags.immutable),
            "moving": list(tags.moving),
            "base_pinned": pinned,
        }

    @task
    def package_changes(check: dict[str, Any], built: dict[str, Any]) -> dict[str, Any]:
        """What the rebuild changes: packages upgraded, added and removed since the published image."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_audit import image_inventory

        params = get_current_context()["params"]
        hook = ImageHook(params["registry_conn_id"])
        new = {(p.kind, p.name): p.version for p in image_inventory(hook.api, built["reference"])}
        old: dict[tuple[str, str], str] = {}
        if check["published_digest"]:
            published = hook.registry_hook.parse_image(params["repository"]).pinned(check["published_digest"])
            had_it = any(published in (i.get("RepoDigests") or ()) for i in hook.api.images())
            hook.pull(published)
            try:
                old = {(p.kind, p.name): p.version for p in image_inventory(hook.api, published)}
            finally:
                if not had_it:
                    hook.api.remove_image(published)
        changes = {
            "upgraded": sorted(
                f"{n} {old[(k, n)]} -> {v}" for (k, n), v in new.items() if (k, n) in old and old[(k, n)] != v
            ),
            "added": sorted(f"{n} {v}" for (k, n), v in new.items() if (k, n) not in old),
            "removed": sorted(f"{n} {v}" for (k, n), v in old.items() if (k, n) not in new),
            "packages": len(new),
        }
        if not check["published_digest"]:
            changes["added"] = [f"{len(new)} packages (first build)"]
        print(changes)
        return changes

    smoke_test = SecureDockerOperator(
        task_id="smoke_test",
        image="{{ ti.xcom_pull(task_ids='rebuild')['reference'] }}",
        command=["/bin/sh", "-c", SMOKE_TEST],
        network_mode="none",
        resources="xs",
    )

    @task
    def publish(built: dict[str, Any], check: dict[str, Any], smoke: Any) -> dict[str, Any]:
        """Push only after the smoke test passed; the registry copy records the new base."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        if f"app {params['app_version']}" not in str(smoke):
            raise AssertionError(f"smoke test printed {smoke!r}")
        digest = ImageHook(params["registry_conn_id"]).push(
            params["repository"], built["immutable"] + built["moving"]
        )
        registry = RegistryHook(params["registry_conn_id"])
        labels = registry.get_config(f"{params['repository']}:{MOVING_TAG}").labels
        if labels.get(BASE_DIGEST_LABEL) != check["base_digest"]:
            raise AssertionError(f"{MOVING_TAG} records base {labels.get(BASE_DIGEST_LABEL)}")
        print(
            f"published {params['repository']}:{built['immutable'][0]} = {digest} on {check['base_digest']}"
        )
        return {"tag": built["immutable"][0], "digest": digest, "base_digest": check["base_digest"]}

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        removed = ImageHook(params["registry_conn_id"]).remove_labeled(LABELS)
        base_hook = ImageHook(params["base_conn_id"])
        name = base_hook.registry_hook.parse_image(params["base_image"]).name
        for record in base_hook.api.images(name=name):  # the digest reference the rebuild pulled
            for ref in record.get("RepoDigests") or ():
                if ref.startswith(f"{name}@"):
                    base_hook.api.remove_image(ref)
                    removed.append(ref)
        return removed

    base = ensure_base()
    check = check_base(base)
    gate = base_moved(check)
    built = rebuild(check)
    gate >> built
    changes = package_changes(check, built)
    built >> smoke_test
    published = publish(built, check, smoke_test.output)
    [base, changes, published] >> cleanup()


base_image_updates()
