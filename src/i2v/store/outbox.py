"""The webhook outbox: deliveries owed by finished predictions.

There is no outbox table. A prediction submitted with a webhook carries its URL in its row,
so the very statement that finishes it (succeed, fail, cancel, sweep) also records that a
delivery is owed: nothing to keep consistent, and no crash between the two can lose one.
A sender claims owed deliveries like a worker claims jobs: `webhook_next_at` is pushed past
the send's deadline (a lease: a sender that dies mid-send is retried after it), and the
attempt count fences the sender's report so a late one cannot undo a newer attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from i2v.domain.prediction import Prediction
from i2v.domain.status import TERMINAL
from i2v.store.rows import to_prediction
from i2v.store.tables import at, predictions

_t = predictions
_FINISHED = sorted(s.value for s in TERMINAL)


@dataclass(frozen=True)
class Delivery:
    prediction: Prediction  # as finished; the sender renders the payload from it
    attempt: int  # 1 for the first try; the same webhook-id across attempts


class Outbox:
    def __init__(
        self,
        write: Callable[[], AbstractContextManager[sa.Connection]],
        clock: Callable[[], datetime],
    ) -> None:
        self._write = write
        self._clock = clock

    def claim(self, *, limit: int, lease_seconds: float, max_attempts: int) -> list[Delivery]:
        """Up to `limit` deliveries that are due, oldest first, each leased for
        `lease_seconds` (longer than one send may take). A due delivery that already had
        `max_attempts` (its sender died each time before reporting) is given up instead."""
        now = self._clock()
        owed = sa.and_(
            _t.c.webhook.is_not(None),
            _t.c.webhook_done_at.is_(None),
            _t.c.status.in_(_FINISHED),
            sa.or_(_t.c.webhook_next_at.is_(None), _t.c.webhook_next_at <= at(now)),
        )
        exhausted = _t.c.webhook_attempts >= max_attempts
        give_up = (
            _t.update()
            .where(owed, exhausted)
            .values(
                webhook_done_at=at(now),
                webhook_next_at=None,
                webhook_error=f"gave up after {max_attempts} attempts with no answer recorded",
            )
        )
        due = (
            sa.select(_t.c.seq)
            .where(owed, sa.not_(exhausted))
            .order_by(_t.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL: senders pass each other
            .scalar_subquery()
        )
        lease = (
            _t.update()
            .where(_t.c.seq.in_(due))
            .values(
                webhook_attempts=_t.c.webhook_attempts + 1,
                webhook_next_at=at(now + timedelta(seconds=lease_seconds)),
            )
            .returning(*_t.c)
        )
        with self._write() as conn:
            conn.execute(give_up)
            rows = conn.execute(lease).all()
        deliveries = [Delivery(to_prediction(r._mapping), r.webhook_attempts) for r in rows]
        return sorted(deliveries, key=lambda d: d.prediction.finished_at or now)

    def delivered(self, id: str, *, attempt: int) -> bool:
        """The receiver acknowledged `attempt`; False if a newer attempt owns the row."""
        now = self._clock()
        return self._report(
            id, attempt, webhook_done_at=at(now), webhook_next_at=None, webhook_error=""
        )

    def failed(self, id: str, *, attempt: int, error: str, retry_at: datetime | None) -> bool:
        """`attempt` failed: try again at `retry_at`, or never (None: given up)."""
        if retry_at is None:
            values = {"webhook_done_at": at(self._clock()), "webhook_next_at": None}
        else:
            values = {"webhook_next_at": at(retry_at)}
        return self._report(id, attempt, webhook_error=error, **values)

    def _report(self, id: str, attempt: int, **values: object) -> bool:
        fenced = _t.update().where(
            _t.c.id == id, _t.c.webhook_attempts == attempt, _t.c.webhook_done_at.is_(None)
        )
        with self._write() as conn:
            return conn.execute(fenced.values(**values)).rowcount == 1
