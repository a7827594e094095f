"""ImageHook: build, tag, push, pull, inspect and clean up images on a Docker Engine.

Registry credentials come from a ``containerkit_registry`` connection (the same one the
RegistryHook and pull secrets use), never from the engine's own ``~/.docker/config.json``.
Everything the hook builds carries the ``containerkit.built-by`` label, and ``prune`` only ever
touches dangling images with that label, so the hook never removes what it did not make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from containerkit.errors import ContainerkitError, SpecError
from containerkit.facts.secrets import secret_literal
from containerkit.hooks.image_reference import ImageName
from containerkit.hooks.image_tags import ImageTags, check_tag

if TYPE_CHECKING:
    from containerkit.hooks.registry import RegistryHook

# mypy run from the repo root resolves ``docker`` to the repo's docker/ folder (a namespace
# package), so docker-py's client is typed loosely here.
APIClient = Any

BUILT_BY_LABEL = "containerkit.built-by"
BUILT_BY_VALUE = "ImageHook"
DEFAULT_DOCKER_CLI = "/usr/bin/docker"  # Debian's client: BuildKit without the buildx plugin
_LOG_TAIL = 20


class ImageBuildFailed(ContainerkitError):
    """``docker build`` failed; the message carries the last build output lines."""


class ImagePushFailed(ContainerkitError):
    """The engine reported an error while pushing or pulling."""


@dataclass(frozen=True)
class BuiltImage:
    """A build result: the image id and every ``repository:tag`` it was tagged with."""

    id: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class ImageInfo:
    """What matters about a local image for running it well (from ``docker image inspect``)."""

    id: str
    tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    layers: int
    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    healthcheck: Mapping[str, Any] | None
    labels: Mapping[str, str]
    created: str
    os: str
    architecture: str

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> ImageInfo:
        config = attrs.get("Config") or {}
        health = config.get("Healthcheck")
        return cls(
            id=str(attrs["Id"]),
            tags=tuple(attrs.get("RepoTags") or ()),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            size=int(attrs.get("Size") or 0),
            layers=len((attrs.get("RootFS") or {}).get("Layers") or ()),
            user=str(config.get("User") or ""),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            healthcheck=dict(health) if isinstance(health, Mapping) and health.get("Test") else None,
            labels=dict(config.get("Labels") or {}),
            created=str(attrs.get("Created") or ""),
            os=str(attrs.get("Os") or ""),
            architecture=str(attrs.get("Architecture") or ""),
        )

    @property
    def runs_as_root(self) -> bool:
        return self.user.split(":", 1)[0] in ("", "root", "0")

    def digest_in(self, repository: str) -> str | None:
        """The registry digest of this image in ``repository`` (from RepoDigests), if pushed/pulled."""
        for item in self.repo_digests:
            name, _, digest = item.partition("@")
            if name == repository:
                return digest
        return None


def _check_build_args(build_args: Mapping[str, str]) -> dict[str, str]:
    for name, value in build_args.items():
        # The same heuristic as the Dockerfile lint's ARG/ENV check (a secret-like name, or a
        # credential-shaped value under any name).
        why = secret_literal(str(name), value)
        if why:
            raise SpecError(
                f"build_args.{name}",
                "<redacted>",
                f"{why}: build args are stored in the image history, readable by anyone who pulls it",
                "pass credentials as a BuildKit secret (ca_secret / secrets=) and RUN --mount=type=secret",
            )
    return {str(k): str(v) for k, v in build_args.items()}


class ImageHook(BaseHook):
    """Build, tag, push, pull, inspect and remove images on a Docker Engine.

    :param registry_conn_id: a ``containerkit_registry`` connection for push/pull credentials
        (None: anonymous).
    :param docker_url: the engine's URL (``unix:///var/run/docker.sock``, ``tcp://…``); default
        from the environment (``DOCKER_HOST``), as the docker CLI does.
    :param docker_conn_id: optional ``docker`` connection, passed to the Docker provider's
        DockerHook together with ``docker_url`` (for engines configured through it).
    :param timeout: engine API timeout in seconds (builds and pushes stream within it).
    :param docker_cli: the docker client used for BuildKit builds with secrets.
    """

    hook_name = "Docker images (containerkit)"

    def __init__(
        self,
        registry_conn_id: str | None = None,
        *,
        docker_url: str | None = None,
        docker_conn_id: str | None = None,
        timeout: int = 600,
        docker_cli: str | None = None,
    ) -> None:
        super().__init__()
        self.registry_conn_id = registry_conn_id
        self.docker_url = docker_url
        self.docker_conn_id = docker_conn_id
        self.timeout = timeout
        self.docker_cli = docker_cli or (
            DEFAULT_DOCKER_CLI if Path(DEFAULT_DOCKER_CLI).exists() else "docker"
        )

    @cached_property
    def api(self) -> APIClient:
        if self.docker_conn_id or self.docker_url:
            from airflow.providers.docker.hooks.docker import DockerHook

            url = self.docker_url or os.environ.get("DOCKER_HOST") or "unix://var/run/docker.sock"
            return DockerHook(
                docker_conn_id=self.docker_conn_id, base_url=url, timeout=self.timeout
            ).api_client
        from docker import from_env  # type: ignore[attr-defined]

        return from_env(timeout=self.timeout).api

    def get_conn(self) -> APIClient:
        return self.api

    @cached_property
    def registry_hook(self) -> RegistryHook:
        from containerkit.hooks.registry import RegistryHook

        return RegistryHook(self.registry_conn_id) if self.registry_conn_id else RegistryHook(None)

    def _repository(self, repository: str) -> ImageName:
        """A repository on the connection's registry (a bare path is qualified with its host)."""
        name = self.registry_hook.parse_image(repository)
        self.registry_hook.check_registry(name)
        if name.tag or name.digest:
            raise SpecError(
                "repository", repository, "is a reference, not a repository", "drop the :tag / @digest part"
            )
        return name

    # --- build ---
    def build(
        self,
        context: str | Path,
        *,
        repository: str,
        tags: ImageTags | Sequence[str],
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        dockerfile: str | None = None,
        target: str | None = None,
        ca_secret: str | Path | None = None,
        secrets: Mapping[str, str | Path] | None = None,
        pull: bool = False,
        buildkit: bool = False,
    ) -> BuiltImage:
        """Build ``context`` and tag the result ``repository:<tag>`` for every tag.

        :param ca_secret: a PEM CA bundle handed to the build as BuildKit secret ``ca`` (for a
            TLS-intercepting proxy or a private package index): ``RUN --mount=type=secret,id=ca``.
            It never lands in a layer. Shorthand for ``secrets={"ca": path}``.
        :param secrets: more BuildKit secrets, id to file path.
        :param buildkit: build with BuildKit even without secrets (multi-stage builds then leave no
            intermediate images behind, and ``RUN --mount=type=cache`` works).

        docker-py's build API has no BuildKit session, so a build with secrets runs the docker CLI
        (``DOCKER_BUILDKIT=1 docker build --secret id=…,src=…``); without secrets it uses the engine
        API directly.
        """
        tag_list = list(tags.all if isinstance(tags, ImageTags) else tags)
        if not tag_list:
            raise SpecError("tags", tag_list, "no tag given", "pass version_tags(version=..., git_sha=...)")
        name = self._repository(repository)
        references = tuple(name.with_tag(check_tag(t)) for t in tag_list)
        all_labels = {**(labels or {}), BUILT_BY_LABEL: BUILT_BY_VALUE}
        args = _check_build_args(build_args or {})
        all_secrets = {str(k): Path(v) for k, v in (secrets or {}).items()}
        if ca_secret is not None:
            all_secrets["ca"] = Path(ca_secret)
        for secret_id, path in all_secrets.items():
            if not path.is_file():
                raise SpecError(
                    f"secrets.{secret_id}", str(path), "no such file", "pass a readable file path"
                )
        if all_secrets or buildkit:
            image_id = self._build_cli(
                Path(context), references, args, all_labels, dockerfile, target, all_secrets, pull
            )
        else:
            image_id = self._build_api(
                Path(context), references[0], args, all_labels, dockerfile, target, pull
            )
        for reference in references[1:]:
            repo, _, tag = reference.rpartition(":")
            self.api.tag(image_id, repo, tag)
        self.log.info("Built %s as %s", image_id, ", ".join(references))
        return BuiltImage(image_id, references)

    def _build_api(
        self,
        context: Path,
        reference: str,
        args: dict[str, str],
        labels: dict[str, str],
        dockerfile: str | None,
        target: str | None,
        pull: bool,
    ) -> str:
        tail: list[str] = []
        image_id: str | None = None
        stream = self.api.build(
            path=str(context),
            tag=reference,
            buildargs=args,
            labels=labels,
            dockerfile=dockerfile,
            target=target,
            pull=pull,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                line = str(chunk["stream"]).rstrip()
                if line:
                    tail = [*tail[-_LOG_TAIL + 1 :], line]
            if "error" in chunk:
                raise ImageBuildFailed(
                    f"build of {reference} failed: {chunk['error']}\n"
                    + "\n".join(tail)
                    + "\nFix: read the failing step above; run the same build locally with docker build"
                )
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and "ID" in aux:
                image_id = str(aux["ID"])
        if image_id is None:
            image_id = str(self.api.inspect_image(reference)["Id"])
        return image_id

    def _build_cli(
        self,
        context: Path,
        references: Sequence[str],
        args: dict[str, str],
        labels: dict[str, str],
        dockerfile: str | None,
        target: str | None,
        secrets: Mapping[str, Path],
        pull: bool,
    ) -> str:
        cli = shutil.which(self.docker_cli) or self.docker_cli
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            cmd = [cli, "build", "--iidfile", str(iidfile), "--progress", "plain"]
            for reference in references[:1]:
                cmd += ["--tag", reference]
            for key, value in args.items():
                cmd += ["--build-arg", f"{key}={value}"]
            for key, value in labels.items():
                cmd += ["--label", f"{key}={value}"]
            for secret_id, path in secrets.items():
                cmd += ["--secret", f"id={secret_id},src={path}"]
            if dockerfile:
                cmd += ["--file", str(context / dockerfile)]
            if target:
                cmd += ["--target", target]
            if pull:
                cmd.append("--pull")
            cmd.append(str(context))
            env = {**os.environ, "DOCKER_BUILDKIT": "1"}
            if self.docker_url:
                env["DOCKER_HOST"] = self.docker_url
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=self.timeout)
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-_LOG_TAIL:])
                raise ImageBuildFailed(
                    f"build of {references[0]} failed (docker build exit {done.returncode}):\n{tail}\n"
                    "Fix: read the failing step above; run the same build locally with DOCKER_BUILDKIT=1"
                )
            return iidfile.read_text().strip()

    # --- registry ---
    def push(self, repository: str, tags: ImageTags | Sequence[str]) -> str:
        """Push ``repository:<tag>`` for each tag with the connection's credentials; return the digest."""
        name = self._repository(repository)
        auth = self.registry_hook.docker_auth_config()
        digest: str | None = None
        for tag in tags.all if isinstance(tags, ImageTags) else tags:
            for chunk in self.api.push(name.name, check_tag(tag), stream=True, decode=True, auth_config=auth):
                if "error" in chunk:
                    raise ImagePushFailed(
                        f"push of {name.name}:{tag} failed: {chunk['error']}. Fix: check that connection "
                        f"{self.registry_conn_id!r} may push to {name.repository} on {name.registry}"
                    )
                aux = chunk.get("aux")
                if isinstance(aux, Mapping) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        if digest is None:
            raise ImagePushFailed(f"push of {name.name} reported no digest. Fix: check the engine log")
        self.log.info("Pushed %s@%s", name.name, digest)
        return digest

    def pull(self, image: str, *, platform: str | None = None) -> ImageInfo:
        """Pull ``image`` with the connection's credentials and return what the engine stored."""
        name = self.registry_hook.parse_image(image)
        self.registry_hook.check_registry(name)
        auth = self.registry_hook.docker_auth_config()
        reference = name.digest or name.tag or "latest"
        for chunk in self.api.pull(
            name.name, tag=reference, stream=True, decode=True, auth_config=auth, platform=platform
        ):
            if "error" in chunk:
                raise ImagePushFailed(
                    f"pull of {name} failed: {chunk['error']}. Fix: check the reference with "
                    f"RegistryHook.check_pullable and the credentials of connection {self.registry_conn_id!r}"
                )
        separator = "@" if name.digest else ":"
        return self.inspect(f"{name.name}{separator}{reference}")

    # --- local images ---
    def tag(self, image: str, repository: str, tags: ImageTags | Sequence[str]) -> tuple[str, ...]:
        name = self._repository(repository)
        references = []
        for tag in tags.all if isinstance(tags, ImageTags) else tags:
            self.api.tag(image, name.name, check_tag(tag))
            references.append(name.with_tag(tag))
        return tuple(references)

    def inspect(self, image: str) -> ImageInfo:
        """Size, layers, user, healthcheck, labels and digests of a local image."""
        from docker.errors import ImageNotFound

        try:
            return ImageInfo.from_inspect(self.api.inspect_image(image))
        except ImageNotFound:
            raise SpecError("image", image, "no such local image", "build or pull it first") from None

    def remove(self, image: str, *, only_built_by_hook: bool = True, force: bool = False) -> None:
        """Remove a local image (a tag, or the image when it is the last tag).

        :param only_built_by_hook: refuse images without the ``containerkit.built-by`` label.
        """
        if only_built_by_hook and self.inspect(image).labels.get(BUILT_BY_LABEL) != BUILT_BY_VALUE:
            raise SpecError(
                "image",
                image,
                "was not built by ImageHook",
                "pass only_built_by_hook=False to remove it anyway",
            )
        self.api.remove_image(image, force=force)

    def remove_labeled(self, labels: Mapping[str, str]) -> list[str]:
        """Remove every image built by the hook that carries all ``labels`` (tagged ones too)."""
        if not labels:
            raise SpecError("labels", labels, "empty filter", "name at least one label")
        filters = {"label": [f"{BUILT_BY_LABEL}={BUILT_BY_VALUE}", *(f"{k}={v}" for k, v in labels.items())]}
        removed = []
        for image in self.api.images(filters=filters):
            self.api.remove_image(image["Id"], force=True)
            removed.append(str(image["Id"]))
        return removed

    def prune(self, labels: Mapping[str, str] | None = None) -> list[str]:
        """Remove dangling images built by the hook (and carrying ``labels``); return their ids."""
        label_filters = [
            f"{BUILT_BY_LABEL}={BUILT_BY_VALUE}",
            *(f"{k}={v}" for k, v in (labels or {}).items()),
        ]
        result = self.api.prune_images(filters={"dangling": True, "label": label_filters})
        deleted = [
            str(item.get("Deleted")) for item in result.get("ImagesDeleted") or () if item.get("Deleted")
        ]
        self.log.info("Pruned %d dangling image records", len(deleted))
        return deleted

    def save(self, images: Iterable[str], archive: str | Path) -> Path:
        """``docker save`` format (engine to tar). Keeps image ids, NOT registry digests.

        The engine stores layers uncompressed; a later push recompresses them, so the registry
        digests change. For digest-exact air-gap transfers use :mod:`containerkit.hooks.mirror`.
        """
        path = Path(archive)
        with path.open("wb") as out:
            for chunk in self.api.get_image(list(images)):
                out.write(chunk)
        return path

    def load(self, archive: str | Path) -> list[str]:
        """Load a ``docker save`` tar into the engine; return the loaded image names/ids."""
        loaded: list[str] = []
        with Path(archive).open("rb") as data:
            for chunk in self.api.load_image(data):  # streamed, not read into memory
                text = str(chunk.get("stream", ""))
                if text.startswith("Loaded image"):
                    loaded.append(text.split(":", 1)[1].strip())
        return loaded
