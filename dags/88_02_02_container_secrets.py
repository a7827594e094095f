"""Deliver secrets to container tasks as files, never as literals, and prove they leak nowhere.

**Problem.** A password in ``environment=`` is stored in ``docker inspect``, the rendered-template view,
the pod spec and every crash dump; a password printed once is in the task log forever; a secret in a
config file baked into the image is in every layer cache.

**Practice.** Secrets live in a store (Docker/compose secrets, a Kubernetes Secret, a secrets backend) and
reach the process as a read-only file (preferred) or, on Kubernetes, as an env var resolved by the
kubelet from a ``secretKeyRef``; Airflow's own secrets are ``_CMD`` (a command that prints the value,
e.g. ``cat /run/secrets/x``) or ``_SECRET`` (a key in the secrets backend) options; a canary checks that
the value reaches none of the places people read.

**Where each sub-point is covered.**

- Docker secrets and secret file mounting: ``secret_store`` writes ``<secrets_dir>/<secret>/<key>`` files
  (what a secret-store agent or compose ``secrets:`` provides; mode 0440, group 0); ``docker_secret_file``
  mounts two keys read-only with ``secret_refs=[SecretRef(..., path=...)]`` into a hardened container,
  which proves it can read them (uid 50000) and that they are read-only and absent from its env;
- ``_CMD`` and ``_SECRET`` suffixes: ``cmd_option`` resolves ``[celery] flower_basic_auth`` from
  ``AIRFLOW__CELERY__FLOWER_BASIC_AUTH_CMD`` (a ``cat`` of the secret file) and checks the source is ``cmd``;
  ``cmd_in_stack`` (needs:compose) checks that the stack's Fernet key, database URL and broker URL come
  from ``_CMD`` options reading compose secrets, with no plain ``AIRFLOW__`` value in the environment.
  ``_SECRET`` works the same with a secrets backend that serves config (Vault, AWS, GCP):
  ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET=airflow-db-url``; it needs such a backend and is not run;
- Kubernetes secrets: ``k8s_secret_manifest`` renders the pod with the Secret as env
  (``secretKeyRef``) and as a file (Secret volume, 0440) and validates it (schema, policy: no literal
  secret anywhere); with a cluster (``needs:kubernetes``), ``k8s_create_secret`` creates the Secret,
  ``k8s_secret_pod`` runs the pod that checks both forms, and ``k8s_delete_secret`` removes the Secret;
- the canary: ``canary`` asserts the secret values appear in none of the XComs, the container's log
  lines, the rendered template fields of the container task, or ``docker inspect`` of a container
  created with the same settings.

**When copying.** Point ``CONTAINERKIT_SECRETS_DIR`` at the directory your secret agent fills (the Docker
engine's host path) and drop ``secret_store``; on Kubernetes drop ``k8s_create_secret`` (the Secret comes
from External Secrets, Vault or Sealed Secrets).

**Needs.** A Docker engine (``needs:docker``); ``needs:kubernetes`` for the pod (its tasks skip with the
reason without a ``kubernetes_default`` connection); the compose stack for ``cmd_in_stack``. Inside the
stack the Docker file-mount tasks skip: the worker's files are not on the engine's host.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task

from containerkit.spec import SecretRef

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
# On the Docker engine's host: where the secret agent writes one file per key.
SECRETS_DIR = os.environ.get(
    "CONTAINERKIT_SECRETS_DIR", os.path.join(tempfile.gettempdir(), "containerkit-secrets-88_02_02")
)
K8S_SECRET = "ck-88-02-02-db"
# Two keys of two Secrets; files only: an env-form value would show in `docker inspect`.
DOCKER_SECRETS = [
    SecretRef(secret="warehouse", key="password", path="/run/secrets/warehouse_password"),
    SecretRef(secret="api", key="token", path="/run/secrets/api_token"),
]
# Runs in the container: facts about each secret file, never its content (a hash prefix to compare).
FILE_REPORT = r"""
import hashlib, json, os, stat
paths = ["/run/secrets/warehouse_password", "/run/secrets/api_token"]
report = {"uid": os.getuid(), "files": {}}
for path in paths:
    data = open(path, "rb").read().strip()
    st = os.stat(path)
    try:
        open(path, "a").close()
        writable = True
    except OSError:
        writable = False
    report["files"][path] = {
        "sha256": hashlib.sha256(data).hexdigest()[:16],
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "writable": writable,
        "in_env": any(data.decode() in v for v in os.environ.values()),
    }
print(json.dumps(report))
"""
# Runs in the pod: the env form and the file form hold the same value (compared by hash).
POD_CHECK = r"""
import hashlib, json, os, stat, sys
env = os.environ["DB_PASSWORD"].encode()
path = "/run/secrets/db/password"
data = open(path, "rb").read()
mode = oct(stat.S_IMODE(os.stat(path).st_mode))
ok = hashlib.sha256(env).hexdigest() == hashlib.sha256(data).hexdigest() == sys.argv[1]
print(json.dumps({"same_value": ok, "file_mode": mode, "uid": os.getuid()}))
sys.exit(0 if ok else 1)
"""


def _in_compose() -> bool:
    return os.environ.get("CONTAINERKIT_IN_COMPOSE") == "1"


def _skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def _secret_values() -> dict[str, str]:
    return {
        f"{ref.secret}/{ref.key}": (Path(SECRETS_DIR) / ref.secret / ref.key).read_text().strip()
        for ref in DOCKER_SECRETS
    }


def _digest(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


@dag(
    dag_id="88_02_02_container_secrets",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def container_secrets() -> None:
    @task
    def secret_store() -> dict[str, str]:
        """Fill the secret directory as an agent would: one file per key, 0440, random values."""
        import secrets

        from airflow.sdk.log import mask_secret

        if _in_compose() and "CONTAINERKIT_SECRETS_DIR" not in os.environ:
            _skip(
                "inside the compose stack the worker's /tmp is not on the engine's host: set "
                "CONTAINERKIT_SECRETS_DIR to a directory mounted at the same path in the worker"
            )
        digests = {}
        for ref in DOCKER_SECRETS:
            path = Path(SECRETS_DIR) / ref.secret / ref.key
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            value = secrets.token_urlsafe(24)
            mask_secret(value)
            path.write_text(value + "\n")
            path.chmod(0o440)  # owner and group 0 (the task's gid), never others
            digests[f"{ref.secret}/{ref.key}"] = _digest(value)[:16]
        return digests

    docker_secret_file = SecureDockerOperator(
        task_id="docker_secret_file",
        image=PYTHON_IMAGE,
        command=["python", "-c", FILE_REPORT],
        secret_refs=DOCKER_SECRETS,
        secrets_dir=SECRETS_DIR,
        resources="xs",
        xcom_all=True,  # every log line is the XCom, so the canary reads what the log shows
    )

    @task
    def check_secret_files(lines: list[str], digests: dict[str, str]) -> dict[str, Any]:
        report = json.loads(lines[-1])
        expected = {
            ref.path: digests[f"{ref.secret}/{ref.key}"] for ref in DOCKER_SECRETS if ref.path is not None
        }
        problems = []
        for path, facts in report["files"].items():
            if facts["sha256"] != expected[path]:
                problems.append(f"{path}: content differs from the store")
            if facts["writable"]:
                problems.append(f"{path}: writable inside the container")
            if facts["in_env"]:
                problems.append(f"{path}: value also in the environment")
        if report["uid"] != 50000:
            problems.append(f"ran as uid {report['uid']}")
        if problems:
            raise AssertionError("; ".join(problems))
        return report

    @task
    def cmd_option() -> dict[str, str]:
        """An Airflow option resolved by ``_CMD`` from a secret file: the value never sits in env."""
        from airflow.configuration import conf

        if _in_compose() and "CONTAINERKIT_SECRETS_DIR" not in os.environ:
            _skip("needs the secret files of secret_store (skipped inside the stack)")
        path = Path(SECRETS_DIR) / "api" / "token"
        # Only options Airflow marks sensitive take _CMD/_SECRET; this one is read by Flower only.
        os.environ["AIRFLOW__CELERY__FLOWER_BASIC_AUTH_CMD"] = f"cat {path}"
        try:
            value = conf.get("celery", "flower_basic_auth")
            source = conf.as_dict(display_source=True, display_sensitive=False)["celery"][
                "flower_basic_auth"
            ][1]
        finally:
            del os.environ["AIRFLOW__CELERY__FLOWER_BASIC_AUTH_CMD"]
        if value.strip() != path.read_text().strip() or source != "cmd":
            raise AssertionError(f"flower_basic_auth did not come from its _CMD (source {source})")
        return {"option": "celery.flower_basic_auth", "source": source, "sha256": _digest(value)[:16]}

    @task
    def cmd_in_stack() -> dict[str, str]:
        """needs:compose: the stack's Airflow secrets are `_CMD` options over compose secrets files."""
        from airflow.configuration import conf

        if not _in_compose():
            _skip("needs:compose: runs inside the compose stack (CONTAINERKIT_IN_COMPOSE=1)")
        # The container's environment as compose set it (the task process's own env is rewritten by the
        # supervisor for the database URL: task code has no database access in Airflow 3).
        stack_env = dict(
            item.split("=", 1) for item in Path("/proc/1/environ").read_text().split("\0") if "=" in item
        )
        effective = conf.as_dict(display_source=True, display_sensitive=False)
        checked = {}
        options = (("core", "fernet_key"), ("database", "sql_alchemy_conn"), ("celery", "broker_url"))
        for section, key in options:
            env = f"AIRFLOW__{section.upper()}__{key.upper()}"
            command = stack_env.get(f"{env}_CMD", "")
            if env in stack_env:
                raise AssertionError(f"{env} holds the value in plain env; use {env}_CMD")
            if not command.startswith("cat /run/secrets/"):
                raise AssertionError(f"{env}_CMD is {command!r}, expected cat /run/secrets/<name>")
            stored = Path(command.split(" ", 1)[1]).read_text().strip()
            if not stored:
                raise AssertionError(f"{command}: the secret file is empty")
            if (section, key) != ("database", "sql_alchemy_conn"):
                source = effective[section][key][1]
                if source != "cmd" or conf.get(section, key).strip() != stored:
                    raise AssertionError(f"{section}.{key}: source {source}, not the secret file's value")
            elif conf.get(section, key).strip() == stored:
                raise AssertionError("task code can read the database URL: the supervisor should block it")
            checked[f"{section}.{key}"] = f"cmd: {command}"
        print(json.dumps(checked, indent=2))
        return checked

    @task
    def k8s_secret_manifest() -> dict[str, Any]:
        """The pod with the Secret as env and as a file: schema-valid and policy-clean (no literal)."""
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod

        pod = render_pod(k8s_secret_pod.container_spec, name="ck-secret-demo", namespace=NAMESPACE)
        doc = to_dict(pod)
        container = doc["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        if "secretKeyRef" not in env["DB_PASSWORD"].get("valueFrom", {}) or "value" in env["DB_PASSWORD"]:
            raise AssertionError(f"DB_PASSWORD is not a secretKeyRef: {env['DB_PASSWORD']}")
        volumes = {v["name"]: v for v in doc["spec"].get("volumes", [])}
        secret_volumes = [v for v in volumes.values() if v.get("secret", {}).get("secretName") == K8S_SECRET]
        if not secret_volumes or secret_volumes[0]["secret"].get("defaultMode", 0) & 0o007:
            raise AssertionError(f"Secret volume missing or readable by others: {secret_volumes}")
        errors = [f for f in evaluate_pod(pod) if f.severity.value == "error"]
        if errors:
            raise AssertionError(f"policy: {[(f.rule_id, f.message) for f in errors]}")
        try:
            import kubernetes_validate
        except ImportError:
            _skip("schema validation needs kubernetes-validate (pip install kubernetes-validate)")
        kubernetes_validate.validate(doc, "1.30", strict=True)
        return {"env": env["DB_PASSWORD"]["valueFrom"], "volume": secret_volumes[0]["secret"]}

    @task
    def k8s_create_secret() -> str:
        """Create the demo Secret; in your cluster it comes from your secret manager instead."""
        import secrets

        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            BaseHook.get_connection(KUBERNETES_CONN_ID)
        except AirflowNotFoundException:
            _skip(f"needs:kubernetes: no {KUBERNETES_CONN_ID!r} connection (AIRFLOW_CONN_KUBERNETES_DEFAULT)")
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from airflow.sdk.log import mask_secret
        from kubernetes.client import V1ObjectMeta, V1Secret

        value = secrets.token_urlsafe(24)
        mask_secret(value)
        core = KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client
        body = V1Secret(
            metadata=V1ObjectMeta(name=K8S_SECRET, labels={"app.kubernetes.io/managed-by": "containerkit"}),
            string_data={"password": value},
            type="Opaque",
        )
        core.create_namespaced_secret(NAMESPACE, body)
        return _digest(value)

    k8s_secret_pod = SecureKubernetesPodOperator(
        task_id="k8s_secret_pod",
        name="ck-secret-demo",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        image=PYTHON_IMAGE,
        cmds=["python", "-c", POD_CHECK],
        arguments=["{{ ti.xcom_pull(task_ids='k8s_create_secret') }}"],
        secret_refs=[
            SecretRef(secret=K8S_SECRET, key="password", env="DB_PASSWORD"),
            SecretRef(secret=K8S_SECRET, key="password", path="/run/secrets/db/password"),
        ],
        resources="xs",
    )

    @task
    def k8s_delete_secret(digest: str | None) -> None:
        if not digest:
            return
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client.delete_namespaced_secret(
            K8S_SECRET, NAMESPACE
        )

    @task(trigger_rule="none_failed")
    def canary(**context: Any) -> dict[str, bool]:
        """The values appear in no XCom, container log line, rendered template field or docker inspect."""
        import docker

        if _in_compose() and "CONTAINERKIT_SECRETS_DIR" not in os.environ:
            _skip("the Docker secret tasks were skipped inside the stack: nothing to check")
        values = _secret_values()
        ti = context["ti"]
        upstream = [
            "secret_store",
            "docker_secret_file",
            "check_secret_files",
            "cmd_option",
            "k8s_secret_manifest",
        ]
        xcoms = json.dumps([ti.xcom_pull(task_ids=t) for t in upstream], default=str)
        log_lines = "\n".join(ti.xcom_pull(task_ids="docker_secret_file") or [])
        task = context["dag"].get_task("docker_secret_file")
        task.render_template_fields(context)
        rendered = json.dumps({f: getattr(task, f) for f in task.template_fields}, default=str)
        # A container with exactly the task's settings, created (not started) and inspected.
        create, host, _ = task.container_config([], runtime=True)
        client = docker.from_env().api
        container = client.create_container(
            **{**create, "name": None, "labels": {**create["labels"], "containerkit.example": "88_02_02"}},
            host_config=client.create_host_config(**host),
        )
        try:
            inspect = json.dumps(client.inspect_container(container["Id"]))
        finally:
            client.remove_container(container["Id"], force=True, v=True)
        places = {"xcom": xcoms, "logs": log_lines, "rendered_fields": rendered, "docker_inspect": inspect}
        leaks = {place: [k for k, v in values.items() if v in text] for place, text in places.items()}
        leaks = {place: keys for place, keys in leaks.items() if keys}
        if leaks:
            raise AssertionError(f"secret values leaked: {leaks}")
        return {place: False for place in places}

    @task
    def remove_store() -> None:
        import shutil

        if "CONTAINERKIT_SECRETS_DIR" not in os.environ:
            shutil.rmtree(SECRETS_DIR, ignore_errors=True)

    digests = secret_store()
    checked = check_secret_files(docker_secret_file.output, digests)
    digests >> docker_secret_file
    cmd = cmd_option()
    digests >> cmd
    manifest = k8s_secret_manifest()
    created = k8s_create_secret()
    manifest >> created >> k8s_secret_pod >> k8s_delete_secret(created).as_teardown(setups=created)
    leaks = canary()
    [checked, cmd, manifest] >> leaks >> remove_store().as_teardown(setups=digests)
    cmd_in_stack()


container_secrets()
