"""YAML with line numbers: plain Python values plus the line of every key and list item.

PyYAML's composer keeps marks on nodes; this module constructs values from the node graph itself so
that every mapping key and sequence item gets a dotted path (``services.web.ports[0]``) and a 1-based
line. Anchors, aliases and ``<<`` merge keys are resolved like PyYAML's safe loader does; a merged key
keeps the line where it is written (e.g. in an ``x-airflow-common`` block), so findings point there.
Comments are read from the text: PyYAML drops them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

from containerkit.policy.sources.located import SourceError, Suppression, parse_ignore_comment

_CONTENT = re.compile(r"^\s*[^\s#]")
_DOC_MARKER = re.compile(r"^(---|\.\.\.|%)")


@dataclass
class YamlDocument:
    """One parsed YAML document: its value, ``path -> line``, and ``line -> paths`` (for comment scoping)."""

    value: Any
    lines: dict[str, int] = field(default_factory=dict)
    paths_at: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_content_line: int = 0


def join(path: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.active: set[int] = set()

    def mark(self, path: str, node: yaml.Node) -> None:
        line = node.start_mark.line + 1
        self.doc.lines.setdefault(path, line)
        self.doc.paths_at[line].append(path)

    def build(self, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.active:
            raise SourceError(self.loader.name, node.start_mark.line + 1, "recursive YAML alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out_list: list[Any] = []
                for i, item in enumerate(node.value):
                    item_path = join(path, i)
                    self.mark(item_path, item)
                    out_list.append(self.build(item, item_path))
                return out_list
            if isinstance(node, yaml.MappingNode):
                self.loader.flatten_mapping(node)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = self.loader.construct_object(key_node, deep=True)
                    if not isinstance(key, str | int | float | bool) and key is not None:
                        raise SourceError(self.loader.name, key_node.start_mark.line + 1, "unsupported key")
                    child = join(path, key)
                    self.mark(child, key_node)
                    out[key] = self.build(value_node, child)
                return out
        finally:
            self.active.discard(id(node))
        raise SourceError(self.loader.name, node.start_mark.line + 1, f"unsupported YAML node {node.tag}")


def load_yaml(text: str, file: str) -> YamlDocument:
    """Parse a single-document YAML text; syntax errors raise :class:`SourceError` with file and line."""
    loader = yaml.SafeLoader(text)
    loader.name = file
    doc = YamlDocument(value=None)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.value = _Builder(loader, doc).build(node, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceError(file, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    doc.first_content_line = next(
        (
            i
            for i, raw in enumerate(text.splitlines(), 1)
            if _CONTENT.match(raw) and not _DOC_MARKER.match(raw)
        ),
        0,
    )
    return doc


def comment_suppressions(text: str, doc: YamlDocument) -> tuple[list[Suppression], list[Suppression]]:
    """Split ``# containerkit: ignore=`` comments into (file-wide, scoped).

    A comment above the first key of the file is file-wide. Any other comment applies to the key or list
    item on its own line (trailing comment) or on the next content line, and through it to every path that
    node is reached by (an anchored block merged into three services scopes all three).
    """
    lines = text.splitlines()
    file_wide: list[Suppression] = []
    scoped: list[Suppression] = []
    for number, raw in enumerate(lines, 1):
        if "containerkit:" not in raw:
            continue
        found = parse_ignore_comment(raw, number)
        if found is None:
            continue
        own_line = raw.lstrip().startswith("#")
        if own_line and (doc.first_content_line == 0 or number < doc.first_content_line):
            file_wide.append(found)
            continue
        anchor = number
        if own_line:
            anchor = next(
                (i for i in range(number + 1, len(lines) + 1) if _CONTENT.match(lines[i - 1])),
                0,
            )
        for path in doc.paths_at.get(anchor, []):
            scoped.append(Suppression(found.rule_ids, found.reason, number, scope=path))
        if not doc.paths_at.get(anchor):
            # Nothing to attach to (e.g. a comment after the last key): keep it visible, scoped to nothing.
            scoped.append(Suppression(found.rule_ids, found.reason, number, scope="\0"))
    return file_wide, scoped
