"""Configure Airflow and its container tasks through the environment: sources, connections, executor, flags.

**Problem.** An Airflow deployment is configured from five places at once (defaults, ``airflow.cfg``,
``AIRFLOW__`` env vars, ``_CMD`` commands, ``_SECRET`` backends). When a value is wrong nobody knows which
one won; connection strings get hand-built with unescaped passwords; executor settings drift between
components; feature switches are edited into the DAG file and need a deploy.

**Practice.** Every option is an ``AIRFLOW__{SECTION}__{KEY}`` env var (secrets through ``_CMD`` or
``_SECRET``, never literals) and you can show where each effective value came from; connections are
``AIRFLOW_CONN_{ID}`` in URI or JSON form, built by Airflow's own ``Connection`` (which escapes them);
container tasks get non-secret configuration as env vars of the task container, not baked into the
image; feature flags are Variables read at run time.

**Where each sub-point is covered.**

- ``AIRFLOW__`` prefix: ``option_sources`` lists the effective source (env var, cmd, secret, airflow.cfg,
  default) of each option and asserts that every option set by an ``AIRFLOW__`` env var reports ``env var``
  (and every ``_CMD`` one ``cmd``); sensitive values are never shown;
- connection URIs: ``connection_forms`` builds one connection, exports it as ``AIRFLOW_CONN_*`` in URI
  and in JSON form, reads both back through the normal lookup and asserts they are the same connection
  (the password is generated at run time and masked);
- executor configuration: ``executor_config`` parses ``[core] executor`` (one or several executors, the
  first is the default), and reports the settings that size it with their sources;
- feature flags: ``feature_flag`` branches on the Variable ``ck_feature_new_pipeline`` (env
  ``AIRFLOW_VAR_CK_FEATURE_NEW_PIPELINE``, default ``true``): ``new_pipeline`` or ``legacy_pipeline``;
- config into a container: ``container_env`` runs a hardened ``SecureDockerOperator`` with
  non-secret settings as env vars (one templated from a Variable) and ``check_container_env`` asserts
  the container saw exactly them.

**When copying.** Replace the option list and the settings; keep secrets out of ``environment`` (the
operator refuses secret-looking literals): use ``secret_refs`` (see 88_02_02).

**Needs.** A Docker engine for ``container_env`` (``needs:docker``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
FLAG_VARIABLE = "ck_feature_new_pipeline"
OPTIONS = [
    ("core", "executor"),
    ("core", "parallelism"),
    ("core", "load_examples"),
    ("core", "dags_folder"),
    ("core", "fernet_key"),
    # Not ("database", "sql_alchemy_conn"): Airflow 3 tasks have no metadata-DB access, so the task
    # supervisor replaces that option (and its _CMD) in every task process; a task cannot report it.
    ("celery", "worker_concurrency"),
    ("scheduler", "task_instance_heartbeat_timeout"),
]
# Non-secret settings of the task container; APP_REGION comes from a Variable at run time.
TASK_ENV = {
    "APP_MODE": "batch",
    "APP_BATCH_SIZE": "500",
    "APP_REGION": "{{ var.value.get('ck_app_region', 'eu-west-1') }}",
}
ENV_REPORT = (
    "import json, os; "
    "print(json.dumps({k: v for k, v in sorted(os.environ.items()) if k.startswith('APP_')}))"
)


@dag(
    dag_id="88_02_01_env_configuration",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "beginner", "success", "needs:docker"],
    doc_md=__doc__,
)
def env_configuration() -> None:
    @task
    def option_sources() -> dict[str, dict[str, str]]:
        """Where each effective option came from; values only for non-sensitive options."""
        from airflow.configuration import conf

        effective = conf.as_dict(display_source=True, display_sensitive=False)
        report: dict[str, dict[str, str]] = {}
        problems = []
        for section, key in OPTIONS:
            entry = effective.get(section, {}).get(key)
            if entry is None:
                continue
            value, source = entry if isinstance(entry, tuple) else (entry, "?")
            env_name = f"AIRFLOW__{section.upper()}__{key.upper()}"
            if env_name in os.environ and source != "env var":
                problems.append(f"{env_name} is set but {section}.{key} came from {source}")
            if f"{env_name}_CMD" in os.environ and env_name not in os.environ and source != "cmd":
                problems.append(f"{env_name}_CMD is set but {section}.{key} came from {source}")
            sensitive = conf.sensitive_config_values
            shown = "< hidden >" if (section, key) in sensitive else str(value)
            report[f"{section}.{key}"] = {"source": source, "env": env_name, "value": shown}
            print(f"{section + '.' + key:<44} {source:<14} {shown}")
        if problems:
            raise AssertionError("; ".join(problems))
        return report

    @task
    def connection_forms() -> dict[str, Any]:
        """One connection, exported as URI and as JSON env var, read back through the normal lookup."""
        import secrets
        from urllib.parse import quote

        from airflow.models.connection import Connection
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        password = secrets.token_urlsafe(18) + "/@:?"  # characters a hand-built URI gets wrong
        mask_secret(password)
        mask_secret(quote(password, safe=""))  # the form it takes inside the URI
        original = Connection(
            conn_id="ck_warehouse",
            conn_type="postgres",
            host="warehouse.internal",
            port=5432,
            schema="analytics",
            login="etl",
            password=password,
            extra=json.dumps({"sslmode": "verify-full", "application_name": "airflow"}),
        )
        os.environ["AIRFLOW_CONN_CK_WAREHOUSE_URI"] = original.get_uri()
        os.environ["AIRFLOW_CONN_CK_WAREHOUSE_JSON"] = original.as_json()
        try:
            forms = {form: BaseHook.get_connection(f"ck_warehouse_{form}") for form in ("uri", "json")}
        finally:
            for form in ("URI", "JSON"):
                os.environ.pop(f"AIRFLOW_CONN_CK_WAREHOUSE_{form}", None)
        fields = ("conn_type", "host", "port", "schema", "login")
        result: dict[str, Any] = {}
        for form, conn in forms.items():
            seen = {f: getattr(conn, f) for f in fields}
            expected = {f: getattr(original, f) for f in fields}
            if seen != expected or conn.password != password or conn.extra_dejson != original.extra_dejson:
                raise AssertionError(f"{form} form did not round-trip: {seen} != {expected} (password/extra)")
            result[form] = {**seen, "extra": conn.extra_dejson, "password_round_trip": True}
        print(f"both forms round-trip: {result['uri']}")
        return result

    @task
    def executor_config() -> dict[str, Any]:
        """The executor list (first = default) and the options that size it, with their sources."""
        from airflow.configuration import conf

        executors = [e.strip() for e in conf.get("core", "executor").split(",") if e.strip()]
        if not executors:
            raise AssertionError("[core] executor is empty")
        effective = conf.as_dict(display_source=True, display_sensitive=False)
        sizing = {}
        for section, key in (("core", "parallelism"), ("core", "max_active_tasks_per_dag")):
            value, source = effective[section][key]
            sizing[f"{section}.{key}"] = {"value": value, "source": source}
        if any("Celery" in e for e in executors):
            value, source = effective["celery"]["worker_concurrency"]
            sizing["celery.worker_concurrency"] = {"value": value, "source": source}
        report = {"executors": executors, "default": executors[0], "sizing": sizing}
        print(json.dumps(report, indent=2))
        return report

    @task.branch
    def feature_flag() -> str:
        """The flag is read when the task runs: flipping the Variable needs no deploy."""
        from airflow.sdk import Variable

        raw = str(Variable.get(FLAG_VARIABLE, default="true")).strip().lower()
        if raw not in ("true", "false", "1", "0", "on", "off"):
            raise ValueError(f"Variable {FLAG_VARIABLE}={raw!r}: use true or false")
        enabled = raw in ("true", "1", "on")
        print(f"{FLAG_VARIABLE}={raw}: {'new' if enabled else 'legacy'} pipeline")
        return "new_pipeline" if enabled else "legacy_pipeline"

    @task
    def new_pipeline() -> str:
        return "new"

    @task
    def legacy_pipeline() -> str:
        return "legacy"

    @task(trigger_rule="none_failed_min_one_success")
    def flag_result(new: str | None, legacy: str | None) -> str:
        from airflow.sdk import Variable

        chosen = new or legacy
        enabled = str(Variable.get(FLAG_VARIABLE, default="true")).strip().lower() in ("true", "1", "on")
        if chosen != ("new" if enabled else "legacy"):
            raise AssertionError(f"flag {enabled} but the {chosen} branch ran")
        return str(chosen)

    container_env = SecureDockerOperator(
        task_id="container_env",
        image=PYTHON_IMAGE,
        command=["python", "-c", ENV_REPORT],
        environment=TASK_ENV,
        resources="xs",
    )

    @task
    def check_container_env(report: str) -> dict[str, str]:
        """The container saw exactly the settings passed (the Variable-backed one rendered)."""
        from airflow.sdk import Variable

        seen = json.loads(report)
        expected = {k: v for k, v in TASK_ENV.items() if "{{" not in v}
        expected["APP_REGION"] = str(Variable.get("ck_app_region", default="eu-west-1"))
        if seen != expected:
            raise AssertionError(f"container env {seen} != {expected}")
        return seen

    option_sources()
    connection_forms()
    executor_config()
    branch = feature_flag()
    new, legacy = new_pipeline(), legacy_pipeline()
    branch >> [new, legacy]
    flag_result(new, legacy)
    check_container_env(container_env.output)


env_configuration()
