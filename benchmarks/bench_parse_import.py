"""DAG-file parse time with containerkit operators vs the stock ones, and the import time containerkit adds.

Parse: two generated DAG files of ``--tasks`` tasks each, one with the stock ``KubernetesPodOperator`` /
``DockerOperator``, one with ``SecureKubernetesPodOperator`` / ``SecureDockerOperator`` taking the same
arguments (the secure ones also render the spec and evaluate policy, in the default ``enforce`` mode).
A fresh worker interpreter imports Airflow and all operator modules first (import cost is measured
separately), then parses the two files alternately with ``DagBag`` ``--repeats`` times; the medians
and their ratio are printed (target <= 1.05).

Import: fresh interpreters import the stock operator module, then the containerkit one; the time of the
second import is what containerkit adds (median of ``--imports`` interpreters; target <= 50 ms).

    .venv/bin/python benchmarks/bench_parse_import.py [--tasks 50] [--repeats 15] [--imports 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

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
VARIANTS = {
    "kpo-stock": (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "KubernetesPodOperator",
        KPO_TASK,
    ),
    "kpo-containerkit": (
        "from containerkit.operators.kubernetes import SecureKubernetesPodOperator",
        "SecureKubernetesPodOperator",
        KPO_TASK,
    ),
    "docker-stock": (
        "from airflow.providers.docker.operators.docker import DockerOperator",
        "DockerOperator",
        DOCKER_TASK,
    ),
    "docker-containerkit": (
        "from containerkit.operators.docker import SecureDockerOperator",
        "SecureDockerOperator",
        DOCKER_TASK,
    ),
}

PARSE_WORKER = textwrap.dedent(
    """
    import json, sys, time, statistics, logging
    logging.disable(logging.WARNING)
    import airflow.providers.cncf.kubernetes.operators.pod, airflow.providers.docker.operators.docker
    import containerkit.operators.kubernetes, containerkit.operators.docker
    from airflow.dag_processing.dagbag import DagBag
    files, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
    times = {name: [] for name in files}
    for name, path in files.items():  # warm-up (first parse compiles the file)
        bag = DagBag(dag_folder=path, load_op_links=False)
        assert not bag.import_errors and len(bag.dags) == 1, (name, bag.import_errors)
    for _ in range(repeats):
        for name, path in files.items():
            started = time.perf_counter()
            DagBag(dag_folder=path, load_op_links=False)
            times[name].append(time.perf_counter() - started)
    print(json.dumps({name: statistics.median(v) for name, v in times.items()}))
    """
)

IMPORT_WORKER = textwrap.dedent(
    """
    import importlib, json, sys, time
    stock, ours = sys.argv[1], sys.argv[2]
    started = time.perf_counter(); importlib.import_module(stock); base = time.perf_counter() - started
    started = time.perf_counter(); importlib.import_module(ours); added = time.perf_counter() - started
    print(json.dumps({"stock": base, "added": added}))
    """
)
IMPORT_PAIRS = {
    "KubernetesPodOperator": (
        "airflow.providers.cncf.kubernetes.operators.pod",
        "containerkit.operators.kubernetes",
    ),
    "DockerOperator": ("airflow.providers.docker.operators.docker", "containerkit.operators.docker"),
    "spec+renderers (on KPO)": (
        "airflow.providers.cncf.kubernetes.operators.pod",
        "containerkit.kubernetes.pod",
    ),
    "spec+docker renderer (on DockerOperator)": (
        "airflow.providers.docker.operators.docker",
        "containerkit.docker.run_settings",
    ),
}


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="False"
    )
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--imports", type=int, default=9)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        root = Path(tmp)
        files = {}
        for name, (imports, cls, task) in VARIANTS.items():
            body = HEADER.format(imports=imports, dag_id=name.replace("-", "_"))
            body += "".join(task.format(cls=cls, i=i) for i in range(args.tasks))
            path = root / f"{name.replace('-', '_')}.py"
            path.write_text(body)
            files[name] = str(path)
        env = _env(root)
        out = subprocess.run(
            [sys.executable, "-c", PARSE_WORKER, json.dumps(files), str(args.repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        parse = json.loads(out.stdout.strip().splitlines()[-1])

        imports: dict[str, dict[str, list[float]]] = {k: {"stock": [], "added": []} for k in IMPORT_PAIRS}
        for _ in range(args.imports):
            for label, (stock, ours) in IMPORT_PAIRS.items():
                res = subprocess.run(
                    [sys.executable, "-c", IMPORT_WORKER, stock, ours],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                sample = json.loads(res.stdout.strip().splitlines()[-1])
                for key in ("stock", "added"):
                    imports[label][key].append(sample[key])

    print(f"DAG-file parse, {args.tasks} tasks per file, median of {args.repeats} interleaved DagBag parses")
    worst_ratio = 0.0
    for kind in ("kpo", "docker"):
        stock, ours = parse[f"{kind}-stock"], parse[f"{kind}-containerkit"]
        ratio = ours / stock
        worst_ratio = max(worst_ratio, ratio)
        verdict = "OK" if ratio <= 1.05 else "OVER"
        print(
            f"  {kind:6s}  stock {stock * 1000:8.1f} ms  containerkit {ours * 1000:8.1f} ms  "
            f"ratio {ratio:.3f}  (target <= 1.05) {verdict}  "
            f"per task {(ours - stock) / args.tasks * 1000:+.2f} ms"
        )
    print(
        f"Import time added on top of the stock operator import, median of {args.imports} fresh interpreters"
    )
    for label, values in imports.items():
        stock_ms = statistics.median(values["stock"]) * 1000
        added_ms = statistics.median(values["added"]) * 1000
        verdict = "OK" if added_ms <= 50 else "OVER"
        print(
            f"  {label:42s} stock {stock_ms:7.1f} ms  added {added_ms:6.1f} ms  (target <= 50 ms) {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
