"""``containerkit lint``: check manifests, pod templates, Helm values, Dockerfiles, compose files and DAGs.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage or parse errors. Only the loaders
for the kinds of files given are imported (Airflow only for DAG files), so it suits a pre-commit hook.
"""

from __future__ import annotations

import sys

import click

SEVERITIES = ("error", "warning", "info")
FORMAT_NAMES = ("text", "json", "sarif", "junit")


def _split_sets(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--rules",
    "rule_sets",
    metavar="SET,...",
    help="Rule sets to run (default: all), e.g. pss-baseline,pss-restricted,hardened.",
)
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="text", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default="error",
    show_default=True,
    help="Exit 1 when a finding of this severity or worse is found.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when a terminal).")
def lint(
    paths: tuple[str, ...],
    rule_sets: str | None,
    fmt: str,
    fail_on: str,
    output: str | None,
    color: bool | None,
) -> None:
    """Lint PATHS (files or directories) against the containerkit policy rules."""
    from containerkit.policy.engine import rule_sets as known_sets
    from containerkit.policy.lint import lint_paths
    from containerkit.policy.model import Severity
    from containerkit.policy.report import render

    sets = _split_sets(rule_sets)
    if sets is not None:
        unknown = sorted(set(sets) - set(known_sets()))
        if unknown:
            raise click.BadParameter(
                f"unknown rule set(s) {', '.join(unknown)}; known: {', '.join(known_sets())}",
                param_hint="--rules",
            )
    result = lint_paths(paths, sets)
    threshold = Severity(fail_on)
    use_color = (color if color is not None else sys.stdout.isatty()) and output is None and fmt == "text"
    report = render(result, fmt, color=use_color, fail_on=threshold)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(report)
    else:
        click.echo(report, nl=False, color=use_color)
    if result.errors:
        sys.exit(2)
    sys.exit(1 if result.at_or_above(threshold) else 0)
