"""Recommendation outputs (table, JSON, patch, HTML structure) and the ``containerkit recommend`` CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from containerkit.cli import main
from containerkit.usage.recommend import recommend
from containerkit.usage.report_html import html_report
from containerkit.usage.report_text import patch, table
from containerkit.usage.store import UsageStore, write_lines

sys.path.insert(0, str(Path(__file__).parent))
from test_usage_recommend import tries

HISTORY = [
    *tries("steady", [300] * 8),
    *tries("oversized", [500] * 5, size="l", cpu_s=60.0, cpu_peak=0.15),
    *tries("short", [300] * 4),
    *tries("k8s", [300] * 8, runtime="kubernetes"),
]

TABLE = """\
TASK           RUNTIME     TRIES  OK  MEMORY          CPU REQUEST   CPU LIMIT     PRESET              FLAGS      OVER CPU-H/MO  OVER GIB-H/MO
dag.oversized  docker      5      5   4Gi -> 575Mi    1 -> 115m     2 -> 173m     m                   oversized  4.42           17.19
dag.k8s        kubernetes  8      8   512Mi -> 345Mi  250m -> 230m  500m -> none  s                   -          0.10           0.81
dag.steady     docker      8      8   512Mi -> 345Mi  250m -> 230m  500m -> 345m  s                   -          0.10           0.81
dag.short      docker      4      4   512Mi           250m          500m          not enough history  -          0.00           0.00
"""  # noqa: E501

PATCH_STEADY = """\
@@ dag :: task_id='steady' (docker, 8 tries) @@
-    resources=<requests cpu=250m memory=512Mi; limits cpu=500m memory=512Mi>,
+    resources={"preset": "s", "memory": "345Mi"},
# memory: p90 of 8 peaks 300Mi + 15 %; cpu: p90 of per-try average 200m + 15 %"""


def test_table_ranks_by_over_request_and_says_not_enough_history() -> None:
    assert table(recommend(HISTORY)) == TABLE


def test_patch_suggests_resources_per_task() -> None:
    text = patch(recommend(HISTORY))
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 4
    assert PATCH_STEADY in blocks
    [oversized] = [b for b in blocks if "'oversized'" in b]
    assert '+    resources={"preset": "m", "memory": "575Mi", "requests": {"cpu": "115m"}},' in oversized
    assert "# flags: oversized" in oversized
    [k8s] = [b for b in blocks if "'k8s'" in b]
    assert "no cpu limit needed on Kubernetes" in k8s
    [short] = [b for b in blocks if "'short'" in b]
    assert "+    resources" not in short and "# not enough history: 4 successful" in short


def test_html_has_one_chart_per_task_and_no_external_resources() -> None:
    page = html_report(recommend(HISTORY))
    assert page.count('<svg class="chart"') == 4
    assert re.findall(r'data-task="([^"]+)"', page) == ["dag.oversized", "dag.k8s", "dag.steady", "dag.short"]
    assert not re.search(r"(src|href)=", page)  # self-contained: nothing to fetch
    assert "<script" not in page
    # an OOM-killed try shows as a red bar in both panels (memory and cpu)
    oom = html_report(recommend(tries("oom", [100, 128, 110, 105, 128, 120, 115], size="xs", oom={1, 4})))
    assert oom.count('class="bar oom"') == 2 * 2


def test_cli_reads_a_store_and_exported_history(tmp_path: Path) -> None:
    store = UsageStore(tmp_path / "store")
    for record in tries("steady", [300] * 8):
        store.write(record)
    exported = tmp_path / "more.jsonl"
    write_lines(tries("oversized", [500] * 5, size="l", cpu_s=60.0, cpu_peak=0.15), exported)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["recommend", "--store", str(tmp_path / "store"), "--history", str(exported), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(r["task_id"], r["memory"], r["cpu_request"]) for r in data["recommendations"]] == [
        ("oversized", "575Mi", "115m"),
        ("steady", "345Mi", "230m"),
    ]
    one = runner.invoke(
        main, ["recommend", "--store", str(tmp_path / "store"), "--dag-id", "dag", "--task-id", "steady"]
    )
    assert one.exit_code == 0 and one.stdout.count("dag.") == 1


def test_cli_fail_on_a_flag_exits_1_and_names_the_task(tmp_path: Path) -> None:
    exported = tmp_path / "h.jsonl"
    write_lines(HISTORY, exported)
    result = CliRunner().invoke(main, ["recommend", "--history", str(exported), "--fail-on", "oversized"])
    assert result.exit_code == 1
    assert "flagged (oversized): dag.oversized" in result.stderr
    clean = CliRunner().invoke(main, ["recommend", "--history", str(exported), "--fail-on", "oom-killed"])
    assert clean.exit_code == 0


def test_cli_bad_input_exits_2_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dag_id": "d"}\n')
    result = CliRunner().invoke(main, ["recommend", "--history", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1: not a usage record" in result.stderr
    option = CliRunner().invoke(main, ["recommend", "--history", str(bad), "--min-history", "0"])
    assert option.exit_code == 2 and "min_history=0" in option.output


def test_cli_html_writes_a_file(tmp_path: Path) -> None:
    exported = tmp_path / "h.jsonl"
    write_lines(HISTORY, exported)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["recommend", "--history", str(exported), "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0
    assert out.read_text().count('<svg class="chart"') == 4


def test_python_api_reads_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from containerkit.usage.recommend import recommend_stored

    monkeypatch.setenv("CONTAINERKIT_USAGE_STORE", str(tmp_path))
    for record in [*tries("steady", [300] * 8), *tries("short", [300] * 2)]:
        UsageStore().write(record)
    assert [(r.task_id, r.memory) for r in recommend_stored()] == [("steady", "345Mi"), ("short", None)]
    assert [r.task_id for r in recommend_stored(dag_id="dag", task_id="short")] == ["short"]
