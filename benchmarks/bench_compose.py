"""Benchmark the project image and the compose stack: builds, cold and warm `up`, idle memory per service.

Prints, each as soon as it is measured:
  * cold build of docker/Dockerfile (``--no-cache``) on the air-gapped Airflow base, the no-change and the
    code-only rebuild (one provider file changed in a copy of the build context), the image's size;
  * cold ``docker compose up -d --wait``: a new project (no volumes; ``airflow db migrate`` from scratch)
    to every service healthy, images already built;
  * idle memory per service (``docker stats``, median of 3 readings after 30 s without DAG runs);
  * warm ``up``: ``docker compose down`` (volumes kept) then ``up -d --wait`` again, and whether that
    cycle orphaned a volume (the engine's volume list before and after must match).

Run: ``.venv/bin/python benchmarks/bench_compose.py`` (needs a Docker engine and compose; builds the
air-gapped bases if missing with ``docker/airgap/build-bases.sh``). Compose project ``ck-bench-<pid>``.
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


def say(message: str) -> None:
    print(message, flush=True)


class Stack:
    """One ``ck-bench-<pid>`` compose project on the repository, with its own ``.env`` and secrets."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        run("bash", str(REPO / "docker/dev-secrets.sh"), str(tmp / "secrets"))
        self.project = f"ck-bench-{os.getpid()}"
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
        docker_compose = [DOCKER, "compose"]
        if subprocess.run([*docker_compose, "version"], capture_output=True).returncode != 0:
            docker_compose = [str(Path(sys.executable).parent / "docker-compose")]  # the pinned compose v2
        self.compose = [
            *docker_compose, "-p", self.project, "--project-directory", str(REPO),
            "--env-file", str(env_file),
        ]  # fmt: skip

    def up(self) -> float:
        start = time.monotonic()
        run(*self.compose, "up", "-d", "--wait", "--no-build", timeout=HEALTHY_TIMEOUT)
        return time.monotonic() - start

    def idle_memory(self) -> dict[str, float]:
        """MiB per service: the median of three ``docker stats`` readings."""
        rows = [
            json.loads(line) for line in run(*self.compose, "ps", "--format", "json").splitlines() if line
        ]
        names = {r["Name"]: r["Service"] for r in rows if r["State"] == "running"}
        readings: dict[str, list[float]] = {service: [] for service in names.values()}
        for _ in range(3):
            out = run(DOCKER, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *names)
            for line in out.splitlines():
                name, usage = line.split(" ", 1)
                readings[names[name]].append(mib(usage.split("/")[0].strip()))
            time.sleep(5)
        return {service: sorted(values)[1] for service, values in readings.items()}

    def volumes(self) -> set[str]:
        return set(run(DOCKER, "volume", "ls", "-q").split())

    def down(self, *args: str) -> None:
        subprocess.run([*self.compose, "down", *args, "--timeout", "10"], capture_output=True, timeout=300)


def mib(usage: str) -> float:
    units = {"B": 1 / 1024**2, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
    for unit in sorted(units, key=len, reverse=True):
        if usage.endswith(unit):
            return float(usage[: -len(unit)]) * units[unit]
    raise ValueError(f"unknown memory unit in {usage!r}")


def main() -> None:
    say("bases: docker/airgap/build-bases.sh airflow postgres redis (cached) ...")
    run("bash", str(REPO / "docker/airgap/build-bases.sh"), "airflow", "postgres", "redis")
    mb = 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ctx = context_copy(tmp / "context")
        full = build(ctx, "--no-cache")
        say(f"cold build (--no-cache)           {full:7.1f} s")
        warm = build(ctx)
        say(f"no-change rebuild (all cached)    {warm:7.1f} s")
        init = ctx / "provider/containerkit/__init__.py"
        init.write_text(init.read_text() + f"\n# bench {time.time()}\n")
        code_only = build(ctx)
        ratio = code_only / full
        say(f"code-only rebuild                 {code_only:7.1f} s   = {ratio:.2f} x the full build")
        size, base_size = image_size(TAG), image_size(BASE)
        added = (size - base_size) / mb
        say(f"project image size                {size / mb:7.0f} MiB (+{added:.0f} MiB on its base)")
        (tmp / "stack").mkdir()
        stack = Stack(tmp / "stack")
        try:
            before = stack.volumes()
            say("cold up: new project, no volumes, database migrated from scratch ...")
            say(f"cold up -d --wait to all healthy  {stack.up():7.1f} s")
            say("idle 30 s, then docker stats x3 ...")
            time.sleep(30)
            memory = stack.idle_memory()
            for service, value in sorted(memory.items(), key=lambda kv: -kv[1]):
                say(f"  idle memory {service:<24} {value:7.0f} MiB")
            say(f"  idle memory, whole stack             {sum(memory.values()):7.0f} MiB")
            with_stack = stack.volumes()
            stack.down()
            say("warm up: after `down` (volumes kept) ...")
            say(f"warm up -d --wait to all healthy  {stack.up():7.1f} s")
            after = stack.volumes()
            orphaned = sorted(after - with_stack)
            # Other programs on the engine may create volumes meanwhile: count only this project's.
            ours = sorted(v for v in with_stack - before if v.startswith(f"{stack.project}_"))
            orphaned = [v for v in orphaned if v.startswith(f"{stack.project}_") or len(v) == 64]
            say(f"volumes of the project            {ours}")
            say(f"down then up orphaned             {orphaned or 'nothing'}")
        finally:
            stack.down("-v", "--remove-orphans")


if __name__ == "__main__":
    main()
