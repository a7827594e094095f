"""Run the official Airflow image pinned, hardened and configured by env: tag to digest, variants, contract.

**Problem.** ``apache/airflow`` publishes one image per Airflow version, Python version and variant
(``3.3.2-python3.11``, ``slim-3.3.2-python3.11``, ``3.3.2`` …). A bare ``apache/airflow`` or ``latest``
changes under you, a ``slim`` variant lacks the providers a full one has, and a container started with
``docker run`` defaults runs with every capability and a writable root.

**Practice.** Name an exact version-and-Python tag, resolve it to the digest the registry serves and
record it; know which variants exist and what each costs to pull; configure Airflow only through
``AIRFLOW__{SECTION}__{KEY}`` env vars (never a baked ``airflow.cfg``; under a read-only root,
``AIRFLOW_CONFIG`` points the default file Airflow writes on first start at the tmpfs); run the image
hardened (uid 50000, gid 0, read-only root, no capabilities, sized) and check the contract the image
promises.

**Where each sub-point is covered.**

- image tags and versions: ``resolve_tag`` resolves the tag to its digest with ``RegistryHook`` (on a
  private registry that is not the image's own, it first mirrors the engine's copy there);
- variants (slim, full): ``list_variants`` lists every tag of the same Airflow version with its
  variant, Python version, digest and compressed (pull) size;
- environment configuration: ``config_from_env`` runs ``airflow config list`` with ``AIRFLOW__``
  overrides and ``check_contract`` asserts each override won over the image default;
- basic docker run: ``airflow_version`` runs ``airflow version`` in a ``SecureDockerOperator``
  container (restricted profile, ``m`` preset); ``image_contract`` reports uid, gid, ``AIRFLOW_HOME``
  and its ownership from inside the container, and ``check_contract`` compares them (and the image's
  ``USER``/``ENV`` from ``ImageHook.inspect``) with the contract: uid 50000, gid 0,
  ``AIRFLOW_HOME=/opt/airflow`` owned by group 0 and group-writable.

**When copying.** Set ``CONTAINERKIT_AIRFLOW_IMAGE`` (or ``AIRFLOW_IMAGE``) to the tag you deploy and
pin the digest ``resolve_tag`` returns in your deployment; set ``registry_conn_id`` to a
``containerkit_registry`` connection (``docker.io`` for Docker Hub, or your mirror).

**Needs.** A Docker engine (``needs:docker``) holding or able to pull the image, and a registry
connection (``needs:registry``; without one the two registry tasks skip with the reason).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task

AIRFLOW_IMAGE = os.environ.get("CONTAINERKIT_AIRFLOW_IMAGE", "apache/airflow:3.3.2-python3.11")
REGISTRY_CONN_ID = os.environ.get("CONTAINERKIT_REGISTRY_CONN_ID", "containerkit_registry_default")
# The image contract the compose file, the Helm chart and `user:` settings rely on.
CONTRACT = {"uid": 50000, "gid": 0, "airflow_home": "/opt/airflow"}
# Overrides the container must see instead of the image defaults (non-secret settings only).
OVERRIDES = {"AIRFLOW__CORE__PARALLELISM": "7", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
# Airflow writes a default airflow.cfg on first start; under a read-only root it goes to the tmpfs.
WRITABLE_CONFIG = {"AIRFLOW_CONFIG": "/tmp/airflow.cfg"}
# `<slim->VERSION[-pythonX.Y]`: the official tag scheme.
VARIANT_TAG = re.compile(r"^(?P<slim>slim-)?(?P<version>\d+\.\d+\.\d+)(?:-python(?P<python>\d+\.\d+))?$")

# Runs inside the image: the facts of the contract, as one JSON line (the XCom).
CONTRACT_REPORT = r"""
import json, os, stat, sys
home = os.environ.get("AIRFLOW_HOME", "")
st = os.stat(home) if home else None
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "airflow_home": home,
    "home_group": st.st_gid if st else None,
    "home_group_writable": bool(st and st.st_mode & stat.S_IWGRP),
    "python": "%d.%d" % sys.version_info[:2],
}))
"""
# One `airflow config` run (each Airflow CLI start costs seconds): the effective [core] values. The
# values stay in this process; only the two options checked are printed.
CONFIG_REPORT = r"""
import json, subprocess
cmd = ["airflow", "config", "list", "--section", "core", "--show-values"]
out = subprocess.run(cmd, capture_output=True, text=True, check=True)
values = dict(line.split(" = ", 1) for line in out.stdout.splitlines() if " = " in line)
print(json.dumps({"parallelism": values.get("parallelism"), "executor": values.get("executor")}))
"""


def _registry_or_skip(conn_id: str) -> Any:
    """The registry hook of ``conn_id``, or skip: without a registry there is nothing to resolve against."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSkipException

    from containerkit.hooks.registry import RegistryHook

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise AirflowSkipException(
            f"needs:registry: no connection {conn_id!r}; set AIRFLOW_CONN_{conn_id.upper()} "
            '(e.g. {"conn_type": "containerkit_registry", "host": "docker.io"}) or the registry_conn_id param'
        ) from None
    return RegistryHook(conn_id)


@dag(
    dag_id="88_01_01_official_docker_image",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "beginner", "success", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string", description="containerkit_registry."),
    },
    doc_md=__doc__,
)
def official_docker_image() -> None:
    @task
    def resolve_tag() -> dict[str, str]:
        """The digest behind the tag, on the connection's registry (mirrored there first if needed)."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.image_reference import ImageName

        conn_id = get_current_context()["params"]["registry_conn_id"]
        hook = _registry_or_skip(conn_id)
        source = ImageName.parse(AIRFLOW_IMAGE)
        if source.tag is None:
            raise ValueError(f"image {AIRFLOW_IMAGE!r} has no tag: name a version, e.g. :3.3.2-python3.11")
        registry = hook.registry
        mirrored = source.registry.lower() != registry.lower()
        name = hook.parse_image(f"{registry}/{source.repository}:{source.tag}") if mirrored else source
        if mirrored and not hook.image_exists(name):
            # A private mirror of the public image: push the engine's copy (keeps the content).
            images = ImageHook(conn_id)
            images.tag(AIRFLOW_IMAGE, name.name, [source.tag])
            try:
                images.push(name.name, [source.tag])
            finally:
                images.api.remove_image(f"{name.name}:{source.tag}")
            print(f"mirrored {AIRFLOW_IMAGE} into {registry}")
        digest = hook.resolve_digest(name)
        print(f"{name.reference} -> {digest}: deploy {name.name}@{digest}")
        pinned = f"{name.name}@{digest}"
        return {"repository": name.name, "tag": source.tag, "digest": digest, "pinned": pinned}

    @task
    def list_variants(resolved: dict[str, str]) -> list[dict[str, Any]]:
        """Every tag of the same Airflow version: variant, Python, digest and pull size."""
        hook = _registry_or_skip(get_current_context()["params"]["registry_conn_id"])
        wanted = VARIANT_TAG.match(resolved["tag"])
        if wanted is None:
            raise ValueError(f"tag {resolved['tag']!r} is not <slim->VERSION-pythonX.Y")
        variants = []
        for tag in sorted(hook.list_tags(resolved["repository"])):
            match = VARIANT_TAG.match(tag)
            if match is None or match["version"] != wanted["version"]:
                continue
            ref = f"{resolved['repository']}:{tag}"
            variants.append(
                {
                    "tag": tag,
                    "variant": "slim" if match["slim"] else "full",
                    "python": match["python"] or "default",
                    "digest": hook.resolve_digest(ref),
                    "compressed_mb": round(hook.compressed_size(ref) / 2**20, 1),
                }
            )
        if resolved["tag"] not in {v["tag"] for v in variants}:
            raise AssertionError(f"{resolved['tag']} missing from the registry's tags: {variants}")
        for v in variants:
            print(f"{v['tag']:<28} {v['variant']:<5} python {v['python']:<8} {v['compressed_mb']:>7} MB")
        return variants

    airflow_version = SecureDockerOperator(
        task_id="airflow_version",
        image=AIRFLOW_IMAGE,
        command=["airflow", "version"],
        environment=WRITABLE_CONFIG,
        resources="m",  # the Airflow CLI imports for about a CPU-second: a 0.5 CPU limit doubles it
    )
    config_from_env = SecureDockerOperator(
        task_id="config_from_env",
        image=AIRFLOW_IMAGE,
        command=["python", "-c", CONFIG_REPORT],
        environment={**WRITABLE_CONFIG, **OVERRIDES},
        resources="m",
    )
    image_contract = SecureDockerOperator(
        task_id="image_contract",
        image=AIRFLOW_IMAGE,
        command=["python", "-c", CONTRACT_REPORT],
        resources="xs",
    )

    @task
    def check_contract(version: str, config: str, facts: str) -> dict[str, Any]:
        """Fail with every broken promise: contract facts, image metadata, env overrides, version."""
        from containerkit.hooks.image import ImageHook

        image = AIRFLOW_IMAGE
        info = ImageHook().inspect(image)
        env = dict(item.split("=", 1) for item in ImageHook().api.inspect_image(image)["Config"]["Env"])
        seen = json.loads(facts)
        settings = json.loads(config)
        problems = []
        if info.user.split(":")[0] not in (str(CONTRACT["uid"]), "airflow"):
            problems.append(f"image USER is {info.user!r}, not {CONTRACT['uid']}")
        if env.get("AIRFLOW_HOME") != CONTRACT["airflow_home"]:
            problems.append(f"image ENV AIRFLOW_HOME={env.get('AIRFLOW_HOME')!r}")
        for key in ("uid", "gid", "airflow_home"):
            if seen[key] != CONTRACT[key]:
                problems.append(f"in the container {key}={seen[key]!r}, the contract is {CONTRACT[key]!r}")
        if seen["home_group"] != 0 or not seen["home_group_writable"]:
            problems.append(f"AIRFLOW_HOME is not group-0 writable: {seen}")
        expected = {"parallelism": OVERRIDES["AIRFLOW__CORE__PARALLELISM"], "executor": "LocalExecutor"}
        if settings != expected:
            problems.append(f"AIRFLOW__ overrides not applied: {settings} != {expected}")
        tag_version = VARIANT_TAG.match(image.rsplit(":", 1)[-1])
        if tag_version and version.strip() != tag_version["version"]:
            problems.append(f"airflow version {version!r} is not the tag's {tag_version['version']}")
        if problems:
            raise AssertionError("official image contract broken: " + "; ".join(problems))
        result = {**seen, "airflow": version.strip(), "config": settings, "image_user": info.user}
        print(f"contract holds: {result}")
        return result

    list_variants(resolve_tag())
    check_contract(airflow_version.output, config_from_env.output, image_contract.output)


official_docker_image()
