"""DAG folders -> the pods and docker run settings their container tasks would launch.

The folder is parsed with Airflow's own ``DagBag``; every task that is a ``KubernetesPodOperator`` or a
``DockerOperator`` (stock, containerkit's, ``@task.kubernetes``/``@task.docker``, any subclass) is
rendered without a cluster or engine: ``build_pod_request_obj(dry_run=True)`` for pods, the one Docker
run view (:mod:`containerkit.docker.run_view`) for Docker. Policy enforcement is switched off while
the DAGs load so that a violating DAG is reported, not turned into an import error.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from containerkit.policy.enforce import ENV_VAR
from containerkit.policy.engine import pod_target
from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.sources.located import SourceError

# The attribute both containerkit operators expose (and ``task_policy`` reads) for per-task policy.
EXEMPTIONS_ATTR = "policy_exemptions"
# The method a Docker operator with rendered settings offers for its one run view (see docker.run_view).
RUN_VIEW_METHOD = "run_view"

_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


@contextlib.contextmanager
def _policy_off() -> Iterator[None]:
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "off"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def task_exemptions(task: Any) -> dict[str, str]:
    """The task's own ``{rule_id: reason}`` exemptions (containerkit operators), else ``{}``."""
    value = getattr(task, EXEMPTIONS_ATTR, None)
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def docker_run_settings(task: Any) -> dict[str, Any]:
    """The ``DockerRun`` policy view of a ``DockerOperator`` task: the one run view, parse-time form.

    A task that offers :data:`RUN_VIEW_METHOD` (``SecureDockerOperator``) merges its rendered settings
    with its stock arguments; any other ``DockerOperator`` is read for exactly what the stock operator
    sends (``cpus`` as ``cpu_shares``, a weight, never a CPU limit).
    """
    method = getattr(task, RUN_VIEW_METHOD, None)
    if callable(method):
        return dict(method().policy)
    from containerkit.docker.run_view import docker_run, stock_args

    return dict(docker_run(stock_args(task)).policy)


def _import_error(file: str, trace: str) -> SourceError:
    lines = [ln for ln in str(trace).strip().splitlines() if ln.strip()]
    line = None
    for m in _LINE.finditer(str(trace)):
        if os.path.abspath(m.group("file")) == os.path.abspath(file):
            line = int(m.group("line"))
    return SourceError(file, line, f"DAG import failed: {lines[-1].strip() if lines else trace}")


def _pod(task: Any) -> Any:
    """``build_pod_request_obj`` on a shallow copy: it appends to ``env_vars`` on every call."""
    clone = copy.copy(task)
    env = getattr(task, "env_vars", None)
    clone.env_vars = list(env) if isinstance(env, list) else (dict(env) if isinstance(env, Mapping) else env)
    with _policy_off():
        return clone.build_pod_request_obj(dry_run=True)


def _task_line(file: str | None, task_id: str, dag_id: str | None) -> int | None:
    if not file:
        return None
    from containerkit.policy.sources.dag_lines import task_lines

    try:
        mtime = os.path.getmtime(file)
    except OSError:
        return None
    return task_lines(file, mtime).of(task_id, dag_id)[0]


def task_target(task: Any, *, dag_id: str | None = None, file: str | None = None) -> Target | None:
    """The pod or docker run target a container task would launch; ``None`` for other tasks.

    The target's line is that of the operator call (or ``@task`` decorator) in the DAG file.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.docker.operators.docker import DockerOperator

    if isinstance(task, KubernetesPodOperator):
        base = pod_target(_pod(task))
        ref = ObjectRef(
            kind="Pod",
            name=task.task_id,
            namespace=base.obj.namespace,
            file=file,
            line=_task_line(file, task.task_id, dag_id),
            dag_id=dag_id,
            task_id=task.task_id,
        )
        return Target("Pod", ref, base.data, {**base.suppressions, **task_exemptions(task)})
    if isinstance(task, DockerOperator):
        settings = docker_run_settings(task)
        ref = ObjectRef(
            kind="DockerRun",
            name=task.task_id,
            file=file,
            line=_task_line(file, task.task_id, dag_id),
            dag_id=dag_id,
            task_id=task.task_id,
        )
        return Target("DockerRun", ref, settings, task_exemptions(task))
    return None


def load(path: str | Path) -> tuple[list[Target], list[SourceError]]:
    """Targets for every container task in the DAG file or folder, and the files that failed to import."""
    # Airflow logs to stdout; a lint report on stdout (json, sarif) must stay parseable.
    with contextlib.redirect_stdout(sys.stderr):
        return _load(path)


def _load(path: str | Path) -> tuple[list[Target], list[SourceError]]:
    from airflow.dag_processing.dagbag import DagBag

    with _policy_off():
        bag = DagBag(dag_folder=str(path), safe_mode=True, load_op_links=False)
    errors = [_import_error(f, t) for f, t in sorted(bag.import_errors.items())]
    targets: list[Target] = []
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        for task in dag.tasks:
            try:
                target = task_target(task, dag_id=dag_id, file=dag.fileloc)
            except Exception as exc:  # a task that cannot render is a parse error of its DAG, not a crash
                errors.append(
                    SourceError(
                        dag.fileloc or str(path), None, f"{dag_id}.{task.task_id}: cannot render: {exc}"
                    )
                )
                continue
            if target is not None:
                targets.append(target)
    return targets, errors
