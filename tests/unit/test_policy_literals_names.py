"""The one secret-name heuristic (``containerkit.facts.secrets``), as the image build args use it."""

from __future__ import annotations

import pytest

from containerkit.errors import SpecError
from containerkit.facts.secrets import secret_like_name
from containerkit.hooks.image import _check_build_args


@pytest.mark.parametrize(
    "name", ["NPM_TOKEN", "DB_PASSWORD", "BASIC_AUTH", "AUTH_HEADER", "HTTP_AUTHORIZATION", "AWS_ACCESS_KEY"]
)
def test_secret_like_names(name: str) -> None:
    assert secret_like_name(name)


@pytest.mark.parametrize("name", ["AUTHOR", "AUTHORITY", "APP_VERSION", "TOKEN_FILE", "DB_PASSWORD_PATH"])
def test_names_that_hold_no_secret(name: str) -> None:
    assert not secret_like_name(name)


def test_build_args_refuse_what_the_dockerfile_lint_flags_and_never_echo_the_value() -> None:
    assert _check_build_args({"APP_VERSION": "1.4.2", "AUTHOR": "data-team"}) == {
        "APP_VERSION": "1.4.2",
        "AUTHOR": "data-team",
    }
    with pytest.raises(SpecError, match=r"build_args\.NPM_TOKEN") as by_name:
        _check_build_args({"NPM_TOKEN": "npm-abc123"})
    # A credential-shaped value is refused whatever the argument is called.
    with pytest.raises(SpecError, match=r"build_args\.PIP_INDEX_URL") as by_value:
        _check_build_args({"PIP_INDEX_URL": "https://ci:hunter2@pypi.example.com/simple"})
    assert "npm-abc123" not in str(by_name.value) and "hunter2" not in str(by_value.value)
