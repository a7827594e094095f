"""GitOps for task images: build, test, push, commit the digest per environment, promote, roll back by revert.

**Problem.** Pipelines that ``kubectl set image`` or retag ``:prod`` leave no record of what runs where,
promote something other than what was tested (a rebuild, a moved tag), and roll back by guesswork.

**Practice.** CI builds an image once, tests it, pushes it and records its **digest** in the values
file of the first environment in a git repository; a GitOps controller (Argo CD, Flux) deploys what the
repository says. Promotion copies the same digest into the next environment's file (no rebuild, no tag
resolution); a failed release is undone with ``git revert``, which restores the previous digest and
keeps the history.

**Where each sub-point is covered.**

- image build pipeline: ``build`` builds the app image with ``ImageHook`` from a git-tracked context
  (tags from ``version_tags``: semver + ``sha-<commit>``, never ``latest``), ``smoke_test`` runs it in a
  hardened ``SecureDockerOperator`` container (policy checked when it starts), ``push`` pushes it and
  returns the digest;
- automated deployment: ``deploy_dev`` clones the GitOps repository, writes
  ``repository@digest`` into ``environments/dev/values.yaml``, commits and pushes; ``verify_dev`` reads
  the file back from the remote and runs exactly that digest;
- version promotion: ``promote_prod`` copies the digest from dev to prod (same bytes: the registry's
  ``prod`` tag is written from the same manifest, and the digests are compared);
- rollback: ``release_and_roll_back`` builds and pushes a v2 whose self-test fails, deploys it to prod,
  runs the prod smoke check (it fails, with a diagnosis), ``git revert`` s the release commit and
  checks that prod points at v1's digest again and passes.

``gitops_repo`` creates a bare git repository under a temp directory unless the ``git_remote`` param
(or ``CONTAINERKIT_GITOPS_REMOTE``) names a real one; ``cleanup`` (teardown) removes local tags and
temp directories.

**When copying.** Set ``git_remote`` to your GitOps repository (a deploy key with push rights to one
branch), the registry connection, and the values path your chart reads (``images.airflow.digest`` or
the ``image:`` of a pod template).

**Needs.** A Docker engine (``needs:docker``), a registry connection (``needs:registry``), ``git``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
REGISTRY_CONN_ID = os.environ.get("CONTAINERKIT_REGISTRY_CONN_ID", "containerkit_registry_default")
GITOPS_REMOTE = os.environ.get("CONTAINERKIT_GITOPS_REMOTE", "")
REPOSITORY = "containerkit-examples/gitops-app"
LABEL = {"containerkit.example": "88_10_04"}
ENVIRONMENTS = ("dev", "prod")
GIT_IDENTITY = ["-c", "user.name=containerkit-ci", "-c", "user.email=ci@containerkit.invalid"]

APP = """import sys
VERSION = "{version}"
if "--selftest" in sys.argv:
    ok = {healthy}
    print("selftest", VERSION, "ok" if ok else "FAILED: the release is broken")
    sys.exit(0 if ok else 1)
print(VERSION)
"""
DOCKERFILE = """ARG BASE
FROM ${BASE}
COPY app.py /app/app.py
USER 50000:0
ENTRYPOINT ["python", "/app/app.py"]
"""


def _git(*args: str, cwd: str | Path | None = None) -> str:
    done = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _values(image: str | None) -> str:
    return (
        "# Written by the image pipeline (88_10_04); the GitOps controller deploys what this file says.\n"
        + json.dumps({"image": {"reference": image}}, indent=2)
        + "\n"
    )


def _read_values(remote: str, env: str) -> dict[str, Any]:
    text = _git("--git-dir", remote, "show", f"main:environments/{env}/values.yaml")
    return json.loads(text.split("\n", 1)[1])


def _commit_values(remote: str, env: str, image: str, message: str) -> str:
    """Clone, write one environment's values, commit and push; the commit id."""
    with tempfile.TemporaryDirectory(prefix="ck-gitops-") as work:
        _git("clone", "--quiet", remote, work)
        path = Path(work, "environments", env, "values.yaml")
        path.write_text(_values(image))
        _git("add", str(path), cwd=work)
        _git("commit", "--quiet", "-m", message, cwd=work)
        _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
        return _git("rev-parse", "HEAD", cwd=work)


def _build(context_dir: Path, version: str, healthy: bool) -> dict[str, Any]:
    """A git-tracked build context, built and tagged semver + sha-<commit>."""
    from containerkit.hooks.image import ImageHook
    from containerkit.hooks.image_tags import version_tags
    from containerkit.hooks.registry import RegistryHook

    context_dir.mkdir(parents=True, exist_ok=True)
    (context_dir / "app.py").write_text(APP.format(version=version, healthy=healthy))
    (context_dir / "Dockerfile").write_text(DOCKERFILE)
    if not (context_dir / ".git").exists():
        _git("init", "--quiet", "-b", "main", cwd=context_dir)
    _git("add", "-A", cwd=context_dir)
    _git("commit", "--quiet", "--allow-empty", "-m", f"release {version}", cwd=context_dir)
    sha = _git("rev-parse", "HEAD", cwd=context_dir)
    registry = RegistryHook(REGISTRY_CONN_ID).registry
    repository = f"{registry}/{REPOSITORY}"
    tags = version_tags(version=version, git_sha=sha)
    built = ImageHook(REGISTRY_CONN_ID).build(
        context_dir,
        repository=repository,
        tags=tags,
        build_args={"BASE": PYTHON_IMAGE},
        labels={
            **LABEL,
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.version": version,
        },
    )
    return {"repository": repository, "tags": list(tags.all), "reference": built.references[0], "sha": sha}


def _smoke(image: str, context: Any, task_id: str) -> None:
    """Run the image's self-test in a hardened container (raises ContainerTaskFailed on failure)."""
    SecureDockerOperator(task_id=task_id, image=image, command=["--selftest"], resources="xs").execute(
        context
    )


@dag(
    dag_id="88_10_04_gitops_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "example", "advanced", "success", "needs:docker", "needs:registry"],
    params={
        "git_remote": Param(
            GITOPS_REMOTE, type="string", description="GitOps repository; empty: a local bare repo."
        ),
        "version": Param("1.0.0", type="string", description="Semantic version of the release."),
    },
    doc_md=__doc__,
)
def gitops_pipeline() -> None:
    @task
    def gitops_repo() -> dict[str, str]:
        """The GitOps repository: the param's remote, or a fresh bare repo with one file per environment."""
        remote = get_current_context()["params"]["git_remote"]
        workdir = tempfile.mkdtemp(prefix="ck-88-10-04-")
        if not remote:
            remote = str(Path(workdir, "gitops.git"))
            _git("init", "--quiet", "--bare", "-b", "main", remote)
            with tempfile.TemporaryDirectory(prefix="ck-gitops-") as seed:
                _git("clone", "--quiet", remote, seed)
                for env in ENVIRONMENTS:
                    path = Path(seed, "environments", env, "values.yaml")
                    path.parent.mkdir(parents=True)
                    path.write_text(_values(None))
                _git("add", "-A", cwd=seed)
                _git("commit", "--quiet", "-m", "environments", cwd=seed)
                _git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
        return {"remote": remote, "workdir": workdir}

    @task
    def build(repo: dict[str, str]) -> dict[str, Any]:
        version = get_current_context()["params"]["version"]
        return _build(Path(repo["workdir"], "app"), version, healthy=True)

    @task
    def smoke_test(built: dict[str, Any], **context: Any) -> str:
        """The built image's self-test in a hardened container, before anything is pushed."""
        _smoke(built["reference"], context, "smoke_test_container")
        return built["reference"]

    @task
    def push(built: dict[str, Any]) -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook

        digest = ImageHook(REGISTRY_CONN_ID).push(built["repository"], built["tags"])
        return {**built, "digest": digest, "pinned": f"{built['repository']}@{digest}"}

    @task
    def deploy_dev(repo: dict[str, str], pushed: dict[str, Any]) -> str:
        commit = _commit_values(repo["remote"], "dev", pushed["pinned"], f"deploy dev: {pushed['pinned']}")
        print(f"dev -> {pushed['pinned']} (commit {commit[:12]})")
        return commit

    @task
    def verify_dev(repo: dict[str, str], pushed: dict[str, Any], **context: Any) -> str:
        """What the controller would deploy: the file on the remote, run by digest."""
        from containerkit.hooks.registry import RegistryHook

        image = _read_values(repo["remote"], "dev")["image"]["reference"]
        if image != pushed["pinned"] or "@sha256:" not in image:
            raise AssertionError(f"dev values hold {image!r}, expected {pushed['pinned']}")
        if RegistryHook(REGISTRY_CONN_ID).resolve_digest(image) != pushed["digest"]:
            raise AssertionError(f"{image} does not resolve to its digest in the registry")
        _smoke(image, context, "verify_dev_smoke")
        return image

    @task
    def promote_prod(repo: dict[str, str], pushed: dict[str, Any]) -> dict[str, str]:
        """Same digest from dev to prod: git records it, the registry's prod tag is the same manifest."""
        from containerkit.hooks.registry import RegistryHook

        image = _read_values(repo["remote"], "dev")["image"]["reference"]
        commit = _commit_values(repo["remote"], "prod", image, f"promote prod: {image}")
        hook = RegistryHook(REGISTRY_CONN_ID)
        manifest = hook.get_manifest(image)
        tagged = hook.put_manifest(f"{pushed['repository']}:prod", manifest.raw, manifest.media_type)
        prod = _read_values(repo["remote"], "prod")["image"]["reference"]
        if (
            prod != image
            or tagged != pushed["digest"]
            or hook.resolve_digest(f"{pushed['repository']}:prod") != pushed["digest"]
        ):
            raise AssertionError(f"promotion changed the image: prod={prod}, tag digest {tagged}")
        return {"commit": commit, "image": prod}

    @task
    def release_and_roll_back(
        repo: dict[str, str], promoted: dict[str, str], **context: Any
    ) -> dict[str, Any]:
        """A broken v2 reaches prod, its smoke check fails, ``git revert`` restores v1's digest."""
        from containerkit.diagnostics.model import ContainerTaskFailed
        from containerkit.hooks.image import ImageHook

        bad = _build(Path(repo["workdir"], "app"), "1.1.0", healthy=False)
        digest = ImageHook(REGISTRY_CONN_ID).push(bad["repository"], bad["tags"])
        bad_image = f"{bad['repository']}@{digest}"
        release = _commit_values(repo["remote"], "prod", bad_image, f"deploy prod: {bad_image}")
        try:
            _smoke(bad_image, context, "prod_smoke_v2")
        except ContainerTaskFailed as failed:
            print(f"prod smoke check failed: {failed.diagnosis.cause}: {failed.diagnosis.summary}")
        else:
            raise AssertionError("the broken release passed its smoke check")
        with tempfile.TemporaryDirectory(prefix="ck-gitops-") as work:
            _git("clone", "--quiet", repo["remote"], work)
            _git("revert", "--no-edit", release, cwd=work)
            _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
            revert = _git("rev-parse", "HEAD", cwd=work)
            history = _git("log", "--format=%h %s", "-n", "5", cwd=work)
        restored = _read_values(repo["remote"], "prod")["image"]["reference"]
        if restored != promoted["image"]:
            raise AssertionError(f"after the revert prod holds {restored}, expected {promoted['image']}")
        _smoke(restored, context, "prod_smoke_after_rollback")
        print(history)
        return {"bad_release": release, "revert": revert, "prod": restored, "history": history.splitlines()}

    @task
    def cleanup(repo: dict[str, str]) -> None:
        import shutil

        from containerkit.hooks.image import ImageHook

        removed = ImageHook(REGISTRY_CONN_ID).remove_labeled(LABEL)
        print(f"removed {len(removed)} local image(s)")
        shutil.rmtree(repo["workdir"], ignore_errors=True)

    repo = gitops_repo()
    built = build(repo)
    tested = smoke_test(built)
    pushed = push(built)
    tested >> pushed
    dev = deploy_dev(repo, pushed)
    verified = verify_dev(repo, pushed)
    dev >> verified
    promoted = promote_prod(repo, pushed)
    verified >> promoted
    rolled = release_and_roll_back(repo, promoted)
    rolled >> cleanup(repo).as_teardown(setups=[repo, built])


gitops_pipeline()
