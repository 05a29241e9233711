"""Counts and lists for operators: the queue per route, what runs, what failed, what
finished lately. Read by `/metrics` (queue depth) and the `/admin` page; no owner filter,
so never exposed to API keys that are not admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store.database import Database
from i2v.store.rows import to_prediction
from i2v.store.tables import at, predictions

_t = predictions


@dataclass(frozen=True)
class RouteCount:
    """How many predictions of a route (catalog model path) are in a status."""

    route: str
    status: Status
    count: int


class Stats:
    """Thread-safe; every method is one statement on the reader pool."""

    def __init__(self, database: Database) -> None:
        self._reader = database.reader

    def queue_depth(self) -> dict[str, int]:
        """Queued predictions per route (routes with none are absent)."""
        query = (
            sa.select(_t.c.model, sa.func.count())
            .where(_t.c.status == Status.QUEUED.value)
            .group_by(_t.c.model)
        )
        with self._reader.connect() as conn:
            return {model: int(n) for model, n in conn.execute(query).all()}

    def running(self, limit: int = 100) -> list[Prediction]:
        """Running predictions, longest-running first."""
        query = (
            sa.select(*_t.c)
            .where(_t.c.status == Status.RUNNING.value)
            .order_by(_t.c.started_at)
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return [to_prediction(r._mapping) for r in conn.execute(query).all()]

    def recent_failures(self, limit: int = 20) -> list[Prediction]:
        """The latest failed predictions, newest first."""
        query = (
            sa.select(*_t.c)
            .where(_t.c.status == Status.FAILED.value)
            .order_by(_t.c.finished_at.desc())
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return [to_prediction(r._mapping) for r in conn.execute(query).all()]

    def finished_since(self, since: datetime) -> list[RouteCount]:
        """Predictions that finished at or after `since`, per route and final status."""
        query = (
            sa.select(_t.c.model, _t.c.status, sa.func.count())
            .where(_t.c.finished_at >= at(since))
            .group_by(_t.c.model, _t.c.status)
            .order_by(_t.c.model, _t.c.status)
        )
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [RouteCount(model, Status(status), int(n)) for model, status, n in rows]
