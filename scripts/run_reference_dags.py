#!/usr/bin/env python
"""The main job: run every reference DAG in ``dags/`` on an embedded Airflow and print a result table.

Embedded means one process, a SQLite metadata DB under ``--airflow-home`` and ``dag.test()`` per
DAG (no scheduler, no webserver). A DAG declares what it needs to *run* with ``needs:*`` tags;
DAGs whose needs this machine lacks are parsed (and so policy-checked at import) but reported as
skipped with the reason, never silently dropped:

- ``needs:docker``: a reachable Docker engine (the air-gapped ``containerkit/base-python:3.11``
  image is used for ``CONTAINERKIT_PYTHON_IMAGE`` when it exists and the variable is unset);
- ``needs:kubernetes``: an Airflow connection ``kubernetes_default`` (``AIRFLOW_CONN_KUBERNETES_DEFAULT``).
  Without one, when a Docker engine is reachable, ``containerkit.testing`` (a local Kubernetes API, a
  *test double* whose kubelet runs each pod's containers on that engine; the same one
  ``containerkit dev-cluster`` starts) serves it for the run and removes every container it created
  afterwards (``--no-local-cluster`` turns that off). The table's title says so: it is not a real cluster;
- ``needs:registry``: an Airflow connection ``containerkit_registry_default``
  (``AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT``). Without one, when Debian's ``docker-registry``
  (the CNCF distribution registry) and a Docker engine are present, a throwaway registry is started
  on 127.0.0.1 for the run and removed afterwards (``--no-local-registry`` turns that off).

Task-level needs (``needs:compose``, ``needs:helm``, ``needs:trivy``, ``needs:cluster``,
``needs:internet``) never skip a DAG: the task detects the absence and skips itself, and the table lists
such skipped tasks.

Exit status: 0 when every runnable DAG succeeded and none failed to import, 1 otherwise.
Each DAG's output goes to ``<airflow-home>/reference-logs/<dag_id>.log``; the tail of a failed
DAG's log is printed under the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL_PYTHON_IMAGE = "containerkit/base-python:3.11"
LOCAL_DEBIAN_IMAGE = "containerkit/base-debian:12"


@dataclass
class Row:
    dag_id: str
    result: str
    seconds: float | None = None
    note: str = ""


def _configure_env(airflow_home: Path, dags_folder: Path) -> None:
    """Point Airflow at a private SQLite home before it is imported."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{airflow_home}/airflow.db"
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


def _docker_status() -> tuple[bool, str]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:  # any failure means the engine is not usable here
        return False, f"no Docker engine reachable ({type(exc).__name__})"
    for var, image in (
        ("CONTAINERKIT_PYTHON_IMAGE", LOCAL_PYTHON_IMAGE),
        ("CONTAINERKIT_DEBIAN_IMAGE", LOCAL_DEBIAN_IMAGE),
        ("CONTAINERKIT_AIRFLOW_IMAGE", "containerkit/base-airflow:3.3.2-python3.11"),
        ("CONTAINERKIT_POSTGRES_IMAGE", "containerkit/postgres:15"),
        ("CONTAINERKIT_REDIS_IMAGE", "containerkit/redis:7"),
    ):
        if var not in os.environ:
            with contextlib.suppress(Exception):
                client.images.get(image)
                os.environ[var] = image
    client.close()
    return True, ""


TASK_LEVEL_NEEDS = ("compose", "helm", "trivy", "cluster", "internet")
"""Needs a task checks itself (it raises AirflowSkipException naming what to set); the DAG still runs."""


def _needs_status() -> dict[str, tuple[bool, str]]:
    docker_ok = _docker_status()
    return {
        **{need: (True, "") for need in TASK_LEVEL_NEEDS},
        "docker": docker_ok,
        "kubernetes": (
            "AIRFLOW_CONN_KUBERNETES_DEFAULT" in os.environ,
            "no Kubernetes cluster: set AIRFLOW_CONN_KUBERNETES_DEFAULT to run it",
        ),
        "registry": (
            "AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT" in os.environ,
            "no registry connection: set AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT to run it",
        ),
    }


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send fd 1 and 2 (Airflow's logging, subprocesses) to ``path`` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("wb") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _tail(path: Path, lines: int = 25) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@contextlib.contextmanager
def _local_registry(enabled: bool) -> Iterator[str]:
    """A throwaway distribution registry on 127.0.0.1 as ``containerkit_registry_default``, if possible.

    Yields a note for the table header (empty when nothing was started).
    """
    binary = shutil.which("docker-registry")
    if not enabled or "AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT" in os.environ or not binary:
        yield ""
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="ck-registry-") as root:
        config = Path(root) / "config.yml"
        config.write_text(
            json.dumps(  # JSON is YAML; the registry reads it as its config file
                {
                    "version": 0.1,
                    "storage": {"filesystem": {"rootdirectory": f"{root}/data"}, "delete": {"enabled": True}},
                    "http": {"addr": f"127.0.0.1:{port}"},
                }
            )
        )
        proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        yield ""
                        return
                    time.sleep(0.2)
            conn = {
                "conn_type": "containerkit_registry",
                "host": f"127.0.0.1:{port}",
                "extra": {"scheme": "http"},
            }
            os.environ["AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT"] = json.dumps(conn)
            try:
                yield f"throwaway registry on 127.0.0.1:{port}"
            finally:
                os.environ.pop("AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT", None)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def _local_cluster(enabled: bool) -> Iterator[str]:
    """The local Docker-backed Kubernetes test double as ``kubernetes_default``, if possible.

    Yields a note for the table header (empty when nothing was started).
    """
    if not enabled or "AIRFLOW_CONN_KUBERNETES_DEFAULT" in os.environ or not _docker_status()[0]:
        yield ""
        return
    try:
        from containerkit.testing.cluster import LocalCluster
    except ImportError:  # the testing extra (kmock) is not installed
        yield ""
        return
    with (
        tempfile.TemporaryDirectory(prefix="ck-run-dags-kube-") as workdir,
        LocalCluster(f"ck-run-dags-{os.getpid()}", workdir=workdir) as cluster,
    ):
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = cluster.airflow_connection()
        try:
            yield "needs:kubernetes on a local Docker-backed API (containerkit.testing, a test double)"
        finally:
            os.environ.pop("AIRFLOW_CONN_KUBERNETES_DEFAULT", None)


def _skipped_tasks(dagrun: object) -> list[str]:
    """Task ids that ended ``skipped`` (e.g. a task-level need this machine lacks)."""
    return sorted(ti.task_id for ti in dagrun.get_task_instances() if str(ti.state) == "skipped")  # type: ignore[attr-defined]


def run(dags_folder: Path, airflow_home: Path, only: set[str]) -> tuple[list[Row], dict[str, Path]]:
    _configure_env(airflow_home, dags_folder)
    # Airflow's dag-processor puts the DAGs folder on sys.path; shared DAG settings rely on it.
    if str(dags_folder) not in sys.path:
        sys.path.insert(0, str(dags_folder))
    needs = _needs_status()
    log_dir = airflow_home / "reference-logs"
    log_dir.mkdir(exist_ok=True)

    print(f"migrating the DB, parsing {dags_folder} (log: {log_dir}/_setup.log) ...", file=sys.stderr)
    with _output_to(log_dir / "_setup.log"):
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        db.initdb()
        bag = DagBag(str(dags_folder))

    rows: list[Row] = []
    failed_logs: dict[str, Path] = {}
    for file, error in sorted(bag.import_errors.items()):
        rows.append(
            Row(
                Path(file).name,
                "IMPORT ERROR",
                note=str(error).strip().splitlines()[-1][:120],
            )
        )
    ordered = sorted(bag.dags.values(), key=lambda d: (d.fileloc or "", d.dag_id))
    selected = [d for d in ordered if not only or d.dag_id in only]
    progress = _Progress(len(selected))
    for dag in selected:
        progress.next(dag.dag_id)
        missing = [
            needs.get(tag.split(":", 1)[1], (False, f"unknown requirement {tag!r}"))[1]
            for tag in sorted(dag.tags or ())
            if tag.startswith("needs:") and not needs.get(tag.split(":", 1)[1], (False, ""))[0]
        ]
        if missing:
            rows.append(Row(dag.dag_id, "skipped", note="; ".join(missing)))
            progress.done("skipped", 0.0)
            continue
        log = log_dir / f"{dag.dag_id}.log"
        start = time.monotonic()
        try:
            with _output_to(log), progress.ticking():
                dagrun = dag.test()
            state = str(getattr(dagrun, "state", "unknown"))
            failed = [
                ti.task_id
                for ti in dagrun.get_task_instances()
                if str(ti.state) not in ("success", "skipped")
            ]
            note = f"not successful: {', '.join(failed)}" if failed and state != "success" else ""
            if skipped := _skipped_tasks(dagrun):
                note = "; ".join(filter(None, [note, f"tasks skipped: {', '.join(skipped)}"]))
        except Exception as exc:  # a DAG that crashes dag.test() is a failed row, not a crashed runner
            state, note = "error", f"{type(exc).__name__}: {exc}"[:160]
        elapsed = time.monotonic() - start
        rows.append(Row(dag.dag_id, state, elapsed, note))
        progress.done(state, elapsed)
        if state != "success":
            failed_logs[dag.dag_id] = log
    return rows, failed_logs


class _Progress:
    """A live status line on the terminal while each DAG runs (its own output goes to its log file).

    Writes to a duplicate of the original stderr taken before any redirection, so it stays visible while
    fd 1 and 2 point at the DAG's log: ``[12/57] 88_03_02_k8s_manifests  running 14 s``.
    """

    def __init__(self, total: int) -> None:
        self.total, self.index, self.dag_id = total, 0, ""
        self.fd = os.dup(2)
        self.tty = os.isatty(self.fd)
        self.started = time.monotonic()

    def _write(self, text: str, final: bool = False) -> None:
        line = f"\r{text:<100}" if self.tty else text
        os.write(self.fd, (line + ("\n" if final or not self.tty else "")).encode())

    def next(self, dag_id: str) -> None:
        self.index += 1
        self.dag_id = dag_id
        self.started = time.monotonic()
        self._write(f"[{self.index}/{self.total}] {dag_id}  running")

    @contextlib.contextmanager
    def ticking(self) -> Iterator[None]:
        """Refresh the line every second (on a terminal) or every 30 s (in CI logs) until the DAG ends."""
        stop = threading.Event()

        def tick() -> None:
            interval = 1.0 if self.tty else 30.0
            while not stop.wait(interval):
                seconds = time.monotonic() - self.started
                self._write(f"[{self.index}/{self.total}] {self.dag_id}  running {seconds:.0f} s")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def done(self, state: str, seconds: float) -> None:
        self._write(f"[{self.index}/{self.total}] {self.dag_id}  {state} in {seconds:.1f} s", final=True)


def print_table(rows: list[Row], title_note: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    styles = {"success": "green", "skipped": "yellow"}
    title = "containerkit reference DAGs (embedded Airflow, SQLite)"
    table = Table(title=title + (f"; {title_note}" if title_note else ""))
    for col in ("DAG (file dags/<DAG>.py)", "result", "seconds", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = styles.get(r.result, "red")
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else ""
        table.add_row(r.dag_id, f"[{style}]{r.result}[/{style}]", seconds, r.note)
    Console(width=max(120, Console().width)).print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.result] = counts.get(r.result, 0) + 1
    print("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags-folder", type=Path, default=REPO / "dags")
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow-home")
    parser.add_argument("--dag-id", action="append", default=[], help="run only this DAG (repeatable)")
    parser.add_argument(
        "--no-local-registry",
        action="store_true",
        help="do not start a throwaway registry for needs:registry DAGs",
    )
    parser.add_argument(
        "--no-local-cluster",
        action="store_true",
        help="do not start the local Docker-backed Kubernetes test double for needs:kubernetes DAGs",
    )
    args = parser.parse_args(argv)
    with (
        _local_registry(not args.no_local_registry) as registry_note,
        _local_cluster(not args.no_local_cluster) as cluster_note,
    ):
        rows, failed_logs = run(args.dags_folder.resolve(), args.airflow_home.resolve(), set(args.dag_id))
    print_table(rows, "; ".join(filter(None, [registry_note, cluster_note])))
    for dag_id, log in failed_logs.items():
        print(f"\n--- {dag_id}: last lines of {log}\n{_tail(log)}")
    if not rows:
        print("no reference DAGs found", file=sys.stderr)
        return 1
    bad = [r for r in rows if r.result not in ("success", "skipped")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
