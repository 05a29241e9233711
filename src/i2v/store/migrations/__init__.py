"""Alembic migrations; `i2v.store.migrate.upgrade` runs them in code (no alembic.ini)."""

from __future__ import annotations
