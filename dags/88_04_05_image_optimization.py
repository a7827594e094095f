"""Build a naive and an optimized Dockerfile of the same app; report size per layer, the saving and the cache.

**Problem.** Images bloat in ways ``docker images`` does not explain: the whole repository copied in
(test data, docs), a ``chown -R`` in its own layer that duplicates every file, build artifacts
deleted in a later layer (still shipped, only hidden), and instructions ordered so that any change
reruns everything.

**Practice.** Send only what the image needs (``.dockerignore``), set ownership while copying
(``COPY --chown``), create and delete temporary files in the same step or in a build stage, copy
only the result into the runtime stage, and order instructions from least to most often changed.
Alpine (musl) images are smaller, but most binary wheels on PyPI are built for glibc
(``manylinux``): on musl, pip needs ``musllinux`` wheels or compiles from source (compilers in the
build stage, slower builds); Debian slim is the safer default for Python.

**Where each sub-point is covered.**

- layer optimization: ``build_both`` and ``layer_report`` (every layer's size and instruction for
  both images, the saving in bytes and percent);
- removing unnecessary files: the optimized build's ``.dockerignore`` and one-step cleanup;
  ``layer_report`` asserts the test data and the build artifact are absent from the optimized image;
- Alpine vs Debian: the ``distro`` param picks the base (``alpine_image`` / ``base_image``);
  ``libc_report`` runs in the optimized image and reports its C library and the wheel platform
  tags pip accepts there (``manylinux`` vs ``musllinux``);
- build cache: ``rebuild_after_change`` changes one source file and rebuilds both: the layers reused
  and the seconds each took.

**Copying.** Replace ``write_context`` with your app and keep the optimized Dockerfile's shape.
**Needs** a Docker engine with BuildKit (``needs:docker``); ``distro=alpine`` needs an Alpine Python
image on the engine. Built tags are removed by ``cleanup``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
ALPINE_IMAGE = os.environ.get("CONTAINERKIT_ALPINE_PYTHON_IMAGE", "python:3.11-alpine3.20")
DAG_ID = "88_04_05_image_optimization"
LABELS = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-examples/optimization"
TEST_DATA_MB = 8
ARTIFACT_MB = 16

NAIVE = f"""\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${{BASE_IMAGE}}
USER 0:0
COPY . /app
RUN chown -R 50000:0 /app
RUN head -c {ARTIFACT_MB}m /dev/zero > /tmp/build-artifact.bin && python -m compileall -q /app/src
RUN rm -f /tmp/build-artifact.bin
USER 50000:0
CMD ["python", "/app/src/app.py"]
"""

OPTIMIZED = f"""\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${{BASE_IMAGE}} AS build
USER 0:0
COPY src/ /app/src/
RUN head -c {ARTIFACT_MB}m /dev/zero > /tmp/build-artifact.bin \\
 && python -m compileall -q /app/src \\
 && rm -f /tmp/build-artifact.bin

FROM ${{BASE_IMAGE}}
COPY --from=build --chown=50000:0 /app /app
USER 50000:0
CMD ["python", "/app/src/app.py"]
"""

DOCKERIGNORE = "testdata/\ndocs/\n.git/\n**/__pycache__/\nDockerfile\n.dockerignore\n"

LIBC_REPORT = """
import glob, json, platform, sysconfig
musl = glob.glob("/lib/ld-musl-*.so.1")
arch = platform.machine()
if musl:
    libc, tags = "musl", [f"musllinux_1_2_{arch}", f"musllinux_1_1_{arch}"]
else:
    name, version = platform.libc_ver()
    major, minor = (int(x) for x in version.split(".")[:2])
    libc = f"{name} {version}"
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)] + [f"manylinux2014_{arch}"]
print(json.dumps({"libc": libc, "wheel_platforms": tags[:4], "platform": sysconfig.get_platform()}))
"""


def write_context(root: Path, version: str, optimized: bool) -> Path:
    """The same app for both builds: source, test data and docs (the naive build ships them)."""
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(f'print("optimized app {version}")\n')
    (root / "testdata").mkdir()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    for index in range(TEST_DATA_MB):
        (root / "testdata" / f"fixture-{index}.bin").write_bytes(chunk)
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# Guide\n" + "text\n" * 20000)
    (root / "Dockerfile").write_text(OPTIMIZED if optimized else NAIVE)
    if optimized:
        (root / ".dockerignore").write_text(DOCKERIGNORE)
    return root


def _layers(api: Any, image: str) -> list[dict[str, Any]]:
    """``docker history``: the instruction and size of each layer, oldest first (empty ones dropped)."""
    return [
        {"size": int(h["Size"]), "created_by": str(h["CreatedBy"])[:90]}
        for h in reversed(api.history(image))
        if int(h["Size"]) > 0
    ]


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success", "needs:docker"],
    params={
        "distro": Param("debian", enum=["debian", "alpine"], description="Base variant (glibc vs musl)."),
        "base_image": Param(PYTHON_IMAGE, type="string", description="Debian-based Python image."),
        "alpine_image": Param(ALPINE_IMAGE, type="string", description="Alpine-based Python image."),
    },
    doc_md=__doc__,
)
def image_optimization() -> None:
    def _build(variant: str, version: str) -> tuple[str, str, float]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        base = params["alpine_image"] if params["distro"] == "alpine" else params["base_image"]
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ck-build-") as tmp:
            built = ImageHook().build(
                write_context(Path(tmp), version, optimized=variant == "optimized"),
                repository=REPOSITORY,
                tags=[f"{variant}-{params['distro']}-{version}"],
                build_args={"BASE_IMAGE": base},
                labels=LABELS,
                buildkit=True,
            )
        return built.references[0], built.id, round(time.monotonic() - start, 2)

    @task
    def build_both() -> dict[str, Any]:
        built = {}
        for variant in ("naive", "optimized"):
            reference, image_id, seconds = _build(variant, "1.0.0")
            built[variant] = {"reference": reference, "id": image_id, "seconds": seconds}
        return built

    @task
    def layer_report(built: dict[str, Any]) -> dict[str, Any]:
        """Size per layer of both images, the saving, and what the optimized one no longer carries."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook()
        base = hook.inspect(params["alpine_image"] if params["distro"] == "alpine" else params["base_image"])
        report: dict[str, Any] = {}
        for variant, item in built.items():
            info = hook.inspect(item["reference"])
            layers = _layers(hook.api, item["reference"])
            report[variant] = {"bytes": info.size, "added_to_base": info.size - base.size, "layers": layers}
            print(f"{variant}: {info.size / 1e6:.1f} MB ({(info.size - base.size) / 1e6:.1f} MB on the base)")
            for layer in layers:
                print(f"  {layer['size'] / 1e6:8.2f} MB  {layer['created_by']}")
        naive, optimized = report["naive"]["added_to_base"], report["optimized"]["added_to_base"]
        saving = naive - optimized
        if saving <= (TEST_DATA_MB + ARTIFACT_MB) * 1_000_000:
            raise AssertionError(f"the optimized image saves only {saving} bytes")
        report["saving_bytes"] = saving
        report["saving_percent_of_added"] = round(100 * saving / naive, 1)
        share = report["saving_percent_of_added"]
        print(f"saving: {saving / 1e6:.1f} MB ({share}% of what the naive build adds)")
        return report

    check_optimized = SecureDockerOperator(
        task_id="check_optimized",
        image="{{ ti.xcom_pull(task_ids='build_both')['optimized']['reference'] }}",
        command=[
            "sh",
            "-c",
            "test ! -e /app/testdata && test ! -e /app/docs && test ! -e /tmp/build-artifact.bin "
            "&& test -O /app/src/app.py && python /app/src/app.py",
        ],
        network_mode="none",
        resources="xs",
    )

    libc_report = SecureDockerOperator(
        task_id="libc_report",
        image="{{ ti.xcom_pull(task_ids='build_both')['optimized']['reference'] }}",
        command=["python", "-c", LIBC_REPORT],
        network_mode="none",
        resources="xs",
    )

    @task
    def rebuild_after_change(built: dict[str, Any], libc: Any) -> dict[str, Any]:
        """One source file changes: which layers each Dockerfile rebuilds, and how long it takes."""
        import json

        from containerkit.hooks.image import ImageHook

        api = ImageHook().api
        result: dict[str, Any] = {"libc": json.loads(libc) if isinstance(libc, str) else libc}
        for variant, item in built.items():
            reference, _, seconds = _build(variant, "1.0.1")
            before = api.inspect_image(item["reference"])["RootFS"]["Layers"]
            after = api.inspect_image(reference)["RootFS"]["Layers"]
            reused = sum(1 for a, b in zip(before, after, strict=False) if a == b)
            result[variant] = {
                "seconds": seconds,
                "layers": len(after),
                "reused": reused,
                "rebuilt": len(after) - reused,
            }
        if result["optimized"]["rebuilt"] != 1 or result["naive"]["rebuilt"] < 3:
            raise AssertionError(f"unexpected cache behaviour: {result}")
        print(result)
        return result

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        return ImageHook().remove_labeled(LABELS)

    built = build_both()
    report = layer_report(built)
    built >> [check_optimized, libc_report]
    rebuilt = rebuild_after_change(built, libc_report.output)
    [report, check_optimized] >> rebuilt
    [built, rebuilt] >> cleanup()


image_optimization()
