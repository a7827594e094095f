"""Per-file parse cost at the real dag-processor: containerkit operators against the stock ones.

For each variant and task count, ``airflow dag-processor --num-runs 1`` parses a generated folder of
``--files`` DAG files and, separately, a folder of one file, each in a fresh ``AIRFLOW_HOME`` (SQLite,
migrated beforehand, one parsing process so files are parsed one after another). The per-file cost is
``(wall(N files) - wall(1 file)) / (N - 1)``: start-up, DB and bundle work cancel out, and what is left is
what the manager and its forked parse child spend on each file, as users see it.

Variants (same task arguments): stock ``KubernetesPodOperator`` / ``DockerOperator``; containerkit
imported through ``airflow.providers.containerkit`` (the documented import: the manager pre-imports it
before it forks); containerkit imported from ``containerkit.operators`` (no pre-import: the cost every
child paid before). It also times Airflow commands that parse no DAGs (``airflow version``,
``airflow tasks --help``) and the import of the ``airflow.policy`` plugin every Airflow process loads.

Target: containerkit (provider import) <= 1.2x stock per file, at 10 and at 50 tasks.

    .venv/bin/python benchmarks/bench_dag_processor.py [--files 11] [--tasks 10 50] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HEADER = """\
import pendulum
from airflow.sdk import DAG
{imports}

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False):
"""
KPO_TASK = (
    '    {cls}(task_id="t{i}", name="t{i}", namespace="airflow-tasks", '
    'image="registry.example.com/etl/job:2.{i}", cmds=["python", "-m", "etl"], '
    'arguments=["--part", "{i}"], env_vars={{"PART": "{i}"}})\n'
)
DOCKER_TASK = (
    '    {cls}(task_id="t{i}", image="registry.example.com/etl/job:2.{i}", '
    'command=["python", "-m", "etl", "--part", "{i}"], environment={{"PART": "{i}"}})\n'
)
PROVIDER = "airflow.providers.containerkit"
KPO = "SecureKubernetesPodOperator"
DKR = "SecureDockerOperator"
VARIANTS: dict[str, tuple[str, str, str]] = {
    "kpo stock": (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "KubernetesPodOperator",
        KPO_TASK,
    ),
    "kpo containerkit": (
        f"from airflow.providers.containerkit.operators.kubernetes import {KPO}",
        KPO,
        KPO_TASK,
    ),
    "kpo direct import": (f"from containerkit.operators.kubernetes import {KPO}", KPO, KPO_TASK),
    "docker stock": (
        "from airflow.providers.docker.operators.docker import DockerOperator",
        "DockerOperator",
        DOCKER_TASK,
    ),
    "docker containerkit": (
        f"from airflow.providers.containerkit.operators.docker import {DKR}",
        DKR,
        DOCKER_TASK,
    ),
    "docker direct import": (f"from containerkit.operators.docker import {DKR}", DKR, DOCKER_TASK),
}


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        env.pop(key)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    return env


def _folder(root: Path, variant: str, tasks: int, files: int) -> Path:
    imports, cls, task = VARIANTS[variant]
    home = root / f"{variant.replace(' ', '-')}-{tasks}-{files}"
    (home / "dags").mkdir(parents=True)
    for n in range(files):
        dag_id = f"{variant.replace(' ', '_')}_{tasks}_{n}"
        body = HEADER.format(imports=imports, dag_id=dag_id)
        body += "".join(task.format(cls=cls, i=i) for i in range(tasks))
        (home / "dags" / f"{dag_id}.py").write_text(body)
    subprocess.run([AIRFLOW, "db", "migrate"], env=_env(home), check=True, capture_output=True)
    return home


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return elapsed


def _parse_wall(home: Path) -> float:
    return _wall([AIRFLOW, "dag-processor", "--num-runs", "1"], _env(home))


def _plugin_import_seconds(env: dict[str, str]) -> float:
    """Self import time of the containerkit policy modules ``import airflow`` loads (its policy plugin)."""
    cmd = [sys.executable, "-X", "importtime", "-c", "import airflow"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    total = 0
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip().startswith("containerkit.policy"):
            total += int(parts[0].split(":")[1])
    return total / 1e6


def _progress(msg: str) -> None:
    print(f"\r  {msg:<78}", end="", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=11)
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--repeats", type=int, default=1, help="dag-processor runs per folder (median)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()

    per_file: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="ck-bench-dp-") as tmp:
        root = Path(tmp)
        steps = len(args.variants) * len(args.tasks)
        step = 0
        for tasks in args.tasks:
            for variant in args.variants:
                step += 1
                _progress(f"[{step}/{steps}] {variant}, {tasks} tasks: migrating two homes")
                many, one = _folder(root, variant, tasks, args.files), _folder(root, variant, tasks, 1)
                walls_many, walls_one = [], []
                for r in range(args.repeats):
                    _progress(f"[{step}/{steps}] {variant}, {tasks} tasks: dag-processor run {r + 1}")
                    walls_many.append(_parse_wall(many))
                    walls_one.append(_parse_wall(one))
                cost = (statistics.median(walls_many) - statistics.median(walls_one)) / (args.files - 1)
                per_file[(variant, tasks)] = cost
                print(f"\r  {variant}, {tasks} tasks: {cost:.3f} s per file" + " " * 30, flush=True)
        _progress("commands that parse no DAGs")
        home = root / "plain"
        (home / "dags").mkdir(parents=True)
        version = statistics.median(_wall([AIRFLOW, "version"], _env(home)) for _ in range(3))
        tasks_help = statistics.median(_wall([AIRFLOW, "tasks", "--help"], _env(home)) for _ in range(3))
        plugin = statistics.median(_plugin_import_seconds(_env(home)) for _ in range(3))
    print("\r" + " " * 82 + "\r", end="", file=sys.stderr)

    print(f"real dag-processor, {args.files} files vs 1, one parsing process; seconds per file")
    print(f"  {'variant':22s}" + "".join(f"{f'{t} tasks':>12s}{'ratio':>8s}" for t in args.tasks))
    for variant in args.variants:
        kind = variant.split()[0]
        row = f"  {variant:22s}"
        for tasks in args.tasks:
            cost = per_file[(variant, tasks)]
            stock = per_file.get((f"{kind} stock", tasks))
            ratio = f"{cost / stock:7.2f}x" if stock and stock > 0 else "       -"
            row += f"{cost:12.3f}{ratio:>8s}"
        print(row)
    worst = max(
        (per_file[(v, t)] / per_file[(f"{v.split()[0]} stock", t)], v, t)
        for v in args.variants
        for t in args.tasks
        if v.endswith("containerkit") and (f"{v.split()[0]} stock", t) in per_file
    )
    print(f"worst containerkit ratio {worst[0]:.2f}x ({worst[1]}, {worst[2]} tasks); target <= 1.2x")
    print(f"airflow version {version:.2f} s; airflow tasks --help {tasks_help:.2f} s; ", end="")
    print(f"airflow.policy plugin import adds {plugin * 1000:.1f} ms to every Airflow process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
