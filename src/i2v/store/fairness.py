"""Fair share between owners: which queued prediction the next claim takes, and where a
queued prediction stands in line under that policy.

Round-robin over the owners with queued work, oldest first within an owner, weighted by
stride scheduling: each owner has a `turn` (a virtual time, in `queue_owners`); the claim
serves the owner with the lowest turn whose running count is under its `max_running`, then
adds 1/weight to that turn. One owner's 1,000 queued predictions therefore hold another
owner's single one back by at most one claim.

An owner who comes back after a pause (or is new) enters at the current virtual time, the
highest turn any owner was last served at; otherwise its old, low turn would win it a burst
of claims for the time it was away.

The pick is one statement. PostgreSQL: for each owner (a handful of rows), a LATERAL
subquery takes its oldest queued row `FOR UPDATE SKIP LOCKED` through the
(owner, status, seq) index, so concurrent claimers pass each other and each step stays an
index probe however deep the queue is. SQLite (one writer at a time): the same as a
correlated subquery, with no locks to take.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store.tables import predictions, queue_owners

_t = predictions
_o = queue_owners
_QUEUED = Status.QUEUED.value


def _running(owner: sa.ColumnElement[str]) -> sa.ScalarSelect[int]:
    running = _t.alias("running")
    return (
        sa.select(sa.func.count())
        .select_from(running)
        .where(running.c.owner == owner, running.c.status == Status.RUNNING.value)
        .scalar_subquery()
    )


def _under_limit() -> sa.ColumnElement[bool]:
    return sa.or_(_o.c.max_running.is_(None), _running(_o.c.owner) < _o.c.max_running)


def pick(dialect: sa.Dialect, engines: Collection[str] | None) -> sa.ScalarSelect[Any]:
    """The seq of the queued prediction the fair share serves next (NULL: none)."""
    head = _t.alias("head")
    postgres = dialect.name == "postgresql"
    if postgres:
        # `owner BETWEEN o.owner AND o.owner`, not `=`, with the index's whole order: an
        # equality lets PostgreSQL drop `owner` from the ORDER BY, take the primary key
        # (seq) as ordered already and walk it filtering by owner, reading every other
        # owner's rows first (53 ms a claim for a key queued behind 100,000). This way
        # only the (owner, status, seq) index gives the order: one probe per owner.
        # (SQLite plans the equality right, and the range wrong: it keeps `=`.)
        same_owner = sa.and_(head.c.owner >= _o.c.owner, head.c.owner <= _o.c.owner)
    else:
        same_owner = head.c.owner == _o.c.owner
    oldest = (
        sa.select(head.c.seq)
        .where(same_owner, head.c.status == _QUEUED)
        .order_by(head.c.owner, head.c.status, head.c.seq)
        .limit(1)
    )
    if engines is not None:
        oldest = oldest.where(head.c.engine.in_(sorted(engines)))
    if postgres:
        lateral = oldest.with_for_update(skip_locked=True).lateral("oldest")
        return (
            sa.select(lateral.c.seq)
            .select_from(_o.join(lateral, sa.true()))
            .where(_under_limit())
            .order_by(_o.c.turn, lateral.c.seq)
            .limit(1)
            .scalar_subquery()
        )
    heads = (
        sa.select(_o.c.turn, oldest.scalar_subquery().label("seq"))
        .where(_under_limit())
        .subquery("heads")
    )
    return (
        sa.select(heads.c.seq)
        .where(heads.c.seq.is_not(None))
        .order_by(heads.c.turn, heads.c.seq)
        .limit(1)
        .scalar_subquery()
    )


def enter(conn: sa.Connection, owner: str, limits: Limits) -> None:
    """Make sure `owner` has its row, not behind the current virtual time, with its
    current weight and running limit. On PostgreSQL the row stays locked until the
    transaction ends, which serializes one owner's submits (so its limits hold exactly)."""
    now_turn = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(_o.c.served_turn), 0.0))
    ).scalar_one()
    values = {
        "owner": owner,
        "turn": now_turn,
        "served_turn": now_turn,
        "weight": limits.weight,
        "max_running": limits.max_running,
    }
    if conn.dialect.name == "postgresql":
        insert: Any = postgresql.insert(_o)
        greatest: Any = sa.func.greatest
    else:
        insert = sqlite.insert(_o)
        greatest = sa.func.max  # SQLite's two-argument max() is the scalar one
    conn.execute(
        insert.values(values).on_conflict_do_update(
            index_elements=[_o.c.owner],
            set_={
                "turn": greatest(_o.c.turn, now_turn),
                "weight": insert.excluded.weight,
                "max_running": insert.excluded.max_running,
            },
        )
    )


def served(conn: sa.Connection, owner: str, now: datetime) -> None:
    """The claim served `owner`: its turn moves on by 1/weight."""
    conn.execute(
        _o.update()
        .where(_o.c.owner == owner)
        .values(served_turn=_o.c.turn, turn=_o.c.turn + 1.0 / _o.c.weight, served_at=now)
    )


@dataclass(frozen=True)
class _Owner:
    owner: str
    turn: float
    weight: float


def place(conn: sa.Connection, p: Prediction, seq: int) -> int:
    """How many queued predictions the fair share serves before `p` (queued, row `seq`).

    `p`'s owner is served at turns t, t+1/w, ...; `p` is its k-th queued, so it goes at
    turn T = t + k/w. Every other owner B goes first with each of its queued predictions
    whose turn t_B + j/w_B comes before T (at an equal turn, the one with the older head).
    Running limits and future submits are not foreseen: it is the place as things stand.
    """
    queued = _t.c.status == _QUEUED
    owners = {
        row.owner: _Owner(row.owner, float(row.turn), float(row.weight))
        for row in conn.execute(sa.select(_o.c.owner, _o.c.turn, _o.c.weight))
    }
    mine = owners.get(p.owner, _Owner(p.owner, 0.0, 1.0))
    k = conn.execute(
        sa.select(sa.func.count()).where(queued, _t.c.owner == p.owner, _t.c.seq < seq)
    ).scalar_one()
    my_turn = mine.turn + k / mine.weight
    ahead = int(k)
    for other in owners.values():
        if other.owner == p.owner or other.turn > my_turn:
            continue
        # Turns of `other` strictly before T, plus the one landing on T when that
        # prediction is older than `p` (the claim orders equal turns by seq).
        span = (my_turn - other.turn) * other.weight
        bound = math.ceil(span)
        if bound == span:
            tied = _nth_queued(conn, other.owner, bound)
            if tied is not None and tied < seq:
                bound += 1
        if bound <= 0:
            continue
        capped = sa.select(_t.c.seq).where(queued, _t.c.owner == other.owner).limit(bound)
        ahead += conn.execute(
            sa.select(sa.func.count()).select_from(capped.subquery())
        ).scalar_one()
    return ahead


def _nth_queued(conn: sa.Connection, owner: str, n: int) -> int | None:
    """The seq of `owner`'s n-th (0-based) queued prediction, if it has that many."""
    nth = (
        sa.select(_t.c.seq)
        .where(_t.c.status == _QUEUED, _t.c.owner == owner)
        .order_by(_t.c.seq)
        .offset(n)
        .limit(1)
    )
    value = conn.execute(nth).scalar_one_or_none()
    return None if value is None else int(value)
