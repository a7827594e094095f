"""Recommendations as a terminal table, JSON, and a patch-like suggestion of ``resources=`` per task."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from containerkit.usage.recommend import OK, Recommendation, resources_literal

_COLUMNS = (
    "TASK",
    "RUNTIME",
    "TRIES",
    "OK",
    "MEMORY",
    "CPU REQUEST",
    "CPU LIMIT",
    "PRESET",
    "FLAGS",
    "OVER CPU-H/MO",
    "OVER GIB-H/MO",
)


def _now(values: Mapping[str, str], key: str) -> str:
    return values.get(key, "-")


def _row(r: Recommendation) -> tuple[str, ...]:
    if r.status == OK:
        memory = f"{_now(r.current_requests, 'memory')} -> {r.memory}"
        cpu = f"{_now(r.current_requests, 'cpu')} -> {r.cpu_request}"
        limit = f"{_now(r.current_limits, 'cpu')} -> {r.cpu_limit or 'none'}"
        preset = r.preset or "explicit"
    else:
        memory, cpu, limit, preset = (
            _now(r.current_requests, "memory"),
            _now(r.current_requests, "cpu"),
            _now(r.current_limits, "cpu"),
            "not enough history",
        )
    return (
        f"{r.dag_id}.{r.task_id}",
        r.runtime,
        str(r.tries),
        str(r.successful),
        memory,
        cpu,
        limit,
        preset,
        ",".join(r.flags) or "-",
        f"{r.over_request_cpu_hours:.2f}",
        f"{r.over_request_gib_hours:.2f}",
    )


def table(recommendations: Sequence[Recommendation]) -> str:
    """Fixed-width columns, one row per task (already ranked by monthly over-request)."""
    rows = [_COLUMNS, *(_row(r) for r in recommendations)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    if not recommendations:
        lines.append("(no usage records)")
    return "\n".join(lines) + "\n"


def as_json(recommendations: Sequence[Recommendation]) -> str:
    return json.dumps({"recommendations": [r.to_dict() for r in recommendations]}, indent=2, sort_keys=True)


def _quantities(values: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(values.items())) or "none"


def patch(recommendations: Sequence[Recommendation]) -> str:
    """Per task: the current sizes as the removed line, ``resources=...`` as the added one."""
    blocks = []
    for r in recommendations:
        header = f"@@ {r.dag_id} :: task_id={r.task_id!r} ({r.runtime}, {r.tries} tries) @@"
        current = (
            f"-    resources=<requests {_quantities(r.current_requests)}; "
            f"limits {_quantities(r.current_limits)}>,"
        )
        if r.status != OK:
            blocks.append(f"{header}\n {current[1:]}\n# {r.reason}")
            continue
        lines = [header, current, f"+    resources={resources_literal(r.resources)},"]
        if r.runtime == "kubernetes":
            lines.append(
                "# no cpu limit needed on Kubernetes (the request reserves; a limit only throttles): "
                "containerkit keeps the preset's as a burst ceiling"
            )
        if r.flags:
            lines.append(f"# flags: {', '.join(r.flags)}")
        lines.append(f"# {r.reason}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "# no usage records\n"
