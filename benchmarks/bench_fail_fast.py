"""Time from a pod entering a state it can never leave to the task failing: containerkit vs stock KPO.

Both operators run with their default settings (stock: ``startup_timeout_seconds=120``,
``startup_check_interval_seconds=5``) through ``dag.test()`` against the fake Kubernetes API of
``tests/integration/kubernetes`` (kmock over real HTTP plus the fake kubelet), one pod per cause:
CreateContainerConfigError (missing Secret key), ImagePullBackOff (image not found) and Unschedulable
(insufficient memory). The stock runs take minutes: they wait for the real default timeout.

    .venv/bin/python benchmarks/bench_fail_fast.py               # both operators, all causes
    .venv/bin/python benchmarks/bench_fail_fast.py --only containerkit
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(tempfile.mkdtemp(prefix="ck-bench-failfast-"))
os.environ.setdefault("AIRFLOW_HOME", str(HOME))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ["AIRFLOW__CONTAINERKIT__POLICY_MODE"] = "warn"
sys.path.insert(0, str(ROOT / "tests" / "integration" / "kubernetes"))

from kube_harness import FakeCluster, Scenario, config_error, image_pull_error, unschedulable  # noqa: E402

IMAGE = "registry.example.com/team/etl:1.4.2"
CAUSES: dict[str, Scenario] = {
    "CreateContainerConfigError": config_error("couldn't find key password in Secret airflow-tasks/db"),
    "ImagePullBackOff": image_pull_error(IMAGE, f"rpc error: code = NotFound desc = {IMAGE}: not found"),
    "Unschedulable": unschedulable(
        "0/3 nodes are available: 3 Insufficient memory. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    ),
}  # fmt: skip
FAILED_AT: list[float] = []


def _failed(context: Any) -> None:
    FAILED_AT.append(time.time())


def run_once(cluster: FakeCluster, operator: str, cause: str) -> float:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    cluster.reset()
    cluster.script(IMAGE, CAUSES[cause])
    cls = SecureKubernetesPodOperator if operator == "containerkit" else KubernetesPodOperator
    dag_id = f"bench_{operator}_{cause}".lower()
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        cls(task_id="run", namespace="airflow-tasks", image=IMAGE, cmds=["true"], on_failure_callback=_failed)
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    FAILED_AT.clear()
    dag.test()
    if not FAILED_AT:
        raise RuntimeError(f"{operator} did not fail on {cause}")
    broken = list(cluster.broken_at().values())
    if not broken:
        raise RuntimeError(f"the fake kubelet never broke the pod for {cause}")
    leftover = cluster.pods()
    if leftover:
        raise RuntimeError(f"{operator} left {len(leftover)} pod(s) on {cause}")
    return FAILED_AT[-1] - min(broken)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["containerkit", "stock"], help="run one operator only")
    parser.add_argument("--causes", nargs="*", default=list(CAUSES), choices=list(CAUSES))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    from airflow.utils import db

    db.initdb()
    operators = [args.only] if args.only else ["containerkit", "stock"]
    results: dict[str, dict[str, float]] = {}
    with FakeCluster(HOME) as cluster:
        conn = {
            "conn_type": "kubernetes",
            "extra": {"in_cluster": False, "kube_config_path": str(cluster.kubeconfig)},
        }
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(conn)
        for cause in args.causes:
            for operator in operators:
                results.setdefault(cause, {})[operator] = run_once(cluster, operator, cause)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\n{'cause':30} {'containerkit s':>15} {'stock KPO s':>12} {'ratio':>8}")
    for cause, times in results.items():
        ck, stock = times.get("containerkit"), times.get("stock")
        ratio = f"{stock / ck:7.1f}x" if ck and stock else "-"
        fmt = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
        print(f"{cause:30} {fmt(ck):>15} {fmt(stock):>12} {ratio:>8}")
    print("target: containerkit <= 10 s and >= 10x faster where stock waits for its 120 s timeout")


if __name__ == "__main__":
    main()
