"""What only a pod that really runs can show, through the real SecureKubernetesPodOperator, sync and
deferrable, on the local Docker-backed test double: a write to the read-only root fails with its
cause; a Secret file is readable by the task's uid 50000 and not by another uid; init containers run
in order and a native sidecar is stopped when ``base`` ends. (XCom, OOMKilled at 32Mi, a missing image
and a missing Secret key are in ``test_kpo_sync.py``.)
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

FAILURES: list[BaseException] = []
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def record_failure(context: Any) -> None:
    FAILURES.append(context["exception"])


def run_task(run_dag: Any, dag_id: str, namespace: str, **op_kwargs: Any) -> tuple[Any, BaseException | None]:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=namespace,
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            on_failure_callback=record_failure,
            **op_kwargs,
        )
    FAILURES.clear()
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    return ti, (FAILURES[-1] if FAILURES else None)


@pytest.mark.parametrize("deferrable", MODES)
def test_write_to_read_only_root_fails_with_its_cause(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    script = "open('/opt/report.csv', 'w').write('a,b')"
    ti, error = run_task(
        run_dag,
        f"kpo_read_only_root_{deferrable}",
        k8s_namespace,
        image=python_image,
        cmds=["python", "-c", script],
        deferrable=deferrable,
    )
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    # The Docker diagnoser's cause id: a write outside the writable mounts under readOnlyRootFilesystem.
    assert error.diagnosis.cause == "ReadOnlyFilesystem"
    assert (
        error.diagnosis.summary == "container base wrote to /opt/report.csv on the read-only root filesystem"
    )
    assert error.diagnosis.exit_code == 1
    assert "Write scratch files to /tmp" in error.diagnosis.fix
    # The evidence carries the kernel's answer from the real container, decoded (not "b'...'").
    assert "log: OSError: [Errno 30] Read-only file system: '/opt/report.csv'" in error.diagnosis.evidence
    assert "securityContext.readOnlyRootFilesystem=true" in error.diagnosis.evidence
    assert not any(line.startswith("log: b'") for line in error.diagnosis.evidence)
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []


SECRET_READER = """
import json, os, pathlib, stat
p = pathlib.Path('/run/secrets/api/token')
st = p.stat()
value = p.read_text()
pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps(
    {'mode': oct(stat.S_IMODE(st.st_mode)), 'owner': st.st_uid, 'group': st.st_gid,
     'uid': os.getuid(), 'read': value == 't0ken'}))
"""


@pytest.mark.parametrize("deferrable", MODES)
def test_secret_file_is_readable_by_the_task_uid_only(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed
    from containerkit.spec import SecretRef, SecurityProfile

    cluster.create_secret(k8s_namespace, "api", {"token": "t0ken"})
    ref = SecretRef(secret="api", key="token", path="/run/secrets/api/token")
    ti, error = run_task(
        run_dag,
        f"kpo_secret_file_{deferrable}",
        k8s_namespace,
        image=python_image,
        cmds=["python", "-c", SECRET_READER],
        secret_refs=[ref],
        do_xcom_push=True,
        deferrable=deferrable,
    )
    assert error is None and ti.state == "success", error
    # 0440 root:0 (fsGroup 0): the task's uid 50000 (gid 0) reads it, "other" has no bit at all.
    assert ti.xcom_pull(task_ids="run") == {
        "mode": "0o440",
        "owner": 0,
        "group": 0,
        "uid": 50000,
        "read": True,
    }

    other = SecurityProfile(run_as_user=50001, run_as_group=50001, fs_group=None)
    ti, error = run_task(
        run_dag,
        f"kpo_secret_file_other_{deferrable}",
        k8s_namespace,
        image=python_image,
        cmds=["python", "-c", SECRET_READER],
        secret_refs=[ref],
        security=other,
        deferrable=deferrable,
    )
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    assert error.diagnosis.cause == "PermissionDenied:volume", error
    assert "uid 50001" in error.diagnosis.summary and "/run/secrets/api" in error.diagnosis.summary
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []


ORDER_BASE = """
import json, pathlib
order = pathlib.Path('/work/order').read_text().split()
pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps(order))
"""


@pytest.mark.parametrize("deferrable", MODES)
def test_init_containers_run_in_order_and_the_sidecar_stops_with_base(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.spec import Container, ContainerSpec, EmptyDir, VolumeMount

    work = [VolumeMount("work", "/work")]

    def step(name: str) -> Container:
        return Container(
            name, python_image, command=["sh", "-c", f"sleep 0.3; echo {name} >> /work/order"], mounts=work
        )

    ticker = Container(
        "ticker",
        python_image,
        command=[
            "sh",
            "-c",
            "echo ticker >> /work/order; trap 'exit 0' TERM; while true; do sleep 0.2; done",
        ],
        mounts=work,
    )
    spec = ContainerSpec(
        python_image,
        command=["python", "-c", ORDER_BASE],
        volumes=[EmptyDir("work")],
        mounts=work,
        init_containers=[step("fetch"), step("render")],
        sidecars=[ticker],
    )
    ti, error = run_task(
        run_dag,
        f"kpo_init_order_{deferrable}",
        k8s_namespace,
        spec=spec,
        do_xcom_push=True,
        deferrable=deferrable,
    )
    assert error is None and ti.state == "success", error
    pod = cluster.submitted("Pod", k8s_namespace)[-1]
    rendered = [c["name"] for c in pod["spec"]["initContainers"]]
    assert sorted(rendered) == ["fetch", "render", "ticker"]
    # Each init container ran to completion before the next started; the sidecar came up in its place.
    assert ti.xcom_pull(task_ids="run") == rendered
    stops = [
        e["message"]
        for e in cluster.events(k8s_namespace, pod["metadata"]["name"])
        if e["reason"] == "Killing"
    ]
    assert "Stopping container ticker" in stops  # stopped by the kubelet once base ended
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []
    print(json.dumps(rendered))
