"""``containerkit reap``: remove task containers and pods whose task instance is no longer running.

Asks Airflow's REST API (Airflow 3, ``/api/v2``) which task instances are live, then removes every
containerkit task container on the Docker engine (and, with ``--kubernetes-conn-id`` or ``--kubeconfig``,
every KubernetesPodOperator pod in ``--namespace``) that no live try claims. One line per container or
pod says what was done and why. Exit codes: 0 done (or nothing to do), 1 a removal failed, 2 bad
settings, or the API / engine / cluster could not be asked (checked before anything is removed).
"""

from __future__ import annotations

from pathlib import Path

import click

EXIT_OK = 0
EXIT_REMOVAL_FAILED = 1
EXIT_BAD_SETTINGS = 2

_NAMES = {
    "url": "--api-url / CONTAINERKIT_AIRFLOW_API_URL",
    "token": "--token / CONTAINERKIT_AIRFLOW_API_TOKEN",
    "username": "--username / CONTAINERKIT_AIRFLOW_API_USERNAME",
    "password": "--password / CONTAINERKIT_AIRFLOW_API_PASSWORD (or --password-file)",
    "timeout": "--timeout",
}


def _fail(message: str) -> click.exceptions.Exit:
    click.echo(f"containerkit reap: error: {message}", err=True)
    return click.exceptions.Exit(EXIT_BAD_SETTINGS)


@click.command("reap")
@click.option("--api-url", envvar="CONTAINERKIT_AIRFLOW_API_URL", help="The api-server's base URL.")
@click.option(
    "--token", envvar="CONTAINERKIT_AIRFLOW_API_TOKEN", help="A JWT for the API (else username/password)."
)
@click.option(
    "--username", envvar="CONTAINERKIT_AIRFLOW_API_USERNAME", help="API user (read access to task instances)."
)
@click.option("--password", envvar="CONTAINERKIT_AIRFLOW_API_PASSWORD", help="API user's password.")
@click.option(
    "--password-file",
    envvar="CONTAINERKIT_AIRFLOW_API_PASSWORD_FILE",
    type=click.Path(dir_okay=False),
    help="Read the password from this file (e.g. a mounted secret).",
)
@click.option("--conn-id", help="Take URL and credentials from this Airflow connection instead.")
@click.option("--min-age", default="10m", show_default=True, help="Keep anything younger (90s, 10m, 2h, 1d).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option(
    "--label", "labels", multiple=True, help="Only containers/pods with this label (key=value); repeatable."
)
@click.option(
    "--include-unknown-dags", is_flag=True, help="Also remove those whose DAG this Airflow does not know."
)
@click.option(
    "--docker/--no-docker", default=True, show_default=True, help="Reap containers on the Docker engine."
)
@click.option("--kubernetes-conn-id", help="Reap pods too, on the cluster of this Airflow connection.")
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False), help="Reap pods too, on this kubeconfig's cluster."
)
@click.option("--kube-context", help="The kubeconfig context (default: its current one).")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace(s) to reap pods in (default: the connection's).",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds per API request.",
)
def reap(
    api_url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    password_file: str | None,
    conn_id: str | None,
    min_age: str,
    dry_run: bool,
    labels: tuple[str, ...],
    include_unknown_dags: bool,
    docker: bool,
    kubernetes_conn_id: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    namespaces: tuple[str, ...],
    timeout: float,
) -> None:
    """Remove containerkit task containers and pods whose task instance is no longer running.

    Kept: anything younger than --min-age, anything whose task instance is running, deferred, queued,
    scheduled or restarting (a Docker container only for its current try), anything of a DAG this
    Airflow does not know (unless --include-unknown-dags). Removed: the rest (also containers and pods
    kept with auto_remove="never" or keep_pod, once older than --min-age), after reading their exit code
    and OOM flag.
    Exit codes: 0 done, 1 a removal failed, 2 bad settings or unreachable API, engine or cluster.
    """
    from containerkit.reap import (
        AirflowApi,
        AirflowApiError,
        ApiSettings,
        DockerWorkloads,
        PodWorkloads,
        WorkloadSourceError,
        kubernetes_core_v1,
        parse_duration,
        parse_labels,
    )
    from containerkit.reap import reap as run_reap
    from containerkit.reap.api import settings_from_connection

    try:
        age = parse_duration(min_age)
    except ValueError as exc:
        raise _fail(f"--min-age {exc}") from None
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            raise _fail(f"--password-file {password_file}: {exc.strerror}") from None
    try:
        if conn_id:
            settings = settings_from_connection(conn_id, timeout=timeout)
        else:
            settings = ApiSettings(
                url=api_url or "",
                token=token,
                username=username,
                password=password,
                timeout=timeout,
                names=_NAMES,
            )
        api = AirflowApi(settings)
        api.check()
        sources: list[DockerWorkloads | PodWorkloads] = []
        if docker:
            sources.append(DockerWorkloads())
        if kubernetes_conn_id or kubeconfig:
            core_v1, default_ns = kubernetes_core_v1(
                conn_id=kubernetes_conn_id, kubeconfig=kubeconfig, context=kube_context
            )
            sources.append(PodWorkloads(core_v1, list(namespaces) or [default_ns]))
        if not sources:
            raise _fail("nothing to reap: --no-docker and no --kubernetes-conn-id or --kubeconfig")
        result = run_reap(
            sources,
            api,
            min_age=age,
            dry_run=dry_run,
            labels=parse_labels(labels),
            include_unknown_dags=include_unknown_dags,
            report=click.echo,
        )
    except (AirflowApiError, WorkloadSourceError) as exc:
        raise _fail(str(exc)) from None
    click.echo(result.summary())
    if result.failed:
        raise click.exceptions.Exit(EXIT_REMOVAL_FAILED)
