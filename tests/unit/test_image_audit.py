"""containerkit's image audit: each check on inspect/history facts, and the inventory parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from containerkit.hooks.image_audit import (
    Package,
    audit,
    check_base_age,
    check_secrets,
    check_user,
    parse_apk_installed,
    parse_dpkg_status,
    python_packages,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
# Credential-shaped test values are assembled at run time so no literal lands in the repo.
AWS_KEY = "AKIA" + "Q" * 16
TOKEN = "t0k-" + "9f8e7d6c5b4a" * 2


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:root"])
def test_root_users_are_a_finding(user: str) -> None:
    (finding,) = check_user(user)
    assert (finding.check, finding.severity, finding.where) == ("user", "error", "Config.User")
    assert "USER <uid>:0" in finding.remediation


@pytest.mark.parametrize("user", ["50000:0", "app", "10001", "nobody:nogroup"])
def test_non_root_users_pass(user: str) -> None:
    assert check_user(user) == []


def test_secrets_found_in_env_labels_and_history_without_echoing_values() -> None:
    findings = check_secrets(
        env=["PATH=/usr/bin", f"API_TOKEN={TOKEN}", "LOG_LEVEL=info", "PASSWORD_FILE=/run/secrets/pw"],
        labels={"maintainer": "team@example.com", "deploy.password": "hunter22"},
        history=[
            {"CreatedBy": 'CMD ["python"]'},
            {"CreatedBy": "|1 DB_PASSWORD=s3cr3t-value /bin/sh -c echo building"},
            {"CreatedBy": f"/bin/sh -c #(nop) ENV CLOUD_KEY={AWS_KEY}"},
            {"CreatedBy": "RUN /bin/sh -c apt-get install -y --no-install-recommends jq"},
        ],
    )
    assert {(f.where, f.message.split(":")[0]) for f in findings} == {
        ("Config.Env.API_TOKEN", "API_TOKEN"),
        ("Config.Labels.deploy.password", "deploy.password"),
        ("history[1]", "DB_PASSWORD"),
        ("history[2]", "CLOUD_KEY"),
    }
    text = " ".join(f.message + f.remediation for f in findings)
    for value in (TOKEN, "hunter22", "s3cr3t-value", AWS_KEY):
        assert value not in text
    assert all(f.severity == "error" for f in findings)


def test_clean_config_has_no_secret_findings() -> None:
    assert (
        check_secrets(["PATH=/usr/bin", "LANG=C.UTF-8"], {"org.opencontainers.image.title": "app"}, []) == []
    )


def test_base_age_budget() -> None:
    assert check_base_age(NOW - timedelta(days=10), now=NOW, max_age_days=90) == (10, [])
    days, (finding,) = check_base_age(NOW - timedelta(days=200), now=NOW, max_age_days=90)
    assert days == 200 and finding.check == "base-age" and "200 days" in finding.message
    unknown, (missing,) = check_base_age(None, now=NOW)
    assert unknown is None and missing.severity == "warning"


def test_dpkg_status_lists_installed_packages_only() -> None:
    status = (
        "Package: jq\nStatus: install ok installed\nVersion: 1.6-2.1\nDescription: json\n more text\n\n"
        "Package: old\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u9\n"
    )
    assert parse_dpkg_status(status) == [
        Package("jq", "1.6-2.1", "deb"),
        Package("libc6", "2.36-9+deb12u9", "deb"),
    ]


def test_apk_and_python_inventories() -> None:
    apk = "C:Q1abc\nP:musl\nV:1.2.5-r0\nA:x86_64\n\nP:busybox\nV:1.36.1-r29\n"
    assert parse_apk_installed(apk) == [
        Package("musl", "1.2.5-r0", "apk"),
        Package("busybox", "1.36.1-r29", "apk"),
    ]
    paths = [
        "opt/venv/lib/python3.11/site-packages/dockerfile_parse-2.0.1.dist-info/METADATA",
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        "opt/venv/lib/python3.11/site-packages/dockerfile_parse-2.0.1.dist-info/RECORD",
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
    ]
    assert python_packages(paths) == [
        Package("dockerfile-parse", "2.0.1", "python"),
        Package("six", "1.16.0", "python"),
    ]
    assert Package("dockerfile-parse", "2.0.1", "python").purl == "pkg:pypi/dockerfile-parse@2.0.1"
    assert Package("jq", "1.6-2.1", "deb").purl == "pkg:deb/debian/jq@1.6-2.1"


def test_audit_combines_checks_and_prints_remediation() -> None:
    inspect = {"Config": {"User": "", "Env": [f"API_TOKEN={TOKEN}"], "Labels": {}}}
    history = [
        {"Created": int((NOW - timedelta(days=1)).timestamp()), "CreatedBy": "USER root"},
        {"Created": int((NOW - timedelta(days=400)).timestamp()), "CreatedBy": "Imported from -"},
    ]
    result = audit("app:1", inspect, history, [Package("jq", "1.6", "deb")], now=NOW)
    assert result.checks_failed == {"user", "secrets", "base-age"}
    assert result.base_age_days == 400
    assert [f.check for f in result.at_or_above("error")] == ["user", "secrets"]
    report = result.remediation()
    assert report.startswith("app:1: 3 finding(s)") and "Fix: add a non-root user" in report
    assert TOKEN not in report
    assert result.sbom() == [{"name": "jq", "version": "1.6", "kind": "deb", "purl": "pkg:deb/debian/jq@1.6"}]


def test_clean_audit() -> None:
    inspect = {"Config": {"User": "50000:0", "Env": ["PATH=/usr/bin"], "Labels": {}}}
    history = [{"Created": "2026-11-20T10:00:00.123456789Z", "CreatedBy": "Imported from -"}]
    result = audit("app:2", inspect, history, now=NOW)
    assert result.findings == () and result.base_age_days == 10
    assert result.remediation() == "app:2: no findings (user 50000:0, 0 packages)"
