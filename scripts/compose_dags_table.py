#!/usr/bin/env python3
"""Write the table of reference DAGs in the compose stack into ``docker/README.md``, from the DAGs' tags.

The table says which reference DAGs run in ``docker compose`` as they are and which need a registry or
a Kubernetes API first. It is derived from each DAG's ``needs:*`` tags, so it cannot drift from them;
``tests/e2e/test_compose_files.py`` fails when the committed table differs from what this writes:

    python3 scripts/compose_dags_table.py          # rewrite the table in docker/README.md
    python3 scripts/compose_dags_table.py --check  # exit 1 if it is out of date

Standard library only (the tags are read with ``ast``; no DAG is imported).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "docker/README.md"
START, END = "<!-- compose-dags:start (scripts/compose_dags_table.py) -->", "<!-- compose-dags:end -->"
# DAG-level needs the stack does not provide, and what a user adds for them.
ADD = {
    "needs:registry": "a registry: connection `containerkit_registry_default`",
    "needs:kubernetes": "a Kubernetes API: connection `kubernetes_default`",
}
# Task-level needs: the DAG runs; only these tasks skip, with the reason in their log.
SKIPS = ("needs:helm", "needs:trivy", "needs:cluster", "needs:internet")
# Measured, not derived: DAGs whose tags say they run, but which failed when every such DAG was triggered
# in the dev stack (2026-12-02, `make compose-env && docker compose up -d --wait`, one run each; the
# seven that failed for want of the docker CLI, kubernetes-validate or the Helm fixtures in the image,
# or over the task supervisor's DB URL, were fixed and pass). Remove an entry once its cause is fixed;
# the cause is what a user would otherwise trip over.
WORKER_TMP = "bind-mounts a secret file under the worker's /tmp, which the host engine cannot see"
FAILS_IN_COMPOSE = {
    "88_07_03_integration_testing": f"`start_database`: {WORKER_TMP}",
    "88_07_02_startup_testing": f"`start_database`: {WORKER_TMP}",
    "88_06_05_hardcoded_config": f"`run_v1`: {WORKER_TMP}",
}


def dag_tags(path: Path) -> list[str]:
    """The ``tags=[...]`` of the file's reference DAG (the list holding "reference")."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "tags" and isinstance(node.value, ast.List):
            tags = [
                e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            if "reference" in tags:
                return tags
    return []


def row(path: Path) -> str:
    tags = dag_tags(path)
    add = [text for need, text in ADD.items() if need in tags]
    runs = "yes" if not add else "after adding " + " and ".join(add)
    if path.stem in FAILS_IN_COMPOSE:
        runs = f"**no** (measured): {FAILS_IN_COMPOSE[path.stem]}"
    skipped = [f"`{t}`" for t in SKIPS if t in tags]
    compose_only = "yes" if "needs:compose" in tags or _has_compose_tasks(path) else ""
    return f"| `{path.stem}` | {runs} | {', '.join(skipped)} | {compose_only} |"


def _has_compose_tasks(path: Path) -> bool:
    # Task-level needs:compose is not a DAG tag: the task says so in its skip reason.
    return "needs:compose:" in path.read_text()


def render() -> str:
    files = sorted(p for p in (REPO / "dags").glob("*.py") if dag_tags(p))
    runnable = sum(
        1 for p in files if not any(n in dag_tags(p) for n in ADD) and p.stem not in FAILS_IN_COMPOSE
    )
    lines = [
        START,
        f"{runnable} of the {len(files)} reference DAGs run in the stack as they are. Generated from the",
        "DAGs' `needs:*` tags; a DAG that needs a registry or a Kubernetes API fails or skips the tasks that",
        "need it until you add the connection (each DAG's `doc_md` says which). Task-level needs skip only",
        "their tasks, with the reason in the task log. Rows marked **no** failed when run in the stack; the",
        "reason is the first failing task's error.",
        "",
        "| DAG | runs in compose | tasks that skip here | has tasks that run only in compose |",
        "|---|---|---|---|",
        *[row(p) for p in files],
        END,
    ]
    return "\n".join(lines)


def rewrite(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{README}: markers {START!r} ... {END!r} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + render() + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docker/README.md is out of date")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = rewrite(text)
    if args.check:
        if new != text:
            print(f"{README} is out of date: run python3 scripts/compose_dags_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
