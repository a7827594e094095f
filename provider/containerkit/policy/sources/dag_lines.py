"""Where in a DAG file each task is written: the line of its operator call or its ``@task`` decorator.

A task object does not remember its source line, so the file is read with :mod:`ast`: a call with a
literal ``task_id="..."`` keyword is that task; a decorated function is the task named by the
decorator's ``task_id=`` or by the function. Task ids built at run time (f-strings, loops) have no
literal: their findings point at the ``DAG(...)`` call or ``@dag`` decorator, else line 1.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskLines:
    tasks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """task id -> (line, column), both 1-based."""
    dags: dict[str, tuple[int, int]] = field(default_factory=dict)
    """dag id -> (line, column) of its ``DAG(...)``/``@dag``; key ``""`` = the first one in the file."""

    def of(self, task_id: str | None, dag_id: str | None = None) -> tuple[int, int]:
        if task_id:
            short = task_id.rsplit(".", 1)[-1]  # a TaskGroup prefixes the group id
            for key in (task_id, short):
                if key in self.tasks:
                    return self.tasks[key]
        if dag_id and dag_id in self.dags:
            return self.dags[dag_id]
        return self.dags.get("", (1, 1))


def _literal_kw(call: ast.Call, name: str) -> str | None:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    return None


def _callee(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


@functools.lru_cache(maxsize=256)
def task_lines(file: str, mtime: float = 0.0) -> TaskLines:
    """The task and DAG positions of one DAG file (``mtime`` keys the cache)."""
    try:
        with open(file, encoding="utf-8", errors="replace") as fh:
            tree = ast.parse(fh.read(), filename=file)
    except (OSError, SyntaxError, ValueError, RecursionError):
        return TaskLines()
    out = TaskLines()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            where = (node.lineno, node.col_offset + 1)
            task_id = _literal_kw(node, "task_id")
            if task_id is not None:
                out.tasks.setdefault(task_id, where)
            if _callee(node) == "DAG":
                dag_id = _literal_kw(node, "dag_id")
                if dag_id is None and node.args and isinstance(node.args[0], ast.Constant):
                    dag_id = str(node.args[0].value)
                out.dags.setdefault(dag_id or "", where)
                out.dags.setdefault("", where)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                where = (deco.lineno, deco.col_offset + 1)
                name = _callee(deco)
                root = deco.func if isinstance(deco, ast.Call) else deco
                is_task = name == "task" or (
                    isinstance(root, ast.Attribute) and _callee(root.value) == "task"
                )
                if is_task:
                    explicit = _literal_kw(deco, "task_id") if isinstance(deco, ast.Call) else None
                    out.tasks.setdefault(explicit or node.name, where)
                elif name == "dag":
                    explicit = _literal_kw(deco, "dag_id") if isinstance(deco, ast.Call) else None
                    out.dags.setdefault(explicit or node.name, where)
                    out.dags.setdefault("", where)
    return out
