"""The queue: the `predictions` table's state machine (submit, claim, leases, finishes).

Every state change is one conditional UPDATE whose WHERE holds `status IN transition.sources`
(see `i2v.domain.status`), so two writers can never both win. Worker writes are also fenced
by `(attempt, lease_owner)`: a worker whose lease expired and whose job was claimed again
gets `LeaseLost` instead of overwriting the new attempt.

Claim takes the oldest running row whose lease expired and that has attempts left (rescue
inside the claim, as pgqueuer does), else the queued row the fair share between owners picks
(`i2v.store.fairness`); submit admits a row past its owner's limits and idempotency key
(`i2v.store.admission`); `sweep` finishes expired rows that
must not run again. On SQLite the claim runs inside BEGIN IMMEDIATE (one writer at a time);
on PostgreSQL its subquery uses FOR UPDATE SKIP LOCKED so claimers pass each other.
Each transition announces itself through `Changes` once committed.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from i2v.domain.errors import Conflict, LeaseLost, NotFound
from i2v.domain.idempotency import Idempotency
from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.domain.status import (
    CANCEL,
    CLAIM,
    FAIL,
    REQUEUE,
    SUCCEED,
    TERMINAL,
    Status,
    Transition,
)
from i2v.store import admission, fairness
from i2v.store.changes import Changes
from i2v.store.clock import Clock
from i2v.store.database import Database
from i2v.store.records import CancelKind, CancelOutcome
from i2v.store.rows import prediction_values, to_prediction
from i2v.store.tables import UtcDateTime, predictions

_t = predictions

_INSERT = _t.insert()


def _cancel_updates(where: sa.ColumnElement[bool], now: datetime) -> tuple[sa.Update, sa.Update]:
    """CANCEL for the queued rows matching `where`; a cancel request for the running ones
    (their worker stops at its next step and acknowledges)."""
    cancel_queued = (
        _t.update()
        .where(where, _sources(CANCEL, Status.QUEUED))
        .values(status=CANCEL.target.value, finished_at=now, updated_at=now)
    )
    request_cancel = (
        _t.update()
        .where(where, _t.c.status == Status.RUNNING.value)
        .values(cancel_requested=True, updated_at=now)
    )
    return cancel_queued, request_cancel


def _sources(transition: Transition, *only: Status) -> sa.ColumnElement[bool]:
    allowed = transition.sources & frozenset(only) if only else transition.sources
    return _t.c.status.in_(sorted(s.value for s in allowed))


# The hot statements are built once: building a statement over this 30-column table costs
# more than running it. Their moments are bound at execution as `now` (and `lease_until`).
_NOW = sa.bindparam("now", type_=UtcDateTime())


@functools.lru_cache(maxsize=64)
def _claim_statement(dialect: sa.Dialect, engines: tuple[str, ...] | None) -> sa.Update:
    """The claim for workers serving `engines` (None: any); binds now, worker_id and
    lease_until."""
    rescuable = sa.and_(
        _sources(REQUEUE),
        _t.c.lease_until < _NOW,
        _t.c.attempt < _t.c.max_attempts,
        sa.not_(_t.c.cancel_requested),
    )
    claimable = sa.or_(_sources(CLAIM), rescuable)
    rescue = sa.select(_t.c.seq).where(rescuable)
    if engines is not None:
        rescue = rescue.where(_t.c.engine.in_(engines))
    # A rescue first (its owner's turn was taken when it was first claimed), else the
    # fair share's pick. LIMITs inside scalar subqueries: each is evaluated once, so
    # the UPDATE touches one row.
    rescued = rescue.order_by(_t.c.seq).limit(1).with_for_update(skip_locked=True)
    target = sa.func.coalesce(
        rescued.correlate(None).scalar_subquery(), fairness.pick(dialect, engines)
    )
    return (
        _t.update()
        .where(_t.c.seq == target, claimable)
        .values(
            status=CLAIM.target.value,
            attempt=_t.c.attempt + 1,
            lease_owner=sa.bindparam("worker_id", type_=sa.String()),
            lease_until=sa.bindparam("lease_until", type_=UtcDateTime()),
            started_at=sa.func.coalesce(_t.c.started_at, _NOW),
            progress=0.0,
            progress_message="",
            updated_at=_NOW,
        )
        .returning(*_t.c)
    )


def _sweep_statements() -> tuple[sa.Update, sa.Update]:
    """Running rows whose lease expired and that must not run again: CANCELLED if a cancel
    was requested, else FAILED once out of attempts. Binds now."""
    expired = sa.and_(_t.c.status == Status.RUNNING.value, _t.c.lease_until < _NOW)

    def rows(*where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        # PostgreSQL: rows another sweeper holds are skipped, so sweepers never deadlock.
        locked = (
            sa.select(_t.c.seq)
            .where(expired, *where)
            .with_for_update(skip_locked=True)
            .correlate(None)  # a set of rows, not a per-row condition
        )
        return _t.c.seq.in_(locked.scalar_subquery())

    cancelled = (
        _t.update()
        .where(rows(_sources(CANCEL), _t.c.cancel_requested))
        .values(status=CANCEL.target.value, finished_at=_NOW, lease_until=None, updated_at=_NOW)
        .returning(_t.c.id)
    )
    error = (
        sa.literal("worker lost the job ")
        + sa.cast(_t.c.attempt, sa.String)
        + sa.literal(" times (its lease expired each time); giving up")
    )
    failed = (
        _t.update()
        .where(rows(_sources(FAIL), _t.c.attempt >= _t.c.max_attempts))
        .values(
            status=FAIL.target.value,
            error=error,
            finished_at=_NOW,
            lease_until=None,
            updated_at=_NOW,
        )
        .returning(_t.c.id)
    )
    return cancelled, failed


_SWEEP_CANCELLED, _SWEEP_FAILED = _sweep_statements()


class Queue:
    """Every method is one short transaction; thread-safe."""

    def __init__(self, database: Database, changes: Changes, clock: Clock, limits: Limits) -> None:
        self._database = database
        self._changes = changes
        self._clock = clock
        self._limits = limits  # for keys that set none of their own

    # -- submit ---------------------------------------------------------------------------

    def submit(self, p: Prediction, *, idempotency: Idempotency | None = None) -> Prediction:
        """Insert a new prediction as QUEUED (its status field is ignored).

        With `idempotency`, a submit that repeats an earlier one (same key and body within
        24 h) returns the prediction that one made (its id differs from `p.id`), and the
        same key with another body is a `Conflict`. `RateLimited` when the owner is over
        one of its limits (see `i2v.domain.limits`)."""
        now = self._clock()
        values = prediction_values(p, now=now)
        values.update(
            status=Status.QUEUED.value,
            cancel_requested=False,
            lease_owner=None,
            lease_until=None,
            expired_at=None,
            idempotency_key=idempotency.key if idempotency else None,
            request_hash=idempotency.body_hash if idempotency else None,
        )
        try:
            with self._database.write() as conn:
                limits = admission.limits_of(conn, p.owner, self._limits)
                fairness.enter(conn, p.owner, limits)  # first: it locks the owner's row
                if idempotency is not None:
                    earlier = admission.replay(conn, p.owner, idempotency, now)
                    if earlier is not None:
                        return earlier
                admission.check_limits(conn, p.owner, limits, now)
                conn.execute(_INSERT, values)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"id: a prediction with id {p.id!r} already exists") from exc
        self._changes.notify_work()
        self._changes.notify_change(p.id)
        return replace(
            p, status=Status.QUEUED, cancel_requested=False, lease_owner=None, lease_until=None
        )

    def submitted(self, owner: str, idempotency: Idempotency) -> Prediction | None:
        """The prediction an earlier submit with this Idempotency-Key and body made within
        24 h, or None; `Conflict` if it came with another body. A read, for callers to
        skip work a retried submit does not need; `submit` decides for good."""
        with self._database.read() as conn:
            return admission.replay(conn, owner, idempotency, self._clock(), release=False)

    # -- the worker's side ----------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        *,
        lease_seconds: float,
        engines: Collection[str] | None = None,
    ) -> Prediction | None:
        """Take the next claimable prediction for one of `engines` (None: any), or None:
        a running one whose lease expired, else the next queued one under the fair share
        between owners (`i2v.store.fairness`): round-robin over owners, oldest first within
        each, skipping owners at their running limit.

        The row becomes RUNNING under a lease held by `worker_id` until now+lease_seconds;
        its attempt goes up by one. A running row whose lease expired is claimable again
        while it has attempts left (its old worker is presumed dead; fencing stops it if not).
        """
        if engines is not None and not engines:
            return None
        now = self._clock()
        update = _claim_statement(
            self._database.engine.dialect, None if engines is None else tuple(sorted(engines))
        )
        values = {
            "now": now,
            "worker_id": worker_id,
            "lease_until": now + timedelta(seconds=lease_seconds),
        }
        with self._database.write() as conn:
            swept = self._sweep(conn, now)
            row = conn.execute(update, values).first()
            if row is not None:
                fairness.served(conn, row.owner, now)
        claimed = to_prediction(row._mapping) if row is not None else None
        self._changes.notify_change(*swept, *([claimed.id] if claimed else []))
        return claimed

    def sweep(self) -> int:
        """Finish running rows whose lease expired and that must not run again; returns how many.

        No attempts left: FAILED. Cancel requested: CANCELLED (its owner asked to stop it).
        `claim` runs this too, so a separate caller is optional.
        """
        with self._database.write() as conn:
            swept = self._sweep(conn, self._clock())
        self._changes.notify_change(*swept)
        return len(swept)

    def _sweep(self, conn: sa.Connection, now: datetime) -> list[str]:
        cancelled = conn.execute(_SWEEP_CANCELLED, {"now": now}).all()
        failed = conn.execute(_SWEEP_FAILED, {"now": now}).all()
        return [r.id for r in (*cancelled, *failed)]

    def _fence(self, id: str, attempt: int, worker_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(_t.c.id == id, _t.c.attempt == attempt, _t.c.lease_owner == worker_id)

    def _lease_lost(self, conn: sa.Connection, id: str, attempt: int, worker_id: str) -> LeaseLost:
        row = conn.execute(
            sa.select(_t.c.status, _t.c.attempt, _t.c.lease_owner).where(_t.c.id == id)
        ).first()
        state = (
            "it no longer exists"
            if row is None
            else f"it is now {row.status}, attempt {row.attempt} held by {row.lease_owner}"
        )
        return LeaseLost(
            f"prediction {id}: worker {worker_id} lost its lease on attempt {attempt}; {state}"
        )

    def _finish(
        self,
        transition: Transition,
        id: str,
        attempt: int,
        worker_id: str,
        values: dict[str, Any],
        *,
        where: sa.ColumnElement[bool] | None = None,
        status: Any = None,
    ) -> Prediction:
        """One fenced UPDATE of a running row; `LeaseLost` if the fence refuses it.
        `status` may be an SQL expression when the statement itself picks the target."""
        now = self._clock()
        update = (
            _t.update()
            .where(
                self._fence(id, attempt, worker_id),
                _sources(transition, Status.RUNNING),
                where if where is not None else sa.true(),
            )
            .values(
                status=status if status is not None else transition.target.value,
                updated_at=now,
                **values,
            )
            .returning(*_t.c)
        )
        with self._database.write() as conn:
            row = conn.execute(update).first()
            if row is None:
                raise self._lease_lost(conn, id, attempt, worker_id)
        self._changes.notify_change(id)
        return to_prediction(row._mapping)

    def heartbeat(
        self,
        id: str,
        *,
        attempt: int,
        worker_id: str,
        lease_seconds: float,
        progress: float | None = None,
        message: str | None = None,
    ) -> bool:
        """Extend the lease and record progress; returns whether a cancel was requested."""
        now = self._clock()
        values: dict[str, Any] = {
            "lease_until": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        }
        if progress is not None:
            values["progress"] = min(max(float(progress), 0.0), 1.0)
        if message is not None:
            values["progress_message"] = message
        update = (
            _t.update()
            .where(self._fence(id, attempt, worker_id), _t.c.status == Status.RUNNING.value)
            .values(values)
            .returning(_t.c.cancel_requested)
        )
        with self._database.write() as conn:
            cancel_requested = conn.execute(update).scalar_one_or_none()
            if cancel_requested is None:
                raise self._lease_lost(conn, id, attempt, worker_id)
        self._changes.notify_change(id)
        return bool(cancel_requested)

    def succeed(
        self,
        id: str,
        *,
        attempt: int,
        worker_id: str,
        output_key: str,
        inference_ms: int,
        nsfw: list[bool],
    ) -> Prediction:
        """RUNNING -> SUCCEEDED. Call only after the output object exists.

        A cancel requested while the last frames were encoded wins: the owner was told
        the job is cancelled, so it ends CANCELLED (check the returned status; the
        caller deletes the now unwanted output)."""
        # One statement decides, so no cancel request can slip in between a check and
        # the write: SUCCEED, or CANCEL when a cancel was requested meanwhile.
        cancel_won = _t.c.cancel_requested.is_(True)
        values = {
            "output_key": sa.case((cancel_won, sa.null()), else_=sa.literal(output_key)),
            "inference_ms": int(inference_ms),
            "nsfw": [bool(flag) for flag in nsfw],
            "progress": 1.0,
            "finished_at": self._clock(),
            "lease_until": None,
            "error": "",
        }
        return self._finish(
            SUCCEED,
            id,
            attempt,
            worker_id,
            values,
            where=_sources(CANCEL, Status.RUNNING),
            status=sa.case((cancel_won, CANCEL.target.value), else_=SUCCEED.target.value),
        )

    def fail(
        self,
        id: str,
        *,
        attempt: int,
        worker_id: str,
        error: str,
        retry: bool = False,
    ) -> Prediction:
        """RUNNING -> FAILED; with `retry` (infrastructure failures), back to QUEUED instead
        while attempts remain and no cancel was requested. It keeps its place in the queue."""
        now = self._clock()
        if retry:
            requeue = (
                _t.update()
                .where(
                    self._fence(id, attempt, worker_id),
                    _sources(REQUEUE),
                    _t.c.attempt < _t.c.max_attempts,
                    sa.not_(_t.c.cancel_requested),
                )
                .values(
                    status=REQUEUE.target.value,
                    lease_owner=None,
                    lease_until=None,
                    progress=0.0,
                    progress_message=f"attempt {attempt} failed, retrying: {error}",
                    updated_at=now,
                )
                .returning(*_t.c)
            )
            with self._database.write() as conn:
                row = conn.execute(requeue).first()
            if row is not None:
                self._changes.notify_work()
                self._changes.notify_change(id)
                return to_prediction(row._mapping)
        values = {"error": error, "finished_at": now, "lease_until": None}
        return self._finish(FAIL, id, attempt, worker_id, values)

    def acknowledge_cancel(self, id: str, *, attempt: int, worker_id: str) -> Prediction:
        """The worker stopped a running prediction whose cancel was requested: CANCELLED."""
        values = {"finished_at": self._clock(), "lease_until": None}
        return self._finish(CANCEL, id, attempt, worker_id, values)

    # -- the owner's side -----------------------------------------------------------------

    def cancel(self, id: str, *, owner: str) -> CancelOutcome:
        """Queued: cancelled now. Running: cancel requested (the worker stops it at its next
        step). Finished: not cancellable. `NotFound` if absent or not the owner's."""
        mine = sa.and_(_t.c.id == id, _t.c.owner == owner)
        cancel_queued, request_cancel = _cancel_updates(mine, self._clock())
        cancel_queued, request_cancel = (
            cancel_queued.returning(*_t.c),
            request_cancel.returning(*_t.c),
        )
        with self._database.write() as conn:
            kind = CancelKind.CANCELLED
            row = conn.execute(cancel_queued).first()
            if row is None:
                kind = CancelKind.CANCEL_REQUESTED
                row = conn.execute(request_cancel).first()
            if row is None:
                kind = CancelKind.NOT_CANCELLABLE
                row = conn.execute(sa.select(*_t.c).where(mine)).first()
        if row is None:
            raise NotFound(f"prediction {id!r} not found")
        if kind is not CancelKind.NOT_CANCELLABLE:
            self._changes.notify_change(id)
        return CancelOutcome(kind, to_prediction(row._mapping))

    def delete(self, ids: Sequence[str], *, owner: str) -> list[Prediction]:
        """Delete the owner's predictions among `ids`; returns those deleted (the caller
        deletes their media). A queued one is cancelled, then deleted. A running one is not
        deleted: its cancel is requested, and it can be deleted once it has stopped. Ids that
        are absent or someone else's are ignored."""
        if not ids:
            return []
        mine = sa.and_(_t.c.owner == owner, _t.c.id.in_(sorted(set(ids))))
        cancel_queued, request_cancel = _cancel_updates(mine, self._clock())
        with self._database.write() as conn:
            conn.execute(cancel_queued)
            requested = conn.execute(request_cancel.returning(_t.c.id)).all()
            terminal = _t.c.status.in_(sorted(s.value for s in TERMINAL))
            rows = conn.execute(_t.delete().where(mine, terminal).returning(*_t.c)).all()
        deleted = [to_prediction(r._mapping) for r in rows]
        self._changes.notify_change(*(p.id for p in deleted), *(r.id for r in requested))
        order = {id: i for i, id in enumerate(ids)}
        return sorted(deleted, key=lambda p: order[p.id])
