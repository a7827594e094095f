"""Load a Dockerfile into a ``Dockerfile`` target: stages, instructions with lines, build-arg defaults.

Parsing is ``dockerfile_parse``'s (line continuations, comments, JSON forms); this module adds what the
rules need on top: stages (``FROM ... AS name``) linked to the earlier stage they build on, so the final
stage's effective ``USER``/``HEALTHCHECK``/``EXPOSE`` can be followed through ``FROM <stage>``; global
``ARG`` defaults (the ones ``FROM`` may use); ``RUN --mount=...`` flags split off the command; and
BuildKit heredocs (``RUN <<EOF``), which the parser does not know, folded back into their instruction.

Suppressions (``# containerkit: ignore=DF-003,DF-010 <reason>``):

* a comment before the first instruction applies to the whole file;
* any other comment applies to the next instruction only (findings whose path is that instruction, e.g.
  ``stages[1].instructions[4]``); findings about a whole stage (a missing ``USER``) have the stage path
  ``stages[N]``, so suppress those with a file-top comment or one right above that stage's ``FROM``.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.sources.located import (
    Located,
    SourceError,
    Suppression,
    parse_ignore_comment,
    target_suppressions,
)
from containerkit.policy.sources.yaml_lines import DEFAULT_LIMITS, Limits, read_text

KIND = "Dockerfile"

KEYWORDS = frozenset(
    [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "MAINTAINER",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ]
)
_FLAG = re.compile(r"--(?P<name>[a-z-]+)(?:=(?P<value>\S*))?\s*")
_HEREDOC = re.compile(r"<<-?\s*[\"']?(?P<word>[A-Za-z_][A-Za-z0-9_]*)[\"']?")
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+?])?(?P<word>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    """Arguments without flags, line continuations joined (a heredoc body joined with newlines)."""
    line: int
    end_line: int
    path: str
    flags: tuple[tuple[str, str], ...] = ()

    def flag_values(self, name: str) -> list[str]:
        return [v for k, v in self.flags if k == name]

    @property
    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form's arguments, or None for the shell form."""
        text = self.value.strip()
        if not text.startswith("["):
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed):
            return parsed
        return None


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    """The ``FROM`` image as written (may contain ``${ARG}``)."""
    line: int
    instructions: tuple[Instruction, ...]
    parent: int | None = None
    """Index of the earlier stage this one is built ``FROM``, if any."""

    @property
    def path(self) -> str:
        return f"stages[{self.index}]"


@dataclass(frozen=True)
class Dockerfile(Located):
    global_args: Mapping[str, str | None] = field(default_factory=dict)
    """``ARG`` defaults declared before the first ``FROM`` (None: no default)."""
    stages: tuple[Stage, ...] = ()

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def lineage(self, stage: Stage) -> list[Stage]:
        """``stage`` and the stages it is built on, nearest first."""
        chain = [stage]
        while chain[-1].parent is not None and len(chain) <= len(self.stages):
            chain.append(self.stages[chain[-1].parent])
        return chain

    def effective(self, stage: Stage, keyword: str) -> Instruction | None:
        """The last ``keyword`` instruction in force in ``stage`` (inherited through ``FROM <stage>``)."""
        for s in self.lineage(stage):
            for ins in reversed(s.instructions):
                if ins.keyword == keyword:
                    return ins
        return None

    def variables_before(self, stage: Stage, instruction: Instruction | None = None) -> dict[str, str | None]:
        """ARG/ENV values visible at ``instruction`` in ``stage`` (ancestors first; later wins)."""
        values: dict[str, str | None] = {}
        for s in reversed(self.lineage(stage)):
            for ins in s.instructions:
                if instruction is not None and ins is instruction:
                    return values
                if ins.keyword == "ARG":
                    for name, default in parse_arg(ins.value):
                        values[name] = (
                            expand(default, values) if default is not None else self.global_args.get(name)
                        )
                elif ins.keyword == "ENV":
                    for name, val in parse_env(ins.value):
                        values[name] = expand(val, values)
        return values


def expand(text: str, variables: Mapping[str, str | None]) -> str | None:
    """Substitute ``$VAR``/``${VAR}``/``${VAR:-default}``; None when a variable has no known value."""
    unresolved = False

    def sub(m: re.Match[str]) -> str:
        nonlocal unresolved
        name = m.group("braced") or m.group("bare")
        value = variables.get(name)
        op, word = m.group("op"), m.group("word") or ""
        if op in (":-", "-"):
            return value if value else word
        if op in (":+", "+"):
            return word if value else ""
        if value is None:
            unresolved = True
            return ""
        return value

    out = _VAR.sub(sub, text)
    return None if unresolved else out


def _split_pairs(text: str) -> list[tuple[str, str | None]]:
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        words = text.split()
    pairs: list[tuple[str, str | None]] = []
    for w in words:
        name, eq, value = w.partition("=")
        pairs.append((name, value if eq else None))
    return pairs


def parse_arg(value: str) -> list[tuple[str, str | None]]:
    return _split_pairs(value)


def parse_env(value: str) -> list[tuple[str, str]]:
    """``ENV A=1 B=2`` and the legacy ``ENV A 1`` form."""
    text = value.strip()
    first = text.split(None, 1)
    if first and "=" not in first[0]:
        return [(first[0], first[1] if len(first) > 1 else "")]
    return [(k, v or "") for k, v in _split_pairs(text)]


def parse_label(value: str) -> dict[str, str]:
    return {k: v or "" for k, v in _split_pairs(value)}


def _split_flags(keyword: str, value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if keyword not in ("RUN", "COPY", "ADD", "FROM", "HEALTHCHECK"):
        return value, ()
    flags: list[tuple[str, str]] = []
    rest = value.lstrip()
    while rest.startswith("--"):
        m = _FLAG.match(rest)
        if m is None:
            break
        flags.append((m.group("name"), m.group("value") or ""))
        rest = rest[m.end() :]
    return rest, tuple(flags)


@dataclass
class _StageDraft:
    name: str | None
    base: str
    line: int
    parent: int | None
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str, file: str) -> tuple[Dockerfile, list[Suppression]]:
    """Parse Dockerfile ``text``; returns the document and its file-wide suppressions."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    raw_lines = text.splitlines()
    entries = sorted(parser.structure, key=lambda e: e["startline"])

    global_args: dict[str, str | None] = {}
    stages: list[_StageDraft] = []
    names: dict[str, int] = {}
    file_wide: list[Suppression] = []
    scoped: list[Suppression] = []
    pending: list[Suppression] = []
    lines: dict[str, int] = {}
    seen_instruction = False
    skip_until = -1
    covered: list[tuple[int, int]] = []

    for entry in entries:
        start, end = int(entry["startline"]), int(entry["endline"])
        if start <= skip_until or any(a < start <= b for a, b in covered):
            continue
        keyword = str(entry["instruction"]).upper()
        if keyword == "COMMENT":
            found = parse_ignore_comment(str(entry["content"]).strip(), start + 1)
            if found is not None:
                (pending if seen_instruction else file_wide).append(found)
            continue
        if keyword not in KEYWORDS:
            raise SourceError(file, start + 1, f"unknown Dockerfile instruction {keyword!r}")
        value = str(entry["value"])
        value, flags = _split_flags(keyword, value)
        heredoc = _HEREDOC.search(value) if keyword in ("RUN", "COPY", "ADD") else None
        if heredoc is not None:
            word = heredoc.group("word")
            stop = next((i for i in range(end + 1, len(raw_lines)) if raw_lines[i].strip() == word), None)
            if stop is None:
                raise SourceError(file, start + 1, f"heredoc <<{word} is never closed")
            value = value[: heredoc.start()] + "\n" + "\n".join(raw_lines[end + 1 : stop])
            end = stop
            skip_until = stop
        covered.append((start, end))
        seen_instruction = True

        if keyword == "FROM":
            base_value, _, alias = value.partition(" AS ") if " AS " in value else value.partition(" as ")
            base = base_value.strip()
            name = alias.strip() or None
            index = len(stages)
            parent = names.get(base.lower())
            stages.append(_StageDraft(name, base, start + 1, parent))
            if name:
                names[name.lower()] = index
            lines[f"stages[{index}]"] = start + 1
            for s in pending:
                scoped.append(Suppression(s.rule_ids, s.reason, s.line, scope=f"stages[{index}]"))
            pending = []
            continue
        if not stages:
            if keyword != "ARG":
                raise SourceError(
                    file, start + 1, f"{keyword} before the first FROM (only ARG may come first)"
                )
            for arg_name, default in parse_arg(value):
                global_args[arg_name] = default
            pending = []
            continue
        ins_list = stages[-1].instructions
        path = f"stages[{len(stages) - 1}].instructions[{len(ins_list)}]"
        ins_list.append(Instruction(keyword, value.strip(), start + 1, end + 1, path, flags))
        lines[path] = start + 1
        for s in pending:
            scoped.append(Suppression(s.rule_ids, s.reason, s.line, scope=path))
        pending = []

    if not stages:
        raise SourceError(file, None, "no FROM instruction: not a Dockerfile")
    doc = Dockerfile(
        file=file,
        lines=lines,
        scoped_suppressions=tuple(scoped),
        global_args=global_args,
        stages=tuple(
            Stage(
                index=i,
                name=s.name,
                base=s.base,
                line=s.line,
                instructions=tuple(s.instructions),
                parent=s.parent,
            )
            for i, s in enumerate(stages)
        ),
    )
    return doc, file_wide


def load(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> list[Target]:
    """One ``Dockerfile`` target per file; the object is named after the file."""
    from containerkit.policy.engine import load_rules

    load_rules()
    path = Path(path)
    text = read_text(path, limits, what="Dockerfile")
    doc, file_wide = parse(text, str(path))
    obj = ObjectRef(kind=KIND, name=path.name, file=str(path), line=1)
    return [Target(KIND, obj, doc, target_suppressions(file_wide, doc.scoped_suppressions))]
