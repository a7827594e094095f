"""SecureDockerOperator on the real Docker engine, run through Airflow with ``dag.test()``.

Every container carries ``containerkit.test=dockerop``; the module-scoped ``no_leftovers`` fixture
fails the module if any is left behind after the tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from containerkit.diagnostics.model import ContainerTaskFailed
from containerkit.policy.enforce import PolicyViolation

LABEL = "containerkit.test"
LABEL_VALUE = "dockerop"
LABELS = {LABEL: LABEL_VALUE}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker"

# What a task sees of its own container, printed as one JSON line (the XCom value).
INTROSPECT = r"""
import json, os
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
def cgroup(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
print("task ran")
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "root_writable": writable("/probe"), "tmp_writable": writable("/tmp/probe"),
    "memory_limit": cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "memsw_limit": cgroup("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
    "pids_max": cgroup("/sys/fs/cgroup/pids/pids.max"),
    "cfs_quota": cgroup("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "airflow_tmp_dir": os.environ.get("AIRFLOW_TMP_DIR"),
    "pid1": open("/proc/1/cmdline").read().split("\0")[0],
}))
"""


def _load_recorder() -> Any:
    spec = importlib.util.spec_from_file_location("ck_docker_record", FIXTURES / "record.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = docker_client.containers.list(all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"})
    for container in left:
        container.remove(force=True, v=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


class Failures:
    """Collects the exception of each failed task through the stock ``on_failure_callback``."""

    def __init__(self) -> None:
        self.errors: dict[str, BaseException | None] = {}

    def __call__(self, context: Any) -> None:
        self.errors[context["ti"].task_id] = context.get("exception")


def build_dag(dag_id: str, params: dict[str, Any] | None = None, **task_kwargs: Any) -> tuple[Any, Failures]:
    from airflow.sdk import DAG

    from containerkit.operators.docker import SecureDockerOperator

    failures = Failures()
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, params=params) as dag:
        SecureDockerOperator(task_id="run", labels=LABELS, on_failure_callback=failures, **task_kwargs)
    return dag, failures


def xcom(dag_run: Any, task_id: str = "run") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
            )
        ).first()
        return XComModel.deserialize_value(row) if row else None


def failure(failures: Failures) -> ContainerTaskFailed:
    error = failures.errors.get("run")
    assert isinstance(error, ContainerTaskFailed), f"expected ContainerTaskFailed, got {error!r}"
    return error


@pytest.fixture
def py(python_image: str, run_dag: Callable[..., Any]) -> Callable[..., tuple[Any, Failures]]:
    """Run one SecureDockerOperator task with ``python -c CODE`` and return (dag_run, failures)."""

    def _run(dag_id: str, code: str, **kwargs: Any) -> tuple[Any, Failures]:
        dag, failures = build_dag(dag_id, image=python_image, command=["python", "-c", code], **kwargs)
        return run_dag(dag), failures

    return _run


def test_success_is_hardened_and_pushes_the_last_line_as_xcom(
    python_image: str, run_dag: Callable[..., Any]
) -> None:
    # The image is templated (rendered at run time, policy-checked then): stock templating keeps working.
    dag, failures = build_dag(
        "ck_dockerop_success",
        params={"image": python_image},
        image="{{ params.image }}",
        command=["python", "-c", INTROSPECT],
        resources="xs",
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success", failures.errors
    value = xcom(dag_run)  # the last log line; Airflow reads a JSON-looking string back as JSON
    seen = value if isinstance(value, dict) else json.loads(value)
    assert (seen["uid"], seen["gid"]) == (50000, 0)
    assert seen["cap_eff"] == "0000000000000000" and seen["no_new_privs"] == "1"
    assert seen["root_writable"] is False and seen["tmp_writable"] is True
    assert seen["memory_limit"] == str(128 * 1024 * 1024) == seen["memsw_limit"]  # xs preset, no swap
    assert seen["cfs_quota"] == "25000"  # 250m of a 100 ms period: a hard limit, not a share
    assert seen["pids_max"] not in (None, "max")
    assert seen["airflow_tmp_dir"] is None  # no host temp dir bind mount
    assert seen["pid1"].endswith("init")  # docker-init forwards signals and reaps


def test_nonzero_exit_fails_with_code_and_last_log_lines(py: Callable[..., Any]) -> None:
    code = "import sys; print('loading rows'); print('ValueError: bad row 7', file=sys.stderr); sys.exit(3)"
    dag_run, failures = py("ck_dockerop_exit", code)
    assert dag_run.state == "failed"
    diagnosis = failure(failures).diagnosis
    assert diagnosis.cause == "NonZeroExit" and diagnosis.exit_code == 3
    assert "log: ValueError: bad row 7" in diagnosis.evidence


def test_oom_names_oomkilled_and_the_limit(py: Callable[..., Any]) -> None:
    code = "b = bytearray(200 * 1024 * 1024); print(len(b))"
    dag_run, failures = py("ck_dockerop_oom", code, resources={"preset": "xs", "memory": "16Mi"})
    assert dag_run.state == "failed"
    error = failure(failures)
    assert error.diagnosis.cause == "OOMKilled" and error.diagnosis.exit_code == 137
    assert "OOMKilled" in str(error) and "16Mi" in str(error)


def test_write_to_read_only_root_fails_with_a_clear_diagnosis(py: Callable[..., Any]) -> None:
    dag_run, failures = py("ck_dockerop_rofs", "open('/home/app/report.csv', 'w').write('x')")
    assert dag_run.state == "failed"
    diagnosis = failure(failures).diagnosis
    assert diagnosis.cause == "ReadOnlyFilesystem"
    assert "/home/app/report.csv" in diagnosis.summary and "/tmp" in diagnosis.fix


def test_missing_image_in_a_registry_is_diagnosed(python_image: str, run_dag: Callable[..., Any]) -> None:
    recorder = _load_recorder()
    with recorder.registry_stub() as registry:
        dag, failures = build_dag("ck_dockerop_missing", image=f"{registry}/missing/app:1.0")
        dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    diagnosis = failure(failures).diagnosis
    assert diagnosis.cause == "ImagePull:not-found"
    assert "missing/app:1.0" in diagnosis.summary


def test_execution_timeout_stops_and_removes_the_container(
    python_image: str, run_dag: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    code = "import time; print('working', flush=True); time.sleep(120)"
    dag, failures = build_dag(
        "ck_dockerop_timeout",
        image=python_image,
        command=["python", "-c", code],
        execution_timeout=timedelta(seconds=4),
    )
    started = time.monotonic()
    dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    assert time.monotonic() - started < 60
    assert failure(failures).diagnosis.cause == "DeadlineExceeded:execution_timeout"
    left = docker_client.containers.list(
        all=True, filters={"label": "containerkit.dag_id=ck_dockerop_timeout"}
    )
    assert left == []


def test_on_kill_from_another_thread_stops_removes_and_diagnoses(
    python_image: str, docker_client: docker.DockerClient
) -> None:
    from containerkit.operators.docker import SecureDockerOperator

    code = "import time; print('working', flush=True); time.sleep(120)"
    op = SecureDockerOperator(
        task_id="killed", image=python_image, command=["python", "-c", code], labels=LABELS, stop_timeout=2
    )

    def kill_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if op.container and docker_client.api.inspect_container(op.container["Id"])["State"]["Running"]:
                op.on_kill()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    with pytest.raises(ContainerTaskFailed) as raised:
        op.execute(context={})  # type: ignore[arg-type]
    killer.join()
    assert raised.value.diagnosis.cause in ("KilledBySignal:SIGTERM", "KilledBySignal:SIGKILL")
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(op.container["Id"])


def test_policy_is_enforced_at_parse_time_on_the_final_settings(python_image: str) -> None:
    from containerkit.operators.docker import SecureDockerOperator

    with pytest.raises(PolicyViolation) as raised:
        SecureDockerOperator(task_id="weak", image=python_image, privileged=True, policy_mode="enforce")
    assert "DKR-006" in str(raised.value)
    with pytest.raises(PolicyViolation, match="DKR-001"):
        SecureDockerOperator(task_id="root", image=python_image, user="0", policy_mode="enforce")
    # An exemption names the rule and says why; then the same weakening is accepted.
    op = SecureDockerOperator(
        task_id="root_ok",
        image=python_image,
        user="0",
        policy_mode="enforce",
        policy_exemptions={"DKR-001": "legacy image needs root to bind a socket; tracked in OPS-12"},
    )
    assert op.run_view().create["user"] == "0"


def test_secrets_are_read_only_files_and_stay_out_of_logs_and_xcom(
    python_image: str, run_dag: Callable[..., Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from containerkit.spec import SecretRef

    value = "s3cr3t-" + "9d1e7a"
    secret_file = tmp_path / "warehouse" / "password"
    secret_file.parent.mkdir()
    secret_file.write_text(value)
    secret_file.chmod(0o640)  # group 0 (the container user's group) may read it, nobody else
    code = (
        "import hashlib, os; p = '/run/secrets/warehouse-password'; "
        "print(os.access(p, os.W_OK), hashlib.sha256(open(p, 'rb').read()).hexdigest())"
    )
    dag, failures = build_dag(
        "ck_dockerop_secret",
        image=python_image,
        command=["python", "-c", code],
        secret_refs=[SecretRef("warehouse", "password", path="/run/secrets/warehouse-password")],
        secrets_dir=str(tmp_path),
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success", failures.errors
    writable, digest = str(xcom(dag_run)).split()
    assert writable == "False"
    assert digest == hashlib.sha256(value.encode()).hexdigest()
    assert value not in capfd.readouterr().out


def test_pin_image_digest_runs_the_digest_the_engine_pushed(
    pushed_app: Any, run_dag: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    """The tag (templated) is resolved against the real local registry; the container runs the digest."""
    dag_id = "ck_dockerop_pinned"
    since = int(time.time()) - 1
    dag, failures = build_dag(
        dag_id,
        params={"tag": "1.0.1"},
        image=pushed_app.plain + ":{{ params.tag }}",
        pin_image_digest=True,
        resources="xs",
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success", failures.errors
    assert xcom(dag_run) == "containerkit app"  # the image's own CMD: cat its payload file
    # The engine's own record of what the container was created from.
    events = docker_client.events(
        since=since,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"containerkit.dag_id={dag_id}"},
    )
    images = [event["Actor"]["Attributes"]["image"] for event in events]
    assert images == [f"{pushed_app.plain}@{pushed_app.digest}"]


def test_pin_image_digest_fails_before_any_container_is_created() -> None:
    from containerkit.operators.docker import SecureDockerOperator

    op = SecureDockerOperator(
        task_id="pinned", image="127.0.0.1:9/app/job:1.0", pin_image_digest=True, labels=LABELS
    )
    with pytest.raises(ContainerTaskFailed) as raised:
        op.execute(context={})  # type: ignore[arg-type]
    assert raised.value.diagnosis.cause == "ImagePull:unreachable"
    assert op.container is None


def test_a_templated_image_is_checked_after_rendering_and_before_any_pull() -> None:
    """Parse time saw the placeholder; the rendered ``:latest`` is refused before the pre-flight or a pull.

    ``containerkit.invalid`` cannot resolve: a pull (or a pin) would end in ``ImagePull:unreachable``,
    so the pinning error proves nothing was pulled, and no container exists. The rendered image goes
    through the spec's reference check (a moving tag is refused there, naming the field and the fix).
    """
    from containerkit.errors import SpecError
    from containerkit.operators.docker import SecureDockerOperator

    op = SecureDockerOperator(
        task_id="templated",
        image="{{ params.image }}",
        pin_image_digest=True,
        policy_mode="enforce",
        labels=LABELS,
    )
    op.render_template_fields({"params": {"image": "containerkit.invalid/app:latest"}})  # type: ignore[arg-type]
    assert op.image == "containerkit.invalid/app:latest"
    with pytest.raises(SpecError, match="moving tag") as raised:
        op.execute(context={})  # type: ignore[arg-type]
    assert raised.value.field == "image" and "containerkit.invalid/app:1.2.3" in str(raised.value)
    assert op.container is None


def test_mapped_task_with_partial_resources_runs_each_instance_with_the_preset(
    python_image: str, run_dag: Callable[..., Any]
) -> None:
    """``partial(resources=...)`` survives the scheduler's deserialization; every instance gets the preset."""
    from airflow.models.xcom import XComModel
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from containerkit.operators.docker import SecureDockerOperator
    from containerkit.spec import RESOURCE_PRESETS

    code = "print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read().strip() + ' {}')"
    with DAG("ck_dockerop_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        SecureDockerOperator.partial(task_id="run", image=python_image, resources="xs", labels=LABELS).expand(
            command=[["python", "-c", code.format(name)] for name in ("a", "b")]
        )
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id,
                dag_ids=dag_run.dag_id,
                task_ids="run",
                key="return_value",
                map_indexes=None,
            )
        ).all()
        values = sorted(XComModel.deserialize_value(row) for row in rows)
    limit = RESOURCE_PRESETS["xs"].memory_limit_bytes
    assert values == [f"{limit} a", f"{limit} b"]


def test_unsupported_docker_provider_version_is_refused_with_the_fix() -> None:
    from containerkit.operators.docker import DOCKER_PROVIDER_VERSION, _check_docker_provider

    assert _check_docker_provider() == DOCKER_PROVIDER_VERSION
    with pytest.raises(ImportError, match=r"pip install 'apache-airflow-providers-docker>=99'"):
        _check_docker_provider(">=99")
