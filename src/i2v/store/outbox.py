"""The webhook outbox: deliveries owed by finished predictions.

There is no outbox table. A prediction submitted with a webhook carries its URL in its row,
so the very statement that finishes it (succeed, fail, cancel, sweep) also records that a
delivery is owed: nothing to keep consistent, and no crash between the two can lose one.
A sender claims owed deliveries like a worker claims jobs: `webhook_next_at` is pushed past
the send's deadline (a lease: a sender that dies mid-send is retried after it), and the
attempt count fences the sender's report so a late one cannot undo a newer attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from i2v.domain.prediction import Prediction
from i2v.domain.status import TERMINAL
from i2v.store.clock import Clock
from i2v.store.database import Database
from i2v.store.rows import to_prediction
from i2v.store.tables import at, predictions

_t = predictions
_FINISHED = sorted(s.value for s in TERMINAL)


@dataclass(frozen=True)
class Delivery:
    prediction: Prediction  # as finished; the sender renders the payload from it
    attempt: int  # 1 for the first try; the same webhook-id across attempts


class Outbox:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        per_owner: int | None = None,
        busy: Mapping[str, int] | None = None,
    ) -> list[Delivery]:
        """Up to `limit` deliveries that are due, each leased for `lease_seconds` (longer
        than one send may take), taken round-robin over owners: every owner's oldest first,
        then every owner's second, ... so one owner's backlog cannot take every slot. With
        `per_owner`, an owner gets at most that many in flight, counting the `busy` ones
        it has in flight already. A due delivery that already had `max_attempts` (its
        sender died each time before reporting) is given up instead."""
        now = self._clock()
        busy = busy or {}
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
        # Each owed delivery's turn: 1 for its owner's oldest, 2 for the next...
        turn = sa.func.row_number().over(partition_by=_t.c.owner, order_by=_t.c.seq)
        ranked = (
            sa.select(_t.c.seq, _t.c.owner, turn.label("turn"))
            .where(owed, sa.not_(exhausted))
            .subquery()
        )
        candidates = sa.select(ranked.c.seq, ranked.c.owner).order_by(ranked.c.turn, ranked.c.seq)
        if per_owner is not None:
            candidates = candidates.where(ranked.c.turn <= per_owner)
        # The busy owners' turns that are skipped below, plus `limit` to take.
        candidates = candidates.limit(limit + sum(busy.values()))
        with self._database.write() as conn:
            conn.execute(give_up)
            rows = [(r.seq, r.owner) for r in conn.execute(candidates)]
            picked = _round_robin(rows, limit, per_owner, busy)
            if not picked:
                return []
            # The lease checks again that each is owed and due: a sender that picked the
            # same rows concurrently (PostgreSQL) leased them first, and this one skips them.
            lease = (
                _t.update()
                .where(_t.c.seq.in_(picked), owed, sa.not_(exhausted))
                .values(
                    webhook_attempts=_t.c.webhook_attempts + 1,
                    webhook_next_at=at(now + timedelta(seconds=lease_seconds)),
                )
                .returning(*_t.c)
            )
            leased = conn.execute(lease).all()
        deliveries = [Delivery(to_prediction(r._mapping), r.webhook_attempts) for r in leased]
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
        with self._database.write() as conn:
            return conn.execute(fenced.values(**values)).rowcount == 1


def _round_robin(
    candidates: Sequence[tuple[int, str]],
    limit: int,
    per_owner: int | None,
    busy: Mapping[str, int],
) -> list[int]:
    """The seqs to lease from `candidates` ((seq, owner) in turn order), up to `limit`,
    none for an owner past `per_owner` in flight with its `busy` ones."""
    room: dict[str, int] = {}
    picked: list[int] = []
    for seq, owner in candidates:
        left = room.get(owner, limit if per_owner is None else per_owner - busy.get(owner, 0))
        if left <= 0:
            continue
        room[owner] = left - 1
        picked.append(seq)
        if len(picked) == limit:
            break
    return picked
