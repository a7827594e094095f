"""``containerkit diagnose FILE``: say why a saved pod or Docker container failed.

FILE is JSON or YAML (``-`` reads stdin) holding one of:

- a pod as ``kubectl get pod -o json|yaml`` prints it, optionally with top-level ``events`` (a list
  or an ``EventList``, e.g. from ``kubectl get events -o json``) and ``logs`` (text) added beside it,
  or wrapped as ``{"pod": ..., "events": ..., "logs": ...}``;
- a ``docker inspect`` result (the one-element list the CLI prints, or the object), optionally
  wrapped as ``{"inspect": ..., "logs": ...}``.

``--logs PATH`` reads the log tail from a separate file. Exit codes: 0 no failure found, 1 a failure
was diagnosed, 2 the input could not be read or recognised.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from containerkit.diagnostics.model import Diagnosis

EXIT_HEALTHY = 0
EXIT_DIAGNOSED = 1
EXIT_BAD_INPUT = 2


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text()


def _parse(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.UsageError(f"{source}: neither JSON nor YAML ({exc})") from exc


def _is_docker_inspect(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("State"), Mapping) and ("HostConfig" in data or "Config" in data)


def _is_pod(data: Mapping[str, Any]) -> bool:
    return data.get("kind") == "Pod" or (
        isinstance(data.get("spec"), Mapping) and "containers" in data["spec"]
    )


def _events(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):  # an EventList
        return list(value.get("items") or [])
    if isinstance(value, list):
        return value
    raise click.UsageError("events must be a list of events or an EventList")


def _logs(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(line) for line in value)
    raise click.UsageError("logs must be text or a list of lines")


def diagnose_document(data: Any, logs: str | None = None) -> tuple[str, Diagnosis | None]:
    """Detect what ``data`` is and diagnose it; returns ``(kind, diagnosis)``, kind ``Pod`` or ``Docker``."""
    if isinstance(data, list):
        if len(data) != 1:
            raise click.UsageError(
                f"expected one object, got a list of {len(data)} (docker inspect one container)"
            )
        data = data[0]
    if not isinstance(data, Mapping):
        raise click.UsageError("expected a pod or a docker inspect object")
    if isinstance(data.get("inspect"), list | Mapping):
        kind, diagnosis = diagnose_document(
            data["inspect"], logs if logs is not None else _logs(data.get("logs"))
        )
        return kind, diagnosis
    if _is_docker_inspect(data):
        from containerkit.diagnostics.docker import diagnose_container

        return "Docker", diagnose_container(data, logs)
    wrapped = data.get("pod")
    pod: Mapping[str, Any] = wrapped if isinstance(wrapped, Mapping) else data
    if _is_pod(pod):
        from containerkit.diagnostics.kubernetes import diagnose_pod

        body = {k: v for k, v in pod.items() if k not in ("events", "logs")}
        found_logs = logs if logs is not None else _logs(data.get("logs", pod.get("logs")))
        return "Pod", diagnose_pod(body, _events(data.get("events", pod.get("events"))), found_logs)
    raise click.UsageError(
        "not a pod (kind: Pod, or spec.containers) nor a docker inspect result (State and HostConfig)"
    )


@click.command("diagnose")
@click.argument("file", type=str)
@click.option(
    "--logs", "logs_path", type=click.Path(exists=True, dir_okay=False), help="Log tail as a text file."
)
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def diagnose(file: str, logs_path: str | None, output_format: str) -> None:
    """Diagnose a failed pod or Docker container saved in FILE (JSON or YAML, '-' for stdin)."""
    try:
        text = _read(file)
        logs = Path(logs_path).read_text() if logs_path else None
    except OSError as exc:
        raise click.UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    kind, diagnosis = diagnose_document(_parse(text, file), logs)
    if output_format == "json":
        payload = {
            "kind": kind,
            "failed": diagnosis is not None,
            "diagnosis": asdict(diagnosis) if diagnosis else None,
        }
        click.echo(json.dumps(payload, indent=2))
    elif diagnosis is None:
        click.echo(f"{kind}: no failure found")
    else:
        click.echo(diagnosis.render())
    sys.exit(EXIT_DIAGNOSED if diagnosis else EXIT_HEALTHY)
