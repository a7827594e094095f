"""DAG-file parse time with containerkit operators vs the stock ones, and the import time containerkit adds.

Three measures, each over the same two DAG files per operator kind: ``--tasks`` tasks built with the
stock ``KubernetesPodOperator`` / ``DockerOperator``, and the same tasks (same arguments) with
``SecureKubernetesPodOperator`` / ``SecureDockerOperator`` at their defaults (render the spec and
evaluate policy in ``enforce`` mode at parse).

1. dag-processor parse: what the dag processor pays per DAG file. Each sample is a fresh interpreter
   that has imported ``airflow`` (which initialises settings, as the processor has) but no provider
   operator module; it parses ONE file with ``DagBag``, which imports the operator modules the file
   names and builds the tasks. Stock and containerkit interpreters alternate; medians and ratio.
   A second line ("manager pre-import") first imports the file's ``airflow.*`` imports, as the dag
   processor manager does before forking the parse child (``[dag_processor]
   parsing_pre_import_modules``): the stock operator module is then already loaded for the stock file.
2. warm construction: one interpreter with every module imported parses both files alternately
   (``--repeats`` times, after a warm-up): the pure per-task cost, as ms/task.
3. import: fresh interpreters import the stock operator module, then the containerkit one; the time of
   the second import is what containerkit adds.

Targets: parse ratio <= 1.05, added import <= 50 ms.

    .venv/bin/python benchmarks/bench_parse_import.py [--tasks 50] [--repeats 15] [--fresh 7] [--imports 7]
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
KINDS = ("kpo", "docker")

# One DAG file in a fresh interpreter that has imported airflow (settings initialised) and nothing else.
FRESH_WORKER = textwrap.dedent(
    """
    import json, sys, time, logging
    import airflow, airflow.settings
    from airflow.dag_processing.dagbag import DagBag
    logging.disable(logging.WARNING)
    path, pre_import = sys.argv[1], sys.argv[2] == "1"
    if pre_import:  # what the dag processor manager does before it forks the parse child
        import importlib
        from airflow.utils.file import iter_airflow_imports
        for module in iter_airflow_imports(path):
            importlib.import_module(module)
    started = time.perf_counter()
    bag = DagBag(dag_folder=path, load_op_links=False)
    elapsed = time.perf_counter() - started
    assert not bag.import_errors and len(bag.dags) == 1, bag.import_errors
    print(json.dumps(elapsed))
    """
)

WARM_WORKER = textwrap.dedent(
    """
    import json, sys, time, statistics, logging
    logging.disable(logging.WARNING)
    import airflow.providers.cncf.kubernetes.operators.pod, airflow.providers.docker.operators.docker
    import containerkit.operators.kubernetes, containerkit.operators.docker
    from airflow.dag_processing.dagbag import DagBag
    files, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
    times = {name: [] for name in files}
    for name, path in files.items():  # warm-up: compiles the file, loads what the first task loads
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
    "spec+pod renderer (on KPO)": (
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
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
    )
    env.pop("AIRFLOW__CONTAINERKIT__POLICY_MODE", None)  # the secure operators run at their default
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    return env


def _json(args: list[str], env: dict[str, str]) -> object:
    out = subprocess.run([sys.executable, "-c", *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"benchmark worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratio_line(label: str, stock: float, ours: float, tasks: int | None = None) -> str:
    ratio = ours / stock
    verdict = "OK" if ratio <= 1.05 else "OVER"
    line = (
        f"  {label:8s} stock {stock * 1000:8.1f} ms  containerkit {ours * 1000:8.1f} ms  "
        f"ratio {ratio:.3f} (target <= 1.05) {verdict}"
    )
    if tasks:
        line += f"  {(ours - stock) / tasks * 1000:+.3f} ms/task"
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15, help="warm parses per file")
    parser.add_argument("--fresh", type=int, default=7, help="fresh interpreters per file and mode")
    parser.add_argument("--imports", type=int, default=7, help="fresh interpreters per import pair")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        root = Path(tmp)
        (root / "dags").mkdir()
        files = {}
        for name, (imports, cls, task) in VARIANTS.items():
            body = HEADER.format(imports=imports, dag_id=name.replace("-", "_"))
            body += "".join(task.format(cls=cls, i=i) for i in range(args.tasks))
            path = root / "dags" / f"{name.replace('-', '_')}.py"
            path.write_text(body)
            files[name] = str(path)
        env = _env(root)

        fresh: dict[str, dict[str, list[float]]] = {"0": {n: [] for n in files}, "1": {n: [] for n in files}}
        for _ in range(args.fresh):
            for pre_import in fresh:
                for name, path in files.items():  # stock and containerkit interleaved
                    sample = _json([FRESH_WORKER, path, pre_import], env)
                    assert isinstance(sample, float)
                    fresh[pre_import][name].append(sample)

        warm = _json([WARM_WORKER, json.dumps(files), str(args.repeats)], env)
        assert isinstance(warm, dict)

        imports: dict[str, dict[str, list[float]]] = {k: {"stock": [], "added": []} for k in IMPORT_PAIRS}
        for _ in range(args.imports):
            for label, (stock, ours) in IMPORT_PAIRS.items():
                sample = _json([IMPORT_WORKER, stock, ours], env)
                assert isinstance(sample, dict)
                for key in ("stock", "added"):
                    imports[label][key].append(sample[key])

    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1/5/15 min): {load}")
    print(
        f"1. dag-processor parse: one DAG file of {args.tasks} tasks in a fresh interpreter (airflow "
        f"imported, no operator module), operator imports included; median of {args.fresh}"
    )
    for pre_import, title in (
        ("0", "no pre-import"),
        ("1", "manager pre-import of the file's airflow.* imports"),
    ):
        print(f"  [{title}]")
        for kind in KINDS:
            med = {name: statistics.median(v) for name, v in fresh[pre_import].items()}
            print(_ratio_line(kind, med[f"{kind}-stock"], med[f"{kind}-containerkit"]))
    print(
        f"2. warm construction: {args.tasks} tasks, every module imported, median of {args.repeats} "
        "interleaved DagBag parses"
    )
    for kind in KINDS:
        print(_ratio_line(kind, warm[f"{kind}-stock"], warm[f"{kind}-containerkit"], args.tasks))
    print(
        f"3. import time added on top of the stock operator import, median of {args.imports} "
        "fresh interpreters"
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
