"""Media uploads: who owns each one, how many bytes it holds, whether its bytes are in, and
when a prediction last used it.

An upload counts against its owner's quota from the moment it is made (a ticket reserves
its declared size before any byte arrives). Its bytes are written once: a ticket's PUT
takes the write (`start_write`) and a second PUT is refused. It expires when unused for
`Retention.upload_hours` (the sweeper in `i2v.worker.sweeper` deletes it, objects first).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from i2v.domain.errors import Conflict, NotFound, PayloadTooLarge
from i2v.store.clock import Clock
from i2v.store.database import Database
from i2v.store.records import Upload
from i2v.store.rows import to_upload
from i2v.store.tables import at, uploads

_u = uploads


class Uploads:
    """Every method is one short transaction; thread-safe."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def record(
        self, key: str, *, owner: str, size: int, written: bool, quota: int | None, field: str
    ) -> Upload:
        """Record an upload of `size` bytes by `owner` (`written`: its bytes are stored
        already). `PayloadTooLarge` naming `field` and the quota when `owner`'s uploads
        would hold more than `quota` bytes with it (None: no quota)."""
        now = self._clock()
        with self._database.write() as conn:
            if not self._database.is_sqlite:
                # Serialize one owner's uploads, so two at once cannot both fit the quota
                # (SQLite's write transactions are serial already).
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(owner))))
            if quota is not None:
                held = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(_u.c.size), 0)).where(
                        _u.c.owner == owner
                    )
                ).scalar_one()
                if held + size > quota:
                    raise PayloadTooLarge(
                        f"over this key's upload quota: its uploads hold {held} bytes, and"
                        f" {size} more would pass the quota of {quota} bytes"
                        " (I2V_UPLOAD_QUOTA_BYTES); delete uploads (DELETE"
                        " /api/v3/media/uploads/{id}) or wait until unused ones expire",
                        field=field,
                    )
            conn.execute(
                _u.insert().values(
                    key=key,
                    owner=owner,
                    size=size,
                    created_at=now,
                    written_at=now if written else None,
                )
            )
        return Upload(key, owner, size, now, now if written else None, None)

    def start_write(self, key: str) -> Upload:
        """Take the one write of a ticket's bytes: the upload as declared. `NotFound` when
        there is no such upload (never made, deleted or expired), `Conflict` when its bytes
        were written already or another PUT is writing them."""
        now = self._clock()
        take = (
            _u.update()
            .where(_u.c.key == key, _u.c.written_at.is_(None))
            .values(written_at=now)
            .returning(*_u.c)
        )
        with self._database.write() as conn:
            row = conn.execute(take).first()
            if row is None:
                exists = conn.execute(sa.select(_u.c.key).where(_u.c.key == key)).first()
                if exists is None:
                    raise NotFound("no such upload ticket: it was deleted, or it expired")
                raise Conflict(
                    "this upload's bytes were written already: an upload URL takes one PUT;"
                    " create a new upload ticket to upload again"
                )
        return to_upload(row)

    def write_failed(self, key: str) -> None:
        """The PUT that took the write did not store the bytes: the ticket takes a PUT again."""
        with self._database.write() as conn:
            conn.execute(_u.update().where(_u.c.key == key).values(written_at=None))

    def used(self, key: str) -> None:
        """A submit used the upload at `key` (its expiry starts again); no-op if unknown."""
        with self._database.write() as conn:
            conn.execute(_u.update().where(_u.c.key == key).values(used_at=self._clock()))

    def owned(self, key_prefix: str, *, owner: str) -> Upload:
        """`owner`'s upload whose key starts with `key_prefix`; `NotFound` when there is none
        (or it is another key's: the two look the same)."""
        query = sa.select(*_u.c).where(
            _u.c.owner == owner, _u.c.key.startswith(key_prefix, autoescape=True)
        )
        with self._database.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound("no such upload of this API key (deleted, expired, or never made)")
        return to_upload(row)

    def due(self, unused_since: datetime, *, limit: int) -> builtins.list[str]:
        """Up to `limit` upload keys, oldest first, neither made nor used since `unused_since`."""
        last = sa.func.coalesce(_u.c.used_at, _u.c.created_at)
        query = sa.select(_u.c.key).where(last < at(unused_since)).order_by(last).limit(limit)
        with self._database.read() as conn:
            return [r.key for r in conn.execute(query)]

    def deleted(self, keys: Sequence[str]) -> None:
        """Forget uploads whose objects were deleted."""
        if keys:
            with self._database.write() as conn:
                conn.execute(_u.delete().where(_u.c.key.in_(sorted(set(keys)))))
