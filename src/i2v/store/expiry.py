"""Retention's side of the store: finished predictions whose media are due to expire, and
the mark that says they did (`expired_at`). The sweeper (`i2v.worker.sweeper`) deletes the
objects between the two, so a crash in between leaves the row due and it is swept again.
Uploads due to expire are `i2v.store.uploads`'s.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from i2v.domain.prediction import Prediction
from i2v.domain.status import TERMINAL
from i2v.store.changes import Changes
from i2v.store.clock import Clock
from i2v.store.database import Database
from i2v.store.rows import to_prediction
from i2v.store.tables import at, predictions

_t = predictions
_FINISHED = sorted(s.value for s in TERMINAL)


class Expiry:
    """Every method is one short transaction; thread-safe."""

    def __init__(self, database: Database, changes: Changes, clock: Clock) -> None:
        self._database = database
        self._changes = changes
        self._clock = clock

    def due(self, finished_before: datetime, *, limit: int) -> builtins.list[Prediction]:
        """Up to `limit` finished predictions, oldest first, that finished before
        `finished_before` and whose media are still kept. Unfinished ones never are."""
        query = (
            sa.select(*_t.c)
            .where(
                _t.c.finished_at.is_not(None),
                _t.c.expired_at.is_(None),
                _t.c.finished_at < at(finished_before),
                _t.c.status.in_(_FINISHED),
            )
            .order_by(_t.c.finished_at)
            .limit(limit)
        )
        with self._database.read() as conn:
            return [to_prediction(r._mapping) for r in conn.execute(query)]

    def expired(self, ids: Sequence[str]) -> int:
        """Mark these predictions' media as deleted; returns how many rows changed."""
        if not ids:
            return 0
        now = self._clock()
        update = (
            _t.update()
            .where(_t.c.id.in_(sorted(set(ids))), _t.c.expired_at.is_(None))
            .values(expired_at=now, updated_at=now)
            .returning(_t.c.id)
        )
        with self._database.write() as conn:
            changed = [r.id for r in conn.execute(update)]
        self._changes.notify_change(*changed)
        return len(changed)
