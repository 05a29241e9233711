"""Engines for the store: SQLite tuned as a single-writer queue, or PostgreSQL.

SQLite: WAL (readers never block the writer), `synchronous=NORMAL` (durable at each WAL
checkpoint and safe against corruption), a busy timeout, foreign keys on. Write
transactions start with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a
writer gets SQLITE_BUSY at once, without waiting out the busy timeout, which is exactly the
`database is locked` error concurrent claimers would otherwise see. pysqlite's own
transaction handling is switched off so that SQLAlchemy's `begin` event can emit ours
(the SQLAlchemy "Serializable isolation / Savepoints / Transactional DDL" recipe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

BUSY_TIMEOUT_MS = 5000
WRITE_OPTION = "i2v_write"  # execution option: this connection's transactions write


def create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        # Each pooled connection would get its own empty database.
        raise ValueError(f"database_url: the store needs a SQLite file, got {url}")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for other openers.
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
