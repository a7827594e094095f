"""The HTML usage report as a person sees it: rendered by headless Debian ``chromium``.

The report itself has no script. The test appends a probe script to a copy of it that measures what the
browser laid out (each chart's box, its bars) and writes that into the DOM, which ``--dump-dom`` prints.
Every console message (an error, a blocked resource) is printed by ``--enable-logging=stderr`` as an
``INFO:CONSOLE`` line; a page that logs one on purpose proves the check sees them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from containerkit.usage.recommend import recommend
from containerkit.usage.report_html import html_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_usage_recommend import tries

PROBE = """<pre id="probe"></pre><script>
const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
  const box = svg.getBoundingClientRect();
  const bars = [...svg.querySelectorAll("rect.bar")].filter(r => r.getBoundingClientRect().height > 0);
  return {task: svg.dataset.task, width: box.width, height: box.height, bars: bars.length,
          section: svg.closest("section").id};
});
document.getElementById("probe").textContent = JSON.stringify(charts);
</script></body>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=600, check=False
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian chromium is not installed and `apt-get install -y chromium` did not provide it")
    return found


def render(chromium: str, page: Path) -> tuple[str, list[str]]:
    """(the DOM after load, the console messages)."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,2000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


def test_console_messages_are_seen(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "noisy.html"
    page.write_text('<html><body><script>console.error("probe-error-42")</script></body></html>')
    _, console = render(chromium, page)
    assert any("probe-error-42" in line for line in console), console


def test_report_renders_one_chart_per_task_without_console_errors(chromium: str, tmp_path: Path) -> None:
    history = [
        *tries("steady", [300] * 8),
        *tries("oom", [100, 128, 110, 105, 128, 120, 115], size="xs", oom={1, 4}),
        *tries("short", [300] * 3),
    ]
    report = html_report(recommend(history))
    page = tmp_path / "report.html"
    page.write_text(report.replace("</body>", PROBE, 1))
    dom, console = render(chromium, page)
    assert console == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, dom[:500]
    charts = json.loads(match.group(1))
    assert sorted(c["task"] for c in charts) == ["dag.oom", "dag.short", "dag.steady"]
    for chart in charts:
        assert chart["section"] == chart["task"]  # each chart sits in its task's section
        assert chart["width"] > 500 and chart["height"] > 300, chart
    # a bar per try in each of the two panels (memory, cpu), all laid out with a visible height
    assert {c["task"]: c["bars"] for c in charts} == {"dag.steady": 16, "dag.oom": 14, "dag.short": 6}
