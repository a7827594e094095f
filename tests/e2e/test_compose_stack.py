"""End to end: a newcomer's compose path, followed literally, in ONE stack for the whole module.

What the docs (README.md "Local stack", docker/README.md "Quick start") say, in order, on a fresh
``git clone`` of this repository in a temporary directory:

1. settings of one's own in ``.env`` (here: a unique compose project, a free port, an image tag of its
   own, so CI and a developer on one engine do not collide), kept by the next step;
2. ``make compose-env`` (writes ``.env`` from the host, secret files, builds the image);
3. ``docker compose up -d --wait``, whose output must hold no error, warning or registry line;
4. the UI in headless Chromium, the REST API, the reference DAGs that need the stack;
5. ``docker compose down -v --remove-orphans``, after which nothing of the project remains, not even
   the task container a killed worker left running.

Uncommitted changes of the working tree are copied over the clone, so the test checks the code as it is;
in CI the tree is clean and the clone is exactly the commit. Screenshots and timings go to
``tests/e2e/artifacts/<project>/`` (git-ignored; the path is printed at the end of the session).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e_browser import Page, browser, chromium_path

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
# Unique per run: two checkouts (or CI and a developer) on one engine must not tear down each other's stack.
PROJECT = f"ck-e2e-{uuid.uuid4().hex[:6]}"
PROJECT_IMAGE = "containerkit/airflow:0.1.0-e2e"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / PROJECT
DOCKER_SOCKET = "/var/run/docker.sock"
LOCAL_BASES = (
    "containerkit/base-airflow:3.3.2-python3.11",
    "containerkit/postgres:15",
    "containerkit/redis:7",
    "containerkit/base-python:3.11",
)
SERVICES = {
    "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
    "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
}  # fmt: skip
# Bounds (seconds) generous enough for a busy 2-core CI machine, short enough to fail a hung stack.
UP_TIMEOUT = int(os.environ.get("CONTAINERKIT_E2E_HEALTHY_TIMEOUT", "900"))  # a shared, loaded host: raise it
RUN_TIMEOUT = 300
# What the docs promise: the dev stack fails a dead worker's try within a minute.
DEAD_WORKER_BOUND = 60
LONG_TASK_SECONDS = 60
# A line of `up` output that a newcomer would read as something gone wrong.
NOISE = re.compile(r"(?i)\b(error|warn(ing)?|unhealthy|denied|buildx|bake|pull(ing|ed)?|registry)\b")

OFFICIAL_IMAGE_DAG = "88_01_01_official_docker_image"
DOCKER_DAG = "88_11_01_secure_docker_operator"
LONG_DAG = "88_11_06_long_task_retry"
# Reference DAGs with needs:compose tasks: they run (not skip) only inside the stack.
COMPOSE_DEV_DAG = "88_01_04_docker_compose_dev"
COMPOSE_PROD_DAG = "88_01_05_docker_compose_prod"
SECRETS_DAG = "88_02_02_container_secrets"
AUDIT_DAG = "88_10_01_production_compose"
# Written into the stack's hot-reload bundle by the teardown test: a task container outliving its worker.
ORPHAN_DAG = "ck_e2e_orphan_task"
BROKEN_DAG_FILE = "ck_e2e_broken.py"
ORPHAN_DAG_FILE = f'''
import os

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import DAG

with DAG("{ORPHAN_DAG}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False):
    SecureDockerOperator(
        task_id="sleep",
        image=os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm"),
        command=["python", "-c", "import time; time.sleep(900)"],
        resources="xs",
    )
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_bin() -> str:
    # Debian's client speaks BuildKit to the engine; a newer client without buildx refuses it.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def _docker(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run([_docker_bin(), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _project_leftovers() -> dict[str, list[str]]:
    """Every container, volume and network that carries this compose project's label."""
    label = f"label=com.docker.compose.project={PROJECT}"
    return {
        "containers": _docker("ps", "-a", "--filter", label, "--format", "{{.Names}}").split(),
        "volumes": _docker("volume", "ls", "--filter", label, "--format", "{{.Name}}").split(),
        "networks": _docker("network", "ls", "--filter", label, "--format", "{{.Name}}").split(),
    }


def _clone(into: Path) -> int:
    """``git clone`` the repository, then copy the working tree's changes against HEAD over it."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(into)], check=True, capture_output=True)

    def git(*args: str) -> list[str]:
        out = subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True)
        return [name for name in out.stdout.split("\0") if name]

    # Staged and unstaged changes to tracked files (renames as delete + add), then untracked files.
    changed = git("diff", "--name-only", "--no-renames", "-z", "HEAD")
    changed += git("ls-files", "--others", "--exclude-standard", "-z")
    for name in changed:
        src, dst = REPO / name, into / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        else:
            dst.unlink(missing_ok=True)
    return len(changed)


@dataclass
class Stack:
    """The clone, what its documented commands printed, and an authenticated REST session."""

    clone: Path
    port: int
    setup_output: str = ""
    up_output: str = ""
    password: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """``docker compose <args>`` in the clone, exactly as a user types it (project and env from .env)."""
        proc = subprocess.run(
            [*_compose_cmd(), *args], cwd=self.clone, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def services(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows if row["Service"] in SERVICES}

    def login(self) -> None:
        resp = requests.post(
            f"{self.api}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        assert resp.status_code in (200, 201), f"login failed: {resp.status_code} {resp.text}"
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.session.request(method, f"{self.api}/api/v2{path}", timeout=30, **kwargs)
        assert resp.ok, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; return its DAG record."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.session.get(f"{self.api}/api/v2/dags/{dag_id}", timeout=30)
            if resp.status_code == 200:
                return dict(resp.json())
            if time.monotonic() > deadline:
                errors = self.session.get(f"{self.api}/api/v2/importErrors", timeout=30).text
                raise AssertionError(f"DAG {dag_id} not parsed within {timeout}s; import errors: {errors}")
            time.sleep(3)

    def wait_for_dag_ids(self, expected: set[str], timeout: float = 300) -> None:
        """Wait until the API lists exactly ``expected``; fail early, with the errors, on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            dags = self.request("GET", "/dags", params={"limit": 1000})["dags"]
            listed = {d["dag_id"] for d in dags}
            errors = self.request("GET", "/importErrors")
            if listed == expected:
                return
            if errors["total_entries"] or time.monotonic() > deadline:
                files = [(e["filename"], e["stack_trace"][-600:]) for e in errors["import_errors"]]
                missing, extra = sorted(expected - listed), sorted(listed - expected)
                raise AssertionError(f"DAGs missing {missing}, unexpected {extra}; import errors: {files}")
            time.sleep(3)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run_id = f"e2e-{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return run_id

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        tis = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(3)
        tis = self.task_instances(dag_id, run_id)
        raise AssertionError(f"{dag_id} run {run_id} not finished within {timeout}s: {tis}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        path = f"{self.api}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true"}
        resp = self.session.get(path, params=params, headers={"Accept": "application/json"}, timeout=30)
        content = resp.json().get("content") if resp.ok else resp.text
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.request("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def run_to_success(self, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Trigger ``dag_id`` (unpaused by the dev stack) and wait; fail with task states and failed logs."""
        dag = self.wait_for_dag(dag_id)
        assert dag["is_paused"] is False, f"{dag_id} is paused: the dev stack unpauses unscheduled DAGs"
        run_id = self.trigger(dag_id, conf)
        state = self.wait_for_run(dag_id, run_id)
        tis = self.task_instances(dag_id, run_id)
        if state != "success":
            logs = "\n".join(
                self.task_log(dag_id, run_id, t, ti["try_number"] or 1)[-3000:]
                for t, ti in tis.items()
                if ti["state"] == "failed"
            )
            raise AssertionError(f"{dag_id}: {state} { ({t: ti['state'] for t, ti in tis.items()}) }\n{logs}")
        return run_id, tis

    def diagnostics(self) -> str:
        ps = self.compose("ps", "--all", check=False).stdout
        logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout
        return f"{ps}\n{logs}"

    def record(self, name: str, seconds: float) -> None:
        self.timings[name] = round(seconds, 1)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "timings.json").write_text(json.dumps(self.timings, indent=2) + "\n")


def _compose_cmd() -> list[str]:
    """``docker compose`` as the docs say; the pinned compose v2 in the venv only where no plugin exists."""
    docker = _docker_bin()
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return [str(Path(sys.executable).parent / "docker-compose")]


def _bases_buildable() -> bool:
    if shutil.which("debootstrap"):
        return True
    docker = _docker_bin()
    return all(
        subprocess.run([docker, "image", "inspect", i], capture_output=True).returncode == 0
        for i in LOCAL_BASES
    )


@pytest.fixture(scope="module")
def stack(docker_client: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not _bases_buildable():
        pytest.skip("local base images missing and debootstrap unavailable to build them")
    clone = tmp_path_factory.mktemp("ck-e2e") / "containerkit"
    changed = _clone(clone)
    print(f"e2e: cloned {REPO} into {clone} (+{changed} uncommitted working-tree files)")
    st = Stack(clone=clone, port=_free_port())
    # 1. the user's own settings, before the setup step (docker/README.md: it keeps them)
    (clone / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={PROJECT}\nAIRFLOW_API_PORT={st.port}\nAIRFLOW_IMAGE_NAME={PROJECT_IMAGE}\n"
    )
    try:
        # 2. the setup step
        start = time.monotonic()
        setup = subprocess.run(
            ["make", "compose-env"], cwd=clone, capture_output=True, text=True, timeout=1800
        )
        st.setup_output = setup.stdout + setup.stderr
        assert setup.returncode == 0, f"make compose-env failed:\n{st.setup_output}"
        st.record("compose_env_seconds", time.monotonic() - start)
        # 3. the first up
        start = time.monotonic()
        up = st.compose("up", "-d", "--wait", check=False, timeout=UP_TIMEOUT)
        st.up_output = up.stdout + up.stderr
        assert up.returncode == 0, f"docker compose up -d --wait failed:\n{st.up_output}"
        st.record("first_up_to_healthy_seconds", time.monotonic() - start)
        st.password = (clone / "airflow-home/secrets/airflow_admin_password").read_text().strip()
        st.login()
        yield st
    except BaseException:
        print(st.diagnostics())
        raise
    finally:
        st.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        for name in _docker("ps", "-aq", "--filter", f"label=containerkit.dag_id={ORPHAN_DAG}").split():
            subprocess.run([_docker_bin(), "rm", "-f", name], capture_output=True)
        shutil.rmtree(clone.parent, ignore_errors=True)


def test_setup_step_chose_host_values_and_kept_the_users_lines(stack: Stack) -> None:
    env = dict(
        line.split("=", 1)
        for line in (stack.clone / ".env").read_text().splitlines()
        if re.match(r"^[A-Z]", line)
    )
    assert env["COMPOSE_PROJECT_NAME"] == PROJECT and env["AIRFLOW_API_PORT"] == str(stack.port), env
    assert env["AIRFLOW_IMAGE_NAME"] == PROJECT_IMAGE, env
    assert env["DOCKER_GID"] == str(os.stat(DOCKER_SOCKET).st_gid), env
    assert env["AIRFLOW_UID"] != "0" and env["AIRFLOW_UID"] == str(os.getuid() or 50000), env
    # It says what it chose and why.
    assert f"DOCKER_GID={env['DOCKER_GID']}  (group of" in stack.setup_output, stack.setup_output
    # Idempotent: a second run changes nothing and keeps every value.
    before = (stack.clone / ".env").read_text()
    again = subprocess.run(
        ["python3", "scripts/compose_env.py", "--no-build"], cwd=stack.clone, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert (stack.clone / ".env").read_text() == before
    assert "OVERWROTE" not in again.stdout and " set " not in again.stdout, again.stdout


def test_first_up_printed_no_error_warning_or_registry_line(stack: Stack) -> None:
    noisy = [line for line in stack.up_output.splitlines() if NOISE.search(line)]
    assert noisy == [], "the first `docker compose up -d --wait` printed:\n" + "\n".join(noisy)


def _reference_dag_ids(stack: Stack) -> set[str]:
    return {p.stem for p in (stack.clone / "dags").glob("*.py")}


def _ui_login(page: Page, stack: Stack) -> str:
    """Sign in through the login page as a person does; return the home page's text."""
    page.goto(f"{stack.api}/")
    page.wait_for("!!document.querySelector('input[name=username]')", what="the login form")
    assert "/auth/login" in page.eval("location.pathname"), "the UI must ask for a login first"
    page.type_into("input[name=username]", "admin")
    page.type_into("input[name=password]", stack.password)
    page.wait_for("!document.querySelector('button[type=submit]').disabled", what="an enabled Sign in")
    page.screenshot("login")
    page.click("button[type=submit]")
    page.wait_for("!location.pathname.startsWith('/auth')", what="the page after signing in")
    page.wait_for("document.body.innerText.includes('Welcome')", what="the home page")
    page.wait_for("document.body.innerText.includes('Active Dags')", what="the home page's DAG stats")
    page.screenshot("home")
    return str(page.eval("document.body.innerText"))


def test_ui_login_and_dag_list_in_chromium(stack: Stack) -> None:
    """Log in through the real login page, then page through the DAG list as a person would."""
    if chromium_path() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    expected = _reference_dag_ids(stack)
    stack.wait_for_dag_ids(expected)  # so the UI check does not race the dag-processor
    shots = ARTIFACTS / "ui"
    with browser(shots) as page:
        home = _ui_login(page, stack)
        page.goto(f"{stack.api}/dags")
        page.wait_for(
            f"document.body.innerText.includes('{len(expected)} Dags')", what=f"'{len(expected)} Dags'"
        )
        listed: set[str] = set()
        texts = []
        links = (
            "Array.from(document.querySelectorAll('a[href^=\"/dags/\"]')).map(a => a.getAttribute('href'))"
        )
        for number in range(1, 10):
            page.wait_for(f"{links}.length > 0", what=f"DAG links on page {number}")
            hrefs = page.eval(links)
            listed |= {h.removeprefix("/dags/").split("/")[0] for h in hrefs}
            texts.append(page.eval("document.body.innerText"))
            page.screenshot(f"dag-list-{number}")
            nxt = "document.querySelector('button[aria-label=\"next page\"]')"
            if not page.eval(f"!!{nxt} && !{nxt}.disabled"):
                break
            first = hrefs[0]
            page.click('button[aria-label="next page"]')
            page.wait_for(f"{links}[0] !== {json.dumps(first)}", what=f"page {number + 1} of the DAG list")
    print(f"e2e: UI screenshots in {shots}")
    assert listed == expected, {"missing": sorted(expected - listed), "unexpected": sorted(listed - expected)}
    for text in (home, *texts):
        assert "import error" not in text.lower(), f"the UI shows an import-error banner:\n{text[:1500]}"
    # The negative control, checked later (the dag-processor needs its refresh interval to see the file).
    (stack.clone / "airflow-home/hot-reload-dags" / BROKEN_DAG_FILE).write_text(
        # "airflow" and "dag" in the text, or dag_discovery_safe_mode skips the file unparsed
        'from airflow.sdk import dag\n\nraise RuntimeError("ck e2e: a broken DAG file")\n'
    )


def test_every_service_healthy_and_api_reports_healthy(stack: Stack) -> None:
    services = stack.services()
    assert set(services) == SERVICES, f"services: {sorted(services)}"
    assert services["airflow-init"]["State"] == "exited" and services["airflow-init"]["ExitCode"] == 0
    health = requests.get(f"{stack.api}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    # The API needs a token: the stack is not open to anyone who can reach the port.
    assert requests.get(f"{stack.api}/api/v2/dags", timeout=30).status_code in (401, 403)


def test_official_image_dag_runs_the_image_hardened_and_keeps_its_contract(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(OFFICIAL_IMAGE_DAG)
    facts = stack.xcom(OFFICIAL_IMAGE_DAG, run_id, "check_contract")
    assert facts["uid"] == 50000 and facts["gid"] == 0 and facts["airflow_home"] == "/opt/airflow", facts
    assert facts["config"] == {"parallelism": "7", "executor": "LocalExecutor"}, facts
    assert facts["airflow"] == "3.3.2", facts
    assert tis["check_contract"]["hostname"], "ran on a Celery worker"
    # No registry connection in the dev stack: the registry tasks say so instead of failing.
    assert {tis[t]["state"] for t in ("resolve_tag", "list_variants")} == {"skipped"}


def test_compose_dev_dag_measures_hot_reload_inside_the_stack(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(COMPOSE_DEV_DAG)
    assert {t: ti["state"] for t, ti in tis.items()} == {
        "compose_config": "skipped",  # the worker has the compose files, not the build context
        "lint_compose": "success",
        "check_services": "success",
        "hot_reload": "success",
    }
    result = stack.xcom(COMPOSE_DEV_DAG, run_id, "hot_reload")
    # Listed within the dag-processor's refresh interval (30 s) plus parse time.
    assert 0 < result["seconds"] < 120, result
    assert stack.session.get(f"{stack.api}/api/v2/dags/{result['dag_id']}", timeout=30).status_code == 404


def test_compose_prod_dag_lists_the_live_celery_workers(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(COMPOSE_PROD_DAG)
    assert tis["live_celery_workers"]["state"] == "success"
    assert tis["merged_rules"]["state"] == "success"
    live = stack.xcom(COMPOSE_PROD_DAG, run_id, "live_celery_workers")
    assert live["count"] == 1 and live["configured_concurrency"] == 4, live
    assert [w["concurrency"] for w in live["workers"].values()] == [4], live


def test_production_compose_dag_audits_the_live_services(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(AUDIT_DAG)
    assert {t: ti["state"] for t, ti in tis.items()} == {"file_audit": "success", "live_audit": "success"}
    report = stack.xcom(AUDIT_DAG, run_id, "live_audit")
    services = {name.split("#")[0] for name in report}
    assert services == {
        "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    }, report  # fmt: skip
    assert all(row["memory"] and row["log"].get("max-size") for row in report.values()), report


def test_container_secrets_dag_resolves_cmd_options_from_compose_secrets(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(SECRETS_DAG)
    assert tis["cmd_in_stack"]["state"] == "success", tis
    checked = stack.xcom(SECRETS_DAG, run_id, "cmd_in_stack")
    assert set(checked) == {"core.fernet_key", "database.sql_alchemy_conn", "celery.broker_url"}, checked
    assert all(v.startswith("cmd: cat /run/secrets/") for v in checked.values()), checked


def test_secure_docker_operator_dag_runs_a_hardened_container(stack: Stack) -> None:
    assert stack.wait_for_dag(DOCKER_DAG)["is_paused"] is False
    run_id = stack.trigger(DOCKER_DAG)
    state = stack.wait_for_run(DOCKER_DAG, run_id)
    tis = stack.task_instances(DOCKER_DAG, run_id)
    logs = "" if state == "success" else stack.task_log(DOCKER_DAG, run_id, "measure", 1)
    assert state == "success", f"{tis}\n{logs}"
    assert {tis[t]["state"] for t in ("measure", "check")} == {"success"}


def test_dead_worker_is_noticed_within_a_minute_and_the_retry_succeeds(stack: Stack) -> None:
    """The worker's processes die (as in an OOM kill or a crash); nobody restarts it by hand.

    ``restart: unless-stopped`` brings the container back, the scheduler fails the dead try after the dev
    stack's 30 s heartbeat timeout, and the task's retry runs on the restarted worker.
    """
    run_id = stack.trigger(LONG_DAG, {"duration_seconds": LONG_TASK_SECONDS})
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        ti = stack.task_instances(LONG_DAG, run_id).get("long_running", {})
        if ti.get("state") == "running":
            break
        assert time.monotonic() < deadline, f"long task never started: {ti}"
        time.sleep(2)
    assert ti["try_number"] == 1
    time.sleep(5)  # well inside the task's LONG_TASK_SECONDS
    worker = stack.services()["airflow-worker"]["Name"]
    pid = int(_docker("inspect", "--format", "{{.State.Pid}}", worker).strip())
    os.kill(pid, signal.SIGKILL)  # the container's init from the host: a crash, not a `docker stop`
    killed = time.monotonic()
    while True:
        ti = stack.task_instances(LONG_DAG, run_id)["long_running"]
        if not (ti["state"] == "running" and ti["try_number"] == 1):
            break
        assert time.monotonic() - killed < 3 * DEAD_WORKER_BOUND, f"dead try never failed: {ti}"
        time.sleep(1)
    noticed = time.monotonic() - killed
    stack.record("dead_worker_noticed_seconds", noticed)
    print(f"e2e: the dead worker's try failed {noticed:.0f} s after the kill: {ti['state']}")
    assert noticed < DEAD_WORKER_BOUND, f"the dead try was failed only after {noticed:.0f} s: {ti}"

    state = stack.wait_for_run(LONG_DAG, run_id, timeout=RUN_TIMEOUT + LONG_TASK_SECONDS)
    ti = stack.task_instances(LONG_DAG, run_id)["long_running"]
    assert state == "success", ti
    assert ti["try_number"] == 2, f"the retry after the kill should be try 2: {ti}"
    assert stack.xcom(LONG_DAG, run_id, "long_running") == {
        "try_number": 2,
        "duration_seconds": LONG_TASK_SECONDS,
    }
    assert stack.services()["airflow-worker"]["State"] == "running", "the engine restarted the worker"


def test_every_volume_is_named_so_down_then_up_orphans_nothing(stack: Stack) -> None:
    """An anonymous volume (an image's VOLUME without a mount) is what `down` orphans and `up` recreates."""
    declared = set(json.loads(stack.compose("config", "--format", "json").stdout)["volumes"])
    assert {"postgres-db", "redis-data", "airflow-auth"} <= declared, declared
    names = _docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").split()
    mounts = {
        c["Name"].lstrip("/"): [m for m in c["Mounts"] if m["Type"] == "volume"]
        for c in json.loads(_docker("inspect", *names))
    }
    anonymous = {
        name: [m["Destination"] for m in ms if m["Name"] not in {f"{PROJECT}_{v}" for v in declared}]
        for name, ms in mounts.items()
    }
    assert {k: v for k, v in anonymous.items() if v} == {}, anonymous
    assert any(m["Destination"] == "/data" for m in mounts[f"{PROJECT}-redis-1"]), mounts


def test_ui_shows_the_import_error_banner_for_a_broken_file(stack: Stack) -> None:
    """The banner check above can fail: a broken file in the hot-reload bundle shows the banner."""
    if chromium_path() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    broken = stack.clone / "airflow-home/hot-reload-dags" / BROKEN_DAG_FILE
    assert broken.exists(), "written by test_ui_login_and_dag_list_in_chromium"
    deadline = time.monotonic() + 240
    while not stack.request("GET", "/importErrors")["total_entries"]:
        assert time.monotonic() < deadline, "the broken DAG file never produced an import error"
        time.sleep(3)
    with browser(ARTIFACTS / "ui-import-error") as page:
        home = _ui_login(page, stack)
    broken.unlink()
    assert "import error" in home.lower(), f"no import-error banner on the home page:\n{home[:1500]}"


def test_down_v_leaves_nothing_even_the_task_container_of_a_killed_worker(stack: Stack) -> None:
    """A task container outlives its `docker kill`ed worker; the documented teardown still removes it."""
    (stack.clone / "airflow-home/hot-reload-dags" / f"{ORPHAN_DAG}.py").write_text(ORPHAN_DAG_FILE)
    assert stack.wait_for_dag(ORPHAN_DAG)["is_paused"] is False
    stack.trigger(ORPHAN_DAG)
    label = f"label=containerkit.dag_id={ORPHAN_DAG}"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not _docker("ps", "-q", "--filter", label, "--filter", "status=running").split():
        assert time.monotonic() < deadline, "the task container never started"
        time.sleep(2)
    task_labels = json.loads(_docker("inspect", *_docker("ps", "-q", "--filter", label).split()))[0][
        "Config"
    ]["Labels"]
    assert task_labels["com.docker.compose.project"] == PROJECT, task_labels
    _docker("kill", stack.services()["airflow-worker"]["Name"])  # a manual stop: no restart policy applies
    assert _docker("ps", "-q", "--filter", label, "--filter", "status=running").split(), (
        "task container died too"
    )

    down = stack.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=300)
    assert _project_leftovers() == {"containers": [], "volumes": [], "networks": []}, (
        down.stdout + down.stderr
    )
    assert _docker("ps", "-aq", "--filter", label).split() == []
