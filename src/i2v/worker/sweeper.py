"""Retention's sweeper: deletes the media of predictions that finished long enough ago,
and uploads that no prediction used, then marks them so (see `i2v.domain.retention`).

Workers run it between claims, at most every `every_s` seconds per process; several
processes sweeping at once only repeat deletes, which are idempotent. Objects are deleted
before the row is marked, so a crash in between leaves the row due and the next sweep
finishes it; the reverse order could lose track of objects for good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from i2v.domain.retention import Retention
from i2v.storage.base import Storage
from i2v.storage.cleanup import delete_objects
from i2v.store import Store, utcnow

log = logging.getLogger("i2v.sweeper")

BATCH = 100  # rows per read; a sweep goes on until nothing is due
# One pass between claims stops after this long, so a backlog (a retention just turned on,
# a long S3 outage) never holds a worker from its queue; the next gap sweeps on.
PASS_SECONDS = 5.0


@dataclass(frozen=True)
class Swept:
    predictions: int  # predictions whose media were deleted
    uploads: int  # unused uploads deleted
    more: bool = False  # the pass ran out of time with more due


class Sweeper:
    """Thread-safe: the workers of one process share one, and only one sweeps at a time."""

    def __init__(
        self,
        store: Store,
        storage: Storage,
        retention: Retention,
        *,
        every_s: float,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._storage = storage
        self._retention = retention
        self._every_s = every_s
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: float | None = None

    def maybe_sweep(self) -> Swept | None:
        """Sweep if the last sweep was `every_s` ago or more (and no other thread is);
        never raises: a failed sweep is logged and tried again next time."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            started = self._monotonic()
            if self._last is not None and started - self._last < self._every_s:
                return None
            swept = self.sweep(deadline=started + PASS_SECONDS)
            # a pass cut short goes on at the next gap between claims, not `every_s` later
            self._last = None if swept.more else started
            return swept
        except Exception:
            log.exception("retention sweep failed; retrying in %.0f s", self._every_s)
            return None
        finally:
            self._lock.release()

    def sweep(self, *, deadline: float | None = None) -> Swept:
        """Delete everything due now, or what a batch at a time gets through before
        `deadline` (on the sweeper's monotonic clock); `StorageUnavailable` stops it
        (tried again later)."""
        now = self._now()
        predictions = uploads = 0
        cutoff = self._retention.finished_before(now)
        more = False
        while cutoff is not None:
            due = self._store.expiry.due(cutoff, limit=BATCH)
            for p in due:
                delete_objects(self._storage, p)
            predictions += self._store.expiry.expired([p.id for p in due])
            if len(due) < BATCH:
                break
            if self._past(deadline):
                more = True
                break
        while not more:
            keys = self._store.uploads.due(self._retention.uploaded_before(now), limit=BATCH)
            for key in keys:
                self._storage.delete(key)
            self._store.uploads.deleted(keys)
            uploads += len(keys)
            if len(keys) < BATCH:
                break
            more = self._past(deadline)
        if predictions or uploads:
            log.info(
                "retention: deleted the media of %d predictions, %d uploads%s",
                predictions,
                uploads,
                "; more are due, the next pass goes on" if more else "",
            )
        return Swept(predictions=predictions, uploads=uploads, more=more)

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self._monotonic() >= deadline
