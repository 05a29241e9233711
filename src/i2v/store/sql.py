"""The job store: the `predictions` table is the queue (SQLAlchemy Core; SQLite or PostgreSQL).

Every state change is one conditional UPDATE whose WHERE holds `status IN transition.sources`
(see `i2v.domain.status`), so two writers can never both win. Worker writes are also fenced
by `(attempt, lease_owner)`: a worker whose lease expired and whose job was claimed again
gets `LeaseLost` instead of overwriting the new attempt.

Claim takes the oldest queued row, or the oldest running row whose lease expired and that has
attempts left (rescue inside the claim, as pgqueuer does); `sweep` finishes expired rows that
must not run again. On SQLite the claim runs inside BEGIN IMMEDIATE (one writer at a time);
on PostgreSQL its subquery uses FOR UPDATE SKIP LOCKED so claimers pass each other.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from i2v.domain.errors import Conflict, InputError, LeaseLost, NotFound
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
from i2v.store import database, migrate
from i2v.store.broadcast import Broadcast
from i2v.store.lookup import Lookup
from i2v.store.outbox import Outbox
from i2v.store.records import CancelKind, CancelOutcome, KeyRecord
from i2v.store.rows import prediction_values, to_key, to_prediction
from i2v.store.tables import api_keys, at, predictions
from i2v.store.wakeups import Wakeups

Clock = Callable[[], datetime]

_t = predictions
_k = api_keys

# Arbitrary constant naming the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x1297_0001


_INSERT = _t.insert()
_GET = sa.select(*_t.c).where(_t.c.id == sa.bindparam("id"))
_GET_OWNED = _GET.where(_t.c.owner == sa.bindparam("owner"))

# The row and its place in line in one statement, so both come from the same snapshot: read
# separately, a claim landing in between shows a queued row with no place.
_ahead = _t.alias("ahead")
_PLACE = sa.case(
    (
        _t.c.status == Status.QUEUED.value,
        sa.select(sa.func.count())
        .select_from(_ahead)
        .where(_ahead.c.status == Status.QUEUED.value, _ahead.c.seq < _t.c.seq)
        .scalar_subquery(),
    ),
    else_=None,
).label("place")
_GET_PLACED = sa.select(*_t.c, _PLACE).where(
    _t.c.id == sa.bindparam("id"), _t.c.owner == sa.bindparam("owner")
)


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


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sources(transition: Transition, *only: Status) -> sa.ColumnElement[bool]:
    allowed = transition.sources & frozenset(only) if only else transition.sources
    return _t.c.status.in_(sorted(s.value for s in allowed))


class Store:
    """Predictions and API keys. Every method is one short transaction; thread-safe."""

    def __init__(
        self, engine: sa.Engine, *, clock: Clock = utcnow, reader: sa.Engine | None = None
    ) -> None:
        self._engine = engine
        # Single-statement reads get their own pool, so a read never queues for a
        # connection behind writers waiting on the SQLite write lock.
        self._reader = reader or engine
        # Prebuilt: constructing a 28-column select costs more than running it.
        self._get = Lookup(_GET, self._reader.dialect)
        self._get_owned = Lookup(_GET_OWNED, self._reader.dialect)
        self._get_placed = Lookup(_GET_PLACED, self._reader.dialect)
        self._clock = clock
        self._wake = Wakeups()
        # Other processes hear of our commits too on PostgreSQL (SQLite deployments are
        # one process, or poll).
        self._broadcast = None if database.is_sqlite(engine) else Broadcast(engine, self._wake)
        self.outbox = Outbox(self._write, clock)

    @classmethod
    def open(cls, url: str, *, clock: Clock = utcnow) -> Store:
        """Connect and bring the schema to the newest revision (safe from many processes)."""
        engine = database.create_engine(url)
        reader = database.create_engine(url) if database.is_sqlite(engine) else None
        store = cls(engine, clock=clock, reader=reader)
        try:
            with store._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                migrate.upgrade(conn)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._broadcast is not None:
            self._broadcast.close()
        self._engine.dispose()
        self._reader.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(**{database.WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    # -- submit and read ------------------------------------------------------------------

    def submit(self, p: Prediction) -> Prediction:
        """Insert a new prediction as QUEUED (its status field is ignored)."""
        now = self._clock()
        values = prediction_values(p, now=now)
        values.update(
            status=Status.QUEUED.value, cancel_requested=False, lease_owner=None, lease_until=None
        )
        try:
            with self._write() as conn:
                conn.execute(_INSERT, values)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"id: a prediction with id {p.id!r} already exists") from exc
        self._notify_work()
        self._notify_change(p.id)
        return replace(
            p, status=Status.QUEUED, cancel_requested=False, lease_owner=None, lease_until=None
        )

    @property
    def reads_are_local(self) -> bool:
        """True on SQLite: a read is a local file lookup that, in WAL mode, never waits
        for a writer and takes a fraction of a millisecond, so async callers may run it
        on the event loop instead of paying a hop to a thread."""
        return database.is_sqlite(self._engine)

    def get(self, id: str, *, owner: str | None = None) -> Prediction:
        """The prediction; `NotFound` if absent or (when `owner` is given) not theirs."""
        if owner is None:
            row = self._get.run(self._reader, {"id": id})
        else:
            row = self._get_owned.run(self._reader, {"id": id, "owner": owner})
        if row is None:
            raise NotFound(f"prediction {id!r} not found")
        return to_prediction(row)

    def list(
        self, owner: str, *, page: int, page_size: int
    ) -> tuple[builtins.list[Prediction], int]:
        """One page (1-based) of the owner's predictions, newest first, and their total."""
        if page < 1:
            raise InputError(f"must be at least 1, got {page}", field="page", value=page)
        if page_size < 1:
            raise InputError(
                f"must be at least 1, got {page_size}", field="page_size", value=page_size
            )
        query = (
            sa.select(*_t.c)
            .where(_t.c.owner == owner)
            .order_by(_t.c.created_at.desc(), _t.c.seq.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        count = sa.select(sa.func.count()).select_from(_t).where(_t.c.owner == owner)
        with self._read() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(count).scalar_one()
        return [to_prediction(r._mapping) for r in rows], int(total)

    def get_placed(self, id: str, *, owner: str) -> tuple[Prediction, int | None]:
        """The owner's prediction and how many queued ones are ahead of it (0: next; None
        unless it is queued), read together; `NotFound` as for `get`."""
        row = self._get_placed.run(self._reader, {"id": id, "owner": owner})
        if row is None:
            raise NotFound(f"prediction {id!r} not found")
        place = row["place"]
        return to_prediction(row), None if place is None else int(place)

    def queue_length(self) -> int:
        query = sa.select(sa.func.count()).select_from(_t)
        with self._read() as conn:
            return int(conn.execute(query.where(_t.c.status == Status.QUEUED.value)).scalar_one())

    # -- the worker's side ----------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        *,
        lease_seconds: float,
        engines: Collection[str] | None = None,
    ) -> Prediction | None:
        """Take the oldest claimable prediction for one of `engines` (None: any), or None.

        The row becomes RUNNING under a lease held by `worker_id` until now+lease_seconds;
        its attempt goes up by one. A running row whose lease expired is claimable again
        while it has attempts left (its old worker is presumed dead; fencing stops it if not).
        """
        if engines is not None and not engines:
            return None
        now = self._clock()
        rescuable = sa.and_(
            _sources(REQUEUE),
            _t.c.lease_until < at(now),
            _t.c.attempt < _t.c.max_attempts,
            sa.not_(_t.c.cancel_requested),
        )
        claimable = sa.or_(_sources(CLAIM), rescuable)
        pick = sa.select(_t.c.seq).where(claimable)
        if engines is not None:
            pick = pick.where(_t.c.engine.in_(sorted(engines)))
        # LIMIT inside a scalar subquery: evaluated once, so the UPDATE touches one row.
        oldest = pick.order_by(_t.c.seq).limit(1).with_for_update(skip_locked=True).correlate(None)
        update = (
            _t.update()
            .where(_t.c.seq == oldest.scalar_subquery(), claimable)
            .values(
                status=CLAIM.target.value,
                attempt=_t.c.attempt + 1,
                lease_owner=worker_id,
                lease_until=now + timedelta(seconds=lease_seconds),
                started_at=sa.func.coalesce(_t.c.started_at, at(now)),
                progress=0.0,
                progress_message="",
                updated_at=now,
            )
            .returning(*_t.c)
        )
        with self._write() as conn:
            swept = self._sweep(conn, now)
            row = conn.execute(update).first()
        claimed = to_prediction(row._mapping) if row is not None else None
        self._notify_change(*swept, *([claimed.id] if claimed else []))
        return claimed

    def sweep(self) -> int:
        """Finish running rows whose lease expired and that must not run again; returns how many.

        No attempts left: FAILED. Cancel requested: CANCELLED (its owner asked to stop it).
        `claim` runs this too, so a separate caller is optional.
        """
        with self._write() as conn:
            swept = self._sweep(conn, self._clock())
        self._notify_change(*swept)
        return len(swept)

    def _sweep(self, conn: sa.Connection, now: datetime) -> builtins.list[str]:
        expired = sa.and_(_t.c.status == Status.RUNNING.value, _t.c.lease_until < at(now))

        def rows(*where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
            # PostgreSQL: rows another sweeper holds are skipped, so sweepers never deadlock.
            locked = (
                sa.select(_t.c.seq)
                .where(expired, *where)
                .with_for_update(skip_locked=True)
                .correlate(None)  # a set of rows, not a per-row condition
            )
            return _t.c.seq.in_(locked.scalar_subquery())

        cancelled = conn.execute(
            _t.update()
            .where(rows(_sources(CANCEL), _t.c.cancel_requested))
            .values(status=CANCEL.target.value, finished_at=now, lease_until=None, updated_at=now)
            .returning(_t.c.id)
        ).all()
        error = (
            sa.literal("worker lost the job ")
            + sa.cast(_t.c.attempt, sa.String)
            + sa.literal(" times (its lease expired each time); giving up")
        )
        failed = conn.execute(
            _t.update()
            .where(rows(_sources(FAIL), _t.c.attempt >= _t.c.max_attempts))
            .values(
                status=FAIL.target.value,
                error=error,
                finished_at=now,
                lease_until=None,
                updated_at=now,
            )
            .returning(_t.c.id)
        ).all()
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
        with self._write() as conn:
            row = conn.execute(update).first()
            if row is None:
                raise self._lease_lost(conn, id, attempt, worker_id)
        self._notify_change(id)
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
        with self._write() as conn:
            cancel_requested = conn.execute(update).scalar_one_or_none()
            if cancel_requested is None:
                raise self._lease_lost(conn, id, attempt, worker_id)
        self._notify_change(id)
        return bool(cancel_requested)

    def succeed(
        self,
        id: str,
        *,
        attempt: int,
        worker_id: str,
        output_key: str,
        inference_ms: int,
        nsfw: builtins.list[bool],
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
            with self._write() as conn:
                row = conn.execute(requeue).first()
            if row is not None:
                self._notify_work()
                self._notify_change(id)
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
        with self._write() as conn:
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
            self._notify_change(id)
        return CancelOutcome(kind, to_prediction(row._mapping))

    def delete(self, ids: Sequence[str], *, owner: str) -> builtins.list[Prediction]:
        """Delete the owner's predictions among `ids`; returns those deleted (the caller
        deletes their media). A queued one is cancelled, then deleted. A running one is not
        deleted: its cancel is requested, and it can be deleted once it has stopped. Ids that
        are absent or someone else's are ignored."""
        if not ids:
            return []
        mine = sa.and_(_t.c.owner == owner, _t.c.id.in_(sorted(set(ids))))
        cancel_queued, request_cancel = _cancel_updates(mine, self._clock())
        with self._write() as conn:
            conn.execute(cancel_queued)
            requested = conn.execute(request_cancel.returning(_t.c.id)).all()
            terminal = _t.c.status.in_(sorted(s.value for s in TERMINAL))
            rows = conn.execute(_t.delete().where(mine, terminal).returning(*_t.c)).all()
        deleted = [to_prediction(r._mapping) for r in rows]
        self._notify_change(*(p.id for p in deleted), *(r.id for r in requested))
        order = {id: i for i, id in enumerate(ids)}
        return sorted(deleted, key=lambda p: order[p.id])

    # -- wake-ups (this process's commits; on PostgreSQL every process's, by NOTIFY) -------

    def _notify_work(self) -> None:
        self._wake.notify_work()
        if self._broadcast is not None:
            self._broadcast.work()

    def _notify_change(self, *ids: str) -> None:
        self._wake.notify_change(*ids)
        if self._broadcast is not None and ids:
            self._broadcast.change(*ids)

    def work_token(self) -> int:
        return self._wake.work_token()

    def wait_for_work(self, timeout: float, *, token: int | None = None) -> None:
        """Block until a submit or requeue (in this process; on PostgreSQL in any), or
        `timeout` seconds.

        Without `token`, any submit since this thread last returned from here counts, so a
        worker loop (claim, nothing, wait) cannot miss one made in between."""
        if self._broadcast is not None:
            self._broadcast.listen()
        self._wake.wait_for_work(timeout, token)

    def change_token(self, id: str) -> int:
        return self._wake.change_token(id)

    def wait_for_change(self, id: str, timeout: float, *, token: int | None = None) -> None:
        """Block until prediction `id` changes (in this process; on PostgreSQL in any), or
        `timeout` seconds.

        Race-free pattern: `t = store.change_token(id)`, read the prediction, and if it is
        not done, `store.wait_for_change(id, timeout, token=t)`."""
        if self._broadcast is not None:
            self._broadcast.listen()
        self._wake.wait_for_change(id, timeout, token)

    # -- API keys ---------------------------------------------------------------------------

    def add_key(self, key_hash: str, *, name: str, prefix: str) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    _k.insert().values(
                        key_hash=key_hash, name=name, prefix=prefix, created_at=self._clock()
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"key: this key is already registered (prefix {prefix})") from exc

    def find_key(self, key_hash: str) -> KeyRecord | None:
        """The active (not revoked) key with this hash, or None."""
        query = sa.select(*_k.c).where(_k.c.key_hash == key_hash, _k.c.revoked_at.is_(None))
        with self._read() as conn:
            row = conn.execute(query).first()
        return to_key(row) if row is not None else None

    def list_keys(self) -> builtins.list[KeyRecord]:
        """All keys, revoked ones included, oldest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(*_k.c).order_by(_k.c.created_at, _k.c.name)).all()
        return [to_key(r) for r in rows]

    def revoke_key(self, prefix_or_name: str) -> bool:
        """Revoke every active key with this name or prefix; False if there was none."""
        now = self._clock()
        match = sa.or_(_k.c.name == prefix_or_name, _k.c.prefix == prefix_or_name)
        with self._write() as conn:
            revoked = conn.execute(
                _k.update()
                .where(match, _k.c.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(_k.c.key_hash)
            ).all()
        return bool(revoked)

    def __repr__(self) -> str:
        return f"Store({self._engine.url!r})"
