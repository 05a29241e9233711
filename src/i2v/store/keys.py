"""API keys created with `i2v keys`: the `api_keys` table, which holds only their hashes."""

from __future__ import annotations

import builtins

import sqlalchemy as sa

from i2v.domain.errors import Conflict
from i2v.domain.limits import Limits
from i2v.store.clock import Clock
from i2v.store.database import Database
from i2v.store.records import KeyRecord
from i2v.store.rows import to_key
from i2v.store.tables import api_keys

_k = api_keys


class Keys:
    """Every method is one short transaction; thread-safe."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def add(
        self,
        key_hash: str,
        *,
        name: str,
        prefix: str,
        max_queued: int | None = None,
        max_running: int | None = None,
        rate_per_minute: int | None = None,
        weight: float | None = None,
        admin: bool = False,
    ) -> None:
        """Register a key, with its own limits where given (None: the server's default);
        `Conflict` if it already is. `ValueError` for a limit below 1 or a weight <= 0.
        `admin`: it may also see the operator page."""
        # Limits checks each value, so the CLI and any other caller get the same rules.
        Limits().overridden(
            max_queued=max_queued,
            max_running=max_running,
            rate_per_minute=rate_per_minute,
            weight=weight,
        )
        try:
            with self._database.write() as conn:
                conn.execute(
                    _k.insert().values(
                        key_hash=key_hash,
                        name=name,
                        prefix=prefix,
                        created_at=self._clock(),
                        max_queued=max_queued,
                        max_running=max_running,
                        rate_per_minute=rate_per_minute,
                        weight=weight,
                        admin=admin,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"key: this key is already registered (prefix {prefix})") from exc

    def find(self, key_hash: str) -> KeyRecord | None:
        """The active (not revoked) key with this hash, or None."""
        query = sa.select(*_k.c).where(_k.c.key_hash == key_hash, _k.c.revoked_at.is_(None))
        with self._database.read() as conn:
            row = conn.execute(query).first()
        return to_key(row) if row is not None else None

    def list(self) -> builtins.list[KeyRecord]:
        """All keys, revoked ones included, oldest first."""
        with self._database.read() as conn:
            rows = conn.execute(sa.select(*_k.c).order_by(_k.c.created_at, _k.c.name)).all()
        return [to_key(r) for r in rows]

    def revoke(self, prefix_or_name: str) -> bool:
        """Revoke every active key with this name or prefix; False if there was none."""
        now = self._clock()
        match = sa.or_(_k.c.name == prefix_or_name, _k.c.prefix == prefix_or_name)
        with self._database.write() as conn:
            revoked = conn.execute(
                _k.update()
                .where(match, _k.c.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(_k.c.key_hash)
            ).all()
        return bool(revoked)
