"""Admission: what a submit passes, inside its own write transaction, before its row goes
in: a retried submit is answered with the prediction it already made (idempotency), and a
key over one of its limits is refused (`RateLimited`). Both read only the database, so
every API process sees the same answer; the owner's `queue_owners` row, locked first by
`fairness.enter`, serializes one owner's submits on PostgreSQL (SQLite has one writer).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa

from i2v.domain.errors import Conflict, RateLimited
from i2v.domain.idempotency import IDEMPOTENCY_WINDOW, Idempotency
from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store.rows import to_key, to_prediction
from i2v.store.tables import api_keys, predictions

_t = predictions
_k = api_keys

RATE_WINDOW = timedelta(minutes=1)
# A key at its queued limit waits for its own work to start; nothing says when, so
# clients are told to look again shortly.
QUEUE_FULL_RETRY_S = 10.0


def limits_of(conn: sa.Connection, owner: str, defaults: Limits) -> Limits:
    """The owner's limits: its key's own (keys made with `i2v keys create`), else `defaults`."""
    row = conn.execute(
        sa.select(*_k.c).where(_k.c.key_hash == owner, _k.c.revoked_at.is_(None))
    ).first()
    return defaults if row is None else to_key(row).limits(defaults)


def replay(
    conn: sa.Connection,
    owner: str,
    idempotency: Idempotency,
    now: datetime,
    *,
    release: bool = True,
) -> Prediction | None:
    """The prediction an earlier submit with this key made within the window, or None.

    `Conflict` if that submit had another body. With `release` (in a write transaction),
    a key older than the window is cleared from its old row so it can be used again."""
    row = conn.execute(
        sa.select(*_t.c).where(_t.c.owner == owner, _t.c.idempotency_key == idempotency.key)
    ).first()
    if row is None:
        return None
    if row.created_at < now - IDEMPOTENCY_WINDOW:
        if release:
            conn.execute(_t.update().where(_t.c.seq == row.seq).values(idempotency_key=None))
        return None
    if row.request_hash != idempotency.body_hash:
        raise Conflict(
            f"Idempotency-Key: {idempotency.key!r} was already used for prediction {row.id}"
            " with a different request body; send a new key for a new request"
        )
    return to_prediction(row._mapping)


def check_limits(conn: sa.Connection, owner: str, limits: Limits, now: datetime) -> None:
    """`RateLimited` if one more submit would take the owner over a limit."""
    if limits.max_queued is not None:
        queued = (
            sa.select(_t.c.seq)
            .where(_t.c.owner == owner, _t.c.status == Status.QUEUED.value)
            .limit(limits.max_queued)
        )
        count = conn.execute(sa.select(sa.func.count()).select_from(queued.subquery()))
        if count.scalar_one() >= limits.max_queued:
            raise RateLimited(
                f"max_queued: this key already has {limits.max_queued} predictions queued,"
                " its limit; submit again once some have started",
                retry_after_s=QUEUE_FULL_RETRY_S,
            )
    if limits.rate_per_minute is not None:
        # The rate-th most recent submit: while it is inside the window, the window is full.
        nth = (
            sa.select(_t.c.created_at)
            .where(_t.c.owner == owner)
            .order_by(_t.c.created_at.desc())
            .offset(limits.rate_per_minute - 1)
            .limit(1)
        )
        oldest = conn.execute(nth).scalar_one_or_none()
        if oldest is not None and oldest > now - RATE_WINDOW:
            wait = (oldest + RATE_WINDOW - now).total_seconds()
            raise RateLimited(
                f"rate_per_minute: this key may submit {limits.rate_per_minute} predictions"
                f" a minute; try again in {math.ceil(wait)} s",
                retry_after_s=wait,
            )
