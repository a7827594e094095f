"""The dag-processor parse path: what the manager pre-imports, a warning once per processor, one line per DAG.

The mechanism (issue 15): DAG files import containerkit's operators from ``airflow.providers.containerkit``,
an ``airflow.*`` module the dag-processor manager imports before it forks each parse child
(``[dag_processor] parsing_pre_import_modules``). These tests run Airflow's own pre-import function in a
fresh interpreter, so a change that loses the mechanism (a lazy import moved, the shim dropped, a DAG
importing the direct path) fails here rather than in a dag-processor's timings.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DIGEST = "sha256:" + "a" * 64
# What constructing each operator at parse imports; the manager must hold all of it before the fork.
PARSE_PATH = {
    "kubernetes": {
        "containerkit.operators.kubernetes",
        "containerkit.kubernetes.pod",
        "containerkit.spec",
        "containerkit.policy.enforce",
        "containerkit.policy.engine",
        "containerkit.policy.rules.pss",
        "containerkit.policy.rules.hardened",
        "kubernetes.client",
    },
    "docker": {
        "containerkit.operators.docker",
        "containerkit.docker.run_settings",
        "containerkit.spec",
        "containerkit.policy.enforce",
        "containerkit.policy.engine",
        "containerkit.policy.rules.docker_run",
    },
}
DAG_FILE = """\
import pendulum
from airflow.sdk import DAG
from airflow.providers.containerkit.operators.{module} import {cls}

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False):
{tasks}
"""
KPO_TASK = (
    '    {cls}(task_id="t{i}", namespace="airflow-tasks", image="{image}", cmds=["python"], '
    'env_vars={{"PART": "{i}"}}{extra})'
)
DOCKER_TASK = (
    '    {cls}(task_id="t{i}", image="{image}", command=["python"], environment={{"PART": "{i}"}}{extra})'
)


def _dag_file(
    tmp: Path, kind: str, image: str, tasks: int = 3, dag_id: str = "parse_probe", extra: str = ""
) -> Path:
    cls = "SecureKubernetesPodOperator" if kind == "kubernetes" else "SecureDockerOperator"
    task = KPO_TASK if kind == "kubernetes" else DOCKER_TASK
    body = DAG_FILE.format(
        module=kind,
        cls=cls,
        dag_id=dag_id,
        tasks="\n".join(task.format(cls=cls, i=i, image=image, extra=extra) for i in range(tasks)),
    )
    path = tmp / f"{dag_id}.py"
    path.write_text(body)
    return path


def _python(code: str, *, env: dict[str, str] | None = None, argv: list[str] | None = None) -> str:
    full_env = dict(os.environ)
    full_env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ck-parse-"))
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *(argv or [])],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.parametrize("kind", ["kubernetes", "docker"])
def test_manager_pre_import_holds_the_whole_parse_path(tmp_path: Path, kind: str) -> None:
    path = _dag_file(tmp_path, kind, "registry.example.com/etl/job:2.1")
    out = _python(
        f"""
        import json, sys, structlog
        from airflow.dag_processing.processor import _pre_import_airflow_modules
        before = set(sys.modules)
        _pre_import_airflow_modules({str(path)!r}, structlog.get_logger())
        print("MODULES=" + json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    loaded = set(json.loads(out.split("MODULES=", 1)[1].splitlines()[0]))
    assert PARSE_PATH[kind] - loaded == set()


@pytest.mark.parametrize("kind", ["kubernetes", "docker"])
def test_a_parse_child_after_the_pre_import_loads_no_containerkit_module(tmp_path: Path, kind: str) -> None:
    """After the manager's pre-import, parsing the file (building every task) imports nothing of ours."""
    path = _dag_file(tmp_path, kind, "registry.example.com/etl/job:2.1")
    out = _python(
        f"""
        import json, sys, structlog
        from airflow.dag_processing.processor import _pre_import_airflow_modules
        from airflow.dag_processing.dagbag import DagBag
        _pre_import_airflow_modules({str(path)!r}, structlog.get_logger())
        before = set(sys.modules)
        bag = DagBag({str(path)!r})
        assert not bag.import_errors, bag.import_errors
        print("MODULES=" + json.dumps(sorted(m for m in set(sys.modules) - before if "containerkit" in m)))
        """
    )
    assert json.loads(out.split("MODULES=", 1)[1].splitlines()[0]) == []


def test_provider_namespace_exports_the_same_classes() -> None:
    from airflow.providers.containerkit.decorators.docker import secure_docker_task
    from airflow.providers.containerkit.decorators.kubernetes import secure_kubernetes_task
    from airflow.providers.containerkit.operators.docker import SecureDockerOperator
    from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator

    import containerkit.decorators.docker
    import containerkit.decorators.kubernetes
    import containerkit.operators.docker
    import containerkit.operators.kubernetes

    assert SecureKubernetesPodOperator is containerkit.operators.kubernetes.SecureKubernetesPodOperator
    assert SecureDockerOperator is containerkit.operators.docker.SecureDockerOperator
    assert secure_docker_task is containerkit.decorators.docker.secure_docker_task
    assert secure_kubernetes_task is containerkit.decorators.kubernetes.secure_kubernetes_task


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


DIRECT = ("containerkit.operators", "containerkit.decorators")


def test_reference_dags_import_operators_through_the_provider_namespace() -> None:
    """Users copy the reference DAGs: each must show the import the dag-processor pre-imports."""
    direct = {
        p.name: sorted(
            m
            for m in _top_level_imports(p)
            if m.startswith(("containerkit.operators", "containerkit.decorators"))
        )
        for p in sorted(DAGS.glob("88_*.py"))
    }
    assert {name: mods for name, mods in direct.items() if mods} == {}


DIRECT_IMPORT_CHILD = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
import containerkit.operators.kubernetes
"""


def test_direct_import_in_a_parse_child_warns_once_per_dag_processor() -> None:
    """Two parse children of one manager (here: this process) import the direct path; one warning."""
    marker = Path(tempfile.gettempdir()) / f"containerkit-parse-cost-{os.getpid()}"
    marker.unlink(missing_ok=True)
    env = {"_AIRFLOW_PROCESS_CONTEXT": "client"}
    try:
        outputs = [
            _python(f"import sys; sys.argv = ['airflow', 'dag-processor']\n{DIRECT_IMPORT_CHILD}", env=env)
            for _ in range(2)
        ]
    finally:
        marker.unlink(missing_ok=True)
    warned = ["containerkit.parse_cost WARNING" in out for out in outputs]
    assert warned == [True, False]
    assert "airflow.providers.containerkit.operators.kubernetes" in outputs[0]


def test_direct_import_outside_the_dag_processor_is_quiet() -> None:
    out = _python(f"import sys; sys.argv = ['airflow', 'tasks', 'test']\n{DIRECT_IMPORT_CHILD}")
    assert "containerkit.parse_cost" not in out


@pytest.mark.parametrize("kind", ["kubernetes", "docker"])
def test_parse_logs_one_line_per_dag_and_nothing_for_clean_tasks(tmp_path: Path, kind: str) -> None:
    """Five tasks with findings below enforce -> one summary line; clean tasks -> no line at all.

    Kubernetes: an unpinned image is an info finding (HRD-006). Docker has no rule below error for a
    default task, so its noisy tasks run as root under ``policy_mode="warn"`` (DKR-001 logged, not raised).
    """
    image = "registry.example.com/etl/job:2.1"
    extra = ', user="0", policy_mode="warn"' if kind == "docker" else ""
    rule = "DKR-001" if kind == "docker" else "HRD-006"
    noisy = _dag_file(tmp_path, kind, image, tasks=5, dag_id="noisy", extra=extra)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    _dag_file(clean_dir, kind, f"registry.example.com/etl/job:2.1@{DIGEST}", tasks=5, dag_id="clean")
    code = """
        import logging, sys
        from airflow.dag_processing.dagbag import DagBag
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                if record.name.startswith("containerkit"):
                    records.append(record.getMessage())
        logging.getLogger("containerkit").addHandler(Keep())
        logging.getLogger("containerkit").setLevel(logging.DEBUG)
        bag = DagBag(sys.argv[1])
        assert not bag.import_errors, bag.import_errors
        print("RECORDS=" + repr(records))
    """
    noisy_out = _python(code, argv=[str(noisy)])
    clean_out = _python(code, argv=[str(clean_dir)])
    noisy_records = eval(noisy_out.split("RECORDS=", 1)[1].splitlines()[0])  # a repr of a list of str
    assert noisy_records == [
        f"containerkit policy: DAG noisy: 5 finding(s) below enforce in 5 task(s) ({rule} x5); "
        "`containerkit lint <dag file>` lists each with its fix"
    ]
    assert clean_out.split("RECORDS=", 1)[1].splitlines()[0] == "[]"
