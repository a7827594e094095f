"""``containerkit dev-cluster``: start, locate and stop the local Kubernetes test double.

The cluster is :class:`containerkit.testing.LocalCluster` (a test double: a Kubernetes API on 127.0.0.1
whose kubelet runs each pod's containers on the local Docker engine), so a user or ``make run-dags``
can run KubernetesPodOperator DAGs without a cluster. ``start`` runs in the foreground until Ctrl-C, or
with ``--detach`` in a background process whose pid, kubeconfig and Airflow connection live in the
state directory; ``stop`` ends it and removes every container, volume and network it labelled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

DEFAULT_NAME = "ck-dev"
STATE_ROOT = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "containerkit"


def _state_dir(name: str, state_dir: Path | None) -> Path:
    return state_dir or STATE_ROOT / "dev-cluster" / name


def _running_pid(state: Path) -> int | None:
    try:
        pid = int((state / "pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _cluster(name: str, state: Path, **kwargs: Any) -> Any:
    from containerkit.testing.cluster import LocalCluster  # kmock: the `testing` extra

    return LocalCluster(name, workdir=state, **kwargs)


def _serve(name: str, state: Path, options: dict[str, Any], echo: bool) -> None:
    """Run the cluster until SIGTERM/SIGINT; write pid, kubeconfig and connection into ``state``."""
    state.mkdir(parents=True, exist_ok=True)
    stop = {"now": False}

    def request_stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with _cluster(name, state, **options) as cluster:
        (state / "pid").write_text(str(os.getpid()))
        (state / "connection.json").write_text(cluster.airflow_connection())
        (state / "ready").write_text(cluster.url)
        if echo:
            _print_ready(cluster.url, cluster.kubeconfig, state)
            click.echo("Ctrl-C stops the cluster and removes its containers, volumes and network.")
        while not stop["now"]:
            time.sleep(0.2)
        if echo:
            click.echo("stopping: deleting pods, removing labelled containers, volumes and network ...")
    for leftover in ("pid", "ready", "connection.json"):
        with contextlib.suppress(FileNotFoundError):
            (state / leftover).unlink()


def _print_ready(url: str, kubeconfig: Path, state: Path) -> None:
    connection = (state / "connection.json").read_text()
    click.echo(f"API (a test double; pods run on the local Docker engine): {url}")
    click.echo(f"kubeconfig: {kubeconfig}")
    click.echo(f"  export KUBECONFIG={kubeconfig}")
    click.echo(f"  export AIRFLOW_CONN_KUBERNETES_DEFAULT='{connection}'")


@click.group("dev-cluster")
def dev_cluster() -> None:
    """A local Kubernetes test double whose pods run as containers on the Docker engine.

    Not a real cluster: one node, no controllers, no image pulls (images must be on the engine).
    """


@dev_cluster.command("start")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="cluster name (labels, state dir)")
@click.option("--state-dir", type=click.Path(path_type=Path), help="where pid and kubeconfig go")
@click.option("--detach", is_flag=True, help="run in the background; `dev-cluster stop` ends it")
@click.option("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free one)")
@click.option("--node-cpu", help="allocatable cpu of the node (default: the engine's CPUs)")
@click.option("--node-memory", help="allocatable memory, e.g. 8Gi (default: the engine's memory)")
def start(
    name: str, state_dir: Path | None, detach: bool, port: int, node_cpu: str | None, node_memory: str | None
) -> None:
    """Start the cluster; print the API URL, the kubeconfig path and the Airflow connection."""
    state = _state_dir(name, state_dir)
    if pid := _running_pid(state):
        click.echo(
            f"dev-cluster {name!r} is already running (pid {pid}); kubeconfig: {state / 'kubeconfig.yaml'}"
        )
        return
    options = {"port": port, "node_cpu": node_cpu, "node_memory": node_memory}
    click.echo(f"starting dev-cluster {name!r} (state in {state}) ...")
    if not detach:
        _serve(name, state, options, echo=True)
        return
    state.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (state / "ready").unlink()
    log = state / "dev-cluster.log"
    command = [sys.executable, "-m", "containerkit.cli.dev_cluster", name, str(state), json.dumps(options)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + 90
    while not (state / "ready").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise click.ClickException(
                f"dev-cluster did not start (exit {proc.poll()}); last lines of {log}:\n" + "\n".join(tail)
            )
        waited = time.monotonic() - (deadline - 90)
        if int(waited * 2) % 10 == 0:
            click.echo(f"  waiting for the API ({waited:.0f}s) ...")
        time.sleep(0.5)
    click.echo(f"dev-cluster {name!r} running in the background (pid {proc.pid}); log: {log}")
    _print_ready((state / "ready").read_text(), state / "kubeconfig.yaml", state)
    click.echo(f"stop it with: containerkit dev-cluster stop --name {name}")


@dev_cluster.command("kubeconfig")
@click.option("--name", default=DEFAULT_NAME, show_default=True)
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option(
    "--airflow-connection", is_flag=True, help="print the AIRFLOW_CONN_KUBERNETES_DEFAULT JSON instead"
)
def kubeconfig(name: str, state_dir: Path | None, airflow_connection: bool) -> None:
    """Print the kubeconfig path of a running dev-cluster (exit 1 when none runs)."""
    state = _state_dir(name, state_dir)
    if _running_pid(state) is None:
        raise click.ClickException(
            f"no dev-cluster {name!r} running: start one with `containerkit dev-cluster start`"
        )
    click.echo(
        (state / "connection.json").read_text() if airflow_connection else str(state / "kubeconfig.yaml")
    )


@dev_cluster.command("stop")
@click.option("--name", default=DEFAULT_NAME, show_default=True)
@click.option("--state-dir", type=click.Path(path_type=Path))
def stop(name: str, state_dir: Path | None) -> None:
    """Stop the dev-cluster and remove every engine object labelled with its name."""
    state = _state_dir(name, state_dir)
    if pid := _running_pid(state):
        click.echo(f"stopping dev-cluster {name!r} (pid {pid}) ...")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while _running_pid(state) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
    import docker

    from containerkit.testing.kubelet import remove_labelled

    client = docker.from_env(timeout=60)
    counts = remove_labelled(client, name)
    client.close()
    for leftover in ("pid", "ready", "connection.json"):
        with contextlib.suppress(FileNotFoundError):
            (state / leftover).unlink()
    swept = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    click.echo(f"dev-cluster {name!r} stopped" + (f" (swept leftovers: {swept})" if swept else ""))


if __name__ == "__main__":  # the detached server: python -m containerkit.cli.dev_cluster NAME STATE OPTIONS
    _serve(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), echo=False)
