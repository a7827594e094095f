#!/usr/bin/env python3
"""Write the compose dev stack's ``.env`` from what this host has, then its secret files.

    make compose-env                    # or: python3 scripts/compose_env.py
    docker compose up -d --wait

Why a script: the values that break a first ``docker compose up`` depend on the host, not on taste: the
Docker socket's group (the worker needs it to start task containers), a uid that is not root, and base
images a host without Docker Hub must build locally. The script detects each, writes it into ``.env``
(created from ``.env.example`` the first time), and prints what it chose and why. Then it creates the
secret files and builds the project image (``docker compose build``), so the first ``up`` neither builds
nor pulls and prints no registry errors or builder warnings (compose warns when buildx is missing; the
build log is shown here only if the build fails).

Re-running is safe. A line the script does not manage is kept as written. A managed value you changed is
kept unless it cannot work here: ``AIRFLOW_UID=0``, a ``DOCKER_GID`` that is not the socket's group, or
an image that is neither local nor pullable. Those are overwritten, and the output says so, old value
included. Secret files are created once and never rotated (``docker/dev-secrets.sh``).

Standard library only, so it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER_HUB_PROBE = "https://registry-1.docker.io/v2/"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# uid of the `airflow` user in the official image: the safe choice when the caller is root.
AIRFLOW_DEFAULT_UID = 50000
DEFAULT_API_PORT = 8080
DEFAULT_PROJECT_IMAGE = "containerkit/airflow:0.1.0"
# Setting -> (local image built by docker/airgap/build-bases.sh, its build target).
LOCAL_IMAGES: dict[str, tuple[str, str]] = {
    "AIRFLOW_BASE_IMAGE": ("containerkit/base-airflow:3.3.2-python3.11", "airflow"),
    "POSTGRES_IMAGE": ("containerkit/postgres:15", "postgres"),
    "REDIS_IMAGE": ("containerkit/redis:7", "redis"),
    "CONTAINERKIT_PYTHON_IMAGE": ("containerkit/base-python:3.11", "python"),
    "CONTAINERKIT_DEBIAN_IMAGE": ("containerkit/base-debian:12", "debian"),
}
LINE = re.compile(r"^(?P<comment>#\s?)?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass
class EnvFile:
    """``.env`` as lines, edited in place so comments, order and unmanaged settings survive."""

    lines: list[str]
    # Values copied from .env.example in this run: defaults, not user edits, so free to replace.
    from_example: bool = False
    report: list[str] = field(default_factory=list)

    def _find(self, key: str, commented: bool) -> int | None:
        for i, line in enumerate(self.lines):
            m = LINE.match(line)
            if m and m["key"] == key and bool(m["comment"]) == commented:
                return i
        return None

    def get(self, key: str) -> str | None:
        i = self._find(key, commented=False)
        return None if i is None else LINE.match(self.lines[i])["value"].strip()  # type: ignore[index]

    def choose(self, key: str, value: str, why: str, keep_if: Callable[[str], bool] | None = None) -> str:
        """Set ``key`` unless the user's own value passes ``keep_if``; record what happened and why."""
        current = self.get(key)
        if current == value:
            self.report.append(f"keep       {key}={value}  ({why})")
            return value
        if current is not None and not self.from_example and keep_if is not None and keep_if(current):
            self.report.append(f"keep       {key}={current}  (your value; detected: {value}, {why})")
            return current
        line = f"{key}={value}"
        i = self._find(key, commented=False)
        if i is not None:
            self.lines[i] = line
            verb = "set" if self.from_example else f"OVERWROTE  {key}={current} ->"
            self.report.append(f"{verb:<10} {line}  ({why})")
            return value
        slot = self._find(key, commented=True)  # an example line like `# POSTGRES_IMAGE=...`
        if slot is not None:
            self.lines[slot] = line
        else:
            self.lines.append(line)
        self.report.append(f"set        {line}  ({why})")
        return value


def docker_hub_answers(timeout: float = 5.0) -> bool:
    """True when Docker Hub's registry API answers at all (an HTTP 401 is an answer)."""
    try:
        urllib.request.urlopen(DOCKER_HUB_PROBE, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def docker_bin() -> str:
    # Debian's client speaks BuildKit to the engine; a newer client without buildx refuses it.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def image_present(image: str) -> bool:
    proc = subprocess.run([docker_bin(), "image", "inspect", image], capture_output=True, timeout=60)
    return proc.returncode == 0


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def socket_path() -> Path:
    host = os.environ.get("DOCKER_HOST", "")
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else Path("/var/run/docker.sock")


def configure(env: EnvFile, *, hub: bool, build: bool) -> list[str]:
    """Choose every host-dependent setting; returns the build-bases targets still missing."""
    uid = os.getuid()
    if uid == 0:
        env.choose(
            "AIRFLOW_UID",
            str(AIRFLOW_DEFAULT_UID),
            "you are root; the stack never runs Airflow as uid 0, 50000 is the image's airflow user",
            keep_if=lambda v: v.isdigit() and int(v) != 0,
        )
    else:
        env.choose(
            "AIRFLOW_UID",
            str(uid),
            "`id -u`, so files the stack writes under airflow-home are yours",
            keep_if=lambda v: v.isdigit() and int(v) != 0,
        )

    sock = socket_path()
    if sock.exists():
        why = f"group of {sock}, added to the worker to start task containers"
        env.choose("DOCKER_GID", str(sock.stat().st_gid), why)
    else:
        env.report.append(f"skip       DOCKER_GID  ({sock} not found: is the Docker engine running?)")

    port = env.get("AIRFLOW_API_PORT")
    if port is None or env.from_example:  # a port already in .env is yours, or this stack's own
        port = port or str(DEFAULT_API_PORT)
        if port.isdigit() and not port_free(int(port)):
            env.choose("AIRFLOW_API_PORT", str(free_port()), f"127.0.0.1:{port} is in use on this host")
        else:
            env.choose("AIRFLOW_API_PORT", port, "free on 127.0.0.1")

    if HOST_CA.exists():
        env.choose(
            "CONTAINERKIT_CA_FILE",
            str(HOST_CA),
            "pip in the image build trusts the host's CAs (TLS proxies); a build secret, never in a layer",
            keep_if=lambda v: Path(v).exists(),
        )

    missing: list[str] = []
    if hub:
        env.report.append("info       Docker Hub answers: the public images are used (pulled on first `up`)")
        return missing
    env.report.append(f"info       Docker Hub does not answer ({DOCKER_HUB_PROBE}): local images")
    for key, (image, target) in LOCAL_IMAGES.items():
        chosen = env.choose(key, image, "built by docker/airgap/build-bases.sh", keep_if=image_present)
        if chosen == image and not image_present(image):
            missing.append(target)
    project_image = env.get("AIRFLOW_IMAGE_NAME") or DEFAULT_PROJECT_IMAGE
    env.choose(
        "CONTAINERKIT_AIRFLOW_IMAGE",
        project_image,
        "88_01_01 checks the stack's own Airflow image instead of pulling apache/airflow",
        keep_if=lambda v: v == project_image or image_present(v),
    )
    if missing and not build:
        targets = " ".join(missing)
        env.report.append(f"MISSING    local images: run docker/airgap/build-bases.sh {targets}")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO, help="project directory (docker-compose.yaml)")
    hub = parser.add_mutually_exclusive_group()
    hub.add_argument("--offline", action="store_true", help="use the local images without probing Docker Hub")
    hub.add_argument("--online", action="store_true", help="use Docker Hub without probing it")
    parser.add_argument("--no-build", action="store_true", help="build nothing (bases, project image)")
    args = parser.parse_args(argv)
    project = args.dir.resolve()
    env_path, example = project / ".env", project / ".env.example"

    if env_path.exists():
        env = EnvFile(env_path.read_text().splitlines())
        print(f"compose-env: updating {env_path} (your other lines are kept as they are)")
    else:
        env = EnvFile(example.read_text().splitlines(), from_example=True)
        print(f"compose-env: creating {env_path} from {example.name}")
    online = True if args.online else False if args.offline else docker_hub_answers()
    missing = configure(env, hub=online, build=not args.no_build)
    for line in env.report:
        print(f"  {line}")
    env_path.write_text("\n".join(env.lines) + "\n")

    if missing:
        if args.no_build:
            return 1
        print(f"compose-env: building missing local images: docker/airgap/build-bases.sh {' '.join(missing)}")
        subprocess.run(["bash", str(project / "docker/airgap/build-bases.sh"), *missing], check=True)

    secrets_dir = env.get("AIRFLOW_SECRETS_DIR") or "./airflow-home/secrets"
    print(f"compose-env: secret files in {secrets_dir} (created once, never rotated)")
    subprocess.run(["bash", str(project / "docker/dev-secrets.sh"), secrets_dir], check=True, cwd=project)
    if args.no_build:
        print("compose-env: done (--no-build: the first `up` builds the project image)")
        return 0
    image = env.get("AIRFLOW_IMAGE_NAME") or DEFAULT_PROJECT_IMAGE
    print(
        f"compose-env: building {image} (docker compose build; cached when nothing changed) ...", flush=True
    )
    start = time.monotonic()
    built = subprocess.run(
        [docker_bin(), "compose", "build"], cwd=project, capture_output=True, text=True, timeout=3600
    )
    if built.returncode != 0:
        print(built.stdout + built.stderr, file=sys.stderr)
        print(f"compose-env: building {image} failed (log above)", file=sys.stderr)
        return built.returncode
    print(f"compose-env: built {image} in {time.monotonic() - start:.0f} s")
    port = env.get("AIRFLOW_API_PORT")
    print(
        f"compose-env: done. Next: docker compose up -d --wait  (UI http://127.0.0.1:{port}, user admin, "
        f"password in {secrets_dir}/airflow_admin_password)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
