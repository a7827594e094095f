"""``containerkit rules``: list the rule registry (the only list of rules) as text, JSON or Markdown."""

from __future__ import annotations

import json

import click


def markdown() -> str:
    """The rules reference page (``docs/rules.md`` is this output, checked by a test)."""
    from containerkit.policy.engine import load_rules
    from containerkit.policy.model import REGISTRY
    from containerkit.policy.rules.pss import PSS_VERSION

    load_rules()
    out = [
        "# containerkit rules",
        "",
        "Generated from the rule registry by `containerkit rules --format markdown`; do not edit by hand.",
        "",
        f"Pod Security Standards rules follow Kubernetes {PSS_VERSION} (`psa_check`: admission check id).",
        "Suppress a rule for one object with a reason: annotation "
        '`containerkit.io/ignore: "<rule-id>: <reason>"` (pods) or '
        "`# containerkit: ignore=<rule-id> <reason>` "
        '(Dockerfile, compose, Helm values); in Airflow, `policy_exemptions={"<rule-id>": "<reason>"}`.',
        "",
    ]
    rules = list(REGISTRY)
    sets: dict[str, None] = {}
    for r in rules:
        sets.setdefault(r.rule_set, None)
    for rule_set in sets:
        members = [r for r in rules if r.rule_set == rule_set]
        out += [
            f"## {rule_set}",
            "",
            "| id | title | severity | applies to | PSA check | peers |",
            "|---|---|---|---|---|---|",
        ]
        for r in members:
            peers = ", ".join(f"{k}: {v}" for k, v in sorted(r.peers.items()))
            out.append(
                f"| [{r.id}](#{r.id.lower()}) | {r.title} | {r.severity.value} | {', '.join(r.targets)} | "
                f"{r.psa_check or ''} | {peers} |"
            )
        out.append("")
        for r in members:
            out += [
                f"### {r.id}",
                "",
                f"**{r.title}** ({r.severity.value})",
                "",
                r.rationale,
                "",
                f"Fix: {r.fix}",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


@click.command("rules")
@click.option(
    "--format", "fmt", type=click.Choice(("text", "json", "markdown")), default="text", show_default=True
)
@click.option("--set", "rule_set", default=None, help="Only this rule set.")
def rules(fmt: str, rule_set: str | None) -> None:
    """List every rule: id, severity, rule set, title (and rationale/fix in json and markdown)."""
    from containerkit.policy.engine import load_rules
    from containerkit.policy.model import REGISTRY
    from containerkit.policy.report.json_format import rule_dict

    load_rules()
    selected = [r for r in REGISTRY if rule_set is None or r.rule_set == rule_set]
    if fmt == "json":
        click.echo(json.dumps([rule_dict(r) for r in selected], indent=2))
    elif fmt == "markdown":
        click.echo(markdown(), nl=False)
    else:
        for r in selected:
            click.echo(f"{r.id:<10} {r.severity.value:<8} {r.rule_set:<15} {r.title}")
