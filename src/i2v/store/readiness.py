"""Whether the database can serve this code now: it answers, and its schema is the newest."""

from __future__ import annotations

import functools

from i2v.domain.errors import DatabaseUnavailable
from i2v.store import migrate
from i2v.store.database import Database, outages_named


@functools.cache
def _head() -> str | None:
    # The revisions on disk do not change while the process runs.
    return migrate.head_revision()


def database_problem(database: Database) -> str | None:
    """Why the database cannot serve this code (unreachable, or its schema is not at this
    code's newest revision), in one line; None when it can."""
    try:
        # The store's one notion of an outage, so /readyz and the 503s agree on it.
        with outages_named(database.reader), database.reader.connect() as conn:
            current = migrate.current_revision(conn)
    except DatabaseUnavailable as exc:
        return f"database: does not answer ({exc.message})"
    head = _head()
    if current != head:
        return (
            f"database: schema at revision {current or 'none'}, this code needs {head}; "
            "restart a server or worker of this version to migrate it"
        )
    return None
