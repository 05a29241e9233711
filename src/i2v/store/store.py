"""The store's entry point: opens the database once and hands out its parts.

store.queue        the predictions' state machine: submit, claim, leases, finishes
store.predictions  reads of predictions: by id, an owner's pages, a place in line
store.changes      wake-ups after commits: wait for work, wait for a job to change
store.keys         API keys created with `i2v keys`
store.outbox       webhook deliveries owed by finished predictions
store.expiry       retention: finished predictions whose media are due to go
store.uploads      media uploads: owners, quota, one write each, expiry when unused
store.database     the engines and transactions they all share
"""

from __future__ import annotations

from i2v.domain.limits import Limits
from i2v.store.changes import Changes
from i2v.store.clock import Clock, utcnow
from i2v.store.database import Database
from i2v.store.expiry import Expiry
from i2v.store.keys import Keys
from i2v.store.outbox import Outbox
from i2v.store.predictions import Predictions
from i2v.store.queue import Queue
from i2v.store.uploads import Uploads


class Store:
    """Predictions (which are the queue) and API keys, in one database. Thread-safe."""

    def __init__(
        self, database: Database, *, clock: Clock = utcnow, limits: Limits | None = None
    ) -> None:
        """`limits`: the per-key limits of keys that set none of their own (None: none)."""
        self.database = database
        self.changes = Changes(database)
        self.queue = Queue(database, self.changes, clock, limits or Limits())
        self.predictions = Predictions(database)
        self.keys = Keys(database, clock)
        self.outbox = Outbox(database, clock)
        self.expiry = Expiry(database, self.changes, clock)
        self.uploads = Uploads(database, clock)

    @classmethod
    def open(cls, url: str, *, clock: Clock = utcnow, limits: Limits | None = None) -> Store:
        """Connect and bring the schema to the newest revision (safe from many processes)."""
        return cls(Database.open(url), clock=clock, limits=limits)

    def close(self) -> None:
        self.changes.close()
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.database.engine.url!r})"
