"""The durable usage sink: one JSON object per task try, under a path or an object-storage URL.

Why files and not the metadata database: an Airflow 3 worker has no database access (it talks to the
API server through the Task SDK), and XCom keeps only the latest try of a task instance (a retry clears
the previous try's XComs). A record written once per try to storage every worker can reach survives
retries, worker loss and remote workers; the recommender reads the same files.

Location: env ``CONTAINERKIT_USAGE_STORE``, else ``[containerkit] usage_store``, else
``$AIRFLOW_HOME/containerkit/usage``. A plain path (or ``file://``) is written atomically (temp file +
rename); any other URL (``s3://bucket/usage``, ``gs://...``) goes through Airflow's
``ObjectStoragePath`` (fsspec), which needs the matching provider installed.

Layout: ``<store>/<dag_id>/<task_id>/<run_id>.<map_index>.<try_number>.json`` (segments URL-quoted):
one writer per file, so concurrent tasks never share a file and a retry never overwrites its
predecessor.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from containerkit.usage.record import UsageRecord

ENV_STORE = "CONTAINERKIT_USAGE_STORE"
CONFIG_SECTION = "containerkit"
CONFIG_STORE = "usage_store"


def store_location() -> str:
    """Where records go (see the module docstring for the order)."""
    env = os.environ.get(ENV_STORE)
    if env:
        return env
    try:
        from airflow.configuration import conf

        configured = conf.get(CONFIG_SECTION, CONFIG_STORE, fallback="")
    except Exception:  # Airflow not importable / not configured: the default below still works
        configured = ""
    if configured:
        return str(configured)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return str(Path(home) / "containerkit" / "usage")


def _segment(value: object) -> str:
    return quote(str(value), safe="") or "_"


def record_name(record: UsageRecord) -> tuple[str, str, str]:
    """``(dag dir, task dir, file name)`` of a record."""
    return (
        _segment(record.dag_id),
        _segment(record.task_id),
        f"{_segment(record.run_id)}.{record.map_index}.{record.try_number}.json",
    )


class UsageStore:
    """Write and read usage records at one location (a directory or an object-storage URL)."""

    def __init__(self, location: str | os.PathLike[str] | None = None) -> None:
        text = os.fspath(location) if location is not None else store_location()
        parsed = urlparse(text)
        self.location = text
        self._local: Path | None = None
        if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and text[1:3] in (":\\", ":/")):
            self._local = Path(unquote(parsed.path) if parsed.scheme == "file" else text)

    def __repr__(self) -> str:
        return f"UsageStore({self.location!r})"

    def _root(self) -> Any:
        if self._local is not None:
            return self._local
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.location)

    def write(self, record: UsageRecord) -> str:
        """Store ``record``; returns where it went. Raises on failure (the caller decides to warn)."""
        dag_dir, task_dir, name = record_name(record)
        payload = json.dumps(record.to_dict(), sort_keys=True)
        if self._local is not None:
            folder = self._local / dag_dir / task_dir
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(payload + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return str(folder / name)
        target = self._root() / dag_dir / task_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(payload + "\n")
        return str(target)

    def read(self, dag_id: str | None = None, task_id: str | None = None) -> list[UsageRecord]:
        """Every record (of one DAG / task when given), oldest first."""
        root = self._root()
        if not root.exists():
            return []
        dag_dirs = [root / _segment(dag_id)] if dag_id else [p for p in root.iterdir() if p.is_dir()]
        records: list[UsageRecord] = []
        for dag_dir in dag_dirs:
            if not dag_dir.exists():
                continue
            task_dirs = (
                [dag_dir / _segment(task_id)] if task_id else [p for p in dag_dir.iterdir() if p.is_dir()]
            )
            for task_dir in task_dirs:
                if not task_dir.exists():
                    continue
                for path in task_dir.iterdir():
                    if path.name.endswith(".json") and not path.name.startswith(".tmp-"):
                        records.append(UsageRecord.from_dict(json.loads(path.read_text())))
        return sorted(records, key=lambda r: (r.started_at, r.key))


def read_history(sources: Iterable[str | os.PathLike[str]]) -> list[UsageRecord]:
    """Records from stores (directories / URLs) and exported JSON-lines files, de-duplicated by try."""
    seen: dict[tuple[str, str, str, int, int], UsageRecord] = {}
    for source in sources:
        path = Path(os.fspath(source))
        if path.is_file():
            found: Iterable[UsageRecord] = _read_lines(path)
        else:
            found = UsageStore(source).read()
        for record in found:
            seen[record.key] = record
    return sorted(seen.values(), key=lambda r: (r.started_at, r.key))


def _read_lines(path: Path) -> Iterator[UsageRecord]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield UsageRecord.from_dict(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a usage record ({exc})") from None


def write_lines(records: Iterable[UsageRecord], path: str | os.PathLike[str]) -> None:
    """Export records as JSON lines (what ``containerkit recommend --history`` reads)."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
