"""The ``dockerfile`` rule set: each rule on passing and failing Dockerfiles, lines, suppressions, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from containerkit.policy.engine import evaluate
from containerkit.policy.model import REGISTRY, Finding
from containerkit.policy.sources.dockerfile import load
from containerkit.policy.sources.located import SourceError

GOOD_TAIL = 'USER 50000\nCMD ["python", "-m", "app"]\n'


def lint(tmp_path: Path, text: str, name: str = "Dockerfile") -> list[tuple[str, int | None, Finding]]:
    path = tmp_path / name
    path.write_text(text)
    [target] = load(path)
    return [(f.rule_id, target.data.line_of(f.path), f) for f in evaluate(target)]


def lines_of(results: list[tuple[str, int | None, Finding]], rule_id: str) -> list[int | None]:
    return [line for rid, line, _ in results if rid == rule_id]


CASES = [
    # (rule, Dockerfile, lines where the rule must fire: [] = must pass)
    ("DF-001", "FROM python:3.11-slim\n" + GOOD_TAIL, []),
    ("DF-001", "FROM python@sha256:" + "a" * 64 + "\n" + GOOD_TAIL, []),
    ("DF-001", "FROM python\n" + GOOD_TAIL, [1]),
    ("DF-001", "FROM python:latest\n" + GOOD_TAIL, [1]),
    ("DF-001", "FROM registry:5000/team/python\n" + GOOD_TAIL, [1]),
    ("DF-001", "ARG BASE=python:3.11-slim\nFROM ${BASE}\n" + GOOD_TAIL, []),
    ("DF-001", "ARG BASE=python\nFROM ${BASE}\n" + GOOD_TAIL, [2]),
    ("DF-001", "ARG BASE\nFROM $BASE\n" + GOOD_TAIL, [2]),
    ("DF-001", "FROM python:3.11 AS build\nRUN true\nFROM build\n" + GOOD_TAIL, []),
    ("DF-001", "FROM scratch\nCOPY app /app\n" + GOOD_TAIL, []),
    ("DF-001", "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nFROM alpine\n" + GOOD_TAIL, [2]),
    ("DF-002", "FROM python:3.11-slim\n" + GOOD_TAIL, [1]),
    ("DF-002", "FROM python:3.11@sha256:" + "b" * 64 + "\n" + GOOD_TAIL, []),
    ("DF-003", 'FROM python:3.11\nCMD ["x"]\n', [1]),
    ("DF-003", 'FROM python:3.11\nUSER root\nCMD ["x"]\n', [2]),
    ("DF-003", "FROM python:3.11\nUSER 0:0\n", [2]),
    ("DF-003", "FROM python:3.11\nUSER airflow\n", []),
    ("DF-003", "FROM python:3.11\nUSER 50000:0\n", []),
    ("DF-003", "FROM python:3.11\nUSER 1000\nRUN true\nUSER root\n", [4]),
    ("DF-003", "FROM python:3.11 AS base\nUSER 1000\nFROM base\nRUN true\n", []),
    ("DF-003", "FROM python:3.11 AS b\nUSER 1000\nFROM python:3.11\nRUN true\n", [3]),
    ("DF-003", "FROM python:3.11\nARG UID=0\nUSER ${UID}\n", [3]),
    ("DF-003", "FROM python:3.11\nARG UID=50000\nUSER ${UID}\n", []),
    ("DF-004", "FROM python:3.11\nENV DB_PASSWORD=hunter2\n" + GOOD_TAIL, [2]),
    ("DF-004", "FROM python:3.11\nARG API_TOKEN=abc123\n" + GOOD_TAIL, [2]),
    ("DF-004", "FROM python:3.11\nENV DSN_URL=postgresql://u:pw@db/x\n" + GOOD_TAIL, [2]),
    ("DF-004", "FROM python:3.11\nARG API_TOKEN\nENV PASSWORD_FILE=/run/secrets/pw\n" + GOOD_TAIL, []),
    ("DF-004", "FROM python:3.11\nENV AIRFLOW__CORE__FERNET_KEY_CMD='cat /run/secrets/f'\n" + GOOD_TAIL, []),
    ("DF-005", "FROM python:3.11\nADD app.py /app/\n" + GOOD_TAIL, [2]),
    ("DF-005", "FROM python:3.11\nADD rootfs.tar.gz /\nADD https://x.org/f.whl /tmp/\n" + GOOD_TAIL, []),
    ("DF-005", "FROM python:3.11\nCOPY app.py /app/\n" + GOOD_TAIL, []),
    ("DF-006", "FROM python:3.11\nUSER 1\nCMD python -m app\n", [3]),
    ("DF-006", "FROM python:3.11\nUSER 1\nENTRYPOINT /bin/tini\n", [3]),
    ("DF-006", 'FROM python:3.11\nUSER 1\nENTRYPOINT ["/bin/tini", "--"]\nCMD ["x"]\n', []),
    (
        "DF-007",
        "FROM d:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
        + GOOD_TAIL,
        [2],
    ),
    (
        "DF-007",
        "FROM d:12\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends curl \\\n"
        " && rm -rf /var/lib/apt/lists/*\n" + GOOD_TAIL,
        [],
    ),
    (
        "DF-008",
        "FROM d:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n" + GOOD_TAIL,
        [2],
    ),
    (
        "DF-008",
        "FROM d:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n"
        "RUN rm -rf /var/lib/apt/lists/*\n" + GOOD_TAIL,
        [2],
    ),
    (
        "DF-008",
        "FROM d:12\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && "
        "apt-get install -y --no-install-recommends curl\n" + GOOD_TAIL,
        [],
    ),
    ("DF-009", "FROM python:3.11\nRUN pip install requests\n" + GOOD_TAIL, [2]),
    ("DF-009", "FROM python:3.11\nRUN python -m pip install -r req.txt\n" + GOOD_TAIL, [2]),
    ("DF-009", "FROM python:3.11\nRUN pip install --no-cache-dir requests\n" + GOOD_TAIL, []),
    ("DF-009", "FROM python:3.11\nENV PIP_NO_CACHE_DIR=1\nRUN pip install requests\n" + GOOD_TAIL, []),
    (
        "DF-009",
        "FROM python:3.11\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n" + GOOD_TAIL,
        [],
    ),
    ("DF-009", "FROM python:3.11\nRUN uv pip install x\n" + GOOD_TAIL, [2]),
    ("DF-009", "FROM python:3.11\nRUN uv pip install --no-cache x\n" + GOOD_TAIL, []),
    ("DF-009", "FROM python:3.11 AS b\nENV PIP_NO_CACHE_DIR=1\nFROM b\nRUN pip install x\n" + GOOD_TAIL, []),
    ("DF-010", "FROM python:3.11\nEXPOSE 8080\n" + GOOD_TAIL, [1]),
    ("DF-010", "FROM python:3.11\nLABEL io.containerkit.service=true\n" + GOOD_TAIL, [1]),
    ("DF-010", "FROM python:3.11\nEXPOSE 8080\nHEALTHCHECK NONE\n" + GOOD_TAIL, [3]),
    (
        "DF-010",
        'FROM python:3.11\nEXPOSE 8080\nHEALTHCHECK CMD ["curl", "-f", "localhost"]\n' + GOOD_TAIL,
        [],
    ),
    ("DF-010", "FROM python:3.11\n" + GOOD_TAIL, []),
    ("DF-011", "FROM d:12\nRUN sudo make install\n" + GOOD_TAIL, [2]),
    ("DF-011", "FROM d:12\nRUN cd /x && DEBIAN_FRONTEND=noninteractive sudo make\n" + GOOD_TAIL, [2]),
    ("DF-011", "FROM d:12\nRUN echo sudo-free\n" + GOOD_TAIL, []),
    ("DF-012", "FROM d:12\nWORKDIR app\n" + GOOD_TAIL, [2]),
    ("DF-012", "FROM d:12\nWORKDIR /opt/app\nARG HOME_DIR=/home/x\nWORKDIR $HOME_DIR\n" + GOOD_TAIL, []),
]


@pytest.mark.parametrize(
    ("rule_id", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(tmp_path: Path, rule_id: str, text: str, expected: list[int]) -> None:
    assert lines_of(lint(tmp_path, text), rule_id) == expected


def test_every_dockerfile_rule_has_a_failing_and_a_passing_case() -> None:
    ids = {r.id for r in REGISTRY.in_set("dockerfile")}
    assert ids == {f"DF-{n:03d}" for n in range(1, 13)}
    assert {c[0] for c in CASES if c[2]} == ids
    assert {c[0] for c in CASES if not c[2]} == ids
    for r in REGISTRY.in_set("dockerfile"):
        assert r.targets == ("Dockerfile",) and r.rationale and r.fix


def test_clean_multistage_file_has_no_findings(tmp_path: Path) -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11-slim@sha256:" + "c" * 64 + "\n"
        "FROM ${BASE} AS build\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends gcc \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "RUN --mount=type=cache,target=/root/.cache/pip pip install --prefix=/install app\n"
        "FROM ${BASE}\n"
        "COPY --from=build /install /usr/local\n"
        "WORKDIR /opt/app\n"
        "USER 50000:0\n"
        'ENTRYPOINT ["python", "-m", "app"]\n'
    )
    assert lint(tmp_path, text) == []


def test_heredoc_run_is_one_instruction(tmp_path: Path) -> None:
    text = "FROM d:12\nRUN <<EOF\nset -e\napt-get install -y curl\nEOF\n" + GOOD_TAIL
    results = lint(tmp_path, text)
    assert lines_of(results, "DF-007") == [2]
    assert lines_of(results, "DF-008") == [2]


def test_suppression_before_instruction_covers_that_instruction_only(tmp_path: Path) -> None:
    text = (
        "FROM d:12\n"
        "# containerkit: ignore=DF-009 wheels are cached by the CI runner image\n"
        "RUN pip install a\n"
        "RUN pip install b\n" + GOOD_TAIL
    )
    results = lint(tmp_path, text)
    assert lines_of(results, "DF-009") == [4]
    assert "CK001" not in {r for r, _, _ in results}


def test_file_top_suppression_covers_the_whole_file(tmp_path: Path) -> None:
    text = (
        "# containerkit: ignore=DF-009,DF-002 build cache is discarded by the multi-stage copy\n"
        "FROM d:12\nRUN pip install a\nRUN pip install b\n" + GOOD_TAIL
    )
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    [target] = load(path)
    assert target.suppressions == {
        "DF-009": "build cache is discarded by the multi-stage copy",
        "DF-002": "build cache is discarded by the multi-stage copy",
    }
    assert {f.rule_id for f in evaluate(target)} == set()


def test_suppression_without_reason_is_not_honoured_and_reported(tmp_path: Path) -> None:
    text = "FROM d:12\n# containerkit: ignore=DF-009\nRUN pip install a\n" + GOOD_TAIL
    results = lint(tmp_path, text)
    assert lines_of(results, "DF-009") == [3]
    assert [f.message for r, _, f in results if r == "CK001"] == [
        "suppression of DF-009 has no reason, so it is not applied"
    ]


def test_suppression_of_unknown_rule_is_reported(tmp_path: Path) -> None:
    text = "FROM d:12\n# containerkit: ignore=DF-999 typo\nRUN true\n" + GOOD_TAIL
    assert "CK002" in {r for r, _, _ in lint(tmp_path, text)}


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("RUN true\n", 1, "before the first FROM"),
        ("FROM d:12\nFROBNICATE x\n", 2, "unknown Dockerfile instruction"),
        ("FROM d:12\nRUN <<EOF\necho\n", 2, "never closed"),
        ("# just a comment\n", None, "no FROM"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, line: int | None, needle: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(SourceError) as err:
        load(path)
    assert err.value.line == line and err.value.file == str(path)
    assert needle in str(err.value) and str(path) in str(err.value)
