"""Reading predictions: one by id, an owner's page of them, a queued one's place in line
(under the fair share: `i2v.store.fairness.place`).

The API's side only, and apart from the queue's transitions because reads work differently:
they change nothing, take no lock, announce nothing, and the hot ones (polling a result)
run as prebuilt `Lookup`s on the database's reader pool instead of in a transaction.
"""

from __future__ import annotations

import builtins

import sqlalchemy as sa

from i2v.domain.errors import InputError, NotFound
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import fairness
from i2v.store.database import Database
from i2v.store.lookup import Lookup
from i2v.store.rows import to_prediction
from i2v.store.tables import predictions

_t = predictions

_GET = sa.select(*_t.c).where(_t.c.id == sa.bindparam("id"))
_GET_OWNED = _GET.where(_t.c.owner == sa.bindparam("owner"))


class Predictions:
    """Thread-safe; every read is one statement or one short transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._reader = database.reader
        # Prebuilt: constructing a 28-column select costs more than running it.
        self._get = Lookup(_GET, self._reader.dialect)
        self._get_owned = Lookup(_GET_OWNED, self._reader.dialect)

    @property
    def reads_are_local(self) -> bool:
        """True on SQLite: a read is a local file lookup that, in WAL mode, never waits
        for a writer and takes a fraction of a millisecond, so async callers may run it
        on the event loop instead of paying a hop to a thread."""
        return self._database.is_sqlite

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
        with self._database.read() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(count).scalar_one()
        return [to_prediction(r._mapping) for r in rows], int(total)

    def get_placed(self, id: str, *, owner: str) -> tuple[Prediction, int | None]:
        """The owner's prediction and how many queued ones the fair share serves before it
        (0: next; None unless it is queued), read together; `NotFound` as for `get`."""
        query = sa.select(*_t.c).where(_t.c.id == id, _t.c.owner == owner)
        with self._database.read(snapshot=True) as conn:
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"prediction {id!r} not found")
            p = to_prediction(row._mapping)
            if p.status is not Status.QUEUED:
                return p, None
            return p, fairness.place(conn, p, row.seq)

    def queue_length(self) -> int:
        """How many predictions are queued."""
        query = sa.select(sa.func.count()).select_from(_t)
        with self._database.read() as conn:
            return int(conn.execute(query.where(_t.c.status == Status.QUEUED.value)).scalar_one())
