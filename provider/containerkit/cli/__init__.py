"""The ``containerkit`` command line: a click group whose subcommands load on demand.

Lazy loading keeps ``containerkit lint`` on a few files fast enough for a pre-commit hook: a
subcommand imports only what it needs (Airflow only when DAG folders are linted).
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from containerkit import __version__

# Subcommand name -> "module:attribute". The only list of subcommands.
SUBCOMMANDS: dict[str, str] = {
    "lint": "containerkit.cli.lint:lint",
    "rules": "containerkit.cli.rules:rules",
    "render": "containerkit.cli.render:render",
    "diagnose": "containerkit.cli.diagnose:diagnose",
    "dev-cluster": "containerkit.cli.dev_cluster:dev_cluster",
    "recommend": "containerkit.cli.recommend:recommend",
    "reap": "containerkit.cli.reap:reap",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        present = [n for n, t in SUBCOMMANDS.items() if importlib.util.find_spec(t.split(":")[0])]
        return sorted(present)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None or not importlib.util.find_spec(target.split(":")[0]):
            return None
        module, attr = target.split(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="containerkit")
def main() -> None:
    """containerkit: lint, render, diagnose, right-size and reap container tasks for Apache Airflow.

    Exit codes: 0 success or clean, 1 findings at or above --fail-on (lint), a diagnosed failure
    (diagnose) or a removal that failed (reap), 2 usage, parse or connection errors.
    """
