"""Talk to the image registry through one connection: auth, tags, digest pinning, platforms, pull secret.

**Problem.** Images come from Docker Hub (rate limits), a private registry or a cloud registry
(short-lived tokens); each task that guesses credentials or trusts a moving tag fails late, as an
ImagePullBackOff minutes after the run started.

**Practice.** One Airflow connection of type ``containerkit_registry`` (``containerkit_registry_default``)
holds host, login and password/token; ``RegistryHook`` speaks the OCI distribution API with it
(Bearer or Basic, as the registry's challenge asks). Tags are pinned to digests before launch
(``pin_image``, what the operators' ``pin_image_digest=True`` runs), a missing tag fails in about a
second, and the same credentials render the ``kubernetes.io/dockerconfigjson`` pull Secret.

**Where each sub-point is covered.**

- private registry / auth: ``check_auth`` (``test_connection``: the registry accepted these
  credentials) and ``seed`` (push through the connection);
- tags and digest: ``tags_and_digest`` (``list_tags``, ``resolve_digest``, ``pin_image``, the
  image config, compressed pull size, and a missing tag failing fast with ``ImagePull:not-found``);
- platforms: ``platforms`` (index or single manifest, the platform list, this machine's manifest);
- image pull secrets: ``pull_secret`` renders the Secret from the connection, then *uses* it: the
  ``.dockerconfigjson`` is decoded as the kubelet would and the pinned digest is pulled with it.
  Skipped with its reason for an anonymous connection (a pull secret needs credentials);
- Docker Hub and cloud registries: the connection examples below.

**Connections** (``AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT`` as JSON, or the UI form):

- Docker Hub: ``{"conn_type": "containerkit_registry", "host": "docker.io", "login": "<user>",
  "password": "<access token>"}``; anonymous pulls are rate-limited per IP, authenticated ones per account.
- AWS ECR: host ``<account>.dkr.ecr.<region>.amazonaws.com``, login ``AWS``, password the output of
  ``aws ecr get-login-password`` (valid 12 hours: refresh it with a secrets backend or a task
  before the run; on EKS prefer IRSA on the nodes for pulls).
- Google Artifact Registry / GCR: host ``<region>-docker.pkg.dev`` (or ``gcr.io``), login
  ``oauth2accesstoken``, password ``gcloud auth print-access-token`` (1 hour); or login
  ``_json_key`` with the service-account key JSON (long-lived: rotate it). On GKE prefer Workload Identity.
- Azure ACR: host ``<name>.azurecr.io``, login ``00000000-0000-0000-0000-000000000000``, password
  the refresh token from ``az acr login --expose-token`` (3 hours), or a service principal's
  id/secret (login/password); on AKS attach the registry to the cluster instead.

**Copying.** Point ``image`` at your repository:tag (``seed_from`` empty when it already exists),
and create the Secret with the rendered manifest (``pull_secret`` returns it without the payload).
**Needs** a Docker engine and a registry connection (``needs:docker``, ``needs:registry``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task, teardown

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_04_01_image_registry"
LABELS = {"containerkit.reference": DAG_ID}

DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="containerkit registry example"
USER 65532:65532
CMD ["/bin/true"]
"""


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string"),
        "image": Param(
            "containerkit-examples/registry-demo:1.0.0",
            type="string",
            description="repository:tag on the connection's registry (host optional).",
        ),
        "seed_from": Param(
            DEBIAN_IMAGE,
            type=["null", "string"],
            description="Base to build and push `image` from first (null: the image already exists).",
        ),
        "namespace": Param(NAMESPACE, type="string", description="Namespace of the rendered pull Secret."),
    },
    doc_md=__doc__,
)
def image_registry() -> None:
    @task
    def seed() -> str | None:
        """Build and push the example image so the DAG is self-contained (skipped with seed_from=null)."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        if not params["seed_from"]:
            return None
        hook = ImageHook(params["registry_conn_id"])
        repository, _, tag = params["image"].rpartition(":")
        with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
            (Path(context) / "Dockerfile").write_text(DOCKERFILE)
            hook.build(
                context,
                repository=repository,
                tags=[tag],
                build_args={"BASE_IMAGE": params["seed_from"]},
                labels=LABELS,
            )
        return hook.push(repository, [tag])

    @task
    def check_auth() -> dict[str, Any]:
        """The registry accepts the connection (the UI's Test button runs the same call)."""
        from containerkit.hooks.registry import RegistryHook

        hook = RegistryHook(get_current_context()["params"]["registry_conn_id"])
        ok, message = hook.test_connection()
        if not ok:
            raise RuntimeError(message)
        print(message)
        return {"registry": hook.registry, "message": message}

    @task
    def tags_and_digest(seeded: str | None) -> dict[str, Any]:
        """Tags, the digest to pin, what the image is, and a missing tag failing fast."""
        from containerkit.diagnostics.model import ContainerTaskFailed
        from containerkit.hooks.preflight import pin_image
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        image = hook.parse_image(params["image"])
        tags = hook.list_tags(image.name)
        if image.tag not in tags:
            raise AssertionError(f"{image.tag} not in the tags of {image.name}: {tags}")
        pinned = pin_image(params["image"], params["registry_conn_id"])
        digest = pinned.rpartition("@")[2]
        if seeded and digest != seeded:
            raise AssertionError(f"{params['image']} pins {digest}, the push reported {seeded}")
        config = hook.get_config(pinned)
        start = time.monotonic()
        try:
            pin_image(f"{image.name}:0.0.0-does-not-exist", params["registry_conn_id"])
        except ContainerTaskFailed as exc:
            if exc.diagnosis.cause != "ImagePull:not-found":
                raise
            missing = {"seconds": round(time.monotonic() - start, 2), "cause": exc.diagnosis.cause}
        else:
            raise AssertionError("a missing tag was pinned")
        facts = {
            "tags": sorted(tags),
            "pinned": pinned,
            "user": config.user or "root",
            "runs_as_root": config.runs_as_root,
            "created": config.created,
            "compressed_bytes": hook.compressed_size(pinned),
            "missing_tag": missing,
        }
        print(facts)
        return facts

    @task
    def platforms(facts: dict[str, Any]) -> dict[str, Any]:
        """Index or single-platform manifest, the platforms it offers, and the one this machine pulls."""
        from containerkit.hooks.registry import RegistryHook

        hook = RegistryHook(get_current_context()["params"]["registry_conn_id"])
        top = hook.get_manifest(facts["pinned"])
        if top.is_index:
            offered = [str(p) for p in top.platforms]
        else:
            offered = [str(hook.get_config(facts["pinned"]).platform)]
        mine = hook.platform_manifest(facts["pinned"])
        result = {
            "media_type": top.media_type,
            "is_index": top.is_index,
            "platforms": offered,
            "this_machine": mine.digest,
        }
        print(result)
        return result

    @task
    def pull_secret(facts: dict[str, Any]) -> dict[str, Any]:
        """Render the dockerconfigjson Secret from the connection and pull the pinned digest with it."""
        import base64
        import contextlib
        import json

        from airflow.sdk.exceptions import AirflowSkipException
        from docker.errors import APIError

        from containerkit.errors import SpecError
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        try:
            config_json = hook.pull_secret()
        except SpecError as exc:
            raise AirflowSkipException(
                f"needs:registry credentials: connection {params['registry_conn_id']!r} is anonymous "
                f"({exc.problem}); set login and password/token on it to render and use a pull secret"
            ) from None
        secret = config_json.to_v1_secret("registry-pull", params["namespace"], labels=LABELS)
        if secret.type != "kubernetes.io/dockerconfigjson" or set(secret.data) != {".dockerconfigjson"}:
            raise AssertionError(f"not a dockerconfigjson Secret: {secret.type} {sorted(secret.data)}")
        # Use it as the kubelet does: decode the payload and pull with the credential for this registry.
        auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
        if hook.registry not in auths:
            raise AssertionError(f"the Secret has no entry for {hook.registry}: {sorted(auths)}")
        entry = auths[hook.registry]
        username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        engine = ImageHook(params["registry_conn_id"]).api
        reference, _, digest = facts["pinned"].partition("@")
        had_it = any(
            facts["pinned"] in (img.get("RepoDigests") or ()) for img in engine.images(name=reference)
        )

        def pull_error(credential: dict[str, str]) -> str | None:
            # Errors after the engine answered 200 arrive inside the stream, not as an exception.
            try:
                for chunk in engine.pull(
                    reference, tag=digest, stream=True, decode=True, auth_config=credential
                ):
                    if "error" in chunk:
                        return str(chunk["error"])
            except APIError as exc:
                return str(exc.explanation or exc)
            return None

        try:
            error = pull_error({"username": username, "password": password})
            if error:
                raise RuntimeError(f"pull of {facts['pinned']} with the Secret's credential failed: {error}")
            pulled = engine.inspect_image(facts["pinned"])["Id"]
        finally:
            if not had_it:  # remove only what this task pulled
                with contextlib.suppress(APIError):
                    engine.remove_image(facts["pinned"])
        del password, entry, auths
        print(f"pulled {facts['pinned']} ({pulled}) with the Secret's credential")
        return {
            "secret": {
                "name": secret.metadata.name,
                "namespace": secret.metadata.namespace,
                "type": secret.type,
            },
            "pulled_image_id": pulled,
            "pod_spec_fragment": {"imagePullSecrets": [{"name": secret.metadata.name}]},
        }

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook(get_current_context()["params"]["registry_conn_id"]).remove_labeled(LABELS)

    seeded = seed()
    facts = tags_and_digest(seeded)
    check_auth() >> facts
    [seeded, platforms(facts), pull_secret(facts)] >> cleanup()


image_registry()
