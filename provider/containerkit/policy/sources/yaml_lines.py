"""YAML (and JSON) with line numbers and input limits: plain Python values plus the line of every key.

Every source that reads YAML goes through here, so hostile input is handled in one place:

* **Limits** (:class:`Limits`, all configurable from ``containerkit lint``): file size (checked before
  reading), document count (checked before parsing), nesting depth (checked while composing, before any
  value is built, so ``[[[[...]]]]`` never reaches a recursive parser), and nodes reached through aliases
  and merge keys (the "billion laughs" bomb), each reported as a :class:`SourceError` naming the limit and
  the option that raises it.
* **One bad document does not hide the others**: a multi-document stream is split at its ``---`` lines
  and each document is parsed alone; a document that fails yields its error, the rest still load.
* **Duplicate keys** are an error (``kubectl``, compose and Helm reject them; PyYAML would silently keep
  the last one, which can hide a ``privileged: true``). Merge keys (``<<``) are resolved with the YAML
  merge semantics, without PyYAML's exponential list copying.
* **Scalars** that a tag resolves to but cannot construct (an int with 10,000 digits, ``2024-13-45``, an
  unknown ``!tag``) stay strings, as a schema-less reader would keep them; nothing is ever executed.
* **Encodings**: UTF-8 (with or without BOM), UTF-16 and UTF-32 with a BOM; anything else is an error
  naming the line of the first bad byte.
* **JSON** is read as YAML (so it gets lines); JSON that YAML 1.1 refuses, and streams of concatenated
  JSON objects, fall back to :mod:`json` without lines.

Each mapping key and sequence item gets a dotted path (``services.web.ports[0]``) and a 1-based line; a
merged key keeps the line where it is written (e.g. in an ``x-airflow-common`` block), so findings point
there. Comments are read from the text: PyYAML drops them.
"""

from __future__ import annotations

import codecs
import gc
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from containerkit.policy.sources.located import SourceError, Suppression, parse_ignore_comment

try:  # libyaml's parser when present: several times faster on large manifest folders
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

_CONTENT = re.compile(r"^\s*[^\s#]")
_DOC_MARKER = re.compile(r"^(---|\.\.\.|%)")
_DOC_START = re.compile(r"^---(?=[ \t]|$)")
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Limits:
    """Caps on what one input file may cost; each is a ``containerkit lint`` option.

    The defaults are far above any real manifest, compose file or values file (the official Airflow
    chart's ``values.yaml`` is ~100 KiB, depth 9, no aliases) and keep the worst accepted file to about a
    second here.
    """

    max_file_bytes: int = 4 * 1024 * 1024
    """``--max-file-size``: bigger files are refused before they are read."""
    max_documents: int = 1000
    """``--max-documents``: documents (``---``) per file."""
    max_depth: int = 64
    """``--max-depth``: nesting of mappings and sequences (a CRD's deepest schema is ~30)."""
    max_alias_nodes: int = 10_000
    """``--max-alias-nodes``: values a document may reach again through aliases and ``<<`` merges."""


DEFAULT_LIMITS = Limits()


@dataclass
class YamlDocument:
    """One parsed YAML document: its value, ``path -> line``, and ``line -> paths`` (for comment scoping)."""

    value: Any
    lines: dict[str, int] = field(default_factory=dict)
    paths_at: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_content_line: int = 0
    line: int = 1
    """The line the document starts on (for errors about the document as a whole)."""


def join(path: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# ------------------------------------------------------------------------------------------ reading


def decode(data: bytes, file: str) -> str:
    """Bytes -> text: a BOM picks UTF-8/16/32, otherwise strict UTF-8; errors name the line."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise SourceError(
                    file, None, f"not valid {encoding.upper()} despite its BOM: {exc.reason}"
                ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start : exc.start + 1].hex().upper()
        raise SourceError(
            file, line, f"not UTF-8 (byte 0x{byte} at column {column}): save the file as UTF-8"
        ) from None


def read_text(path: str | Path, limits: Limits = DEFAULT_LIMITS, *, what: str = "file") -> str:
    """The text of ``path`` after the size cap and encoding checks; a :class:`SourceError` otherwise."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > limits.max_file_bytes:
            raise SourceError(
                str(p),
                None,
                f"{what} is {size} bytes, over the {limits.max_file_bytes}-byte limit "
                "(raise --max-file-size if it is legitimate)",
            )
        with p.open("rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise SourceError(str(p), None, f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:  # grew while we looked, or a special file
        raise SourceError(str(p), None, f"{what} is over the {limits.max_file_bytes}-byte limit")
    text = decode(data, str(p))
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SourceError(
            str(p), line, "contains NUL bytes: a binary file, or UTF-16 without a byte-order mark"
        )
    return text


# ------------------------------------------------------------------------------------------ composing


class _LimitError(Exception):
    """Raised inside composing/building; turned into a :class:`SourceError` with the document offset."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _mark_line(node_or_event: Any) -> int:
    mark = getattr(node_or_event, "start_mark", None)
    return mark.line + 1 if mark is not None else 1


def _compose(loader: Any, limits: Limits, offset: int = 0) -> yaml.Node | None:
    """One document's node graph from parser events, iteratively, with the depth cap.

    PyYAML's composers (Python and libyaml) recurse per nesting level; this one keeps an explicit stack,
    so a 100,000-level document fails at ``max_depth`` instead of exhausting the C stack (libyaml's
    composer crashes the process at ~200,000 levels) or the Python one.
    """
    anchors: dict[str, yaml.Node] = {}
    stack: list[Any] = []
    pending: list[Any] = []  # a mapping's key waiting for its value; a sequence's slot stays False
    root: yaml.Node | None = None
    resolved: dict[str, str] = {}  # plain scalar text -> tag (a document repeats its values)
    max_depth = limits.max_depth
    get_event = loader.get_event
    loader.get_event()  # DocumentStartEvent
    while True:
        event: Any = get_event()
        kind = type(event)
        node: Any
        if kind is yaml.ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                if event.style or not event.implicit[0]:
                    tag = _STR_TAG
                else:
                    value = event.value
                    tag = resolved.get(value)
                    if tag is None:
                        tag = resolved[value] = loader.resolve(yaml.ScalarNode, value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            if event.anchor is not None:
                anchors[event.anchor] = node
            opened = False
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(stack) >= max_depth:
                raise _LimitError(
                    _mark_line(event) + offset,
                    f"nested deeper than {max_depth} levels (raise --max-depth if it is legitimate)",
                )
            cls = yaml.MappingNode if kind is yaml.MappingStartEvent else yaml.SequenceNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(cls, None, event.implicit)
            node = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
            opened = True
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            stack.pop().end_mark = event.end_mark
            pending.pop()
            if not stack:
                break
            continue
        elif kind is yaml.AliasEvent:
            node = anchors.get(str(event.anchor))
            if node is None:
                raise _LimitError(_mark_line(event) + offset, f"alias *{event.anchor} names no anchor")
            opened = False
        else:  # pragma: no cover - the parser only emits the events above inside a document
            raise _LimitError(_mark_line(event) + offset, f"unexpected YAML event {kind.__name__}")
        if not stack:
            root = node
        elif pending[-1] is False:
            stack[-1].value.append(node)
        elif pending[-1] is None:
            pending[-1] = node
        else:
            stack[-1].value.append((pending[-1], node))
            pending[-1] = None
        if opened:
            stack.append(node)
            pending.append(False if cls is yaml.SequenceNode else None)
        elif not stack:
            break
    loader.get_event()  # DocumentEndEvent
    return root


class _Builder:
    """Node graph -> Python values, recording ``path -> line``, with the alias expansion cap."""

    def __init__(self, loader: Any, doc: YamlDocument, limits: Limits, offset: int, scoping: bool) -> None:
        self.loader = loader
        self.doc = doc
        self.limits = limits
        self.offset = offset
        self.scoping = scoping
        self.active: set[int] = set()
        self.seen: set[int] = set()
        self.again = 0
        self.pairs_memo: dict[int, list[tuple[Any, yaml.Node, yaml.Node]]] = {}

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1 + self.offset

    def mark(self, path: str, node: yaml.Node) -> None:
        line = self.line(node)
        self.doc.lines.setdefault(path, line)
        if self.scoping:
            self.doc.paths_at[line].append(path)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception:  # unknown tag, out-of-range date, 5,000-digit int: keep the text
            return node.value

    def key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _LimitError(self.line(node), "a mapping key must be a plain value, not a list or mapping")
        return self.scalar(node)

    def pairs(self, node: yaml.MappingNode) -> list[tuple[Any, yaml.Node, yaml.Node]]:
        """The mapping's (key, key node, value node), ``<<`` merges resolved, duplicates refused."""
        memo = self.pairs_memo.get(id(node))
        if memo is not None:
            return memo
        if id(node) in self.active:
            raise _LimitError(self.line(node), "a `<<` merge includes the mapping it is in")
        self.active.add(id(node))
        try:
            explicit: list[tuple[Any, yaml.Node, yaml.Node]] = []
            merges: list[yaml.MappingNode] = []
            first: dict[tuple[str, Any], yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    subs = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    for sub in subs:
                        if not isinstance(sub, yaml.MappingNode):
                            raise _LimitError(
                                self.line(sub), "`<<` must merge a mapping or a list of mappings"
                            )
                        merges.append(sub)
                    continue
                key = self.key(key_node)
                ident = (type(key).__name__, key)
                if ident in first:
                    raise _LimitError(
                        self.line(key_node),
                        f"duplicate key {key!r} (first at line {self.line(first[ident])}): "
                        "Kubernetes, compose and Helm refuse it; keep one",
                    )
                first[ident] = key_node
                explicit.append((key, key_node, value_node))
            if not merges:
                out = explicit
            else:
                merged: list[tuple[Any, yaml.Node, yaml.Node]] = []
                taken = set(first)
                for sub in merges:  # earlier merges win over later ones, explicit keys over all
                    for key, key_node, value_node in self.pairs(sub):
                        ident = (type(key).__name__, key)
                        if ident not in taken:
                            taken.add(ident)
                            merged.append((key, key_node, value_node))
                out = merged + explicit
        finally:
            self.active.discard(id(node))
        self.pairs_memo[id(node)] = out
        return out

    def build(self, node: yaml.Node, path: str, depth: int = 0) -> Any:
        if id(node) in self.seen:
            self.again += 1
            if self.again > self.limits.max_alias_nodes:
                raise _LimitError(
                    self.line(node),
                    f"aliases and merges expand to more than {self.limits.max_alias_nodes} values "
                    "(an alias bomb?; raise --max-alias-nodes if it is legitimate)",
                )
        else:
            self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if depth >= self.limits.max_depth:
            raise _LimitError(
                self.line(node),
                f"nested deeper than {self.limits.max_depth} levels through aliases "
                "(raise --max-depth if it is legitimate)",
            )
        if id(node) in self.active:
            raise _LimitError(self.line(node), "recursive YAML alias (an anchor used inside itself)")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out_list: list[Any] = []
                for i, item in enumerate(node.value):
                    item_path = join(path, i)
                    self.mark(item_path, item)
                    out_list.append(self.build(item, item_path, depth + 1))
                return out_list
            out: dict[Any, Any] = {}
            self.active.discard(id(node))  # pairs() has its own recursion guard for merges
            pairs = self.pairs(node)  # type: ignore[arg-type]
            self.active.add(id(node))
            for key, key_node, value_node in pairs:
                child = join(path, key)
                self.mark(child, key_node)
                out[key] = self.build(value_node, child, depth + 1)
            return out
        finally:
            self.active.discard(id(node))


def split_documents(text: str) -> list[tuple[int, str]]:
    """``(first line offset, text)`` of each document: split at ``---`` lines (a marker YAML forbids
    inside any scalar at column 0), so a syntax error stays within its document."""
    chunks: list[tuple[int, str]] = []
    start = 0
    current: list[str] = []
    for i, raw in enumerate(text.splitlines(keepends=True)):
        if _DOC_START.match(raw) and current:
            chunks.append((start, "".join(current)))
            start, current = i, []
        current.append(raw)
    if current:
        chunks.append((start, "".join(current)))
    return [(offset, chunk) for offset, chunk in chunks if any(_content(ln) for ln in chunk.splitlines())]


def _content(raw: str) -> bool:
    return bool(_CONTENT.match(raw)) and not re.match(r"^(---|\.\.\.)\s*$", raw)


def _syntax_error(exc: yaml.YAMLError, file: str, offset: int) -> SourceError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + offset if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        return SourceError(file, line, f"invalid YAML: {problem}")
    reason = getattr(exc, "reason", None)
    position = getattr(exc, "position", None)
    return SourceError(file, None if position is None else offset + 1, f"invalid YAML: {reason or exc}")


def _parse_chunk(chunk: str, file: str, offset: int, limits: Limits, scoping: bool) -> list[YamlDocument]:
    # Parsing allocates a node, two marks and a value per scalar and makes no garbage cycles: the cyclic
    # collector would only rescan them (a third of the time on a large file), so it pauses meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse_chunk_collected(chunk, file, offset, limits, scoping)
    finally:
        if collecting:
            gc.enable()


C_COMPOSE_MAX_NESTING = 1000
"""Documents that cannot nest deeper than this are composed by libyaml (4x faster); others by
:func:`_compose`. libyaml's composer recurses in C (~300 bytes of stack per level; it crashes the
process at ~40,000 levels on an 8 MiB stack), so it only gets documents this bound proves shallow."""


def _nesting_bound(chunk: str) -> int:
    """An upper bound on a document's nesting: every level needs a ``[``, ``{``, ``-``, ``?`` or ``:``."""
    return sum(chunk.count(c) for c in "[{-?:")


def _parse_chunk_collected(
    chunk: str, file: str, offset: int, limits: Limits, scoping: bool
) -> list[YamlDocument]:
    loader = _Loader(chunk)
    docs: list[YamlDocument] = []
    by_libyaml = _Loader is not yaml.SafeLoader and _nesting_bound(chunk) <= C_COMPOSE_MAX_NESTING
    try:
        if by_libyaml:
            while loader.check_node():
                node = loader.get_node()
                doc = YamlDocument(value=None, line=offset + 1)
                if node is not None:
                    doc.line = _mark_line(node) + offset
                    doc.lines[""] = doc.line
                    doc.value = _Builder(loader, doc, limits, offset, scoping).build(node, "")
                docs.append(doc)
            return docs
        loader.get_event()  # StreamStartEvent
        while not loader.check_event(yaml.StreamEndEvent):
            start = loader.peek_event()
            doc = YamlDocument(value=None, line=_mark_line(start) + offset)
            node = _compose(loader, limits, offset)
            if node is not None:
                doc.line = _mark_line(node) + offset
                doc.lines[""] = doc.line
                doc.value = _Builder(loader, doc, limits, offset, scoping).build(node, "")
            docs.append(doc)
    except _LimitError as exc:
        raise SourceError(file, exc.line, exc.problem) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, file, offset) from None
    except RecursionError:  # pragma: no cover - the depth cap comes first
        raise SourceError(file, offset + 1, "nested too deeply to read") from None
    finally:
        loader.dispose()
    return docs


def _json_documents(text: str, file: str, limits: Limits) -> list[YamlDocument]:
    """JSON values (one, or several concatenated) without lines: the fallback for JSON YAML refuses."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}: Kubernetes refuses it; keep one")
            out[k] = v
        return out

    decoder = json.JSONDecoder(object_pairs_hook=no_duplicates)
    docs: list[YamlDocument] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise SourceError(file, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except ValueError as exc:
            raise SourceError(file, line, f"invalid JSON: {exc}") from None
        except RecursionError:
            raise SourceError(file, line, f"nested deeper than {limits.max_depth} levels") from None
        if _depth(value) > limits.max_depth:
            raise SourceError(
                file,
                line,
                f"nested deeper than {limits.max_depth} levels (raise --max-depth if it is legitimate)",
            )
        docs.append(YamlDocument(value=value, lines={"": line}, line=line))
        if len(docs) > limits.max_documents:
            raise SourceError(file, line, _too_many(limits))
    return docs


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d + 1)
            todo += [(c, d + 1) for c in (v.values() if isinstance(v, dict) else v)]
    return deepest


def _too_many(limits: Limits) -> str:
    return f"more than {limits.max_documents} documents (raise --max-documents if it is legitimate)"


def _looks_json(text: str, file: str) -> bool:
    return file.endswith(".json") or text.lstrip()[:1] in ("{", "[")


def parse_stream(
    text: str, file: str, limits: Limits = DEFAULT_LIMITS, *, scoping: bool = False
) -> Iterator[YamlDocument | SourceError]:
    """Every document of a YAML (or JSON) stream, or the error of the document that failed.

    A file-level problem (too many documents) is a single error and nothing else. ``scoping`` also
    records ``line -> paths`` for comment suppressions.
    """
    chunks = split_documents(text)
    if len(chunks) > limits.max_documents:
        yield SourceError(file, chunks[limits.max_documents][0] + 1, _too_many(limits))
        return
    results: list[YamlDocument | SourceError] = []
    for offset, chunk in chunks:
        try:
            results += _parse_chunk(chunk, file, offset, limits, scoping)
        except SourceError as exc:
            results.append(exc)
    if any(isinstance(r, SourceError) for r in results) and _looks_json(text, file):
        try:
            yield from _json_documents(text, file, limits)
            return
        except SourceError as exc:
            if file.endswith(".json"):
                yield exc
                return
    yield from results


def load_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> YamlDocument:
    """Parse a single-document YAML text; errors raise :class:`SourceError` with file and line."""
    docs: list[YamlDocument] = []
    for item in parse_stream(text, file, limits, scoping=True):
        if isinstance(item, SourceError):
            raise item
        docs.append(item)
    if len(docs) > 1:
        raise SourceError(file, docs[1].line, "expected a single YAML document, found several (`---`)")
    doc = docs[0] if docs else YamlDocument(value=None)
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
