"""Whether the database can serve this code now: it answers, and its schema is the newest."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from i2v.store import migrate
from i2v.store.database import Database


@functools.cache
def _head() -> str | None:
    # The revisions on disk do not change while the process runs.
    return migrate.head_revision()


def database_problem(database: Database) -> str | None:
    """Why the database cannot serve this code (unreachable, or its schema is not at this
    code's newest revision), in one line; None when it can."""
    try:
        with database.reader.connect() as conn:
            current = migrate.current_revision(conn)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
        return f"database: does not answer ({type(exc).__name__}: {_first_line(reason)})"
    head = _head()
    if current != head:
        return (
            f"database: schema at revision {current or 'none'}, this code needs {head}; "
            "restart a server or worker of this version to migrate it"
        )
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"
