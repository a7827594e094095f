"""``containerkit lint``: check manifests, pod templates, Helm values, Dockerfiles, compose files and DAGs.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage or parse errors (a file that cannot
be read, a wrong field type, an input over a limit; the other files are still linted and reported).
Nothing else exits 1, and no input prints a traceback. Only the loaders for the kinds of files given are
imported (Airflow only for DAG files), so it suits a pre-commit hook.
"""

from __future__ import annotations

import sys
from typing import Any

import click

SEVERITIES = ("error", "warning", "info")
# The input limits' defaults (``policy.sources.yaml_lines.Limits``), repeated so ``--help`` needs no import;
# a unit test keeps them equal.
DEFAULTS = {
    "max_file_bytes": 4 * 1024 * 1024,
    "max_documents": 1000,
    "max_depth": 64,
    "max_alias_nodes": 10_000,
}
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
@click.option(
    "--fail-on-unknown",
    is_flag=True,
    help="Make documents of unknown kinds (custom resources without a pod path) errors (exit 2).",
)
@click.option(
    "--skip-unknown-files",
    is_flag=True,
    help="Skip (and report) named files lint cannot read instead of failing: for pre-commit hooks.",
)
@click.option(
    "--pod-paths",
    "pod_paths_file",
    type=click.Path(dir_okay=False),
    help="YAML list of {kind, group, path, style} saying where custom resources keep their pods.",
)
@click.option(
    "--project-root",
    type=click.Path(file_okay=False, exists=True),
    help="Make report file URIs relative to this folder (default: the git root, else the working folder).",
)
@click.option(
    "--max-file-size",
    type=click.IntRange(min=1),
    default=DEFAULTS["max_file_bytes"],
    show_default=True,
    help="Bytes per file; bigger files are refused unread.",
)
@click.option(
    "--max-documents",
    type=click.IntRange(min=1),
    default=DEFAULTS["max_documents"],
    show_default=True,
    help="YAML documents per file.",
)
@click.option(
    "--max-depth",
    type=click.IntRange(min=1, max=500),
    default=DEFAULTS["max_depth"],
    show_default=True,
    help="Nesting depth of mappings and lists.",
)
@click.option(
    "--max-alias-nodes",
    type=click.IntRange(min=0),
    default=DEFAULTS["max_alias_nodes"],
    show_default=True,
    help="Values one document may reach again through YAML aliases and merge keys.",
)
def lint(
    paths: tuple[str, ...],
    rule_sets: str | None,
    fmt: str,
    fail_on: str,
    output: str | None,
    color: bool | None,
    fail_on_unknown: bool,
    skip_unknown_files: bool,
    pod_paths_file: str | None,
    project_root: str | None,
    max_file_size: int,
    max_documents: int,
    max_depth: int,
    max_alias_nodes: int,
) -> None:
    """Lint PATHS (files or directories) against the containerkit policy rules."""
    from containerkit.policy.engine import rule_sets as known_sets
    from containerkit.policy.lint import LintOptions, lint_paths
    from containerkit.policy.model import Severity
    from containerkit.policy.report import render
    from containerkit.policy.sources.located import SourceError
    from containerkit.policy.sources.yaml_lines import Limits

    limits = Limits(
        max_file_bytes=max_file_size,
        max_documents=max_documents,
        max_depth=max_depth,
        max_alias_nodes=max_alias_nodes,
    )
    extra: tuple[Any, ...] = ()
    if pod_paths_file:
        from containerkit.policy.sources.pod_paths import load_config

        try:
            extra = tuple(load_config(pod_paths_file))
        except SourceError as exc:
            raise click.BadParameter(str(exc), param_hint="--pod-paths") from None

    sets = _split_sets(rule_sets)
    if sets is not None:
        unknown = sorted(set(sets) - set(known_sets()))
        if unknown:
            raise click.BadParameter(
                f"unknown rule set(s) {', '.join(unknown)}; known: {', '.join(known_sets())}",
                param_hint="--rules",
            )
    options = LintOptions(
        limits=limits, pod_paths=extra, fail_on_unknown=fail_on_unknown, skip_unknown_files=skip_unknown_files
    )
    result = lint_paths(paths, sets, options)
    result.project_root = project_root
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
