"""Audit a production compose stack: each service configured, sized, health-checked, log-rotated, live too.

**Problem.** A compose file can say all the right things while the running stack does not: a service
started from an old file, a health check that never turns healthy, a container with no memory limit
because the ``deploy:`` block was dropped, logs filling the disk because rotation was set on one
service only.

**Practice.** Audit twice: the merged production file (``docker-compose.yaml`` + ``docker-compose.prod.yaml``)
service by service, and the containers actually running in the stack, from the Docker engine: health
status, memory/CPU limits and log rotation as the engine applied them.

**Where each sub-point is covered.**

- all services configured: ``file_audit`` checks each merged service: image pinned, non-root user
  (the init job excepted, with its reason in the file), ``cap_drop: [ALL]``, ``no-new-privileges``,
  ``restart: always``, no containerkit ``compose`` rule error;
- resource limits: ``file_audit`` (limits and reservations per service) and ``live_audit`` (the
  engine's ``HostConfig.Memory``/``NanoCpus`` of every running container);
- health checks: ``file_audit`` (a ``healthcheck`` on every long-running service) and ``live_audit``
  (every long-running container ``healthy``, the init job exited 0);
- logging: ``file_audit`` (json-file with ``max-size``/``max-file``, or a shipping driver) and
  ``live_audit`` (the ``LogConfig`` the engine uses for each container).

``live_audit`` (needs:compose) finds the stack's containers through the compose project label of the
worker it runs on (the worker has the engine socket, see ``docker/README.md``).

**When copying.** Add the services you run; keep the audit in the deploy pipeline and as a scheduled
DAG in the stack.

**Needs.** Nothing for ``file_audit``; the running stack for ``live_audit``.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

PROJECT_DIR = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parents[1])
PROD_FILE = PROJECT_DIR / "docker-compose.prod.yaml"
SHIPPING_DRIVERS = {"fluentd", "gelf", "awslogs", "gcplogs", "splunk", "syslog", "journald", "loki"}


def _rotated(driver: str | None, options: dict[str, Any]) -> bool:
    if driver in SHIPPING_DRIVERS:
        return True
    return (
        driver in (None, "json-file", "local")
        and bool(options.get("max-size"))
        and bool(options.get("max-file"))
    )


@dag(
    dag_id="88_10_01_production_compose",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "example", "intermediate", "success"],
    doc_md=__doc__,
)
def production_compose() -> None:
    @task
    def file_audit() -> dict[str, dict[str, bool]]:
        """One row per merged production service; fails on any missing setting."""
        from containerkit.policy.engine import evaluate
        from containerkit.policy.rules.compose import interpolate
        from containerkit.policy.sources.compose import load

        table: dict[str, dict[str, bool]] = {}
        for target in load(PROD_FILE):
            service = target.data
            config = service.config
            deploy = (config.get("deploy") or {}).get("resources") or {}
            logging = config.get("logging") or {}
            image = interpolate(str(config.get("image", ""))) or ""
            errors = [f.rule_id for f in evaluate(target) if f.severity.value == "error"]
            row = {
                "pinned_image": ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"),
                "non_root": service.name == "airflow-init"
                or str(config.get("user", "")).split(":")[0] not in ("", "0", "root"),
                "cap_drop_all": "ALL" in (config.get("cap_drop") or []),
                "no_new_privileges": any(
                    "no-new-privileges" in str(o) for o in config.get("security_opt") or []
                ),
                "restart_always": service.one_shot or config.get("restart") == "always",
                "healthcheck": service.one_shot or "healthcheck" in config,
                "limits": bool(
                    (deploy.get("limits") or {}).get("memory") and (deploy.get("limits") or {}).get("cpus")
                ),
                "reservations": bool((deploy.get("reservations") or {}).get("memory")),
                "log_rotation": _rotated(logging.get("driver"), logging.get("options") or {}),
                "policy_clean": not errors,
            }
            table[service.name] = row
        failing = {name: [k for k, ok in row.items() if not ok] for name, row in table.items()}
        failing = {name: keys for name, keys in failing.items() if keys}
        columns = list(next(iter(table.values())))
        print(f"{'service':<24}" + " ".join(f"{c[:12]:>12}" for c in columns))
        for name, row in table.items():
            print(f"{name:<24}" + " ".join(f"{('ok' if row[c] else 'MISSING'):>12}" for c in columns))
        if failing:
            raise AssertionError(f"production compose audit failed: {failing}")
        return table

    @task
    def live_audit() -> dict[str, dict[str, Any]]:
        """needs:compose: the running containers of this stack, as the engine runs them."""
        if os.environ.get("CONTAINERKIT_IN_COMPOSE") != "1":
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(
                "needs:compose: runs inside the compose stack (CONTAINERKIT_IN_COMPOSE=1)"
            )
        import docker

        api = docker.from_env().api
        me = api.inspect_container(socket.gethostname())
        project = me["Config"]["Labels"]["com.docker.compose.project"]
        containers = api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
        report: dict[str, dict[str, Any]] = {}
        problems = []
        for summary in containers:
            info = api.inspect_container(summary["Id"])
            labels = info["Config"]["Labels"]
            number = labels.get("com.docker.compose.container-number", "1")
            name = f"{labels['com.docker.compose.service']}#{number}"
            state, host = info["State"], info["HostConfig"]
            log = host.get("LogConfig") or {}
            one_shot = labels["com.docker.compose.service"] == "airflow-init"
            row = {
                "status": state["Status"],
                "health": (state.get("Health") or {}).get("Status"),
                "exit_code": state.get("ExitCode"),
                "memory": host.get("Memory"),
                "nano_cpus": host.get("NanoCpus"),
                "log": {"type": log.get("Type"), **(log.get("Config") or {})},
                "restart": (host.get("RestartPolicy") or {}).get("Name"),
            }
            report[name] = row
            if one_shot:
                if state["Status"] != "exited" or state.get("ExitCode") != 0:
                    problems.append(f"{name}: init job {state['Status']} exit {state.get('ExitCode')}")
            elif row["health"] != "healthy":
                problems.append(f"{name}: health {row['health']} ({state['Status']})")
            if not row["memory"] or not row["nano_cpus"]:
                problems.append(f"{name}: no memory/CPU limit applied by the engine")
            if not _rotated(log.get("Type"), log.get("Config") or {}):
                problems.append(f"{name}: logs not rotated ({log})")
        for name, row in sorted(report.items()):
            print(f"{name:<28} {json.dumps(row)}")
        if problems:
            raise AssertionError("; ".join(problems))
        return report

    file_audit()
    live_audit()


production_compose()
