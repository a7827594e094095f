"""``containerkit recommend``: requests and limits per task from the recorded usage history.

Reads the usage store (``--store``, default the one tasks write to: ``CONTAINERKIT_USAGE_STORE``,
``[containerkit] usage_store`` or ``$AIRFLOW_HOME/containerkit/usage``) and/or exported JSON-lines files
(``--history``), for one task (``--dag-id`` and ``--task-id``), one DAG or everything.

Exit codes: 0 recommendations printed; 1 ``--fail-on`` matched (a flag such as ``oom-killed`` or
``oversized``, for a CI gate); 2 bad input (an unreadable store or history file, bad options).
"""

from __future__ import annotations

from pathlib import Path

import click

EXIT_OK = 0
EXIT_FLAGGED = 1
EXIT_BAD_INPUT = 2
FORMATS = ("table", "json", "patch", "html")
FLAGS = ("oom-killed", "throttled", "oversized")


@click.command("recommend")
@click.option("--store", "stores", multiple=True, help="Usage store directory or URL (repeatable).")
@click.option(
    "--history",
    "histories",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Exported JSON-lines usage records (repeatable).",
)
@click.option("--dag-id", help="Only this DAG.")
@click.option("--task-id", help="Only this task (with --dag-id for one task).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--min-history", type=int, default=5, show_default=True, help="Successful tries needed.")
@click.option("--half-life-days", type=float, default=7.0, show_default=True, help="Weight halves per.")
@click.option("--memory-percentile", type=float, default=90.0, show_default=True)
@click.option("--cpu-percentile", type=float, default=90.0, show_default=True)
@click.option("--margin", type=float, default=0.15, show_default=True, help="Safety margin (memory, cpu).")
@click.option(
    "--fail-on",
    type=click.Choice(FLAGS),
    multiple=True,
    help="Exit 1 when any task carries this flag (repeatable).",
)
def recommend(
    stores: tuple[str, ...],
    histories: tuple[str, ...],
    dag_id: str | None,
    task_id: str | None,
    fmt: str,
    output: str | None,
    min_history: int,
    half_life_days: float,
    memory_percentile: float,
    cpu_percentile: float,
    margin: float,
    fail_on: tuple[str, ...],
) -> None:
    """Recommend requests and limits per container task from its recorded usage."""
    from containerkit.usage import recommend as engine
    from containerkit.usage.store import read_history, store_location

    try:
        options = engine.RecommendOptions(
            memory_percentile=memory_percentile,
            cpu_percentile=cpu_percentile,
            memory_margin=margin,
            cpu_margin=margin,
            min_history=min_history,
            half_life_days=half_life_days,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    sources: list[str] = [*histories, *stores]
    if not sources:
        sources = [store_location()]
    try:
        records = read_history(sources)
    except (OSError, ValueError) as exc:
        click.echo(f"error: cannot read usage history: {exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    answers = engine.recommend(records, dag_id=dag_id, task_id=task_id, options=options)
    if fmt == "json":
        from containerkit.usage.report_text import as_json

        text = as_json(answers) + "\n"
    elif fmt == "patch":
        from containerkit.usage.report_text import patch

        text = patch(answers)
    elif fmt == "html":
        from containerkit.usage.report_html import html_report

        text = html_report(answers)
    else:
        from containerkit.usage.report_text import table

        text = table(answers)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(answers)} recommendations to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if not records:
        click.echo(f"no usage records in {', '.join(map(str, sources))}", err=True)
    flagged = sorted({f"{a.dag_id}.{a.task_id}" for a in answers for f in a.flags if f in fail_on})
    if flagged:
        click.echo(f"flagged ({', '.join(fail_on)}): {', '.join(flagged)}", err=True)
        raise SystemExit(EXIT_FLAGGED)
