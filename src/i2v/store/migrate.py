"""Bring a database to the newest schema with Alembic, configured in code (no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: sa.Connection) -> None:
    """Run `upgrade head` inside the caller's open transaction.

    The caller holds a write transaction (SQLite: BEGIN IMMEDIATE), so several processes
    opening the store at once take turns: the first migrates, the others find the head
    revision already recorded and do nothing. Alembic joins the outer transaction instead
    of committing on its own.
    """
    if current_revision(connection) == head_revision():
        return
    command.upgrade(alembic_config(connection), "head")
