"""A self-contained HTML report: one section and one chart per task (inline SVG and CSS, no script, no
external file), so it can be attached to a ticket, mailed or opened from CI artifacts offline.

Each chart has two panels over the task's tries (oldest left): peak memory per try against its memory
request and limit (OOM-killed tries in red) and the recommended size; average CPU cores per try against
the CPU request and limit, and the recommended request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from containerkit.usage.recommend import OK, Recommendation, resources_literal
from containerkit.usage.record import format_bytes, format_cpu

_WIDTH, _PANEL_HEIGHT, _LEFT, _RIGHT, _TOP, _GAP = 760, 150, 70, 150, 24, 46

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 28px 0 4px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px 2px 0; text-align: left; }
.flag { background: #fde2e1; color: #8a1c17; border-radius: 3px; padding: 0 5px; margin-right: 4px; }
.muted { color: #57606a; } code { background: #f3f4f6; padding: 1px 4px; }
svg.chart { display: block; margin-top: 8px; }
svg text { font: 11px system-ui, sans-serif; fill: #1b1f24; }
.bar { fill: #5b8def; } .bar.oom { fill: #d1242f; } .bar.failed { fill: #bf8700; }
.request { stroke: #57606a; stroke-dasharray: 5 3; fill: none; } .limit { stroke: #1b1f24; fill: none; }
.recommended { stroke: #1a7f37; stroke-width: 2; fill: none; } .axis { stroke: #d0d7de; }
"""


def _steps(values: Sequence[float | None], x: Any, y: Any, step: float) -> str:
    """An SVG path that steps through per-try values (a resource setting can change between tries)."""
    parts: list[str] = []
    pen_up = True
    for i, value in enumerate(values):
        if value is None:
            pen_up = True
            continue
        left, right = x(i), x(i) + step
        parts.append(f"{'M' if pen_up else 'L'}{left:.1f},{y(value):.1f} L{right:.1f},{y(value):.1f}")
        pen_up = False
    return " ".join(parts)


def _panel(
    series: Sequence[Mapping[str, Any]],
    *,
    top: float,
    title: str,
    value_key: str,
    request_key: str,
    limit_key: str,
    recommended: float | None,
    fmt: Any,
) -> str:
    values = [s.get(value_key) for s in series]
    requests = [s.get(request_key) for s in series]
    limits = [s.get(limit_key) for s in series]
    known = [v for v in [*values, *requests, *limits, recommended] if v]
    ceiling = max(known) * 1.1 if known else 1.0
    count = max(1, len(series))
    step = (_WIDTH - _LEFT - _RIGHT) / count

    def x(i: int) -> float:
        return _LEFT + i * step

    def y(v: float) -> float:
        return top + _PANEL_HEIGHT - (v / ceiling) * _PANEL_HEIGHT

    out = [
        f'<text x="{_LEFT}" y="{top - 8}">{escape(title)}</text>',
        f'<line class="axis" x1="{_LEFT}" y1="{top + _PANEL_HEIGHT}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{top + _PANEL_HEIGHT}"/>',
        f'<text x="{_LEFT - 6}" y="{top + 4}" text-anchor="end">{escape(fmt(ceiling))}</text>',
        f'<text x="{_LEFT - 6}" y="{top + _PANEL_HEIGHT}" text-anchor="end">0</text>',
    ]
    for i, (point, value) in enumerate(zip(series, values, strict=True)):
        if value is None:
            continue
        kind = "oom" if point.get("oom_killed") else ("" if point.get("succeeded") else "failed")
        height = max(1.0, (value / ceiling) * _PANEL_HEIGHT)
        label = f"try {point.get('try_number')} of {point.get('run_id')}: {fmt(value)}"
        classes = f"bar {kind}" if kind else "bar"
        out.append(
            f'<rect class="{classes}" x="{x(i) + step * 0.15:.1f}" y="{top + _PANEL_HEIGHT - height:.1f}" '
            f'width="{step * 0.7:.1f}" height="{height:.1f}"><title>{escape(label)}</title></rect>'
        )
    legend_x = _WIDTH - _RIGHT + 12
    for offset, (css, name, path) in enumerate(
        (
            ("request", "request", _steps(requests, x, y, step)),
            ("limit", "limit", _steps(limits, x, y, step)),
            (
                "recommended",
                "recommended",
                f"M{_LEFT},{y(recommended):.1f} L{_WIDTH - _RIGHT},{y(recommended):.1f}"
                if recommended
                else "",
            ),
        )
    ):
        if not path:
            continue
        out.append(f'<path class="{css}" d="{path}"/>')
        ly = top + 14 + offset * 16
        out.append(f'<line class="{css}" x1="{legend_x}" y1="{ly - 4}" x2="{legend_x + 22}" y2="{ly - 4}"/>')
        out.append(f'<text x="{legend_x + 28}" y="{ly}">{name}</text>')
    return "\n".join(out)


def chart(r: Recommendation) -> str:
    """The SVG chart of one task."""
    height = _TOP + 2 * _PANEL_HEIGHT + _GAP + 20
    memory = _panel(
        r.series,
        top=_TOP,
        title="peak memory per try",
        value_key="peak_memory_bytes",
        request_key="memory_request_bytes",
        limit_key="memory_limit_bytes",
        recommended=float(r.memory_bytes) if r.memory_bytes else None,
        fmt=format_bytes,
    )
    cpu = _panel(
        r.series,
        top=_TOP + _PANEL_HEIGHT + _GAP,
        title="average cpu cores per try",
        value_key="cpu_cores",
        request_key="cpu_request_cores",
        limit_key="cpu_limit_cores",
        recommended=r.cpu_request_cores,
        fmt=format_cpu,
    )
    label = f"usage of {r.dag_id}.{r.task_id} over {r.tries} tries"
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{escape(label)}" '
        f'data-task="{escape(r.dag_id)}.{escape(r.task_id)}">\n{memory}\n{cpu}\n</svg>'
    )


def _section(r: Recommendation) -> str:
    flags = "".join(f'<span class="flag">{escape(f)}</span>' for f in r.flags)
    if r.status == OK:
        rows = [
            ("memory (request = limit)", f"{r.current_requests.get('memory', '-')} → {r.memory}"),
            ("cpu request", f"{r.current_requests.get('cpu', '-')} → {r.cpu_request}"),
            ("cpu limit", f"{r.current_limits.get('cpu', '-')} → {r.cpu_limit or 'none (Kubernetes)'}"),
            ("suggestion", f"<code>resources={escape(resources_literal(r.resources))}</code>"),
            (
                "monthly over-request",
                f"{r.over_request_cpu_hours:.2f} cpu-hours, {r.over_request_gib_hours:.2f} GiB-hours",
            ),
        ]
    else:
        rows = [("recommendation", "not enough history")]
    body = "".join(
        f"<tr><th>{escape(k)}</th><td>{v if k == 'suggestion' else escape(v)}</td></tr>" for k, v in rows
    )
    return (
        f'<section class="task" id="{escape(r.dag_id)}.{escape(r.task_id)}">\n'
        f"<h2>{escape(r.dag_id)}.{escape(r.task_id)} {flags}</h2>\n"
        f'<p class="muted">{escape(r.runtime)}, {r.tries} tries, {r.successful} successful and measured, '
        f"{r.oom_kills} OOM-killed. {escape(r.reason)}</p>\n<table>{body}</table>\n{chart(r)}\n</section>"
    )


def html_report(recommendations: Sequence[Recommendation], *, title: str = "containerkit usage") -> str:
    sections = "\n".join(_section(r) for r in recommendations) or "<p>No usage records.</p>"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>\n'
        f"<body><h1>{escape(title)}</h1>\n"
        f'<p class="muted">{len(recommendations)} tasks, ranked by monthly over-request. '
        "Bars: per-try peak memory / average cpu (red: OOM-killed, amber: failed). "
        "Dashed: request, solid: limit, green: recommended.</p>\n"
        f"{sections}\n</body></html>\n"
    )
