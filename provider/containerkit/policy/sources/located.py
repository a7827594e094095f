"""What file sources (Dockerfile, compose, Helm values) share: errors, line lookup, comment suppressions.

A check function sees only ``Target.data``; for file kinds that data is a :class:`Located` document that can
say which line a finding path points at (``line_of``) and which rule ids are suppressed for that path by a
scoped ``# containerkit: ignore=<rule-id>[,<rule-id>...] <reason>`` comment (``suppressed``).

Scoping is split so that the engine's own suppression handling stays the only place that honours
file-wide suppressions and reports a missing reason:

* file-wide suppressions and every suppression without a reason go to ``Target.suppressions`` (the engine
  honours the first and reports the second as ``CK001`` without honouring it);
* scoped suppressions with a reason stay in the document, and :func:`scoped` wraps a check so that its
  violations inside the scope are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from containerkit.errors import ContainerkitError
from containerkit.policy.model import REGISTRY, CheckFn, Severity, Violation, rule

_IGNORE = re.compile(
    r"#\s*containerkit:\s*ignore\s*=\s*(?P<ids>[A-Za-z0-9][\w.-]*(?:\s*,\s*[A-Za-z0-9][\w.-]*)*)(?P<reason>.*)$"
)


class SourceError(ContainerkitError, ValueError):
    """A file that cannot be parsed: names the file, the line (1-based) and the problem."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Suppression:
    """One ``# containerkit: ignore=...`` comment; ``scope`` is a finding-path prefix ("" = whole target)."""

    rule_ids: tuple[str, ...]
    reason: str
    line: int
    scope: str = ""


def parse_ignore_comment(text: str, line: int, scope: str = "") -> Suppression | None:
    """``# containerkit: ignore=DF-003,DF-010 runs as root for apt`` -> a :class:`Suppression`."""
    m = _IGNORE.search(text)
    if m is None:
        return None
    ids = tuple(i.strip() for i in m.group("ids").split(",") if i.strip())
    return Suppression(rule_ids=ids, reason=m.group("reason").strip(), line=line, scope=scope)


def path_within(path: str, scope: str) -> bool:
    """Whether finding ``path`` lies inside ``scope`` (a path prefix ending at a segment boundary)."""
    if not scope:
        return True
    return path == scope or path.startswith((scope + ".", scope + "["))


@dataclass(frozen=True)
class Located:
    """Base of file documents: finding path -> line, and scoped suppressions."""

    file: str
    lines: Mapping[str, int] = field(default_factory=dict, repr=False)
    scoped_suppressions: tuple[Suppression, ...] = ()

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, else of its nearest ancestor that has one."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    def suppressed(self, rule_id: str, path: str) -> bool:
        return any(
            rule_id in s.rule_ids and s.reason and path_within(path, s.scope)
            for s in self.scoped_suppressions
        )


def target_suppressions(file_wide: Iterable[Suppression], scoped: Iterable[Suppression]) -> dict[str, str]:
    """The ``Target.suppressions`` mapping: file-wide ones, plus every scoped one the engine must report.

    A scoped suppression without a reason (``CK001``) or naming a rule that does not exist (``CK002``) is
    handed to the engine; a reasoned scoped one of a known rule is applied by :func:`scoped` only.
    An id given once without a reason keeps reason "" so the engine reports it.
    """
    out: dict[str, str] = {}

    def put(rule_id: str, reason: str) -> None:
        if rule_id in out and not out[rule_id]:
            return
        out[rule_id] = "" if not reason else (out.get(rule_id) or reason)

    for s in file_wide:
        for rid in s.rule_ids:
            put(rid, s.reason)
    for s in scoped:
        for rid in s.rule_ids:
            if not s.reason or rid not in REGISTRY:
                put(rid, s.reason)
    return out


def scoped(
    rule_id: str,
    *,
    rule_set: str,
    target: str,
    title: str,
    severity: Severity,
    rationale: str,
    fix: str,
    peers: dict[str, str] | None = None,
) -> Callable[[Callable[[Any], Iterable[Violation]]], Callable[[Any], Iterable[Violation]]]:
    """Register a file rule whose violations honour the document's scoped suppressions.

    The undecorated function is returned, so tests can call the bare check too.
    """

    def register(fn: Callable[[Any], Iterable[Violation]]) -> Callable[[Any], Iterable[Violation]]:
        def check(data: Any) -> Iterator[Violation]:
            for v in fn(data):
                if isinstance(data, Located) and data.suppressed(rule_id, v.path):
                    continue
                yield v

        check.__name__ = check.__qualname__ = fn.__name__
        check.__doc__ = fn.__doc__
        registered: CheckFn = check
        rule(
            rule_id,
            title=title,
            severity=severity,
            rule_set=rule_set,
            targets=(target,),
            rationale=rationale,
            fix=fix,
            peers=peers,
        )(registered)
        return fn

    return register
