"""Wall time of a trivial container task: SecureDockerOperator vs the stock DockerOperator.

Both run ``python -c "print('ok')"`` on the real Docker engine through ``execute()`` (what a worker
runs per task), with their defaults apart from ``auto_remove="force"`` on the stock operator so both
clean up. Runs are interleaved (stock, secure, stock, …) after one warm-up each, so engine and page
cache drift hits both alike; the medians and their ratio are printed (target: secure <= 1.10x stock).
Operator construction (DAG parse time, where containerkit renders the spec and checks policy) is
timed separately.

    .venv/bin/python benchmarks/bench_docker_operator.py [--repeats 15] [--image IMAGE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

LABELS = {"containerkit.test": "dockerop-bench"}
COMMAND = ["python", "-c", "print('ok')"]


def stock(image: str) -> Any:
    from airflow.providers.docker.operators.docker import DockerOperator

    return DockerOperator(task_id="stock", image=image, command=COMMAND, labels=LABELS, auto_remove="force")


def secure(image: str) -> Any:
    from containerkit.operators.docker import SecureDockerOperator

    return SecureDockerOperator(task_id="secure", image=image, command=COMMAND, labels=LABELS)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_task(factory: Callable[[str], Any], image: str) -> float:
    op = factory(image)
    return timed(lambda: op.execute(context={}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--image", default=os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "containerkit/base-python:3.11")
    )
    args = parser.parse_args()

    import docker

    client = docker.from_env()
    client.images.get(args.image)  # fail early and clearly if the image is missing

    for factory in (stock, secure):  # warm-up: imports, hook connection, image metadata
        run_task(factory, args.image)

    runs: dict[str, list[float]] = {"stock": [], "secure": []}
    build: dict[str, list[float]] = {"stock": [], "secure": []}
    for _ in range(args.repeats):
        for name, factory in (("stock", stock), ("secure", secure)):
            build[name].append(timed(lambda f=factory: f(args.image)))  # type: ignore[misc]
            runs[name].append(run_task(factory, args.image))

    left = client.containers.list(all=True, filters={"label": "containerkit.test=dockerop-bench"})
    for container in left:
        container.remove(force=True)

    med = {name: statistics.median(values) for name, values in runs.items()}
    med_build = {name: statistics.median(values) for name, values in build.items()}
    ratio = med["secure"] / med["stock"]
    print(f"image {args.image}, {args.repeats} interleaved runs each (after one warm-up)")
    for name in ("stock", "secure"):
        values = runs[name]
        print(
            f"  {name:6s} execute median {med[name] * 1000:7.1f} ms  "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f});  "
            f"construct median {med_build[name] * 1000:.2f} ms"
        )
    verdict = "OK" if ratio <= 1.10 else "OVER"
    print(f"ratio secure/stock (execute medians): {ratio:.3f}x  target <= 1.10x  {verdict}")
    print(f"containers left behind: {len(left)}")
    return 0 if ratio <= 1.10 and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
