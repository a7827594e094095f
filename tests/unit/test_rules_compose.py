"""The ``compose`` rule set: rules on passing and failing services, anchors/merges, lines, suppressions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from containerkit.policy.engine import evaluate
from containerkit.policy.model import REGISTRY, Finding, Target
from containerkit.policy.sources.compose import load
from containerkit.policy.sources.located import SourceError

# A service that passes every rule; cases override one key at a time.
GOOD = {
    "image": "containerkit/airflow:3.3.2",
    "user": '"${AIRFLOW_UID:-50000}:0"',
    "healthcheck": '{test: ["CMD", "true"], interval: 10s}',
    "deploy": "{resources: {limits: {memory: 1g, cpus: '1'}}}",
    "restart": "unless-stopped",
    "logging": '{driver: json-file, options: {max-size: "10m", max-file: "3"}}',
}


def service(**overrides: str | None) -> str:
    keys = {**GOOD, **overrides}
    body = "".join(f"    {k}: {v}\n" for k, v in keys.items() if v is not None)
    return "services:\n  app:\n" + body


def lint_file(path: Path) -> list[tuple[Target, Finding, int | None]]:
    out = []
    for target in load(path):
        for f in evaluate(target):
            out.append((target, f, target.data.line_of(f.path)))
    return out


def lint(
    tmp_path: Path, text: str, name: str = "docker-compose.yaml"
) -> list[tuple[Target, Finding, int | None]]:
    path = tmp_path / name
    path.write_text(text)
    return lint_file(path)


def lines(results: list[tuple[Target, Finding, int | None]], rule_id: str) -> list[int | None]:
    return [line for _, f, line in results if f.rule_id == rule_id]


CASES = [
    ("CMP-001", service(), []),
    ("CMP-001", service(image="postgres"), [3]),
    ("CMP-001", service(image="postgres:latest"), [3]),
    ("CMP-001", service(image="localhost:5000/pg"), [3]),
    ("CMP-001", service(image="${PG_IMAGE:-postgres:16.4}"), []),
    ("CMP-001", service(image="${PG_IMAGE:-postgres}"), [3]),
    ("CMP-001", service(image="${PG_IMAGE}"), [3]),
    ("CMP-001", service(image=None, build="."), []),
    ("CMP-001", service(image="pg@sha256:" + "a" * 64), []),
    ("CMP-002", service(), []),
    ("CMP-002", service(user=None), [2]),
    ("CMP-002", service(user="root"), [4]),
    ("CMP-002", service(user='"0:0"'), [4]),
    ("CMP-002", service(user='"${UID:-0}"'), [4]),
    ("CMP-002", service(user="postgres"), []),
    ("CMP-003", service(privileged="true"), [9]),
    ("CMP-003", service(privileged="false"), []),
    ("CMP-004", service(network_mode="host", pid="host"), [9, 10]),
    ("CMP-004", service(network_mode="bridge", ipc="shareable"), []),
    ("CMP-005", service(volumes='["/var/run/docker.sock:/var/run/docker.sock"]'), [9]),
    (
        "CMP-005",
        service(volumes="[{type: bind, source: /run/docker.sock, target: /var/run/docker.sock}]"),
        [9],
    ),
    ("CMP-005", service(volumes='["./dags:/opt/airflow/dags:ro", "logs:/opt/airflow/logs"]'), []),
    ("CMP-006", service(healthcheck=None), [2]),
    ("CMP-006", service(healthcheck="{disable: true}"), [5]),
    ("CMP-006", service(), []),
    ("CMP-007", service(deploy=None), [2, 2]),
    ("CMP-007", service(deploy=None, mem_limit="1g", cpus="'0.5'"), []),
    ("CMP-007", service(deploy="{resources: {limits: {memory: 1g}}}"), [2]),
    ("CMP-008", service(environment="{DB_PASSWORD: hunter2}"), [9]),
    ("CMP-008", service(environment='["API_TOKEN=abc123"]'), [9]),
    ("CMP-008", service(environment="{SQL_CONN: 'postgresql://airflow:airflow@pg/airflow'}"), [9]),
    ("CMP-008", service(environment="{FERNET_KEY: '${FERNET_KEY:-c2VjcmV0}'}"), [9]),
    (
        "CMP-008",
        service(
            environment="{FERNET_KEY: '${FERNET_KEY}', JWT_SECRET: '${JWT:?set it}', PW: '', "
            "SQL_CONN: 'postgresql://airflow:${PG_PASSWORD}@pg/airflow', PASSWORD_FILE: /run/secrets/pw}"
        ),
        [],
    ),
    ("CMP-008", service(image=None, build="{context: ., args: {GITHUB_TOKEN: ghp_abc}}"), [8]),
    ("CMP-009", service(ports='["8080:8080"]'), [9]),
    ("CMP-009", service(ports='["8080"]'), [9]),
    ("CMP-009", service(ports='["0.0.0.0:8080:8080"]'), [9]),
    ("CMP-009", service(ports='["127.0.0.1:${PORT:-8080}:8080", "[::1]:9090:9090"]'), []),
    ("CMP-009", service(ports='["${BIND:-127.0.0.1}:8080:8080"]'), []),
    ("CMP-009", service(ports="[{target: 8080, published: 8080, host_ip: 127.0.0.1}]"), []),
    ("CMP-009", service(ports="[{target: 8080, published: 8080}]"), [9]),
    ("CMP-010", service(restart=None), [2]),
    ("CMP-010", service(restart='"no"'), [7]),
    ("CMP-010", service(restart="on-failure"), []),
    ("CMP-011", service(logging=None), [2]),
    ("CMP-011", service(logging="{driver: json-file}"), [8]),
    ("CMP-011", service(logging="{driver: json-file, options: {max-size: 10m}}"), [8]),
    ("CMP-011", service(logging="{driver: local}"), []),
]


@pytest.mark.parametrize(
    ("rule_id", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(tmp_path: Path, rule_id: str, text: str, expected: list[int]) -> None:
    assert lines(lint(tmp_path, text), rule_id) == expected


def test_every_compose_rule_has_a_failing_and_a_passing_case() -> None:
    ids = {r.id for r in REGISTRY.in_set("compose")}
    assert ids == {f"CMP-{n:03d}" for n in range(1, 12)}
    assert {c[0] for c in CASES if c[2]} == ids
    assert {c[0] for c in CASES if not c[2]} == ids


def test_ports_in_production_file_are_not_checked(tmp_path: Path) -> None:
    text = service(ports='["8080:8080"]')
    assert lines(lint(tmp_path, text, "docker-compose.prod.yaml"), "CMP-009") == []
    assert lines(lint(tmp_path, "x-containerkit: {environment: production}\n" + text), "CMP-009") == []
    assert lines(
        lint(tmp_path, "x-containerkit: {environment: dev}\n" + text, "compose.prod.yaml"), "CMP-009"
    ) == [10]


AIRFLOW_STYLE = textwrap.dedent(
    """\
    x-logging: &logging
      driver: json-file
      options: {max-size: "10m", max-file: "3"}
    x-airflow-common: &airflow-common
      image: ${AIRFLOW_IMAGE_NAME:-containerkit/airflow:3.3.2}
      environment: &airflow-common-env
        AIRFLOW__CORE__EXECUTOR: CeleryExecutor
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: postgresql+psycopg2://airflow:airflow@postgres/airflow
      volumes:
        - ./dags:/opt/airflow/dags
        # containerkit: ignore=CMP-005 the worker starts task containers through the engine
        - /var/run/docker.sock:/var/run/docker.sock
      user: "${AIRFLOW_UID:-50000}:0"
      logging: *logging
      restart: always
      deploy: {resources: {limits: {memory: 2g, cpus: "1"}}}
    services:
      airflow-init:
        <<: *airflow-common
        command: version
      airflow-worker:
        <<: *airflow-common
        healthcheck: {test: ["CMD", "true"]}
        environment:
          <<: *airflow-common-env
          DUMB_INIT_SETSID: "0"
        depends_on:
          airflow-init: {condition: service_completed_successfully}
      scheduler:  # containerkit: ignore=CMP-006 probed by the external monitor
        <<: *airflow-common
        privileged: true
    """
)


def test_anchors_and_merges_resolve_with_lines_in_the_anchor_block(tmp_path: Path) -> None:
    results = lint(tmp_path, AIRFLOW_STYLE)
    by_service: dict[str, set[tuple[str, int | None]]] = {}
    for target, f, line in results:
        by_service.setdefault(target.obj.name, set()).add((f.rule_id, line))
    # The literal DB password lives in the anchor block (line 8) and reaches every service through <<.
    for name in ("airflow-init", "airflow-worker", "scheduler"):
        assert ("CMP-008", 8) in by_service[name]
    # airflow-init is one-shot (service_completed_successfully): no healthcheck/restart demanded.
    assert not {r for r, _ in by_service["airflow-init"]} & {"CMP-006", "CMP-010"}
    # The anchored socket mount carries a reasoned suppression: no service reports it.
    assert all(r != "CMP-005" for _, f, _ in results for r in [f.rule_id])
    # scheduler: trailing suppression on the service key covers the service; privileged still reported.
    assert ("CMP-003", 31) in by_service["scheduler"]
    assert "CMP-006" not in {r for r, _ in by_service["scheduler"]}
    assert {t.obj.name: t.obj.line for t, _, _ in results} == {
        "airflow-init": 18,
        "airflow-worker": 21,
        "scheduler": 29,
    }


def test_scoped_suppression_is_scoped_to_its_service(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        services:
          a:
            image: x:1
            # containerkit: ignore=CMP-005 docker-socket-proxy needs the engine
            volumes: ["/var/run/docker.sock:/var/run/docker.sock"]
          b:
            image: x:1
            volumes: ["/var/run/docker.sock:/var/run/docker.sock"]
        """
    )
    results = lint(tmp_path, text)
    assert [(t.obj.name, line) for t, f, line in results if f.rule_id == "CMP-005"] == [("b", 8)]


def test_file_top_suppression_applies_to_every_service(tmp_path: Path) -> None:
    text = "# containerkit: ignore=CMP-007,CMP-011 limits come from the host's systemd slice\n" + service(
        deploy=None, logging=None
    )
    [target] = load(_write(tmp_path, text))
    assert target.suppressions == {
        "CMP-007": "limits come from the host's systemd slice",
        "CMP-011": "limits come from the host's systemd slice",
    }
    assert [f.rule_id for f in evaluate(target)] == []


def test_suppression_without_reason_is_reported_and_not_honoured(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        services:
          a:
            image: x:1
            privileged: true  # containerkit: ignore=CMP-003
        """
    )
    rules = [f.rule_id for _, f, _ in lint(tmp_path, text)]
    assert "CMP-003" in rules and "CK001" in rules


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docker-compose.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("services:\n  a:\n    image: [unclosed\n", 4),
        ("services:\n  a: {image: x:1}\n bad-indent: 1\n", 3),
        ("services: [a, b]\n", 1),
        ("- just\n- a list\n", 1),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as err:
        load(path)
    assert err.value.file == str(path) and err.value.line == line
    assert f"{path}:{line}" in str(err.value)


def test_partial_override_is_linted_merged_onto_its_base(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yaml").write_text(
        service(ports='["127.0.0.1:8080:8080"]')
        + "  init:\n    image: x:1\n    user: '50000'\n"
        + "    # containerkit: ignore=CMP-005 the init job chowns the socket group\n"
        + "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"
        + "    depends_on: {}\n"
    )
    override = textwrap.dedent(
        """\
        services:
          app:
            deploy: {replicas: 3}
            ports: ["8443:8443"]
            restart: "no"
          init:
            environment: {DB_PASSWORD: hunter2}
        """
    )
    results = lint(tmp_path, override, "docker-compose.prod.yaml")
    got = sorted((t.obj.name, f.rule_id, line) for t, f, line in results)
    # app: the base supplies image, user, limits, healthcheck, logging; the override's restart "no" fails
    # (line 5); its 0.0.0.0 port is fine in a production file. init keeps the base's socket suppression.
    assert ("app", "CMP-010", 5) in got
    assert ("init", "CMP-008", 7) in got
    assert {(n, r) for n, r, _ in got} == {
        ("app", "CMP-010"),
        ("init", "CMP-008"),
        ("init", "CMP-006"),
        ("init", "CMP-007"),
        ("init", "CMP-007"),
        ("init", "CMP-010"),
        ("init", "CMP-011"),
    }
    assert not any(r == "CMP-001" for _, r, _ in got)
