"""``containerkit diagnose``: input detection, output and exit codes, on recorded Docker and pod fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from containerkit.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOCKER = FIXTURES / "docker"
KUBERNETES = FIXTURES / "kubernetes"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diagnose", *args], input=stdin)
    return result.exit_code, result.output


def test_docker_wrapper_with_logs_is_diagnosed_with_exit_1() -> None:
    code, out = run(str(DOCKER / "oom_killed.json"))
    assert code == 1
    assert out.startswith("OOMKilled: ") and "16Mi" in out


def test_plain_docker_inspect_list_and_separate_logs_file(tmp_path: Path) -> None:
    case = json.loads((DOCKER / "read_only_fs.json").read_text())
    inspect_file = tmp_path / "inspect.json"
    inspect_file.write_text(json.dumps([case["inspect"]]))  # what `docker inspect <id>` prints
    logs_file = tmp_path / "logs.txt"
    logs_file.write_text(case["logs"])

    code, out = run(str(inspect_file), "--logs", str(logs_file))
    assert code == 1 and out.startswith("ReadOnlyFilesystem: ")
    code, out = run(str(inspect_file))  # without logs only the exit code is known
    assert code == 1 and out.startswith("NonZeroExit: ")


def test_healthy_container_exits_0() -> None:
    code, out = run(str(DOCKER / "success.json"))
    assert code == 0 and "Docker: no failure found" in out


def test_pod_with_events_and_logs_uses_the_kubernetes_diagnosis() -> None:
    code, out = run(str(KUBERNETES / "oomkilled.json"), "--format", "json")
    assert code == 1
    payload = json.loads(out)
    assert payload["kind"] == "Pod" and payload["failed"] is True
    assert payload["diagnosis"]["cause"] == "OOMKilled"


def test_pod_as_yaml_with_events_beside_it_from_stdin() -> None:
    case = json.loads((KUBERNETES / "image_pull_unauthorized.json").read_text())
    document = {**case["pod"], "events": {"kind": "EventList", "items": case["events"]}}
    code, out = run("-", stdin=yaml.safe_dump(document))
    assert code == 1
    assert out.startswith("ImagePullBackOff:unauthorized")


def test_succeeded_pod_exits_0() -> None:
    code, out = run(str(KUBERNETES / "succeeded.json"), "--format", "json")
    assert code == 0 and json.loads(out) == {"kind": "Pod", "failed": False, "diagnosis": None}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json: [", "neither JSON nor YAML"),
        ('{"kind": "Deployment", "spec": {}}', "not a pod"),
        ("[1, 2]", "expected one object"),
        ('"text"', "expected a pod or a docker inspect object"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out = run(str(path))
    assert code == 2
    assert message in out


def test_missing_file_exits_2(tmp_path: Path) -> None:
    code, out = run(str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in out
