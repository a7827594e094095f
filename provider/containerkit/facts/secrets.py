"""Recognising secrets left in the clear: the one heuristic the spec, the hooks and every lint rule share.

Lint must never raise on what it reads, so the checks are deliberately lenient.

Secrets are recognised two ways, the split Yelp's detect-secrets uses:

* **by name**: a variable or key whose name says it holds a secret (``DB_PASSWORD``, ``api_key``), with a
  literal value that is not a placeholder (``${VAR}``, ``{{ var }}``, ``changeme``...);
* **by value**, whatever the name: a private-key block, a well-known token shape (AWS access key ids,
  GitHub ``ghp_``/``github_pat_``, GitLab ``glpat-``, Slack ``xox?-``, Google ``AIza``, Stripe ``sk_live_``,
  a JSON Web Token), a URL with a password, or a high-entropy string: a run of at least
  :data:`ENTROPY_MIN_LENGTH` base64/base64url characters with at least :data:`ENTROPY_THRESHOLD` bits of
  Shannon entropy per character (detect-secrets' default for base64 strings), holding both letters and
  digits. Hex-only strings (image digests, git SHAs, checksums) and paths are not judged by entropy: they
  are the false positives that make people ignore the rule; a hex *secret* is still caught by its name.

detect-secrets itself is not used: the same check runs at DAG parse for every env var of every task
(``spec.env``), where its ~0.23 s import per parse process and ~0.5 ms per line (measured here) would
cost more than the rest of the check; its settings are process-global.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

ENTROPY_THRESHOLD = 4.5
"""Bits per character above which a base64-like run is treated as a random secret."""
ENTROPY_MIN_LENGTH = 20

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|FERNET|DSN"
    r"|AUTH(ORIZATION)?(?![A-Z0-9]))",  # BASIC_AUTH, AUTH_HEADER; not AUTHOR or AUTHORITY
    re.I,
)
# Names that *refer to* or *configure* a secret mechanism rather than hold a secret
# (e.g. AIRFLOW__SECRETS__BACKEND, AIRFLOW__CORE__AUTH_MANAGER, AIRFLOW__API_AUTH__JWT_ISSUER).
_REFERENCE_SUFFIX = re.compile(
    r"(_FILE|_PATH|_DIR|_NAME|_REF|_ID|_ARN|_CMD|_SECRET_NAME|_KEY_NAME"
    r"|_BACKEND|_BACKEND_KWARGS|_MANAGER|_ISSUER|_AUDIENCE|_ALGORITHM)$",
    re.I,
)
_SECRET_VALUE = re.compile(
    r"((?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id (long-term, temporary)
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,}"  # GitHub fine-grained tokens
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab personal access tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|[sr]k_live_[0-9A-Za-z]{20,}"  # Stripe live keys
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JSON Web Token
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"  # PEM, OpenSSH, PGP private keys
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@)",  # URL with [user]:password
)
_VALUE_KIND = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY"), "a private key"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ"), "a JSON Web Token"),
    (re.compile(r"://[^/\s:@]*:[^/\s@]+@"), "a URL with a password"),
)
_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{ENTROPY_MIN_LENGTH},}}={{0,2}}")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# ``key = value``, ``key: value``, ``export KEY=value``, ``"key": "value"`` inside a config file.
_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<name>[A-Za-z_][\w.-]*)["']?\s*[:=]\s*["']?(?P<value>[^"'\s#,]+)"""
)
_PLACEHOLDER = re.compile(
    r"^(\{\{.*\}\}|\$\(.+\)|\$\{.+\}|\$[A-Z_][A-Z0-9_]*|<.*>|\*+|changeme|xxx+)$", re.I | re.S
)


def secret_like_name(name: str) -> bool:
    """Whether a variable or argument called ``name`` would hold a secret (not merely point to one)."""
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_SUFFIX.search(name)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for an empty string)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def high_entropy_run(text: str) -> str | None:
    """The first base64-like run of ``text`` random enough to be a secret (see the module doc), or None."""
    for m in _RUN.finditer(_UUID.sub(" ", text)):
        run = m.group().strip("=")
        if len(run) < ENTROPY_MIN_LENGTH or _HEX.match(run):
            continue
        if run.count("/") >= 2 and "+" not in run:  # a path, not base64
            continue
        if not (any(c.isdigit() for c in run) and any(c.isalpha() for c in run)):
            continue
        if shannon_entropy(run) >= ENTROPY_THRESHOLD:
            return run
    return None


def value_secret(text: str) -> str | None:
    """Why a value, whatever it is called, looks like a secret: a known credential shape or high entropy."""
    if _SECRET_VALUE.search(text):
        for pattern, what in _VALUE_KIND:
            if pattern.search(text):
                return f"value is {what}"
        return "value has the shape of a credential"
    if high_entropy_run(text):
        return f"value is a high-entropy string (>= {ENTROPY_THRESHOLD} bits/char)"
    return None


def secret_literal(name: str, value: object) -> str | None:
    """Why ``name=value`` looks like a literal secret, or ``None``.

    A secret-like name with a non-empty, non-placeholder value counts, as does any value shaped like a
    known credential (cloud keys, tokens, private keys, URLs with a password, high entropy) whatever its
    name.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text or _PLACEHOLDER.match(text):
        return None
    why = value_secret(text)
    if why:
        return why
    if secret_like_name(name) and text.lower() not in {"true", "false"}:
        return "secret-like name with a literal value"
    return None


def secrets_in_text(name: str, text: str) -> Iterator[tuple[int, str]]:
    """``(line offset, why)`` for each secret in a value that may be a whole config file (a ConfigMap key).

    The value as a whole is judged by ``name`` (``password: hunter2``); each of its lines by value shape
    and, when it is an assignment (``db.password = hunter2``), by the assigned name.
    """
    lines = text.splitlines() or [text]
    if len(lines) == 1:
        why = secret_literal(name, text)
        if why:
            yield 0, why
        return
    if _SECRET_VALUE.search(text) and "PRIVATE KEY" in text:
        start = next(i for i, ln in enumerate(lines) if "PRIVATE KEY" in ln)
        yield start, "value is a private key"
        return
    for i, line in enumerate(lines):
        m = _ASSIGNMENT.match(line)
        why = secret_literal(m.group("name"), m.group("value")) if m else value_secret(line.strip())
        if why:
            yield i, why
