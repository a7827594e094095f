"""Layer ordering measured: change one source file, then time the rebuild and count the bytes a pull fetches.

**Problem.** Every deploy of a new image version makes each node pull the layers it does not have.
A Dockerfile that copies the whole source tree before installing dependencies puts the
dependencies in a layer that changes with every commit: slower builds, and tens of megabytes per
node per deploy for a one-line change.

**Practice.** Order from least to most often changed: base, dependencies (from their lock file,
in a build stage whose result is copied), then the source. Squashing buys fewer layers at the price
of sharing: one merged layer changes on every commit.

**Where each sub-point is covered.** ``build_v1`` and ``build_v2`` build three Dockerfiles of the
same app, then push them to the registry; v2 changes one source file.

- layer ordering: ``badly_ordered`` (``COPY . .`` then install) vs ``well_ordered``;
- cache utilization: ``build_v2`` times each rebuild (the well-ordered one reuses the dependency layer);
- multi-stage builds: ``well_ordered`` unpacks dependencies in a ``deps`` stage and copies only the
  result (the archive never ships); the badly ordered image carries it;
- layer squashing: ``squashed`` merges dependencies and source into one layer on the base;
- ``compare`` reads both manifests of each variant from the registry and sums the compressed bytes
  of v2 layers absent from v1: what a node holding v1 downloads to run v2. It asserts the
  well-ordered image moves the least.

**Copying.** Replace ``write_context``/the Dockerfiles with yours and point ``repository`` at a
scratch path of your registry. **Needs** a Docker engine and a registry (``needs:docker``,
``needs:registry``). Local tags are removed by ``cleanup``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task, teardown

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_08_02_layer_optimization"
LABELS = {"containerkit.reference": DAG_ID}
DEPENDENCY_MB = 4

DOCKERFILES = {
    "badly_ordered": """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
WORKDIR /app
COPY . /app
RUN mkdir -p /opt/deps && tar -xzf /app/deps/vendor.tar.gz -C /opt/deps
USER 65532:65532
CMD ["/bin/sh", "/app/src/main.sh"]
""",
    "well_ordered": """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE} AS deps
COPY deps/requirements.lock deps/vendor.tar.gz /tmp/deps/
RUN mkdir -p /opt/deps && tar -xzf /tmp/deps/vendor.tar.gz -C /opt/deps

FROM ${BASE_IMAGE}
COPY --from=deps /opt/deps /opt/deps
COPY src/ /app/src/
USER 65532:65532
CMD ["/bin/sh", "/app/src/main.sh"]
""",
    "squashed": """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE} AS deps
COPY deps/requirements.lock deps/vendor.tar.gz /tmp/deps/
RUN mkdir -p /opt/deps && tar -xzf /tmp/deps/vendor.tar.gz -C /opt/deps

FROM scratch AS merged
COPY --from=deps /opt/deps /opt/deps
COPY src/ /app/src/

FROM ${BASE_IMAGE}
COPY --from=merged / /
USER 65532:65532
CMD ["/bin/sh", "/app/src/main.sh"]
""",
}


def _pseudo_random(size: int, seed: bytes) -> bytes:
    """Incompressible but reproducible bytes (the same context gives the same layers)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def write_context(root: Path, dockerfile: str, version: str) -> Path:
    """Dependencies (an archive and its lock file) and a few source files; main.sh carries the version."""
    (root / "deps").mkdir()
    payload = _pseudo_random(DEPENDENCY_MB << 20, b"vendor")
    with (
        (root / "deps" / "vendor.tar.gz").open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        info = tarfile.TarInfo("lib/vendor.so")
        info.size, info.mtime = len(payload), 0
        tar.addfile(info, io.BytesIO(payload))
    (root / "deps" / "requirements.lock").write_text("vendor==4.0.0 --hash=sha256:" + "0" * 64 + "\n")
    (root / "src").mkdir()
    (root / "src" / "main.sh").write_text(f'. /app/src/lib.sh\necho "app {version}"\n')
    (root / "src" / "lib.sh").write_text("greet() { echo hello; }\n")
    (root / "Dockerfile").write_text(dockerfile)
    return root


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "performance", "intermediate", "success", "needs:docker", "needs:registry"],
    params={
        "registry_conn_id": Param(REGISTRY_CONN_ID, type="string"),
        "base_image": Param(DEBIAN_IMAGE, type="string", description="Build arg BASE_IMAGE."),
        "repository": Param(
            "containerkit-examples/layers", type="string", description="Prefix on the registry."
        ),
    },
    doc_md=__doc__,
)
def layer_optimization() -> None:
    def _build_and_push(version: str) -> dict[str, Any]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook(params["registry_conn_id"])
        result = {}
        for variant, dockerfile in DOCKERFILES.items():
            repository = f"{params['repository']}/{variant}"
            start = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
                built = hook.build(
                    write_context(Path(tmp), dockerfile, version),
                    repository=repository,
                    tags=[version],
                    build_args={"BASE_IMAGE": params["base_image"]},
                    labels=LABELS,
                    buildkit=True,
                )
            seconds = round(time.monotonic() - start, 2)
            digest = hook.push(repository, [version])
            layers = len(hook.api.inspect_image(built.id)["RootFS"]["Layers"])
            result[variant] = {
                "reference": built.references[0],
                "digest": digest,
                "build_seconds": seconds,
                "layers": layers,
            }
        return result

    @task
    def build_v1() -> dict[str, Any]:
        return _build_and_push("1.0.0")

    @task
    def build_v2(v1: dict[str, Any]) -> dict[str, Any]:
        """One source file changed (the version in main.sh); every variant rebuilt with a warm cache."""
        return _build_and_push("1.0.1")

    @task
    def compare(v1: dict[str, Any], v2: dict[str, Any]) -> dict[str, Any]:
        """Compressed bytes of v2 layers a node holding v1 must download, per variant."""
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        hook = RegistryHook(params["registry_conn_id"])
        report = {}
        for variant in DOCKERFILES:
            repository = f"{params['repository']}/{variant}"
            old = {d.digest for d in hook.platform_manifest(f"{repository}@{v1[variant]['digest']}").layers}
            new = hook.platform_manifest(f"{repository}@{v2[variant]['digest']}").layers
            fetched = [d for d in new if d.digest not in old]
            report[variant] = {
                "layers": len(new),
                "changed_layers": len(fetched),
                "pull_bytes": sum(d.size for d in fetched),
                "image_bytes": sum(d.size for d in new),
                "rebuild_seconds": v2[variant]["build_seconds"],
            }
            print(
                f"{variant:14} {len(new)} layers, {len(fetched)} changed: a pull of v2 fetches "
                f"{report[variant]['pull_bytes']:,} bytes; rebuild {v2[variant]['build_seconds']} s"
            )
        good, bad, squashed = (report[v]["pull_bytes"] for v in ("well_ordered", "badly_ordered", "squashed"))
        if not (good < squashed and good < bad and bad > DEPENDENCY_MB << 20):
            raise AssertionError(f"the well-ordered image should move the least: {report}")
        if report["squashed"]["layers"] >= report["well_ordered"]["layers"]:
            raise AssertionError("the squashed image should have fewer layers")
        report["saving_vs_badly_ordered_bytes"] = bad - good
        return report

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook(get_current_context()["params"]["registry_conn_id"]).remove_labeled(LABELS)

    v1 = build_v1()
    v2 = build_v2(v1)
    [v1, v2, compare(v1, v2)] >> cleanup()


layer_optimization()
