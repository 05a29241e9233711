"""The store's database: its engines and transactions, on SQLite or PostgreSQL.

`Database.open` connects and brings the schema to the newest revision; `write()` and
`read()` are the transactions every part of the store runs its statements in.

SQLite: WAL (readers never block the writer), `synchronous=NORMAL` (durable at each WAL
checkpoint and safe against corruption), a busy timeout, foreign keys on. Write
transactions start with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a
writer gets SQLITE_BUSY at once, without waiting out the busy timeout, which is exactly the
`database is locked` error concurrent claimers would otherwise see. pysqlite's own
transaction handling is switched off so that SQLAlchemy's `begin` event can emit ours
(the SQLAlchemy "Serializable isolation / Savepoints / Transactional DDL" recipe).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from i2v.domain.errors import DatabaseUnavailable
from i2v.store import migrate

BUSY_TIMEOUT_MS = 5000
WRITE_OPTION = "i2v_write"  # execution option: this connection's transactions write

# Arbitrary constant naming the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x1297_0001


class Database:
    """A writer engine, and a reader engine for single-statement reads. Thread-safe."""

    def __init__(self, engine: sa.Engine, *, reader: sa.Engine | None = None) -> None:
        self.engine = engine
        # Single-statement reads get their own pool, so a read never queues for a
        # connection behind writers waiting on the SQLite write lock.
        self.reader = reader or engine

    @classmethod
    def open(cls, url: str) -> Database:
        """Connect and bring the schema to the newest revision (safe from many processes)."""
        engine = create_engine(url)
        reader = create_engine(url) if is_sqlite(engine) else None
        database = cls(engine, reader=reader)
        try:
            with database.write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                migrate.upgrade(conn)
        except BaseException:
            database.close()
            raise
        return database

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed when the block ends."""
        with outages_named(self.engine), self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[sa.Connection]:
        """A read-only transaction, for reads of more than one statement. `snapshot`: all of
        them see one moment (PostgreSQL: REPEATABLE READ; a SQLite read transaction always
        does)."""
        with outages_named(self.engine), self.engine.connect() as conn:
            if snapshot and not self.is_sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()
        self.reader.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url!r})"


@contextmanager
def outages_named(engine: sa.Engine) -> Iterator[None]:
    """Turn "the database did not answer" into `DatabaseUnavailable`, so callers (the API
    edge: 503; the worker: leave the job to its lease) need not know SQLAlchemy or the
    driver. Both spellings are caught: SQLAlchemy wraps what it executes, but a raw DBAPI
    cursor (`Lookup`) raises the driver's own class."""
    dbapi = engine.dialect.loaded_dbapi
    outages = (sa.exc.OperationalError, sa.exc.InterfaceError)
    try:
        yield
    except (*outages, dbapi.OperationalError, dbapi.InterfaceError) as exc:
        detail = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).strip()
        first = detail.splitlines()[0] if detail else type(exc).__name__
        raise DatabaseUnavailable(f"the database did not answer: {first}") from exc


def create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _create_private(database: str) -> None:
    """Create the SQLite file owner-only (0600) if it does not exist: it holds inputs and
    webhook URLs. SQLite gives its -wal and -shm files the same mode."""
    if database.startswith("file:"):
        return  # a URI filename: SQLite parses it; we leave it alone
    with suppress(FileExistsError):  # an existing file keeps its mode
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        # Each pooled connection would get its own empty database.
        raise ValueError(f"database_url: the store needs a SQLite file, got {url}")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    _create_private(database)
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
