"""Wait until Airflow's metadata database (and, with ``--broker``, its Celery broker) accepts connections.

Reads the settings through Airflow's own configuration, so ``AIRFLOW__..._CMD`` / ``_SECRET`` and
``airflow.cfg`` values count exactly as they do for Airflow itself. The database is checked with a real
SQLAlchemy connection (``SELECT 1``), the broker with a TCP connect. Exits non-zero after
``CONNECTION_CHECK_MAX_COUNT`` failed tries, ``CONNECTION_CHECK_SLEEP_TIME`` seconds apart.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "sqs": 443}


def _check_db(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _check_tcp(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or DEFAULT_PORTS.get(parts.scheme.split("+")[0], 0)
    if not port:
        return  # a transport without a TCP endpoint to probe (e.g. filesystem): nothing to wait for
    with socket.create_connection((host, port), timeout=5):
        pass


def _redact(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _wait(what: str, url: str, check: Callable[[str], None], tries: int, pause: float) -> bool:
    for attempt in range(1, tries + 1):
        try:
            check(url)
        except Exception as exc:  # any failure means "not ready yet"
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"waiting for {what} {_redact(url)} ({attempt}/{tries}): {reason}", file=sys.stderr)
            if attempt < tries:
                time.sleep(pause)
        else:
            return True
    print(f"{what} {_redact(url)} not reachable after {tries} tries", file=sys.stderr)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", action="store_true", help="wait for the metadata database")
    parser.add_argument("--broker", action="store_true", help="wait for the Celery broker")
    args = parser.parse_args()
    tries = int(os.environ.get("CONNECTION_CHECK_MAX_COUNT", "20"))
    pause = float(os.environ.get("CONNECTION_CHECK_SLEEP_TIME", "3"))

    from airflow.configuration import conf

    ok = True
    if args.db:
        ok &= _wait("database", conf.get("database", "sql_alchemy_conn"), _check_db, tries, pause)
    if args.broker and conf.has_option("celery", "broker_url"):
        ok &= _wait("broker", conf.get("celery", "broker_url"), _check_tcp, tries, pause)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
